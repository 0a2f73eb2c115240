"""The UICC file system as data: ETSI TS 102 221 §8 (file types, structures) and §11.1.1.3 (FCP).

Files are declared, not coded: ``DF`` (the MF, a DF or an ADF when it has an ``aid``) holds
children; ``EF`` is transparent (``data``) or linear fixed (``records`` of one ``record_size``).
Each EF carries an ``Access`` (READ and UPDATE conditions). ``fcp()`` returns the FCP template
(tag 62) that SELECT answers with.

Choices where the spec leaves room:
- Access conditions are one of ALW, PIN1, ADM1, NEV. In the FCP they are written in the
  expanded format, tag AB (§11.1.1.4.7.2, ISO 7816-4 §9.3.3): per access mode an AM_DO
  (80, ISO 7816-4 Table 17 bits: 01 READ, 02 UPDATE) followed by its SC_DO: 90 00 (always),
  97 00 (never) or A4 {83 key reference, 95 08} (user authentication with that key). Key
  references per TS 102 221 §9.5.1 Table 9.3: 01 = PIN Appl 1, 0A = ADM1. DFs show one rule
  "all administrative modes (AM 7F) under ADM1".
- Life cycle status (8A) is 05, "operational, activated", for every file.
- File sizes (80 for EFs, 81 total size for DFs) are two bytes; a DF's total size is the sum of
  the sizes of what it holds. The SFI (88) is written only for EFs declared with one.
- The PIN status template (C6, §9.5.2) lists PIN Appl 1 (01) then ADM1 (0A); PS_DO (90) has
  bit b8 for PIN1 enabled and b7 for ADM1 (always enabled).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from dmsim.base.errors import ProtocolError

ALW, PIN1, ADM1, NEV = "ALW", "PIN1", "ADM1", "NEV"
KEY_REFERENCE = {PIN1: 0x01, ADM1: 0x0A}
"""Key reference of each PIN condition (TS 102 221 §9.5.1 Table 9.3)."""

TRANSPARENT, LINEAR_FIXED = "transparent", "linear_fixed"
LIFE_CYCLE_OPERATIONAL_ACTIVATED = 0x05
MF_FID = 0x3F00
CURRENT_ADF_FID = 0x7FFF


def tlv(tag: int, value: bytes) -> bytes:
    """Return one BER-TLV (one- or two-byte tag, definite length in 1-3 bytes)."""
    n = len(value)
    if n < 0x80:
        length = bytes((n,))
    elif n < 0x100:
        length = bytes((0x81, n))
    elif n < 0x10000:
        length = bytes((0x82,)) + n.to_bytes(2, "big")
    else:
        raise ProtocolError(f"TLV value of {n} bytes is too long")
    head = tag.to_bytes(2, "big") if tag > 0xFF else bytes((tag,))
    return head + length + bytes(value)


@dataclass(frozen=True)
class Access:
    """READ and UPDATE access conditions of an EF (each one of ALW, PIN1, ADM1, NEV)."""

    read: str = ALW
    update: str = ADM1


@dataclass(eq=False)
class File:
    """A file: its FID (None for an ADF reached only by AID) and a name for traces."""

    fid: int | None
    name: str
    parent: DF | None = field(default=None, repr=False)

    def path(self) -> list[File]:
        """Return the files from the MF down to this one."""
        out: list[File] = []
        f: File | None = self
        while f is not None:
            out.append(f)
            f = f.parent
        return out[::-1]


@dataclass(eq=False)
class EF(File):
    """An elementary file: transparent (``data``) or linear fixed (``records``)."""

    structure: str = TRANSPARENT
    data: bytearray = field(default_factory=bytearray)
    records: list[bytearray] = field(default_factory=list)
    record_size: int = 0
    access: Access = Access()
    sfi: int | None = None

    @property
    def size(self) -> int:
        """Return the file size in bytes."""
        return len(self.data) if self.structure == TRANSPARENT else self.record_size * len(self.records)


@dataclass(eq=False)
class DF(File):
    """A dedicated file; with an ``aid`` it is an ADF (an application's root)."""

    children: list[File] = field(default_factory=list)
    aid: bytes | None = None

    def add(self, *files: File) -> DF:
        """Add ``files`` as children and return self."""
        for f in files:
            f.parent = self
            self.children.append(f)
        return self

    def child(self, fid: int) -> File | None:
        """Return the child with ``fid``, if any."""
        return next((c for c in self.children if c.fid == fid), None)

    @property
    def size(self) -> int:
        """Return the total size of the files under this DF."""
        return sum(c.size for c in self.children)  # type: ignore[attr-defined]


def transparent(fid: int, name: str, data: bytes, access: Access = Access(), sfi: int | None = None) -> EF:
    """Return a transparent EF holding ``data``."""
    return EF(fid, name, structure=TRANSPARENT, data=bytearray(data), access=access, sfi=sfi)


def linear_fixed(fid: int, name: str, records: list[bytes], record_size: int, access: Access = Access(),
                 sfi: int | None = None) -> EF:
    """Return a linear fixed EF; each record is padded with FF to ``record_size``."""
    if not 1 <= record_size <= 255 or not 1 <= len(records) <= 254:
        raise ProtocolError(f"{name}: {len(records)} records of {record_size} bytes (1-254 records of 1-255)")
    padded = []
    for r in records:
        if len(r) > record_size:
            raise ProtocolError(f"{name}: a record of {len(r)} bytes exceeds the record size {record_size}")
        padded.append(bytearray(bytes(r) + b"\xff" * (record_size - len(r))))
    return EF(fid, name, structure=LINEAR_FIXED, records=padded, record_size=record_size, access=access, sfi=sfi)


def _sc_do(condition: str) -> bytes:
    if condition == ALW:
        return tlv(0x90, b"")
    if condition == NEV:
        return tlv(0x97, b"")
    return tlv(0xA4, tlv(0x83, bytes((KEY_REFERENCE[condition],))) + tlv(0x95, b"\x08"))


def security_attributes(f: File) -> bytes:
    """Return the expanded security attributes (tag AB) of ``f``."""
    if isinstance(f, EF):
        body = tlv(0x80, b"\x01") + _sc_do(f.access.read) + tlv(0x80, b"\x02") + _sc_do(f.access.update)
    else:
        body = tlv(0x80, b"\x7f") + _sc_do(ADM1)
    return tlv(0xAB, body)


def file_descriptor(f: File) -> bytes:
    """Return the value of the file descriptor DO (82), TS 102 221 §11.1.1.4.3."""
    if isinstance(f, DF):
        return b"\x78\x21"
    assert isinstance(f, EF)
    if f.structure == TRANSPARENT:
        return b"\x41\x21"
    return b"\x42\x21" + f.record_size.to_bytes(2, "big") + bytes((len(f.records),))


def pin_status_template(pin1_enabled: bool) -> bytes:
    """Return the PIN status template DO (C6) of a DF/ADF, TS 102 221 §9.5.2."""
    ps = 0x40 | (0x80 if pin1_enabled else 0)
    return tlv(0xC6, tlv(0x90, bytes((ps,))) + tlv(0x95, b"\x08") + tlv(0x83, b"\x01")
               + tlv(0x83, b"\x0a"))


def fcp(f: File, *, pin1_enabled: bool = True) -> bytes:
    """Return the FCP template (62) that SELECT returns for ``f``, TS 102 221 §11.1.1.3."""
    body = tlv(0x82, file_descriptor(f))
    if f.fid is not None:
        body += tlv(0x83, f.fid.to_bytes(2, "big"))
    if isinstance(f, DF) and f.aid is not None:
        body += tlv(0x84, f.aid)
    body += tlv(0x8A, bytes((LIFE_CYCLE_OPERATIONAL_ACTIVATED,))) + security_attributes(f)
    if isinstance(f, DF):
        body += pin_status_template(pin1_enabled) + tlv(0x81, min(f.size, 0xFFFF).to_bytes(2, "big"))
    else:
        assert isinstance(f, EF)
        body += tlv(0x80, min(f.size, 0xFFFF).to_bytes(2, "big"))
        if f.sfi is not None:
            body += tlv(0x88, bytes((f.sfi << 3,)))
    return tlv(0x62, body)


def walk(df: DF):
    """Yield every file under ``df`` (``df`` first, depth first)."""
    yield df
    for c in df.children:
        if isinstance(c, DF):
            yield from walk(c)
        else:
            yield c
