"""Benchmark: GBA Push bootstraps per wall-clock second, GBA_ME and GBA_U, at 10k devices.

Runs scenarios/gba_push_bootstrap.yaml with one profile at a time (gba_uicc me, then u) and
prints, per mode: wall seconds, bootstraps (devices whose 3GPP_GBA bootstrap was accepted) per
wall-clock second, the share of sessions ok, and the cost per device of what each bootstrap does
for real: an HSS AV (MILENAGE, SQN committed to SQLite with synchronous=FULL before the AV
leaves), the GPI, the card's AKA through its APDUs (GBA_U: two AUTHENTICATE in GBA context; GBA_ME:
3G AKA and the ME's KDF), DMBIK/DMBEK, AES-CBC + HMAC-SHA-256 over the bootstrap, and the DM
session. Each mode runs in its own process; the HSS store is in the run folder (a temporary one).

    .venv/bin/python bench/gba_push.py [--size 10000] [--modes me,u]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile

CHILD = r"""
import json, sys, time
from pathlib import Path
from dmsim.sim.scenario.format import load_scenario
from dmsim.sim.results.runner import run_scenario
size, mode, out = int(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
sc = load_scenario("scenarios/gba_push_bootstrap.yaml", [
    f"fleet.size={size}", "replicas=1", "arrival={kind: poisson, rate: %g}" % (size / 100), "duration=7200",
    "fleet.profiles=[{name: gba-%s, bootstrap_via: gba_push, gba_uicc: %s, dm_auth: hmac}]" % (mode, mode),
    "server.max_sessions=100000"])
t0 = time.perf_counter()
res = run_scenario(sc, out, plots=False)
wall = time.perf_counter() - t0
upa = res.summary["network"].get("gba.upa", {})
print(json.dumps({"mode": mode, "wall_s": wall, "sessions": res.summary["sessions"], "ok": res.summary["ok"],
                  "bootstraps": upa.get("accepted", 0)}))
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=10000)
    ap.add_argument("--modes", default="me,u")
    args = ap.parse_args()
    print(f"{'mode':>7} {'devices':>8} {'wall s':>8} {'bootstraps/s':>13} {'ok %':>6}")
    for mode in args.modes.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            out = subprocess.run([sys.executable, "-c", CHILD, str(args.size), mode, tmp],
                                 capture_output=True, text=True)
        if out.returncode:
            print(out.stderr, file=sys.stderr)
            return 1
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{'GBA_' + mode.upper():>7} {args.size:>8} {r['wall_s']:>8.1f} {r['bootstraps'] / r['wall_s']:>13.0f} "
              f"{100.0 * r['ok'] / max(1, r['sessions']):>6.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
