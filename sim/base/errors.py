"""Every error dmsim raises on purpose, in one module.

Each error says what was wrong and where: a scenario file's line and key path, a byte offset in
a PDU, the field of a protocol message. Code that handles input from outside (a YAML file, a PDU,
an HTTP body) raises one of these, never a bare ValueError/KeyError/IndexError, so that a run can
count the failure and go on.
"""
from __future__ import annotations


class DmsimError(Exception):
    """Base class of every error dmsim raises on purpose."""


class ScenarioError(DmsimError):
    """A scenario (or a --set override) that is refused on load.

    ``where`` is ``file:line`` (or ``--set``), ``path`` the dotted key path, ``expected`` what
    the schema wanted there.
    """

    def __init__(self, message: str, *, where: str = "", path: str = "", expected: str = ""):
        self.where = where
        self.path = path
        self.expected = expected
        self.detail = message
        parts = [p for p in (where, path) if p]
        text = ": ".join(parts + [message]) if parts else message
        if expected:
            text += f" (expected {expected})"
        super().__init__(text)


class DecodeError(DmsimError):
    """Bytes that cannot be parsed: ``what`` was being decoded, ``offset`` is where it failed."""

    def __init__(self, what: str, offset: int, message: str, expected: str = ""):
        self.what = what
        self.offset = offset
        self.detail = message
        self.expected = expected
        text = f"{what}: at byte {offset}: {message}"
        if expected:
            text += f" (expected {expected})"
        super().__init__(text)


class ProtocolError(DmsimError):
    """A peer broke the protocol (a message in the wrong state, a missing element)."""


class AuthenticationError(ProtocolError):
    """A credential did not verify (syncml:auth-md5 / auth-basic, OMA-TS-DM_Security §5.4)."""


class BootstrapVerificationError(ProtocolError):
    """A bootstrap message whose HMAC or security parameters do not verify (§5.10.2.3)."""


class ProtectedBootstrapError(BootstrapVerificationError):
    """A 3GPP_GBA protected bootstrap refused (OMA-TS-DM_Security-V1_3 §5.10.2.4): ``reason`` is a
    short code (``content_type``, ``truncated``, ``version``, ``bad_mac``, ``padding``), ``what``
    the part refused (``Content-Type`` or ``payload``) and ``offset`` the character / octet in it
    where the check failed."""

    def __init__(self, reason: str, what: str, offset: int, message: str):
        self.reason = reason
        self.what = what
        self.offset = offset
        self.detail = message
        super().__init__(f"3GPP_GBA bootstrap refused ({reason}): {what} at {offset}: {message}")


class MessageSecurityError(ProtocolError):
    """A DM message refused by transport-neutral integrity or confidentiality (seed 002 §5.4,
    §5.5): ``reason`` is a short code (``unsigned``, ``bad_signature``, ``not_encrypted``,
    ``decrypt_failed``, ``wrong_mac``, ...), the message says what was wrong."""

    def __init__(self, reason: str, message: str):
        self.reason = reason
        self.detail = message
        super().__init__(f"message security ({reason}): {message}")


class CardLinkError(DmsimError):
    """A card link that cannot exchange APDUs: the reader, the card or the PC/SC service failed."""


class PcscUnavailableError(CardLinkError):
    """The PC/SC stack is missing: pyscard not installed, or no pcscd to talk to."""


class ReaderNotFoundError(CardLinkError):
    """No PC/SC reader matches the one asked for (the message lists the readers there are)."""


class CardAbsentError(CardLinkError):
    """The reader is there but holds no card (or the card was removed)."""


class SecuredPacketError(ProtocolError):
    """A secured packet refused by its security checks (ETSI TS 102 225 §5.1.2, §5.2).

    ``status`` is the Response Status Code the Proof of Receipt reports (01 RC/CC/DS failed,
    02 CNTR low, 05 ciphering error, 09 TAR unknown, ...); ``tar``, ``spi`` and ``cntr`` are
    what was read of the packet before it was refused (for the PoR), empty/None if not reached.
    """

    def __init__(self, status: int, message: str, *, tar: bytes = b"", spi: object = None,
                 cntr: int | None = None):
        self.status = status
        self.tar = tar
        self.spi = spi
        self.cntr = cntr
        self.detail = message
        super().__init__(f"secured packet refused, status {status:#04x}: {message}")


class CardError(ProtocolError):
    """A card that refused a command or answered it wrongly.

    ``command`` names it (``"READ BINARY"``), ``apdu`` is the C-APDU sent (as sent, before any
    secure channel wrapping) and ``sw`` the status word answered (None when the SW was fine but
    the data was not).
    """

    def __init__(self, command: str, apdu: bytes, sw: int | None, message: str):
        self.command = command
        self.apdu = bytes(apdu)
        self.sw = sw
        self.detail = message
        status = f" -> {sw:04X}" if sw is not None else ""
        super().__init__(f"{command} ({self.apdu.hex()}){status}: {message}")


class AtSyntaxError(DecodeError):
    """A line from a modem that breaks the AT response syntax (3GPP TS 27.007 §4.1, TS 27.005 §3.1).

    ``line`` is the offending line as received; ``offset`` the character in it where it went
    wrong; ``urc`` the unsolicited result code it belongs to (``"+CMT"``), or "".
    """

    def __init__(self, line: str, offset: int, message: str, expected: str = "", *, urc: str = ""):
        self.line = line
        self.urc = urc
        super().__init__("AT response", offset, f"{message} in {line!r}", expected)


class ModemError(ProtocolError):
    """A modem that answered a command with an error final result code.

    ``result`` is ``"ERROR"``, ``"+CME ERROR"`` (TS 27.007 §9.2), ``"+CMS ERROR"`` (TS 27.005
    §3.2.5) or another final code (``"NO CARRIER"``); ``code`` the numeric <err> (None when the
    modem gave none or gave it as text); ``line`` the final line as received.
    """

    def __init__(self, command: str, result: str, code: int | None = None, line: str = "", message: str = ""):
        self.command = command
        self.result = result
        self.code = code
        self.line = line
        self.detail = message or line or result
        super().__init__(f"{command}: {self.detail}")


class ModemTimeoutError(ModemError):
    """A modem that did not complete ``command`` within ``timeout`` seconds."""

    def __init__(self, command: str, timeout: float):
        self.timeout = timeout
        super().__init__(command, "timeout", message=f"no final result code within {timeout:g} s")
