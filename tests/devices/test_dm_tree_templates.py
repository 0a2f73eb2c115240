"""The DM tree's fast paths give the tree the generic code gives (OMA-TS-DM_TND-V1_2 §6-§7,
DM_StdObj DMAcc/DevInfo): an account installed from a template copy is node for node (names and
their order, Formats, values, ACLs, AccessTypes, secrets, parents) the tree its bootstrap document
gives through :func:`apply_bootstrap`; DevInfo likewise against the node-by-node puts; device
trees do not share nodes; a tree no one holds is freed by reference counting alone."""
import gc
import hashlib
import weakref

import pytest

from dmsim.base.errors import DmsimError
from dmsim.devices import dm_tree
from dmsim.devices.dm_tree import DmTree, apply_bootstrap, install_account, install_devinfo
from dmsim.network.dm import syncml_xml, wbxml
from dmsim.network.dm.account import DmAccount, TlsKeys, bootstrap_document
from dmsim.network.dm.auth import AUTH_BASIC, AUTH_MD5, AUTH_SHA256
from dmsim.network.dm.hmac_integrity import AUTH_HMAC_SHA256

DEVINFO = {"DevId": "IMSI:001010000000001", "Man": "dmsim", "Mod": "dmsim-phone-a", "DmV": "1.2", "Lang": "en-US"}


def account(server_id="dmsim-server", scheme=AUTH_MD5, **extra):
    fields = dict(server_uri="http://dm.example/dm", client_name="IMSI:1", client_password="c" * 32,
                  server_name=server_id, server_password="s" * 32, client_nonce=b"\x01" * 16,
                  server_nonce=b"\x02" * 16, auth_scheme=scheme)
    return DmAccount(server_id=server_id, **{**fields, **extra})


ACCOUNTS = [
    account(),
    account(scheme=AUTH_HMAC_SHA256),
    account(scheme=AUTH_SHA256),
    account(scheme=AUTH_BASIC, server_auth_scheme=AUTH_MD5),
    account("srv.two", psk_identity=b"id", psk_key=b"k" * 16),
    account("boot", bootstrap=TlsKeys("https://bs/", "PSK", b"ident", b"boot", b"key")),
    account("both", psk_identity=b"id", psk_key=b"\x00" * 16, bootstrap=TlsKeys("", "X509", b"", b"", b"")),
    account("x", client_nonce=b"", server_nonce=bytearray(b"\xff")),
]


def dump(tree: DmTree) -> list[tuple]:
    """Every property of every node, parents first, children in their order."""
    out = []
    for node in DmTree.walk(tree.root):
        for child in (node.children or {}).values():
            assert child.parent is node
        out.append((node.uri, node.name, node.format, type(node.value), node.value, node.acl, node.access,
                    node.secret, node.type, None if node.children is None else list(node.children), node.on_exec))
    return out


def outcome(fn, *args):
    try:
        return "ok", fn(*args)
    except DmsimError as exc:
        return type(exc).__name__, str(exc)


def generic_account(tree, acc):
    return apply_bootstrap(tree, bootstrap_document(acc, ""))[0]


@pytest.mark.parametrize("acc", ACCOUNTS, ids=lambda a: f"{a.server_id}-{a.auth_scheme}")
def test_account_copy_is_the_bootstrap_document_tree(acc):
    for _ in range(2):  # the first call builds the template, the second copies it
        fast, slow = DmTree(), DmTree()
        assert install_account(fast, acc) == generic_account(slow, acc)
        assert dump(fast) == dump(slow)


def _with_devinfo(tree):
    install_devinfo(tree, DEVINFO)


def _with_other_account(tree):
    install_account(tree, account("other"))


def _with_same_account(tree):
    install_account(tree, account(client_name="old"))


def _with_dmacc_leaf(tree):
    tree.create("./DMAcc", "chr", "x")


def _with_node_leaf(tree):
    tree.create("./DMAcc/dmsim_server", "chr", "x")


def _with_interior_leaf_name(tree):
    tree.create("./DMAcc/dmsim_server/AppID/x", "chr", "x")


@pytest.mark.parametrize("prepare", [_with_devinfo, _with_other_account, _with_same_account, _with_dmacc_leaf,
                                     _with_node_leaf, _with_interior_leaf_name])
@pytest.mark.parametrize("acc", ACCOUNTS[:2] + ACCOUNTS[-2:], ids=lambda a: a.server_id)
def test_account_on_a_tree_that_has_nodes_already(prepare, acc):
    fast, slow = DmTree(), DmTree()
    prepare(fast)
    prepare(slow)
    assert outcome(install_account, fast, acc) == outcome(generic_account, slow, acc)
    assert dump(fast) == dump(slow)


@pytest.mark.parametrize("acc", [account(scheme="syncml:auth-x"), account(scheme=AUTH_SHA256).hashed(), account(""),
                                 account("a b"), account("./.."),
                                 account(bootstrap=TlsKeys("", "RSA", b"", b"", b""))])
def test_account_errors_are_the_generic_ones(acc):
    for _ in range(2):
        fast, slow = DmTree(), DmTree()
        assert outcome(install_account, fast, acc) == outcome(generic_account, slow, acc)
        assert dump(fast) == dump(slow)


@pytest.mark.parametrize("devinfo", [DEVINFO, {}, {"DevId": "1"}, {"Ext/Sub/Leaf": "v", "DevId": "2"},
                                     {"DevId": 7, "Mod": ""}, {"..": "x"}, {"a//b": "x"}])
def test_devinfo_copy_is_the_generic_tree(devinfo):
    for _ in range(2):
        fast, slow = DmTree(), DmTree()
        assert outcome(lambda t: dump_node(install_devinfo(t, devinfo)), fast) == \
            outcome(lambda t: dump_node(dm_tree._put_devinfo(t, devinfo)), slow)
        assert dump(fast) == dump(slow)


def dump_node(node):
    return node.uri


def test_devinfo_on_a_tree_that_has_it_updates_it():
    fast, slow = DmTree(), DmTree()
    for tree in (fast, slow):
        install_devinfo(tree, {"DevId": "old", "Man": "m"})
    install_devinfo(fast, DEVINFO)
    dm_tree._put_devinfo(slow, DEVINFO)
    assert dump(fast) == dump(slow)


def test_devices_do_not_share_nodes():
    first, second = DmTree(), DmTree()
    for tree in (first, second):
        install_devinfo(tree, DEVINFO)
        install_account(tree, ACCOUNTS[0])
    first.find("./DMAcc/dmsim_server/AppAuth/1/AAuthName").value = "changed"
    first.find("./DMAcc/dmsim_server").acl = dm_tree.acl_for("else")
    first.on_exec("./DevInfo/Mod", lambda *a: 200)
    reference = DmTree()
    install_devinfo(reference, DEVINFO)
    generic_account(reference, ACCOUNTS[0])
    assert dump(second) == dump(reference)
    third = DmTree()
    install_devinfo(third, DEVINFO)
    install_account(third, ACCOUNTS[0])
    assert dump(third) == dump(reference)


def test_a_tree_is_freed_without_the_cyclic_collector():
    gc.disable()
    try:
        tree = DmTree()
        install_devinfo(tree, DEVINFO)
        install_account(tree, ACCOUNTS[4])
        leaf = weakref.ref(tree.find("./DMAcc/srv_two/AppAuth/2/AAuthData"))
        root = weakref.ref(tree.root)
        del tree
        assert leaf() is None and root() is None
    finally:
        gc.enable()


def test_parents_of_removed_and_orphaned_nodes():
    tree = DmTree()
    install_account(tree, ACCOUNTS[0])
    node = tree.find("./DMAcc/dmsim_server/AppAuth")
    child = tree.find("./DMAcc/dmsim_server/AppAuth/1")
    tree.remove(node)
    assert node.parent is None and child.parent is node
    assert child.uri == "./1"  # as before: the URI ends at the removed node
    assert tree.find("./DMAcc/dmsim_server/AppAuth") is None
    del node
    assert child.parent is None  # its parent is gone: a detached node


# sha256 (first 32 hex digits) of the WBXML + XML of each ACCOUNTS bootstrap document, as built
# before the account leaves (account.account_leaves) and the C-built Items: the bytes did not change
DOCUMENT_DIGESTS = ["b264f86acd3813fa881103220a3bb29a", "7fba568b54b6b41864c905a86ba31498",
                    "a0ad2a50dee13eba7e1f02ae85a69c34", "edf70abe57caf378a5140b9ff9018f38",
                    "950e64b495ea97501db1a865f3969ab2", "b5a9980b948110141ce9fa8b9c621a61",
                    "63d16270c051938e6ca71f1cf7edf208", "302294b2f9b3403b15f17b00c330bca0"]


@pytest.mark.parametrize("acc, digest", list(zip(ACCOUNTS, DOCUMENT_DIGESTS)))
def test_bootstrap_document_bytes_are_unchanged(acc, digest):
    doc = bootstrap_document(acc, "IMSI:001010000000001")
    assert hashlib.sha256(wbxml.encode(doc) + syncml_xml.to_xml(doc)).hexdigest()[:32] == digest
