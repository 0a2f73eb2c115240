"""The device's SMS stack: what its modem does with each SMS-DELIVER (TS 23.040) that reaches it.

- a class-2 USIM data download (TP-PID 0x7F) goes to the UICC (``ota.data_download``);
- a WAP Push (WDP port 2948, WAP-259) is reassembled from its concatenated parts and handed to
  the bootstrap step or, once the device holds its account and waits for one, to the
  notification step;
- anything else (an outside ESME's text, say) is stored and acknowledged.

The answer (RP-ACK) is what the modem returns to an SMSC; over the direct link it is not used.
A bad bootstrap is still a delivered SMS: the modem acknowledges it and the device counts the
rejection. The device behind the scenario's serial modem (device 0, ``components.modem:
serial``) gets each SMS only after it crossed the real radio (:func:`via_modem`,
:func:`modem_leg`).
"""
from __future__ import annotations

from dmsim.base.errors import DmsimError
from dmsim.devices.sms_pp import is_data_download
from dmsim.network.sms import segmentation, tpdu, wsp_push
from dmsim.network.sms.address import Address
from dmsim.network.sms.smsc import AttemptResult
from dmsim.network.sms.udh import find_ports
from dmsim.sim.agents.device import bootstrap, notification, ota

SMSC_ADDRESS = Address.parse("+999000000")  # the SMSC's own address (RP-OA)
_ACK = AttemptResult.ack()


def behind_modem(dev) -> bool:
    """Return whether ``dev`` is the device behind the scenario's serial modem (device 0)."""
    return dev.replica.modem is not None and dev.ident.index == 0


def from_link(dev, pdu: bytes) -> None:
    """An SMS-DELIVER arrived over the direct ``sms`` link."""
    if behind_modem(dev):
        dev.replica.env.process(modem_leg(dev, pdu))
    else:
        at_device(dev, pdu)


def modem_leg(dev, pdu: bytes):
    """SimPy process: the SMS crosses the real radio (``sim/real/serial_modem.py``); its measured
    wall time becomes simulated time before the device's SMS stack gets what arrived."""
    received, elapsed = dev.replica.modem.round_trip(pdu)
    yield dev.replica.env.timeout(elapsed)
    for tpdu_in in received:
        at_device(dev, tpdu_in)


def via_modem(dev, pdu: bytes) -> AttemptResult | None:
    """The SMSC's delivery to the device behind the modem: the real round trip happens now (its
    time is counted, not simulated: the SMSC wants the answer at once); nothing arrived means no
    answer (the SMSC times out and retries)."""
    received, _ = dev.replica.modem.round_trip(pdu)
    answers = [at_device(dev, tpdu_in) for tpdu_in in received]
    return answers[-1] if answers else None


def after_life(replica, index: int):
    """Return the SMSC handler of device ``index`` once its life is over: what :func:`at_device`
    answers then (the modem acknowledges, the capture still sees the TPDU; the card is gone, so
    no OTA download), without holding the device, its DM client and its DM tree for the rest of
    the run (about 19 KB a device). Without a capture every finished device shares one handler,
    so what stays of it at the SMSC is its reachability entry alone."""
    if replica.pcap is None:
        return _acknowledge

    def answer(pdu: bytes, now: float) -> AttemptResult:
        if replica.pcap is not None:
            replica.capture(replica.pcap.write_sms_mt, pdu, SMSC_ADDRESS, device=index)
        return _ACK
    return answer


def _acknowledge(pdu: bytes, now: float) -> AttemptResult:
    """A finished device's modem acknowledges what still reaches it (nobody captures it)."""
    return _ACK


def at_device(dev, pdu: bytes) -> AttemptResult:
    """An SMS-DELIVER reached the device: return the modem's RP answer (see the module doc)."""
    replica = dev.replica
    if replica.agents.get("smsc") is not None:  # counted on arrival: the SMSC, not the server, sends the TPDUs
        dev.sms_msgs += 1
        dev.sms_bytes += len(pdu)
    if replica.pcap is not None:
        replica.capture(replica.pcap.write_sms_mt, pdu, SMSC_ADDRESS, device=dev.ident.index)
    try:
        sms = tpdu.decode_tpdu(pdu, mt=True)
    except DmsimError:
        sms = None
    if sms is not None and dev.card is not None and is_data_download(sms):
        return ota.data_download(dev, pdu, SMSC_ADDRESS)
    waiting_notice = notification.waiting(dev)
    if (dev.accepted and not waiting_notice) or dev.ident.index not in replica.live:
        return _ACK
    try:
        if sms is None:
            raise DmsimError("not an SMS-DELIVER")
        ports = find_ports(sms.ies)
        if ports is None or ports.dest != wsp_push.WAP_PUSH_PORT:
            return _ACK  # not for the push agent: the modem just stores it
        if dev.reasm is None:
            dev.reasm = segmentation.Reassembler()
        done = dev.reasm.feed_parsed(str(sms.oa), sms.ies, sms.user_data, replica.env.now)
        if done is None:
            return _ACK
        if dev.accepted:  # waiting for the server's package #0
            notification.received(dev, done.payload)
            return _ACK
        bootstrap.received(dev, done.payload)
    except DmsimError:
        dev.rejected += 1
    return _ACK
