"""x-syncml-hmac (OMA-TS-DM_Security-V1_3 §5.6.1.1): the Timestamp arithmetic and the regex
scanner of the header give exactly what the reference forms give: ``datetime.strftime`` /
``strptime`` for the Timestamp, the character-by-character parser dmsim had before for the header
parameters (values, offsets and error texts), fuzzed."""
from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dmsim.base.errors import DecodeError, ProtocolError
from dmsim.network.dm import hmac_integrity as hi
from dmsim.network.dm.http_binding import is_token_char

FUZZ = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FIRST, LAST = -62135596800, 253402300799  # 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z


# --------------------------------------------------------------------------- references

def ref_format(now: float) -> str:
    return datetime.fromtimestamp(int(now), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def ref_parse(text: str) -> float:
    if not hi._TIMESTAMP.match(text):
        raise DecodeError(hi.HEADER_NAME, 0, f"Timestamp {text!r}", "YYYY-MM-DDThh:mm:ssZ")
    try:
        when = datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        raise DecodeError(hi.HEADER_NAME, 0, f"Timestamp {text!r} is not a calendar time",
                          "YYYY-MM-DDThh:mm:ssZ") from None
    return when.timestamp()


def _skip(value, pos, chars):
    while pos < len(value) and value[pos] in chars:
        pos += 1
    return pos


def ref_quoted(value, pos):
    """The quoted-string at ``pos`` (RFC 2616 §2.2 with the control characters refused)."""
    out, escaped = [], False
    for i in range(pos + 1, len(value)):
        ch = value[i]
        if not escaped and ch in '"\\':
            if ch == '"':
                return "".join(out), i + 1
            escaped = True
            continue
        escaped = False
        if (ord(ch) < 0x20 and ch != "\t") or ord(ch) == 0x7F:
            raise DecodeError(hi.HEADER_NAME, i, f"control character {ch!r} in a quoted-string")
        out.append(ch)
    raise DecodeError(hi.HEADER_NAME, pos, "quoted-string not terminated", 'a closing \'"\'')


def ref_params(value):
    w = hi.HEADER_NAME
    params, pos = {}, 0
    while True:
        pos = _skip(value, pos, " \t,;")
        if pos >= len(value):
            return params
        name_at = pos
        while pos < len(value) and is_token_char(value[pos]):
            pos += 1
        if pos == name_at:
            raise DecodeError(w, pos, f"unexpected {value[pos]!r}", "a parameter name")
        name = value[name_at:pos].lower()
        pos = _skip(value, pos, " \t")
        if pos >= len(value) or value[pos] != "=":
            raise DecodeError(w, pos, f"parameter {value[name_at:pos].strip()!r} has no '='", "'='")
        pos = _skip(value, pos + 1, " \t")
        value_at = pos
        if pos < len(value) and value[pos] == '"':
            text, pos = ref_quoted(value, pos)
        else:
            while pos < len(value) and (is_token_char(value[pos]) or value[pos] in "/+="):
                pos += 1
            if pos == value_at:
                raise DecodeError(w, pos, f"parameter {name!r} has no value", "a token or quoted-string")
            text = value[value_at:pos]
        if name in params:
            raise DecodeError(w, name_at, f"parameter {name!r} repeated", "each parameter once")
        params[name] = (text, value_at)
        pos = _skip(value, pos, " \t")
        if pos < len(value) and value[pos] not in ",;":
            raise DecodeError(w, pos, f"unexpected {value[pos]!r} after parameter {name!r}", "',' or ';'")


def outcome(fn, *args):
    """Return ("ok", result) or (exception type, offset, text): what a caller can observe."""
    try:
        return "ok", fn(*args)
    except DecodeError as exc:
        return "DecodeError", exc.offset, str(exc)
    except (ProtocolError, ValueError, OverflowError) as exc:
        return type(exc).__name__, str(exc)


# --------------------------------------------------------------------------- Timestamp

@pytest.mark.parametrize("now", [0, 0.999, 86399, 86400, 951782400, 951868799, 4107542400, 1325423060.7,
                                 -1, -86401, FIRST, LAST, LAST + 0.5, -62104060800 + 3])
def test_format_timestamp_is_strftime(now):
    assert hi.format_timestamp(now) == ref_format(now)


@FUZZ
@given(st.integers(FIRST, LAST) | st.floats(FIRST, LAST))
def test_format_timestamp_is_strftime_fuzzed(now):
    assert hi.format_timestamp(now) == ref_format(now)


@pytest.mark.parametrize("now", [FIRST - 1, LAST + 1, 10 ** 12])
def test_format_timestamp_out_of_range(now):
    with pytest.raises(ValueError):
        hi.format_timestamp(now)
    with pytest.raises(ValueError):
        ref_format(now)


@pytest.mark.parametrize("text", [
    "2012-01-01T13:04:20Z", "1970-01-01T00:00:00Z", "1969-12-31T23:59:59Z", "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z", "2000-02-29T12:00:00Z", "2100-02-29T12:00:00Z", "2012-04-31T00:00:00Z",
    "0000-01-01T00:00:00Z", "2012-00-01T00:00:00Z", "2012-13-01T00:00:00Z", "2012-01-00T00:00:00Z",
    "2012-01-32T00:00:00Z", "2012-01-01T24:00:00Z", "2012-01-01T23:60:00Z", "2012-01-01T23:59:60Z",
    "2012-01-01T23:59:61Z", "2012-01-01T23:59:62Z", "2012-01-01t23:59:59Z", "2012-01-01T23:59:59z",
    "2012-01-01T23:59:59Z\n", "2012-1-01T23:59:59Z", "２０１２-01-01T23:59:59Z", "",
])
def test_parse_timestamp_is_strptime(text):
    assert outcome(hi.parse_timestamp, text) == outcome(ref_parse, text)


@FUZZ
@given(st.from_regex(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z", fullmatch=True)
       | st.text("0123456789-T:Z ", max_size=22))
def test_parse_timestamp_is_strptime_fuzzed(text):
    assert outcome(hi.parse_timestamp, text) == outcome(ref_parse, text)


@FUZZ
@given(st.integers(-30610224000, LAST))  # from the year 1000: strftime does not pad %Y to four digits
def test_timestamp_round_trip(now):
    assert hi.parse_timestamp(hi.format_timestamp(now)) == now


# --------------------------------------------------------------------------- header parameters

PIECES = ["mac", "MAC", "Timestamp", "ServerId", "username", "algorithm", "x-o", "=", '"', "\\", ",", ";", " ",
          "\t", "AAEC", "a/b+c=", "@", "\x01", "\x7f", "é", "\u2028", "2012-01-01T13:04:20Z", '\\"', "\\\x01"]


@FUZZ
@given(st.lists(st.sampled_from(PIECES), max_size=14).map("".join) | st.text(max_size=40))
def test_read_params_is_the_reference(value):
    assert outcome(hi._read_params, value) == outcome(ref_params, value)


@pytest.mark.parametrize("value", [
    'algorithm=HMAC-SHA256, ServerId="dm.foo.org", Timestamp="2012-01-01T13:04:20Z", mac=AAEC',
    'a="x\\"y\\\\z"', 'a="tab\there"', 'a="é ü"', 'a="\\é"', 'a="\\\x01"', 'a="\x01"', 'a="\x7f"', 'a="open',
    'a="ends\\', "a = b ; c=d", "a=b c", "a=", "=b", "a", " , ;", "", 'a=b, A="c"', "a=b@", "é=1",
])
def test_read_params_examples(value):
    assert outcome(hi._read_params, value) == outcome(ref_params, value)


@FUZZ
@given(st.text(max_size=12), st.text(max_size=12))
def test_format_header_refuses_as_before(algorithm, server_id):
    header = hi.HmacHeader(mac=b"\x01\x02", timestamp="2012-01-01T13:04:20Z", algorithm=algorithm,
                           server_id=server_id)
    token = bool(algorithm) and all(is_token_char(c) for c in algorithm)
    printable = all(0x20 <= ord(c) <= 0x7E for c in server_id)
    if token and printable:
        assert hi.parse_header(hi.format_header(header)) == header
    else:
        with pytest.raises(ProtocolError):
            hi.format_header(header)
