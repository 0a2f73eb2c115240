"""SMS-PP data download on the ME: 3GPP TS 31.111 §7.1.1 (ENVELOPE to the UICC, RP-ACK or RP-ERROR
to the network), with the proactive SEND SHORT MESSAGE that carries a PoR via SMS-SUBMIT
(ETSI TS 102 223 §6.4.10, §6.6.9; TS 102 225 §5.1.1 SPI b6). Sans-IO over a ``CardLink``.

``download(link, tpdu, sc_address)`` hands a class-2 TP-PID 7F SMS-DELIVER to the card and
returns a ``DownloadAnswer``: ``result`` is what the ME answers the SMSC (an ``AttemptResult``
of network/sms/smsc.py) and ``mo`` the SMS-SUBMIT TPDU the card asked the ME to send, if any.
The UICC's status word decides (TS 31.111 §7.1.1.1):

- 90 00: RP-ACK; response data, if any, is the TP-UD of the SMS-DELIVER-REPORT (for OTA the
  PoR, ``02 71 00`` + response packet, as network/sms/ota_sender.py ``check_por`` reads it).
- 91 XX: as 90 00, then the ME FETCHes the proactive command; a SEND SHORT MESSAGE gets
  TERMINAL RESPONSE "performed successfully" and its TPDU becomes ``mo``.
- 93 00 (toolkit busy): RP-ERROR with TP-FCS D4.
- 62 XX / 63 XX (warnings): RP-ERROR with TP-FCS D5 and the response data as TP-UD.
- 6F XX and any other status word: RP-ERROR with TP-FCS D5, no data.

Choices where the specs leave room:
- RP-ERROR carries RP-Cause 111 (protocol error, unspecified, TS 24.011 §8.2.5.4) beside its
  TP-FCS. On 93 00 the ME does not retry the ENVELOPE itself: the SMSC retries the message.
- A card answer the link cannot use (a malformed R-APDU, a broken link, a 61XX loop) is an
  RP-ERROR with TP-FCS D5; ``error`` says what happened. It never raises.
- The TERMINAL RESPONSE is sent as soon as the ME holds the SMS-SUBMIT, not after the
  network's RP-ACK to it: one ``download`` is one step for the simulator.
- One SMS-SUBMIT per download: a second SEND SHORT MESSAGE in the same proactive session is
  answered "terminal currently unable to process command" (20 00); another command type
  "beyond terminal's capabilities" (30); a SEND SHORT MESSAGE whose TPDU is not an
  SMS-SUBMIT "command data not understood" (32). At most ``MAX_PROACTIVE`` commands are
  fetched per download. A FETCH that fails leaves ``mo`` None, the RP-ACK stands.
- The ME keeps the card's TP-MR and sends the SMS-SUBMIT to its default SC (the command's
  SC address is not used).
- ``download`` takes a TPDU for which ``is_data_download`` holds; another TPDU raises
  ProtocolError, one that does not decode DecodeError (the caller routes SMS before this).
"""
from __future__ import annotations

from dataclasses import dataclass

from dmsim.cards import proactive
from dmsim.cards.envelope import build_envelope
from dmsim.cards.link import CardLink
from dmsim.network.sms.address import Address
from dmsim.network.sms.smsc import FCS_DATA_DOWNLOAD_ERROR, FCS_SAT_BUSY, RP_PROTOCOL_ERROR, AttemptResult
from dmsim.network.sms.tpdu import PID_USIM_DATA_DOWNLOAD, SmsDeliver, decode_tpdu
from dmsim.base.errors import CardError, DecodeError, DmsimError, ProtocolError

MAX_PROACTIVE = 4
SW_OK = 0x9000
SW1_PROACTIVE = 0x91
SW1_BUSY = 0x93
SW1_WARNINGS = frozenset({0x62, 0x63})
CLASS_2 = 2


@dataclass(frozen=True)
class DownloadAnswer:
    """The ME's answer to one SMS-PP download: to the SMSC (``result``), an MO SMS-SUBMIT (``mo``).

    ``sw`` is the ENVELOPE's status word (None if the card gave none); ``error`` says why the
    answer is an RP-ERROR, or what went wrong in the proactive session ("" when nothing did).
    """

    result: AttemptResult
    mo: bytes | None = None
    sw: int | None = None
    error: str = ""


def message_class(dcs: int) -> int | None:
    """Return the message class (0..3) TP-DCS ``dcs`` gives, or None (TS 23.038 §4)."""
    group = dcs >> 4
    if group <= 0x7 and dcs & 0x10:     # general data coding / automatic deletion, class meaningful
        return dcs & 0x03
    if group == 0xF:                    # data coding / message class
        return dcs & 0x03
    return None


def is_data_download(tpdu: bytes | SmsDeliver) -> bool:
    """Return whether ``tpdu`` is an SMS-DELIVER for (U)SIM data download: TP-PID 7F, class 2.

    A TPDU that does not decode is not one.
    """
    if not isinstance(tpdu, SmsDeliver):
        try:
            tpdu = decode_tpdu(tpdu, mt=True)
        except DecodeError:
            return False
        if not isinstance(tpdu, SmsDeliver):
            return False
    return tpdu.pid == PID_USIM_DATA_DOWNLOAD and message_class(tpdu.dcs) == CLASS_2


def _rp_error(fcs: int, sw: int | None, error: str, user_data: bytes = b"") -> DownloadAnswer:
    return DownloadAnswer(AttemptResult.error(RP_PROTOCOL_ERROR, fcs, user_data), None, sw, error)


def download(link: CardLink, sms_deliver_tpdu: bytes, sc_address: Address | None = None) -> DownloadAnswer:
    """Return the ME's answer to the SMS-PP data download ``sms_deliver_tpdu`` (see the module doc).

    ``sc_address`` is the RP-Originating-Address of the SC, put in the ENVELOPE's address TLV.
    """
    tpdu = bytes(sms_deliver_tpdu)
    if not is_data_download(decode_tpdu(tpdu, mt=True)):
        raise ProtocolError("not an SMS-DELIVER for (U)SIM data download (TP-PID 7F, class 2)")
    envelope = build_envelope(tpdu, sc_address)
    try:
        data, sw = link.transmit(envelope)
    except DmsimError as err:
        return _rp_error(FCS_DATA_DOWNLOAD_ERROR, None, f"ENVELOPE: {err}")
    sw1 = sw >> 8
    if sw == SW_OK:
        return DownloadAnswer(AttemptResult.ack(data), None, sw)
    if sw1 == SW1_PROACTIVE:
        mo, error = run_proactive_session(link, sw)
        return DownloadAnswer(AttemptResult.ack(data), mo, sw, error)
    if sw1 == SW1_BUSY:
        return _rp_error(FCS_SAT_BUSY, sw, "toolkit busy")
    if sw1 in SW1_WARNINGS:
        return _rp_error(FCS_DATA_DOWNLOAD_ERROR, sw, f"ENVELOPE answered {sw:04X}", data)
    return _rp_error(FCS_DATA_DOWNLOAD_ERROR, sw, f"ENVELOPE answered {sw:04X}")


def fetch(link: CardLink, length: int) -> proactive.ProactiveCommand:
    """Return the proactive command the card announced with 91 ``length``.

    CardError if FETCH does not answer 90 00, DecodeError if the command does not parse.
    """
    apdu = proactive.fetch_apdu(length)
    data, sw = link.transmit(apdu)
    if sw != SW_OK:
        raise CardError("FETCH", apdu, sw, "no proactive command")
    return proactive.parse_proactive_command(data)


def terminal_response(link: CardLink, command: proactive.ProactiveCommand, result: int = proactive.RESULT_OK,
                      additional: bytes = b"") -> int:
    """Return the card's status word to the TERMINAL RESPONSE answering ``command`` with ``result``.

    CardError if the card refuses it (neither 90 00 nor 91 XX).
    """
    apdu = proactive.terminal_response_apdu(command, result, additional)
    _, sw = link.transmit(apdu)
    if sw != SW_OK and sw >> 8 != SW1_PROACTIVE:
        raise CardError("TERMINAL RESPONSE", apdu, sw, "refused")
    return sw


def _verdict(command: proactive.ProactiveCommand, have_mo: bool) -> tuple[int, bytes, bytes | None]:
    """Return (general result, additional information, SMS-SUBMIT TPDU to send or None)."""
    if command.type != proactive.TYPE_SEND_SHORT_MESSAGE:
        return proactive.RESULT_BEYOND_CAPABILITIES, b"", None
    if have_mo:
        return proactive.RESULT_ME_UNABLE, b"\x00", None
    tpdu = command.sms_tpdu or b""
    try:
        decode_tpdu(tpdu, mt=False)
    except DecodeError:
        return proactive.RESULT_NOT_UNDERSTOOD, b"", None
    return proactive.RESULT_OK, b"", tpdu


def run_proactive_session(link: CardLink, sw: int) -> tuple[bytes | None, str]:
    """Return (the SMS-SUBMIT TPDU to send or None, what went wrong or "") after 91 XX ``sw``.

    FETCHes and answers proactive commands while the card says 91 XX (``MAX_PROACTIVE`` at most).
    """
    mo: bytes | None = None
    notes: list[str] = []
    for _ in range(MAX_PROACTIVE):
        if sw >> 8 != SW1_PROACTIVE:
            break
        try:
            command = fetch(link, sw & 0xFF)
        except DmsimError as err:
            notes.append(f"FETCH: {err}")
            break
        result, additional, tpdu = _verdict(command, mo is not None)
        if tpdu is None:
            notes.append(f"proactive command type {command.type:#04x} answered result {result:#04x}")
        mo = mo if tpdu is None else tpdu
        try:
            sw = terminal_response(link, command, result, additional)
        except DmsimError as err:
            notes.append(f"TERMINAL RESPONSE: {err}")
            break
    else:
        if sw >> 8 == SW1_PROACTIVE:
            notes.append(f"more than {MAX_PROACTIVE} proactive commands in one session")
    return mo, "; ".join(notes)
