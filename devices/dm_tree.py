"""The DM client's management tree: nodes, their Format and ACL properties, and the standard
objects DevInfo and DMAcc (OMA-TS-DM_TND-V1_2 §6-§7, OMA-TS-DM_StdObj-V1_2, OMA-TS-DM_Security
§5.9; the ``<x>/Auth/Bootstrap`` subtree of seed 001 §12.2, ``<x>/Auth/Trsp`` of seed 000 §9.2.1).

The tree is plain data with no protocol: methods here act with the device's own authority and
check no ACL; :mod:`.dm_commands` runs a server's commands against it with the ACL checks.

ACL (TND §7.7.1): ``Add=a+b&Get=*``; an empty ACL inherits its parent's whole ACL (not per
command), the root's may not be empty. ``*`` grants everyone and overrides listed ids.

Choices where the specs are silent or loose:

* a repeated command in an ACL merges its server ids; an ACL error is a DecodeError("ACL",
  character offset, ...);
* values: chr/int/bool are ``str``, b64/bin are the raw ``bytes``, interior nodes hold None;
  int is a decimal integer with an optional ``-``, bool is ``true``/``false``;
* a "secret" node is one whose AccessType lacks Get (seed 001 "No Get", AAuthSecret);
* DevInfo nodes have AccessType Get and ACL ``Get=*``; each ``./DMAcc/<x>`` gets the ACL
  ``Add=S&Delete=S&Get=S&Replace=S`` for its own ServerID S, so no other server reaches it;
  ``<x>/Auth/Bootstrap`` gets ``Get=S&Replace=S`` (only the bootstrap server changes it, §9.3.2),
  whether installed by :func:`install_account` or by a bootstrap document; ``<x>/Auth/Trsp``
  inherits the account's ACL;
  ``./DMAcc`` itself inherits the root's ``Add=*&Get=*``: any server may list the account names
  and add its own account, none may read or change another's;
* SecMode (Format bin) holds the ASCII name of the mode, ``PSK`` or ``X509``; either subtree's
  leaves are those of :func:`account.tls_key_leaves` and it is read by :func:`account.tls_keys_of`.
"""
from __future__ import annotations

import base64
import binascii
import re
import weakref
from dataclasses import dataclass
from typing import Callable, Iterator
from xml.etree.ElementTree import Element

from dmsim.network.dm.account import (AUTH_BOOTSTRAP, DMACC, DmAccount, TlsKeys, account_from_bootstrap,
                                     account_leaves, tls_keys_of)
from dmsim.network.dm.wbxml import opaque_bytes
from dmsim.network.dm.tree import E, find_all, need_text, text
from dmsim.base.errors import DecodeError, DmsimError, ProtocolError

ADD, DELETE, EXEC, GET, REPLACE = "Add", "Delete", "Exec", "Get", "Replace"
COMMANDS = (ADD, DELETE, EXEC, GET, REPLACE)
FORMATS = ("chr", "int", "b64", "bool", "node", "bin")
BINARY_FORMATS = ("b64", "bin")
DEFAULT_ACCESS = frozenset({ADD, DELETE, GET, REPLACE})
ROOT_ACL = "Add=*&Get=*"
DEVINFO_ACL = "Get=*"
DEVINFO = "./DevInfo"
WILDCARD = "*"

ExecHandler = Callable[[str, str, str], int]  # (uri, server id, data) -> SyncML status code


# --------------------------------------------------------------------------- ACL

@dataclass(frozen=True)
class Acl:
    """An ACL property value: for each command the server ids it grants (TND §7.7.1.5)."""

    grants: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def empty(self) -> bool:
        """Return True for the empty ACL (the node inherits its parent's)."""
        return not self.grants

    def allows(self, command: str, server_id: str) -> bool:
        """Return True if this ACL lets ``server_id`` perform ``command``."""
        for cmd, ids in self.grants:
            if cmd == command:
                return WILDCARD in ids or server_id in ids
        return False

    def ids(self, command: str) -> tuple[str, ...]:
        """Return the server ids granted ``command`` (``("*",)`` for everyone, () for nobody)."""
        return next((ids for cmd, ids in self.grants if cmd == command), ())

    def __str__(self) -> str:
        return "&".join(f"{cmd}={'+'.join(ids)}" for cmd, ids in self.grants)


_EMPTY_ACL = Acl()


def parse_acl(value: str) -> Acl:
    """Return the Acl of an ACL property string; DecodeError("ACL", offset, ...) if malformed."""
    if value == "":
        return _EMPTY_ACL
    grants: dict[str, list[str]] = {}
    pos = 0
    for entry in value.split("&"):
        cmd, sep, ids = entry.partition("=")
        if not sep:
            raise DecodeError("ACL", pos, f"entry {entry!r} has no '='", "<command>=<server-ids>")
        if cmd not in COMMANDS:
            raise DecodeError("ACL", pos, f"unknown command {cmd!r}", "|".join(COMMANDS))
        id_pos = pos + len(cmd) + 1
        found = grants.setdefault(cmd, [])
        for server_id in ids.split("+"):
            _check_server_id(server_id, id_pos)
            if server_id not in found:
                found.append(server_id)
            id_pos += len(server_id) + 1
        pos += len(entry) + 1
    return Acl(tuple((cmd, tuple(grants[cmd])) for cmd in COMMANDS if cmd in grants))


_PLAIN_ID = re.compile(r"[^=&*+ ]+\Z")  # with printable ASCII: what the loop below accepts


def _check_server_id(server_id: str, pos: int) -> None:
    if server_id == WILDCARD or (server_id.isascii() and server_id.isprintable() and _PLAIN_ID.match(server_id)):
        return
    if not server_id:
        raise DecodeError("ACL", pos, "empty server identifier", "'*' or a server identifier")
    for i, ch in enumerate(server_id):
        if ch in "=&*+" or ch.isspace() or not ch.isprintable():
            raise DecodeError("ACL", pos + i, f"character {ch!r} in server identifier {server_id!r}",
                              "printable characters other than = & * + and white space")


_ROOT_ACL = parse_acl(ROOT_ACL)
_DEVINFO_ACL = parse_acl(DEVINFO_ACL)


def acl_for(server_id: str, commands: tuple[str, ...] = (ADD, DELETE, GET, REPLACE)) -> Acl:
    """Return an ACL granting ``commands`` to ``server_id`` alone; DecodeError for a bad id."""
    _check_server_id(server_id, 0)
    return Acl(tuple((cmd, (server_id,)) for cmd in COMMANDS if cmd in commands))


# --------------------------------------------------------------------------- values

def decode_value(fmt: str, data: str, raw: bytes | None = None) -> str | bytes | None:
    """Return the stored value of ``data`` carried with Meta Format ``fmt``.

    ``raw`` is the octets of a WBXML OPAQUE Data that is not UTF-8 (bin only). The wire form of
    b64 is base64 text, decoded here; bin is the octets themselves. ProtocolError if ``data``
    does not fit ``fmt``.
    """
    if fmt == "node":
        return None
    if fmt == "b64":
        try:
            return base64.b64decode(data.strip(), validate=True)
        except (binascii.Error, ValueError) as exc:  # ValueError: text that is not ASCII
            raise ProtocolError(f"Data is not base64: {exc}") from None
    if fmt == "bin":
        return raw if raw is not None else data.encode()
    if fmt == "int":
        digits = data[1:] if data.startswith("-") else data
        if not (digits.isascii() and digits.isdigit()):
            raise ProtocolError(f"Data {data!r} is not an int")
        return data
    if fmt == "bool":
        if data not in ("true", "false"):
            raise ProtocolError(f"Data {data!r} is not a bool (true|false)")
        return data
    if fmt == "chr":
        return data
    raise ProtocolError(f"unsupported Format {fmt!r}")


def wire_value(node: "Node") -> tuple[str, str]:
    """Return (Meta Format, Data text) that carry ``node``'s value; binary values go as b64."""
    if node.format in BINARY_FORMATS:
        return "b64", base64.b64encode(node.value or b"").decode("ascii")
    return node.format, node.value or ""


# --------------------------------------------------------------------------- nodes

class Node:
    """One node: interior (Format ``node``, with children) or leaf (with a value).

    ``access`` is the DDF AccessType (the commands the node supports at all), ``acl`` the ACL
    property (empty: inherited), ``secret`` a node whose value Get never returns.

    A node refers to its parent weakly (its parent holds it in ``children``), so that a tree no
    one uses any more is freed at once rather than by the cyclic garbage collector; ``parent``
    is None for the root, for a removed node, and for a node whose tree is gone.
    """

    __slots__ = ("name", "_parent", "format", "value", "acl", "access", "secret", "type", "children", "on_exec",
                 "__weakref__")

    def __init__(self, name: str, parent: "Node | None", fmt: str, value: str | bytes | None = None, *,
                 acl: Acl = _EMPTY_ACL, access: frozenset[str] = DEFAULT_ACCESS, secret: bool = False,
                 mime_type: str = ""):
        self.name = name
        self._parent = None if parent is None else weakref.ref(parent)
        self.format = fmt
        self.value = value
        self.acl = acl
        self.access = access
        self.secret = False
        self.type = mime_type
        self.children: dict[str, Node] | None = {} if fmt == "node" else None
        self.on_exec: ExecHandler | None = None
        if secret:
            self.hide()

    @property
    def parent(self) -> "Node | None":
        """Return the parent node (None for the root and for a detached node)."""
        ref = self._parent
        return None if ref is None else ref()

    @parent.setter
    def parent(self, parent: "Node | None") -> None:
        self._parent = None if parent is None else weakref.ref(parent)

    def hide(self) -> None:
        """Make the node secret: Get is removed from its AccessType for good."""
        self.secret = True
        self.access = self.access - {GET}

    @property
    def interior(self) -> bool:
        """Return True for an interior node."""
        return self.children is not None

    @property
    def uri(self) -> str:
        """Return the node's absolute URI (``.`` for the root)."""
        names = []
        node: Node | None = self
        while node is not None and node.parent is not None:
            names.append(node.name)
            node = node.parent
        return "/".join(["."] + names[::-1])


def split_uri(uri: str) -> list[str]:
    """Return the node names of ``uri`` (absolute ``./A/B``, ``.`` or relative ``A/B``).

    ProtocolError for a URI the TND forbids (§6): an empty name, a trailing ``/``, ``.`` or
    ``..`` past the start.
    """
    if uri == ".":
        return []
    names = (uri[2:] if uri.startswith("./") else uri).split("/")
    if "" in names or "." in names or ".." in names:
        raise ProtocolError(f"malformed URI {uri!r}")
    return names


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ProtocolError(f"unsupported Format {fmt!r}")


class DmTree:
    """A management tree with the device's authority (no ACL checks here)."""

    def __init__(self, root_acl: str = ROOT_ACL):
        acl = _ROOT_ACL if root_acl == ROOT_ACL else parse_acl(root_acl)
        if acl.empty:
            raise ProtocolError("the root ACL may not be empty (TND §7.7.1.2)")
        self.root = Node(".", None, "node", acl=acl)

    def _walk(self, names: list[str]) -> tuple[Node, int]:
        """Return the deepest existing node on the path ``names`` and how many names it took."""
        node = self.root
        for i, name in enumerate(names):
            child = node.children.get(name) if node.children is not None else None
            if child is None:
                return node, i
            node = child
        return node, len(names)

    def find(self, uri: str) -> Node | None:
        """Return the node at ``uri`` or None; ProtocolError for a malformed URI."""
        names = split_uri(uri)
        node, depth = self._walk(names)
        return node if depth == len(names) else None

    def deepest(self, uri: str) -> tuple[Node, list[str]]:
        """Return the deepest existing node on ``uri``'s path and the names below it that are missing."""
        names = split_uri(uri)
        node, depth = self._walk(names)
        return node, names[depth:]

    def create(self, uri: str, fmt: str = "chr", value: str | bytes | None = None, *, acl: str | Acl = "",
               access: frozenset[str] = DEFAULT_ACCESS, secret: bool = False, mime_type: str = "") -> Node:
        """Return a new node at ``uri``, creating missing interior ancestors (with empty ACLs).

        ProtocolError if the node exists, an ancestor is a leaf or ``fmt`` is not a TND format.
        """
        _check_format(fmt)
        names = split_uri(uri)
        parent, depth = self._walk(names)
        return self._create_below(parent, names[depth:], uri, fmt, value, acl=acl, access=access, secret=secret,
                                  mime_type=mime_type)

    def _create_below(self, parent: Node, missing: list[str], uri: str, fmt: str, value: str | bytes | None, *,
                      acl: str | Acl = "", access: frozenset[str] = DEFAULT_ACCESS, secret: bool = False,
                      mime_type: str = "") -> Node:
        """Return the new node ``missing`` below ``parent`` (see create; ``fmt`` was checked)."""
        if not missing:
            raise ProtocolError(f"node {uri!r} already exists")
        for name in missing[:-1]:
            if parent.children is None:
                break
            parent.children[name] = parent = Node(name, parent, "node")
        if parent.children is None:
            raise ProtocolError(f"{parent.uri} is a leaf and cannot have children")
        node = Node(missing[-1], parent, fmt, value, acl=parse_acl(acl) if isinstance(acl, str) else acl,
                    access=access, secret=secret, mime_type=mime_type)
        parent.children[node.name] = node
        return node

    def put(self, uri: str, fmt: str, value: str | bytes | None, *, secret: bool = False, **props) -> Node:
        """Return the node at ``uri`` after setting its value, creating it (see create) if missing.

        ``secret`` also hides an existing node; other properties apply to a new node only.
        """
        names = split_uri(uri)
        node, depth = self._walk(names)
        if depth < len(names):
            _check_format(fmt)
            return self._create_below(node, names[depth:], uri, fmt, value, secret=secret, **props)
        if node.interior and fmt == "node":
            return node
        if node.interior or fmt == "node":
            raise ProtocolError(f"{uri}: interior and leaf nodes do not change into each other")
        node.format, node.value = fmt, value
        if secret:
            node.hide()
        return node

    def remove(self, node: Node) -> None:
        """Remove ``node`` and its subtree; ProtocolError for the root."""
        if node.parent is None:
            raise ProtocolError("the root node cannot be deleted")
        del node.parent.children[node.name]
        node.parent = None

    @staticmethod
    def acl_of(node: Node) -> Acl:
        """Return the ACL in force for ``node``: its own, or its nearest ancestor's non-empty one."""
        n: Node | None = node
        while n is not None:
            if not n.acl.empty:
                return n.acl
            n = n.parent
        return Acl()

    def permits(self, node: Node, command: str, server_id: str) -> bool:
        """Return True if the ACL in force for ``node`` lets ``server_id`` perform ``command``."""
        return self.acl_of(node).allows(command, server_id)

    @staticmethod
    def walk(node: Node) -> Iterator[Node]:
        """Return an iterator over ``node`` and its descendants, parents first."""
        pending = [node]
        while pending:
            n = pending.pop()
            yield n
            if n.children:
                pending.extend(reversed(list(n.children.values())))

    def on_exec(self, uri: str, handler: ExecHandler) -> None:
        """Make the node at ``uri`` executable: Exec on it calls ``handler`` and returns its status."""
        node = self.find(uri)
        if node is None:
            raise ProtocolError(f"no node {uri!r}")
        node.on_exec = handler
        node.access = node.access | {EXEC}


# --------------------------------------------------------------------------- templates

# A fresh device's DevInfo and DMAcc subtrees have the same nodes for every device of a profile;
# only the leaf values differ. A template is such a subtree built once, by the generic code
# (create/put) on a scratch tree with each leaf's value replaced by its position in the list of
# values; a device's subtree is a copy of it with the values put back (:func:`_graft`). Each
# template is keyed by everything its nodes depend on (the URIs and Formats stored), so a copy
# is the tree the generic code builds; when the device's tree already holds part of the
# subtree, or the generic code raised an error, the caller takes the generic path instead.

# (names of the path from the root to the subtree's top, nodes in preorder as (node, position
# of its parent in this list, -1 for the first))
_Template = tuple[list[str], list[tuple[Node, int]]]
_TEMPLATES: dict[tuple, "_Template | None"] = {}
_MAX_TEMPLATES = 64


def _template(key: tuple, top: list[str], build: Callable[[DmTree], object]) -> "_Template | None":
    """Return the template of ``key``: what ``build`` makes below ``top`` on a scratch tree; None
    when ``build`` raised or made a node outside ``top``."""
    try:
        return _TEMPLATES[key]
    except KeyError:
        pass
    scratch = DmTree()
    try:
        build(scratch)
    except DmsimError:
        template = None
    else:
        template = _record(scratch, top)
    if len(_TEMPLATES) < _MAX_TEMPLATES:
        _TEMPLATES[key] = template
    return template


def _record(scratch: DmTree, top: list[str]) -> "_Template | None":
    node, order = scratch.root, []
    for depth, name in enumerate(top):  # the path to ``top``: one child each, nothing beside it
        if node.children is None or list(node.children) != [name]:
            return None
        node = node.children[name]
        order.append((node, depth - 1))
    pending = [(child, len(top) - 1) for child in reversed(list((node.children or {}).values()))]
    while pending:
        node, up = pending.pop()
        order.append((node, up))
        pending.extend((child, len(order) - 1) for child in reversed(list((node.children or {}).values())))
    return top, order


def _graft(tree: DmTree, template: "_Template | None", values: list) -> bool:
    """Copy ``template`` into ``tree`` with its leaf values taken from ``values``; return False
    (and change nothing) when there is no template or ``tree`` already has its top node, or a
    leaf where the template has an interior node."""
    if template is None:
        return False
    top, order = template
    node, depth = tree._walk(top)
    if depth == len(top) or node.children is None:
        return False
    made = {depth - 1: node}
    for i in range(depth, len(order)):
        t, up = order[i]
        parent = made[up]
        copy = Node.__new__(Node)
        copy.name, copy._parent, copy.format = t.name, weakref.ref(parent), t.format
        copy.value = None if t.value is None else values[t.value]
        copy.acl, copy.access, copy.secret, copy.type = t.acl, t.access, t.secret, t.type
        copy.children, copy.on_exec = (None if t.children is None else {}), None
        parent.children[t.name] = made[i] = copy
    return True


# --------------------------------------------------------------------------- DevInfo

_GET_ONLY = frozenset({GET})


def install_devinfo(tree: DmTree, devinfo: dict[str, str]) -> Node:
    """Return the ``./DevInfo`` node after storing ``devinfo`` (DevId, Man, Mod, DmV, Lang) in it.

    Every server may Get DevInfo; none may change it (AccessType Get, DM_StdObj §5.3).
    """
    keys = tuple(devinfo)
    template = _template(("DevInfo", keys), ["DevInfo"],
                         lambda scratch: _put_devinfo(scratch, {key: i for i, key in enumerate(keys)}))
    if _graft(tree, template, list(devinfo.values())):
        return tree.root.children["DevInfo"]
    return _put_devinfo(tree, devinfo)


def _put_devinfo(tree: DmTree, devinfo: dict) -> Node:
    """install_devinfo node by node (the generic path)."""
    node = tree.find(DEVINFO) or tree.create(DEVINFO, "node", acl=_DEVINFO_ACL, access=_GET_ONLY)
    for key, value in devinfo.items():
        tree.put(f"{DEVINFO}/{key}", "chr", value, access=_GET_ONLY)
    return node


# --------------------------------------------------------------------------- DMAcc

_SECRET_LEAVES = {"AAuthSecret", "ClientSecretKey", "ClientPublicKeyPSKIdentity", "ServerPublicKeyPSKIdentity"}


def is_secret_uri(uri: str) -> bool:
    """Return True for a DMAcc leaf whose DDF has no Get (AAuthSecret, the Auth/Bootstrap and
    Auth/Trsp keys).

    ProtocolError for a malformed URI.
    """
    names = split_uri(uri)
    return len(names) > 2 and names[0] == "DMAcc" and names[-1] in _SECRET_LEAVES


def apply_bootstrap(tree: DmTree, doc: Element) -> list[str]:
    """Store the ``./DMAcc`` items of a bootstrap document's Add; return the account node URIs.

    The device does this with its own authority (the bootstrap was verified before). Each new
    ``./DMAcc/<x>`` gets an ACL for its ServerID alone; secret leaves are stored without Get.
    ProtocolError for an item outside ./DMAcc, a bad Data or an account without ServerID.
    """
    accounts: list[str] = []
    for add in find_all(doc, "SyncBody/Add"):
        cmd_fmt = text(add, "Meta/Format")
        for item in add.findall("Item"):
            names = _store_item(tree, item, cmd_fmt)
            acc = f"{DMACC}/{names[1]}"
            if acc not in accounts:
                accounts.append(acc)
    _own_accounts(tree, accounts)
    return accounts


def _own_accounts(tree: DmTree, accounts: list[str]) -> None:
    """Give each ``./DMAcc/<x>`` of ``accounts`` the ACL of its ServerID alone, and its
    ``<x>/Auth/Bootstrap`` Get and Replace for it (§9.3.2); ProtocolError without a chr ServerID."""
    for acc in accounts:
        server_id = tree.find(f"{acc}/ServerID")
        if server_id is None or not server_id.value:
            raise ProtocolError(f"bootstrap: {acc}/ServerID missing")
        if not isinstance(server_id.value, str):
            raise ProtocolError(f"bootstrap: {acc}/ServerID must be chr, not {server_id.format}")
        tree.find(acc).acl = acl_for(server_id.value)
        keys = tree.find(f"{acc}/{AUTH_BOOTSTRAP}")
        if keys is not None:
            keys.acl = acl_for(server_id.value, (GET, REPLACE))


def _store_item(tree: DmTree, item: Element, cmd_fmt: str | None = None) -> list[str]:
    """Store one bootstrap Item with the device's authority; return its URI's node names."""
    uri = need_text(item, "Target/LocURI", "bootstrap Item")
    names = split_uri(uri)
    if len(names) < 2 or names[0] != "DMAcc":
        raise ProtocolError(f"bootstrap item {uri!r} is outside {DMACC}")
    fmt = text(item, "Meta/Format") or cmd_fmt or "chr"
    tree.put(uri, fmt, item_value(item, fmt), secret=is_secret_uri(uri))
    return names


def item_value(item: Element, fmt: str) -> str | bytes | None:
    """Return the value an Item's Data carries in Format ``fmt`` (ProtocolError if it does not fit)."""
    data = item.find("Data")
    if data is None:
        return None if fmt == "node" else decode_value(fmt, "")
    raw = opaque_bytes(data)
    if raw is None:
        return decode_value(fmt, data.text or "")
    if fmt != "bin":
        raise ProtocolError(f"Data of Format {fmt} is not UTF-8 text")
    return raw


def install_account(tree: DmTree, account: DmAccount) -> str:
    """Return the URI of the ``./DMAcc/<x>`` node after installing ``account`` in ``tree``: the
    nodes its bootstrap document carries (:func:`account.account_leaves`), ``<x>/Auth/Trsp`` and
    ``<x>/Auth/Bootstrap`` included when the account has them, stored and given the ACLs as
    :func:`apply_bootstrap` stores that document, without building it."""
    leaves = account_leaves(account)
    top = split_uri(leaves[0][0])[:2]  # DMAcc, <x>: every leaf is below it
    shape = tuple((uri, fmt) for uri, fmt, _ in leaves)
    template = _template(("DMAcc", shape), top,
                         lambda scratch: _put_leaves(scratch, [(uri, fmt, i) for i, (uri, fmt) in enumerate(shape)]))
    if not _graft(tree, template, [value for _, _, value in leaves]):
        _put_leaves(tree, leaves)
    acc = f"{DMACC}/{top[1]}"
    _own_accounts(tree, [acc])
    return acc


def _put_leaves(tree: DmTree, leaves: list) -> None:
    """Store (URI, Format, value) leaves as a bootstrap's Items are stored (the generic path)."""
    for uri, fmt, value in leaves:
        tree.put(uri, fmt, value, secret=is_secret_uri(uri))


def find_account(tree: DmTree, server_id: str) -> str | None:
    """Return the URI of the ``./DMAcc/<x>`` whose ServerID is ``server_id``, or None."""
    dmacc = tree.find(DMACC)
    for child in (dmacc.children or {}).values() if dmacc is not None else ():
        sid = (child.children or {}).get("ServerID")
        if sid is not None and sid.value == server_id:
            return child.uri
    return None


def account_from_tree(tree: DmTree, server_id: str) -> DmAccount:
    """Return the DmAccount stored for ``server_id``; ProtocolError if it is missing or incomplete."""
    acc = find_account(tree, server_id)
    if acc is None:
        raise ProtocolError(f"no DMAcc account with ServerID {server_id!r}")
    items = []
    for node in tree.walk(tree.find(acc)):
        if not node.interior:
            fmt, data = wire_value(node)
            items.append(E("Item", E("Target", E("LocURI", node.uri)), E("Meta", E("Format", fmt)), E("Data", data)))
    return account_from_bootstrap(E("SyncML", E("SyncBody", E("Add", *items))))


def tls_keys_from_tree(tree: DmTree, server_id: str, subtree: str = AUTH_BOOTSTRAP) -> TlsKeys | None:
    """Return the ``<x>/Auth/Bootstrap`` (or ``subtree``, e.g. ``Auth/Trsp``) keys of
    ``server_id``'s account, or None if it has none."""
    acc = find_account(tree, server_id)
    base = tree.find(f"{acc}/{subtree}") if acc is not None else None
    if base is None:
        return None
    return tls_keys_of({name: node.value for name, node in (base.children or {}).items()}, base.uri, subtree)
