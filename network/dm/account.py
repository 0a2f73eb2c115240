"""The DM account a bootstrap installs, and the bootstrap document that carries it.

The account follows the DMAcc management object of OMA DM 1.2 (``./DMAcc/<x>/``: AppID w7,
ServerID, Name, AppAddr/<x>/Addr, AppAuth/<x>/AAuthLevel|AAuthType|AAuthName|AAuthSecret|
AAuthData). The bootstrap document is a SyncML DM message (SessionID 0, MsgID 0) with one Add
of those nodes, as OMA-TS-DM_Bootstrap's DM profile delivers it; it is what the §5.10.2.3 HMAC
covers once encoded in WBXML.

Choices where the specs are silent: the account node is named after the ServerID with
non-alphanumerics replaced by ``_``; nonces (AAuthData) are carried base64-encoded (Format b64).
"""
from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, replace
from xml.etree.ElementTree import Element

from dmsim.network.dm.auth import AUTH_BASIC, AUTH_MD5, AUTH_SHA256
from dmsim.network.dm.tree import E, need_text, text
from dmsim.sim.errors import ProtocolError

DMACC = "./DMAcc"
_AUTH_TYPES = {AUTH_BASIC: "BASIC", AUTH_MD5: "DIGEST", AUTH_SHA256: "DIGEST-SHA256"}
_SCHEMES = {v: k for k, v in _AUTH_TYPES.items()}


@dataclass(frozen=True)
class DmAccount:
    """One DM server account as the device holds it (and the server mirrors it).

    ``client_nonce`` is what the client uses in its next Cred (issued by the server);
    ``server_nonce`` is what the server uses in its Cred (issued by the client).
    """

    server_id: str
    server_uri: str
    client_name: str
    client_password: str
    server_name: str
    server_password: str
    client_nonce: bytes
    server_nonce: bytes
    auth_scheme: str = AUTH_MD5

    def with_nonces(self, *, client: bytes | None = None, server: bytes | None = None) -> "DmAccount":
        """Return a copy with the given nonce(s) replaced (NextNonce handling, §5.5)."""
        return replace(self, client_nonce=self.client_nonce if client is None else client,
                       server_nonce=self.server_nonce if server is None else server)


def _node(server_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", server_id)


def _item(uri: str, value: str, fmt: str | None = None) -> Element:
    # chr is the default Format (SyncML RepPro 1.2), so only b64 leaves get a Meta: every octet
    # counts when the document travels in concatenated SMS.
    return E("Item", E("Target", E("LocURI", uri)), E("Meta", E("Format", fmt)) if fmt else None, E("Data", value))


def bootstrap_document(account: DmAccount, device_uri: str) -> Element:
    """Return the SyncML DM bootstrap message that installs ``account`` on ``device_uri``."""
    base = f"{DMACC}/{_node(account.server_id)}"
    auth_type = _AUTH_TYPES[account.auth_scheme]
    items = [
        _item(f"{base}/AppID", "w7"),
        _item(f"{base}/ServerID", account.server_id),
        _item(f"{base}/Name", account.server_id),
        _item(f"{base}/AppAddr/1/Addr", account.server_uri),
        _item(f"{base}/AppAddr/1/AddrType", "URI"),
        _item(f"{base}/AAuthPref", auth_type),
    ]
    for idx, (level, name, secret, nonce) in enumerate((
        ("CLCRED", account.client_name, account.client_password, account.client_nonce),
        ("SRVCRED", account.server_name, account.server_password, account.server_nonce),
    ), start=1):
        auth = f"{base}/AppAuth/{idx}"
        items += [
            _item(f"{auth}/AAuthLevel", level),
            _item(f"{auth}/AAuthType", auth_type),
            _item(f"{auth}/AAuthName", name),
            _item(f"{auth}/AAuthSecret", secret),
            _item(f"{auth}/AAuthData", base64.b64encode(nonce).decode("ascii"), "b64"),
        ]
    return E("SyncML",
             E("SyncHdr", E("VerDTD", "1.2"), E("VerProto", "DM/1.2"), E("SessionID", "0"), E("MsgID", "0"),
               E("Target", E("LocURI", device_uri)), E("Source", E("LocURI", account.server_id))),
             E("SyncBody", E("Add", E("CmdID", "1"), *items), E("Final")))


def account_from_bootstrap(doc: Element) -> DmAccount:
    """Return the account a bootstrap document installs; ProtocolError names what is missing.

    Only ``./DMAcc/<x>/...`` items are read; a document installing several accounts is read as
    one (the slice provisions one server per device).
    """
    if doc.tag != "SyncML":
        raise ProtocolError(f"bootstrap: root element <{doc.tag}>, expected <SyncML>")
    nodes: dict[str, str] = {}
    for item in doc.iterfind("SyncBody/Add/Item"):
        uri = need_text(item, "Target/LocURI", "bootstrap Item")
        if uri.startswith(DMACC + "/") and uri.count("/") >= 3:
            nodes[uri.split("/", 3)[3]] = text(item, "Data", "") or ""
    levels = {nodes.get(f"AppAuth/{i}/AAuthLevel"): i for i in (1, 2, 3, 4) if f"AppAuth/{i}/AAuthLevel" in nodes}

    def get(key: str) -> str:
        if key not in nodes:
            raise ProtocolError(f"bootstrap: node <x>/{key} missing")
        return nodes[key]

    def auth(level: str, leaf: str) -> str:
        if level not in levels:
            raise ProtocolError(f"bootstrap: no AppAuth with AAuthLevel {level}")
        return get(f"AppAuth/{levels[level]}/{leaf}")

    def nonce(level: str) -> bytes:
        try:
            return base64.b64decode(auth(level, "AAuthData"), validate=True)
        except binascii.Error as exc:
            raise ProtocolError(f"bootstrap: AAuthData of {level} is not base64: {exc}") from exc

    scheme = _SCHEMES.get(auth("CLCRED", "AAuthType"))
    if scheme is None:
        raise ProtocolError(f"bootstrap: unsupported AAuthType {auth('CLCRED', 'AAuthType')!r}")
    return DmAccount(
        server_id=get("ServerID"), server_uri=get("AppAddr/1/Addr"),
        client_name=auth("CLCRED", "AAuthName"), client_password=auth("CLCRED", "AAuthSecret"),
        server_name=auth("SRVCRED", "AAuthName"), server_password=auth("SRVCRED", "AAuthSecret"),
        client_nonce=nonce("CLCRED"), server_nonce=nonce("SRVCRED"), auth_scheme=scheme)
