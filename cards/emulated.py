"""The complete emulated UICC: the TS 102 221 engine with every application handler and an ATR.

``make_card(profile)`` returns a ``Uicc`` with AUTHENTICATE (usim_app, TS 31.102 §7.1.2),
ENVELOPE / SMS-PP data download (ota_app, TS 31.111 §7.1.1) and the GlobalPlatform SCP03
commands (gp_app, GPC Amendment D), and sets ``card.atr`` so that
the vpcd bridge and ``CardLink.atr`` can serve it.

The ATR (ISO/IEC 7816-3 §8, ETSI TS 102 221 §6.3) is the shape of a commercial USIM:

    3B          TS, direct convention
    9F          T0: TA1 and TD1 follow, 15 historical bytes
    96          TA1: Fi = 512, Di = 32
    80 / 81     TD1: TD2 follows; T=0 (``t0=True``) or T=1 (``t0=False``) offered first
    1F          TD2: TA3 follows, T=15 (global interface bytes)
    C7          TA3: clock stop supported (no preference), classes A, B and C (5 V, 3 V, 1.8 V)
    80 31 E0 73 FE 21 1B 63 3A 20 4E 83 00 90 00
                historical bytes (ISO/IEC 7816-4 §8.1.1, COMPACT-TLV after category 80):
                card service data E0, card capabilities FE 21 1B, pre-issuing data 3A 20 4E,
                status indicator: life cycle 00, SW 90 00
    TCK         XOR of T0 .. the last historical byte (present since T=15 is indicated)

The electrical parameters mean nothing to an in-process card; the protocol nibble follows the
engine's ``t0`` flag so that a PC/SC stack sees the transport the card actually behaves as.
"""
from __future__ import annotations

from functools import reduce

from dmsim.cards import gp_app, ota_app, usim_app
from dmsim.cards.profile import CardProfile
from dmsim.cards.uicc import Uicc

_ATR_BODY = "9F96{td1}1FC78031E073FE211B633A204E83009000"


def _atr(td1: int) -> bytes:
    """Return TS, the interface and historical bytes with ``td1``, and TCK."""
    body = bytes.fromhex(_ATR_BODY.format(td1=f"{td1:02X}"))
    return b"\x3b" + body + bytes([reduce(lambda a, b: a ^ b, body, 0)])


ATR = _atr(0x80)
"""The ATR of a card speaking T=0 (3B 9F 96 80 1F C7 ... 90 00 93)."""
ATR_T1 = _atr(0x81)
"""The ATR of a card speaking T=1 (3B 9F 96 81 1F C7 ... 90 00 92)."""


def make_card(profile: CardProfile, *, t0: bool = True) -> Uicc:
    """Return an emulated UICC personalised with ``profile``, every application plugged in."""
    card = Uicc(profile, t0=t0)
    usim_app.register(card)
    ota_app.register(card)
    gp_app.register(card)
    card.atr = ATR if t0 else ATR_T1
    return card
