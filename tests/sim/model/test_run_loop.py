"""Issue 17: the replica's event loop and the link's pass-through tap, made cheaper per event, do
what they did: every event counted, the hooks and the stop check at the same steps, the same
deliveries at the same times, the pass-through tap's ``seen`` count."""
from __future__ import annotations

import random
import threading

import pytest
import simpy

from conftest import run_replica
from dmsim.sim.links.link import Message, SimLink
from dmsim.sim.links.tap import Tap
from dmsim.sim.model.replica import Replica
from dmsim.sim.real.components import ALL
from dmsim.sim.scenario.format import parse_scenario

SMALL = """
name: t
seed: 9
duration: 600
fleet: {size: 12, profiles: [{name: a, dm_auth: hmac}]}
arrival: {kind: poisson, rate: 2}
links:
  sms: {delay: {kind: lognormal, median: 2.0, sigma: 0.5}, loss: 0.05}
  ip: {delay: {kind: exponential, mean: 0.05}}
"""


def _model() -> tuple[Replica, list]:
    data = parse_scenario(SMALL, "t.yaml", []).data
    rows: list = []
    return Replica(data, seed=data["seed"], replica=0, sweep=0, sweep_value=None, write=rows.append,
                   components=ALL), rows


def _counting(model: Replica) -> list[int]:
    """Count the events the environment processes (the reference for ``model.steps``)."""
    count = [0]
    step = model.env.step

    def counted():
        step()
        count[0] += 1
    model.env.step = counted
    return count


@pytest.mark.parametrize("hook_every, with_stop", [(4096, True), (300, True), (100, False), (1, True), (7, False)])
def test_steps_and_hooks_are_those_of_a_per_event_check(hook_every, with_stop):
    model, rows = _model()
    count = _counting(model)
    seen = []
    model.run(step_hook=lambda r: seen.append(r.steps), hook_every=hook_every,
              stop=threading.Event() if with_stop else None)
    assert model.steps == count[0] > 100
    assert seen == list(range(hook_every, count[0] + 1, hook_every))
    assert len(rows) == model.arrived


def test_stop_is_raised_at_the_first_multiple_of_256_after_it_is_set():
    model, _ = _model()
    count = _counting(model)
    stop = threading.Event()

    def hook(r):
        if r.steps == 100:
            stop.set()
    with pytest.raises(KeyboardInterrupt):
        model.run(step_hook=hook, hook_every=100, stop=stop)
    assert model.steps == count[0] == 256


def test_same_rows_as_the_reference_loop():
    """The horizon ends the run where ``horizon.processed`` did: the rows match a plain env.run."""
    model, rows = _model()
    model.run()
    _, again = run_replica(SMALL)
    assert sorted(rows, key=lambda r: r[3]) == again


def _pass_through(observer=None) -> tuple[list, Tap]:
    env = simpy.Environment()
    tap = Tap()
    link = SimLink(env, "t", {"delay": {"kind": "exponential", "mean": 1.0}, "loss": 0.1, "duplicate": 0.1},
                   random.Random(4), tap)
    link.observer = observer
    got = []
    sent = [Message(i.to_bytes(2, "big"), "a", "b", "dm", i) for i in range(400)]
    for msg in sent:
        link.send(msg, lambda m: got.append((env.now, m.meta, m.payload, m in sent)))
    env.run()
    return got, tap


class Observer:
    def sent(self, link, msg, deliver):
        return deliver

    def outcome(self, link, msg, what):
        pass

    def tapped(self, link, msg, deliveries):
        assert deliveries == [(0.0, msg.payload)]


def test_pass_through_tap_delivers_as_through_on_message():
    fast, fast_tap = _pass_through()
    slow, slow_tap = _pass_through(Observer())  # an observer takes the on_message path
    assert fast == slow and fast_tap.counts == slow_tap.counts
    assert 300 < fast_tap.counts["seen"] < 400 and all(same for *_, same in fast)
