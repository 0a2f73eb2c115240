"""Status words of the UICC: ETSI TS 102 221 §10.2.1 (coding of SW1 SW2), ISO/IEC 7816-4 §5.6.

Each status word is a named constant carrying the clause that defines it. Families with a
variable SW2 (61xx more data, 6Cxx wrong Le, 63Cx retries left) are built by functions.
``is_known()`` tells whether a two-byte SW is one this card may answer, which the fuzz tests
use to check that every answer is well formed.

TS 102 221 places 61xx (T=0 "response bytes still available") and 6Cxx ("wrong length Le,
xx is the exact length") in §7.3.1.1.5 and §10.2.1.1/§10.2.1.5; they are cited as such.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StatusWord:
    """A named status word: ``sw`` is SW1 SW2 as one integer, ``clause`` the spec that defines it."""

    sw: int
    name: str
    clause: str

    @property
    def sw1(self) -> int:
        """Return SW1."""
        return self.sw >> 8

    @property
    def sw2(self) -> int:
        """Return SW2."""
        return self.sw & 0xFF

    def __bytes__(self) -> bytes:
        return self.sw.to_bytes(2, "big")

    def __int__(self) -> int:
        return self.sw


def _sw(sw: int, name: str, clause: str) -> StatusWord:
    return StatusWord(sw, name, clause)


# Normal processing (TS 102 221 §10.2.1.1)
OK = _sw(0x9000, "normal ending of the command", "TS 102 221 §10.2.1.1")
# Warnings (§10.2.1.3)
WARN_NO_INFO = _sw(0x6200, "no information given, state of non-volatile memory unchanged", "TS 102 221 §10.2.1.3")
WARN_EOF = _sw(0x6282, "end of file/record reached before reading Le bytes", "TS 102 221 §10.2.1.3")
# Checking errors (§10.2.1.5)
WRONG_LENGTH = _sw(0x6700, "wrong length", "TS 102 221 §10.2.1.5")
WRONG_P1P2 = _sw(0x6B00, "wrong parameter(s) P1-P2 (offset outside the file)", "TS 102 221 §10.2.1.5")
INS_NOT_SUPPORTED = _sw(0x6D00, "instruction code not supported or invalid", "TS 102 221 §10.2.1.5")
CLA_NOT_SUPPORTED = _sw(0x6E00, "class not supported", "TS 102 221 §10.2.1.5")
TECHNICAL_PROBLEM = _sw(0x6F00, "technical problem, no precise diagnosis", "TS 102 221 §10.2.1.5")
# Functions in CLA not supported (§10.2.1.6)
CHANNEL_NOT_SUPPORTED = _sw(0x6881, "logical channel not supported", "TS 102 221 §10.2.1.6")
SM_NOT_SUPPORTED = _sw(0x6882, "secure messaging not supported", "TS 102 221 §10.2.1.6")
# Command not allowed (§10.2.1.7)
INCOMPATIBLE_FILE = _sw(0x6981, "command incompatible with file structure", "TS 102 221 §10.2.1.7")
SECURITY_NOT_SATISFIED = _sw(0x6982, "security status not satisfied", "TS 102 221 §10.2.1.7")
AUTH_BLOCKED = _sw(0x6983, "authentication/PIN method blocked", "TS 102 221 §10.2.1.7")
REFERENCE_INVALIDATED = _sw(0x6984, "referenced data invalidated", "TS 102 221 §10.2.1.7")
CONDITIONS_NOT_SATISFIED = _sw(0x6985, "conditions of use not satisfied", "TS 102 221 §10.2.1.7")
NO_EF_SELECTED = _sw(0x6986, "command not allowed (no EF selected)", "TS 102 221 §10.2.1.7")
# Wrong parameters (§10.2.1.8)
WRONG_DATA = _sw(0x6A80, "incorrect parameters in the data field", "TS 102 221 §10.2.1.8")
FUNCTION_NOT_SUPPORTED = _sw(0x6A81, "function not supported", "TS 102 221 §10.2.1.8")
FILE_NOT_FOUND = _sw(0x6A82, "file or application not found", "TS 102 221 §10.2.1.8")
RECORD_NOT_FOUND = _sw(0x6A83, "record not found", "TS 102 221 §10.2.1.8")
INCORRECT_P1P2 = _sw(0x6A86, "incorrect parameters P1 to P2", "TS 102 221 §10.2.1.8")
REFERENCE_NOT_FOUND = _sw(0x6A88, "referenced data not found", "TS 102 221 §10.2.1.8")
# Application errors (TS 31.102 §7.3.1, AUTHENTICATE)
AUTH_MAC_FAILURE = _sw(0x9862, "authentication error, incorrect MAC", "TS 31.102 §7.3.1")
AUTH_CONTEXT_NOT_SUPPORTED = _sw(0x9864, "authentication error, security context not supported",
                                 "TS 31.102 §7.3.1")

NAMED: dict[int, StatusWord] = {s.sw: s for s in (
    OK, WARN_NO_INFO, WARN_EOF, WRONG_LENGTH, WRONG_P1P2, INS_NOT_SUPPORTED, CLA_NOT_SUPPORTED,
    TECHNICAL_PROBLEM, CHANNEL_NOT_SUPPORTED, SM_NOT_SUPPORTED, INCOMPATIBLE_FILE, SECURITY_NOT_SATISFIED,
    AUTH_BLOCKED, REFERENCE_INVALIDATED, CONDITIONS_NOT_SATISFIED, NO_EF_SELECTED, WRONG_DATA,
    FUNCTION_NOT_SUPPORTED, FILE_NOT_FOUND, RECORD_NOT_FOUND, INCORRECT_P1P2, REFERENCE_NOT_FOUND,
    AUTH_MAC_FAILURE, AUTH_CONTEXT_NOT_SUPPORTED)}


def more_data(n: int) -> StatusWord:
    """Return 61xx: ``n`` response bytes wait for GET RESPONSE (00 means 256), TS 102 221 §7.3.1.1.5."""
    return StatusWord(0x6100 | (n & 0xFF), f"{n} response bytes available", "TS 102 221 §7.3.1.1.5")


def wrong_le(n: int) -> StatusWord:
    """Return 6Cxx: Le was wrong, ``n`` is the exact length (00 means 256), TS 102 221 §10.2.1.5."""
    return StatusWord(0x6C00 | (n & 0xFF), f"wrong Le, exact length {n}", "TS 102 221 §10.2.1.5")


def retries_left(n: int) -> StatusWord:
    """Return 63Cx: verification failed (or queried), ``n`` tries left, TS 102 221 §10.2.1.3."""
    return StatusWord(0x63C0 | min(n, 15), f"{n} verification tries left", "TS 102 221 §10.2.1.3")


def is_known(sw: int) -> bool:
    """Return whether ``sw`` is a status word this card may answer (named, 61xx, 6Cxx or 63Cx)."""
    return sw in NAMED or sw >> 8 in (0x61, 0x6C) or sw & 0xFFF0 == 0x63C0


def describe(sw: int) -> str:
    """Return ``sw`` as text, e.g. ``"6A82 file or application not found (TS 102 221 §10.2.1.8)"``."""
    if sw in NAMED:
        s = NAMED[sw]
    elif sw >> 8 == 0x61:
        s = more_data(sw & 0xFF)
    elif sw >> 8 == 0x6C:
        s = wrong_le(sw & 0xFF)
    elif sw & 0xFFF0 == 0x63C0:
        s = retries_left(sw & 0x0F)
    else:
        return f"{sw:04X} (not a status word of this card)"
    return f"{sw:04X} {s.name} ({s.clause})"
