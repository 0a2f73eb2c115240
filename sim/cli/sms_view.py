"""What ``dmsim decode sms`` and ``decode udh`` print: every TP field of a TPDU, its UDH, and
the message several TPDUs make together (TS 23.040 §9.2.2.1, §9.2.2.2, §9.2.3, §9.2.3.24).

Fields are named after the spec in snake_case without the ``tp_`` prefix (``mti``, ``mms``,
``sri``, ``mr``, ``scts``...), bytes as lowercase hex. Choices where the spec leaves room:

- ``text`` is shown for the GSM 7-bit default alphabet (TS 23.038 §6.2.1) and UCS2 (read as
  UTF-16BE, TS 23.038 §6.2.3, undecodable pairs as U+FFFD); 8-bit data has none.
- A TP-SCTS that is not a date is shown raw with ``scts_time`` saying why.
- Parts are grouped by (originator or destination, reference); a concatenated message whose
  parts are not all given is shown with the sequence numbers still missing.
- A WAP Push (WDP port 2948) carrying ``application/vnd.syncml.notification`` is decoded
  further as package #0 (OMA-TS-DM_Notification-V1_2 §6).
"""
from __future__ import annotations

from dmsim.network.sms import gsm7, wsp_push
from dmsim.network.sms.address import Address, Npi, Ton
from dmsim.network.sms.segmentation import Reassembler
from dmsim.network.sms.status_report import decode_timestamp
from dmsim.network.sms.tpdu import Alphabet, SmsDeliver, SmsSubmit, dcs_alphabet
from dmsim.network.sms.udh import find_concat, find_ports
from dmsim.base.errors import DecodeError

VPF_NAMES = {0: "none", 2: "relative"}


def udh_fields(ies) -> dict:
    """Return the IEs of a UDH and, when there, its concatenation and port IEs."""
    out: dict = {"ies": [{"iei": ie.iei, "data": ie.data.hex()} for ie in ies]}
    concat, ports = find_concat(ies), find_ports(ies)
    if concat:
        out["concat"] = {"ref": concat.ref, "total": concat.total, "seq": concat.seq}
    if ports:
        out["ports"] = {"dest": ports.dest, "src": ports.src}
    return out


def _address(address: Address) -> dict:
    """Return the type of number and numbering plan of ``address`` by name (a reserved NPI as its number)."""
    try:
        npi: str | int = Npi(address.npi).name.lower()
    except ValueError:
        npi = address.npi
    return {"ton": Ton(address.ton).name.lower(), "npi": npi}


def message_class(dcs: int) -> int | None:
    """Return the message class TP-DCS gives (TS 23.038 §4), or None when it gives none."""
    group = dcs >> 4
    if group == 0xF or (group <= 0x7 and dcs & 0x10):
        return dcs & 0x03
    return None


def _hours(minutes: int) -> str:
    hours, rest = divmod(minutes, 60)
    return " ".join(part for part in (f"{hours} h" if hours else "", f"{rest} min" if rest else "") if part)


def relative_vp(vp: int) -> str:
    """Return the validity period a relative TP-VP octet means (TS 23.040 §9.2.3.12.1)."""
    if vp <= 143:
        return _hours((vp + 1) * 5)
    if vp <= 167:
        return _hours(12 * 60 + (vp - 143) * 30)
    if vp <= 196:
        return f"{vp - 166} days"
    return f"{vp - 192} weeks"


def text_of(dcs: int, user_data: bytes) -> str | None:
    """Return the user data as text for GSM 7-bit and UCS2, None for 8-bit data."""
    alphabet = dcs_alphabet(dcs)
    if alphabet is Alphabet.GSM7:
        return gsm7.decode_text(user_data)
    if alphabet is Alphabet.UCS2:
        return user_data[:len(user_data) & ~1].decode("utf-16-be", errors="replace")
    return None


def _udl(raw: bytes, sms) -> int:
    """Return TP-UDL: the octet before TP-UD (the TPDU decoded, so the offsets hold)."""
    if isinstance(sms, SmsDeliver):
        return raw[1 + 2 + (raw[1] + 1) // 2 + 2 + 7]
    return raw[2 + 2 + (raw[2] + 1) // 2 + 2 + (sms.vp is not None)]


def tpdu_fields(sms: SmsDeliver | SmsSubmit, raw: bytes | None = None) -> dict:
    """Return every TP field of an SMS-DELIVER or SMS-SUBMIT (``raw``, when given, for TP-UDL)."""
    deliver = isinstance(sms, SmsDeliver)
    address = sms.oa if deliver else sms.da
    out: dict = {"type": "SMS-DELIVER" if deliver else "SMS-SUBMIT", "mti": 0 if deliver else 1}
    if deliver:
        out.update(mms=not sms.more_messages, lp=sms.loop_prevention, sri=sms.status_report,
                   rp=sms.reply_path, udhi=sms.udhi)
    else:
        out.update(rd=sms.reject_duplicates, vpf=VPF_NAMES[sms.vpf], rp=sms.reply_path, udhi=sms.udhi,
                   srr=sms.status_report_request, mr=sms.mr)
    key = "oa" if deliver else "da"
    out[key] = str(address)
    out[f"{key}_type"] = _address(address)
    out["pid"] = sms.pid
    out["dcs"] = sms.dcs
    out["dcs_alphabet"] = dcs_alphabet(sms.dcs).value
    if message_class(sms.dcs) is not None:
        out["message_class"] = message_class(sms.dcs)
    if deliver:
        out["scts"] = sms.scts.hex()
        try:
            out["scts_time"] = decode_timestamp(sms.scts).isoformat()
        except DecodeError as exc:
            out["scts_time"] = f"not a time stamp ({exc.detail})"
    elif sms.vp is not None:
        out["vp"] = sms.vp
        out["vp_period"] = relative_vp(sms.vp)
    if raw is not None:
        out["udl"] = _udl(raw, sms)
    if sms.udhi:
        out["udh"] = udh_fields(sms.ies)
    out["user_data"] = sms.user_data.hex()
    text = text_of(sms.dcs, sms.user_data)
    if text is not None:
        out["text"] = text
    return out


def push_fields(payload: bytes) -> dict:
    """Return the WSP Push PDU in ``payload`` and, for a DM notification, its package #0.

    DecodeError when the payload is no Push PDU or its package #0 does not decode.
    """
    from dmsim.network.dm import notification
    from dmsim.sim.cli.dm import pkg0_fields
    push = wsp_push.decode_push(payload)
    out: dict = {"tid": push.tid, "content_type": push.content_type, "body": push.body.hex()}
    if push.content_type.split(";")[0].strip().lower() == notification.NOTIFICATION_CONTENT_TYPE:
        out["pkg0"] = pkg0_fields(notification.parse_pkg0(push.body))
    return out


def push_or_note(payload: bytes) -> dict | str:
    """Return ``push_fields(payload)``, or a note saying why it does not decode."""
    try:
        return push_fields(payload)
    except DecodeError as exc:
        return f"not decodable ({exc})"


def message_fields(parts: list[SmsDeliver | SmsSubmit]) -> dict:
    """Return the message ``parts`` make: reassembled (TS 23.040 §9.2.3.24.1) when all parts of
    one reference are there, and the WAP Push inside when it goes to port 2948.

    DecodeError("concat") when parts of one reference disagree on their count or ports.
    """
    reassembler = Reassembler(max_pending=len(parts) + 1)
    done, seen = [], {}
    for sms in parts:
        who = str(sms.oa if isinstance(sms, SmsDeliver) else sms.da)
        concat = find_concat(sms.ies)
        if concat is not None:
            seen.setdefault((who, concat.ref), (concat.total, set()))[1].add(concat.seq)
        completed = reassembler.feed_parsed(who, sms.ies, sms.user_data, 0.0)
        if completed is not None:
            done.append((sms, completed))
    messages = []
    for sms, completed in done:
        message: dict = {"from" if isinstance(sms, SmsDeliver) else "to": completed.originator,
                         "length": len(completed.payload), "payload": completed.payload.hex()}
        if completed.port is not None:
            message["port"] = completed.port
        text = text_of(sms.dcs, completed.payload)
        if text is not None:
            message["text"] = text
        if completed.port == wsp_push.WAP_PUSH_PORT:
            message["wsp_push"] = push_or_note(completed.payload)
        messages.append(message)
    missing = [{"address": who, "ref": ref, "total": total,
                "missing": [s for s in range(1, total + 1) if s not in got]}
               for (who, ref), (total, got) in seen.items() if len(got) < total]
    return {"messages": messages, **({"incomplete": missing} if missing else {})}
