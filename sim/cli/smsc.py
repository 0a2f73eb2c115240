"""``dmsim smsc serve``: a lab SMSC speaking SMPP 3.4, and ``dmsim decode smpp`` (the command line in the README).

``smsc serve`` keeps submitted messages in memory, prints one JSON line per event on stdout
(``listening``, ``bind``, ``submit_sm``, ``deliver_sm``, ``unbind``, ``malformed``) and, when
registered_delivery asks for it (SMPP 3.4 §5.2.17), answers a submit_sm with a delivery receipt
(Appendix B) as soon as its submit_sm_resp is written: the lab SMSC "delivers" at once. With no
``--account`` any system_id and password bind. Ctrl-C (or SIGTERM) stops it.

``decode smpp`` prints a PDU's header and fields, or with ``--command-id`` a body alone.
"""
from __future__ import annotations

import itertools
import json
import signal
import sys
import threading
import time

import click

from dmsim.network.sms import smpp
from dmsim.base.errors import DecodeError, DmsimError
from dmsim.sim.cli.toolbox import ParseFailure, decoding, emit, examples, json_option, parse_hex, parse_host_port

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


class MemoryStore:
    """The lab SMSC's store: numbers, keeps and logs submitted messages, sends receipts."""

    def __init__(self, echo=click.echo, clock=time.time):
        self.messages: dict[str, tuple[str, smpp.SubmitSm]] = {}
        self.server = None
        self._ids = itertools.count(1)
        self._echo, self._clock = echo, clock
        self._lock = threading.Lock()

    def log(self, record: dict) -> None:
        """Print one JSON line (whole, even with several connections writing)."""
        with self._lock:
            self._echo(json.dumps(record, sort_keys=True))
            sys.stdout.flush()

    def on_submit(self, system_id: str, pdu: smpp.SubmitSm) -> str:
        """Return the message_id given to ``pdu`` (ten digits, as Appendix B shows them)."""
        with self._lock:
            message_id = f"{next(self._ids):010d}"
            self.messages[message_id] = (system_id, pdu)
        self.log({"event": "submit_sm", "system_id": system_id, "message_id": message_id, **pdu_fields(pdu)})
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
            self.log({"event": "deliver_sm", "receipt_for": message_id, "error": str(exc)})
            return
        self.log({"event": "deliver_sm", "receipt_for": message_id, "system_id": system_id,
                  "sequence_number": sequence})

    def on_event(self, peer: tuple, event: object) -> None:
        """Log binds, unbinds and refused PDUs (submit_sm is logged by ``on_submit``)."""
        where = f"{peer[0]}:{peer[1]}"
        if isinstance(event, smpp.Bind):
            self.log({"event": "bind", "peer": where, "mode": event.mode, "system_id": event.system_id})
        elif isinstance(event, smpp.Unbind):
            self.log({"event": "unbind", "peer": where})
        elif not isinstance(event, smpp.Pdu):
            self.log({"event": "malformed", "peer": where, "offset": event.offset, "error": event.message,
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
def serve(smpp_addr: str, accounts: tuple[str, ...], system_id: str) -> None:
    """Accept SMPP 3.4 ESMEs; log each submit_sm as a JSON line; send receipts asked for."""
    from dmsim.sim.real.smpp_server import SmppServer
    host, port = parse_host_port(smpp_addr, "--smpp", listen=True)
    table = dict(_account(a) for a in accounts) if accounts else None
    store = MemoryStore()
    try:
        server = SmppServer(store.on_submit, host=host, port=port, accounts=table, system_id=system_id,
                            on_submitted=store.on_submitted, on_event=store.on_event)
    except OSError as exc:
        raise ParseFailure(f"--smpp {smpp_addr}: {exc.strerror or exc}") from None
    store.server = server
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda signum, frame: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        bound_host, bound_port = server.start()
        store.log({"listening": f"smpp://{bound_host}:{bound_port}", "system_id": system_id,
                   "accounts": sorted(table) if table else "any"})
        while not stop.wait(0.2):
            pass
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
