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

Structure and content are apart: a ``Template`` is a file tree (FIDs, names, structures, access
rules, record sizes and counts, SFIs, AIDs) built once and shared by every card of its layout;
it never changes and holds no card's data. What a card holds is its own list of contents, one
per EF (``EF.slot`` indexes it): a transparent EF's ``bytes``, a linear fixed EF's ``tuple`` of
records. Contents are immutable: a write puts a new value in that card's list (``Contents``),
so no card can see another's writes. Each EF declares what a new card holds (``initial``):
fixed content, or a function of the card's profile (the IMSI, say) that gives it. The tree's
parent links live in the shared template only, so a card and its contents form no reference
cycle.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Union

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


Content = Union[bytes, tuple]
"""What a card holds in one EF: a transparent EF's bytes, or a linear fixed EF's records (a tuple of bytes)."""
Initial = Union[Content, Callable[[Any], Content]]
"""What a new card holds in an EF: fixed content, or a function of the card's profile returning it."""


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
    """An elementary file: transparent, or linear fixed with ``record_count`` records of
    ``record_size`` bytes; ``initial`` is what a new card holds in it, ``slot`` where a card keeps
    its content (set by ``Template``)."""

    structure: str = TRANSPARENT
    initial: Initial = b""
    record_size: int = 0
    record_count: int = 0
    access: Access = Access()
    sfi: int | None = None
    slot: int = -1

    def first_content(self, profile: Any) -> Content:
        """Return what a new card of ``profile`` holds in this EF (linear fixed: records padded with FF)."""
        if not callable(self.initial):
            return self.initial
        content = self.initial(profile)
        if self.structure == TRANSPARENT:
            return bytes(content)
        return padded_records(self.name, content, self.record_size)


@dataclass(eq=False)
class DF(File):
    """A dedicated file; with an ``aid`` it is an ADF (an application's root)."""

    children: list[File] = field(default_factory=list)
    aid: bytes | None = None
    by_fid: dict[int, File] = field(default_factory=dict, repr=False)
    by_sfi: dict[int, EF] = field(default_factory=dict, repr=False)

    def add(self, *files: File) -> DF:
        """Add ``files`` as children and return self (the first child with a FID or SFI is the one found by it)."""
        for f in files:
            f.parent = self
            self.children.append(f)
            if f.fid is not None:
                self.by_fid.setdefault(f.fid, f)
            if isinstance(f, EF) and f.sfi is not None:
                self.by_sfi.setdefault(f.sfi, f)
        return self

    def child(self, fid: int) -> File | None:
        """Return the child with ``fid``, if any."""
        return self.by_fid.get(fid)


def padded_records(name: str, records, record_size: int) -> tuple[bytes, ...]:
    """Return ``records`` each padded with FF to ``record_size`` (ProtocolError if one is longer)."""
    out = []
    for r in records:
        if len(r) > record_size:
            raise ProtocolError(f"{name}: a record of {len(r)} bytes exceeds the record size {record_size}")
        out.append(bytes(r) + b"\xff" * (record_size - len(r)))
    return tuple(out)


def transparent(fid: int, name: str, data: Initial, access: Access = Access(), sfi: int | None = None) -> EF:
    """Return a transparent EF holding ``data`` (bytes, or a function of the profile returning them)."""
    return EF(fid, name, structure=TRANSPARENT, initial=data if callable(data) else bytes(data), access=access,
              sfi=sfi)


def linear_fixed(fid: int, name: str, records: Initial, record_size: int, access: Access = Access(),
                 sfi: int | None = None, *, count: int | None = None) -> EF:
    """Return a linear fixed EF; each record is padded with FF to ``record_size``. ``records`` is a
    list, or a function of the profile returning ``count`` records."""
    n = len(records) if count is None else count
    if not 1 <= record_size <= 255 or not 1 <= n <= 254:
        raise ProtocolError(f"{name}: {n} records of {record_size} bytes (1-254 records of 1-255)")
    initial = records if callable(records) else padded_records(name, records, record_size)
    return EF(fid, name, structure=LINEAR_FIXED, initial=initial, record_size=record_size, record_count=n,
              access=access, sfi=sfi)


class Template:
    """A shared file tree: the MF, its ADFs in EF_DIR order, and its EFs by slot."""

    __slots__ = ("mf", "applications", "efs", "_fixed", "_personal")

    def __init__(self, mf: DF, applications: list[DF]):
        self.mf = mf
        self.applications = tuple(applications)
        self.efs = tuple(f for f in walk(mf) if isinstance(f, EF))
        for slot, ef in enumerate(self.efs):
            ef.slot = slot
        self._fixed = [None if callable(ef.initial) else ef.initial for ef in self.efs]
        self._personal = tuple(ef for ef in self.efs if callable(ef.initial))

    def contents(self, profile: Any) -> "Contents":
        """Return the contents of a new card of ``profile``: the fixed ones shared (they are
        immutable), the personal ones made from the profile."""
        contents = Contents(self._fixed)
        for ef in self._personal:
            contents[ef.slot] = ef.first_content(profile)
        return contents

    def size(self, f: File, contents: "Contents") -> int:
        """Return the size of ``f`` on the card holding ``contents``: an EF's bytes, a DF's sum of what it holds."""
        if isinstance(f, EF):
            return len(contents[f.slot]) if f.structure == TRANSPARENT else f.record_size * f.record_count
        assert isinstance(f, DF)
        return sum(self.size(c, contents) for c in f.children)


class Contents(list):
    """One card's EF contents, by slot: immutable values, replaced on a write (never changed in place)."""

    __slots__ = ()

    def update_binary(self, ef: EF, offset: int, data: bytes) -> None:
        """Write ``data`` at ``offset`` of transparent ``ef`` (the caller checked it fits)."""
        old = self[ef.slot]
        self[ef.slot] = old[:offset] + bytes(data) + old[offset + len(data):]

    def update_record(self, ef: EF, number: int, data: bytes) -> None:
        """Replace record ``number`` (1-based) of linear fixed ``ef`` with ``data`` (of its record size)."""
        old = self[ef.slot]
        self[ef.slot] = old[:number - 1] + (bytes(data),) + old[number:]


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
    return b"\x42\x21" + f.record_size.to_bytes(2, "big") + bytes((f.record_count,))


def pin_status_template(pin1_enabled: bool) -> bytes:
    """Return the PIN status template DO (C6) of a DF/ADF, TS 102 221 §9.5.2."""
    ps = 0x40 | (0x80 if pin1_enabled else 0)
    return tlv(0xC6, tlv(0x90, bytes((ps,))) + tlv(0x95, b"\x08") + tlv(0x83, b"\x01")
               + tlv(0x83, b"\x0a"))


def fcp(f: File, size: int, *, pin1_enabled: bool = True) -> bytes:
    """Return the FCP template (62) that SELECT returns for ``f`` of ``size`` bytes (a DF: the sum of
    what it holds), TS 102 221 §11.1.1.3."""
    body = tlv(0x82, file_descriptor(f))
    if f.fid is not None:
        body += tlv(0x83, f.fid.to_bytes(2, "big"))
    if isinstance(f, DF) and f.aid is not None:
        body += tlv(0x84, f.aid)
    body += tlv(0x8A, bytes((LIFE_CYCLE_OPERATIONAL_ACTIVATED,))) + security_attributes(f)
    if isinstance(f, DF):
        body += pin_status_template(pin1_enabled) + tlv(0x81, min(size, 0xFFFF).to_bytes(2, "big"))
    else:
        assert isinstance(f, EF)
        body += tlv(0x80, min(size, 0xFFFF).to_bytes(2, "big"))
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
