"""ENVELOPE (SMS-PP data download, TS 31.111 §7.1.1): build/parse, errors, fuzz, SCP80 inside."""
import pytest
from conftest import load_vectors
from hypothesis import given, settings
from hypothesis import strategies as st

from dmsim.cards.envelope import (
    DEVICE_NETWORK, DEVICE_UICC, SmsPpDownload, build_envelope, parse_envelope,
)
from dmsim.cards.scp80 import IEI_COMMAND_PACKET, Keyset, decode_command
from dmsim.network.sms.address import Address
from dmsim.network.sms.tpdu import (
    DCS_8BIT_CLASS2, PID_USIM_DATA_DOWNLOAD, SmsDeliver, decode_tpdu,
)
from dmsim.network.sms.udh import InformationElement
from dmsim.base.errors import DecodeError, ProtocolError

h = bytes.fromhex
VECTOR = load_vectors("cards", "scp80_packet")[0]
PACKET = h(VECTOR["expected"]["command_packet"])
SCTS = h("22705200000000")


def _deliver(user_data: bytes = PACKET, ies=(InformationElement(IEI_COMMAND_PACKET, b""),),
             **kw) -> SmsDeliver:
    return SmsDeliver(Address("12345678"), PID_USIM_DATA_DOWNLOAD, DCS_8BIT_CLASS2, SCTS,
                      user_data, ies, **kw)


def test_build_and_parse_round_trip():
    sms = _deliver()
    apdu = build_envelope(sms, Address.parse("+4912345"))
    assert apdu[:5] == bytes([0x80, 0xC2, 0, 0, len(apdu) - 5])
    assert apdu[5] == 0xD1 and apdu[7:11] == h("82028381")
    parsed = parse_envelope(apdu)
    assert parsed == SmsPpDownload(DEVICE_NETWORK, DEVICE_UICC, Address.parse("+4912345"),
                                   sms.encode(), sms)
    assert (parsed.pid, parsed.dcs, parsed.user_data) == (0x7F, 0xF6, PACKET)
    assert parsed.is_command_packet and parsed.ies == sms.ies
    assert parse_envelope(apdu + b"\x00") == parsed          # with an Le octet
    assert parse_envelope(build_envelope(sms.encode())).address is None


def test_published_tpdu_with_its_udl_corrected():
    # quirk (2): pySim's TPDU has UDL 03; with the right UDL it is exactly our SMS-DELIVER.
    quirky = h(VECTOR["quirky_published"]["encoded_tpdu"])
    at = len(quirky) - len(PACKET) - 4
    fixed = quirky[:at] + bytes([len(PACKET) + 3]) + quirky[at + 1:]
    assert _deliver(more_messages=True).encode() == fixed
    parsed = parse_envelope(build_envelope(fixed))
    assert parsed.tpdu == fixed and parsed.user_data == PACKET
    keys = Keyset(0x22, 0x22, h(VECTOR["inputs"]["kic"]), h(VECTOR["inputs"]["kid"]))
    assert decode_command(parsed.user_data, lambda *_: keys).data == h(VECTOR["inputs"]["apdu"])


def test_tags_without_cr_flag_long_lengths_and_unknown_tlvs():
    tpdu = _deliver(bytes(120)).encode()
    assert len(tpdu) > 127
    body = (h("020283810603911032") + h("1d0100")         # unknown, CR clear: skipped
            + bytes([0x0B, 0x81, len(tpdu)]) + tpdu)
    data = bytes([0xD1, 0x81, len(body)]) + body
    parsed = parse_envelope(bytes([0x80, 0xC2, 0, 0, len(data)]) + data)
    assert parsed.address == Address("0123", 1, 1) and parsed.tpdu == tpdu
    assert decode_tpdu(parsed.tpdu, mt=True) == parsed.sms


def _apdu(body: bytes) -> bytes:
    data = bytes([0xD1, len(body)]) + body
    return bytes([0x80, 0xC2, 0, 0, len(data)]) + data


TPDU = _deliver(b"hi", ()).encode()
IDS = h("82028381")


@pytest.mark.parametrize("apdu, offset", [
    (b"\x80\xc2\x00", 3),                                        # truncated header
    (h("a0c2000000"), 0),                                        # wrong CLA
    (_apdu(IDS + b"\x8b" + bytes([len(TPDU)]) + TPDU)[:-1], 4),  # Lc beyond the data
    (h("80c2000003d20100"), 5),                                  # not tag D1
    (h("80c2000003d10500"), 6),                                  # D1 length wrong
    (_apdu(b"\x8b" + bytes([len(TPDU)]) + TPDU), 7 + 2 + len(TPDU)),  # no device identities
    (_apdu(IDS), 11),                                            # no TPDU
    (_apdu(IDS + IDS), 11),                                      # repeated
    (_apdu(h("820183") + b"\x8b" + bytes([len(TPDU)]) + TPDU), 9),  # identities of 1 octet
    (_apdu(IDS + h("9d0100")), 11),                              # unknown with CR
    (_apdu(IDS + h("8b8101") + b"\x00"), 12),                    # 81 with a short length
    (_apdu(IDS + h("8b05") + TPDU[:5]), 14),                     # TPDU's OA cut: TPDU at 13
])
def test_malformed_envelopes(apdu, offset):
    with pytest.raises(DecodeError) as info:
        parse_envelope(apdu)
    assert info.value.what == "envelope" and info.value.offset == offset


def test_bad_address_offset_points_into_the_value():
    apdu = _apdu(IDS + h("8603811f32") + b"\x8b" + bytes([len(TPDU)]) + TPDU)
    with pytest.raises(DecodeError) as info:
        parse_envelope(apdu)
    assert info.value.offset == 7 + 4 + 2 + 1    # the octet with the filler nibble


def test_build_refuses_what_does_not_fit():
    with pytest.raises(ProtocolError):
        build_envelope(bytes(250))
    with pytest.raises(ProtocolError):
        build_envelope(TPDU, source=0x183)


@settings(max_examples=400, deadline=None)
@given(st.one_of(
    st.binary(max_size=120),
    st.binary(max_size=120).map(lambda b: bytes([0x80, 0xC2, 0, 0, len(b)]) + b),
    st.binary(max_size=120).map(lambda b: _apdu(IDS + b"\x8b" + bytes([len(b)]) + b)),
    st.binary(min_size=1, max_size=20).map(lambda b: _apdu(IDS + b + b"\x8b"
                                                           + bytes([len(TPDU)]) + TPDU)),
))
def test_parse_envelope_fuzz(apdu):
    try:
        parsed = parse_envelope(apdu)
    except DecodeError as err:
        assert err.what == "envelope" and 0 <= err.offset <= len(apdu)
        return
    assert isinstance(parsed.sms, SmsDeliver)
