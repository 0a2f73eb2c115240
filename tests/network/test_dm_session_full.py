"""Full DM sessions between the client and server cores: management scripts run on the client's
tree (OMA-TS-DM_Protocol-V1_2 §6.5, ACLs of OMA-TS-DM_TND §7.7.1 and OMA-TS-DM_Security §5.9),
Alert 1201/1200, media types, multi-message packages (§8.2, Alert 1222), HMAC integrity
(OMA-TS-DM_Security §5.6.1), nonces (§5.4.3, §5.5) and per-client server passwords (DM-SEC-S-001-M)."""
import base64
import dataclasses
import os
import random

import pytest

from dmsim.devices.dm_client import DmClient, Done, Send
from dmsim.devices.dm_tree import DmTree, find_account, install_devinfo
from dmsim.network.dm import http_binding, notification
from dmsim.network.dm import messages as m
from dmsim.network.dm.hmac_integrity import AUTH_HMAC_SHA256, HEADER_NAME, HmacVerifier
from dmsim.network.dm.server import DmServer, ManagementCommand as C
from dmsim.base.errors import ProtocolError

DEV = "IMSI:001010000000001"
DEVINFO = {"DevId": DEV, "Man": "dmsim", "Mod": "model-x", "DmV": "1.2", "Lang": "en-US"}
SECRET = "client-secret-Zq8x"
SRV_SECRET = "server-secret-Kp3w"
NOW = 1_700_000_000.0


def make(scheme="syncml:auth-md5", *, server_id="dmsim-server", nonce=None, **kw):
    rng = random.Random(7)
    srv = DmServer(server_id, f"http://{server_id}.test/dm", nonce or rng.randbytes, **kw)
    account = srv.provision(DEV, client_name="001010000000001", client_password=SECRET,
                            server_password=SRV_SECRET, auth_scheme=scheme)
    return srv, account, rng


def run(srv, client, *, now=NOW, tamper=None, limit=60):
    """Run a session; return (Done, server events, [(direction, Send|ServerReply)])."""
    step, events, wire = client.start(now=now), [], []
    for _ in range(limit):
        if isinstance(step, Done):
            return step, events, wire
        wire.append(("up", step))
        reply = srv.handle(step.body, step.content_type, now, headers=step.headers)
        events += reply.events
        wire.append(("down", reply))
        body, headers = reply.body, reply.headers
        if tamper:
            body, headers = tamper(body, headers)
        step = client.receive(body, reply.content_type, headers=headers, now=now)
    raise AssertionError("session did not end")


def completed(events):
    done = [e for e in events if e.kind == "session_completed"]
    assert len(done) == 1, [e.kind for e in events]
    return done[0].outcomes


def decoded(item):
    return m.decode(item.body, item.content_type)


# -- management script on the client's tree ------------------------------------------------

def test_script_runs_every_verb_on_the_tree_and_reports_outcomes():
    script = [C("Get", "./DevInfo/Man"),
              C("Add", "./Vendor/App/Level", "3", fmt="int"),
              C("Replace", "./Vendor/App/Level", "4", fmt="int"),
              C("Get", "./Vendor/App/Level"),
              C("Add", "./Vendor/Tmp", "x"),
              C("Delete", "./Vendor/Tmp"),
              C("Exec", "./Vendor/Reboot", "now"),
              C("Get", "./No/Such/Node")]
    srv, account, rng = make(script=script)
    calls = []
    client = DmClient(account, DEV, DEVINFO, 1, rng.randbytes)
    client.tree.create("./Vendor", "node", acl="Add=*&Get=*&Replace=*&Delete=*&Exec=*")
    client.tree.create("./Vendor/Reboot", "chr", "")
    client.tree.on_exec("./Vendor/Reboot", lambda uri, sid, data: calls.append((uri, sid, data)) or 200)
    done, events, _ = run(srv, client)
    assert done == Done(True)
    got = [(o.command.verb, o.code, o.data) for o in completed(events)]
    assert got == [("Get", 200, "dmsim"), ("Add", 200, None), ("Replace", 200, None), ("Get", 200, "4"),
                   ("Add", 200, None), ("Delete", 200, None), ("Exec", 200, None), ("Get", 404, None)]
    assert client.tree.find("./Vendor/App/Level").value == "4"
    assert client.tree.find("./Vendor/Tmp") is None
    assert calls == [("./Vendor/Reboot", "dmsim-server", "now")]


def test_plan_sets_one_device_script_until_a_session_completes():
    srv, account, rng = make(script=[])
    srv.plan(DEV, [C("Get", "./DevInfo/Lang")])
    done, events, _ = run(srv, DmClient(account, DEV, DEVINFO, 1, rng.randbytes))
    assert [(o.command.uri, o.data) for o in completed(events)] == [("./DevInfo/Lang", "en-US")]
    done, events, wire = run(srv, DmClient(srv.accounts[DEV], DEV, DEVINFO, 2, rng.randbytes))
    assert done == Done(True) and completed(events) == () and len(wire) == 2  # package 2 ends it


def test_management_command_refuses_unknown_verbs():
    with pytest.raises(ProtocolError):
        C("Copy", "./A")
    with pytest.raises(ProtocolError):
        C("Get", "")


def test_small_session_id_is_the_same_text_in_package_0_and_package_1():
    srv, account, rng = make()
    pkg0 = notification.parse_pkg0(srv.notification(DEV, 5))
    client = DmClient(account, DEV, DEVINFO, pkg0.session_id, rng.randbytes, initiator="server")
    assert decoded(client.start()).findtext("SyncHdr/SessionID") == pkg0.pkg1_session_id == "0005"
    assert notification.session_id_text(0xABC) == "0ABC"
    with pytest.raises(ProtocolError):
        notification.session_id_text(0x10000)
    assert run(srv, DmClient(account, DEV, DEVINFO, pkg0.session_id, rng.randbytes, initiator="server"))[0].ok


@pytest.mark.parametrize("initiator,code", [("client", "1201"), ("server", "1200")])
def test_alert_code_follows_the_initiator(initiator, code):
    srv, account, rng = make()
    client = DmClient(account, DEV, DEVINFO, 0x1234, rng.randbytes, initiator=initiator)
    pkg1 = decoded(client.start())
    assert [a.findtext("Data") for a in pkg1.iter("Alert")] == [code]
    assert pkg1.findtext("SyncHdr/SessionID") == "1234"
    done, events, _ = run(srv, DmClient(account, DEV, DEVINFO, 2, rng.randbytes, initiator=initiator))
    assert done.ok and events[0].kind == "client_authenticated" and events[0].detail == code
    with pytest.raises(ProtocolError):
        DmClient(account, DEV, DEVINFO, 1, rng.randbytes, initiator="nobody")


@pytest.mark.parametrize("ctype", ["application/vnd.syncml.dm+xml", "application/vnd.syncml.dm+wbxml",
                                   "application/vnd.syncml+xml", "application/vnd.syncml+wbxml"])
def test_server_answers_in_the_media_type_of_the_request(ctype):
    srv, account, rng = make()
    client = DmClient(account, DEV, DEVINFO, 1, rng.randbytes, content_type=ctype)
    done, events, wire = run(srv, client)
    assert done == Done(True) and completed(events)[0].data == "model-x"
    assert {w.content_type for d, w in wire if d == "down"} == {ctype}
    first = wire[1][1].body
    assert first.startswith(b"<?xml") == ctype.endswith("+xml")


# -- secrets and ACLs through real sessions ------------------------------------------------

def secret_uris(tree, server_id):
    acc = find_account(tree, server_id)
    return [n.uri for n in tree.walk(tree.find(acc)) if n.name == "AAuthSecret"]


def test_get_of_a_secret_through_a_session_is_refused_and_never_sent():
    srv, account, rng = make()
    client = DmClient(account, DEV, DEVINFO, 1, rng.randbytes)
    uris = secret_uris(client.tree, "dmsim-server")
    assert len(uris) == 2
    srv.script = tuple(C("Get", u) for u in uris) + (C("Get", f"{uris[0]}?prop=Size"),)
    done, events, wire = run(srv, client)
    assert done == Done(True)
    outcomes = completed(events)
    assert [o.code for o in outcomes] == [405, 405, 405] and all(o.data is None for o in outcomes)
    for direction, item in wire:
        if direction == "up":
            assert SECRET.encode() not in item.body and SRV_SECRET.encode() not in item.body
            assert b"Results" not in item.body and SECRET not in m.syncml_xml.to_xml(decoded(item)).decode()


def test_server_b_cannot_reach_server_a_account_in_a_session():
    srv_a, account_a, rng = make(server_id="server-a")
    srv_b = DmServer("server-b", "http://server-b.test/dm", rng.randbytes)
    account_b = srv_b.provision(DEV, client_name="dev-at-b", client_password="b-cpw", server_password="b-spw")
    tree = DmTree()
    install_devinfo(tree, DEVINFO)
    client_a = DmClient(account_a, DEV, {}, 1, rng.randbytes, tree=tree)
    acc_a = find_account(tree, "server-a")
    before = {n.uri: n.value for n in tree.walk(tree.find(acc_a))}
    srv_b.script = (C("Get", f"{acc_a}/AppAuth/1/AAuthName"), C("Get", f"{acc_a}/AppAuth/1/AAuthSecret"),
                    C("Replace", f"{acc_a}/AppAddr/1/Addr", "http://evil.test/dm"),
                    C("Delete", f"{acc_a}/AppAuth"), C("Add", f"{acc_a}/AppAuth/9/AAuthName", "x"),
                    C("Replace", f"{acc_a}?prop=ACL", "Get=*"), C("Get", f"{acc_a}/No/Node"),
                    C("Get", "./DevInfo/Mod"))
    client_b = DmClient(account_b, DEV, {}, 2, rng.randbytes, tree=tree)
    assert client_b.tree is client_a.tree and find_account(tree, "server-b") is not None
    done, events, wire = run(srv_b, client_b)
    assert done == Done(True)
    assert [o.code for o in completed(events)] == [425] * 7 + [200]
    assert {n.uri: n.value for n in tree.walk(tree.find(acc_a))} == before
    for leaked in (SECRET, SRV_SECRET, account_a.server_uri):
        assert not any(leaked.encode() in w.body for d, w in wire if d == "up")


# -- multi-message packages ----------------------------------------------------------------

def alerts(item):
    return [a.findtext("Data") for a in decoded(item).iterfind("SyncBody/Alert")]


def test_large_package_2_is_split_by_the_client_max_msg_size():
    script = [C("Add", f"./Vendor/N{i}", "v" * 300) for i in range(12)] + [C("Get", "./DevInfo/Mod")]
    srv, account, rng = make(script=script)
    client = DmClient(account, DEV, DEVINFO, 1, rng.randbytes, max_msg_size=1500)
    client.tree.create("./Vendor", "node", acl="Add=*&Get=*")
    done, events, wire = run(srv, client)
    assert done == Done(True)
    assert [o.code for o in completed(events)] == [200] * 13 and completed(events)[-1].data == "model-x"
    down = [w for d, w in wire if d == "down"]
    assert all(len(w.body) <= 1500 for w in down)
    finals = [m.is_final(decoded(w)) for w in down]
    assert finals.count(False) >= 3            # package 2 took several messages
    ups = [w for d, w in wire if d == "up"]
    # every non-final server message of package 2 is answered with Alert 1222 "next message"
    for reply, answer in zip(down, ups[1:]):
        assert (m.ALERT_NEXT_MESSAGE in alerts(answer)) == (not m.is_final(decoded(reply)))
    assert all(client.tree.find(f"./Vendor/N{i}").value == "v" * 300 for i in range(12))


def test_large_package_3_is_split_by_the_server_max_msg_size():
    srv, account, rng = make(max_msg_size=1200)
    client = DmClient(account, DEV, DEVINFO, 1, rng.randbytes)
    client.tree.create("./Vendor", "node", acl="Add=*&Get=*")
    for i in range(10):
        client.tree.create(f"./Vendor/Big{i}", "chr", chr(65 + i) * 400)
    srv.script = tuple(C("Get", f"./Vendor/Big{i}") for i in range(10))
    done, events, wire = run(srv, client)
    assert done == Done(True)
    assert [o.data for o in completed(events)] == [chr(65 + i) * 400 for i in range(10)]
    ups = [w for d, w in wire if d == "up"]
    assert all(len(w.body) <= 1200 for w in ups)
    assert [m.is_final(decoded(w)) for w in ups].count(False) >= 2
    downs = [w for d, w in wire if d == "down"]
    assert sum(m.ALERT_NEXT_MESSAGE in alerts(w) for w in downs) >= 2
    assert b"MaxMsgSize" in m.syncml_xml.to_xml(decoded(downs[0]))


def test_both_directions_split_at_once():
    script = [C("Replace", f"./Vendor/Big{i}", "z" * 350) for i in range(6)] + \
             [C("Get", f"./Vendor/Big{i}") for i in range(6)]
    srv, account, rng = make(script=script, max_msg_size=900)
    client = DmClient(account, DEV, DEVINFO, 1, rng.randbytes, max_msg_size=900)
    client.tree.create("./Vendor", "node", acl="Add=*&Get=*&Replace=*")
    for i in range(6):
        client.tree.create(f"./Vendor/Big{i}", "chr", "")
    done, events, wire = run(srv, client)
    assert done == Done(True)
    assert [o.code for o in completed(events)] == [200] * 12
    assert [o.data for o in completed(events)[6:]] == ["z" * 350] * 6
    assert all(len(w.body) <= 900 for _, w in wire)


def test_pack_puts_at_least_one_item_and_final_only_when_done():
    hdr = m.header("1", 1, "t", "s")
    big = [m.alert("1226") for _ in range(30)]
    body, count, final = m.pack(hdr, [], big, content_type=m.DM_XML, max_size=600, ask_next=False)
    assert 1 < count < 30 and not final and len(body) <= 600
    body, count, final = m.pack(hdr, [], big[:1], content_type=m.DM_XML, max_size=10, ask_next=False)
    assert count == 1 and final
    _, count, final = m.pack(hdr, [], big, content_type=m.DM_XML, max_size=None, ask_next=True)
    assert count == 30 and not final


# -- authentication: digest, nonces, per-client passwords ----------------------------------

def test_wrong_digest_is_challenged_then_refused():
    srv, account, rng = make()
    bad = DmClient(dataclasses.replace(account, client_password="wrong"), DEV, DEVINFO, 1, rng.randbytes)
    done, events, wire = run(srv, bad)
    assert done == Done(False, "client_auth_failed")
    codes = [decoded(w).findtext("SyncBody/Status/Data") for d, w in wire if d == "down"]
    assert codes == ["401", "401"] and [e.kind for e in events] == ["client_auth_failed"]


def test_stale_nonce_gets_exactly_one_new_challenge():
    srv, account, rng = make()
    client = DmClient(account.with_nonces(client=b"old-nonce-000000"), DEV, DEVINFO, 1, rng.randbytes)
    done, _, wire = run(srv, client)
    assert done == Done(True) and client.auth_retries == 1
    chal = decoded(wire[1][1]).find("SyncBody/Status/Chal/Meta/NextNonce").text
    assert base64.b64decode(chal) != b"old-nonce-000000"


def test_next_nonce_updates_aauthdata_in_the_tree():
    srv, account, rng = make()
    client = DmClient(account, DEV, DEVINFO, 1, rng.randbytes)
    acc = find_account(client.tree, "dmsim-server")
    assert client.tree.find(f"{acc}/AppAuth/1/AAuthData").value == account.client_nonce
    assert run(srv, client)[0] == Done(True)
    assert client.tree.find(f"{acc}/AppAuth/1/AAuthLevel").value == "CLCRED"
    assert client.tree.find(f"{acc}/AppAuth/1/AAuthData").value == srv.accounts[DEV].client_nonce
    assert srv.accounts[DEV].client_nonce != account.client_nonce


def test_every_client_gets_its_own_server_password():
    """DM-SEC-S-001-M: the server authenticates to each device with that device's password."""
    srv, _, rng = make()
    other = "IMSI:001010000000002"
    a = srv.provision(DEV, client_name="a", client_password="ca", server_password="server-pw-for-a")
    b = srv.provision(other, client_name="b", client_password="cb", server_password="server-pw-for-b")
    assert a.server_password != b.server_password
    done, _, wire = run(srv, DmClient(a, DEV, DEVINFO, 1, rng.randbytes))
    assert done.ok
    # a device that only knows B's server password refuses the server's credential for A
    confused = DmClient(dataclasses.replace(srv.accounts[DEV], server_password=b.server_password), DEV, DEVINFO, 2,
                        rng.randbytes)
    assert run(srv, confused)[0] == Done(False, "server_auth_failed")
    srv.connection_closed(DEV)
    assert run(srv, DmClient(b, other, {**DEVINFO, "DevId": other}, 3, rng.randbytes))[0].ok


def test_nonces_are_16_random_bytes_never_repeated_across_sessions():
    issued = []

    def source(n):
        value = os.urandom(n)
        issued.append(value)
        return value

    srv, account, rng = make(nonce=source)
    seen = []
    for session in range(1, 21):
        client = DmClient(srv.accounts[DEV], DEV, DEVINFO, session, rng.randbytes)
        done, _, wire = run(srv, client)
        assert done.ok
        for direction, item in wire:
            if direction == "down":
                for raw in decoded(item).iter("NextNonce"):
                    seen.append(base64.b64decode(raw.text))
    assert len(seen) == 40  # a NextNonce in every answer to an authenticated message (2 per session)
    assert all(len(n) == 16 for n in issued) and len(set(issued)) == len(issued)
    assert set(seen) <= set(issued) and len(set(seen)) == len(seen)


# -- HMAC integrity (syncml:auth-hmac-sha256) ----------------------------------------------

def hmac_pair(**kw):
    srv, account, rng = make(AUTH_HMAC_SHA256, **kw)
    return srv, account, rng, DmClient(account, DEV, DEVINFO, 1, rng.randbytes)


def test_hmac_session_has_no_cred_and_a_mac_on_every_message():
    srv, account, rng, client = hmac_pair()
    done, events, wire = run(srv, client)
    assert done == Done(True) and completed(events)[0].data == "model-x"
    for _, item in wire:
        assert decoded(item).find("SyncHdr/Cred") is None
        assert HEADER_NAME in item.headers and "mac=" in item.headers[HEADER_NAME]
    assert 'ServerId="dmsim-server"' in wire[0][1].headers[HEADER_NAME]
    acc = find_account(client.tree, "dmsim-server")
    assert client.tree.find(f"{acc}/AppAuth/1/AAuthType").value == "HMAC"


@pytest.mark.parametrize("attack,reason", [
    (lambda s: {}, "missing_header"),
    (lambda s: {HEADER_NAME: s.headers[HEADER_NAME].replace("mac=", "mac=AAAA")}, "wrong_mac"),
    (lambda s: {HEADER_NAME: "algorithm=HMAC-SHA256, mac=%%%"}, "bad_syntax"),
])
def test_server_closes_on_a_missing_or_wrong_mac(attack, reason):
    srv, _, _, client = hmac_pair()
    pkg1 = client.start(now=NOW)
    reply = srv.handle(pkg1.body, pkg1.content_type, NOW, headers=attack(pkg1))
    assert reply.body == b"" and reply.session_over and reply.headers == {}
    assert [(e.kind, e.detail) for e in reply.events] == [("client_integrity_failed", reason)]
    assert not srv.sessions  # a rejected message changes nothing
    good = srv.handle(pkg1.body, pkg1.content_type, NOW, headers=pkg1.headers)
    assert good.body and good.events[0].kind == "client_authenticated"


def test_server_refuses_a_tampered_body_and_a_stale_timestamp():
    srv, _, _, client = hmac_pair()
    pkg1 = client.start(now=NOW)
    tampered = pkg1.body.replace(b"model-x", b"model-y")
    assert tampered != pkg1.body
    reply = srv.handle(tampered, pkg1.content_type, NOW, headers=pkg1.headers)
    assert reply.events[0].detail == "wrong_mac" and not reply.body
    late = srv.handle(pkg1.body, pkg1.content_type, NOW + 3600, headers=pkg1.headers)
    assert late.events[0].detail == "outside_window" and not late.body


def test_server_refuses_a_replayed_message_but_answers_a_retransmission():
    srv, _, _, client = hmac_pair()
    pkg1 = client.start(now=NOW)
    first = srv.handle(pkg1.body, pkg1.content_type, NOW, headers=pkg1.headers)
    again = srv.handle(pkg1.body, pkg1.content_type, NOW + 1, headers=pkg1.headers)
    assert again.body == first.body and again.events == []  # the retransmission gets the cached reply
    pkg3 = client.receive(first.body, first.content_type, headers=first.headers, now=NOW)
    done = srv.handle(pkg3.body, pkg3.content_type, NOW, headers=pkg3.headers)
    assert done.session_over and done.events[-1].kind == "session_completed"
    replay = srv.handle(pkg1.body, pkg1.content_type, NOW + 2, headers=pkg1.headers)
    assert replay.body == b"" and replay.events[0].detail == "replay"
    assert not srv.sessions


@pytest.mark.parametrize("tamper", [
    lambda b, h: (b, {}),
    lambda b, h: (b.replace(b"DevInfo", b"DevInfX"), h),
    lambda b, h: (b, {HEADER_NAME: h[HEADER_NAME].replace("Timestamp=\"2023", "Timestamp=\"2013")}),
], ids=["missing", "tampered", "old-timestamp"])
def test_client_fails_on_a_bad_server_mac(tamper):
    srv, _, _, client = hmac_pair()
    done, _, _ = run(srv, client, tamper=tamper)
    assert done == Done(False, "server_hmac_failed")
    assert client.hmac_verdict is not None and not client.hmac_verdict.ok


def test_client_refuses_a_replayed_server_message():
    srv, account, rng, client = hmac_pair()
    verifier = HmacVerifier()
    client = DmClient(account, DEV, DEVINFO, 1, rng.randbytes, hmac_verifier=verifier)
    pkg1 = client.start(now=NOW)
    reply = srv.handle(pkg1.body, pkg1.content_type, NOW, headers=pkg1.headers)
    assert isinstance(client.receive(reply.body, reply.content_type, headers=reply.headers, now=NOW), Send)
    again = client.receive(reply.body, reply.content_type, headers=reply.headers, now=NOW)
    assert again == Done(False, "server_hmac_failed") and client.hmac_verdict.reason.value == "replay"


def test_wrong_client_key_under_hmac_is_refused():
    srv, account, rng, _ = hmac_pair()
    client = DmClient(dataclasses.replace(account, client_password="guess"), DEV, DEVINFO, 1, rng.randbytes)
    pkg1 = client.start(now=NOW)
    reply = srv.handle(pkg1.body, pkg1.content_type, NOW, headers=pkg1.headers)
    assert reply.events[0].detail == "wrong_mac" and reply.session_over


# -- the HTTP binding carries the header both ways ------------------------------------------

def test_http_binding_carries_extra_headers_both_ways():
    h = {HEADER_NAME: 'algorithm=HMAC-SHA256, Timestamp="2024-01-01T00:00:00Z", mac=AAAA'}
    req = http_binding.decode(http_binding.encode_request("dm.test", "/dm", b"x", m.DM_WBXML, headers=h))
    resp = http_binding.decode(http_binding.encode_response(200, b"y", m.DM_XML, headers=h))
    assert req.headers[HEADER_NAME] == resp.headers[HEADER_NAME] == h[HEADER_NAME]
    assert req.body == b"x" and resp.body == b"y" and resp.content_type == m.DM_XML
    plain = http_binding.encode_response(200, b"y", m.DM_XML)
    assert plain == http_binding.encode_response(200, b"y", m.DM_XML, headers={})


@pytest.mark.parametrize("headers", [{"x-a": "1\r\nInjected: yes"}, {"bad name": "1"}, {"Content-Length": "9"},
                                     {"x-a": "caf\u00e9"}])
def test_http_binding_refuses_headers_it_cannot_write(headers):
    with pytest.raises(ProtocolError):
        http_binding.encode_request("dm.test", "/dm", b"x", m.DM_WBXML, headers=headers)


def test_the_client_hmac_header_follows_the_1_3_grammar():
    """§5.6.1.1: algorithm, ServerId, Timestamp and mac; the client sends no username."""
    from dmsim.devices.dm_client import DmClient
    from dmsim.network.dm.hmac_integrity import AUTH_HMAC_SHA256, HEADER_NAME, parse_header
    import random
    from dmsim.network.dm.server import DmServer
    srv = DmServer("dmsim-server", "http://dm.test/dm", random.Random(3).randbytes)
    account = srv.provision("IMSI:001010000000009", client_name="c", client_password="cpw", server_password="spw",
                            auth_scheme=AUTH_HMAC_SHA256)
    step = DmClient(account, "IMSI:001010000000009", {"DevId": "IMSI:001010000000009"}, 1,
                    random.Random(4).randbytes).start(1_767_225_600.0)
    value = step.headers[HEADER_NAME]
    header = parse_header(value)
    assert header.username is None and "username" not in value.lower()
    assert header.server_id == "dmsim-server" and header.timestamp and header.mac
