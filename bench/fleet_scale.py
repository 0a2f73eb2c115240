"""Benchmark: the quickstart fleet through the bootstrap + DM session slice at 1k, 10k, 100k devices.

Prints, per fleet size: wall seconds, simulated sessions per wall-clock second, simulation events
per second and peak memory per device (peak RSS of a fresh process minus its RSS after imports,
divided by the fleet size). Each size runs in its own process so peaks do not mix.

    .venv/bin/python bench/fleet_scale.py [--sizes 1000,10000,100000] [--scenario scenarios/quickstart.yaml]
                                          [--set 'smsc={submit_rate: 5000, burst: 100}']

With ``smsc`` set, the last columns are SMSC messages delivered per wall-clock second and the
submits the SMSC throttled (the DM server's outbox retries each when a token is due).

Arrivals are scaled with the fleet (Poisson at size/100 devices per second, so every fleet
arrives in about 100 simulated seconds) and one replica runs, without plots.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from dmsim.sim.scenario.format import load_scenario
from dmsim.sim.results.runner import run_scenario
scenario, size, out = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
extra = json.loads(sys.argv[4])
sc = load_scenario(scenario, [f"fleet.size={size}", "replicas=1", "arrival={kind: poisson, rate: %g}" % (size / 100),
                              "duration=3600", *extra])
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
res = run_scenario(sc, out, plots=False)
wall = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
smsc = res.summary["network"].get("smsc", {})
sms = smsc.get("delivered", 0)
print(json.dumps({"size": size, "wall_s": wall, "sessions": res.summary["sessions"], "ok": res.summary["ok"], "sms": sms, "throttled": smsc.get("throttled", 0),
                  "events": res.events, "peak_rss_mib": peak / 1024, "base_rss_mib": base / 1024}))
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--scenario", default="scenarios/quickstart.yaml")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="extra scenario overrides, e.g. --set 'smsc={submit_rate: 5000, burst: 100}'")
    args = ap.parse_args()
    print(f"{'devices':>8} {'wall s':>8} {'sessions/s':>11} {'events/s':>10} {'ok %':>6} {'KiB/device':>11} "
          f"{'peak MiB':>9} {'SMSC msg/s':>11} {'throttled':>10}")
    for size in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            out = subprocess.run([sys.executable, "-c", CHILD, args.scenario, str(size), tmp,
                                  json.dumps(args.overrides)],
                                 capture_output=True, text=True)
        if out.returncode:
            print(out.stderr, file=sys.stderr)
            return 1
        r = json.loads(out.stdout.strip().splitlines()[-1])
        per_dev = (r["peak_rss_mib"] - r["base_rss_mib"]) * 1024 / size
        print(f"{size:>8} {r['wall_s']:>8.1f} {r['sessions'] / r['wall_s']:>11,.0f} {r['events'] / r['wall_s']:>10,.0f} "
              f"{100 * r['ok'] / max(r['sessions'], 1):>6.1f} {per_dev:>11.2f} {r['peak_rss_mib']:>9.0f} "
              f"{r['sms'] / r['wall_s']:>11,.0f} {r['throttled']:>10,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
