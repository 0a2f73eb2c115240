"""Shards: one replica's fleet cut into ``shards`` independent models, one per worker process.

No spec clause: this is simulation plumbing (issue 17). A shard is a :class:`~dmsim.sim.model.replica.Replica`
that starts only the devices whose index ``i`` has ``i % shards == shard``, so every shard sees the
whole arrival span and the same profile mix. What is exact and what is approximated:

* **Exact.** The fleet (each device's profile, PIN and passwords) and the arrival times are
  drawn from the unsharded streams: device ``i`` arrives at the same instant with the same
  identity in a sharded run as in an unsharded one. A shard replays the draws of the devices of
  other shards and discards them (a few µs a device).
* **Per shard.** Everything else draws from streams named after the shard (``"shard", k``):
  the links' delay and loss, the DM client nonces, the cards' keys, the server's nonces. The
  merged result is a function of (scenario, seed, shards) alone: never of ``--jobs`` or of the
  machine or cluster that ran the shards.
* **Approximated: shared capacity is divided.** The DM server's ``max_sessions`` slots and the
  SMSC's token buckets and store (``submit_rate``, ``burst``, ``delivery_rate``,
  ``delivery_burst``, ``queue_limit``) are split evenly among the shards (integers spread so the
  parts sum to the whole; rates divided). A shard's devices then queue only behind each other:
  one server with ``n`` slots and one FIFO becomes ``shards`` servers with ``n/shards`` slots each.
  With many devices per shard the two queues behave alike (both see a Poisson stream of the same
  rate per slot); with a few devices per slot, or a burst that one shard gets more of than
  another, the sharded queue waits longer. ``tests/sim/model/test_shards.py`` and
  ``bench/scale.py --shards`` compare the success rate and latency percentiles of sharded and
  unsharded runs of the same scenario.

Refused (``check_shards``): ``shards`` above ``server.max_sessions`` (a shard needs a slot),
attacks (an attack acts across the whole fleet: its targets and verdict would be split), and real
components (a real card, modem, server, BSF or ESME belongs to one process).
"""
from __future__ import annotations

import copy

from dmsim.base.errors import ScenarioError

# (block, key, kind): the shared capacities a shard gets its part of; "int" parts sum to the whole
_DIVIDED = (("server", "max_sessions", "int"), ("smsc", "submit_rate", "rate"), ("smsc", "burst", "int"),
            ("smsc", "delivery_rate", "rate"), ("smsc", "delivery_burst", "int"), ("smsc", "queue_limit", "int"))


def shard_data(data: dict, shard: int, shards: int) -> dict:
    """Return the scenario data of shard ``shard`` of ``shards``: a copy of ``data`` with the
    shared capacities of ``_DIVIDED`` divided (``data`` itself is left as it is)."""
    if shards == 1:
        return data
    out = copy.deepcopy(data)
    for block, key, kind in _DIVIDED:
        section = out.get(block)
        if section is None or section.get(key) is None:
            continue
        whole = section[key]
        if kind == "rate":
            section[key] = whole / shards
        else:  # spread the remainder over the first shards; a bucket keeps at least one token
            section[key] = max(1 if key != "queue_limit" else 0, whole // shards + (shard < whole % shards))
    return out


def owns(index: int, shard: int, shards: int) -> bool:
    """Return whether device ``index`` belongs to shard ``shard`` of ``shards``."""
    return index % shards == shard


def real_components(data: dict) -> list[str]:
    """Return the names of the ``components`` of validated ``data`` that are real (not virtual or none)."""
    return [name for name, spec in data["components"].items() if spec["kind"] not in ("virtual", "none")]


def check_shards(data: dict, where=None) -> None:
    """Raise ScenarioError when ``data`` (validated) cannot be sharded as it asks; see the module."""
    shards = data.get("shards", 1)
    if shards == 1:
        return
    locate = where or (lambda keys: None)
    if shards > data["server"]["max_sessions"]:
        raise ScenarioError(f"shards {shards} is more than server.max_sessions {data['server']['max_sessions']}: "
                            "each shard needs a server slot of its own", where=locate(("shards",)), path="shards",
                            expected=f"at most {data['server']['max_sessions']}")
    if shards > data["fleet"]["size"]:
        raise ScenarioError(f"shards {shards} is more than fleet.size {data['fleet']['size']}",
                            where=locate(("shards",)), path="shards", expected=f"at most {data['fleet']['size']}")
    if data.get("attacks"):
        raise ScenarioError("attacks act on the whole fleet and cannot be split into shards",
                            where=locate(("shards",)), path="shards", expected="1 with attacks")
    real = real_components(data)
    if real:
        raise ScenarioError(f"real components ({', '.join(f'components.{n}' for n in real)}) belong to one process "
                            "and cannot be split into shards", where=locate(("shards",)), path="shards",
                            expected="1 with real components")
