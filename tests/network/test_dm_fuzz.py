"""Robustness of the DM session cores (issue 7): whatever bytes, media type and headers arrive,
``DmServer.handle`` returns a ServerReply (a SyncML status, or an empty body with session_over:
a clean close) and ``DmClient.receive`` returns a Send or a Done, never an exception.

Inputs: random bytes; valid messages truncated or with flipped bytes (XML and WBXML); messages
with a valid credential and random commands (so that the command handlers are reached); random
media types and x-syncml-hmac headers."""
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dmsim.devices.dm_client import DmClient, Done, Send
from dmsim.network.dm import messages as m
from dmsim.network.dm.auth import make_credential
from dmsim.network.dm.hmac_integrity import AUTH_HMAC_SHA256, HEADER_NAME
from dmsim.network.dm.server import DmServer, ServerReply
from dmsim.network.dm.tree import E

DEV = "IMSI:001010000000001"
DEVINFO = {"DevId": DEV, "Man": "dmsim", "Mod": "model-x", "DmV": "1.2", "Lang": "en-US"}
NOW = 1_700_000_000.0
TYPES = [m.DM_WBXML, m.DM_XML, "application/vnd.syncml+wbxml", "application/vnd.syncml+xml"]
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

content_types = st.sampled_from(TYPES + ["", "text/plain", "application/vnd.syncml.dm+wbxml; charset=utf-8",
                                         "APPLICATION/VND.SYNCML.DM+XML", "\x00;;"])
header_maps = st.one_of(st.just({}), st.dictionaries(
    st.sampled_from([HEADER_NAME, "X-SyncML-HMAC", "content-type", "x-other"]),
    st.one_of(st.text(max_size=80), st.just('algorithm=HMAC-SHA256, Timestamp="2023-11-14T22:13:20Z", mac=AAAA'),
              st.just("mac=" + "A" * 43 + "=")), max_size=3))


def pair(scheme="syncml:auth-md5"):
    rng = random.Random(1)
    srv = DmServer("dmsim-server", "http://dm.test/dm", rng.randbytes)
    account = srv.provision(DEV, client_name="dev", client_password="cpw", server_password="spw", auth_scheme=scheme)
    return srv, account, DmClient(account, DEV, DEVINFO, 1, rng.randbytes), rng


def mutate(data: bytes, how: str, where: int, byte: int) -> bytes:
    if not data:
        return data
    i = where % len(data)
    if how == "truncate":
        return data[:i]
    if how == "flip":
        return data[:i] + bytes([data[i] ^ (byte or 1)]) + data[i + 1:]
    if how == "insert":
        return data[:i] + bytes([byte]) + data[i:]
    return data[:i] + data[i + 1:]


mutations = st.tuples(st.sampled_from(["truncate", "flip", "insert", "delete"]), st.integers(0, 1 << 16),
                      st.integers(0, 255))

# Random command elements with SyncML tag names, texts and nesting.
TAGS = ["Get", "Replace", "Add", "Delete", "Exec", "Sequence", "Atomic", "Alert", "Results", "Status", "Item",
        "Target", "Source", "LocURI", "Data", "Meta", "Format", "Type", "CmdID", "MsgRef", "CmdRef", "NoResp",
        "Cmd", "Chal", "NextNonce", "Final", "MaxMsgSize"]
LEAF_TEXT = st.one_of(st.sampled_from(["./DevInfo/Mod", "./DMAcc", "./DMAcc/dmsim_server/AppAuth/1/AAuthSecret",
                                       ".", "./a/../b", "./x?prop=ACL", "./DevInfo?list=Struct", "node", "b64",
                                       "bin", "int", "bool", "1222", "1201", "200", "401", "AAAA", ""]),
                      st.text(max_size=20))
elements = st.recursive(
    st.builds(lambda tag, t: E(tag, t), st.sampled_from(TAGS), LEAF_TEXT),
    lambda children: st.builds(lambda tag, kids: E(tag, *kids), st.sampled_from(TAGS),
                               st.lists(children, max_size=4)),
    max_leaves=12)


def is_clean(reply):
    assert isinstance(reply, ServerReply)
    assert isinstance(reply.body, bytes) and isinstance(reply.headers, dict)
    return reply


@FUZZ
@given(st.binary(max_size=300), content_types, header_maps)
def test_server_survives_random_bytes(body, ctype, headers):
    srv, _, _, _ = pair()
    reply = is_clean(srv.handle(body, ctype, NOW, headers=headers))
    assert reply.body == b"" and reply.session_over


@FUZZ
@given(st.sampled_from(TYPES), mutations, header_maps, st.sampled_from(["syncml:auth-md5", AUTH_HMAC_SHA256]))
def test_server_survives_mangled_messages(ctype, mutation, headers, scheme):
    srv, account, client, _ = pair(scheme)
    client.content_type = ctype
    pkg1 = client.start(now=NOW)
    body = mutate(pkg1.body, *mutation)
    is_clean(srv.handle(body, ctype, NOW, headers=headers or pkg1.headers))


@FUZZ
@given(st.lists(elements, max_size=5), st.sampled_from(TYPES[:2]), st.booleans())
def test_server_survives_authenticated_random_commands(commands, ctype, final):
    srv, account, client, _ = pair()
    cred = make_credential(account.auth_scheme, account.client_name, account.client_password, account.client_nonce)
    for msg_id in (1, 2):
        hdr = m.header("1", msg_id, srv.server_uri, DEV, cred=cred, max_msg_size=400)
        body = m.encode(m.message(hdr, *commands, final=final), ctype)
        is_clean(srv.handle(body, ctype, NOW))
        account = srv.accounts[DEV]
        cred = make_credential(account.auth_scheme, account.client_name, account.client_password,
                               account.client_nonce)


def is_step(step):
    assert isinstance(step, (Send, Done))
    return step


@FUZZ
@given(st.binary(max_size=300), content_types, header_maps, st.sampled_from(["syncml:auth-md5", AUTH_HMAC_SHA256]))
def test_client_survives_random_bytes(body, ctype, headers, scheme):
    _, _, client, _ = pair(scheme)
    client.start(now=NOW)
    step = is_step(client.receive(body, ctype, headers=headers, now=NOW))
    assert isinstance(step, Done) and not step.ok


@FUZZ
@given(st.sampled_from(TYPES), mutations, st.sampled_from(["syncml:auth-md5", AUTH_HMAC_SHA256]))
def test_client_survives_mangled_server_messages(ctype, mutation, scheme):
    srv, _, client, _ = pair(scheme)
    client.content_type = ctype
    pkg1 = client.start(now=NOW)
    reply = srv.handle(pkg1.body, pkg1.content_type, NOW, headers=pkg1.headers)
    is_step(client.receive(mutate(reply.body, *mutation), reply.content_type, headers=reply.headers, now=NOW))


@FUZZ
@given(st.lists(elements, max_size=5), st.sampled_from(TYPES[:2]), st.booleans())
def test_client_survives_authenticated_random_commands(commands, ctype, final):
    _, account, client, _ = pair()
    client.start(now=NOW)
    status = m.status(1, "1", "0", "SyncHdr", m.AUTH_ACCEPTED)
    for msg_id in (1, 2):
        cred = make_credential(account.auth_scheme, account.server_name, account.server_password,
                               client.account.server_nonce)
        hdr = m.header("1", msg_id, DEV, "http://dm.test/dm", cred=cred, max_msg_size=300)
        body = m.encode(m.message(hdr, status, *commands, final=final), ctype)
        step = is_step(client.receive(body, ctype, now=NOW))
        if isinstance(step, Done):
            break
