"""GlobalPlatform SCP03 secure channel, card side and host side (GP Card Spec v2.3 Amendment D).

Sans-IO: both sides take and return APDU bytes; the caller owns the link. S8 mode only
(8-byte challenges, cryptograms and MACs), short APDUs only, AES-128/192/256 key sets.

- §7.1.1 INITIALIZE UPDATE, §7.1.2 EXTERNAL AUTHENTICATE (security level in P1: 01 C-MAC,
  03 +C-DECRYPTION, 11 C-MAC+R-MAC, 13 +C-DECRYPTION, 33 +R-ENCRYPTION).
- §6.2.4 C-MAC over MAC chaining value || CLA INS P1 P2 Lc || data, the full 16-byte CMAC
  being the next chaining value (16x00 for EXTERNAL AUTHENTICATE); §6.2.5 R-MAC over the
  chaining value of the command answered || response data || SW.
- §6.2.6 the encryption counter starts at 0 when EXTERNAL AUTHENTICATE succeeds and is
  incremented before every later command, with or without data; §6.2.7 a response is encrypted
  with the counter of the command it answers.

Choices where the spec leaves room (documented here once):
- Secure messaging is recognised by the CLA's SM indication: b3 (04) for first interindustry and
  proprietary CLA codings (b7 = 0, e.g. 80..83), b6 (20) for further interindustry codings
  (b7 = 1, e.g. C0..CF). A command without it is "plain".
- Card: the sequence counter passed in is the one the next INITIALIZE UPDATE uses; it is
  incremented after each pseudo-random card challenge, and 6985 is answered once it would
  exceed FFFFFF. INITIALIZE UPDATE always ends the current session first.
- Card: any refusal while a session is open or pending (bad C-MAC, plain command, bad
  cryptogram, malformed APDU, bad padding) ends it; later secured commands get 6982, later
  plain commands pass through at no security level (``security_level == 0``), so the command
  handler decides what needs a secure channel.
- No R-MAC and no R-ENCRYPTION on a response whose SW is neither 9000 nor a warning (62xx,
  63xx): only the SW is returned (§6.2.5, §6.2.7). The host accepts such responses as they are.
- Wrapped case 2/4 commands carry Le = 00 (the protected response is longer than the plain one).
"""
from __future__ import annotations

import hmac
import os
from collections.abc import Callable
from typing import NoReturn
from dataclasses import dataclass

from dmsim.cards import scp03_crypto as crypto
from dmsim.cards.apdu import CommandApdu, build_command, parse_command
from dmsim.base.errors import DecodeError, ProtocolError

# Status words (Amendment D §7.1.1 / §7.1.2, ISO/IEC 7816-4 §5.1.3).
SW_OK = 0x9000
SW_HOST_CRYPTOGRAM_FAILED = 0x6300   # §7.1.2 authentication of host cryptogram failed
SW_WRONG_LENGTH = 0x6700
SW_SECURITY_NOT_SATISFIED = 0x6982   # C-MAC wrong or missing, no secure channel
SW_CONDITIONS_NOT_SATISFIED = 0x6985  # EXTERNAL AUTHENTICATE out of sequence, counter used up
SW_SM_DATA_INCORRECT = 0x6988        # C-DECRYPTION data with a bad length or padding
SW_WRONG_P1P2 = 0x6A86
SW_KEY_NOT_FOUND = 0x6A88            # §7.1.1 referenced data (key version) not found
SW_INS_NOT_SUPPORTED = 0x6D00
SW_CLA_NOT_SUPPORTED = 0x6E00

INS_INITIALIZE_UPDATE = 0x50
INS_EXTERNAL_AUTHENTICATE = 0x82
SCP_ID = 0x03

# Security level bits (EXTERNAL AUTHENTICATE P1, §7.1.2) and the levels a card accepts.
C_MAC = 0x01
C_DECRYPTION = 0x02
R_MAC = 0x10
R_ENCRYPTION = 0x20
SECURITY_LEVELS = frozenset({0x01, 0x03, 0x11, 0x13, 0x33})

# "i" parameter bits (§5.1, SCP03 implementation options).
I_S16 = 0x01
I_PSEUDO_RANDOM_CHALLENGE = 0x10
I_R_MAC = 0x20
I_R_ENCRYPTION = 0x40

# ISD-R of an eUICC (GSMA SGP.22); the AID the published card challenges were derived with.
ISD_R_AID = bytes.fromhex("a0000005591010ffffffff8900000100")


class Scp03Error(ProtocolError):
    """An SCP03 exchange that cannot go on: a bad key set, a card cryptogram or R-MAC that
    does not verify, a response of the wrong shape, a call in the wrong state."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


class SecureChannelError(Scp03Error):
    """A command the card refuses; ``sw`` is the status word to answer with."""

    def __init__(self, sw: int, reason: str):
        super().__init__(reason)
        self.sw = sw

    def __str__(self) -> str:
        return f"{self.sw:04X}: {self.reason}"


@dataclass(frozen=True, slots=True)
class Scp03Keys:
    """A static SCP03 key set: K-ENC, K-MAC, K-DEK of one AES length, and its key version."""

    enc: bytes
    mac: bytes
    dek: bytes
    kvn: int

    def __post_init__(self) -> None:
        if len(self.enc) not in crypto.AES_KEY_LENGTHS or not (
                len(self.enc) == len(self.mac) == len(self.dek)):
            raise Scp03Error("SCP03 keys must all be 16, 24 or 32 bytes long")
        if not 0 <= self.kvn <= 0xFF:
            raise Scp03Error(f"key version number {self.kvn} is not one byte")


def sm_indication(cla: int) -> int:
    """Return the CLA bit that flags secure messaging for this CLA coding."""
    return 0x20 if cla & 0x40 else 0x04


def _parse_short(cmd: bytes) -> CommandApdu | None:
    """Return the short command APDU in ``cmd``, or None if malformed or extended-length."""
    try:
        apdu = parse_command(cmd)
    except DecodeError:
        return None
    return None if apdu.extended else apdu


def _sw_is_protected(sw: bytes) -> bool:
    """Return True if a response with this SW carries R-MAC/R-ENCRYPTION (§6.2.5)."""
    return sw == b"\x90\x00" or sw[0] in (0x62, 0x63)


class _Session:
    """The state both sides keep once EXTERNAL AUTHENTICATE has been built or accepted."""

    __slots__ = ("keys", "level", "chain", "counter")

    def __init__(self, keys: crypto.SessionKeys, level: int):
        self.keys = keys
        self.level = level
        self.chain = bytes(crypto.BLOCK)
        self.counter = 0

    def command_mac(self, mac_input: bytes) -> bytes:
        """Return the 8-byte C-MAC of ``mac_input`` and chain it (§6.2.4)."""
        self.chain = crypto.aes_cmac(self.keys.s_mac, self.chain + mac_input)
        return self.chain[: crypto.S8]

    def response_mac(self, data_and_sw: bytes) -> bytes:
        """Return the 8-byte R-MAC of response data || SW (§6.2.5)."""
        return crypto.aes_cmac(self.keys.s_rmac, self.chain + data_and_sw)[: crypto.S8]


def _session_keys(keys: Scp03Keys, host_challenge: bytes,
                  card_challenge: bytes) -> crypto.SessionKeys:
    """Return the session keys of a static key set for the two challenges."""
    return crypto.session_keys(keys.enc, keys.mac, host_challenge, card_challenge)


class Scp03Card:
    """The card (Security Domain) side: answers INITIALIZE UPDATE / EXTERNAL AUTHENTICATE and
    unwraps / wraps the APDUs of the session. Never raises from the two authentication
    commands: a refusal is the returned SW."""

    def __init__(self, keys: Scp03Keys, sequence_counter: int = 0, i_param: int = 0x70, *,
                 aid: bytes = ISD_R_AID, diversification_data: bytes = bytes(10),
                 random_bytes: Callable[[int], bytes] = os.urandom):
        if i_param & I_S16:
            raise Scp03Error("S16 mode is not supported (i parameter b1 set)")
        if len(diversification_data) != 10:
            raise Scp03Error("key diversification data must be 10 bytes")
        self.keys = keys
        self.sequence_counter = sequence_counter
        self.i_param = i_param
        self.aid = aid
        self.diversification_data = diversification_data
        self._random_bytes = random_bytes
        self._pending: tuple[crypto.SessionKeys, bytes, bytes] | None = None
        self._session: _Session | None = None

    @property
    def security_level(self) -> int:
        """Return the security level of the open session, 0 when there is none."""
        return self._session.level if self._session else 0

    def close(self) -> None:
        """End the session (and any pending authentication)."""
        self._pending = None
        self._session = None

    def initialize_update(self, cmd: bytes) -> bytes:
        """Return the INITIALIZE UPDATE response data + SW, or only an error SW (§7.1.1)."""
        self.close()
        apdu = _parse_short(cmd)
        if apdu is None:
            return _sw(SW_WRONG_LENGTH)
        cla, ins, p1, p2 = apdu.cla, apdu.ins, apdu.p1, apdu.p2
        if ins != INS_INITIALIZE_UPDATE:
            return _sw(SW_INS_NOT_SUPPORTED)
        if not cla & 0x80 or cla & sm_indication(cla):
            return _sw(SW_CLA_NOT_SUPPORTED)
        if p2 != 0:
            return _sw(SW_WRONG_P1P2)
        if len(apdu.data) != crypto.S8:
            return _sw(SW_WRONG_LENGTH)
        if p1 not in (0, self.keys.kvn):
            return _sw(SW_KEY_NOT_FOUND)
        host_challenge = apdu.data
        counter = b""
        if self.i_param & I_PSEUDO_RANDOM_CHALLENGE:
            if self.sequence_counter > 0xFFFFFF:
                return _sw(SW_CONDITIONS_NOT_SATISFIED)
            card_challenge = crypto.card_challenge(self.keys.enc, self.sequence_counter, self.aid)
            counter = self.sequence_counter.to_bytes(3, "big")
            self.sequence_counter += 1
        else:
            card_challenge = self._random_bytes(crypto.S8)
        keys = _session_keys(self.keys, host_challenge, card_challenge)
        card_cryptogram = crypto.cryptogram(keys.s_mac, crypto.CONST_CARD_CRYPTOGRAM,
                                            host_challenge, card_challenge)
        self._pending = (keys, host_challenge, card_challenge)
        return (self.diversification_data + bytes([self.keys.kvn, SCP_ID, self.i_param])
                + card_challenge + card_cryptogram + counter + _sw(SW_OK))

    def external_authenticate(self, cmd: bytes) -> bytes:
        """Return the EXTERNAL AUTHENTICATE SW; 9000 opens the session (§7.1.2)."""
        pending, self._pending = self._pending, None
        if pending is None:
            return _sw(SW_CONDITIONS_NOT_SATISFIED)
        apdu = _parse_short(cmd)
        if apdu is None or len(apdu.data) != 2 * crypto.S8:
            return _sw(SW_WRONG_LENGTH)
        cla, ins, level, p2 = apdu.cla, apdu.ins, apdu.p1, apdu.p2
        if ins != INS_EXTERNAL_AUTHENTICATE:
            return _sw(SW_INS_NOT_SUPPORTED)
        if not cla & sm_indication(cla):
            return _sw(SW_SECURITY_NOT_SATISFIED)
        if p2 != 0 or not self._level_supported(level):
            return _sw(SW_WRONG_P1P2)
        keys, host_challenge, card_challenge = pending
        expected = crypto.cryptogram(keys.s_mac, crypto.CONST_HOST_CRYPTOGRAM,
                                     host_challenge, card_challenge)
        if not hmac.compare_digest(apdu.data[: crypto.S8], expected):
            return _sw(SW_HOST_CRYPTOGRAM_FAILED)
        session = _Session(keys, level)
        mac = session.command_mac(cmd[:5 + crypto.S8])
        if not hmac.compare_digest(apdu.data[crypto.S8:], mac):
            return _sw(SW_SECURITY_NOT_SATISFIED)
        self._session = session
        return _sw(SW_OK)

    def _level_supported(self, level: int) -> bool:
        if level not in SECURITY_LEVELS:
            return False
        if level & R_MAC and not self.i_param & I_R_MAC:
            return False
        return not (level & R_ENCRYPTION and not self.i_param & I_R_ENCRYPTION)

    def unwrap(self, cmd: bytes) -> bytes:
        """Return the plain command APDU of a secured one (a plain command outside a session
        as it is); raise SecureChannelError with the SW to answer otherwise."""
        if self._pending is not None:
            self.close()  # any command but EXTERNAL AUTHENTICATE aborts the pending session
        apdu = _parse_short(cmd)
        if apdu is None:
            self._refuse(SW_WRONG_LENGTH, "not a short command APDU (length does not add up)")
        cla = apdu.cla
        secured = bool(cla & sm_indication(cla))
        session = self._session
        if session is None:
            if secured:
                self._refuse(SW_SECURITY_NOT_SATISFIED, "secured command without a session")
            return cmd
        if not secured:
            self._refuse(SW_SECURITY_NOT_SATISFIED, "plain command in an open secure channel")
        if len(apdu.data) < crypto.S8:
            self._refuse(SW_SECURITY_NOT_SATISFIED, "C-MAC missing")
        body, mac = apdu.data[: -crypto.S8], apdu.data[-crypto.S8:]
        if not hmac.compare_digest(mac, session.command_mac(cmd[:5 + len(body)])):
            self._refuse(SW_SECURITY_NOT_SATISFIED, "C-MAC does not verify")
        session.counter += 1
        if session.level & C_DECRYPTION and body:
            icv = crypto.command_icv(session.keys.s_enc, session.counter)
            plain = crypto.cbc_decrypt(session.keys.s_enc, icv, body)
            if plain is None:
                self._refuse(SW_SM_DATA_INCORRECT, "C-DECRYPTION data length or padding")
            body = plain
        return build_command(cla & ~sm_indication(cla), apdu.ins, apdu.p1, apdu.p2, body, apdu.le)

    def _refuse(self, sw: int, reason: str) -> NoReturn:
        self.close()
        raise SecureChannelError(sw, reason)

    def wrap(self, resp: bytes) -> bytes:
        """Return the response (data + SW) with R-ENCRYPTION and R-MAC as the session asks."""
        if len(resp) < 2:
            raise Scp03Error("a response needs at least the two SW bytes")
        session = self._session
        data, sw = resp[:-2], resp[-2:]
        if session is None or not _sw_is_protected(sw):
            return resp
        if session.level & R_ENCRYPTION and data:
            icv = crypto.response_icv(session.keys.s_enc, session.counter)
            data = crypto.cbc_encrypt(session.keys.s_enc, icv, data)
        if session.level & R_MAC:
            data += session.response_mac(data + sw)
        return data + sw


class Scp03Host:
    """The host (off-card entity) side: builds INITIALIZE UPDATE and EXTERNAL AUTHENTICATE,
    verifies the card cryptogram, then wraps commands and unwraps responses."""

    def __init__(self, keys: Scp03Keys, host_challenge: bytes, security_level: int):
        if len(host_challenge) != crypto.S8:
            raise Scp03Error("the host challenge must be 8 bytes (S8 mode)")
        if security_level not in SECURITY_LEVELS:
            raise Scp03Error(f"security level {security_level:02X} is not one of "
                             + ", ".join(f"{x:02X}" for x in sorted(SECURITY_LEVELS)))
        self.keys = keys
        self.host_challenge = host_challenge
        self.security_level = security_level
        self.card_challenge: bytes | None = None
        self.sequence_counter: int | None = None
        self._session: _Session | None = None

    @property
    def is_open(self) -> bool:
        """Return True once EXTERNAL AUTHENTICATE has been built."""
        return self._session is not None

    def initialize_update_command(self) -> bytes:
        """Return the INITIALIZE UPDATE command APDU (key version in P1)."""
        self._session = None
        return bytes([0x80, INS_INITIALIZE_UPDATE, self.keys.kvn, 0x00, crypto.S8]) \
            + self.host_challenge + b"\x00"

    def process_initialize_update_response(self, resp: bytes) -> bytes:
        """Return the EXTERNAL AUTHENTICATE command for the card's response (data + SW);
        raise Scp03Error if the response is refused or the card cryptogram does not verify."""
        self._session = None
        data = _check_sw(resp, "INITIALIZE UPDATE")
        if len(data) not in (29, 32):
            raise Scp03Error(f"INITIALIZE UPDATE response of {len(data)} bytes (expected 29 or 32)")
        kvn, scp_id, i_param = data[10:13]
        if scp_id != SCP_ID:
            raise Scp03Error(f"card answered for SCP {scp_id:02X}, not SCP03")
        if self.keys.kvn not in (0, kvn):
            raise Scp03Error(f"card used key version {kvn:02X}, not {self.keys.kvn:02X}")
        if i_param & I_S16:
            raise Scp03Error("card runs S16 mode, only S8 is supported")
        if (self.security_level & R_MAC and not i_param & I_R_MAC) or (
                self.security_level & R_ENCRYPTION and not i_param & I_R_ENCRYPTION):
            raise Scp03Error(f"card (i={i_param:02X}) does not support security level "
                             f"{self.security_level:02X}")
        has_counter = bool(i_param & I_PSEUDO_RANDOM_CHALLENGE)
        if len(data) != (32 if has_counter else 29):
            raise Scp03Error(f"INITIALIZE UPDATE response of {len(data)} bytes for i={i_param:02X}")
        card_challenge, card_cryptogram = data[13:21], data[21:29]
        keys = _session_keys(self.keys, self.host_challenge, card_challenge)
        expected = crypto.cryptogram(keys.s_mac, crypto.CONST_CARD_CRYPTOGRAM,
                                     self.host_challenge, card_challenge)
        if not hmac.compare_digest(card_cryptogram, expected):
            raise Scp03Error("card cryptogram does not verify")
        self.card_challenge = card_challenge
        self.sequence_counter = int.from_bytes(data[29:32], "big") if has_counter else None
        host_cryptogram = crypto.cryptogram(keys.s_mac, crypto.CONST_HOST_CRYPTOGRAM,
                                            self.host_challenge, card_challenge)
        session = _Session(keys, self.security_level)
        header = bytes([0x84, INS_EXTERNAL_AUTHENTICATE, self.security_level, 0x00,
                        2 * crypto.S8])
        mac = session.command_mac(header + host_cryptogram)
        self._session = session
        return header + host_cryptogram + mac

    def process_external_authenticate_response(self, resp: bytes) -> None:
        """Return None if the card accepted EXTERNAL AUTHENTICATE; raise Scp03Error otherwise."""
        try:
            _check_sw(resp, "EXTERNAL AUTHENTICATE")
        except Scp03Error:
            self._session = None
            raise

    def wrap(self, cmd: bytes) -> bytes:
        """Return the plain command APDU ``cmd`` with C-DECRYPTION and C-MAC applied."""
        session = self._require_session()
        apdu = _parse_short(cmd)
        if apdu is None:
            raise Scp03Error(f"not a short command APDU: {bytes(cmd).hex()}")
        cla = apdu.cla
        if cla & sm_indication(cla):
            raise Scp03Error("command already has secure messaging set in its CLA")
        session.counter += 1
        body = apdu.data
        if session.level & C_DECRYPTION and body:
            icv = crypto.command_icv(session.keys.s_enc, session.counter)
            body = crypto.cbc_encrypt(session.keys.s_enc, icv, body)
        lc = len(body) + crypto.S8
        if lc > 0xFF:
            raise Scp03Error(f"wrapped command data of {lc} bytes does not fit a short APDU")
        header = bytes([cla | sm_indication(cla), apdu.ins, apdu.p1, apdu.p2])
        mac = session.command_mac(header + bytes([lc]) + body)
        return build_command(*header, body + mac, None if apdu.le is None else 256)

    def unwrap(self, resp: bytes) -> bytes:
        """Return the plain response (data + SW); raise Scp03Error if the R-MAC does not verify
        or the R-ENCRYPTION data is malformed."""
        session = self._require_session()
        if len(resp) < 2:
            raise Scp03Error("a response needs at least the two SW bytes")
        data, sw = resp[:-2], resp[-2:]
        if not _sw_is_protected(sw):
            return resp
        if session.level & R_MAC:
            if len(data) < crypto.S8:
                raise Scp03Error("R-MAC missing")
            data, mac = data[: -crypto.S8], data[-crypto.S8:]
            if not hmac.compare_digest(mac, session.response_mac(data + sw)):
                raise Scp03Error("R-MAC does not verify")
        if session.level & R_ENCRYPTION and data:
            icv = crypto.response_icv(session.keys.s_enc, session.counter)
            plain = crypto.cbc_decrypt(session.keys.s_enc, icv, data)
            if plain is None:
                raise Scp03Error("R-ENCRYPTION data length or padding")
            data = plain
        return data + sw

    def _require_session(self) -> _Session:
        if self._session is None:
            raise Scp03Error("no secure channel: run INITIALIZE UPDATE / EXTERNAL AUTHENTICATE")
        return self._session


def _sw(sw: int) -> bytes:
    """Return a status word as two bytes."""
    return sw.to_bytes(2, "big")


def _check_sw(resp: bytes, what: str) -> bytes:
    """Return the response data if the SW is 9000; raise Scp03Error otherwise."""
    if len(resp) < 2:
        raise Scp03Error(f"{what} response shorter than a status word")
    if resp[-2:] != b"\x90\x00":
        raise Scp03Error(f"card refused {what} with {resp[-2:].hex().upper()}")
    return resp[:-2]
