"""SyncML DM credentials: ``syncml:auth-basic`` and the digest schemes ``syncml:auth-md5`` and
``syncml:auth-sha256`` (OMA-TS-DM_Security-V1_3 §5.4, digest formula §5.4.2).

Digest = H(B64(H(username ":" password)) ":" nonce), with the nonce as raw octets. The server
side may store only ``B64(H(username:password))`` (:func:`credential_hash`) instead of the
password, which is what the formula is designed for.

Choice where the spec is silent: names and passwords are encoded as UTF-8 before hashing.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

AUTH_BASIC = "syncml:auth-basic"
AUTH_MD5 = "syncml:auth-md5"
AUTH_SHA256 = "syncml:auth-sha256"

_HASHES = {AUTH_MD5: hashlib.md5, AUTH_SHA256: hashlib.sha256}


def credential_hash(name: str, password: str, scheme: str = AUTH_MD5) -> bytes:
    """Return B64(H(name:password)), the part of the digest a server may store (§5.4.2)."""
    h = _HASHES[scheme]
    return base64.b64encode(h(f"{name}:{password}".encode()).digest())


def digest(name: str, password: str, nonce: bytes, scheme: str = AUTH_MD5) -> bytes:
    """Return the raw digest H(B64(H(name:password)):nonce) of §5.4.2."""
    return digest_from_hash(credential_hash(name, password, scheme), nonce, scheme)


def digest_from_hash(cred_hash: bytes, nonce: bytes, scheme: str = AUTH_MD5) -> bytes:
    """Return the raw digest from a stored B64(H(name:password))."""
    return _HASHES[scheme](cred_hash + b":" + nonce).digest()


def basic(name: str, password: str) -> str:
    """Return the ``syncml:auth-basic`` credential: B64(name ":" password) (§5.4)."""
    return base64.b64encode(f"{name}:{password}".encode()).decode("ascii")


@dataclass(frozen=True)
class Credential:
    """A ``Cred`` element's content: the scheme (Meta/Type) and the Data text (b64)."""

    scheme: str
    data: str


def make_credential(scheme: str, name: str, password: str, nonce: bytes) -> Credential:
    """Return the credential the originator sends in SyncHdr/Cred for ``scheme``."""
    if scheme == AUTH_BASIC:
        return Credential(scheme, basic(name, password))
    return Credential(scheme, base64.b64encode(digest(name, password, nonce, scheme)).decode("ascii"))


def check_credential(cred: Credential, scheme: str, name: str, password: str, nonce: bytes) -> bool:
    """Return True when ``cred`` is the credential expected for this account and nonce.

    The comparison is constant-time; a credential of another scheme than ``scheme`` fails
    (§5.4: the session must end when the requested type is not used).
    """
    if cred.scheme != scheme:
        return False
    expected = make_credential(scheme, name, password, nonce)
    return hmac.compare_digest(expected.data.encode(), cred.data.encode())


def check_hashed_credential(cred: Credential, scheme: str, cred_hash: bytes, nonce: bytes) -> bool:
    """Return True when the digest ``cred`` matches a stored B64(H(name:password)) and ``nonce``
    (§5.4.2; the server side of a digest scheme needs nothing more). Basic and unknown schemes
    fail: Basic needs the password itself. Constant-time comparison."""
    if cred.scheme != scheme or scheme not in _HASHES:
        return False
    expected = base64.b64encode(digest_from_hash(cred_hash, nonce, scheme))
    return hmac.compare_digest(expected, cred.data.encode())


def is_digest(scheme: str) -> bool:
    """Return True for the nonce-based digest schemes (auth-md5, auth-sha256)."""
    return scheme in _HASHES
