"""Connectionless WSP Push PDU (WAP-230-WSP §8.2.4.1): encoding, decoding, the SMS chain."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dmsim.network.sms.address import Address
from dmsim.network.sms.segmentation import Reassembler, split
from dmsim.network.sms.tpdu import DCS_8BIT, SmsDeliver, decode_tpdu
from dmsim.network.sms.udh import decode_udh, encode_udh
from dmsim.network.sms.wsp_push import (
    WAP_PUSH_PORT, WAP_PUSH_SRC_PORT, WELL_KNOWN_CONTENT_TYPES, PushPdu, decode_push,
    decode_uintvar, encode_content_type, encode_push, encode_uintvar,
)
from dmsim.base.errors import DecodeError, ProtocolError

BOOTSTRAP_CT = "application/vnd.syncml.dm+wbxml;NETWORKID;0123456789ABCDEF0123456789abcdef01234567"
X_WAP_APP_ID_DM = bytes.fromhex("af87")     # X-Wap-Application-Id: x-wap-application:syncml.dm


def test_ports_and_assigned_numbers():
    assert (WAP_PUSH_PORT, WAP_PUSH_SRC_PORT) == (2948, 9200)
    assert encode_content_type("application/vnd.syncml.notification") == b"\xc4"
    assert encode_content_type("application/vnd.syncml.dm+wbxml") == b"\xc2"
    assert encode_content_type("application/vnd.syncml.dm+xml") == b"\xc3"
    assert encode_content_type("Application/VND.SyncML.DM+WBXML") == b"\xc2"
    assert len(WELL_KNOWN_CONTENT_TYPES) == 0x55


def test_notification_push_bytes():
    pdu = encode_push("application/vnd.syncml.notification", b"\x01\x02", tid=0x22,
                      headers=X_WAP_APP_ID_DM)
    assert pdu.hex() == "22" + "06" + "03" + "c4" + "af87" + "0102"
    assert decode_push(pdu) == PushPdu(0x22, "application/vnd.syncml.notification",
                                       X_WAP_APP_ID_DM, b"\x01\x02")


def test_bootstrap_content_type_survives_as_general_form():
    assert len(BOOTSTRAP_CT.split(";")[2]) == 40
    encoded = encode_content_type(BOOTSTRAP_CT)
    assert encoded[0] == 0x1F and encoded[1] == len(BOOTSTRAP_CT) + 1   # Length-quote, uintvar
    assert encoded[2:] == BOOTSTRAP_CT.encode() + b"\x00"
    body = bytes(range(256)) * 3
    pdu = decode_push(encode_push(BOOTSTRAP_CT, body, tid=1, headers=X_WAP_APP_ID_DM))
    assert (pdu.content_type, pdu.headers, pdu.body) == (BOOTSTRAP_CT, X_WAP_APP_ID_DM, body)


def test_short_parameterised_type_uses_short_length():
    ct = "text/plain;a=b"
    assert encode_content_type(ct) == bytes([len(ct) + 1]) + ct.encode() + b"\x00"
    assert decode_push(encode_push(ct, b"", 0)).content_type == ct


def test_unnumbered_type_without_parameters_is_extension_media():
    assert encode_content_type("application/x-dmsim") == b"application/x-dmsim\x00"
    assert decode_push(encode_push("application/x-dmsim", b"b", 9)).content_type == \
        "application/x-dmsim"


@pytest.mark.parametrize("media, text", [
    (b"\xc2SEC\x003GPP_GBA\x00", "application/vnd.syncml.dm+wbxml;SEC=3GPP_GBA"),  # untyped
    (b"\xc2MAC\x00\x85", "application/vnd.syncml.dm+wbxml;MAC=5"),       # Short-integer value
    (b"\xc2N\x00\x00", "application/vnd.syncml.dm+wbxml;N="),            # No-value
    (b"\x01\x44", "application/vnd.syncml.notification"),                 # Long-integer media
    (b"text/x\x00a\x00b\x00", "text/x;a=b"),                              # Extension-Media
])
def test_decodes_general_forms_of_other_encoders(media, text):
    ct = bytes([len(media)]) + media                     # Short-length Value-length
    pdu = bytes([5, 6, len(ct)]) + ct + b"body"
    assert decode_push(pdu) == PushPdu(5, text, b"", b"body")


@pytest.mark.parametrize("value, n", [(b"\x00", 0), (b"\x7f", 127), (b"\x81\x00", 128),
                                      (b"\xff\x7f", 0x3FFF), (b"\x8f\xff\xff\xff\x7f", 2**32 - 1)])
def test_uintvar(value, n):
    assert encode_uintvar(n) == value and decode_uintvar(value, 0) == (n, len(value))


def test_uintvar_errors():
    with pytest.raises(DecodeError, match="truncated"):
        decode_uintvar(b"\x81", 0)
    with pytest.raises(DecodeError, match="5 octets"):
        decode_uintvar(b"\x81\x81\x81\x81\x81\x01", 0)
    with pytest.raises(DecodeError, match="32 bits"):
        decode_uintvar(b"\x9f\xff\xff\xff\x7f", 0)
    with pytest.raises(ProtocolError):
        encode_uintvar(2**32)


@pytest.mark.parametrize("pdu_hex, where, why", [
    ("0106", 2, "truncated"),
    ("010701c4", 1, "PDU type"),
    ("010605c4", 2, "beyond the PDU"),
    ("010600", 3, "ContentType missing"),
    ("010601d6", 3, "not in the table"),             # 0x56: past the table
    ("01060261620078", 3, "no NUL"),                 # "ab" cut by HeadersLen
    ("0106021f85", 5, "truncated"),                  # uintvar Value-length cut
    ("01060202c2", 3, "beyond the headers"),
    ("01060403c28100", 5, "typed content-type parameter"),
    ("01060403618000", 4, "not printable"),
    ("0106050461006200", 8, "no value"),
    ("0106020100", 4, "Long-integer of 0"),
    ("01060200c2", 4, "empty Content-general-form"),
])
def test_decode_errors(pdu_hex, where, why):
    with pytest.raises(DecodeError) as info:
        decode_push(bytes.fromhex(pdu_hex))
    assert info.value.what == "wsp" and why in str(info.value)
    assert info.value.offset == where


def test_encode_refuses_bad_values():
    with pytest.raises(ProtocolError):
        encode_push("text/plain", b"", tid=256)
    for bad in ("", "text/pl\u00e4in", "text/plain;\x00"):
        with pytest.raises(ProtocolError):
            encode_content_type(bad)


def test_bootstrap_over_sms_end_to_end():
    """Push PDU -> WDP segments -> SMS-DELIVERs -> decode -> reassemble -> Push PDU."""
    body = bytes(range(256)) * 2
    push = encode_push(BOOTSTRAP_CT, body, tid=3, headers=X_WAP_APP_ID_DM)
    parts = split(push, dest_port=WAP_PUSH_PORT, src_port=WAP_PUSH_SRC_PORT, ref=77)
    assert len(parts) == 5                                 # 602 octets, 128 per part
    r = Reassembler()
    done = None
    for ud in reversed(parts):
        ies, data = decode_udh(ud)
        raw = SmsDeliver(Address.parse("+3361234"), dcs=DCS_8BIT, user_data=data,
                         ies=ies).encode()
        sms = decode_tpdu(raw, mt=True)
        done = r.feed(str(sms.oa), encode_udh(sms.ies) + sms.user_data, now=0.0) or done
    assert done is not None and done.port == WAP_PUSH_PORT
    assert decode_push(done.payload) == PushPdu(3, BOOTSTRAP_CT, X_WAP_APP_ID_DM, body)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=80))
def test_fuzz_decode_push(data):
    try:
        pdu = decode_push(data)
    except DecodeError:
        return
    again = decode_push(encode_push(pdu.content_type, pdu.body, pdu.tid, pdu.headers))
    assert again.content_type.lower() == pdu.content_type.lower()    # media types ignore case
    assert (again.tid, again.headers, again.body) == (pdu.tid, pdu.headers, pdu.body)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([0x1F, 0x03, 0x05, 0x0B, 0xC2]), st.binary(max_size=20))
def test_fuzz_content_type_shapes(first, rest):
    data = bytes([1, 6, 1 + len(rest), first]) + rest
    try:
        decode_push(data)
    except DecodeError:
        pass
