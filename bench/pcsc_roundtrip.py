"""Benchmark: APDUs per second in process and through the real PC/SC stack.

The same small card is driven through ``InProcessLink`` and through
pyscard -> pcscd -> vpcd -> ``VpcdBridge`` -> card, and, with ``--delayed-ack``, once more with
TCP_QUICKACK off, to show the ~40 ms stall per APDU it avoids (pcscd writes length and payload in two writes; see the README, real PC/SC stack).

    pcscd -f &        # with vsmartcard-vpcd installed; `./dev test` does this for the tests
    .venv/bin/python bench/pcsc_roundtrip.py [--count 2000] [--delayed-ack]

Figures are wall time (the PC/SC path crosses processes). Without a running pcscd only the
in-process figures are printed.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time

from dmsim.cards.link import CardLink, InProcessLink
from dmsim.sim.real.vpcd import VpcdBridge
from dmsim.base.errors import CardLinkError

READER = "Virtual PCD 00 00"
APDU = bytes.fromhex("00a4000c023f00")   # SELECT MF, no response data


class EchoCard:
    """Answers any C-APDU with its data field and '9000'."""

    atr = bytes.fromhex("3b021450")

    def process(self, apdu: bytes) -> bytes:
        return apdu[5:] + b"\x90\x00"


def measure(link: CardLink, count: int) -> dict:
    """Return APDUs/s and latency percentiles (ms) of ``count`` transmits over ``link``."""
    samples = []
    start = time.perf_counter()
    for _ in range(count):
        link.transmit(APDU)
        samples.append(link.last_latency)
    elapsed = time.perf_counter() - start
    samples.sort()
    return {"apdus_per_s": count / elapsed, "median_ms": statistics.median(samples) * 1e3,
            "p99_ms": samples[min(len(samples) - 1, int(0.99 * len(samples)))] * 1e3}


def through_pcscd(count: int, quickack: bool) -> dict:
    """Return ``measure`` through pcscd with a VpcdBridge serving an EchoCard."""
    from dmsim.sim.real.pcsc_link import wait_for_card

    bridge = VpcdBridge(EchoCard(), quickack=quickack)
    thread = threading.Thread(target=bridge.serve_forever, daemon=True)
    thread.start()
    try:
        with wait_for_card(READER, probe=APDU) as link:
            return measure(link, count)
    finally:
        bridge.stop()
        thread.join(timeout=5)


def show(name: str, r: dict) -> None:
    print(f"{name:<28} {r['apdus_per_s']:>10.0f} APDU/s   median {r['median_ms']:8.3f} ms   p99 {r['p99_ms']:8.3f} ms")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=2000, help="APDUs per measurement")
    ap.add_argument("--delayed-ack", action="store_true", help="also measure with TCP_QUICKACK off (50 APDUs)")
    args = ap.parse_args(argv)

    show("in process", measure(InProcessLink(EchoCard()), args.count * 10))
    try:
        show("pcscd + vpcd (quickack)", through_pcscd(args.count, quickack=True))
        if args.delayed_ack:
            show("pcscd + vpcd (delayed ACK)", through_pcscd(50, quickack=False))
    except CardLinkError as exc:
        print(f"PC/SC path skipped: {exc}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
