"""SMS-STATUS-REPORT TPDU and its time stamps: 3GPP TS 23.040 §9.2.2.3, §9.2.3.11, §9.2.3.15.

Layout (SC to MS): first octet (TP-MTI = 10, TP-MMS, TP-LP, TP-SRQ, TP-UDHI), TP-MR, TP-RA
(address.py), TP-SCTS (7 octets), TP-DT (7 octets), TP-ST, then optionally TP-PI (§9.2.3.27)
and the TP-PID / TP-DCS / TP-UDL+TP-UD it announces. TP-SCTS and TP-DT are kept as their 7 raw
octets, as tpdu.py keeps TP-SCTS; ``encode_timestamp``/``decode_timestamp`` convert them.

Choices where the spec leaves room:
- TP-PI is written only when TP-PID, TP-DCS or TP-UD is present. On decode, TP-PI extension
  octets (bit 7 set) are skipped and reserved bits ignored, as §9.2.3.27 asks of a receiver.
- With TP-UD but no TP-DCS, the user data is read with TP-DCS 0x00 (GSM 7-bit default).
- TP-UDHI set without TP-UD, or octets after the last announced field, are DecodeErrors.
- Time stamps: the two-digit year is read as 20yy; the time zone is whole quarter hours.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from dmsim.network.sms.address import Address, decode_address, encode_address
from dmsim.network.sms.tpdu import _decode_ud, _encode_ud
from dmsim.network.sms.udh import InformationElement
from dmsim.base.errors import DecodeError, ProtocolError

MTI_STATUS_REPORT = 0b10

# TP-ST, §9.2.3.15. 0x00-0x1F: transaction completed.
ST_DELIVERED = 0x00                 # short message received by the SME
ST_FORWARDED_UNCONFIRMED = 0x01     # forwarded by the SC to the SME, delivery not confirmed
ST_REPLACED = 0x02
# 0x20-0x3F: temporary error, the SC is still trying.
ST_TRYING_CONGESTION = 0x20
ST_TRYING_SME_BUSY = 0x21
ST_TRYING_NO_RESPONSE = 0x22
ST_TRYING_SERVICE_REJECTED = 0x23
ST_TRYING_QOS_UNAVAILABLE = 0x24
ST_TRYING_ERROR_IN_SME = 0x25
# 0x40-0x5F: permanent error, no more attempts.
ST_REMOTE_PROCEDURE_ERROR = 0x40
ST_INCOMPATIBLE_DESTINATION = 0x41
ST_CONNECTION_REJECTED = 0x42
ST_NOT_OBTAINABLE = 0x43
ST_QOS_UNAVAILABLE = 0x44
ST_NO_INTERWORKING = 0x45
ST_VALIDITY_EXPIRED = 0x46
ST_DELETED_BY_ORIGINATOR = 0x47
ST_DELETED_BY_SC = 0x48
ST_DOES_NOT_EXIST = 0x49
# 0x60-0x7F: temporary error, the SC gave up.
ST_GAVE_UP_CONGESTION = 0x60
ST_GAVE_UP_SME_BUSY = 0x61
ST_GAVE_UP_NO_RESPONSE = 0x62
ST_GAVE_UP_SERVICE_REJECTED = 0x63
ST_GAVE_UP_QOS_UNAVAILABLE = 0x64
ST_GAVE_UP_ERROR_IN_SME = 0x65

_PI_PID, _PI_DCS, _PI_UDL, _PI_EXTENSION = 0x01, 0x02, 0x04, 0x80


def status_class(st: int) -> str:
    """Return the §9.2.3.15 group of TP-ST ``st``: ``completed``, ``trying``, ``permanent``,
    ``gave_up`` or ``reserved`` (0x80-0xFF)."""
    if not 0 <= st <= 0xFF:
        raise ProtocolError(f"TP-ST {st} is not an octet")
    return ("completed", "trying", "permanent", "gave_up")[st >> 5] if st < 0x80 else "reserved"


def encode_timestamp(when: datetime) -> bytes:
    """Return the 7 semi-octet octets of TP-SCTS/TP-DT (§9.2.3.11) for the aware ``when``.

    The local time of ``when`` is written with its UTC offset in quarter hours; ProtocolError
    for a naive datetime or an offset that is not whole quarter hours.
    """
    offset = when.utcoffset()
    if offset is None:
        raise ProtocolError("a TP-SCTS needs a datetime with a time zone")
    seconds = int(offset.total_seconds())
    if seconds % 900:
        raise ProtocolError(f"UTC offset {offset} is not whole quarter hours")
    quarters = abs(seconds) // 900
    digits = (when.year % 100, when.month, when.day, when.hour, when.minute, when.second)
    out = bytearray(((v % 10) << 4) | (v // 10) for v in digits)
    out.append(((quarters % 10) << 4) | (quarters // 10) | (0x08 if seconds < 0 else 0))
    return bytes(out)


def decode_timestamp(data: bytes, offset: int = 0) -> datetime:
    """Return the aware datetime in the 7 octets of TP-SCTS/TP-DT at ``data[offset]``."""
    raw = data[offset:offset + 7]
    if len(raw) != 7:
        raise DecodeError("sms-timestamp", offset + len(raw), "time stamp truncated", "7 octets")
    values = []
    for i, octet in enumerate(raw[:6]):
        tens, units = octet & 0x0F, octet >> 4
        if tens > 9 or units > 9:
            raise DecodeError("sms-timestamp", offset + i, f"octet {octet:#04x} is not BCD")
        values.append(tens * 10 + units)
    tz = raw[6]
    tens, units = tz & 0x07, tz >> 4
    if units > 9:
        raise DecodeError("sms-timestamp", offset + 6, f"time zone octet {tz:#04x} is not BCD")
    quarters = (tens * 10 + units) * (-1 if tz & 0x08 else 1)
    year, month, day, hour, minute, second = values
    try:
        return datetime(2000 + year, month, day, hour, minute, second,
                        tzinfo=timezone(timedelta(minutes=15 * quarters)))
    except ValueError as exc:
        raise DecodeError("sms-timestamp", offset, f"not a date: {exc}") from None


@dataclass(frozen=True)
class SmsStatusReport:
    """An SMS-STATUS-REPORT (SC to MS), §9.2.2.3.

    ``mr`` is the TP-MR of the SMS-SUBMIT it reports on, ``ra`` the recipient, ``scts`` when
    the SC received the submit, ``dt`` the discharge time of ``st``. ``srq`` is TP-SRQ (True:
    the report is for an SMS-COMMAND). ``pid``/``dcs``/``user_data`` are the optional fields
    (None: absent); ``ies`` is the user data header.
    """

    mr: int
    ra: Address
    scts: bytes
    dt: bytes
    st: int
    pid: int | None = None
    dcs: int | None = None
    user_data: bytes | None = None
    ies: tuple[InformationElement, ...] = field(default=())
    more_messages: bool = False
    loop_prevention: bool = False
    srq: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "ies", tuple(self.ies))
        if self.ies and self.user_data is None:
            object.__setattr__(self, "user_data", b"")

    def encode(self) -> bytes:
        """Return the TPDU octets; ProtocolError if a field does not fit."""
        for name, value in (("TP-MR", self.mr), ("TP-ST", self.st)):
            if not 0 <= value <= 0xFF:
                raise ProtocolError(f"{name} {value} is not an octet")
        for name, stamp in (("TP-SCTS", self.scts), ("TP-DT", self.dt)):
            if len(stamp) != 7:
                raise ProtocolError(f"{name} has {len(stamp)} octets, expected 7")
        first = (MTI_STATUS_REPORT | (0 if self.more_messages else 0x04)
                 | self.loop_prevention << 3 | self.srq << 5 | bool(self.ies) << 6)
        out = (bytes([first, self.mr]) + encode_address(self.ra) + bytes(self.scts)
               + bytes(self.dt) + bytes([self.st]))
        pi, tail = 0, b""
        for bit, value, name in ((_PI_PID, self.pid, "TP-PID"), (_PI_DCS, self.dcs, "TP-DCS")):
            if value is not None:
                if not 0 <= value <= 0xFF:
                    raise ProtocolError(f"{name} {value} is not an octet")
                pi |= bit
                tail += bytes([value])
        if self.user_data is not None:
            pi |= _PI_UDL
            tail += _encode_ud(self.dcs or 0, self.ies, self.user_data)
        return out + (bytes([pi]) + tail if pi else b"")


def decode_status_report(data: bytes) -> SmsStatusReport:
    """Return the SMS-STATUS-REPORT in ``data``; DecodeError if it is not one or is malformed."""
    data = bytes(data)
    if not data:
        raise DecodeError("sms", 0, "empty TPDU", "a first octet")
    first = data[0]
    if first & 0b11 != MTI_STATUS_REPORT:
        raise DecodeError("sms", 0, f"TP-MTI {first & 0b11:02b}", "10 (SMS-STATUS-REPORT)")
    if len(data) < 2:
        raise DecodeError("sms", 1, "TPDU truncated in TP-MR", "1 octet")
    ra, pos = decode_address(data, 2)
    if pos + 15 > len(data):
        raise DecodeError("sms", len(data), "TPDU truncated in TP-SCTS/TP-DT/TP-ST", "15 octets")
    scts, dt, st = data[pos:pos + 7], data[pos + 7:pos + 14], data[pos + 14]
    pos += 15
    pid = dcs = user_data = None
    ies: tuple[InformationElement, ...] = ()
    udhi = bool(first & 0x40)
    if pos < len(data):
        pi = data[pos]
        pos += 1
        ext = pi
        while ext & _PI_EXTENSION:
            if pos >= len(data):
                raise DecodeError("sms", pos, "TPDU truncated in a TP-PI extension octet")
            ext = data[pos]
            pos += 1
        if pi & _PI_PID:
            if pos >= len(data):
                raise DecodeError("sms", pos, "TPDU truncated", "TP-PID")
            pid, pos = data[pos], pos + 1
        if pi & _PI_DCS:
            if pos >= len(data):
                raise DecodeError("sms", pos, "TPDU truncated", "TP-DCS")
            dcs, pos = data[pos], pos + 1
        if pi & _PI_UDL:
            ies, user_data = _decode_ud(data, pos, dcs or 0, udhi)
            pos = len(data)
    if pos != len(data):
        raise DecodeError("sms", pos, f"{len(data) - pos} octet(s) after the last field")
    if udhi and user_data is None:
        raise DecodeError("sms", 0, "TP-UDHI set but no TP-UD", "TP-PI with TP-UDL")
    return SmsStatusReport(data[1], ra, scts, dt, st, pid, dcs, user_data, ies,
                           more_messages=not first & 0x04, loop_prevention=bool(first & 0x08),
                           srq=bool(first & 0x20))
