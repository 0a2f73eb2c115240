"""The adversary as an agent of the replica: it builds the scenario's ``attacks``, gives them
their positions, and collects their outcomes.

No spec clause (issue 16); the positions are those of ``catalogue.POSITIONS``. What it offers an
attack:

- :meth:`Adversary.tap`: a hook on a simulated link, run after the link's own scenario tap
  (``links.*.tap``): ``hook(msg, now, deliveries)`` returns what is delivered instead
  (``sim/links/tap.py``'s list of ``(extra_delay, payload)``), so it can see, drop, delay, copy,
  change or replace every message that crosses;
- :meth:`Adversary.sms_links` and :meth:`Adversary.ip_links`: the links of ``sms_air`` (with an
  SMSC its radio downlink, else ``links.sms``) and of ``ip`` (both directions);
- :meth:`Adversary.inject_sms`: a false base station's SMS-DELIVER straight to a device's modem;
- :meth:`Adversary.observe_dm`: every device's DM request and its answer, as read on the IP
  path, in the simulated world or against a real server (plain HTTP only: TLS shows nothing);
- :meth:`Adversary.endpoint`: a network endpoint of its own (a pseudo-device with a negative
  index) that the DM-server transport carries like any device, so requests it sends reach the
  simulated server, or a real one (``components.dm_server: socket``), through the same seam;
- :meth:`Adversary.traced`: a line in ``trace.jsonl`` when the device is traced.

Random draws of an attack come from its own stream (``replica.stream("adversary", n, kind)``).
A link draws its delays from one stream per link in message order, so a message an attack drops
or adds shifts the delays of later messages of other devices on that link: a seed reproduces the
attacked run exactly, and an untouched device's outcome stays what it was, but not its timing to
the microsecond.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from dmsim.sim.agents.adversary.catalogue import Attack, check_spec, resolve
from dmsim.sim.agents.agent import Agent
from dmsim.sim.links.tap import Tap

if TYPE_CHECKING:  # pragma: no cover
    from dmsim.sim.links.link import Message, SimLink
    from dmsim.sim.model.replica import Replica

Hook = Callable[["Message", float, list], list]


class HookedTap(Tap):
    """A link's scenario tap followed by the adversary's hooks (``counts`` are the scenario tap's)."""

    kind = "adversary"

    def __init__(self, inner: Tap | None):
        self.inner = inner if inner is not None else Tap()
        self.hooks: list[Hook] = []

    @property
    def counts(self) -> dict[str, int]:  # type: ignore[override]
        return self.inner.counts

    def on_message(self, msg, now, rng):
        deliveries = self.inner.on_message(msg, now, rng)
        for hook in self.hooks:
            deliveries = hook(msg, now, deliveries)
        return deliveries


class Endpoint:
    """A network endpoint of the adversary that transports carry like a device (``ident.index``
    is negative; it never ends, so the server serves it for the whole run)."""

    class _Ident:
        __slots__ = ("index", "uri", "imsi", "profile")

        def __init__(self, index: int, uri: str):
            self.index, self.uri, self.imsi, self.profile = index, uri, uri.removeprefix("IMSI:"), {}

    def __init__(self, index: int, uri: str, account=None):
        self.ident = Endpoint._Ident(index, uri)
        self.account = account
        self.ip_msgs = self.ip_bytes = 0
        self.sms_msgs = self.sms_bytes = 0


class Adversary(Agent):
    """The replica's attacker: ``attacks`` in the scenario's order."""

    name = "adversary"

    @classmethod
    def wanted(cls, data: dict) -> bool:
        return bool(data.get("attacks"))

    @classmethod
    def for_replica(cls, replica: "Replica") -> "Adversary":
        return cls(replica)

    def __init__(self, replica: "Replica"):
        self.replica = replica
        self.env = replica.env
        self.attacks: list[Attack] = []
        self._endpoints = 0
        self.reason = ""  # the failure reason of the device whose record is being written
        for number, spec in enumerate(replica.data["attacks"]):
            path = f"attacks.{number}"
            check_spec(spec, replica.data, path)
            self.attacks.append(resolve(spec["kind"], f"{path}.kind")(self, spec, number))

    def wired(self) -> None:
        """Every agent and transport of the replica exists: install the attacks."""
        for attack in self.attacks:
            attack.install()

    # -- positions ----------------------------------------------------------------------------
    def tap(self, link: "SimLink", hook: Hook) -> None:
        """Run ``hook`` on every message that crosses ``link`` (after its scenario tap)."""
        if not isinstance(link.tap, HookedTap):
            link.tap = HookedTap(link.tap)
        link.tap.hooks.append(hook)

    def sms_links(self) -> list["SimLink"]:
        """The radio leg to the devices (``sms_air``): the SMSC's downlink, or ``links.sms``."""
        smsc = self.replica.agents.get("smsc")
        return [smsc.down] if smsc is not None else [self.replica.sms]

    def ip_links(self) -> list["SimLink"]:
        """The IP path (``ip``): up to the servers, then down to the devices."""
        return [self.replica.ip_up, self.replica.ip_down]

    def inject_sms(self, index: int, pdu: bytes, delay: float = 0.0, after: Callable | None = None) -> bool:
        """Deliver the SMS-DELIVER TPDU ``pdu`` to device ``index``'s modem after ``delay`` (a
        false base station: no SMSC sees it), then call ``after(dev, rejected_before)`` at once
        (before the device's process runs on); return False when the device is not (or no
        longer) in the run."""
        if index not in self.replica.live:
            return False

        def deliver(_event) -> None:
            dev = self.replica.live.get(index)
            if dev is not None:
                rejected = dev.rejected
                dev.on_sms(pdu, self.replica.env.now)
                if after is not None:
                    after(dev, rejected)
        self.env.timeout(delay).callbacks.append(deliver)
        return True

    def observe_dm(self, hook: Callable) -> bool:
        """Let ``hook(dev, body, content_type, headers, reply)`` see every device's DM request and
        its HTTP response as an eavesdropper on the IP path does, with the simulated server or a
        real one (``IpTransport.observe``); False when the path is TLS (nothing readable)."""
        return self.replica.transport.observe(hook)

    def endpoint(self, uri: str, account=None) -> Endpoint:
        """Return a new endpoint of the adversary claiming the DevId ``uri``."""
        self._endpoints += 1
        return Endpoint(-self._endpoints, uri, account)

    # -- records ------------------------------------------------------------------------------
    def traced(self, index: int, kind: str, what: str) -> None:
        """Tell the run's device trace (if any) that ``kind`` acted on device ``index``."""
        trace = self.replica.trace
        if trace is not None and index >= 0 and hasattr(trace, "attack"):
            trace.attack(index, self.env.now, kind, what)

    def device_columns(self, dev, ok: bool, reason: str = "") -> tuple[str | None, str | None]:
        """Tell every attack that ``dev``'s life ended (``Attack.finished``: ``ok``, or failed with
        ``reason``, also kept in :attr:`reason`); return sessions.csv's (``attacks``,
        ``attack_outcome``) of ``dev``: the kinds that acted on it, and the worst verdict among
        them for the defender."""
        from dmsim.sim.agents.adversary.catalogue import _worst
        self.reason = "" if ok else reason
        index = dev.ident.index
        kinds, worst = [], None
        for attack in self.attacks:
            attack.finished(dev, ok, self.reason)
        for attack in self.attacks:
            verdict = attack.device_verdict(dev)
            if index in attack.acted or verdict:
                kinds.append(attack.kind)
                worst = _worst(worst, verdict) if verdict else worst
        return (";".join(kinds) or None), worst

    def outcomes(self) -> list[dict]:
        """Return each attack's outcome, judged now, as JSON data."""
        return [attack.judge().as_dict() for attack in self.attacks]
