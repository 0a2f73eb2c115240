"""What a replica needs of a network agent (``sim/model/registry.py`` lists them).

No spec clause: simulation plumbing. An agent is built once per replica by ``for_replica`` when
``wanted`` says the scenario asks for it (by default: when the scenario has the agent's
``block``, or always when it has none); ``stats`` gives the counters it adds to
``summary.json``'s ``network`` block, by section. An agent keeps no module-level state: what it
needs comes from the replica (scenario data, named random streams, the agents built before it).
"""
from __future__ import annotations


class Agent:
    """Base of the network agents: ``name`` is its key in ``replica.agents``."""

    name: str = ""
    block: str | None = None  # the scenario block that switches the agent on (None: always on)

    @classmethod
    def wanted(cls, data: dict) -> bool:
        """Return whether the validated scenario ``data`` asks for this agent."""
        return cls.block is None or data.get(cls.block) is not None

    @classmethod
    def for_replica(cls, replica) -> "Agent":
        """Return the agent of ``replica``."""
        raise NotImplementedError

    def wired(self) -> None:
        """Every agent and component of the replica exists now (an agent that sits on others
        installs itself here)."""

    def stats(self) -> dict[str, dict]:
        """Return the counters this agent adds to ``summary.json``'s ``network`` block, by section."""
        return {}
