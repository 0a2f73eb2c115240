"""Card profiles: the identities and keys personalised into an emulated UICC, read from YAML.

A profile names the subscriber (IMSI, TS 23.003 §2; IMPI, TS 23.003 §13.3), the Milenage
subscriber key and operator constant (TS 35.206: K, OPc or OP, AMF, SQN), the PINs (TS 102 221
§9: PIN1 with its PUK, ADM1), the GlobalPlatform SCP03 key set (GPC Amd D), the OTA key sets of
TS 102 225 (TAR, KIc/KID and their keys, counter) and the OMA DM bootstrap document stored in
the PKCS#15 application. ``describe_profile_schema()`` prints every key with its default.

The file is checked with dmsim.base.schema: an error names ``file:line``, the key path and what
was expected. Byte values are hex strings (quote them in YAML so that 0012 stays text).

Choices where the specs leave room:
- Only ``imsi``, ``k`` and one of ``opc``/``op`` are required.
- The default ICCID is ``8999`` + the last 14 IMSI digits (zero-padded on the left) + a Luhn
  check digit (ITU-T E.118): 19 digits, distinct for distinct IMSIs of the same length.
- The default IMPI is ``<imsi>@ims.mnc<MNC>.mcc<MCC>.3gppnetwork.org`` (TS 23.003 §13.3), MNC
  of ``mnc_length`` digits, written with 3 digits.
- PINs are ASCII digits padded with FF to 8 bytes (TS 102 221 §9.5.1 coding of PINs); ADM1 is
  4-8 digits coded the same way, or 16 hex digits used as the 8 key bytes.
- ``dm_bootstrap`` is text (stored UTF-8), or ``hex:`` followed by the bytes in hex.
- ``generate_profiles`` draws keys from ``random.Random(seed)``: reproducible test fleets, not
  secret keys.
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from dmsim.base.errors import ScenarioError
from dmsim.base.schema import (REQUIRED, Bool, Field, Int, List, Nullable, Problem, Str, Struct,
                              describe, load_yaml, read_text, validate)


def _hex(n_bytes: tuple[int, ...], what: str) -> Str:
    """Return the type of a hex string of one of the byte lengths ``n_bytes``."""
    alts = "|".join(f"[0-9A-Fa-f]{{{2 * n}}}" for n in n_bytes)
    sizes = " or ".join(f"{2 * n}" for n in n_bytes)
    return Str(pattern=rf"\A(?:{alts})\Z", noun=f"{sizes} hex digits ({what})")


KEY128 = _hex((16,), "16 bytes")
AES_KEY = _hex((16, 24, 32), "an AES key")
OTA_KEY = _hex((16, 24, 32), "a 3DES or AES key")
DIGITS = r"\A[0-9]{%d,%d}\Z"
BOOTSTRAP_PATTERN = r"\A(?:hex:(?:[0-9A-Fa-f]{2})+|(?!hex:)[\s\S]+)\Z"

SCP03 = Struct({
    "kvn": Field(Int(1, 0x7F), 0x30, "Key version number of the key set."),
    "enc": Field(AES_KEY, REQUIRED, "Static ENC key (S-ENC derivation)."),
    "mac": Field(AES_KEY, REQUIRED, "Static MAC key (S-MAC/S-RMAC derivation)."),
    "dek": Field(AES_KEY, REQUIRED, "Data encryption key (key put, sensitive data)."),
}, name="SCP03", doc="A GlobalPlatform SCP03 key set (GPC 2.3 Amendment D).")

OTA = Struct({
    "tar": Field(_hex((3,), "3 bytes"), REQUIRED, "Toolkit Application Reference (TS 101 220 §6)."),
    "kic": Field(Int(0, 255), 0x15, "KIc byte: ciphering algorithm and mode (TS 102 225 §5.1.2)."),
    "kid": Field(Int(0, 255), 0x15, "KID byte: integrity algorithm and mode (TS 102 225 §5.1.3)."),
    "kic_key": Field(OTA_KEY, REQUIRED, "Ciphering key."),
    "kid_key": Field(OTA_KEY, REQUIRED, "Integrity (checksum/CMAC) key."),
    "counter": Field(_hex((5,), "5 bytes"), "0000000000", "Replay counter last accepted (CNTR)."),
}, name="OTA", doc="An OTA key set of TS 102 225 for one TAR.")


def _cross_checks(p: dict) -> Problem | None:
    """Return the first problem: not exactly one of opc and op, or an ICCID failing its Luhn digit."""
    if p["opc"] is not None and p["op"] is not None:
        return Problem(("op",), "write opc or op, not both", "one of opc, op")
    if p["opc"] is None and p["op"] is None:
        return Problem(("opc",), "missing required key 'opc' (or 'op')", "32 hex digits (16 bytes)")
    if p["iccid"] is not None and not luhn_ok(p["iccid"]):
        return Problem(("iccid",), f"'{p['iccid']}' fails the Luhn check digit", "an ICCID with a valid check digit")
    return None


PROFILE_SCHEMA = Struct({
    "iccid": Field(Nullable(Str(pattern=DIGITS % (18, 20), noun="18 to 20 digits")), None,
                   "Card number (ITU-T E.118), with its Luhn check digit; null: 8999 + IMSI digits + check."),
    "imsi": Field(Str(pattern=DIGITS % (6, 15), noun="6 to 15 digits (quote it)"), REQUIRED,
                  "Subscriber identity: MCC, MNC, MSIN (TS 23.003 §2.2)."),
    "mnc_length": Field(Int(2, 3), 2, "Digits of the MNC in the IMSI (EF_AD byte 4, TS 31.102 §4.2.18)."),
    "impi": Field(Nullable(Str(pattern=r"\A[^@\s]+@[^@\s]+\Z", noun="an NAI user@realm")), None,
                  "IMS private identity; null: derived from the IMSI (TS 23.003 §13.3)."),
    "k": Field(KEY128, REQUIRED, "Subscriber key K (TS 35.206)."),
    "opc": Field(Nullable(KEY128), None, "Derived operator constant OPc; write this or op."),
    "op": Field(Nullable(KEY128), None, "Operator constant OP (OPc is computed from K and OP)."),
    "amf": Field(_hex((2,), "2 bytes"), "8000", "Authentication management field."),
    "sqn": Field(_hex((6,), "6 bytes"), "000000000000", "Highest sequence number accepted so far."),
    "pin1": Field(Str(pattern=DIGITS % (4, 8), noun="4 to 8 digits"), "1234", "PIN1 (PIN Appl 1, key reference 01)."),
    "puk1": Field(Str(pattern=DIGITS % (8, 8), noun="8 digits"), "12345678", "PUK of PIN1 (UNBLOCK PIN)."),
    "pin1_enabled": Field(Bool(), True, "Whether PIN1 verification is required."),
    "adm1": Field(Str(pattern=r"\A(?:[0-9]{4,8}|[0-9A-Fa-f]{16})\Z", noun="4 to 8 digits or 16 hex digits"),
                  "88888888", "ADM1 (key reference 0A), needed to update operator files."),
    "scp03": Field(Nullable(SCP03), None, "SCP03 key set; null: the card has none."),
    "ota": Field(List(OTA), [], "OTA key sets, one per TAR (SCP80)."),
    "dm_bootstrap": Field(Nullable(Str(pattern=BOOTSTRAP_PATTERN, noun="text, or hex: and an even number of "
                                                                       "hex digits")), None,
                          "OMA DM bootstrap document in the PKCS#15 application; null: no PKCS#15 application."),
}, name="CARD_PROFILE", doc="The personalisation of one emulated UICC.", rule=_cross_checks)


@dataclass(frozen=True)
class Scp03Keys:
    """An SCP03 key set."""

    kvn: int
    enc: bytes
    mac: bytes
    dek: bytes


@dataclass(frozen=True)
class OtaKeyset:
    """An OTA (TS 102 225) key set for one TAR."""

    tar: bytes
    kic: int
    kid: int
    kic_key: bytes
    kid_key: bytes
    counter: bytes


@dataclass(frozen=True)
class CardProfile:
    """A validated card profile; byte fields are bytes, digit strings stay text."""

    iccid: str
    imsi: str
    mnc_length: int
    impi: str
    k: bytes
    opc: bytes | None
    op: bytes | None
    amf: bytes
    sqn: bytes
    pin1: str
    puk1: str
    pin1_enabled: bool
    adm1: bytes
    scp03: Scp03Keys | None = None
    ota: tuple[OtaKeyset, ...] = ()
    dm_bootstrap: bytes | None = None
    source: str = ""


def luhn_digit(digits: str) -> str:
    """Return the Luhn check digit to append to ``digits``."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return str((10 - total % 10) % 10)


def luhn_ok(number: str) -> bool:
    """Return whether the last digit of ``number`` is its Luhn check digit."""
    return luhn_digit(number[:-1]) == number[-1]


def default_iccid(imsi: str) -> str:
    """Return the ICCID a profile without one gets: ``8999`` + 14 IMSI digits + check digit."""
    body = "8999" + imsi[-14:].rjust(14, "0")
    return body + luhn_digit(body)


def default_impi(imsi: str, mnc_length: int) -> str:
    """Return the IMPI derived from the IMSI, TS 23.003 §13.3."""
    mcc, mnc = imsi[:3], imsi[3:3 + mnc_length]
    return f"{imsi}@ims.mnc{mnc.rjust(3, '0')}.mcc{mcc}.3gppnetwork.org"


def pin_bytes(pin: str) -> bytes:
    """Return a PIN as stored and sent: ASCII digits padded with FF to 8 bytes."""
    return pin.encode("ascii").ljust(8, b"\xff")


def _adm_bytes(text: str) -> bytes:
    return bytes.fromhex(text) if len(text) == 16 and not text.isdigit() else pin_bytes(text)


def _bootstrap_bytes(text: str | None) -> bytes | None:
    if text is None:
        return None
    return bytes.fromhex(text[4:]) if text.startswith("hex:") else text.encode("utf-8")


def _maybe_hex(text: str | None) -> bytes | None:
    return None if text is None else bytes.fromhex(text)


def profile_from_data(data: dict[str, Any], source: str = "") -> CardProfile:
    """Return the ``CardProfile`` of validated data (as ``validate(PROFILE_SCHEMA, ...)`` returns)."""
    imsi = data["imsi"]
    scp = data["scp03"]
    return CardProfile(
        iccid=data["iccid"] or default_iccid(imsi),
        imsi=imsi,
        mnc_length=data["mnc_length"],
        impi=data["impi"] or default_impi(imsi, data["mnc_length"]),
        k=bytes.fromhex(data["k"]),
        opc=_maybe_hex(data["opc"]),
        op=_maybe_hex(data["op"]),
        amf=bytes.fromhex(data["amf"]),
        sqn=bytes.fromhex(data["sqn"]),
        pin1=data["pin1"],
        puk1=data["puk1"],
        pin1_enabled=data["pin1_enabled"],
        adm1=_adm_bytes(data["adm1"]),
        scp03=None if scp is None else Scp03Keys(scp["kvn"], bytes.fromhex(scp["enc"]), bytes.fromhex(scp["mac"]),
                                                 bytes.fromhex(scp["dek"])),
        ota=tuple(OtaKeyset(bytes.fromhex(o["tar"]), o["kic"], o["kid"], bytes.fromhex(o["kic_key"]),
                            bytes.fromhex(o["kid_key"]), bytes.fromhex(o["counter"])) for o in data["ota"]),
        dm_bootstrap=_bootstrap_bytes(data["dm_bootstrap"]),
        source=source,
    )


def parse_profile(text: str, source: str = "<profile>") -> CardProfile:
    """Return the profile in YAML ``text``; errors are ``ScenarioError`` with ``source:line``."""
    raw, locator = load_yaml(text, source)
    if not isinstance(raw, dict):
        raise ScenarioError("a card profile is a mapping of keys, like imsi: and k:", where=locator(()),
                            expected="a mapping")
    return profile_from_data(validate(PROFILE_SCHEMA, raw, (), locator), source)


def load_profile(path: str | Path) -> CardProfile:
    """Return the profile in the YAML file ``path``."""
    path = Path(path)
    text = read_text(path)
    return parse_profile(text, str(path))


def generate_profiles(seed: int, n: int, *, template: CardProfile | None = None,
                      mcc_mnc: str = "00101") -> list[CardProfile]:
    """Return ``n`` profiles with distinct IMSIs, ICCIDs and random K/OPc, reproducible from ``seed``.

    IMSIs are ``mcc_mnc`` + a 10-digit MSIN counting up from a seeded start; the other fields
    (PINs, SCP03, OTA, bootstrap) come from ``template`` (or the defaults)."""
    if not re.fullmatch(r"[0-9]{5,6}", mcc_mnc):
        raise ScenarioError(f"mcc_mnc '{mcc_mnc}' is not 5 or 6 digits", expected="MCC + MNC digits")
    if not 0 <= n <= 10 ** 10:
        raise ScenarioError(f"cannot make {n} distinct profiles", expected="0 to 10^10 profiles")
    rng = random.Random(seed)
    start = rng.randrange(10 ** 10)
    base = template or profile_from_data(validate(PROFILE_SCHEMA, {"imsi": mcc_mnc + "0" * 10, "k": "00" * 16,
                                                                    "opc": "00" * 16}))
    mnc_length = len(mcc_mnc) - 3
    out = []
    for i in range(n):
        imsi = f"{mcc_mnc}{(start + i) % 10 ** 10:010d}"
        out.append(replace(base, imsi=imsi, iccid=default_iccid(imsi), mnc_length=mnc_length,
                           impi=default_impi(imsi, mnc_length), k=rng.randbytes(16), opc=rng.randbytes(16),
                           op=None, source=f"generated(seed={seed}, index={i})"))
    return out


def describe_profile_schema() -> str:
    """Return the card profile format: every key with its type, default and meaning."""
    return describe(PROFILE_SCHEMA)
