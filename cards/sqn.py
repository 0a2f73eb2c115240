"""Sequence number verification in the USIM: 3GPP TS 33.102 Annex C.1-C.3.

SQN (48 bits) = SEQ (43 bits) || IND (5 bits), the profile of Annex C.1.2 / C.3 with an array
of a = 2**5 = 32 entries SEQ_MS(0..31), all zero on a new card (C.2.2). A received SQN is
checked in this order; any failure means "synchronisation failure" with SQN_MS (C.2.1, C.2.2):

1. wrap-around protection (C.2.1): SEQ - SEQ_MS <= delta, SEQ_MS being the highest SEQ in the
   array. delta defaults to 2**28, the value C.3 suggests; ``delta=None`` switches it off.
   A consequence worth knowing: a new card (all zero) refuses a first SEQ above delta, and
   the network recovers through resynchronisation.
2. age limit (C.2.2, optional): SEQ_MS - SEQ < L. dmsim applies no limit by default
   (``age_limit=None``), which the annex allows ("L unlimited").
3. freshness (C.2.2): SEQ > SEQ_MS(IND); on success SEQ_MS(IND) := SEQ.

SQN_MS sent back in AUTS is "the highest previously accepted sequence number anywhere in the
array" (C.2.2): the highest SEQ_MS(i) joined with the IND i it was accepted under (the lowest
such i on a tie; 0...0 on a new card).

A profile stores the array as ``sqn``: the 32 SEQ_MS values as integers, IND order.
"""
from __future__ import annotations

from typing import Iterable

from dmsim.base.errors import DecodeError, ProtocolError, ScenarioError

IND_BITS = 5
SLOTS = 1 << IND_BITS
SEQ_BITS = 48 - IND_BITS
SEQ_MAX = (1 << SEQ_BITS) - 1
DEFAULT_DELTA = 1 << 28


def split_sqn(sqn: bytes) -> tuple[int, int]:
    """Return (SEQ, IND) of a 6-octet SQN; DecodeError if it is not 6 octets."""
    if len(sqn) != 6:
        raise DecodeError("SQN", min(len(sqn), 6), f"{len(sqn)} octets", expected="6 octets")
    value = int.from_bytes(sqn, "big")
    return value >> IND_BITS, value & (SLOTS - 1)


def join_sqn(seq: int, ind: int) -> bytes:
    """Return the 6-octet SQN = SEQ || IND; ProtocolError if either does not fit its bits."""
    if not (0 <= seq <= SEQ_MAX and 0 <= ind < SLOTS):
        raise ProtocolError(f"SEQ {seq} / IND {ind} do not fit a {SEQ_BITS}+{IND_BITS}-bit SQN")
    return ((seq << IND_BITS) | ind).to_bytes(6, "big")


class SqnArray:
    """The USIM's SEQ_MS array (Annex C.2.2) with the optional checks of Annex C.2.1/C.2.2."""

    __slots__ = ("_seqs", "delta", "age_limit")

    def __init__(self, seqs: Iterable[int] | None = None, *,
                 delta: int | None = DEFAULT_DELTA, age_limit: int | None = None):
        self._seqs = [0] * SLOTS if seqs is None else _valid_seqs(seqs)
        self.delta = delta
        self.age_limit = age_limit

    def _highest_seq(self) -> int:
        return max(self._seqs)

    def accept(self, sqn: bytes) -> bool:
        """Return True if SQN is accepted (and record it), False for a synchronisation failure."""
        seq, ind = split_sqn(sqn)
        top = self._highest_seq()
        if self.delta is not None and seq - top > self.delta:
            return False
        if self.age_limit is not None and top - seq >= self.age_limit:
            return False
        if seq <= self._seqs[ind]:
            return False
        self._seqs[ind] = seq
        return True

    def highest(self) -> bytes:
        """Return SQN_MS, the 6 octets the USIM puts (concealed) into AUTS."""
        top = self._highest_seq()
        return join_sqn(top, self._seqs.index(top))

    def to_list(self) -> list[int]:
        """Return the 32 SEQ_MS values in IND order (what a profile stores as ``sqn``)."""
        return list(self._seqs)

    @classmethod
    def new_card(cls, sqn: bytes) -> SqnArray:
        """Return the array of a new card whose highest accepted SQN is ``sqn`` (6 octets): its SEQ in
        the slot of its IND, 0 in the others (C.2.2: a new card's array is all zero)."""
        seq, ind = split_sqn(sqn)
        array = cls()
        array._seqs[ind] = seq
        return array

    @classmethod
    def from_list(cls, values: Iterable[int], **options) -> SqnArray:
        """Return an array restored from ``to_list()`` output; ScenarioError if malformed."""
        return cls(_valid_seqs(values), **options)

    def __repr__(self) -> str:
        return f"SqnArray(highest={self.highest().hex()}, delta={self.delta}, L={self.age_limit})"


def _valid_seqs(values: Iterable[int]) -> list[int]:
    try:
        seqs = None if isinstance(values, (str, bytes, dict)) else list(values)
    except TypeError:
        seqs = None
    if (seqs is None or len(seqs) != SLOTS
            or not all(type(s) is int and 0 <= s <= SEQ_MAX for s in seqs)):
        raise ScenarioError("not a SEQ_MS array", path="sqn",
                            expected=f"{SLOTS} integers in 0..2**{SEQ_BITS}-1")
    return seqs
