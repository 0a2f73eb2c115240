"""Deadlines (sim/links/deadline.py): a wait for an answer or a timeout resumes its process at the
same instant, in the same order and with the same outcome as ``event | env.timeout(t)``, with no
SimPy timer left behind per answered wait."""
from __future__ import annotations

import math
import random

import pytest
import simpy

from dmsim.sim.links.deadline import Deadlines, delay_until


class CountingEnv(simpy.Environment):
    """An environment that counts the events it schedules."""

    def __init__(self):
        super().__init__()
        self.scheduled = 0

    def schedule(self, event, priority=1, delay=0):
        self.scheduled += 1
        super().schedule(event, priority, delay)


def _workload(env, wait, log, seed: int, devices: int = 60, waits: int = 6):
    """Devices that each send requests and wait for the answer or ``timeout``; an answer comes
    after a random delay (sometimes never, sometimes late, sometimes exactly at the deadline, the
    answer's timer scheduled before the wait's as a link's is). Logs every resumption."""
    rng = random.Random(seed)

    def device(n: int, start: float):
        yield env.timeout(start)
        for i in range(waits):
            timeout = rng.choice((30.0, 30.0, 5.0, 0.7))
            done = env.event()
            kind = rng.random()
            if kind < 0.6:
                delay = rng.expovariate(1 / (timeout / 4))
            elif kind < 0.75:
                delay = timeout  # a tie with the deadline, at the same float
            elif kind < 0.9:
                delay = None
            else:
                delay = timeout + rng.random()
            if delay is not None:
                env.timeout(delay, (n, i)).callbacks.append(
                    lambda e, done=done: done.triggered or done.succeed(e.value))
            yield wait(done, timeout)
            log.append((env.now, n, i, done.value if done.triggered else None))
            if rng.random() < 0.3:
                yield env.timeout(rng.choice((0.0, rng.random())))

    for n in range(devices):
        env.process(device(n, rng.choice((0.0, rng.random() * 50, float(n % 5)))))
    env.run()


@pytest.mark.parametrize("seed", range(8))
def test_waits_end_as_with_a_timeout_condition(seed):
    condition_log, deadline_log = [], []
    env = CountingEnv()
    _workload(env, lambda done, t: done | env.timeout(t), condition_log, seed)
    with_conditions = env.scheduled
    env = CountingEnv()
    deadlines = Deadlines(env)
    _workload(env, deadlines.first, deadline_log, seed)
    assert deadline_log == condition_log
    assert env.scheduled < with_conditions


def test_an_answered_wait_leaves_no_timer():
    env = CountingEnv()
    deadlines = Deadlines(env)
    got = []

    def device(n):
        for _ in range(20):
            done = env.event()
            env.timeout(0.1 + n * 1e-3).callbacks.append(lambda e, done=done: done.succeed("answer"))
            yield deadlines.first(done, 30.0)
            got.append(done.value)

    for n in range(50):
        env.process(device(n))
    env.run()
    assert got == ["answer"] * 1000
    # per wait: the answer's timer, the answer, the waiter; plus the processes and a few deadline timers
    assert env.scheduled <= 1000 * 3 + 50 * 2 + 5
    assert deadlines.pending() == 0


def test_deadline_passes_at_exactly_now_plus_timeout():
    env = simpy.Environment()
    deadlines = Deadlines(env)
    ends = []

    def waiter(start, timeout):
        yield env.timeout(start)
        began = env.now
        yield deadlines.first(env.event(), timeout)
        ends.append((env.now, began + timeout))

    rng = random.Random(3)
    for _ in range(300):
        env.process(waiter(rng.random() * 1000, rng.choice((0.1, 30.0, 1e-9, 77.7))))
    env.run()
    assert len(ends) == 300 and all(got == want for got, want in ends)


def test_an_event_already_processed_ends_the_wait_at_once():
    env = simpy.Environment()
    deadlines = Deadlines(env)
    done = env.event()
    done.succeed(7)
    env.run()
    seen = []

    def proc():
        yield deadlines.first(done, 5.0)
        seen.append(env.now)

    env.process(proc())
    env.run()
    assert seen == [0.0]


@pytest.mark.parametrize("seed", range(5))
def test_delay_until_never_overshoots(seed):
    rng = random.Random(seed)
    for _ in range(20000):
        now = rng.choice((0.0, rng.random(), rng.random() * 1e6, rng.uniform(1e3, 1e9)))
        at = now + rng.choice((rng.random(), rng.random() * 1e5, 1e-12, 30.0))
        d = delay_until(now, at)
        assert d >= 0.0 and now + d <= at
        if now >= at / 2:
            assert now + d == at
        assert math.isfinite(d)
