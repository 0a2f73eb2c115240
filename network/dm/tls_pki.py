"""The lab PKI of X.509 mode: a CA that dmsim makes, the server's and each device's certificate.

OMA-TS-DM_Security-V1_3 §5.4 (DM-SEC-S-002-M): a DM server MUST request client authentication at
the transport layer; seed 000 §9.2.2: in X509 certificate mode both ends authenticate with
certificates, and "When an ECDHE or ECDSA algorithm is used, the minimum key length SHALL be at
least 256 bits". :class:`LabCa` issues, with ECDSA P-256 keys throughout:

- the CA certificate (``BasicConstraints CA``, ``keyCertSign``), which is both sides' trust store;
- the server certificate (subject CN and SAN dNSName = the server's host name, EKU serverAuth);
- one client certificate per device (subject CN = the DevId, e.g. ``IMSI:001010000000042``, SAN
  URI = the same DevId, EKU clientAuth), which the DM server binds to the device: the identity
  it reads from a verified client certificate (:func:`certificate_identity`) must be the DevId
  the SyncML messages of that connection claim (:func:`binding_refusal`);
- beside the ECDSA one, an RSA-2048 server certificate (:meth:`LabCa.issue_server_rsa`) for the
  DHE_RSA suites (``tls_dhe``), which need an RSA server key.

Sans-IO and deterministic: every key is derived from ``secret`` (the caller's seeded random
stream) and a label (``ca``, ``server:<host>``, ``device:<DevId>``) with HMAC-SHA256, so a device's
certificate does not depend on the order in which devices connect; serial numbers are derived
the same way; signatures are RFC 6979 deterministic ECDSA; the validity window is fixed
(2025-01-01 to 2045-01-01) so no clock is read (Mbed TLS and OpenSSL check it against the real
date). The same seed therefore gives the same certificates, byte for byte.

The RSA key is derived too: ``cryptography`` generates RSA keys only from the operating system's
generator, so :func:`derive_rsa_key` draws its primes from the same HMAC-SHA256 stream, in the
manner of FIPS 186-5 Appendix A.1.3 (random probable primes): 1024-bit candidates with the two
top bits set (so n has exactly 2048 bits), p-1 and q-1 prime to e = 65537, |p - q| > 2^924,
trial division by the odd primes below 2000, then Miller-Rabin with 8 rounds of derived bases
(Table B.1 asks for 5 at this size); d = e^-1 mod lcm(p-1, q-1). Python's big integers make it
slow (about half a second to two seconds), so it is made on first use and kept by the
:class:`LabCa`.

Choices where the specs are silent: the identity of a client certificate is its first SAN URI,
else its subject CN; the CA's private key stays inside the :class:`LabCa` object (no accessor
returns it, ``repr`` shows only the name and fingerprint) so it never reaches logs or results;
issued keys are returned as unencrypted PKCS#8 PEM, the form ``tls.py`` loads. A lab CA is a
test fixture, not a production PKI: whoever holds ``secret`` can re-derive every key.
"""
from __future__ import annotations

import datetime
import hashlib
import hmac
import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from dmsim.base.errors import DecodeError, ScenarioError

NOT_BEFORE = datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc)
NOT_AFTER = datetime.datetime(2045, 1, 1, tzinfo=datetime.timezone.utc)
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
MIN_SECRET = 16  # octets of the derivation secret
RSA_BITS, RSA_E = 2048, 65537
_MR_ROUNDS = 8
_SMALL_PRIMES_PRODUCT = math.prod(p for p in range(3, 2000, 2) if all(p % d for d in range(3, int(p ** 0.5) + 1, 2)))


@dataclass(frozen=True)
class Credential:
    """A certificate chain (PEM, leaf first, without the CA) and its private key (PKCS#8 PEM)."""

    cert_pem: bytes
    key_pem: bytes = field(repr=False)
    identity: str = ""


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


class LabCa:
    """A lab certificate authority whose keys all derive from ``secret`` (module docstring)."""

    def __init__(self, secret: bytes, name: str = "dmsim lab CA"):
        if len(secret) < MIN_SECRET:
            raise ScenarioError(f"lab CA secret of {len(secret)} octets", path="tls",
                                expected=f">= {MIN_SECRET} octets")
        self._secret = bytes(secret)
        self.name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "dmsim"),
                               x509.NameAttribute(NameOID.COMMON_NAME, name)])

    def __repr__(self) -> str:
        return f"LabCa({self.name.rfc4514_string()!r}, sha256={self.fingerprint[:16]}...)"

    # derivation

    def _derive(self, label: str, size: int) -> bytes:
        out, counter = b"", 0
        while len(out) < size:
            out += hmac.new(self._secret, f"{label}\x00{counter}".encode(), hashlib.sha256).digest()
            counter += 1
        return out[:size]

    def _key(self, label: str) -> ec.EllipticCurvePrivateKey:
        # 48 octets reduced modulo n-1: the bias is below 2**-128 (FIPS 186-5 A.2.1 style)
        value = int.from_bytes(self._derive("key:" + label, 48), "big") % (_P256_ORDER - 1) + 1
        return ec.derive_private_key(value, ec.SECP256R1())

    def _rsa_key(self, label: str) -> rsa.RSAPrivateKey:
        key = self._rsa_keys.get(label)
        if key is None:
            key = self._rsa_keys[label] = derive_rsa_key(lambda what, size: self._derive(f"rsa:{label}:{what}", size))
        return key

    @cached_property
    def _rsa_keys(self) -> dict[str, rsa.RSAPrivateKey]:
        return {}

    def _serial(self, label: str) -> int:
        return int.from_bytes(self._derive("serial:" + label, 19), "big") | 1  # positive, < 2**152

    @cached_property
    def _ca_key(self) -> ec.EllipticCurvePrivateKey:
        return self._key("ca")

    @cached_property
    def certificate(self) -> x509.Certificate:
        """Return the self-signed CA certificate."""
        key = self._ca_key
        builder = (x509.CertificateBuilder().subject_name(self.name).issuer_name(self.name)
                   .public_key(key.public_key()).serial_number(self._serial("ca"))
                   .not_valid_before(NOT_BEFORE).not_valid_after(NOT_AFTER)
                   .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                   .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                                  critical=True)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                                  critical=False))
        return builder.sign(key, hashes.SHA256(), ecdsa_deterministic=True)

    @property
    def ca_pem(self) -> bytes:
        """Return the CA certificate as PEM: the trust store of both sides."""
        return _pem(self.certificate)

    @property
    def fingerprint(self) -> str:
        """Return the SHA-256 fingerprint of the CA certificate, in hex."""
        return self.certificate.fingerprint(hashes.SHA256()).hex()

    # issuing

    def issue_server(self, hostname: str) -> Credential:
        """Return the server's credential for ``hostname`` (CN and SAN dNSName, EKU serverAuth)."""
        if not hostname:
            raise ScenarioError("empty server host name", path="tls", expected="a host name")
        return self._issue("server:" + hostname, hostname, x509.DNSName(hostname),
                           ExtendedKeyUsageOID.SERVER_AUTH)

    def issue_server_rsa(self, hostname: str) -> Credential:
        """Return the server's RSA-2048 credential for ``hostname`` (as :meth:`issue_server`,
        with an RSA key derived from the secret: module docstring), for the DHE_RSA suites."""
        if not hostname:
            raise ScenarioError("empty server host name", path="tls", expected="a host name")
        label = "server-rsa:" + hostname
        return self._issue(label, hostname, x509.DNSName(hostname), ExtendedKeyUsageOID.SERVER_AUTH,
                           key=self._rsa_key(label))

    def issue_device(self, dev_id: str) -> Credential:
        """Return the client credential of the device ``dev_id`` (CN and SAN URI = DevId, EKU
        clientAuth)."""
        if not dev_id:
            raise ScenarioError("empty DevId", path="tls", expected="the device's DevId")
        return self._issue("device:" + dev_id, dev_id, x509.UniformResourceIdentifier(dev_id),
                           ExtendedKeyUsageOID.CLIENT_AUTH)

    def _issue(self, label: str, common_name: str, san, usage, key=None) -> Credential:
        key = key if key is not None else self._key(label)
        encipher = isinstance(key, rsa.RSAPrivateKey)  # keyEncipherment: RSA key transport
        ca_key = self._ca_key
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
                .issuer_name(self.name).public_key(key.public_key()).serial_number(self._serial(label))
                .not_valid_before(NOT_BEFORE).not_valid_after(NOT_AFTER)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(True, False, encipher, False, False, False, False, False, False),
                               critical=True)
                .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
                .add_extension(x509.SubjectAlternativeName([san]), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                               critical=False)
                .sign(ca_key, hashes.SHA256(), ecdsa_deterministic=True))
        return Credential(_pem(cert), _key_pem(key), common_name)


def derive_rsa_key(draw: Callable[[str, int], bytes]) -> rsa.RSAPrivateKey:
    """Return an RSA-2048 key (e = 65537) whose primes come from ``draw(what, size)``, a
    deterministic source of ``size`` octets per distinct ``what`` (module docstring)."""
    half = RSA_BITS // 2
    p = _derived_prime(draw, "p", half)
    q = _derived_prime(draw, "q", half)
    attempt = 0
    while abs(p - q) >> (half - 100) == 0:  # FIPS 186-5 A.1.3 step 5.4 (never in practice)
        attempt += 1
        q = _derived_prime(draw, f"q{attempt}", half)
    p, q = max(p, q), min(p, q)
    n = p * q
    d = pow(RSA_E, -1, math.lcm(p - 1, q - 1))
    numbers = rsa.RSAPrivateNumbers(p, q, d, rsa.rsa_crt_dmp1(d, p), rsa.rsa_crt_dmq1(d, q),
                                    rsa.rsa_crt_iqmp(p, q), rsa.RSAPublicNumbers(RSA_E, n))
    return numbers.private_key()  # cryptography (OpenSSL) checks the key's consistency


def _derived_prime(draw: Callable[[str, int], bytes], name: str, bits: int) -> int:
    for candidate in range(1 << 20):
        value = int.from_bytes(draw(f"{name}:{candidate}", bits // 8), "big") | (3 << (bits - 2)) | 1
        if math.gcd(value, _SMALL_PRIMES_PRODUCT) != 1 or math.gcd(value - 1, RSA_E) != 1:
            continue
        if _miller_rabin(value, lambda r: draw(f"{name}:{candidate}:base{r}", bits // 8 + 8)):
            return value
    raise ScenarioError("no prime found in 2**20 candidates", path="tls", expected="a prime")  # pragma: no cover


def _miller_rabin(n: int, base_bytes: Callable[[int], bytes]) -> bool:
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for r in range(_MR_ROUNDS):
        x = pow(int.from_bytes(base_bytes(r), "big") % (n - 3) + 2, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def certificate_identity(der: bytes) -> str | None:
    """Return the identity a client certificate names: its first SAN URI, else its subject CN.

    None when it names neither; DecodeError when ``der`` is not a certificate.
    """
    try:
        cert = x509.load_der_x509_certificate(bytes(der))
    except ValueError as exc:
        raise DecodeError("certificate", 0, f"not a DER certificate: {exc}", "X.509 DER") from exc
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    except (x509.ExtensionNotFound, ValueError):
        uris = []
    if uris:
        return uris[0]
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    value = names[0].value if names else None
    return value if isinstance(value, str) else None


def binding_refusal(identity: str | None, dev_id: str | None) -> str | None:
    """Return why a message claiming ``dev_id`` is refused on a connection whose client
    certificate names ``identity`` (None: no client certificate, nothing to bind), or None.

    The DevId of a DM message is its SyncHdr Source LocURI; a certificate naming another device
    (or a message naming none) is refused, so one device's certificate cannot open sessions as
    another device.
    """
    if identity is None:
        return None
    if dev_id != identity:
        return f"client certificate names {identity!r}, the message claims {dev_id!r}"
    return None


__all__ = ["Credential", "LabCa", "certificate_identity", "binding_refusal", "derive_rsa_key"]
