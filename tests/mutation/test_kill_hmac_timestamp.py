"""Mutant killers for the x-syncml-hmac Timestamp arithmetic and quoted-string scanner
(OMA-TS-DM_Security-V1_3 §5.6.1.1): hour boundaries of the Timestamp, escaped white space in a
quoted-string, and a stray character after a parameter."""
import pytest

from dmsim.base.errors import DecodeError
from dmsim.network.dm import hmac_integrity as hi


@pytest.mark.parametrize("now, text", [
    (82800, "1970-01-01T23:00:00Z"), (86399, "1970-01-01T23:59:59Z"), (3599, "1970-01-01T00:59:59Z"),
    (3600, "1970-01-01T01:00:00Z"), (59, "1970-01-01T00:00:59Z"), (60, "1970-01-01T00:01:00Z"),
    (951868799, "2000-02-29T23:59:59Z"), (-1, "1969-12-31T23:59:59Z"), (253402300799, "9999-12-31T23:59:59Z"),
])
def test_timestamp_both_ways(now, text):
    assert hi.format_timestamp(now) == text
    assert hi.parse_timestamp(text) == now


def test_escaped_space_and_tab_in_a_quoted_string():
    assert hi.parse_header('mac=AAAA, ServerId="a\\ b\\\tc"').server_id == "a b\tc"


def test_a_stray_character_after_a_value():
    with pytest.raises(DecodeError) as err:
        hi.parse_header("mac=AAAA X=1")
    assert err.value.offset == 9


@pytest.mark.parametrize("value, offset, words", [
    ("mac=AAAA, x=", 12, "no value"), ("mac=AAAA, x= ;", 13, "no value"), ('mac=AAAA, x="a\\"', 12, "not terminated"),
])
def test_a_value_missing_after_a_good_parameter(value, offset, words):
    with pytest.raises(DecodeError) as err:
        hi.parse_header(value)
    assert err.value.offset == offset and words in str(err.value)


def test_escapes_after_a_good_parameter():
    header = hi.parse_header('mac=AAAA, ServerId="a\\"b", username = "c\\\\d" ')
    assert (header.server_id, header.username) == ('a"b', "c\\d")


@pytest.mark.parametrize("value, offset", [('mac="AA\\A"', 4), ('mac=AAAA, Timestamp = "2012\\-01-01 13:04:20Z"', 22)])
def test_the_offset_of_an_escaped_value(value, offset):
    with pytest.raises(DecodeError) as err:
        hi.parse_header(value)
    assert err.value.offset == offset
