"""SMS payload security of the LwM2M SMS binding: seed 004 §7.3 and Annex D.1.2.

A policy layer over the shared secured-packet codec (``cards/scp80.py``, ETSI TS 102 225 §5.1,
3GPP TS 31.115 §4.2): the two Security Object resources, the seed's rules on algorithms, SPI and
TAR, and ``protect`` / ``unprotect`` of one command packet whose secured data is a CoAP message.

Resource formats (seed 004 D.1.2; bits per ETSI TS 102 221 §3.4, b8 the MSB):

- "SMS Binding Key Parameters" is 6 octets, ``KIc KID SPI1 TAR(3)``, KIc at octet 0. The seed's
  order KIc, KID, SPI, TAR with a two-octet SPI makes 7, but the resource is 6 octets, and the
  length field wins. The stored SPI octet is the *first* SPI octet (the command's security,
  TS 102 225 §5.1.1); the second octet only sets up the Proof of Receipt, and the binding never
  answers a secured packet (seed 004 §7.3: a badly protected SMS gets no error message; a good
  one gets its CoAP answer as a command packet of its own), so it is sent as ``00`` (no PoR).
- "SMS Binding Secret Keys" is 32 or 48 octets: the KIc key then the KID key, each half the
  resource (16 + 16: AES-128; 24 + 24: 3DES with three keys, or AES-192). The resource's range
  32-48 allows no other even split into key sizes an allowed algorithm takes, so other lengths
  are refused.

The rules (``check_policy`` / ``violations``; each failure is a ``Reason``):

- single DES SHALL NOT be used: KIc 0x?1 / 0x?D and KID 0x?1 refused (``SINGLE_DES``); neither
  the two-key 3DES (0x?5, ``TWO_KEY_3DES``): the seed asks for "Triple DES with three
  different keys", so the three 8-octet parts of a 3DES key must differ (``TDES_KEYS_NOT_DISTINCT``;
  compared without their parity bits, b1 of each octet, as parts differing in parity only are
  the same DES key).
- AES or 3DES-3-key SHALL be used (``KIC_ALGORITHM`` / ``KID_ALGORITHM`` for "known implicitly",
  proprietary and reserved codings); AES only as CBC for KIc (TS 102 225 §5.1.2, 0x?2) and CMAC
  for KID (§5.1.3, 0x?2): other AES modes are ``AES_MODE``. Key lengths as the algorithm
  takes them (``KEY_LENGTH``). KIc and KID may name different families: the seed does not
  forbid it.
- SPI (§5.1.1): cryptographic checksum, ciphering, "process if and only if counter value is
  higher than the value in the RE": the first SPI octet is exactly ``16`` (each missing part is
  its own reason; reserved bits b6-b8 set are ``SPI_RESERVED``).
- TAR in BF FF 00 - BF FF FF (ETSI TS 101 220 §6; ``TAR_RANGE``).

Receiving (``unprotect``) never raises on hostile octets: it returns ``Unprotected`` or a
``Discarded`` verdict whose reason a run counts. The header is checked against the expected
parameters in the order TAR, SPI, KIc, KID (a received single-DES or 2-key-3DES octet is
reported as such, else a mismatch), then the codec checks the ciphertext and the CC, then the
counter: equal to the stored one is ``COUNTER_REPLAYED``, lower ``COUNTER_LOWER``. The second SPI
octet is not checked (it is not one of the stored parameters, the CC covers it, and no PoR is
sent whatever it asks). ``unprotect`` is pure: the caller stores the returned counter, so only a
packet that verified advances it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from dmsim.base.errors import DecodeError, DmsimError, ProtocolError, SecuredPacketError
from dmsim.cards.scp80 import (CounterMode, Integrity, Keyset, ResponseStatus, Spi, check_counter,
                               decode_command, encode_command)
from dmsim.cards.scp80_crypto import CC_LENGTH, checksum_for, cipher_for

KEY_PARAMETERS_LENGTH = 6
SECRET_KEYS_LENGTHS = (32, 48)
TAR_FIRST = bytes.fromhex("bfff00")
TAR_LAST = bytes.fromhex("bfffff")
SPI_REQUIRED = Spi(Integrity.CC, True, CounterMode.HIGHER).encode()[0]  # 0x16
SECOND_SPI_OCTET = 0x00   # no PoR
COMMAND_HEADER_LENGTH = 10  # CPL(2) CHL SPI(2) KIc KID TAR(3), before the ciphered part
COUNTER_PART_LENGTH = 6     # CNTR(5) PCNTR


class Reason(str, Enum):
    """Why a configuration is refused or a received packet discarded (a short code to count)."""

    # rules on the configuration, also verdicts on a received header
    SINGLE_DES = "single_des"
    TWO_KEY_3DES = "two_key_3des"
    AES_MODE = "aes_mode"
    KIC_ALGORITHM = "kic_algorithm"
    KID_ALGORITHM = "kid_algorithm"
    KEY_LENGTH = "key_length"
    TDES_KEYS_NOT_DISTINCT = "3des_keys_not_distinct"
    SPI_INTEGRITY = "spi_integrity"
    SPI_CIPHERING = "spi_ciphering"
    SPI_COUNTER = "spi_counter"
    SPI_RESERVED = "spi_reserved"
    TAR_RANGE = "tar_range"
    # verdicts on a received packet
    MALFORMED = "malformed"
    TAR_MISMATCH = "tar_mismatch"
    SPI_MISMATCH = "spi_mismatch"
    KIC_MISMATCH = "kic_mismatch"
    KID_MISMATCH = "kid_mismatch"
    CIPHERING = "ciphering"
    BAD_MAC = "bad_mac"
    COUNTER_REPLAYED = "counter_replayed"
    COUNTER_LOWER = "counter_lower"
    COUNTER_BLOCKED = "counter_blocked"
    # verdicts of the SMS binding on the TPDU around the packet (sms_binding.py)
    PID = "pid"
    MESSAGE_CLASS = "message_class"
    UDH = "udh"
    CONCATENATED = "concatenated"


class SmsSecurityError(ProtocolError):
    """A configuration or a send the seed's SMS security rules refuse; ``reason`` names the rule."""

    def __init__(self, reason: Reason, message: str):
        self.reason = reason
        self.detail = message
        super().__init__(f"SMS binding security ({reason.value}): {message}")


@dataclass(frozen=True)
class Discarded:
    """A received SMS discarded silently (no reply of any kind): ``reason`` to count, ``detail``."""

    reason: Reason
    detail: str = ""


@dataclass(frozen=True)
class Unprotected:
    """A verified packet's secured data and its counter (the caller's new stored counter)."""

    data: bytes
    counter: int


def _octet(name: str, value: int) -> None:
    if not 0 <= value <= 0xFF:
        raise ProtocolError(f"{name} {value} is not an octet")


@dataclass(frozen=True)
class SmsKeyParameters:
    """The "SMS Binding Key Parameters" resource (seed 004 D.1.2): KIc, KID, first SPI octet, TAR."""

    kic: int
    kid: int
    spi: int
    tar: bytes

    def __post_init__(self) -> None:
        for name in ("kic", "kid", "spi"):
            _octet(name, getattr(self, name))
        if len(self.tar) != 3:
            raise ProtocolError(f"TAR has {len(self.tar)} octets, expected 3")
        object.__setattr__(self, "tar", bytes(self.tar))

    @classmethod
    def decode(cls, data: bytes) -> SmsKeyParameters:
        """Return the parameters in the 6-octet resource value; DecodeError for another length."""
        if len(data) != KEY_PARAMETERS_LENGTH:
            raise DecodeError("sms-key-parameters", min(len(data), KEY_PARAMETERS_LENGTH),
                              f"{len(data)} octets", f"{KEY_PARAMETERS_LENGTH}: KIc KID SPI TAR(3)")
        return cls(data[0], data[1], data[2], bytes(data[3:6]))

    def encode(self) -> bytes:
        """Return the 6-octet resource value."""
        return bytes([self.kic, self.kid, self.spi]) + self.tar

    @property
    def spi_octets(self) -> bytes:
        """Return the two SPI octets sent: the stored one, then ``00`` (no PoR)."""
        return bytes([self.spi, SECOND_SPI_OCTET])


@dataclass(frozen=True)
class SmsBindingKeys:
    """The "SMS Binding Secret Keys" resource (seed 004 D.1): the KIc key, then the KID key."""

    kic_key: bytes = field(repr=False)
    kid_key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kic_key", bytes(self.kic_key))
        object.__setattr__(self, "kid_key", bytes(self.kid_key))

    @classmethod
    def decode(cls, data: bytes) -> SmsBindingKeys:
        """Return the keys of the resource value, halved; DecodeError unless 32 or 48 octets."""
        if len(data) not in SECRET_KEYS_LENGTHS:
            raise DecodeError("sms-secret-keys", 0, f"{len(data)} octets",
                              "32 (two 16-octet keys) or 48 (two 24-octet keys)")
        half = len(data) // 2
        return cls(bytes(data[:half]), bytes(data[half:]))

    def encode(self) -> bytes:
        """Return the resource value; ProtocolError unless two keys of 16 or of 24 octets."""
        value = self.kic_key + self.kid_key
        if len(self.kic_key) != len(self.kid_key) or len(value) not in SECRET_KEYS_LENGTHS:
            raise ProtocolError(f"keys of {len(self.kic_key)} and {len(self.kid_key)} octets do not "
                                "make the resource (two keys of 16 or of 24 octets)")
        return value


# Low nibble of KIc / KID (TS 102 225 §5.1.2, §5.1.3.1) -> the rule it breaks, None if allowed.
_KIC_RULES = {0x1: Reason.SINGLE_DES, 0xD: Reason.SINGLE_DES, 0x5: Reason.TWO_KEY_3DES,
              0x9: None, 0x2: None, 0x6: Reason.AES_MODE, 0xA: Reason.AES_MODE,
              0xE: Reason.AES_MODE}
_KID_RULES = {**_KIC_RULES, 0xD: Reason.KID_ALGORITHM}  # DES-family mode 11 is reserved for KID
_TDES_3KEY = 0x9


def algorithm_reason(octet: int, *, kid: bool) -> Reason | None:
    """Return the rule the KIc (or with ``kid`` the KID) octet breaks, or None if it is allowed."""
    rules, other = (_KID_RULES, Reason.KID_ALGORITHM) if kid else (_KIC_RULES, Reason.KIC_ALGORITHM)
    return rules.get(octet & 0xF, other)


def _key_reason(octet: int, key: bytes, *, kid: bool) -> tuple[Reason, str] | None:
    """Return the rule the key for the (allowed) KIc/KID ``octet`` breaks and why, or None."""
    algorithm = checksum_for(octet, redundancy=False) if kid else cipher_for(octet)
    if len(key) not in algorithm.key_sizes:
        return Reason.KEY_LENGTH, f"{algorithm.name} key of {len(key)} octets"
    if octet & 0xF == _TDES_3KEY:
        parts = {bytes(b & 0xFE for b in key[i:i + 8]) for i in (0, 8, 16)}
        if len(parts) != 3:
            return Reason.TDES_KEYS_NOT_DISTINCT, "the three DES keys are not all different"
    return None


def violations(params: SmsKeyParameters, keys: SmsBindingKeys) -> list[tuple[Reason, str]]:
    """Return every rule of seed 004 §7.3 the pair breaks, as (reason, why); [] if none."""
    found: list[tuple[Reason, str]] = []
    for name, octet, key, kid in (("KIc", params.kic, keys.kic_key, False),
                                  ("KID", params.kid, keys.kid_key, True)):
        reason = algorithm_reason(octet, kid=kid)
        bad_key = _key_reason(octet, key, kid=kid) if reason is None else None
        if reason is not None:
            found.append((reason, f"{name} {octet:#04x}"))
        elif bad_key is not None:
            found.append((bad_key[0], f"{name}: {bad_key[1]}"))
    spi = Spi.decode(bytes([params.spi, 0]))
    for broken, reason in ((spi.integrity != Integrity.CC, Reason.SPI_INTEGRITY),
                           (not spi.ciphered, Reason.SPI_CIPHERING),
                           (spi.counter != CounterMode.HIGHER, Reason.SPI_COUNTER),
                           (params.spi & 0xE0, Reason.SPI_RESERVED)):
        if broken:
            found.append((reason, f"SPI {params.spi:#04x}, expected {SPI_REQUIRED:#04x}"))
    if not TAR_FIRST <= params.tar <= TAR_LAST:
        found.append((Reason.TAR_RANGE, f"TAR {params.tar.hex()} outside bfff00-bfffff"))
    return found


def check_policy(params: SmsKeyParameters, keys: SmsBindingKeys) -> None:
    """Return None if the pair meets seed 004 §7.3; else raise SmsSecurityError of the first rule."""
    found = violations(params, keys)
    if found:
        raise SmsSecurityError(*found[0])


def _keyset(params: SmsKeyParameters, keys: SmsBindingKeys) -> Keyset:
    """Return the codec's Keyset for a checked pair (the SPI octet as minimum security level)."""
    check_policy(params, keys)
    return Keyset(params.kic, params.kid, keys.kic_key, keys.kid_key, msl=params.spi)


def max_data_length(params: SmsKeyParameters, packet_room: int) -> int:
    """Return the most secured-data octets a command packet of at most ``packet_room`` holds."""
    block = cipher_for(params.kic).block
    ciphered = (packet_room - COMMAND_HEADER_LENGTH) // block * block
    return max(0, ciphered - COUNTER_PART_LENGTH - CC_LENGTH)


def protect(params: SmsKeyParameters, keys: SmsBindingKeys, counter: int, data: bytes) -> bytes:
    """Return the command packet (CPL onwards, no UDH) securing ``data`` with CNTR ``counter``.

    SmsSecurityError if the pair breaks a rule; ProtocolError if ``counter`` does not fit.
    """
    return encode_command(params.spi_octets, params.kic, params.kid, params.tar, counter, data,
                          _keyset(params, keys))


def header_reason(params: SmsKeyParameters, spi: int, kic: int, kid: int,
                  tar: bytes) -> Reason | None:
    """Return why a received header is not the expected parameters' (TAR, SPI, KIc, KID), or None."""
    if tar != params.tar:
        return Reason.TAR_MISMATCH
    if spi != params.spi:
        return Reason.SPI_MISMATCH
    for octet, expected, mismatch, is_kid in ((kic, params.kic, Reason.KIC_MISMATCH, False),
                                               (kid, params.kid, Reason.KID_MISMATCH, True)):
        if octet != expected:
            rule = algorithm_reason(octet, kid=is_kid)
            return rule if rule in (Reason.SINGLE_DES, Reason.TWO_KEY_3DES) else mismatch
    return None


_STATUS_REASONS = {ResponseStatus.RC_CC_DS_FAILED: Reason.BAD_MAC,
                   ResponseStatus.CIPHERING_ERROR: Reason.CIPHERING}


def unprotect(params: SmsKeyParameters, keys: SmsBindingKeys, stored_counter: int,
              packet: bytes) -> Unprotected | Discarded:
    """Return the verified data and counter of the command ``packet`` (CPL onwards), or a
    Discarded verdict; never raises on the packet's octets.

    ``stored_counter`` is the RE's counter: the packet's must be higher. SmsSecurityError if the
    *local* pair breaks a rule (a configuration error, not a packet's).
    """
    keyset = _keyset(params, keys)
    packet = bytes(packet)
    verdict: list[Reason] = []

    def keys_for(tar: bytes, kic: int, kid: int) -> Keyset | None:
        reason = header_reason(params, packet[3], kic, kid, tar)  # the codec framed 10+ octets
        if reason is not None:
            verdict.append(reason)
            return None
        return keyset

    try:
        command = decode_command(packet, keys_for)
    except SecuredPacketError as err:
        reason = verdict[0] if verdict else _STATUS_REASONS.get(err.status, Reason.MALFORMED)
        return Discarded(reason, err.detail)
    except DmsimError as err:
        return Discarded(Reason.MALFORMED, str(err))
    return counter_verdict(command.cntr, stored_counter, command.data)


def counter_verdict(cntr: int, stored: int, data: bytes) -> Unprotected | Discarded:
    """Return Unprotected if ``cntr`` is higher than ``stored`` (TS 102 225 §5.1.1), else Discarded."""
    status = check_counter(cntr, stored, _SPI_HIGHER)
    if status == ResponseStatus.POR_OK:
        return Unprotected(data, cntr)
    if status == ResponseStatus.CNTR_BLOCKED:
        return Discarded(Reason.COUNTER_BLOCKED, f"stored counter {stored} at its maximum")
    reason = Reason.COUNTER_REPLAYED if cntr == stored else Reason.COUNTER_LOWER
    return Discarded(reason, f"counter {cntr}, stored {stored}")


_SPI_HIGHER = Spi(counter=CounterMode.HIGHER)
