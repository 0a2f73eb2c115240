"""Issue 13: the DM server core against an attacker without credentials (OMA-TS-DM_Security-V1_3
§5.4, §5.4.3, §5.5, §5.6.1). Each test attacks one defence and fails while its defect exists."""
import base64
import dataclasses
import random
import tracemalloc

import pytest

from dmsim.devices.dm_client import DmClient, Done, Send
from dmsim.network.dm import messages as m
from dmsim.network.dm.account import account_from_bootstrap, bootstrap_document
from dmsim.network.dm.auth import AUTH_BASIC, AUTH_MD5, check_credential, make_credential
from dmsim.network.dm.hmac_integrity import AUTH_HMAC_SHA256, HEADER_NAME, build_header
from dmsim.network.dm.lockout import LockoutPolicy
from dmsim.network.dm.server import INTEGRITY_FAILED, DmServer, http_status
from dmsim.base.errors import ProtocolError

DEV = "IMSI:001010000000001"
DEVINFO = {"DevId": DEV, "Man": "dmsim", "Mod": "model-x", "DmV": "1.2", "Lang": "en-US"}
PASSWORD, SRV_PASSWORD = "right-pw-Zq8x", "server-pw-Kp3w"


def make(scheme=AUTH_MD5, **kw):
    rng = random.Random(7)
    srv = DmServer("srv", "http://srv.test/dm", rng.randbytes, **kw)
    account = srv.provision(DEV, client_name="001010000000001", client_password=PASSWORD,
                            server_password=SRV_PASSWORD, auth_scheme=scheme)
    return srv, account, rng


def pkg1(account, sid, password=None, device=DEV, content_type=m.DM_WBXML):
    """Return package 1 of session ``sid`` (a Send) with the client credential of ``password``."""
    acc = account if password is None else dataclasses.replace(account, client_password=password)
    return DmClient(acc, device, {**DEVINFO, "DevId": device}, sid, random.Random(sid).randbytes,
                    content_type=content_type).start()


def run(srv, client, now=0.0, before=None, log=None):
    """Run a session (at most 20 steps); ``before()`` runs before every request reaches the server."""
    step = client.start(now=now)
    for _ in range(20):
        if isinstance(step, Done):
            return step
        if log is not None:
            log.append(step)
        if before is not None:
            before()
        reply = srv.handle(step.body, step.content_type, now, headers=step.headers)
        step = client.receive(reply.body, reply.content_type, headers=reply.headers, now=now)
    raise AssertionError("session did not end in 20 steps")


def hdr_status(reply):
    return m.header_status(m.decode(reply.body, reply.content_type))


# -- a bad package 1 cannot invalidate the legitimate client's nonce (§5.4.3) ---------------

def test_bad_package_1_leaves_the_stored_nonce_alone():
    srv, account, _ = make()
    reply = srv.handle(*(lambda s: (s.body, s.content_type))(pkg1(account, 900, "guess")), 0.0)
    assert hdr_status(reply).code == m.UNAUTHORIZED and hdr_status(reply).next_nonce is not None
    assert srv.accounts[DEV].client_nonce == account.client_nonce  # before: rotated to the challenge nonce


def test_an_attacker_before_every_request_does_not_lock_the_client_out():
    """Before: 0 of 20 sessions succeeded (each bad package 1 rotated the nonce). Bound: 20 sessions."""
    srv, account, rng = make()
    sids = iter(range(1000, 2000))

    def attacker():
        bad = pkg1(srv.accounts[DEV], next(sids), "guess")
        srv.handle(bad.body, bad.content_type, 0.0)

    held, ok = account, 0
    for session in range(1, 21):
        client = DmClient(held, DEV, DEVINFO, session, rng.randbytes)
        ok += run(srv, client, before=attacker).ok
        held = client.account
    assert ok == 20


def test_challenge_nonce_is_bound_to_its_session():
    srv, account, _ = make()
    first = pkg1(account, 1, "guess")
    chal = hdr_status(srv.handle(first.body, first.content_type, 0.0)).next_nonce
    # a credential computed with that challenge nonce, in another session, is refused
    other = pkg1(account.with_nonces(client=chal), 2)
    reply = srv.handle(other.body, other.content_type, 0.0)
    assert hdr_status(reply).code == m.UNAUTHORIZED and reply.audit[0].outcome == "bad_credential"
    # in its own session it authenticates once
    again = pkg1(account.with_nonces(client=chal), 1)
    assert hdr_status(srv.handle(again.body, again.content_type, 0.0)).code == m.AUTH_ACCEPTED


# -- a nonce is consumed when it is used (replayed package 3) -------------------------------

@pytest.mark.parametrize("restart", [False, True])
def test_replayed_package_3_of_a_finished_session_is_refused(restart):
    """Before: accepted as a new authenticated session (212), with or without a restart. Now a
    replayed package 1 is refused, and a replayed package 3 (the session's last message) gets at
    most the final reply the session already sent, byte for byte (kept for a client whose reply
    was lost; server.py module doc), never a new session or an authentication event."""
    srv, account, rng = make()
    log, replies = [], []
    original = srv.handle
    srv.handle = lambda *a, **k: replies.append(original(*a, **k)) or replies[-1]
    assert run(srv, DmClient(account, DEV, DEVINFO, 5, rng.randbytes), log=log).ok
    if restart:  # a new core on the same (persistent) account store
        srv = DmServer("srv", "http://srv.test/dm", rng.randbytes, accounts=dict(srv.accounts))
    else:
        srv.handle = original
    for i, replayed in enumerate(log):  # package 1 and package 3
        reply = srv.handle(replayed.body, replayed.content_type, 1.0)
        if i == len(log) - 1 and not restart:
            assert (reply.body, reply.events) == (replies[-1].body, [])
        else:
            assert hdr_status(reply).code == m.UNAUTHORIZED
        assert not any(e.kind == "client_authenticated" for e in reply.events)
    assert not srv.sessions


# -- no session state for unauthenticated requests; capped, expiring tables ----------------

def test_unauthenticated_package_1s_cost_bounded_memory():
    """Before: 3,000 bad package 1s left 3,000 sessions (+5.4 MiB). Bound: 3,000 requests."""
    srv, account, _ = make(challenge_cap=100, challenge_ttl=30.0, lockout=LockoutPolicy(threshold=10 ** 6))
    steps = [pkg1(account, sid, "guess") for sid in range(1, 3001)]  # 3,000 fresh SessionIDs
    tracemalloc.start()
    start = tracemalloc.get_traced_memory()[0]
    for i, step in enumerate(steps):
        srv.handle(step.body, step.content_type, i * 0.01)
    grown = tracemalloc.get_traced_memory()[0] - start
    tracemalloc.stop()
    assert not srv.sessions and len(srv.challenges) <= 100 and grown < 512 * 1024
    srv.handle(steps[0].body, steps[0].content_type, 1000.0)  # ttl passed: only this one is left
    assert len(srv.challenges) == 1


def test_sessions_are_capped_and_idle_ones_expire():
    srv, account, _ = make(max_sessions=3, session_timeout=60.0)
    devices = [f"IMSI:00101000000010{i}" for i in range(5)]
    events = []
    for i, dev in enumerate(devices):
        acc = srv.provision(dev, client_name=dev, client_password="pw", server_password="spw")
        step = pkg1(acc, 1, device=dev)
        events += srv.handle(step.body, step.content_type, float(i)).events
    assert sum(len(v) for v in srv.sessions.values()) == 3
    assert [e.device for e in events if e.kind == "session_evicted"] == devices[:2]
    assert srv.expire(now=63.0, idle=60.0) == [devices[2]]  # idle since t=2
    last = pkg1(srv.accounts[DEV], 1)
    srv.handle(last.body, last.content_type, 1000.0)  # handle() itself forgets the idle ones
    assert list(srv.sessions) == [DEV]


# -- brute force: per-device backoff with lockout --------------------------------------------

def test_brute_force_is_locked_out_and_the_right_password_is_refused_while_locked():
    """Before: 1,000 guesses in 1 s, the right one (#500) authenticated. Bound: 1,000 guesses."""
    srv, account, _ = make(lockout=LockoutPolicy(threshold=5, base=2.0, maximum=900.0))
    outcomes = []
    for i in range(1000):
        step = pkg1(srv.accounts[DEV], 1 + i, PASSWORD if i == 500 else f"guess-{i}")
        reply = srv.handle(step.body, step.content_type, i / 1000)
        outcomes.append(reply.audit[0].outcome)
        assert not any(e.kind == "client_authenticated" for e in reply.events)
    assert outcomes[:5] == ["bad_credential"] * 5 and set(outcomes[5:]) == {"locked"}
    # the lock ends (2 s); the right password then authenticates at its first attempt
    step = pkg1(srv.accounts[DEV], 5000)
    assert hdr_status(srv.handle(step.body, step.content_type, 3.0)).code == m.AUTH_ACCEPTED


def test_lock_grows_after_each_failed_round():
    srv, account, _ = make(lockout=LockoutPolicy(threshold=3, base=2.0, maximum=5.0, allowance=2))
    now, locks = 0.0, []
    for _ in range(4):  # four locks: 2 s, 4 s, then capped at 5 s
        while srv.lockout.locked_for(DEV, now) == 0:
            step = pkg1(account, 1, "guess")
            srv.handle(step.body, step.content_type, now)
        locks.append(srv.lockout.locked_for(DEV, now))
        now += locks[-1]
    assert locks == [2.0, 4.0, 5.0, 5.0]


def test_a_locked_out_client_keeps_its_nonce_and_recovers_after_the_lock():
    srv, account, rng = make(lockout=LockoutPolicy(threshold=3, base=10.0))
    for sid in range(100, 103):
        step = pkg1(account, sid, "guess")
        srv.handle(step.body, step.content_type, 0.0)
    client = DmClient(account, DEV, DEVINFO, 1, rng.randbytes)
    assert run(srv, client, now=1.0) == Done(False, "client_auth_failed")
    assert client.account.client_nonce == account.client_nonce  # a lock refusal carries no Chal
    again = DmClient(client.account, DEV, DEVINFO, 2, rng.randbytes)
    assert run(srv, again, now=11.0).ok and again.auth_retries == 0


# -- SyncML answers, audit events ------------------------------------------------------------

def shape(reply):
    """The element structure of a reply, without texts (nonces, URIs) or the MsgRef."""
    def walk(el):
        return (el.tag, tuple(walk(c) for c in el))
    msg = m.decode(reply.body, reply.content_type)
    return walk(msg), hdr_status(reply).code, hdr_status(reply).chal_scheme


@pytest.mark.parametrize("ctype", [m.DM_WBXML, m.DM_XML, "application/vnd.syncml+xml",
                                   "application/vnd.syncml+wbxml"])
def test_unknown_device_gets_the_answer_of_a_wrong_password(ctype):
    """Before: an empty body (HTTP 400) for both. Now SyncML 401 + Chal, the same shape."""
    srv, account, _ = make()
    other = "IMSI:001010000000999"
    wrong = srv.handle(pkg1(account, 1, "guess", content_type=ctype).body, ctype, 0.0)
    unknown = srv.handle(pkg1(account, 1, "guess", device=other, content_type=ctype).body, ctype, 0.0)
    assert wrong.content_type == unknown.content_type == ctype
    assert shape(wrong) == shape(unknown) and shape(wrong)[1:] == (m.UNAUTHORIZED, AUTH_MD5)
    assert http_status(wrong) == http_status(unknown) == 200
    assert [a.outcome for a in unknown.audit] == ["unknown_device"]


def test_missing_credential_gets_407_with_a_chal_and_garbage_a_bare_error():
    srv, account, _ = make()
    step = pkg1(account, 1)
    msg = m.decode(step.body, step.content_type)
    msg.find("SyncHdr").remove(msg.find("SyncHdr/Cred"))
    reply = srv.handle(m.encode(msg, step.content_type), step.content_type, 0.0)
    assert hdr_status(reply).code == m.MISSING_CREDENTIALS and hdr_status(reply).next_nonce
    assert reply.audit[0].outcome == "missing_credential"
    garbage = srv.handle(b"\x03\x00not syncml", m.DM_WBXML, 0.0)
    assert garbage.body == b"" and http_status(garbage) == 400


def test_hmac_unknown_device_is_closed_like_a_wrong_mac():
    srv, account, _ = make()
    hacc = srv.provision("IMSI:001010000000002", client_name="h", client_password="k", server_password="s",
                         auth_scheme=AUTH_HMAC_SHA256)
    for device, key in (("IMSI:001010000000002", b"wrong"), ("IMSI:001010000000777", b"any")):
        step = DmClient(dataclasses.replace(hacc, client_password=key.decode()), device, {}, 3,
                        random.Random(3).randbytes).start(now=1_700_000_000.0)
        reply = srv.handle(step.body, step.content_type, 1_700_000_000.0,
                           headers={HEADER_NAME: build_header(key, step.body, 1_700_000_000.0)})
        assert (reply.body, http_status(reply)) == (b"", 401)
        assert [e.kind for e in reply.events] == [INTEGRITY_FAILED] and reply.events[0].detail == "wrong_mac"


def test_every_attempt_is_audited_without_secrets():
    srv, account, rng = make()
    seen = []
    for password in ("guess", None):
        step = pkg1(srv.accounts[DEV], 7, password)
        reply = srv.handle(step.body, step.content_type, 0.0)
        seen += reply.events + reply.audit
    client = DmClient(srv.accounts[DEV], DEV, DEVINFO, 8, rng.randbytes)
    log = []
    assert run(srv, client, log=log).ok
    audits = [e for e in seen if e.kind == "client_auth"]
    assert [e.outcome for e in audits] == ["bad_credential", "ok"]
    assert all(e.device == DEV and e.scheme == AUTH_MD5 and e.session_id for e in audits)
    secrets = [PASSWORD, SRV_PASSWORD, base64.b64encode(account.client_nonce).decode()]
    for step in log:
        secrets.append(m.read_header(m.decode(step.body, step.content_type)).cred.data)
    assert not any(secret in repr(event) for event in seen for secret in secrets)


# -- what the server stores; interop -------------------------------------------------------

def test_server_can_keep_only_the_digest_hash_of_the_client_credential():
    srv, account, rng = make()
    srv.accounts[DEV] = srv.accounts[DEV].hashed()
    assert srv.accounts[DEV].client_password == "" and srv.accounts[DEV].client_hash
    assert run(srv, DmClient(account, DEV, DEVINFO, 1, rng.randbytes)).ok
    step = pkg1(srv.accounts[DEV], 2, "guess")
    assert hdr_status(srv.handle(step.body, step.content_type, 0.0)).code == m.UNAUTHORIZED
    with pytest.raises(ProtocolError, match="no password to deliver"):
        bootstrap_document(srv.accounts[DEV], DEV)
    with pytest.raises(ProtocolError, match="needs the client password"):
        dataclasses.replace(account, auth_scheme=AUTH_BASIC).hashed()


def test_client_basic_with_server_md5():
    """A DM 1.2 client: auth-basic to the server, auth-md5 expected from it."""
    srv, account, _ = make(AUTH_BASIC)
    acc = srv.accounts[DEV] = dataclasses.replace(account, server_auth_scheme=AUTH_MD5)
    assert account_from_bootstrap(bootstrap_document(acc, DEV)).server_scheme == AUTH_MD5
    hdr = m.header("1", 1, "http://srv.test/dm", DEV, cred=make_credential(AUTH_BASIC, acc.client_name, PASSWORD, b""))
    body = m.encode(m.message(hdr, m.alert(m.ALERT_CLIENT_INITIATED)), m.DM_XML)
    reply = srv.handle(body, m.DM_XML, 0.0)
    got = m.read_header(m.decode(reply.body, reply.content_type)).cred
    assert hdr_status(reply).code == m.AUTH_ACCEPTED and got.scheme == AUTH_MD5
    assert check_credential(got, AUTH_MD5, acc.server_name, SRV_PASSWORD, acc.server_nonce)


@pytest.mark.parametrize("raw, fmt, octets", [("YWJj", "b64", b"abc"), ("YWJj", None, b"abc"),
                                              ("abc", "chr", b"abc"), ("not base64!", "b64", b"not base64!")])
def test_nonces_are_opaque_octets(raw, fmt, octets):
    assert m.nonce_octets(raw, fmt) == octets


def test_text_nonces_from_a_dm_1_2_client_are_accepted_and_used():
    """Before: a NextNonce that is not base64 made the request a bad_request (bare 400)."""
    srv, account, rng = make(content_type=m.DM_XML)
    srv.accounts[DEV] = account = account.with_nonces(client=b"client-stored-text")  # not 16 random bytes
    client = DmClient(account, DEV, DEVINFO, 1, rng.randbytes, content_type=m.DM_XML)
    reply = srv.handle(client.start().body, m.DM_XML, 0.0)
    assert hdr_status(reply).code == m.AUTH_ACCEPTED
    step = client.receive(reply.body, reply.content_type)
    assert isinstance(step, Send)
    chal = ('<Chal><Meta><Type xmlns="syncml:metinf">syncml:auth-md5</Type><Format xmlns="syncml:metinf">chr'
            '</Format><NextNonce xmlns="syncml:metinf">plain text nonce</NextNonce></Meta></Chal>')
    body = step.body.replace(b"<Cmd>SyncHdr</Cmd>", b"<Cmd>SyncHdr</Cmd>" + chal.encode(), 1)
    reply = srv.handle(body, m.DM_XML, 0.0)
    assert reply.body and srv.accounts[DEV].server_nonce == b"plain text nonce"
