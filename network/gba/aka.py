"""The network side of UMTS AKA with MILENAGE: authentication vectors and the check of AUTS
(3GPP TS 33.102 §6.3.2, §6.3.5; MILENAGE of cards/milenage.py, TS 35.206).

- AV = RAND || XRES || CK || IK || AUTN, AUTN = (SQN xor AK) || AMF || MAC-A,
  MAC-A = f1(K, SQN || RAND || AMF), AK = f5(RAND) (§6.3.2).
- Resynchronisation (§6.3.5): AUTS = (SQN_MS xor AK*) || MAC-S, AK* = f5*(RAND),
  MAC-S = f1*(K, SQN_MS || RAND || AMF*) with the dummy AMF* = 00 00 (§6.3.3). The HE recovers
  SQN_MS and verifies MAC-S; a wrong MAC-S is refused (AuthenticationError) and SQN_HE is not
  touched.

The ME/USIM side is cards/usim_auth.py (the same MILENAGE, the USIM's checks).
"""
from __future__ import annotations

import hmac
from dataclasses import dataclass

from dmsim.base.errors import AuthenticationError, DecodeError
from dmsim.cards.milenage import f1, f1star, f2345, f5star
from dmsim.network.gba.keys import ks_from_ck_ik

RESYNC_AMF = b"\x00\x00"   # TS 33.102 §6.3.3: the dummy AMF of MAC-S
AUTS_LEN = 14


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b))


@dataclass(frozen=True)
class AuthVector:
    """One authentication vector (TS 33.102 §6.3.2) and the SQN it carries."""

    rand: bytes
    xres: bytes
    ck: bytes
    ik: bytes
    autn: bytes
    sqn: bytes

    @property
    def ks(self) -> bytes:
        """Ks = CK || IK (TS 33.220 §4.5.2)."""
        return ks_from_ck_ik(self.ck, self.ik)


def make_av(k: bytes, opc: bytes, rand: bytes, sqn: bytes, amf: bytes) -> AuthVector:
    """Return the AV for RAND and SQN (TS 33.102 §6.3.2); lengths are checked by MILENAGE."""
    xres, ck, ik, ak = f2345(k, opc, rand)
    autn = _xor(sqn, ak) + amf + f1(k, opc, rand, sqn, amf)
    return AuthVector(rand, xres, ck, ik, autn, sqn)


def sqn_ms_from_auts(k: bytes, opc: bytes, rand: bytes, auts: bytes) -> bytes:
    """Return SQN_MS (6 octets) from AUTS after verifying MAC-S (TS 33.102 §6.3.5).

    DecodeError if AUTS is not 14 octets, AuthenticationError if MAC-S does not verify."""
    if len(auts) != AUTS_LEN:
        raise DecodeError("AUTS", min(len(auts), AUTS_LEN), f"{len(auts)} octets", expected="14 octets")
    sqn_ms = _xor(auts[:6], f5star(k, opc, rand))
    if not hmac.compare_digest(f1star(k, opc, rand, sqn_ms, RESYNC_AMF), auts[6:]):
        raise AuthenticationError("AUTS: MAC-S does not verify (TS 33.102 §6.3.5)")
    return sqn_ms


def make_auts(k: bytes, opc: bytes, rand: bytes, sqn_ms: bytes) -> bytes:
    """Return AUTS for SQN_MS (the USIM's computation, TS 33.102 §6.3.3), for clients and tests."""
    return _xor(sqn_ms, f5star(k, opc, rand)) + f1star(k, opc, rand, sqn_ms, RESYNC_AMF)
