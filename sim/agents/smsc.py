"""SimPy driver of the store-and-forward SMSC core (``network/sms/smsc.py``); no protocol logic.

The core decides; this module moves its TPDUs over simulated radio links (``SimLink``, one
each way), asks devices and applications for their answers, and wakes the core with
``env.timeout`` callbacks at ``next_deadline()`` (no SimPy process per message).

Scenario spec: a dict checked by ``SMSC_SCHEMA`` (the scenario's ``smsc`` block, so that
``dmsim scenario format`` documents it and ``--set smsc.burst=5`` works), every key optional::

    submit_rate: msgs/s          # submit token bucket rate                  [null: no limit]
    burst: n                     # submit token bucket depth                 [1]
    delivery_rate: attempts/s    # delivery attempts, all destinations      [null: no limit]
    delivery_burst: n            # delivery token bucket depth               [1]
    validity: s                  # validity period when a submit gives none  [86400]
    attempt_timeout: s           # no answer after this -> timeout           [30]
    retry: {initial: s, factor: x, max: s, max_attempts: n|null}  [30, 2, 3600, null]
    queue_limit: n               # messages stored at once                   [null: no limit]
    alert_sc: bool               # Alert-SC when an absent device is back    [false]
    availability: {mean_up: s, mean_down: s} | null   # per-device on/off    [null: always on]

The driver alone also takes (``parse_smsc_spec``; a scenario's radio is ``links.sms``)::

    radio: <link spec>           # sim/links/link.py spec of the radio, SC -> MS   [instantaneous]
    radio_up: <link spec>        # MS -> SC (answers, MO submits)            [same as radio]

A key written as null means its default only where the default is null (the schema is the one
rule; before it was a schema, ``burst: null`` or ``retry: null`` also meant the default).

Delivery to a device: the core's SMS-DELIVER goes down the radio link if the device is
reachable when the attempt starts, else the attempt fails at once as absent subscriber (the
HLR/MSC knows the MS is detached). A device that becomes unreachable while the TPDU is in
flight does not answer (the core times out). A reachable device's ``on_sms(tpdu, now)``
returns an ``AttemptResult`` (ack, possibly with a PoR, or RP-ERROR), or None for no answer;
the answer comes back up the radio link. Applications (ESMEs) answer at once, with no link.

Availability: each device alternates up and down periods drawn from exponentials with means
``mean_up`` and ``mean_down`` (a two-state Markov process); its first state is drawn from the
stationary law (up with probability mean_up / (mean_up + mean_down)). The path is sampled
lazily when the state is asked for, so an idle device costs no timer and ``env.run()`` ends.
With ``alert_sc``, an absent attempt schedules one Alert-SC at the end of the down period.
``set_reachable`` overrides the model for a device from then on.

Status reports go to their originator: down the radio link to a device (lost if it is then
unreachable), or straight to an application. MO submits go up the radio link; the SC's answer
(a ``SubmitResult``) comes back down to the device's ``on_submitted``.

Random draws: the two radio links and the availability model use their own substreams of
``seed`` under ``stream``, so a seed reproduces a run.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import simpy

from dmsim.network.sms.address import Address
from dmsim.network.sms.smsc import (EPOCH, SC_ADDRESS, AttemptResult, Deliver, ShortMessage, Smsc,
                                    SmscConfig, StatusReport, SubmitResult)
from dmsim.base.errors import DmsimError, ScenarioError
from dmsim.base.schema import (REQUIRED, Bool, Field, Float, Int, Nullable, Raw, Seconds, Struct, kind_of,
                               validate)
from dmsim.sim.agents.agent import Agent
from dmsim.sim.links.link import Message, SimLink, without_tap
from dmsim.base.rng import substream

DeviceHandler = Callable[[bytes, float], "AttemptResult | None"]
AppHandler = Callable[[Deliver, float], AttemptResult]
ReportHandler = Callable[[bytes, float], None]
AppReportHandler = Callable[[StatusReport, float], None]
SubmittedHandler = Callable[["SubmitResult | None", float], None]

_RATE = Nullable(Float(0.0, min_exclusive=True))

SMSC_SCHEMA = Struct({
    "submit_rate": Field(_RATE, None, "Messages per second the SC accepts (token bucket); null: no limit."),
    "burst": Field(Int(1), 1, "Depth of the submit token bucket."),
    "delivery_rate": Field(_RATE, None, "Delivery attempts per second, all destinations together; null: no limit."),
    "delivery_burst": Field(Int(1), 1, "Depth of the delivery token bucket."),
    "validity": Field(Seconds(), 86400.0, "Validity period of a message whose submit gives none."),
    "attempt_timeout": Field(Seconds(positive=True), 30.0, "A delivery attempt with no answer after this times out."),
    "retry": Field(Struct({
        "initial": Field(Seconds(positive=True), 30.0, "Wait before the first retry."),
        "factor": Field(Float(1.0), 2.0, "Each wait is the previous one times this."),
        "max": Field(Seconds(), 3600.0, "Longest wait between two attempts."),
        "max_attempts": Field(Nullable(Int(1)), None, "Attempts before the message fails; null: until it expires."),
    }), {}, "Back-off between the delivery attempts of one message."),
    "queue_limit": Field(Nullable(Int(0)), None, "Messages stored at once; more are refused (null: no limit)."),
    "alert_sc": Field(Bool(), False, "Alert-SC: retry at once when an absent device is back (end of its down period)."),
    "availability": Field(Nullable(Struct({
        "mean_up": Field(Seconds(positive=True), REQUIRED, "Mean time a device stays reachable."),
        "mean_down": Field(Seconds(positive=True), REQUIRED, "Mean time a device stays switched off."),
    })), None, "Each device goes on and off (exponential periods, a two-state Markov process); null: always on."),
}, doc="A store-and-forward SMSC (sim/agents/smsc.py); its radio leg is links.sms, with its tap.")
"""The keys of a scenario's ``smsc`` block, with their defaults and checks."""

_DRIVER_SCHEMA = Struct({
    **SMSC_SCHEMA.fields,
    "radio": Field(Nullable(Raw("a link spec")), None, "The radio, SC -> MS (sim/links/link.py checks it)."),
    "radio_up": Field(Nullable(Raw("a link spec")), None, "The radio, MS -> SC; null: the same as radio."),
})


@dataclass(frozen=True)
class SmscSpec:
    """A parsed spec: the core's config and the driver's own settings."""

    config: SmscConfig
    availability: tuple[float, float] | None
    radio: dict | None
    radio_up: dict | None
    alert_sc: bool


def parse_smsc_spec(spec: dict | None, path: str = "smsc") -> SmscSpec:
    """Return the SmscSpec of ``spec`` (module docstring); ScenarioError if it is malformed.

    ``spec`` is checked against ``SMSC_SCHEMA`` plus the radio keys, so a scenario's block (already
    validated, defaults filled in) and a hand-written dict read the same way."""
    d = validate(_DRIVER_SCHEMA, {} if spec is None else spec, tuple(path.split(".")))
    retry = d["retry"]
    config = SmscConfig(
        submit_rate=d["submit_rate"], burst=d["burst"], delivery_rate=d["delivery_rate"],
        delivery_burst=d["delivery_burst"], validity=d["validity"],
        retry_initial=retry["initial"], retry_factor=retry["factor"], retry_max=retry["max"],
        max_attempts=retry["max_attempts"], attempt_timeout=d["attempt_timeout"], queue_limit=d["queue_limit"])
    avail = d["availability"]
    availability = None if avail is None else (avail["mean_up"], avail["mean_down"])
    radio, radio_up = d["radio"], d["radio_up"]
    for key, value in (("radio", radio), ("radio_up", radio_up)):
        if value is not None and not isinstance(value, dict):
            raise ScenarioError(f"expected a mapping, got {kind_of(value)}", path=f"{path}.{key}",
                                expected="a link spec (a mapping)")
    return SmscSpec(config, availability, radio, radio if radio_up is None else radio_up, d["alert_sc"])


class _Device:
    __slots__ = ("address", "on_sms", "on_report", "on_submitted", "up", "until", "alert_pending")

    def __init__(self, address: str, on_sms: DeviceHandler, on_report: ReportHandler | None,
                 on_submitted: SubmittedHandler | None):
        self.address = address
        self.on_sms = on_sms
        self.on_report = on_report
        self.on_submitted = on_submitted
        self.up = True
        self.until = math.inf  # end of the current up/down period
        self.alert_pending = False


class SmscDriver(Agent):
    """An SMSC in ``env``: the ``Smsc`` core, two radio SimLinks and the devices' reachability.

    As a replica's agent (``sim/model/registry.py``), it exists when the scenario has an
    ``smsc`` block; its downlink radio is ``links.sms`` (delay, loss, and the same tap).
    """

    name = block = "smsc"

    @classmethod
    def for_replica(cls, replica) -> "SmscDriver":
        """Return the replica's SMSC: the ``smsc`` block over the ``links.sms`` radio, its tap included."""
        sms = replica.data["links"]["sms"]
        driver = cls(replica.env, {**replica.data["smsc"], "radio": without_tap(sms)}, seed=replica.seed,
                     stream=("replica", replica.replica, "sweep", replica.sweep, "smsc"))
        driver.down.tap = replica.sms.tap
        return driver

    def stats(self) -> dict[str, dict]:
        """Return the counters this agent adds to ``summary.json``'s ``network`` block."""
        return {"smsc": {**self.core.counts, **self.counts}}

    def __init__(self, env: simpy.Environment, spec: dict | None, *, seed: int,
                 stream: tuple = ("smsc",), name: str = "smsc", address: Address = SC_ADDRESS,
                 epoch=EPOCH):
        self.env = env
        self.spec = parse_smsc_spec(spec, name)
        self.core = Smsc(self.spec.config, address=address, epoch=epoch)
        self.down = SimLink(env, f"{name}.radio", self.spec.radio, substream(seed, *stream, "down"))
        self.up = SimLink(env, f"{name}.radio_up", self.spec.radio_up, substream(seed, *stream, "up"))
        self._avail_rng = substream(seed, *stream, "availability")
        self._devices: dict[str, _Device] = {}
        self._apps: dict[str, tuple[AppHandler, AppReportHandler | None]] = {}
        self._wakes: set[float] = set()
        self.counts = {"absent": 0, "no_answer": 0, "reports_sent": 0, "reports_lost": 0,
                       "mo_dropped": 0, "mo_bad": 0}

    # -- endpoints ----------------------------------------------------------------------------
    def add_device(self, address: str, on_sms: DeviceHandler, *, on_report: ReportHandler | None = None,
                   on_submitted: SubmittedHandler | None = None) -> None:
        """Register a mobile at ``address``; its reachability follows the spec's availability."""
        dev = _Device(address, on_sms, on_report, on_submitted)
        if self.spec.availability is not None:
            mean_up, mean_down = self.spec.availability
            dev.up = self._avail_rng.random() < mean_up / (mean_up + mean_down)
            dev.until = self.env.now + self._avail_rng.expovariate(1.0 / (mean_up if dev.up else mean_down))
        self._devices[address] = dev

    def rehandle(self, address: str, on_sms: DeviceHandler) -> None:
        """Give the device at ``address`` another SMS handler (its reachability path is kept); a
        device that never attached is left alone."""
        dev = self._devices.get(address)
        if dev is not None:
            dev.on_sms = on_sms

    def add_application(self, address: str, on_sms: AppHandler,
                        on_report: AppReportHandler | None = None) -> None:
        """Register an application (ESME) at ``address``: MO messages to it go to ``on_sms``,
        status reports of its messages to ``on_report`` (the action: message id, TP-ST, TPDU)."""
        self._apps[address] = (on_sms, on_report)

    def reachable(self, address: str) -> bool:
        """Return whether the device at ``address`` is reachable now (advancing its on/off path)."""
        dev = self._devices[address]
        now = self.env.now
        if dev.until <= now and self.spec.availability is not None:
            mean_up, mean_down = self.spec.availability
            rng = self._avail_rng
            while dev.until <= now:
                dev.up = not dev.up
                dev.until += rng.expovariate(1.0 / (mean_up if dev.up else mean_down))
        return dev.up

    def set_reachable(self, address: str, up: bool) -> None:
        """Switch the device at ``address`` on or off until told otherwise (Alert-SC if on)."""
        dev = self._devices[address]
        dev.up, dev.until = up, math.inf
        if up and self.spec.alert_sc:
            self.core.alert(address, self.env.now)
            self._pump()

    # -- submits ------------------------------------------------------------------------------
    def submit(self, sm: ShortMessage) -> SubmitResult:
        """Return the SC's answer to an application's submit of ``sm`` (the MT path)."""
        result = self.core.submit(sm, self.env.now)
        self._pump()
        return result

    def submit_from_device(self, address: str, tpdu: bytes) -> bool:
        """Send the SMS-SUBMIT ``tpdu`` from the device at ``address`` up the radio link.

        Return False (nothing sent) if the device is unreachable now.
        """
        if not self.reachable(address):
            self.counts["mo_dropped"] += 1
            return False
        self.up.send(Message(tpdu, address, "smsc", "sms-submit"), self._mo_arrived)
        return True

    def _mo_arrived(self, msg: Message) -> None:
        try:
            result = self.core.submit_tpdu(msg.payload, msg.src, self.env.now)
        except DmsimError:
            self.counts["mo_bad"] += 1
            result = None
        dev = self._devices[msg.src]
        if dev.on_submitted is not None:
            self.down.send(Message(b"", "smsc", msg.src, "rp-answer", result), self._mo_answered)
        self._pump()

    def _mo_answered(self, msg: Message) -> None:
        dev = self._devices[msg.dst]
        if self.reachable(msg.dst):
            dev.on_submitted(msg.meta, self.env.now)

    # -- the core's clock ----------------------------------------------------------------------
    def _pump(self) -> None:
        now = self.env.now
        actions = self.core.poll(now)
        while actions:
            for action in actions:
                if isinstance(action, Deliver):
                    self._deliver(action)
                else:
                    self._status_report(action)
            actions = self.core.poll(now)
        deadline = self.core.next_deadline()
        if deadline is not None:
            deadline = max(deadline, now)
            if not any(t <= deadline for t in self._wakes):
                self._wakes.add(deadline)
                self.env.timeout(deadline - now, deadline).callbacks.append(self._woken)

    def _woken(self, event: simpy.Event) -> None:
        self._wakes.discard(event.value)
        self._pump()

    # -- delivery attempts ---------------------------------------------------------------------
    def _deliver(self, action: Deliver) -> None:
        now = self.env.now
        dev = self._devices.get(action.dst)
        if dev is None:
            app = self._apps.get(action.dst)
            result = AttemptResult.unknown() if app is None else app[0](action, now)
            self.core.report(action.msg_id, action.attempt, result, now)
            return
        if not self.reachable(action.dst):
            self.counts["absent"] += 1
            self.core.report(action.msg_id, action.attempt, AttemptResult.absent(), now)
            if self.spec.alert_sc and not dev.alert_pending and dev.until < math.inf:
                dev.alert_pending = True
                self.env.timeout(dev.until - now, dev).callbacks.append(self._alert)
            return
        self.down.send(Message(action.tpdu, "smsc", action.dst, "sms-deliver", action),
                       self._at_device)

    def _alert(self, event: simpy.Event) -> None:
        dev: _Device = event.value
        dev.alert_pending = False
        if self.reachable(dev.address):
            self.core.alert(dev.address, self.env.now)
            self._pump()

    def _at_device(self, msg: Message) -> None:
        if not self.reachable(msg.dst):
            self.counts["no_answer"] += 1
            return
        result = self._devices[msg.dst].on_sms(msg.payload, self.env.now)
        if result is None:
            self.counts["no_answer"] += 1
            return
        self.up.send(Message(result.user_data, msg.dst, "smsc", result.kind, (msg.meta, result)),
                     self._answered)

    def _answered(self, msg: Message) -> None:
        action, result = msg.meta
        self.core.report(action.msg_id, action.attempt, result, self.env.now)
        self._pump()

    # -- status reports --------------------------------------------------------------------------
    def _status_report(self, action: StatusReport) -> None:
        self.counts["reports_sent"] += 1
        dev = self._devices.get(action.to)
        if dev is None:
            app = self._apps.get(action.to)
            if app is not None and app[1] is not None:
                app[1](action, self.env.now)
            elif app is None:
                self.counts["reports_lost"] += 1
            return
        self.down.send(Message(action.tpdu, "smsc", action.to, "sms-status-report", action),
                       self._report_at_device)

    def _report_at_device(self, msg: Message) -> None:
        dev = self._devices[msg.dst]
        if not self.reachable(msg.dst):
            self.counts["reports_lost"] += 1
        elif dev.on_report is not None:
            dev.on_report(msg.payload, self.env.now)
