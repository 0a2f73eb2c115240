"""Smartcard bootstrap at power-on (OMA-TS-DM_Security seed 001 §8.1 and Appendix H).

At power-on the DM client reads the DM Bootstrap stored in the card's PKCS#15 application inside
a GlobalPlatform SCP03 channel (Appendix H: select PKCS#15, INITIALIZE UPDATE / EXTERNAL
AUTHENTICATE, then EF_ODF -> EF_DODF -> the bootstrap file, every command wrapped; the card
side is cards/gp_app.py, the host side devices/card_host.py), applies it, and removes the
accounts of the DM servers previously bootstrapped from the card whose data is no longer on it
(§8.1, second paragraph). Sans-IO over any CardLink.

Choices where the specs are silent (documented here once):

- Authorised servers: only the ``./DMAcc/<x>`` accounts whose ServerID the device's policy lists
  are installed; the others are refused and named in the report. A card-installed account
  whose server is no longer authorised is removed like one whose data left the card.
- Required security level: Appendix H Note 2 names P1 = 33 (C-MAC, C-DECRYPTION, R-MAC,
  R-ENCRYPTION); a request for a level lacking any bit of ``required_level`` (33 by default)
  is refused before any APDU is sent, as is a card that cannot open the channel at that level.
  ``scp03_keys=None`` reads in the clear and is accepted only with ``required_level=0``.
- Origin: the accounts installed from the card are remembered in the device-private interior
  node ``./Vendor/dmsim/CardBootstrap`` (``VENDOR_STORE``): one child per account, named like
  the account's ``<x>``, with leaves ``ServerID`` (chr) and ``Digest`` (bin, SHA-256 of the
  account's items as the card carries them). These nodes have an empty AccessType, so no
  server can Get, Add, Replace or Delete them; only the device changes them. Accounts
  installed by other means (WAP Push bootstrap, a server's Add) are never listed there and are
  never removed by this module; :func:`forget_card_origin` lets another bootstrap path claim an
  account the card installed earlier.
- Applying at every power-on: an account whose card data is unchanged (same digest) and still
  in the tree is left as it is, so what DM sessions changed since (AAuthData from NextNonce, a
  password Replace) survives a restart. Changed card data replaces the whole account.
- The card's copy of a server wins over another copy of the same ServerID (e.g. WAP-pushed at
  another ``<x>``), which is removed. A card account whose ``<x>`` node holds another server's
  account not installed from the card is refused (``conflict``), leaving that account alone.
- The document: XML text when its first byte (after a UTF-8 BOM and white space) is ``<``,
  WBXML otherwise; trailing 00/FF bytes (padding of a fixed-size EF) are dropped first, and
  the BOM and leading white space of XML (they would hide its declaration). Only
  the Items of its Add commands are read; each must lie under ``./DMAcc/<x>``, each account
  needs a ServerID, and two accounts may not share one, or the whole document is malformed.
- A card with no PKCS#15 application (SELECT answers 6A82) holds no server any more: the
  accounts it installed earlier are removed (§8.1: "MUST be removed"), the report says
  ``no_pkcs15_application`` and lists them in ``removed``; other accounts stay.
- Any other failure to read or decode (SCP03 authentication, a broken secure channel, a card
  error, a lost link, a malformed document) leaves the tree unchanged: the report says why. A
  transient failure must not cost the device its servers; the next power-on decides.
"""
from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Collection
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element

from dmsim.cards.link import CardLink
from dmsim.cards.scp03 import SECURITY_LEVELS, Scp03Keys
from dmsim.cards.uicc_files import PKCS15_AID
from dmsim.devices.card_host import read_dm_bootstrap
from dmsim.devices.dm_tree import DmTree, apply_bootstrap, find_account, split_uri
from dmsim.network.dm import syncml_xml, wbxml
from dmsim.network.dm.account import DMACC
from dmsim.network.dm.tree import E, need_text, text
from dmsim.base.errors import CardError, CardLinkError, DecodeError, DmsimError, ProtocolError

VENDOR_STORE = "./Vendor/dmsim/CardBootstrap"
REQUIRED_LEVEL = 0x33            # Appendix H Note 2: C-DEC, R-ENC, C-MAC, R-MAC
NO_ACCESS: frozenset[str] = frozenset()
SW_NOT_FOUND = 0x6A82
SW_OK = 0x9000
SW_INTEGRITY = (0x6982, 0x6988)  # the card refused a C-MAC, or C-DECRYPTION padding
_AUTH_COMMANDS = ("INITIALIZE UPDATE", "EXTERNAL AUTHENTICATE")


class Reason(enum.Enum):
    """Why a power-on bootstrap failed, or why one account was refused or removed."""

    NO_PKCS15 = "no_pkcs15_application"
    SCP03_AUTHENTICATION = "scp03_authentication_failed"
    SECURITY_LEVEL = "security_level_too_low"
    CHANNEL_INTEGRITY = "secure_channel_integrity"   # a wrapped APDU was altered on the way
    CARD_ERROR = "card_error"
    CARD_LINK = "card_link"
    MALFORMED = "malformed_bootstrap"
    NOT_AUTHORISED = "server_not_authorised"
    CONFLICT = "conflict"
    LEFT_CARD = "left_the_card"


@dataclass(frozen=True)
class AccountNote:
    """One account the report names: its ServerID, ``./DMAcc/<x>`` URI and why."""

    server_id: str
    account: str
    reason: Reason
    detail: str = ""

    def to_dict(self) -> dict:
        """Return the note with the reason's value."""
        out = {"server_id": self.server_id, "account": self.account, "reason": self.reason.value}
        return out | ({"detail": self.detail} if self.detail else {})


@dataclass(frozen=True)
class BootstrapReport:
    """The outcome of one power-on: ``failure`` None when the card's data was read and applied.

    ``installed`` (new or changed) and ``unchanged`` hold ServerIDs; ``refused`` and ``removed``
    hold AccountNotes; ``security_level`` is the SCP03 level the data was read at (0 in clear).
    """

    failure: Reason | None = None
    detail: str = ""
    security_level: int = 0
    installed: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    refused: tuple[AccountNote, ...] = ()
    removed: tuple[AccountNote, ...] = ()

    @property
    def ok(self) -> bool:
        """Return True when the card's bootstrap was read and applied (refusals aside)."""
        return self.failure is None

    @property
    def changed(self) -> bool:
        """Return True if the tree changed (an account installed or removed)."""
        return bool(self.installed or self.removed)

    def to_dict(self) -> dict:
        """Return the report as plain data (reasons by value, level as two hex digits)."""
        return {"ok": self.ok, "failure": self.failure.value if self.failure else None, "detail": self.detail,
                "security_level": f"{self.security_level:02x}", "installed": list(self.installed),
                "unchanged": list(self.unchanged), "refused": [n.to_dict() for n in self.refused],
                "removed": [n.to_dict() for n in self.removed]}


@dataclass(frozen=True)
class CardAccount:
    """One ``./DMAcc/<x>`` account of the card's document: only its Items, and their digest."""

    node: str
    server_id: str
    document: Element = field(compare=False)
    digest: bytes

    @property
    def uri(self) -> str:
        """Return the account's node URI ``./DMAcc/<x>``."""
        return f"{DMACC}/{self.node}"


# --------------------------------------------------------------------------- reading the card

def decode_document(raw: bytes) -> Element:
    """Return the SyncML tree of the card's bootstrap bytes (XML text or WBXML); DecodeError
    or ProtocolError when it is neither or its root is not SyncML."""
    data = bytes(raw).rstrip(b"\x00\xff")
    head = data.removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\r\n")
    doc = syncml_xml.from_xml(head) if head[:1] == b"<" else wbxml.decode(data)
    if doc.tag != "SyncML":
        raise ProtocolError(f"bootstrap: root element <{doc.tag}>, expected <SyncML>")
    return doc


def _item_key(item: Element, cmd_fmt: str | None) -> list:
    data = item.find("Data")
    return [need_text(item, "Target/LocURI", "bootstrap Item"), text(item, "Meta/Format") or cmd_fmt or "chr",
            None if data is None else data.text or "", None if data is None else data.get(wbxml.OPAQUE_HEX_ATTR)]


def card_accounts(doc: Element) -> list[CardAccount]:
    """Return the accounts of a bootstrap document in document order; ProtocolError/DecodeError
    if an Item lies outside ``./DMAcc/<x>``, a value does not fit its Format, an account lacks
    its ServerID (Format chr) or two accounts share one."""
    adds: dict[str, list[Element]] = {}
    keys: dict[str, list[list]] = {}
    for add in doc.iterfind("SyncBody/Add"):
        cmd_fmt = text(add, "Meta/Format")
        per_node: dict[str, Element] = {}
        for item in add.iterfind("Item"):
            key = _item_key(item, cmd_fmt)
            names = split_uri(key[0])
            if len(names) < 2 or names[0] != "DMAcc":
                raise ProtocolError(f"bootstrap item {key[0]!r} is outside {DMACC}/<x>")
            if names[1] not in per_node:
                per_node[names[1]] = E("Add", E("Meta", E("Format", cmd_fmt)) if cmd_fmt else None)
                adds.setdefault(names[1], []).append(per_node[names[1]])
            per_node[names[1]].append(item)
            keys.setdefault(names[1], []).append(key)
    out: list[CardAccount] = []
    seen: dict[str, str] = {}
    for node, node_adds in adds.items():
        if any(split_uri(k[0])[2:] == ["ServerID"] and k[1] != "chr" for k in keys[node]):
            raise ProtocolError(f"bootstrap: {DMACC}/{node}/ServerID is not Format chr")
        document = E("SyncML", E("SyncBody", *node_adds))
        scratch = DmTree()
        apply_bootstrap(scratch, document)   # checks Formats, values and the ServerID
        server_id = scratch.find(f"{DMACC}/{node}/ServerID").value
        if server_id in seen:
            raise ProtocolError(f"bootstrap: ServerID {server_id!r} in both {DMACC}/{seen[server_id]} "
                                f"and {DMACC}/{node}")
        seen[server_id] = node
        digest = hashlib.sha256(json.dumps(keys[node]).encode()).digest()
        out.append(CardAccount(node, server_id, document, digest))
    return out


def _card_failure(exc: CardError) -> Reason:
    """Return the Reason a card refusal (or a response the host refused) stands for."""
    if exc.command == "SELECT" and PKCS15_AID in exc.apdu and exc.sw == SW_NOT_FOUND:
        return Reason.NO_PKCS15
    if exc.command in _AUTH_COMMANDS:
        # Scp03Host's refusal of a card whose i parameter lacks R-MAC / R-ENCRYPTION.
        return Reason.SECURITY_LEVEL if "does not support security level" in exc.detail \
            else Reason.SCP03_AUTHENTICATION
    if exc.sw == SW_OK or exc.sw in SW_INTEGRITY:
        return Reason.CHANNEL_INTEGRITY
    return Reason.CARD_ERROR


def _failed(reason: Reason, detail: str, level: int = 0) -> BootstrapReport:
    return BootstrapReport(failure=reason, detail=detail, security_level=level)


# --------------------------------------------------------------------------- origin store

def card_origin(tree: DmTree) -> dict[str, tuple[str, bytes]]:
    """Return ``{<x>: (ServerID, digest)}`` of the accounts installed from the card."""
    store = tree.find(VENDOR_STORE)
    out = {}
    for name, entry in (store.children or {}).items() if store is not None else ():
        leaves = entry.children or {}
        sid, digest = leaves.get("ServerID"), leaves.get("Digest")
        if sid is not None and digest is not None:
            out[name] = (sid.value or "", digest.value or b"")
    return out


def _remember(tree: DmTree, node: str, server_id: str, digest: bytes) -> None:
    if tree.find(VENDOR_STORE) is None:
        tree.create(VENDOR_STORE, "node", access=NO_ACCESS)
    entry = f"{VENDOR_STORE}/{node}"
    if tree.find(entry) is None:
        tree.create(entry, "node", access=NO_ACCESS)
    tree.put(f"{entry}/ServerID", "chr", server_id, access=NO_ACCESS)
    tree.put(f"{entry}/Digest", "bin", digest, access=NO_ACCESS)


def _forget(tree: DmTree, node: str) -> None:
    entry = tree.find(f"{VENDOR_STORE}/{node}")
    if entry is not None:
        tree.remove(entry)


def forget_card_origin(tree: DmTree, server_id: str) -> bool:
    """Return True if ``server_id``'s account was marked as installed from the card and no longer
    is (another bootstrap took it over: the card's absence will not remove it)."""
    names = [n for n, (sid, _) in card_origin(tree).items() if sid == server_id]
    for name in names:
        _forget(tree, name)
    return bool(names)


def _server_at(tree: DmTree, uri: str) -> str | None:
    node = tree.find(f"{uri}/ServerID")
    return None if node is None else node.value


# --------------------------------------------------------------------------- power-on

def apply_card_accounts(tree: DmTree, accounts: list[CardAccount], authorised_servers: Collection[str],
                        security_level: int = 0) -> BootstrapReport:
    """Return the report of applying the card's ``accounts`` to ``tree`` (§8.1): authorised ones
    installed unless unchanged, the others refused, card-installed accounts no longer on the card
    (or no longer authorised) removed."""
    allowed = frozenset(authorised_servers)
    accepted = [a for a in accounts if a.server_id in allowed]
    refused = [AccountNote(a.server_id, a.uri, Reason.NOT_AUTHORISED) for a in accounts if a.server_id not in allowed]
    on_card = {a.server_id for a in accounts}
    keep = {a.server_id for a in accepted}
    origin = card_origin(tree)
    removed = []
    for name, (sid, _) in origin.items():
        if sid in keep:
            continue
        uri = f"{DMACC}/{name}"
        if _server_at(tree, uri) == sid:
            tree.remove(tree.find(uri))
        _forget(tree, name)
        removed.append(AccountNote(sid, uri, Reason.NOT_AUTHORISED if sid in on_card else Reason.LEFT_CARD))
    installed, unchanged = [], []
    for account in accepted:
        current = _server_at(tree, account.uri)
        if origin.get(account.node) == (account.server_id, account.digest) and current == account.server_id:
            unchanged.append(account.server_id)
            continue
        if current is not None and current != account.server_id and origin.get(account.node, ("",))[0] != current:
            refused.append(AccountNote(account.server_id, account.uri, Reason.CONFLICT,
                                       f"{account.uri} holds the account of {current!r}"))
            continue
        for uri in {account.uri, find_account(tree, account.server_id)} - {None}:
            if tree.find(uri) is not None:
                tree.remove(tree.find(uri))
        for name, (sid, _) in card_origin(tree).items():
            if sid == account.server_id or name == account.node:
                _forget(tree, name)
        try:
            apply_bootstrap(tree, account.document)   # its values were checked on a scratch tree
        except DmsimError as exc:                     # a tree whose ./DMAcc cannot hold accounts
            refused.append(AccountNote(account.server_id, account.uri, Reason.CONFLICT, str(exc)))
            continue
        _remember(tree, account.node, account.server_id, account.digest)
        installed.append(account.server_id)
    return BootstrapReport(security_level=security_level, installed=tuple(installed), unchanged=tuple(unchanged),
                           refused=tuple(refused), removed=tuple(removed))


def power_on_bootstrap(tree: DmTree, link: CardLink, *, scp03_keys: Scp03Keys | None,
                       authorised_servers: Collection[str], security_level: int = REQUIRED_LEVEL,
                       required_level: int = REQUIRED_LEVEL, host_challenge: bytes | None = None) -> BootstrapReport:
    """Return the report of the power-on smartcard bootstrap over ``link``.

    Reads the card's DM Bootstrap inside an SCP03 channel at ``security_level`` with
    ``scp03_keys`` and applies it with :func:`apply_card_accounts`. Never raises for what the
    card or its document does: a failure is the report's ``failure`` and the tree is unchanged.
    """
    if scp03_keys is None and required_level:
        return _failed(Reason.SECURITY_LEVEL, f"no SCP03 keys, and level {required_level:02X} is required")
    level = security_level if scp03_keys is not None else 0
    if (level and level not in SECURITY_LEVELS) or level & required_level != required_level:
        return _failed(Reason.SECURITY_LEVEL, f"security level {level:02X} is not a level with every bit of "
                                              f"{required_level:02X}")
    try:
        raw = read_dm_bootstrap(link, scp03_keys, security_level=level, host_challenge=host_challenge)
    except CardError as exc:
        reason = _card_failure(exc)
        if reason is Reason.NO_PKCS15:  # definitive: the card carries no bootstrap at all
            removed = apply_card_accounts(tree, [], authorised_servers).removed
            return BootstrapReport(failure=reason, detail=str(exc), removed=removed)
        return _failed(reason, str(exc))
    except CardLinkError as exc:
        return _failed(Reason.CARD_LINK, str(exc))
    except DecodeError as exc:   # PKCS#15 files that do not parse
        return _failed(Reason.MALFORMED, str(exc), level)
    except DmsimError as exc:
        return _failed(Reason.CARD_ERROR, str(exc))
    try:
        accounts = card_accounts(decode_document(raw))
    except DmsimError as exc:
        return _failed(Reason.MALFORMED, str(exc), level)
    return apply_card_accounts(tree, accounts, authorised_servers, level)
