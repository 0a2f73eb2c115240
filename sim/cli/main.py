"""The ``dmsim`` command line (the README lists it; every command has ``--help``): run scenarios, redraw plots, serve the DM
server on a real socket, and the ``calc``/``decode`` toolbox.

Exit status: 0 success; 1 a failed check or a run that ended interrupted; 2 bad input (a
scenario error with its file, line and key path; hex that does not parse); 130 on Ctrl-C.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

import click

from dmsim.sim.cli.attack import attack
from dmsim.sim.cli.bsf import bsf
from dmsim.sim.cli.card import card
from dmsim.sim.cli.lwm2m import lwm2m
from dmsim.sim.cli.modem import modem
from dmsim.base.errors import DmsimError, ScenarioError
from dmsim.sim.cli.dm import calc_pkg0_cmd, decode_pkg0_cmd
from dmsim.sim.cli.conformance import conformance
from dmsim.sim.cli.smsc import decode_smpp_cmd, smsc
from dmsim.sim.cli.server import server
from dmsim.sim.cli.toolbox import ParseFailure, calc, decode


def _one_line(text: str) -> str:
    """Return an error message on one line and safe for a terminal: line breaks and other control
    characters (in a quoted value, a file name) escaped as Python writes them (``\\n``, ``\\x1b``)."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


class _Dmsim(click.Group):
    """The root group. A typed error (``DmsimError``) that no command turned into its own exit is
    refused input that was only found deep inside a core: it exits 2 with its message on one line
    (``Error: ...``), never a traceback. Any other exception is a bug and still shows its traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except DmsimError as exc:
            raise ParseFailure(_one_line(str(exc))) from None


@click.group(cls=_Dmsim, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="dmsim")
def main() -> None:
    """dmsim: a hardware-in-the-loop simulator for OMA DM 1.3 device-management security."""


def _load(scenario: str, overrides: tuple[str, ...], flags: dict | None = None):
    from dmsim.sim.scenario.format import load_scenario
    try:
        return load_scenario(scenario, list(overrides), flags)
    except ScenarioError as exc:
        raise ParseFailure(_one_line(str(exc))) from None
    except OSError as exc:
        raise ParseFailure(_one_line(f"{scenario}: {exc.strerror or exc}")) from None


@main.command()
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Run folder (default results/<scenario>-<time>).")
@click.option("--seed", type=int, help="Override the scenario's seed.")
@click.option("--replicas", type=int, help="Override the number of replicas.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a scenario key by its dotted path (repeatable), validated like the file.")
@click.option("--pcap", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the first replica's SMS (GSMTAP), SIM APDUs (GSMTAP SIM), DM sessions "
                   "(HTTP or TLS over TCP) and LwM2M datagrams (DTLS or CoAP over UDP) to this pcap file.")
@click.option("--trace", metavar="DEVICE[,...]",
              help="Write trace.jsonl: every message, APDU and the final record of these devices (index "
                   "as in sessions.csv, or IMSI) in the first replica.")
@click.option("--no-plots", is_flag=True, help="Skip drawing the plots.")
@click.option("--overwrite", is_flag=True,
              help="Replace the run already in --out (its tables, summary, manifest, plots and report).")
@click.option("--quiet", "-q", is_flag=True, help="No progress line and no summary.")
@click.option("--jobs", type=click.IntRange(1, 256), default=None,
              help="Worker processes for the runs (replicas x sweep points x shards); the tables are the serial "
                   "run's, byte for byte. --pcap, --trace and a live ESME keep one process.  [default: every core]")
@click.option("--scheduler", default="local", show_default=True, metavar="local|tcp://HOST:PORT",
              help="Where the runs go: worker processes of this machine, or a Dask distributed scheduler "
                   "(dask scheduler / dask worker; pip install 'dmsim[cluster]'). The tables do not depend on it.")
def run(scenario: str, out: Path | None, seed: int | None, replicas: int | None, overrides: tuple[str, ...],
        pcap: Path | None, no_plots: bool, overwrite: bool, quiet: bool, trace: str | None = None,
        jobs: int | None = None, scheduler: str = "local") -> None:
    """Run SCENARIO (YAML) and write sessions.csv, summary.json, manifest.json, plots and report.html."""
    from dmsim.sim.results.progress import Progress
    from dmsim.sim.results.runner import (closing_lines, default_out_dir, plan_units, prepare_out_dir, run_scenario,
                                          unit_devices)
    sc = _load(scenario, overrides, {"--seed": seed, "--replicas": replicas})
    if scheduler != "local" and not scheduler.startswith(("tcp://", "tls://")):
        raise ParseFailure(f"--scheduler {scheduler!r}: expected local or tcp://HOST:PORT (a Dask scheduler)")
    from dmsim.sim.results.trace import parse_devices
    try:
        traced = parse_devices(trace, sc.data["fleet"]["size"]) if trace else ()
    except ScenarioError as exc:
        raise ParseFailure(str(exc)) from None
    out_dir = out or default_out_dir(sc)
    try:
        prepare_out_dir(out_dir, overwrite=overwrite)
    except DmsimError as exc:
        raise ParseFailure(str(exc)) from None
    for warning in _warnings(sc):
        click.echo(f"warning: {warning}", err=True)
    units = plan_units(sc)
    progress = Progress(len(units), unit_devices(sc.data, units), force=False if quiet else None)
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
        result = run_scenario(sc, out_dir, progress=progress, plots=not no_plots, stop=stop, pcap=pcap,
                              trace=traced, jobs=jobs or len(os.sched_getaffinity(0)), scheduler=scheduler)
    except KeyboardInterrupt:
        click.echo(f"interrupted: the rows written so far are in {out_dir}/sessions.csv "
                   "(manifest.json says status: interrupted)", err=True)
        sys.exit(130)
    except DmsimError as exc:
        click.echo(f"run stopped by an error: {exc}; partial results in {out_dir} (status: interrupted)", err=True)
        sys.exit(1)
    except OSError as exc:  # the run folder cannot be made or written (--out in a read-only place, a full disk)
        click.echo(_one_line(f"run stopped: cannot write {exc.filename or out_dir}: {exc.strerror or exc}"), err=True)
        sys.exit(1)
    lines, warnings = closing_lines(sc.name, result)
    if not quiet:
        for line in lines:
            click.echo(line)
    for warning in warnings:  # also when quiet: a run that left part of the fleet out says so
        click.echo(f"WARNING: {warning}", err=True)
    if not quiet:
        click.echo(f"results: {out_dir}")


def _warnings(sc) -> list[str]:
    """Return what a user should know about ``sc`` before running it (the fleet cannot all arrive)."""
    from dmsim.sim.model.arrivals import fit_warning
    from dmsim.sim.scenario.conformance import nonconformities
    data = sc.data
    warning = fit_warning(data["arrival"], data["fleet"]["size"], float(data["duration"]))
    notes = sorted({note for _value, point in sc.sweep_points() for note in nonconformities(point)})
    return ([warning] if warning else []) + [f"not conformant: {note}" for note in notes]


@main.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
def plot(run_dir: Path) -> None:
    """Redraw the plots and report.html of RUN_DIR from its sessions.csv and summary.json."""
    from dmsim.sim.results.plots import plot_run
    from dmsim.sim.results.report import write_report
    try:
        paths = plot_run(run_dir)
        for path in [*paths, write_report(run_dir, paths)]:
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
            for warning in _warnings(sc):
                click.echo(f"{f}: warning: {warning}", err=True)
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
main.add_command(bsf)
main.add_command(lwm2m)
main.add_command(conformance)
main.add_command(attack)

if __name__ == "__main__":  # pragma: no cover
    main()
