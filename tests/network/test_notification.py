"""Package #0 (OMA-TS-DM_Notification-V1_2 §6, §7): the published vector, a digest computed by the
openssl command line, header bit positions, truncation offsets, the WAP Push carriage, fuzzing."""
import base64
import shutil
import subprocess

import pytest
from conftest import load_vectors
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dmsim.network.dm import notification as n
from dmsim.network.sms import wsp_push
from dmsim.base.errors import DecodeError, ProtocolError

VECTORS = load_vectors("network", "dm_pkg0_digest")
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NONCE = bytes.fromhex("00ff7a3c0102feed")


def build(**kw):
    args = dict(session_id=0x1234, server_id="dm.example.org", password="srv-secret", nonce=NONCE,
                ui_mode=n.UI_BACKGROUND)
    args.update(kw)
    return n.build_pkg0(**args)


@pytest.mark.parametrize("v", VECTORS, ids=lambda v: v["id"])
def test_vector(v):
    i, e = v["inputs"], v["expected"]
    pkg0 = n.build_pkg0(version=i["version"], ui_mode=i["ui_mode"], initiator=i["initiator"],
                        session_id=i["session_id"], server_id=i["server_identifier"], password=i["password"],
                        nonce=bytes.fromhex(i["nonce_hex"]), vendor_specific=bytes.fromhex(i["vendor_specific_hex"]))
    assert pkg0.hex() == e["package0_hex"]
    parsed = n.parse_pkg0(pkg0)
    assert parsed.digest.hex() == e["digest_hex"] and parsed.trigger.hex() == e["trigger_hex"]
    assert parsed.trigger[:n.HEADER_FIXED_LEN].hex() == e["header8_hex"]
    assert n.trigger_hash(parsed.trigger).decode() == e["b64_h_trigger"]
    assert parsed.pkg1_session_id == e["pkg1_sessionid_hex_upper"]
    assert (parsed.version, parsed.ui_mode, parsed.initiator, parsed.session_id, parsed.server_id) == (
        i["version"], i["ui_mode"], i["initiator"], i["session_id"], i["server_identifier"])
    assert n.verify_pkg0(parsed, i["server_identifier"], i["password"], bytes.fromhex(i["nonce_hex"]))


def _openssl_md5_b64(data: bytes) -> bytes:
    md5 = subprocess.run(["openssl", "dgst", "-md5", "-binary"], input=data, capture_output=True, check=True).stdout
    return base64.b64encode(md5)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command line")
@pytest.mark.parametrize("version", [12, 13])
def test_digest_matches_openssl(version):
    pkg0 = build(version=version, vendor_specific=b"\x00\x01vendor")
    trigger = pkg0[16:]
    inner = _openssl_md5_b64(b"dm.example.org:srv-secret") + b":" + NONCE + b":" + _openssl_md5_b64(trigger)
    expected = base64.b64decode(_openssl_md5_b64(inner))
    assert pkg0[:16] == expected
    assert n.verify_pkg0(n.parse_pkg0(pkg0), "dm.example.org", "srv-secret", NONCE)


def test_default_version_is_12_and_accepted_versions():
    assert n.parse_pkg0(build()).version == n.DEFAULT_VERSION == 12
    for version in (11, 12, 13):
        assert n.parse_pkg0(build(version=version)).version == version
    for version in (10, 14, 1023):
        with pytest.raises(DecodeError) as err:
            n.parse_pkg0(build(version=version))
        assert err.value.offset == 16 and "11 or 12 or 13" in err.value.expected


def test_header_bit_positions():
    trigger = n.build_trigger(version=0x3FF, ui_mode=3, initiator=0, session_id=0xFFFF, server_id="")
    assert trigger.hex() == "fff0000000ffff00"
    trigger = n.build_trigger(version=0, ui_mode=0, initiator=1, session_id=0, server_id="ab")
    assert trigger.hex() == "0008000000000002" + "6162"
    pkg0 = n.parse_pkg0(b"\x00" * 16 + bytes.fromhex("0334abcdef5678") + b"\x01x" + b"tail",
                        accepted_versions=frozenset({12}))
    fields = (pkg0.version, pkg0.ui_mode, pkg0.initiator, pkg0.future_use, pkg0.session_id)
    assert fields == (12, 3, 0, 0x4abcdef, 0x5678)
    assert (pkg0.server_id, pkg0.vendor_specific) == ("x", b"tail")


@pytest.mark.parametrize("kw", [dict(version=1024), dict(ui_mode=4), dict(initiator=2), dict(session_id=0x10000),
                                dict(session_id=-1), dict(server_id="s" * 256)])
def test_fields_that_do_not_fit_are_refused(kw):
    with pytest.raises(ProtocolError):
        build(**kw)


def test_verify_fails_on_any_change():
    pkg0 = build()
    good = n.parse_pkg0(pkg0)
    assert n.verify_pkg0(good, "dm.example.org", "srv-secret", NONCE)
    assert not n.verify_pkg0(good, "dm.example.org", "srv-secret!", NONCE)
    assert not n.verify_pkg0(good, "dm.example.org", "srv-secret", NONCE + b"\x00")
    assert not n.verify_pkg0(good, "dm.example.org", "srv-secret", b"")
    for index in (0, 15, 17, 21, 23, len(pkg0) - 1):   # digest, ui-mode, session id, length+id
        tampered = bytearray(pkg0)
        tampered[index] ^= 0x01
        try:
            parsed = n.parse_pkg0(bytes(tampered))
        except DecodeError:
            continue
        assert not n.verify_pkg0(parsed, "dm.example.org", "srv-secret", NONCE), index


def test_verify_requires_the_named_server():
    # A package naming server A whose digest uses server B's identity and secret is refused.
    trigger = n.build_trigger(session_id=1, server_id="server-a")
    forged = n.pkg0_digest("server-b", "b-secret", NONCE, trigger) + trigger
    assert not n.verify_pkg0(n.parse_pkg0(forged), "server-b", "b-secret", NONCE)


@pytest.mark.parametrize("length", [0, 1, 15, 16, 20, 23])
def test_truncated_header_offset(length):
    with pytest.raises(DecodeError) as err:
        n.parse_pkg0(build()[:length])
    assert err.value.what == "pkg0" and err.value.offset == length


def test_server_id_length_past_end():
    pkg0 = build(server_id="dm.example.org")
    with pytest.raises(DecodeError) as err:
        n.parse_pkg0(pkg0[:-3])
    assert err.value.offset == 23 and "length 14" in err.value.detail and err.value.expected == "at most 11"


def test_server_id_not_utf8():
    pkg0 = b"\x00" * 16 + bytes.fromhex("0300000000000003") + b"a\xffb"
    with pytest.raises(DecodeError) as err:
        n.parse_pkg0(pkg0)
    assert err.value.offset == 25


def test_wap_push_carriage():
    pkg0 = build()
    pdu = n.encode_push(pkg0, tid=0x42)
    assert pdu[:6].hex() == "42" + "06" + "03" + "c4" + "af87"   # 0x44 = application/vnd.syncml.notification
    assert wsp_push.decode_push(pdu).content_type == n.NOTIFICATION_CONTENT_TYPE
    assert n.decode_push(pdu) == n.parse_pkg0(pkg0)
    # without the X-Wap-Application-Id header, as some servers send it
    assert n.decode_push(wsp_push.encode_push(n.NOTIFICATION_CONTENT_TYPE, pkg0, 1)).session_id == 0x1234


def test_wap_push_wrong_content_type_and_offsets_within_the_pdu():
    other = wsp_push.encode_push("application/vnd.syncml.dm+wbxml", build(), 1)
    with pytest.raises(DecodeError) as err:
        n.decode_push(other)
    assert err.value.offset == 3
    short = n.encode_push(build()[:20], tid=1)
    with pytest.raises(DecodeError) as err:
        n.decode_push(short)
    assert err.value.what == "pkg0" and err.value.offset == 6 + 20


def _parses_or_decode_error(data: bytes) -> None:
    try:
        pkg0 = n.parse_pkg0(data)
    except DecodeError as err:
        assert 0 <= err.offset <= len(data)
        return
    assert n.verify_pkg0(pkg0, pkg0.server_id, "pw", b"") in (True, False)
    assert pkg0.trigger == data[16:]


@FUZZ
@given(st.binary(max_size=80))
def test_fuzz_random_bytes(data):
    _parses_or_decode_error(data)


@FUZZ
@given(st.data())
def test_fuzz_mutations_of_valid_package(data):
    pkg0 = bytearray(build(vendor_specific=b"vv"))
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(pkg0) - 1))
        pkg0[pos] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(pkg0)))
    _parses_or_decode_error(bytes(pkg0[:cut]))


@FUZZ
@given(st.binary(max_size=60))
def test_fuzz_push(body):
    try:
        n.decode_push(bytes.fromhex("010603c4af87") + body)
        n.decode_push(body)
    except DecodeError:
        pass
