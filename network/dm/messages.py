"""SyncML DM message pieces shared by the DM client and server (OMA SyncML RepPro 1.2 and
OMA-TS-DM_Security-V1_3 §5.4.1 for Cred, §5.4.3/§5.5 for Chal/NextNonce).

A message is an element tree; these functions build and read its parts so that the client and
server cores stay about the protocol, not the tree. ``encode``/``decode`` turn a message into
the bytes of its media type (WBXML or XML); :func:`pack` fills one message of a multi-message
package up to the peer's MaxMsgSize (OMA-TS-DM_Protocol-V1_2 §8.2 "Multiple messages in package").

Choices where the specs are silent (used by both cores):

* a reply uses the media type of the request it answers (:func:`reply_type`): a client posting
  ``application/vnd.syncml+wbxml`` gets that type back, since it is the one it parses;
* MaxMsgSize counts the octets of the encoded body (the transport's headers are not counted);
  an item larger than the peer's MaxMsgSize on its own still goes alone in one message (Large
  Object delivery, MoreData, is not implemented);
* CmdIDs are numbered 1, 2, ... in each message as it is packed;
* the builders below make the tree :func:`tree.E` would make, with ``SubElement`` (one C call
  per element: a session builds some 150 elements), and the readers follow the paths
  :func:`tree.text` follows, first match in document order.
* the side receiving a message that is neither Final nor an Alert 1222 (the peer is in the middle
  of its package) answers with its Statuses and an Alert 1222 "next message", without Final; a
  message carrying Alert 1222 asks the other side to go on with its own package.
"""
from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from xml.etree.ElementTree import Element, SubElement

from dmsim.network.dm import syncml_xml, wbxml
from dmsim.network.dm.auth import Credential
from dmsim.network.dm.tree import find_all, find_path, need_text, text
from dmsim.base.errors import ProtocolError

DM_WBXML = "application/vnd.syncml.dm+wbxml"
DM_XML = "application/vnd.syncml.dm+xml"
# Clients in the field also post the SyncML DS media types (libdmclient does); servers accept them.
_WBXML_TYPES = {DM_WBXML, "application/vnd.syncml+wbxml"}
_XML_TYPES = {DM_XML, "application/vnd.syncml+xml"}

# Status codes used by the session (OMA SyncML RepPro 1.2 §10; DM_Security §5.4).
OK = 200
AUTH_ACCEPTED = 212
UNAUTHORIZED = 401
MISSING_CREDENTIALS = 407

ALERT_CLIENT_INITIATED = "1201"
ALERT_SERVER_INITIATED = "1200"
ALERT_NEXT_MESSAGE = "1222"


def encode(msg: Element, content_type: str = DM_WBXML) -> bytes:
    """Return ``msg`` as bytes of ``content_type`` (WBXML or XML)."""
    base = content_type.split(";")[0].strip().lower()
    if base in _WBXML_TYPES:
        return wbxml.encode(msg)
    if base in _XML_TYPES:
        return syncml_xml.to_xml(msg)
    raise ProtocolError(f"unsupported SyncML media type {content_type!r}")


def reply_type(content_type: str) -> str:
    """Return the media type to answer a request of ``content_type`` with (its base type,
    lower-cased); ProtocolError for a type that is not SyncML XML or WBXML."""
    base = (content_type or "").split(";")[0].strip().lower()
    if base in _WBXML_TYPES or base in _XML_TYPES:
        return base
    raise ProtocolError(f"unsupported SyncML media type {content_type!r}")


def decode(body: bytes, content_type: str) -> Element:
    """Return the message tree of ``body``; DecodeError on malformed bytes, ProtocolError on type."""
    base = (content_type or "").split(";")[0].strip().lower()
    if base in _WBXML_TYPES:
        msg = wbxml.decode(body)
    elif base in _XML_TYPES:
        msg = syncml_xml.from_xml(body)
    else:
        raise ProtocolError(f"unsupported SyncML media type {content_type!r}")
    if msg.tag != "SyncML" or msg.find("SyncHdr") is None or msg.find("SyncBody") is None:
        raise ProtocolError("message is not a SyncML message with SyncHdr and SyncBody")
    return msg


@dataclass(frozen=True)
class Header:
    """The SyncHdr fields a DM session uses."""

    session_id: str
    msg_id: str
    target: str
    source: str
    loc_name: str | None
    cred: Credential | None
    max_msg_size: int | None = None


def append_leaf(parent: Element, tag: str, value: "str | int | None" = None) -> Element:
    """Append and return ``<tag>`` with ``value`` as text: ``parent.append(E(tag, value))``."""
    elem = SubElement(parent, tag)
    if value is not None:
        elem.text = value if value.__class__ is str else str(value)
    return elem


def header(session_id: str, msg_id: int, target: str, source: str, *, cred: Credential | None = None,
           loc_name: str | None = None, max_msg_size: int | None = None) -> Element:
    """Return a SyncHdr element (SyncML DM 1.2)."""
    hdr = Element("SyncHdr")
    append_leaf(hdr, "VerDTD", "1.2")
    append_leaf(hdr, "VerProto", "DM/1.2")
    append_leaf(hdr, "SessionID", session_id)
    append_leaf(hdr, "MsgID", msg_id)
    append_leaf(SubElement(hdr, "Target"), "LocURI", target)
    src = SubElement(hdr, "Source")
    append_leaf(src, "LocURI", source)
    if loc_name:
        append_leaf(src, "LocName", loc_name)
    if cred:
        hdr.append(cred_element(cred))
    if max_msg_size:
        append_leaf(SubElement(hdr, "Meta"), "MaxMsgSize", max_msg_size)
    return hdr


def read_header(msg: Element) -> Header:
    """Return the SyncHdr fields of ``msg``; ProtocolError when one is missing."""
    hdr = msg.find("SyncHdr")
    cred = None
    if hdr.find("Cred") is not None:
        cred = Credential(text(hdr, "Cred/Meta/Type", "") or "", text(hdr, "Cred/Data", "") or "")
    size = _text_of(_below(hdr, "Meta", "MaxMsgSize"))
    if size is not None and not (size.isascii() and size.isdigit() and len(size) <= 9 and int(size) > 0):
        raise ProtocolError(f"SyncHdr: MaxMsgSize {size!r} is not a positive integer")
    return Header(session_id=_need(hdr.find("SessionID"), "SessionID"), msg_id=_need(hdr.find("MsgID"), "MsgID"),
                  target=_need(_below(hdr, "Target", "LocURI"), "Target/LocURI"),
                  source=_need(_below(hdr, "Source", "LocURI"), "Source/LocURI"),
                  loc_name=_text_of(_below(hdr, "Source", "LocName")), cred=cred,
                  max_msg_size=int(size) if size else None)


def _below(parent: Element, outer: str, inner: str) -> Element | None:
    """Return ``find_path(parent, outer + "/" + inner)``: the first ``inner`` child of the
    ``outer`` children of ``parent``, in document order (an ``outer`` without one is skipped)."""
    for child in parent.findall(outer):
        found = child.find(inner)
        if found is not None:
            return found
    return None


def _text_of(elem: Element | None) -> str | None:
    """Return what :func:`tree.text` returns for a path that found ``elem``."""
    return None if elem is None else (elem.text or "").strip()


def _need(elem: Element | None, path: str) -> str:
    """Return the text of ``elem``, found at ``path`` of SyncHdr; ProtocolError as :func:`tree.need_text`."""
    if elem is None:
        raise ProtocolError(f"SyncHdr: missing <{path}>")
    return (elem.text or "").strip()


def cred_element(cred: Credential) -> Element:
    """Return a Cred element: Meta/Type is the scheme, Meta/Format b64 (§5.4.1)."""
    elem = Element("Cred")
    meta = SubElement(elem, "Meta")
    append_leaf(meta, "Format", "b64")
    append_leaf(meta, "Type", cred.scheme)
    append_leaf(elem, "Data", cred.data)
    return elem


def chal(scheme: str, next_nonce: bytes) -> Element:
    """Return a Chal element asking for ``scheme`` with a NextNonce (§5.4.3, §5.5)."""
    elem = Element("Chal")
    meta = SubElement(elem, "Meta")
    append_leaf(meta, "Type", scheme)
    append_leaf(meta, "Format", "b64")
    append_leaf(meta, "NextNonce", base64.b64encode(next_nonce).decode("ascii"))
    return elem


def status(cmd_id: int, msg_ref: str, cmd_ref: str, cmd: str, code: int, *, challenge: Element | None = None,
           target_ref: str | None = None) -> Element:
    """Return a Status element for command ``cmd_ref`` of message ``msg_ref``."""
    elem = Element("Status")
    append_leaf(elem, "CmdID", cmd_id)
    append_leaf(elem, "MsgRef", msg_ref)
    append_leaf(elem, "CmdRef", cmd_ref)
    append_leaf(elem, "Cmd", cmd)
    if target_ref:
        append_leaf(elem, "TargetRef", target_ref)
    if challenge is not None:
        elem.append(challenge)
    append_leaf(elem, "Data", code)
    return elem


@dataclass(frozen=True)
class HeaderStatus:
    """The peer's verdict on our SyncHdr: its code and the challenge it carried, if any."""

    code: int
    chal_scheme: str | None
    next_nonce: bytes | None


def header_status(msg: Element) -> HeaderStatus | None:
    """Return the Status the peer gave our SyncHdr (CmdRef 0), or None if there is none."""
    for st in find_all(msg, "SyncBody/Status"):
        if text(st, "Cmd") == "SyncHdr":
            try:
                code = int(need_text(st, "Data", "Status"))
            except ValueError as exc:
                raise ProtocolError(f"SyncHdr Status code is not a number: {exc}") from exc
            if st.find("Chal") is None:  # the usual case: every Chal/Meta/... path is then empty
                return HeaderStatus(code, None, None)
            raw = text(st, "Chal/Meta/NextNonce")
            nonce = None if raw is None else nonce_octets(raw, text(st, "Chal/Meta/Format"))
            return HeaderStatus(code, text(st, "Chal/Meta/Type"), nonce)
    return None


def nonce_octets(raw: str, fmt: str | None) -> bytes:
    """Return the nonce octets a NextNonce carries (the octets the digest of §5.4.2 uses).

    Interop choice (the specs only show b64): a nonce is opaque; Format ``b64`` (or no Format)
    whose text is valid base64 gives the decoded octets; Format ``chr``, or text that is not
    base64 (some DM 1.2 peers send the AAuthData text as it is), gives the UTF-8 octets of the
    text. The peer computing the digest over those same octets is what makes it consistent.
    """
    if (fmt or "b64").strip().lower() == "b64":
        try:
            return base64.b64decode(raw.strip(), validate=True)
        except (binascii.Error, ValueError):
            pass
    return raw.encode("utf-8")


def body_commands(msg: Element) -> list[Element]:
    """Return the commands of SyncBody other than Status and Final."""
    return [c for c in msg.find("SyncBody") if c.tag not in ("Status", "Final")]


def message(hdr: Element, *commands: Element, final: bool = True) -> Element:
    """Return a SyncML message with ``hdr`` and ``commands`` in its body."""
    root = Element("SyncML")
    root.append(hdr)
    body = SubElement(root, "SyncBody")
    body.extend([c for c in commands if c is not None])
    if final:
        SubElement(body, "Final")
    return root


def is_final(msg: Element) -> bool:
    """Return True when ``msg`` is the last message of its package (SyncBody has Final)."""
    return find_path(msg, "SyncBody/Final") is not None


def is_next_message(cmd: Element) -> bool:
    """Return True for an Alert 1222 "next message" command."""
    return cmd.tag == "Alert" and text(cmd, "Data") == ALERT_NEXT_MESSAGE


def peer_has_more(msg: Element) -> bool:
    """Return True when the sender of ``msg`` is in the middle of its package: no Final, and
    ``msg`` is not itself an Alert 1222 asking for our next message."""
    return not is_final(msg) and not any(is_next_message(c) for c in body_commands(msg))


def alert(code: str) -> Element:
    """Return an Alert command with ``code`` (CmdID set when packed)."""
    elem = Element("Alert")
    append_leaf(elem, "CmdID", 0)
    append_leaf(elem, "Data", code)
    return elem


def pack(hdr: Element, lead: list[Element], queue: list[Element], *, content_type: str,
         max_size: int | None, ask_next: bool) -> tuple[bytes, int, bool]:
    """Return (encoded message, how many ``queue`` items it carries, whether it has Final).

    The body is ``lead`` (the SyncHdr Status), then the longest prefix of ``queue`` that keeps
    the encoded message within ``max_size`` octets (at least one item; all of them when
    ``max_size`` is None), then an Alert 1222 when ``ask_next``. Final is set when the whole
    queue went in and ``ask_next`` is False. CmdIDs of the top-level commands are renumbered.
    """
    tail = [alert(ALERT_NEXT_MESSAGE)] if ask_next else []

    def build(count: int, final: bool) -> bytes:
        items = lead + queue[:count] + tail
        for number, item in enumerate(items, start=1):
            cmd_id = item.find("CmdID")
            if cmd_id is not None:
                cmd_id.text = str(number)
        return encode(message(hdr, *items, final=final), content_type)

    body = build(len(queue), not ask_next)
    if max_size is None or len(body) <= max_size or len(queue) <= 1:
        return body, len(queue), not ask_next
    lo, hi = 1, len(queue) - 1  # the largest prefix that fits, found by bisection
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if len(build(mid, False)) <= max_size:
            lo = mid
        else:
            hi = mid - 1
    return build(lo, False), lo, False


