"""The adversary tap: what an attacker on a simulated link does to each message.

Models the threats OMA-TS-DM_Security 1.3 §5.3 (message security: authentication, integrity,
confidentiality) and §5.10 (bootstrap "tampered with en-route", eavesdroppers) defend against:
an eavesdropper (``observe``), a jammer (``drop``), a delaying relay (``delay``), a replayer
(``replay``) and a bit-flipper (``tamper``).

A tap sees every message that survives the link's queue and loss stages and returns what to
deliver: a list of ``(extra_delay, payload)``; ``[]`` drops, ``[(0.0, msg.payload)]`` passes, a
changed payload tampers, a second entry with a later delay replays. Every tap keeps ``counts``
(seen, dropped, delayed, replayed, tampered). Man-in-the-middle taps subclass ``Tap`` and
override ``act``.

Choices where the brief is silent: ``probability`` defaults to 1.0; ``match`` (restrict to
messages whose ``kind`` equals it) is accepted by every acting tap, not only ``tamper``; a
non-matching message costs no random draw; a matching one costs one draw for the coin, then
the draws of its action. ``tamper`` XORs one byte at a uniform offset with a uniform non-zero
mask, so the payload always changes; an empty payload passes untouched and uncounted.
"""
from __future__ import annotations

import random
from collections import deque
from typing import TYPE_CHECKING

from dmsim.sim.links.delays import check_keys, make_delay, require_dict, spec_number, spec_probability
from dmsim.base.errors import ScenarioError

if TYPE_CHECKING:
    from dmsim.sim.links.link import Message

Deliveries = list[tuple[float, bytes]]

COUNT_KEYS = ("seen", "dropped", "delayed", "replayed", "tampered")


class Tap:
    """A tap that passes every message unchanged; the base of all taps."""

    kind = "none"

    def __init__(self) -> None:
        self.counts: dict[str, int] = dict.fromkeys(COUNT_KEYS, 0)

    def on_message(self, msg: Message, now: float, rng: random.Random) -> Deliveries:
        """Return the ``(extra_delay, payload)`` list to deliver for ``msg`` seen at ``now``."""
        self.counts["seen"] += 1
        return self.act(msg, now, rng)

    def act(self, msg: Message, now: float, rng: random.Random) -> Deliveries:
        """Return what to deliver; subclasses override this (``seen`` is already counted)."""
        return [(0.0, msg.payload)]


class ObserveTap(Tap):
    """An eavesdropper: passes everything and logs ``(now, src, dst, len)``, the last ``limit``."""

    kind = "observe"

    def __init__(self, limit: int = 10000):
        super().__init__()
        self.log: deque[tuple[float, str, str, int]] = deque(maxlen=limit)

    def act(self, msg: Message, now: float, rng: random.Random) -> Deliveries:
        """Return the message unchanged after logging it."""
        self.log.append((now, msg.src, msg.dst, len(msg.payload)))
        return [(0.0, msg.payload)]


class ActingTap(Tap):
    """A tap that acts on a matching message with ``probability`` and passes the rest."""

    def __init__(self, probability: float = 1.0, match: str | None = None):
        super().__init__()
        self.probability = probability
        self.match = match

    def act(self, msg: Message, now: float, rng: random.Random) -> Deliveries:
        """Return ``strike(...)`` for a matching message that wins the coin, else pass it."""
        if self.match is not None and msg.kind != self.match:
            return [(0.0, msg.payload)]
        if rng.random() >= self.probability:
            return [(0.0, msg.payload)]
        return self.strike(msg, now, rng)

    def strike(self, msg: Message, now: float, rng: random.Random) -> Deliveries:
        """Return what to deliver when the tap acts on ``msg``."""
        raise NotImplementedError


class DropTap(ActingTap):
    """A jammer: the message is not delivered."""

    kind = "drop"

    def strike(self, msg: Message, now: float, rng: random.Random) -> Deliveries:
        """Return ``[]``."""
        self.counts["dropped"] += 1
        return []


class DelayTap(ActingTap):
    """A delaying relay: the message arrives ``extra`` seconds late."""

    kind = "delay"

    def __init__(self, extra, probability: float = 1.0, match: str | None = None):
        super().__init__(probability, match)
        self.extra = extra

    def strike(self, msg: Message, now: float, rng: random.Random) -> Deliveries:
        """Return the message with one extra delay drawn from ``extra``."""
        self.counts["delayed"] += 1
        return [(self.extra.sample(rng), msg.payload)]


class ReplayTap(ActingTap):
    """A replayer: the original passes and a copy arrives ``after`` seconds later."""

    kind = "replay"

    def __init__(self, after, probability: float = 1.0, match: str | None = None):
        super().__init__(probability, match)
        self.after = after

    def strike(self, msg: Message, now: float, rng: random.Random) -> Deliveries:
        """Return the original and a copy delayed by one draw from ``after``."""
        self.counts["replayed"] += 1
        return [(0.0, msg.payload), (self.after.sample(rng), msg.payload)]


class TamperTap(ActingTap):
    """A bit-flipper: one byte at a random offset is XORed with a random non-zero mask."""

    kind = "tamper"

    def strike(self, msg: Message, now: float, rng: random.Random) -> Deliveries:
        """Return the message with one byte changed (an empty payload passes)."""
        payload = msg.payload
        if not payload:
            return [(0.0, payload)]
        offset = rng.randrange(len(payload))
        mask = rng.randrange(1, 256)
        changed = bytearray(payload)
        changed[offset] ^= mask
        self.counts["tampered"] += 1
        return [(0.0, bytes(changed))]


def _acting_args(spec: dict, path: str) -> dict:
    match = spec.get("match")
    if match is not None and not isinstance(match, str):
        raise ScenarioError(f"got {match!r}", path=f"{path}.match", expected="a message kind string")
    return {"probability": spec_probability(spec, "probability", path, default=1.0), "match": match}


_ACTING_KEYS = {"kind", "probability", "match"}


def _none(spec: dict, path: str) -> Tap:
    check_keys(spec, {"kind"}, path)
    return Tap()


def _observe(spec: dict, path: str) -> Tap:
    check_keys(spec, {"kind", "limit"}, path)
    limit = spec_number(spec, "limit", path, default=10000, positive=True)
    if limit != int(limit):
        raise ScenarioError(f"{limit!r} is not an integer", path=f"{path}.limit",
                            expected="an integer > 0")
    return ObserveTap(int(limit))


def _drop(spec: dict, path: str) -> Tap:
    check_keys(spec, _ACTING_KEYS, path)
    return DropTap(**_acting_args(spec, path))


def _delay(spec: dict, path: str) -> Tap:
    check_keys(spec, _ACTING_KEYS | {"extra"}, path)
    return DelayTap(make_delay(spec.get("extra"), f"{path}.extra"), **_acting_args(spec, path))


def _replay(spec: dict, path: str) -> Tap:
    check_keys(spec, _ACTING_KEYS | {"after"}, path)
    return ReplayTap(make_delay(spec.get("after"), f"{path}.after"), **_acting_args(spec, path))


def _tamper(spec: dict, path: str) -> Tap:
    check_keys(spec, _ACTING_KEYS, path)
    return TamperTap(**_acting_args(spec, path))


_BUILDERS = {
    "none": _none,
    "observe": _observe,
    "drop": _drop,
    "delay": _delay,
    "replay": _replay,
    "tamper": _tamper,
}


def make_tap(spec: dict | None, path: str = "tap") -> Tap:
    """Return the Tap described by ``spec`` (a pass-through Tap for None); ScenarioError if malformed."""
    if spec is None:
        return Tap()
    require_dict(spec, path)
    kind = spec.get("kind")
    builder = _BUILDERS.get(kind) if isinstance(kind, str) else None
    if builder is None:
        raise ScenarioError(f"unknown tap kind {kind!r}", path=f"{path}.kind",
                            expected="one of " + ", ".join(_BUILDERS))
    return builder(spec, path)
