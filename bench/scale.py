"""Benchmark: fleets of 10k, 100k and 1M devices through the quickstart, the TLS-PSK and the
SMSC-throttled scenarios, with full fidelity (real bytes and crypto for every device); issue 17.

    .venv/bin/python bench/scale.py [--sizes 10000,100000,1000000] [--scenarios quickstart,tls-psk,smsc-throttled]
                                    [--shards N] [--profile-rate HZ] [--no-profile] [--out DIR]

Each (scenario, size) runs as ``--shards`` shards (default: every core; ``sim/model/shards.py``),
each shard in a process of its own, all at once, so the wall time is the fleet's on this machine.
The load scales with the fleet: Poisson arrivals at size/100 per second (every fleet arrives in
about 100 simulated seconds), ``server.max_sessions`` size/10 (the quickstart's load per slot),
and in the throttled scenario an SMSC that accepts half the messages the fleet offers
(``submit_rate`` size/20, burst 100) so its outbox holds a backlog. Per run it prints and writes
(``DIR/scale.json``):

* sessions per wall second, µs of CPU per device (every shard's user + system time), KiB per
  device (each shard's peak RSS above its RSS before the run, summed) and KiB per finished device
  still held when the run ends (RSS then, after a full collection, above the start);
* the engine overhead ratio: µs per device in SimPy's own frames (from the profile) over the same
  number of events in a bare SimPy model (``scale_floors.bare_simpy_us_per_event``);
* the protocol overhead ratio: CPU per device over the floor of the crypto and codec calls one
  device makes, each timed alone (``scale_floors.protocol_floor``);
* the per-device budget: µs per component (py-spy samples attributed to the innermost frame of a
  known component; the cyclic GC timed through ``gc.callbacks``) against the floors of the
  ≈560 µs budget of issue 17. py-spy sees Python frames only: a hash or HMAC computed in C counts
  for the Python function that called it (``hmac.py``'s frames count as crypto, a ``hashlib.md5``
  call in ``network/dm/auth.py`` as DM logic); the protocol floor above counts the C time itself.

The py-spy profile (raw, one stack and count per line, for flamegraph.pl or speedscope) of each
shard of the largest run of every scenario is kept beside the JSON (``DIR/profile-*.txt``).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import scale_floors  # noqa: E402

SCENARIOS = {
    "quickstart": ("scenarios/quickstart.yaml", []),
    "tls-psk": ("scenarios/dm_session_tls_psk.yaml", []),
    "smsc-throttled": ("scenarios/quickstart.yaml", ["smsc={submit_rate: %(half)g, burst: 100}"]),
}

# component -> (floor µs/device from issue 17's ≈560 µs budget, path patterns of its frames)
COMPONENTS = {
    "SimPy": (80, ("/simpy/",)),
    "engine glue + link": (60, ("/sim/links/", "/sim/model/", "/sim/agents/")),
    "SMS PDUs": (90, ("/network/sms/", "/devices/sms_pp.py")),
    "WBXML": (80, ("/network/dm/wbxml.py", "/network/dm/codepages.py")),
    "TLS": (0, ("/network/dm/tls", "/mbedtls/")),
    "crypto": (12, ("/hmac.py", "/hashlib.py", "/cryptography/", "/cards/milenage.py")),
    "DM tree": (30, ("/devices/dm_tree.py",)),
    "card": (60, ("/cards/", "/devices/card_host.py")),
    "results": (15, ("/sim/results/",)),
    "ElementTree + DM logic": (130, ("/xml/etree/", "/network/dm/", "/devices/", "/network/gba/")),
}
GC_FLOOR = 0

CHILD = r"""
import gc, json, os, resource, sys, time
from pathlib import Path
from dmsim.sim.scenario.format import load_scenario
from dmsim.sim.results.executors import Unit, run_unit
scenario, shard, shards, spool = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
sc = load_scenario(scenario, json.loads(sys.argv[5]))

def rss_kib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1024

gc_time, gc_started = [0.0], [0.0]
def on_gc(phase, info):
    if phase == "start":
        gc_started[0] = time.perf_counter()
    else:
        gc_time[0] += time.perf_counter() - gc_started[0]
gc.callbacks.append(on_gc)
gc.set_threshold(50_000, 20, 100)  # the runner's thresholds
gc.collect()
base = rss_kib()
cpu0, t0 = time.process_time(), time.perf_counter()
out = run_unit(sc.data, sc.data["seed"], Unit(0, 0, shard, shards, ""), spool, None)
wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
gc.callbacks.remove(on_gc)  # the collection below is the bench's, not the run's
gc.collect()
held = rss_kib()
ok = sum(1 for line in open(out.rows[0], encoding="utf-8") if ",ok," in line)
print(json.dumps({"shard": shard, "wall_s": wall, "cpu_s": cpu, "gc_s": gc_time[0], "sessions": out.rows[1], "ok": ok,
                  "events": out.steps, "base_kib": base, "peak_kib": peak, "held_kib": held,
                  "tls": out.stats.get("tls", {})}))
"""


def overrides(name: str, size: int, shards: int) -> list[str]:
    """Return the scenario overrides of ``name`` at ``size`` devices (see the module)."""
    extra = [x % {"half": size / 20} for x in SCENARIOS[name][1]]
    return [f"fleet.size={size}", "replicas=1", f"shards={shards}", "duration=3600",
            "arrival={kind: poisson, rate: %g}" % (size / 100), f"server.max_sessions={max(200, size // 10)}",
            *extra]


def run_point(name: str, size: int, shards: int, profile_dir: Path | None, rate: int) -> dict:
    """Run the ``shards`` shards of one point at once; return the merged measures."""
    path, _ = SCENARIOS[name]
    with tempfile.TemporaryDirectory() as spool:
        procs = []
        for shard in range(shards):
            cmd = [sys.executable, "-c", CHILD, path, str(shard), str(shards), spool,
                   json.dumps(overrides(name, size, shards))]
            if profile_dir is not None:
                cmd = [shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy"), "record", "--nonblocking",
                       "-r", str(rate), "-f", "raw", "-o", str(profile_dir / f"profile-{name}-{size}-shard{shard}.txt"),
                       "--", *cmd]
            procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        shards_out = []
        for proc in procs:
            stdout, stderr = proc.communicate()
            if proc.returncode:
                raise SystemExit(f"{name} {size}: a shard failed:\n{stderr[-3000:]}")
            shards_out.append(json.loads([line for line in stdout.splitlines() if line.startswith("{")][-1]))
    sessions = sum(s["sessions"] for s in shards_out)
    wall = max(s["wall_s"] for s in shards_out)
    cpu = sum(s["cpu_s"] for s in shards_out)
    return {"scenario": name, "size": size, "shards": shards, "wall_s": wall, "sessions": sessions,
            "ok": sum(s["ok"] for s in shards_out), "sessions_per_s": sessions / wall,
            "cpu_us_per_device": cpu * 1e6 / sessions, "gc_us_per_device": sum(s["gc_s"] for s in shards_out) * 1e6 / sessions,
            "events_per_device": sum(s["events"] for s in shards_out) / sessions,
            "kib_per_device": sum(s["peak_kib"] - s["base_kib"] for s in shards_out) / sessions,
            "held_kib_per_device": sum(max(0.0, s["held_kib"] - s["base_kib"]) for s in shards_out) / sessions,
            "peak_rss_mib": sum(s["peak_kib"] for s in shards_out) / 1024,
            "tls_handshakes": sum(s["tls"].get("handshakes", 0) for s in shards_out), "per_shard": shards_out}


_FRAME = re.compile(r"\((?P<file>[^:()]*):\d+\)$")


def _samples(profile_files: list[Path]):
    """Yield (frames, count) of each stack of py-spy raw profiles taken inside the run: start-up and
    imports are not in the CPU measured, and a paced collection is GC time (measured through
    gc.callbacks)."""
    for path in profile_files:
        for line in path.read_text().splitlines():
            stack, _, n = line.rpartition(" ")
            if not n.isdigit() or "run_unit" not in stack:
                continue
            frames = stack.split(";")
            if "PacedCollector.__call__" not in frames[-1]:
                yield frames, int(n)


def components(profile_files: list[Path]) -> dict[str, float]:
    """Return each component's share of the samples of py-spy raw profiles (innermost known frame)."""
    counts: dict[str, int] = {}
    for frames, n in _samples(profile_files):
        name = _component(frames)
        counts[name] = counts.get(name, 0) + n
    total = sum(counts.values())
    return {name: c / total for name, c in counts.items()} if total else {}


def _component(frames: list[str]) -> str:
    for frame in reversed(frames):
        m = _FRAME.search(frame)
        if not m:
            continue
        file = "/" + m.group("file")  # py-spy names files relative to their sys.path entry
        for name, (_floor, patterns) in COMPONENTS.items():
            if any(p in file for p in patterns):
                return name
    return "other (stdlib)"


def top_functions(profile_files: list[Path], count: int = 40) -> list[tuple[float, str, str]]:
    """Return the ``count`` functions with the most samples at the top of the stack: (share,
    component, "file:function")."""
    counts: dict[tuple[str, str], int] = {}
    for frames, n in _samples(profile_files):
        key = (_component(frames), re.sub(r":\d+\)$", ")", frames[-1]))  # the function, not its line
        counts[key] = counts.get(key, 0) + n
    total = sum(counts.values())
    return [(c / total, comp, frame) for (comp, frame), c in sorted(counts.items(), key=lambda kv: -kv[1])[:count]]


def budget(point: dict, shares: dict[str, float], bare_us: float) -> tuple[list[dict], float]:
    """Return the per-component rows of ``point`` and its engine overhead ratio."""
    cpu, gc_us = point["cpu_us_per_device"], point["gc_us_per_device"]
    rows = []
    for name, share in sorted(shares.items(), key=lambda kv: -kv[1]):
        floor = COMPONENTS[name][0] if name in COMPONENTS else None
        us = share * (cpu - gc_us)
        rows.append({"component": name, "us_per_device": us, "floor_us": floor,
                     "ratio": us / floor if floor else None})
    rows.append({"component": "GC (cyclic collector)", "us_per_device": gc_us, "floor_us": GC_FLOOR, "ratio": None})
    simpy_us = shares.get("SimPy", 0.0) * (cpu - gc_us)
    return rows, simpy_us / (point["events_per_device"] * bare_us)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--shards", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--profile-rate", type=int, default=25, help="py-spy samples per second (default 25)")
    ap.add_argument("--no-profile", action="store_true", help="no py-spy (and no per-component budget)")
    ap.add_argument("--out", type=Path, default=Path("results/bench-scale"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in args.sizes.split(",")]
    bare = scale_floors.bare_simpy_us_per_event()
    report: dict = {"bare_simpy_us_per_event": bare, "shards": args.shards, "points": [], "floors": {}}
    print(f"bare SimPy: {bare:.2f} µs per event; {args.shards} shard(s) per run, one process each\n")
    print(f"{'scenario':<15} {'devices':>9} {'wall s':>8} {'sess/s':>8} {'ok %':>6} {'CPU µs/dev':>11} "
          f"{'events/dev':>10} {'KiB/dev':>8} {'held KiB':>8} {'peak MiB':>9} {'engine x':>8} {'protocol x':>10}")
    for name in args.scenarios.split(","):
        floor = scale_floors.protocol_floor(SCENARIOS[name][0], overrides(name, 300, 1)[5:])
        report["floors"][name] = floor
        for size in sizes:
            profile_dir = None if args.no_profile else args.out
            point = run_point(name, size, args.shards, profile_dir, args.profile_rate)
            if profile_dir is not None:
                files = sorted(args.out.glob(f"profile-{name}-{size}-shard*.txt"))
                point["components"], point["engine_ratio"] = budget(point, components(files), bare)
                if size != max(sizes):
                    for f in files:  # keep the profile of the largest run only
                        f.unlink()
                else:
                    (args.out / f"profile-{name}-{size}-top.txt").write_text("".join(
                        f"{100 * share:5.1f} %  {comp:<26} {frame}\n" for share, comp, frame in top_functions(files)))
            point["protocol_ratio"] = point["cpu_us_per_device"] / floor["floor_us"]
            report["points"].append(point)
            engine = f"{point['engine_ratio']:.2f}" if "engine_ratio" in point else "-"
            print(f"{name:<15} {size:>9,} {point['wall_s']:>8.1f} {point['sessions_per_s']:>8,.0f} "
                  f"{100 * point['ok'] / max(point['sessions'], 1):>6.1f} {point['cpu_us_per_device']:>11,.0f} "
                  f"{point['events_per_device']:>10.1f} {point['kib_per_device']:>8.2f} "
                  f"{point['held_kib_per_device']:>8.2f} {point['peak_rss_mib']:>9,.0f} {engine:>8} "
                  f"{point['protocol_ratio']:>10.1f}", flush=True)
            (args.out / "scale.json").write_text(json.dumps(report, indent=1))
    for point in report["points"]:
        if point["size"] != max(sizes) or "components" not in point:
            continue
        floor = report["floors"][point["scenario"]]
        print(f"\n{point['scenario']} at {point['size']:,} devices: µs per device by component "
              f"(protocol floor {floor['floor_us']:.0f} µs: crypto {floor['crypto_us']:.0f}, WBXML "
              f"{floor['wbxml_us']:.0f}, TLS handshakes {floor['tls_handshake_us']:.0f})")
        for row in point["components"]:
            fl = "-" if row["floor_us"] is None else f"{row['floor_us']:>4}"
            ratio = "" if row["ratio"] is None else f"{row['ratio']:5.1f}x"
            print(f"  {row['component']:<26} {row['us_per_device']:>8.0f} µs   budget {fl:>4}   {ratio}")
    print(f"\nwrote {args.out / 'scale.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
