"""Named random substreams derived from a scenario seed.

No spec clause: this is simulation plumbing. Every random choice in a run draws from a stream
named after what it serves (``substream(42, "replica", 0, "link", "sms")``), so adding a new
consumer of randomness does not shift the draws of the existing ones, and a run replays exactly
from its seed in any process.

Choice: the stream's seed is the SHA-256 of a canonical, length-prefixed encoding of the scenario
seed and the names (never Python's ``hash()``, which is salted per process). Names may be ``str``,
``bytes`` or ``int`` (``bool`` refused, so ``True`` and ``1`` cannot be confused); each part is
tagged with its type, so ``("1",)`` and ``(1,)`` give different streams.
"""
from __future__ import annotations

import hashlib
import random

from dmsim.base.errors import ScenarioError

_DOMAIN = b"dmsim.substream.v1"


def _encode_part(part: object) -> bytes:
    """Return the tagged, length-prefixed encoding of one seed or name part."""
    if isinstance(part, bool):
        raise ScenarioError(f"substream name {part!r} is a bool", path="substream",
                            expected="str, bytes or int")
    if isinstance(part, int):
        tag, data = b"i", str(part).encode("ascii")
    elif isinstance(part, str):
        tag, data = b"s", part.encode("utf-8")
    elif isinstance(part, bytes):
        tag, data = b"b", part
    else:
        raise ScenarioError(f"substream name {part!r} has type {type(part).__name__}",
                            path="substream", expected="str, bytes or int")
    return tag + len(data).to_bytes(8, "big") + data


def substream_seed(seed: int, *names: object) -> int:
    """Return the 256-bit integer seed of the stream named ``names`` under ``seed``."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ScenarioError(f"seed {seed!r} is not an integer", path="seed", expected="an integer")
    h = hashlib.sha256(_DOMAIN)
    h.update(_encode_part(seed))
    for name in names:
        h.update(_encode_part(name))
    return int.from_bytes(h.digest(), "big")


def substream(seed: int, *names: object) -> random.Random:
    """Return a fresh ``random.Random`` for the stream named ``names`` under the scenario ``seed``."""
    return random.Random(substream_seed(seed, *names))
