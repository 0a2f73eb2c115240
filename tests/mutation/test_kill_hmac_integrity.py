"""Issue 14: tests that kill surviving mutants of network/dm/hmac_integrity.py, the
``x-syncml-hmac`` header of OMA-TS-DM_Security-V1_3 §5.6.1 (§5.6.1.1 grammar with RFC 2616
quoted-string and token, §5.6.1.2 verification with a UTC Timestamp) and the verifier's
documented window and replay cache (module docstring). Unit tests: each mutant runs in ms."""
import base64
import time

import pytest

from dmsim.base.errors import DecodeError, ProtocolError
from dmsim.network.dm import hmac_integrity as hi
from dmsim.network.dm.hmac_integrity import HmacHeader, HmacVerifier, Reason

KEY = b"integrity-key-0123456789abcdef"
MSG = b'<SyncML xmlns="SYNCML:SYNCML1.2"><SyncHdr/><SyncBody><Final/></SyncBody></SyncML>'
NOW = 1325423060.0                      # 2012-01-01T13:04:20Z
TS = "2012-01-01T13:04:20Z"


# -- §5.6.1.1: quoted-string values (RFC 2616 §2.2) ------------------------------------------------

def test_tilde_is_printable_ascii_and_may_be_sent_in_a_quoted_string():
    """RFC 2616 §2.2 qdtext is any TEXT but '"'; '~' (0x7E) is printable ASCII, which
    format_header promises to send (its docstring: ProtocolError only for what is not)."""
    header = HmacHeader(mac=b"\x01\x02", timestamp=TS, server_id="dm~srv", username="a~b")
    assert hi.parse_header(hi.format_header(header)) == header


def test_del_is_a_control_character_refused_both_ways():
    """RFC 2616 §2.2: CTL is octets 0-31 and DEL (127); a quoted-string holds no CTL but HT.
    format_header refuses to send DEL, parse_header refuses to read it."""
    with pytest.raises(ProtocolError):
        hi.format_header(HmacHeader(mac=b"", timestamp=TS, server_id="dm\x7fsrv"))
    with pytest.raises(DecodeError):
        hi.parse_header('mac=AAAA, ServerId="dm\x7fsrv"')
    assert HmacVerifier().verify('mac=AAAA, ServerId="dm\x7fsrv"', MSG, KEY, NOW).reason is Reason.BAD_SYNTAX


def test_a_tab_is_allowed_inside_a_quoted_string():
    """RFC 2616 §2.2: TEXT includes LWS, so HT may appear in a quoted-string (§5.6.1.1 ServerId)."""
    assert hi.parse_header('mac=AAAA, ServerId="dm\tsrv"').server_id == "dm\tsrv"


@pytest.mark.parametrize("value", ['mac=AAAA, ServerId="ab\\', 'mac=AAAA, ServerId="\\'])
def test_a_quoted_string_cut_after_a_backslash_is_bad_syntax(value):
    """parse_header docstring: a value that breaks the §5.6.1.1 syntax is a DecodeError with its
    offset (here the opening quote of the unterminated quoted-string), and the verifier's verdict
    is bad_syntax, never a crash."""
    with pytest.raises(DecodeError) as err:
        hi.parse_header(value)
    assert err.value.offset == value.index('"')
    verdict = HmacVerifier().verify(value, MSG, KEY, NOW)
    assert verdict.reason is Reason.BAD_SYNTAX and verdict.offset == value.index('"')


def test_build_header_carries_the_dm12_username():
    """Module doc: ``username`` (the DM 1.2 form) is accepted beside ServerId and kept;
    build_header sends the one it is given."""
    header = hi.parse_header(hi.build_header(KEY, MSG, NOW, server_id="dm.foo.org", username="Bruce"))
    assert (header.username, header.server_id, header.timestamp) == ("Bruce", "dm.foo.org", TS)


# -- §5.6.1.2: the Timestamp is UTC whatever the local zone --------------------------------------

@pytest.fixture
def far_from_utc(monkeypatch):
    monkeypatch.setenv("TZ", "XST+07")      # seven hours behind UTC, no summer time
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_timestamps_are_utc_in_any_local_time_zone(far_from_utc):
    """§5.6.1.2: Timestamp is the current UTC time 'YYYY-MM-DDThh:mm:ssZ' (ISO 8601)."""
    assert time.timezone != 0
    assert hi.format_timestamp(NOW) == TS
    assert hi.parse_timestamp(TS) == NOW
    value = hi.build_header(KEY, MSG, NOW)
    assert HmacVerifier(max_age=1, max_ahead=1).verify(value, MSG, KEY, NOW).ok


def test_parse_timestamp_reports_a_bad_text_at_its_start():
    """parse_timestamp docstring: DecodeError at ``offset`` (of the text in its header, 0 when the
    text is given alone)."""
    with pytest.raises(DecodeError) as err:
        hi.parse_timestamp("2012-01-01 13:04:20Z")
    assert err.value.offset == 0


# -- the window and the replay cache (module doc) -------------------------------------------------

@pytest.mark.parametrize("max_age", [0, 0.5])
def test_a_window_bound_may_be_zero_or_under_a_second(max_age):
    """HmacVerifier: window bounds must not be negative; zero or a fraction of a second is not
    negative, and a message stamped exactly ``now`` is inside such a window."""
    verifier = HmacVerifier(max_age=max_age, max_ahead=0)
    assert verifier.verify(hi.build_header(KEY, MSG, NOW), MSG, KEY, NOW).ok


def test_a_replay_at_the_edge_of_the_window_is_still_refused():
    """Module doc: the replay cache keeps an accepted MAC until its Timestamp leaves the window.
    A Timestamp exactly ``max_age`` old is inside the window, so its replay is a replay."""
    verifier = HmacVerifier(max_age=10, max_ahead=0)
    value = hi.build_header(KEY, MSG, NOW)
    assert verifier.verify(value, MSG, KEY, NOW).ok
    assert verifier.verify(value, MSG, KEY, NOW + 10).reason is Reason.REPLAY
    assert verifier.verify(value, MSG, KEY, NOW + 10.5).reason is Reason.OUTSIDE_WINDOW


# -- verdicts: a readable detail, and the parsed header when it parsed (Verdict docstring) ------

def refused(verdict, reason, header):
    assert verdict.reason is reason and not verdict.ok
    assert isinstance(verdict.detail, str) and verdict.detail
    assert verdict.header == header


def test_every_refusal_explains_itself_and_keeps_the_parsed_header():
    """Verdict docstring: the reason, a readable detail, and the parsed header when it parsed
    (the caller may log ServerId/username of a refused message); §5.6.1.2 reasons."""
    verifier = HmacVerifier()
    refused(verifier.verify(None, MSG, KEY, NOW), Reason.MISSING_HEADER, None)
    mac = base64.b64encode(hi.compute_mac(KEY, TS, MSG)).decode()
    for value, reason in ((f'algorithm=MD5, ServerId="s", Timestamp="{TS}", mac={mac}', Reason.UNSUPPORTED_ALGORITHM),
                          (f'ServerId="s", mac={mac}', Reason.MISSING_TIMESTAMP)):
        refused(verifier.verify(value, MSG, KEY, NOW), reason, hi.parse_header(value))
    value = hi.build_header(KEY, MSG, NOW, server_id="s")
    refused(verifier.verify(value, MSG, KEY, NOW + 3600), Reason.OUTSIDE_WINDOW, hi.parse_header(value))
    refused(verifier.verify(value, MSG + b" ", KEY, NOW), Reason.WRONG_MAC, hi.parse_header(value))
    assert verifier.verify(value, MSG, KEY, NOW).ok
    refused(verifier.verify(value, MSG, KEY, NOW), Reason.REPLAY, hi.parse_header(value))
    bad = verifier.verify("mac=", MSG, KEY, NOW)
    assert bad.reason is Reason.BAD_SYNTAX and bad.detail and bad.offset == 4
