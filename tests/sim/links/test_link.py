"""SimLink stages (queue/bandwidth, loss, tap, delay, reorder, duplicate) and named RNG substreams."""
from __future__ import annotations

import math
import random

import pytest
import simpy

from dmsim.base.errors import ScenarioError
from dmsim.sim.links.link import Message, SimLink
from dmsim.base.rng import substream, substream_seed
from dmsim.sim.links.tap import make_tap

N = 20000


def within(count: int, n: int, p: float) -> bool:
    """Return True if count/n is within 4 binomial standard errors of p."""
    return abs(count / n - p) < 4 * math.sqrt(p * (1 - p) / n)


def run(spec: dict, sends, *, seed: int = 1, tap=None):
    """Send ``(time, payload)`` pairs through a fresh link; return (link, [(t, seq, payload)])."""
    env = simpy.Environment()
    link = SimLink(env, "test", spec, random.Random(seed), tap)
    got = []

    def sender():
        for seq, (at, payload) in enumerate(sends):
            if at > env.now:
                yield env.timeout(at - env.now)
            link.send(Message(payload, "a", "b", "dm", seq),
                      lambda m: got.append((env.now, m.meta, m.payload)))

    env.process(sender())
    env.run()
    return link, got


def burst(n: int, size: int = 10):
    return [(0.0, bytes(size))] * n


def test_defaults_deliver_everything_at_once():
    link, got = run({}, burst(5))
    assert [seq for _, seq, _ in got] == [0, 1, 2, 3, 4]
    assert all(t == 0.0 for t, _, _ in got)
    assert link.stats() == {"sent": 5, "delivered": 5, "lost": 0, "duplicated": 0,
                            "queue_full": 0, "bytes_sent": 50, "bytes_delivered": 50}


def test_deliver_is_never_called_inside_send():
    env = simpy.Environment()
    link = SimLink(env, "x", None, random.Random(0))
    got = []
    link.send(Message(b"hi", "a", "b", "dm"), got.append)
    assert got == []
    env.run()
    assert len(got) == 1 and got[0].payload == b"hi"


def test_loss_rate():
    link, got = run({"loss": 0.1}, burst(N))
    assert within(link.lost, N, 0.1)
    assert link.delivered == len(got) == N - link.lost


def test_duplicate_rate():
    link, got = run({"duplicate": 0.2, "delay": {"kind": "exponential", "mean": 1.0}}, burst(N))
    assert within(link.duplicated, N, 0.2)
    assert link.delivered == len(got) == N + link.duplicated
    assert link.bytes_delivered == 10 * link.delivered


def test_link_delay_follows_the_model():
    link, got = run({"delay": {"kind": "exponential", "mean": 0.5}}, burst(N))
    times = [t for t, _, _ in got]
    mean = sum(times) / N
    assert abs(mean - 0.5) < 4 * 0.5 / math.sqrt(N)


def test_bandwidth_serialises_back_to_back_messages():
    n, size, bw = 100, 100, 1000.0
    link, got = run({"bandwidth": bw, "delay": {"kind": "fixed", "value": 0.5}}, burst(n, size))
    assert [seq for _, seq, _ in got] == list(range(n))
    for i, (t, _, _) in enumerate(got):
        assert t == pytest.approx(0.5 + (i + 1) * size / bw)
    assert got[-1][0] == pytest.approx(0.5 + n * size / bw)


def test_bandwidth_idle_link_does_not_carry_old_backlog():
    _, got = run({"bandwidth": 100.0}, [(0.0, bytes(100)), (5.0, bytes(50))])
    assert [t for t, _, _ in got] == pytest.approx([1.0, 5.5])


def test_queue_limit_drops_arrivals_beyond_it():
    # 1 s per message: one in transmission + 3 waiting are accepted, the other 6 refused.
    spec = {"bandwidth": 100.0, "queue_limit": 3}
    link, got = run(spec, burst(10, 100))
    assert link.queue_full == 6 and len(got) == 4
    assert [t for t, _, _ in got] == pytest.approx([1.0, 2.0, 3.0, 4.0])
    # At t=2.5 two have finished: one transmitting + one waiting, so two more fit.
    link, got = run(spec, burst(4, 100) + [(2.5, bytes(100))] * 3)
    assert link.queue_full == 1
    assert [seq for _, seq, _ in got] == [0, 1, 2, 3, 4, 5]


def test_queue_limit_zero_accepts_only_on_an_idle_link():
    link, got = run({"bandwidth": 100.0, "queue_limit": 0},
                    burst(3, 100) + [(1.0, bytes(100))])
    assert link.queue_full == 2 and [seq for _, seq, _ in got] == [0, 3]


def test_reorder_lets_later_messages_overtake():
    sends = [(i * 0.1, bytes(4)) for i in range(2000)]
    spec = {"delay": {"kind": "fixed", "value": 0.1}, "reorder": 0.2,
            "reorder_delay": {"kind": "fixed", "value": 1.0}}
    _, got = run(spec, sends)
    order = [seq for _, seq, _ in got]
    assert order != sorted(order)
    held = sum(1 for t, seq, _ in got if t - seq * 0.1 > 0.5)
    assert within(held, 2000, 0.2)
    _, got = run({**spec, "reorder": 0.0}, sends)
    assert [seq for _, seq, _ in got] == list(range(2000))


def test_tap_sits_after_loss_and_before_delay():
    tap = make_tap({"kind": "replay", "after": {"kind": "fixed", "value": 3.0}})
    link, got = run({"loss": 0.5, "delay": {"kind": "fixed", "value": 1.0}}, burst(1000),
                    tap=tap)
    assert tap.counts["seen"] == 1000 - link.lost
    assert len(got) == 2 * tap.counts["seen"]
    assert sorted({t for t, _, _ in got}) == [1.0, 4.0]


def test_tampered_payload_arrives_in_a_new_message_with_the_same_fields():
    env = simpy.Environment()
    tap = make_tap({"kind": "tamper"})
    link = SimLink(env, "x", {}, random.Random(3), tap)
    sent = Message(b"\x00" * 8, "server", "device", "bootstrap", meta={"id": 9})
    got = []
    link.send(sent, got.append)
    env.run()
    (m,) = got
    assert m is not sent and m.payload != sent.payload
    assert (m.src, m.dst, m.kind, m.meta) == ("server", "device", "bootstrap", {"id": 9})


def test_tap_drops_are_counted_by_the_tap_not_as_loss():
    tap = make_tap({"kind": "drop", "probability": 1.0})
    link, got = run({}, burst(10), tap=tap)
    assert got == [] and link.lost == 0 and tap.counts["dropped"] == 10


FULL = {"delay": {"kind": "lognormal", "median": 0.2, "sigma": 0.8}, "loss": 0.1,
        "duplicate": 0.1, "reorder": 0.1, "bandwidth": 2000.0, "queue_limit": 5}


def full_run(seed: int):
    sends = [(i * 0.01, bytes([i % 256]) * (1 + i % 40)) for i in range(3000)]
    tap = make_tap({"kind": "tamper", "probability": 0.1})
    link, got = run(FULL, sends, seed=seed, tap=tap)
    return got, link.stats(), tap.counts


def test_same_seed_same_deliveries_different_seed_different():
    first = full_run(11)
    got, stats, counts = first
    assert all(stats[k] > 0 for k in ("lost", "duplicated", "queue_full")) and counts["tampered"]
    assert first == full_run(11)
    assert first != full_run(12)


@pytest.mark.parametrize("spec", [
    {"loss": 1.5},
    {"loss": -0.1},
    {"duplicate": "often"},
    {"reorder": True},
    {"bandwidth": 0},
    {"queue_limit": 1.5},
    {"queue_limit": -1},
    {"delay": {"kind": "fixed"}},
    {"reorder_delay": {"kind": "exponential", "mean": 0}},
    {"jitter": 0.1},
    [("loss", 0.1)],
])
def test_bad_link_specs_raise_scenario_error(spec):
    with pytest.raises(ScenarioError):
        SimLink(simpy.Environment(), "sms", spec, random.Random(0))


def test_message_is_slotted():
    m = Message(b"x", "a", "b", "dm")
    assert m.meta is None
    with pytest.raises(AttributeError):
        m.extra = 1  # type: ignore[attr-defined]


# -- rng.substream ----------------------------------------------------------------------------

def test_substream_is_pinned_across_processes_and_versions():
    # A golden value: SHA-256 of the canonical encoding, independent of PYTHONHASHSEED.
    assert substream(42, "replica", 0, "link", "sms").random() == 0.5616778197208766


def test_substreams_are_stable_and_distinct():
    a, b = substream(42, "link", "sms"), substream(42, "link", "sms")
    assert [a.random() for _ in range(5)] == [b.random() for _ in range(5)]
    seeds = {substream_seed(42, "link", "sms"), substream_seed(43, "link", "sms"),
             substream_seed(42, "link", "dm"), substream_seed(42, "link", 1),
             substream_seed(42, "link", "1"), substream_seed(42, "link", b"1"),
             substream_seed(42, "linksms"), substream_seed(42, "link", "sms", 0)}
    assert len(seeds) == 8


@pytest.mark.parametrize("seed, names", [("42", ()), (True, ()), (1.0, ()), (1, (2.5,)),
                                         (1, (None,)), (1, (False,))])
def test_substream_refuses_ambiguous_parts(seed, names):
    with pytest.raises(ScenarioError):
        substream(seed, *names)
