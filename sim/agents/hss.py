"""The HSS as an agent: the GBA subscriber store (``network/gba/hss.py``) of a replica.

The operator knows the K and OPc of every card it issues: when a ``bootstrap_via: gba_push``
(or ``gba_ub: true``) device's virtual card is made (``sim/links/card_access.py``), the HSS gets its subscriber record
(IMSI, IMPI, K, OPc, AMF, SQN, GBA_U or GBA_ME per the profile's ``gba_uicc``, the GUSS with
``gba.ks_lifetime``). The store is SQLite: ``hss-r<replica>-s<sweep point>.sqlite`` (a shard's:
``hss-r<replica>-s<sweep point>-k<shard>.sqlite``) in
``gba.hss_dir``, or in the run folder, or (a replica run without one, as in tests) in memory.
Its AVs come from MILENAGE with the SQN committed before an AV leaves (TS 33.102 Annex C), so a
killed run never reuses one. The BSF (``bsf.py``) reaches it in-process: Zh is not modelled as a
link (choice: the issue names Ub, Zn and Zpn; Zh latency would add to Zpn's).
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from dmsim.cards.profile import CardProfile
from dmsim.network.gba.hss import Hss, subscriber_from_profile
from dmsim.network.gba.hss_store import Subscriber
from dmsim.sim.agents.agent import Agent

if TYPE_CHECKING:  # pragma: no cover
    from dmsim.sim.model.replica import Replica


class HssAgent(Agent):
    """The replica's HSS (``hss``), when the scenario has a ``gba`` block."""

    name = "hss"
    block = "gba"

    @classmethod
    def for_replica(cls, replica: "Replica") -> "HssAgent":
        """Return the replica's HSS."""
        return cls(replica)

    def __init__(self, replica: "Replica"):
        spec = replica.data["gba"]
        folder = spec["hss_dir"] or replica.state_dir
        if folder is None:
            path = ":memory:"
        else:
            Path(folder).mkdir(parents=True, exist_ok=True)
            shard = f"-k{replica.shard}" if replica.shards > 1 else ""
            path = str(Path(folder) / f"hss-r{replica.replica}-s{replica.sweep}{shard}.sqlite")
            Path(path).unlink(missing_ok=True)  # a new run: the cards (and their keys) are new too
        self.path = path
        self.key_lifetime = int(spec["ks_lifetime"])
        self.hss = Hss.open(path, replica.stream("hss").randbytes)

    def card_issued(self, profile: CardProfile, gba_u: bool) -> Subscriber:
        """Record the subscriber of a card the operator issued; return its record."""
        sub = subscriber_from_profile(profile, gba_u=gba_u, key_lifetime=self.key_lifetime)
        self.hss.provision([sub])
        return sub

    def close(self) -> None:
        """Close the subscriber store."""
        self.hss.close()
