"""The network side of SMS OTA (ETSI TS 102 225, 3GPP TS 31.115): an OTA sender that wraps
remote commands in secured command packets for one TAR and checks the Proof of Receipt.

A command travels in an SMS-DELIVER for USIM data download: TP-PID 0x7F, TP-DCS 0xF6 (class 2,
8-bit), a UDH with the command packet IEI 70 (TS 31.115 §4.2). The UICC answers in the RP-ACK
(TS 31.111 §7.1.1) with the response packet (UDH IEI 71), checked here with the same keys.

The secured data is a compact RFM script (TS 102 226): the C-APDUs concatenated as CLA INS P1
P2 P3 [data]. The counter goes up by one per command packet (a replay carries an old value and
the card refuses it with PoR status 02). Default SPI 16 19: CC, ciphered, counter must be
higher; PoR required, with CC, ciphered — the card's default minimum security level.
The packet codec is the one the card uses (``cards/scp80.py``).
"""
from __future__ import annotations

from dataclasses import dataclass

from dmsim.cards.scp80 import (Keyset, ResponsePacket, ResponseStatus, Spi, decode_por, encode_command)
from dmsim.network.sms.address import Address
from dmsim.network.sms.tpdu import PID_USIM_DATA_DOWNLOAD, SmsDeliver
from dmsim.network.sms.udh import InformationElement
from dmsim.base.errors import SecuredPacketError

DEFAULT_SPI = bytes.fromhex("1619")
DCS_CLASS2_8BIT = 0xF6
IEI_COMMAND_PACKET = 0x70


@dataclass
class OtaSender:
    """Builds command packets for one TAR and key set; ``counter`` is the last CNTR used."""

    tar: bytes
    keys: Keyset
    counter: int = 0
    spi: bytes = DEFAULT_SPI
    originator: Address = Address("12345")

    def command_sms(self, apdus: list[bytes], *, scts: bytes = bytes(7)) -> SmsDeliver:
        """Return the SMS-DELIVER carrying ``apdus`` (one command packet; the counter goes up)."""
        self.counter += 1
        packet = encode_command(self.spi, self.keys.kic_byte, self.keys.kid_byte, self.tar, self.counter,
                                b"".join(apdus), self.keys)
        return SmsDeliver(oa=self.originator, pid=PID_USIM_DATA_DOWNLOAD, dcs=DCS_CLASS2_8BIT, scts=scts,
                          ies=(InformationElement(IEI_COMMAND_PACKET, b""),), user_data=packet)

    def check_por(self, rp_ack_data: bytes) -> ResponsePacket:
        """Return the verified PoR from the RP-ACK user data (``02 71 00`` + response packet).

        Raises DecodeError when it is malformed and SecuredPacketError when its CC fails or it
        answers another TAR; the returned packet's ``status`` is the card's verdict (00 = done).
        """
        por = decode_por(rp_ack_data, self.spi, self.keys, with_udh=True)
        if por.tar != self.tar:
            raise SecuredPacketError(ResponseStatus.TAR_UNKNOWN, f"PoR for TAR {por.tar.hex()}, sent to "
                                     f"{self.tar.hex()}", tar=por.tar, spi=Spi.decode(self.spi))
        return por


def ota_sender_for(tar: bytes, kic: int, kid: int, kic_key: bytes, kid_key: bytes, counter: int = 0) -> OtaSender:
    """Return a sender for a card profile's OTA key set (``cards/profile.py`` OtaKeyset fields)."""
    return OtaSender(tar=bytes(tar), keys=Keyset(kic, kid, kic_key, kid_key), counter=counter)
