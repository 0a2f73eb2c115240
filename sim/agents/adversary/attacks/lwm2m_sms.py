"""Attacks on the LwM2M SMS binding (seed 004 §7.3): every CoAP message of binding S is one SMS
carrying an ETSI TS 102 225 secured command packet (SPI: cryptographic checksum, ciphering,
"process if and only if counter value is higher than the value in the RE"; TAR BF FF xx).

- ``replay-lwm2m-sms``: a secured MT SMS recorded on the air sent to the device again. The
  counter rule must make the device (or its UICC) discard it;
- ``wrong-kid-sms``: an SMS secured with a KIc/KID coding (``forge: kid``) or keys (``forge:
  key``) the device does not expect. Seed 004 §7.3: "SHALL discard SMS messages which are not
  correctly protected using the expected parameters ... and SHALL NOT respond with an error message".

Verdicts per device, read from the defender's side: the binding handed the CoAP message on
(its receiver accepted the packet) = succeeded; the device discarded it and counted the discard
(``bootstrap_rejected`` column, ``lwm2m.sms`` ``device_discarded.<reason>``: the seed forbids an
error reply, not a count) = detected; nothing recorded = blocked.

Positions: ``sms_air`` (a false base station: it reads the SMSC's radio downlink and delivers
SMS-DELIVERs straight to the device's modem) and ``smsc`` (an ESME of the SMSC that submits
with the LwM2M server's number as originating address; the SMSC delivers it). Choices where the
seed is silent (ours): the attacker needs the device's IMSI (public, sequential in a fleet) and
the TAR range of §7.3 (public); each targeted device is attacked once, when the first binding SMS
after the one it keys on crosses the air, plus ``after`` seconds; a verdict not known within
:data:`SETTLE` simulated seconds of the delivery (a card still busy, a device gone) is blocked.
"""
from __future__ import annotations

from collections import Counter
from typing import ClassVar

from dmsim.base.errors import DmsimError
from dmsim.network.coap.message import Code, encode as coap_encode, request
from dmsim.network.lwm2m.sms_binding import COMMAND_PACKET_IE, Direction, Termination, encode_sms
from dmsim.network.lwm2m.sms_security import SPI_REQUIRED, SmsBindingKeys, SmsKeyParameters
from dmsim.network.sms import tpdu
from dmsim.network.sms.smsc import ShortMessage
from dmsim.sim.agents.adversary.catalogue import Attack, Entry, register
from dmsim.sim.agents.adversary.outcome import BLOCKED, DETECTED, INCONCLUSIVE, SUCCEEDED
from dmsim.sim.agents.adversary.sms_forge import device_of

SETTLE = 120.0  # simulated seconds to wait for a verdict after the SMS reaches the device
_STEP = 0.25
_PIDS = (tpdu.PID_ME_DATA_DOWNLOAD, tpdu.PID_USIM_DATA_DOWNLOAD)
_HIGH_COUNTER = 2 ** 39  # an attacker's CNTR: far above any RE a device reaches in a run


def lwm2m_profiles(data: dict, **want) -> list[dict]:
    """Return the ``lwm2m`` structs of the scenario's LwM2M profiles whose keys have the wanted
    values (a value may be a tuple of allowed ones)."""
    out = []
    for profile in data["fleet"]["profiles"]:
        spec = profile.get("lwm2m") or {}
        if profile.get("device") != "lwm2m":
            continue
        if all(spec.get(k) in (v if isinstance(v, tuple) else (v,)) for k, v in want.items()):
            out.append(spec)
    return out


def binding_sms(pdu: bytes) -> tpdu.SmsDeliver | None:
    """Return the SMS-DELIVER when ``pdu`` is one carrying a secured packet of the binding
    (TP-PID 7D/7F, UDH the command packet identifier alone), else None."""
    try:
        sms = tpdu.decode_tpdu(pdu, mt=True)
    except DmsimError:
        return None
    if not isinstance(sms, tpdu.SmsDeliver) or sms.pid not in _PIDS or tuple(sms.ies) != (COMMAND_PACKET_IE,):
        return None
    return sms


class SmsBindingAttack(Attack):
    """What the two attacks share: the air tap, one delivery per targeted device (false base
    station or SMSC), and the verdict read at the device's binding. Subclasses say which SMS they
    key on (:meth:`keyed`) and what they send (:meth:`forge`)."""

    positions = ("sms_air", "smsc")
    protocol = "lwm2m"  # dmsim attack matrix: n/a on the DM profiles
    params = {"after": 0.0}
    non_negative = ("after",)
    mechanisms: ClassVar[dict[str, str]] = {}

    @classmethod
    def check(cls, data, spec):
        if not lwm2m_profiles(data, binding="S"):
            return f"{cls.kind} attacks the LwM2M SMS binding: it needs a profile with device lwm2m and binding S"
        return None

    def install(self) -> None:
        self.seen: dict[int, int] = {}       # device -> binding SMS seen on the air
        self.keys: dict[int, tpdu.SmsDeliver] = {}  # device -> the SMS the attack keys on
        self.sent: set[int] = set()
        self.pending: dict[int, bytes] = {}  # device -> the TP-UD sent, until it arrives
        self.reasons: Counter[str] = Counter()
        self.gone = 0
        for link in self.adversary.sms_links():
            self.adversary.tap(link, self._on_air)

    # -- the subclasses' part ---------------------------------------------------------------------
    def keyed(self, index: int, sms: tpdu.SmsDeliver, count: int) -> bool:
        """Return whether the ``count``-th binding SMS to device ``index`` is the one to key on."""
        return count == 1

    def forge(self, dev, keyed: tpdu.SmsDeliver) -> tpdu.SmsDeliver:
        """Return the SMS-DELIVER to send to ``dev`` (``keyed``: the SMS the attack keyed on)."""
        raise NotImplementedError

    # -- the air and the delivery -----------------------------------------------------------------
    def _on_air(self, msg, now, deliveries):
        index = device_of(msg)
        if index is None or index in self.sent or not self.active() or not self.targets(index):
            return deliveries
        sms = binding_sms(msg.payload)
        if sms is None:
            return deliveries
        count = self.seen[index] = self.seen.get(index, 0) + 1
        if index in self.keys:  # the next one: the keyed SMS is behind the device now
            self.sent.add(index)
            self.env.timeout(float(self.p["after"])).callbacks.append(lambda _e: self._send(index))
        elif self.keyed(index, sms, count):
            self.keys[index] = sms
        return deliveries

    def _send(self, index: int) -> None:
        dev = self.replica.live.get(index)
        binding = getattr(dev, "sms_binding", None)
        if dev is None or binding is None:
            self.gone += 1
            return
        sms = self.forge(dev, self.keys[index])
        self._watch(dev, binding)
        self.pending[index] = sms.user_data
        self.act(index, f"sent a secured SMS ({self.on})")
        if self.on == "smsc":
            self._outbox().submit(ShortMessage(src=str(sms.oa), dst=dev.ident.imsi, user_data=sms.user_data,
                                               pid=sms.pid, dcs=sms.dcs, ies=tuple(sms.ies)))
        else:
            dev.on_sms(sms.encode(), self.env.now)

    def _outbox(self):
        from dmsim.sim.agents.smsc_outbox import SmscOutbox
        if not hasattr(self, "_esme"):
            self._esme = SmscOutbox(self.env, self.replica.agents["smsc"])
        return self._esme

    def _watch(self, dev, binding) -> None:
        """Wrap the binding's SMS entry once: the attack's own SMS is read as it arrives."""
        if getattr(binding, "_attack_watch", False):
            return
        inner, deliver = binding.on_sms, binding.deliver
        index = dev.ident.index
        binding._attack_delivered = 0

        def delivered(coap):  # what the UICC (or the device's receiver) handed the ME
            binding._attack_delivered += 1
            deliver(coap)

        def on_sms(pdu, now):
            sms = binding_sms(pdu)
            ours = sms is not None and self.pending.get(index) == sms.user_data
            before = (dev.rejected, self._accepted(binding))
            result = inner(pdu, now)
            if ours:
                del self.pending[index]
                self._read(dev, binding, before, 0)
            return result
        binding.on_sms, binding.deliver, binding._attack_watch = on_sms, delivered, True

    def _accepted(self, binding) -> int:
        receiver = binding.receiver
        return receiver.stats["accepted"] if receiver is not None else getattr(binding, "_attack_delivered", 0)

    def _read(self, dev, binding, before: tuple[int, int], tries: int) -> None:
        """Read the verdict on the attack's SMS, which reached ``dev`` when (rejected, accepted)
        were ``before`` (again every step while a card works on it)."""
        rejected, accepted = before
        if self._accepted(binding) > accepted:
            verdict = SUCCEEDED
        elif dev.rejected > rejected:
            verdict = DETECTED
        elif binding.receiver is None and tries * _STEP < SETTLE:  # the card answers in simulated time
            self.env.timeout(_STEP).callbacks.append(lambda _e: self._read(dev, binding, before, tries + 1))
            return
        else:
            verdict = BLOCKED
        if binding.receiver is not None:
            self.reasons.update({k: v for k, v in binding.receiver.stats.items() if k != "accepted"})
        self.decide(dev.ident.index, verdict)

    def judge(self):
        tally = Counter(self.outcomes.values())
        evidence = {"devices": len(self.acted), "verdicts": dict(tally), "discards": dict(self.reasons),
                    "device_gone": self.gone, "never_arrived": len(self.pending),
                    "lwm2m_sms": dict((self.replica.agents["lwm2m"].stats().get("lwm2m.sms") or {}))}
        for verdict in (SUCCEEDED, DETECTED, BLOCKED):
            if tally.get(verdict):
                return self.outcome(verdict, self.mechanisms[verdict], state_corrupted=verdict == SUCCEEDED,
                                    **evidence)
        if self.acted:
            return self.outcome(BLOCKED, "the SMS never reached a device that listened (nothing recorded it)",
                                **evidence)
        return self.outcome(INCONCLUSIVE, "no targeted device's binding SMS crossed the air twice", **evidence)


@register
class LwM2mSmsReplay(SmsBindingAttack):
    """Record the first secured MT SMS of a targeted device's binding on the air (the server's
    answer to its Register), and send the same TP-UD again once the next one has crossed the air
    (plus ``after``): its counter is then not higher than the device's RE (ETSI TS 102 225 §5.1.1
    SPI "counter higher"), so the device (or its UICC) must discard it, silently."""

    kind = "replay-lwm2m-sms"
    before_knockouts = ("sms-counter-equal-accepted",)
    mechanisms = {
        SUCCEEDED: "none: the device processed a replayed secured SMS (its counter was not higher than the RE)",
        DETECTED: "replay counter (ETSI TS 102 225 §5.1.1, seed 004 §7.3 SPI 'counter higher'): discarded "
                  "silently, counted by the device",
        BLOCKED: "the replayed SMS was discarded and nothing recorded it",
    }
    entry = Entry(
        family="replay", title="a secured LwM2M SMS replayed to the device",
        seeds_say="seed 004 §7.3: SPI SHOULD be 'process if and only if counter value is higher than the value in "
                  "the RE'; SMS 'not correctly protected' SHALL be discarded with no error message.",
        knowledge="none beyond the captured SMS (and the device's IMSI for smsc)",
        position="a false base station on the SMS air interface, or an ESME of the SMSC",
        time="any time after the original was processed",
        expected="detected in every SMS-binding profile (device or UICC termination, AES or 3DES); succeeded "
                 "with the counter check knocked out")

    def forge(self, dev, keyed):
        return keyed


@register
class WrongKidSms(SmsBindingAttack):
    """Send a targeted device a secured SMS the attacker made with its own keys: ``forge: kid``
    codes another KIc/KID than the device's (3DES for an AES binding, AES for a 3DES one), ``key``
    the device's own codings with keys the attacker drew. TAR the device's (from the keyed SMS),
    counter far above any RE, a CoAP GET /3/0 inside. The device must discard it, silently
    (seed 004 §7.3): KIc/KID mismatch or a checksum that does not verify."""

    kind = "wrong-kid-sms"
    params = {"after": 0.0, "forge": "kid"}
    choices = {"forge": ("kid", "key")}
    mechanisms = {
        SUCCEEDED: "none: the device processed an SMS secured with parameters or keys it does not expect",
        DETECTED: "SMS binding key parameters and keys (seed 004 §7.3, ETSI TS 102 225 §5.1.2-§5.1.3): discarded "
                  "silently, counted by the device",
        BLOCKED: "the forged SMS was discarded and nothing recorded it",
    }
    entry = Entry(
        family="forgery", title="an SMS secured with a KID/key the device does not expect",
        seeds_say="seed 004 §7.3: 'SHALL discard SMS messages which are not correctly protected using the expected "
                  "parameters stored in the SMS Binding Key Parameters Resource and the expected keys ... and SHALL "
                  "NOT respond with an error message'.",
        knowledge="the device's IMSI and the server's SMS number (seen on the air), the TAR range of §7.3",
        position="a false base station on the SMS air interface, or an ESME of the SMSC",
        time="one SMS", expected="detected in every SMS-binding profile")

    def forge(self, dev, keyed):
        packet = keyed.user_data
        kic, kid, tar = packet[5], packet[6], packet[7:10]  # TS 102 225 §5.1: CPL(2) CHL SPI(2) KIc KID TAR
        if self.p["forge"] == "kid":
            kic = kid = 0x19 if kid & 0x03 == 0x02 else 0x12
        size = 16 if kid & 0x03 == 0x02 else 24
        params = SmsKeyParameters(kic, kid, SPI_REQUIRED, bytes(tar))
        keys = SmsBindingKeys(self.rng.randbytes(size), self.rng.randbytes(size))
        coap = coap_encode(request(Code.GET, ("3", "0"), message_id=self.rng.randrange(1 << 16),
                                   token=self.rng.randbytes(4)))
        termination = Termination.UICC if keyed.pid == tpdu.PID_USIM_DATA_DOWNLOAD else Termination.DEVICE
        raw = encode_sms(params, keys, termination, Direction.MT, keyed.oa, _HIGH_COUNTER, coap, scts=keyed.scts)
        return tpdu.decode_tpdu(raw, mt=True)


__all__ = ["lwm2m_profiles", "binding_sms", "SmsBindingAttack", "LwM2mSmsReplay", "WrongKidSms"]
