"""Who a DTLS association of ``dmsim lwm2m server`` authenticated in each security mode, and who
may bootstrap or register as which endpoint (seed 004 §7.1, D.1.1; OMA-TS-LightweightM2M-V1_0
§5.1.2, §5.3.1). Seed 004 §7.1: "a LWM2M Bootstrap Server SHALL support all of these methods"
(high- and low-entropy PSK, public key, certificate).

Principals. The cores (``network/lwm2m/bootstrap_server``, ``network/lwm2m/server``) compare the
identity an association authenticated with the one an endpoint's plan or registration names.
Each mode has a namespace of its own, so an identity of one mode never passes for another's:

- PSK: the PSK identity as it is (``dev1``);
- certificate: ``x509:`` and the identity the client certificate names, its first SAN URI, else
  its subject CN (``tls_pki.certificate_identity``, reported by the DTLS core as ``peer_name``:
  the choice of dmsim's DM server in X.509 mode, and what ``LabCa.issue_device`` writes, CN and
  SAN URI both the device id). The URI comes first because it is the field a CA fills for a
  device identity (``urn:imei:...``); a CN is often a label. A verified certificate naming
  neither has no principal: its association gets 4.01 for everything but discovery;
- RPK: ``rpk:`` and the name the server's key table gives the pinned client key.

PSK identities that begin with ``x509:`` or ``rpk:`` are refused (:func:`check_psk_identity`).

Credentials of an endpoint (``lwm2m_config.EndpointSpec``, its ``dm`` and ``bootstrap``): a
:class:`~dmsim.network.lwm2m.dtls_policy.PskCredential`, a :class:`CertificateName` (a client
certificate from the client CA naming it) or a :class:`PublicKey` (RPK). :class:`Authorizations`
says who may register as an endpoint: the ``dm`` credential of a configured endpoint, and only
it; for a name no endpoint entry has, one principal of that same name that no endpoint claims (a
``--psk`` identity, else an ``--rpk-client`` key of that name, else a certificate naming it: the
lab convenience of ``lwm2m_config``). The core takes one expected identity per endpoint name; the
server hands it the current association's principal when that one may register
(:meth:`Authorizations.registrar`), None otherwise (4.03).

RPK key table (:func:`rpk_table`): SubjectPublicKeyInfo DER -> name. Seed 004 §7.1: "The LWM2M
client MUST use a unique key-pair": one key has one name (``dtls_policy.KeyRegistry``) and one
name one key (a client's bootstrap and registration keys are therefore the same pair).

Key files (:func:`key_material`): PEM (a ``PUBLIC KEY`` block becomes SubjectPublicKeyInfo DER,
any other PEM is kept for the loaders, which read PEM), hex text, or binary (DER, a 32-byte
private scalar, a SEC1 point), as D.1.1.2 stores them.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Union

from cryptography.hazmat.primitives import serialization

from dmsim.base.errors import DecodeError, ScenarioError
from dmsim.network.lwm2m import dtls, dtls_keys
from dmsim.network.lwm2m.dtls_policy import KeyRegistry, PskCredential, SecurityMode

X509_PREFIX = b"x509:"
RPK_PREFIX = b"rpk:"
MODE_NAMES = {SecurityMode.PSK: "psk", SecurityMode.CERTIFICATE: "certificate", SecurityMode.RPK: "rpk"}
_HEX_TEXT = re.compile(rb"^[0-9A-Fa-f\s]+$")


@dataclass(frozen=True)
class CertificateName:
    """A client certificate (issued by the server's client CA) naming ``name`` (SAN URI, else CN)."""

    name: str

    def __post_init__(self):
        if not self.name.strip():
            raise ScenarioError("empty certificate identity", path="certificate",
                                expected="the SAN URI (else the CN) the client certificate names")


@dataclass(frozen=True)
class PublicKey:
    """An RPK client key, as SubjectPublicKeyInfo DER (:meth:`of` reads every D.1.1.2 form)."""

    spki: bytes

    @classmethod
    def of(cls, data: bytes, path: str = "public_key") -> "PublicKey":
        try:
            return cls(dtls_keys.spki_der(data))
        except DecodeError as exc:
            raise ScenarioError(f"not a P-256 public key: {exc.detail}", path=path,
                                expected=exc.expected or "a D.1.1.2 public key") from None
        except ScenarioError as exc:
            raise ScenarioError(exc.detail, path=path, expected=exc.expected) from None


Credential = Union[PskCredential, CertificateName, PublicKey]


def check_psk_identity(identity: bytes) -> None:
    """Refuse a PSK identity in another mode's namespace (module docstring)."""
    if identity.startswith((X509_PREFIX, RPK_PREFIX)):
        raise ScenarioError(f"PSK identity {identity.decode('utf-8', 'replace')!r} begins with "
                            f"{identity.split(b':')[0].decode()}:", path="psk",
                            expected="a PSK identity not beginning with x509: or rpk: (certificate and "
                                     "RPK principals)")


def principal(credential: Credential, owner: str) -> bytes:
    """Return the principal an association authenticated with ``credential`` has; ``owner`` is the
    name an RPK key is known by (its endpoint's)."""
    if isinstance(credential, PskCredential):
        return credential.identity
    if isinstance(credential, CertificateName):
        return X509_PREFIX + credential.name.encode("utf-8")
    return RPK_PREFIX + owner.encode("utf-8")


def principal_of(done: dtls.HandshakeDone) -> bytes | None:
    """Return the principal of a completed handshake (module docstring), or None."""
    if done.mode == SecurityMode.PSK:
        return done.psk_identity
    if done.peer_name is None:
        return None
    prefix = X509_PREFIX if done.mode == SecurityMode.CERTIFICATE else RPK_PREFIX
    return prefix + done.peer_name.encode("utf-8")


def rpk_table(entries: Iterable[tuple[str, bytes]]) -> dict[bytes, str]:
    """Return SubjectPublicKeyInfo DER -> name of ``(name, key)`` pairs (keys in any D.1.1.2 form);
    ScenarioError for a key given two names or a name given two keys."""
    registry, table, names = KeyRegistry(), {}, {}
    for name, key in entries:
        spki = PublicKey.of(key, f"rpk_clients.{name}").spki
        refusal = registry.claim(name, spki)
        if refusal is not None:
            raise ScenarioError(f"RPK client {name!r}: {refusal}", path="rpk_clients", expected="one key per client")
        if names.setdefault(name, spki) != spki:
            raise ScenarioError(f"RPK client {name!r} is given two different keys", path="rpk_clients",
                                expected="one key pair per client (seed 004 §7.1)")
        table[spki] = name
    return table


def key_material(data: bytes) -> bytes:
    """Return the key bytes of a key file (module docstring: PEM, hex text or binary)."""
    data = bytes(data)
    if data.lstrip().startswith(b"-----BEGIN PUBLIC KEY"):
        try:
            key = serialization.load_pem_public_key(data.strip())
        except ValueError as exc:
            raise DecodeError("public key file", 0, str(exc), "PEM PUBLIC KEY") from None
        return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if data.lstrip().startswith(b"-----"):
        return data.strip()
    if data.strip() and _HEX_TEXT.match(data):
        text = b"".join(data.split())
        if len(text) % 2 == 0:
            return bytes.fromhex(text.decode("ascii"))
    return data


@dataclass(frozen=True)
class CertificateMode:
    """The server's certificate mode: its certificate chain (PEM or DER, leaf first), its private
    key and the CA its clients' certificates must chain to (``dtls.certificate_server_config``)."""

    certificate: bytes
    key: bytes = field(repr=False)
    client_ca: bytes

    def __post_init__(self):
        self.server_config()  # refuse a pair that does not match, or no P-256, at once

    def server_config(self) -> dtls.DtlsConfig:
        try:
            return dtls.certificate_server_config(self.certificate, self.key, self.client_ca)
        except DecodeError as exc:
            raise ScenarioError(f"{exc.what}: {exc.detail}", path="certificate",
                                expected=exc.expected or "PEM or DER") from None


@dataclass(frozen=True)
class RpkMode:
    """The server's RPK mode: its private key (a D.1.1.2 form or PEM) and the clients' public keys,
    (name, key) pairs (any D.1.1.2 form; :func:`rpk_table` refuses a name given two keys);
    endpoints' RPK credentials are added by the server."""

    key: bytes = field(repr=False)
    clients: tuple[tuple[str, bytes], ...] = ()

    def __post_init__(self):
        try:
            dtls_keys.private_key_from_resource(self.key, "rpk_key")
        except DecodeError as exc:
            raise ScenarioError(f"RPK server key: {exc.detail}", path="rpk_key",
                                expected=exc.expected) from None

    def server_config(self, table: Mapping[bytes, str]) -> dtls.DtlsConfig:
        return dtls.rpk_server_config(self.key, table)


class Authorizations:
    """Who may register as which endpoint (module docstring). ``endpoints``: name -> the ``dm``
    principal of each configured endpoint; ``claimed``: every principal an endpoint names.

    A name no endpoint entry has may be registered by one principal of that name, the first of:
    the PSK identity (``psks``), the RPK client (``rpk_names``), a certificate naming it (when
    ``certificates``): the operator's own entries before what a CA issues, so a certificate can
    never take a name the server holds a PSK or key for. That principal must not be claimed by an
    endpoint (a bootstrap credential stays a bootstrap credential). A name that is both a PSK
    identity and an RPK client name is refused: it needs an endpoint entry saying which.
    """

    def __init__(self, endpoints: Mapping[str, bytes], claimed: Iterable[bytes], *,
                 psks: Mapping[bytes, object], rpk_names: Iterable[str], certificates: bool):
        self._endpoints = dict(endpoints)
        self._claimed = frozenset(claimed)
        self._rpk_names = frozenset(rpk_names)
        self._psks, self._certificates = psks, certificates
        both = sorted(n for n in self._rpk_names if n.encode("utf-8") in psks and n not in self._endpoints)
        if both:
            raise ScenarioError(f"{both[0]!r} is both a PSK identity and an RPK client name", path="rpk_clients",
                                expected="an endpoint entry naming its dm credential")

    def may_register(self, name: str, who: bytes | None) -> bool:
        if who is None:
            return False
        if name in self._endpoints:
            return self._endpoints[name] == who
        own = name.encode("utf-8")
        if own in self._psks:
            candidate = own
        elif name in self._rpk_names:
            candidate = RPK_PREFIX + own
        else:
            candidate = X509_PREFIX + own if self._certificates else None
        return who == candidate and who not in self._claimed

    def registrar(self, name: str, who: bytes | None) -> bytes | None:
        """Return the identity the server core expects for ``name`` given the association's
        principal ``who``: ``who`` itself when it may register as ``name``, else None."""
        return who if self.may_register(name, who) else None


__all__ = ["CertificateName", "PublicKey", "Credential", "CertificateMode", "RpkMode", "Authorizations",
           "principal", "principal_of", "rpk_table", "key_material", "check_psk_identity", "MODE_NAMES",
           "X509_PREFIX", "RPK_PREFIX"]
