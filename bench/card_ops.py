"""Benchmark: the emulated UICC in process — APDUs/s, AUTHENTICATE/s, SCP03 bootstrap reads/s.

    .venv/bin/python bench/card_ops.py [--seconds 2]

Each figure is wall time over ``--seconds`` of repeated operations on one card
(``cards/emulated.py``) through an ``InProcessLink``, with the device's host code
(``devices/card_host.py``). The APDU round trip through pcscd is in ``bench/pcsc_roundtrip.py``.
"""
from __future__ import annotations

import argparse
import time

from dmsim.cards.apdu import build_command
from dmsim.cards.emulated import make_card
from dmsim.cards.link import InProcessLink
from dmsim.cards.milenage import f1, f2345
from dmsim.cards.profile import parse_profile
from dmsim.cards.scp03 import Scp03Keys
from dmsim.devices import card_host as host

KEY = "00112233445566778899AABBCCDDEEFF"
PROFILE = f"""
imsi: "001010123456789"
k: "465B5CE8B199B49FAA5F0A2EE238A6BC"
opc: "CD63CB71954A9F4E48A5994E37A02BAF"
pin1_enabled: false
scp03: {{kvn: 0x30, enc: "{KEY}", mac: "{KEY}", dek: "{KEY}"}}
dm_bootstrap: "{'x' * 600}"
"""
RAND = bytes(range(16))


def rate(label: str, seconds: float, op) -> None:
    """Print how many times per second ``op(i)`` runs."""
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        op(n)
        n += 1
    print(f"{label:<44} {n / (time.perf_counter() - start):>10,.0f} /s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=2.0)
    args = ap.parse_args()
    profile = parse_profile(PROFILE)
    link = InProcessLink(make_card(profile))
    select_mf = build_command(0x00, 0xA4, 0x00, 0x0C, b"\x3f\x00")
    rate("APDU (SELECT MF, in process)", args.seconds, lambda i: link.transmit(select_mf))

    def auth(i: int) -> None:
        sqn = (32 * (i + 1)).to_bytes(6, "big")  # a fresh SEQ each time, IND 0
        ak = f2345(profile.k, profile.opc, RAND)[3]
        autn = bytes(a ^ b for a, b in zip(sqn, ak)) + profile.amf + f1(profile.k, profile.opc, RAND, sqn, profile.amf)
        assert host.authenticate(link, RAND, autn).outcome == "success"

    rate("AUTHENTICATE 3G (incl. SELECT USIM, AuC side)", args.seconds, auth)
    keys = Scp03Keys(bytes.fromhex(KEY), bytes.fromhex(KEY), bytes.fromhex(KEY), 0x30)
    rate("SCP03 open (0x33) + read DM bootstrap", args.seconds,
         lambda i: host.read_dm_bootstrap(link, keys, host_challenge=bytes(8)))


if __name__ == "__main__":
    main()
