"""The key fields of one traced message, decoded for a person reading ``trace.jsonl``.

What is shown, by what the octets are (anything that does not decode gives ``{"undecoded":
"<reason>"}``, never an exception):

- an SMS TPDU (3GPP TS 23.040 §9.2): ``tp_mti`` (named per direction, §9.2.3.1), the
  originating/destination address, TP-PID, TP-DCS, and from the user data header (§9.2.3.24)
  the application ports (IEI 05) and the concatenation ``ref``/``part``/``of`` (IEI 00/08); a
  secured packet (3GPP TS 31.115 §4.2/§4.4: UDH IEI 70 or 71, the OTA commands and PoRs and the
  LwM2M SMS binding, seed 004 §7.3) adds the clear part of its header (ETSI TS 102 225 §5.1.1,
  §5.1.2): ``command_packet`` ``cpl``, ``chl``, ``spi``, ``kic``, ``kid``, ``tar``, or
  ``response_packet`` ``rpl``, ``rhl``, ``tar`` (hex); never the counter, the checksum or the
  data, which may be ciphered and are secured;
- an HTTP/1.1 message (RFC 9112 §3/§4): ``method`` and ``path`` or ``status``, ``content_type``
  and ``content_length``;
- TLS records (RFC 5246 §6.2.1): per record its content type and length, and for a handshake
  record before the flight's ChangeCipherSpec the handshake message type (§7.4); one after it is
  encrypted (the Finished, §7.4.9) and says ``encrypted``. An empty segment is the TCP ``FIN``
  the simulated server sends after an alert;
- DTLS records (RFC 6347 §4.1), the LwM2M datagrams of kind ``dtls``: per record its content
  type, ``epoch``, ``seq`` and length, and for a handshake record of epoch 0 (in clear) the
  handshake message type (§4.2.2, RFC 5246 §7.4; a fragment says ``fragment``: [offset, length,
  message length]); one of a later epoch is encrypted (the Finished) and says ``encrypted``;
- a CoAP message (RFC 7252 §3), the NoSec datagrams of kind ``coap``: ``coap`` with ``type``
  (CON/NON/ACK/RST), ``code`` ("0.02", "2.05"), ``mid``, ``token_length``, ``uri_path`` and
  ``payload_length``;
- a command/response APDU pair (ISO/IEC 7816-4 §5.1, ETSI TS 102 221 §10.1): ``cla``, ``ins``,
  ``p1``, ``p2`` (hex), ``lc``/``le`` when present, ``sw`` and the length of the response data.

Secrets never appear: only headers and lengths are shown, not SMS user data, HTTP bodies (which
carry the DM credentials and bootstrap), TLS or DTLS payloads (the CoAP inside, whose bootstrap
writes carry the LwM2M server's keys), CoAP payloads, tokens or queries, or APDU data (which carry
keys for SCP03, the OTA key sets and the LwM2M SMS keys).
"""
from __future__ import annotations

from dmsim.base.errors import DmsimError
from dmsim.cards.apdu import parse_command
from dmsim.cards.scp80 import IEI_COMMAND_PACKET, IEI_RESPONSE_PACKET
from dmsim.network.coap import message as coap
from dmsim.network.dm import http_binding
from dmsim.network.lwm2m import dtls_records
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
_DTLS_HANDSHAKE = {**_TLS_HANDSHAKE, 3: "hello_verify_request"}   # RFC 6347 §4.3.2
_COAP_TYPES = ("CON", "NON", "ACK", "RST")
# the clear header of a secured packet (ETSI TS 102 225 §5.1.1, §5.1.2): (name, offset, length)
_PACKET_HEADERS = {
    IEI_COMMAND_PACKET: ("command_packet", (("cpl", 0, 2), ("chl", 2, 1), ("spi", 3, 2), ("kic", 5, 1),
                                            ("kid", 6, 1), ("tar", 7, 3))),
    IEI_RESPONSE_PACKET: ("response_packet", (("rpl", 0, 2), ("rhl", 2, 1), ("tar", 3, 3))),
}
_HEX_PARTS = frozenset({"spi", "kic", "kid", "tar"})


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
    for ie in sms.ies:
        if ie.iei in _PACKET_HEADERS:
            name, parts = _PACKET_HEADERS[ie.iei]
            fields[name] = _packet_header(sms.user_data, parts)
            break
    return fields


def _packet_header(data: bytes, parts: tuple) -> dict:
    """Return the clear header fields ``parts`` of a secured packet (the rest is not shown)."""
    size = max(offset + length for _, offset, length in parts)
    if len(data) < size:
        return {"undecoded": f"{len(data)} octets, a header needs {size}"}
    return {name: (data[offset:offset + length].hex().upper() if name in _HEX_PARTS
                   else int.from_bytes(data[offset:offset + length], "big"))
            for name, offset, length in parts}


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


def dtls_fields(payload: bytes) -> dict:
    """Return the DTLS records of a datagram: type, epoch, sequence number, length, and the
    handshake type of a clear handshake record (``encrypted`` after epoch 0)."""
    try:
        parsed = dtls_records.split_records(payload)
    except DmsimError as exc:
        return {"undecoded": str(exc)}
    records = []
    for rec in parsed:
        record: dict = {"type": _TLS_CONTENT.get(rec.content_type, rec.content_type), "epoch": rec.epoch,
                        "seq": rec.seq, "length": len(rec.fragment)}
        if rec.content_type == dtls_records.CT_HANDSHAKE:
            record.update(_dtls_handshake(rec.fragment) if rec.epoch == 0 else {"handshake": "encrypted"})
        records.append(record)
    return {"dtls_records": records}


def _dtls_handshake(fragment: bytes) -> dict:
    """Return the handshake type(s) of a clear DTLS handshake record (and a fragment's place)."""
    try:
        parts = dtls_records.split_handshake(fragment)
    except DmsimError as exc:
        return {"undecoded": str(exc)}
    names = [_DTLS_HANDSHAKE.get(part.msg_type, part.msg_type) for part in parts]
    out: dict = {"handshake": names[0] if len(names) == 1 else names}
    if len(parts) == 1 and len(parts[0].body) < parts[0].length:
        out["fragment"] = [parts[0].fragment_offset, len(parts[0].body), parts[0].length]
    return out


def coap_fields(payload: bytes) -> dict:
    """Return the header of a CoAP message: type, code, Message ID, token length, Uri-Path and
    payload length (not the token, the query or the payload)."""
    try:
        msg = coap.decode(payload)
        path = msg.path
    except DmsimError as exc:
        return {"undecoded": str(exc)}
    return {"coap": {"type": _COAP_TYPES[msg.type], "code": coap.code_text(msg.code), "mid": msg.message_id,
                     "token_length": len(msg.token), "uri_path": path, "payload_length": len(msg.payload)}}


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
    if kind == "dtls":
        return dtls_fields(payload)
    if kind == "coap":
        return coap_fields(payload)
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
