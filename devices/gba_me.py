"""The ME side of GBA Push with a GBA_ME card (3GPP TS 33.223 §4.3.3, TS 33.220 §4.5.2): the
USIM runs 3G AKA (AUTHENTICATE in 3G context, TS 31.102 §7.1.2.1) and the ME derives Ks = CK || IK
and Ks_NAF itself (TS 33.220 Annex B.3). A GBA_U card keeps Ks inside
(:func:`dmsim.network.gba.push.card_gba_u`)."""
from __future__ import annotations

from dmsim.cards.link import CardLink
from dmsim.cards.usim_auth import GbaBootstrapped, GbaResult, MacFailure, SyncFailure
from dmsim.devices.card_host import authenticate
from dmsim.network.gba.keys import derive_ks_naf, ks_from_ck_ik
from dmsim.network.gba.push import PushAka


def card_gba_me(link: CardLink) -> PushAka:
    """Return the GBA_ME push AKA over the real APDUs of ``link``: the 3G AKA of
    :func:`card_gba_me_ub`, then Ks_NAF derived in the ME; or the card's SyncFailure (with AUTS)
    / MacFailure."""
    bootstrap = card_gba_me_ub(link)

    def run(rand: bytes, autn: bytes, impi: str, naf_id: bytes):
        out = bootstrap(rand, autn)
        if isinstance(out, (MacFailure, SyncFailure)):
            return out
        return derive_ks_naf(out.ks, rand, impi, naf_id)[0]
    return run


def card_gba_me_ub(link: CardLink):
    """Return the ``aka(rand, autn)`` of Ub bootstrapping (``network/gba/ub_client.UbClient``)
    for a GBA_ME device: the USIM runs 3G AKA over the real APDUs of ``link`` and the ME keeps
    Ks = CK || IK (TS 33.220 §4.5.2 step 5); the card's SyncFailure (AUTS) or MacFailure as is."""
    def run(rand: bytes, autn: bytes) -> GbaResult:
        out = authenticate(link, rand, autn)
        if out.outcome == "mac_failure":
            return MacFailure()
        if out.outcome == "sync_failure":
            return SyncFailure(out.auts)
        return GbaBootstrapped(out.res, ks_from_ck_ik(out.ck, out.ik), rand)
    return run
