"""``dmsim smsc serve``: a lab SMSC speaking SMPP 3.4, and ``dmsim decode smpp`` (the command line in the README).

``smsc serve`` keeps the last ``--keep`` submitted messages in memory (a ring: older ones are
forgotten), prints one JSON line per event on stdout (``listening``, ``bind``, ``submit_sm``,
``deliver_sm``, ``unbind``, ``malformed``, ``closed``) and, when registered_delivery asks for it
(SMPP 3.4 §5.2.17), answers a submit_sm with a delivery receipt (Appendix B) as soon as its
submit_sm_resp is written: the lab SMSC "delivers" at once. With no ``--account`` any system_id
and password bind. Ctrl-C (or SIGTERM) stops it.

The log is bounded (issue 13: 1,500 submits of 60 KB made a 384 MB log): a submit_sm is logged as
a summary (addresses, esm_class, data_coding, the message's length and its UDH ports, each
optional parameter's tag and length), never its payload, and no string in a line is longer
than ``MAX_FIELD`` characters, so a line stays under about 2 KB. Passwords are never logged
(a bind logs its system_id, mode, status and the reason of a refusal). With ``--log FILE`` the
lines go to FILE, rotated at ``--log-max-bytes`` with ``--log-backups`` old files kept (FILE.1,
FILE.2, ...): at most (backups + 1) x max-bytes on disk. The ``listening`` line always goes to
stdout.

``decode smpp`` prints a PDU's header and fields, or with ``--command-id`` a body alone.
"""
from __future__ import annotations

import itertools
import json
import signal
import sys
import threading
import time
from collections import OrderedDict

import click

from dmsim.network.sms import smpp
from dmsim.network.sms.smpp_session import DEFAULT_MAX_BIND_FAILURES
from dmsim.sim.real.audit_log import rotate_backups
from dmsim.sim.real.smpp_server import (DEFAULT_BIND_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTIONS, BindResult,
                                        Closed, SmppServer)
from dmsim.base.errors import DecodeError, DmsimError
from dmsim.sim.cli.toolbox import ParseFailure, decoding, emit, examples, json_option, parse_hex, parse_host_port

MAX_FIELD = 128          # characters of one string in a log line
DEFAULT_KEEP = 256       # messages kept by `smsc serve` (at most 256 x 64 KB PDUs in memory)
DEFAULT_LOG_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_LOG_BACKUPS = 2

TLV_NAMES = {smpp.TAG_RECEIPTED_MESSAGE_ID: "receipted_message_id",
             smpp.TAG_SC_INTERFACE_VERSION: "sc_interface_version",
             smpp.TAG_MESSAGE_PAYLOAD: "message_payload", smpp.TAG_MESSAGE_STATE: "message_state"}


def pdu_fields(pdu: smpp.Pdu) -> dict:
    """Return the PDU as a JSON-ready dict: names from SMPP 3.4 §4, octets as lowercase hex."""
    out: dict = {"command": pdu.name, "command_id": f"0x{pdu.command_id:08x}",
                 "command_status": smpp.status_name(pdu.status), "sequence_number": pdu.sequence}
    for f in pdu.body_fields():
        value = getattr(pdu, f.name)
        out[f.name] = value.hex() if isinstance(value, bytes) else value
    tlvs = getattr(pdu, "tlvs", ())
    if tlvs:
        out["tlvs"] = [{"tag": f"0x{t.tag:04x}", "name": TLV_NAMES.get(t.tag, ""), "value": t.value.hex()}
                       for t in tlvs]
    if isinstance(pdu, smpp.ShortMessagePdu):
        out["message"] = pdu.message.hex()
        if pdu.udhi:
            out["udh"] = _udh(pdu.message)
        if pdu.esm_class & smpp.ESM_CLASS_DELIVERY_RECEIPT:
            out["receipt"] = pdu.message.decode("latin-1")
    return out


def _udh(message: bytes) -> dict | str:
    from dmsim.network.sms.udh import decode_udh
    from dmsim.sim.cli.sms_view import udh_fields
    try:
        ies, rest = decode_udh(message)
    except DecodeError as exc:  # the SMPP PDU is fine; only its user data is not a UDH
        return f"not decodable ({exc})"
    return {**udh_fields(ies), "rest": rest.hex()}


@click.command("smpp", epilog=examples(
    "dmsim decode smpp 0000002100000002000000000000000165736d6500736563726574000034000000   # bind_transmitter",
    "dmsim decode smpp 00000065000000040000000000000002000500444d2d536572766572000101343931373230303030303432"
    "004000000000000004002f0605040b8423f0000603c4af87c74d1f23fdb2cbffe32875d440bc5b7b030800000000010a646d2e65"
    "78616d706c65   # submit_sm carrying a WAP Push"))
@click.argument("hex_input", metavar="HEX")
@click.option("--command-id", "command_id", help="HEX is only a body, of this command_id (hex, e.g. 0x00000004).")
@json_option
def decode_smpp_cmd(hex_input: str, command_id: str | None, as_json: bool) -> None:
    """An SMPP 3.4 PDU (header and body), or a body alone with --command-id."""
    data = parse_hex(hex_input)
    with decoding():
        if command_id is None:
            pdu = smpp.decode_pdu(data)
        else:
            try:
                cid = int(command_id, 16)
            except ValueError:
                raise ParseFailure(f"--command-id: {command_id!r} is not hex") from None
            pdu = smpp.decode_body(cid, data)
    emit(pdu_fields(pdu), as_json)


def _clip(value):
    if isinstance(value, str) and len(value) > MAX_FIELD:
        return value[:MAX_FIELD] + f"...({len(value)} chars)"
    return value


def pdu_summary(pdu: smpp.Pdu) -> dict:
    """Return what the lab SMSC logs of a PDU: its fields without payloads, strings clipped."""
    out: dict = {"command": pdu.name, "command_status": smpp.status_name(pdu.status),
                 "sequence_number": pdu.sequence}
    for f in pdu.body_fields():
        value = getattr(pdu, f.name)
        if f.name in ("short_message", "password"):
            continue
        out[f.name] = _clip(value.hex() if isinstance(value, bytes) else value)
    tlvs = getattr(pdu, "tlvs", ())
    if tlvs:
        out["tlvs"] = [{"tag": f"0x{t.tag:04x}", "name": TLV_NAMES.get(t.tag, ""), "length": len(t.value)}
                       for t in tlvs[:16]]
        if len(tlvs) > 16:
            out["tlvs_more"] = len(tlvs) - 16
    if isinstance(pdu, smpp.ShortMessagePdu):
        out["message_len"] = len(pdu.message)
        if pdu.udhi:
            udh = _udh(pdu.message[:256])       # the UDH is at most 1 + 255 octets (TS 23.040 §9.2.3.24)
            if isinstance(udh, dict):
                udh.pop("rest", None)
            out["udh"] = {k: _clip(v) for k, v in udh.items()} if isinstance(udh, dict) else _clip(udh)
    return out


class LogSink:
    """Where ``smsc serve`` writes its JSON lines: ``echo`` (stdout), or a file rotated at
    ``max_bytes`` keeping ``backups`` old files (``path.1`` the newest)."""

    def __init__(self, path: str | None = None, *, max_bytes: int = DEFAULT_LOG_MAX_BYTES,
                 backups: int = DEFAULT_LOG_BACKUPS, echo=click.echo):
        self.path, self.max_bytes, self.backups, self._echo = path, max_bytes, backups, echo
        self._file = open(path, "a", encoding="utf-8") if path else None
        self._size = self._file.tell() if self._file else 0

    def write(self, line: str) -> None:
        if self._file is None:
            self._echo(line)
            sys.stdout.flush()
            return
        data = line + "\n"
        if self._size and self._size + len(data) > self.max_bytes:
            self._rotate()
        self._file.write(data)
        self._file.flush()
        self._size += len(data)

    def _rotate(self) -> None:
        self._file.close()
        rotate_backups(self.path, self.backups)
        self._file = open(self.path, "w", encoding="utf-8")
        self._size = 0

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


class MemoryStore:
    """The lab SMSC's store: numbers, keeps the last ``keep`` messages, logs summaries, sends receipts."""

    def __init__(self, echo=click.echo, clock=time.time, *, keep: int = DEFAULT_KEEP, sink: LogSink | None = None):
        self.messages: OrderedDict[str, tuple[str, smpp.SubmitSm]] = OrderedDict()
        self.keep = keep
        self.server = None
        self._ids = itertools.count(1)
        self._sink = sink if sink is not None else LogSink(echo=echo)
        self._clock = clock
        self._lock = threading.Lock()

    def log(self, record: dict) -> None:
        """Write one JSON line (whole, even with several connections writing)."""
        line = json.dumps(record, sort_keys=True)
        with self._lock:
            self._sink.write(line)

    def on_submit(self, system_id: str, pdu: smpp.SubmitSm) -> str:
        """Return the message_id given to ``pdu`` (ten digits, as Appendix B shows them)."""
        with self._lock:
            message_id = f"{next(self._ids):010d}"
            self.messages[message_id] = (system_id, pdu)
            while len(self.messages) > self.keep:
                self.messages.popitem(last=False)
        self.log({"event": "submit_sm", "system_id": system_id, "message_id": message_id, **pdu_summary(pdu)})
        return message_id

    def on_submitted(self, system_id: str, pdu: smpp.SubmitSm, message_id: str) -> None:
        """Send the delivery receipt when registered_delivery asks for one of a delivery."""
        if not smpp.wants_receipt(pdu.registered_delivery, delivered=True):
            return
        now = time.strftime("%y%m%d%H%M", time.localtime(self._clock()))
        receipt = smpp.delivery_receipt(pdu, message_id, submit_date=now, done_date=now)
        try:
            sequence = self.server.deliver(system_id, receipt)
        except DmsimError as exc:
            self.log({"event": "deliver_sm", "receipt_for": message_id, "error": _clip(str(exc))})
            return
        self.log({"event": "deliver_sm", "receipt_for": message_id, "system_id": system_id,
                  "sequence_number": sequence})

    def on_event(self, peer: tuple, event: object) -> None:
        """Log bind outcomes, unbinds, refused PDUs and timeouts (submit_sm is logged by ``on_submit``)."""
        where = f"{peer[0]}:{peer[1]}"
        if isinstance(event, BindResult):
            record = {"event": "bind", "peer": where, "mode": event.mode, "system_id": _clip(event.system_id),
                      "command_status": smpp.status_name(event.status)}
            if event.reason:
                record["reason"] = event.reason
            self.log(record)
        elif isinstance(event, Closed):
            self.log({"event": "closed", "peer": where, "reason": event.reason})
        elif isinstance(event, smpp.Unbind):
            self.log({"event": "unbind", "peer": where})
        elif isinstance(event, smpp.Pdu):
            return
        else:
            self.log({"event": "malformed", "peer": where, "offset": event.offset, "error": _clip(event.message),
                      "command_status": smpp.status_name(event.status), "closed": event.fatal})


def _account(value: str) -> tuple[str, str]:
    system_id, sep, password = value.partition(":")
    if not sep or not system_id:
        raise ParseFailure(f"--account: {value!r}: expected SYSTEM_ID:PASSWORD")
    return system_id, password


@click.group()
def smsc() -> None:
    """The simulated SMSC."""


@smsc.command("serve")
@click.option("--smpp", "smpp_addr", default="127.0.0.1:2775", show_default=True, help="Listen on HOST:PORT.")
@click.option("--account", "accounts", multiple=True, metavar="SYSTEM_ID:PASSWORD",
              help="An ESME allowed to bind (repeatable); none: any bind is accepted.")
@click.option("--system-id", default="dmsim", show_default=True, help="The SMSC's system_id in bind_resp.")
@click.option("--max-connections", type=click.IntRange(1, 4096), default=DEFAULT_MAX_CONNECTIONS,
              show_default=True, help="Connections at once; more are closed as they come.")
@click.option("--bind-timeout", type=click.FloatRange(0.1, 3600), default=DEFAULT_BIND_TIMEOUT, show_default=True,
              metavar="SECONDS", help="Close a connection not bound this long after it was accepted.")
@click.option("--idle-timeout", type=click.FloatRange(1, 86400), default=DEFAULT_IDLE_TIMEOUT, show_default=True,
              metavar="SECONDS", help="Close a bound connection that sent no PDU (enquire_link) this long.")
@click.option("--max-bind-failures", type=click.IntRange(1, 100), default=DEFAULT_MAX_BIND_FAILURES,
              show_default=True, help="Close a connection after this many refused binds.")
@click.option("--keep", type=click.IntRange(1, 100_000), default=DEFAULT_KEEP, show_default=True,
              help="Submitted messages kept in memory (the oldest are forgotten).")
@click.option("--log", "log_path", type=click.Path(dir_okay=False), default=None,
              help="Write the event lines to this file, rotated (default: stdout).")
@click.option("--log-max-bytes", type=click.IntRange(4096), default=DEFAULT_LOG_MAX_BYTES, show_default=True,
              help="Rotate --log at this size.")
@click.option("--log-backups", type=click.IntRange(0, 100), default=DEFAULT_LOG_BACKUPS, show_default=True,
              help="Rotated --log files kept.")
def serve(smpp_addr: str, accounts: tuple[str, ...], system_id: str, max_connections: int, bind_timeout: float,
          idle_timeout: float, max_bind_failures: int, keep: int, log_path: str | None, log_max_bytes: int,
          log_backups: int) -> None:
    """Accept SMPP 3.4 ESMEs; log each submit_sm as a JSON line; send receipts asked for."""
    host, port = parse_host_port(smpp_addr, "--smpp", listen=True)
    table = dict(_account(a) for a in accounts) if accounts else None
    try:
        sink = LogSink(log_path, max_bytes=log_max_bytes, backups=log_backups)
    except OSError as exc:
        raise ParseFailure(f"--log {log_path}: {exc.strerror or exc}") from None
    store = MemoryStore(keep=keep, sink=sink)
    try:
        server = SmppServer(store.on_submit, host=host, port=port, accounts=table, system_id=system_id,
                            on_submitted=store.on_submitted, on_event=store.on_event,
                            max_connections=max_connections, bind_timeout=bind_timeout, idle_timeout=idle_timeout,
                            max_bind_failures=max_bind_failures)
    except OSError as exc:
        sink.close()
        raise ParseFailure(f"--smpp {smpp_addr}: {exc.strerror or exc}") from None
    store.server = server
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda signum, frame: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        bound_host, bound_port = server.start()
        click.echo(json.dumps({"listening": f"smpp://{bound_host}:{bound_port}", "system_id": system_id,
                               "accounts": sorted(table) if table else "any", "max_connections": max_connections,
                               "bind_timeout": bind_timeout, "idle_timeout": idle_timeout,
                               "log": log_path or "stdout"}, sort_keys=True))
        sys.stdout.flush()
        while not stop.wait(0.2):
            pass
    finally:
        server.stop()
        sink.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
