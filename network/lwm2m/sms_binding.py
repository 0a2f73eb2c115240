"""CoAP over SMS with the secured packet: the LwM2M SMS binding's transport (seed 004 §7.3).

The secured data of a command packet (ETSI TS 102 225 §5.1, via ``sms_security``) is one CoAP
message (RFC 7252 §3, as the bytes a UDP datagram would carry). The packet is built once, whatever
its length: one CPL, one counter, one padding and one cryptographic checksum over the whole.

- One SMS: the packet is the TP-UD after a UDH that holds only the command packet identifier,
  IE 70 with no data (3GPP TS 31.115 §4.2): the TP-UD starts ``02 70 00``, 137 octets of packet.
- Concatenated SMS (3GPP TS 31.115 §4.2, TS 23.040 §9.2.3.24.1): a longer packet is cut, in
  order, over N SMS, each with the concatenation IE (IEI 00: reference, N, sequence number). The
  command packet identifier is in the first segment's UDH only (TS 31.115 §4.2, as TS 23.040
  §9.2.3.24.7 places the security header IE): segment 1 has the UDH ``07 00 03 ref N 01 70 00``
  and 132 octets of packet, the others ``05 00 03 ref N i`` and 134. The receiver reassembles
  the segments (``network/sms/segmentation.Reassembler``) and checks the reassembled packet as a
  whole; no segment yields anything before the whole verified.
- Server to client (MT): SMS-DELIVER (TS 23.040 §9.2.2.1) whose TP-OA is the server's number.
- Client to server (MO): SMS-SUBMIT (§9.2.2.2) whose TP-DA is the "LwM2M Server SMS Number"; each
  segment is an SMS-SUBMIT of its own with the next TP-MR.

Termination (seed 004 §7.3): on the device, class 1 (TS 23.038 §4, 8-bit data) with TP-PID 7D
(ME data download); on the UICC, class 2 with TP-PID 7F (USIM data download). Sent as TP-DCS F5 /
F6; on receipt every TP-DCS meaning "8-bit data, uncompressed, class N" is taken (general data
coding 15/16, automatic deletion 55/56, message class group F5/F6), nothing else.

Sizes (``max_message_size``): one SMS holds a CoAP message of 98 octets with AES, 106 with 3DES;
``MAX_SEGMENTS`` (8) SMS hold 1042 with either (packet of 132 + 7 * 134 = 1070 octets).

Choices where the spec leaves room:
- MO uses the same command packet, the same TP-PID and class as MT, and the *sender's own*
  counter: the LwM2M client's message is a command for the server (a CoAP request, or a CoAP
  response in a packet of its own), never a Proof of Receipt, and the server checks it with the
  same rules. Each direction has its counter: a sender's last CNTR, a receiver's RE.
- At most ``MAX_SEGMENTS`` = 8 segments per message (TS 23.040 allows 255): about the 1152
  octets RFC 7252 §4.6 gives as a CoAP message's upper size, and it bounds what a receiver
  holds. A sender refuses a longer message (``MessageTooLong``, no counter used); a receiver
  discards a segment announcing more (``CONCATENATED``).
- UICC termination stays one SMS per message (``Termination.UICC.max_segments`` = 1): the card's
  applet (``cards/lwm2m_applet.py``) takes one SMS-PP download and LWM2M PROTECT secures at most
  one SMS's worth; the server's sender refuses longer MT messages for it (``MessageTooLong``) and
  its receiver discards any concatenation IE (``CONCATENATED``), as before.
- The sender uses 8-bit references (IEI 00), the next one per concatenated message; a receiver
  takes 00 and 08. Segment 1's UDH is the concatenation IE then the CPI; a receiver takes them
  in either order (TS 23.040 §9.2.3.24 sets no order), but exactly one concatenation IE, the CPI
  in segment 1 and nowhere else, and no other IE (else ``UDH``).
- Reassembly is bounded: ``max_pending`` (4) incomplete messages per receiver, the oldest
  dropped for a new one; a message whose first segment is ``reassembly_timeout`` old (600 s, the
  caller's clock ``now``) is dropped; parts per message at most ``max_segments``. A segment whose
  total differs from its pending message's is discarded (``CONCATENATED``); a repeated sequence
  number is ignored (the first one seen is kept: the whole then fails to verify if that one was
  forged); counts are in ``receiver.reassembler.stats``.
- A receiver takes exactly the UDH ``02 70 00`` for one SMS: any other IE (ports, a response
  packet identifier, data in IE 70) is a ``UDH`` verdict.
- The originator (TP-OA) is not checked: the keys are what protects; routing an SMS to the
  receiver of its peer is the caller's (a receiver serves one peer: segments are keyed on their
  reference alone).
- A receiver discards silently: it returns ``Discarded`` and never any reply octets, and counts
  the reasons in ``stats`` (bounded: one entry per ``Reason``). A segment held for reassembly
  returns None.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from enum import Enum

from dmsim.base.errors import DmsimError, ProtocolError
from dmsim.cards.scp80 import CNTR_MAX, IEI_COMMAND_PACKET, UDH_COMMAND
from dmsim.network.lwm2m.sms_security import (
    Discarded, Reason, SmsBindingKeys, SmsKeyParameters, SmsSecurityError,
    check_policy, max_data_length, protect, unprotect)
from dmsim.network.sms.address import Address
from dmsim.network.sms.segmentation import Reassembler
from dmsim.network.sms.tpdu import (
    DCS_8BIT_CLASS1, DCS_8BIT_CLASS2, MAX_UD_OCTETS, PID_ME_DATA_DOWNLOAD, PID_USIM_DATA_DOWNLOAD,
    SmsDeliver, SmsSubmit, decode_tpdu)
from dmsim.network.sms.udh import (IEI_CONCAT_8BIT, IEI_CONCAT_16BIT, Concat, InformationElement, encode_udh,
                                   find_concat)

COMMAND_PACKET_IE = InformationElement(IEI_COMMAND_PACKET, b"")
PACKET_ROOM = MAX_UD_OCTETS - len(UDH_COMMAND)   # 137
FIRST_SEGMENT_ROOM = MAX_UD_OCTETS - len(encode_udh((Concat(0, 2, 1).to_ie(), COMMAND_PACKET_IE)))  # 132
NEXT_SEGMENT_ROOM = MAX_UD_OCTETS - len(encode_udh((Concat(0, 2, 2).to_ie(),)))   # 134
MAX_SEGMENTS = 8
MAX_PENDING = 4
REASSEMBLY_TIMEOUT = 600.0
_CONCAT_IEIS = (IEI_CONCAT_8BIT, IEI_CONCAT_16BIT)
_PEER = ""   # a receiver serves one peer: the reassembler's originator is always this


class Termination(Enum):
    """Where the security ends (seed 004 §7.3): its TP-PID, the TP-DCS sent and those accepted,
    and the most SMS one message may take (the UICC's applet takes one)."""

    DEVICE = (PID_ME_DATA_DOWNLOAD, DCS_8BIT_CLASS1, frozenset({0x15, 0x55, DCS_8BIT_CLASS1}), MAX_SEGMENTS)
    UICC = (PID_USIM_DATA_DOWNLOAD, DCS_8BIT_CLASS2, frozenset({0x16, 0x56, DCS_8BIT_CLASS2}), 1)

    def __init__(self, pid: int, dcs: int, accepted_dcs: frozenset[int], max_segments: int):
        self.pid = pid
        self.dcs = dcs
        self.accepted_dcs = accepted_dcs
        self.max_segments = max_segments


class Direction(Enum):
    """MT: server to client in an SMS-DELIVER; MO: client to server in an SMS-SUBMIT."""

    MT = "mt"
    MO = "mo"


class MessageTooLong(ProtocolError):
    """A CoAP message of ``size`` octets that ``segments`` secured SMS cannot carry (at most ``limit``)."""

    def __init__(self, size: int, limit: int, segments: int = 1):
        self.size = size
        self.limit = limit
        self.segments = segments
        super().__init__(f"CoAP message of {size} octets, {segments} secured SMS hold {limit}")


def _segments(termination: Termination, max_segments: int | None) -> int:
    """Return ``max_segments``, or the termination's when None; ProtocolError outside 1..255."""
    segments = termination.max_segments if max_segments is None else max_segments
    if not 1 <= segments <= 255:
        raise ProtocolError(f"max_segments {segments} outside 1..255 (TS 23.040 §9.2.3.24.1)")
    return segments


def packet_room(segments: int = 1) -> int:
    """Return the most command-packet octets ``segments`` SMS carry: 137 in one, else 132 + 134 per
    further segment."""
    if segments <= 1:
        return PACKET_ROOM
    return FIRST_SEGMENT_ROOM + (segments - 1) * NEXT_SEGMENT_ROOM


def max_message_size(params: SmsKeyParameters, segments: int = 1) -> int:
    """Return the largest CoAP message ``segments`` SMS carry with ``params``'s cipher (one SMS: 98
    AES, 106 3DES; ``MAX_SEGMENTS``: 1042 either)."""
    return max_data_length(params, packet_room(segments))


def split_packet(packet: bytes, ref: int) -> list[tuple[tuple[InformationElement, ...], bytes]]:
    """Return (UDH IEs, packet octets) of each SMS carrying the command ``packet``: one SMS with the
    CPI alone when it fits, else concatenated segments with reference ``ref`` (8-bit), the CPI in
    the first only (TS 31.115 §4.2). ProtocolError beyond 255 segments or for a bad ``ref``."""
    if len(packet) <= PACKET_ROOM:
        return [((COMMAND_PACKET_IE,), packet)]
    chunks = [packet[:FIRST_SEGMENT_ROOM]] + [packet[i:i + NEXT_SEGMENT_ROOM]
                                              for i in range(FIRST_SEGMENT_ROOM, len(packet), NEXT_SEGMENT_ROOM)]
    total = len(chunks)
    return [((Concat(ref, total, seq).to_ie(),) + ((COMMAND_PACKET_IE,) if seq == 1 else ()), chunk)
            for seq, chunk in enumerate(chunks, start=1)]


def encode_segments(params: SmsKeyParameters, keys: SmsBindingKeys, termination: Termination,
                    direction: Direction, address: Address, counter: int, coap: bytes, *, ref: int = 0,
                    mr: int = 0, scts: bytes = bytes(7), max_segments: int | None = None) -> list[bytes]:
    """Return the TPDUs carrying ``coap`` secured with CNTR ``counter``: one, or the concatenated
    segments (reference ``ref``) of the one command packet, at most ``max_segments`` (None: the
    termination's).

    MT: SMS-DELIVERs with TP-OA ``address`` and TP-SCTS ``scts``; MO: SMS-SUBMITs with TP-DA
    ``address`` and TP-MR ``mr``, ``mr`` + 1, ... MessageTooLong if it does not fit, SmsSecurityError
    if the pair breaks a rule of seed 004 §7.3, ProtocolError if a field does not fit.
    """
    segments = _segments(termination, max_segments)
    limit = max_message_size(params, segments)
    if len(coap) > limit:
        raise MessageTooLong(len(coap), limit, segments)
    packet = protect(params, keys, counter, coap)
    tpdus = []
    for i, (ies, chunk) in enumerate(split_packet(packet, ref)):
        fields = {"pid": termination.pid, "dcs": termination.dcs, "ies": ies, "user_data": chunk}
        if direction is Direction.MT:
            tpdus.append(SmsDeliver(oa=address, scts=scts, **fields).encode())
        else:
            tpdus.append(SmsSubmit(da=address, mr=(mr + i) % 256, **fields).encode())
    return tpdus


def encode_sms(params: SmsKeyParameters, keys: SmsBindingKeys, termination: Termination,
               direction: Direction, address: Address, counter: int, coap: bytes, *,
               mr: int = 0, scts: bytes = bytes(7)) -> bytes:
    """Return the one TPDU carrying ``coap`` secured with CNTR ``counter`` (``encode_segments``
    limited to one SMS: MessageTooLong beyond 98 / 106 octets)."""
    return encode_segments(params, keys, termination, direction, address, counter, coap, mr=mr, scts=scts,
                           max_segments=1)[0]


class SmsBindingSender:
    """Secures CoAP messages to one peer; ``counter`` is the last CNTR sent, ``mr`` the next TP-MR,
    ``ref`` the next concatenation reference.

    ``address`` is TP-OA for MT (the server's own number) and TP-DA for MO (the LwM2M Server
    SMS Number). ``max_segments`` (None: the termination's) bounds ``send_segments``. The pair
    is checked once, here (SmsSecurityError).
    """

    def __init__(self, params: SmsKeyParameters, keys: SmsBindingKeys, termination: Termination,
                 direction: Direction, address: Address, *, counter: int = 0, mr: int = 0, ref: int = 0,
                 max_segments: int | None = None):
        check_policy(params, keys)
        self.params, self.keys = params, keys
        self.termination, self.direction, self.address = termination, direction, address
        self.max_segments = _segments(termination, max_segments)
        self.counter = counter
        self.mr = mr
        self.ref = ref

    def send(self, coap: bytes, *, scts: bytes = bytes(7)) -> bytes:
        """Return the one TPDU carrying ``coap`` with the next counter (MessageTooLong beyond one
        SMS; ``send_segments`` concatenates)."""
        return self._send(coap, scts, 1)[0]

    def send_segments(self, coap: bytes, *, scts: bytes = bytes(7)) -> list[bytes]:
        """Return the TPDUs carrying ``coap`` with the next counter: one SMS, or up to
        ``max_segments`` concatenated (MessageTooLong beyond).

        SmsSecurityError(COUNTER_BLOCKED) once the counter is at 2^40 - 1. A refused message
        uses no counter value, reference nor TP-MR.
        """
        return self._send(coap, scts, self.max_segments)

    def _send(self, coap: bytes, scts: bytes, segments: int) -> list[bytes]:
        if self.counter >= CNTR_MAX:
            raise SmsSecurityError(Reason.COUNTER_BLOCKED, "the counter is at its maximum")
        tpdus = encode_segments(self.params, self.keys, self.termination, self.direction, self.address,
                                self.counter + 1, coap, ref=self.ref, mr=self.mr, scts=scts,
                                max_segments=segments)
        self.counter += 1
        if len(tpdus) > 1:
            self.ref = (self.ref + 1) % 256
        if self.direction is Direction.MO:
            self.mr = (self.mr + len(tpdus)) % 256
        return tpdus


def udh_verdict(ies: tuple[InformationElement, ...], max_segments: int) -> Discarded | None:
    """Return why the UDH ``ies`` is not the binding's (one SMS: the CPI alone; a segment: one
    concatenation IE of at most ``max_segments`` parts, plus the CPI in segment 1 only), or None."""
    concats = [ie for ie in ies if ie.iei in _CONCAT_IEIS]
    if not concats:
        return None if ies == (COMMAND_PACKET_IE,) else Discarded(
            Reason.UDH, "the UDH is not the command packet identifier alone")
    if max_segments == 1:
        return Discarded(Reason.CONCATENATED, "this termination takes one SMS per message, no concatenation")
    if len(concats) > 1:
        return Discarded(Reason.UDH, f"{len(concats)} concatenation IEs, expected one")
    try:
        concat = find_concat(concats)
    except DmsimError as err:
        return Discarded(Reason.UDH, str(err))
    if concat.total > max_segments:
        return Discarded(Reason.CONCATENATED, f"{concat.total} segments, at most {max_segments}")
    others = tuple(ie for ie in ies if ie.iei not in _CONCAT_IEIS)
    if others != ((COMMAND_PACKET_IE,) if concat.seq == 1 else ()):
        return Discarded(Reason.UDH, f"segment {concat.seq}: the command packet identifier belongs in the "
                         "first segment only, with no other IE (TS 31.115 §4.2)")
    return None


class SmsBindingReceiver:
    """Takes the secured SMS of one peer and returns CoAP octets, a ``Discarded`` verdict, or None
    for a segment held until its message is complete.

    ``counter`` is the RE (the highest counter accepted), advanced only by a packet that
    verified; ``stats`` counts accepted messages under ``"accepted"`` and discards by reason;
    ``reassembler`` holds incomplete concatenated messages (bounded, module docstring).
    Sans-IO and silent: no call returns octets to send back; ``now`` is the caller's clock, for
    the reassembly timeout only. The pair is checked once, here (SmsSecurityError).
    """

    def __init__(self, params: SmsKeyParameters, keys: SmsBindingKeys, termination: Termination,
                 direction: Direction, *, counter: int = 0, max_segments: int | None = None,
                 max_pending: int = MAX_PENDING, reassembly_timeout: float = REASSEMBLY_TIMEOUT):
        check_policy(params, keys)
        self.params, self.keys = params, keys
        self.termination, self.direction = termination, direction
        self.max_segments = _segments(termination, max_segments)
        self.counter = counter
        self.stats: Counter[str] = Counter()
        self.reassembler = Reassembler(max_pending=max_pending)
        self.reassembly_timeout = reassembly_timeout

    def receive(self, tpdu: bytes, now: float = 0.0) -> bytes | Discarded | None:
        """Return the CoAP message of the TPDU (SMS-DELIVER for MT, SMS-SUBMIT for MO), Discarded,
        or None for a segment held."""
        try:
            sms = decode_tpdu(tpdu, mt=self.direction is Direction.MT)
        except DmsimError as err:
            return self._discard(Discarded(Reason.MALFORMED, str(err)))
        return self.receive_fields(sms.pid, sms.dcs, sms.ies, sms.user_data, now)

    def receive_fields(self, pid: int, dcs: int, ies: Sequence[InformationElement],
                       user_data: bytes, now: float = 0.0) -> bytes | Discarded | None:
        """Like ``receive`` for an SMS already split into TP-PID, TP-DCS, UDH IEs and the rest of
        TP-UD (as an SMPP deliver_sm gives it)."""
        ies = tuple(ies)
        result = self._envelope_verdict(pid, dcs, ies) or self._packet(ies, user_data, now)
        if result is None:
            return None
        if not isinstance(result, Discarded):
            result = unprotect(self.params, self.keys, self.counter, result)
        if isinstance(result, Discarded):
            return self._discard(result)
        self.counter = result.counter
        self.stats["accepted"] += 1
        return result.data

    def _envelope_verdict(self, pid: int, dcs: int,
                          ies: tuple[InformationElement, ...]) -> Discarded | None:
        if pid != self.termination.pid:
            return Discarded(Reason.PID, f"TP-PID {pid:#04x}, expected {self.termination.pid:#04x}")
        if dcs not in self.termination.accepted_dcs:
            return Discarded(Reason.MESSAGE_CLASS, f"TP-DCS {dcs:#04x} is not 8-bit data of the "
                             f"termination's class")
        return udh_verdict(ies, self.max_segments)

    def _packet(self, ies: tuple[InformationElement, ...], user_data: bytes,
                now: float) -> bytes | Discarded | None:
        """Return the command packet of a single SMS or of the concatenated message this segment
        completes, None while segments are missing, Discarded for a segment its message refuses."""
        concat = find_concat(ies)
        if concat is None or concat.total == 1:
            return bytes(user_data)
        self.reassembler.expire(now, self.reassembly_timeout)
        try:
            done = self.reassembler.feed_parsed(_PEER, ies, bytes(user_data), now)
        except DmsimError as err:
            return Discarded(Reason.CONCATENATED, str(err))
        return None if done is None else done.payload

    def _discard(self, verdict: Discarded) -> Discarded:
        self.stats[verdict.reason.value] += 1
        return verdict
