"""SMS-DELIVER and SMS-SUBMIT TPDUs: 3GPP TS 23.040 §9.2.2.1 and §9.2.2.2.

Fields follow §9.2.3: TP-MTI, the flag bits of the first octet, TP-OA/TP-DA (address.py),
TP-PID (§9.2.3.9), TP-DCS (TS 23.038 §4), TP-SCTS (§9.2.3.11, kept as its 7 raw octets),
TP-VP (§9.2.3.12), TP-UDL and TP-UD (§9.2.3.16, §9.2.3.24, header in udh.py).

``user_data`` is the TP-UD *after* the user data header. For 8-bit data and UCS2 it is the
octets; for the GSM 7-bit default alphabet it is the unpacked septets (one value 0..127 per
byte), TP-UDL then counts septets and the header is followed by fill bits up to a septet
boundary (§9.2.3.24). Mapping septets to text (TS 23.038 §6.2.1) is left to a later issue.

Choices where the spec leaves room:
- TP-UDHI is derived from ``ies``: a received header with UDHL = 0 decodes to no IEs and
  re-encodes without a header.
- Reserved DCS codings are read as the GSM 7-bit default alphabet (TS 23.038 §4);
  compressed data (DCS bit 5 in groups 00xx/01xx) is counted in octets.
- TP-VPF enhanced and absolute formats are refused on decode (DecodeError); only "none"
  and "relative" are modelled.
- Octets after TP-UD are an error: a simulator of attacks wants to see padding.
- Encoding a value that does not fit raises ProtocolError, as the other dmsim encoders do.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from dmsim.network.sms.address import Address, decode_address
from dmsim.network.memo import Memo
from dmsim.network.sms.udh import InformationElement, encode_udh, read_udh
from dmsim.base.errors import DecodeError, ProtocolError

PID_DEFAULT = 0x00
PID_ME_DATA_DOWNLOAD = 0x7D
PID_USIM_DATA_DOWNLOAD = 0x7F

DCS_8BIT = 0x04          # general data coding, 8-bit data, no message class
DCS_8BIT_CLASS1 = 0xF5   # data coding/message class group: 8-bit, class 1 (ME-specific)
DCS_8BIT_CLASS2 = 0xF6   # 8-bit, class 2 ((U)SIM-specific), with PID 0x7F for data download

MAX_UD_OCTETS = 140
MAX_UD_SEPTETS = 160

MTI_DELIVER = 0b00
MTI_SUBMIT = 0b01
VPF_NONE = 0b00
VPF_RELATIVE = 0b10

_MTI_NAMES_MT = {1: "SMS-SUBMIT-REPORT", 2: "SMS-STATUS-REPORT"}
_MTI_NAMES_MO = {0: "SMS-DELIVER-REPORT", 2: "SMS-COMMAND", 3: "a reserved TP-MTI"}


class Alphabet(Enum):
    """How TP-UD is coded, and so whether TP-UDL counts septets or octets."""

    GSM7 = "gsm7"
    OCTETS = "8bit"
    UCS2 = "ucs2"


# TS 23.038 §4 general data coding, by DCS bits 3..2 (the reserved 11 read as GSM 7-bit).
# A module constant: reading an Enum member costs more than the rest of dcs_alphabet.
_GENERAL_CODING = (Alphabet.GSM7, Alphabet.OCTETS, Alphabet.UCS2, Alphabet.GSM7)


def dcs_alphabet(dcs: int) -> Alphabet:
    """Return the alphabet TP-DCS ``dcs`` selects (TS 23.038 §4)."""
    group = dcs >> 4
    if group <= 0x7:                       # 00xx general, 01xx automatic deletion
        if dcs & 0x20:                     # compressed: TP-UDL counts octets
            return Alphabet.OCTETS
        return _GENERAL_CODING[(dcs >> 2) & 3]
    if group == 0xE:                       # message waiting, store, UCS2
        return Alphabet.UCS2
    if group == 0xF:                       # data coding / message class
        return Alphabet.OCTETS if dcs & 0x04 else Alphabet.GSM7
    return Alphabet.GSM7                   # 1100/1101 message waiting, 10xx reserved


def _check_octet(name: str, value: int) -> None:
    if not 0 <= value <= 0xFF:
        raise ProtocolError(f"{name} {value} is not an octet")


def _encode_ud(dcs: int, ies: tuple[InformationElement, ...], user_data: bytes) -> bytes:
    """Return TP-UDL followed by TP-UD (header, fill bits, data)."""
    header = encode_udh(ies)
    if dcs_alphabet(dcs) is Alphabet.GSM7:
        if any(s > 0x7F for s in user_data):
            raise ProtocolError("7-bit user data holds a value above 0x7F")
        header_septets = (len(header) * 8 + 6) // 7
        udl = header_septets + len(user_data)
        if udl > MAX_UD_SEPTETS:
            raise ProtocolError(f"TP-UDL {udl} septets exceeds {MAX_UD_SEPTETS}")
        bits = int.from_bytes(header, "little")
        for i, septet in enumerate(user_data):
            bits |= septet << (7 * (header_septets + i))
        return bytes([udl]) + bits.to_bytes((udl * 7 + 7) // 8, "little")
    udl = len(header) + len(user_data)
    if udl > MAX_UD_OCTETS:
        raise ProtocolError(f"TP-UDL {udl} octets exceeds {MAX_UD_OCTETS}")
    return bytes([udl]) + header + user_data


def _decode_ud(data: bytes, pos: int, dcs: int,
               udhi: bool) -> tuple[tuple[InformationElement, ...], bytes]:
    """Return the IEs and user data of TP-UDL/TP-UD at ``data[pos]``; the TP-UD must end the PDU."""
    if pos >= len(data):
        raise DecodeError("sms", pos, "TPDU truncated", "TP-UDL")
    udl = data[pos]
    septets = dcs_alphabet(dcs) is Alphabet.GSM7
    limit = MAX_UD_SEPTETS if septets else MAX_UD_OCTETS
    if udl > limit:
        raise DecodeError("sms", pos, f"TP-UDL {udl}", f"at most {limit}")
    n_octets = (udl * 7 + 7) // 8 if septets else udl
    start = pos + 1
    ud = data[start:]
    if len(ud) != n_octets:
        raise DecodeError("sms", start + min(len(ud), n_octets),
                          f"TP-UD has {len(ud)} octets, TP-UDL {udl} needs {n_octets}")
    if not udhi:
        ies, header_octets = (), 0
    else:
        ies, header_octets = read_udh(ud, base=start)
    if not septets:
        return ies, ud[header_octets:]
    header_septets = (header_octets * 8 + 6) // 7
    if header_septets > udl:
        raise DecodeError("sms", pos, f"UDH of {header_septets} septets beyond TP-UDL {udl}")
    bits = int.from_bytes(ud, "little")
    return ies, bytes((bits >> (7 * i)) & 0x7F for i in range(header_septets, udl))


class _UserDataHeader:
    """What SMS-DELIVER and SMS-SUBMIT share about TP-UD: ``ies`` (the UDH) and TP-UDHI."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "ies", tuple(self.ies))

    @property
    def udhi(self) -> bool:
        """Return TP-UDHI: whether TP-UD starts with a header."""
        return bool(self.ies)


@dataclass(frozen=True)
class SmsDeliver(_UserDataHeader):
    """An SMS-DELIVER (SC to MS).

    ``more_messages`` is TP-MMS read the natural way: True when the SC has more messages
    waiting, i.e. the bit is 0. ``status_report`` is TP-SRI, ``loop_prevention`` TP-LP.
    """

    oa: Address
    pid: int = PID_DEFAULT
    dcs: int = DCS_8BIT
    scts: bytes = bytes(7)
    user_data: bytes = b""
    ies: tuple[InformationElement, ...] = field(default=())
    more_messages: bool = False
    loop_prevention: bool = False
    status_report: bool = False
    reply_path: bool = False

    def encode(self) -> bytes:
        """Return the TPDU octets; ProtocolError if a field does not fit."""
        pid, dcs, scts, ies = self.pid, self.dcs, self.scts, self.ies
        _check_octet("TP-PID", pid)
        _check_octet("TP-DCS", dcs)
        if len(scts) != 7:
            raise ProtocolError(f"TP-SCTS has {len(scts)} octets, expected 7")
        first = (MTI_DELIVER | (0 if self.more_messages else 0x04) | self.loop_prevention << 3
                 | self.status_report << 5 | bool(ies) << 6 | self.reply_path << 7)
        return b"".join((bytes((first,)), self.oa.octets, bytes((pid, dcs)), scts,
                         _encode_ud(dcs, ies, self.user_data)))


@dataclass(frozen=True)
class SmsSubmit(_UserDataHeader):
    """An SMS-SUBMIT (MS to SC). ``vp`` is the relative TP-VP octet, or None for no TP-VP.

    ``reject_duplicates`` is TP-RD, ``status_report_request`` TP-SRR, ``mr`` TP-MR.
    """

    da: Address
    pid: int = PID_DEFAULT
    dcs: int = DCS_8BIT
    mr: int = 0
    vp: int | None = None
    user_data: bytes = b""
    ies: tuple[InformationElement, ...] = field(default=())
    reject_duplicates: bool = False
    status_report_request: bool = False
    reply_path: bool = False

    @property
    def vpf(self) -> int:
        """Return TP-VPF: VPF_RELATIVE when ``vp`` is set, else VPF_NONE."""
        return VPF_NONE if self.vp is None else VPF_RELATIVE

    def encode(self) -> bytes:
        """Return the TPDU octets; ProtocolError if a field does not fit."""
        for name, value in (("TP-MR", self.mr), ("TP-PID", self.pid), ("TP-DCS", self.dcs)):
            _check_octet(name, value)
        vp = b""
        if self.vp is not None:
            _check_octet("TP-VP", self.vp)
            vp = bytes([self.vp])
        first = (MTI_SUBMIT | self.reject_duplicates << 2 | self.vpf << 3
                 | self.status_report_request << 5 | self.udhi << 6 | self.reply_path << 7)
        return (bytes([first, self.mr]) + self.da.octets
                + bytes([self.pid, self.dcs]) + vp + _encode_ud(self.dcs, self.ies, self.user_data))


# Fast path, for speed: address fields already decoded -> their Address. A fleet's SMS come from
# a few originators, and an Address is immutable, so one instance serves every TPDU.
_ADDRESSES: Memo[bytes, Address] = Memo(1024)


def _decode_address(data: bytes, offset: int) -> tuple[Address, int]:
    """Return what ``decode_address(data, offset)`` returns, from ``_ADDRESSES`` if there."""
    if offset + 2 <= len(data):
        end = offset + 2 + (data[offset] + 1) // 2
        known = _ADDRESSES.get(data[offset:end]) if end <= len(data) else None
        if known is not None:
            return known, end
    address, end = decode_address(data, offset)
    return _ADDRESSES.remember(data[offset:end], address), end


def _decoded(cls: type, fields: dict[str, object], **more: object) -> object:
    """Return a ``cls`` (SmsDeliver or SmsSubmit) holding ``fields`` and ``more``, filled at once
    as ``copy`` and ``pickle`` restore a frozen dataclass: for speed, as the decoder has read
    every field and ``ies`` is already the tuple __post_init__ would make."""
    tpdu = object.__new__(cls)
    tpdu.__dict__.update(fields, **more)
    return tpdu


def _take(data: bytes, pos: int, n: int, name: str) -> bytes:
    if pos + n > len(data):
        raise DecodeError("sms", pos, f"TPDU truncated in {name}", f"{n} octet(s)")
    return bytes(data[pos:pos + n])


# Fast path, for speed: the octets of an SMS-DELIVER before TP-UDL (first octet, TP-OA, TP-PID,
# TP-DCS, TP-SCTS) already decoded -> the fields they give. The parts of one push share them,
# as do the pushes sent in one second; the values are immutable, and _decoded copies them.
_DELIVER_HEADS: Memo[bytes, dict[str, object]] = Memo(4096)


def _decode_deliver(data: bytes) -> SmsDeliver:
    udl_at = 12 + (data[1] + 1) // 2 if len(data) > 1 else 0  # 1 + TP-OA (2 + digits) + 9
    head = _DELIVER_HEADS.get(data[:udl_at])
    if head is None:
        head = _DELIVER_HEADS.remember(data[:udl_at], _deliver_head(data))
    ies, user_data = _decode_ud(data, udl_at, head["dcs"], bool(data[0] & 0x40))
    return _decoded(SmsDeliver, head, ies=ies, user_data=user_data)


def _deliver_head(data: bytes) -> dict[str, object]:
    """Return the SmsDeliver fields of the octets before TP-UDL (DecodeError if truncated)."""
    first = data[0]
    oa, pos = _decode_address(data, 1)
    pid, dcs = _take(data, pos, 2, "TP-PID/TP-DCS")
    scts = _take(data, pos + 2, 7, "TP-SCTS")
    return {"oa": oa, "pid": pid, "dcs": dcs, "scts": scts, "more_messages": not first & 0x04,
            "loop_prevention": bool(first & 0x08), "status_report": bool(first & 0x20),
            "reply_path": bool(first & 0x80)}


def _decode_submit(data: bytes) -> SmsSubmit:
    first = data[0]
    vpf = (first >> 3) & 0b11
    if vpf not in (VPF_NONE, VPF_RELATIVE):
        raise DecodeError("sms", 0, f"TP-VPF {vpf:02b} (enhanced/absolute) not supported",
                          "none or relative")
    (mr,) = _take(data, 1, 1, "TP-MR")
    da, pos = _decode_address(data, 2)
    pid, dcs = _take(data, pos, 2, "TP-PID/TP-DCS")
    pos += 2
    vp = None
    if vpf == VPF_RELATIVE:
        (vp,) = _take(data, pos, 1, "TP-VP")
        pos += 1
    ies, user_data = _decode_ud(data, pos, dcs, bool(first & 0x40))
    return _decoded(SmsSubmit, {"da": da, "pid": pid, "dcs": dcs, "mr": mr, "vp": vp,
                                "user_data": user_data, "ies": ies,
                                "reject_duplicates": bool(first & 0x04),
                                "status_report_request": bool(first & 0x20),
                                "reply_path": bool(first & 0x80)})


def decode_tpdu(data: bytes, *, mt: bool) -> SmsDeliver | SmsSubmit:
    """Return the SMS-DELIVER (``mt``: SC to MS) or SMS-SUBMIT (MS to SC) in ``data``.

    TP-MTI means different TPDUs per direction (§9.2.3.1). On MT, a reserved TP-MTI (11) is
    read as SMS-DELIVER, as §9.2.3.1 tells the MS to do. Other TPDU types raise DecodeError.
    """
    if not data:
        raise DecodeError("sms", 0, "empty TPDU", "a first octet")
    data = bytes(data)  # hashable slices for _decode_address
    mti = data[0] & 0b11
    if mt and mti in (MTI_DELIVER, 0b11):
        return _decode_deliver(data)
    if not mt and mti == MTI_SUBMIT:
        return _decode_submit(data)
    name = (_MTI_NAMES_MT if mt else _MTI_NAMES_MO)[mti]
    raise DecodeError("sms", 0, f"{name} is not supported",
                      "SMS-DELIVER" if mt else "SMS-SUBMIT")
