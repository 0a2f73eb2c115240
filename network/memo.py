"""A bounded memo for the codecs' fast paths (issue 17).

The codecs remember values derived from octets or shapes already seen (an address field, a user
data header, a WBXML document shape), so that the next message carrying the same octets costs a
dictionary look-up. Those values are immutable, or copied before use, so one serves every
message; the memo only ever holds what a message's own octets determine.
"""
from __future__ import annotations

from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Memo(dict[K, V], Generic[K, V]):
    """A dict that empties itself when it reaches ``limit`` entries: a run's messages come in a
    few shapes, so a full memo means unusual traffic, which a fresh start handles as well as any
    eviction order would, at no cost per look-up."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def remember(self, key: K, value: V) -> V:
        """Store ``value`` under ``key`` (emptying a full memo first) and return it."""
        if len(self) >= self.limit:
            self.clear()
        self[key] = value
        return value
