"""The USIM's AUTHENTICATE on the emulated card: 3GPP TS 31.102 §7.1.1-§7.1.2 (even INS 88).

``register(card)`` plugs the handler into a ``Uicc``; the cryptography is cards/usim_auth.py and
(GBA key derivations) network/gba/keys.py.

Command (CLA 0X, INS 88, P1 00), by P2 (TS 31.102 §7.1.2.1, b8 = 1 "specific reference data",
b3-b1 the security context):

- P2 81, 3G context: data = L RAND || L AUTN (16 and 16 octets). Success answers
  'DB' L RES L CK L IK '08' Kc, a stale SQN 'DC' 0E AUTS, both with 90 00 (the engine turns
  them into 61xx under T=0); a wrong MAC-A answers 98 62 with no data.
- P2 84, GBA context (TS 31.102 §7.1.2.3/§7.1.2.4, TS 33.220 Annex G), mode given by the
  first data octet:
  bootstrapping mode 'DD' L RAND L AUTN: the same AKA; on success Ks = CK || IK and RAND stay
  in the card (``gba_state(card)``) and the answer is 'DB' L RES; sync failure and MAC failure
  answer as in the 3G context;
  NAF derivation mode 'DE' L NAF_ID L IMPI: Ks_ext_NAF and Ks_int_NAF from the stored Ks and
  RAND (TS 33.220 Annex B.3); the answer is 'DB' L Ks_ext_NAF, Ks_int_NAF stays in the card
  keyed by NAF_ID (GBA_U, TS 33.220 §5.3.2).

Status words and the order they are checked in:
1. 69 85 (conditions of use not satisfied, TS 102 221 §10.2.1.7) unless the channel's
   application is ADF.USIM and its current DF is that ADF or under it. TS 31.102 §7.1.1 makes
   the command "not executable" otherwise; dmsim answers 6985 in every such case (no ADF,
   another ADF such as ISIM or PKCS#15, or the MF selected after the ADF), rather than 6D00,
   since the card does know the instruction.
2. 6A 86 for P1 other than 00 or a P2 that names no context; 98 64 (security context not
   supported, TS 31.102 §7.3.1) for the contexts TS 31.102 defines but dmsim does not run:
   GSM (80), VGCS/VBS (82), MBMS (85), local key establishment (86).
3. 69 82 unless PIN1 is verified or disabled: TS 31.102 §7.1.1 requires "a successful PIN
   verification procedure" (the access condition PIN of the application, here PIN Appl 1).
4. 67 00 when the LV fields do not exactly fill the data or RAND/AUTN are not 16 octets, or
   NAF_ID/IMPI are empty; 6A 80 for a GBA mode tag other than DD/DE or an IMPI that is not
   UTF-8.
5. 69 85 for NAF derivation before any successful GBA bootstrapping (TS 33.220 G.2: "if Ks is
   not available in the UICC, the command will answer with the appropriate error message").

Choices where the specs leave room:
- SQN state (TS 33.102 Annex C): the profile's ``sqn`` is SQN_MS, the highest SQN accepted so
  far; its SEQ goes into the array slot of its IND, the other slots start at 0 (so a new card's
  AUTS carries the profile's SQN back). The ``SqnArray`` lives in ``card.state`` and every
  accepted AUTN updates it in place (``sqn_array(card)``).
- Le is not checked: the AKA consumes the SQN, so a 6Cxx "retry with the right Le" would
  answer a sync failure. Terminals send Le 00 (or, under T=0, no Le and GET RESPONSE).
- EF_GBABP and EF_GBANL are left to the ME: the card keeps Ks, RAND and the Ks_int_NAF keys in
  ``card.state`` only. A new bootstrap replaces Ks and RAND, keeps the Ks_int_NAF keys, and a
  failed one changes nothing.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from dmsim.cards import sw as SW
from dmsim.cards.apdu import CommandApdu
from dmsim.cards.filesystem import PIN1
from dmsim.cards.milenage import opc_from_op
from dmsim.cards.profile import CardProfile
from dmsim.cards.sqn import SqnArray
from dmsim.cards.uicc import INTERINDUSTRY, Channel, Reply, Uicc
from dmsim.cards.uicc_files import USIM_AID
from dmsim.cards.usim_auth import (GbaBootstrapped, MacFailure, SyncFailure, authenticate_3g, gba_bootstrap,
                                   naf_derivation_response)
from dmsim.network.gba.keys import derive_ks_naf

INS_AUTHENTICATE = 0x88
P2_3G = 0x81               # TS 31.102 §7.1.2.1 table 1: specific reference data, context 001
P2_GBA = 0x84              # context 100
P2_NOT_RUN = {0x80: "GSM", 0x82: "VGCS/VBS", 0x85: "MBMS", 0x86: "local key establishment"}
TAG_GBA_BOOTSTRAP = 0xDD   # TS 31.102 §7.1.2.3, bootstrapping mode
TAG_GBA_NAF = 0xDE         # TS 31.102 §7.1.2.4, NAF derivation mode
RAND_LEN = AUTN_LEN = 16

STATE_SQN = "usim.sqn"
STATE_GBA = "usim.gba"
STATE_OPC = "usim.opc"


@dataclass
class GbaState:
    """GBA_U state of the card: Ks and RAND of the last bootstrap, Ks_int_NAF by NAF_ID."""

    ks: bytes | None = None
    rand: bytes | None = None
    ks_int_naf: dict[bytes, bytes] = field(default_factory=dict)


def sqn_array_from_profile(sqn: bytes) -> SqnArray:
    """Return the SEQ_MS array of a new card whose highest accepted SQN is ``sqn`` (6 octets)."""
    return SqnArray.new_card(sqn)


def _opc(profile: CardProfile) -> bytes:
    return profile.opc if profile.opc is not None else opc_from_op(profile.k, profile.op)


def register(card: Uicc) -> None:
    """Add AUTHENTICATE (00 88) to ``card`` and set up its SQN and GBA state."""
    card.state[STATE_SQN] = sqn_array_from_profile(card.profile.sqn)
    card.state[STATE_GBA] = GbaState()
    card.state[STATE_OPC] = _opc(card.profile)
    card.register(INTERINDUSTRY, INS_AUTHENTICATE, authenticate)


def sqn_array(card: Uicc) -> SqnArray:
    """Return the card's SEQ_MS array (``highest()`` is the SQN to write back to a profile)."""
    return card.state[STATE_SQN]


def gba_state(card: Uicc) -> GbaState:
    """Return the card's GBA_U state (Ks, RAND, Ks_int_NAF keys)."""
    return card.state[STATE_GBA]


def _lv_fields(data: bytes, count: int) -> list[bytes] | None:
    """Return ``count`` length-value fields that exactly fill ``data``, or None."""
    out, pos = [], 0
    for _ in range(count):
        if pos >= len(data):
            return None
        n = data[pos]
        if pos + 1 + n > len(data):
            return None
        out.append(bytes(data[pos + 1:pos + 1 + n]))
        pos += 1 + n
    return out if pos == len(data) else None


def _rand_autn(data: bytes) -> tuple[bytes, bytes] | None:
    fields = _lv_fields(data, 2)
    if fields is None or len(fields[0]) != RAND_LEN or len(fields[1]) != AUTN_LEN:
        return None
    return fields[0], fields[1]


def _in_usim(channel: Channel) -> bool:
    app = channel.application
    return app is not None and app.aid == USIM_AID and app in channel.current_df.path()


def authenticate(card: Uicc, channel: Channel, cmd: CommandApdu) -> Reply:
    """AUTHENTICATE, TS 31.102 §7.1.2 (see the module doc for contexts and status words)."""
    if not _in_usim(channel):
        return Reply(b"", SW.CONDITIONS_NOT_SATISFIED)
    if cmd.p1 != 0x00:
        return Reply(b"", SW.INCORRECT_P1P2)
    if cmd.p2 not in (P2_3G, P2_GBA):
        return Reply(b"", SW.AUTH_CONTEXT_NOT_SUPPORTED if cmd.p2 in P2_NOT_RUN else SW.INCORRECT_P1P2)
    if not card.satisfied(PIN1):
        return Reply(b"", SW.SECURITY_NOT_SATISFIED)
    if not cmd.data:
        return Reply(b"", SW.WRONG_LENGTH)
    if cmd.p2 == P2_3G:
        return _three_g(card, cmd.data)
    if cmd.data[0] == TAG_GBA_BOOTSTRAP:
        return _gba_bootstrap(card, cmd.data[1:])
    if cmd.data[0] == TAG_GBA_NAF:
        return _gba_naf(card, cmd.data[1:])
    return Reply(b"", SW.WRONG_DATA)


def _failure(result: SyncFailure | MacFailure) -> Reply:
    if isinstance(result, MacFailure):
        return Reply(b"", result.sw)
    return Reply(result.response())


def _three_g(card: Uicc, data: bytes) -> Reply:
    fields = _rand_autn(data)
    if fields is None:
        return Reply(b"", SW.WRONG_LENGTH)
    result = authenticate_3g(card.profile.k, card.state[STATE_OPC], *fields, sqn_array(card))
    if isinstance(result, (SyncFailure, MacFailure)):
        return _failure(result)
    return Reply(result.response())


def _gba_bootstrap(card: Uicc, data: bytes) -> Reply:
    fields = _rand_autn(data)
    if fields is None:
        return Reply(b"", SW.WRONG_LENGTH)
    result = gba_bootstrap(card.profile.k, card.state[STATE_OPC], *fields, sqn_array(card))
    if not isinstance(result, GbaBootstrapped):
        return _failure(result)
    state = gba_state(card)
    state.ks, state.rand = result.ks, result.rand
    return Reply(result.response())


def _gba_naf(card: Uicc, data: bytes) -> Reply:
    fields = _lv_fields(data, 2)
    if fields is None or not fields[0] or not fields[1]:
        return Reply(b"", SW.WRONG_LENGTH)
    naf_id, impi = fields
    try:
        impi_text = impi.decode("utf-8")
    except UnicodeDecodeError:
        return Reply(b"", SW.WRONG_DATA)
    state = gba_state(card)
    if state.ks is None or state.rand is None:
        return Reply(b"", SW.CONDITIONS_NOT_SATISFIED)
    ks_ext, ks_int = derive_ks_naf(state.ks, state.rand, impi_text, naf_id)
    state.ks_int_naf[naf_id] = ks_int
    return Reply(naf_derivation_response(ks_ext))
