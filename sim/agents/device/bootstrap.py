"""Step 2 of a device's life: the DM bootstrap.

Over SMS (OMA-TS-DM_Security §5.10.2.3): the server provisions the account and pushes the
HMAC-protected bootstrap as WAP Push (``sim/agents/dm_server.py``); the device's SMS stack
reassembles it and hands the document to :func:`received`, which verifies the MAC with the
device's NETWORKID/USERPIN (``devices/bootstrap_client.py``) and stores the account. A tampered
bootstrap is rejected and counted; the server sends again on timeout.

From the card (seed 001 §8.1): the power-on step already ran the smartcard bootstrap; this step
only takes its report (:func:`from_card`).
"""
from __future__ import annotations

from dmsim.devices.bootstrap_client import accept_bootstrap
from dmsim.devices.dm_tree import account_from_tree


def bootstrap(dev):
    """SimPy generator: return "" once the device holds the server's account, else the failure reason."""
    if dev.card_report is not None:
        return from_card(dev)
    replica = dev.replica
    server = replica.agents["server"]
    push = server.bootstrap_push(dev.ident)
    dev.t_bootstrap_sent = replica.env.now
    if (yield from server.push_until(dev, push, dev.bootstrapped)):
        return ""
    return "bootstrap_rejected" if dev.rejected else "bootstrap_lost"


def received(dev, document: bytes) -> None:
    """A whole bootstrap reached the device: accept it (DmsimError if it does not verify)."""
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
