"""The LwM2M device's end of the SMS binding (seed 004 §7.3): each CoAP message one secured command
packet, in one SMS or in concatenated SMS (3GPP TS 31.115 §4.2), MO through the scenario's SMSC to
the LwM2M Server SMS Number, MT from the SMSC to the device's IMSI.

Termination ``device`` (class 1, TP-PID 7D): the device holds an
:class:`~dmsim.network.lwm2m.sms_binding.SmsBindingSender` (MO, ``send_segments``: up to
``MAX_SEGMENTS`` SMS per message, each submitted on its own) and an
:class:`~dmsim.network.lwm2m.sms_binding.SmsBindingReceiver` (MT: it holds segments until their
message is complete, ``now`` the simulated clock, incomplete ones dropped after the SMS exchange
lifetime) with the keys of its Security instance (/0/1/7 and /0/1/8). Termination ``uicc`` (class 2,
TP-PID 7F): the card holds the keys (``cards/lwm2m_applet.py``, personalised by the operator); the
ME passes each MT SMS to it in the SMS-PP DOWNLOAD ENVELOPE and has each MO message secured by
LWM2M PROTECT (``devices/lwm2m_sms_uicc.py``), each APDU costing the card seam's ``apdu_time``.
The UICC termination stays one SMS per message: a longer MO message is refused before the card
sees it (``coap_too_long``), and a concatenated MT segment is discarded by the card.

A discarded SMS produces nothing (no reply of any kind): the device counts it
(``bootstrap_rejected`` column, ``lwm2m.sms`` ``device_discarded.<reason>``; with the UICC the ME
cannot tell why, the reason is ``uicc``) and the modem acknowledges the SMS to the SMSC as any
delivered SMS; a segment held for reassembly is acknowledged too. ``sms_msgs``/``sms_bytes`` count
the device's MO TPDUs (each segment) when sent and its MT TPDUs when they arrive; the pcap
(``--pcap``) has an MO SMS when it goes on the air (the device reachable) and an MT SMS when it
reaches the device (``Lwm2mDevice.on_sms``).

Hook point for an adversary: ``dev.sms_binding`` (this object, its ``receiver`` and ``sender``).
"""
from __future__ import annotations

from collections.abc import Callable

from dmsim.base.errors import CardError, DmsimError
from dmsim.devices.lwm2m_sms_uicc import uicc_receive, uicc_submit
from dmsim.network.lwm2m.sms_binding import Direction, MessageTooLong, SmsBindingReceiver, SmsBindingSender, \
    Termination, max_message_size
from dmsim.network.lwm2m.sms_security import Discarded, SmsBindingKeys, SmsKeyParameters
from dmsim.network.sms.address import Address
from dmsim.network.sms.smsc import AttemptResult
from dmsim.sim.agents.device.sms_stack import SMSC_ADDRESS
from dmsim.sim.links.coap_channel import SMS_EXCHANGE_LIFETIME

_ACK = AttemptResult.ack()


class DeviceSmsBinding:
    """The device ``dev``'s SMS binding with the server at ``number``; ``deliver(coap)`` gets each
    verified CoAP message, ``dev.fail(reason)`` is told when a message cannot be sent."""

    def __init__(self, dev, params: SmsKeyParameters, keys: SmsBindingKeys, termination: str, number: str,
                 deliver: Callable[[bytes], None]):
        self.dev, self.deliver = dev, deliver
        self.replica = dev.replica
        self.smsc = self.replica.agents["smsc"]
        self.server = Address.parse(number)
        self.uicc = termination == "uicc"
        self.tar = params.tar
        self.card_limit = max_message_size(params)  # LWM2M PROTECT secures one SMS's worth
        self.mr = 0
        self.sender = self.receiver = None
        if not self.uicc:
            self.sender = SmsBindingSender(params, keys, Termination.DEVICE, Direction.MO, self.server)
            self.receiver = SmsBindingReceiver(params, keys, Termination.DEVICE, Direction.MT,
                                               reassembly_timeout=SMS_EXCHANGE_LIFETIME)

    # -- MO -------------------------------------------------------------------------------------------
    def send(self, coap: bytes) -> None:
        """Secure ``coap`` (on the device or the card) and submit it to the server's number."""
        if self.uicc:
            if len(coap) > self.card_limit:
                self.dev.fail("coap_too_long")
                return
            self.replica.env.process(self._card_submit(coap))
            return
        try:
            tpdus = self.sender.send_segments(coap)
        except MessageTooLong:
            self.dev.fail("coap_too_long")
            return
        for tpdu in tpdus:
            self._submit(tpdu)

    def _card_submit(self, coap: bytes):
        mr, self.mr = self.mr, (self.mr + 1) % 256
        try:
            tpdu = yield from self.replica.cards.run(
                self.dev.ident.index, lambda link: uicc_submit(link, self.tar, coap, self.server, mr=mr))
        except (CardError, DmsimError, KeyError):
            self.dev.fail("card_error")
            return
        self._submit(tpdu)

    def _submit(self, tpdu: bytes) -> None:
        dev = self.dev
        dev.sms_msgs += 1
        dev.sms_bytes += len(tpdu)
        replica = self.replica
        if self.smsc.submit_from_device(dev.ident.imsi, tpdu) and replica.pcap is not None:
            replica.capture(replica.pcap.write_sms_mo, tpdu, SMSC_ADDRESS, device=dev.ident.index)

    # -- MT -------------------------------------------------------------------------------------------
    def on_sms(self, tpdu: bytes, now: float) -> AttemptResult:
        """The SMSC delivered ``tpdu`` to the device: verify it (silently), acknowledge it."""
        dev = self.dev
        dev.sms_msgs += 1
        dev.sms_bytes += len(tpdu)
        if self.uicc:
            self.replica.env.process(self._card_receive(tpdu))
            return _ACK
        result = self.receiver.receive(tpdu, now)
        if isinstance(result, Discarded):
            self._discarded(result.reason.value)
        elif result is not None:
            self.deliver(result)
        return _ACK

    def _card_receive(self, tpdu: bytes):
        try:
            delivery = yield from self.replica.cards.run(self.dev.ident.index,
                                                         lambda link: uicc_receive(link, tpdu, SMSC_ADDRESS))
        except (DmsimError, KeyError):
            self._discarded("card_error")
            return
        if delivery.coap is None:
            self._discarded(delivery.refused.reason.value if delivery.refused is not None else "uicc")
        else:
            self.deliver(delivery.coap)

    def _discarded(self, reason: str) -> None:
        self.dev.rejected += 1
        self.replica.agents["lwm2m"].device_discarded(reason)
