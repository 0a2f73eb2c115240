"""A virtual GSM modem on a pseudo-terminal, speaking the AT dialect of 3GPP TS 27.007 / TS 27.005
(PDU mode), with switches to misbehave the way real modems do.

``ModemCore`` is the sans-IO state machine: ``receive(bytes) -> bytes`` (the echo and answers to
write back), ``inject_sms`` for a mobile-terminated SMS. ``VirtualModem`` serves it on the master
side of ``os.openpty()`` from a thread; a driver opens ``VirtualModem.path`` as a serial port.

Commands served: AT, ATE0/ATE1, ATZ, ATI, AT+CMEE (TS 27.007 §9.1), AT+CMGF (TS 27.005 §3.2.3,
PDU mode only), AT+CSMS (§3.2.1), AT+CNMI (§3.4.1), AT+CNMA (§3.4.4), AT+CMGS (§3.5.1),
AT+CMGR / AT+CMGD (§3.4.3, §3.5.4), AT+CSIM (TS 27.007 §8.17). An SMS arrives as
``+CMT: ,<length>`` and its PDU (CNMI <mt> 2 or 3) or is stored and announced by
``+CMTI: "SM",<index>`` (<mt> 1) or stored silently (<mt> 0).

Misbehaviour (``Misbehaviour``): echo on from the start, URC lines injected in the middle of
every response, CNMI values refused (+CMS ERROR: 303), a delay before every answer, answers
written a byte at a time, or no answer at all.

Choices where the specs leave room:
- One command per line: ``;``-concatenated commands answer ERROR. Lines end at CR; LF is ignored;
  a line not starting with ``AT`` is ignored, as modems do with line noise.
- The echo is written when the line is complete (a real modem echoes each character).
- ``+CMS ERROR: <err>`` is numeric whatever +CMEE says; ``+CME ERROR: <err>`` follows +CMEE
  (0: plain ERROR; 1 and 2: numeric). Unknown commands answer plain ERROR.
- +CNMA is expected (and accepted) only for a +CMT sent while +CSMS <service> is 1;
  otherwise it answers +CMS ERROR: 340.
- A submit handler returns the TP-MR to report, or None for the modem's own counter; one that
  raises ``ModemError`` makes the modem answer ``+CMS ERROR`` with its code (500 if it has none).
"""
from __future__ import annotations

import os
import select
import threading
import time
import tty
from dataclasses import dataclass
from typing import Callable, Protocol

from dmsim.base.errors import DmsimError, ModemError

CNMI_ALL = ((0, 1, 2, 3), (0, 1, 2, 3), (0, 2), (0, 1, 2), (0, 1))
"""Every +CNMI value of TS 27.005 §3.4.1, per parameter <mode>,<mt>,<bm>,<ds>,<bfr>."""

CTRL_Z, ESC = 0x1A, 0x1B
# TS 27.005 §3.2.5 <err> values used here.
CMS_OPERATION_NOT_SUPPORTED = 303
CMS_INVALID_PDU_PARAMETER = 304
CMS_INVALID_MEMORY_INDEX = 321
CMS_NO_CNMA_EXPECTED = 340
CMS_UNKNOWN = 500
# TS 27.007 §9.2.1 <err> values used here.
CME_OPERATION_NOT_SUPPORTED = 4
CME_SIM_NOT_INSERTED = 10
CME_INCORRECT_PARAMETERS = 50

SubmitHandler = Callable[[bytes, bytes], "int | None"]
"""Called as ``submit(tpdu, sca)`` for each AT+CMGS; returns the TP-MR or None."""


class ApduProcessor(Protocol):
    """A card as AT+CSIM needs it (e.g. ``dmsim.cards.emulated.make_card(profile)``)."""

    def process(self, apdu: bytes) -> bytes:
        """Return the R-APDU (data + SW1 SW2) for one C-APDU."""


@dataclass
class Misbehaviour:
    """How the virtual modem departs from a quiet, fast, compliant one."""

    echo: bool = False
    mid_response_urcs: tuple[str, ...] = ()
    cnmi_allowed: tuple[tuple[int, ...], ...] = CNMI_ALL
    delay: float = 0.0
    dribble: bool = False
    silent: bool = False


def _number(text: str) -> int | None:
    """Return the ASCII decimal ``text`` as an int, or None."""
    text = text.strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) < 10 else None


class ModemCore:
    """The modem's state machine: bytes from the host in, bytes for the host out."""

    def __init__(self, *, submit: SubmitHandler | None = None, card: ApduProcessor | None = None,
                 behaviour: Misbehaviour | None = None):
        self.submit = submit
        self.card = card
        self.behaviour = behaviour or Misbehaviour()
        self.submitted: list[tuple[bytes, bytes, int]] = []   # (sca, tpdu, mr)
        self.acks: list[int] = []                             # the +CNMA <n> received
        self.stored: dict[int, bytes] = {}                    # index -> SCA + TPDU
        self._line = bytearray()
        self._queued_urcs: list[str] = []
        self._reset()

    def _reset(self) -> None:
        """Power-on settings (and ATZ)."""
        self.echo = self.behaviour.echo
        self.cmee = 0
        self.csms = 0
        self.cnmi = (0, 0, 0, 0, 0)
        self.awaiting_ack = 0
        self._next_mr = 0
        self._cmgs_length: int | None = None

    # --- input -----------------------------------------------------------------------------
    def receive(self, data: bytes) -> bytes:
        """Return what the modem writes back (echo and answers) after reading ``data``."""
        out = bytearray()
        for byte in data:
            if self._cmgs_length is not None:
                out += self._pdu_byte(byte)
            elif byte == 0x0D:
                line = self._line.decode("latin-1").strip()
                self._line.clear()
                out += self._command_line(line)
            elif byte != 0x0A and len(self._line) < 4096:
                self._line.append(byte)
        return b"" if self.behaviour.silent else bytes(out)

    def _command_line(self, line: str) -> bytes:
        if line[:2].upper() != "AT":
            return b""
        echo = (line + "\r").encode("latin-1") if self.echo else b""
        return echo + self._execute(line[2:])

    def _pdu_byte(self, byte: int) -> bytes:
        """Collect the PDU typed after ``> ``; Ctrl-Z sends it, ESC cancels."""
        if byte not in (CTRL_Z, ESC):
            if byte not in (0x0D, 0x0A) and len(self._line) < 1024:
                self._line.append(byte)
            return b""
        text = self._line.decode("latin-1").strip()
        self._line.clear()
        length, self._cmgs_length = self._cmgs_length, None
        echo = text.encode("latin-1") if self.echo else b""
        if byte == ESC:
            return echo + self._respond([], "OK")
        return echo + self._submit(text, length)

    # --- answers ---------------------------------------------------------------------------
    def _respond(self, lines: list[str], final: str) -> bytes:
        """Return ``lines`` and ``final`` in V1 format, queued URCs in the middle."""
        urcs = list(self.behaviour.mid_response_urcs) + self._queued_urcs
        self._queued_urcs = []
        body = lines[:1] + urcs + lines[1:]
        return "".join(f"\r\n{line}\r\n" for line in body + [final]).encode("latin-1")

    def _cms(self, code: int) -> bytes:
        return self._respond([], f"+CMS ERROR: {code}")

    def _cme(self, code: int) -> bytes:
        return self._respond([], f"+CME ERROR: {code}" if self.cmee else "ERROR")

    def _execute(self, body: str) -> bytes:
        """Return the answer to the command line ``AT<body>``."""
        upper = body.upper()
        if ";" in body:
            return self._respond([], "ERROR")
        if upper in ("", "E0", "E1", "Z", "I"):
            if upper == "Z":
                self._reset()
            elif upper in ("E0", "E1"):
                self.echo = upper == "E1"
            return self._respond(["dmsim virtual modem"] if upper == "I" else [], "OK")
        for name, handler in self._HANDLERS.items():
            if upper.startswith(name):
                rest = body[len(name):]
                if rest.startswith("=?"):
                    return handler(self, "=?", "")
                if rest.startswith("?") or rest.startswith("="):
                    return handler(self, rest[0], rest[1:])
                return handler(self, "", rest)
        return self._respond([], "ERROR")

    def _cmee_cmd(self, op: str, args: str) -> bytes:
        if op == "?":
            return self._respond([f"+CMEE: {self.cmee}"], "OK")
        if op == "=?":
            return self._respond(["+CMEE: (0-2)"], "OK")
        value = _number(args) if op == "=" else 0
        if value not in (0, 1, 2):
            return self._cme(CME_INCORRECT_PARAMETERS)
        self.cmee = value
        return self._respond([], "OK")

    def _cmgf(self, op: str, args: str) -> bytes:
        if op == "?":
            return self._respond(["+CMGF: 0"], "OK")
        if op == "=?":
            return self._respond(["+CMGF: (0)"], "OK")
        if op == "=" and _number(args) == 0:
            return self._respond([], "OK")
        return self._cms(CMS_OPERATION_NOT_SUPPORTED)

    def _csms_cmd(self, op: str, args: str) -> bytes:
        if op == "?":
            return self._respond([f"+CSMS: {self.csms},1,1,1"], "OK")
        if op == "=?":
            return self._respond(["+CSMS: (0,1)"], "OK")
        value = _number(args) if op == "=" else None
        if value not in (0, 1):
            return self._cms(CMS_OPERATION_NOT_SUPPORTED)
        self.csms = value
        return self._respond(["+CSMS: 1,1,1"], "OK")

    def _cnmi_cmd(self, op: str, args: str) -> bytes:
        allowed = self.behaviour.cnmi_allowed
        if op == "?":
            return self._respond(["+CNMI: " + ",".join(map(str, self.cnmi))], "OK")
        if op == "=?":
            ranges = ",".join("(" + ",".join(map(str, values)) + ")" for values in allowed)
            return self._respond([f"+CNMI: {ranges}"], "OK")
        fields = args.split(",") if op == "=" else []
        values = [_number(f) if f.strip() else 0 for f in fields]
        if len(values) > 5 or any(v is None for v in values):
            return self._cms(CMS_OPERATION_NOT_SUPPORTED)
        values += [0] * (5 - len(values))
        if any(v not in ok for v, ok in zip(values, allowed)):
            return self._cms(CMS_OPERATION_NOT_SUPPORTED)
        self.cnmi = tuple(values)
        return self._respond([], "OK")

    def _cnma(self, op: str, args: str) -> bytes:
        n = _number(args) if op == "=" else 0
        if op not in ("", "=") or n not in (0, 1, 2) or not self.awaiting_ack:
            return self._cms(CMS_NO_CNMA_EXPECTED)
        self.awaiting_ack -= 1
        self.acks.append(n)
        return self._respond([], "OK")

    def _cmgs(self, op: str, args: str) -> bytes:
        length = _number(args) if op == "=" else None
        if length is None or not 7 <= length <= 164:
            return self._cms(CMS_INVALID_PDU_PARAMETER)
        self._cmgs_length = length
        return b"\r\n> "

    def _submit(self, text: str, length: int) -> bytes:
        """Return the answer to the PDU ``text`` of AT+CMGS=<length>."""
        try:
            pdu = bytes.fromhex(text)
        except ValueError:
            return self._cms(CMS_INVALID_PDU_PARAMETER)
        if not pdu or len(pdu) != 1 + pdu[0] + length:
            return self._cms(CMS_INVALID_PDU_PARAMETER)
        sca, tpdu = pdu[:1 + pdu[0]], pdu[1 + pdu[0]:]
        try:
            mr = self.submit(tpdu, sca) if self.submit is not None else None
        except ModemError as exc:
            return self._cms(exc.code if exc.code is not None else CMS_UNKNOWN)
        except DmsimError:
            return self._cms(CMS_UNKNOWN)
        if mr is None:
            mr = self._next_mr
        self._next_mr = (mr + 1) & 0xFF
        self.submitted.append((sca, tpdu, mr))
        return self._respond([f"+CMGS: {mr}"], "OK")

    def _cmgr(self, op: str, args: str) -> bytes:
        index = _number(args) if op == "=" else None
        if index not in self.stored:
            return self._cms(CMS_INVALID_MEMORY_INDEX)
        pdu = self.stored[index]
        return self._respond([f"+CMGR: 0,,{len(pdu) - 1 - pdu[0]}", pdu.hex().upper()], "OK")

    def _cmgd(self, op: str, args: str) -> bytes:
        index = _number(args.split(",")[0]) if op == "=" else None
        if index is None:
            return self._cms(CMS_INVALID_MEMORY_INDEX)
        self.stored.pop(index, None)
        return self._respond([], "OK")

    def _csim(self, op: str, args: str) -> bytes:
        if op == "=?":
            return self._respond([], "OK")
        length_text, _, command = args.partition(",")
        length, command = _number(length_text), command.strip().strip('"')
        if op != "=" or length is None or length != len(command) or length % 2:
            return self._cme(CME_INCORRECT_PARAMETERS)
        try:
            apdu = bytes.fromhex(command)
        except ValueError:
            return self._cme(CME_INCORRECT_PARAMETERS)
        if self.card is None:
            return self._cme(CME_SIM_NOT_INSERTED)
        response = bytes(self.card.process(apdu)).hex().upper()
        return self._respond([f'+CSIM: {len(response)},"{response}"'], "OK")

    _HANDLERS = {"+CMEE": _cmee_cmd, "+CMGF": _cmgf, "+CSMS": _csms_cmd, "+CNMI": _cnmi_cmd,
                 "+CNMA": _cnma, "+CMGS": _cmgs, "+CMGR": _cmgr, "+CMGD": _cmgd, "+CSIM": _csim}

    # --- mobile-terminated SMS -------------------------------------------------------------
    def inject_sms(self, tpdu: bytes, sca: bytes = b"\x00", *, mid_response: bool = False) -> bytes:
        """Return what the modem writes now for an SMS-DELIVER ``tpdu`` arriving from SC ``sca``.

        ``sca`` is the SC address field as on the air (its length octet first; ``00``: none).
        With ``mid_response`` the URC waits for the next answer and goes out in its middle.
        """
        pdu = bytes(sca) + bytes(tpdu)
        mt = self.cnmi[1]
        if mt in (2, 3):
            if self.csms == 1:
                self.awaiting_ack += 1
            lines = [f"+CMT: ,{len(tpdu)}", pdu.hex().upper()]
        else:
            index = max(self.stored, default=0) + 1
            self.stored[index] = pdu
            lines = [f'+CMTI: "SM",{index}'] if mt == 1 else []
        if mid_response:
            self._queued_urcs += lines
            return b""
        if self.behaviour.silent or not lines:
            return b""
        return ("\r\n" + "\r\n".join(lines) + "\r\n").encode("latin-1")


class VirtualModem:
    """``ModemCore`` served on a pseudo-terminal; ``path`` is the serial port a driver opens."""

    def __init__(self, *, submit: SubmitHandler | None = None, card: ApduProcessor | None = None,
                 behaviour: Misbehaviour | None = None):
        self.core = ModemCore(submit=submit, card=card, behaviour=behaviour)
        self._lock = threading.Lock()
        self._master = self._slave = -1
        self._wake_r = self._wake_w = -1
        self._thread: threading.Thread | None = None
        self.path = ""

    def start(self) -> str:
        """Open the pty and serve it from a thread; return the path of its terminal side."""
        self._master, self._slave = os.openpty()
        # Raw at once: a cooked pty would echo the modem's own output back to it.
        tty.setraw(self._slave)
        self.path = os.ttyname(self._slave)
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._serve, name="virtual-modem", daemon=True)
        self._thread.start()
        return self.path

    def stop(self) -> None:
        """Stop serving and close the pty."""
        if self._thread is None:
            return
        os.write(self._wake_w, b"x")
        self._thread.join(5)
        self._thread = None
        for fd in (self._master, self._slave, self._wake_r, self._wake_w):
            os.close(fd)

    def __enter__(self) -> "VirtualModem":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def inject_sms(self, tpdu: bytes, sca: bytes = b"\x00", *, mid_response: bool = False) -> None:
        """Deliver an SMS-DELIVER to the host (see ``ModemCore.inject_sms``)."""
        with self._lock:
            self._write(self.core.inject_sms(tpdu, sca, mid_response=mid_response))

    def _serve(self) -> None:
        while True:
            ready, _, _ = select.select([self._master, self._wake_r], [], [])
            if self._wake_r in ready:
                return
            try:
                data = os.read(self._master, 4096)
            except OSError:      # EIO: no terminal side open
                return
            with self._lock:
                out = self.core.receive(data)
                if out and self.core.behaviour.delay:
                    time.sleep(self.core.behaviour.delay)
                self._write(out)

    def _write(self, data: bytes) -> None:
        if self.core.behaviour.dribble:
            for i in range(len(data)):
                os.write(self._master, data[i:i + 1])
                time.sleep(0.0005)
        elif data:
            os.write(self._master, data)


def loopback_network(modem: VirtualModem, msisdn: str, log: SubmitHandler | None = None,
                     delay: float = 0.01) -> SubmitHandler:
    """Return a submit handler for ``modem`` whose network delivers an SMS-SUBMIT addressed to
    ``msisdn`` (the modem's own number) back to it as an SMS-DELIVER from that number, with the
    same TP-PID, TP-DCS, UDH and user data, ``delay`` seconds after the +CMGS answer (TS 23.040
    §9.2.2.1; TP-SCTS from the wall clock in UTC). Other SMS only go to ``log``."""
    from datetime import datetime, timezone

    from dmsim.network.sms.address import Address
    from dmsim.network.sms.status_report import encode_timestamp
    from dmsim.network.sms.tpdu import SmsDeliver, decode_tpdu
    own = Address.parse(msisdn)
    counter = [0]

    def submit(tpdu: bytes, sca: bytes) -> int:
        mr = log(tpdu, sca) if log is not None else None
        if mr is None:
            counter[0] = (counter[0] + 1) & 0xFF
            mr = counter[0]
        try:
            sms = decode_tpdu(tpdu, mt=False)
        except DmsimError:
            return mr
        if sms.da.digits == own.digits:
            deliver = SmsDeliver(oa=own, pid=sms.pid, dcs=sms.dcs, ies=sms.ies, user_data=sms.user_data,
                                 scts=encode_timestamp(datetime.now(timezone.utc))).encode()
            threading.Timer(delay, modem.inject_sms, (deliver,)).start()
        return mr

    return submit
