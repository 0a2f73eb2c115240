"""CardLink over an in-process card: 61XX -> GET RESPONSE, 6CXX -> resend, trace and latency.

(Named test_card_link.py: tests/sim/links/test_link.py already owns the basename test_link.)
``StandInCard`` is also the card test_pcsc.py serves through pcscd.
"""
import itertools

import pytest
from hypothesis import given, settings, strategies as st

from dmsim.cards.link import InProcessLink, get_response, with_le
from dmsim.base.errors import DecodeError, ProtocolError

FCP_MF = bytes.fromhex("62178202782183023f00a509800171830400018d088a01058b032f0602")
EF_DATA = bytes.fromhex("98101032547698badcfe")


class StandInCard:
    """A tiny T=0-style card: SELECT MF, READ BINARY, a case-4 command, GET RESPONSE.

    * ``00 A4 00 04 02 3F00``: '61XX', the FCP waits for GET RESPONSE; ``P2=0C``: '9000';
    * ``00 B0 00 00 Le``: ``EF_DATA`` + '9000' if Le is its length, else '6CXX';
    * ``00 88 00 00 Lc data``: ``reply_len`` bytes (0, 1, 2, ...) wait behind '61XX';
    * ``00 C0 00 00 Le``: up to Le waiting bytes, then '61XX' for the rest or '9000'.
    """

    atr = bytes.fromhex("3b021450")

    def __init__(self, reply_len: int = 300):
        self.reply_len = reply_len
        self.pending = b""
        self.seen: list[bytes] = []
        self.resets = 0

    def reset(self) -> None:
        self.pending = b""
        self.resets += 1

    def _more(self, data: bytes) -> bytes:
        self.pending = data
        return bytes((0x61, min(len(data), 256) & 0xFF)) if data else b"\x90\x00"

    def process(self, apdu: bytes) -> bytes:
        self.seen.append(apdu)
        ins, p2 = apdu[1], apdu[3]
        if ins == 0xA4:
            if apdu[5:7] != b"\x3f\x00":
                return b"\x6a\x82"
            return self._more(FCP_MF) if p2 == 0x04 else b"\x90\x00"
        if ins == 0xB0:
            if apdu[4] != len(EF_DATA):
                return bytes((0x6C, len(EF_DATA)))
            return EF_DATA + b"\x90\x00"
        if ins == 0x88:
            return self._more(bytes(i & 0xFF for i in range(self.reply_len)))
        if ins == 0xC0:
            if not self.pending:
                return b"\x69\x85"
            le = apdu[4] or 256
            if le > len(self.pending):
                return bytes((0x6C, len(self.pending)))
            out, rest = self.pending[:le], self.pending[le:]
            return out + self._more(rest)
        return b"\x6d\x00"


SELECT_MF_FCP = bytes.fromhex("00a40004023f00")
SELECT_MF = bytes.fromhex("00a4000c023f00")
READ_BINARY_WRONG_LE = bytes.fromhex("00b0000000")
CASE4 = bytes.fromhex("0088000004deadbeef00")


def test_select_without_response_data():
    assert InProcessLink(StandInCard()).transmit(SELECT_MF) == (b"", 0x9000)


def test_61xx_is_fetched_with_get_response_and_traced():
    card, trace = StandInCard(), []
    link = InProcessLink(card, trace=lambda c, r, dt: trace.append((c, r)))
    assert link.transmit(SELECT_MF_FCP) == (FCP_MF, 0x9000)
    assert [c for c, _ in trace] == [SELECT_MF_FCP, bytes.fromhex("00c00000") + bytes((len(FCP_MF),))]
    assert trace[0][1] == bytes((0x61, len(FCP_MF)))


def test_61xx_chains_past_256_bytes():
    card = StandInCard(reply_len=300)
    data, sw = InProcessLink(card).transmit(CASE4)
    assert sw == 0x9000 and data == bytes(i & 0xFF for i in range(300))
    assert card.seen[1:] == [bytes.fromhex("00c0000000"), bytes.fromhex("00c000002c")]


def test_6cxx_resends_with_the_right_le():
    card = StandInCard()
    assert InProcessLink(card).transmit(READ_BINARY_WRONG_LE) == (EF_DATA, 0x9000)
    assert card.seen == [READ_BINARY_WRONG_LE, bytes.fromhex("00b000000a")]


def test_6cxx_is_honoured_once():
    class Stubborn:
        def process(self, apdu):
            return b"\x6c\x05"
    assert InProcessLink(Stubborn()).transmit(READ_BINARY_WRONG_LE) == (b"", 0x6C05)


def test_errors_pass_through_unchanged():
    assert InProcessLink(StandInCard()).transmit(bytes.fromhex("00a40000022f00")) == (b"", 0x6A82)
    assert InProcessLink(StandInCard()).transmit(bytes.fromhex("00c0000010")) == (b"", 0x6985)


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=0, max_value=1500))
def test_chaining_reassembles_any_length(n):
    data, sw = InProcessLink(StandInCard(reply_len=n)).transmit(CASE4)
    assert sw == 0x9000 and data == bytes(i & 0xFF for i in range(n))


def test_last_latency_is_the_whole_transmit_on_the_links_clock():
    ticks, steps = itertools.count(start=0.0, step=0.5), []
    link = InProcessLink(StandInCard(), clock=lambda: next(ticks), trace=lambda c, r, dt: steps.append(dt))
    link.transmit(SELECT_MF_FCP)   # start, (raw start, raw end) x 2, end: 6 ticks
    assert link.last_latency == pytest.approx(2.5) and steps == [0.5, 0.5]


def test_bad_input_raises_typed_errors():
    link = InProcessLink(StandInCard())
    with pytest.raises(DecodeError):
        link.transmit(b"\x00\xa4\x00")

    class Mute:
        def process(self, apdu):
            return b"\x90"
    with pytest.raises(DecodeError):
        InProcessLink(Mute()).transmit(SELECT_MF)

    class Endless:
        def process(self, apdu):
            return b"\x61\x01" if apdu[1] != 0xC0 else b"\x01\x61\x01"
    with pytest.raises(ProtocolError):
        InProcessLink(Endless()).transmit(CASE4)


def test_atr_and_context_manager():
    with InProcessLink(StandInCard()) as link:
        assert link.atr == StandInCard.atr


@pytest.mark.parametrize("cla, expected", [(0x00, 0x00), (0x80, 0x00), (0x84, 0x00), (0x81, 0x01),
                                           (0x43, 0x43), (0xC5, 0x45), (0xA0, 0xA0)])
def test_get_response_keeps_the_logical_channel(cla, expected):
    assert get_response(cla, 0x10) == bytes((expected, 0xC0, 0x00, 0x00, 0x10))


@pytest.mark.parametrize("apdu, expected", [
    ("00b00000", "00b0000008"),                  # case 1 gains an Le
    ("00b0000000", "00b0000008"),                # case 2
    ("00a40004023f00", "00a40004023f0008"),      # case 3 gains an Le
    ("00a40004023f0000", "00a40004023f0008"),    # case 4
    ("00b000000000ff", None),                    # extended: left alone
    ("00a40004023f", None),                      # Lc 2 with one data byte
])
def test_with_le(apdu, expected):
    out = with_le(bytes.fromhex(apdu), 8)
    assert (out.hex() if out is not None else None) == expected
