"""The key fields of one traced message, decoded for a person reading ``trace.jsonl``.

What is shown, by what the octets are (anything that does not decode gives ``{"undecoded":
"<reason>"}``, never an exception):

- an SMS TPDU (3GPP TS 23.040 §9.2): ``tp_mti`` (named per direction, §9.2.3.1), the
  originating/destination address, TP-PID, TP-DCS, and from the user data header (§9.2.3.24)
  the application ports (IEI 05) and the concatenation ``ref``/``part``/``of`` (IEI 00/08);
- an HTTP/1.1 message (RFC 9112 §3/§4): ``method`` and ``path`` or ``status``, ``content_type``
  and ``content_length``;
- TLS records (RFC 5246 §6.2.1): per record its content type and length, and for a handshake
  record before the flight's ChangeCipherSpec the handshake message type (§7.4); one after it is
  encrypted (the Finished, §7.4.9) and says ``encrypted``. An empty segment is the TCP ``FIN``
  the simulated server sends after an alert;
- a command/response APDU pair (ISO/IEC 7816-4 §5.1, ETSI TS 102 221 §10.1): ``cla``, ``ins``,
  ``p1``, ``p2`` (hex), ``lc``/``le`` when present, ``sw`` and the length of the response data.

Secrets never appear: only headers and lengths are shown, not SMS user data, HTTP bodies (which
carry the DM credentials and bootstrap), TLS payloads or APDU data (which carry keys for SCP03
and the OTA key sets).
"""
from __future__ import annotations

from dmsim.base.errors import DmsimError
from dmsim.cards.apdu import parse_command
from dmsim.network.dm import http_binding
from dmsim.network.sms import tpdu as tpdu_codec
from dmsim.network.sms.udh import find_concat, find_ports

MT_SMS_KINDS = frozenset({"bootstrap", "sms-deliver", "sms-status-report"})
MO_SMS_KINDS = frozenset({"sms-submit"})
_MTI_MT = {0: "SMS-DELIVER", 1: "SMS-SUBMIT-REPORT", 2: "SMS-STATUS-REPORT", 3: "reserved"}
_MTI_MO = {0: "SMS-DELIVER-REPORT", 1: "SMS-SUBMIT", 2: "SMS-COMMAND", 3: "reserved"}
_TLS_CONTENT = {20: "change_cipher_spec", 21: "alert", 22: "handshake", 23: "application_data"}
_TLS_HANDSHAKE = {0: "hello_request", 1: "client_hello", 2: "server_hello", 11: "certificate",
                  12: "server_key_exchange", 13: "certificate_request", 14: "server_hello_done",
                  15: "certificate_verify", 16: "client_key_exchange", 20: "finished"}
_HTTP_STARTS = (b"POST ", b"GET ", b"PUT ", b"HTTP/1.")


def sms_fields(pdu: bytes, *, mt: bool) -> dict:
    """Return the key fields of the TPDU ``pdu`` (``mt``: network to device)."""
    if not pdu:
        return {"undecoded": "empty TPDU"}
    fields: dict = {"tp_mti": (_MTI_MT if mt else _MTI_MO)[pdu[0] & 0b11]}
    try:
        sms = tpdu_codec.decode_tpdu(pdu, mt=mt)
    except DmsimError as exc:
        fields["undecoded"] = str(exc)
        return fields
    address = getattr(sms, "oa", None) or getattr(sms, "da", None)
    fields["oa" if hasattr(sms, "oa") else "da"] = str(address)
    fields.update(tp_pid=sms.pid, tp_dcs=sms.dcs, ud_length=len(sms.user_data))
    ports = find_ports(sms.ies)
    if ports is not None:
        fields["ports"] = {"dest": ports.dest, "src": ports.src}
    concat = find_concat(sms.ies)
    if concat is not None:
        fields["concat"] = {"ref": concat.ref, "part": concat.seq, "of": concat.total}
    return fields


def http_fields(payload: bytes) -> dict:
    """Return the start line and content headers of an HTTP/1.1 message."""
    try:
        msg = http_binding.decode(payload)
    except DmsimError as exc:
        return {"undecoded": str(exc)}
    fields: dict = {}
    if msg.start.isdigit():
        fields["status"] = int(msg.start)
    else:
        fields["method"], _, fields["path"] = msg.start.partition(" ")
    fields["content_type"] = msg.content_type
    fields["content_length"] = len(msg.body)
    return fields


def tls_fields(payload: bytes) -> dict:
    """Return the TLS records of a flight: content type (handshake type if in clear), length."""
    if not payload:
        return {"tcp": "FIN"}
    records, pos, encrypted = [], 0, False
    while pos + 5 <= len(payload):
        content, length = payload[pos], int.from_bytes(payload[pos + 3:pos + 5], "big")
        record: dict = {"type": _TLS_CONTENT.get(content, content), "length": length}
        body = payload[pos + 5:pos + 5 + length]
        if content == 22 and encrypted:
            record["handshake"] = "encrypted"
        elif content == 22 and body and body[0] in _TLS_HANDSHAKE:
            record["handshake"] = _TLS_HANDSHAKE[body[0]]
        encrypted = encrypted or content == 20
        records.append(record)
        pos += 5 + length
    fields: dict = {"tls_records": records}
    if pos != len(payload):
        fields["undecoded"] = f"{len(payload) - pos} trailing octets"
    return fields


def ip_fields(payload: bytes) -> dict:
    """Return the fields of a DM message on the ``ip`` links: HTTP in clear or TLS records."""
    return http_fields(payload) if payload.startswith(_HTTP_STARTS) else tls_fields(payload)


def message_fields(kind: str, payload: bytes) -> dict:
    """Return the key fields of a link message of ``kind`` (the Message kinds of sim/agents)."""
    if kind in MT_SMS_KINDS:
        return sms_fields(payload, mt=True)
    if kind in MO_SMS_KINDS:
        return sms_fields(payload, mt=False)
    if kind == "dm":
        return ip_fields(payload)
    return {}   # RP answers, PoRs in an RP-ACK: the kind says what it is


def apdu_fields(c_apdu: bytes, r_apdu: bytes) -> dict:
    """Return the header of a command APDU and the status word of its response."""
    fields: dict = {}
    if len(c_apdu) >= 4:
        fields.update(cla=f"{c_apdu[0]:02X}", ins=f"{c_apdu[1]:02X}", p1=f"{c_apdu[2]:02X}",
                      p2=f"{c_apdu[3]:02X}")
        try:
            cmd = parse_command(c_apdu)
            if cmd.data:
                fields["lc"] = len(cmd.data)
            if cmd.le is not None:
                fields["le"] = cmd.le
        except DmsimError:
            pass
    else:
        fields["undecoded"] = f"command of {len(c_apdu)} octets"
    if len(r_apdu) >= 2:
        fields["sw"] = r_apdu[-2:].hex().upper()
        fields["response_length"] = len(r_apdu) - 2
    return fields
