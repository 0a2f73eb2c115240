"""One replica of a scenario as a SimPy model: it wires agents to links and collects records.

The replica builds, from the scenario data and its seed only:

- the links: ``sms`` (network to device) and ``ip`` (one each way), with their delay, loss and
  adversary taps (``sim/links/``);
- the network agents registered in ``sim/model/registry.py`` that the scenario wants: the SMSC
  (``smsc`` block), the DM server, the OTA platform (``ota`` block) (``sim/agents/``);
- the components the scenario names, from the component registry it is given
  (``sim/model/components.py``): the DM-server transport, the Ub transport to the BSF (with a
  ``gba`` block), the card seam, a real modem;
- the fleet and its arrival process; each arriving device is the ``life`` of its kind (an OMA DM
  device, ``sim/agents/device/``), which writes one session record through :meth:`Replica.finish`.

The protocol work is done by the sans-IO cores the agents drive; nothing here knows a protocol.
Random draws come from streams named after what they serve (:meth:`Replica.stream`), so a
replica's records depend only on (scenario, seed, replica, sweep point).

Sharding (``shards.py``): a replica can be one shard of a fleet cut over processes; it then starts
only its own devices, draws from streams of its own (the fleet and arrivals excepted), and its
data carries its part of the server's and the SMSC's capacity. One cache is per process rather than
per replica: the X.509 server certificate of ``sim/links/transports.py`` (``server_credential``, keys
from the operating system, not the seed), which only changes byte counts in X.509 mode, never outcomes.
"""
from __future__ import annotations

import dataclasses
import math
import random
import threading
from typing import TYPE_CHECKING, Callable, Mapping

import simpy

from dmsim.base.errors import DmsimError, ScenarioError
from dmsim.base.rng import substream
from dmsim.sim.links.card_access import CardAccess
from dmsim.sim.links.delays import make_delay
from dmsim.sim.links.link import SimLink, without_tap
from dmsim.sim.links.tap import make_tap
from dmsim.sim.links.transports import IpTransport
from dmsim.sim.model.arrivals import arrival_times
from dmsim.sim.model.components import VIRTUAL, Components
from dmsim.sim.model.fleet import Fleet
from dmsim.sim.model.shards import owns
from dmsim.sim.model import registry

if TYPE_CHECKING:  # pragma: no cover
    from dmsim.sim.results.pcap import PcapWriter


class Replica:
    """The model of one replica at one sweep point; ``run()`` writes rows through ``write``.

    Built from the scenario data and the seed alone (nothing module-level): the links, the fleet,
    the network agents of :data:`~dmsim.sim.model.registry.NETWORK_AGENTS` (``agents`` by name),
    and the components of the scenario from ``components`` (the DM-server ``transport``, the
    ``cards`` seam, a real ``modem``). Devices are started as they arrive, each the ``life`` of
    its kind in :data:`~dmsim.sim.model.registry.DEVICE_AGENTS`.
    """

    def __init__(self, data: dict, *, seed: int, replica: int, sweep: int, sweep_value: str | None,
                 write: Callable[[tuple], None], env: simpy.Environment | None = None,
                 pcap: "PcapWriter | None" = None, components: Components = VIRTUAL,
                 state_dir: str | None = None, shard: int = 0, shards: int = 1):
        self.data = data
        self.shard, self.shards = shard, shards  # this model runs devices i with i % shards == shard (shards.py)
        self.state_dir = state_dir  # where agents keep files of the run (the HSS's store); None: in memory
        self.seed = seed
        self.pcap = pcap
        self.trace = None  # the per-device event trace (sim/results/trace.py), set from above; duck-typed
        self.env = env or simpy.Environment()
        self.replica, self.sweep = replica, sweep
        self.sweep_value = "" if sweep_value is None else sweep_value  # the sessions.csv text of the point
        self.write = write
        self.write_sms: Callable[[tuple], None] | None = None
        links = data["links"]
        self.sms = SimLink(self.env, "links.sms", without_tap(links["sms"]), self.stream("link", "sms"),
                           make_tap(links["sms"].get("tap"), "links.sms.tap"))
        self.ip_up = SimLink(self.env, "links.ip", without_tap(links["ip"]), self.stream("link", "ip-up"),
                             make_tap(links["ip"].get("tap"), "links.ip.tap"))
        self.ip_down = SimLink(self.env, "links.ip", without_tap(links["ip"]), self.stream("link", "ip-down"),
                               make_tap(links["ip"].get("tap"), "links.ip.tap"))
        # the fleet and its arrivals are the unsharded ones: device i is the same device in every shard count
        self.fleet = Fleet(data["fleet"], self.whole_stream("fleet"))
        self.arrival_rng = self.whole_stream("arrival")
        self.device_rng = self.stream("devices")
        connect = data["client"].get("connect_time") or {"kind": "fixed", "value": 0.0}
        # None when zero: a device then opens its session at once, with no event in between
        self.connect_time = None if connect == {"kind": "fixed", "value": 0.0} else make_delay(
            connect, "client.connect_time")
        self.connect_rng = self.stream("connect")
        self.agents: dict[str, object] = {}
        for agent in registry.NETWORK_AGENTS:
            if agent.wanted(data):
                self.agents[agent.name] = agent.for_replica(self)
        self.transport: IpTransport = _component(components.dm_server, data["components"]["dm_server"],
                                                 "components.dm_server")(data["components"]["dm_server"], self)
        modem = data["components"]["modem"]
        self.modem = None if modem["kind"] == "virtual" else _component(components.modems, modem,
                                                                       "components.modem")(modem)
        card = data["components"]["card"]
        self.cards = CardAccess(card, self, self.stream("cards"), components.card_readers.get(card["kind"]))
        bsf = data["components"]["bsf"]
        # the devices' Ub transport to the BSF (components.bsf), with the GBA network only
        self.ub = (_component(components.bsf, bsf, "components.bsf")(bsf, self) if "bsf" in self.agents else None)
        for agent in self.agents.values():
            agent.wired()
        self.real_imsis: set[str] = set()  # subscribers of real cards (device 0's PC/SC card or modem SIM)
        self.live: dict[int, object] = {}
        self.arrived = 0  # devices started before ``duration``; the rest of the fleet never arrived
        self.done = 0
        self.steps = 0

    def stream(self, *names) -> random.Random:
        """Return this replica's random stream named ``names`` (``dmsim.base.rng.substream``); a
        shard's streams are its own (``"shard", k`` in the name, ``shards.py``)."""
        if self.shards > 1:
            return self.whole_stream("shard", self.shard, *names)
        return self.whole_stream(*names)

    def whole_stream(self, *names) -> random.Random:
        """Return the stream named ``names`` of the whole replica, the same in every shard."""
        return whole_stream(self.seed, self.replica, self.sweep, *names)

    @property
    def server(self):
        """The DM server agent (``sim/agents/dm_server.py``)."""
        return self.agents["server"]

    # -- driving ----------------------------------------------------------------------------
    def run(self, *, step_hook: Callable[["Replica"], None] | None = None, hook_every: int = 4096,
            stop: threading.Event | None = None) -> None:
        """Run until ``duration``; devices not done by then are written as ``not_finished``.

        ``stop`` is checked every few hundred events; once set, KeyboardInterrupt is raised from
        here. (Raised inside a SimPy process it would only surface once every event already
        queued at that instant had run: minutes for a large fleet arriving at once.)
        """
        env = self.env
        env.process(self._arrivals())
        until = float(self.data["duration"])
        horizon = env.timeout(until)
        step = env.step
        # the checks run every ``tick`` steps: at each multiple of 256 (``stop``) and of ``hook_every``
        tick = math.gcd(256, hook_every) if stop is not None else hook_every
        left = tick
        try:
            while horizon.callbacks is not None:  # ``horizon.processed``, without a property call per event
                step()
                left -= 1
                if not left:
                    left = tick
                    self.steps += tick
                    self._checkpoint(stop, step_hook, hook_every)
        finally:
            self.steps += tick - left
        for index in sorted(self.live):
            self.finish(self.live[index], False, "not_finished")
        self._drain_sms(final=True)

    def _checkpoint(self, stop: threading.Event | None, step_hook: Callable[["Replica"], None] | None,
                    hook_every: int) -> None:
        """Every 256 events, honour ``stop``; every ``hook_every`` events, drain the SMS records
        and call ``step_hook`` (``self.steps`` is the number of events run)."""
        if stop is not None and not self.steps & 255 and stop.is_set():
            raise KeyboardInterrupt
        if not self.steps % hook_every:
            self._drain_sms()
            if step_hook is not None:
                step_hook(self)

    def _drain_sms(self, final: bool = False) -> None:
        """Hand the SMSC's finished message records (at the end, the stored ones too) to ``write_sms``."""
        smsc = self.agents.get("smsc")
        if smsc is None or self.write_sms is None:
            return
        records = smsc.core.drain_records() + (list(smsc.core.pending_records()) if final else [])
        for record in records:
            self.write_sms((self.replica, self.sweep) + record.row())

    def _arrivals(self):
        env = self.env
        shard, shards = self.shard, self.shards
        for index, t in enumerate(arrival_times(self.data["arrival"], self.fleet.size, self.arrival_rng)):
            if t >= self.data["duration"]:
                return
            if shards > 1 and not owns(index, shard, shards):
                self.fleet.device(index)  # another shard's device: its draws are skipped, not left out
                continue
            if t > env.now:
                yield env.timeout(t - env.now)
            ident = self.fleet.device(index)
            self.arrived += 1
            kind = registry.DEVICE_AGENTS[ident.profile.get("device", registry.DEFAULT_DEVICE)]
            env.process(kind.life(self, ident))

    def admit(self, kind, ident):
        """Return the device of ``kind`` for ``ident``, registered as live; a virtual card whose IMSI
        a real card of the run already holds gets a free one (:meth:`free_imsi`)."""
        if ident.imsi in self.real_imsis and self.cards.is_virtual(ident.index):
            ident = dataclasses.replace(ident, imsi=self.free_imsi(ident.imsi))
        dev = kind(self, ident)
        self.live[ident.index] = dev
        return dev

    # -- records ----------------------------------------------------------------------------
    def finish(self, dev, ok: bool, reason: str) -> None:
        """Write the device's session record; a session cut by the horizon has no end time."""
        now = self.env.now
        del self.live[dev.ident.index]
        self.cards.release(dev.ident.index)
        dev.card = None  # a late OTA download finds no card: the device's session is over
        ended = getattr(dev, "ended", None)
        if ended is not None:  # the device kind lets go of what it registered (the SMSC's handler)
            ended()
        self.done += 1
        end = now if dev.t_session_start is not None and reason != "not_finished" else None
        self.write((self.replica, self.sweep, self.sweep_value, dev.ident.index, dev.ident.profile["name"],
                    "ok" if ok else "failed", reason, dev.t_arrival, dev.t_bootstrap_sent, dev.t_bootstrap_ok,
                    dev.t_session_start, end, (now - dev.t_arrival) if ok else None,
                    dev.bootstrap_sends, dev.rejected, dev.client.auth_retries if dev.client else 0, dev.ip_retries,
                    dev.sms_msgs, dev.sms_bytes, dev.ip_msgs, dev.ip_bytes, dev.ota, dev.ota_latency,
                    getattr(dev, "t_gpi_sent", None), getattr(dev, "t_gpi_received", None),
                    getattr(dev, "t_gba_keys", None), getattr(dev, "t_ub_start", None),
                    getattr(dev, "t_ub_ok", None)) + self._attack_columns(dev, ok, reason) + (dev.protocol,))

    def _attack_columns(self, dev, ok: bool, reason: str) -> tuple:
        """Return sessions.csv's ``attacks`` and ``attack_outcome`` of ``dev`` (empty without attacks)."""
        adversary = self.agents.get("adversary")
        return (None, None) if adversary is None else adversary.device_columns(dev, ok, reason)

    def stats(self) -> dict[str, dict]:
        """Return the replica's counters for ``summary.json``'s ``network`` block: each link's
        (with its tap's), then the transport's, the modem's and each agent's."""
        out: dict[str, dict] = {}
        smsc = self.agents.get("smsc")
        # with an SMSC the SMS radio is the SMSC's downlink (links.sms's spec and tap): count that one
        sms = smsc.down if smsc is not None else self.sms
        links = [("links.sms", sms), ("links.ip.up", self.ip_up), ("links.ip.down", self.ip_down)]
        if smsc is not None:
            links.insert(1, ("links.sms.up", smsc.up))  # mobile-originated: RP answers, PoRs, MO SMS
        for name, link in links:
            out[name] = {**link.stats(), "tap": dict(getattr(link.tap, "counts", {}))}
        tls = getattr(self.transport, "stats", None)
        if tls:
            out["tls"] = dict(tls)
        refused = getattr(self.transport, "refused", None)
        if refused:  # the DM server's x-syncml-hmac refusals by verdict (replay, wrong_mac, outside_window, ...)
            out["dm_server.integrity_refused"] = dict(refused)
        if self.modem is not None:
            out["modem"] = dict(self.modem.stats)
        for agent in self.agents.values():
            for section, counts in agent.stats().items():
                out.setdefault(section, {}).update(counts)
        return out

    def close(self) -> None:
        """Release what the replica opened in the real world (a card reader, a serial port)."""
        self.cards.close()
        if self.ub is not None:
            self.ub.close()
        if self.modem is not None:
            self.modem.close()
        for agent in self.agents.values():
            close = getattr(agent, "close", None)
            if close is not None:
                close()

    def free_imsi(self, imsi: str) -> str:
        """Return ``imsi`` under another test MNC (001 02, 001 03, ...): a simulated device whose
        fleet IMSI is a real card's subscriber must not share its account (the fleet uses 001 01)."""
        for mnc in range(2, 100):
            candidate = f"001{mnc:02d}{imsi[5:]}"
            if candidate not in self.real_imsis:
                return candidate
        raise DmsimError(f"no free IMSI for {imsi}")

    def capture(self, write: Callable, *args, **kwargs) -> None:
        """Write a record to the pcap; a PDU the capture cannot frame is left out, not fatal."""
        try:
            write(self.env.now, *args, **kwargs)
        except DmsimError:
            pass


def whole_stream(seed: int, replica: int, sweep: int, *names) -> random.Random:
    """Return the stream named ``names`` of a replica at a sweep point (``dmsim.base.rng.substream``)."""
    return substream(seed, "replica", replica, "sweep", sweep, *names)


def _component(kinds: Mapping[str, Callable], spec: dict, path: str) -> Callable:
    """Return the factory registered for ``spec['kind']``; ScenarioError naming ``path`` if none is."""
    try:
        return kinds[spec["kind"]]
    except KeyError:
        raise ScenarioError(f"no driver for kind {spec['kind']!r} in this replica's components", path=f"{path}.kind",
                            expected=" or ".join(sorted(kinds)) or "a registered kind") from None
