"""A DM server's management commands run on the client's tree: Get, Replace, Add, Delete, Exec
(OMA-TS-DM_Protocol-V1_2 §6.5-§6.6) under the ACL rules of OMA-TS-DM_TND-V1_2 §7.7.1 that keep
one server's data private from another (OMA-TS-DM_Security §5.9). Status codes are those of
OMA-TS-SyncML_RepPro-V1_2 §10.

:func:`handle_command` takes one command element of a server message and returns the Status
(and Results) elements to answer it with; the item functions (:func:`get`, :func:`replace`, ...)
take plain arguments and return an :class:`Outcome`.

Rules, in the order they are checked:

* a malformed URI is 400; a missing node is 404, but 425 when the server may not Get the nearest
  existing ancestor, so that the absence of a node below another server's data does not leak;
* the ACL in force (own or inherited) must grant the command: else 425 Permission denied;
* the node's AccessType must allow the command: else 405 Command not allowed. Secret nodes
  (AAuthSecret, ClientSecretKey, the PSK identities, any node marked secret, also when a server
  Adds them) have no Get, so Get of a secret is 405 for the server that owns it and 425 for any
  other; neither its value nor its Size is ever returned;
* Add needs Add in the ACL and AccessType of the deepest existing ancestor (missing interior
  ancestors are created); an existing node is 418; a new node the server could not Replace
  through inheritance gets the ACL ``Add=S&Delete=S&Get=S&Replace=S`` (TND §7.7.1);
* Replace of ``?prop=ACL`` needs Replace on the parent, or on the node itself for an interior
  node (TND §7.7.1.3); the root's ACL keeps ``Add=*`` and is never empty (405 otherwise);
* Get supports ``?prop=`` ACL, Format, Name, Type and Size; other properties and ``?list=`` are
  406, as are commands other than the five and Sequence (Atomic and Copy are not supported);
* Data that does not fit its Format is 400, an unknown Format 415; binary values go out as b64.
"""
from __future__ import annotations

from dataclasses import dataclass
from xml.etree.ElementTree import Element, SubElement

from dmsim.devices.dm_tree import (ADD, COMMANDS, DELETE, EXEC, FORMATS, GET, REPLACE, WILDCARD, Acl, DmTree, Node,
                                   acl_for, decode_value, is_secret_uri, item_value, parse_acl, wire_value)
from dmsim.network.dm import messages as m
from dmsim.network.dm.tree import text
from dmsim.base.errors import DmsimError, ProtocolError

OK = 200
BAD_REQUEST = 400
NOT_FOUND = 404
COMMAND_NOT_ALLOWED = 405
OPTIONAL_FEATURE_NOT_SUPPORTED = 406
UNSUPPORTED_FORMAT = 415
ALREADY_EXISTS = 418
PERMISSION_DENIED = 425
COMMAND_FAILED = 500

_GET_PROPS = ("ACL", "Format", "Name", "Type", "Size")


@dataclass(frozen=True)
class Outcome:
    """The status of one item, and for a successful Get the Item for the Results."""

    code: int
    result: Element | None = None


def _target(tree: DmTree, uri: str, server_id: str, command: str) -> tuple[Node | None, str | None, int]:
    """Return (node, ?prop name or None, 0) or (None, None, status) for a refused target."""
    path, _, query = uri.partition("?")
    prop = None
    if query:
        key, _, prop = query.partition("=")
        if key != "prop" or not prop:
            return None, None, OPTIONAL_FEATURE_NOT_SUPPORTED
    try:
        node = tree.find(path)
        if node is None:
            ancestor, _ = tree.deepest(path)
            return None, None, NOT_FOUND if tree.permits(ancestor, GET, server_id) else PERMISSION_DENIED
    except ProtocolError:
        return None, None, BAD_REQUEST
    if prop is None and not tree.permits(node, command, server_id):
        return None, None, PERMISSION_DENIED
    return node, prop, 0


def _result(uri: str, fmt: str, data: str, mime_type: str = "") -> Element:
    item = Element("Item")
    m.append_leaf(SubElement(item, "Source"), "LocURI", uri)
    meta = SubElement(item, "Meta")
    m.append_leaf(meta, "Format", fmt)
    if mime_type:
        m.append_leaf(meta, "Type", mime_type)
    m.append_leaf(item, "Data", data)
    return item


def get(tree: DmTree, uri: str, server_id: str) -> Outcome:
    """Return the Outcome of ``server_id``'s Get of ``uri``: 200 with the Results Item, or the refusal.

    A leaf gives its value, an interior node the ``/``-separated names of its children (Format
    node, TND §6), a ``?prop=`` URI the property. A secret is refused with 405 (owner) or 425.
    """
    node, prop, code = _target(tree, uri, server_id, GET)
    if node is None:
        return Outcome(code)
    if prop is not None:
        if not tree.permits(node, GET, server_id):
            return Outcome(PERMISSION_DENIED)
        if prop not in _GET_PROPS or (prop == "Size" and node.interior):
            return Outcome(OPTIONAL_FEATURE_NOT_SUPPORTED)
        if prop == "Size" and node.secret:
            return Outcome(COMMAND_NOT_ALLOWED)  # a secret's length is part of the secret
        return Outcome(OK, _result(uri, "chr", _property(node, prop)))
    if GET not in node.access:
        return Outcome(COMMAND_NOT_ALLOWED)
    if node.interior:
        return Outcome(OK, _result(uri, "node", "/".join(node.children)))
    fmt, data = wire_value(node)
    return Outcome(OK, _result(uri, fmt, data, node.type))


def _property(node: Node, prop: str) -> str:
    if prop == "ACL":
        return str(node.acl)
    if prop == "Format":
        return node.format
    if prop == "Name":
        return node.name
    if prop == "Type":
        return node.type
    value = node.value or ""
    return str(len(value if isinstance(value, bytes) else value.encode()))


def replace(tree: DmTree, uri: str, server_id: str, data: str = "", fmt: str = "chr", *, mime_type: str = "",
            item: Element | None = None) -> Outcome:
    """Return the Outcome of ``server_id``'s Replace of ``uri`` with ``data`` (wire form) in Format ``fmt``.

    With ``item`` the value is that Item's Data instead (which may be WBXML OPAQUE octets). A
    ``?prop=ACL`` URI replaces the node's ACL with ``data``.
    """
    node, prop, code = _target(tree, uri, server_id, REPLACE)
    if node is None:
        return Outcome(code)
    if prop is not None:
        if prop != "ACL":
            return Outcome(OPTIONAL_FEATURE_NOT_SUPPORTED)
        return _replace_acl(tree, node, server_id, text(item, "Data", "") if item is not None else data)
    if REPLACE not in node.access or node.interior or fmt == "node":
        return Outcome(COMMAND_NOT_ALLOWED)
    code, value = _value(fmt, data, item)
    if code == OK:
        node.format, node.value = fmt, value
        if mime_type:
            node.type = mime_type
    return Outcome(code)


def _value(fmt: str, data: str, item: Element | None) -> tuple[int, str | bytes | None]:
    if fmt not in FORMATS:
        return UNSUPPORTED_FORMAT, None
    try:
        return OK, item_value(item, fmt) if item is not None else decode_value(fmt, data)
    except ProtocolError:
        return BAD_REQUEST, None


def _replace_acl(tree: DmTree, node: Node, server_id: str, data: str) -> Outcome:
    try:
        acl = parse_acl(data)
    except DmsimError:
        return Outcome(BAD_REQUEST)
    if node.parent is None:
        if not tree.permits(node, REPLACE, server_id):
            return Outcome(PERMISSION_DENIED)
        if acl.ids(ADD) != (WILDCARD,):
            return Outcome(COMMAND_NOT_ALLOWED)  # TND §7.7.1.2: the root keeps Add=* (and is never empty)
    elif not (tree.permits(node.parent, REPLACE, server_id)
              or (node.interior and tree.permits(node, REPLACE, server_id))):
        return Outcome(PERMISSION_DENIED)
    node.acl = acl
    return Outcome(OK)


def add(tree: DmTree, uri: str, server_id: str, data: str = "", fmt: str = "chr", *, mime_type: str = "",
        item: Element | None = None) -> Outcome:
    """Return the Outcome of ``server_id``'s Add of ``uri`` (an interior node when ``fmt`` is node).

    ``data`` is the value in wire form; with ``item`` it is that Item's Data instead.
    """
    if "?" in uri:
        return Outcome(COMMAND_NOT_ALLOWED)  # TND §7.5: properties do not support Add
    try:
        parent, missing = tree.deepest(uri)
    except ProtocolError:
        return Outcome(BAD_REQUEST)
    if not missing:  # ``parent`` is the existing node itself
        return Outcome(ALREADY_EXISTS if tree.permits(parent.parent or parent, ADD, server_id) else PERMISSION_DENIED)
    if not tree.permits(parent, ADD, server_id):
        return Outcome(PERMISSION_DENIED)
    if parent.children is None or ADD not in parent.access:
        return Outcome(COMMAND_NOT_ALLOWED)
    code, value = _value(fmt, data, item)
    if code != OK:
        return Outcome(code)
    node = tree.create(uri, fmt, value, mime_type=mime_type, secret=is_secret_uri(uri))
    if not tree.permits(node, REPLACE, server_id):
        top = node
        while top.parent is not parent:
            top = top.parent
        top.acl = _owner_acl(server_id)
    return Outcome(OK)


def _owner_acl(server_id: str) -> Acl:
    # A server id that cannot be written in an ACL (white space, '&', ...) cannot own a node:
    # the new node then keeps the inherited ACL.
    try:
        return acl_for(server_id)
    except DmsimError:
        return Acl()


def delete(tree: DmTree, uri: str, server_id: str) -> Outcome:
    """Return the Outcome of ``server_id``'s Delete of ``uri`` (the subtree goes with it, TND §6)."""
    if "?" in uri:
        return Outcome(COMMAND_NOT_ALLOWED)
    node, _, code = _target(tree, uri, server_id, DELETE)
    if node is None:
        return Outcome(code)
    if node.parent is None or DELETE not in node.access:
        return Outcome(COMMAND_NOT_ALLOWED)
    tree.remove(node)
    return Outcome(OK)


def execute(tree: DmTree, uri: str, server_id: str, data: str = "") -> Outcome:
    """Return the Outcome of ``server_id``'s Exec of ``uri``: the status its exec handler returns.

    A handler raising a DmsimError gives 500 Command failed.
    """
    if "?" in uri:
        return Outcome(COMMAND_NOT_ALLOWED)
    node, _, code = _target(tree, uri, server_id, EXEC)
    if node is None:
        return Outcome(code)
    if EXEC not in node.access or node.on_exec is None:
        return Outcome(COMMAND_NOT_ALLOWED)
    try:
        return Outcome(node.on_exec(node.uri, server_id, data))
    except DmsimError:
        return Outcome(COMMAND_FAILED)


def run_item(tree: DmTree, command: str, item: Element, server_id: str, *, fmt: str | None = None,
             mime_type: str | None = None) -> Outcome:
    """Return the Outcome of one Item of ``command``; ``fmt``/``mime_type`` are the command's Meta."""
    uri = text(item, "Target/LocURI")
    if not uri:
        return Outcome(BAD_REQUEST)
    fmt = text(item, "Meta/Format") or fmt or "chr"
    mime_type = text(item, "Meta/Type") or mime_type or ""
    if command == GET:
        return get(tree, uri, server_id)
    if command == DELETE:
        return delete(tree, uri, server_id)
    if command == EXEC:
        return execute(tree, uri, server_id, text(item, "Data", "") or "")
    run = add if command == ADD else replace
    return run(tree, uri, server_id, fmt=fmt, mime_type=mime_type, item=item)


def _results(cmd_id: int, msg_ref: str, ref: str, items: list[Element]) -> Element:
    """Return the Results of a Get (SyncML RepPro Results): its CmdID, the Get's MsgRef and CmdRef, the Items."""
    results = Element("Results")
    m.append_leaf(results, "CmdID", cmd_id)
    m.append_leaf(results, "MsgRef", msg_ref)
    m.append_leaf(results, "CmdRef", ref)
    results.extend(items)
    return results


def handle_command(tree: DmTree, cmd: Element, server_id: str, msg_ref: str, cmd_id: int) -> tuple[list[Element], int]:
    """Return the Status elements (one per Item, with TargetRef) and the Results element of a Get
    with at least one item read, numbered from ``cmd_id``, and the next free CmdID.

    ``cmd`` is a command element of a server message's SyncBody and ``server_id`` the ServerID
    of the authenticated server that sent it. A Sequence answers with its own Status and those
    of its commands; a command with NoResp gets no Status.
    """
    ref = text(cmd, "CmdID", "0") or "0"
    no_resp = cmd.find("NoResp") is not None
    out: list[Element] = []
    if cmd.tag == "Sequence":
        if not no_resp:
            out.append(m.status(cmd_id, msg_ref, ref, cmd.tag, OK))
            cmd_id += 1
        for sub in cmd:
            if sub.tag not in ("CmdID", "NoResp", "Meta"):
                sub_out, cmd_id = handle_command(tree, sub, server_id, msg_ref, cmd_id)
                out += sub_out
        return out, cmd_id
    items = cmd.findall("Item")
    if cmd.tag not in COMMANDS or not items:
        code = BAD_REQUEST if cmd.tag in COMMANDS else OPTIONAL_FEATURE_NOT_SUPPORTED
        return ([] if no_resp else [m.status(cmd_id, msg_ref, ref, cmd.tag, code)]), cmd_id + (not no_resp)
    fmt, mime_type = text(cmd, "Meta/Format"), text(cmd, "Meta/Type")
    results: list[Element] = []
    for item in items:
        outcome = run_item(tree, cmd.tag, item, server_id, fmt=fmt, mime_type=mime_type)
        if not no_resp:
            out.append(m.status(cmd_id, msg_ref, ref, cmd.tag, outcome.code, target_ref=text(item, "Target/LocURI")))
            cmd_id += 1
        if outcome.result is not None:
            results.append(outcome.result)
    if results:
        out.append(_results(cmd_id, msg_ref, ref, results))
        cmd_id += 1
    return out, cmd_id
