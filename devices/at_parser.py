"""Responses of a modem to AT commands, line by line: 3GPP TS 27.007 §4 and TS 27.005 §3 (PDU mode).

Sans-IO, in the manner of h11: ``feed(bytes)`` the modem's output as it arrives, then call
``next_event()`` until it returns None. Tell the parser each command line sent (``begin``) and
what was typed after a ``> `` prompt (``sent_after_prompt``) so that it can recognise the echo
(ATE1) and the command's own information responses.

Events:
- ``Echo``: the modem repeating the command line (or the PDU typed after the prompt);
- ``Prompt``: the ``> `` of AT+CMGS / AT+CMGW (TS 27.005 §3.5.1), which has no line end;
- ``Intermediate``: an information response of the pending command (``+CSIM: 4,"9000"``);
- ``Urc``: an unsolicited result code (TS 27.007 §4.1, TS 27.005 §3.4.1). ``+CMT``, ``+CDS``
  and ``+CBM`` in PDU mode take two lines; ``pdu`` is the second, decoded from hex;
- ``Final``: the final result code: OK, ERROR, ``+CME ERROR: <err>`` (TS 27.007 §9.2),
  ``+CMS ERROR: <err>`` (TS 27.005 §3.2.5), NO CARRIER, BUSY, NO ANSWER, NO DIALTONE.

Malformed input raises ``AtSyntaxError`` carrying the offending line; the parser then goes on
with the next line, so one bad line costs one event, never the stream.

Choices where the specs leave room:
- Lines end at CR or LF (S3/S4 as set by default); empty lines are skipped, and spaces around a
  line are dropped (a ``> `` split across reads leaves its space on the next line).
- Verbose result codes only (ATV1): ATV0's digits are not decoded.
- Which lines are URCs: while no command is pending every line is; during a command only the
  names in ``URC_NAMES``, and never a line named like the command's own response (``+CREG: ``
  answering AT+CREG? is intermediate). A vendor URC not in the table (``^RSSI:``) arriving
  during a command is seen as an intermediate response.
- ``+CME ERROR`` / ``+CMS ERROR`` with text instead of a number (AT+CMEE=2) gives ``code`` None.
- The PDU line of ``+CMT: [<alpha>],<length>`` and ``+CDS: <length>`` holds the SC address
  (TS 24.011 §8.2.5.1, its first octet its length) before the <length> octets of TPDU; the
  parser checks that sum. ``+CBM: <length>`` carries no SC address. A line after such a header
  that is not hex raises the error and is then read again as a line of its own.
- A line longer than ``MAX_LINE`` characters without an end is an error; the buffer is emptied.
"""
from __future__ import annotations

from dataclasses import dataclass

from dmsim.base.errors import AtSyntaxError

MAX_LINE = 2048
"""Longest line accepted: +CSIM answers of 256 data bytes are ~530 characters."""

URC_NAMES = frozenset({
    "RING", "+CRING", "+CLIP", "+CCWA", "+CUSD", "+CIEV", "+CREG", "+CGREG", "+CEREG",
    "+CMT", "+CMTI", "+CDS", "+CDSI", "+CBM", "+CBMI",
})
PDU_URCS = {"+CMT": True, "+CDS": True, "+CBM": False}
"""URCs followed by a PDU line, and whether that PDU starts with an SC address."""

FINAL_CODES = frozenset({"OK", "ERROR", "NO CARRIER", "BUSY", "NO ANSWER", "NO DIALTONE"})
ERROR_PREFIXES = ("+CME ERROR", "+CMS ERROR")
_HEX = frozenset("0123456789abcdefABCDEF")


@dataclass(frozen=True)
class Echo:
    """The modem repeating what was sent to it (ATE1)."""

    line: str


@dataclass(frozen=True)
class Prompt:
    """The ``> `` asking for the PDU of AT+CMGS / AT+CMGW."""


@dataclass(frozen=True)
class Intermediate:
    """An information response of the pending command."""

    line: str

    @property
    def value(self) -> str:
        """Return what follows ``<name>:`` (the whole line if it has no name)."""
        return _split_name(self.line)[1]


@dataclass(frozen=True)
class Urc:
    """An unsolicited result code; ``pdu`` holds its PDU line for +CMT/+CDS/+CBM, else None."""

    name: str
    line: str
    pdu: bytes | None = None

    @property
    def tpdu(self) -> bytes | None:
        """Return ``pdu`` without its leading SC address (for +CMT/+CDS), or None."""
        if self.pdu is None or not PDU_URCS.get(self.name, False):
            return self.pdu
        return self.pdu[1 + self.pdu[0]:]


@dataclass(frozen=True)
class Final:
    """A final result code: ``result`` is ``OK``, ``ERROR``, ``+CMS ERROR``, ...; ``code`` its <err>."""

    result: str
    line: str
    code: int | None = None

    @property
    def ok(self) -> bool:
        """Return whether the command succeeded."""
        return self.result == "OK"


Event = Echo | Prompt | Intermediate | Urc | Final


def _is_number(text: str) -> bool:
    """Return whether ``text`` is a decimal number in ASCII digits ('²' is a digit to str.isdigit)."""
    return text.isascii() and text.isdigit()


def _split_name(line: str) -> tuple[str, str]:
    """Return (``+NAME``, rest) of ``+NAME: rest``, or (line, "") for a bare code like RING."""
    name, colon, rest = line.partition(":")
    if not colon:
        return line, ""
    return name.strip(), rest.strip()


def response_name(command: str) -> str:
    """Return the name the information responses of ``command`` carry (``AT+CSIM=..`` -> ``+CSIM``)."""
    body = command.strip()[2:] if command.strip()[:2].upper() == "AT" else command.strip()
    end = len(body)
    for stop in "=?;":
        i = body.find(stop)
        if i != -1:
            end = min(end, i)
    return body[:end].upper()


def parse_hex(line: str, *, urc: str = "") -> bytes:
    """Return the bytes of a hex line; AtSyntaxError naming the first bad character otherwise."""
    for i, ch in enumerate(line):
        if ch not in _HEX:
            raise AtSyntaxError(line, i, f"{ch!r} is not a hex digit", "a hex PDU", urc=urc)
    if len(line) % 2:
        raise AtSyntaxError(line, len(line), "odd number of hex digits", "whole octets", urc=urc)
    return bytes.fromhex(line)


class AtParser:
    """Turns a modem's output into events; see the module docstring."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.reset()

    def reset(self) -> None:
        """Forget the pending command and any buffered output (after a timeout, to resynchronise)."""
        self._buffer.clear()
        self._command: str | None = None
        self._response_name = ""
        self._echo: str | None = None
        self._prompt_expected = False
        self._pdu_header: tuple[str, str, int] | None = None   # (name, header line, tpdu length)

    @property
    def pending(self) -> str | None:
        """Return the command awaiting its final result code, or None."""
        return self._command

    def begin(self, command: str, *, prompt: bool = False) -> None:
        """Note that ``command`` was sent; ``prompt`` when it answers with ``> `` first."""
        self._command = command
        self._response_name = response_name(command)
        self._echo = command.strip()
        self._prompt_expected = prompt

    def sent_after_prompt(self, text: str) -> None:
        """Note that ``text`` (then Ctrl-Z) was typed after the prompt: the modem may echo it."""
        self._echo = text.strip()

    def feed(self, data: bytes) -> None:
        """Add the modem's output ``data`` (any split: half lines are kept for later)."""
        self._buffer += data

    def next_event(self) -> Event | None:
        """Return the next event, None until more data is fed; AtSyntaxError on a malformed line."""
        while True:
            start = 0
            while start < len(self._buffer) and self._buffer[start] in b"\r\n":
                start += 1
            if start:
                del self._buffer[:start]
            if self._prompt_expected and self._buffer[:1] == b">":
                del self._buffer[:2 if self._buffer[1:2] == b" " else 1]
                self._prompt_expected = False
                return Prompt()
            end = next((i for i, b in enumerate(self._buffer) if b in b"\r\n"), -1)
            if end == -1:
                if len(self._buffer) > MAX_LINE:
                    line = self._buffer[:40].decode("latin-1")
                    self._buffer.clear()
                    raise AtSyntaxError(line, MAX_LINE, "line without an end", f"at most {MAX_LINE} characters")
                return None
            line = self._buffer[:end].decode("latin-1").strip()
            del self._buffer[:end]
            if self._pdu_header is not None:
                return self._pdu_line(line)
            event = self._classify(line) if line else None
            if event is not None:
                return event

    def _pdu_line(self, line: str) -> Urc:
        """Return the +CMT/+CDS/+CBM URC completed by its PDU ``line``."""
        name, header, length = self._pdu_header
        self._pdu_header = None
        if not line or any(ch not in _HEX for ch in line):
            # Put the line back: it is probably a result code the modem sent instead.
            self._buffer[:0] = line.encode("latin-1") + b"\r"
            raise AtSyntaxError(header, len(header), f"no PDU line after {name} (got {line!r})",
                                "a hex PDU line", urc=name)
        pdu = parse_hex(line, urc=name)
        sca = 1 + pdu[0] if PDU_URCS[name] else 0
        if len(pdu) != sca + length:
            raise AtSyntaxError(line, 0, f"{len(pdu)} octets, header says {sca} of SC address + {length}",
                                "SC address and <length> octets of TPDU", urc=name)
        return Urc(name, header, pdu)

    def _classify(self, line: str) -> Event | None:
        """Return the event of a complete, non-empty ``line`` (None when it opens a PDU URC)."""
        if self._echo is not None and line.rstrip("\x1a\x1b").strip() == self._echo:
            self._echo = None
            return Echo(line)
        name, rest = _split_name(line)
        if line in FINAL_CODES:
            return self._final(Final(line, line))
        if name in ERROR_PREFIXES:
            return self._final(Final(name, line, int(rest) if _is_number(rest) else None))
        unsolicited = self._command is None or (name in URC_NAMES and name != self._response_name)
        if not unsolicited:
            return Intermediate(line)
        if name in PDU_URCS:
            return self._pdu_header_line(name, line, rest)
        return Urc(name, line)

    def _final(self, event: Final) -> Final:
        self._command = None
        self._echo = None
        self._prompt_expected = False
        return event

    def _pdu_header_line(self, name: str, line: str, rest: str) -> None:
        """Note the +CMT/+CDS/+CBM header ``line``; its URC comes with the next line."""
        # +CMT: [<alpha>],<length>: the alpha may hold commas, the length is the last field.
        length_text = rest.rpartition(",")[2].strip()
        if not _is_number(length_text) or not 0 < int(length_text) <= 255:
            raise AtSyntaxError(line, len(line) - len(length_text), f"{name} <length> {length_text!r}",
                                "1..255", urc=name)
        self._pdu_header = (name, line, int(length_text))
        return None
