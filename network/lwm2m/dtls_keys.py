"""Key and certificate formats of the LwM2M Security Object for DTLS (seed 004 D.1.1).

Seed 004 D.1.1.2 (RPK mode) stores "a sequence of binary bytes": the public key in "Public Key
or Identity" / "Server Public Key", the private key in "Secret Key", and says a 256-bit ECC key
gives "a 32 byte public key". A P-256 public key is a curve point and cannot be rebuilt from
32 bytes (the x coordinate alone leaves the sign of y open), so dmsim reads every unambiguous
form a deployed LwM2M stack writes and refuses the 32-byte one with a DecodeError:

- SubjectPublicKeyInfo DER (RFC 5280 §4.1.2.7; what RFC 7250 §3 carries on the wire and what
  Leshan stores): 91 bytes for P-256. This is the form dmsim writes (``public_key_to_resource``).
- SEC1 uncompressed point ``04 || X || Y`` (65 bytes) or compressed ``02/03 || X`` (33 bytes).
- the bare coordinates ``X || Y`` (64 bytes), as some tinydtls-based clients store them.

The private key (D.1.1.2 and D.1.1.3: "32 byte private key") is read as the raw 32-byte scalar,
or PKCS#8 / SEC1 DER, or PEM; dmsim writes the raw scalar. Certificate mode (D.1.1.3) stores
"binary X.509v3", i.e. DER; PEM is accepted too. Seed 004 §7.1 and RFC 7252 §9.1.3.2 use P-256
(secp256r1): any other curve is refused with a ScenarioError.

RPK over python-mbedtls: Mbed TLS 2.28 through python-mbedtls 2.10 has no RFC 7250 raw public
keys (no ``client_certificate_type``/``server_certificate_type`` extensions). dmsim therefore
carries the raw key in a minimal self-signed X.509 certificate (``rpk_carrier_certificate``) and
the peer authenticates it by pinning its SubjectPublicKeyInfo against the configured key, never
by a chain (see ``dtls``). The carrier certificate is deterministic: subject/issuer CN
``lwm2m-rpk``, serial derived from the key, the fixed validity window of ``tls_pki``, RFC 6979
signature; nothing in it but the key is authenticated or meaningful.
"""
from __future__ import annotations

import hashlib

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from dmsim.base.errors import DecodeError, ScenarioError
from dmsim.network.dm import tls_pki

P256_COORDINATE = 32
_SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _require_p256(key, path: str):
    if not isinstance(key, (ec.EllipticCurvePublicKey, ec.EllipticCurvePrivateKey)) or \
            not isinstance(key.curve, ec.SECP256R1):
        name = getattr(getattr(key, "curve", None), "name", type(key).__name__)
        raise ScenarioError(f"{name} key", path=path, expected="an ECC P-256 (secp256r1) key")
    return key


def public_key_from_resource(data: bytes, path: str = "security.public_key") -> ec.EllipticCurvePublicKey:
    """Return the P-256 public key stored in a D.1.1.2 resource (module docstring for the forms).

    DecodeError when the bytes are none of the accepted forms (32 bytes included), ScenarioError
    for a key that is not P-256.
    """
    data = bytes(data)
    if data[:1] == b"\x30":  # DER SEQUENCE: SubjectPublicKeyInfo
        try:
            key = serialization.load_der_public_key(data)
        except (ValueError, TypeError) as exc:
            raise DecodeError("SubjectPublicKeyInfo", 0, str(exc), "DER SubjectPublicKeyInfo") from exc
        return _require_p256(key, path)
    if len(data) == 2 * P256_COORDINATE:
        data = b"\x04" + data
    if len(data) in (33, 65) and data[0] in (2, 3, 4):
        try:
            return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), data)
        except ValueError as exc:
            raise DecodeError("EC point", 0, str(exc), "a point on P-256") from exc
    raise DecodeError("public key resource", 0, f"{len(data)} bytes",
                      "SubjectPublicKeyInfo DER, 65/33-byte SEC1 point or 64-byte X||Y "
                      "(a 32-byte x coordinate alone is ambiguous)")


def public_key_to_resource(key: ec.EllipticCurvePublicKey, form: str = "spki") -> bytes:
    """Return ``key`` as resource bytes: "spki" (DER, the default), "sec1" (65 bytes), "xy" (64)."""
    _require_p256(key, "security.public_key")
    if form == "spki":
        return key.public_bytes(*_SPKI)
    point = key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    if form == "sec1":
        return point
    if form == "xy":
        return point[1:]
    raise ScenarioError(f"public key form {form!r}", path="security.public_key",
                        expected="spki, sec1 or xy")


def spki_der(data: bytes) -> bytes:
    """Return the SubjectPublicKeyInfo DER of a public key resource in any accepted form."""
    return public_key_to_resource(public_key_from_resource(data))


def private_key_from_resource(data: bytes, path: str = "security.secret_key") -> ec.EllipticCurvePrivateKey:
    """Return the P-256 private key of a "Secret Key" resource: 32-byte scalar, DER or PEM."""
    data = bytes(data)
    if len(data) == P256_COORDINATE:
        value = int.from_bytes(data, "big")
        try:
            return ec.derive_private_key(value, ec.SECP256R1())
        except ValueError as exc:
            raise DecodeError("private key", 0, "scalar out of range", "1 <= d < n") from exc
    loader = (serialization.load_pem_private_key if data.startswith(b"-----")
              else serialization.load_der_private_key)
    try:
        key = loader(data, password=None)
    except (ValueError, TypeError) as exc:
        raise DecodeError("private key", 0, str(exc),
                          "32-byte P-256 scalar, PKCS#8/SEC1 DER or PEM") from exc
    return _require_p256(key, path)


def private_key_to_resource(key: ec.EllipticCurvePrivateKey) -> bytes:
    """Return the raw 32-byte scalar of a P-256 private key (seed 004 D.1.1.2)."""
    _require_p256(key, "security.secret_key")
    return key.private_numbers().private_value.to_bytes(P256_COORDINATE, "big")


def private_key_der(key: ec.EllipticCurvePrivateKey) -> bytes:
    """Return the PKCS#8 DER of ``key`` (what Mbed TLS loads)."""
    return key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def certificate_der(data: bytes, what: str = "certificate") -> bytes:
    """Return the DER of a certificate given as DER (D.1.1.3) or PEM; DecodeError otherwise."""
    data = bytes(data)
    try:
        cert = (x509.load_pem_x509_certificate(data) if data.startswith(b"-----")
                else x509.load_der_x509_certificate(data))
    except ValueError as exc:
        raise DecodeError(what, 0, str(exc), "X.509 DER or PEM") from exc
    return cert.public_bytes(serialization.Encoding.DER)


def certificate_chain_der(data: bytes) -> tuple[bytes, ...]:
    """Return every certificate of a PEM bundle (or the one certificate of a DER blob), leaf first."""
    data = bytes(data)
    if not data.startswith(b"-----"):
        return (certificate_der(data),)
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise DecodeError("certificate chain", 0, str(exc), "PEM certificates") from exc
    return tuple(c.public_bytes(serialization.Encoding.DER) for c in certs)


def certificate_spki(der: bytes) -> bytes:
    """Return the SubjectPublicKeyInfo DER of a DER certificate (DecodeError if it is none)."""
    try:
        cert = x509.load_der_x509_certificate(bytes(der))
    except ValueError as exc:
        raise DecodeError("certificate", 0, str(exc), "X.509 DER") from exc
    return cert.public_key().public_bytes(*_SPKI)


def rpk_carrier_certificate(key: ec.EllipticCurvePrivateKey) -> bytes:
    """Return the DER of the minimal self-signed certificate that carries ``key``'s public key
    through Mbed TLS in RPK mode (module docstring); only its key is meaningful."""
    _require_p256(key, "security.secret_key")
    spki = key.public_key().public_bytes(*_SPKI)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lwm2m-rpk")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key())
            .serial_number(int.from_bytes(hashlib.sha256(spki).digest()[:16], "big") | 1)
            .not_valid_before(tls_pki.NOT_BEFORE).not_valid_after(tls_pki.NOT_AFTER)
            .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False),
                           critical=True)
            .sign(key, hashes.SHA256(), ecdsa_deterministic=True))
    return cert.public_bytes(serialization.Encoding.DER)


__all__ = ["public_key_from_resource", "public_key_to_resource", "spki_der",
           "private_key_from_resource", "private_key_to_resource", "private_key_der",
           "certificate_der", "certificate_chain_der", "certificate_spki", "rpk_carrier_certificate"]
