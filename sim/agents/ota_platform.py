"""An OTA campaign in a scenario: the network side of SMS OTA (ETSI TS 102 225, 3GPP TS 31.115)
run through the scenario's SMSC; no protocol logic of its own.

With a scenario ``ota`` block, each device, once its DM session is over, gets one secured
command packet from the OTA platform (``network/sms/ota_sender.py``): an SMS-DELIVER for USIM
data download (TP-PID 0x7F, class 2) submitted to the SMSC at ``OTA_PLATFORM``. The device's
ME hands it to its UICC by ENVELOPE (``devices/sms_pp.py``) and the Proof of Receipt comes back
by the path the SPI asks (TS 102 225 §5.1.1, SPI second octet b6):

- ``por: ack``: in the RP-ACK (TS 31.111 §7.1.1); the SMSC's status report to the platform
  carries it in TP-UD (TS 23.040 §9.2.3.27 for a data-download message);
- ``por: submit``: in a mobile-originated SMS-SUBMIT that the UICC asks the ME to send
  (proactive SEND SHORT MESSAGE) to the platform's address, through the SMSC's MO path.

The platform checks the PoR with the device's keys (TAR, counter, RC/CC/DS, deciphering) and
the device's record says what became of it (``ota`` column): ``ok`` (PoR status 00),
``por_status_XX`` (the card refused: 02 counter, 01 RC/CC/DS failed, ...), ``por_invalid`` (a
PoR that does not verify), ``undelivered`` (the SMSC's final outcome was not a delivery),
``refused`` (the SMSC refused the submit: its queue was full; a throttled platform waits and
submits again, ``sim/agents/smsc_outbox.py``), ``timeout`` (no PoR within ``ota.timeout``).

Keys: the devices' UICCs each get their own OTA key set for the campaign's TAR (KIc and KID
keys drawn from the replica's random stream), and the platform holds the same ones, as an
operator's key database does. Choice where the specs are silent: the first packet's counter
is 1, and a packet sent once is never re-sent (the SMSC retries its delivery).
"""
from __future__ import annotations

import random
from dataclasses import dataclass

import simpy

from dmsim.cards.profile import OtaKeyset
from dmsim.cards.scp80 import Keyset
from dmsim.network.sms.address import Address
from dmsim.network.sms.ota_sender import OtaSender
from dmsim.network.sms.smsc import AttemptResult, Deliver, ShortMessage, StatusReport, SubmitResult
from dmsim.network.sms.status_report import decode_status_report, status_class
from dmsim.network.sms.udh import encode_udh
from dmsim.base.errors import DmsimError
from dmsim.sim.agents.agent import Agent
from dmsim.sim.agents.smsc import SmscDriver
from dmsim.sim.agents.smsc_outbox import SmscOutbox

OTA_PLATFORM = "55501"  # the platform's short code: TP-OA of its commands, TP-DA of PoR submits
_SPI_POR_VIA_SUBMIT = 0x20


def key_size(key_byte: int) -> int:
    """Return the key length for a KIc/KID byte (TS 102 225 §5.1.2/§5.1.3): 24 for 3-key 3DES
    (b1-b2 01 DES, b3-b4 10), else 16 (2-key 3DES, or AES-128: the key length is the key's own)."""
    return 24 if key_byte & 0x0F == 0x09 else 16


@dataclass
class _Pending:
    imsi: str
    sender: OtaSender
    done: simpy.Event
    sent_at: float


class OtaCampaign(Agent):
    """The OTA platform of one replica: one command per device, PoRs checked, outcomes reported."""

    name = block = "ota"  # an ``ota`` block (the scenario check makes sure it has an ``smsc`` too)

    @classmethod
    def for_replica(cls, replica) -> "OtaCampaign":
        """Return the replica's OTA platform, submitting through its SMSC agent."""
        return cls(replica.env, replica.agents["smsc"], replica.data["ota"], replica.stream("ota"))

    def stats(self) -> dict[str, dict]:
        """Return the counters this agent adds to ``summary.json``'s ``network`` block."""
        return {"ota": dict(self.counts)}

    def __init__(self, env: simpy.Environment, smsc: SmscDriver, spec: dict, rng: random.Random):
        self.env, self.smsc, self.spec, self.rng = env, smsc, spec, rng
        self.tar = bytes.fromhex(spec["tar"])
        self.apdus = [bytes.fromhex(a) for a in spec["apdus"]]
        spi = bytearray.fromhex(spec["spi"])
        if spec["por"] == "submit":
            spi[1] |= _SPI_POR_VIA_SUBMIT
        else:
            spi[1] &= ~_SPI_POR_VIA_SUBMIT & 0xFF
        self.spi = bytes(spi)
        self._by_msg: dict[int, _Pending] = {}
        self._by_device: dict[str, _Pending] = {}
        self.counts: dict[str, int] = {}
        self.outbox = SmscOutbox(env, smsc)  # the platform's own ESME queue: throttling slows it down
        smsc.add_application(OTA_PLATFORM, self._por_submitted, self._report)

    def keyset(self) -> OtaKeyset:
        """Return a new device's OTA key set (the card gets it, the platform keeps it)."""
        kic, kid = self.spec["kic"], self.spec["kid"]
        return OtaKeyset(self.tar, kic, kid, self.rng.randbytes(key_size(kic)), self.rng.randbytes(key_size(kid)),
                         bytes(5))

    def send(self, imsi: str, keys: OtaKeyset) -> simpy.Event:
        """Submit the campaign's command to ``imsi``; return an event whose value is the outcome."""
        sender = OtaSender(tar=keys.tar, keys=Keyset(keys.kic, keys.kid, keys.kic_key, keys.kid_key),
                           spi=self.spi, originator=Address(OTA_PLATFORM))
        sms = sender.command_sms(self.apdus)
        pending = _Pending(imsi, sender, self.env.event(), self.env.now)
        self._by_device[imsi] = pending
        self.outbox.submit(ShortMessage(src=OTA_PLATFORM, dst=imsi, user_data=sms.user_data, pid=sms.pid,
                                        dcs=sms.dcs, ies=tuple(sms.ies), status_report=True),
                           wanted=lambda: not pending.done.triggered,
                           on_result=lambda result: self._submitted(pending, result))
        timer = self.env.timeout(self.spec["timeout"], pending)
        timer.callbacks.append(lambda event: self._finish(event.value, "timeout"))
        return pending.done

    def _submitted(self, pending: _Pending, result: SubmitResult) -> None:
        if result.accepted:
            self._by_msg[result.msg_id] = pending
        else:
            self._finish(pending, "refused")

    def _report(self, action: StatusReport, now: float) -> None:
        pending = self._by_msg.pop(action.msg_id, None)
        if pending is None or pending.done.triggered:
            return
        if status_class(action.st) != "completed":  # TS 23.040 §9.2.3.15
            self._finish(pending, "undelivered")
        elif self.spec["por"] == "ack":
            try:
                data = decode_status_report(action.tpdu).user_data or b""
            except DmsimError:
                data = b""
            self._check(pending, data)

    def _por_submitted(self, action: Deliver, now: float) -> AttemptResult:
        pending = self._by_device.get(action.message.src)
        if pending is not None and not pending.done.triggered:
            message = action.message
            self._check(pending, (encode_udh(message.ies) if message.ies else b"") + message.user_data)
        return AttemptResult.ack()

    def _check(self, pending: _Pending, data: bytes) -> None:
        try:
            por = pending.sender.check_por(data)
        except DmsimError:
            self._finish(pending, "por_invalid")
            return
        self._finish(pending, "ok" if por.status == 0 else f"por_status_{por.status:02x}")

    def _finish(self, pending: _Pending, outcome: str) -> None:
        if pending.done.triggered:
            return
        self._by_device.pop(pending.imsi, None)
        self.counts[outcome] = self.counts.get(outcome, 0) + 1
        pending.done.succeed((outcome, self.env.now - pending.sent_at))
