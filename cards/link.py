"""CardLink: the one seam between dmsim and a card, whether in process, in a PC/SC reader or vpcd.

A link only implements ``_transmit_raw`` (one C-APDU out, one R-APDU back). What every link
needs is done once here:

* '61XX' (ISO/IEC 7816-4, status bytes; ETSI TS 102 221 §7.3.1.1, case 4 over T=0): XX more
  response bytes wait; they are fetched with GET RESPONSE (TS 102 221 §12.1.1: INS 'C0',
  Le = XX, '00' meaning 256) and appended, until the card answers another status;
* '6CXX' (ISO/IEC 7816-4, status bytes; ETSI TS 102 221 §7.3.1.1, case 2 over T=0): the Le was
  wrong; the same command is sent once more with Le = XX;
* a trace hook sees every raw exchange, GET RESPONSEs included;
* ``last_latency`` holds the wall-clock seconds the last ``transmit`` took (chaining included),
  so that a simulation can turn a real card's measured latency into simulated time.

Choices where the specs leave room:

* GET RESPONSE keeps only the logical channel of the command's class byte ('80'/'84' become
  '00', '81' becomes '01', '4X'/'CX' become '4X'); the GSM class 'A0' (3GPP TS 51.011) stays.
* A '6CXX' is honoured once per command: a card that answers '6CXX' to the corrected command
  gets its answer returned as is. It only applies to short APDUs; an extended APDU answered
  with '6CXX' is returned as is.
* At most ``MAX_GET_RESPONSE`` GET RESPONSEs per command (64 × 256 bytes): a card that keeps
  answering '61XX' is broken, and ``transmit`` raises ProtocolError instead of looping.
"""
from __future__ import annotations

import time
from typing import Callable, Protocol

from dmsim.cards.apdu import build_command, parse_command, split_response
from dmsim.base.errors import DecodeError, ProtocolError

SW1_MORE_DATA = 0x61     # ISO/IEC 7816-4: SW2 = bytes still available ('00': 256)
SW1_WRONG_LE = 0x6C      # ISO/IEC 7816-4: SW2 = the exact Le to use
INS_GET_RESPONSE = 0xC0  # ETSI TS 102 221 §12.1.1
CLA_GSM = 0xA0           # 3GPP TS 51.011 §9.2: the 2G SIM class byte
MAX_GET_RESPONSE = 64

TraceHook = Callable[[bytes, bytes, float], None]
"""Called as ``hook(c_apdu, r_apdu, seconds)`` after each raw exchange."""


class Card(Protocol):
    """What a link or the vpcd bridge needs from an in-process card (e.g. ``cards.uicc.Uicc``)."""

    atr: bytes

    def process(self, apdu: bytes) -> bytes:
        """Return the R-APDU (response data + SW1 SW2) for one C-APDU."""


class CardLink:
    """Base of every link: APDU chaining, tracing and latency on top of ``_transmit_raw``."""

    def __init__(self, trace: TraceHook | None = None, clock: Callable[[], float] = time.perf_counter):
        self.trace = trace
        self.clock = clock
        self.last_latency: float = 0.0

    # --- what a link implements -------------------------------------------------------------
    def _transmit_raw(self, apdu: bytes) -> bytes:
        """Return the card's raw R-APDU (data + SW1 SW2) for one C-APDU."""
        raise NotImplementedError

    @property
    def atr(self) -> bytes:
        """Return the card's answer to reset."""
        raise NotImplementedError

    def connect(self) -> None:
        """Open the link (a no-op where there is nothing to open)."""

    def disconnect(self) -> None:
        """Close the link (a no-op where there is nothing to close)."""

    def __enter__(self) -> "CardLink":
        self.connect()
        return self

    def __exit__(self, *exc) -> None:
        self.disconnect()

    # --- done once for every link -----------------------------------------------------------
    def transmit(self, apdu: bytes) -> tuple[bytes, int]:
        """Return ``(data, sw)`` for a C-APDU: the data of every '61XX' part, and the final SW."""
        apdu = bytes(apdu)
        if len(apdu) < 4:
            raise DecodeError("C-APDU", len(apdu), "shorter than CLA INS P1 P2", expected="at least 4 bytes")
        start = self.clock()
        try:
            data, sw = self._exchange(apdu)
            if sw >> 8 != SW1_MORE_DATA:
                return data, sw
            chunks = [data]
            for _ in range(MAX_GET_RESPONSE):
                if sw >> 8 != SW1_MORE_DATA:
                    return b"".join(chunks), sw
                data, sw = self._exchange(get_response(apdu[0], sw & 0xFF))
                chunks.append(data)
            raise ProtocolError(f"card still answers 61XX after {MAX_GET_RESPONSE} GET RESPONSEs")
        finally:
            self.last_latency = self.clock() - start

    def _exchange(self, apdu: bytes) -> tuple[bytes, int]:
        """Return ``(data, sw)`` of one command, resent once with the right Le on '6CXX'."""
        data, sw = self._raw(apdu)
        if sw >> 8 == SW1_WRONG_LE:
            fixed = with_le(apdu, sw & 0xFF)
            if fixed is not None:
                data, sw = self._raw(fixed)
        return data, sw

    def _raw(self, apdu: bytes) -> tuple[bytes, int]:
        """Return ``(data, sw)`` of one raw exchange, reported to the trace hook."""
        if self.trace is None:
            rapdu = bytes(self._transmit_raw(apdu))
        else:
            start = self.clock()
            rapdu = bytes(self._transmit_raw(apdu))
            self.trace(apdu, rapdu, self.clock() - start)
        return split_response(rapdu)


class InProcessLink(CardLink):
    """A link to a card object in this process: ``card.process(apdu) -> bytes``."""

    def __init__(self, card: Card, trace: TraceHook | None = None, clock: Callable[[], float] = time.perf_counter):
        super().__init__(trace, clock)
        self.card = card

    @property
    def atr(self) -> bytes:
        """Return the card's ``atr`` attribute (empty if it has none)."""
        return bytes(getattr(self.card, "atr", b""))

    def _transmit_raw(self, apdu: bytes) -> bytes:
        return self.card.process(apdu)


def get_response(cla: int, le: int) -> bytes:
    """Return the GET RESPONSE C-APDU fetching ``le`` bytes on the channel of class byte ``cla``."""
    if cla == CLA_GSM:
        out_cla = CLA_GSM
    elif cla & 0x40:       # further interindustry class: channels 4..19 in b4..b1
        out_cla = 0x40 | (cla & 0x0F)
    else:                  # first interindustry class: channels 0..3 in b2..b1
        out_cla = cla & 0x03
    return build_command(out_cla, INS_GET_RESPONSE, 0x00, 0x00, le=le or 256)


def with_le(apdu: bytes, le: int) -> bytes | None:
    """Return the short C-APDU ``apdu`` with its Le set to ``le`` ('00': 256), or None.

    None for an extended or malformed APDU. A case 1 or case 3 command gains an Le.
    """
    try:
        command = parse_command(apdu)
    except DecodeError:
        return None
    if command.extended:
        return None
    return command._replace(le=le or 256).to_bytes()
