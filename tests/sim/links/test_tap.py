"""Adversary taps: each built-in action, its counts, ``match``, and spec validation."""
from __future__ import annotations

import math
import random

import pytest
import simpy

from dmsim.base.errors import ScenarioError
from dmsim.sim.links.link import Message, SimLink
from dmsim.sim.links.tap import (DelayTap, DropTap, ObserveTap, ReplayTap, TamperTap, Tap,
                           make_tap)

N = 20000
PAYLOAD = bytes(range(32))


def msg(kind: str = "dm", payload: bytes = PAYLOAD) -> Message:
    return Message(payload, "server", "device", kind)


def hits(tap: Tap, n: int = N, seed: int = 5, kind: str = "dm") -> list:
    rng = random.Random(seed)
    return [tap.on_message(msg(kind), float(i), rng) for i in range(n)]


@pytest.mark.parametrize("spec", [None, {"kind": "none"}])
def test_none_passes_and_counts_seen(spec):
    tap = make_tap(spec)
    m = msg()
    assert tap.on_message(m, 0.0, random.Random(0)) == [(0.0, m.payload)]
    assert tap.counts == {"seen": 1, "dropped": 0, "delayed": 0, "replayed": 0, "tampered": 0}


def test_observe_keeps_a_bounded_log():
    tap = make_tap({"kind": "observe", "limit": 3})
    assert isinstance(tap, ObserveTap)
    out = hits(tap, n=5)
    assert all(o == [(0.0, PAYLOAD)] for o in out)
    assert list(tap.log) == [(t, "server", "device", 32) for t in (2.0, 3.0, 4.0)]
    assert tap.counts["seen"] == 5


def test_drop_rate():
    tap = make_tap({"kind": "drop", "probability": 0.3})
    assert isinstance(tap, DropTap)
    out = hits(tap)
    dropped = sum(o == [] for o in out)
    assert dropped == tap.counts["dropped"]
    assert abs(dropped / N - 0.3) < 4 * math.sqrt(0.3 * 0.7 / N)


def test_probability_defaults_to_always():
    tap = make_tap({"kind": "drop"})
    assert all(o == [] for o in hits(tap, n=50))


def test_delay_adds_an_extra_delay():
    tap = make_tap({"kind": "delay", "probability": 1.0, "extra": {"kind": "fixed", "value": 2.0}})
    assert isinstance(tap, DelayTap)
    assert hits(tap, n=3) == [[(2.0, PAYLOAD)]] * 3
    assert tap.counts["delayed"] == 3


def test_replay_delivers_the_original_and_a_later_copy():
    tap = make_tap({"kind": "replay", "probability": 0.5,
                    "after": {"kind": "exponential", "mean": 10.0}})
    assert isinstance(tap, ReplayTap)
    out = hits(tap, n=1000)
    replayed = [o for o in out if len(o) == 2]
    assert len(replayed) == tap.counts["replayed"] and 400 < len(replayed) < 600
    for (d0, p0), (d1, p1) in replayed:
        assert d0 == 0.0 and d1 >= 0.0 and p0 == p1 == PAYLOAD


def test_tamper_flips_exactly_one_byte():
    tap = make_tap({"kind": "tamper"})
    assert isinstance(tap, TamperTap)
    offsets = set()
    for [(delay, payload)] in hits(tap, n=500):
        diff = [i for i in range(len(PAYLOAD)) if payload[i] != PAYLOAD[i]]
        assert delay == 0.0 and len(payload) == len(PAYLOAD) and len(diff) == 1
        offsets.add(diff[0])
    assert tap.counts["tampered"] == 500
    assert len(offsets) == len(PAYLOAD)  # every offset is reachable


def test_tamper_match_restricts_to_one_message_kind():
    tap = make_tap({"kind": "tamper", "probability": 1.0, "match": "bootstrap"})
    assert hits(tap, n=10, kind="dm") == [[(0.0, PAYLOAD)]] * 10
    assert tap.counts == {"seen": 10, "dropped": 0, "delayed": 0, "replayed": 0, "tampered": 0}
    [[(_, changed)]] = hits(tap, n=1, kind="bootstrap")
    assert changed != PAYLOAD and tap.counts["tampered"] == 1


def test_non_matching_messages_cost_no_draw():
    tap = make_tap({"kind": "drop", "probability": 0.5, "match": "bootstrap"})
    rng = random.Random(1)
    state = rng.getstate()
    tap.on_message(msg("dm"), 0.0, rng)
    assert rng.getstate() == state


def test_tamper_leaves_an_empty_payload_alone():
    tap = make_tap({"kind": "tamper"})
    assert tap.on_message(msg(payload=b""), 0.0, random.Random(0)) == [(0.0, b"")]
    assert tap.counts["tampered"] == 0


def test_tamper_is_reproducible_from_the_seed():
    assert hits(make_tap({"kind": "tamper"}), n=50, seed=9) == hits(
        make_tap({"kind": "tamper"}), n=50, seed=9)
    assert hits(make_tap({"kind": "tamper"}), n=50, seed=9) != hits(
        make_tap({"kind": "tamper"}), n=50, seed=10)


class SwapTap(Tap):
    """A custom tap as later man-in-the-middle taps will be: overrides ``act`` only."""

    def act(self, msg, now, rng):
        return [(0.5, msg.payload[::-1])]


def test_taps_on_a_link_shape_what_arrives():
    env = simpy.Environment()
    got = []
    spec = {"delay": {"kind": "fixed", "value": 1.0}}
    links = [
        SimLink(env, "drop", spec, random.Random(1), make_tap({"kind": "drop"})),
        SimLink(env, "delay", spec, random.Random(1),
                make_tap({"kind": "delay", "extra": {"kind": "fixed", "value": 2.0}})),
        SimLink(env, "replay", spec, random.Random(1),
                make_tap({"kind": "replay", "after": {"kind": "fixed", "value": 5.0}})),
        SimLink(env, "swap", spec, random.Random(1), SwapTap()),
    ]
    for link in links:
        link.send(msg(), lambda m, name=link.name: got.append((env.now, name, m.payload)))
    env.run()
    assert sorted(got) == [(1.0, "replay", PAYLOAD), (1.5, "swap", PAYLOAD[::-1]),
                           (3.0, "delay", PAYLOAD), (6.0, "replay", PAYLOAD)]
    assert [link.delivered for link in links] == [0, 1, 2, 1]


@pytest.mark.parametrize("spec", [
    "drop",
    {},
    {"kind": "mitm"},
    {"kind": "none", "probability": 1},
    {"kind": "observe", "limit": 0},
    {"kind": "observe", "limit": 2.5},
    {"kind": "drop", "probability": 2},
    {"kind": "drop", "probability": "half"},
    {"kind": "drop", "extra": {"kind": "fixed", "value": 1}},
    {"kind": "delay"},
    {"kind": "delay", "extra": {"kind": "fixed", "value": -1}},
    {"kind": "replay", "after": 3},
    {"kind": "tamper", "match": 7},
])
def test_bad_tap_specs_raise_scenario_error(spec):
    with pytest.raises(ScenarioError):
        make_tap(spec)


def test_a_drop_tap_matching_dm_drops_dm_sessions_and_spares_the_sms_bootstrap():
    """On links.ip with match dm, every DM request is dropped (sessions end ip_timeout) while the
    bootstraps over links.sms are untouched (every device got its account)."""
    from conftest import run_replica
    model, rows = run_replica("fleet: {size: 3}\nlinks: {ip: {tap: {kind: drop, probability: 1.0, match: dm}}}\n"
                              "client: {request_timeout: 1, request_retries: 0}\n")
    assert {r[6] for r in rows} == {"ip_timeout"} and all(r[9] is not None for r in rows)
    assert model.ip_up.tap.counts["dropped"] >= 3


def test_the_servers_replay_refusals_reach_the_summary_counters():
    """An adversary replaying every HMAC-mode DM request 0.25 s later, when the server has moved
    on to the next message: the server refuses the replayed package 1 (x-syncml-hmac replay
    cache, OMA-TS-DM_Security §5.6.1.2) and the count is written to the replica's counters
    (summary.json network ``dm_server.integrity_refused``); the sessions are not disturbed."""
    from conftest import run_replica
    model, rows = run_replica("fleet: {size: 3, profiles: [{name: h, dm_auth: hmac}]}\n"
                              "server: {service_time: {kind: fixed, value: 0.0}}\n"
                              "links: {ip: {delay: {kind: fixed, value: 0.1}, tap: {kind: replay, probability: 1.0, "
                              "match: dm, after: {kind: fixed, value: 0.25}}}}\n")
    assert {r[5] for r in rows} == {"ok"}
    assert model.stats()["dm_server.integrity_refused"]["replay"] >= 3
