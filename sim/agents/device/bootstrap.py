"""Step 2 of a device's life: the DM bootstrap.

Over SMS (OMA-TS-DM_Security §5.10.2.3): the server provisions the account and pushes the
HMAC-protected bootstrap as WAP Push (``sim/agents/dm_server.py``); the device's SMS stack
reassembles it and hands the document to :func:`received`, which verifies the MAC with the
device's NETWORKID/USERPIN (``devices/bootstrap_client.py``) and stores the account. A tampered
bootstrap is rejected and counted; the server sends again on timeout.

From the card (seed 001 §8.1): the power-on step already ran the smartcard bootstrap; this step
only takes its report (:func:`from_card`).

Over TLS (seed 001 §9.3, profile ``bootstrap_via: tls``, :func:`via_tls`): the device holds the
bootstrap server's account from the factory (``<x>/Auth/Bootstrap``, ``agents/bootstrap_server.py``);
the DM server provisions the device's account, the bootstrap server plans its delivery, and the
device runs a DM session with the bootstrap server over PSK-TLS with the keys its own tree holds
(``links/bootstrap_transport.py``). The bootstrap succeeded when the device's tree then holds the
DM server's account (``bootstrap_rejected`` otherwise: the session ended but did not install it);
a failed session ends the life with ``bootstrap_`` and its reason (``bootstrap_tls_failed``,
``bootstrap_ip_timeout``, ...). ``t_bootstrap_sent`` is when the device opens the session.

Over GBA Push (OMA-TS-DM_Security §5.10.2.4, ``bootstrap_via: gba_push``): ``gba_push.py``.
"""
from __future__ import annotations

from dmsim.base.errors import DmsimError
from dmsim.devices.bootstrap_client import accept_bootstrap
from dmsim.devices.dm_tree import DmTree, account_from_tree, install_account
from dmsim.sim.agents.bootstrap_server import VIA_TLS
from dmsim.sim.agents.device import gba_push
from dmsim.sim.agents.device.dm_session import run_session

GBA_PUSH = "gba_push"  # fleet.profiles[].bootstrap_via


def bootstrap(dev):
    """SimPy generator: return "" once the device holds the server's account, else the failure reason."""
    if dev.card_report is not None:
        return from_card(dev)
    via = dev.ident.profile.get("bootstrap_via")
    if via == VIA_TLS:
        return (yield from via_tls(dev))
    if via == GBA_PUSH:
        return (yield from gba_push.via_gba_push(dev))
    replica = dev.replica
    server = replica.agents["server"]
    push = server.bootstrap_push(dev.ident)
    dev.t_bootstrap_sent = replica.env.now
    if (yield from server.push_until(dev, push, dev.bootstrapped)):
        return ""
    return "bootstrap_rejected" if dev.rejected else "bootstrap_lost"


def received(dev, document: bytes) -> None:
    """A whole bootstrap reached the device: accept it (DmsimError if it does not verify); a
    gba_push device's pushes (GPI, then the 3GPP_GBA bootstrap) go to ``gba_push.received``."""
    if dev.ident.profile.get("bootstrap_via") == GBA_PUSH:
        gba_push.received(dev, document)
        return
    accepted = accept_bootstrap(document, imsi=dev.ident.imsi, userpin=dev.ident.userpin)
    dev.accepted = True
    dev.account = accepted.account
    dev.t_bootstrap_ok = dev.replica.env.now
    dev.reasm = None
    dev.bootstrapped.succeed()


def from_card(dev) -> str:
    """Take the device's power-on smartcard bootstrap: return "" when it installed (or kept) the
    server's account in the device's tree, else ``smartcard_bootstrap_failed`` (the card or
    channel failed) or ``smartcard_bootstrap_refused`` (the card's accounts are of servers the
    device does not accept; each refusal counts in ``bootstrap_rejected``)."""
    report = dev.card_report
    if not report.ok:
        return "smartcard_bootstrap_failed"
    server_id = dev.replica.agents["server"].core.server_id
    if server_id not in report.installed + report.unchanged:
        dev.rejected += len(report.refused)
        return "smartcard_bootstrap_refused"
    dev.account = account_from_tree(dev.tree, server_id)
    dev.accepted = True
    dev.t_bootstrap_ok = dev.replica.env.now
    return ""


def via_tls(dev):
    """SimPy generator: the bootstrap session with the bootstrap server (see the module doc)."""
    replica, ident = dev.replica, dev.ident
    bootstrap_server, server = replica.agents["bootstrap_server"], replica.agents["server"]
    dev.tree = DmTree()
    factory = bootstrap_server.factory_account(ident)
    install_account(dev.tree, factory)
    server.provision(ident)
    bootstrap_server.plan_bootstrap(ident, server.core.accounts[ident.uri])
    dev.t_bootstrap_sent = replica.env.now
    dev.bootstrap_sends += 1
    done = yield from run_session(dev, factory, bootstrap_server.transport)
    if not done.ok:
        return "bootstrap_" + done.reason.split(":")[0]
    try:
        dev.account = account_from_tree(dev.tree, server.core.server_id)
    except DmsimError:
        dev.rejected += 1
        return "bootstrap_rejected"
    dev.accepted = True
    dev.t_bootstrap_ok = replica.env.now
    return ""
