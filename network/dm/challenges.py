"""The challenges a DM server has issued to requests that did not authenticate: a bounded,
expiring table of nonces, each bound to one (device, SessionID).

OMA-TS-DM_Security-V1_3 §5.4.3: a failed credential gets one more challenge with a new nonce.
If that new nonce replaced the device's stored nonce, anyone able to send a package 1 with a bad
credential would invalidate the nonce the legitimate client holds (a lock-out without
credentials). So the stored nonce changes only when a request authenticates; a failed attempt
gets a *challenge nonce* kept here, valid only for the retry in the same session, and only for
``ttl`` seconds. A retry that authenticates with it consumes it (it is removed).

Bounds: at most ``cap`` entries (the oldest dropped first) and none older than ``ttl``, so
unauthenticated requests cost bounded memory. Trade-off: a flood of bad package 1s can push a
legitimate client's pending challenge out of the table; that client's retry then fails and it
recovers in its next session (its stored nonce was never changed), one round later. It is never
locked out.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

DEFAULT_CAP = 4096
DEFAULT_TTL = 3600.0  # longer than any retry; real drivers may pass less (e.g. 120 s)


@dataclass(frozen=True)
class Challenge:
    """A challenge issued at ``issued`` with ``nonce`` (the octets the retry's digest uses)."""

    nonce: bytes
    issued: float


class ChallengeTable:
    """(device, SessionID) -> the one pending :class:`Challenge`, bounded by ``cap`` and ``ttl``."""

    def __init__(self, cap: int = DEFAULT_CAP, ttl: float = DEFAULT_TTL):
        self.cap, self.ttl = cap, ttl
        self._items: OrderedDict[tuple[str, str], Challenge] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, device: str, session_id: str, now: float) -> Challenge | None:
        """Return the live challenge of this session, or None."""
        self.expire(now)
        return self._items.get((device, session_id))

    def issue(self, device: str, session_id: str, nonce: bytes, now: float) -> None:
        """Remember the challenge ``nonce`` for this session (replacing any)."""
        key = (device, session_id)
        self._items.pop(key, None)
        self._items[key] = Challenge(nonce, now)
        while len(self._items) > self.cap:
            self._items.popitem(last=False)

    def pop(self, device: str, session_id: str) -> Challenge | None:
        """Remove and return the challenge of this session (used up or session over)."""
        return self._items.pop((device, session_id), None)

    def expire(self, now: float) -> int:
        """Drop challenges older than ``ttl``; return how many. Cost: the number dropped
        (entries are kept in issue order)."""
        dropped = 0
        while self._items:
            key, first = next(iter(self._items.items()))
            if now - first.issued <= self.ttl:
                break
            del self._items[key]
            dropped += 1
        return dropped
