"""Forgeries of the DM server's SMS without its secrets: a package #0 on the air, and a bootstrap
submitted to the SMSC under the server's own short code.

- ``forge-package0``: OMA-TS-DM_Notification §6.2 and OMA-TS-DM_Security §5.7: the package #0
  digest is H(B64(H(server-id:server-password)):nonce:B64(H(trigger))), with the server's
  password and the nonce the client issued it; a device acts on a package #0 only when the digest
  verifies (``sim/agents/device/notification.py``), and counts every other (``notice_rejected``).
- ``sms-spoof-bootstrap``: TS 23.040 §9.2.3.7: TP-OA is what the submitter says it is. An ESME
  with an SMSC account (SMPP 3.4 §4.4.1 source_addr is the ESME's to write) submits a bootstrap
  to the victim with the server's short code as originating address; the SMSC cannot tell those
  submits from the server's, and the device cannot either. Only the bootstrap MAC
  (§5.10.2.3) stands in the way: NETWORKID's key is the public IMSI, so the seeds allow it.
"""
from __future__ import annotations

from dmsim.base.errors import DmsimError
from dmsim.network.dm import notification
from dmsim.network.sms import tpdu
from dmsim.network.sms.smsc import ShortMessage
from dmsim.sim.agents.adversary.attacks.forgery import Forgery, UserPinForgery
from dmsim.sim.agents.adversary.catalogue import Attack, Entry, register
from dmsim.sim.agents.adversary.outcome import BLOCKED, INCONCLUSIVE
from dmsim.sim.agents.adversary.sms_forge import (deliver_tpdus, device_of, imsi_of, is_push_to, push_from_air,
                                                  push_parts)
from dmsim.sim.agents.dm_server import SERVER_SMS_ADDRESS, scts_of
from dmsim.sim.agents.smsc_outbox import SmscOutbox


@register
class Package0Forgery(Forgery):
    """When a targeted device's package #0 crosses the air (a false base station reassembles the
    server's pushes to it), jam it (``jam``: the part that completes it, so the device's own
    reassembly stays incomplete) and inject a package #0 of the same trigger (server identifier,
    session id, version) whose digest is made with a password and nonce the attacker draws: it has
    neither the server's password nor the client's nonce. Once per device; the server's resend
    then passes.

    Verdict per device, read the moment the forged push is complete at the device: it acted on it
    (succeeded: its ``notified`` holds the forged digest), or it refused it (detected: its
    ``notice_rejected`` grew), else blocked (it ignored it: it was not waiting for one).
    """

    kind = "forge-package0"
    positions = ("sms_air",)
    params = {"jam": True}
    needs = {"server": {"session_trigger": "notification"}}
    entry = Entry(
        family="forgery", title="package #0 forged without the server's password",
        seeds_say="OMA-TS-DM_Notification §6.2, OMA-TS-DM_Security §5.7: the digest needs the server's password "
                  "and the client's nonce; the device verifies it before acting on the trigger.",
        knowledge="the server identifier and the session-id format (both in clear in a genuine package #0)",
        position="a false base station on the SMS air interface",
        time="one package #0, while the device waits for one",
        expected="detected (notice_rejected) in every profile with session_trigger notification")

    @classmethod
    def check(cls, data, spec):
        if data["server"]["session_trigger"] != "notification":
            return "needs server.session_trigger: notification (no package #0 is sent otherwise)"
        return None

    def install(self) -> None:
        self.reassemblers: dict[int, object] = {}
        self.forged: dict[int, bytes] = {}  # device index -> the digest of the package #0 forged for it
        super().install()
        for link in self.adversary.sms_links():
            self.adversary.tap(link, self._on_air)

    def _on_air(self, msg, now, deliveries):
        index = device_of(msg)
        if index is None or index in self.forged or not self.active() or not is_push_to(msg, index):
            return deliveries
        dev = self.replica.live.get(index)
        if dev is None or not self.targets(index):
            return deliveries
        push = push_from_air(self.reassemblers, index, msg.payload, now)
        if push is None or push.content_type.split(";")[0].strip().lower() != notification.NOTIFICATION_CONTENT_TYPE:
            return deliveries
        try:
            genuine = notification.parse_pkg0(push.body)
        except DmsimError:
            return deliveries
        self._forge(dev, genuine)
        return [] if self.p["jam"] else deliveries

    def _forge(self, dev, genuine: notification.Pkg0) -> None:
        """Inject a package #0 with ``genuine``'s trigger and a digest under a guessed password
        and nonce (16 random octets each, from the attack's stream)."""
        index = dev.ident.index
        forged = notification.build_pkg0(session_id=genuine.session_id, server_id=genuine.server_id,
                                         password=self.rng.randbytes(16).hex(), nonce=self.rng.randbytes(16),
                                         version=genuine.version, ui_mode=genuine.ui_mode, initiator=genuine.initiator,
                                         vendor_specific=genuine.vendor_specific)
        self.forged[index] = forged[:notification.DIGEST_LEN]
        parts = deliver_tpdus(notification.encode_push(forged, tid=self.rng.randrange(256)), SERVER_SMS_ADDRESS,
                              scts_of(self.env.now), self.rng.randrange(256))
        self.act(index, f"forged package #0, {len(parts)} SMS")
        rejected_before = dev.notice_rejected
        for n, pdu in enumerate(parts):
            last = n == len(parts) - 1
            self.adversary.inject_sms(index, pdu, delay=0.001 * (n + 1),
                                      after=(lambda d, _r: self._check(d, rejected_before)) if last else None)

    def _check(self, dev, rejected_before: int) -> None:
        index = dev.ident.index
        notified = dev.notified
        took = notified is not None and notified.triggered and notified.value.digest == self.forged[index]
        self.settle(index, took=took, refused=dev.notice_rejected > rejected_before)

    def judge(self):
        return self.forgery_outcome(
            bool(self.forged), none="no targeted device's package #0 crossed the air",
            success="none: the device acted on a package #0 whose digest it could not have verified",
            refusal="package #0 digest (OMA-TS-DM_Notification §6.2, OMA-TS-DM_Security §5.7): it needs the server's "
                    "password and the client's nonce; the device counts the refusal (notice_rejected)",
            blocked="the device ignored the forged package #0 (it was not waiting for one)", forged=len(self.forged))


@register
class SmsSpoofBootstrap(UserPinForgery):
    """An ESME of the SMSC submits, from ``at`` on, ``rounds`` times ``every`` seconds apart, a
    bootstrap installing the attacker's account to each targeted device's IMSI (the fleet's
    numbering is sequential and public), with TP-OA the server's short code, MAC'd under
    ``key_type`` (``profile``: the key the device's profile uses; NETWORKID by default) with the
    PIN ``guess`` where one is needed. It sits at the SMSC, not on the air: it cannot jam the
    server's bootstrap, and the SMSC serves each destination's messages in order, so its push
    wins only where it reaches the SMSC before the server's (e.g. a bootstrap campaign throttled
    by ``smsc.submit_rate``) or the server's failed. A device not attached yet (not switched on)
    is an unknown subscriber to the SMSC, which fails the message at once: the judge keeps those
    submits apart (inconclusive when every submit went to such devices).

    Verdict per device, read when the device's record is written (its bootstrap is over): it holds
    the attacker's account (succeeded), it rejected a bootstrap (detected: ``bootstrap_rejected``;
    the server's own are never rejected without an attack on the air), else blocked (the server's
    bootstrap came first and the device ignored the later one, or the forged one never arrived).
    """

    kind = "sms-spoof-bootstrap"
    positions = ("smsc",)
    params = {"key_type": "NETWORKID", "guess": "0000", "rounds": 1, "every": 1.0}
    needs = {"smsc": {}}
    matrix = {"params": {"rounds": 40, "every": 5.0}}  # the matrix's devices arrive over about a minute
    success_mechanism = ("none: SMS does not authenticate TP-OA (TS 23.040 §9.2.3.7), so the SMSC and the device "
                         "cannot tell the attacker's submits from the server's, and the NETWORKID key is the public "
                         "IMSI (§5.10.2.3)")
    entry = Entry(
        family="forgery", title="bootstrap submitted through the SMSC with the server's short code as TP-OA",
        seeds_say="TS 23.040: the originating address is whatever the submitter writes; the bootstrap MAC "
                  "(§5.10.2.3) is the only check, and NETWORKID's key is the IMSI: the seeds allow the forgery "
                  "against a device still waiting for its bootstrap.",
        knowledge="the victims' IMSIs (sequential), the server's short code; an SMSC account (any bulk-SMS reseller)",
        position="an ESME of the SMSC (no radio equipment)",
        time="one submit per device; it must reach the device before the server's bootstrap",
        expected="succeeded against NETWORKID devices the server's bootstrap has not reached yet (a throttled "
                 "campaign); blocked when the server's comes first; detected with key_type profile on USERPIN")

    @classmethod
    def check(cls, data, spec):
        if data.get("smsc") is None:
            return "needs an smsc block: the attacker is an ESME of the SMSC"
        params = spec.get("params") or {}
        if params.get("rounds", 1) < 1 or params.get("every", 1.0) <= 0:
            return "params.rounds must be >= 1 and params.every > 0"
        return super().check(data, spec)  # a bootstrap over SMS, a known key_type

    def install(self) -> None:
        super().install()  # the forger and the per-device sets; its air tap only passes (nothing is sent there)
        self.outbox = SmscOutbox(self.env, self.replica.agents["smsc"])
        self.submits = {"accepted": 0, "refused": 0}
        self.absent: set[int] = set()  # devices not attached when a forged bootstrap was submitted to them
        self.env.process(self._campaign())

    def _on_air(self, msg, now, deliveries):
        return deliveries  # an ESME has no radio: it sees nothing on the air

    def _campaign(self):
        """SimPy process: the rounds of forged submits."""
        if self.at > self.env.now:
            yield self.env.timeout(self.at - self.env.now)
        for n in range(int(self.p["rounds"])):
            if n:
                yield self.env.timeout(float(self.p["every"]))
            for index in range(self.replica.data["fleet"]["size"]):
                if self.targets(index):
                    self._submit(index)

    def _submit(self, index: int) -> None:
        """Submit the forged bootstrap for device ``index`` in SMS parts (TP-OA: the server's code)."""
        imsi = self._imsi(index)
        key_type = self._key_type(self._profile(index))
        pin = self.p["guess"] if "USERPIN" in key_type else None
        push = self.forger.bootstrap_push(f"IMSI:{imsi}", imsi, key_type, pin, index)
        parts = push_parts(push, self.rng.randrange(256))
        # for the judge only (the ESME cannot know): a device not switched on yet is an unknown
        # subscriber to the SMSC, which fails the message at once
        (self.sent if index in self.replica.live else self.absent).add(index)
        self.act(index, f"submitted a {key_type} bootstrap from {SERVER_SMS_ADDRESS.digits}, {len(parts)} SMS")
        for ies, chunk in parts:
            self.outbox.submit(ShortMessage(src=SERVER_SMS_ADDRESS.digits, dst=imsi, user_data=chunk,
                                            pid=tpdu.PID_DEFAULT, dcs=tpdu.DCS_8BIT, ies=tuple(ies)),
                               on_result=self._submitted)

    def _imsi(self, index: int) -> str:
        dev = self.replica.live.get(index)
        return dev.ident.imsi if dev is not None else imsi_of(index)

    def _profile(self, index: int) -> dict:
        """The device's profile where ``key_type`` is ``profile`` (the attacker knows the model); a
        device not switched on yet gets the first profile's (its submit fails at the SMSC anyway:
        unknown subscriber)."""
        dev = self.replica.live.get(index)
        return dev.ident.profile if dev is not None else self.replica.data["fleet"]["profiles"][0]

    def _submitted(self, result) -> None:
        self.submits["accepted" if result.accepted else "refused"] += 1

    def finished(self, dev, ok: bool, reason: str) -> None:
        """Read the device's verdict as its life ends (see the class doc)."""
        if dev.ident.index in self.sent and dev.ident.index not in self.outcomes:
            self._check(dev, 0)

    def judge(self):
        outcome = super().judge()
        outcome.evidence.update({f"submits_{k}": v for k, v in self.submits.items()},
                                submitted_to_absent_devices=len(self.absent - self.sent))
        if outcome.verdict == INCONCLUSIVE:
            outcome.mechanism = ("no targeted device was attached to the SMSC when a forged bootstrap was submitted "
                                 "(unknown subscriber: the SMSC fails the message at once)")
        elif outcome.verdict == BLOCKED:
            outcome.mechanism = ("the server's bootstrap reached each device first (the SMSC serves a destination's "
                                 "messages in order): the device ignored the later one")
        return outcome
