"""Step 4 of a device's life: the DM session (OMA DM 1.3 packages 1-4) on the device's DM tree,
with Cred or x-syncml-hmac on every message (OMA-TS-DM_Security §5.4, §5.6), through the
replica's DM-server transport (``sim/links/transports.py``: simulated HTTP, HTTPS inside real
TLS, or a real server).

Before its first IP session the device sets up its data bearer (``client.connect_time``, a delay
model; none by default), so ``t_session_start`` is its own event, after ``t_bootstrap_ok``. The
bootstrap session of ``bootstrap_via: tls`` (``bootstrap.py``) is a session of the same kind
(:func:`run_session`) with the bootstrap server.
Client retries: a request whose response is lost is sent again after ``client.request_timeout``,
at most ``client.request_retries`` more times; then the session fails with ``ip_timeout``.
The profile's ``message_security`` (seed 002 §5.3-§5.5) is applied to every message; xmldsig and
xmlenc protect XML, so the session then uses ``application/vnd.syncml.dm+xml``.
"""
from __future__ import annotations

from dmsim.devices.dm_client import DmClient, Done
from dmsim.network.dm import messages as m
from dmsim.network.dm.hmac_integrity import HmacVerifier
from dmsim.network.dm.message_security import make as make_message_security

DEVINFO_MODELS = ("dmsim-phone-a", "dmsim-phone-b", "dmsim-module-c")


def dm_session(dev):
    """SimPy generator: run the session with the DM server; return the client's final ``Done``."""
    replica, ident = dev.replica, dev.ident
    security = make_message_security(ident.profile.get("message_security", "none"),
                                     max_age=replica.data["server"]["hmac_window"])
    return (yield from run_session(dev, dev.account, replica.transport, security, opens_phase=True))


def run_session(dev, account, transport, security=None, *, opens_phase: bool = False):
    """SimPy generator: run one client-initiated (or, after a package #0, server-initiated) DM
    session of ``dev`` under ``account`` through ``transport`` (with seed 002 ``security``, if
    any), setting ``dev.client``; return the client's final ``Done``. The data bearer is set up
    (``client.connect_time``) before the device's first session only; ``opens_phase``: the
    session is the DM session phase, whose start is ``t_session_start``."""
    replica, ident = dev.replica, dev.ident
    data = replica.data
    client = dev.client = DmClient(account, ident.uri,
                                   {"DevId": ident.uri, "Man": "dmsim",
                                    "Mod": DEVINFO_MODELS[ident.index % len(DEVINFO_MODELS)],
                                    "DmV": "1.2", "Lang": "en-US"},
                                   session_id=dev.session_id, nonce_source=replica.device_rng.randbytes,
                                   initiator=dev.initiator,
                                   hmac_verifier=HmacVerifier(max_age=data["server"]["hmac_window"]),
                                   tree=dev.tree, message_security=security,
                                   content_type=m.DM_XML if security is not None and security.needs_xml
                                   else m.DM_WBXML)
    if not dev.bearer_up:
        if replica.connect_time is not None:
            yield replica.env.timeout(replica.connect_time.sample(replica.connect_rng))
        dev.bearer_up = True
    if opens_phase:
        dev.t_session_start = replica.env.now
    step = client.start(transport.unix_now())
    retries, timeout = data["client"]["request_retries"], data["client"]["request_timeout"]
    try:
        while not isinstance(step, Done):
            reply = None
            for attempt in range(retries + 1):
                if attempt:
                    dev.ip_retries += 1
                reply = yield from transport.exchange(dev, step.body, step.content_type, timeout, step.headers)
                if reply is not None:
                    break
            if reply is None:
                step = Done(False, "ip_timeout")
            elif isinstance(reply, Done):  # the transport ended the session (TLS failure)
                step = reply
            elif reply.start != "200":
                step = Done(False, f"http_{reply.start}")
            else:
                step = client.receive(reply.body, reply.content_type, reply.headers, transport.unix_now())
    finally:
        transport.closed(dev)
    return step
