"""The LwM2M server's end of the SMS binding (seed 004 §7.3) in a replica: an application (ESME)
of the scenario's SMSC, each CoAP message one secured command packet in one SMS or in concatenated
SMS (3GPP TS 31.115 §4.2).

Per device (keyed by its IMSI, the address the SMSC routes on) one
:class:`~dmsim.network.lwm2m.sms_binding.SmsBindingSender` (MT: SMS-DELIVER fields, TP-OA the
server's SMS number) and one :class:`~dmsim.network.lwm2m.sms_binding.SmsBindingReceiver` (MO),
with the keys the bootstrap server wrote into the device's Security instance and the termination
(device: class 1 PID 7D; UICC: class 2 PID 7F) of its profile.

- MT: the sender secures the CoAP message with its next counter (``send_segments``: up to
  ``MAX_SEGMENTS`` SMS for the device termination, one for the UICC's, else ``refused.too_long``);
  each TPDU's TP-PID, TP-DCS, UDH (``02 70 00``, or a segment's concatenation IE with the CPI in
  the first only) and octets are submitted through the server's own outbox (``smsc_outbox.py``) to
  the device's IMSI; the SMSC builds the SMS-DELIVERs.
- MO: the SMSC delivers the device's SMS-SUBMITs to the application address; their fields go
  through ``receive_fields`` with the simulated clock (a segment is held until its message is
  complete; incomplete ones are dropped after the SMS exchange lifetime). A discarded SMS produces
  nothing at all (seed 004 §7.3: "SHALL NOT respond with an error message"): it is counted
  (``discarded.<reason>``) and the RP answer is the ordinary acknowledgement every delivered SMS
  gets (the SMSC's business, not a binding reply).

Stats: ``sent`` / ``accepted`` count CoAP messages, ``sent.concatenated`` those sent in more than
one SMS, ``segments`` the MO segments held for reassembly.

Hook points for an adversary: ``peers`` (IMSI -> :class:`SmsPeer`, its ``receiver`` and
``sender``) and ``stats``.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dmsim.network.lwm2m.sms_binding import Direction, MessageTooLong, SmsBindingReceiver, SmsBindingSender, \
    Termination
from dmsim.network.lwm2m.sms_security import Discarded, SmsBindingKeys, SmsKeyParameters, SmsSecurityError
from dmsim.network.sms.address import Address
from dmsim.network.sms.smsc import AttemptResult, Deliver, ShortMessage
from dmsim.network.sms.tpdu import decode_tpdu
from dmsim.sim.agents.smsc_outbox import SmscOutbox
from dmsim.sim.links.coap_channel import SMS_EXCHANGE_LIFETIME

_ACK = AttemptResult.ack()


@dataclass
class SmsPeer:
    """One device's binding state at the server: its MT sender, MO receiver and CoAP receiver."""

    sender: SmsBindingSender
    receiver: SmsBindingReceiver
    deliver: Callable[[bytes], None]


class SmsBindingApp:
    """The LwM2M server's SMS binding through ``smsc`` at ``number`` (module docstring)."""

    def __init__(self, env, smsc, number: str):
        self.env, self.smsc, self.number = env, smsc, number
        self.address = Address.parse(number)
        self.outbox = SmscOutbox(env, smsc)
        self.peers: dict[str, SmsPeer] = {}
        self.stats: dict[str, int] = {}
        smsc.add_application(number, self.on_sms)

    def add_peer(self, imsi: str, params: SmsKeyParameters, keys: SmsBindingKeys, termination: Termination,
                 deliver: Callable[[bytes], None]) -> None:
        """Start the binding with the device ``imsi`` (its counters from 0: fresh keys)."""
        self.peers[imsi] = SmsPeer(SmsBindingSender(params, keys, termination, Direction.MT, self.address),
                                   SmsBindingReceiver(params, keys, termination, Direction.MO,
                                                      reassembly_timeout=SMS_EXCHANGE_LIFETIME), deliver)

    def remove_peer(self, imsi: str) -> None:
        """End the binding with ``imsi`` (its registration is over)."""
        self.peers.pop(imsi, None)

    def send(self, imsi: str, coap: bytes) -> bool:
        """Secure ``coap`` for ``imsi`` and submit it; False when it cannot be sent."""
        peer = self.peers.get(imsi)
        if peer is None:
            return False
        try:
            tpdus = peer.sender.send_segments(coap)
        except MessageTooLong:
            self._count("refused.too_long")
            return False
        except SmsSecurityError as exc:
            self._count(f"refused.{exc.reason.value}")
            return False
        self._count("sent")
        if len(tpdus) > 1:
            self._count("sent.concatenated")
        for tpdu in tpdus:
            sms = decode_tpdu(tpdu, mt=True)
            self.outbox.submit(ShortMessage(src=self.number, dst=imsi, user_data=sms.user_data, pid=sms.pid,
                                            dcs=sms.dcs, ies=tuple(sms.ies)))
        return True

    def on_sms(self, action: Deliver, now: float) -> AttemptResult:
        """An MO SMS reached the application address: verify it, hand the CoAP message on."""
        sm = action.message
        peer = self.peers.get(sm.src)
        if peer is None:
            self._count("unknown_sender")
            return _ACK
        result = peer.receiver.receive_fields(sm.pid, sm.dcs, sm.ies, sm.user_data, now)
        if isinstance(result, Discarded):
            self._count(f"discarded.{result.reason.value}")
            return _ACK
        if result is None:
            self._count("segments")
            return _ACK
        self._count("accepted")
        peer.deliver(result)
        return _ACK

    def _count(self, key: str) -> None:
        self.stats[key] = self.stats.get(key, 0) + 1
