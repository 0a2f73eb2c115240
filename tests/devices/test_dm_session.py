"""A DM session between the client and server cores with mutual authentication
(OMA-TS-DM_Security §5.4, nonce rules §5.4.3, NextNonce §5.5)."""
import dataclasses
import random

import pytest

from dmsim.devices.dm_client import DmClient, Done
from dmsim.network.dm import messages as m
from dmsim.network.dm.server import DmServer

DEV = "IMSI:001010000000001"
DEVINFO = {"DevId": DEV, "Man": "dmsim", "Mod": "model-x", "DmV": "1.2", "Lang": "en-US"}


def setup(auth_scheme="syncml:auth-md5", content_type=m.DM_WBXML):
    rng = random.Random(7)
    srv = DmServer("dmsim-server", "http://dm.test/dm", rng.randbytes, content_type=content_type)
    account = srv.provision(DEV, client_name="001010000000001", client_password="cpw", server_password="spw",
                            auth_scheme=auth_scheme)
    return srv, account, rng


def run(srv, client, tamper_reply=None):
    step, events = client.start(), []
    for _ in range(10):
        if isinstance(step, Done):
            return step, events
        reply = srv.handle(step.body, step.content_type, 0.0)
        events += [e.kind for e in reply.events]
        body = tamper_reply(reply.body) if tamper_reply else reply.body
        step = client.receive(body, reply.content_type)
    raise AssertionError("session did not end")


@pytest.mark.parametrize("scheme", ["syncml:auth-md5", "syncml:auth-sha256", "syncml:auth-basic"])
@pytest.mark.parametrize("ctype", [m.DM_WBXML, m.DM_XML])
def test_session_completes_with_mutual_auth(scheme, ctype):
    srv, account, rng = setup(scheme, ctype)
    client = DmClient(account, DEV, DEVINFO, 1, rng.randbytes, content_type=ctype)
    done, events = run(srv, client)
    assert done == Done(True)
    assert events == ["client_authenticated", "session_completed"]
    assert client.auth_retries == 0
    assert not srv.sessions


def test_next_nonce_is_stored_for_the_next_session():
    srv, account, rng = setup()
    client = DmClient(account, DEV, DEVINFO, 1, rng.randbytes)
    run(srv, client)
    assert client.account.client_nonce != account.client_nonce
    assert client.account.client_nonce == srv.accounts[DEV].client_nonce
    second = DmClient(client.account, DEV, DEVINFO, 2, rng.randbytes)
    assert run(srv, second)[0] == Done(True) and second.auth_retries == 0


def test_stale_client_nonce_gets_one_more_challenge():
    srv, account, rng = setup()
    client = DmClient(account.with_nonces(client=b"stale-nonce"), DEV, DEVINFO, 1, rng.randbytes)
    done, events = run(srv, client)
    assert done == Done(True)
    assert client.auth_retries == 1


@pytest.mark.parametrize("field,value,reason", [
    ("client_password", "guess", "client_auth_failed"),          # the server refuses a guessed password
    ("server_password", "not-the-real-one", "server_auth_failed"),  # the client refuses an impostor server
])
def test_wrong_secret_fails_after_the_second_challenge(field, value, reason):
    srv, account, rng = setup()
    client = DmClient(dataclasses.replace(account, **{field: value}), DEV, DEVINFO, 1, rng.randbytes)
    done, events = run(srv, client)
    assert done == Done(False, reason)
    if reason == "client_auth_failed":
        assert events == ["client_auth_failed"] and not srv.sessions
    else:  # the client walked away: the server only learns it when the connection closes
        srv.connection_closed(DEV)
        assert not srv.sessions


def test_stale_server_nonce_is_challenged_by_the_client_and_recovers():
    srv, account, rng = setup()
    client = DmClient(account.with_nonces(server=b"client-forgot"), DEV, DEVINFO, 1, rng.randbytes)
    done, events = run(srv, client)
    assert done == Done(True)
    assert "server_auth_rejected" in events


def test_mangled_server_reply_ends_the_session_with_a_reason():
    srv, account, rng = setup()
    client = DmClient(account, DEV, DEVINFO, 1, rng.randbytes)
    done, _ = run(srv, client, tamper_reply=lambda b: b[:10])
    assert not done.ok and done.reason.startswith("bad_server_message")


def test_retransmitted_request_gets_the_cached_reply():
    srv, account, rng = setup()
    client = DmClient(account, DEV, DEVINFO, 1, rng.randbytes)
    first = client.start()
    a = srv.handle(first.body, first.content_type, 0.0)
    b = srv.handle(first.body, first.content_type, 1.0)
    assert a.body == b.body and b.events == []


def test_garbage_request_is_a_counted_bad_request():
    srv, _, _ = setup()
    reply = srv.handle(b"\x03\x00garbage", m.DM_WBXML, 0.0)
    assert reply.session_over and reply.events[0].kind == "bad_request"
    assert srv.handle(b"<x/>", "text/plain", 0.0).events[0].kind == "bad_request"


def _with_next_nonce(body: bytes, nonce: str) -> bytes:
    """Return the XML server message ``body`` whose SyncHdr Status carries ``nonce`` as NextNonce
    (the server's own NextNonce replaced, or a Chal added)."""
    import re
    if b"<NextNonce" in body:
        return re.sub(rb"(<NextNonce[^>]*>)[^<]*(</NextNonce>)", rb"\g<1>" + nonce.encode() + rb"\g<2>", body, count=1)
    meta = ("<Chal><Meta><Format xmlns=\"syncml:metinf\">b64</Format><Type xmlns=\"syncml:metinf\">"
            "syncml:auth-md5</Type><NextNonce xmlns=\"syncml:metinf\">" + nonce + "</NextNonce></Meta></Chal>")
    return body.replace(
        b"<Cmd>SyncHdr</Cmd>", b"<Cmd>SyncHdr</Cmd>" + meta.encode(), 1)


@pytest.mark.parametrize("scheme, kept", [("syncml:auth-md5", True), ("syncml:auth-sha256", True),
                                          ("syncml:auth-basic", False)])
def test_next_nonce_is_kept_only_under_the_nonce_schemes(scheme, kept):
    """§5.5: AAuthData takes NextNonce under DIGEST, DIGEST-SHA256 and HMAC; other schemes ignore it."""
    srv, account, rng = setup(scheme, m.DM_XML)
    client = DmClient(account, DEV, DEVINFO, 1, rng.randbytes, content_type=m.DM_XML)
    step = client.start()
    reply = srv.handle(step.body, step.content_type, 0.0)
    before = client.account.client_nonce
    client.receive(_with_next_nonce(reply.body, "bmV4dC1ub25jZQ=="), reply.content_type)
    assert (client.account.client_nonce != before) is kept
    if kept:
        assert client.account.client_nonce == b"next-nonce"


def test_a_failed_credential_gets_a_challenge_with_a_new_nonce():
    """§5.4.3 (DM-SEC-S-008-M): one more challenge, with a nonce other than the one that failed."""
    srv, account, rng = setup(content_type=m.DM_XML)
    stale = b"stale-nonce"
    client = DmClient(account.with_nonces(client=stale), DEV, DEVINFO, 1, rng.randbytes, content_type=m.DM_XML)
    step = client.start()
    reply = srv.handle(step.body, step.content_type, 0.0)
    verdict = m.header_status(m.decode(reply.body, reply.content_type))
    assert verdict.code == m.UNAUTHORIZED and verdict.next_nonce not in (None, stale, account.client_nonce)
    step = client.receive(reply.body, reply.content_type)
    assert client.account.client_nonce == verdict.next_nonce   # the retry uses the new nonce
    reply = srv.handle(step.body, step.content_type, 0.0)
    assert m.header_status(m.decode(reply.body, reply.content_type)).code in (m.OK, m.AUTH_ACCEPTED)


def test_client_basic_to_the_server_and_server_md5_to_the_client():
    """A DM 1.2 pairing: the client sends auth-basic, the server answers with auth-md5 (its
    SRVCRED scheme); both sides check the other's credential under the other's scheme."""
    rng = random.Random(11)
    srv = DmServer("dmsim-server", "http://dm.test/dm", rng.randbytes)
    account = srv.provision(DEV, client_name="001010000000001", client_password="cpw", server_password="spw",
                            auth_scheme="syncml:auth-basic", server_auth_scheme="syncml:auth-md5")
    assert account.server_scheme == "syncml:auth-md5"
    client = DmClient(account, DEV, DEVINFO, 1, rng.randbytes)
    done, events = run(srv, client)
    assert done == Done(True)
    wrong = DmClient(dataclasses.replace(account, server_auth_scheme="syncml:auth-basic"), DEV, DEVINFO, 2,
                     rng.randbytes)
    assert run(srv, wrong)[0] == Done(False, "server_auth_failed")  # the md5 Cred is not a Basic one


@pytest.mark.parametrize("scheme, renewed", [("syncml:auth-md5", True), ("syncml:auth-sha256", True),
                                             ("syncml:auth-basic", False)])
def test_the_client_renews_the_server_nonce_with_every_message_it_accepts(scheme, renewed):
    """§5.5, §5.4.3: each server message the client accepts under a digest scheme is answered with
    a fresh NextNonce for the server, which the server then uses: no server Cred repeats, so one
    seen on the wire cannot be replayed (basic has no nonce)."""
    srv, account, rng = setup(scheme)
    client = DmClient(account, DEV, DEVINFO, 1, rng.randbytes)
    step, creds, nonces = client.start(), [], []
    for _ in range(10):
        if isinstance(step, Done):
            break
        reply = srv.handle(step.body, step.content_type, 1_700_000_000.0, headers=step.headers)
        msg = m.decode(reply.body, reply.content_type) if reply.body else None
        cred = msg.find("SyncHdr/Cred/Data") if msg is not None else None
        creds.append(None if cred is None else cred.text)
        step = client.receive(reply.body, reply.content_type, reply.headers, 1_700_000_000.0)
        nonces.append(client.account.server_nonce)
    assert step == Done(True)
    assert srv.accounts[DEV].server_nonce == client.account.server_nonce  # both ends agree
    if renewed:
        assert len(set(creds)) == len(creds) == 2  # package 2's and package 4's Cred differ
        assert client.account.server_nonce != account.server_nonce
    else:
        assert client.account.server_nonce == account.server_nonce


def test_a_server_cred_seen_before_is_refused():
    """The impostor's move: package 2 of a finished session replayed to the next one."""
    srv, account, rng = setup()
    first = DmClient(account, DEV, DEVINFO, 1, rng.randbytes)
    package2 = srv.handle(first.start().body, m.DM_WBXML, 0.0)
    assert not isinstance(first.receive(package2.body, package2.content_type), Done)
    second = DmClient(first.account, DEV, DEVINFO, 1, rng.randbytes)
    second.start()
    refusal = second.receive(package2.body, package2.content_type)
    assert not isinstance(refusal, Done)  # one challenge of the server (§5.4.3) ...
    status = m.header_status(m.decode(refusal.body, refusal.content_type))
    assert status.code == m.UNAUTHORIZED
    assert second.receive(package2.body, package2.content_type) == Done(False, "server_auth_failed")  # ... then it ends
