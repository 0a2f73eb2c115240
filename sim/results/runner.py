"""``dmsim run``: every replica at every sweep point of a scenario, into one run folder.

A run folder holds ``sessions.csv`` (one row per device session, see ``records.py``),
``summary.json`` (``summary.py``), ``manifest.json`` (scenario, seed, versions, git revision,
status) and the plots (``plots.py``). The session table depends only on the scenario and its
seed: the same inputs give a byte-identical ``sessions.csv``. ``manifest.json`` also records
wall-clock facts (start time, duration), which are not part of that promise.

Interruptions: on Ctrl-C or an error the rows already written are kept whole under their final
name, ``manifest.json`` says ``"status": "interrupted"`` (with the error), the summary covers
what was written, and the exception propagates to the CLI. Files are only ever written under a
temporary ``.part`` name and renamed when complete.
"""
from __future__ import annotations

import datetime as _dt
import gc
import platform
import subprocess
import threading
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Mapping

import simpy.rt

from dmsim.sim.results.atomic import write_atomic, write_json_atomic
from dmsim.sim.model.replica import Replica
from dmsim.sim.real.components import ALL
from dmsim.base.errors import ScenarioError
from dmsim.sim.results.pcap import PcapWriter
from dmsim.sim.results.progress import Progress
from dmsim.sim.results.records import SessionTable, SmsTable
from dmsim.sim.scenario.format import Scenario
from dmsim.sim.results.summary import summarize

_VERSIONED = ("dmsim", "simpy", "cryptography", "PyYAML", "matplotlib", "click")


@dataclass
class RunResult:
    """Where the run went and how it ended."""

    out_dir: Path
    status: str
    summary: dict
    wall_seconds: float
    events: int


def default_out_dir(scenario: Scenario, results_root: Path = Path("results")) -> Path:
    """Return ``results/<scenario>-<UTC timestamp>``."""
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return results_root / f"{scenario.name}-{stamp}"


def run_scenario(scenario: Scenario, out_dir: Path, *, progress: Progress | None = None,
                 plots: bool = True, stop: threading.Event | None = None, pcap: Path | None = None) -> RunResult:
    """Run ``scenario`` into ``out_dir`` and return the result; re-raises after recording an interruption."""
    out_dir.mkdir(parents=True, exist_ok=True)
    data = scenario.data
    points = scenario.sweep_points()
    sweep_key = data["sweep"]["key"] if data.get("sweep") else None
    replicas = data["replicas"]
    progress = progress or Progress(len(points) * replicas, data["fleet"]["size"], force=False)
    started, t0 = _dt.datetime.now(_dt.timezone.utc), time.perf_counter()
    status, error, events = "complete", None, 0
    network: dict[str, dict] = {}
    write_atomic(out_dir / "scenario.yaml", scenario.raw_text)
    table = SessionTable(out_dir / "sessions.csv")
    # The capture follows the first replica of the first sweep point: simulated time restarts
    # with every replica, and a pcap's timestamps should not go back.
    capture = PcapWriter(pcap) if pcap is not None else None
    sms_table = SmsTable(out_dir / "sms.csv") if data.get("smsc") is not None else None
    # A large fleet keeps many long-lived objects (accounts, pending events); with the default
    # thresholds the cyclic collector rescans them constantly (about 15 % of a 30k-device run).
    gc_thresholds = gc.get_threshold()
    gc.set_threshold(50_000, 20, 100)
    try:
        for sweep, (value, point_data) in enumerate(points):
            for replica in range(replicas):
                progress.start_run(f"replica {replica + 1}/{replicas}"
                                   + (f", {sweep_key}={value}" if sweep_key else ""))
                first = (sweep, replica) == (0, 0)
                esme = point_data["components"]["esme"]
                live = first and esme["kind"] == "smpp"
                model = Replica(point_data, seed=data["seed"], replica=replica, sweep=sweep,
                                sweep_value=value, write=table.write, pcap=capture if first else None,
                                env=simpy.rt.RealtimeEnvironment(factor=1 / esme["speed"], strict=False)
                                if live else None, components=ALL)
                if sms_table is not None:
                    model.write_sms = sms_table.write
                gateway = _start_gateway(model, esme) if live else None
                try:
                    model.run(step_hook=progress.update, stop=stop)
                finally:
                    if gateway is not None:
                        gateway.stop()
                        network["esme"] = dict(gateway.counts)
                    model.close()
                    events += model.steps
                    _add_network_stats(network, model.stats())
    except BaseException as exc:
        status = "interrupted"
        error = "KeyboardInterrupt" if isinstance(exc, KeyboardInterrupt) else f"{type(exc).__name__}: {exc}"
        raise
    finally:
        gc.set_threshold(*gc_thresholds)
        progress.finish()
        if capture is not None:
            capture.close()  # also when interrupted: what was captured stays readable
        if sms_table is not None:
            sms_table.close()
        table.close(complete=status == "complete")
        wall = time.perf_counter() - t0
        summary = summarize(out_dir / "sessions.csv", duration=float(data["duration"]), sweep_key=sweep_key)
        summary["status"] = status
        summary["network"] = network
        write_json_atomic(out_dir / "summary.json", summary)
        write_json_atomic(out_dir / "manifest.json", _manifest(scenario, status, error, started, wall, events))
        if plots:
            from dmsim.sim.results.plots import plot_run  # matplotlib import is slow: only when plotting
            plot_run(out_dir)
    return RunResult(out_dir, status, summary, wall, events)


def _start_gateway(model: Replica, spec: dict):
    """Start the SMPP server of ``model``'s SMSC (``components.esme``) and say where it listens."""
    from dmsim.sim.real.esme_gateway import EsmeGateway
    try:
        gateway = EsmeGateway(model.env, model.agents["smsc"], spec)
        host, port = gateway.start()
    except OSError as exc:
        raise ScenarioError(f"cannot listen on {spec['listen']}: {exc.strerror or exc}",
                            path="components.esme.listen", expected="a free local HOST:PORT") from None
    print(f"dmsim: SMPP 3.4 server of the running scenario on {host}:{port}", file=sys.stderr, flush=True)
    return gateway


def _accumulate(entry: dict, counts: Mapping[str, float]) -> None:
    """Add the numbers of the mapping ``counts`` into ``entry``, key by key."""
    for key, value in counts.items():
        entry[key] = entry.get(key, 0) + value


def _add_network_stats(total: dict[str, dict], stats: Mapping[str, Mapping]) -> None:
    """Add a replica's counters (``Replica.stats()``: section -> counts, a link's ``tap`` nested)
    into ``total``."""
    for section, counts in stats.items():
        entry = total.setdefault(section, {"tap": {}} if "tap" in counts else {})
        _accumulate(entry, {k: v for k, v in counts.items() if k != "tap"})
        if "tap" in counts:
            _accumulate(entry.setdefault("tap", {}), counts["tap"])


def _manifest(scenario: Scenario, status: str, error: str | None, started: _dt.datetime, wall: float,
              events: int) -> dict:
    return {
        "scenario_name": scenario.name,
        "scenario_file": scenario.source,
        "scenario": scenario.data,
        "seed": scenario.data["seed"],
        "replicas": scenario.data["replicas"],
        "status": status,
        "error": error,
        "started_utc": started.isoformat(timespec="seconds"),
        "wall_seconds": round(wall, 3),
        "sim_events": events,
        "versions": {"python": platform.python_version(), **{p: _version(p) for p in _VERSIONED}},
        "git_revision": _git_revision(),
        "argv": sys.argv,
    }


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _git_revision() -> str | None:
    """Return the git revision of the dmsim source tree (with ``-dirty``), or None outside git."""
    here = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return rev + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None



