"""The LwM2M SMS security applet of the emulated UICC: SMS payload security terminated on the
smartcard, seed 004 §7.3 (class 2, TP-PID 7F, TAR BF FF 00 - BF FF FF).

The seed has the LwM2M client pass received secured SMS to the smartcard for deciphering and
integrity checking, and its own messages to the smartcard for ciphering and integrity
protection; how the plaintext travels between card and client is out of its scope (NOTE2).
This card does it so:

- Server to client (MT): the ME hands the class-2 TP-PID 7F SMS-DELIVER to the card in the
  ordinary ENVELOPE (SMS-PP DOWNLOAD, 3GPP TS 31.111 §7.1.1; ``ota_app.envelope``). A command
  packet whose TAR (ETSI TS 102 225 §5.1.1, octets 8-10 of the packet) is in BF FF 00 - BF FF FF
  comes here instead of the RFM path. The applet runs the SMS binding's receiving rules
  (``SmsBindingReceiver`` of ``network/lwm2m/sms_binding.py`` with ``Termination.UICC``, MT:
  TP-PID 7F, TP-DCS class 2, UDH exactly ``02 70 00``: one SMS per message, as the applet does
  not reassemble, so a concatenated segment (TS 31.115 §4.2, which the binding sends for the
  device termination only) is discarded as ``CONCATENATED``; then ``sms_security.unprotect`` with the
  TAR's personalised parameters, keys and RE) and answers the CoAP plaintext as the ENVELOPE's
  response data with 90 00 (TS 31.111 §7.1.1.2 lets the UICC answer data; 61xx under T=0).
  A packet it does not take gets 90 00 and no data: no PoR, no error, whatever its SPI asks
  (seed 004 §7.3: "SHALL NOT respond with an error message").
- Client to server (MO): the proprietary command LWM2M PROTECT, ``80 4C 00 P2 Lc <CoAP> [00]``:
  P2 is the third TAR octet (TAR BF FF P2), the data the CoAP message. The answer is the
  command packet (CPL onwards, no UDH) that secures it with the TAR's keys and the card's own
  MO counter, plus one. The ME wraps it in the class-2 TP-PID 7F SMS-SUBMIT
  (``devices/lwm2m_sms_uicc.py``).

Status words of LWM2M PROTECT (TS 102 221 §10.2.1): 6A86 P1 not 00; 6700 no data, an Le other
than 00, or a message longer than one secured SMS holds (``sms_binding.max_message_size``: 98
octets with AES, 106 with 3DES); 6A88 no keyset for TAR BF FF P2; 6985 the MO counter is at
2^40 - 1. None of them uses a counter value.

Personalisation: ``personalise(card, params, keys, counter=, mo_counter=)`` puts one keyset per
TAR into the card, as the operator does for the OTA keysets of the card profile; the pair must
meet seed 004 §7.3 (``sms_security.check_policy``: no single DES, no two-key 3DES, AES-CBC/CMAC
or 3DES with three distinct keys, SPI 16, TAR in BF FF xx), else SmsSecurityError and the card
is unchanged. ``counter`` is the RE (highest MT counter accepted), ``mo_counter`` the last MO
counter used.

Choices where the specs leave room:
- INS 4C: used by neither ETSI TS 102 221 (Table 10.5), TS 102 223, GlobalPlatform nor this
  card, even (no BER-TLV data field, ISO/IEC 7816-4 §5.1.2), not 6X/9X. The command exists
  once a keyset is personalised: before, 80 4C answers 6D00 as any unknown INS.
- LWM2M PROTECT has no access condition (no PIN): the keys never leave the card, the CoAP
  plaintext is the client's own, and the card counts what it protects (``stats["protected"]``).
  Any logical channel may send it.
- Every TAR in BF FF xx is the applet's, personalised or not: a packet for a TAR without keyset
  is discarded (``TAR_MISMATCH``), never run as an RFM script nor answered with a PoR.
- Re-personalising a TAR replaces its keyset and both counters.
- The RE moves only on a packet that verified (the receiver's rule); the MO counter moves on
  every packet the card answers, whether or not the ME sends it, so no value is used twice.
- The plaintext in the ENVELOPE's answer trusts the ME to keep it: TS 31.111 §7.1.1.2 has an ME
  put response data into the RP-ACK, so an ME that took an LwM2M SMS for an ordinary data
  download (``devices/sms_pp.py``) would send the CoAP plaintext back to the network.
  ``devices/lwm2m_sms_uicc.py`` never does.
- ``card.state["lwm2m.stats"]`` counts, for the whole card, accepted packets (``accepted``),
  discards by ``Reason`` value and protected MO messages (``protected``): bounded by the Reason
  enumeration. ``card.state["lwm2m.last"]`` keeps the last MT verdict (``Unprotected`` with the
  new RE, or ``Discarded``) for traces and tests.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from dmsim.cards import sw as SW
from dmsim.cards.apdu import CommandApdu
from dmsim.cards.envelope import SmsPpDownload
from dmsim.cards.scp80 import CNTR_MAX
from dmsim.cards.uicc import PROPRIETARY, Channel, Reply, Uicc
from dmsim.network.lwm2m.sms_binding import (Direction, SmsBindingReceiver, Termination,
                                             max_message_size)
from dmsim.network.lwm2m.sms_security import (TAR_FIRST, TAR_LAST, Discarded, Reason,
                                              SmsBindingKeys, SmsKeyParameters, Unprotected,
                                              protect)
from dmsim.base.errors import ProtocolError

INS_LWM2M_PROTECT = 0x4C
TAR_OFFSET = 7             # CPL(2) CHL SPI(2) KIc KID, then TAR(3): ETSI TS 102 225 §5.1.1
TAR_LENGTH = 3

STATE_KEYSETS = "lwm2m.keysets"
STATE_STATS = "lwm2m.stats"
STATE_LAST = "lwm2m.last"


@dataclass
class LwM2mKeyset:
    """One TAR's keyset in the card: the checked pair, its MT receiver (the RE is
    ``receiver.counter``) and the last MO counter used."""

    params: SmsKeyParameters
    keys: SmsBindingKeys
    receiver: SmsBindingReceiver
    mo_counter: int

    @property
    def counter(self) -> int:
        """Return the RE: the highest MT counter accepted."""
        return self.receiver.counter


def packet_tar(packet: bytes) -> bytes | None:
    """Return the TAR of a command packet (CPL onwards), None when it is too short to hold one."""
    tar = bytes(packet[TAR_OFFSET:TAR_OFFSET + TAR_LENGTH])
    return tar if len(tar) == TAR_LENGTH else None


def is_lwm2m_tar(tar: bytes | None) -> bool:
    """Return whether ``tar`` is in BF FF 00 - BF FF FF, the LwM2M range of seed 004 §7.3."""
    return tar is not None and len(tar) == TAR_LENGTH and TAR_FIRST <= tar <= TAR_LAST


def personalise(card: Uicc, params: SmsKeyParameters, keys: SmsBindingKeys, *, counter: int = 0,
                mo_counter: int = 0) -> None:
    """Put the keyset of TAR ``params.tar`` into ``card`` and install LWM2M PROTECT.

    SmsSecurityError if the pair breaks a rule of seed 004 §7.3 (the card is then unchanged);
    ProtocolError if a counter is outside 0 .. 2^40 - 1.
    """
    receiver = SmsBindingReceiver(params, keys, Termination.UICC, Direction.MT, counter=counter)
    for name, value in (("counter", counter), ("mo_counter", mo_counter)):
        if not 0 <= value <= CNTR_MAX:
            raise ProtocolError(f"{name} {value} outside 0 .. 2^40 - 1")
    keysets = card.state.setdefault(STATE_KEYSETS, {})
    keysets[params.tar] = LwM2mKeyset(params, keys, receiver, mo_counter)
    card.state.setdefault(STATE_STATS, Counter())
    card.register(PROPRIETARY, INS_LWM2M_PROTECT, lwm2m_protect)


def keyset(card: Uicc, tar: bytes) -> LwM2mKeyset | None:
    """Return the keyset personalised for ``tar``, or None."""
    return card.state.get(STATE_KEYSETS, {}).get(bytes(tar))


def _count(card: Uicc, key: str) -> None:
    card.state.setdefault(STATE_STATS, Counter())[key] += 1


def sms_pp_download(card: Uicc, download: SmsPpDownload) -> Reply:
    """Return the ENVELOPE's answer to an SMS-PP download whose packet names an LwM2M TAR: the
    CoAP plaintext with 90 00, or 90 00 alone when the SMS is discarded (see the module doc)."""
    tar = packet_tar(download.user_data)
    found = keyset(card, tar) if tar is not None else None
    if found is None:
        verdict: Unprotected | Discarded = Discarded(
            Reason.TAR_MISMATCH, f"no LwM2M keyset for TAR {tar.hex() if tar else '-'}")
    else:
        result = found.receiver.receive_fields(download.pid, download.dcs, download.ies,
                                               download.user_data)
        verdict = (result if isinstance(result, Discarded)
                   else Unprotected(result, found.receiver.counter))
    card.state[STATE_LAST] = verdict
    if isinstance(verdict, Discarded):
        _count(card, verdict.reason.value)
        return Reply()
    _count(card, "accepted")
    return Reply(verdict.data)


def lwm2m_protect(card: Uicc, channel: Channel, cmd: CommandApdu) -> Reply:
    """LWM2M PROTECT (80 4C 00 P2): the command packet securing the CoAP message in the data."""
    if cmd.p1 != 0:
        return Reply(b"", SW.INCORRECT_P1P2)
    if not cmd.data or not (cmd.le is None or cmd.le_is_max):
        return Reply(b"", SW.WRONG_LENGTH)
    found = keyset(card, TAR_FIRST[:2] + bytes([cmd.p2]))
    if found is None:
        return Reply(b"", SW.REFERENCE_NOT_FOUND)
    if len(cmd.data) > max_message_size(found.params):
        return Reply(b"", SW.WRONG_LENGTH)
    if found.mo_counter >= CNTR_MAX:
        return Reply(b"", SW.CONDITIONS_NOT_SATISFIED)
    found.mo_counter += 1
    _count(card, "protected")
    return Reply(protect(found.params, found.keys, found.mo_counter, cmd.data))
