"""Benchmark: DM sessions per wall-clock second inside the simulation, without TLS, over PSK-TLS
and over X.509 TLS (seed 000 §9.2.2; the real Mbed TLS handshake runs in memory per device).

Prints, per TLS mode and fleet size: wall seconds, simulated DM sessions per wall-clock second,
simulation events per second, the share of sessions that succeeded, the mean simulated
handshake time (ClientHello sent to Finished received, link delays included), the mean
simulated session time (first request to close) and the TCP resends of lost TLS flights.

    .venv/bin/python bench/dm_tls.py [--sizes 500,2000] [--modes none,psk,x509]
                                     [--scenario scenarios/dm_session_tls_psk.yaml] [--set KEY=VALUE]

One replica per point, arrivals scaled with the fleet (Poisson at size/50 devices per second, so
every fleet arrives in about 50 simulated seconds). The bootstrap over SMS runs too (it is part
of every session); its cost is the same in all modes except that PSK mode's bootstrap carries
the PSK (a few more SMS segments).
"""
from __future__ import annotations

import argparse
import sys
import time

from dmsim.sim.model.replica import Replica
from dmsim.sim.scenario.format import load_scenario


def run_point(scenario: str, mode: str, size: int, extra: list[str]) -> dict:
    """Return the measures of one replica of ``scenario`` with ``mode`` and ``size`` devices."""
    sc = load_scenario(scenario, [f"fleet.size={size}", "replicas=1", "arrival={kind: poisson, rate: %g}" % (size / 50),
                                  f"components.dm_server.tls.mode={mode}", *extra])
    rows: list[tuple] = []
    model = Replica(sc.data, seed=sc.data["seed"], replica=0, sweep=0, sweep_value=None, write=rows.append)
    t0 = time.perf_counter()
    model.run()
    wall = time.perf_counter() - t0
    ok = [r for r in rows if r[5] == "ok"]
    stats = getattr(model.transport, "stats", {})
    handshakes = stats.get("handshakes", 0)
    return {"sessions": len(rows), "ok": len(ok), "wall": wall, "events": model.steps,
            "handshake_ms": 1000 * stats["handshake_time"] / handshakes if handshakes else None,
            "session_s": sum(r[11] - r[10] for r in ok) / len(ok) if ok else None,
            "resends": stats.get("retransmissions", 0)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="500,2000")
    ap.add_argument("--modes", default="none,psk,x509")
    ap.add_argument("--scenario", default="scenarios/dm_session_tls_psk.yaml")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="extra scenario overrides, e.g. --set links.ip.loss=0.05")
    args = ap.parse_args()
    print(f"{'mode':>5} {'devices':>8} {'wall s':>8} {'sessions/s':>11} {'events/s':>10} {'ok %':>6} "
          f"{'handshake ms':>13} {'session s':>10} {'resends':>8}")
    for mode in args.modes.split(","):
        for size in (int(s) for s in args.sizes.split(",")):
            r = run_point(args.scenario, mode, size, args.overrides)
            hs = "-" if r["handshake_ms"] is None else f"{r['handshake_ms']:.0f}"
            sess = "-" if r["session_s"] is None else f"{r['session_s']:.3f}"
            print(f"{mode:>5} {size:>8} {r['wall']:>8.1f} {r['sessions'] / r['wall']:>11,.0f} "
                  f"{r['events'] / r['wall']:>10,.0f} {100 * r['ok'] / max(r['sessions'], 1):>6.1f} "
                  f"{hs:>13} {sess:>10} {r['resends']:>8,}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
