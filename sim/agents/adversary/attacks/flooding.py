"""Floods on the SMS side: an ESME of the operator's SMSC submits forged WAP Pushes to the fleet's
subscribers, with the DM server's short code as originator, to deny or delay the server's own
pushes (its bootstraps, its package #0).

What stands in the way, per the specs dmsim follows: nothing in TS 23.040 authenticates TP-OA
(§9.2.3.7: the originating address is what the submitter writes), so the devices cannot tell the
flood from the server by its origin and must reject each push by its content: the bootstrap's
HMAC (OMA-TS-DM_Security §5.10.2.3), the package #0 digest (OMA-TS-DM_Notification §6.2). The
SMSC stores and forwards every accepted submit in one FIFO per destination, one attempt in
flight at a time (TS 23.040 §3; ``network/sms/smsc.py``), so what the flood puts in a device's
queue is delivered before the server's push behind it. The SMSC's only guard is its submit token
bucket (``smsc.submit_rate``, ``burst``) and ``queue_limit``; both are shared by every ESME (the
model has no per-ESME quota), so a throttled flood also throttles the server's own outbox.

Criterion (the seeds are silent; our choice, written down): the attack's goal is denial of
service of the operator's pushes. For each targeted device the flood reached, the SMS phase of
its life is from its arrival to the start of its DM session (the bootstrap and, with
``session_trigger: notification``, the package #0 are its SMS). The device was *denied* when that
phase took more than ``late_after`` seconds (0: the scenario's ``server.bootstrap_timeout``,
the time after which the server itself deems a push not acted on and sends it again) or never
ended. Only devices that arrived at least ``late_after`` before the horizon count (for the others
the horizon, not the flood, could be the cause). The attack succeeded when at least ``threshold``
of them were denied; otherwise it is detected when a defender recorded the flood (the SMSC
refused submits: ``throttled``/``queue_full``; or the devices counted refused pushes), else
blocked. Untargeted devices (``targets.fraction`` < 1) are reported as a control group.

Which devices the flood goes to: the targeted devices alive in the replica, in turn (the worst
case for the defender: the fleet's IMSIs are sequential and devices arrive in index order, so an
attacker knows who is being bootstrapped). The flood submits ``count`` SMS per second for
``seconds`` from ``at``, whatever the SMSC answers (a refused submit is not retried).
"""
from __future__ import annotations

from dmsim.network.dm.notification import build_pkg0, encode_push as encode_pkg0_push
from dmsim.network.sms import segmentation, tpdu, wsp_push
from dmsim.network.sms.smsc import ShortMessage
from dmsim.sim.agents.adversary.catalogue import Attack, Entry, register
from dmsim.sim.agents.adversary.outcome import BLOCKED, DETECTED, INCONCLUSIVE, SUCCEEDED
from dmsim.sim.agents.adversary.sms_forge import ForgedServer
from dmsim.sim.agents.dm_server import SERVER_SMS_ADDRESS


class SmsStorm(Attack):
    """A flood of forged pushes through the SMSC (see the module doc); subclasses forge the push
    (:meth:`forge`)."""

    positions = ("smsc",)
    params = {"count": 200, "seconds": 10.0, "late_after": 0.0, "threshold": 0.5}
    refusal = ""  # what the devices' refusal of one forged push is, for the mechanism

    @classmethod
    def check(cls, data, spec):
        params = spec.get("params") or {}
        if data.get("smsc") is None:
            return f"{cls.kind} floods through an SMSC: the scenario needs an smsc block (smsc: {{}})"
        if params.get("count", 1) <= 0 or params.get("seconds", 1) <= 0:
            return "count and seconds must be positive"
        if not 0 < params.get("threshold", 0.5) <= 1:
            return "threshold must be in (0, 1]"
        return None

    def install(self) -> None:
        self.smsc = self.replica.agents["smsc"]
        self.server = self.replica.agents["server"]
        self.flooded: dict[int, object] = {}       # device index -> the device (its record stays readable)
        self.untargeted: dict[int, object] = {}   # untargeted devices alive during the flood (control group)
        self.before: dict[int, int] = {}           # device index -> its refusal counters when first flooded
        self.queues: dict[int, list] = {}          # device index -> parts of its current forged push left
        self.pushes: dict[int, bytes] = {}         # device index -> its forged push
        self.submits = {"submitted": 0, "accepted": 0, "throttled": 0, "queue_full": 0}
        self.retries_start = 0
        self.server_retries = None  # the server's throttled submits during the flood
        self.env.process(self._flood())

    # -- the subclasses' part -----------------------------------------------------------------
    def forge(self, dev) -> bytes:
        """Return the forged WAP Push PDU the flood sends ``dev`` (again and again)."""
        raise NotImplementedError

    # -- the flood ----------------------------------------------------------------------------
    def _flood(self):
        """SimPy process: ``count`` submits a second for ``seconds`` from ``at``."""
        if self.at > self.env.now:
            yield self.env.timeout(self.at - self.env.now)
        self.retries_start = self._outbox_retries()
        interval, end, turn = 1.0 / float(self.p["count"]), self.at + float(self.p["seconds"]), 0
        while self.env.now < end:
            targets = []
            for index in sorted(self.replica.live):
                if self.targets(index):
                    targets.append(index)
                else:
                    self.untargeted.setdefault(index, self.replica.live[index])
            if targets:
                self._submit(self.replica.live[targets[turn % len(targets)]])
                turn += 1
            yield self.env.timeout(interval)
        self.server_retries = self._outbox_retries() - self.retries_start
        self.decide()  # the flood is over; what it did to the pushes behind it is read at the end

    def _outbox_retries(self) -> int:
        outbox = self.server.outbox
        return outbox.retries if outbox is not None else 0

    def _submit(self, dev) -> None:
        index = dev.ident.index
        if index not in self.flooded:
            self.flooded[index] = dev
            self.before[index] = dev.rejected + dev.notice_rejected
            self.act(index, "flooded through the SMSC")
        else:
            self.attempts += 1
        ies, chunk = self._next_part(dev)
        result = self.smsc.submit(ShortMessage(src=SERVER_SMS_ADDRESS.digits, dst=dev.ident.imsi, user_data=chunk,
                                               pid=tpdu.PID_DEFAULT, dcs=tpdu.DCS_8BIT, ies=tuple(ies)))
        self.submits["submitted"] += 1
        key = "accepted" if result.accepted else result.reason
        self.submits[key] = self.submits.get(key, 0) + 1

    def _next_part(self, dev):
        """Return the next SMS part (UDH IEs, chunk) of the forged push to ``dev``: a new
        concatenation reference for each round."""
        index = dev.ident.index
        queue = self.queues.get(index)
        if not queue:
            if index not in self.pushes:
                self.pushes[index] = self.forge(dev)
            queue = self.queues[index] = segmentation.split_parts(
                self.pushes[index], dest_port=wsp_push.WAP_PUSH_PORT, src_port=wsp_push.WAP_PUSH_SRC_PORT,
                ref=self.rng.randrange(256))
        return queue.pop(0)

    # -- the outcome --------------------------------------------------------------------------
    def _late_after(self) -> float:
        late = float(self.p["late_after"])
        return late if late > 0 else float(self.replica.data["server"]["bootstrap_timeout"])

    def _denied(self, devs) -> tuple[int, int, list[float]]:
        """Return (measurable devices, denied ones, their SMS-phase latencies) among ``devs``."""
        late, horizon = self._late_after(), float(self.replica.data["duration"])
        measurable = denied = 0
        latencies = []
        for dev in devs:
            if dev.t_arrival + late > horizon:
                continue
            measurable += 1
            latency = None if dev.t_session_start is None else dev.t_session_start - dev.t_arrival
            if latency is not None:
                latencies.append(latency)
            if latency is None or latency > late:
                denied += 1
        return measurable, denied, latencies

    def judge(self):
        devs = list(self.flooded.values())
        measurable, denied, latencies = self._denied(devs)
        refusals = sum(dev.rejected + dev.notice_rejected - self.before[dev.ident.index] for dev in devs)
        forged_taken = sum(1 for dev in devs if dev.account is not None
                           and dev.account.server_id != self.server.core.server_id)
        evidence = {**self.submits, "devices_flooded": len(devs), "measurable": measurable, "denied": denied,
                    "denied_fraction": round(denied / measurable, 4) if measurable else None,
                    "late_after": self._late_after(),
                    "sms_phase_p50": sorted(latencies)[len(latencies) // 2] if latencies else None,
                    "device_refusals": refusals, "forged_accepted": forged_taken,
                    "server_submit_throttled": (self._outbox_retries() - self.retries_start
                                                if self.server_retries is None else self.server_retries),
                    "control": self._control()}
        if not devs:
            return self.outcome(INCONCLUSIVE, "no targeted device was alive during the flood", **evidence)
        if forged_taken:
            return self.outcome(SUCCEEDED, "none: a device accepted a flooded push as its bootstrap",
                                state_corrupted=True, **evidence)
        if measurable and denied / measurable >= float(self.p["threshold"]):
            return self.outcome(SUCCEEDED, self._success_mechanism(evidence["server_submit_throttled"]), **evidence)
        if not measurable:
            return self.outcome(INCONCLUSIVE, "no flooded device arrived late_after before the horizon", **evidence)
        if self.submits["throttled"] or self.submits["queue_full"] or refusals:
            return self.outcome(DETECTED, self._detected_mechanism(refusals), **evidence)
        return self.outcome(BLOCKED, "per-destination FIFO (TS 23.040 §3): the server's pushes were queued ahead of "
                            "the flood and the devices, holding their account, ignored the forged pushes; nothing "
                            "recorded the flood and no push was delayed beyond late_after", **evidence)

    def _control(self) -> dict | None:
        """Return the control group's figures: untargeted devices alive during the flood (None: none)."""
        if not self.untargeted:
            return None
        measurable, denied, _ = self._denied(self.untargeted.values())
        return {"devices": len(self.untargeted), "measurable": measurable, "denied": denied}

    def _success_mechanism(self, server_throttled: int) -> str:
        said = ("none: TS 23.040 does not authenticate TP-OA (§9.2.3.7) and the SMSC delivers each destination's "
                "messages in order, one attempt at a time (§3), so the flood queued ahead of the server's pushes")
        if server_throttled:
            said += ("; the SMSC's submit throttle (smsc.submit_rate) is shared by every ESME, with no per-ESME "
                     "quota, so it throttled the server's own submits too")
        return said

    def _detected_mechanism(self, refusals: int) -> str:
        said = []
        if self.submits["throttled"] or self.submits["queue_full"]:
            said.append("SMSC submit limits (smsc.submit_rate/burst/queue_limit) refused part of the flood")
        if refusals:
            said.append(self.refusal)
        return "; ".join(said) + "; the server's pushes were not delayed beyond late_after"


@register
class NotificationStorm(SmsStorm):
    """A flood of forged package #0 (DM_Notification §6): the server's ServerID (public: every
    package #0 names it) with a digest under a guessed password and nonce, a random session id."""

    kind = "notification-storm"
    needs = {"smsc": {}, "server": {"session_trigger": "notification"}}
    matrix = {"params": {"count": 20, "seconds": 120}}  # the matrix's devices arrive over about a minute
    refusal = ("package #0 digest (OMA-TS-DM_Notification §6.2): devices waiting for one refused the forged "
               "ones (notice_rejected), devices not yet bootstrapped refused them as bootstraps")
    entry = Entry(
        family="flooding", title="forged package #0 flooded through the SMSC to the fleet",
        seeds_say="DM_Notification §6.2: a device acts on a package #0 only if its digest verifies, so a forged "
                  "one is refused; nothing in TS 23.040 limits what an ESME submits or authenticates TP-OA, so "
                  "the flood still takes the radio and the SMSC's queues.",
        knowledge="the fleet's MSISDNs/IMSIs (sequential), the server's short code and ServerID",
        position="an ESME account on the operator's SMSC",
        time="count SMS a second for seconds",
        expected="succeeded when the flood outruns the per-destination delivery (legit pushes queue behind it); "
                 "detected for a small flood (devices refuse each push)")

    def forge(self, dev) -> bytes:
        rng = self.rng
        pkg0 = build_pkg0(session_id=rng.randrange(1 << 16), server_id=self.server.core.server_id,
                          password=rng.randbytes(8).hex(), nonce=rng.randbytes(16))
        return encode_pkg0_push(pkg0, tid=rng.randrange(256))


@register
class BootstrapStorm(SmsStorm):
    """A flood of forged bootstraps: each a well-formed §5.10.2.3 bootstrap of the attacker's
    own server, MAC'd with the NETWORKID key of an IMSI that is not the device's (the storm is a
    flood, not a forgery: ``forge-networkid-bootstrap`` is the forgery), so each must be refused."""

    kind = "bootstrap-storm"
    needs = {"smsc": {}}
    matrix = {"params": {"count": 20, "seconds": 120}}
    refusal = "bootstrap HMAC (OMA-TS-DM_Security §5.10.2.3): every forged bootstrap refused (bootstrap_rejected)"
    entry = Entry(
        family="flooding", title="forged bootstraps flooded through the SMSC to the fleet",
        seeds_say="§5.10.2.3: a bootstrap whose MAC does not verify is rejected; nothing in TS 23.040 limits what "
                  "an ESME submits, so the flood still takes the radio and the SMSC's per-destination queues.",
        knowledge="the fleet's MSISDNs/IMSIs (sequential), the server's short code",
        position="an ESME account on the operator's SMSC",
        time="count SMS a second for seconds",
        expected="succeeded when the flood outruns the per-destination delivery; detected for a small flood "
                 "(bootstrap_rejected grows)")

    def install(self) -> None:
        super().install()
        self.forger = ForgedServer(self.rng)

    def forge(self, dev) -> bytes:
        wrong_imsi = f"{self.rng.randrange(10 ** 15):015d}"
        if wrong_imsi == dev.ident.imsi:  # pragma: no cover - one chance in 10**15
            wrong_imsi = wrong_imsi[::-1]
        return self.forger.bootstrap_push(dev.ident.uri, wrong_imsi, "NETWORKID", None, dev.ident.index)
