"""SMS-PP data download on the emulated card (TS 31.111 §7.1.1, TS 102 225, TS 102 226): a secured
RFM script read back through the PoR, the counter rule, refusals with their PoR status and no
side effects, the ENVELOPE status words, and a fuzz run."""
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dmsim.cards import sw as SW
from dmsim.cards.apdu import split_response
from dmsim.cards.emulated import make_card
from dmsim.cards.envelope import build_envelope
from dmsim.cards.ota_app import DEFAULT_MSL, OtaOutcome, split_script
from dmsim.cards.profile import parse_profile
from dmsim.cards.scp80 import (CounterMode, Integrity, Keyset, PorMode,
                               ResponseStatus, Spi, decode_por, encode_command)
from dmsim.cards.uicc_files import decode_imsi, encode_imsi
from dmsim.network.sms.address import Address
from dmsim.network.sms.tpdu import DCS_8BIT_CLASS2, PID_USIM_DATA_DOWNLOAD, SmsDeliver
from dmsim.network.sms.udh import InformationElement

h = bytes.fromhex
TAR_AES, TAR_DES = h("B00010"), h("B00011")
AES = Keyset(0x12, 0x12, h("000102030405060708090A0B0C0D0E0F"), h("0F0E0D0C0B0A09080706050403020100"))
DES = Keyset(0x15, 0x15, h("11223344556677881122334455667788"), h("8877665544332211AABBCCDDEEFF0011"))
PROFILE = f"""\
imsi: "001010123456789"
k: "000102030405060708090A0B0C0D0E0F"
opc: "0F0E0D0C0B0A09080706050403020100"
ota:
  - {{tar: "{TAR_AES.hex()}", kic: 0x12, kid: 0x12,
      kic_key: "{AES.kic_key.hex()}", kid_key: "{AES.kid_key.hex()}"}}
  - {{tar: "{TAR_DES.hex()}", kic: 0x15, kid: 0x15,
      kic_key: "{DES.kic_key.hex()}", kid_key: "{DES.kid_key.hex()}", counter: "0000000010"}}
"""
SECURE = Spi(Integrity.CC, True, CounterMode.HIGHER, PorMode.REQUIRED, Integrity.CC, True)
USIM_AID = "A0000000871002FFFFFFFF8907090000"
SELECT_IMSI = h("00A4040C10" + USIM_AID + "00A4000C026F07")
READ_IMSI = SELECT_IMSI + h("00B0000009")


def update_imsi(imsi: str) -> bytes:
    return SELECT_IMSI + h("00D6000009") + encode_imsi(imsi)


@pytest.fixture
def card():
    return make_card(parse_profile(PROFILE))


def envelope(script: bytes, cntr: int, *, spi: Spi = SECURE, tar: bytes = TAR_AES,
             keys: Keyset = AES, kic: int | None = None, kid: int | None = None, pid=PID_USIM_DATA_DOWNLOAD,
             ies=(InformationElement(0x70, b""),)) -> bytes:
    """Return the ENVELOPE of an SMS-DELIVER carrying the command packet."""
    packet = encode_command(spi, keys.kic_byte if kic is None else kic, keys.kid_byte if kid is None else kid,
                            tar, cntr, script, keys)
    sms = SmsDeliver(Address("12345"), pid, DCS_8BIT_CLASS2, bytes(7), packet, ies)
    return build_envelope(sms)


def send(card, apdu: bytes):
    """Return (data, sw) of one command, collecting 61xx data with GET RESPONSE."""
    data, sw = split_response(card.process(apdu))
    while sw >> 8 == 0x61:
        more, sw = split_response(card.process(bytes([0, 0xC0, 0, 0, sw & 0xFF])))
        data += more
    return data, sw


def por(card, apdu: bytes, spi: Spi = SECURE, keys: Keyset | None = AES):
    data, sw = send(card, apdu)
    assert sw == 0x9000 and data[:3] == h("027100")
    return decode_por(data, spi, keys, with_udh=True)


def imsi_of(card) -> str:
    usim = card.applications[0]
    return decode_imsi(card.content(usim.child(0x6F07)))


# --- accepted packets ---------------------------------------------------------------------

def test_read_imsi_through_a_secured_script(card):
    answer = por(card, envelope(READ_IMSI, 1))
    assert answer.status == ResponseStatus.POR_OK and (answer.tar, answer.cntr) == (TAR_AES, 1)
    assert answer.data == b"\x03" + h("9000") + encode_imsi("001010123456789")
    assert card.state["ota.counters"][TAR_AES] == 1
    assert card.state["ota.last"] == OtaOutcome(TAR_AES, 0, 3, 0x9000, card.state["ota.last"].por)


def test_raw_t0_answer_is_61xx_then_the_por(card):
    data, sw = split_response(card.process(envelope(READ_IMSI, 1)))
    assert data == b"" and sw >> 8 == 0x61
    data, sw = split_response(card.process(bytes([0, 0xC0, 0, 0, sw & 0xFF])))
    assert sw == 0x9000 and decode_por(data, SECURE, AES, with_udh=True).status == 0


def test_script_runs_in_its_own_context_with_full_access(card):
    # The terminal's basic channel is in DF.TELECOM with PIN1 unverified; the script starts at
    # the MF, updates an ADM1 file, and the terminal's state is untouched afterwards.
    assert send(card, h("00A4000C027F10"))[1] == 0x9000
    answer = por(card, envelope(update_imsi("001019999999999"), 5))
    assert answer.data == b"\x03" + h("9000")
    assert imsi_of(card) == "001019999999999"
    assert card.channels[0].current_df.name == "DF.TELECOM"
    assert not card.pins[0x01].verified and not card.pins[0x0A].verified
    assert send(card, h("00B0000009"))[1] == 0x6986                 # still no EF selected here


def test_3des_keyset_and_counter_from_the_profile(card):
    assert por(card, envelope(READ_IMSI, 0x10, tar=TAR_DES, keys=DES), keys=DES).status == 0x02
    answer = por(card, envelope(READ_IMSI, 0x11, tar=TAR_DES, keys=DES), keys=DES)
    assert answer.status == 0 and answer.data.endswith(encode_imsi("001010123456789"))


def test_script_stops_at_the_first_error(card):
    script = h("00A4000C026F07") + READ_IMSI               # 6F07 is not under the MF: 6A82
    answer = por(card, envelope(script, 1))
    assert answer.status == 0 and answer.data == b"\x01" + h("6A82")


def test_no_por_requested_answers_9000_without_data(card):
    spi = Spi(Integrity.CC, True, CounterMode.HIGHER, PorMode.NONE)
    assert send(card, envelope(update_imsi("001010000000042"), 1, spi=spi)) == (b"", 0x9000)
    assert imsi_of(card) == "001010000000042"
    on_error = Spi(Integrity.CC, True, CounterMode.HIGHER, PorMode.ON_ERROR, Integrity.CC, True)
    assert send(card, envelope(READ_IMSI, 2, spi=on_error)) == (b"", 0x9000)
    assert por(card, envelope(READ_IMSI, 2, spi=on_error), spi=on_error).status == 0x02


# --- refused packets: PoR status, nothing executed ----------------------------------------

def test_replay_is_refused_and_not_executed(card):
    first = envelope(update_imsi("001010000000001"), 1)
    assert por(card, first).status == 0
    assert por(card, envelope(update_imsi("001010000000002"), 2)).status == 0
    answer = por(card, first)
    assert (answer.status, answer.cntr, answer.data) == (ResponseStatus.CNTR_LOW, 1, b"")
    assert imsi_of(card) == "001010000000002"
    assert card.state["ota.counters"][TAR_AES] == 2 and card.state["ota.last"].executed == 0


def test_counter_exactly_one_higher(card):
    spi = Spi(Integrity.CC, True, CounterMode.ONE_HIGHER, PorMode.REQUIRED, Integrity.CC, True)
    assert por(card, envelope(READ_IMSI, 3, spi=spi), spi=spi).status == ResponseStatus.CNTR_HIGH
    assert card.state["ota.counters"][TAR_AES] == 0
    assert por(card, envelope(READ_IMSI, 1, spi=spi), spi=spi).status == 0


def test_bad_cc_is_refused_and_not_executed(card):
    forged = Keyset(0x12, 0x12, AES.kic_key, bytes(16))
    answer = por(card, envelope(update_imsi("001010000000666"), 1, keys=forged))
    assert answer.status == ResponseStatus.RC_CC_DS_FAILED and answer.data == b""
    assert imsi_of(card) == "001010123456789"
    assert card.state["ota.counters"][TAR_AES] == 0


def test_unknown_tar_gets_an_unsecured_por(card):
    data, sw = send(card, envelope(READ_IMSI, 1, tar=h("B00099")))
    assert sw == 0x9000
    plain = Spi(por=PorMode.REQUIRED)
    answer = decode_por(data, plain, None, with_udh=True)
    assert (answer.status, answer.tar, answer.cntr) == (ResponseStatus.TAR_UNKNOWN, h("B00099"), 0)


def test_below_minimum_security_level(card):
    assert DEFAULT_MSL == 0x16
    spi = Spi(Integrity.CC, False, CounterMode.HIGHER, PorMode.REQUIRED, Integrity.CC, False)
    answer = por(card, envelope(update_imsi("001010000000777"), 1, spi=spi), spi=spi)
    assert answer.status == ResponseStatus.INSUFFICIENT_SECURITY_LEVEL
    assert imsi_of(card) == "001010123456789"


def test_wrong_algorithm_for_the_key(card):
    # KIc says 3DES-2KEY (or key version 2) but the TAR's key is AES v1: refused (06) even though
    # the key bytes fit, PoR still secured with the TAR's keys; an implicit KIc is fine.
    for kic in (0x15, 0x22):
        sender = Keyset(kic, 0x12, AES.kic_key, AES.kid_key)
        answer = por(card, envelope(update_imsi("001010000000888"), 1, keys=sender))
        assert answer.status == ResponseStatus.UNIDENTIFIED_SECURITY_ERROR
    assert imsi_of(card) == "001010123456789" and card.state["ota.counters"][TAR_AES] == 0
    assert por(card, envelope(READ_IMSI, 1, kic=0x10)).status == 0


# --- what is not a secured packet ---------------------------------------------------------

def test_other_sms_and_malformed_envelopes(card):
    assert send(card, envelope(READ_IMSI, 1, pid=0x00)) == (b"", 0x9000)
    assert send(card, envelope(READ_IMSI, 1, ies=())) == (b"", 0x9000)
    assert card.state["ota.counters"][TAR_AES] == 0
    good = envelope(READ_IMSI, 1)
    assert send(card, good[:2] + b"\x01" + good[3:]) == (b"", 0x6A86)
    assert send(card, h("80C20000")) == (b"", 0x6700)
    assert send(card, h("80C2000003D60100")) == (b"", 0x6A80)      # not an SMS-PP download
    to_terminal = bytearray(good)
    to_terminal[10] = 0x82                                           # destination: terminal
    assert send(card, bytes(to_terminal)) == (b"", 0x6A80)
    truncated = SmsDeliver(Address("1"), 0x7F, 0xF6, bytes(7), h("000d"), (InformationElement(0x70, b""),))
    assert send(card, build_envelope(truncated)) == (b"", 0x9000)    # no TAR: no PoR
    assert card.state["ota.last"].status is None and card.state["ota.last"].error


def test_nested_envelope_and_other_channels_are_refused(card):
    inner = envelope(READ_IMSI, 7)
    script = inner[:4] + inner[4:] + h("01A4000C023F00")
    answer = por(card, envelope(script, 1))
    assert answer.data == b"\x01" + h("6985")
    answer = por(card, envelope(h("01A4000C023F00"), 2))
    assert answer.data == b"\x01" + h("6881")


def test_split_script():
    assert list(split_script(h("00B0000009" "00A4000C023F00" "0044000000" "0020000100" "00D6"))) == [
        h("00B0000009"), h("00A4000C023F00"), h("00440000"), h("00200001"), h("00D6")]


# --- fuzz -----------------------------------------------------------------------------------

FUZZ_CARD = make_card(parse_profile(PROFILE))


@st.composite
def envelopes(draw):
    kind = draw(st.integers(0, 2))
    if kind == 0:
        return draw(st.binary(min_size=4, max_size=80))
    if kind == 1:
        body = draw(st.binary(max_size=120))
        return h("80C20000") + bytes([len(body)]) + body
    packets = st.builds(lambda tail, cntr: encode_command(SECURE, 0x12, 0x12, TAR_AES, cntr, tail, AES),
                        st.binary(max_size=60), st.integers(0, 5))
    ud = draw(st.one_of(st.binary(max_size=100), packets))
    sms = SmsDeliver(Address("1"), draw(st.sampled_from([0x7F, 0x00])), DCS_8BIT_CLASS2, bytes(7), ud,
                     draw(st.sampled_from([(InformationElement(0x70, b""),), ()])))
    return build_envelope(sms)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(apdu=envelopes())
def test_fuzz_envelopes_never_fail(apdu):
    FUZZ_CARD.last_error = None
    data, sw = split_response(FUZZ_CARD.process(apdu))
    assert FUZZ_CARD.last_error is None
    assert SW.is_known(sw) and sw != 0x6F00
