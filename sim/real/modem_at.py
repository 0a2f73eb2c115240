"""A real modem driven over a serial port with AT commands: 3GPP TS 27.005 (SMS, PDU mode) and
TS 27.007 §8.17 (AT+CSIM, generic SIM access).

``AtModem(port)`` opens the port with pyserial; ``init()`` sets the modem up:

    ATE0                no echo (the parser copes with echo until then, and after ATZ)
    AT+CMEE=1           numeric +CME ERROR codes (TS 27.007 §9.1)
    AT+CMGF=0           PDU mode (TS 27.005 §3.2.3)
    AT+CSMS=1           phase 2+ service, so that +CMT must be acknowledged (§3.2.1); optional
    AT+CNMI=...         new-message indications (§3.4.1), the first of ``CNMI_OPTIONS`` accepted

``send_pdu`` submits an SMS-SUBMIT with AT+CMGS=<length>, the ``> `` prompt, the hex PDU and
Ctrl-Z (§3.5.1), and returns TP-MR. Incoming SMS come as ``+CMT`` (decoded, then acknowledged
with AT+CNMA, §3.4.4) or as ``+CMTI`` (read with AT+CMGR and deleted with AT+CMGD); they are
queued for ``receive_sms``. ``csim`` exchanges one APDU with AT+CSIM; ``CsimLink`` makes that a
``CardLink`` so that devices/card_host.py reads a card through the modem.

Errors: a final ERROR / +CMS ERROR / +CME ERROR raises ``ModemError`` (``result``, ``code``);
no final result code in time raises ``ModemTimeoutError``; an answer that does not parse raises
``AtSyntaxError`` with its line.

Choices where the specs leave room:
- URCs received during a command are handled after its final result code: the +CNMA for a +CMT
  and the AT+CMGR for a +CMTI cannot be sent while another command runs.
- A +CMT whose PDU does not parse or decode is acknowledged negatively (AT+CNMA=2, RP-ERROR
  without TPDU) and kept in ``rejected``; a refused +CNMA (the modem gave up waiting) is counted
  in ``ack_failures``, not raised.
- After a timeout, the next command first discards the modem's output until it has been quiet
  for ``RESYNC_QUIET`` seconds (at most ``timeout``): the late answer to the timed-out command
  must not be taken for the next one's. A modem later than that can still misalign one answer;
  a URC in that window is lost (an unacknowledged +CMT is sent again by the network).
- ``smsc`` None sends SC address ``00``: the modem uses the one it has (AT+CSCA).
"""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

from dmsim.cards.link import CardLink, TraceHook
from dmsim.devices.at_parser import AtParser, Event, Final, Intermediate, Prompt, Urc, parse_hex
from dmsim.network.sms.address import Address, encode_address
from dmsim.network.sms.tpdu import SmsDeliver, decode_tpdu
from dmsim.base.errors import AtSyntaxError, DmsimError, ModemError, ModemTimeoutError, ProtocolError

CNMI_OPTIONS = ((2, 2, 0, 0, 0), (1, 2, 0, 0, 0), (2, 1, 0, 0, 0), (1, 1, 0, 0, 0))
"""+CNMI <mode>,<mt>,<bm>,<ds>,<bfr> tried in turn: direct +CMT first, then stored + +CMTI."""

POLL = 0.02
"""Seconds one serial read waits before the deadline is looked at again."""
RESYNC_QUIET = 0.2
"""Seconds of silence that end the resynchronisation after a timeout."""
CTRL_Z = "\x1a"


@dataclass(frozen=True)
class IncomingSms:
    """A received SMS: the SC address field (length octet first), the TPDU, and its decoding."""

    sca: bytes
    tpdu: bytes
    sms: SmsDeliver


def sc_address(smsc: Address | bytes | None) -> bytes:
    """Return the RP SC address field for AT+CMGS (TS 24.011 §8.2.5.1: its length counts octets)."""
    if smsc is None:
        return b"\x00"
    if isinstance(smsc, Address):
        field = encode_address(smsc)
        return bytes([len(field) - 1]) + field[1:]
    smsc = bytes(smsc)
    if not smsc or smsc[0] != len(smsc) - 1:
        raise ProtocolError(f"SC address field {smsc.hex()}: its first octet must count the octets after it")
    return smsc


def _last_number(line: str, what: str) -> int:
    """Return the last comma-separated field of ``line`` as an int; AtSyntaxError otherwise."""
    text = line.partition(":")[2].rpartition(",")[2].strip()
    if not (text.isascii() and text.isdigit()):
        raise AtSyntaxError(line, len(line) - len(text), f"{what} {text!r}", "a number")
    return int(text)


class AtModem:
    """A modem on serial ``port``; every command waits at most ``timeout`` seconds."""

    def __init__(self, port: str, baud: int = 115200, timeout: float = 5.0, *,
                 cnmi_options: tuple[tuple[int, ...], ...] = CNMI_OPTIONS):
        import serial  # pyserial: needed only by this driver
        try:
            self._port = serial.Serial(port, baud, timeout=POLL)
        except (serial.SerialException, OSError) as exc:
            raise ProtocolError(f"cannot open the modem port {port}: {exc}") from None
        self.timeout = timeout
        self.cnmi_options = cnmi_options
        self.cnmi: tuple[int, ...] | None = None
        self.ack_needed = False
        self.urcs: deque[Urc] = deque()
        self.rejected: list[DmsimError] = []
        self.ack_failures = 0
        self._parser = AtParser()
        self._incoming: deque[IncomingSms] = deque()
        self._todo: deque[tuple[str, int]] = deque()   # ("ack", n) / ("read", index)
        self._draining = False
        self._resync_needed = False

    def close(self) -> None:
        """Close the serial port."""
        self._port.close()

    def __enter__(self) -> "AtModem":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- set-up ----------------------------------------------------------------------------
    def init(self) -> tuple[int, ...]:
        """Set the modem up (see the module docstring); return the +CNMI values it accepted."""
        for cmd in ("ATE0", "AT+CMEE=1", "AT+CMGF=0"):
            self.command(cmd)
        try:
            self.command("AT+CSMS=1")
            self.ack_needed = True
        except ModemTimeoutError:
            raise
        except ModemError:
            self.ack_needed = False
        refusals = []
        for option in self.cnmi_options:
            try:
                self.command("AT+CNMI=" + ",".join(map(str, option)))
            except ModemTimeoutError:
                raise
            except ModemError as exc:
                refusals.append(exc.line or exc.result)
                continue
            self.cnmi = tuple(option)
            return self.cnmi
        raise ModemError("AT+CNMI", "ERROR", message=f"every +CNMI option refused ({'; '.join(refusals)})")

    # --- commands --------------------------------------------------------------------------
    def command(self, command: str, *, timeout: float | None = None) -> list[str]:
        """Return the information responses of ``command``; ModemError on an error result."""
        return self._drained(self._run, command, timeout)

    def send_pdu(self, tpdu: bytes, smsc: Address | bytes | None = None, *, timeout: float | None = None) -> int:
        """Return the TP-MR the network gave the SMS-SUBMIT ``tpdu`` sent via ``smsc``."""
        text = (sc_address(smsc) + bytes(tpdu)).hex().upper()
        lines = self._drained(self._run, f"AT+CMGS={len(tpdu)}", timeout, text)
        line = next((ln for ln in lines if ln.startswith("+CMGS:")), None)
        if line is None:
            raise AtSyntaxError("", 0, "AT+CMGS answered OK without +CMGS", "+CMGS: <mr>")
        # +CMGS: <mr>[,<ackpdu>]: the MR is the first field.
        mr = line.partition(":")[2].split(",")[0].strip()
        if not (mr.isascii() and mr.isdigit()) or int(mr) > 255:
            raise AtSyntaxError(line, 7, f"TP-MR {mr!r}", "0..255")
        return int(mr)

    def csim(self, apdu: bytes, *, timeout: float | None = None) -> bytes:
        """Return the card's R-APDU (data + SW1 SW2) to the C-APDU ``apdu``, through AT+CSIM."""
        text = bytes(apdu).hex().upper()
        lines = self.command(f'AT+CSIM={len(text)},"{text}"', timeout=timeout)
        line = next((ln for ln in lines if ln.startswith("+CSIM:")), None)
        if line is None:
            raise AtSyntaxError("", 0, "AT+CSIM answered OK without +CSIM", '+CSIM: <length>,"<response>"')
        length_text, _, response = line.partition(":")[2].partition(",")
        response = response.strip().strip('"')
        if length_text.strip() != str(len(response)):
            raise AtSyntaxError(line, 6, f"<length> {length_text.strip()} for {len(response)} hex digits",
                                "the count of hex digits")
        rapdu = parse_hex(response)
        if len(rapdu) < 2:
            raise AtSyntaxError(line, 6, "response without SW1 SW2", "at least 2 octets")
        return rapdu

    # --- incoming SMS ------------------------------------------------------------------------
    def receive_sms(self, timeout: float = 0.0) -> IncomingSms | None:
        """Return the next SMS received, waiting up to ``timeout`` seconds; None if none came."""
        deadline = time.monotonic() + timeout
        while True:
            self._drain()
            if self._incoming:
                return self._incoming.popleft()
            event = self._next_event(deadline)
            if event is None:
                return None
            if isinstance(event, Urc):
                self._on_urc(event)
            # Anything else while idle is a late answer to a command that timed out: dropped.

    # --- internals ---------------------------------------------------------------------------
    def _drained(self, run, *args):
        """Return ``run(*args)``, then do what URCs asked for (also when ``run`` fails)."""
        try:
            result = run(*args)
        except ModemTimeoutError:
            raise
        except ModemError:
            self._drain()
            raise
        self._drain()
        return result

    def _run(self, command: str, timeout: float | None, pdu_text: str | None = None) -> list[str]:
        """Return the information responses of one command (PDU typed after its prompt)."""
        timeout = self.timeout if timeout is None else timeout
        if self._resync_needed:
            self._resync()
        self._parser.begin(command, prompt=pdu_text is not None)
        self._port.write((command + "\r").encode("ascii"))
        deadline = time.monotonic() + timeout
        lines: list[str] = []
        while True:
            event = self._next_event(deadline)
            if event is None:
                self._resync_needed = True
                raise ModemTimeoutError(command, timeout)
            if isinstance(event, Intermediate):
                lines.append(event.line)
            elif isinstance(event, Prompt):
                self._parser.sent_after_prompt(pdu_text)
                self._port.write((pdu_text + CTRL_Z).encode("ascii"))
            elif isinstance(event, Urc):
                self._on_urc(event)
            elif isinstance(event, Final):
                if event.ok:
                    return lines
                raise ModemError(command, event.result, event.code, event.line)
            # an Echo: nothing to do.

    def _resync(self) -> None:
        """Discard what the modem says until it is quiet for ``RESYNC_QUIET`` s (or ``timeout`` ends)."""
        self._resync_needed = False
        self._parser.reset()
        deadline = time.monotonic() + self.timeout
        quiet_until = time.monotonic() + RESYNC_QUIET
        while time.monotonic() < min(quiet_until, deadline):
            if self._port.read(max(1, self._port.in_waiting)):
                quiet_until = time.monotonic() + RESYNC_QUIET

    def _next_event(self, deadline: float) -> Event | None:
        """Return the next parser event, reading the port until ``deadline``; None at the deadline."""
        while True:
            try:
                event = self._parser.next_event()
            except AtSyntaxError as exc:
                self.rejected.append(exc)
                if exc.urc == "+CMT" and self.ack_needed:
                    self._todo.append(("ack", 2))
                continue
            if event is not None:
                return event
            if time.monotonic() >= deadline:
                return None
            data = self._port.read(max(1, self._port.in_waiting))
            if data:
                self._parser.feed(data)

    def _on_urc(self, urc: Urc) -> None:
        if urc.name == "+CMT":
            ok = self._accept(urc.pdu)
            if self.ack_needed:
                self._todo.append(("ack", 0 if ok else 2))
        elif urc.name == "+CMTI":
            try:
                self._todo.append(("read", _last_number(urc.line, "+CMTI <index>")))
            except AtSyntaxError as exc:
                self.rejected.append(exc)
        else:
            self.urcs.append(urc)

    def _accept(self, pdu: bytes) -> bool:
        """Queue the SMS in ``pdu`` (SC address + TPDU); return False if it does not decode."""
        sca, tpdu = pdu[:1 + pdu[0]], pdu[1 + pdu[0]:]
        try:
            sms = decode_tpdu(tpdu, mt=True)
        except DmsimError as exc:
            self.rejected.append(exc)
            return False
        self._incoming.append(IncomingSms(sca, tpdu, sms))
        return True

    def _drain(self) -> None:
        """Send the +CNMA acknowledgements and AT+CMGR reads that URCs asked for."""
        if self._draining:
            return
        self._draining = True
        try:
            while self._todo:
                kind, n = self._todo.popleft()
                if kind == "ack":
                    try:
                        self._run("AT+CNMA" if n == 0 else f"AT+CNMA={n}", None)
                    except ModemTimeoutError:
                        raise
                    except ModemError:
                        self.ack_failures += 1
                else:
                    self._read_stored(n)
        finally:
            self._draining = False

    def _read_stored(self, index: int) -> None:
        """Read the stored SMS ``index`` (AT+CMGR, TS 27.005 §3.4.3), queue it, delete it."""
        try:
            lines = self._run(f"AT+CMGR={index}", None)
            header = next((i for i, ln in enumerate(lines) if ln.startswith("+CMGR:")), None)
            if header is None or header + 1 >= len(lines):
                raise AtSyntaxError(" / ".join(lines), 0, "no +CMGR header and PDU", "+CMGR: ... and a PDU line")
            length = _last_number(lines[header], "+CMGR <length>")
            pdu = parse_hex(lines[header + 1])
            if not pdu or len(pdu) != 1 + pdu[0] + length:
                raise AtSyntaxError(lines[header + 1], 0, f"{len(pdu)} octets for <length> {length}",
                                    "SC address and <length> octets of TPDU")
            self._accept(pdu)
        except ModemTimeoutError:
            raise
        except (ModemError, AtSyntaxError) as exc:
            self.rejected.append(exc)
        self._run(f"AT+CMGD={index}", None)


class CsimLink(CardLink):
    """A CardLink to the modem's SIM through AT+CSIM (``_transmit_raw`` is ``AtModem.csim``).

    AT commands give no ATR (TS 27.007 has none to read), so ``atr`` is empty.
    """

    def __init__(self, modem: AtModem, trace: TraceHook | None = None):
        super().__init__(trace)
        self.modem = modem

    @property
    def atr(self) -> bytes:
        """Return b"": the ATR is not readable with AT commands."""
        return b""

    def _transmit_raw(self, apdu: bytes) -> bytes:
        return self.modem.csim(apdu)
