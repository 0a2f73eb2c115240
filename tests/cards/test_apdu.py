"""Command APDU parsing and building (ISO 7816-4 §5.1) and the status word table."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dmsim.cards import sw as SW
from dmsim.cards.apdu import CommandApdu, build_command, parse_command, response, split_response
from dmsim.base.errors import DecodeError, ProtocolError


@pytest.mark.parametrize("hexa, case, data, le, extended", [
    ("00A40000", 1, b"", None, False),
    ("00B000000A", 2, b"", 10, False),
    ("00B0000000", 2, b"", 256, False),
    ("00A40004023F00", 3, b"\x3f\x00", None, False),
    ("00A40004023F0000", 4, b"\x3f\x00", 256, False),
    ("00A40004023F0012", 4, b"\x3f\x00", 0x12, False),
    ("00B00000000100", 2, b"", 0x100, True),
    ("00B00000000000", 2, b"", 65536, True),
])
def test_cases(hexa, case, data, le, extended):
    cmd = parse_command(bytes.fromhex(hexa))
    assert (cmd.case, cmd.data, cmd.le, cmd.extended) == (case, data, le, extended)
    assert cmd.to_bytes() == bytes.fromhex(hexa)


def test_extended_case3_and_4():
    body = bytes(range(256)) * 2
    c3 = parse_command(b"\x00\xd6\x00\x00\x00\x02\x00" + body)
    assert (c3.case, c3.data, c3.le, c3.extended) == (3, body, None, True)
    c4 = parse_command(b"\x00\x88\x00\x81\x00\x00\x03abc\x00\x00")
    assert (c4.case, c4.data, c4.le, c4.extended) == (4, b"abc", 65536, True)
    assert c4.to_bytes() == b"\x00\x88\x00\x81\x00\x00\x03abc\x00\x00"


@pytest.mark.parametrize("hexa, offset", [
    ("", 0), ("00A4", 2), ("00A400", 3),
    ("00A4000403AABB", 4),        # Lc 3, two bytes follow
    ("00A40004023F", 4),          # Lc 2, one byte
    ("00A40004023F000000", 4),    # one byte too many
    ("00B0000000FF", 4),          # 6 bytes: neither short nor extended
    ("00D600000000000102", 5),    # extended Lc 0 with a body
    ("00D6000000000301", 5),      # extended Lc 3, one byte
])
def test_decode_errors_carry_offsets(hexa, offset):
    with pytest.raises(DecodeError) as e:
        parse_command(bytes.fromhex(hexa))
    assert e.value.what == "apdu" and e.value.offset == offset


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 255), st.integers(0, 255), st.integers(0, 255), st.integers(0, 255),
       st.binary(max_size=300), st.none() | st.integers(1, 65536))
def test_build_parse_round_trip(cla, ins, p1, p2, data, le):
    raw = build_command(cla, ins, p1, p2, data, le)
    cmd = CommandApdu.parse(raw)
    assert (cmd.cla, cmd.ins, cmd.p1, cmd.p2, cmd.data, cmd.le) == (cla, ins, p1, p2, data, le)
    assert cmd.to_bytes() == raw


@given(st.binary(max_size=40))
def test_parse_never_raises_anything_else(raw):
    try:
        parse_command(raw)
    except DecodeError:
        pass


def test_build_refuses_out_of_range():
    with pytest.raises(ProtocolError):
        build_command(0x100, 0, 0, 0)
    with pytest.raises(ProtocolError):
        build_command(0, 0xB0, 0, 0, le=0)


def test_response_helpers():
    assert response(b"\x01", 0x9000) == b"\x01\x90\x00"
    assert split_response(b"\x01\x02\x6a\x82") == (b"\x01\x02", 0x6A82)
    with pytest.raises(DecodeError):
        split_response(b"\x90")


def test_status_words():
    assert bytes(SW.FILE_NOT_FOUND) == b"\x6a\x82" and "§10.2.1.8" in SW.FILE_NOT_FOUND.clause
    assert int(SW.more_data(0x2C)) == 0x612C and SW.more_data(256).sw == 0x6100
    assert SW.wrong_le(9).sw == 0x6C09 and SW.retries_left(2).sw == 0x63C2
    assert all(SW.is_known(x) for x in (0x9000, 0x61FF, 0x6C01, 0x63C0, 0x6A82, 0x9862))
    assert not SW.is_known(0x6400) and not SW.is_known(0x63D0)
    assert SW.describe(0x6982).startswith("6982 security status not satisfied")
    assert "not a status word" in SW.describe(0x1234)
