"""The DM account a bootstrap installs, and the bootstrap document that carries it.

The account follows the DMAcc management object of OMA DM 1.2 (``./DMAcc/<x>/``: AppID w7,
ServerID, Name, AppAddr/<x>/Addr, AppAuth/<x>/AAuthLevel|AAuthType|AAuthName|AAuthSecret|
AAuthData). The bootstrap document is a SyncML DM message (SessionID 0, MsgID 0) with one Add
of those nodes, as OMA-TS-DM_Bootstrap's DM profile delivers it; it is what the §5.10.2.3 HMAC
covers once encoded in WBXML. Two subtrees carry TLS keying material (:class:`TlsKeys`):

* ``<x>/Auth/Trsp`` (seed 000 §9.2.1: "the credentials [of the TLS session] SHALL be provisioned
  at the device, and the <x>/Auth/Trsp sub-tree in the DM Account MO SHOULD be used"): the keys of
  the account's own DM sessions, written when the account has a TLS pre-shared key;
* ``<x>/Auth/Bootstrap`` (seed 001 §12.2, §9.3.2): the keys of the TLS session with the DM server
  acting as *bootstrap server*, in the account of that server (``DmAccount.bootstrap``), with the
  ServerURI of that server.

Both are written by :func:`tls_key_leaves` and read by :func:`tls_keys_of` alone; the device's tree
(``devices.dm_tree``) stores and reads them through them.

AAuthType values (OMA-TS-DM_StdObj DMAcc): ``BASIC``, ``DIGEST`` (auth-md5), ``DIGEST-SHA256`` and
``HMAC`` for ``syncml:auth-hmac-sha256`` (OMA-TS-DM_Security §5.6.1); an HMAC account still
carries both AppAuth entries, whose AAuthSecret is the HMAC key of its direction and whose
AAuthData (the nonce) that mode does not use.

Choices where the specs are silent: the account node is named after the ServerID with
non-alphanumerics replaced by ``_``; nonces (AAuthData) are carried base64-encoded (Format b64);
the bin leaves go as WBXML OPAQUE (attribute ``wbxml.OPAQUE_HEX_ATTR``) and are read back from bin
(text or opaque) or b64 Data. Seed 000 names ``<x>/Auth/Trsp`` but defines no leaves: dmsim gives
it the leaves of ``Auth/Bootstrap`` (§12.2: SecMode, ClientPublicKeyPSKIdentity,
ServerPublicKeyPSKIdentity, ClientSecretKey, with the §12.2.1 formats) without ServerURI, since
the server's address is the account's AppAddr. All leaves of either subtree are required (seed
001 §12.2) and a PSK-mode subtree needs a non-empty identity and key; ServerPublicKeyPSKIdentity
holds the ServerID (the PSK mode has no server certificate, and the seed does not say what else
it names).
"""
from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, replace
from typing import Callable, Mapping
from xml.etree.ElementTree import Element, SubElement

from dmsim.network.dm.auth import AUTH_BASIC, AUTH_MD5, AUTH_SHA256, credential_hash, is_digest
from dmsim.network.dm.hmac_integrity import AUTH_HMAC_SHA256
from dmsim.network.dm.tree import E, find_all, need_text, text
from dmsim.network.dm.wbxml import OPAQUE_HEX_ATTR, opaque_bytes
from dmsim.base.errors import ProtocolError

DMACC = "./DMAcc"
SEC_MODE_PSK = "PSK"
SEC_MODE_X509 = "X509"
AUTH_BOOTSTRAP = "Auth/Bootstrap"
AUTH_TRSP = "Auth/Trsp"
TRSP_LEAVES = ("SecMode", "ClientPublicKeyPSKIdentity", "ServerPublicKeyPSKIdentity", "ClientSecretKey")
BOOTSTRAP_LEAVES = ("ServerURI", *TRSP_LEAVES)
PASSWORD_BYTES = 16  # 128 bits per password, as OMA-TS-DM_Security §5.4.3 recommends
_AUTH_TYPES = {AUTH_BASIC: "BASIC", AUTH_MD5: "DIGEST", AUTH_SHA256: "DIGEST-SHA256", AUTH_HMAC_SHA256: "HMAC"}
_SCHEMES = {v: k for k, v in _AUTH_TYPES.items()}


def fresh_password(randbytes: Callable[[int], bytes]) -> str:
    """Return a new AAuthSecret of PASSWORD_BYTES random octets from ``randbytes``, as hex text
    (chr Format: it is typed and carried as text)."""
    return randbytes(PASSWORD_BYTES).hex()


@dataclass(frozen=True)
class TlsKeys:
    """The TLS keying material of ``<x>/Auth/Bootstrap`` (seed 001 §12.2, TLS to the bootstrap
    server, whose URI is ``server_uri``) or ``<x>/Auth/Trsp`` (seed 000 §9.2.1, TLS to the
    account's own server; ``server_uri`` is empty).

    PSK mode: ``client_identity`` is the PSK identity (UTF-8), ``client_secret_key`` the PSK.
    X509 mode: ``client_identity`` is the client certificate (DER), ``client_secret_key`` its key.
    """

    server_uri: str
    sec_mode: str
    client_identity: bytes
    server_identity: bytes
    client_secret_key: bytes


@dataclass(frozen=True)
class DmAccount:
    """One DM server account as the device holds it (and the server mirrors it).

    ``client_nonce`` is what the client uses in its next Cred (issued by the server);
    ``server_nonce`` is what the server uses in its Cred (issued by the client).
    ``psk_identity``/``psk_key`` are the TLS pre-shared key of PSK mode (seed 001 §12.2.1.1) for
    the account's own DM sessions, carried in ``<x>/Auth/Trsp``; empty when the account has none.
    ``bootstrap`` is the ``<x>/Auth/Bootstrap`` keying of an account whose server acts as the
    bootstrap server (seed 001 §9.3.2), None for any other.

    ``auth_scheme`` is how the client authenticates to the server (CLCRED AAuthType);
    ``server_auth_scheme`` how the server authenticates to the client (SRVCRED AAuthType), empty
    for "the same" (:attr:`server_scheme`): a DM 1.2 client may use auth-basic towards the server
    and expect auth-md5 from it.

    What the *server* must store for the client's credential depends on the scheme (§5.4.2):
    a digest scheme (auth-md5, auth-sha256) needs only ``client_hash`` = B64(H(name:password))
    (:meth:`hashed` drops the password); auth-basic compares the password itself, and HMAC
    (§5.6.1) needs the secret as the MAC key, so those keep ``client_password``. Trade-off: the
    stored hash is password-equivalent for that scheme (whoever steals it can authenticate), but
    a stolen store no longer reveals the password (reused elsewhere, or for Basic). A hashed
    account cannot produce a bootstrap document (it has no password to deliver).
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
    psk_identity: bytes = b""
    psk_key: bytes = b""
    server_auth_scheme: str = ""
    client_hash: bytes = b""
    bootstrap: TlsKeys | None = None

    @property
    def server_scheme(self) -> str:
        """Return the scheme of the server's credential (SRVCRED): ``server_auth_scheme`` or, when
        empty, ``auth_scheme``."""
        return self.server_auth_scheme or self.auth_scheme

    def hashed(self) -> "DmAccount":
        """Return the server-side copy that keeps B64(H(name:password)) instead of the client's
        password (§5.4.2); ProtocolError for a scheme that needs the password (basic, HMAC)."""
        if not is_digest(self.auth_scheme):
            raise ProtocolError(f"account: {self.auth_scheme} needs the client password, it cannot be stored hashed")
        if not self.client_password:
            return self
        return replace(self, client_password="",
                       client_hash=credential_hash(self.client_name, self.client_password, self.auth_scheme))

    @property
    def has_psk(self) -> bool:
        """Return True when the account holds a TLS pre-shared key and its identity."""
        return bool(self.psk_identity and self.psk_key)

    @property
    def trsp_keys(self) -> TlsKeys | None:
        """Return the PSK-mode ``<x>/Auth/Trsp`` keys of the account, or None without a PSK."""
        if not self.has_psk:
            return None
        return TlsKeys("", SEC_MODE_PSK, self.psk_identity, self.server_id.encode("utf-8"), self.psk_key)

    def with_nonces(self, *, client: bytes | None = None, server: bytes | None = None) -> "DmAccount":
        """Return a copy with the given nonce(s) replaced (NextNonce handling, §5.5)."""
        return replace(self, client_nonce=self.client_nonce if client is None else client,
                       server_nonce=self.server_nonce if server is None else server)


_NOT_ALNUM = re.compile(r"[^A-Za-z0-9]")


def _node(server_id: str) -> str:
    return _NOT_ALNUM.sub("_", server_id)


def _item(uri: str, value: str, fmt: str | None = None) -> Element:
    # chr is the default Format (SyncML RepPro 1.2), so only b64 leaves get a Meta: every octet
    # counts when the document travels in concatenated SMS. SubElement rather than E: the same
    # tree, built in C (this runs for every leaf of every bootstrap).
    item = Element("Item")
    SubElement(SubElement(item, "Target"), "LocURI").text = uri
    if fmt:
        SubElement(SubElement(item, "Meta"), "Format").text = fmt
    SubElement(item, "Data").text = value
    return item


def leaf_item(uri: str, fmt: str, value: str | bytes) -> Element:
    """Return the bootstrap Item of one :data:`Leaf`: chr as text without Meta, b64 as base64
    text, bin as WBXML OPAQUE (``OPAQUE_HEX_ATTR``)."""
    if fmt == "chr":
        return _item(uri, value)
    if fmt == "b64":
        return _item(uri, base64.b64encode(value).decode("ascii"), "b64")
    item = _item(uri, "", "bin")
    item.find("Data").set(OPAQUE_HEX_ATTR, value.hex())
    return item


# One leaf of an account as a bootstrap delivers it: (URI, Format chr|b64|bin, value as the
# device stores it: str for chr, octets for b64 and bin).
Leaf = tuple[str, str, "str | bytes"]


def leaves_of(subtree: str) -> tuple[str, ...]:
    """Return the leaf names of ``subtree`` (AUTH_BOOTSTRAP or AUTH_TRSP)."""
    return BOOTSTRAP_LEAVES if subtree == AUTH_BOOTSTRAP else TRSP_LEAVES


def tls_key_leaves(base: str, keys: TlsKeys) -> list[Leaf]:
    """Return the leaves that store ``keys`` under ``base`` (an ``<x>/Auth/Bootstrap`` URI, with
    ServerURI chr, or ``<x>/Auth/Trsp``), the other leaves bin; ProtocolError for a SecMode other
    than PSK or X509."""
    if keys.sec_mode not in (SEC_MODE_PSK, SEC_MODE_X509):
        raise ProtocolError(f"SecMode {keys.sec_mode!r}, expected {SEC_MODE_PSK} or {SEC_MODE_X509}")
    octets = (keys.sec_mode.encode("ascii"), keys.client_identity, keys.server_identity, keys.client_secret_key)
    uri = [(f"{base}/ServerURI", "chr", keys.server_uri)] if base.endswith(AUTH_BOOTSTRAP) else []
    return [*uri, *((f"{base}/{leaf}", "bin", bytes(value)) for leaf, value in zip(TRSP_LEAVES, octets))]


def tls_keys_of(leaves: Mapping[str, bytes | str | None], where: str, subtree: str = AUTH_BOOTSTRAP) -> TlsKeys:
    """Return the TlsKeys of an ``Auth/Bootstrap`` or ``Auth/Trsp`` (``subtree``) subtree given as
    {leaf name: value} (octets, or text taken as UTF-8); ProtocolError naming ``where`` when a
    leaf is missing or a PSK-mode subtree has an empty identity or key (seed 001 §12.2: all
    Required)."""
    missing = [leaf for leaf in leaves_of(subtree) if leaf not in leaves]
    if missing:
        raise ProtocolError(f"{where}: missing {', '.join(missing)}")

    def octets(leaf: str) -> bytes:
        value = leaves[leaf]
        return value if isinstance(value, bytes) else (value or "").encode("utf-8")

    def chars(leaf: str) -> str:
        value = leaves[leaf]
        return value.decode("utf-8", "replace") if isinstance(value, bytes) else (value or "")

    keys = TlsKeys(server_uri=chars("ServerURI") if "ServerURI" in leaves else "", sec_mode=chars("SecMode"),
                         client_identity=octets("ClientPublicKeyPSKIdentity"),
                         server_identity=octets("ServerPublicKeyPSKIdentity"),
                         client_secret_key=octets("ClientSecretKey"))
    if keys.sec_mode == SEC_MODE_PSK and not (keys.client_identity and keys.client_secret_key):
        raise ProtocolError(f"{where}: PSK mode without ClientPublicKeyPSKIdentity and ClientSecretKey")
    return keys


def account_leaves(account: DmAccount) -> list[Leaf]:
    """Return the leaves of ``./DMAcc/<x>`` that install ``account`` (DMAcc of OMA-TS-DM_StdObj,
    ``<x>/Auth/Trsp`` and ``<x>/Auth/Bootstrap`` when it has them), in the order its bootstrap
    document carries them; ProtocolError when its ``auth_scheme`` has no AAuthType."""
    base = f"{DMACC}/{_node(account.server_id)}"
    auth_type, server_type = _AUTH_TYPES.get(account.auth_scheme), _AUTH_TYPES.get(account.server_scheme)
    if auth_type is None or server_type is None:
        bad = account.auth_scheme if auth_type is None else account.server_scheme
        raise ProtocolError(f"bootstrap: auth scheme {bad!r} has no AAuthType "
                            f"(expected one of {', '.join(_AUTH_TYPES)})")
    if not account.client_password and account.client_hash:
        raise ProtocolError("bootstrap: the account keeps only the client credential's hash, no password to deliver")
    leaves: list[Leaf] = [
        (f"{base}/AppID", "chr", "w7"),
        (f"{base}/ServerID", "chr", account.server_id),
        (f"{base}/Name", "chr", account.server_id),
        (f"{base}/AppAddr/1/Addr", "chr", account.server_uri),
        (f"{base}/AppAddr/1/AddrType", "chr", "URI"),
        (f"{base}/AAuthPref", "chr", auth_type),
    ]
    for idx, (level, kind, name, secret, nonce) in enumerate((
        ("CLCRED", auth_type, account.client_name, account.client_password, account.client_nonce),
        ("SRVCRED", server_type, account.server_name, account.server_password, account.server_nonce),
    ), start=1):
        auth = f"{base}/AppAuth/{idx}"
        leaves += [
            (f"{auth}/AAuthLevel", "chr", level),
            (f"{auth}/AAuthType", "chr", kind),
            (f"{auth}/AAuthName", "chr", name),
            (f"{auth}/AAuthSecret", "chr", secret),
            (f"{auth}/AAuthData", "b64", bytes(nonce)),
        ]
    trsp = account.trsp_keys
    if trsp is not None:
        leaves += tls_key_leaves(f"{base}/{AUTH_TRSP}", trsp)
    if account.bootstrap is not None:
        leaves += tls_key_leaves(f"{base}/{AUTH_BOOTSTRAP}", account.bootstrap)
    return leaves


def bootstrap_document(account: DmAccount, device_uri: str) -> Element:
    """Return the SyncML DM bootstrap message that installs ``account`` on ``device_uri`` (one
    Add of the Items of :func:`account_leaves`); ProtocolError when its ``auth_scheme`` has no
    AAuthType."""
    items = [leaf_item(*leaf) for leaf in account_leaves(account)]
    return E("SyncML",
             E("SyncHdr", E("VerDTD", "1.2"), E("VerProto", "DM/1.2"), E("SessionID", "0"), E("MsgID", "0"),
               E("Target", E("LocURI", device_uri)), E("Source", E("LocURI", account.server_id))),
             E("SyncBody", E("Add", E("CmdID", "1"), *items), E("Final")))


_SUBTREES = (AUTH_BOOTSTRAP + "/", AUTH_TRSP + "/")  # the keys read as octets (:func:`_item_octets`)


def account_from_bootstrap(doc: Element) -> DmAccount:
    """Return the account a bootstrap document installs; ProtocolError names what is missing.

    Only ``./DMAcc/<x>/...`` items are read; a document installing several accounts is read as
    one (the slice provisions one server per device).
    """
    if doc.tag != "SyncML":
        raise ProtocolError(f"bootstrap: root element <{doc.tag}>, expected <SyncML>")
    nodes: dict[str, str] = {}
    octets: dict[str, dict[str, bytes]] = {AUTH_BOOTSTRAP: {}, AUTH_TRSP: {}}
    for item in find_all(doc, "SyncBody/Add/Item"):
        uri = need_text(item, "Target/LocURI", "bootstrap Item")
        if uri.startswith(DMACC + "/") and uri.count("/") >= 3:
            key = uri.split("/", 3)[3]
            subtree = next((t for t in octets if key.startswith(t + "/")), None) if key.startswith(_SUBTREES) else None
            if subtree is not None:
                octets[subtree][key[len(subtree) + 1:]] = _item_octets(item, key)
            else:
                nodes[key] = text(item, "Data", "") or ""
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
    server_scheme = _SCHEMES.get(auth("SRVCRED", "AAuthType"))
    if server_scheme is None:
        raise ProtocolError(f"bootstrap: unsupported AAuthType {auth('SRVCRED', 'AAuthType')!r}")
    keys = {t: tls_keys_of(leaves, f"bootstrap: <x>/{t}", t) if leaves else None for t, leaves in octets.items()}
    trsp = keys[AUTH_TRSP]
    psk = trsp is not None and trsp.sec_mode == SEC_MODE_PSK
    identity, key = (trsp.client_identity, trsp.client_secret_key) if psk else (b"", b"")
    return DmAccount(
        server_id=get("ServerID"), server_uri=get("AppAddr/1/Addr"),
        client_name=auth("CLCRED", "AAuthName"), client_password=auth("CLCRED", "AAuthSecret"),
        server_name=auth("SRVCRED", "AAuthName"), server_password=auth("SRVCRED", "AAuthSecret"),
        client_nonce=nonce("CLCRED"), server_nonce=nonce("SRVCRED"), auth_scheme=scheme,
        psk_identity=identity, psk_key=key, server_auth_scheme="" if server_scheme == scheme else server_scheme,
        bootstrap=keys[AUTH_BOOTSTRAP])


def _item_octets(item: Element, key: str) -> bytes:
    """Return the octets of a bin/b64 Item's Data (opaque, base64 or UTF-8 text, unstripped)."""
    data = item.find("Data")
    if data is None:
        return b""
    raw = opaque_bytes(data)
    if raw is not None:
        return raw
    if text(item, "Meta/Format") == "b64":
        try:
            return base64.b64decode((data.text or "").strip(), validate=True)
        except binascii.Error as exc:
            raise ProtocolError(f"bootstrap: <x>/{key} is not base64: {exc}") from exc
    return (data.text or "").encode("utf-8")
