"""The client's DM tree: DevInfo, DMAcc with <x>/Auth/Bootstrap (seed 001 §12.2), ACLs (DM TND
§7.7.1, DM_Security §5.9) and the management commands run on it."""
import dataclasses
from xml.etree.ElementTree import Element

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dmsim.devices import dm_commands as c
from dmsim.devices.dm_tree import (TlsKeys, DmTree, account_from_tree, apply_bootstrap, tls_keys_from_tree,
                                   install_account, install_devinfo, parse_acl)
from dmsim.network.dm import messages as m
from dmsim.network.dm.account import DmAccount, bootstrap_document
from dmsim.network.dm.auth import AUTH_SHA256
from dmsim.network.dm.tree import E, text
from dmsim.base.errors import DecodeError, ProtocolError

A, B = "srvA", "srvB"
DEVINFO = {"DevId": "IMSI:001010000000001", "Man": "dmsim", "Mod": "model-x", "DmV": "1.2", "Lang": "en-US"}
KEYS = TlsKeys("https://bs.example:443", "PSK", b"psk-identity-1", b"server-identity", bytes(range(16)))


def account(server_id, password="cpw"):
    return DmAccount(server_id, f"http://{server_id}/dm", "dev1", password, server_id, "spw", b"\x01" * 16,
                     b"\x02" * 16, AUTH_SHA256)


@pytest.fixture
def tree():
    t = DmTree()
    install_devinfo(t, DEVINFO)
    t.acc_a = install_account(t, dataclasses.replace(account(A), bootstrap=KEYS))
    t.acc_b = install_account(t, account(B, "other"))
    return t


def item(uri, data=None, fmt=None):
    return E("Item", E("Target", E("LocURI", uri)), E("Meta", E("Format", fmt)) if fmt else None,
             E("Data", data) if data is not None else None)


def statuses(out):
    return [int(text(s, "Data")) for s in out if s.tag == "Status"]


# --------------------------------------------------------------------------- Get

@pytest.mark.parametrize("server", [A, B, "any-server"])
def test_devinfo_readable_by_any_server_but_not_writable(tree, server):
    out = c.get(tree, "./DevInfo/Mod", server)
    assert out.code == 200 and out.result.findtext("Data") == "model-x"
    listing = c.get(tree, "./DevInfo", server)
    assert listing.result.findtext("Meta/Format") == "node"
    assert set(listing.result.findtext("Data").split("/")) == set(DEVINFO)
    assert c.replace(tree, "./DevInfo/Mod", server, "evil").code == 425
    assert c.add(tree, "./DevInfo/Extra", server, "x").code == 425


@pytest.mark.parametrize("leaf", ["AppAuth/1/AAuthSecret", "AppAuth/2/AAuthSecret", "Auth/Bootstrap/ClientSecretKey",
                                  "Auth/Bootstrap/ClientPublicKeyPSKIdentity",
                                  "Auth/Bootstrap/ServerPublicKeyPSKIdentity"])
def test_secrets_never_returned_by_get(tree, leaf):
    uri = f"{tree.acc_a}/{leaf}"
    assert c.get(tree, uri, A) == c.Outcome(405)  # the owner: AccessType has no Get
    assert c.get(tree, uri, B) == c.Outcome(425)  # another server: the ACL refuses first
    assert c.get(tree, f"{uri}?prop=Size", A).code == 405
    # the secret stays a secret after its value is replaced, or after delete and re-Add
    assert c.replace(tree, uri, A, "bmV3", "b64").code == 200
    assert c.get(tree, uri, A).code == 405
    if leaf.startswith("Auth/Bootstrap"):  # Get and Replace only (seed 001 §9.3.2)
        assert c.delete(tree, uri, A).code == 425
    else:
        assert c.delete(tree, uri, A).code == 200 and c.add(tree, uri, A, "bmV3", "b64").code == 200
        assert c.get(tree, uri, A).code == 405


def test_node_marked_secret_refuses_get_even_with_open_acl():
    t = DmTree("Add=*&Get=*&Replace=*")
    t.create("./Vendor/Key", "chr", "k", secret=True)
    assert c.get(t, "./Vendor/Key", A).code == 405
    assert c.get(t, "./Vendor/Key?prop=Format", A).result.findtext("Data") == "chr"


def test_get_of_a_secret_in_a_session_has_no_results(tree):
    cmd = E("Get", E("CmdID", "4"), item(f"{tree.acc_a}/AppAuth/1/AAuthSecret"), item(f"{tree.acc_a}/ServerID"))
    out, next_id = c.handle_command(tree, cmd, A, "2", 3)
    assert statuses(out) == [405, 200] and next_id == 6
    results = [e for e in out if e.tag == "Results"]
    assert len(results) == 1 and [i.findtext("Data") for i in results[0].iter("Item")] == [A]
    assert b"cpw" not in m.encode(m.message(m.header("1", 2, "s", "d"), *out))


# --------------------------------------------------------------------------- privacy between servers (§5.9)

def test_server_b_cannot_read_or_replace_server_a_account(tree):
    for leaf in ("ServerID", "AppAddr/1/Addr", "AppAuth/1/AAuthName", "AppAuth/1/AAuthData", "Auth/Bootstrap/ServerURI"):
        uri = f"{tree.acc_a}/{leaf}"
        assert c.get(tree, uri, B).code == 425
        assert c.replace(tree, uri, B, "http://evil/dm").code == 425
        assert c.get(tree, uri, A).code == 200
    assert c.get(tree, tree.acc_a, B).code == 425
    assert c.delete(tree, tree.acc_a, B).code == 425
    assert c.add(tree, f"{tree.acc_a}/AppAddr/2/Addr", B, "http://evil").code == 425
    assert c.replace(tree, f"{tree.acc_a}?prop=ACL", B, "Get=*&Replace=*").code == 425
    assert c.replace(tree, f"{tree.acc_a}/ServerID?prop=ACL", B, "Get=*").code == 425
    assert account_from_tree(tree, A) == dataclasses.replace(account(A), bootstrap=KEYS)


def test_missing_node_under_another_servers_account_is_425_not_404(tree):
    assert c.get(tree, f"{tree.acc_a}/NoSuchNode", B).code == 425
    assert c.get(tree, f"{tree.acc_a}/NoSuchNode", A).code == 404
    assert c.get(tree, "./NoSuch/Node", A).code == 404


def test_replace_with_acl_permission(tree):
    uri = f"{tree.acc_a}/AppAddr/1/Addr"
    assert c.replace(tree, uri, A, "https://a.example/dm").code == 200
    assert c.get(tree, uri, A).result.findtext("Data") == "https://a.example/dm"
    assert account_from_tree(tree, A).server_uri == "https://a.example/dm"
    assert c.replace(tree, tree.acc_a, A, "x").code == 405  # interior nodes have no value
    assert c.replace(tree, f"{tree.acc_a}/Nope", A, "x").code == 404


def test_replace_refuses_data_that_does_not_fit_the_format(tree):
    uri = f"{tree.acc_a}/AppAuth/1/AAuthData"
    assert c.replace(tree, uri, A, "not base64!", "b64").code == 400
    assert c.replace(tree, uri, A, "12x", "int").code == 400
    assert c.replace(tree, uri, A, "x", "float").code == 415
    assert c.replace(tree, uri, A, "AAEC", "b64").code == 200
    assert account_from_tree(tree, A).client_nonce == b"\x00\x01\x02"


# --------------------------------------------------------------------------- Add / Delete / Exec

def test_add_existing_node_is_418(tree):
    assert c.add(tree, f"{tree.acc_a}/ServerID", A, "x").code == 418
    assert c.add(tree, "./DevInfo/Mod", A, "x").code == 425  # no Add right on DevInfo: existence not confirmed


def test_add_creates_node_owned_by_the_adding_server():
    t = DmTree()
    assert c.add(t, "./Vendor/Cfg/Level", A, "3", "int").code == 200  # missing interior parents created
    assert t.find("./Vendor").acl == parse_acl("Add=srvA&Delete=srvA&Get=srvA&Replace=srvA")
    assert c.get(t, "./Vendor/Cfg/Level", A).result.findtext("Meta/Format") == "int"
    assert c.get(t, "./Vendor/Cfg/Level", B).code == 425
    assert c.add(t, "./Vendor/Cfg/Level", A, "3", "int").code == 418
    assert c.add(t, "./Vendor/Cfg/Level/Below", A, "3").code == 405  # a leaf has no children
    assert c.add(t, "./Vendor/Dir", A, fmt="node").code == 200 and t.find("./Vendor/Dir").interior
    assert c.add(t, "./Vendor?prop=ACL", A, "Get=*").code == 405


def test_delete(tree):
    uri = f"{tree.acc_b}/AppAddr"
    assert c.delete(tree, uri, A).code == 425
    assert c.delete(tree, uri, B).code == 200
    assert tree.find(uri) is None and tree.find(f"{uri}/1/Addr") is None
    assert c.delete(tree, uri, B).code == 404
    assert c.delete(tree, ".", B).code == 425
    assert c.delete(DmTree("Add=*&Delete=*"), ".", B).code == 405
    assert c.delete(tree, "./DevInfo/Mod", B).code == 425


def test_exec_calls_the_handler_only_when_permitted():
    t = DmTree("Add=*&Get=*")
    calls = []
    t.create("./Ops/Reboot", "chr", "", acl="Exec=srvA&Get=*")
    t.on_exec("./Ops/Reboot", lambda uri, srv, data: calls.append((uri, srv, data)) or 200)
    assert c.execute(t, "./Ops/Reboot", B).code == 425
    assert c.execute(t, "./Ops/Reboot", A, "now").code == 200
    assert calls == [("./Ops/Reboot", A, "now")]
    t.create("./Ops/Plain", "chr", "", acl="Exec=*")
    assert c.execute(t, "./Ops/Plain", A).code == 405


# --------------------------------------------------------------------------- DMAcc and Auth/Bootstrap

def test_auth_bootstrap_subtree_present_with_its_nodes(tree):
    base = f"{tree.acc_a}/Auth/Bootstrap"
    listing = c.get(tree, base, A).result.findtext("Data").split("/")
    assert listing == ["ServerURI", "SecMode", "ClientPublicKeyPSKIdentity", "ServerPublicKeyPSKIdentity",
                       "ClientSecretKey"]
    assert c.get(tree, f"{base}/ServerURI", A).result.findtext("Data") == KEYS.server_uri
    assert c.get(tree, f"{base}/SecMode", A).result.findtext("Meta/Format") == "b64"  # bin goes out as b64
    assert c.get(tree, f"{base}/SecMode?prop=Format", A).result.findtext("Data") == "bin"
    assert c.get(tree, f"{base}?prop=ACL", A).result.findtext("Data") == "Get=srvA&Replace=srvA"
    assert tls_keys_from_tree(tree, A) == KEYS
    assert tls_keys_from_tree(tree, B) is None


def test_account_round_trips_through_the_tree(tree):
    assert account_from_tree(tree, A) == dataclasses.replace(account(A), bootstrap=KEYS)
    assert account_from_tree(tree, B) == account(B, "other")
    with pytest.raises(ProtocolError):
        account_from_tree(tree, "srvC")


def test_bootstrap_document_outside_dmacc_is_refused():
    doc = bootstrap_document(account(A), "IMSI:1")
    doc.find("SyncBody/Add").append(item("./DevInfo/Mod", "x"))
    with pytest.raises(ProtocolError):
        apply_bootstrap(DmTree(), doc)


# --------------------------------------------------------------------------- ACL rules

def test_acl_inheritance_from_nearest_non_empty_ancestor():
    t = DmTree()
    t.create("./A", "node", acl="Get=srvA+srvB&Replace=srvA")
    t.create("./A/B/C", "chr", "v")          # B and C: empty ACLs
    t.create("./A/D", "chr", "w", acl="Get=*")
    assert t.acl_of(t.find("./A/B/C")) == parse_acl("Get=srvA+srvB&Replace=srvA")
    assert c.get(t, "./A/B/C", B).code == 200
    assert c.replace(t, "./A/B/C", B, "x").code == 425
    assert c.replace(t, "./A/B/C", A, "x").code == 200
    # an own ACL replaces the inherited one as a whole (no per-command inheritance)
    assert c.get(t, "./A/D", "srvZ").code == 200
    assert c.replace(t, "./A/D", A, "x").code == 425
    assert c.get(t, "./A/B/C?prop=ACL", A).result.findtext("Data") == ""


def test_changing_acls_follows_tnd_7_7_1_3():
    t = DmTree()
    t.create("./A", "node", acl="Get=*&Replace=srvA")
    t.create("./A/Leaf", "chr", "v", acl="Get=*&Replace=srvB")
    # leaf: only the parent's Replace right lets the ACL change, not the leaf's own
    assert c.replace(t, "./A/Leaf?prop=ACL", B, "Replace=srvB+srvC").code == 425
    assert c.replace(t, "./A/Leaf?prop=ACL", A, "Get=*&Replace=srvA").code == 200
    # interior: its own Replace right suffices
    assert c.replace(t, "./A?prop=ACL", A, "Get=*&Replace=srvA+srvB").code == 200
    assert c.replace(t, "./A?prop=ACL", A, "Get=*&&").code == 400
    # root: Add stays "*"
    assert c.replace(t, ".?prop=ACL", A, "Get=*").code == 425
    root_open = DmTree("Add=*&Get=*&Replace=*")
    assert c.replace(root_open, ".?prop=ACL", A, "Add=srvA&Get=*").code == 405
    assert c.replace(root_open, ".?prop=ACL", A, "Add=*&Get=*").code == 200


@pytest.mark.parametrize("bad", ["Get", "Get=", "Fetch=*", "Get=a b", "Get=a&", "Get=a++b", "Get=*x", "=a"])
def test_malformed_acl_raises_decode_error(bad):
    with pytest.raises(DecodeError) as err:
        parse_acl(bad)
    assert err.value.what == "ACL"


def test_acl_syntax():
    acl = parse_acl("Add=www.sonera.fi-8765&Delete=www.sonera.fi-8765&Replace=www.sonera.fi-8765+321_&Get=*")
    assert acl.allows("Replace", "321_") and acl.allows("Get", "anyone") and not acl.allows("Exec", "321_")
    assert parse_acl("Get=a&Get=b").ids("Get") == ("a", "b")
    assert parse_acl("Get=a+*").allows("Get", "z")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("AddGetReplaceExecDelete=&+* \t.-_xé\x00")), max_size=40) | st.text(max_size=30))
def test_random_acl_strings_parse_or_raise_decode_error(value):
    try:
        acl = parse_acl(value)
    except DecodeError as exc:
        assert 0 <= exc.offset <= len(value)
        return
    assert parse_acl(str(acl)) == acl


# --------------------------------------------------------------------------- the command element API

def test_handle_command_statuses_and_results(tree):
    cmd = E("Replace", E("CmdID", "7"), item(f"{tree.acc_a}/Name", "Server A"), item(f"{tree.acc_b}/Name", "x"))
    out, next_id = c.handle_command(tree, cmd, A, "3", 2)
    assert statuses(out) == [200, 425] and next_id == 4
    assert [text(s, "TargetRef") for s in out] == [f"{tree.acc_a}/Name", f"{tree.acc_b}/Name"]
    assert all(text(s, "CmdRef") == "7" and text(s, "MsgRef") == "3" and text(s, "Cmd") == "Replace" for s in out)
    seq = E("Sequence", E("CmdID", "8"), E("Get", E("CmdID", "9"), item("./DevInfo/Man")), E("Copy", E("CmdID", "10")))
    out, next_id = c.handle_command(tree, seq, B, "3", 1)
    assert [(e.tag, text(e, "CmdRef")) for e in out] == [("Status", "8"), ("Status", "9"), ("Results", "9"),
                                                           ("Status", "10")]
    assert statuses(out) == [200, 200, 406] and next_id == 5
    out, _ = c.handle_command(tree, E("Get", E("CmdID", "1"), E("NoResp"), item("./DevInfo/Man")), B, "3", 1)
    assert [e.tag for e in out] == ["Results"]


def test_handle_command_binary_opaque_data(tree):
    data = E("Data")
    data.set("opaque_hex", "ff00fe")
    cmd = E("Replace", E("CmdID", "1"), E("Item", E("Target", E("LocURI", f"{tree.acc_a}/Auth/Bootstrap/ClientSecretKey")),
                                          E("Meta", E("Format", "bin")), data))
    out, _ = c.handle_command(tree, cmd, A, "1", 1)
    assert statuses(out) == [200]
    assert tls_keys_from_tree(tree, A).client_secret_key == b"\xff\x00\xfe"


_SEGMENTS = st.sampled_from(["DMAcc", "srvA", "srvB", "DevInfo", "Mod", "AppAuth", "1", "AAuthSecret", "..", "", "x"])
_URIS = st.builds(lambda prefix, segs, q: prefix + "/".join(segs) + q, st.sampled_from(["./", "", ".", "/"]),
                  st.lists(_SEGMENTS, max_size=5), st.sampled_from(["", "?prop=ACL", "?prop=Size", "?list=Struct", "?"]))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["Get", "Replace", "Add", "Delete", "Exec", "Copy", "Atomic"]), _URIS,
                          st.sampled_from([A, B, "a b"]), st.one_of(st.none(), st.text(max_size=8)),
                          st.sampled_from([None, "chr", "int", "b64", "bool", "node", "bin", "xml"])), max_size=8))
def test_random_commands_never_crash_and_never_leak_secrets(ops):
    t = DmTree()
    install_devinfo(t, DEVINFO)
    install_account(t, dataclasses.replace(account(A, "SeCrEt-pw"), bootstrap=KEYS))
    for n, (tag, uri, server, data, fmt) in enumerate(ops):
        cmd = E(tag, E("CmdID", n + 1), item(uri, data, fmt))
        out, _ = c.handle_command(t, cmd, server, "1", 1)
        for elem in out:
            assert isinstance(elem, Element)
            for d in elem.iter("Data"):
                assert "SeCrEt-pw" not in (d.text or "")
