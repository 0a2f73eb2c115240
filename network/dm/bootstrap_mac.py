"""Transport-neutral bootstrap security: the HMAC and its Content-Type
(OMA-TS-DM_Security-V1_3 §5.10.2.3, §5.10.2.3.2).

The bootstrap document, encoded in WBXML, is the data and the shared secret the key of an
HMAC-SHA1; the result travels as 40 hex digits in the Push Content-Type::

    application/vnd.syncml.dm+wbxml;NETWORKID;<40 HEXDIG>

Choices where the spec is silent (each documented here):

* NETWORKID for GSM/UMTS is the IMSI as EF_IMSI holds it (TS 31.102 §4.2.2), without its length
  byte: the first octet carries the first digit in its high nibble and the parity nibble
  (9 = odd number of digits, 1 = even) in its low nibble, the remaining digits follow in swapped
  nibbles, padded with F. This is the WAP Provisioning NETWPIN rule that deployed DM servers use.
* USERPIN is the PIN's ASCII digits.
* USERPIN_NETWORKID is USERPIN ":" NETWORKID, as §5.10.2.3 defines it (the ASCII PIN, a colon,
  then the NETWORKID octets above).
* The digest is emitted in upper case (as the WAP Provisioning examples show) and accepted in
  either case.
* The WSP names NETWPIN / USERPIN / USERNETWPIN are accepted as aliases of the three key types.
"""
from __future__ import annotations

import hashlib
import hmac
import re

from dmsim.base.errors import BootstrapVerificationError, DecodeError

BOOTSTRAP_MEDIA_TYPE = "application/vnd.syncml.dm+wbxml"
NETWORKID = "NETWORKID"
USERPIN = "USERPIN"
USERPIN_NETWORKID = "USERPIN_NETWORKID"
KEY_TYPES = (NETWORKID, USERPIN, USERPIN_NETWORKID)
_ALIASES = {"NETWPIN": NETWORKID, "USERNETWPIN": USERPIN_NETWORKID}
# fullmatch, never ``$``: ``$`` also matches before a final newline ("1234\n" is not a PIN)
_DIGITS = re.compile(r"[0-9]+")
_VCHAR = re.compile(r"[\x21-\x7e]+")
_HEX40 = re.compile(r"[0-9A-Fa-f]{40}")


def canonical_key_type(name: str) -> str:
    """Return the §5.10.2.3 key type for ``name`` (a key type or its WSP alias)."""
    up = _ALIASES.get(name.upper(), name.upper())
    return up if up in KEY_TYPES else name


def networkid_from_imsi(imsi: str) -> bytes:
    """Return the NETWORKID key octets for an IMSI (EF_IMSI content without the length byte)."""
    if not _DIGITS.fullmatch(imsi or "") or not 6 <= len(imsi) <= 15:
        raise BootstrapVerificationError(f"IMSI {imsi!r} is not 6 to 15 decimal digits")
    parity = 0x9 if len(imsi) % 2 else 0x1
    nibbles = [parity] + [int(d) for d in imsi]
    if len(nibbles) % 2:
        nibbles.append(0xF)
    return bytes(nibbles[i] | (nibbles[i + 1] << 4) for i in range(0, len(nibbles), 2))


def bootstrap_key(key_type: str, *, imsi: str | None = None, userpin: str | None = None) -> bytes:
    """Return the HMAC key for ``key_type`` from the device's IMSI and/or user PIN."""
    kt = canonical_key_type(key_type)
    if kt in (USERPIN, USERPIN_NETWORKID) and not userpin:
        raise BootstrapVerificationError(f"key type {kt} needs a user PIN")
    if userpin and not _VCHAR.fullmatch(userpin):  # the PIN's octets are the key: printable ASCII only
        raise BootstrapVerificationError(f"user PIN {userpin!r} is not printable ASCII")
    if kt == NETWORKID:
        return networkid_from_imsi(imsi or "")
    if kt == USERPIN:
        return userpin.encode("ascii")
    if kt == USERPIN_NETWORKID:
        return userpin.encode("ascii") + b":" + networkid_from_imsi(imsi or "")
    raise BootstrapVerificationError(f"unsupported bootstrap key type {key_type!r}")


def bootstrap_mac(key: bytes, wbxml_body: bytes) -> str:
    """Return HMAC-SHA1(key, body) as 40 upper-case hex digits (§5.10.2.3.2)."""
    return hmac.new(key, wbxml_body, hashlib.sha1).hexdigest().upper()


def format_content_type(key_type: str, mac_hex: str) -> str:
    """Return the Push Content-Type value ``MIMEtype ";" Keytype ";" Digest``."""
    return f"{BOOTSTRAP_MEDIA_TYPE};{canonical_key_type(key_type)};{mac_hex}"


def parse_content_type(value: str) -> tuple[str, str]:
    """Return (key type, digest hex) from a Content-Type value per the §5.10.2.3.2 ABNF.

    Raises DecodeError with the character offset of the first part that does not conform.
    """
    parts = value.split(";")
    if len(parts) != 3:
        raise DecodeError("bootstrap content-type", 0, f"{len(parts)} ';'-separated parts in {value!r}",
                          "MIMEtype;Keytype;Digest")
    mime, key_type, mac = (p.strip() for p in parts)
    if mime.lower() != BOOTSTRAP_MEDIA_TYPE:
        raise DecodeError("bootstrap content-type", 0, f"media type {mime!r}", BOOTSTRAP_MEDIA_TYPE)
    off = len(parts[0]) + 1
    if not _VCHAR.fullmatch(key_type):
        raise DecodeError("bootstrap content-type", off, f"key type {key_type!r}", "1*VCHAR")
    off += len(parts[1]) + 1
    if not _HEX40.fullmatch(mac):
        raise DecodeError("bootstrap content-type", off, f"digest {mac!r}", "40 hex digits")
    return canonical_key_type(key_type), mac.upper()


def verify_bootstrap(content_type: str, wbxml_body: bytes, *, imsi: str | None, userpin: str | None) -> str:
    """Check a received bootstrap's HMAC; return its key type, raise BootstrapVerificationError if bad."""
    try:
        key_type, mac = parse_content_type(content_type)
    except DecodeError as exc:
        raise BootstrapVerificationError(f"bad bootstrap Content-Type: {exc}") from exc
    if key_type not in KEY_TYPES:
        raise BootstrapVerificationError(f"unsupported bootstrap key type {key_type!r}")
    expected = bootstrap_mac(bootstrap_key(key_type, imsi=imsi, userpin=userpin), wbxml_body)
    if not hmac.compare_digest(expected, mac):
        raise BootstrapVerificationError(f"bootstrap HMAC mismatch ({key_type}): got {mac}, expected {expected}")
    return key_type
