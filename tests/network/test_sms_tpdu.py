"""SMS address, UDH and TPDU codecs (TS 23.040): vectors, round trips, pycrate, fuzz."""
import json
from pathlib import Path

import pytest
from conftest import VECTORS
from hypothesis import given, settings
from hypothesis import strategies as st

from dmsim.network.sms.address import Address, Npi, Ton, decode_address, encode_address
from dmsim.network.sms.tpdu import (
    DCS_8BIT, DCS_8BIT_CLASS1, DCS_8BIT_CLASS2, PID_DEFAULT, PID_ME_DATA_DOWNLOAD,
    PID_USIM_DATA_DOWNLOAD, Alphabet, SmsDeliver, SmsSubmit, dcs_alphabet, decode_tpdu,
)
from dmsim.network.sms.udh import (
    Concat, InformationElement, Ports, decode_udh, encode_udh, find_concat, find_ports,
)
from dmsim.base.errors import DecodeError, ProtocolError

VECTORS = {v["id"]: v for v in json.loads(
    (VECTORS / "network.json").read_text())["vectors"]}
SCTS = bytes.fromhex("42205112000040")


# --- address (§9.1.2.5) ---------------------------------------------------------------

@pytest.mark.parametrize("text, hex_", [
    ("+61416271170", "0b911614261771f0"),
    ("1234", "04812143"),
    ("*#1", "0381baf1"),
])
def test_address_encoding(text, hex_):
    addr = Address.parse(text)
    assert encode_address(addr).hex() == hex_
    assert decode_address(bytes.fromhex(hex_)) == (addr, len(hex_) // 2)
    assert str(addr) == text


@pytest.mark.parametrize("hex_, where", [
    ("05", 0),                 # no type octet
    ("05912143", 0),           # 5 digits need 3 octets
    ("0481f143", 2),           # filler nibble inside the digits
    ("1591" + "11" * 11, 0),   # 21 digits
])
def test_address_decode_errors(hex_, where):
    with pytest.raises(DecodeError) as info:
        decode_address(bytes.fromhex(hex_))
    assert info.value.what == "sms" and info.value.offset == where


def test_address_refuses_what_it_cannot_encode():
    with pytest.raises(ProtocolError):
        Address("12x4")
    with pytest.raises(ProtocolError):
        Address("1" * 21)
    with pytest.raises(ProtocolError):
        Address("MyBank123456", Ton.ALPHANUMERIC)       # 12 characters: more than 10 octets
    with pytest.raises(ProtocolError):
        Address("Bank\u65e5", Ton.ALPHANUMERIC)         # not in the GSM 7-bit alphabet


@pytest.mark.parametrize("text, hex_", [
    ("Google", "0bd0c7f7fbcc2e03"),                      # 6 septets in 11 semi-octets
    ("MyBank{1}", "14d0cdbc30ec5e6f50b14d0a"),           # '{' is an escape and 0x28: 11 septets
    ("A", "02d041"),
])
def test_alphanumeric_address(text, hex_):
    """TON 101 (TS 23.040 §9.1.2.5): GSM 7-bit text, Address-Length in semi-octets."""
    addr = Address(text, Ton.ALPHANUMERIC, Npi.UNKNOWN)
    assert encode_address(addr).hex() == hex_
    assert decode_address(bytes.fromhex(hex_)) == (addr, len(hex_) // 2)
    assert str(addr) == text


def test_alphanumeric_originator_in_a_deliver():
    msg = SmsDeliver(Address("DM-Server", Ton.ALPHANUMERIC, Npi.UNKNOWN), scts=SCTS, user_data=b"x")
    assert decode_tpdu(msg.encode(), mt=True).oa == msg.oa


# --- UDH (§9.2.3.24) -------------------------------------------------------------------

@pytest.mark.parametrize("vid", ["udh-parse-1", "udh-parse-2"])
def test_udh_vectors(vid):
    vec = VECTORS[vid]
    ies, rest = decode_udh(bytes.fromhex(vec["inputs"]["user_data_hex"]))
    assert [(ie.iei, len(ie.data)) for ie in ies] == [
        (e["iei"], e["len"]) for e in vec["expected"]["ies"]]
    assert rest.hex() == vec["expected"]["tail"]


def test_udh_typed_round_trip():
    ies = [Ports(2948, 9200).to_ie(), Concat(0xAB, 3, 2).to_ie(),
           Concat(0x1234, 5, 5, ref16=True).to_ie(), InformationElement(0x71, b"")]
    udh = encode_udh(ies)
    assert udh.hex() == "13" + "05040b8423f0" + "0003ab0302" + "08041234" + "0505" + "7100"
    decoded, rest = decode_udh(udh + b"data")
    assert decoded == ies and rest == b"data"
    assert find_ports(decoded) == Ports(2948, 9200)
    assert find_concat(decoded) == Concat(0x1234, 5, 5, ref16=True)   # the last one wins
    assert encode_udh([]) == b""


@pytest.mark.parametrize("hex_, where, why", [
    ("", 0, "empty"),
    ("05000301", 0, "beyond"),              # UDHL 5 with 3 octets after it
    ("0300050102", 2, "beyond UDHL"),        # IE length 5 inside a UDHL of 3
    ("0100", 1, "IE header"),                # IEI without IEDL
    ("050003010200", 5, "part 0"),           # seq 0
    ("050003010203", 5, "part 3 of 2"),      # seq > total
    ("050003010000", 4, "0 parts"),          # total 0
    ("0400020102", 2, "length 2"),           # 8-bit concat with IEDL 2
    ("0505030102ff", 2, "length 3"),         # port IE with IEDL 3
])
def test_udh_decode_errors(hex_, where, why):
    with pytest.raises(DecodeError) as info:
        decode_udh(bytes.fromhex(hex_))
    assert info.value.what == "udh" and info.value.offset == where
    assert why in str(info.value)


def test_udh_offsets_are_shifted_by_base():
    with pytest.raises(DecodeError) as info:
        decode_udh(bytes.fromhex("050003010200"), base=30)
    assert info.value.offset == 35


def test_typed_ies_refuse_out_of_range():
    for bad in (Concat(256, 2, 1), Concat(1, 0, 0), Concat(1, 2, 3), Concat(1, 256, 1)):
        with pytest.raises(ProtocolError):
            bad.to_ie()
    with pytest.raises(ProtocolError):
        Ports(70000, 1).to_ie()
    with pytest.raises(ProtocolError):
        encode_udh([InformationElement(0x70, bytes(200)), InformationElement(0x70, bytes(100))])


# --- TPDU (§9.2.2.1, §9.2.2.2) ---------------------------------------------------------

def test_submit_vector_vcard_concat_port():
    vec = VECTORS["sms-submit-vcard-concat-port"]
    raw = bytes.fromhex(vec["inputs"]["tpdu_hex"])
    exp = vec["expected"]
    sub = decode_tpdu(raw, mt=False)
    assert isinstance(sub, SmsSubmit)
    assert (sub.reject_duplicates, sub.reply_path, sub.udhi, sub.status_report_request) == (
        exp["rd"], exp["rp"], exp["udhi"], exp["srr"])
    assert (sub.mr, str(sub.da), sub.pid, sub.dcs, sub.vp) == (
        exp["mr"], exp["da"], exp["pid"], exp["dcs"], exp["vp"])
    assert raw[sub_udl_offset(raw)] == exp["udl"]
    assert find_ports(sub.ies) == Ports(exp["udh"][0]["dest_port"], exp["udh"][0]["orig_port"])
    assert find_concat(sub.ies) == Concat(exp["udh"][1]["ref"], exp["udh"][1]["total"],
                                          exp["udh"][1]["seq"])
    assert [ie.iei for ie in sub.ies] == [e["iei"] for e in exp["udh"]]
    assert sub.user_data.startswith(b"BEGIN:VCARD\r\n")
    assert sub.encode() == raw


def sub_udl_offset(raw: bytes) -> int:
    """Offset of TP-UDL in an SMS-SUBMIT with a relative TP-VP."""
    return 2 + 2 + (raw[2] + 1) // 2 + 2 + 1


def test_mti_depends_on_direction():
    deliver = SmsDeliver(Address.parse("+4912"), user_data=b"x").encode()
    submit = SmsSubmit(Address.parse("+4912"), user_data=b"x").encode()
    assert isinstance(decode_tpdu(deliver, mt=True), SmsDeliver)
    assert isinstance(decode_tpdu(submit, mt=False), SmsSubmit)
    for raw, mt, name in ((deliver, False, "SMS-DELIVER-REPORT"),
                          (submit, True, "SMS-SUBMIT-REPORT")):
        with pytest.raises(DecodeError, match=name):
            decode_tpdu(raw, mt=mt)
    reserved = bytes([deliver[0] | 0b11]) + deliver[1:]      # §9.2.3.1: read as DELIVER
    assert decode_tpdu(reserved, mt=True) == decode_tpdu(deliver, mt=True)


@pytest.mark.parametrize("dcs", [DCS_8BIT, DCS_8BIT_CLASS1, DCS_8BIT_CLASS2])
@pytest.mark.parametrize("pid", [PID_DEFAULT, PID_ME_DATA_DOWNLOAD, PID_USIM_DATA_DOWNLOAD])
def test_deliver_8bit_round_trip_and_udl(dcs, pid):
    ies = (Ports(2948, 9200).to_ie(), Concat(9, 2, 2).to_ie())
    msg = SmsDeliver(Address.parse("+33612345678"), pid, dcs, SCTS, bytes(range(128)), ies,
                     more_messages=True, loop_prevention=True, status_report=True,
                     reply_path=True)
    raw = msg.encode()
    assert raw[0] == 0b11101000           # RP, UDHI, SRI, LP set; MMS = 0: more waiting
    assert raw[-141] == 12 + 128          # TP-UDL counts the UDH octets too
    assert decode_tpdu(raw, mt=True) == msg


def test_dcs_alphabets():
    assert dcs_alphabet(0x00) is Alphabet.GSM7
    assert dcs_alphabet(0x04) is dcs_alphabet(0xF5) is dcs_alphabet(0xF6) is Alphabet.OCTETS
    assert dcs_alphabet(0x08) is dcs_alphabet(0xE0) is Alphabet.UCS2
    assert dcs_alphabet(0x24) is Alphabet.OCTETS       # compressed: octets
    assert dcs_alphabet(0x0C) is dcs_alphabet(0x80) is dcs_alphabet(0xF0) is Alphabet.GSM7


def test_7bit_decode_with_udh_fill_bits():
    # "hello" after a 6-octet UDH: 7 septets of header (1 fill bit), TP-UDL 12 septets.
    septets = b"hello"
    msg = SmsDeliver(Address.parse("12345"), dcs=0x00, scts=SCTS, user_data=septets,
                     ies=[Concat(7, 2, 1).to_ie()])
    raw = msg.encode()
    ud_start = len(raw) - 11
    assert raw[ud_start - 1] == 12 and raw[ud_start:ud_start + 6].hex() == "050003070201"
    assert decode_tpdu(raw, mt=True) == msg


def test_7bit_160_septets_fill_140_octets():
    msg = SmsSubmit(Address.parse("+1"), dcs=0x00, user_data=bytes([0x41]) * 160)
    raw = msg.encode()
    assert raw[-141] == 160 and decode_tpdu(raw, mt=False) == msg
    with pytest.raises(ProtocolError):
        SmsSubmit(Address.parse("+1"), dcs=0x00, user_data=bytes(161)).encode()
    with pytest.raises(ProtocolError):
        SmsSubmit(Address.parse("+1"), dcs=0x00, user_data=b"\x80").encode()


def test_encode_refuses_oversized_or_bad_fields():
    with pytest.raises(ProtocolError):
        SmsDeliver(Address.parse("+1"), user_data=bytes(141)).encode()
    with pytest.raises(ProtocolError):
        SmsDeliver(Address.parse("+1"), scts=bytes(6)).encode()
    with pytest.raises(ProtocolError):
        SmsSubmit(Address.parse("+1"), mr=256).encode()


@pytest.mark.parametrize("mutate, where, why", [
    (lambda r: r[:-1], 17, "TP-UD has"),                 # one UD octet short
    (lambda r: r + b"\x00", 18, "TP-UD has"),            # trailing octet
    (lambda r: r[:9], 6, "TP-SCTS"),                     # cut in SCTS
    (lambda r: r[:1], 1, "address"),                     # cut in OA
    (lambda r: r[:13] + bytes([141]) + r[14:], 13, "TP-UDL 141"),
    (lambda r: r[:0], 0, "empty"),
])
def test_tpdu_decode_errors(mutate, where, why):
    raw = SmsDeliver(Address.parse("+49"), scts=SCTS, user_data=b"abcd").encode()
    assert len(raw) == 18 and raw[13] == 4
    with pytest.raises(DecodeError) as info:
        decode_tpdu(mutate(raw), mt=True)
    assert info.value.what == "sms" and info.value.offset == where and why in str(info.value)


def test_submit_refuses_absolute_validity_period():
    raw = bytearray(SmsSubmit(Address.parse("+49"), vp=0xA7, user_data=b"x").encode())
    raw[0] |= 0b11000
    with pytest.raises(DecodeError, match="TP-VPF"):
        decode_tpdu(bytes(raw), mt=False)


def test_udh_errors_inside_tpdu_carry_tpdu_offsets():
    raw = SmsDeliver(Address.parse("+49"), scts=SCTS, user_data=b"",
                     ies=[Concat(1, 2, 1).to_ie()]).encode()
    bad = raw[:-1] + b"\x00"                              # seq 0
    with pytest.raises(DecodeError) as info:
        decode_tpdu(bad, mt=True)
    assert info.value.what == "udh" and info.value.offset == len(raw) - 1


# --- pycrate as an independent decoder --------------------------------------------------

def _pycrate_deliver(raw: bytes):
    ts23040 = pytest.importorskip("pycrate_mobile.TS23040_SMS")
    pdu = ts23040.SMS_DELIVER()
    pdu.from_bytes(raw)
    assert pdu.to_bytes() == raw
    return pdu


@pytest.mark.parametrize("dcs, pid", [(DCS_8BIT, PID_DEFAULT), (DCS_8BIT_CLASS1, PID_DEFAULT),
                                      (DCS_8BIT_CLASS2, PID_USIM_DATA_DOWNLOAD),
                                      (DCS_8BIT_CLASS2, PID_ME_DATA_DOWNLOAD)])
@pytest.mark.parametrize("ies", [(), (Ports(2948, 9200).to_ie(), Concat(200, 3, 3).to_ie())])
def test_pycrate_decodes_our_8bit_deliver(dcs, pid, ies):
    msg = SmsDeliver(Address.parse("+491701234567"), pid, dcs, SCTS, bytes(range(40, 140)), ies)
    pdu = _pycrate_deliver(msg.encode())
    assert pdu["TP_OA"]["Num"].decode() == "491701234567"
    assert pdu["TP_OA"]["Type"].get_val() == Ton.INTERNATIONAL
    assert pdu["TP_OA"]["NumberingPlan"].get_val() == Npi.ISDN
    assert pdu["TP_PID"].to_bytes() == bytes([pid])
    assert pdu["TP_DCS"].to_bytes() == bytes([dcs])
    assert pdu["TP_UD"]["UDL"].get_val() == len(encode_udh(ies)) + 100
    assert pdu["TP_UD"]["UD"].get_val() == bytes(range(40, 140))
    if ies:
        assert pdu["TP_UD"]["UDH"]["UDH"].get_val() == [[5, 4, [2948, 9200]], [0, 3, [200, 3, 3]]]


def test_pycrate_decodes_our_alphanumeric_originator():
    msg = SmsDeliver(Address("MyBank{1}", Ton.ALPHANUMERIC, Npi.UNKNOWN), scts=SCTS, user_data=b"hi")
    pdu = _pycrate_deliver(msg.encode())
    assert pdu["TP_OA"]["Type"].get_val() == Ton.ALPHANUMERIC and pdu["TP_OA"]["Num"].decode() == "MyBank{1}"


def test_pycrate_decodes_our_7bit_deliver():
    text = "Hello DM 1 2 3 bootstrap"             # these GSM 7-bit codes equal ASCII
    msg = SmsDeliver(Address.parse("12345"), dcs=0x00, scts=SCTS, user_data=text.encode(),
                     ies=[Concat(7, 2, 1).to_ie()])
    pdu = _pycrate_deliver(msg.encode())
    assert pdu["TP_UD"]["UDL"].get_val() == 7 + len(text)
    assert pdu["TP_UD"]["UD"].decode() == text


# --- fuzz: random bytes decode or raise DecodeError ---------------------------------------

@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=180), st.booleans())
def test_fuzz_decode_tpdu(data, mt):
    try:
        msg = decode_tpdu(data, mt=mt)
    except DecodeError:
        return
    again = decode_tpdu(msg.encode(), mt=mt)
    assert again == msg


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40))
def test_fuzz_decode_udh(data):
    try:
        ies, rest = decode_udh(data)
    except DecodeError:
        return
    assert len(encode_udh(ies)) + len(rest) <= len(data)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([0x00, DCS_8BIT, DCS_8BIT_CLASS2, 0x08]), st.binary(max_size=60),
       st.integers(0, 200), st.integers(0, 255), st.integers(0, 3))
def test_fuzz_mutated_deliver(dcs, body, where, value, cut):
    septets = bytes(b & 0x7F for b in body) if dcs == 0x00 else body
    raw = bytearray(SmsDeliver(Address.parse("+4917012"), dcs=dcs, scts=SCTS, user_data=septets,
                               ies=[Ports(2948, 9200).to_ie(), Concat(3, 2, 1).to_ie()]).encode())
    raw[where % len(raw)] = value
    try:
        msg = decode_tpdu(bytes(raw[:len(raw) - cut]), mt=True)
    except DecodeError:
        return
    assert decode_tpdu(msg.encode(), mt=True) == msg
