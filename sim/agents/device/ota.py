"""Step 5 of a device's life, with an ``ota`` block: one secured command packet (ETSI TS 102 225)
from the OTA platform (``sim/agents/ota_platform.py``) through the SMSC; the ME hands it to the
UICC by ENVELOPE (TS 31.111 §7.1.1, ``devices/sms_pp.py``) and the PoR goes back in the RP-ACK,
or as an MO SMS-SUBMIT when the card asks for one (proactive SEND SHORT MESSAGE).
"""
from __future__ import annotations

from dmsim.devices import sms_pp
from dmsim.network.sms.smsc import AttemptResult


def ota_download(dev):
    """SimPy generator: wait for the platform's outcome of the device's command (``ota`` column)."""
    platform = dev.replica.agents.get("ota")
    if platform is not None and dev.card is not None:
        dev.ota, dev.ota_latency = yield platform.send(dev.ident.imsi, dev.ota_keys)


def data_download(dev, pdu: bytes, smsc_address) -> AttemptResult:
    """A class-2 USIM data download reached the ME: hand it to the UICC and return the RP answer
    (with the card's PoR); a PoR the card asks to send goes up as an MO SMS-SUBMIT."""
    replica = dev.replica
    answer = sms_pp.download(dev.card, pdu, smsc_address)
    if answer.mo is not None:
        replica.agents["smsc"].submit_from_device(dev.ident.imsi, answer.mo)
        if replica.pcap is not None:
            replica.capture(replica.pcap.write_sms_mo, answer.mo, smsc_address, device=dev.ident.index)
    return answer.result
