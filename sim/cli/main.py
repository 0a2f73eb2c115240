"""The ``dmsim`` command line (../shared/CLI.md): run scenarios, redraw plots, serve the DM
server on a real socket, and the ``calc``/``decode`` toolbox.

Exit status: 0 success; 1 a failed check or a run that ended interrupted; 2 bad input (a
scenario error with its file, line and key path; hex that does not parse); 130 on Ctrl-C.
"""
from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

import click

from dmsim.sim.cli.card import card
from dmsim.sim.cli.modem import modem
from dmsim.base.errors import DmsimError, ScenarioError
from dmsim.sim.cli.dm import calc_pkg0_cmd, decode_pkg0_cmd
from dmsim.sim.cli.conformance import conformance
from dmsim.sim.cli.smsc import decode_smpp_cmd, smsc
from dmsim.sim.cli.server import server
from dmsim.sim.cli.toolbox import ParseFailure, calc, decode


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="dmsim")
def main() -> None:
    """dmsim: a hardware-in-the-loop simulator for OMA DM 1.3 device-management security."""


def _load(scenario: str, overrides: tuple[str, ...]):
    from dmsim.sim.scenario.format import load_scenario
    try:
        return load_scenario(scenario, list(overrides))
    except ScenarioError as exc:
        raise ParseFailure(str(exc)) from None
    except OSError as exc:
        raise ParseFailure(f"{scenario}: {exc.strerror or exc}") from None


@main.command()
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Run folder (default results/<scenario>-<time>).")
@click.option("--seed", type=int, help="Override the scenario's seed.")
@click.option("--replicas", type=int, help="Override the number of replicas.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a scenario key by its dotted path (repeatable), validated like the file.")
@click.option("--pcap", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the first replica's SMS (GSMTAP) and SIM APDUs (GSMTAP SIM) to this pcap file.")
@click.option("--no-plots", is_flag=True, help="Skip drawing the plots.")
@click.option("--quiet", "-q", is_flag=True, help="No progress line and no summary.")
def run(scenario: str, out: Path | None, seed: int | None, replicas: int | None, overrides: tuple[str, ...],
        pcap: Path | None, no_plots: bool, quiet: bool) -> None:
    """Run SCENARIO (YAML) and write sessions.csv, summary.json, manifest.json and plots."""
    from dmsim.sim.results.progress import Progress
    from dmsim.sim.results.runner import default_out_dir, run_scenario
    extra = tuple(f"{k}={v}" for k, v in (("seed", seed), ("replicas", replicas)) if v is not None)
    sc = _load(scenario, overrides + extra)
    out_dir = out or default_out_dir(sc)
    runs = len(sc.sweep_points()) * sc.data["replicas"]
    progress = Progress(runs, sc.data["fleet"]["size"], force=False if quiet else None)
    stop = threading.Event()

    def on_signal(signum, frame):
        # First Ctrl-C/SIGTERM: stop at the next check and write what we have; a second one
        # interrupts at once (the finally blocks still close the files).
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    # Installed explicitly: a shell that starts us in the background without job control
    # leaves SIGINT ignored.
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        result = run_scenario(sc, out_dir, progress=progress, plots=not no_plots, stop=stop, pcap=pcap)
    except KeyboardInterrupt:
        click.echo(f"interrupted: the rows written so far are in {out_dir}/sessions.csv "
                   "(manifest.json says status: interrupted)", err=True)
        sys.exit(130)
    except DmsimError as exc:
        click.echo(f"run stopped by an error: {exc}; partial results in {out_dir} (status: interrupted)", err=True)
        sys.exit(1)
    if not quiet:
        s = result.summary
        lat = s.get("latency_s") or {}
        p = {k: (lat.get(k) or {}).get("value") for k in ("p50", "p90", "p99")}
        fmt = lambda v: "-" if v is None else f"{v:.2f}s"  # noqa: E731
        click.echo(f"{sc.name}: {s['sessions']:,} sessions, success rate {s['success_rate'] or 0:.3f}, "
                   f"latency p50 {fmt(p['p50'])} p90 {fmt(p['p90'])} p99 {fmt(p['p99'])} "
                   f"({result.wall_seconds:.1f}s wall, {result.events / max(result.wall_seconds, 1e-9):,.0f} events/s)")
        click.echo(f"results: {out_dir}")


@main.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
def plot(run_dir: Path) -> None:
    """Redraw the plots of RUN_DIR from its sessions.csv and summary.json."""
    from dmsim.sim.results.plots import plot_run
    try:
        for path in plot_run(run_dir):
            click.echo(str(path))
    except DmsimError as exc:
        raise ParseFailure(str(exc)) from None


@main.group()
def scenario() -> None:
    """Check scenario files and show their format."""


@scenario.command("check")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE")
def scenario_check(files: tuple[str, ...], overrides: tuple[str, ...]) -> None:
    """Validate scenario FILES; print the first error of each with its line and key path."""
    bad = 0
    for f in files:
        try:
            sc = _load(f, overrides)
            click.echo(f"{f}: ok ({sc.data['fleet']['size']:,} devices, {len(sc.sweep_points())} sweep point(s), "
                       f"{sc.data['replicas']} replica(s))")
        except click.ClickException as exc:
            click.echo(exc.format_message(), err=True)
            bad += 1
    if bad:
        sys.exit(2)


@scenario.command("format")
def scenario_format() -> None:
    """Print every scenario key with its type, default and meaning."""
    from dmsim.sim.scenario.format import describe_schema
    click.echo(describe_schema())


main.add_command(calc)
decode.add_command(decode_smpp_cmd)  # "decode smpp" lives with the SMPP code it decodes
calc.add_command(calc_pkg0_cmd)
decode.add_command(decode_pkg0_cmd)
main.add_command(decode)
main.add_command(smsc)
main.add_command(card)
main.add_command(modem)
main.add_command(server)
main.add_command(conformance)

if __name__ == "__main__":  # pragma: no cover
    main()
