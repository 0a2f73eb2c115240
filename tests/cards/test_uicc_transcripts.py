"""The emulated UICC answers byte for byte as the reference engine did: seeded APDU sessions
(SELECT by FID/AID/path, STATUS, READ/UPDATE BINARY and RECORD, every PIN command, MANAGE CHANNEL,
GET RESPONSE, AUTHENTICATE, ENVELOPE, SCP03 openings, bad classes and garbage) on cards of several
profiles, compared with the digests recorded from the engine before the file system became a
shared template (tests/vectors/uicc_transcripts.json). Two cards of one profile never see each
other's writes, and a finished card is freed by reference counting alone (no cycles)."""
from __future__ import annotations

import gc
import hashlib
import json
import random
import weakref
from pathlib import Path

import pytest

from dmsim.cards.emulated import make_card
from dmsim.cards.link import InProcessLink
from dmsim.cards.profile import parse_profile, pin_bytes
from dmsim.cards.uicc import Uicc
from dmsim.devices.card_host import read_imsi

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "uicc_transcripts.json"

BASE = """\
imsi: "001010123456789"
iccid: "8999010101234567898"
k: "000102030405060708090A0B0C0D0E0F"
opc: "0F0E0D0C0B0A09080706050403020100"
"""
SCP03 = """\
scp03: {enc: "404142434445464748494A4B4C4D4E4F", mac: "505152535455565758595A5B5C5D5E5F",
        dek: "606162636465666768696A6B6C6D6E6F"}
"""
PROFILES = {
    "plain": BASE,
    "bootstrap": BASE + 'dm_bootstrap: "hello bootstrap"\n' + SCP03,
    "pin_off": BASE + "pin1_enabled: false\n",
    "mnc3": 'imsi: "310410987654321"\nmnc_length: 3\nk: "00112233445566778899AABBCCDDEEFF"\n'
            'op: "CDC202D5123E20F62B6D676AC72CB318"\ndm_bootstrap: "hex:00010203"\n',
}
FIDS = (0x3F00, 0x2FE2, 0x2F00, 0x7F10, 0x6F3C, 0x6F07, 0x6FAD, 0x6FD6, 0x6FD7, 0x6F02, 0x6F03, 0x6F04,
        0x5031, 0x6430, 0x6432, 0x7FFF, 0x1234)
AIDS = ("A0000000871002FFFFFFFF8907090000", "A0000000871004FFFFFFFF8907090000", "A000000063504B43532D3135",
        "A0000000871002", "A0000000871004", "A000000063", "A0000000879999", "")
PATHS = ("3F002FE2", "3F007F106F3C", "7F106F3C", "2F00", "7FFF6F07", "3F007FFF6FAD", "6F3C", "7F10", "",
         "3F00", "6F07", "7F10")


def _hx(*parts: int) -> bytes:
    return bytes(parts)


def _lc(data: bytes) -> bytes:
    return bytes((len(data),)) + data if data else b""


def _command(rng: random.Random) -> bytes:
    """Return one C-APDU drawn from the commands a terminal sends (and some it should not)."""
    cla = rng.choice((0x00,) * 12 + (0x01, 0x02, 0x03, 0x40, 0x04, 0x80, 0xA0, 0x20))
    kind = rng.choice((0, 0, 0, 1, 1, 2, 2, 3, 4, 4, 5, 6, 6, 7, 8, 8, 9, 10, 11, 12, 12, 13, 14, 15, 16))
    le = rng.choice((b"", b"\x00", bytes((rng.randrange(256),))))
    if kind == 0:
        body = rng.choice(FIDS).to_bytes(2, "big")
        return _hx(cla, 0xA4, 0x00, rng.choice((0x04, 0x0C, 0x00, 0x0C, 0x02))) + _lc(body) + le
    if kind == 1:
        aid = bytes.fromhex(rng.choice(AIDS))
        return _hx(cla, 0xA4, 0x04, rng.choice((0x04, 0x0C))) + _lc(aid) + le
    if kind == 2:
        path = bytes.fromhex(rng.choice(PATHS))
        return _hx(cla, 0xA4, rng.choice((0x08, 0x09, 0x03)), rng.choice((0x04, 0x0C))) + _lc(path) + le
    if kind == 3:
        return _hx(cla | 0x80, 0xF2, rng.choice((0, 1, 2, 3)), rng.choice((0, 1, 0x0C, 5))) + le
    if kind == 4:
        p1 = rng.choice((0, 0, 0x80 | rng.randrange(32), rng.randrange(256)))
        return _hx(cla, 0xB0, p1, rng.randrange(0, 40)) + (le or bytes((rng.randrange(1, 40),)))
    if kind == 5:
        data = rng.randbytes(rng.randrange(1, 12))
        return _hx(cla, 0xD6, rng.choice((0, 0, 0x86, 0x87)), rng.randrange(0, 12)) + _lc(data)
    if kind == 6:
        p2 = rng.choice((0x04, 0x02, 0x03, 0x04 | (rng.randrange(32) << 3), 0x05))
        return _hx(cla, 0xB2, rng.randrange(0, 12), p2) + (le or b"\x00")
    if kind == 7:
        size = rng.choice((176, 96, 32, 55, 5))
        return _hx(cla, 0xDC, rng.randrange(0, 12), rng.choice((0x04, 0x02, 0x03))) + _lc(rng.randbytes(size))
    if kind == 8:
        pin = rng.choice((pin_bytes("1234"), pin_bytes("0000"), pin_bytes("88888888"), b""))
        return _hx(cla, 0x20, 0x00, rng.choice((0x01, 0x0A, 0x02))) + _lc(pin)
    if kind == 9:
        old, new = rng.choice((pin_bytes("1234"), pin_bytes("9999"))), rng.choice((pin_bytes("4321"), b"\xff" * 8))
        return _hx(cla, 0x24, 0x00, 0x01) + _lc(old + new)
    if kind == 10:
        return _hx(cla, rng.choice((0x26, 0x28)), 0x00, rng.choice((0x01, 0x0A))) + _lc(
            rng.choice((pin_bytes("1234"), pin_bytes("4321"), pin_bytes("5555"))))
    if kind == 11:
        puk = rng.choice((pin_bytes("12345678"), pin_bytes("00000000")))
        return _hx(cla, 0x2C, 0x00, 0x01) + rng.choice((b"", _lc(puk + pin_bytes("1234"))))
    if kind == 12:
        return _hx(cla, 0x70, rng.choice((0x00, 0x80)), rng.choice((0, 1, 2, 3, 4))) + rng.choice((b"", b"\x01"))
    if kind == 13:
        return _hx(cla, 0xC0, 0x00, 0x00) + bytes((rng.randrange(256),))
    if kind == 14:
        data = b"\x10" + rng.randbytes(16) + b"\x10" + rng.randbytes(16)
        return _hx(cla, 0x88, 0x00, rng.choice((0x81, 0x84, 0x80))) + _lc(data) + rng.choice((b"", b"\x00"))
    if kind == 15:
        return _hx(0x80, rng.choice((0x50, 0xC2, 0x82)), 0x00, 0x00) + _lc(rng.randbytes(rng.randrange(1, 30)))
    return rng.randbytes(rng.randrange(0, 9))


def _session(card, seed: int, n: int = 120) -> bytes:
    """Return the digest of the responses to ``n`` commands of session ``seed`` on ``card``."""
    rng = random.Random(seed)
    digest = hashlib.sha256()
    for i in range(n):
        if rng.random() < 0.03:
            card.reset()
        if i % 40 == 0 and rng.random() < 0.6:
            c_apdu = bytes.fromhex("0020000108") + pin_bytes("1234")
        else:
            c_apdu = _command(rng)
        r_apdu = card.process(c_apdu)
        digest.update(len(c_apdu).to_bytes(2, "big") + c_apdu + len(r_apdu).to_bytes(2, "big") + r_apdu)
    return digest.digest()


def _cards():
    """Yield (name, card factory) of every card shape the vectors cover."""
    for name, text in PROFILES.items():
        profile = parse_profile(text)
        yield f"{name}/uicc", lambda p=profile: Uicc(p)
        yield f"{name}/t0", lambda p=profile: make_card(p)
        yield f"{name}/t1", lambda p=profile: make_card(p, t0=False)


SEEDS = range(12)


def transcripts() -> dict[str, str]:
    """Return {card/seed: digest hex} of every session (what the vectors hold)."""
    out = {}
    for name, factory in _cards():
        for seed in SEEDS:
            out[f"{name}/{seed}"] = _session(factory(), seed).hex()
        card = factory()  # one card, every session in a row: state carried over
        out[f"{name}/all"] = hashlib.sha256(b"".join(_session(card, 100 + s) for s in SEEDS)).hexdigest()
    return out


def test_every_session_answers_as_the_reference_engine():
    want = json.loads(VECTORS.read_text())
    got = transcripts()
    assert sorted(got) == sorted(want)
    assert [k for k in got if got[k] != want[k]] == []


@pytest.mark.parametrize("name", list(PROFILES))
def test_writes_stay_on_their_card(name):
    """UPDATE BINARY / UPDATE RECORD on one card: a second card of the same profile (and a card made
    afterwards) still reads the personalised content."""
    profile = parse_profile(PROFILES[name])
    a, b = make_card(profile), make_card(profile)
    adm = "002000" + "0A08" + pin_bytes("88888888").hex()
    pin = "0020000108" + pin_bytes("1234").hex()
    reads = ["00A4000C023F00", "00B0820000", "00A4000C022F00", "00B2010400", "00A4040C07A0000000871002",
             "00B0870009", "00A4000C026FD7", "00B2020400", "00A4000C027F10", "00A4000C026F3C", "00B2030400"]
    writes = ["00A4000C023F00", "00A4000C022F00", "00DC010420" + "AB" * 32, "00A4040C07A0000000871002",
              "00D6870003" + "0809F1", "00A4000C026FD7", "00DC020460" + "CD" * 96, "00A4000C023F00",
              "00A4000C027F10", "00A4000C026F3C", "00DC0304B0" + "EF" * 176]

    def run(card, apdus):
        return [card.process(bytes.fromhex(h)) for h in [adm, pin] + apdus]

    before = run(b, reads)
    assert all(r[-2:] == b"\x90\x00" for r in run(a, writes)), "the writes succeed"
    after_a = run(a, reads)
    assert after_a != before, "the writer sees its writes"
    assert run(b, reads) == before, "the other card does not"
    assert run(make_card(profile), reads) == before, "nor does a card made afterwards"


def test_a_used_card_is_freed_by_reference_counting():
    """Reading the IMSI leaves no reference cycle: the card, its link and its file contents go
    when the last reference does (no wait for the cyclic garbage collector)."""
    profile = parse_profile(PROFILES["bootstrap"])
    gc.collect()
    gc.disable()
    try:
        card = make_card(profile)
        link = InProcessLink(card, trace=lambda c, r, s: None)
        assert read_imsi(link, pin="1234") == "001010123456789"
        refs = [weakref.ref(card), weakref.ref(link)]
        del card, link
        assert [r() for r in refs] == [None, None]
        assert gc.collect() == 0
    finally:
        gc.enable()


if __name__ == "__main__":  # regenerate the vectors (only from a reference engine)
    VECTORS.write_text(json.dumps(transcripts(), indent=0, sort_keys=True) + "\n")
