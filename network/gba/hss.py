"""The HSS of GBA: subscribers, GUSS, MILENAGE authentication vectors and SQN management
(3GPP TS 33.220 §4.4.2/§4.5.2 (Zh), TS 33.102 §6.3.2/§6.3.5 and Annex C, TS 29.109 GUSS).

Sans-IO apart from the SQLite file of hss_store.py: randomness comes from ``randbytes``.

SQN generation (TS 33.102 Annex C.1.1, C.1.2, C.3): SQN = SEQ (43 bits) || IND (5 bits), the
layout of cards/sqn.py. SEQ_HE is one counter per subscriber, incremented for every AV and
stored durably before the AV exists (hss_store.SubscriberStore.next_seq). IND is the caller's:
each node that asks for AVs uses its own IND value (C.1.2: "IND ... allocated to different
nodes"), so AVs consumed out of order by different nodes are still fresh in the USIM's array.

Resynchronisation (TS 33.102 §6.3.5, Annex C.3.4): the HE recovers SQN_MS from AUTS, verifies
MAC-S with f1* (a wrong MAC-S is an AuthenticationError and changes nothing), then
- SEQ_MS >= SEQ_HE: SEQ_HE := SEQ_MS, so the next AV carries SEQ_MS + 1;
- SEQ_HE + 1 - SEQ_MS > delta (the next AV would fail the USIM's wrap-around check C.2.1):
  SEQ_HE := SEQ_MS (the "reset" of §6.3.5; the one case SEQ_HE moves down, on the card's
  authenticated word);
- otherwise SEQ_HE is kept: its next SEQ is already above the card's.

Choices where the specs leave room:
- Subscribers come from card profiles (cards/profile.py): SEQ_HE starts at the SEQ of the
  profile's ``sqn``, so the card accepts the first AV. ``provision_fleet(seed, n)`` uses
  ``generate_profiles`` so that a simulated fleet's cards and the HSS share their keys.
- GUSS: the UICC type (GBA or GBA_U) is a per-subscriber flag (default GBA_U: the emulated
  USIM runs the GBA security context); the Ks lifetime defaults to 86400 s (TS 33.220 leaves it
  to the operator).
- A user is looked up by IMPI or IMSI; an unknown one is a ProtocolError.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from dmsim.base.errors import ProtocolError
from dmsim.cards.milenage import opc_from_op
from dmsim.cards.profile import CardProfile, generate_profiles
from dmsim.cards.sqn import DEFAULT_DELTA, SLOTS, join_sqn, split_sqn
from dmsim.network.gba.aka import AuthVector, make_av, sqn_ms_from_auts
from dmsim.network.gba.hss_store import Subscriber, SubscriberStore

DEFAULT_KEY_LIFETIME = 86400
RAND_LEN = 16


@dataclass(frozen=True)
class Guss:
    """The GBA User Security Settings a BSF needs (TS 29.109: BSF info, uiccType and lifetime)."""

    impi: str
    gba_u: bool
    key_lifetime: int

    @property
    def uicc_type(self) -> str:
        """Return "GBA_U" or "GBA" (TS 29.109 tUICCType)."""
        return "GBA_U" if self.gba_u else "GBA"


def subscriber_from_profile(profile: CardProfile, *, gba_u: bool = True,
                            key_lifetime: int = DEFAULT_KEY_LIFETIME) -> Subscriber:
    """Return the HSS record of a card profile (OPc from OP when the profile holds OP)."""
    opc = profile.opc if profile.opc is not None else opc_from_op(profile.k, profile.op)
    seq, _ = split_sqn(profile.sqn)
    return Subscriber(profile.impi, profile.imsi, profile.k, opc, profile.amf, seq, gba_u, key_lifetime)


class Hss:
    """Subscribers, GUSS and AVs over a ``SubscriberStore``."""

    def __init__(self, store: SubscriberStore, randbytes: Callable[[int], bytes], *, delta: int = DEFAULT_DELTA):
        self.store = store
        self.randbytes = randbytes
        self.delta = delta

    @classmethod
    def open(cls, path: str | Path, randbytes: Callable[[int], bytes], **options) -> Hss:
        """Return an HSS on the SQLite file ``path`` (created if missing)."""
        return cls(SubscriberStore(path), randbytes, **options)

    def close(self) -> None:
        """Close the store."""
        self.store.close()

    def provision(self, subscribers: Iterable[Subscriber]) -> int:
        """Add subscribers; return how many (ScenarioError on a duplicate IMPI/IMSI)."""
        return self.store.add(subscribers)

    def provision_profiles(self, profiles: Iterable[CardProfile], **options) -> int:
        """Add the subscribers of card profiles (options: gba_u, key_lifetime)."""
        return self.store.add(subscriber_from_profile(p, **options) for p in profiles)

    def provision_fleet(self, seed: int, n: int, *, mcc_mnc: str = "00101", **options) -> list[CardProfile]:
        """Generate ``n`` card profiles from ``seed`` (cards/profile.generate_profiles), add their
        subscribers and return the profiles (to personalise the fleet's cards)."""
        profiles = generate_profiles(seed, n, mcc_mnc=mcc_mnc)
        self.provision_profiles(profiles, **options)
        return profiles

    def subscriber(self, user: str) -> Subscriber:
        """Return the subscriber of IMPI or IMSI ``user``; ProtocolError if unknown."""
        sub = self.store.get(user)
        if sub is None:
            raise ProtocolError(f"HSS: unknown user {user!r}")
        return sub

    def guss(self, user: str) -> Guss:
        """Return the GUSS of ``user`` (Zh, TS 33.220 §4.5.2 step 2)."""
        sub = self.subscriber(user)
        return Guss(sub.impi, sub.gba_u, sub.key_lifetime)

    def generate_av(self, user: str, *, ind: int = 0) -> AuthVector:
        """Return a fresh AV for ``user`` with SQN = (SEQ_HE + 1) || ``ind``; the new SEQ_HE is
        committed before the AV is built (TS 33.102 Annex C.1.1, hss_store)."""
        if not 0 <= ind < SLOTS:
            raise ProtocolError(f"HSS: IND {ind} is not in 0..{SLOTS - 1}")
        sub = self.subscriber(user)
        seq = self.store.next_seq(sub.impi)
        rand = self.randbytes(RAND_LEN)
        return make_av(sub.k, sub.opc, rand, join_sqn(seq, ind), sub.amf)

    def resync(self, user: str, rand: bytes, auts: bytes) -> bytes:
        """Resynchronise on AUTS (TS 33.102 §6.3.5); return SQN_MS. AuthenticationError if MAC-S
        does not verify, DecodeError if AUTS is not 14 octets."""
        sub = self.subscriber(user)
        sqn_ms = sqn_ms_from_auts(sub.k, sub.opc, rand, auts)
        seq_ms, _ = split_sqn(sqn_ms)
        current = self.store.get(sub.impi).seq_he
        if seq_ms >= current or current + 1 - seq_ms > self.delta:
            self.store.set_seq(sub.impi, seq_ms)
        return sqn_ms
