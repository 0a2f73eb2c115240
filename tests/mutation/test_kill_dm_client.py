"""Issue 14: tests that kill surviving mutants of devices/dm_client.py (DmClient.receive, _send,
_store_nonces; see .ci/mutation). Each test states the rule of OMA-TS-DM_Security-V1_3 (or of the
SyncML DM representation / protocol it builds on) that a surviving mutant broke.

The server side is written by hand here (XML messages with a correct or wrong server Cred), so a
test can look at exactly what the client answers; the message-security tests run against the
real DmServer core."""
import dataclasses
import random

from dmsim.base.errors import MessageSecurityError
from dmsim.devices.dm_client import DmClient, Done, Send
from dmsim.devices.dm_tree import DmTree, account_from_tree, find_account, install_account
from dmsim.network.dm import message_security as ms
from dmsim.network.dm import messages as m
from dmsim.network.dm.account import DmAccount
from dmsim.network.dm.auth import AUTH_MD5, make_credential
from dmsim.network.dm.hmac_integrity import HEADER_NAME, HMAC_MD5, find_header, parse_header
from dmsim.network.dm.server import DmServer
from dmsim.network.dm.tree import E, text

DEV = "IMSI:001010000000001"
SERVER_ID, SERVER_URI = "dmsim-server", "http://dm.test/dm"
DEVINFO = {"DevId": DEV, "Man": "dmsim", "Mod": "model-x", "DmV": "1.2", "Lang": "en-US"}
ISSUED = bytes(range(0x40, 0x50))   # the nonce the client issues when it challenges the server
NOW = 1_700_000_000.0


def account(**kw) -> DmAccount:
    args = dict(server_id=SERVER_ID, server_uri=SERVER_URI, client_name="001010000000001", client_password="cpw",
                server_name=SERVER_ID, server_password="spw", client_nonce=b"client-nonce-0001",
                server_nonce=b"server-nonce-0001", auth_scheme=AUTH_MD5)
    args.update(kw)
    return DmAccount(**args)


def client(acc=None, **kw) -> DmClient:
    kw.setdefault("content_type", m.DM_XML)
    return DmClient(acc or account(), DEV, dict(DEVINFO), 5, lambda n: ISSUED[:n], **kw)


def server_msg(cl: DmClient, msg_id: int, *commands, code=m.AUTH_ACCEPTED, next_nonce=None, good_cred=True,
               final=True, max_msg_size=None, status=True) -> bytes:
    """Return a server message (XML) to ``cl``: the Status of the client's SyncHdr (``code``, with a
    Chal carrying ``next_nonce`` if given) and ``commands``; its Cred is right unless ``good_cred``
    is False (computed with a wrong password)."""
    a = cl.account
    cred = make_credential(a.server_scheme, a.server_name, a.server_password if good_cred else "impostor",
                           a.server_nonce)
    hdr = m.header(cl.session_id, msg_id, DEV, SERVER_URI, cred=cred, max_msg_size=max_msg_size)
    lead = []
    if status:
        chal = m.chal(a.auth_scheme, next_nonce) if next_nonce is not None else None
        lead = [m.status(1, str(cl.msg_id), "0", "SyncHdr", code, challenge=chal)]
    return m.encode(m.message(hdr, *lead, *commands, final=final), m.DM_XML)


def get(cmd_id: int, uri: str):
    return E("Get", E("CmdID", cmd_id), E("Item", E("Target", E("LocURI", uri))))


def read(step: Send):
    """Return (SyncHdr, statuses, other commands, has Final) of a client message."""
    msg = m.decode(step.body, step.content_type)
    body = msg.find("SyncBody")
    return (msg.find("SyncHdr"), body.findall("Status"), [c for c in body if c.tag not in ("Status", "Final")],
            body.find("Final") is not None)


def fields(st):
    return {k: text(st, k) for k in ("MsgRef", "CmdRef", "Cmd", "Data")}


def asks_next(cmds) -> bool:
    return any(m.is_next_message(c) for c in cmds)


# -- what every client message carries (_send) ----------------------------------------------------

def test_client_header_names_server_device_and_userid_and_numbers_messages_from_one():
    """§5.4.1: the userid goes in SyncHdr Source/LocName (with the Cred); SyncML RepPro: Target is
    the server URI, MsgID starts at 1 and grows by one per message of the session."""
    cl = client()
    hdr, _, _, _ = read(cl.start())
    assert text(hdr, "Target/LocURI") == SERVER_URI and text(hdr, "Source/LocURI") == DEV
    assert text(hdr, "Source/LocName") == "001010000000001"
    assert text(hdr, "MsgID") == "1"
    hdr, _, _, _ = read(cl.receive(server_msg(cl, 1, get(3, "./DevInfo/Man")), m.DM_XML))
    assert text(hdr, "MsgID") == "2"
    assert text(hdr, "Source/LocName") == "001010000000001"


# -- the client's Status for the server's SyncHdr and commands ------------------------------------

def test_status_of_server_header_is_212_first_then_200_and_references_the_message():
    """SyncML RepPro / §5.4: the client answers each server message with a Status for its SyncHdr
    (CmdRef 0, MsgRef = the server's MsgID): 212 (authentication accepted) the first time the
    server's Cred is accepted, 200 afterwards."""
    cl = client()
    cl.start()
    _, sts, _, _ = read(cl.receive(server_msg(cl, 1, get(3, "./DevInfo/Man"), final=False), m.DM_XML))
    assert fields(sts[0]) == {"MsgRef": "1", "CmdRef": "0", "Cmd": "SyncHdr", "Data": "212"}
    _, sts, _, _ = read(cl.receive(server_msg(cl, 2, get(4, "./DevInfo/Mod"), code=m.OK), m.DM_XML))
    assert fields(sts[0]) == {"MsgRef": "2", "CmdRef": "0", "Cmd": "SyncHdr", "Data": "200"}
    _, sts, _, _ = read(cl.receive(server_msg(cl, 3, get(5, "./DevInfo/Lang"), code=m.OK), m.DM_XML))
    assert fields(sts[0])["Data"] == "200"


def test_alert_1222_from_the_server_gets_a_status_naming_that_alert():
    """SyncML DM Protocol §8.2 (multi-message packages): the Alert 1222 a server sends is answered
    by a Status 200 whose CmdRef is that Alert's CmdID and MsgRef the server's MsgID."""
    cl = client()
    cl.start()
    alert = E("Alert", E("CmdID", 7), E("Data", m.ALERT_NEXT_MESSAGE))
    step = cl.receive(server_msg(cl, 4, alert, final=False), m.DM_XML)
    _, sts, _, _ = read(step)
    assert [fields(s) for s in sts[1:]] == [{"MsgRef": "4", "CmdRef": "7", "Cmd": "Alert", "Data": "200"}]


# -- the server's credential is wrong: the client challenges it (§5.4.3) ---------------------------

def test_bad_server_cred_gets_one_challenge_and_nothing_else():
    """§5.4.3: a failed server credential gets one more challenge with a new nonce: a Status 401
    for the server's SyncHdr (MsgRef, CmdRef 0) with a Chal of the server's scheme and NextNonce.
    The message carries nothing else (no answer to the unauthenticated message, no Alert 1222)
    and ends the client's package (Final)."""
    cl = client()
    cl.start()
    step = cl.receive(server_msg(cl, 1, get(3, "./DevInfo/Man"), good_cred=False), m.DM_XML)
    _, sts, cmds, final = read(step)
    assert len(sts) == 1 and fields(sts[0]) == {"MsgRef": "1", "CmdRef": "0", "Cmd": "SyncHdr", "Data": "401"}
    verdict = m.header_status(m.decode(step.body, m.DM_XML))
    assert verdict.chal_scheme == AUTH_MD5 and verdict.next_nonce == ISSUED
    assert cmds == [] and final
    # the same nonce is the one the server must now use, in the account and in SRVCRED AAuthData (§5.5)
    assert cl.account.server_nonce == ISSUED
    assert account_from_tree(cl.tree, SERVER_ID).server_nonce == ISSUED
    # the server answers with a Cred under the new nonce: accepted, and the Get runs now
    _, sts, cmds, _ = read(cl.receive(server_msg(cl, 2, get(3, "./DevInfo/Man")), m.DM_XML))
    assert fields(sts[0])["Data"] == "212" and [c.tag for c in cmds] == ["Results"]
    # a second bad Cred ends the session (§5.4.3: no further authentication)
    cl2 = client()
    cl2.start()
    cl2.receive(server_msg(cl2, 1, good_cred=False), m.DM_XML)
    assert cl2.receive(server_msg(cl2, 2, good_cred=False), m.DM_XML) == Done(False, "server_auth_failed")


def big_devinfo_client(**kw):
    acc = account()
    cl = DmClient(acc, DEV, {**DEVINFO, **{f"X{i}": chr(65 + i) * 300 for i in range(6)}}, 5,
                  lambda n: ISSUED[:n], content_type=m.DM_XML, **kw)
    cl.start()
    gets = [get(10 + i, f"./DevInfo/X{i}") for i in range(6)]
    return cl, gets


def results_of(cmds):
    return [text(c, "Item/Source/LocURI") for c in cmds if c.tag == "Results"]


def test_queued_results_are_not_sent_to_a_server_that_failed_authentication():
    """§5.4: both sides MUST be authenticated, each message when the transport does not do it:
    the results of a package split by the server's MaxMsgSize are held back while the server's
    credential is refused (the challenge carries only the 401), and all follow once it is right."""
    cl, gets = big_devinfo_client()
    _, _, cmds, final = read(cl.receive(server_msg(cl, 1, *gets, max_msg_size=1500), m.DM_XML))
    sent = results_of(cmds)
    assert not final and 0 < len(sent) < 6
    alert = E("Alert", E("CmdID", 2), E("Data", m.ALERT_NEXT_MESSAGE))
    _, sts, cmds, _ = read(cl.receive(server_msg(cl, 2, alert, code=m.OK, final=False, good_cred=False), m.DM_XML))
    assert results_of(cmds) == [] and [text(s, "Data") for s in sts] == ["401"]
    for msg_id in range(3, 10):
        step = cl.receive(server_msg(cl, msg_id, alert, code=m.OK, final=False), m.DM_XML)
        _, _, cmds, final = read(step)
        sent += results_of(cmds)
        if final:
            break
    assert sent == [f"./DevInfo/X{i}" for i in range(6)]


def test_refused_commands_are_resent_once_with_the_challenge_nonce():
    """§5.4.3: a 401/407 with a Chal is answered once with the challenge's NextNonce, sending the
    refused commands again (the package's Final kept, no Alert 1222, nothing queued lost); a
    second rejection, or a 401 without a nonce to retry with, ends the session."""
    cl = client()
    first = read(cl.start())
    step = cl.receive(server_msg(cl, 1, code=m.UNAUTHORIZED, next_nonce=b"fresh-nonce-0002"), m.DM_XML)
    hdr, sts, cmds, final = read(step)
    assert sts == [] and [c.tag for c in cmds] == [c.tag for c in first[2]] == ["Alert", "Replace"]
    assert final and not asks_next(cmds)
    assert text(hdr, "Cred/Data") == make_credential(AUTH_MD5, "001010000000001", "cpw", b"fresh-nonce-0002").data
    again = cl.receive(server_msg(cl, 2, code=m.UNAUTHORIZED, next_nonce=b"fresh-nonce-0003"), m.DM_XML)
    assert again == Done(False, "client_auth_failed")
    for code in (m.UNAUTHORIZED, m.MISSING_CREDENTIALS):
        cl = client()
        cl.start()
        assert cl.receive(server_msg(cl, 1, code=code), m.DM_XML) == Done(False, "client_auth_failed")


def answers(sts, cmds):
    """Return what a client message answers: (Status, CmdRef) of the server's commands and
    (Results, CmdRef), in order (the SyncHdr Status left out)."""
    return ([("Status", text(s, "CmdRef")) for s in sts if text(s, "Cmd") != "SyncHdr"]
            + [("Results", text(c, "CmdRef")) for c in cmds if c.tag == "Results"])


def test_retry_after_401_keeps_what_was_still_queued():
    """§5.4.3 retry in the middle of a split package: the refused message's commands go again and
    the ones not yet sent follow, none lost (DM Protocol §8.2)."""
    cl, gets = big_devinfo_client()
    _, sts, cmds, _ = read(cl.receive(server_msg(cl, 1, *gets, max_msg_size=1500), m.DM_XML))
    first = answers(sts, cmds)
    step = cl.receive(server_msg(cl, 2, code=m.UNAUTHORIZED, next_nonce=b"fresh-nonce-0002", final=False),
                      m.DM_XML)
    _, sts, cmds, final = read(step)
    sent = answers(sts, cmds)
    assert set(first) <= set(sent)       # what the server refused goes again, first
    alert = E("Alert", E("CmdID", 2), E("Data", m.ALERT_NEXT_MESSAGE))
    for msg_id in range(3, 10):
        if final:
            break
        _, sts, cmds, final = read(cl.receive(server_msg(cl, msg_id, alert, code=m.OK, final=False), m.DM_XML))
        sent += [a for a in answers(sts, cmds) if a != ("Status", "2")]
    assert sorted(sent) == sorted([("Status", str(10 + i)) for i in range(6)] + [("Results", str(10 + i))
                                                                                  for i in range(6)])


# -- the session ends, with the outcome recorded (dm_device.py keeps the reason before ':') --------

def test_refusing_or_unreadable_server_ends_the_session_unsuccessfully():
    """§5.4 / RepPro: a server refusing the client's header (a status other than 200/212/401/407)
    or a message without the Status of the client's SyncHdr ends the session, not ok."""
    cl = client()
    cl.start()
    assert cl.receive(server_msg(cl, 1, code=500), m.DM_XML) == Done(False, "server_status_500")
    cl = client()
    cl.start()
    done = cl.receive(server_msg(cl, 1, get(3, "./DevInfo/Man"), status=False), m.DM_XML)
    assert isinstance(done, Done) and done.ok is False
    assert done.reason.split(":")[0] == "bad_server_message"
    cl = client()
    cl.start()
    done = cl.receive(b"<SyncML><SyncHdr/></SyncML", m.DM_XML)
    assert isinstance(done, Done) and done.ok is False and done.reason.split(":")[0] == "bad_server_message"


# -- the client's nonces in the tree: AAuthData of CLCRED / SRVCRED (§5.5) -------------------------

def test_next_nonce_lands_in_the_clcred_aauthdata_read_by_the_next_session():
    """§5.5: the client sets AAuthData (CLCRED) to the NextNonce under auth-md5, and SRVCRED to the
    NextNonce it gives the server in return; the next session, built from the tree, uses both."""
    cl = client()
    cl.start()
    step = cl.receive(server_msg(cl, 1, get(3, "./DevInfo/Man"), next_nonce=b"next-nonce-0042"), m.DM_XML)
    stored = account_from_tree(cl.tree, SERVER_ID)
    assert stored.client_nonce == b"next-nonce-0042"
    issued = m.header_status(m.decode(step.body, step.content_type)).next_nonce
    assert stored.server_nonce == issued == cl.account.server_nonce != b"server-nonce-0001"


def _tree_with_a_transport_appauth_first(acc: DmAccount) -> DmTree:
    """A tree whose account lists first an HTTP-level AppAuth without AAuthData (AAuthData is
    ZeroOrOne in the DMAcc MO), then CLCRED and SRVCRED."""
    tree = DmTree()
    base = install_account(tree, acc)
    app_auth = f"{base}/AppAuth"
    saved = {name: [(leaf.name, leaf.format, leaf.value) for leaf in node.children.values()]
             for name, node in tree.find(app_auth).children.items()}
    for name in saved:
        tree.remove(tree.find(f"{app_auth}/{name}"))
    tree.create(f"{app_auth}/0/AAuthLevel", "chr", "HTTP")
    tree.create(f"{app_auth}/0/AAuthType", "chr", "BASIC")
    for name, leaves in saved.items():
        for leaf, fmt, value in leaves:
            tree.create(f"{app_auth}/{name}/{leaf}", fmt, value)
    return tree


def test_nonces_reach_their_aauthdata_whatever_other_appauth_entries_the_account_has():
    """§5.5 with the DMAcc MO: an AppAuth entry of another level, without AAuthData, neither stops
    the client nor keeps the CLCRED / SRVCRED AAuthData from taking the new nonces."""
    acc = account()
    tree = _tree_with_a_transport_appauth_first(acc)
    cl = client(acc, tree=tree)
    cl.start()
    cl.receive(server_msg(cl, 1, good_cred=False), m.DM_XML)           # the client issues ISSUED
    cl.receive(server_msg(cl, 2, get(3, "./DevInfo/Man"), next_nonce=b"next-nonce-0042"), m.DM_XML)
    stored = account_from_tree(tree, SERVER_ID)
    assert (stored.client_nonce, stored.server_nonce) == (b"next-nonce-0042", ISSUED)
    assert tree.find(f"{find_account(tree, SERVER_ID)}/AppAuth/0/AAuthData") is None


def test_account_without_appauth_in_the_tree_still_runs():
    """DMAcc MO: a tree whose account has no AppAuth subtree (deleted by its server) leaves the
    client working from its account; only the mirroring of nonces into AAuthData is skipped."""
    acc = account()
    tree = DmTree()
    base = install_account(tree, acc)
    tree.remove(tree.find(f"{base}/AppAuth"))
    cl = client(acc, tree=tree)
    cl.start()
    step = cl.receive(server_msg(cl, 1, get(3, "./DevInfo/Man"), next_nonce=b"next-nonce-0042"), m.DM_XML)
    assert isinstance(step, Send) and cl.account.client_nonce == b"next-nonce-0042"


# -- message security (seed 002 §5.3-§5.5) with the real server core -------------------------------

def secured(name, acc_kw=None, ctype=None):
    rng = random.Random(3)
    srv = DmServer(SERVER_ID, SERVER_URI, rng.randbytes, message_security=ms.make(name))
    acc = srv.provision(DEV, client_name="001010000000001", client_password="client-secret",
                        server_password="server-secret")
    acc = dataclasses.replace(acc, **(acc_kw or {}))
    cl = DmClient(acc, DEV, dict(DEVINFO), 5, random.Random(4).randbytes, ctype or m.DM_XML,
                  message_security=ms.make(name))
    return srv, cl


def run(srv, cl, down=None):
    step, wire = cl.start(NOW), []
    for i in range(1, 20):
        if isinstance(step, Done):
            return step, wire
        wire.append(step)
        reply = srv.handle(step.body, step.content_type, NOW + i, step.headers)
        step = cl.receive(down(reply.body) if down else reply.body, reply.content_type, reply.headers, NOW + i)
    raise AssertionError("session did not end")


def test_hmac_md5_protects_every_client_message_and_checks_every_server_message():
    """Seed 002 §5.3/§5.4 (x-syncml-hmac of OMA-TS-DM_Security §5.6.1.1 with algorithm MD5 and
    the ServerId): a session completes, every client message carries the header naming the
    account's server, and it verifies at the time it was sent."""
    srv, cl = secured("hmac-md5", ctype=m.DM_WBXML)
    done, wire = run(srv, cl)
    assert done == Done(True) and len(wire) >= 2
    for step in wire:
        header = parse_header(find_header(step.headers))
        assert header.algorithm.upper() == HMAC_MD5 and header.server_id == SERVER_ID


def test_hmac_md5_challenge_and_retry_messages_are_protected_too():
    """Seed 002 §5.3: every message is protected, the client's challenge of a stale server nonce
    (§5.4.3) and its retry after a 401 included: the server accepts them and the session ends ok."""
    for stale in ({"server_nonce": b"client-forgot"}, {"client_nonce": b"stale-nonce"}):
        srv, cl = secured("hmac-md5", stale, ctype=m.DM_WBXML)
        done, wire = run(srv, cl)
        assert done == Done(True), stale
        assert all(HEADER_NAME in step.headers for step in wire)


def test_xmldsig_and_xmlenc_sessions_complete():
    """Seed 002 §5.4 (XML-Signature) and §5.5 (XML-Encryption): the client removes the server's
    protection before reading the message and protects its own."""
    for name in ("xmldsig", "xmlenc"):
        srv, cl = secured(name)
        done, wire = run(srv, cl)
        assert done == Done(True), name
        if name == "xmlenc":
            assert all(b"EncryptedData" in step.body for step in wire[1:])


def test_tampered_server_message_is_refused_with_its_error():
    """Seed 002 §5.4 / OMA-TS-DM_Security §5.6.1.2: a server message whose protection does not
    verify MUST be rejected: the session ends, not ok, and the error is kept."""
    for name, ctype in (("xmldsig", m.DM_XML), ("hmac-md5", m.DM_WBXML)):
        srv, cl = secured(name, ctype=ctype)
        done, _ = run(srv, cl, down=lambda body: body[:-8] + bytes(8) if body else body)
        assert done == Done(False, "server_message_security_failed"), name
        assert isinstance(cl.security_error, MessageSecurityError)



def test_the_server_nonce_the_client_issues_names_the_server_scheme():
    """§5.5: the Chal that gives the server its NextNonce names the scheme the server's next Cred
    must use (SRVCRED's AAuthType), in base64 (the server reads the NextNonce; a peer that checks
    the type needs it)."""
    cl = client()
    cl.start()
    step = cl.receive(server_msg(cl, 1, get(3, "./DevInfo/Man")), m.DM_XML)
    chal = m.decode(step.body, step.content_type).find("SyncBody/Status/Chal/Meta")
    assert text(chal, "Type") == AUTH_MD5 and text(chal, "Format") == "b64"
