"""USIM authentication as pure functions: the card side of AUTHENTICATE (3GPP TS 31.102 §7.1.2).

- 3G security context (TS 31.102 §7.1.2.1, TS 33.102 §6.3.3): AUTN = (SQN xor AK) || AMF ||
  MAC-A. The USIM first checks MAC-A (a mismatch gives MacFailure, the engine answers
  SW 98 62 "authentication error, incorrect MAC", TS 31.102 §7.3), then the freshness of SQN
  (cards/sqn.py, TS 33.102 Annex C); a stale SQN gives SyncFailure with
  AUTS = (SQN_MS xor AK*) || MAC-S, MAC-S = f1*(SQN_MS || RAND || AMF) with the dummy
  AMF = 00 00 (TS 33.102 §6.3.3). On success the response is
  'DB' L RES L CK L IK ['08' Kc]. Kc is there when service n°27 (GSM access) is available
  (§7.1.2.1); dmsim includes it by default, ``include_kc=False`` leaves it out. It is the c3
  conversion of TS 33.102 §6.8.1.2, Kc = CK1 xor CK2 xor IK1 xor IK2 (64-bit halves).
  AMF is not interpreted here (the separation bit is the ME's concern, TS 33.401 §6.1.1).
- GBA security context, bootstrapping mode (TS 31.102 §7.1.2.3, TS 33.220 Annex G.1): the same
  AKA, but the card keeps Ks = CK || IK and RAND and answers 'DB' L RES only. B-TID and the key
  lifetime are written later by the ME (EF_GBABP); the caller stores GbaBootstrapped.ks/rand.
- GBA NAF derivation mode (TS 31.102 §7.1.2.4, TS 33.220 Annex B.2/B.3): Ks_ext_NAF and
  Ks_int_NAF from the stored Ks; the response is 'DB' L Ks_ext_NAF, Ks_int_NAF stays in the card.
- The derivations themselves (KDF, Ks_(ext/int)_NAF, NAF_Id, B-TID) are in
  dmsim.network.gba.keys, the one copy the card and the network share.

No APDU parsing here: the engine extracts RAND and AUTN and turns results into bytes and SWs.
RAND or AUTN of the wrong length raises DecodeError; anything of the right length yields a
result, never an exception.
"""
from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives import constant_time

from dmsim.cards.milenage import f1, f1star, f2345, f5star
from dmsim.cards.sqn import SqnArray
from dmsim.cards.sw import AUTH_MAC_FAILURE, StatusWord
from dmsim.base.errors import DecodeError
from dmsim.network.gba.keys import ks_from_ck_ik

TAG_SUCCESS = 0xDB  # TS 31.102 §7.1.2.1 "Successful 3G authentication"
TAG_SYNC_FAILURE = 0xDC  # TS 31.102 §7.1.2.1 "Synchronisation failure"
RESYNC_AMF = b"\x00\x00"  # TS 33.102 §6.3.3: dummy AMF of MAC-S


def _lv(value: bytes) -> bytes:
    return bytes([len(value)]) + value


def kc_from_ck_ik(ck: bytes, ik: bytes) -> bytes:
    """Return the GSM Kc (8 octets) from CK and IK: conversion c3, TS 33.102 §6.8.1.2."""
    parts = (ck[:8], ck[8:], ik[:8], ik[8:])
    value = 0
    for part in parts:
        value ^= int.from_bytes(part, "big")
    return value.to_bytes(8, "big")


def success_response(res: bytes, ck: bytes, ik: bytes, kc: bytes | None = None) -> bytes:
    """Return 'DB' L RES L CK L IK, then '08' Kc when kc is given (TS 31.102 §7.1.2.1)."""
    body = _lv(res) + _lv(ck) + _lv(ik) + (_lv(kc) if kc is not None else b"")
    return bytes([TAG_SUCCESS]) + body


@dataclass(frozen=True)
class Success:
    """3G authentication succeeded: RES, CK, IK and the derived Kc."""

    res: bytes
    ck: bytes
    ik: bytes
    kc: bytes

    def response(self, include_kc: bool = True) -> bytes:
        """Return the response data (Kc only if service n°27 is available: include_kc)."""
        return success_response(self.res, self.ck, self.ik, self.kc if include_kc else None)


@dataclass(frozen=True)
class SyncFailure:
    """SQN not acceptable: AUTS (14 octets) for the network to resynchronise."""

    auts: bytes

    def response(self) -> bytes:
        """Return 'DC' 0E AUTS (TS 31.102 §7.1.2.1)."""
        return bytes([TAG_SYNC_FAILURE]) + _lv(self.auts)


@dataclass(frozen=True)
class MacFailure:
    """MAC-A did not verify: no response data, the engine answers ``sw`` (98 62)."""

    sw: StatusWord = AUTH_MAC_FAILURE

    def response(self) -> bytes:
        """Return the (empty) response data."""
        return b""


@dataclass(frozen=True)
class GbaBootstrapped:
    """GBA bootstrapping succeeded: RES for the ME; Ks = CK || IK and RAND stay in the card."""

    res: bytes
    ks: bytes
    rand: bytes

    def response(self) -> bytes:
        """Return 'DB' L RES (TS 31.102 §7.1.2.3, bootstrapping mode)."""
        return bytes([TAG_SUCCESS]) + _lv(self.res)


AuthResult = Success | SyncFailure | MacFailure
GbaResult = GbaBootstrapped | SyncFailure | MacFailure


def _aka(k: bytes, opc: bytes, rand: bytes, autn: bytes, sqns: SqnArray
         ) -> tuple[bytes, bytes, bytes] | SyncFailure | MacFailure:
    """Return (RES, CK, IK) after verifying AUTN, or the failure (TS 33.102 §6.3.3)."""
    if len(autn) != 16:
        raise DecodeError("AUTN", min(len(autn), 16), f"{len(autn)} octets", expected="16 octets")
    res, ck, ik, ak = f2345(k, opc, rand)
    sqn = bytes(a ^ b for a, b in zip(autn[:6], ak))
    amf, mac = autn[6:8], autn[8:]
    if not constant_time.bytes_eq(f1(k, opc, rand, sqn, amf), mac):
        return MacFailure()
    if not sqns.accept(sqn):
        sqn_ms = sqns.highest()
        concealed = bytes(a ^ b for a, b in zip(sqn_ms, f5star(k, opc, rand)))
        return SyncFailure(concealed + f1star(k, opc, rand, sqn_ms, RESYNC_AMF))
    return res, ck, ik


def authenticate_3g(k: bytes, opc: bytes, rand: bytes, autn: bytes, sqns: SqnArray) -> AuthResult:
    """Return the result of AUTHENTICATE in 3G context; ``sqns`` is updated on Success only."""
    outcome = _aka(k, opc, rand, autn, sqns)
    if isinstance(outcome, (SyncFailure, MacFailure)):
        return outcome
    res, ck, ik = outcome
    return Success(res, ck, ik, kc_from_ck_ik(ck, ik))


def gba_bootstrap(k: bytes, opc: bytes, rand: bytes, autn: bytes, sqns: SqnArray) -> GbaResult:
    """Return the result of AUTHENTICATE in GBA bootstrapping mode (Ks = CK || IK on success)."""
    outcome = _aka(k, opc, rand, autn, sqns)
    if isinstance(outcome, (SyncFailure, MacFailure)):
        return outcome
    res, ck, ik = outcome
    return GbaBootstrapped(res, ks_from_ck_ik(ck, ik), rand)


def naf_derivation_response(ks_ext_naf: bytes) -> bytes:
    """Return 'DB' L Ks_ext_NAF (TS 31.102 §7.1.2.4, NAF derivation mode)."""
    return bytes([TAG_SUCCESS]) + _lv(ks_ext_naf)
