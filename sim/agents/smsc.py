"""SimPy driver of the store-and-forward SMSC core (``network/sms/smsc.py``); no protocol logic.

The core decides; this module moves its TPDUs over simulated radio links (``SimLink``, one
each way), asks devices and applications for their answers, and wakes the core with
``env.timeout`` callbacks at ``next_deadline()`` (no SimPy process per message).

Scenario spec (a dict, like the scenario's links; every key optional)::

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
    radio: <link spec>           # sim/links/link.py spec of the radio, SC -> MS   [instantaneous]
    radio_up: <link spec>        # MS -> SC (answers, MO submits)            [same as radio]

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
from dmsim.sim.links.delays import check_keys, require_dict, spec_number
from dmsim.base.errors import DmsimError, ScenarioError
from dmsim.sim.agents.agent import Agent
from dmsim.sim.links.link import Message, SimLink, without_tap
from dmsim.base.rng import substream

DeviceHandler = Callable[[bytes, float], "AttemptResult | None"]
AppHandler = Callable[[Deliver, float], AttemptResult]
ReportHandler = Callable[[bytes, float], None]
AppReportHandler = Callable[[StatusReport, float], None]
SubmittedHandler = Callable[["SubmitResult | None", float], None]

_SPEC_KEYS = {"submit_rate", "burst", "delivery_rate", "delivery_burst", "validity",
              "attempt_timeout", "retry", "queue_limit", "alert_sc", "availability", "radio", "radio_up"}
_RETRY_KEYS = {"initial", "factor", "max", "max_attempts"}
_AVAILABILITY_KEYS = {"mean_up", "mean_down"}


@dataclass(frozen=True)
class SmscSpec:
    """A parsed spec: the core's config and the driver's own settings."""

    config: SmscConfig
    availability: tuple[float, float] | None
    radio: dict | None
    radio_up: dict | None
    alert_sc: bool


def _count(spec: dict, key: str, path: str, default: int | None, minimum: float) -> int | None:
    if spec.get(key) is None:
        return default
    value = spec_number(spec, key, path, minimum=minimum)
    if value != int(value):
        raise ScenarioError(f"{value!r} is not an integer", path=f"{path}.{key}",
                            expected=f"an integer >= {int(minimum)}")
    return int(value)


def parse_smsc_spec(spec: dict | None, path: str = "smsc") -> SmscSpec:
    """Return the SmscSpec of ``spec`` (module docstring); ScenarioError if it is malformed."""
    spec = require_dict({} if spec is None else spec, path)
    check_keys(spec, _SPEC_KEYS, path)
    retry = require_dict(spec.get("retry") or {}, f"{path}.retry")
    check_keys(retry, _RETRY_KEYS, f"{path}.retry")
    rpath = f"{path}.retry"

    def rate(key: str) -> float | None:
        return None if spec.get(key) is None else spec_number(spec, key, path, positive=True)

    config = SmscConfig(
        submit_rate=rate("submit_rate"), burst=_count(spec, "burst", path, 1, 1),
        delivery_rate=rate("delivery_rate"),
        delivery_burst=_count(spec, "delivery_burst", path, 1, 1),
        validity=spec_number(spec, "validity", path, default=86400.0),
        retry_initial=spec_number(retry, "initial", rpath, default=30.0, positive=True),
        retry_factor=spec_number(retry, "factor", rpath, default=2.0, minimum=1.0),
        retry_max=spec_number(retry, "max", rpath, default=3600.0),
        max_attempts=_count(retry, "max_attempts", rpath, None, 1),
        attempt_timeout=spec_number(spec, "attempt_timeout", path, default=30.0, positive=True),
        queue_limit=_count(spec, "queue_limit", path, None, 0))
    availability = None
    if spec.get("availability") is not None:
        apath = f"{path}.availability"
        avail = require_dict(spec["availability"], apath)
        check_keys(avail, _AVAILABILITY_KEYS, apath)
        availability = (spec_number(avail, "mean_up", apath, positive=True),
                        spec_number(avail, "mean_down", apath, positive=True))
    alert = spec.get("alert_sc", False)
    if not isinstance(alert, bool):
        raise ScenarioError(f"{alert!r}", path=f"{path}.alert_sc", expected="true or false")
    radio = spec.get("radio")
    radio = None if radio is None else require_dict(radio, f"{path}.radio")
    radio_up = spec.get("radio_up")
    radio_up = radio if radio_up is None else require_dict(radio_up, f"{path}.radio_up")
    return SmscSpec(config, availability, radio, radio_up, alert)


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
