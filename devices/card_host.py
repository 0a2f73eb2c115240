"""The device's side of its UICC, over any CardLink (in process, PC/SC, vpcd).

- ICCID: EF_ICCID 2FE2 under the MF (ETSI TS 102 221 §13.2).
- Applications: EF_DIR 2F00 records, template 61 {4F AID, 50 label} (TS 102 221 §13.1).
- IMSI: EF_IMSI 6F07 in ADF.USIM (3GPP TS 31.102 §4.2.2), after VERIFY PIN1 when given.
- AUTHENTICATE in 3G context (TS 31.102 §7.1.2.1): 'DB' RES CK IK [Kc], 'DC' AUTS, or SW 9862.
- DM Bootstrap from the smartcard (OMA-TS-DM_Security §8.1, Appendix H): select the PKCS#15
  application, open a GlobalPlatform SCP03 channel (GPC Amd D §7.1, EXTERNAL AUTHENTICATE P1 =
  33), then EF_ODF -> EF_DODF -> the bootstrap file (PKCS #15 §6.2, §6.7), every command wrapped.

Every refusal raises ``CardError`` naming the command, its C-APDU (as built, before wrapping)
and the SW; undecodable answers raise ``DecodeError``.

Choices where the specs leave room:
- ADF.USIM is found in EF_DIR (first AID with RID A000000087 and application code 1002); a
  card without EF_DIR or without that record is tried with the right-truncated AID
  A0000000871002. The PKCS#15 application the same way (AID A000000063504B43532D3135).
- The secure channel runs on the basic channel: cards/scp03.py builds EXTERNAL AUTHENTICATE
  with CLA 84 (Appendix H's note allows 80..83 for INITIALIZE UPDATE).
- Wrapped commands use GlobalPlatform's proprietary class (00 A4 goes out as 84 A4, as GP
  cards expect); ``SecureChannelLink(..., iso_class=True)`` sends 04 A4 instead.
- In the DODF the bootstrap object is the one whose applicationOID is 2.23.43.7.1 or whose
  application name is "OMA DM" (see cards/uicc_files.py); a DODF with one object needs neither.
- ``read_dm_bootstrap`` ends the session by selecting the PKCS#15 application again (GP ends a
  session when its application is deselected), so the basic channel is plain afterwards.
- A file is read in READ BINARY chunks of up to 256 bytes, its size taken from the FCP (tag
  80); without that tag, until a short chunk or SW 6B00.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Callable, Iterator

from dmsim.cards.apdu_names import ins_name
from dmsim.cards import sw as SW
from dmsim.cards.apdu import build_command
from dmsim.cards.link import CardLink
from dmsim.cards.profile import pin_bytes
from dmsim.cards.scp03 import Scp03Error, Scp03Host, Scp03Keys
from dmsim.cards.uicc_files import DM_BOOTSTRAP_OID, PKCS15_AID, decode_imsi
from dmsim.base.errors import CardError, DecodeError

MF, EF_ICCID, EF_DIR, EF_IMSI, EF_ODF = 0x3F00, 0x2FE2, 0x2F00, 0x6F07, 0x5031
USIM_AID_PREFIX = bytes.fromhex("A0000000871002")   # RID 3GPP + application code USIM (TS 101 220 Annex E)
DM_APPLICATION_NAME = b"OMA DM"
SW_OK, SW_MAC_FAILURE, SW_RECORD_NOT_FOUND, SW_WRONG_P1P2 = 0x9000, 0x9862, 0x6A83, 0x6B00
CHUNK = 256
MAX_RECORDS = 254


# --- commands ----------------------------------------------------------------------------------

def command(link: CardLink, apdu: bytes, ok: tuple[int, ...] = (SW_OK,)) -> tuple[bytes, int]:
    """Return ``(data, sw)`` of ``apdu``; raise CardError when the SW is not one of ``ok``."""
    data, sw = link.transmit(apdu)
    if sw not in ok:
        raise CardError(ins_name(apdu[1]) or f"INS {apdu[1]:02X}", apdu, sw, SW.describe(sw))
    return data, sw


def select_fid(link: CardLink, fid: int, *, fcp: bool = False) -> bytes:
    """Return the FCP of file ``fid`` (empty unless ``fcp``) after selecting it (TS 102 221 §11.1.1)."""
    p2 = 0x04 if fcp else 0x0C
    return command(link, build_command(0x00, 0xA4, 0x00, p2, fid.to_bytes(2, "big"), 256 if fcp else None))[0]


def select_path(link: CardLink, path: bytes, *, fcp: bool = False) -> bytes:
    """Return the FCP (empty unless ``fcp``) of the file a PKCS #15 path names, once selected."""
    if len(path) < 2 or len(path) % 2:
        raise DecodeError("PKCS#15 path", 0, f"{len(path)} bytes", expected="an even number of bytes, at least 2")
    if len(path) == 2:
        return select_fid(link, int.from_bytes(path, "big"), fcp=fcp)
    p1, body = (0x08, path[2:]) if path[:2] == MF.to_bytes(2, "big") else (0x09, path)
    p2 = 0x04 if fcp else 0x0C
    return command(link, build_command(0x00, 0xA4, p1, p2, body, 256 if fcp else None))[0]


def select_aid(link: CardLink, aid: bytes) -> None:
    """Select the application ``aid`` (possibly right-truncated) on the basic channel."""
    command(link, build_command(0x00, 0xA4, 0x04, 0x0C, aid))


def read_binary(link: CardLink, size: int | None) -> bytes:
    """Return the current transparent EF's first ``size`` bytes (the whole file when None)."""
    out = bytearray()
    while size is None or len(out) < size:
        want = CHUNK if size is None else min(CHUNK, size - len(out))
        if len(out) > 0x7FFF:
            raise CardError("READ BINARY", b"", None, f"offset {len(out)} beyond 7FFF")
        apdu = build_command(0x00, 0xB0, len(out) >> 8, len(out) & 0xFF, le=want)
        data, sw = command(link, apdu, (SW_OK, SW_WRONG_P1P2) if size is None else (SW_OK,))
        out += data
        if sw == SW_WRONG_P1P2 or (size is None and len(data) < want):
            break
        if not data:
            raise CardError("READ BINARY", apdu, sw, "no data before the end of the file")
    return bytes(out)


def read_records(link: CardLink) -> Iterator[bytes]:
    """Yield the records of the current linear fixed EF, first to last (TS 102 221 §11.1.5)."""
    for number in range(1, MAX_RECORDS + 1):
        data, sw = command(link, build_command(0x00, 0xB2, number, 0x04, le=256), (SW_OK, SW_RECORD_NOT_FOUND))
        if sw == SW_RECORD_NOT_FOUND:
            return
        yield data


def verify_pin(link: CardLink, pin: str) -> None:
    """Verify PIN1 (key reference 01, TS 102 221 §11.1.9); a wrong PIN raises CardError (63Cx)."""
    command(link, build_command(0x00, 0x20, 0x00, 0x01, pin_bytes(pin)))


# --- BER-TLV (ISO/IEC 8825-1) ------------------------------------------------------------------

def tlvs(data: bytes, what: str = "TLV") -> list[tuple[int, bytes]]:
    """Return the (tag, value) pairs of a run of BER-TLVs; FF/00 padding ends the run."""
    out, i = [], 0
    while i < len(data) and data[i] not in (0x00, 0xFF):
        start, tag = i, data[i]
        i += 1
        if tag & 0x1F == 0x1F:
            if i >= len(data):
                raise DecodeError(what, i, "truncated tag", expected="a second tag byte")
            tag, i = (tag << 8) | data[i], i + 1
        if i >= len(data):
            raise DecodeError(what, i, f"tag {tag:02X} without a length", expected="a length byte")
        n, i = data[i], i + 1
        if n & 0x80:
            k = n & 0x7F
            if not 1 <= k <= 3 or i + k > len(data):
                raise DecodeError(what, i - 1, f"length form {n:02X}", expected="81, 82 or 83 and its bytes")
            n, i = int.from_bytes(data[i:i + k], "big"), i + k
        if i + n > len(data):
            raise DecodeError(what, start, f"tag {tag:02X} needs {n} bytes, {len(data) - i} left",
                              expected="a complete value")
        out.append((tag, bytes(data[i:i + n])))
        i += n
    return out


def first(pairs: list[tuple[int, bytes]], tag: int) -> bytes | None:
    """Return the value of the first of ``pairs`` (as ``tlvs`` returns them) with ``tag``, or None."""
    for t, v in pairs:
        if t == tag:
            return v
    return None


def find(data: bytes, *path: int, what: str = "TLV") -> bytes | None:
    """Return the value at the nested tag ``path`` (first match at each level), or None."""
    for tag in path:
        data = first(tlvs(data, what), tag)
        if data is None:
            return None
    return data


def fcp_size(fcp: bytes) -> int | None:
    """Return the file size in an FCP template (62 {80 size}), or None without it."""
    size = find(fcp, 0x62, 0x80, what="FCP")
    return int.from_bytes(size, "big") if size else None


# --- identities ----------------------------------------------------------------------------------

def decode_iccid(data: bytes) -> str:
    """Return the ICCID digits of EF_ICCID bytes (swapped BCD, F padding)."""
    nibbles = "".join(f"{b & 0x0F:X}{b >> 4:X}" for b in data).rstrip("F")
    if not nibbles.isdigit():
        raise DecodeError("EF_ICCID", 0, f"not BCD digits: {data.hex()}", expected="swapped BCD, F-padded")
    return nibbles


def read_iccid(link: CardLink) -> str:
    """Return the card's ICCID (EF_ICCID, TS 102 221 §13.2)."""
    select_fid(link, MF)
    select_fid(link, EF_ICCID)
    return decode_iccid(read_binary(link, 10))


def applications(link: CardLink) -> list[tuple[bytes, str]]:
    """Return (AID, label) of every application in EF_DIR; empty if the card has no EF_DIR."""
    select_fid(link, MF)
    try:
        select_fid(link, EF_DIR)
    except CardError as exc:
        if exc.sw == SW.FILE_NOT_FOUND.sw:
            return []
        raise
    out = []
    for record in read_records(link):
        template = find(record, 0x61, what="EF_DIR record")
        fields = tlvs(template, "EF_DIR record") if template is not None else []
        aid = first(fields, 0x4F)
        if aid:
            out.append((aid, (first(fields, 0x50) or b"").decode("ascii", "replace")))
    return out


def _select_application(link: CardLink, accept: Callable[[bytes], bool], fallback: bytes) -> bytes:
    """Return the AID selected: the first EF_DIR AID that ``accept``s, else ``fallback``."""
    aid = next((a for a, _ in applications(link) if accept(a)), fallback)
    select_aid(link, aid)
    return aid


def select_usim(link: CardLink) -> bytes:
    """Return the AID of ADF.USIM, selected on the basic channel."""
    return _select_application(link, lambda a: a.startswith(USIM_AID_PREFIX), USIM_AID_PREFIX)


def read_imsi(link: CardLink, *, pin: str | None = None) -> str:
    """Return the IMSI in ADF.USIM's EF_IMSI (TS 31.102 §4.2.2), verifying ``pin`` first if given."""
    select_usim(link)
    if pin is not None:
        verify_pin(link, pin)
    select_fid(link, EF_IMSI)
    data = read_binary(link, 9)
    imsi = decode_imsi(data) if data and data[0] <= 8 else ""
    if not 6 <= len(imsi) <= 15 or not imsi.isdigit():
        raise DecodeError("EF_IMSI", 0, f"no IMSI in {data.hex()}", expected="length 1-8, then swapped BCD digits")
    return imsi


# --- AUTHENTICATE ------------------------------------------------------------------------------

@dataclass(frozen=True)
class AuthResult:
    """AUTHENTICATE's outcome: ``success`` (res, ck, ik, kc if the card gave it), ``sync_failure``
    (auts) or ``mac_failure`` (sw 9862)."""

    outcome: str
    res: bytes = b""
    ck: bytes = b""
    ik: bytes = b""
    kc: bytes | None = None
    auts: bytes = b""
    sw: int = SW_OK

    def to_dict(self) -> dict:
        """Return the result with snake_case keys and lowercase hex bytes (only the fields set)."""
        fields = {"success": ("res", "ck", "ik", "kc"), "sync_failure": ("auts",), "mac_failure": ()}[self.outcome]
        out: dict = {"outcome": self.outcome, "sw": f"{self.sw:04x}"}
        out.update({f: getattr(self, f).hex() for f in fields if getattr(self, f) is not None})
        return out


def _lvs(data: bytes, what: str) -> list[bytes]:
    """Return the length-prefixed values that make up ``data``."""
    out, i = [], 0
    while i < len(data):
        n = data[i]
        if i + 1 + n > len(data):
            raise DecodeError(what, i, f"length {n} runs past the end", expected="complete length-value pairs")
        out.append(data[i + 1:i + 1 + n])
        i += 1 + n
    return out


def parse_auth_response(data: bytes, sw: int) -> AuthResult:
    """Return the AuthResult of an AUTHENTICATE response (TS 31.102 §7.1.2.1)."""
    if sw == SW_MAC_FAILURE:
        return AuthResult("mac_failure", sw=sw)
    if data[:1] == b"\xdb":
        parts = _lvs(data[1:], "AUTHENTICATE response")
        if len(parts) not in (3, 4):
            raise DecodeError("AUTHENTICATE response", 1, f"{len(parts)} values after DB", expected="RES CK IK [Kc]")
        return AuthResult("success", parts[0], parts[1], parts[2], parts[3] if len(parts) == 4 else None, sw=sw)
    if data[:1] == b"\xdc":
        parts = _lvs(data[1:], "AUTHENTICATE response")
        if len(parts) != 1 or len(parts[0]) != 14:
            raise DecodeError("AUTHENTICATE response", 1, "DC without a 14-byte AUTS", expected="DC 0E AUTS")
        return AuthResult("sync_failure", auts=parts[0], sw=sw)
    raise DecodeError("AUTHENTICATE response", 0, f"starts with {data[:1].hex() or 'nothing'}", expected="DB or DC")


def authenticate(link: CardLink, rand: bytes, autn: bytes, *, pin: str | None = None) -> AuthResult:
    """Return the USIM's answer to AUTHENTICATE (3G context) with ``rand`` and ``autn``."""
    if len(rand) != 16 or len(autn) != 16:
        raise DecodeError("RAND/AUTN", 0, f"{len(rand)} and {len(autn)} bytes", expected="16 bytes each")
    select_usim(link)
    if pin is not None:
        verify_pin(link, pin)
    apdu = build_command(0x00, 0x88, 0x00, 0x81, b"\x10" + rand + b"\x10" + autn, 256)
    data, sw = command(link, apdu, (SW_OK, SW_MAC_FAILURE))
    return parse_auth_response(data, sw)


# --- SCP03 and the DM bootstrap -------------------------------------------------------------------

class SecureChannelLink(CardLink):
    """A CardLink whose commands go through an open SCP03 session on ``link``: each plain
    C-APDU is wrapped, sent, and its response checked (R-MAC) and deciphered."""

    def __init__(self, link: CardLink, host: Scp03Host, *, iso_class: bool = False):
        super().__init__(None, link.clock)
        self.link = link
        self.host = host
        self.iso_class = iso_class

    @property
    def security_level(self) -> int:
        """Return the session's security level (EXTERNAL AUTHENTICATE P1)."""
        return self.host.security_level

    @property
    def atr(self) -> bytes:
        """Return the ATR of the card under the channel."""
        return self.link.atr

    def _transmit_raw(self, apdu: bytes) -> bytes:
        plain = apdu if self.iso_class else bytes((apdu[0] | 0x80,)) + apdu[1:]
        name = ins_name(apdu[1]) or f"INS {apdu[1]:02X}"
        try:
            wrapped = self.host.wrap(plain)
        except Scp03Error as exc:
            raise CardError(name, apdu, None, f"cannot wrap: {exc.reason}") from None
        data, sw = self.link.transmit(wrapped)
        try:
            return self.host.unwrap(data + sw.to_bytes(2, "big"))
        except Scp03Error as exc:
            raise CardError(name, apdu, sw, exc.reason) from None


def open_scp03(link: CardLink, keys: Scp03Keys, security_level: int = 0x33,
               host_challenge: bytes | None = None, *, iso_class: bool = False) -> SecureChannelLink:
    """Return a SecureChannelLink after INITIALIZE UPDATE / EXTERNAL AUTHENTICATE on the
    application selected on the basic channel (a random host challenge if none is given)."""
    try:
        host = Scp03Host(keys, host_challenge if host_challenge is not None else os.urandom(8), security_level)
    except Scp03Error as exc:
        raise CardError("INITIALIZE UPDATE", b"", None, exc.reason) from None
    init = host.initialize_update_command()
    data, sw = command(link, init)
    try:
        ext = host.process_initialize_update_response(data + sw.to_bytes(2, "big"))
    except Scp03Error as exc:
        raise CardError("INITIALIZE UPDATE", init, sw, exc.reason) from None
    command(link, ext)
    host.process_external_authenticate_response(b"\x90\x00")
    return SecureChannelLink(link, host, iso_class=iso_class)


def odf_dodf_path(odf: bytes) -> bytes:
    """Return the path of the DODF in EF_ODF (dataObjects A7 {30 {04 path}}, PKCS #15 §6.2)."""
    path = find(odf, 0xA7, 0x30, 0x04, what="EF_ODF")
    if not path:
        raise DecodeError("EF_ODF", 0, "no dataObjects (A7) entry with a path", expected="A7 {30 {04 path}}")
    return path


def dodf_bootstrap_path(dodf: bytes) -> bytes:
    """Return the path of the DM Bootstrap data object in an EF_DODF (PKCS #15 §6.7)."""
    objects = [v for t, v in tlvs(dodf, "EF_DODF") if t == 0x30]
    chosen = None
    for obj in objects:
        attrs = [v for t, v in tlvs(obj, "EF_DODF") if t == 0x30]
        data_attrs = attrs[1] if len(attrs) > 1 else b""
        if find(data_attrs, 0x06, what="EF_DODF") == DM_BOOTSTRAP_OID or \
                find(data_attrs, 0x0C, what="EF_DODF") == DM_APPLICATION_NAME:
            chosen = obj
            break
    if chosen is None and len(objects) == 1:
        chosen = objects[0]
    path = find(chosen, 0xA1, 0x30, 0x04, what="EF_DODF") if chosen is not None else None
    if not path:
        raise DecodeError("EF_DODF", 0, f"no OMA DM data object with a path among {len(objects)}",
                          expected="30 {.., 30 {0C 'OMA DM', 06 2.23.43.7.1}, A1 {30 {04 path}}}")
    return path


def select_pkcs15(link: CardLink) -> bytes:
    """Return the AID of the PKCS#15 application, selected on the basic channel."""
    return _select_application(link, lambda a: a == PKCS15_AID, PKCS15_AID)


def read_pkcs15_bootstrap(link: CardLink) -> bytes:
    """Return the DM Bootstrap by the PKCS#15 flow (EF_ODF, EF_DODF, the data file) on ``link``."""
    odf = read_binary(link, fcp_size(select_fid(link, EF_ODF, fcp=True)))
    dodf = read_binary(link, fcp_size(select_path(link, odf_dodf_path(odf), fcp=True)))
    return read_binary(link, fcp_size(select_path(link, dodf_bootstrap_path(dodf), fcp=True)))


def read_dm_bootstrap(link: CardLink, keys: Scp03Keys | None, *, security_level: int = 0x33,
                      host_challenge: bytes | None = None) -> bytes:
    """Return the DM Bootstrap stored in the card's PKCS#15 application, read inside an SCP03
    channel at ``security_level`` (OMA-TS-DM_Security Appendix H); in the clear if ``keys`` is None."""
    aid = select_pkcs15(link)
    if keys is None:
        return read_pkcs15_bootstrap(link)
    channel = open_scp03(link, keys, security_level, host_challenge)
    try:
        return read_pkcs15_bootstrap(channel)
    finally:
        with contextlib.suppress(CardError):
            select_aid(link, aid)   # selecting the application again ends the session
