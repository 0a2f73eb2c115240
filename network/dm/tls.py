"""Sans-IO TLS endpoint for SyncML DM over TLS: PSK-TLS and X.509 modes of seed 000 §9.2.2.

The real Mbed TLS handshake (python-mbedtls 2.10, ``TLSWrappedBuffer``) runs on in-memory
buffers: :meth:`TlsEndpoint.receive_data` takes bytes from the peer and returns events,
:meth:`TlsEndpoint.data_to_send` returns the TLS records for the peer. No sockets, no clock;
a SimPy process or a socket loop is the driver.

What the seed asks and where it is enforced (suite tables in :mod:`.tls_suites`):

- only the seed's suites are offered and accepted (the mbedtls cipher list is exactly them; a
  server's leaves out the DHE ones, which python-mbedtls cannot serve: DHE_RSA runs on the
  standard library's ssl, ``tls_dhe``, and :func:`server_endpoint` picks the backend of each
  connection from its ClientHello; DHE_PSK is not served, ``tls_suites``);
- TLS 1.1 and 1.2 only: SSL 2.0/3.0 and TLS 1.0 are refused by the configuration, and the
  client checks the version of the ServerHello itself before mbedtls sees it ("The DM Client
  SHALL check ... before accepting the session establishment");
- "When an ECDHE or ECDSA algorithm is used, the minimum key length SHALL be at least 256
  bits": an ECC key given to a configuration is checked when the configuration is built, and
  during the handshake the peer's certificate key and the ECDHE curve (ServerKeyExchange) are
  read from the cleartext flights and refused below 256 bits with a fatal
  ``insufficient_security`` alert (RFC 5246 §7.2.2). python-mbedtls cannot restrict the curve
  list, so the check is made on the wire, on the server's own flight too.

Client authentication (OMA-TS-DM_Security-V1_3 §5.4, DM-SEC-S-002-M: the server MUST request
client authentication at the transport layer): a server config with ``client_trust`` (the lab
CA of :mod:`.tls_pki`) sends a CertificateRequest in every certificate suite and requires a
client certificate issued by that CA (Mbed TLS ``MBEDTLS_SSL_VERIFY_REQUIRED`` with that trust
store). A client that answers with an empty Certificate message is refused by dmsim itself with
a fatal ``handshake_failure`` alert (RFC 5246 §7.4.6; Mbed TLS would fail without an alert); a
certificate that does not verify is refused by Mbed TLS with a fatal alert (``bad_certificate``
or ``unknown_ca``); a client certificate with an ECC key below 256 bits gets
``insufficient_security`` like a server's. After the handshake the server endpoint holds the
verified certificate (``peer_certificate``, DER) and the identity it names (``peer_identity``,
:func:`.tls_pki.certificate_identity`), also carried by :class:`HandshakeDone`; binding it to the
device's DevId is the DM layer's job (:func:`.tls_pki.binding_refusal`). PSK suites have no
CertificateRequest (RFC 4279: the PSK authenticates the client), so a server of mode "both"
with ``client_trust`` still serves PSK clients. A client config with its own ``cert_pem``/
``key_pem`` answers a CertificateRequest with that chain.

Choices where the seed is silent: PSK identities are UTF-8 text (python-mbedtls passes them
as ``str``); without ``client_trust`` the server does not ask for a client certificate (the
earlier behaviour, kept for callers that give no CA); a failure never raises from
``receive_data``, it returns :class:`TlsFailed` and the endpoint stays failed.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Iterator, Union

from cryptography import x509 as cx509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from mbedtls import exceptions as mbedtls_exceptions
from mbedtls import pk as mbedtls_pk
from mbedtls import tls as mbedtls_tls
from mbedtls import x509 as mbedtls_x509

from dmsim.network.dm import tls_pki
from dmsim.network.dm import tls_suites as suites
from dmsim.base.errors import DecodeError, ProtocolError, ScenarioError

_MBEDTLS_VERSIONS = {suites.TLS_1_1: mbedtls_tls.TLSVersion.TLSv1_1,
                     suites.TLS_1_2: mbedtls_tls.TLSVersion.TLSv1_2}
_VERSION_CODES = {v: k for k, v in _MBEDTLS_VERSIONS.items()}
_VERSION_CODES[mbedtls_tls.TLSVersion.TLSv1] = suites.TLS_1_0

# RFC 5246 §7.2 alert descriptions dmsim sends itself.
ALERT_HANDSHAKE_FAILURE = 40
ALERT_ILLEGAL_PARAMETER = 47
ALERT_PROTOCOL_VERSION = 70
ALERT_INSUFFICIENT_SECURITY = 71

_FEED_CHUNK = 8192  # plaintext per write(): its records stay below the 32 KiB ring buffer
_MAX_RECORD = 2 ** 14 + 2048  # RFC 5246 §6.2.3 TLSCiphertext.length limit


# --- configuration ----------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class TlsConfig:
    """What one side of a DM TLS session uses; build it with the ``*_config`` functions.

    ``psks`` (server) maps PSK identity -> key and is read live (accounts added later are
    found); ``psk`` (client) is (identity, key). ``certs``/``key`` are the own chain (server;
    a client's for client authentication), ``trust`` the CA certificates that validate the
    server (client, X.509 mode), ``client_trust`` the CA certificates that validate clients
    (server; non-empty: a client certificate is requested and required, module docstring).
    ``dhe_rsa`` (server) is the RSA credential of the DHE_RSA suites, which the standard
    library's ssl serves (``tls_dhe``): (certificate chain PEM, key PEM), or a function without
    arguments returning them, called when the first DHE_RSA client arrives (a lab CA's RSA key
    is slow to derive, ``tls_pki``).
    """

    server: bool
    suites: tuple[suites.SeedSuite, ...]
    versions: tuple[int, int] = (suites.TLS_1_1, suites.TLS_1_2)
    psks: Mapping[bytes, bytes] | None = None
    psk: tuple[bytes, bytes] | None = None
    certs: tuple[bytes, ...] = ()  # DER, leaf first
    key_der: bytes = field(default=b"", repr=False)
    key_is_ecc: bool = False
    trust: tuple[bytes, ...] = ()  # DER
    server_hostname: str | None = None
    client_trust: tuple[bytes, ...] = ()  # DER (server)
    dhe_rsa: tuple[bytes, bytes] | Callable[[], tuple[bytes, bytes]] | None = field(default=None, repr=False)

    @property
    def requires_client_cert(self) -> bool:
        """Return True for a server that requests and requires a client certificate."""
        return self.server and bool(self.client_trust)

    @property
    def mbedtls_suites(self) -> tuple[suites.SeedSuite, ...]:
        """Return the suites the mbedtls context runs: a server's without the DHE ones
        (``tls_suites.MBEDTLS_SERVER_UNUSABLE``), a client's all of them."""
        if not self.server:
            return self.suites
        return tuple(s for s in self.suites if s.key_exchange not in suites.MBEDTLS_SERVER_UNUSABLE)

    @property
    def openssl_suites(self) -> tuple[suites.SeedSuite, ...]:
        """Return the suites a server runs on the standard library's ssl (``tls_dhe``): DHE_RSA,
        when it has an RSA credential for them."""
        if not self.server or self.dhe_rsa is None:
            return ()
        return tuple(s for s in self.suites if s.key_exchange in suites.OPENSSL_SERVED)

    def mbedtls_can_serve(self, suite: suites.SeedSuite) -> bool:
        """Return True when this server's mbedtls context has what ``suite`` needs: the suite in
        its list, PSKs for a PSK key exchange, a certificate of the right key type (RSA for RSA
        and RSA_PSK, ECC for ECDHE_ECDSA). Curves and signature algorithms are not looked at."""
        if suite not in self.mbedtls_suites:
            return False
        if suite.uses_psk and self.psks is None:
            return False
        if suite.key_exchange in ("RSA", "RSA_PSK"):
            return bool(self.certs) and not self.key_is_ecc
        if suite.key_exchange == "ECDHE_ECDSA":
            return bool(self.certs) and self.key_is_ecc
        return True

    @cached_property
    def dhe_context(self):
        """Return the standard library ``ssl.SSLContext`` of the DHE_RSA suites (made once, on
        first use; ``tls_dhe.server_context``)."""
        from dmsim.network.dm import tls_dhe  # here: tls_dhe imports this module
        return tls_dhe.server_context(self)

    @cached_property
    def context(self) -> Union[mbedtls_tls.ClientContext, mbedtls_tls.ServerContext]:
        """Return the mbedtls context (made once; every endpoint of this config shares it)."""
        low, high = self.versions
        kwargs: dict = dict(
            ciphers=tuple(s.mbedtls_name for s in self.mbedtls_suites),
            lowest_supported_version=_MBEDTLS_VERSIONS[low],
            highest_supported_version=_MBEDTLS_VERSIONS[high],
            validate_certificates=(self.requires_client_cert if self.server else bool(self.trust)),
        )
        if self.certs:
            key_cls = mbedtls_pk.ECC if self.key_is_ecc else mbedtls_pk.RSA
            chain = tuple(mbedtls_x509.CRT.from_DER(der) for der in self.certs)
            kwargs["certificate_chain"] = (chain, key_cls.from_DER(self.key_der))
        trust = self.client_trust if self.server else self.trust
        if trust:
            kwargs["trust_store"] = mbedtls_tls.TrustStore(
                [mbedtls_x509.CRT.from_DER(der) for der in trust])
        if self.psks is not None:
            kwargs["pre_shared_key_store"] = _PskLookup(self.psks)
        if self.psk is not None:
            kwargs["pre_shared_key"] = (self.psk[0].decode("utf-8"), self.psk[1])
        conf = mbedtls_tls.TLSConfiguration(**kwargs)
        if self.server:
            return mbedtls_tls.ServerContext(conf)
        return mbedtls_tls.ClientContext(conf)


class _PskLookup(Mapping):
    """The server's identity -> key store as python-mbedtls wants it (``str`` identities)."""

    def __init__(self, psks: Mapping[bytes, bytes]):
        self._psks = psks

    def __getitem__(self, identity: str) -> bytes:
        return self._psks[identity.encode("utf-8")]

    def __iter__(self) -> Iterator[str]:
        return (k.decode("utf-8", "replace") for k in self._psks)

    def __len__(self) -> int:
        return len(self._psks)


def psk_server_config(psks: Mapping[bytes, bytes], *, cert_pem: bytes | None = None,
                      key_pem: bytes | None = None, versions=(suites.TLS_1_1, suites.TLS_1_2)
                      ) -> TlsConfig:
    """Return a PSK-TLS server config; a certificate adds the RSA_PSK suites (RFC 4279 §4)."""
    return server_config(psks=psks, cert_pem=cert_pem, key_pem=key_pem, mode="psk",
                         versions=versions)


def x509_server_config(cert_pem: bytes, key_pem: bytes, *, client_ca_pem: bytes | None = None,
                       versions=(suites.TLS_1_1, suites.TLS_1_2), dhe_rsa=None) -> TlsConfig:
    """Return an X.509-mode server config from a PEM chain (leaf first) and its PEM key;
    ``client_ca_pem`` makes it require client certificates issued by that CA (§5.4);
    ``dhe_rsa`` is the RSA credential of the DHE_RSA suites (``server_config``)."""
    return server_config(cert_pem=cert_pem, key_pem=key_pem, mode="x509", versions=versions,
                         client_ca_pem=client_ca_pem, dhe_rsa=dhe_rsa)


def server_config(*, psks: Mapping[bytes, bytes] | None = None, cert_pem: bytes | None = None,
                  key_pem: bytes | None = None, mode: str = "both",
                  versions=(suites.TLS_1_1, suites.TLS_1_2),
                  client_ca_pem: bytes | None = None, dhe_rsa=None) -> TlsConfig:
    """Return a server config offering the seed suites of ``mode`` ("psk", "x509", "both").

    Seed 000 §9.2.2: "The DM Server SHALL support X509 certificate and PSK-TLS", hence "both".
    ``client_ca_pem`` (PEM, one or more CA certificates) turns on client authentication in the
    certificate suites: OMA-TS-DM_Security §5.4, DM-SEC-S-002-M (module docstring).
    ``dhe_rsa`` ((certificate PEM, RSA key PEM), or a function returning them when the first
    DHE_RSA client comes) is the credential of the DHE_RSA suites, served by the standard
    library's ssl (``tls_dhe``); without it an RSA ``cert_pem`` serves them too, and a server
    with neither leaves DHE_RSA out of its list. Build connections with :func:`server_endpoint`.
    Raises ScenarioError for a missing credential or an ECC key below 256 bits, DecodeError
    for PEM that does not parse.
    """
    if psks is not None:
        for identity in psks:
            _check_identity(identity, "tls.psks")
    if mode in ("x509", "both") and cert_pem is None:
        raise ScenarioError("an X.509 server needs a certificate", path="tls.cert",
                            expected="PEM certificate and key")
    if mode == "psk" and psks is None:
        raise ScenarioError("a PSK-TLS server needs PSKs", path="tls.psks",
                            expected="identity -> key mapping")
    certs, key_der, key_is_ecc = ((), b"", False)
    if cert_pem is not None:
        if key_pem is None:
            raise ScenarioError("certificate given without its key", path="tls.key",
                                expected="PEM private key")
        certs, key_der, key_is_ecc = _load_own_credential(cert_pem, key_pem)
        if dhe_rsa is None and not key_is_ecc:
            dhe_rsa = (bytes(cert_pem), bytes(key_pem))
    if isinstance(dhe_rsa, tuple):
        load_rsa_credential(*dhe_rsa)
    chosen = suites.suites_for(mode, server=True)
    if dhe_rsa is None:
        chosen = tuple(s for s in chosen if s.key_exchange not in suites.OPENSSL_SERVED)
    return TlsConfig(server=True, suites=chosen,
                     versions=_check_versions(versions), psks=psks, certs=certs,
                     key_der=key_der, key_is_ecc=key_is_ecc,
                     client_trust=_load_certs(client_ca_pem, "client CA certificate")
                     if client_ca_pem else (), dhe_rsa=dhe_rsa)


def load_rsa_credential(cert_pem: bytes, key_pem: bytes) -> tuple[tuple[bytes, ...], bytes]:
    """Return (chain DER, key PKCS#8 DER) of the RSA credential of the DHE_RSA suites;
    ScenarioError when its key is not RSA, below 2048 bits, or not the certificate's."""
    chain, der, is_ecc = _load_own_credential(cert_pem, key_pem)
    key = serialization.load_der_private_key(der, password=None)
    if is_ecc or not isinstance(key, rsa.RSAPrivateKey):
        raise ScenarioError("the DHE_RSA suites need an RSA certificate", path="tls.dhe_rsa",
                            expected="an RSA certificate and key")
    if key.key_size < 2048:  # OpenSSL's default security level refuses less
        raise ScenarioError(f"RSA key of {key.key_size} bits", path="tls.dhe_rsa",
                            expected=">= 2048-bit RSA key")
    if cx509.load_der_x509_certificate(chain[0]).public_key().public_numbers() != \
            key.public_key().public_numbers():
        raise ScenarioError("the RSA key is not the certificate's", path="tls.dhe_rsa",
                            expected="the key of the certificate")
    return chain, der


def psk_client_config(identity: bytes, key: bytes, *, ca_pem: bytes | None = None,
                      server_hostname: str | None = None,
                      versions=(suites.TLS_1_1, suites.TLS_1_2)) -> TlsConfig:
    """Return a PSK-TLS client config (identity and key from the DM account).

    ``ca_pem`` validates the server certificate of the RSA_PSK suites; without it that
    certificate is not checked (the PSK authenticates the server).
    """
    _check_identity(identity, "tls.psk_identity")
    if not key:
        raise ScenarioError("empty PSK", path="tls.psk", expected="a non-empty key")
    return TlsConfig(server=False, suites=suites.PSK_SUITES, versions=_check_versions(versions),
                     psk=(bytes(identity), bytes(key)),
                     trust=_load_certs(ca_pem, "CA certificate") if ca_pem else (),
                     server_hostname=server_hostname)


def x509_client_config(ca_pem: bytes, server_hostname: str | None, *, cert_pem: bytes | None = None,
                       key_pem: bytes | None = None,
                       versions=(suites.TLS_1_1, suites.TLS_1_2)) -> TlsConfig:
    """Return an X.509-mode client config that validates the server against ``ca_pem``.

    ``server_hostname`` is checked against the certificate; None skips the name check.
    ``cert_pem``/``key_pem`` (the device's chain, leaf first, and key) answer the server's
    CertificateRequest (OMA-TS-DM_Security §5.4); without them the client sends an empty
    Certificate message, which a server requiring client authentication refuses.
    """
    certs, key_der, key_is_ecc = ((), b"", False)
    if cert_pem is not None or key_pem is not None:
        if cert_pem is None or key_pem is None:
            raise ScenarioError("client certificate and key go together", path="tls.client_cert",
                                expected="PEM certificate and key")
        certs, key_der, key_is_ecc = _load_own_credential(cert_pem, key_pem)
    return TlsConfig(server=False, suites=suites.X509_SUITES, versions=_check_versions(versions),
                     trust=_load_certs(ca_pem, "CA certificate"), server_hostname=server_hostname,
                     certs=certs, key_der=key_der, key_is_ecc=key_is_ecc)


def _check_versions(versions) -> tuple[int, int]:
    """Return (lowest, highest) after refusing anything below TLS 1.1 or above TLS 1.2."""
    low, high = versions
    if low not in _MBEDTLS_VERSIONS or high not in _MBEDTLS_VERSIONS or low > high:
        raise ScenarioError(f"TLS versions {low:#06x}..{high:#06x} refused", path="tls.versions",
                            expected="TLS 1.1 (0x0302) to TLS 1.2 (0x0303); never SSL 2.0/3.0")
    return low, high


def _check_identity(identity: bytes, path: str) -> None:
    """Refuse a PSK identity that is not UTF-8 text (python-mbedtls handles ``str`` only)."""
    try:
        bytes(identity).decode("utf-8")
    except (UnicodeDecodeError, TypeError) as exc:
        raise ScenarioError(f"PSK identity {identity!r} is not UTF-8 text", path=path,
                            expected="UTF-8 identity") from exc


def _load_certs(pem: bytes, what: str) -> tuple[bytes, ...]:
    """Return the DER of every certificate in ``pem``; DecodeError if there is none."""
    try:
        certs = cx509.load_pem_x509_certificates(bytes(pem))
    except ValueError as exc:
        raise DecodeError(what, 0, f"not a PEM certificate: {exc}", "PEM CERTIFICATE") from exc
    return tuple(c.public_bytes(serialization.Encoding.DER) for c in certs)


def _load_own_credential(cert_pem: bytes, key_pem: bytes) -> tuple[tuple[bytes, ...], bytes, bool]:
    """Return (chain DER, key PKCS#8 DER, key is ECC) after the 256-bit ECC check."""
    chain = _load_certs(cert_pem, "certificate")
    check_ecc_key_size(cx509.load_der_x509_certificate(chain[0]).public_key(), "tls.cert")
    try:
        key = serialization.load_pem_private_key(bytes(key_pem), password=None)
    except (ValueError, TypeError) as exc:
        raise DecodeError("private key", 0, f"not an unencrypted PEM key: {exc}",
                          "PEM PRIVATE KEY") from exc
    if not isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
        raise ScenarioError(f"{type(key).__name__} keys are not used by the seed suites",
                            path="tls.key", expected="an ECDSA or RSA key")
    check_ecc_key_size(key, "tls.key")
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    return chain, der, isinstance(key, ec.EllipticCurvePrivateKey)


def check_ecc_key_size(key, path: str = "tls.cert") -> None:
    """Raise ScenarioError if ``key`` (a cryptography key) is ECC below 256 bits (§9.2.2)."""
    if isinstance(key, (ec.EllipticCurvePublicKey, ec.EllipticCurvePrivateKey)):
        if key.curve.key_size < suites.MIN_ECC_BITS:
            raise ScenarioError(f"ECC key on {key.curve.name} has {key.curve.key_size} bits",
                                path=path, expected=f">= {suites.MIN_ECC_BITS}-bit ECC key")


# --- events -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class HandshakeDone:
    """The handshake completed: version ("TLSv1.2"), IANA suite name, PSK identity (or None),
    and on a server the identity of the verified client certificate (or None)."""

    version: str
    cipher: str
    psk_identity: bytes | None = None
    peer_identity: str | None = None


@dataclass(frozen=True)
class AppData:
    """Application data decrypted from the peer."""

    data: bytes


@dataclass(frozen=True)
class Closed:
    """The peer sent close_notify (or the transport ended after it)."""


@dataclass(frozen=True)
class TlsFailed:
    """The session failed; ``reason`` says why, ``alert`` is the alert dmsim sent (or None)."""

    reason: str
    alert: int | None = None


Event = Union[HandshakeDone, AppData, Closed, TlsFailed]


# --- cleartext flight reader ------------------------------------------------------------------

@dataclass
class _RecordReader:
    """Cuts one direction's byte stream into TLS records (RFC 5246 §6.2) and reads the
    cleartext handshake messages up to that direction's ChangeCipherSpec.

    Whole records also go to mbedtls one at a time: python-mbedtls 2.10 ``read()`` drops a
    decrypted record when the input buffer ends inside the next one.
    """

    pending: bytearray = field(default_factory=bytearray)
    handshake: bytearray = field(default_factory=bytearray)
    offset: int = 0
    encrypted: bool = False

    def split(self, data: bytes) -> list[bytes]:
        """Return the records completed by ``data``; DecodeError on a bad record header."""
        self.pending += data
        records: list[bytes] = []
        while len(self.pending) >= 5:
            ctype, length = self.pending[0], int.from_bytes(self.pending[3:5], "big")
            if not 20 <= ctype <= 23:
                raise DecodeError("TLS record", self.offset, f"content type {ctype}",
                                  "20..23 (an SSL 2.0 hello is refused)")
            if length > _MAX_RECORD:
                raise DecodeError("TLS record", self.offset + 3, f"length {length}",
                                  f"<= {_MAX_RECORD}")
            if len(self.pending) < 5 + length:
                break
            records.append(bytes(self.pending[:5 + length]))
            del self.pending[:5 + length]
            self.offset += 5 + length
        return records

    def messages(self, record: bytes) -> list[tuple[int, bytes]]:
        """Return the handshake messages (type, body) ``record`` completes, until encryption."""
        if self.encrypted:
            return []
        if record[0] == 20:
            self.encrypted = True
        elif record[0] == 22:
            self.handshake += record[5:]
            return self._complete()
        return []

    def _complete(self) -> list[tuple[int, bytes]]:
        out = []
        while len(self.handshake) >= 4:
            length = int.from_bytes(self.handshake[1:4], "big")
            if len(self.handshake) < 4 + length:
                break
            out.append((self.handshake[0], bytes(self.handshake[4:4 + length])))
            del self.handshake[:4 + length]
        return out


def _u16(body: bytes, at: int, what: str) -> int:
    if at + 2 > len(body):
        raise DecodeError(what, at, "message truncated", "2 more bytes")
    return int.from_bytes(body[at:at + 2], "big")


def server_hello_fields(body: bytes) -> tuple[int, int]:
    """Return (version, cipher suite code) of a ServerHello body (RFC 5246 §7.4.1.3)."""
    version = _u16(body, 0, "ServerHello")
    sid_len = body[34] if len(body) > 34 else 0
    return version, _u16(body, 35 + sid_len, "ServerHello")


def ecdhe_curve(body: bytes, suite: suites.SeedSuite) -> int | None:
    """Return the named curve of an ECDHE ServerKeyExchange (RFC 4492 §5.4, RFC 5489 §2).

    None when the curve is not named (explicit curves, which dmsim then refuses as unknown).
    """
    at = 2 + _u16(body, 0, "ServerKeyExchange") if suite.key_exchange == "ECDHE_PSK" else 0
    if at >= len(body) or body[at] != 3:  # ECCurveType named_curve
        return None
    return _u16(body, at + 1, "ServerKeyExchange")


def first_certificate(body: bytes) -> bytes | None:
    """Return the DER of the first certificate of a Certificate message (RFC 5246 §7.4.2)."""
    if len(body) < 6:
        return None
    length = int.from_bytes(body[3:6], "big")
    return body[6:6 + length] or None


def psk_identity_of(body: bytes) -> bytes:
    """Return the psk_identity opening a PSK ClientKeyExchange (RFC 4279 §2, §3, §4)."""
    length = _u16(body, 0, "ClientKeyExchange")
    return body[2:2 + length]


# --- endpoint ---------------------------------------------------------------------------------

class _Refused(Exception):
    """Internal: a dmsim check refused the handshake (carries the alert to send)."""

    def __init__(self, reason: str, alert: int):
        super().__init__(reason)
        self.reason, self.alert = reason, alert


class RecordEndpoint:
    """What every server/client TLS endpoint of dmsim shares (:class:`TlsEndpoint` on Mbed TLS,
    ``tls_dhe.DheRsaEndpoint`` on the standard library's ssl): cutting the peer's bytes into
    records, dmsim's own checks of the cleartext handshake flights (``_inspect``) before the
    engine sees them, and the binding of a verified client certificate. A subclass gives the
    engine's input (``_to_engine``) and its ``_inspect``/``_handshake``/``_read``/``_refuse``/``_fail``."""

    state: str
    peer_certificate: bytes | None
    peer_identity: str | None

    def receive_data(self, data: bytes) -> list[Event]:
        """Return the events caused by ``data`` from the peer; b"" means the transport ended."""
        self._events = []
        if self.state in ("failed", "closed"):
            return []
        if not data:
            self._fail("transport closed by the peer" if self.state == "handshake"
                       else "transport closed without close_notify")
            return self._events
        try:
            records, error = self._incoming.split(bytes(data)), None
        except DecodeError as exc:
            records, error = [], exc
        for record in records:
            if self.state == "handshake":
                try:
                    self._inspect(self._incoming.messages(record))
                except DecodeError as exc:
                    self._refuse(str(exc), ALERT_ILLEGAL_PARAMETER)
                except _Refused as exc:
                    self._refuse(exc.reason, exc.alert)
            if self.state not in ("handshake", "open"):
                return self._events
            self._to_engine(record)
            if self.state == "handshake":
                self._handshake()
            if self.state == "open":
                self._read()
        if error is not None and self.state in ("handshake", "open"):
            if self.state == "handshake":
                self._refuse(str(error), ALERT_ILLEGAL_PARAMETER)
            else:
                self._fail(str(error))
        return self._events

    def _bind_peer(self, der: bytes | None) -> bool:
        """Keep the verified client certificate ``der`` and the identity it names; fail the
        endpoint (and return False) when there is none or it names nothing (tls_pki)."""
        if not der:
            self._fail("no verified client certificate")
            return False
        try:
            identity = tls_pki.certificate_identity(der)
        except DecodeError as exc:
            self._fail(str(exc))
            return False
        self.peer_certificate, self.peer_identity = bytes(der), identity
        return True


class TlsEndpoint(RecordEndpoint):
    """One side of a TLS connection, driven by bytes in and bytes out.

    A client queues its ClientHello when created: call :meth:`data_to_send` first.
    """

    def __init__(self, config: TlsConfig):
        self.config = config
        ctx = config.context
        self._buf = ctx.wrap_buffers() if config.server else ctx.wrap_buffers(config.server_hostname)
        self._out = bytearray()
        self._incoming = _RecordReader()
        self._outgoing = _RecordReader()
        self.state = "handshake"  # -> open -> closed, or failed
        self.suite: suites.SeedSuite | None = None
        self.version: int | None = None
        self.psk_identity: bytes | None = config.psk[0] if config.psk else None
        self.peer_certificate: bytes | None = None  # server: the verified client certificate (DER)
        self.peer_identity: str | None = None  # server: the identity it names (tls_pki)
        self._events: list[Event] = []
        if not config.server:
            self._handshake()

    # public API

    def send(self, data: bytes) -> None:
        """Encrypt ``data`` for the peer (read it from :meth:`data_to_send`)."""
        if self.state != "open":
            raise ProtocolError(f"TLS send in state {self.state}")
        data = bytes(data)
        for at in range(0, len(data), _FEED_CHUNK):
            try:
                # write() takes the whole chunk and returns the *ciphertext* length
                self._buf.write(data[at:at + _FEED_CHUNK])
            except mbedtls_exceptions.TLSError as exc:
                self._events = []
                self._fail(f"mbedtls: {exc.msg}")
                raise ProtocolError(f"TLS send failed: {exc.msg}") from exc
            self._drain()

    def data_to_send(self) -> bytes:
        """Return (and forget) the TLS records waiting for the peer."""
        out, self._out = bytes(self._out), bytearray()
        return out

    def close(self) -> None:
        """Queue close_notify (when the session is open) and stop the endpoint."""
        if self.state == "open":
            try:
                self._buf.shutdown()
            except mbedtls_exceptions.TLSError:
                pass
            self._drain()
        if self.state != "failed":
            self.state = "closed"

    # handshake

    def _handshake(self) -> None:
        done = mbedtls_tls.HandshakeStep.HANDSHAKE_OVER
        try:
            while self._buf._handshake_state is not done:
                try:
                    self._buf.do_handshake()
                except mbedtls_tls.WantReadError:
                    break
                except mbedtls_tls.WantWriteError:
                    pass
                self._drain()
        except mbedtls_exceptions.TLSError as exc:
            self._drain()
            self._fail(f"mbedtls: {exc.msg}")
            return
        except _Refused as exc:
            self._refuse(exc.reason, exc.alert)
            return
        self._drain()
        if self._buf._handshake_state is done and self.state == "handshake":
            self._finish_handshake()

    def _finish_handshake(self) -> None:
        version = _VERSION_CODES.get(self._buf.negotiated_tls_version())
        if version is None or version < suites.LOWEST_VERSION:
            self._fail(f"negotiated {self._buf.negotiated_tls_version()}")
            return
        name = (self._buf.cipher() or "").replace("-", "_")
        suite = suites.BY_IANA.get(name)
        if suite is None or suite not in self.config.suites:
            self._fail(f"negotiated suite {name} is not a seed suite")
            return
        self.version, self.suite, self.state = version, suite, "open"
        if not suite.uses_psk:
            self.psk_identity = None
        if self.config.requires_client_cert and not suite.uses_psk:
            self._bind_client_certificate()
            if self.state != "open":
                return
        self._events.append(HandshakeDone(suites.VERSION_NAMES[version], suite.iana,
                                          self.psk_identity, self.peer_identity))

    def _to_engine(self, record: bytes) -> None:
        self._buf.receive_from_network(record)

    def _bind_client_certificate(self) -> None:
        """Read the client certificate Mbed TLS verified (required: its absence is a failure)."""
        try:
            der = self._buf.getpeercert(binary_form=True)
        except mbedtls_exceptions.TLSError:
            der = None
        self._bind_peer(der)

    def _drain(self) -> None:
        data = self._buf.peek_outgoing(1 << 20)
        if not data:
            return
        self._buf.consume_outgoing(len(data))
        if self.config.server and self.state == "handshake":
            for record in self._outgoing.split(data):  # may raise _Refused: flight withheld
                self._inspect(self._outgoing.messages(record))
        self._out += data

    def _inspect(self, messages: list[tuple[int, bytes]]) -> None:
        """Apply dmsim's own checks to cleartext handshake messages; raise _Refused."""
        for kind, body in messages:
            if kind == 1 and self.config.server:  # ClientHello
                version = _u16(body, 0, "ClientHello")
                if version < suites.LOWEST_VERSION:
                    raise _Refused(f"client offers {_version_name(version)} at most",
                                   ALERT_PROTOCOL_VERSION)
            elif kind == 2:  # ServerHello (incoming on a client, outgoing on a server)
                version, code = server_hello_fields(body)
                if version < suites.LOWEST_VERSION:
                    raise _Refused(f"server chose {_version_name(version)}",
                                   ALERT_PROTOCOL_VERSION)
                self.suite = suites.BY_CODE.get(code)
                if self.suite is None or self.suite not in self.config.suites:
                    raise _Refused(f"server chose suite {code:#06x}, not offered",
                                   ALERT_ILLEGAL_PARAMETER)
            elif kind == 11 and not self.config.server:  # server Certificate
                _check_peer_certificate(first_certificate(body))
            elif kind == 11 and self.config.requires_client_cert:  # client Certificate
                der = first_certificate(body)
                if der is None:  # RFC 5246 §7.4.6: an empty list; the server refuses
                    raise _Refused("the client sent no certificate", ALERT_HANDSHAKE_FAILURE)
                _check_peer_certificate(der)
            elif kind == 12 and self.suite is not None and self.suite.uses_ecdhe:
                curve = ecdhe_curve(body, self.suite)
                bits = suites.CURVE_BITS.get(curve, 0) if curve is not None else 0
                if bits < suites.MIN_ECC_BITS:
                    raise _Refused(f"ECDHE curve {curve} has {bits or 'unknown'} bits",
                                   ALERT_INSUFFICIENT_SECURITY)
            elif kind == 16 and self.config.server and self.suite and self.suite.uses_psk:
                self.psk_identity = psk_identity_of(body)

    def _read(self) -> None:
        while True:
            try:
                data = self._buf.read(1 << 14)
            except mbedtls_tls.WantReadError:
                return
            except mbedtls_tls.RaggedEOF:
                self._closed_by_peer()
                return
            except mbedtls_exceptions.TLSError as exc:
                if exc.err == 0x7880:  # MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY
                    self._closed_by_peer()
                else:
                    self._drain()
                    self._fail(f"mbedtls: {exc.msg}")
                return
            if not data:  # python-mbedtls answers b"" when no record is complete
                return
            self._events.append(AppData(data))

    def _closed_by_peer(self) -> None:
        self.state = "closed"
        self._events.append(Closed())

    def _fail(self, reason: str, alert: int | None = None) -> None:
        self.state = "failed"
        self._events.append(TlsFailed(reason, alert))

    def _refuse(self, reason: str, alert: int) -> None:
        """Fail with a fatal alert of our own, sent in clear (no keys are in use yet)."""
        self._out += bytes([21, 3, 3, 0, 2, 2, alert])
        self._fail(reason, alert)


def _check_peer_certificate(der: bytes | None) -> None:
    """Raise _Refused when the peer's certificate holds an ECC key below 256 bits."""
    if der is None:
        return
    try:
        key = cx509.load_der_x509_certificate(der).public_key()
    except ValueError:
        return  # mbedtls refuses what it cannot parse
    try:
        check_ecc_key_size(key, "peer certificate")
    except ScenarioError as exc:
        raise _Refused(exc.detail, ALERT_INSUFFICIENT_SECURITY) from exc


def _version_name(version: int) -> str:
    return suites.VERSION_NAMES.get(version, f"version {version:#06x}")


def server_endpoint(config: TlsConfig):
    """Return a server endpoint for one connection (the :class:`TlsEndpoint` interface).

    A config with DHE_RSA suites (``TlsConfig.openssl_suites``) gets a
    ``tls_dhe.ServerDispatch``, which reads the ClientHello and hands the connection to
    mbedtls, or to the standard library's ssl when the client offers DHE_RSA and no suite
    mbedtls can serve; any other config gets a plain :class:`TlsEndpoint`.
    """
    if not config.server:
        raise ProtocolError("server_endpoint needs a server config")
    if not config.openssl_suites:
        return TlsEndpoint(config)
    from dmsim.network.dm import tls_dhe  # here: tls_dhe imports this module
    return tls_dhe.ServerDispatch(config)
