"""``dmsim run``: every replica at every sweep point of a scenario, into one run folder.

A run folder holds ``sessions.csv`` (one row per device session, see ``records.py``),
``summary.json`` (``summary.py``), ``manifest.json`` (scenario, seed, versions, git revision,
status), the plots (``plots.py``) and ``report.html`` (``report.py``). The session table depends only on the scenario and its
seed: the same inputs give a byte-identical ``sessions.csv``. ``manifest.json`` also records
wall-clock facts (start time, duration), which are not part of that promise.

Interruptions: on Ctrl-C or an error the rows already written are kept whole under their final
name, ``manifest.json`` says ``"status": "interrupted"`` (with the error), the summary covers
what was written, and the exception propagates to the CLI. Files are only ever written under a
temporary ``.part`` name and renamed when complete.
"""
from __future__ import annotations

import csv
import datetime as _dt
import gc
import platform
import statistics
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
from dmsim.sim.results.executors import PacedCollector, RunOutput, Unit, make_executor
from dmsim.sim.model.sampled import every_of, modelled_rows
from dmsim.sim.results.fidelity import FidelityTally
from dmsim.sim.model.replica import Replica
from dmsim.base.errors import DmsimError, ScenarioError
from dmsim.sim.results.ip_capture import IpCapture
from dmsim.sim.results.observe import observe
from dmsim.sim.results.pcap import PcapWriter
from dmsim.sim.results.trace import DeviceTrace
from dmsim.sim.results.progress import Progress
from dmsim.sim.results.records import SessionTable, SmsTable, sweep_cell
from dmsim.sim.scenario.conformance import nonconformities
from dmsim.sim.scenario.format import Scenario, sweep_axes
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
                 plots: bool = True, stop: threading.Event | None = None, pcap: Path | None = None,
                 trace: tuple[int, ...] = (), jobs: int = 1, scheduler: str = "local") -> RunResult:
    """Run ``scenario`` into ``out_dir`` and return the result; re-raises after recording an interruption.

    ``pcap``: capture the first replica there (SMS, APDUs, the DM sessions over TCP, LwM2M's DTLS and CoAP
    datagrams over UDP; a record it cannot write is counted in ``summary.json``'s ``capture`` and warned
    of); ``trace``: write the story of these devices (indexes) in the first replica to ``trace.jsonl`` (``trace.py``).

    The work is cut into units, one per (sweep point, replica, shard) (``shards``: ``sim/model/shards.py``).
    ``jobs`` > 1 runs them in that many worker processes, ``scheduler`` ``tcp://HOST:PORT`` on a Dask
    cluster (:mod:`dmsim.sim.results.executors`); either way their rows are written in the serial order
    of the units, so ``sessions.csv`` and ``sms.csv`` are byte-identical to a serial run's. A run with
    ``pcap``, ``trace`` or a live ESME (``components.esme: smpp``) stays in this process: those follow the
    first replica here."""
    out_dir.mkdir(parents=True, exist_ok=True)
    data = scenario.data
    points = scenario.sweep_points()
    sweep = sweep_meta(data, [value for value, _data in points])
    replicas, shards = data["replicas"], data["shards"]
    sampled = data["fidelity"] == "sampled"
    if (shards > 1 or sampled) and (pcap is not None or trace):
        part = (f"with shards {shards} it would hold 1/{shards} of the fleet: run them with --set shards=1"
                if shards > 1 else "fidelity: sampled models most of the fleet: run them with --set fidelity=full")
        raise DmsimError(f"--pcap and --trace follow one model, and {part}")
    fidelity = FidelityTally(data) if sampled else None
    units = plan_units(scenario)
    progress = progress or Progress(len(units), unit_devices(data, units), force=False)
    started, t0 = _dt.datetime.now(_dt.timezone.utc), time.perf_counter()
    status, error, events = "complete", None, 0
    network: dict[str, dict] = {}
    arrived: dict[tuple[int, int], int] = {}  # (sweep point, replica) -> devices that arrived before duration
    attacks: dict[int, list[dict]] = {}  # attack number -> its outcome in each run
    write_atomic(out_dir / "scenario.yaml", scenario.raw_text)
    table = SessionTable(out_dir / "sessions.csv")
    # The capture follows the first replica of the first sweep point: simulated time restarts
    # with every replica, and a pcap's timestamps should not go back.
    capture = PcapWriter(pcap) if pcap is not None else None
    tracer = DeviceTrace(out_dir / "trace.jsonl", trace) if trace else None
    sms_table = SmsTable(out_dir / "sms.csv") if data.get("smsc") is not None else None
    gc_thresholds = gc.get_threshold()
    gc.set_threshold(*GC_THRESHOLDS)

    def absorb(done: RunOutput) -> None:
        """Add one finished unit's counters to the run folder's totals (and, in a sampled run,
        write its sample and the rows modelled from it)."""
        nonlocal events
        events += done.steps
        key = (done.sweep, done.replica)
        arrived[key] = arrived.get(key, 0) + done.arrived
        if fidelity is not None:
            arrived[key] += _write_sampled(done, points[done.sweep], data["seed"], table, fidelity)
        _add_network_stats(network, done.stats)
        for number, outcome in enumerate(done.outcomes):
            attacks.setdefault(number, []).append({**outcome, "replica": done.replica, "sweep": done.sweep})

    try:
        here = (jobs <= 1 and scheduler == "local") or len(units) == 1 or capture is not None or \
            tracer is not None or data["components"]["esme"]["kind"] != "none"
        if here:
            for unit in units:
                progress.start_run(unit.label(replicas, sweep))
                kept: list = []
                done = _run_here(unit, points[unit.sweep][1], data["seed"], str(out_dir),
                                 kept.append if sampled else table.write, sms_table,
                                 capture if unit.first else None, tracer if unit.first else None, progress, stop,
                                 network)
                done.rows = kept
                absorb(done)
        else:
            executor = make_executor(scheduler, jobs, out_dir, spool=not sampled)
            by_key = {(u.sweep, u.replica, u.shard): u for u in units}
            for done in executor.run([(points[u.sweep][1], data["seed"], u) for u in units], stop):
                unit = by_key[(done.sweep, done.replica, done.shard)]
                progress.start_run(f"{unit.label(replicas, sweep)} done")
                absorb(done)  # first: a sampled run's rows are written with the rows modelled from them
                _write_output(done, table, sms_table)
    except BaseException as exc:
        status = "interrupted"
        error = "KeyboardInterrupt" if isinstance(exc, KeyboardInterrupt) else f"{type(exc).__name__}: {exc}"
        raise
    finally:
        gc.set_threshold(*gc_thresholds)
        progress.finish()
        if capture is not None:
            capture.close()  # also when interrupted: what was captured stays readable
        if tracer is not None:
            tracer.close()
        if sms_table is not None:
            sms_table.close()
        table.close(complete=status == "complete")
        for spool in out_dir.glob(".unit-*"):  # a worker's rows an interruption left unwritten
            spool.unlink(missing_ok=True)
        wall = time.perf_counter() - t0
        summary = summarize(out_dir / "sessions.csv", sweep=sweep,
                            fleet={"size": data["fleet"]["size"], "arrived": arrived})
        summary["status"] = status
        summary["conformance"] = sorted({note for _value, point in points for note in nonconformities(point)})
        for (_value, point), block in zip(points, (summary.get("sweep") or {}).get("points") or []):
            block["conformance"] = nonconformities(point)
        summary["network"] = network
        if capture is not None and capture.gaps:  # what the pcap could not hold is said, never left out quietly
            summary["capture"] = {"pcap": capture.path.name, "gaps": dict(capture.gaps),
                                  "warnings": capture.warnings()}
        if shards > 1:
            summary["shards"] = {"count": shards, "approximation": SHARD_NOTE}
        if fidelity is not None:
            summary["fidelity"] = fidelity.block()
        if data.get("attacks"):
            summary["attacks"] = attack_block(attacks, out_dir / "sessions.csv")
        write_json_atomic(out_dir / "summary.json", summary)
        write_json_atomic(out_dir / "manifest.json", _manifest(scenario, status, error, started, wall, events,
                                                               jobs, scheduler))
        if plots:
            from dmsim.sim.results.plots import plot_run  # matplotlib import is slow: only when plotting
            from dmsim.sim.results.report import write_report
            write_report(out_dir, plot_run(out_dir))
    return RunResult(out_dir, status, summary, wall, events)


def plan_units(scenario: Scenario) -> list[Unit]:
    """Return the units of a run in their serial order: per sweep point, per replica, each shard;
    a sampled run's one unit per replica is its sample, shard 0 of ``every_of`` (sim/model/sampled.py)."""
    data = scenario.data
    sampled = data["fidelity"] == "sampled"
    shards = every_of(data) if sampled else data["shards"]
    return [Unit(sweep_index, replica, shard, shards, sweep_cell(value), sample=sampled)
            for sweep_index, (value, _point) in enumerate(scenario.sweep_points())
            for replica in range(data["replicas"]) for shard in range(1 if sampled else shards)]


def unit_devices(data: dict, units: list[Unit]) -> int:
    """Return the devices one of ``units`` runs (the progress line's size of a run)."""
    return data["fleet"]["size"] // units[0].shards


# A large fleet keeps many long-lived objects (accounts, pending events); with the default
# thresholds the cyclic collector rescans them constantly (about 15 % of a 30k-device run).
GC_THRESHOLDS = (50_000, 20, 100)

SHARD_NOTE = ("each replica's fleet ran as independent shards with the DM server's slots and the SMSC's rates "
              "divided among them; the fleet and its arrival times are the unsharded ones (sim/model/shards.py)")


def _run_here(unit: Unit, point_data: dict, seed: int, out_dir: str, write, sms_table,
              capture, tracer, progress: Progress, stop, network: dict) -> "RunOutput":
    """Run ``unit`` in this process, its rows given to ``write`` as they come; the pcap, the trace and
    a live ESME follow it when given (the first unit)."""
    esme = point_data["components"]["esme"]
    live = unit.first and esme["kind"] == "smpp"
    model = unit.model(point_data, seed, write, out_dir, pcap=capture,
                       env=simpy.rt.RealtimeEnvironment(factor=1 / esme["speed"], strict=False) if live else None)
    if capture is not None or tracer is not None:
        observe(model, ip_capture=IpCapture(capture) if capture is not None else None, trace=tracer)
    if sms_table is not None:
        model.write_sms = sms_table.write
    gateway = _start_gateway(model, esme) if live else None
    try:
        with PacedCollector(then=progress.update) as pace:
            model.run(step_hook=pace, stop=stop)
    finally:
        if gateway is not None:
            gateway.stop()
            network["esme"] = dict(gateway.counts)
        model.close()
    return RunOutput.of(model, [], [])


def _write_sampled(done: "RunOutput", point: tuple, seed: int, table: SessionTable,
                   fidelity: FidelityTally) -> int:
    """Write a sampled run's sample rows, then the rows modelled from them; return how many were modelled."""
    value, point_data = point
    for row in done.rows:
        fidelity.add(row, modelled=False)
    table.write_many(done.rows)
    modelled = 0
    for row in modelled_rows(point_data, seed, done.replica, done.sweep, sweep_cell(value), done.rows):
        fidelity.add(row, modelled=True)
        table.write(row)
        modelled += 1
    done.rows = []
    return modelled


def _write_output(done: "RunOutput", table: SessionTable, sms_table) -> None:
    """Write a worker's rows (in memory, or in its spool files, which are then removed)."""
    for rows, target in ((done.rows, table), (done.sms_rows, sms_table)):
        if target is None:
            continue
        if isinstance(rows, list):
            target.write_many(rows)
        else:
            path, count = rows
            target.append_table(path, count)
            Path(path).unlink()


RUN_FILES = ("sessions.csv", "sms.csv", "summary.json", "manifest.json", "scenario.yaml", "report.html", "trace.jsonl")


def prepare_out_dir(out_dir: Path, *, overwrite: bool) -> None:
    """Make ``out_dir`` ready for a new run: refuse (DmsimError) when it already holds one, unless
    ``overwrite``, which removes that run's files (``RUN_FILES``, the PNGs, ``.part`` leftovers, the
    HSS stores ``hss-*.sqlite*``) and nothing else. A new run never mixes with an old one's plots."""
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise DmsimError(f"--out {out_dir}: not a folder")
    old = [p for p in out_dir.iterdir() if p.is_file() and (p.name in RUN_FILES or p.suffix in (".png", ".part")
                                                             or p.match("hss-*.sqlite*"))]
    if not old:
        return
    if not overwrite:
        raise DmsimError(f"--out {out_dir} already holds a run ({', '.join(sorted(p.name for p in old)[:4])}"
                         f"{', ...' if len(old) > 4 else ''}): choose another folder or pass --overwrite")
    for path in old:
        path.unlink()


def closing_lines(name: str, result: "RunResult") -> tuple[list[str], list[str]]:
    """Return the closing lines of a run (the whole run, then one per sweep point) and its
    warnings (devices that never arrived)."""
    s = result.summary
    lines = [f"{name}: {s['sessions']:,} sessions, {_rate(s)}, {_latencies(s)} ({result.wall_seconds:.1f}s wall, "
             f"{result.events / max(result.wall_seconds, 1e-9):,.0f} events/s)"]
    for point in (s.get("sweep") or {}).get("points", []):
        lines.append(f"  {point.get('label', point.get('value'))}: {point['sessions']:,} sessions, {_rate(point)}, "
                     f"{_latencies(point)}")
    for key, noun in (("per_protocol", "protocol"), ("per_profile", "profile")):
        if len(s.get(key) or {}) > 1:
            for name, block in s[key].items():
                lines.append(f"  {noun} {name}: {block['sessions']:,} sessions, {_rate(block)}, {_latencies(block)}")
    warnings = [f"not conformant: {note}" for note in s.get("conformance") or []]
    if s.get("fidelity"):
        from dmsim.sim.results.report import fidelity_warning
        warnings.append(fidelity_warning(s["fidelity"]))
    fleet = s.get("fleet") or {}
    if fleet.get("not_arrived"):
        warnings.append(f"{fleet['not_arrived']:,} of {fleet['expected']:,} devices ({fleet['runs']} run(s) of "
                        f"{fleet['size']:,}) never arrived before the scenario's duration and have no row; the "
                        f"success rate above covers the {fleet['arrived']:,} that did; over the whole fleet it is "
                        f"{fleet['success_rate_of_fleet']:.3f}")
    warnings += (s.get("capture") or {}).get("warnings", [])
    return lines, warnings


def _rate(block: dict) -> str:
    """Return "success rate 0.912 [0.90, 0.93]" (the interval when there is one)."""
    value = block.get("success_rate")
    text = f"success rate {'-' if value is None else f'{value:.3f}'}"
    est = block.get("success_rate_estimate") or {}
    if est.get("ci95_low") is not None:
        text += f" [{est['ci95_low']:.3f}, {est['ci95_high']:.3f}]"
    return text


def _latencies(block: dict) -> str:
    """Return "latency p50 4.20s p90 9.10s p99 20.00s"."""
    lat = block.get("latency_s") or {}
    fmt = lambda v: "-" if v is None else f"{v:.2f}s"  # noqa: E731
    return "latency " + " ".join(f"{k} {fmt((lat.get(k) or {}).get('value'))}" for k in ("p50", "p90", "p99"))


def sweep_meta(data: dict, values: list) -> dict | None:
    """Return the run's sweep for the summary: ``key`` (the keys joined by ", "), ``keys``, and per
    point its ``value`` (a number, a choice, or {key: value} for a grid) and a readable ``label``."""
    axes = sweep_axes(data)
    if not axes:
        return None
    keys = [key for key, _values in axes]

    def label(value) -> str:
        pairs = value.items() if isinstance(value, dict) else [(keys[0], value)]
        return ", ".join(f"{k}={format_value(v)}" for k, v in pairs)

    return {"key": ", ".join(keys), "keys": keys, "points": [{"value": v, "label": label(v)} for v in values]}


def format_value(value) -> str:
    """Return a sweep value as people write it (0.05, md5, true)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def attack_block(attacks: dict[int, list[dict]], sessions_csv: Path) -> dict:
    """Return summary.json's ``attacks`` block: each attack's verdict over every run
    (``outcome.merge``, the runs kept in ``runs``), and the side effects on the devices no attack
    acted on (``legitimate``) beside the ones attacked (``attacked``): devices, success rate,
    median latency, and the failure reasons."""
    from dmsim.sim.agents.adversary.outcome import merge
    groups: dict[str, list[dict]] = {"legitimate": [], "attacked": []}
    if sessions_csv.exists():
        with open(sessions_csv, newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                groups["attacked" if row.get("attacks") else "legitimate"].append(row)
    return {"outcomes": [{**merge(runs), "runs": runs} for _number, runs in sorted(attacks.items())],
            "side_effects": {name: _group_effects(rows) for name, rows in groups.items()}}


def _group_effects(rows: list[dict]) -> dict:
    ok = [float(r["latency"]) for r in rows if r["outcome"] == "ok" and r["latency"]]
    reasons: dict[str, int] = {}
    for r in rows:
        if r["outcome"] != "ok":
            reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1
    return {"devices": len(rows), "success_rate": (len(ok) / len(rows)) if rows else None,
            "latency_p50": statistics.median(ok) if ok else None,
            "failures": dict(sorted(reasons.items()))}


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
              events: int, jobs: int = 1, scheduler: str = "local") -> dict:
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
        "jobs": jobs,
        "scheduler": scheduler,  # where the units ran; never part of the results (the tables do not depend on it)
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



