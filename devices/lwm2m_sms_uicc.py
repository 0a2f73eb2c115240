"""The ME side of the LwM2M SMS binding with the security terminated on the UICC (seed 004 §7.3):
the LwM2M client passes secured SMS to the card and back. Sans-IO over a ``CardLink``, like
``devices/sms_pp.py``; the card side is ``cards/lwm2m_applet.py``.

- MT, ``uicc_receive(link, tpdu, sc_address)``: an SMS-DELIVER for the LwM2M applet (TP-PID 7F,
  TP-DCS class 2, TS 23.038 §4, a command packet whose TAR is in BF FF 00 - BF FF FF) goes to
  the card in the SMS-PP DOWNLOAD ENVELOPE (3GPP TS 31.111 §7.1.1, through ``sms_pp.download``:
  the same status-word handling). The card answers the verified CoAP message as response data,
  or no data when it discarded the SMS (silently: the ME cannot tell why). The answer's
  ``coap`` is that message or None; ``result`` is what the ME answers the SMSC.
- MO, ``uicc_protect(link, tar, coap)``: LWM2M PROTECT (80 4C 00 P2) returns the command packet
  the card secured with its own MO counter; ``uicc_submit`` wraps it in the SMS-SUBMIT to the
  LwM2M Server SMS Number (TP-PID 7F, TP-DCS F6, UDH ``02 70 00``: the format
  ``sms_binding.SmsBindingReceiver`` with ``Termination.UICC`` and ``Direction.MO`` takes).

Choices where the specs leave room (NOTE2 of seed 004 §7.3 leaves the ME-card exchange open):
- The ME reads the TAR of the packet (octets 8-10 of the TP-UD after the UDH) to tell an LwM2M
  SMS from an OTA one; only the former comes here. A TPDU that is not one is ``refused`` with a
  ``Discarded`` verdict of the ME and never reaches the card: a TPDU that does not decode or is
  no SMS-DELIVER ``MALFORMED``, TP-PID other than 7F (a device-terminated class 1 TP-PID 7D
  LwM2M SMS among them) ``PID``, not class 2 ``MESSAGE_CLASS``, a UDH without the command
  packet identifier ``UDH``, a TAR outside BF FF xx ``TAR_RANGE`` (the caller routes such an
  SMS to ``sms_pp.download``); ``result`` is then a bare RP-ACK (the SMS was delivered, no one
  takes it).
- The CoAP plaintext never goes back to the network: the RP-ACK carries no TP-UD, although
  TS 31.111 §7.1.1.2 would put the ENVELOPE's response data there (an ME that handled the SMS
  as an ordinary data download would send the plaintext in the SMS-DELIVER-REPORT). A card
  discard is an RP-ACK too, so the network learns nothing of the verdict (seed 004 §7.3: no
  error message). Card answers other than 90 00 / 91 XX are the RP-ERRORs of sms_pp.download
  (93 00 toolkit busy: TP-FCS D4, the SMSC retries), without their TP-UD.
- A refusal of LWM2M PROTECT raises CardError with the card's status word (6700: no data or a
  message longer than one secured SMS; 6A88: no keyset for the TAR; 6985: MO counter
  exhausted; 6D00: no LwM2M applet personalised); the card then used no counter value.
- One SMS per message: the device-terminated binding may concatenate a long message (3GPP TS
  31.115 §4.2), this termination does not (``Termination.UICC.max_segments`` is 1). The ME does
  not reassemble: a first segment reaches the card, which discards it (``CONCATENATED``), a later
  one has no command packet identifier (``UDH`` here); MO, LWM2M PROTECT refuses a message longer
  than one SMS holds (98 octets with AES, 106 with 3DES).
"""
from __future__ import annotations

from dataclasses import dataclass

from dmsim.cards.apdu import build_command
from dmsim.cards.envelope import CLA_CAT
from dmsim.cards.lwm2m_applet import INS_LWM2M_PROTECT, is_lwm2m_tar, packet_tar
from dmsim.cards.link import CardLink
from dmsim.devices import sms_pp
from dmsim.network.lwm2m.sms_binding import COMMAND_PACKET_IE, Termination
from dmsim.network.lwm2m.sms_security import Discarded, Reason
from dmsim.network.sms.address import Address
from dmsim.network.sms.smsc import ACK, AttemptResult
from dmsim.network.sms.tpdu import SmsDeliver, SmsSubmit, decode_tpdu
from dmsim.base.errors import CardError, DecodeError, ProtocolError

SW_OK = 0x9000


@dataclass(frozen=True)
class UiccDelivery:
    """What became of one MT LwM2M SMS on the ME.

    ``result``: the ME's answer to the SMSC (RP-ACK without TP-UD, or an RP-ERROR when the card
    could not take the SMS). ``coap``: the CoAP message the card verified and deciphered, None
    if it gave none. ``refused``: the ME's own verdict when the SMS never reached the card
    (None if it did). ``sw``: the ENVELOPE's status word (None if none was sent or answered);
    ``error``: what went wrong between ME and card ("" if nothing).
    """

    result: AttemptResult
    coap: bytes | None = None
    refused: Discarded | None = None
    sw: int | None = None
    error: str = ""


def lwm2m_verdict(tpdu: bytes) -> Discarded | None:
    """Return None if ``tpdu`` is an SMS-DELIVER for the card's LwM2M applet, else why not."""
    try:
        sms = decode_tpdu(tpdu, mt=True)
    except DecodeError as err:
        return Discarded(Reason.MALFORMED, str(err))
    if not isinstance(sms, SmsDeliver):
        return Discarded(Reason.MALFORMED, "not an SMS-DELIVER")
    if sms.pid != Termination.UICC.pid:
        return Discarded(Reason.PID, f"TP-PID {sms.pid:#04x}, the UICC takes 0x7f")
    if sms_pp.message_class(sms.dcs) != sms_pp.CLASS_2:
        return Discarded(Reason.MESSAGE_CLASS, f"TP-DCS {sms.dcs:#04x} is not class 2")
    if COMMAND_PACKET_IE.iei not in (ie.iei for ie in sms.ies):
        return Discarded(Reason.UDH, "no command packet identifier")
    tar = packet_tar(sms.user_data)
    if not is_lwm2m_tar(tar):
        return Discarded(Reason.TAR_RANGE, f"TAR {tar.hex() if tar else '-'} is not an LwM2M TAR")
    return None


def uicc_receive(link: CardLink, tpdu: bytes, sc_address: Address | None = None) -> UiccDelivery:
    """Return what the card made of the MT LwM2M SMS ``tpdu`` (see the module doc); never raises.

    ``sc_address`` is the RP-Originating-Address of the SC, put in the ENVELOPE's address TLV.
    """
    tpdu = bytes(tpdu)
    refused = lwm2m_verdict(tpdu)
    if refused is not None:
        return UiccDelivery(AttemptResult.ack(), refused=refused)
    answer = sms_pp.download(link, tpdu, sc_address)
    result = answer.result
    if result.kind == ACK:
        return UiccDelivery(AttemptResult.ack(), result.user_data or None, None, answer.sw, answer.error)
    error = AttemptResult.error(result.rp_cause, result.fcs)
    return UiccDelivery(error, None, None, answer.sw, answer.error)


def protect_apdu(tar: bytes, coap: bytes) -> bytes:
    """Return the LWM2M PROTECT C-APDU asking the card to secure ``coap`` for TAR ``tar``.

    ProtocolError if ``tar`` is not BF FF xx or ``coap`` is empty or longer than 255 octets.
    """
    if not is_lwm2m_tar(bytes(tar)):
        raise ProtocolError(f"TAR {bytes(tar).hex()} is not in bfff00-bfffff")
    if not 1 <= len(coap) <= 0xFF:
        raise ProtocolError(f"CoAP message of {len(coap)} octets, LWM2M PROTECT takes 1 to 255")
    return build_command(CLA_CAT, INS_LWM2M_PROTECT, 0x00, tar[2], bytes(coap), le=256)


def uicc_protect(link: CardLink, tar: bytes, coap: bytes) -> bytes:
    """Return the command packet (CPL onwards, no UDH) the card secured ``coap`` in.

    CardError with the card's status word if it refuses (see the module doc).
    """
    apdu = protect_apdu(tar, coap)
    data, sw = link.transmit(apdu)
    if sw != SW_OK or not data:
        raise CardError("LWM2M PROTECT", apdu, sw, "the card did not secure the message")
    return data


def uicc_submit(link: CardLink, tar: bytes, coap: bytes, server: Address, *, mr: int = 0) -> bytes:
    """Return the SMS-SUBMIT TPDU to ``server`` (the LwM2M Server SMS Number) carrying ``coap``
    secured by the card, with TP-MR ``mr``. CardError if the card refuses."""
    packet = uicc_protect(link, tar, coap)
    return SmsSubmit(da=server, mr=mr, pid=Termination.UICC.pid, dcs=Termination.UICC.dcs,
                     ies=(COMMAND_PACKET_IE,), user_data=packet).encode()
