"""Proactive UICC: FETCH (80 12) and TERMINAL RESPONSE (80 14), ETSI TS 102 221 §10.1.2, §10.2.1
(SW 91 XX, 93 00), and the proactive command / terminal response coding of ETSI TS 102 223 §6.6,
§6.8 used for SEND SHORT MESSAGE (§6.6.9, §6.4.10).

Shared by the card (which queues commands and answers FETCH/TERMINAL RESPONSE) and the ME
(devices/sms_pp.py, which fetches, parses and answers); sans-IO.

A proactive command is the BER-TLV D0 holding COMPREHENSION-TLVs (TS 102 223 §8, Annex C):
command details (01: number, type, qualifier), device identities (02: source, destination),
then the command's own TLVs. SEND SHORT MESSAGE (type 13) carries an optional alpha
identifier (05), an optional SC address (06: TON/NPI then BCD digits) and the SMS TPDU (0B).
A TERMINAL RESPONSE carries the command details of the command it answers, device identities
(82 -> 81, ME to UICC) and a result (03: general result, additional information).

Card side: ``register(card)`` plugs FETCH and TERMINAL RESPONSE into a ``Uicc``; a handler that
wants the ME to act calls ``queue(card, command)`` and answers the status word it returns
(91 XX, XX = the command's length). The queue (``ProactiveCommand``s) lives in
``card.state["proactive.queue"]``, the answers the ME gave in ``card.state["proactive.responses"]``
(``TerminalResponse``s).

Choices where the specs leave room:
- Only the command that queued a proactive command answers 91 XX, and TERMINAL RESPONSE when
  another one waits; other commands keep their 90 00 while one is pending (TS 102 221 has
  the card answer 91 XX to any command then; the ME of this simulator fetches at once).
- FETCH with nothing pending answers 6985; it returns the head of the queue (again, if the ME
  fetches twice), with Le handled as READ RECORD does (6Cxx for a wrong Le). A TERMINAL
  RESPONSE before any FETCH answers 6985; one that does not parse, or whose command details
  are not the fetched command's, 6A80. An accepted one removes the command from the queue,
  whatever its result (the card does not retry a command the ME refused).
- ``busy(card)`` (a command is queued) is what makes ENVELOPE answer 93 00 in ota_app.py.
- Command numbers run 01..FE per card (00 and FF are reserved, TS 102 223 §8.6).
- TERMINAL PROFILE is not modelled: the card assumes the ME supports SEND SHORT MESSAGE.
- The SC address TLV value is kept as its raw octets (TON/NPI, BCD) on decode.
- Three-octet tags (7F xx xx) are refused: no command or response here uses them.
- Every malformed input raises DecodeError("proactive", offset) with the offset counted from
  the first octet given to the parser.
"""
from __future__ import annotations

from dataclasses import dataclass

from dmsim.cards import comprehension_tlv
from dmsim.cards.comprehension_tlv import CR_FLAG
from dmsim.cards import sw as SW
from dmsim.cards.apdu import CommandApdu, build_command
from dmsim.cards.envelope import CLA_CAT, DEVICE_NETWORK, DEVICE_UICC
from dmsim.cards.filesystem import tlv
from dmsim.cards.sw import StatusWord
from dmsim.cards.uicc import PROPRIETARY, Channel, Reply, Uicc, fit_le
from dmsim.network.sms.address import Address, encode_address
from dmsim.base.errors import DecodeError, ProtocolError

INS_FETCH = 0x12                 # TS 102 221 §10.1.2
INS_TERMINAL_RESPONSE = 0x14
TAG_PROACTIVE_COMMAND = 0xD0     # TS 101 220 §7.2
TAG_COMMAND_DETAILS = 0x01       # TS 102 223 §8.6
TAG_DEVICE_IDENTITIES = 0x02     # §8.7
TAG_RESULT = 0x03                # §8.12
TAG_ALPHA_IDENTIFIER = 0x05      # §8.2
TAG_ADDRESS = 0x06               # §8.1
TAG_SMS_TPDU = 0x0B              # §8.13
DEVICE_TERMINAL = 0x82           # §8.7: the ME
TYPE_SEND_SHORT_MESSAGE = 0x13   # §9.4
RESULT_OK = 0x00                 # §8.12 general results
RESULT_ME_UNABLE = 0x20          # "terminal currently unable to process command" (+ 1 octet)
RESULT_BEYOND_CAPABILITIES = 0x30
RESULT_NOT_UNDERSTOOD = 0x32

SAT_BUSY = StatusWord(0x9300, "toolkit busy, command cannot be executed at present", "TS 102 221 §10.2.1.2")

STATE_QUEUE = "proactive.queue"
STATE_FETCHED = "proactive.fetched"
STATE_NUMBER = "proactive.number"
STATE_RESPONSES = "proactive.responses"

_MAX_COMMAND = 256               # FETCH answers at most 256 octets (91 00 means 256)
_NAMES = {TAG_COMMAND_DETAILS: "command details", TAG_DEVICE_IDENTITIES: "device identities",
          TAG_RESULT: "result", TAG_ALPHA_IDENTIFIER: "alpha identifier", TAG_ADDRESS: "address",
          TAG_SMS_TPDU: "SMS TPDU"}


def proactive_pending(length: int) -> StatusWord:
    """Return 91 XX: normal ending, a proactive command of ``length`` octets waits (00: 256)."""
    return StatusWord(0x9100 | (length & 0xFF), f"proactive command of {length} octets pending",
                      "TS 102 221 §10.2.1.1")


# -- coding ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ProactiveCommand:
    """A parsed proactive command: command details, device identities, the other TLVs by tag."""

    number: int
    type: int
    qualifier: int
    source: int
    destination: int
    tlvs: dict[int, bytes]
    raw: bytes

    @property
    def details(self) -> bytes:
        """Return the three command details octets (number, type, qualifier)."""
        return bytes([self.number, self.type, self.qualifier])

    @property
    def sms_tpdu(self) -> bytes | None:
        """Return the SMS TPDU TLV value, or None."""
        return self.tlvs.get(TAG_SMS_TPDU)

    @property
    def sc_address(self) -> bytes | None:
        """Return the address TLV value (TON/NPI, BCD digits), or None."""
        return self.tlvs.get(TAG_ADDRESS)


@dataclass(frozen=True)
class TerminalResponse:
    """A parsed TERMINAL RESPONSE: the command details it answers, general result, additional info."""

    number: int
    type: int
    qualifier: int
    result: int
    additional: bytes = b""

    @property
    def details(self) -> bytes:
        """Return the three command details octets (number, type, qualifier)."""
        return bytes([self.number, self.type, self.qualifier])


def parse_tlvs(data: bytes, pos: int = 0) -> dict[int, tuple[int, bytes]]:
    """Return tag -> (value offset, value) of the proactive TLVs from ``pos`` (see comprehension_tlv)."""
    return comprehension_tlv.parse_tlvs(data, pos, _NAMES, "proactive")


def _fixed(tlvs: dict[int, tuple[int, bytes]], tag: int, size: int, end: int) -> bytes:
    """Return the value of mandatory TLV ``tag``, which must be ``size`` octets."""
    if tag not in tlvs:
        raise DecodeError("proactive", end, f"no {_NAMES[tag]} TLV", "a mandatory TLV")
    at, value = tlvs[tag]
    if len(value) != size:
        raise DecodeError("proactive", at, f"{_NAMES[tag]} of {len(value)} octets", str(size))
    return value


def parse_proactive_command(data: bytes) -> ProactiveCommand:
    """Return the proactive command in ``data`` (the FETCH response data: D0 L ...)."""
    data = bytes(data)
    if not data or data[0] != TAG_PROACTIVE_COMMAND:
        raise DecodeError("proactive", 0, f"BER-TLV tag {data[:1].hex() or 'missing'}", "d0 (proactive command)")
    length, pos = comprehension_tlv.read_length(data, 1, "proactive")
    if pos + length != len(data):
        raise DecodeError("proactive", 1, f"BER-TLV length {length}, {len(data) - pos} octets follow")
    tlvs = parse_tlvs(data, pos)
    number, kind, qualifier = _fixed(tlvs, TAG_COMMAND_DETAILS, 3, len(data))
    source, destination = _fixed(tlvs, TAG_DEVICE_IDENTITIES, 2, len(data))
    others = {tag: value for tag, (_, value) in tlvs.items()
              if tag not in (TAG_COMMAND_DETAILS, TAG_DEVICE_IDENTITIES)}
    if kind == TYPE_SEND_SHORT_MESSAGE and TAG_SMS_TPDU not in others:
        raise DecodeError("proactive", len(data), "SEND SHORT MESSAGE without an SMS TPDU TLV", "a 0b TLV")
    return ProactiveCommand(number, kind, qualifier, source, destination, others, data)


def send_short_message(tpdu: bytes, *, number: int = 1, sc_address: Address | None = None,
                       alpha: bytes | None = b"") -> bytes:
    """Return the SEND SHORT MESSAGE proactive command (TS 102 223 §6.6.9) carrying ``tpdu``.

    Qualifier 00 (no packing by the ME); ``alpha`` b"" is the null alpha identifier that tells
    the ME to say nothing to the user, None leaves it out. ProtocolError if it exceeds 256 octets.
    """
    if not 0x01 <= number <= 0xFE:
        raise ProtocolError(f"command number {number} outside 01..FE")
    body = (tlv(CR_FLAG | TAG_COMMAND_DETAILS, bytes([number, TYPE_SEND_SHORT_MESSAGE, 0]))
            + tlv(CR_FLAG | TAG_DEVICE_IDENTITIES, bytes([DEVICE_UICC, DEVICE_NETWORK])))
    if alpha is not None:
        body += tlv(TAG_ALPHA_IDENTIFIER, alpha)
    if sc_address is not None:
        body += tlv(CR_FLAG | TAG_ADDRESS, encode_address(sc_address)[1:])
    body += tlv(CR_FLAG | TAG_SMS_TPDU, bytes(tpdu))
    if len(body) > 0xFF:
        raise ProtocolError(f"proactive command body of {len(body)} octets above 255")
    command = tlv(TAG_PROACTIVE_COMMAND, body)
    if len(command) > _MAX_COMMAND:
        raise ProtocolError(f"proactive command of {len(command)} octets above {_MAX_COMMAND}")
    return command


def fetch_apdu(length: int) -> bytes:
    """Return the FETCH C-APDU asking for ``length`` octets (the XX of 91 XX, 00 meaning 256)."""
    return build_command(CLA_CAT, INS_FETCH, 0, 0, le=length or 256)


def terminal_response_apdu(command: ProactiveCommand, result: int = RESULT_OK, additional: bytes = b"") -> bytes:
    """Return the TERMINAL RESPONSE C-APDU answering ``command`` with general ``result``."""
    if not 0 <= result <= 0xFF:
        raise ProtocolError(f"general result {result} is not an octet")
    data = (tlv(CR_FLAG | TAG_COMMAND_DETAILS, command.details)
            + tlv(CR_FLAG | TAG_DEVICE_IDENTITIES, bytes([DEVICE_TERMINAL, DEVICE_UICC]))
            + tlv(CR_FLAG | TAG_RESULT, bytes([result]) + bytes(additional)))
    return build_command(CLA_CAT, INS_TERMINAL_RESPONSE, 0, 0, data)


def parse_terminal_response(data: bytes) -> TerminalResponse:
    """Return the TERMINAL RESPONSE in ``data`` (the APDU's data field)."""
    data = bytes(data)
    tlvs = parse_tlvs(data)
    number, kind, qualifier = _fixed(tlvs, TAG_COMMAND_DETAILS, 3, len(data))
    _fixed(tlvs, TAG_DEVICE_IDENTITIES, 2, len(data))
    if TAG_RESULT not in tlvs or not tlvs[TAG_RESULT][1]:
        raise DecodeError("proactive", tlvs.get(TAG_RESULT, (len(data),))[0], "no general result",
                          "a result TLV of at least 1 octet")
    result = tlvs[TAG_RESULT][1]
    return TerminalResponse(number, kind, qualifier, result[0], bytes(result[1:]))


# -- the card side -----------------------------------------------------------------------------

def register(card: Uicc) -> None:
    """Add FETCH and TERMINAL RESPONSE to ``card`` and set up an empty queue."""
    card.state.setdefault(STATE_QUEUE, [])
    card.state.setdefault(STATE_FETCHED, False)
    card.state.setdefault(STATE_NUMBER, 0)
    card.state.setdefault(STATE_RESPONSES, [])
    card.register(PROPRIETARY, INS_FETCH, fetch)
    card.register(PROPRIETARY, INS_TERMINAL_RESPONSE, terminal_response)


def next_number(card: Uicc) -> int:
    """Return the next command number of ``card`` (01..FE, wrapping)."""
    number = card.state.get(STATE_NUMBER, 0) % 0xFE + 1
    card.state[STATE_NUMBER] = number
    return number


def busy(card: Uicc) -> bool:
    """Return whether a proactive command waits for FETCH or TERMINAL RESPONSE."""
    return bool(card.state.get(STATE_QUEUE))


def queue(card: Uicc, command: bytes) -> StatusWord:
    """Queue ``command`` and return the 91 XX the queuing command answers (XX: the head's length).

    DecodeError if ``command`` is not a proactive command.
    """
    pending = card.state.setdefault(STATE_QUEUE, [])
    pending.append(parse_proactive_command(command))
    return proactive_pending(len(pending[0].raw))


def fetch(card: Uicc, channel: Channel, cmd: CommandApdu) -> Reply:
    """FETCH, TS 102 221 §10.1.2: answer the pending proactive command."""
    if cmd.p1 or cmd.p2:
        return Reply(b"", SW.INCORRECT_P1P2)
    if cmd.data:
        return Reply(b"", SW.WRONG_LENGTH)
    pending = card.state.get(STATE_QUEUE)
    if not pending:
        return Reply(b"", SW.CONDITIONS_NOT_SATISFIED)
    reply = fit_le(cmd, pending[0].raw, partial_ok=False)
    if int(reply.sw) == SW.OK.sw:
        card.state[STATE_FETCHED] = True
    return reply


def terminal_response(card: Uicc, channel: Channel, cmd: CommandApdu) -> Reply:
    """TERMINAL RESPONSE, TS 102 221 §10.1.2: take the ME's answer to the fetched command."""
    if cmd.p1 or cmd.p2:
        return Reply(b"", SW.INCORRECT_P1P2)
    if not cmd.data:
        return Reply(b"", SW.WRONG_LENGTH)
    pending = card.state.get(STATE_QUEUE)
    if not pending or not card.state.get(STATE_FETCHED):
        return Reply(b"", SW.CONDITIONS_NOT_SATISFIED)
    try:
        answer = parse_terminal_response(cmd.data)
    except DecodeError:
        return Reply(b"", SW.WRONG_DATA)
    if answer.details != pending[0].details:
        return Reply(b"", SW.WRONG_DATA)
    pending.pop(0)
    card.state[STATE_FETCHED] = False
    card.state.setdefault(STATE_RESPONSES, []).append(answer)
    return Reply(b"", proactive_pending(len(pending[0].raw)) if pending else SW.OK)

