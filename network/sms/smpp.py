"""SMPP 3.4 PDU codec (Short Message Peer to Peer Protocol Specification v3.4, Issue 1.2).

Implemented: the PDU header (§3.2), bind_transmitter/receiver/transceiver and their _resp
(§4.1), unbind(_resp) (§4.2), generic_nack (§4.3), submit_sm(_resp) (§4.4), deliver_sm(_resp)
(§4.6), enquire_link(_resp) (§4.11), the TLV format of optional parameters (§3.2.4, §5.3) and
the delivery receipt text of Appendix B. Integers are big-endian; C-Octet Strings end with a NUL
and their maximum sizes in §4 count that NUL.

Each PDU is a frozen dataclass; its body fields are declared once, in field metadata, and one
generic reader/writer walks them. Optional parameters are kept raw, in order, as ``Tlv`` values;
``message_payload`` (0x0424) is read through ``ShortMessagePdu.message``.

Decoding raises DecodeError("smpp", offset, ...) with the offset counted from the first octet
of the PDU (of the body, when decoding a body on its own). Encoding a field that does not fit
raises ProtocolError naming the field. Choices where the spec is silent:
- C-Octet Strings are read as Latin-1, so that any octet decodes (the spec says ASCII).
- A _resp body that is absent altogether decodes to empty strings: §4.4.2 omits the
  submit_sm_resp body when command_status is non-zero, and ESMEs commonly do the same for
  bind_resp and deliver_sm_resp. Encoding omits it in the same case (non-zero status, empty
  fields), so that decode(encode(pdu)) == pdu.
- short_message and message_payload both present is refused (§5.3.2.32 allows one only).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field, fields
from typing import ClassVar

from dmsim.base.errors import DecodeError, ProtocolError

HEADER_LEN = 16

# command_id values (§5.1.2.1)
GENERIC_NACK = 0x80000000
BIND_RECEIVER = 0x00000001
BIND_RECEIVER_RESP = 0x80000001
BIND_TRANSMITTER = 0x00000002
BIND_TRANSMITTER_RESP = 0x80000002
SUBMIT_SM = 0x00000004
SUBMIT_SM_RESP = 0x80000004
DELIVER_SM = 0x00000005
DELIVER_SM_RESP = 0x80000005
UNBIND = 0x00000006
UNBIND_RESP = 0x80000006
BIND_TRANSCEIVER = 0x00000009
BIND_TRANSCEIVER_RESP = 0x80000009
ENQUIRE_LINK = 0x00000015
ENQUIRE_LINK_RESP = 0x80000015

# command_status values (§5.1.3), the ones dmsim sends or names
ESME_ROK = 0x00000000
ESME_RINVMSGLEN = 0x00000001
ESME_RINVCMDLEN = 0x00000002
ESME_RINVCMDID = 0x00000003
ESME_RINVBNDSTS = 0x00000004
ESME_RALYBND = 0x00000005
ESME_RINVREGDLVFLG = 0x00000007
ESME_RSYSERR = 0x00000008
ESME_RINVSRCADR = 0x0000000A
ESME_RINVDSTADR = 0x0000000B
ESME_RINVMSGID = 0x0000000C
ESME_RBINDFAIL = 0x0000000D
ESME_RINVPASWD = 0x0000000E
ESME_RINVSYSID = 0x0000000F
ESME_RMSGQFUL = 0x00000014
ESME_RINVSERTYP = 0x00000015
ESME_RINVESMCLASS = 0x00000043
ESME_RSUBMITFAIL = 0x00000045
ESME_RTHROTTLED = 0x00000058
ESME_RINVOPTPARSTREAM = 0x000000C0
ESME_ROPTPARNOTALLWD = 0x000000C1
ESME_RINVPARLEN = 0x000000C2
ESME_RMISSINGOPTPARAM = 0x000000C3
ESME_RINVOPTPARAMVAL = 0x000000C4
ESME_RDELIVERYFAILURE = 0x000000FE
ESME_RUNKNOWNERR = 0x000000FF

STATUS_NAMES = {value: name for name, value in globals().items() if name.startswith("ESME_R")}

# esm_class bits (§5.2.12)
ESM_CLASS_DELIVERY_RECEIPT = 0x04
ESM_CLASS_UDHI = 0x40

# registered_delivery bits 1..0 (§5.2.17)
REGISTERED_DELIVERY_MASK = 0x03
RECEIPT_ALWAYS = 0x01
RECEIPT_ON_FAILURE = 0x02

INTERFACE_VERSION_34 = 0x34

# optional parameter tags (§5.3.2)
TAG_RECEIPTED_MESSAGE_ID = 0x001E
TAG_SC_INTERFACE_VERSION = 0x0210
TAG_MESSAGE_PAYLOAD = 0x0424
TAG_MESSAGE_STATE = 0x0427

MESSAGE_STATE_DELIVERED = 2  # §5.3.2.35
MESSAGE_STATE_EXPIRED = 3
MESSAGE_STATE_UNDELIVERABLE = 5
MAX_SHORT_MESSAGE = 254      # §5.2.21: sm_length 0..254


@dataclass(frozen=True)
class Tlv:
    """One optional parameter (§3.2.4): its tag and the raw value octets."""

    tag: int
    value: bytes


@dataclass(frozen=True)
class Header:
    """The 16-octet PDU header (§3.2)."""

    command_length: int
    command_id: int
    command_status: int
    sequence_number: int


def _cstr(size: int):
    return field(default="", metadata={"smpp": ("cstr", size)})


def _u8(default: int = 0):
    return field(default=default, metadata={"smpp": ("u8", 1)})


def _time():
    return field(default="", metadata={"smpp": ("time", 17)})


def _octets():
    return field(default=b"", metadata={"smpp": ("sm", MAX_SHORT_MESSAGE)})


@dataclass(frozen=True, kw_only=True)
class Pdu:
    """Base of every PDU: the header's sequence_number and command_status.

    ``tlvs`` is there on the PDUs whose body may end with optional parameters (``HAS_TLVS``).
    """

    sequence: int = 0
    status: int = ESME_ROK

    command_id: ClassVar[int]
    name: ClassVar[str]
    HAS_TLVS: ClassVar[bool] = False
    BODY_OPTIONAL: ClassVar[bool] = False

    @classmethod
    def body_fields(cls) -> list:
        """Return the dataclass fields that are mandatory body parameters, in wire order."""
        return [f for f in fields(cls) if "smpp" in f.metadata]

    def tlv(self, tag: int) -> bytes | None:
        """Return the value of the first optional parameter with ``tag``, or None."""
        for t in getattr(self, "tlvs", ()):
            if t.tag == tag:
                return t.value
        return None


@dataclass(frozen=True, kw_only=True)
class GenericNack(Pdu):
    """generic_nack (§4.3): a PDU that could not be handled at all."""

    command_id: ClassVar[int] = GENERIC_NACK
    name: ClassVar[str] = "generic_nack"


@dataclass(frozen=True, kw_only=True)
class Bind(Pdu):
    """bind_* (§4.1.1, §4.1.3, §4.1.5); the subclass says transmitter, receiver or transceiver."""

    system_id: str = _cstr(16)
    password: str = _cstr(9)
    system_type: str = _cstr(13)
    interface_version: int = _u8(INTERFACE_VERSION_34)
    addr_ton: int = _u8()
    addr_npi: int = _u8()
    address_range: str = _cstr(41)

    mode: ClassVar[str]


@dataclass(frozen=True, kw_only=True)
class BindTransmitter(Bind):
    command_id: ClassVar[int] = BIND_TRANSMITTER
    name: ClassVar[str] = "bind_transmitter"
    mode: ClassVar[str] = "tx"


@dataclass(frozen=True, kw_only=True)
class BindReceiver(Bind):
    command_id: ClassVar[int] = BIND_RECEIVER
    name: ClassVar[str] = "bind_receiver"
    mode: ClassVar[str] = "rx"


@dataclass(frozen=True, kw_only=True)
class BindTransceiver(Bind):
    command_id: ClassVar[int] = BIND_TRANSCEIVER
    name: ClassVar[str] = "bind_transceiver"
    mode: ClassVar[str] = "trx"


@dataclass(frozen=True, kw_only=True)
class BindResp(Pdu):
    """bind_*_resp (§4.1.2, §4.1.4, §4.1.6): the SMSC's system_id, then sc_interface_version."""

    system_id: str = _cstr(16)
    tlvs: tuple[Tlv, ...] = ()

    HAS_TLVS: ClassVar[bool] = True
    BODY_OPTIONAL: ClassVar[bool] = True
    mode: ClassVar[str]


@dataclass(frozen=True, kw_only=True)
class BindTransmitterResp(BindResp):
    command_id: ClassVar[int] = BIND_TRANSMITTER_RESP
    name: ClassVar[str] = "bind_transmitter_resp"
    mode: ClassVar[str] = "tx"


@dataclass(frozen=True, kw_only=True)
class BindReceiverResp(BindResp):
    command_id: ClassVar[int] = BIND_RECEIVER_RESP
    name: ClassVar[str] = "bind_receiver_resp"
    mode: ClassVar[str] = "rx"


@dataclass(frozen=True, kw_only=True)
class BindTransceiverResp(BindResp):
    command_id: ClassVar[int] = BIND_TRANSCEIVER_RESP
    name: ClassVar[str] = "bind_transceiver_resp"
    mode: ClassVar[str] = "trx"


@dataclass(frozen=True, kw_only=True)
class ShortMessagePdu(Pdu):
    """The body shared by submit_sm (§4.4.1) and deliver_sm (§4.6.1)."""

    service_type: str = _cstr(6)
    source_addr_ton: int = _u8()
    source_addr_npi: int = _u8()
    source_addr: str = _cstr(21)
    dest_addr_ton: int = _u8()
    dest_addr_npi: int = _u8()
    destination_addr: str = _cstr(21)
    esm_class: int = _u8()
    protocol_id: int = _u8()
    priority_flag: int = _u8()
    schedule_delivery_time: str = _time()
    validity_period: str = _time()
    registered_delivery: int = _u8()
    replace_if_present_flag: int = _u8()
    data_coding: int = _u8()
    sm_default_msg_id: int = _u8()
    short_message: bytes = _octets()
    tlvs: tuple[Tlv, ...] = ()

    HAS_TLVS: ClassVar[bool] = True

    @property
    def message(self) -> bytes:
        """Return the user data: the message_payload parameter if present, else short_message."""
        payload = self.tlv(TAG_MESSAGE_PAYLOAD)
        return self.short_message if payload is None else payload

    @property
    def udhi(self) -> bool:
        """Return True when the user data starts with a UDH (esm_class bit 6, §5.2.12)."""
        return bool(self.esm_class & ESM_CLASS_UDHI)


@dataclass(frozen=True, kw_only=True)
class SubmitSm(ShortMessagePdu):
    command_id: ClassVar[int] = SUBMIT_SM
    name: ClassVar[str] = "submit_sm"


@dataclass(frozen=True, kw_only=True)
class DeliverSm(ShortMessagePdu):
    command_id: ClassVar[int] = DELIVER_SM
    name: ClassVar[str] = "deliver_sm"


@dataclass(frozen=True, kw_only=True)
class SubmitSmResp(Pdu):
    """submit_sm_resp (§4.4.2): the SMSC's message_id."""

    message_id: str = _cstr(65)

    command_id: ClassVar[int] = SUBMIT_SM_RESP
    name: ClassVar[str] = "submit_sm_resp"
    BODY_OPTIONAL: ClassVar[bool] = True


@dataclass(frozen=True, kw_only=True)
class DeliverSmResp(Pdu):
    """deliver_sm_resp (§4.6.2): message_id, unused (NULL)."""

    message_id: str = _cstr(1)

    command_id: ClassVar[int] = DELIVER_SM_RESP
    name: ClassVar[str] = "deliver_sm_resp"
    BODY_OPTIONAL: ClassVar[bool] = True


@dataclass(frozen=True, kw_only=True)
class Unbind(Pdu):
    command_id: ClassVar[int] = UNBIND
    name: ClassVar[str] = "unbind"


@dataclass(frozen=True, kw_only=True)
class UnbindResp(Pdu):
    command_id: ClassVar[int] = UNBIND_RESP
    name: ClassVar[str] = "unbind_resp"


@dataclass(frozen=True, kw_only=True)
class EnquireLink(Pdu):
    command_id: ClassVar[int] = ENQUIRE_LINK
    name: ClassVar[str] = "enquire_link"


@dataclass(frozen=True, kw_only=True)
class EnquireLinkResp(Pdu):
    command_id: ClassVar[int] = ENQUIRE_LINK_RESP
    name: ClassVar[str] = "enquire_link_resp"


PDU_CLASSES: dict[int, type[Pdu]] = {cls.command_id: cls for cls in (
    GenericNack, BindTransmitter, BindReceiver, BindTransceiver, BindTransmitterResp,
    BindReceiverResp, BindTransceiverResp, SubmitSm, DeliverSm, SubmitSmResp, DeliverSmResp,
    Unbind, UnbindResp, EnquireLink, EnquireLinkResp)}

# The _resp class answering each request, for replies built from a request's command_id.
RESPONSE_CLASSES: dict[int, type[Pdu]] = {cid: PDU_CLASSES[cid | GENERIC_NACK]
                                          for cid in PDU_CLASSES if not cid & GENERIC_NACK}


def command_name(command_id: int) -> str:
    """Return the spec name of a command_id, or its hex value when dmsim does not know it."""
    cls = PDU_CLASSES.get(command_id)
    return cls.name if cls else f"0x{command_id:08x}"


def status_name(status: int) -> str:
    """Return the ESME_R* name of a command_status, or its hex value."""
    return STATUS_NAMES.get(status, f"0x{status:08x}")


# --- encoding -------------------------------------------------------------------------------

def _encode_field(name: str, kind: str, size: int, value) -> bytes:
    if kind == "u8":
        if not isinstance(value, int) or not 0 <= value <= 0xFF:
            raise ProtocolError(f"smpp: {name}={value!r} is not an octet")
        return bytes([value])
    if kind == "sm":
        if not isinstance(value, (bytes, bytearray)) or len(value) > size:
            raise ProtocolError(f"smpp: {name} must be bytes of at most {size} octets "
                                f"(longer data goes in message_payload)")
        return bytes([len(value)]) + bytes(value)
    try:
        raw = value.encode("latin-1")
    except (AttributeError, UnicodeEncodeError):
        raise ProtocolError(f"smpp: {name}={value!r} is not a Latin-1 string") from None
    if b"\0" in raw or len(raw) + 1 > size:
        raise ProtocolError(f"smpp: {name}={value!r} does not fit a C-Octet String of {size} octets")
    if kind == "time" and len(raw) not in (0, 16):
        raise ProtocolError(f"smpp: {name}={value!r} must be empty or 16 characters (§7.1)")
    return raw + b"\0"


def _encode_tlvs(tlvs) -> bytes:
    out = bytearray()
    for t in tlvs:
        if not 0 <= t.tag <= 0xFFFF or len(t.value) > 0xFFFF:
            raise ProtocolError(f"smpp: TLV tag {t.tag:#x} with {len(t.value)} octets does not fit")
        out += struct.pack(">HH", t.tag, len(t.value)) + t.value
    return bytes(out)


def encode_body(pdu: Pdu) -> bytes:
    """Return the body octets of ``pdu`` (everything after the header)."""
    body_fields = pdu.body_fields()
    tlvs = getattr(pdu, "tlvs", ())
    if (pdu.BODY_OPTIONAL and pdu.status != ESME_ROK and not tlvs
            and all(getattr(pdu, f.name) == f.default for f in body_fields)):
        return b""
    if isinstance(pdu, ShortMessagePdu) and pdu.short_message and pdu.tlv(TAG_MESSAGE_PAYLOAD) is not None:
        raise ProtocolError("smpp: short_message and message_payload are both set (§5.3.2.32)")
    out = b"".join(_encode_field(f.name, *f.metadata["smpp"], getattr(pdu, f.name)) for f in body_fields)
    return out + _encode_tlvs(tlvs)


def encode_pdu(pdu: Pdu) -> bytes:
    """Return the whole PDU: header (§3.2) then body."""
    body = encode_body(pdu)
    for name, value in (("sequence", pdu.sequence), ("status", pdu.status)):
        if not isinstance(value, int) or not 0 <= value <= 0xFFFFFFFF:
            raise ProtocolError(f"smpp: {name}={value!r} does not fit 4 octets")
    return struct.pack(">IIII", HEADER_LEN + len(body), pdu.command_id, pdu.status, pdu.sequence) + body


# --- decoding -------------------------------------------------------------------------------

class _Reader:
    """A cursor over a body; errors carry the offset ``base + position``."""

    def __init__(self, data: bytes, base: int):
        self.data, self.base, self.pos = data, base, 0

    def fail(self, at: int, message: str, expected: str = "") -> DecodeError:
        return DecodeError("smpp", self.base + at, message, expected)

    def remaining(self) -> int:
        return len(self.data) - self.pos

    def field(self, name: str, kind: str, size: int):
        start = self.pos
        if kind == "u8":
            if self.remaining() < 1:
                raise self.fail(start, f"{name}: body ends here", "1 octet")
            self.pos += 1
            return self.data[start]
        if kind == "sm":
            length = self.field("sm_length", "u8", 1)
            if length > size:
                raise self.fail(start, f"sm_length {length} is over {size}", f"0..{size}")
            if self.remaining() < length:
                raise self.fail(self.pos, f"short_message: {self.remaining()} octets left, sm_length says {length}",
                                f"{length} octets")
            self.pos += length
            return self.data[start + 1:self.pos]
        end = self.data.find(b"\0", start, start + size)
        if end < 0:
            raise self.fail(start, f"{name}: no NUL within {min(size, self.remaining())} octets",
                            f"a C-Octet String of at most {size} octets")
        text = self.data[start:end].decode("latin-1")
        if kind == "time" and (len(text) not in (0, 16) or (text and text[-1] not in "+-R")):
            raise self.fail(start, f"{name}: {text!r} is not an SMPP time", "empty or YYMMDDhhmmsstnnp (§7.1)")
        self.pos = end + 1
        return text

    def tlvs(self) -> tuple[Tlv, ...]:
        out = []
        while self.remaining():
            start = self.pos
            if self.remaining() < 4:
                raise self.fail(start, f"optional parameter header truncated ({self.remaining()} octets)",
                                "tag and length, 4 octets")
            tag, length = struct.unpack_from(">HH", self.data, start)
            if self.remaining() - 4 < length:
                raise self.fail(start, f"optional parameter {tag:#06x} says {length} octets, "
                                       f"{self.remaining() - 4} left", f"{length} octets of value")
            self.pos = start + 4 + length
            out.append(Tlv(tag, self.data[start + 4:self.pos]))
        return tuple(out)


def decode_body(command_id: int, body: bytes, *, status: int = ESME_ROK, sequence: int = 0,
                base: int = 0) -> Pdu:
    """Return the PDU whose body is ``body``; offsets in errors are counted from ``base``."""
    cls = PDU_CLASSES.get(command_id)
    reader = _Reader(bytes(body), base)
    if cls is None:  # the command_id is not in the body: the error points at its start
        raise DecodeError("smpp", base, f"unknown command_id 0x{command_id:08x}",
                          "a command_id of SMPP 3.4 §5.1.2.1")
    values: dict = {}
    tlv_start = 0
    if not (cls.BODY_OPTIONAL and not body):
        for f in cls.body_fields():
            values[f.name] = reader.field(f.name, *f.metadata["smpp"])
        tlv_start = reader.pos
        if cls.HAS_TLVS:
            values["tlvs"] = reader.tlvs()
        elif reader.remaining():
            raise reader.fail(reader.pos, f"{reader.remaining()} octets after the {cls.name} body",
                              "the end of the PDU")
    pdu = cls(sequence=sequence, status=status, **values)
    if isinstance(pdu, ShortMessagePdu) and pdu.short_message and pdu.tlv(TAG_MESSAGE_PAYLOAD) is not None:
        at = tlv_start
        for t in pdu.tlvs[:[t.tag for t in pdu.tlvs].index(TAG_MESSAGE_PAYLOAD)]:
            at += 4 + len(t.value)
        raise reader.fail(at, "short_message and message_payload are both present", "one of them (§5.3.2.32)")
    return pdu


def decode_header(data: bytes) -> Header:
    """Return the header of the PDU at the start of ``data`` (at least 16 octets)."""
    if len(data) < HEADER_LEN:
        raise DecodeError("smpp", len(data), f"header truncated ({len(data)} octets)", "16 octets")
    header = Header(*struct.unpack_from(">IIII", data, 0))
    if header.command_length < HEADER_LEN:
        raise DecodeError("smpp", 0, f"command_length {header.command_length} is shorter than the header",
                          "at least 16")
    return header


def decode_pdu(data: bytes) -> Pdu:
    """Return the one PDU in ``data``, whose length must be its command_length."""
    header = decode_header(data)
    if len(data) < header.command_length:
        raise DecodeError("smpp", len(data), f"PDU truncated: command_length {header.command_length}, "
                                             f"{len(data)} octets", f"{header.command_length} octets")
    if len(data) > header.command_length:
        raise DecodeError("smpp", header.command_length,
                          f"{len(data) - header.command_length} octets after command_length", "the end of the PDU")
    if header.command_id not in PDU_CLASSES:
        raise DecodeError("smpp", 4, f"unknown command_id 0x{header.command_id:08x}",
                          "a command_id of SMPP 3.4 §5.1.2.1")
    return decode_body(header.command_id, data[HEADER_LEN:], status=header.command_status,
                       sequence=header.sequence_number, base=HEADER_LEN)


# --- delivery receipts (Appendix B) ---------------------------------------------------------

_TEXT_CODINGS = (0x00, 0x01, 0x03)  # SMSC default, IA5, Latin-1: text a receipt may quote


def delivery_receipt(submit: SubmitSm, message_id: str, *, submit_date: str, done_date: str,
                     stat: str = "DELIVRD", err: str = "000", sequence: int = 0) -> DeliverSm:
    """Return the deliver_sm receipt for ``submit`` (Appendix B text, esm_class 0x04).

    Dates are YYMMDDhhmm, given by the caller. The receipt also carries receipted_message_id
    and message_state (§5.3.2.12, §5.3.2.35). Appendix B quotes the first 20 characters of
    the message; a binary message (8-bit/UCS2 coding or a UDH) is not quoted.
    """
    text = b""
    if submit.data_coding in _TEXT_CODINGS and not submit.udhi:
        text = submit.message[:20]
    state = {"DELIVRD": MESSAGE_STATE_DELIVERED, "EXPIRED": MESSAGE_STATE_EXPIRED}.get(stat, MESSAGE_STATE_UNDELIVERABLE)
    body = (f"id:{message_id} sub:001 dlvrd:{'001' if stat == 'DELIVRD' else '000'} "
            f"submit date:{submit_date} done date:{done_date} stat:{stat} err:{err} text:").encode("latin-1")
    return DeliverSm(sequence=sequence, service_type=submit.service_type,
                     source_addr_ton=submit.dest_addr_ton, source_addr_npi=submit.dest_addr_npi,
                     source_addr=submit.destination_addr, dest_addr_ton=submit.source_addr_ton,
                     dest_addr_npi=submit.source_addr_npi, destination_addr=submit.source_addr,
                     esm_class=ESM_CLASS_DELIVERY_RECEIPT, short_message=(body + text)[:MAX_SHORT_MESSAGE],
                     tlvs=(Tlv(TAG_RECEIPTED_MESSAGE_ID, message_id.encode("latin-1") + b"\0"),
                           Tlv(TAG_MESSAGE_STATE, bytes([state]))))


def wants_receipt(registered_delivery: int, delivered: bool) -> bool:
    """Return True when ``registered_delivery`` asks for a receipt of this outcome (§5.2.17)."""
    bits = registered_delivery & REGISTERED_DELIVERY_MASK
    return bits == RECEIPT_ALWAYS or (bits == RECEIPT_ON_FAILURE and not delivered)
