"""Issue 17: the SyncML message builders and readers of the DM cores give exactly what the
generic element helpers give.

``messages.py`` builds SyncHdr, Status, Chal, Cred, Alert and the message with ``SubElement``
instead of ``tree.E``, and reads the SyncHdr fields and the SyncHdr Status with direct child
lookups instead of ``tree.text`` paths; the DM client builds its DevInfo Replace and the command
handler its Results the same way. The references below are the ``E``/``text`` forms they
replace, verbatim. Each fast path is compared with its reference:

* on every call made while every shipped scenario runs (two devices each), by wrapping the
  functions for the run;
* on the messages of full client/server sessions under every auth scheme, both media types,
  credential challenges and multi-message packages;
* on hand-built edge cases (repeated or missing elements, empty texts, errors).
"""
from __future__ import annotations

import base64
import random
from pathlib import Path
from xml.etree.ElementTree import Element

import pytest

from dmsim.base.errors import ProtocolError
from dmsim.devices import dm_client, dm_commands
from dmsim.devices.dm_client import DmClient, Done
from dmsim.devices.dm_tree import DEVINFO
from dmsim.network.dm import messages as m
from dmsim.network.dm.auth import AUTH_BASIC, AUTH_MD5, AUTH_SHA256, Credential
from dmsim.network.dm.hmac_integrity import AUTH_HMAC_SHA256, HmacVerifier
from dmsim.network.dm.server import DmServer, ManagementCommand as C
from dmsim.network.dm.tree import E, need_text, text
from test_codec_fast_paths import outcome, same_tree  # the strict comparisons of the codec fast paths

SCENARIOS = sorted((Path(__file__).resolve().parents[2] / "scenarios").glob("*.yaml"))
DEV = "IMSI:001010000000001"
DEVINFO_VALUES = {"DevId": DEV, "Man": "dmsim", "Mod": "model-x", "DmV": "1.2", "Lang": "en-US"}
NOW = 1_700_000_000.0


# --------------------------------------------------------------------------- references

def ref_header(session_id, msg_id, target, source, *, cred=None, loc_name=None, max_msg_size=None):
    return E("SyncHdr", E("VerDTD", "1.2"), E("VerProto", "DM/1.2"), E("SessionID", session_id),
             E("MsgID", msg_id), E("Target", E("LocURI", target)),
             E("Source", E("LocURI", source), E("LocName", loc_name) if loc_name else None),
             ref_cred_element(cred) if cred else None,
             E("Meta", E("MaxMsgSize", max_msg_size)) if max_msg_size else None)


def ref_cred_element(cred):
    return E("Cred", E("Meta", E("Format", "b64"), E("Type", cred.scheme)), E("Data", cred.data))


def ref_chal(scheme, next_nonce):
    return E("Chal", E("Meta", E("Type", scheme), E("Format", "b64"),
                       E("NextNonce", base64.b64encode(next_nonce).decode("ascii"))))


def ref_status(cmd_id, msg_ref, cmd_ref, cmd, code, *, challenge=None, target_ref=None):
    return E("Status", E("CmdID", cmd_id), E("MsgRef", msg_ref), E("CmdRef", cmd_ref), E("Cmd", cmd),
             E("TargetRef", target_ref) if target_ref else None, challenge, E("Data", code))


def ref_message(hdr, *commands, final=True):
    return E("SyncML", hdr, E("SyncBody", *commands, E("Final") if final else None))


def ref_alert(code):
    return E("Alert", E("CmdID", 0), E("Data", code))


def ref_read_header(msg):
    hdr = msg.find("SyncHdr")
    cred = None
    if hdr.find("Cred") is not None:
        cred = Credential(text(hdr, "Cred/Meta/Type", "") or "", text(hdr, "Cred/Data", "") or "")
    size = text(hdr, "Meta/MaxMsgSize")
    if size is not None and not (size.isascii() and size.isdigit() and len(size) <= 9 and int(size) > 0):
        raise ProtocolError(f"SyncHdr: MaxMsgSize {size!r} is not a positive integer")
    return m.Header(session_id=need_text(hdr, "SessionID", "SyncHdr"), msg_id=need_text(hdr, "MsgID", "SyncHdr"),
                    target=need_text(hdr, "Target/LocURI", "SyncHdr"),
                    source=need_text(hdr, "Source/LocURI", "SyncHdr"),
                    loc_name=text(hdr, "Source/LocName"), cred=cred, max_msg_size=int(size) if size else None)


def ref_header_status(msg):
    for st in m.find_all(msg, "SyncBody/Status"):
        if text(st, "Cmd") == "SyncHdr":
            try:
                code = int(need_text(st, "Data", "Status"))
            except ValueError as exc:
                raise ProtocolError(f"SyncHdr Status code is not a number: {exc}") from exc
            raw = text(st, "Chal/Meta/NextNonce")
            nonce = None if raw is None else m.nonce_octets(raw, text(st, "Chal/Meta/Format"))
            return m.HeaderStatus(code, text(st, "Chal/Meta/Type"), nonce)
    return None


def ref_devinfo_replace(client):
    node = client.tree.find(DEVINFO)
    leaves = [n for n in (node.children or {}).values() if not n.interior] if node is not None else []
    return E("Replace", E("CmdID", 0), *(
        E("Item", E("Source", E("LocURI", leaf.uri)), E("Meta", E("Format", "chr")), E("Data", leaf.value))
        for leaf in leaves))


def ref_result(uri, fmt, data, mime_type=""):
    meta = E("Meta", E("Format", fmt), E("Type", mime_type) if mime_type else None)
    return E("Item", E("Source", E("LocURI", uri)), meta, E("Data", data))


def ref_results(cmd_id, msg_ref, ref, items):
    return E("Results", E("CmdID", cmd_id), E("MsgRef", msg_ref), E("CmdRef", ref), *items)


BUILDERS = {"header": ref_header, "cred_element": ref_cred_element, "chal": ref_chal, "status": ref_status,
            "message": ref_message, "alert": ref_alert}
READERS = {"read_header": ref_read_header, "header_status": ref_header_status}


# --------------------------------------------------------------------------- comparing

class Checked:
    """Wraps the fast paths for a run: each call is compared with its reference and counted."""

    def __init__(self, mp: pytest.MonkeyPatch):
        self.calls: dict[str, int] = {}
        self.shapes: set[str] = set()
        for name, ref in BUILDERS.items():
            self._builder(mp, m, name, ref)
        self._builder(mp, dm_commands, "_result", ref_result)
        self._builder(mp, dm_commands, "_results", ref_results)
        for name, ref in READERS.items():
            self._reader(mp, name, ref)
        fast = DmClient._devinfo_replace

        def devinfo(client):
            got = fast(client)
            assert same_tree(got, ref_devinfo_replace(client))
            self._count("_devinfo_replace")
            return got
        mp.setattr(DmClient, "_devinfo_replace", devinfo)

    def _count(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1

    def _builder(self, mp, owner, name, ref) -> None:
        fast = getattr(owner, name)

        def wrapper(*args, **kwargs):
            got = fast(*args, **kwargs)
            assert same_tree(got, ref(*args, **kwargs)), name
            self._count(name)
            return got
        mp.setattr(owner, name, wrapper)

    def _reader(self, mp, name, ref) -> None:
        fast = getattr(m, name)

        def wrapper(msg):
            assert outcome(fast, msg) == outcome(ref, msg), name
            self._count(name)
            self.shapes.add(f"{name}:{_shape(msg)}")
            return fast(msg)
        mp.setattr(m, name, wrapper)


def _shape(msg: Element) -> str:
    hdr = msg.find("SyncHdr")
    return "/".join(c.tag for c in hdr) + "|" + "/".join(c.tag for c in msg.find("SyncBody"))


# --------------------------------------------------------------------------- shipped scenarios

@pytest.fixture(scope="module")
def shipped(tmp_path_factory) -> Checked:
    """Run every shipped scenario with two devices, one replica, checking each call."""
    from dmsim.sim.results.runner import run_scenario
    from dmsim.sim.scenario.format import load_scenario
    with pytest.MonkeyPatch.context() as mp:
        checked = Checked(mp)
        for path in SCENARIOS:
            scenario = load_scenario(path, ["fleet.size=2", "replicas=1"])
            run_scenario(scenario, tmp_path_factory.mktemp(path.stem), plots=False)
    return checked


def test_every_call_of_the_shipped_scenarios_matches_the_reference(shipped):
    for name in (*BUILDERS, *READERS, "_result", "_results", "_devinfo_replace"):
        assert shipped.calls.get(name, 0) > 0, name
    assert len(shipped.shapes) > 10


# --------------------------------------------------------------------------- full sessions

def _session(scheme, *, ctype=m.DM_WBXML, script=None, client_max=10000, server_max=None, stale=False):
    rng = random.Random(11)
    srv = DmServer("dmsim-server", "http://dmsim-server.test/dm", rng.randbytes,
                   script=script or (C("Get", "./DevInfo/Mod"),), max_msg_size=server_max,
                   hmac_verifier=HmacVerifier(max_age=300))
    account = srv.provision(DEV, client_name="001010000000001", client_password="cs", server_password="ss",
                            auth_scheme=scheme)
    if stale:  # the client holds an old nonce: challenged once (§5.4.3)
        account = account.with_nonces(client=b"stale-nonce-0000")
    client = DmClient(account, DEV, DEVINFO_VALUES, 1, rng.randbytes, ctype, max_msg_size=client_max,
                      hmac_verifier=HmacVerifier(max_age=300))
    client.tree.create("./Vendor", "node", acl="Add=*&Get=*&Replace=*&Delete=*&Exec=*")
    for i in range(4):
        client.tree.create(f"./Vendor/Big{i}", "chr", chr(65 + i) * 300)
    step = client.start(NOW)
    for _ in range(60):
        if isinstance(step, Done):
            return step
        reply = srv.handle(step.body, step.content_type, NOW, headers=step.headers)
        step = client.receive(reply.body, reply.content_type, reply.headers, NOW)
    raise AssertionError("session did not end")


@pytest.mark.parametrize("scheme", [AUTH_MD5, AUTH_SHA256, AUTH_BASIC, AUTH_HMAC_SHA256])
@pytest.mark.parametrize("ctype", [m.DM_WBXML, m.DM_XML])
def test_sessions_under_every_scheme_match_the_reference(scheme, ctype):
    script = ([C("Get", f"./Vendor/Big{i}") for i in range(4)]
              + [C("Add", "./Vendor/New", "v", mime_type="text/plain"), C("Replace", "./Vendor/Big0", "w"),
                 C("Get", "./Vendor?prop=ACL"), C("Delete", "./Vendor/New"), C("Get", "./No/Such")])
    with pytest.MonkeyPatch.context() as mp:
        checked = Checked(mp)
        size = 900 if ctype == m.DM_WBXML else 1800  # XML is about twice as long: room for two items
        assert _session(scheme, ctype=ctype, script=script, client_max=size, server_max=size) == Done(True)
        if scheme != AUTH_HMAC_SHA256:
            assert _session(scheme, ctype=ctype, stale=True) == Done(True)
    assert checked.calls["header_status"] > 4 and checked.calls["_results"] > 0


# --------------------------------------------------------------------------- edge cases

def test_builders_match_on_every_argument_shape():
    creds = [None, Credential(AUTH_MD5, "ZGlnZXN0"), Credential(AUTH_BASIC, "")]
    for cred in creds:
        for loc_name in (None, "", "001010000000001"):
            for size in (None, 0, 1500):
                for msg_id in (1, "7"):
                    args = ("0005", msg_id, "http://x/dm", DEV)
                    kw = dict(cred=cred, loc_name=loc_name, max_msg_size=size)
                    assert same_tree(m.header(*args, **kw), ref_header(*args, **kw))
    for challenge in (None, m.chal(AUTH_MD5, b"\x00" * 16)):
        for target_ref in (None, "", "./DevInfo/Mod"):
            for code in (200, "212"):
                args = (3, "2", "0", "SyncHdr", code)
                kw = dict(challenge=challenge, target_ref=target_ref)
                assert same_tree(m.status(*args, **kw), ref_status(*args, **kw))
    assert same_tree(m.chal(AUTH_SHA256, b""), ref_chal(AUTH_SHA256, b""))
    assert same_tree(m.alert("1222"), ref_alert("1222"))
    hdr = m.header("1", 1, "t", "s")
    for final in (True, False):
        for commands in ((), (m.alert("1201"), None, m.alert("1222"))):
            assert same_tree(m.message(hdr, *commands, final=final), ref_message(hdr, *commands, final=final))
    items = [dm_commands._result("./A", "chr", "x"), dm_commands._result("./B", "b64", "eA==", "text/plain")]
    assert same_tree(items[0], ref_result("./A", "chr", "x"))
    assert same_tree(items[1], ref_result("./B", "b64", "eA==", "text/plain"))
    assert same_tree(dm_commands._results(4, "2", "3", items), ref_results(4, "2", "3", items))


def _hdr_msg(*children: Element, body: tuple[Element, ...] = ()) -> Element:
    return E("SyncML", E("SyncHdr", *children), E("SyncBody", *body))


HEADER_CASES = [
    # repeated Target and Source: the first that has the child wins, as ElementPath finds it
    _hdr_msg(E("SessionID", " 1 "), E("MsgID", "2"), E("Target"), E("Target", E("LocURI", "t2")),
             E("Source", E("LocName", "n1")), E("Source", E("LocURI", "s2"), E("LocName", "n2"))),
    _hdr_msg(E("SessionID"), E("MsgID", ""), E("Target", E("LocURI")), E("Source", E("LocURI", "s"))),
    _hdr_msg(E("MsgID", "2"), E("Target", E("LocURI", "t")), E("Source", E("LocURI", "s"))),
    _hdr_msg(E("SessionID", "1"), E("Target", E("LocURI", "t")), E("Source", E("LocURI", "s"))),
    _hdr_msg(E("SessionID", "1"), E("MsgID", "2"), E("Source", E("LocURI", "s"))),
    _hdr_msg(E("SessionID", "1"), E("MsgID", "2"), E("Target", E("LocURI", "t")), E("Source")),
    _hdr_msg(E("SessionID", "1"), E("MsgID", "2"), E("Target", E("LocURI", "t")), E("Source", E("LocURI", "s")),
             E("Meta"), E("Meta", E("MaxMsgSize", " 900 "))),
    *[_hdr_msg(E("SessionID", "1"), E("MsgID", "2"), E("Target", E("LocURI", "t")), E("Source", E("LocURI", "s")),
               E("Meta", E("MaxMsgSize", size))) for size in ("0", "-1", "x", "1234567890", "", "١٢")],
    _hdr_msg(E("SessionID", "1"), E("MsgID", "2"), E("Target", E("LocURI", "t")), E("Source", E("LocURI", "s")),
             E("Cred", E("Data", "d")), E("Cred", E("Meta", E("Type", AUTH_MD5)))),
]


@pytest.mark.parametrize("case", range(len(HEADER_CASES)))
def test_read_header_matches_on_edge_cases(case):
    msg = HEADER_CASES[case]
    assert outcome(m.read_header, msg) == outcome(ref_read_header, msg)


def _status(*children: Element) -> Element:
    return E("Status", E("CmdID", 1), E("MsgRef", "1"), E("CmdRef", "0"), *children)


STATUS_CASES = [
    (),
    (E("Status", E("Cmd", "Alert"), E("Data", "200")),),
    (_status(E("Cmd", "SyncHdr"), E("Data", "200")),),
    (_status(E("Cmd", "SyncHdr"), E("Data", "x")),),
    (_status(E("Cmd", "SyncHdr")),),
    (_status(E("Cmd", "SyncHdr"), E("Chal"), E("Data", "401")),),
    (_status(E("Cmd", "SyncHdr"), E("Chal", E("Meta", E("Type", AUTH_MD5))), E("Data", "401")),),
    (_status(E("Cmd", "SyncHdr"), E("Chal", E("Meta")), E("Chal", E("Meta", E("NextNonce", "bm9uY2U="))),
             E("Data", "407")),),
    (_status(E("Cmd", "SyncHdr"), E("Chal", E("Meta", E("Format", "chr"), E("NextNonce", "abc"))), E("Data", "401")),),
    (E("Status", E("Cmd", "Get"), E("Data", "200")), _status(E("Cmd", " SyncHdr "), E("Data", " 212 "))),
]


@pytest.mark.parametrize("case", range(len(STATUS_CASES)))
def test_header_status_matches_on_edge_cases(case):
    msg = _hdr_msg(body=STATUS_CASES[case])
    assert outcome(m.header_status, msg) == outcome(ref_header_status, msg)


def test_devinfo_replace_matches_with_interior_and_empty_leaves():
    rng = random.Random(3)
    srv = DmServer("dmsim-server", "http://dmsim-server.test/dm", rng.randbytes)
    account = srv.provision(DEV, client_name="c", client_password="p", server_password="q")
    for devinfo in (DEVINFO_VALUES, {}, {"DevId": DEV, "Man": ""}):
        client = DmClient(account, DEV, devinfo, 1, rng.randbytes)
        if devinfo:
            client.tree.create("./DevInfo/Ext", "node")
        assert same_tree(client._devinfo_replace(), ref_devinfo_replace(client))
