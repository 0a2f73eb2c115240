"""Step 3 of a device's life: what starts its DM session.

``server.session_trigger: client`` (default): the device opens the session itself (Alert 1201).
``notification``: the server sends package #0 (OMA-TS-DM_Notification §6, §7) over WAP Push,
resent like a bootstrap; the device acts on it only if its digest verifies with the credential
it holds for that server (DM_Notification §6.2, DM_Security §5.7) and answers with Alert 1200
in the session the package names (:func:`received`).
"""
from __future__ import annotations

from dmsim.base.errors import DmsimError
from dmsim.network.dm import notification


def session_trigger(dev):
    """SimPy generator: set the device's session id and initiator; return "" or the failure reason."""
    replica = dev.replica
    if replica.data["server"]["session_trigger"] != "notification":
        return ""
    server = replica.agents["server"]
    dev.notified = replica.env.event()
    push = server.notification_push(dev.ident, dev.session_id & 0xFFFF)
    if not (yield from server.push_until(dev, push, dev.notified, count=False)):
        return "notification_rejected" if dev.notice_rejected else "notification_lost"
    dev.session_id, dev.initiator = dev.notified.value.session_id, "server"
    return ""


def waiting(dev) -> bool:
    """Return whether the device waits for a package #0."""
    return dev.notified is not None and not dev.notified.triggered


def received(dev, push: bytes) -> None:
    """A whole package #0 reached the device: act on it only if its digest verifies."""
    account = dev.account
    try:
        pkg0 = notification.decode_push(push)
    except DmsimError:
        dev.notice_rejected += 1
        return
    if not notification.verify_pkg0(pkg0, account.server_id, account.server_password, account.server_nonce):
        dev.notice_rejected += 1
        return
    dev.notified.succeed(pkg0)
