"""Issue 14: tests that kill surviving mutants of the DM server's authentication step
(network/dm/server.py: handle, _handle_hmac, _step, _refuse, _cached, _close,
client_credential_ok). Each test checks behaviour that OMA-TS-DM_Security-V1_3 (§5.4, §5.4.3,
§5.5, §5.6.1), the SyncML representation rules every DM message follows (SyncHdr addressing,
Status MsgRef/CmdRef) or the server's documented defences (module docstring of server.py: clean
close, lockout, replay cache, audit events, cached retransmission) require.

Requests are built by hand where a real client would not send them (a second rejection of the
server's credential, a re-signed retransmission), with a seeded nonce source: no sockets, no sleeps.
"""
import base64
import dataclasses
import random

import pytest

from dmsim.devices.dm_client import DmClient, Done, Send
from dmsim.network.dm import message_security as ms
from dmsim.network.dm import messages as m
from dmsim.network.dm.auth import AUTH_BASIC, AUTH_MD5, AUTH_SHA256, credential_hash, make_credential
from dmsim.network.dm.hmac_integrity import AUTH_HMAC_SHA256, HEADER_NAME, HmacVerifier, build_header, parse_header
from dmsim.network.dm.lockout import LockoutPolicy
from dmsim.network.dm.server import (AUTH_EVENT, INTEGRITY_FAILED, DmServer, ManagementCommand, ServerReply,
                                     client_credential_ok, http_status)

DEV = "IMSI:001010000000001"
DEVINFO = {"DevId": DEV, "Man": "dmsim", "Mod": "model-x", "DmV": "1.2", "Lang": "en-US"}
PW, SRV_PW = "client-pw-Qm4t", "server-pw-Lx7e"
SRV_ID, SRV_URI = "srv", "http://srv.test/dm"
NOW = 1_700_000_000.0
XML = m.DM_XML


def make(scheme=AUTH_MD5, **kw):
    srv = DmServer(SRV_ID, SRV_URI, random.Random(11).randbytes, **kw)
    srv.provision(DEV, client_name="001010000000001", client_password=PW, server_password=SRV_PW,
                  auth_scheme=scheme)
    return srv


def numbered(*items):
    for number, item in enumerate(items, start=1):
        cmd_id = item.find("CmdID")
        if cmd_id is not None:
            cmd_id.text = str(number)
    return items


def request(srv, sid, msg_id, *items, password=PW, cred=True, final=True, max_msg_size=None, nonce=None):
    """A client message (SyncML XML) of session ``sid``; its Cred (not in HMAC mode) is computed
    under ``password`` with ``nonce``, by default the client nonce the server holds now (the one
    its last NextNonce gave the client)."""
    acc = srv.accounts[DEV]
    credential = None
    if cred and acc.auth_scheme != AUTH_HMAC_SHA256:
        credential = make_credential(acc.auth_scheme, acc.client_name, password,
                                     acc.client_nonce if nonce is None else nonce)
    hdr = m.header(sid, msg_id, SRV_URI, DEV, cred=credential, loc_name=acc.client_name, max_msg_size=max_msg_size)
    return m.encode(m.message(hdr, *numbered(*items), final=final), XML)


def pkg1_items():
    return [m.alert(m.ALERT_CLIENT_INITIATED)]


def mac(body, now, key=PW):
    return {HEADER_NAME: build_header(key.encode(), body, now, server_id=SRV_ID)}


def well_formed(reply):
    """The ServerReply contract its drivers rely on (ServerReply docstring): bytes, a media type
    text, lists of events, a bool, a dict of transport headers."""
    assert isinstance(reply, ServerReply)
    assert isinstance(reply.body, bytes)
    assert isinstance(reply.content_type, str) and reply.content_type.startswith("application/vnd.syncml")
    assert isinstance(reply.events, list) and isinstance(reply.audit, list)
    assert isinstance(reply.session_over, bool)
    assert isinstance(reply.headers, dict)
    return reply


def decoded(reply):
    return m.decode(reply.body, reply.content_type)


def check_addressing(reply, sid, msg_id):
    """SyncML SyncHdr of a server message: the request's SessionID, the server's MsgID, the
    device as Target and the server as Source (SyncML RepPro SyncHdr; OMA-TS-DM_Security §5.4.1)."""
    hdr = m.read_header(decoded(reply))
    assert (hdr.session_id, hdr.msg_id, hdr.target, hdr.source) == (sid, str(msg_id), DEV, SRV_URI)
    return hdr


def sync_hdr_status(reply, msg_ref):
    """The Status on the request's SyncHdr: the first Status of the SyncBody, with a CmdID that is
    present, numeric and not "0", MsgRef the request's MsgID and CmdRef "0" (SyncML RepPro Status)."""
    st = decoded(reply).find("SyncBody/Status")
    assert st is not None and st.findtext("Cmd") == "SyncHdr"
    cmd_id = (st.findtext("CmdID") or "").strip()
    assert cmd_id.isdigit() and cmd_id != "0"
    assert st.findtext("MsgRef") == str(msg_ref) and st.findtext("CmdRef") == "0"
    return st


def check_audit(reply, outcome, scheme, sid):
    """One client_auth audit event per attempt, with the device, scheme, outcome and SessionID
    (server.py module doc, "Audit"; ServerEvent docstring)."""
    assert [(e.kind, e.device, e.scheme, e.outcome, e.session_id) for e in reply.audit] == \
        [(AUTH_EVENT, DEV, scheme, outcome, sid)]


# -- refusals of a Cred: §5.4 401/407, §5.4.3 one more challenge with a new nonce -------------

def test_refusal_is_a_syncml_answer_to_the_request_with_a_16_octet_challenge():
    """OMA-TS-DM_Security §5.4 (401 for a wrong Cred), §5.4.3 (one more challenge with a new
    nonce; nonces of 16 random octets), SyncML RepPro (SyncHdr of the answer, MsgRef/CmdRef of
    its Status; the server's first message of a session has MsgID 1); the server advertises its
    MaxMsgSize in every SyncHdr (DmServer docstring)."""
    srv = make(max_msg_size=4000)
    reply = well_formed(srv.handle(request(srv, "0007", 1, *pkg1_items(), password="guess"), XML, NOW))
    hdr = check_addressing(reply, "0007", 1)
    assert hdr.max_msg_size == 4000
    st = sync_hdr_status(reply, 1)
    assert st.findtext("Data") == str(m.UNAUTHORIZED)
    assert st.findtext("Chal/Meta/Type") == AUTH_MD5
    assert len(m.header_status(decoded(reply)).next_nonce) == 16
    assert reply.session_over is False and reply.events == []
    check_audit(reply, "bad_credential", AUTH_MD5, "0007")
    # the retry (MsgID 2) fails again: 401 without Chal, the session ends (§5.4.3)
    final = well_formed(srv.handle(request(srv, "0007", 2, *pkg1_items(), password="guess2"), XML, NOW))
    st = sync_hdr_status(final, 2)
    assert st.findtext("Data") == str(m.UNAUTHORIZED) and st.find("Chal") is None
    assert final.session_over is True
    assert [(e.kind, e.device, e.detail, e.scheme, e.outcome) for e in final.events] == \
        [("client_auth_failed", DEV, "bad_credential", AUTH_MD5, "bad_credential")]
    check_audit(final, "bad_credential", AUTH_MD5, "0007")


def test_missing_credential_refusal_names_its_outcome():
    """§5.4: a request without Cred gets 407 with a Chal; its second failure ends the session
    with a client_auth_failed event naming the device, scheme and outcome (ServerEvent doc)."""
    srv = make(AUTH_SHA256)
    first = well_formed(srv.handle(request(srv, "11", 1, *pkg1_items(), cred=False), XML, NOW))
    assert sync_hdr_status(first, 1).findtext("Data") == str(m.MISSING_CREDENTIALS)
    assert first.session_over is False
    second = well_formed(srv.handle(request(srv, "11", 2, *pkg1_items(), cred=False), XML, NOW))
    assert second.session_over is True
    assert [(e.kind, e.device, e.detail, e.scheme, e.outcome) for e in second.events] == \
        [("client_auth_failed", DEV, "missing_credential", AUTH_SHA256, "missing_credential")]


def test_a_refusal_inside_a_session_continues_its_message_ids():
    """SyncML RepPro: the server's MsgIDs of a session increase from 1 and are unique; a Cred
    that fails in package 3 is refused (§5.4) in the server's next message of that session, and
    the challenge lets the client retry once (§5.4.3)."""
    srv = make()
    first = srv.handle(request(srv, "21", 1, *pkg1_items()), XML, NOW)
    check_addressing(first, "21", 1)
    refused = well_formed(srv.handle(request(srv, "21", 2, password="guess"), XML, NOW))
    check_addressing(refused, "21", 2)
    assert sync_hdr_status(refused, 2).findtext("Data") == str(m.UNAUTHORIZED)
    assert refused.session_over is False and refused.events == []
    nonce = m.header_status(decoded(refused)).next_nonce
    retry = well_formed(srv.handle(request(srv, "21", 3, nonce=nonce), XML, NOW))
    assert sync_hdr_status(retry, 3).findtext("Data") in (str(m.OK), str(m.AUTH_ACCEPTED))


def test_a_locked_device_is_refused_without_a_challenge_and_its_session_ends():
    """Lockout (server.py module doc): while locked every attempt gets 401 without Chal, ends
    the session, and is audited as ``locked``."""
    srv = make(lockout=LockoutPolicy(threshold=2, base=50.0))
    for sid in ("31", "32"):
        srv.handle(request(srv, sid, 1, *pkg1_items(), password="guess"), XML, NOW)
    locked = well_formed(srv.handle(request(srv, "33", 1, *pkg1_items()), XML, NOW + 1))
    st = sync_hdr_status(locked, 1)
    assert st.findtext("Data") == str(m.UNAUTHORIZED) and st.find("Chal") is None
    assert locked.session_over is True
    assert [(e.kind, e.device, e.outcome) for e in locked.events] == [("client_auth_failed", DEV, "locked")]
    check_audit(locked, "locked", AUTH_MD5, "33")


# -- answers to authenticated messages: §5.5 NextNonce, events -------------------------------

def test_authenticated_answers_address_the_request_and_carry_the_schemes_chal():
    """§5.4/§5.5: every answer to an authenticated message carries a Chal of the account's scheme
    with a fresh NextNonce; the Status on the SyncHdr references the request (SyncML RepPro);
    client_authenticated and session_completed name the device and the SessionID (ServerEvent)."""
    srv = make(AUTH_SHA256)
    pkg2 = well_formed(srv.handle(request(srv, "41", 1, *pkg1_items()), XML, NOW))
    check_addressing(pkg2, "41", 1)
    st = sync_hdr_status(pkg2, 1)
    assert st.findtext("Data") == str(m.AUTH_ACCEPTED)
    assert st.findtext("Chal/Meta/Type") == AUTH_SHA256
    assert [(e.kind, e.device, e.detail, e.scheme, e.outcome, e.session_id) for e in pkg2.events] == \
        [("client_authenticated", DEV, m.ALERT_CLIENT_INITIATED, AUTH_SHA256, "ok", "41")]
    check_audit(pkg2, "ok", AUTH_SHA256, "41")
    status = m.status(0, "1", "0", "SyncHdr", m.AUTH_ACCEPTED)
    pkg4 = well_formed(srv.handle(request(srv, "41", 2, status), XML, NOW))
    check_addressing(pkg4, "41", 2)
    st = sync_hdr_status(pkg4, 2)
    assert st.findtext("Chal/Meta/Type") == AUTH_SHA256
    assert pkg4.session_over is True
    assert [(e.kind, e.device, e.session_id) for e in pkg4.events] == [("session_completed", DEV, "41")]


def test_hmac_answers_reference_the_request():
    """§5.6.1 mode: no Cred, no Chal, but the SyncHdr Status still references the request
    (SyncML RepPro Status MsgRef/CmdRef) and the reply carries x-syncml-hmac."""
    srv = make(AUTH_HMAC_SHA256)
    body = request(srv, "42", 1, *pkg1_items())
    pkg2 = well_formed(srv.handle(body, XML, NOW, headers=mac(body, NOW)))
    st = sync_hdr_status(pkg2, 1)
    assert st.findtext("Data") == str(m.AUTH_ACCEPTED) and st.find("Chal") is None
    body = request(srv, "42", 2, m.status(0, "1", "0", "SyncHdr", m.AUTH_ACCEPTED))
    pkg4 = well_formed(srv.handle(body, XML, NOW, headers=mac(body, NOW)))
    assert sync_hdr_status(pkg4, 2).findtext("Data") in (str(m.OK), str(m.AUTH_ACCEPTED))
    assert HEADER_NAME in pkg4.headers and pkg4.session_over is True


# -- the client rejects the server's credential: answered once (§5.4.3) ----------------------

def rejection(nonce=None):
    return m.status(0, "1", "0", "SyncHdr", m.UNAUTHORIZED,
                    challenge=m.chal(AUTH_MD5, nonce) if nonce is not None else None)


def test_second_rejection_of_the_server_credential_ends_the_session():
    """§5.4.3: after a failed authentication one more challenge with a new nonce is answered;
    a second failure ends it. The server answers the client's first 401 with its Cred under the
    client's NextNonce, and closes on the second (empty body, session over, forgotten)."""
    srv = make()
    srv.handle(request(srv, "51", 1, *pkg1_items()), XML, NOW)
    nonce_a, nonce_b = b"A" * 16, b"B" * 16
    again = well_formed(srv.handle(request(srv, "51", 2, rejection(nonce_a)), XML, NOW))
    assert again.body and again.session_over is False
    assert [(e.kind, e.device, e.scheme) for e in again.events] == [("server_auth_rejected", DEV, AUTH_MD5)]
    assert srv.accounts[DEV].server_nonce == nonce_a
    cred = m.read_header(decoded(again)).cred
    assert cred == make_credential(AUTH_MD5, SRV_ID, SRV_PW, nonce_a)
    end = well_formed(srv.handle(request(srv, "51", 3, rejection(nonce_b)), XML, NOW))
    assert (end.body, end.session_over) == (b"", True)
    assert [(e.kind, e.device, e.scheme) for e in end.events] == [("server_auth_rejected", DEV, AUTH_MD5)]
    assert DEV not in srv.sessions


def test_rejection_without_a_new_nonce_ends_the_session_at_once():
    """§5.4.3: the retry needs the new nonce of the challenge; a 401 without one cannot be
    answered, so the session ends at the first rejection."""
    srv = make()
    srv.handle(request(srv, "52", 1, *pkg1_items()), XML, NOW)
    end = well_formed(srv.handle(request(srv, "52", 2, rejection()), XML, NOW))
    assert (end.body, end.session_over) == (b"", True)
    assert [e.kind for e in end.events] == ["server_auth_rejected"]
    assert DEV not in srv.sessions


def test_commands_of_a_rejected_message_are_all_sent_again():
    """§5.4.3 with OMA-TS-DM_Protocol §8.2: the client did not run the commands of the message
    whose Cred it rejected; the server sends them again, ahead of the rest of a multi-message
    package 2, so every command of the script reaches the client and gets its Status."""
    script = [ManagementCommand("Add", f"./Vendor/N{i}", "v" * 120) for i in range(8)]
    srv = make(script=script)
    client = DmClient(srv.accounts[DEV], DEV, DEVINFO, 61, random.Random(5).randbytes, content_type=XML,
                      max_msg_size=1200)
    client.tree.create("./Vendor", "node", acl="Add=*&Get=*")
    step, events, tampered = client.start(now=NOW), [], 0
    for _ in range(40):
        if isinstance(step, Done):
            break
        reply = srv.handle(step.body, step.content_type, NOW, headers=step.headers)
        events += reply.events
        body = reply.body
        if not tampered and b"<Cred>" in body and not m.is_final(decoded(reply)):
            cred = m.read_header(decoded(reply)).cred.data
            body, tampered = body.replace(cred.encode(), base64.b64encode(b"x" * 16)), 1
        step = client.receive(body, reply.content_type, headers=reply.headers, now=NOW)
    assert step == Done(True), step
    assert tampered
    assert "server_auth_rejected" in [e.kind for e in events]
    outcomes = [e for e in events if e.kind == "session_completed"][0].outcomes
    assert [(o.command.uri, o.code) for o in outcomes] == [(c.uri, 200) for c in script]


# -- HMAC mode (§5.6.1.2): clean close, lockout, audit, cached retransmission -----------------

def hmac_pkg1(srv, sid, now, key=PW):
    body = request(srv, sid, 1, *pkg1_items())
    return body, mac(body, now, key)


def check_integrity_close(reply, outcome, sid):
    """A refused x-syncml-hmac: a clean close (empty body, session over, HTTP 401) with one
    client_integrity_failed event and one client_auth audit event (server.py module doc)."""
    well_formed(reply)
    assert (reply.body, reply.session_over, http_status(reply)) == (b"", True, 401)
    assert [(e.kind, e.device, e.detail, e.scheme, e.outcome) for e in reply.events] == \
        [(INTEGRITY_FAILED, DEV, outcome, AUTH_HMAC_SHA256, outcome)]
    check_audit(reply, outcome, AUTH_HMAC_SHA256, sid)


def test_wrong_macs_lock_an_hmac_device_and_the_lock_is_audited():
    """§5.6.1.2: a message whose MAC does not verify MUST be rejected; a wrong MAC counts towards
    the device's lockout, and a locked device is closed (``locked``) even with a right MAC, for
    the whole lock however short (server.py module doc, lockout.py)."""
    srv = make(AUTH_HMAC_SHA256, lockout=LockoutPolicy(threshold=3, base=1.0))
    for i in range(3):
        body, headers = hmac_pkg1(srv, f"7{i}", NOW, key="guess")
        check_integrity_close(srv.handle(body, XML, NOW, headers=headers), "wrong_mac", f"7{i}")
    body, headers = hmac_pkg1(srv, "75", NOW + 0.5)
    check_integrity_close(srv.handle(body, XML, NOW + 0.5, headers=headers), "locked", "75")
    assert not srv.sessions
    body, headers = hmac_pkg1(srv, "76", NOW + 2)  # the lock (1 s) is over
    ok = well_formed(srv.handle(body, XML, NOW + 2, headers=headers))
    assert ok.body and [e.kind for e in ok.events] == ["client_authenticated"]
    check_audit(ok, "ok", AUTH_HMAC_SHA256, "76")


def test_replays_and_stale_timestamps_do_not_lock_an_hmac_device():
    """server.py module doc: a wrong MAC counts towards the lockout, a replay or a stale Timestamp
    does not (they are no guess of the key)."""
    srv = make(AUTH_HMAC_SHA256, lockout=LockoutPolicy(threshold=2, base=100.0))
    body, headers = hmac_pkg1(srv, "81", NOW)
    srv.handle(body, XML, NOW, headers=headers)
    srv.connection_closed(DEV)  # the session is gone: the repeat is a replay, not a retransmission
    for i in range(3):
        check_integrity_close(srv.handle(body, XML, NOW + 1 + i, headers=headers), "replay", "81")
        stale, stale_headers = hmac_pkg1(srv, "82", NOW - 3600)
        check_integrity_close(srv.handle(stale, XML, NOW, headers=stale_headers), "outside_window", "82")
    body, headers = hmac_pkg1(srv, "83", NOW + 10)
    assert srv.handle(body, XML, NOW + 10, headers=headers).body


def test_a_success_clears_the_failures_of_an_hmac_device():
    """lockout.py / server.py module doc: a success resets the device's count, so failures
    before and after it do not add up to a lock."""
    srv = make(AUTH_HMAC_SHA256, lockout=LockoutPolicy(threshold=3, base=100.0))
    for i in range(2):
        body, headers = hmac_pkg1(srv, f"9{i}", NOW, key="guess")
        srv.handle(body, XML, NOW, headers=headers)
    body, headers = hmac_pkg1(srv, "92", NOW)
    assert srv.handle(body, XML, NOW, headers=headers).body
    for i in range(2):
        body, headers = hmac_pkg1(srv, f"9{i + 3}", NOW, key="guess")
        srv.handle(body, XML, NOW, headers=headers)
    body, headers = hmac_pkg1(srv, "96", NOW)
    assert srv.handle(body, XML, NOW, headers=headers).body


def test_an_hmac_retransmission_signed_again_gets_the_cached_reply_with_a_fresh_mac():
    """server.py module doc: a request repeating the last MsgID gets the cached reply (a client
    retransmission after a lost reply), with the same body, media type and session state, and,
    as every reply in HMAC mode, an x-syncml-hmac under the server's key (§5.6.1.1) that the
    client accepts, with no new events."""
    srv = make(AUTH_HMAC_SHA256)
    client = DmClient(srv.accounts[DEV], DEV, DEVINFO, 0x77, random.Random(5).randbytes, content_type=XML)
    pkg1 = client.start(now=NOW)
    first = srv.handle(pkg1.body, pkg1.content_type, NOW, headers=pkg1.headers)
    # the reply is lost; the driver sends the same bytes again, signed a second later
    again = well_formed(srv.handle(pkg1.body, pkg1.content_type, NOW + 1, headers=mac(pkg1.body, NOW + 1)))
    assert (again.body, again.content_type, again.session_over) == (first.body, first.content_type,
                                                                     first.session_over)
    assert again.events == [] and again.audit == []
    header = parse_header(again.headers[HEADER_NAME])
    assert header.timestamp == "2023-11-14T22:13:21Z" and header.server_id == SRV_ID
    assert HmacVerifier().verify(again.headers[HEADER_NAME], again.body, SRV_PW.encode(), NOW + 1).ok
    assert isinstance(client.receive(again.body, again.content_type, headers=again.headers, now=NOW + 1), Send)


def test_a_replayed_retransmission_gets_the_cached_reply_with_a_fresh_mac():
    """server.py module doc: in HMAC mode the exact bytes of the last request, whose MAC the
    replay cache refuses, still get the cached reply, MAC'd afresh at ``now`` (§5.6.1.1)."""
    srv = make(AUTH_HMAC_SHA256)
    body, headers = hmac_pkg1(srv, "A1", NOW)
    first = srv.handle(body, XML, NOW, headers=headers)
    again = well_formed(srv.handle(body, XML, NOW + 5, headers=headers))
    assert (again.body, again.content_type, again.session_over) == (first.body, first.content_type, False)
    assert parse_header(again.headers[HEADER_NAME]).timestamp == "2023-11-14T22:13:25Z"
    assert HmacVerifier().verify(again.headers[HEADER_NAME], again.body, SRV_PW.encode(), NOW + 5).ok


def test_a_retransmission_in_digest_mode_gets_the_cached_reply():
    """server.py module doc: a request repeating the last MsgID gets the cached reply, in the
    media type of the request, with the same session state and no MAC header outside HMAC mode."""
    srv = make()
    body = request(srv, "A2", 1, *pkg1_items())
    first = srv.handle(body, XML, NOW)
    again = well_formed(srv.handle(body, XML, NOW + 1))
    assert (again.body, again.content_type, again.session_over, again.headers) == \
        (first.body, XML, first.session_over, {})


def test_a_client_nonce_for_the_server_in_hmac_mode_keeps_the_account():
    """§5.5: the client may send a NextNonce (AAuthData of SRVCRED) in any answer; the server
    stores it as the server nonce and keeps the account, so the session goes on."""
    srv = make(AUTH_HMAC_SHA256)
    body, headers = hmac_pkg1(srv, "B1", NOW)
    srv.handle(body, XML, NOW, headers=headers)
    status = m.status(0, "1", "0", "SyncHdr", m.AUTH_ACCEPTED, challenge=m.chal(AUTH_HMAC_SHA256, b"N" * 16))
    body = request(srv, "B1", 2, status, final=False)
    reply = well_formed(srv.handle(body, XML, NOW, headers=mac(body, NOW)))
    assert reply.body and srv.accounts[DEV].server_nonce == b"N" * 16
    body = request(srv, "B1", 3, m.status(0, "2", "0", "SyncHdr", m.OK))
    last = well_formed(srv.handle(body, XML, NOW, headers=mac(body, NOW)))
    assert last.body and [e.kind for e in last.events] == ["session_completed"]


def test_a_rejection_with_a_new_nonce_in_hmac_mode_keeps_the_account():
    """§5.4.3/§5.5: a 401 on the server's SyncHdr with a NextNonce is answered once; the server
    stores the nonce and keeps the account, so the device's next message still verifies."""
    srv = make(AUTH_HMAC_SHA256)
    body, headers = hmac_pkg1(srv, "B2", NOW)
    srv.handle(body, XML, NOW, headers=headers)
    body = request(srv, "B2", 2, rejection(b"R" * 16))
    reply = well_formed(srv.handle(body, XML, NOW, headers=mac(body, NOW)))
    assert reply.body and srv.accounts[DEV].server_nonce == b"R" * 16
    body = request(srv, "B2", 3, m.status(0, "2", "0", "SyncHdr", m.OK))
    last = well_formed(srv.handle(body, XML, NOW, headers=mac(body, NOW)))
    assert last.body and last.events[-1].kind == "session_completed"


# -- bad requests: a clean close that names no scheme -------------------------------------------

def test_bytes_that_are_not_syncml_are_closed_without_a_scheme():
    """server.py module doc: bytes that are not a SyncML message keep the bare bad_request close
    (HTTP 400); no authentication scheme was checked, so the event names none (ServerEvent:
    ``scheme`` is the scheme checked)."""
    srv = make()
    reply = well_formed(srv.handle(b"<not-syncml/>", XML, NOW))
    assert (reply.body, reply.session_over, http_status(reply)) == (b"", True, 400)
    assert [(e.kind, e.scheme) for e in reply.events] == [("bad_request", "")] and reply.audit == []


# -- message security (seed 002 §5.3-§5.5) is applied by handle() -----------------------------

@pytest.mark.parametrize("per_device", [False, True])
def test_hmac_md5_message_security_protects_every_reply_and_refuses_an_unprotected_request(per_device):
    """Seed 002 §5.3/§5.4 (server.py module doc, "Message security"): with hmac-md5 for the server
    or for the device, every reply carries x-syncml-hmac algorithm=MD5 and a request without
    one is refused with the clean close of a wrong MAC."""
    srv = DmServer(SRV_ID, SRV_URI, random.Random(3).randbytes,
                   message_security=None if per_device else ms.make("hmac-md5"))
    account = srv.provision(DEV, client_name="c", client_password=PW, server_password=SRV_PW,
                            message_security=ms.make("hmac-md5") if per_device else None)
    client = DmClient(account, DEV, DEVINFO, 5, random.Random(4).randbytes, message_security=ms.make("hmac-md5"))
    step = client.start(NOW)
    bare = well_formed(srv.handle(step.body, step.content_type, NOW))
    assert (bare.body, http_status(bare)) == (b"", 401)
    assert [(e.kind, e.device, e.detail) for e in bare.events] == [(INTEGRITY_FAILED, DEV, "missing_header")]
    for i in range(10):
        if isinstance(step, Done):
            break
        reply = well_formed(srv.handle(step.body, step.content_type, NOW + i, step.headers))
        assert reply.headers[HEADER_NAME].startswith("algorithm=MD5,")
        step = client.receive(reply.body, reply.content_type, reply.headers, NOW + i)
    assert step == Done(True)


# -- client_credential_ok (§5.4.2) ----------------------------------------------------------------

def test_the_password_decides_when_the_account_keeps_it():
    """client_credential_ok docstring / §5.4.2: the stored B64(H(name:password)) is used only when
    the account keeps nothing else; an account that keeps the password checks against it (a
    hash left from an older password does not count, and auth-basic needs the password)."""
    srv = make()
    acc = dataclasses.replace(srv.accounts[DEV], client_hash=credential_hash("001010000000001", "old-pw"))
    nonce = acc.client_nonce
    assert client_credential_ok(acc, make_credential(AUTH_MD5, acc.client_name, PW, nonce), nonce)
    assert not client_credential_ok(acc, make_credential(AUTH_MD5, acc.client_name, "old-pw", nonce), nonce)
    basic = dataclasses.replace(acc, auth_scheme=AUTH_BASIC)
    assert client_credential_ok(basic, make_credential(AUTH_BASIC, acc.client_name, PW, nonce), nonce)


def test_only_the_same_bytes_get_the_cached_reply_in_digest_mode():
    """server.py module doc (and "nothing unauthenticated changes state or gets an answer"): a
    request that repeats the last MsgID with other bytes and no credential is not a
    retransmission: it is refused (407, with its audit event), not answered from the cache."""
    srv = make()
    body = request(srv, "A3", 1, *pkg1_items())
    first = srv.handle(body, XML, NOW)
    forged = request(srv, "A3", 1, *pkg1_items(), cred=False)
    assert forged != body
    reply = srv.handle(forged, XML, NOW + 1)
    assert reply.body != first.body and reply.audit and reply.audit[0].outcome == "missing_credential"
    assert m.header_status(m.decode(reply.body, XML)).code == m.MISSING_CREDENTIALS


def test_only_the_same_bytes_get_the_cached_reply_in_hmac_mode():
    """server.py module doc: in HMAC mode too, a validly MAC'd request that reuses the last MsgID
    with other bytes is run as a message, not answered from the cache."""
    srv = make(AUTH_HMAC_SHA256)
    body, headers = hmac_pkg1(srv, "A4", NOW)
    first = srv.handle(body, XML, NOW, headers=headers)
    other = body.replace(b"<Final />", b"<Final/>")  # the same message, other bytes
    assert other != body
    reply = srv.handle(other, XML, NOW + 1, headers=mac(other, NOW + 1))
    assert reply.audit and reply.audit[0].outcome == "ok"  # authenticated and run, not the cache's answer


def _last_exchange(srv, scheme_headers):
    """Run a whole session with a real client; return (the client's last Send, the server's reply
    to it, the client's next step) — the reply is the one that ended the session."""
    client = DmClient(srv.accounts[DEV], DEV, DEVINFO, 0x31, random.Random(8).randbytes, content_type=XML)
    step, reply = client.start(now=NOW), None
    for _ in range(10):  # bound: a session here is 2-3 exchanges
        last = step
        reply = srv.handle(step.body, step.content_type, NOW, headers=step.headers)
        step = client.receive(reply.body, reply.content_type, headers=reply.headers, now=NOW)
        if isinstance(step, Done):
            return last, reply, step
    raise AssertionError("the session did not end")


@pytest.mark.parametrize("scheme", [AUTH_MD5, AUTH_HMAC_SHA256])
def test_the_last_message_of_a_finished_session_resent_gets_its_reply_again(scheme):
    """server.py module doc: a client whose final reply was lost sends its last message again
    (the same bytes and headers); the server, whose session is over, answers with the same reply
    (in HMAC mode with a fresh MAC) and no new events, instead of refusing it as a replay (HMAC)
    or for a moved nonce (digest)."""
    srv = make(scheme)
    last, reply, done = _last_exchange(srv, {})
    assert done.ok and reply.session_over and DEV not in srv.sessions
    again = well_formed(srv.handle(last.body, last.content_type, NOW + 2, headers=last.headers))
    assert (again.body, again.session_over, again.events, http_status(again)) == (reply.body, True, [], 200)
    if scheme == AUTH_HMAC_SHA256:
        assert HmacVerifier().verify(again.headers[HEADER_NAME], again.body, SRV_PW.encode(), NOW + 2).ok
    # other bytes in that finished session's name are no retransmission: they are authenticated
    other = last.body.replace(b"<Final />", b"<Final/>")
    assert other != last.body
    refused = srv.handle(other, last.content_type, NOW + 3, headers=mac(other, NOW + 3, key="guess"))
    assert refused.body != reply.body


def test_finished_sessions_are_kept_within_max_sessions():
    """Every resource is bounded: the finished sessions kept for resends are the most recent
    ``max_sessions``."""
    srv = make(max_sessions=2)
    for i in range(5):
        srv.accounts[f"IMSI:00101000000009{i}"] = dataclasses.replace(srv.accounts[DEV])
        srv._keep_finished((f"IMSI:00101000000009{i}", "1"), b"r", ServerReply(b"x", XML, [], True))
    assert list(srv.finished) == [("IMSI:001010000000093", "1"), ("IMSI:001010000000094", "1")]
