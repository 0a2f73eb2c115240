"""ENVELOPE (SMS-PP data download): 3GPP TS 31.111 §7.1.1.

The terminal hands the card an SMS-DELIVER with an ENVELOPE APDU (ETSI TS 102 221 §10.1.2:
CLA 80, INS C2, P1 P2 00 00, Lc, data, optional Le) whose data is the BER-TLV tag D1 holding
COMPREHENSION-TLVs (ETSI TS 102 223 §8, Annex C): device identities (tag 02, source and
destination, TS 102 223 §8.7), the SC address (tag 06, optional: TON/NPI then BCD digits,
§8.1) and the SMS TPDU (tag 0B, §8.13). Bit 8 of a tag is the comprehension-required (CR)
flag. Lengths are one octet (00..7F) or 81 followed by 80..FF (TS 102 223 Annex C).

Choices where the spec leaves room:
- The TLVs may come in any order; a repeated device identities/address/TPDU TLV is an error.
- An unknown TLV is skipped unless its CR flag is set (then DecodeError), as TS 102 223 §6.10
  has the card refuse what it must but cannot understand. Three-octet tags (7F xx xx) are
  always unknown.
- An address TLV of length 0 reads as no address. Device identity values are returned, not
  checked (TS 31.111 says network to UICC, 83 -> 81; the card decides).
- build_envelope sets the CR flag on all three TLVs and adds no Le.
- Every malformed input, the TPDU's included, raises DecodeError("envelope", offset) with the
  offset counted from the CLA octet.
"""
from __future__ import annotations

from dataclasses import dataclass

from dmsim.cards.comprehension_tlv import CR_FLAG, parse_tlvs, read_length
from dmsim.network.sms.address import Address, decode_address, encode_address
from dmsim.network.sms.tpdu import SmsDeliver, decode_tpdu
from dmsim.network.sms.udh import InformationElement
from dmsim.base.errors import DecodeError, ProtocolError

CLA_CAT = 0x80            # TS 102 221 §10.1.1
INS_ENVELOPE = 0xC2       # TS 102 221 §10.1.2
TAG_SMS_PP_DOWNLOAD = 0xD1  # TS 101 220 §7.2 BER-TLV tags, TS 31.111 §7.1.1.2
TAG_DEVICE_IDENTITIES = 0x02
TAG_ADDRESS = 0x06
TAG_SMS_TPDU = 0x0B
DEVICE_UICC = 0x81        # TS 102 223 §8.7
DEVICE_NETWORK = 0x83
IEI_COMMAND_PACKET = 0x70  # TS 31.115 §4.2

_APDU_HEADER = 5
_NAMES = {TAG_DEVICE_IDENTITIES: "device identities", TAG_ADDRESS: "address",
          TAG_SMS_TPDU: "SMS TPDU"}


@dataclass(frozen=True)
class SmsPpDownload:
    """A parsed SMS-PP data download: device identities, SC address, TPDU and its SMS-DELIVER."""

    source: int
    destination: int
    address: Address | None
    tpdu: bytes
    sms: SmsDeliver

    @property
    def pid(self) -> int:
        """Return TP-PID (7F: (U)SIM data download)."""
        return self.sms.pid

    @property
    def dcs(self) -> int:
        """Return TP-DCS (F6: 8-bit, class 2)."""
        return self.sms.dcs

    @property
    def ies(self) -> tuple[InformationElement, ...]:
        """Return the user data header's IEs."""
        return self.sms.ies

    @property
    def user_data(self) -> bytes:
        """Return TP-UD after the user data header."""
        return self.sms.user_data

    @property
    def is_command_packet(self) -> bool:
        """Return whether the UDH holds the command packet identifier (IEI 70)."""
        return any(ie.iei == IEI_COMMAND_PACKET for ie in self.sms.ies)


def _encode_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    if n <= 0xFF:
        return bytes([0x81, n])
    raise ProtocolError(f"TLV length {n} above 255")


def _tlv(tag: int, value: bytes) -> bytes:
    return bytes([tag]) + _encode_length(len(value)) + value


def _decode_sc_address(value: bytes, at: int) -> Address | None:
    """Return the Address of an address TLV value (TON/NPI, BCD) found at offset ``at``."""
    if not value:
        return None
    digits = 2 * (len(value) - 1) - (len(value) > 1 and value[-1] >> 4 == 0xF)
    try:
        address, _ = decode_address(bytes([digits]) + value, what="envelope")
    except DecodeError as err:
        raise DecodeError("envelope", at + max(err.offset - 1, 0), f"address: {err.detail}",
                          err.expected) from err
    return address


def parse_envelope(apdu: bytes) -> SmsPpDownload:
    """Return the SMS-PP data download in an ENVELOPE command APDU (DecodeError if malformed)."""
    data = bytes(apdu)
    if len(data) < _APDU_HEADER:
        raise DecodeError("envelope", len(data), "APDU truncated", "CLA INS P1 P2 Lc")
    if data[:4] != bytes([CLA_CAT, INS_ENVELOPE, 0, 0]):
        raise DecodeError("envelope", 0, f"APDU header {data[:4].hex()}", "80 c2 00 00")
    lc = data[4]
    end = _APDU_HEADER + lc
    if lc == 0 or len(data) not in (end, end + 1):
        raise DecodeError("envelope", 4, f"Lc {lc} with {len(data) - _APDU_HEADER} octets after it",
                          "Lc octets of data, then at most Le")
    body = data[:end]
    if body[5] != TAG_SMS_PP_DOWNLOAD:
        raise DecodeError("envelope", 5, f"BER-TLV tag {body[5]:#04x}", "d1 (SMS-PP download)")
    length, pos = read_length(body, 6, "envelope")
    if pos + length != end:
        raise DecodeError("envelope", 6, f"BER-TLV length {length}, {end - pos} octets follow")
    tlvs = parse_tlvs(body, pos, _NAMES, "envelope", three_octet_tags=True)
    for tag in (TAG_DEVICE_IDENTITIES, TAG_SMS_TPDU):
        if tag not in tlvs:
            raise DecodeError("envelope", end, f"no {_NAMES[tag]} TLV", "a mandatory TLV")
    ids_at, ids = tlvs[TAG_DEVICE_IDENTITIES]
    if len(ids) != 2:
        raise DecodeError("envelope", ids_at, f"device identities of {len(ids)} octets", "2")
    address = None
    if TAG_ADDRESS in tlvs:
        address_at, address_value = tlvs[TAG_ADDRESS]
        address = _decode_sc_address(address_value, address_at)
    tpdu_at, tpdu = tlvs[TAG_SMS_TPDU]
    try:
        sms = decode_tpdu(tpdu, mt=True)
    except DecodeError as err:
        raise DecodeError("envelope", tpdu_at + err.offset, f"SMS TPDU: {err.detail}",
                          err.expected) from err
    return SmsPpDownload(ids[0], ids[1], address, tpdu, sms)


def build_envelope(sms: SmsDeliver | bytes, address: Address | None = None, *,
                   source: int = DEVICE_NETWORK, destination: int = DEVICE_UICC) -> bytes:
    """Return the ENVELOPE APDU carrying ``sms`` (an SmsDeliver or its TPDU octets).

    ProtocolError if it does not fit a short APDU.
    """
    if not (0 <= source <= 0xFF and 0 <= destination <= 0xFF):
        raise ProtocolError(f"device identities {source}, {destination} are not octets")
    tpdu = sms.encode() if isinstance(sms, SmsDeliver) else bytes(sms)
    value = _tlv(CR_FLAG | TAG_DEVICE_IDENTITIES, bytes([source, destination]))
    if address is not None:
        value += _tlv(CR_FLAG | TAG_ADDRESS, encode_address(address)[1:])
    value += _tlv(CR_FLAG | TAG_SMS_TPDU, tpdu)
    data = _tlv(TAG_SMS_PP_DOWNLOAD, value)
    if len(data) > 0xFF:
        raise ProtocolError(f"ENVELOPE data of {len(data)} octets above 255")
    return bytes([CLA_CAT, INS_ENVELOPE, 0, 0, len(data)]) + data
