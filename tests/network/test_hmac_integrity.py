"""x-syncml-hmac (OMA-TS-DM_Security-V1_3 §5.6.1): the MAC against the openssl command line, the
header syntax with its offsets, and every reason a message is refused (missing header, bad syntax,
wrong MAC, outside the window, replay); fuzzing of the header parser."""
import base64
import shutil
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dmsim.network.dm import hmac_integrity as hi
from dmsim.network.dm.hmac_integrity import HmacHeader, HmacVerifier, Reason
from dmsim.base.errors import DecodeError, ProtocolError

KEY = bytes.fromhex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
MSG = b'<SyncML xmlns="SYNCML:SYNCML1.2"><SyncHdr/><SyncBody><Final/></SyncBody></SyncML>'
NOW = 1325423060.0                      # 2012-01-01T13:04:20Z
TS = "2012-01-01T13:04:20Z"
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_timestamp_form():
    assert hi.format_timestamp(NOW) == TS
    assert hi.format_timestamp(NOW + 0.9) == TS
    assert hi.parse_timestamp(TS) == NOW


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command line")
def test_mac_matches_openssl():
    out = subprocess.run(["openssl", "dgst", "-sha256", "-mac", "HMAC", "-macopt", f"hexkey:{KEY.hex()}", "-binary"],
                         input=TS.encode() + b":" + MSG, capture_output=True, check=True).stdout
    assert hi.compute_mac(KEY, TS, MSG) == out
    header = hi.parse_header(hi.build_header(KEY, MSG, NOW, server_id="dm.foo.org"))
    assert header.mac == out and header.timestamp == TS


def test_build_form_and_round_trip():
    value = hi.build_header(KEY, MSG, NOW, server_id="dm.foo.org")
    mac_b64 = base64.b64encode(hi.compute_mac(KEY, TS, MSG)).decode()
    assert value == f'algorithm=HMAC-SHA256, ServerId="dm.foo.org", Timestamp="{TS}", mac={mac_b64}'
    assert hi.parse_header(value) == HmacHeader(mac=hi.compute_mac(KEY, TS, MSG), timestamp=TS, server_id="dm.foo.org")
    odd = HmacHeader(mac=b"\x01", timestamp=TS, server_id='a "quoted" \\ id', username="Bruce")
    assert hi.parse_header(hi.format_header(odd)) == odd


def test_parse_the_spec_example_form_and_the_dm12_form():
    example = ('algorithm="HMAC-SHA256"; ServerId="dm.foo.org"; Timestamp="2012-01-01T13:04:20Z"; '
               'mac="NTI2OTJhMDAwNjYxODkwYmQ3NWUxN2RhN2ZmYmJlMzk="')
    h = hi.parse_header(example)
    assert (h.algorithm, h.server_id, h.timestamp) == ("HMAC-SHA256", "dm.foo.org", TS)
    assert h.mac == b"52692a000661890bd75e17da7ffbbe39"
    dm12 = hi.parse_header('algorithm=MD5, username="Bruce", mac=NTI2OTJhMDAwNjYxODkwYmQ3NWUxN2RhN2ZmYmJlMzk=')
    assert (dm12.algorithm, dm12.username, dm12.timestamp) == ("MD5", "Bruce", None)
    # names are case-insensitive, whitespace and empty list elements are allowed, unknown names ignored
    h = hi.parse_header(f' ,MAC = AAEC ,, TIMESTAMP="{TS}" ; x-other=1;')
    assert (h.mac, h.timestamp, h.algorithm) == (b"\x00\x01\x02", TS, hi.HMAC_SHA256)


@pytest.mark.parametrize("value, offset, words", [
    ("algorithm=HMAC-SHA256", 21, "no mac"),
    ("mac", 3, "'='"),
    ("mac=", 4, "no value"),
    ('mac="AAAA', 4, "not terminated"),
    ("mac=AA@A", 6, "unexpected '@'"),
    ("mac=AAA", 4, "not base64"),
    ('mac=AAAA, Timestamp="2012-01-01 13:04:20Z"', 20, "Timestamp"),
    ('mac=AAAA, Timestamp="2012-13-01T13:04:20Z"', 20, "calendar"),
    ("mac=AAAA, Mac=AAAA", 10, "repeated"),
    ("=AAAA", 0, "parameter name"),
    ('mac=AAAA, serverid="a\x01b"', 21, "control character"),
])
def test_syntax_errors_name_the_offset(value, offset, words):
    with pytest.raises(DecodeError) as err:
        hi.parse_header(value)
    assert err.value.what == "x-syncml-hmac" and err.value.offset == offset and words in str(err.value)


def test_format_refuses_what_cannot_be_sent():
    with pytest.raises(ProtocolError):
        hi.format_header(HmacHeader(mac=b"", timestamp=TS, server_id="caf\u00e9"))
    with pytest.raises(ProtocolError):
        hi.format_header(HmacHeader(mac=b"", timestamp=TS, algorithm="HMAC SHA256"))
    with pytest.raises(ProtocolError):
        HmacVerifier(max_age=-1)


def test_accept_then_refuse_replay():
    verifier = HmacVerifier()
    value = hi.build_header(KEY, MSG, NOW, server_id="dm.foo.org")
    first = verifier.verify(value, MSG, KEY, NOW + 2)
    assert first.ok and first.reason is Reason.OK and first.header.server_id == "dm.foo.org"
    again = verifier.verify(value, MSG, KEY, NOW + 3)
    assert again.reason is Reason.REPLAY and not again.ok
    # another message in the same second is not a replay
    assert verifier.verify(hi.build_header(KEY, MSG + b" ", NOW), MSG + b" ", KEY, NOW + 3).ok


def test_replay_with_edited_server_id_is_refused():
    # ServerId/username are outside the MAC: editing them must not make a replay look new
    verifier = HmacVerifier()
    value = hi.build_header(KEY, MSG, NOW, server_id="dm.foo.org")
    assert verifier.verify(value, MSG, KEY, NOW).ok
    for edited in (value.replace('ServerId="dm.foo.org"', 'ServerId="dm.bar.org"'),
                   value.replace('ServerId="dm.foo.org", ', ""),
                   value.replace('ServerId="dm.foo.org"', 'username="someone"')):
        assert edited != value
        assert verifier.verify(edited, MSG, KEY, NOW + 1).reason is Reason.REPLAY


def test_missing_header():
    verifier = HmacVerifier()
    assert hi.find_header({"Content-Type": "application/vnd.syncml.dm+xml"}) is None
    verdict = verifier.verify(hi.find_header({}), MSG, KEY, NOW)
    assert verdict.reason is Reason.MISSING_HEADER and not verdict.ok
    assert hi.find_header({"X-SyncML-HMAC": "mac=AAAA"}) == "mac=AAAA"


def test_bad_syntax_is_a_verdict_with_offset():
    verdict = HmacVerifier().verify('mac="AAAA', MSG, KEY, NOW)
    assert verdict.reason is Reason.BAD_SYNTAX and verdict.offset == 4 and "not terminated" in verdict.detail


def test_wrong_mac():
    verifier = HmacVerifier()
    value = hi.build_header(KEY, MSG, NOW)
    assert verifier.verify(value, MSG + b"x", KEY, NOW).reason is Reason.WRONG_MAC      # tampered message
    assert verifier.verify(value, MSG, KEY[::-1], NOW).reason is Reason.WRONG_MAC       # other key
    moved = value.replace(TS, "2012-01-01T13:04:21Z")                                   # timestamp changed
    assert verifier.verify(moved, MSG, KEY, NOW).reason is Reason.WRONG_MAC
    assert len(verifier) == 0                                                           # nothing remembered
    assert verifier.verify(value, MSG, KEY, NOW).ok


def test_unsupported_algorithm_and_missing_timestamp():
    verifier = HmacVerifier()
    mac = base64.b64encode(hi.compute_mac(KEY, TS, MSG)).decode()
    assert verifier.verify(f'algorithm=MD5, Timestamp="{TS}", mac={mac}', MSG, KEY, NOW).reason \
        is Reason.UNSUPPORTED_ALGORITHM
    assert verifier.verify(f"mac={mac}", MSG, KEY, NOW).reason is Reason.MISSING_TIMESTAMP
    assert verifier.verify(f'algorithm=hmac-sha256, Timestamp="{TS}", mac={mac}', MSG, KEY, NOW).ok


@pytest.mark.parametrize("sent_offset, ok", [(0, True), (-100, True), (-100.5, False), (20, True), (21, False),
                                             (-3600, False), (86400, False)])
def test_timestamp_window(sent_offset, ok):
    verifier = HmacVerifier(max_age=100, max_ahead=20)
    value = hi.build_header(KEY, MSG, NOW)
    verdict = verifier.verify(value, MSG, KEY, NOW - sent_offset)
    assert verdict.ok is ok
    if not ok:
        assert verdict.reason is Reason.OUTSIDE_WINDOW


def test_replay_cache_forgets_what_the_window_refuses():
    verifier = HmacVerifier(max_age=10, max_ahead=0)
    for second in range(5):
        assert verifier.verify(hi.build_header(KEY, MSG, NOW + second), MSG, KEY, NOW + second).ok
    assert len(verifier) == 5
    late = hi.build_header(KEY, MSG, NOW + 100)
    assert verifier.verify(late, MSG, KEY, NOW + 100).ok
    assert len(verifier) == 1
    # the first message, replayed now, is refused by the window
    assert verifier.verify(hi.build_header(KEY, MSG, NOW), MSG, KEY, NOW + 100).reason is Reason.OUTSIDE_WINDOW


PARAM_TEXT = st.text(alphabet=st.sampled_from(list('aAmc=",; \t\\/+-:TZ0123456789\x01é')), max_size=60)


@FUZZ
@given(st.one_of(st.text(max_size=60), PARAM_TEXT,
                 st.builds(lambda a, b: f'mac=AAAA, Timestamp="{TS}"' + a + b, PARAM_TEXT, st.text(max_size=10))))
def test_fuzz_header_parser(value):
    try:
        header = hi.parse_header(value)
    except DecodeError as err:
        assert 0 <= err.offset <= len(value)
    else:
        assert isinstance(header.mac, bytes)
    verdict = HmacVerifier().verify(value, MSG, KEY, NOW)
    assert isinstance(verdict.reason, Reason) and not verdict.ok


# -- seed 002 §5.4 HMAC-MD5 (algorithm=MD5) --------------------------------------------------------

@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command line")
def test_md5_mac_matches_openssl():
    out = subprocess.run(["openssl", "dgst", "-md5", "-mac", "HMAC", "-macopt", f"hexkey:{KEY.hex()}", "-binary"],
                         input=TS.encode() + b":" + MSG, capture_output=True, check=True).stdout
    assert hi.compute_mac(KEY, TS, MSG, hi.HMAC_MD5) == out and len(out) == 16
    header = hi.parse_header(hi.build_header(KEY, MSG, NOW, server_id="dm.foo.org", algorithm=hi.HMAC_MD5))
    assert header.algorithm == "MD5" and header.mac == out


def test_md5_verifier_accepts_md5_and_refuses_tampering_and_sha256():
    verifier = HmacVerifier(algorithms=(hi.HMAC_MD5,))
    value = hi.build_header(KEY, MSG, NOW, algorithm=hi.HMAC_MD5)
    assert value.startswith("algorithm=MD5,")
    assert verifier.verify(value, MSG + b" ", KEY, NOW).reason is Reason.WRONG_MAC
    assert verifier.verify(value, MSG, KEY[::-1], NOW).reason is Reason.WRONG_MAC
    assert verifier.verify(value, MSG, KEY, NOW).ok
    assert verifier.verify(value, MSG, KEY, NOW).reason is Reason.REPLAY
    sha = hi.build_header(KEY, MSG, NOW + 1)
    assert verifier.verify(sha, MSG, KEY, NOW + 1).reason is Reason.UNSUPPORTED_ALGORITHM


def test_default_verifier_still_refuses_md5():
    """An endpoint expecting HMAC-SHA256 cannot be downgraded to MD5."""
    value = hi.build_header(KEY, MSG, NOW, algorithm=hi.HMAC_MD5)
    assert HmacVerifier().verify(value, MSG, KEY, NOW).reason is Reason.UNSUPPORTED_ALGORITHM


def test_unknown_algorithms_are_refused_up_front():
    with pytest.raises(ProtocolError):
        HmacVerifier(algorithms=("SHA1",))
    with pytest.raises(ProtocolError):
        hi.compute_mac(KEY, TS, MSG, "SHA1")
