"""CoAP over SMS with the secured packet: the LwM2M SMS binding's transport (seed 004 §7.3).

The secured data of a command packet (ETSI TS 102 225 §5.1, via ``sms_security``) is one CoAP
message (RFC 7252 §3, as the bytes a UDP datagram would carry). The packet is the TP-UD of one
SMS, after a UDH that holds only the command packet identifier, IE 70 with no data (3GPP TS
31.115 §4.2): the TP-UD starts ``02 70 00``.

- Server to client (MT): an SMS-DELIVER (TS 23.040 §9.2.2.1) whose TP-OA is the server's number.
- Client to server (MO): an SMS-SUBMIT (§9.2.2.2) whose TP-DA is the "LwM2M Server SMS Number".

Termination (seed 004 §7.3): on the device, class 1 (TS 23.038 §4, 8-bit data) with TP-PID 7D
(ME data download); on the UICC, class 2 with TP-PID 7F (USIM data download). Sent as TP-DCS F5 /
F6; on receipt every TP-DCS meaning "8-bit data, uncompressed, class N" is taken (general data
coding 15/16, automatic deletion 55/56, message class group F5/F6), nothing else.

Choices where the spec leaves room:
- MO uses the same command packet, the same TP-PID and class as MT, and the *sender's own*
  counter: the LwM2M client's message is a command for the server (a CoAP request, or a CoAP
  response in a packet of its own), never a Proof of Receipt, and the server checks it with the
  same rules. Each direction has its counter: a sender's last CNTR, a receiver's RE.
- One SMS per CoAP message: concatenation is refused (``MessageTooLong`` on send, a
  ``CONCATENATED`` verdict on receipt). With the 3-octet UDH the packet has 137 octets, so a
  CoAP message holds at most 98 octets with AES, 106 with 3DES (``max_message_size``).
- A receiver takes exactly the UDH ``02 70 00``: any other IE (ports, a response packet
  identifier, data in IE 70) is a ``UDH`` verdict.
- The originator (TP-OA) is not checked: the keys are what protects; routing an SMS to the
  receiver of its peer is the caller's.
- A receiver discards silently: it returns ``Discarded`` and never any reply octets, and counts
  the reasons in ``stats`` (bounded: one entry per ``Reason``).
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
from dmsim.network.sms.tpdu import (
    DCS_8BIT_CLASS1, DCS_8BIT_CLASS2, MAX_UD_OCTETS, PID_ME_DATA_DOWNLOAD, PID_USIM_DATA_DOWNLOAD,
    SmsDeliver, SmsSubmit, decode_tpdu)
from dmsim.network.sms.udh import IEI_CONCAT_8BIT, IEI_CONCAT_16BIT, InformationElement

COMMAND_PACKET_IE = InformationElement(IEI_COMMAND_PACKET, b"")
PACKET_ROOM = MAX_UD_OCTETS - len(UDH_COMMAND)   # 137


class Termination(Enum):
    """Where the security ends (seed 004 §7.3): its TP-PID, the TP-DCS sent and those accepted."""

    DEVICE = (PID_ME_DATA_DOWNLOAD, DCS_8BIT_CLASS1, frozenset({0x15, 0x55, DCS_8BIT_CLASS1}))
    UICC = (PID_USIM_DATA_DOWNLOAD, DCS_8BIT_CLASS2, frozenset({0x16, 0x56, DCS_8BIT_CLASS2}))

    def __init__(self, pid: int, dcs: int, accepted_dcs: frozenset[int]):
        self.pid = pid
        self.dcs = dcs
        self.accepted_dcs = accepted_dcs


class Direction(Enum):
    """MT: server to client in an SMS-DELIVER; MO: client to server in an SMS-SUBMIT."""

    MT = "mt"
    MO = "mo"


class MessageTooLong(ProtocolError):
    """A CoAP message that does not fit one secured SMS: ``size`` octets, at most ``limit``."""

    def __init__(self, size: int, limit: int):
        self.size = size
        self.limit = limit
        super().__init__(f"CoAP message of {size} octets, one secured SMS holds {limit}")


def max_message_size(params: SmsKeyParameters) -> int:
    """Return the largest CoAP message one SMS carries with ``params``'s cipher (98 AES, 106 3DES)."""
    return max_data_length(params, PACKET_ROOM)


def encode_sms(params: SmsKeyParameters, keys: SmsBindingKeys, termination: Termination,
               direction: Direction, address: Address, counter: int, coap: bytes, *,
               mr: int = 0, scts: bytes = bytes(7)) -> bytes:
    """Return the TPDU carrying ``coap`` secured with CNTR ``counter``.

    MT: an SMS-DELIVER with TP-OA ``address`` and TP-SCTS ``scts``; MO: an SMS-SUBMIT with TP-DA
    ``address`` and TP-MR ``mr``. MessageTooLong if it does not fit one SMS, SmsSecurityError
    if the pair breaks a rule of seed 004 §7.3, ProtocolError if a field does not fit.
    """
    limit = max_message_size(params)
    if len(coap) > limit:
        raise MessageTooLong(len(coap), limit)
    packet = protect(params, keys, counter, coap)
    fields = {"pid": termination.pid, "dcs": termination.dcs, "ies": (COMMAND_PACKET_IE,),
              "user_data": packet}
    if direction is Direction.MT:
        return SmsDeliver(oa=address, scts=scts, **fields).encode()
    return SmsSubmit(da=address, mr=mr, **fields).encode()


class SmsBindingSender:
    """Secures CoAP messages to one peer; ``counter`` is the last CNTR sent, ``mr`` the next TP-MR.

    ``address`` is TP-OA for MT (the server's own number) and TP-DA for MO (the LwM2M Server
    SMS Number). The pair is checked once, here (SmsSecurityError).
    """

    def __init__(self, params: SmsKeyParameters, keys: SmsBindingKeys, termination: Termination,
                 direction: Direction, address: Address, *, counter: int = 0, mr: int = 0):
        check_policy(params, keys)
        self.params, self.keys = params, keys
        self.termination, self.direction, self.address = termination, direction, address
        self.counter = counter
        self.mr = mr

    def send(self, coap: bytes, *, scts: bytes = bytes(7)) -> bytes:
        """Return the TPDU carrying ``coap`` with the next counter (MessageTooLong if too long).

        SmsSecurityError(COUNTER_BLOCKED) once the counter is at 2^40 - 1. A refused message
        uses no counter value.
        """
        if self.counter >= CNTR_MAX:
            raise SmsSecurityError(Reason.COUNTER_BLOCKED, "the counter is at its maximum")
        tpdu = encode_sms(self.params, self.keys, self.termination, self.direction, self.address,
                          self.counter + 1, coap, mr=self.mr, scts=scts)
        self.counter += 1
        if self.direction is Direction.MO:
            self.mr = (self.mr + 1) % 256
        return tpdu


class SmsBindingReceiver:
    """Takes the secured SMS of one peer and returns CoAP octets or a ``Discarded`` verdict.

    ``counter`` is the RE (the highest counter accepted), advanced only by a packet that
    verified; ``stats`` counts accepted messages under ``"accepted"`` and discards by reason.
    Sans-IO and silent: no call returns octets to send back. The pair is checked once, here
    (SmsSecurityError).
    """

    def __init__(self, params: SmsKeyParameters, keys: SmsBindingKeys, termination: Termination,
                 direction: Direction, *, counter: int = 0):
        check_policy(params, keys)
        self.params, self.keys = params, keys
        self.termination, self.direction = termination, direction
        self.counter = counter
        self.stats: Counter[str] = Counter()

    def receive(self, tpdu: bytes) -> bytes | Discarded:
        """Return the CoAP message of the TPDU (SMS-DELIVER for MT, SMS-SUBMIT for MO), or Discarded."""
        try:
            sms = decode_tpdu(tpdu, mt=self.direction is Direction.MT)
        except DmsimError as err:
            return self._discard(Discarded(Reason.MALFORMED, str(err)))
        return self.receive_fields(sms.pid, sms.dcs, sms.ies, sms.user_data)

    def receive_fields(self, pid: int, dcs: int, ies: Sequence[InformationElement],
                       user_data: bytes) -> bytes | Discarded:
        """Like ``receive`` for an SMS already split into TP-PID, TP-DCS, UDH IEs and the rest of
        TP-UD (as an SMPP deliver_sm gives it)."""
        verdict = self._envelope_verdict(pid, dcs, tuple(ies))
        result = verdict or unprotect(self.params, self.keys, self.counter, user_data)
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
        if any(ie.iei in (IEI_CONCAT_8BIT, IEI_CONCAT_16BIT) for ie in ies):
            return Discarded(Reason.CONCATENATED, "concatenated secured SMS are not supported")
        if ies != (COMMAND_PACKET_IE,):
            return Discarded(Reason.UDH, "the UDH is not the command packet identifier alone")
        return None

    def _discard(self, verdict: Discarded) -> Discarded:
        self.stats[verdict.reason.value] += 1
        return verdict
