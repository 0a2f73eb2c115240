"""MILENAGE, the 3GPP example set of f1, f1*, f2, f3, f4, f5, f5*: 3GPP TS 35.206 §4.1.

The algorithm (TS 35.205 gives the framework, TS 35.206 the specification) runs AES-128 as the
kernel E_K over 128-bit blocks:

    TEMP = E_K(RAND xor OPc)
    IN1  = SQN || AMF || SQN || AMF
    OUT1 = E_K(TEMP xor rot(IN1 xor OPc, r1) xor c1) xor OPc   f1 = OUT1[0..63], f1* = OUT1[64..127]
    OUTi = E_K(rot(TEMP xor OPc, ri) xor ci) xor OPc, i = 2..5
    f5 = AK = OUT2[0..47], f2 = RES = OUT2[64..127], f3 = CK = OUT3, f4 = IK = OUT4,
    f5* = AK* = OUT5[0..47]

rot(x, r) rotates x cyclically left by r bits. The constants are the ones of TS 35.206 §4.1
(the operator may choose others; dmsim uses the defaults):
c1 = 0, c2 = 1, c3 = 2, c4 = 4, c5 = 8 (as 128-bit integers, i.e. only the last octet set);
r1 = 64, r2 = 0, r3 = 32, r4 = 64, r5 = 96 bits.
OPc = OP xor E_K(OP) (§4.1, "computation of OPc").

Every function takes OPc, not OP; a profile that holds OP derives OPc once with opc_from_op.
Lengths are checked (K, OPc, OP, RAND 16 octets, SQN 6, AMF 2) and a wrong one raises
DecodeError naming the parameter.
"""
from __future__ import annotations

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from dmsim.base.errors import DecodeError

C1 = bytes(16)
C2 = bytes(15) + b"\x01"
C3 = bytes(15) + b"\x02"
C4 = bytes(15) + b"\x04"
C5 = bytes(15) + b"\x08"

R1 = 64
R2 = 0
R3 = 32
R4 = 64
R5 = 96

_LENGTHS = {"K": 16, "OP": 16, "OPc": 16, "RAND": 16, "SQN": 6, "AMF": 2}


def _check(name: str, value: bytes) -> None:
    expected = _LENGTHS[name]
    if len(value) != expected:
        raise DecodeError(name, min(len(value), expected), f"{len(value)} octets",
                          expected=f"{expected} octets")


def _xor(a: bytes, b: bytes) -> bytes:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(len(a), "big")


def _rot(block: bytes, bits: int) -> bytes:
    octets = bits // 8  # every r of TS 35.206 is a multiple of 8
    return block[octets:] + block[:octets]


def _encryptor(k: bytes):
    return Cipher(algorithms.AES(k), modes.ECB()).encryptor()


def opc_from_op(k: bytes, op: bytes) -> bytes:
    """Return OPc = OP xor E_K(OP) (16 octets)."""
    _check("K", k)
    _check("OP", op)
    return _xor(op, _encryptor(k).update(op))


def _out1(k: bytes, opc: bytes, rand: bytes, sqn: bytes, amf: bytes) -> bytes:
    for name, value in (("K", k), ("OPc", opc), ("RAND", rand), ("SQN", sqn), ("AMF", amf)):
        _check(name, value)
    aes = _encryptor(k)
    temp = aes.update(_xor(rand, opc))
    in1 = (sqn + amf) * 2
    return _xor(aes.update(_xor(_xor(temp, _rot(_xor(in1, opc), R1)), C1)), opc)


def f1(k: bytes, opc: bytes, rand: bytes, sqn: bytes, amf: bytes) -> bytes:
    """Return MAC-A, the network authentication code (8 octets)."""
    return _out1(k, opc, rand, sqn, amf)[:8]


def f1star(k: bytes, opc: bytes, rand: bytes, sqn: bytes, amf: bytes) -> bytes:
    """Return MAC-S, the resynchronisation authentication code (8 octets)."""
    return _out1(k, opc, rand, sqn, amf)[8:]


def _outs(k: bytes, opc: bytes, rand: bytes, consts: tuple[tuple[int, bytes], ...]) -> list[bytes]:
    _check("K", k)
    _check("OPc", opc)
    _check("RAND", rand)
    aes = _encryptor(k)
    temp_opc = _xor(aes.update(_xor(rand, opc)), opc)
    return [_xor(aes.update(_xor(_rot(temp_opc, r), c)), opc) for r, c in consts]


def f2345(k: bytes, opc: bytes, rand: bytes) -> tuple[bytes, bytes, bytes, bytes]:
    """Return (RES 8 octets, CK 16, IK 16, AK 6): f2, f3, f4 and f5."""
    out2, out3, out4 = _outs(k, opc, rand, ((R2, C2), (R3, C3), (R4, C4)))
    return out2[8:], out3, out4, out2[:6]


def f5star(k: bytes, opc: bytes, rand: bytes) -> bytes:
    """Return AK*, the anonymity key of the resynchronisation message (6 octets)."""
    (out5,) = _outs(k, opc, rand, ((R5, C5),))
    return out5[:6]
