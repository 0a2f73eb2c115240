"""Proactive UICC (TS 102 221 §10.1.2, TS 102 223 §6.6.9/§6.8): SEND SHORT MESSAGE and TERMINAL
RESPONSE coding, the card's FETCH / TERMINAL RESPONSE state, and the OTA PoR via SMS-SUBMIT
(TS 102 225 SPI b6) queued by the ENVELOPE."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dmsim.cards import proactive
from dmsim.cards.apdu import build_command, split_response
from dmsim.cards.emulated import make_card
from dmsim.cards.envelope import build_envelope
from dmsim.cards.profile import parse_profile
from dmsim.cards.scp80 import CounterMode, Integrity, Keyset, PorMode, Spi, decode_por, encode_command
from dmsim.network.sms.address import Address, encode_address
from dmsim.network.sms.tpdu import SmsDeliver, SmsSubmit, decode_tpdu
from dmsim.network.sms.udh import InformationElement, encode_udh
from dmsim.base.errors import DecodeError, ProtocolError

h = bytes.fromhex
TAR = h("B00010")
AES = Keyset(0x12, 0x12, h("000102030405060708090A0B0C0D0E0F"), h("0F0E0D0C0B0A09080706050403020100"))
PROFILE = f"""\
imsi: "001010123456789"
k: "000102030405060708090A0B0C0D0E0F"
opc: "0F0E0D0C0B0A09080706050403020100"
ota:
  - {{tar: "{TAR.hex()}", kic: 0x12, kid: 0x12, kic_key: "{AES.kic_key.hex()}", kid_key: "{AES.kid_key.hex()}"}}
"""
VIA_SUBMIT = Spi(Integrity.CC, True, CounterMode.HIGHER, PorMode.REQUIRED, Integrity.CC, True, por_via_submit=True)
READ_IMSI = h("00A4040C10A0000000871002FFFFFFFF8907090000" "00A4000C026F07" "00B0000009")
OA, SC = Address.parse("+4917099"), Address.parse("+491710760000")
MO = SmsSubmit(OA, 0x7F, 0xF6, user_data=b"por").encode()


@pytest.fixture
def card():
    return make_card(parse_profile(PROFILE), t0=False)


def run(card, apdu: bytes) -> tuple[bytes, int]:
    return split_response(card.process(apdu))


def ota_envelope(cntr: int, *, spi: Spi = VIA_SUBMIT, sc: Address | None = SC) -> bytes:
    packet = encode_command(spi, 0x12, 0x12, TAR, cntr, READ_IMSI, AES)
    sms = SmsDeliver(OA, 0x7F, 0xF6, bytes(7), packet, (InformationElement(0x70, b""),))
    return build_envelope(sms, sc)


# --- coding -----------------------------------------------------------------------------------

def test_send_short_message_layout_and_parse():
    raw = proactive.send_short_message(MO, number=7, sc_address=SC)
    address = encode_address(SC)[1:]
    assert raw == (bytes([0xD0, len(raw) - 2]) + h("8103071300" "82028183" "0500")
                   + bytes([0x86, len(address)]) + address + bytes([0x8B, len(MO)]) + MO)
    command = proactive.parse_proactive_command(raw)
    assert (command.number, command.type, command.qualifier) == (7, 0x13, 0)
    assert (command.source, command.destination) == (0x81, 0x83)
    assert command.sms_tpdu == MO and command.sc_address == address and command.raw == raw


def test_long_tpdu_uses_the_two_octet_length():
    mo = SmsSubmit(OA, 0x7F, 0xF6, user_data=bytes(140)).encode()
    raw = proactive.send_short_message(mo, alpha=None)
    assert raw[:2] == bytes([0xD0, 0x81]) and proactive.parse_proactive_command(raw).sms_tpdu == mo


def test_encoding_limits():
    with pytest.raises(ProtocolError):
        proactive.send_short_message(MO, number=0)
    with pytest.raises(ProtocolError):
        proactive.send_short_message(bytes(250))


def test_terminal_response_round_trip():
    command = proactive.parse_proactive_command(proactive.send_short_message(MO, number=3))
    apdu = proactive.terminal_response_apdu(command, proactive.RESULT_ME_UNABLE, b"\x00")
    assert apdu == h("801400000D" "8103031300" "82028281" "83022000")
    answer = proactive.parse_terminal_response(apdu[5:])
    assert (answer.details, answer.result, answer.additional) == (h("031300"), 0x20, b"\x00")
    assert proactive.fetch_apdu(0) == h("8012000000")


def d0(body: str) -> bytes:
    return bytes([0xD0, len(h(body))]) + h(body)


@pytest.mark.parametrize("raw, offset", [
    (b"", 0), (h("D1020101"), 0), (h("D005810301"), 1),
    (d0("82028183"), 6),                              # no command details
    (d0("8103011300" "82028183"), 11),                # SEND SHORT MESSAGE without a TPDU
    (d0("81020113" "82028183"), 4),                   # command details of 2 octets
    (d0("8103011300" "82028183" "8103011300"), 11),   # repeated command details
    (d0("FF050113"), 2),                              # bad tag
    (d0("8182AAAA"), 3),                              # bad length coding
    (d0("81030113"), 2),                              # TLV beyond the data
])
def test_malformed_commands(raw, offset):
    with pytest.raises(DecodeError) as info:
        proactive.parse_proactive_command(raw)
    assert info.value.what == "proactive" and info.value.offset == offset


def test_unknown_tlvs_skipped_unless_comprehension_required():
    raw = proactive.send_short_message(MO)
    body = raw[2:] + h("1E0100")
    assert proactive.parse_proactive_command(bytes([0xD0, len(body)]) + body).sms_tpdu == MO
    body = raw[2:] + h("9E0100")
    with pytest.raises(DecodeError):
        proactive.parse_proactive_command(bytes([0xD0, len(body)]) + body)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=60))
def test_fuzz_parsers_raise_only_decode_error(data):
    for parse in (proactive.parse_proactive_command, proactive.parse_terminal_response):
        for candidate in (data, b"\xd0" + bytes([len(data)]) + data):
            try:
                parse(candidate)
            except DecodeError:
                pass


# --- the card's FETCH / TERMINAL RESPONSE -----------------------------------------------------

def test_fetch_then_terminal_response(card):
    command = proactive.send_short_message(MO, number=5)
    sw = proactive.queue(card, command)
    assert int(sw) == 0x9100 | len(command) and proactive.busy(card)
    assert run(card, proactive.fetch_apdu(len(command))) == (command, 0x9000)
    assert run(card, proactive.fetch_apdu(len(command))) == (command, 0x9000)     # fetched again
    parsed = proactive.parse_proactive_command(command)
    assert run(card, proactive.terminal_response_apdu(parsed)) == (b"", 0x9000)
    assert not proactive.busy(card)
    assert card.state[proactive.STATE_RESPONSES][0].details == parsed.details


def test_second_command_is_announced_by_the_terminal_response(card):
    first, second = (proactive.send_short_message(MO, number=n) for n in (1, 2))
    proactive.queue(card, first)
    proactive.queue(card, second)
    run(card, proactive.fetch_apdu(len(first)))
    _, sw = run(card, proactive.terminal_response_apdu(proactive.parse_proactive_command(first)))
    assert sw == 0x9100 | len(second)
    assert run(card, proactive.fetch_apdu(0)) == (second, 0x9000)


def test_fetch_and_terminal_response_refusals(card):
    command = proactive.send_short_message(MO)
    parsed = proactive.parse_proactive_command(command)
    assert run(card, proactive.fetch_apdu(0))[1] == 0x6985                      # nothing pending
    proactive.queue(card, command)
    assert run(card, proactive.terminal_response_apdu(parsed))[1] == 0x6985     # not fetched yet
    assert run(card, proactive.fetch_apdu(3))[1] == 0x6C00 | len(command)       # wrong Le
    assert run(card, h("8012010000"))[1] == 0x6A86
    assert run(card, h("80120000" "0100"))[1] == 0x6700
    run(card, proactive.fetch_apdu(len(command)))
    other = proactive.parse_proactive_command(proactive.send_short_message(MO, number=9))
    assert run(card, proactive.terminal_response_apdu(other))[1] == 0x6A80      # another command
    assert run(card, build_command(0x80, 0x14, 0, 0, h("0102")))[1] == 0x6A80
    assert run(card, h("80140000"))[1] == 0x6700
    assert proactive.busy(card)
    assert run(card, proactive.terminal_response_apdu(parsed))[1] == 0x9000


def test_command_numbers_wrap(card):
    numbers = [proactive.next_number(card) for _ in range(0xFF)]
    assert numbers[:2] == [1, 2] and numbers[0xFD] == 0xFE and numbers[0xFE] == 1


# --- OTA: PoR via SMS-SUBMIT ------------------------------------------------------------------

def test_envelope_queues_the_por_as_send_short_message(card):
    data, sw = run(card, ota_envelope(1))
    assert data == b"" and sw >> 8 == 0x91
    command = proactive.parse_proactive_command(run(card, proactive.fetch_apdu(sw & 0xFF))[0])
    assert command.type == proactive.TYPE_SEND_SHORT_MESSAGE and command.sc_address == encode_address(SC)[1:]
    sms = decode_tpdu(command.sms_tpdu, mt=False)
    assert (sms.da, sms.pid, sms.dcs) == (OA, 0x7F, 0xF6)
    por = decode_por(encode_udh(sms.ies) + sms.user_data, VIA_SUBMIT, AES, with_udh=True)
    assert (por.tar, por.cntr, por.status, por.data[:3]) == (TAR, 1, 0, h("039000"))


def test_envelope_while_busy_answers_9300_and_changes_nothing(card):
    _, sw = run(card, ota_envelope(1))
    assert sw >> 8 == 0x91
    assert run(card, ota_envelope(2)) == (b"", 0x9300)
    assert card.state["ota.counters"][TAR] == 1                # the second packet did not run
    command = proactive.parse_proactive_command(run(card, proactive.fetch_apdu(sw & 0xFF))[0])
    run(card, proactive.terminal_response_apdu(command))
    _, sw = run(card, ota_envelope(2))
    assert sw >> 8 == 0x91 and card.state["ota.counters"][TAR] == 2


def test_without_sc_address_the_command_has_none(card):
    _, sw = run(card, ota_envelope(1, sc=None))
    command = proactive.parse_proactive_command(run(card, proactive.fetch_apdu(sw & 0xFF))[0])
    assert command.sc_address is None


def test_rp_ack_path_is_unchanged(card):
    spi = Spi(Integrity.CC, True, CounterMode.HIGHER, PorMode.REQUIRED, Integrity.CC, True)
    data, sw = run(card, ota_envelope(1, spi=spi))
    assert sw == 0x9000 and decode_por(data, spi, AES, with_udh=True).status == 0
    assert not proactive.busy(card) and not card.state["ota.last"].por_via_submit


def test_no_por_asked_queues_nothing(card):
    spi = Spi(Integrity.CC, True, CounterMode.HIGHER, PorMode.NONE, por_via_submit=True)
    assert run(card, ota_envelope(1, spi=spi)) == (b"", 0x9000) and not proactive.busy(card)
