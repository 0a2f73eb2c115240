"""Agents, not branches: a new network agent or device kind is a class and one registration; the
replica builds it, runs it and reports it without a line of its own changing."""
import pytest

from dmsim.sim.agents.agent import Agent
from dmsim.sim.model import registry
from dmsim.sim.model.replica import Replica
from dmsim.sim.scenario.format import parse_scenario

SCENARIO = """
name: registry
seed: 5
duration: 600
fleet: {size: 6}
arrival: {kind: poisson, rate: 1}
"""


class Census(Agent):
    """A network agent that counts the devices alive every 10 simulated seconds (no random draws)."""

    name = "census"  # no block: always on

    @classmethod
    def for_replica(cls, replica):
        return cls(replica)

    def __init__(self, replica):
        self.replica, self.peak = replica, 0
        replica.env.process(self._tick())

    def _tick(self):
        while True:
            self.peak = max(self.peak, len(self.replica.live))
            yield self.replica.env.timeout(10)

    def stats(self):
        return {"census": {"peak_live": self.peak}}


class Quiet:
    """A device kind that records itself as failed the moment it arrives."""

    @staticmethod
    def life(replica, ident):
        dev = type("QuietState", (), {})()
        dev.ident, dev.card, dev.client, dev.t_arrival = ident, None, None, replica.env.now
        for name in ("t_bootstrap_sent", "t_bootstrap_ok", "t_session_start", "ota_latency"):
            setattr(dev, name, None)
        for name in ("bootstrap_sends", "rejected", "ip_retries", "sms_msgs", "sms_bytes", "ip_msgs", "ip_bytes"):
            setattr(dev, name, 0)
        dev.ota, dev.protocol = "", "quiet"
        replica.live[ident.index] = dev
        replica.finish(dev, False, "quiet")
        yield replica.env.timeout(0)


def run(data):
    rows = []
    model = Replica(data, seed=data["seed"], replica=0, sweep=0, sweep_value=None, write=rows.append)
    model.run()
    return model, sorted(rows, key=lambda r: r[3])


def test_a_registered_network_agent_is_built_run_and_reported(monkeypatch):
    data = parse_scenario(SCENARIO, "t.yaml").data
    _, plain = run(data)
    monkeypatch.setattr(registry, "NETWORK_AGENTS", registry.NETWORK_AGENTS + (Census,))
    model, rows = run(data)
    assert isinstance(model.agents["census"], Census)
    assert model.stats()["census"]["peak_live"] >= 1
    assert rows == plain  # an agent that draws nothing changes no record


def test_a_registered_device_kind_runs_its_own_life(monkeypatch):
    data = parse_scenario(SCENARIO, "t.yaml").data
    monkeypatch.setitem(registry.DEVICE_AGENTS, "quiet", Quiet)
    data["fleet"]["profiles"][0]["device"] = "quiet"
    model, rows = run(data)
    assert [(r[5], r[6]) for r in rows] == [("failed", "quiet")] * 6
    assert not model.live


def test_the_profile_names_a_registered_kind():
    from dmsim.base.errors import ScenarioError
    with pytest.raises(ScenarioError, match="device"):
        parse_scenario(SCENARIO.replace("fleet: {size: 6}", "fleet: {size: 2, profiles: [{name: a, device: zigbee}]}"),
                       "t.yaml")
