"""Step 2 for ``bootstrap_via: gba_push``: the 3GPP_GBA bootstrap (OMA-TS-DM_Security §5.10.2.4,
Appendix C; seed 001 §9.3.1.3) over GBA Push (3GPP TS 33.223).

1. The DM server provisions the device's account and asks the NAF (inside it, or the proxy NAF:
   ``agents/naf.py``) for the device's keys: a Zpn round trip to the BSF (``agents/bsf.py``),
   which takes an AV from the HSS; the answer is the GBA Push Info (GPI) and DMBIK/DMBEK.
2. Upa: the GPI goes to the device as a WAP Push over SMS (TS 24.109 Annex J.2), resent like a
   bootstrap until the device derived its keys. The device's card runs the AKA with real APDUs
   (``components.card.apdu_time`` each): GBA_U through AUTHENTICATE in GBA context (Ks and
   Ks_int_NAF stay in the UICC, ``push.card_gba_u``), GBA_ME through 3G AKA with Ks_NAF derived
   in the ME (``devices/gba_me.py``); then DMBIK and DMBEK (``network/gba/keys.py``). A replayed
   GPI, a stale SQN or a wrong MAC is refused and counted (``gpi_refused``), never acted on.
3. The bootstrap document, protected for integrity and confidentiality with DMBIK/DMBEK and
   carried with the 3GPP_GBA Content-Type (``network/dm/gba_bootstrap.py``), goes as a second
   WAP Push; the device accepts it only when it verifies and decrypts under its own keys.

Times recorded: ``t_gpi_sent`` (the server sends the GPI), ``t_gpi_received`` (the whole GPI
reached the device), ``t_gba_keys`` (its card and ME derived the keys), then ``t_bootstrap_sent``
and ``t_bootstrap_ok`` for the protected bootstrap. Failures: ``gba_no_keys`` (Zpn gave no
answer), ``gpi_lost``/``gpi_rejected`` (no keys derived after every resend), then the usual
``bootstrap_lost``/``bootstrap_rejected``.
"""
from __future__ import annotations

from dataclasses import dataclass

import simpy

from dmsim.base.errors import DmsimError
from dmsim.cards.profile import default_impi
from dmsim.devices.bootstrap_client import accept_gba_bootstrap
from dmsim.devices.gba_me import card_gba_me
from dmsim.network.dm import wbxml
from dmsim.network.dm.account import bootstrap_document
from dmsim.network.dm.gba_bootstrap import protect
from dmsim.network.gba.gpi_wap import gpi_push, parse_gpi_push
from dmsim.network.gba.push import PushKeys, PushReceiver, card_gba_u
from dmsim.network.sms import wsp_push
from dmsim.sim.links.transports import sim_unix_time

MNC_LENGTH = 2  # the fleet's test PLMN 001 01 (sim/model/fleet.py)


@dataclass
class GbaState:
    """What a gba_push device holds between the GPI and the protected bootstrap."""

    receiver: PushReceiver
    derived: simpy.Event
    keys: PushKeys | None = None
    refused: int = 0
    busy: bool = False  # the card is running a GPI's AKA


def via_gba_push(dev):
    """SimPy generator: the whole step (see the module doc); return "" or the failure reason."""
    replica, ident = dev.replica, dev.ident
    env, server, naf = replica.env, replica.agents["server"], replica.agents["naf"]
    impi = default_impi(ident.imsi, MNC_LENGTH)
    server.provision(ident)
    keys = yield from naf.keys_for(impi)
    if keys is None:
        return "gba_no_keys"
    uicc_u = ident.profile.get("gba_uicc", "u") == "u"
    dev.gba = GbaState(PushReceiver(impi, _card_aka(dev, uicc_u)), env.event())
    dev.t_gpi_sent = env.now
    # the envelope's session identifier names the DM session that follows (TS 24.109 J.2.2)
    push = gpi_push(keys.gpi, tid=ident.index & 0xFF, session_id=dev.session_id & 0xFFFF)
    if not (yield from server.push_until(dev, push, dev.gba.derived)):
        return "gpi_rejected" if dev.gba.refused else "gpi_lost"
    document = wbxml.encode(bootstrap_document(server.core.accounts[ident.uri], ident.uri))
    content_type, body = protect(document, keys.dmbik, keys.dmbek, replica.device_rng.randbytes)
    dev.t_bootstrap_sent = env.now
    if (yield from server.push_until(dev, wsp_push.encode_push(content_type, body, tid=ident.index & 0xFF),
                                     dev.bootstrapped)):
        return ""
    return "bootstrap_rejected" if dev.rejected else "bootstrap_lost"


def _card_aka(dev, uicc_u: bool):
    """The push AKA of the device's card: GBA_U in the UICC, or 3G AKA plus the ME's derivation."""
    def run(rand, autn, impi, naf_id):
        link = dev.replica.cards.links[dev.ident.index]
        aka = card_gba_u(link.transmit) if uicc_u else card_gba_me(link)
        return aka(rand, autn, impi, naf_id)
    return run


def received(dev, push_pdu: bytes) -> None:
    """A whole WAP Push reached a gba_push device: a GPI (processed on the card, in simulated
    time; a copy that comes while the card is still at it is dropped, any later one is processed
    and, being a replay, refused and counted) or, once it holds keys, the protected bootstrap.
    DmsimError when refused."""
    gpi = parse_gpi_push(push_pdu)
    if gpi is not None:
        state = dev.gba
        if state is None or state.busy:
            return
        if dev.t_gpi_received is None:
            dev.t_gpi_received = dev.replica.env.now
        state.busy = True
        dev.replica.env.process(_derive(dev, gpi))
        return
    if dev.gba is None or dev.gba.keys is None:
        raise DmsimError("a 3GPP_GBA bootstrap before any GBA Push Info: no keys to check it")
    accepted = accept_gba_bootstrap(push_pdu, dmbik=dev.gba.keys.dmbik, dmbek=dev.gba.keys.dmbek)
    dev.accepted = True
    dev.account = accepted.account
    dev.t_bootstrap_ok = dev.replica.env.now
    dev.reasm = None
    dev.bootstrapped.succeed()


def _derive(dev, gpi: bytes):
    """SimPy process: run the GPI's AKA on the card (its APDUs take simulated time); a refusal
    (replay, stale SQN, MAC failure, expired, malformed) is counted by kind at the NAF agent's
    ``upa`` counters (``summary.json`` network ``gba.upa``)."""
    state, replica = dev.gba, dev.replica
    counters = state.receiver.counters
    before = dict(counters)
    try:
        keys = yield from replica.cards.run(dev.ident.index,
                                            lambda link: state.receiver.process(gpi, sim_unix_time(replica.env.now)))
    except (DmsimError, KeyError):
        keys = None
    finally:
        state.busy = False
        upa = replica.agents["naf"].upa
        for kind, n in counters.items():
            if n != before.get(kind, 0):
                upa[kind] = upa.get(kind, 0) + n - before.get(kind, 0)
    if keys is None:
        state.refused += 1
        return
    if state.keys is None:
        state.keys = keys
        dev.t_gba_keys = replica.env.now
        state.derived.succeed()
