"""GPI delivery using WAP Push (network/gba/gpi_wap.py, TS 24.109 Annex J.2): the PDU octets, the
envelope, round trips through the project's WSP Push codec, refusals with offsets, and a whole
Zpn -> WAP Push -> device run."""
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dmsim.base.errors import DecodeError, ProtocolError
from dmsim.cards.sqn import SqnArray
from dmsim.network.gba.gpi_wap import (APP_ID_SYNCML_DM, GPI_MEDIA_TYPE, decode_envelope, decode_gpi_push,
                                       encode_envelope)
from dmsim.network.gba.hss import Hss
from dmsim.network.gba.hss_store import Subscriber
from dmsim.network.gba.keys import DMSIM_DM_UA_PROTOCOL_ID, dm_naf_id
from dmsim.network.gba.push import PushBsf, PushReceiver, gpi_push, parse_gpi_push, software_gba_me
from dmsim.network.sms import wsp_push

GPI = bytes([1, 0]) + bytes(range(0x10, 0x30)) + b"\x00\x04P@b\x00\x06naf\xff\x01" + bytes(8)


def test_pdu_octets():
    pdu = gpi_push(GPI, tid=0x2A, session_id=0x0102)
    head = GPI_MEDIA_TYPE.encode() + b"\x00" + b"\xaf\x87"
    assert pdu == bytes([0x2A, 0x06, len(head)]) + head + b"\x01\x01\x02" + GPI
    got = decode_gpi_push(pdu)
    assert (got.tid, got.app_id, got.session_id, got.gpi) == (0x2A, APP_ID_SYNCML_DM, 0x0102, GPI)


def test_default_session_id_is_from_rand_and_uri_app_id():
    pdu = gpi_push(GPI, tid=1, app_id="x-wap-application:gba.ua")
    got = decode_gpi_push(pdu)
    assert got.session_id == 0x1011 and got.app_id == "x-wap-application:gba.ua"


def test_other_content_types_are_not_gpi():
    assert parse_gpi_push(wsp_push.encode_push("application/vnd.syncml.notification", b"x", 1)) is None
    assert decode_gpi_push(wsp_push.encode_push(GPI_MEDIA_TYPE, encode_envelope(GPI, 5), 1)).app_id is None


def test_malformed_envelopes_are_refused_with_offsets():
    pdu = gpi_push(GPI, tid=1, session_id=3)
    body_at = len(pdu) - len(GPI) - 3
    with pytest.raises(DecodeError) as exc:
        parse_gpi_push(pdu[:body_at] + b"\x02" + pdu[body_at + 1:])
    assert exc.value.offset == body_at and "version 2" in str(exc.value)
    with pytest.raises(DecodeError) as exc:
        parse_gpi_push(pdu[:body_at + 3])
    assert exc.value.offset == body_at + 3
    with pytest.raises(DecodeError):
        decode_envelope(b"\x01\x00")
    for bad in (-1, 0x10000):
        with pytest.raises(ProtocolError):
            encode_envelope(GPI, bad)
    with pytest.raises(ProtocolError):
        encode_envelope(b"", 1)


def test_bad_headers_are_refused_with_the_pdu_offset():
    body = encode_envelope(GPI, 1)
    pdu = wsp_push.encode_push(GPI_MEDIA_TYPE, body, 1, headers=b"\xaf\x1f")   # Length-quote, no uintvar
    with pytest.raises(DecodeError) as exc:
        decode_gpi_push(pdu)
    assert exc.value.what == "wsp" and exc.value.offset >= 3 + len(GPI_MEDIA_TYPE)


def test_zpn_gpi_over_wap_push_reaches_the_device(tmp_path):
    k, opc = bytes.fromhex("465b5ce8b199b49faa5f0a2ee238a6bc"), bytes.fromhex("cd63cb71954a9f4e48a5994e37a02baf")
    impi = "001010123456789@ims.mnc001.mcc001.3gppnetwork.org"
    hss = Hss.open(tmp_path / "h.db", random.Random(1).randbytes)
    hss.provision([Subscriber(impi, "001010123456789", k, opc, b"\x80\x00", 0, False, 600)])
    answer = PushBsf(hss, "bsf.example.org").zpn(impi, dm_naf_id("dm.example.org", DMSIM_DM_UA_PROTOCOL_ID), 100)
    pdu = gpi_push(answer.gpi, tid=9)
    keys = PushReceiver(impi, software_gba_me(k, opc, SqnArray())).process(parse_gpi_push(pdu), 100)
    assert keys.ks_naf == answer.ks_naf and keys.p_tid == answer.p_tid
    hss.close()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120))
def test_decode_gpi_push_raises_only_decode_error(data):
    try:
        decode_gpi_push(data)
        decode_gpi_push(b"\x01\x06" + bytes([len(GPI_MEDIA_TYPE) + 1]) + GPI_MEDIA_TYPE.encode() + b"\x00" + data)
    except DecodeError:
        pass


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=40))
def test_application_id_raises_only_decode_error(headers):
    try:
        wsp_push.application_id(headers)
    except DecodeError:
        pass


def test_application_id_skips_other_headers():
    other = b"\x8e\x03\x01\x02\x03" + b"X-Foo\x00bar\x00" + b"\x80\x1f\x02ab"   # Short-length, text, Length-quote
    assert wsp_push.application_id(other + b"\xaf\x87") == 7
    assert wsp_push.application_id(other) is None
    assert wsp_push.application_id(b"\xaf\x02\x01\x00") == 256                    # Long-integer short code
