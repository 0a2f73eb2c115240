"""The LwM2M SMS security applet on the emulated UICC (seed 004 §7.3, security terminated on the
smartcard), with raw APDUs: MT packets deciphered into the ENVELOPE's answer, MO messages secured
by LWM2M PROTECT and checked by a server-side receiver, silent discards that leave the RE alone,
the TAR and TP-PID routing, and the personalisation rules."""
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dmsim.cards import lwm2m_applet
from dmsim.cards.apdu import split_response
from dmsim.cards.emulated import make_card
from dmsim.cards.envelope import build_envelope
from dmsim.cards.ota_app import STATE_LAST as OTA_LAST
from dmsim.cards.profile import load_profile
from dmsim.cards.scp80 import CNTR_MAX, Keyset, PorMode, ResponseStatus, Spi, decode_por, encode_command
from dmsim.cards.uicc_files import encode_imsi
from dmsim.network.lwm2m.sms_binding import (
    COMMAND_PACKET_IE, Direction, SmsBindingReceiver, SmsBindingSender, Termination, max_message_size)
from dmsim.network.lwm2m.sms_security import (
    Discarded, Reason, SmsBindingKeys, SmsKeyParameters, SmsSecurityError, Unprotected, protect)
from dmsim.network.sms.address import Address
from dmsim.network.sms.tpdu import SmsDeliver
from dmsim.base.errors import ProtocolError

h = bytes.fromhex
PROFILE = Path(__file__).resolve().parents[2] / "cards" / "profiles" / "example.yaml"
TAR = h("bfff42")
# as the operator provisions them: the Security Object's "SMS Binding Key Parameters" (KIc KID
# SPI TAR) and "SMS Binding Secret Keys" (KIc key, KID key) resources of seed 004 D.1
AES = (SmsKeyParameters.decode(h("222216") + TAR),
       SmsBindingKeys.decode(h("5a17c0de" * 4 + "00112233445566778899aabbccddeeff")))
TDES = (SmsKeyParameters.decode(h("393916") + TAR),
        SmsBindingKeys.decode(h("0123456789abcdef" "23456789abcdef01" "456789abcdef0123"
                                "fedcba9876543210" "dcba9876543210fe" "98765432fedcba10")))
SERVER = Address.parse("+491720000001")
REQUEST = h("4401a1b2c3d4e5f6b2333311ff") + b'{"bn":"/3/0/"}'
RESPONSE = h("6445a1b2c3d4e5f6")
RFM_TAR = h("b00010")                       # the example profile's OTA keyset (AES, KIc/KID 12)
RFM_KEYS = Keyset(0x12, 0x12, h("000102030405060708090A0B0C0D0E0F"), h("0F0E0D0C0B0A09080706050403020100"))
READ_IMSI = h("00A4040C10A0000000871002FFFFFFFF8907090000" "00A4000C026F07" "00B0000009")


def make(keys=AES, *, t0=True, **counters):
    card = make_card(load_profile(PROFILE), t0=t0)
    lwm2m_applet.personalise(card, *keys, **counters)
    return card


def server(keys=AES, **kw) -> SmsBindingSender:
    return SmsBindingSender(*keys, Termination.UICC, Direction.MT, SERVER, **kw)


def send(card, apdu: bytes) -> tuple[bytes, int]:
    """Return (data, sw) of one command, collecting 61xx data with GET RESPONSE."""
    data, sw = split_response(card.process(apdu))
    while sw >> 8 == 0x61:
        more, sw = split_response(card.process(bytes([0, 0xC0, 0, 0, sw & 0xFF])))
        data += more
    return data, sw


def deliver(card, tpdu: bytes) -> tuple[bytes, int]:
    return send(card, build_envelope(tpdu))


def packet_sms(packet: bytes, *, pid=0x7F, dcs=0xF6) -> bytes:
    return SmsDeliver(SERVER, pid, dcs, bytes(7), packet, (COMMAND_PACKET_IE,)).encode()


def protect_apdu(coap: bytes, p2: int = 0x42, p1: int = 0, le: bytes = b"\x00") -> bytes:
    return bytes([0x80, 0x4C, p1, p2, len(coap)]) + coap + le


def stats(card) -> dict:
    return dict(card.state.get(lwm2m_applet.STATE_STATS, {}))


# --- server to client: the card deciphers --------------------------------------------------

@pytest.mark.parametrize("t0", [True, False], ids=["t0", "t1"])
@pytest.mark.parametrize("keys", [AES, TDES], ids=["aes128", "3des3"])
def test_mt_plaintext_in_the_envelope_answer(keys, t0):
    card, sender = make(keys, t0=t0), server(keys)
    for i, message in enumerate((REQUEST, RESPONSE, bytes(max_message_size(keys[0]))), start=1):
        assert deliver(card, sender.send(message)) == (message, 0x9000)
        assert lwm2m_applet.keyset(card, TAR).counter == i
        assert card.state[lwm2m_applet.STATE_LAST] == Unprotected(message, i)
    assert stats(card) == {"accepted": 3}
    assert card.state[OTA_LAST].tar == TAR and card.state[OTA_LAST].status is None


def test_t0_answer_is_61xx_then_the_plaintext():
    card = make()
    data, sw = split_response(card.process(build_envelope(server().send(REQUEST))))
    assert data == b"" and sw == 0x6100 | len(REQUEST)
    assert send(card, bytes([0, 0xC0, 0, 0, sw & 0xFF])) == (REQUEST, 0x9000)


def test_replayed_sms_is_discarded_silently():
    card, sender = make(), server()
    first = sender.send(REQUEST)
    assert deliver(card, first) == (REQUEST, 0x9000)
    assert deliver(card, first) == (b"", 0x9000)
    assert card.state[lwm2m_applet.STATE_LAST].reason == Reason.COUNTER_REPLAYED
    assert deliver(card, sender.send(RESPONSE)) == (RESPONSE, 0x9000)
    assert deliver(card, first) == (b"", 0x9000)
    assert card.state[lwm2m_applet.STATE_LAST].reason == Reason.COUNTER_LOWER
    assert lwm2m_applet.keyset(card, TAR).counter == 2
    assert stats(card) == {"accepted": 2, "counter_replayed": 1, "counter_lower": 1}


def test_personalised_re_is_the_floor():
    card = make(counter=5)
    assert deliver(card, server(counter=4).send(REQUEST)) == (b"", 0x9000)      # CNTR 5 = RE
    assert deliver(card, server(counter=3).send(REQUEST)) == (b"", 0x9000)      # CNTR 4 < RE
    assert lwm2m_applet.keyset(card, TAR).counter == 5
    assert deliver(card, server(counter=5).send(REQUEST)) == (REQUEST, 0x9000)
    assert lwm2m_applet.keyset(card, TAR).counter == 6


@pytest.mark.parametrize("kid, reason", [(0x12, Reason.KID_MISMATCH), (0x32, Reason.KID_MISMATCH)])
def test_wrong_kid_is_discarded(kid, reason):
    card = make()
    params, keys = AES
    forged = SmsBindingSender(SmsKeyParameters(params.kic, kid, params.spi, TAR), keys,
                              Termination.UICC, Direction.MT, SERVER)
    assert deliver(card, forged.send(REQUEST)) == (b"", 0x9000)
    assert card.state[lwm2m_applet.STATE_LAST].reason == reason
    assert lwm2m_applet.keyset(card, TAR).counter == 0


def test_wrong_keys_bad_mac_no_por_whatever_the_spi_asks():
    card = make()
    params, keys = AES
    forged = Keyset(params.kic, params.kid, keys.kic_key, bytes(16))
    # second SPI octet 09: PoR required in the RP-ACK, with a CC; the RFM path would answer one
    packet = encode_command(h("1609"), params.kic, params.kid, TAR, 1, REQUEST, forged)
    assert deliver(card, packet_sms(packet)) == (b"", 0x9000)
    assert card.state[lwm2m_applet.STATE_LAST].reason == Reason.BAD_MAC
    assert lwm2m_applet.keyset(card, TAR).counter == 0


def test_good_packet_asking_a_por_gets_its_plaintext_only():
    card = make()
    params, keys = AES
    packet = encode_command(h("1609"), params.kic, params.kid, TAR, 1, REQUEST,
                            Keyset(params.kic, params.kid, keys.kic_key, keys.kid_key))
    assert deliver(card, packet_sms(packet)) == (REQUEST, 0x9000)


def test_counter_moves_only_on_a_verified_packet():
    card, sender = make(), server()
    params, keys = AES
    bad = [protect(*AES, 9, REQUEST)[:-1],                                        # cut short
           encode_command(h("1600"), params.kic, params.kid, TAR, 9, REQUEST,
                          Keyset(params.kic, params.kid, bytes(16), keys.kid_key)),   # KIc key
           encode_command(h("1600"), params.kic, params.kid, TAR, 9, REQUEST,
                          Keyset(params.kic, params.kid, keys.kic_key, bytes(16))),   # CC
           encode_command(h("1200"), params.kic, params.kid, TAR, 9, REQUEST,         # SPI
                          Keyset(params.kic, params.kid, keys.kic_key, keys.kid_key))]
    for packet in bad:
        assert deliver(card, packet_sms(packet)) == (b"", 0x9000)
        assert lwm2m_applet.keyset(card, TAR).counter == 0
    assert deliver(card, sender.send(REQUEST)) == (REQUEST, 0x9000)
    assert lwm2m_applet.keyset(card, TAR).counter == 1
    assert stats(card) == {"malformed": 1, "bad_mac": 2, "spi_mismatch": 1, "accepted": 1}


# --- what is not the applet's ----------------------------------------------------------------

def test_class1_pid_7d_sms_is_not_given_to_the_applet():
    card = make()
    device = SmsBindingSender(*AES, Termination.DEVICE, Direction.MT, SERVER)
    assert deliver(card, device.send(REQUEST)) == (b"", 0x9000)
    assert stats(card) == {} and lwm2m_applet.STATE_LAST not in card.state
    assert card.state[OTA_LAST].error == "not a secured command packet"
    assert lwm2m_applet.keyset(card, TAR).counter == 0


def test_pid_7f_in_class_1_is_discarded_by_the_applet():
    card, packet = make(), protect(*AES, 1, REQUEST)
    assert deliver(card, packet_sms(packet, dcs=0xF5)) == (b"", 0x9000)
    assert card.state[lwm2m_applet.STATE_LAST].reason == Reason.MESSAGE_CLASS
    assert lwm2m_applet.keyset(card, TAR).counter == 0
    assert deliver(card, packet_sms(packet)) == (REQUEST, 0x9000)


def test_tar_outside_bfffxx_is_not_the_applets():
    card = make()
    params, keys = AES
    # the LwM2M keys under the profile's RFM TAR: the RFM path takes it and refuses its CC
    packet = encode_command(h("1609"), params.kic, params.kid, RFM_TAR, 1, REQUEST,
                            Keyset(params.kic, params.kid, keys.kic_key, keys.kid_key))
    data, sw = deliver(card, packet_sms(packet))
    assert sw == 0x9000 and data[:3] == h("027100")                       # a PoR: RFM answered
    assert card.state[OTA_LAST].status == ResponseStatus.RC_CC_DS_FAILED
    assert stats(card) == {} and lwm2m_applet.keyset(card, TAR).counter == 0
    # and RFM still works on a card with the applet personalised
    script = encode_command(h("1609"), 0x12, 0x12, RFM_TAR, 1, READ_IMSI, RFM_KEYS)
    data, sw = deliver(card, packet_sms(script))
    por = decode_por(data, Spi.decode(h("1609")), RFM_KEYS, with_udh=True)
    assert por.status == 0 and por.data.endswith(encode_imsi(load_profile(PROFILE).imsi))


def test_lwm2m_tar_without_keyset_is_discarded_not_run_as_rfm():
    card = make()
    packet = encode_command(h("1609"), 0x12, 0x12, h("bfff43"), 1, READ_IMSI, RFM_KEYS)
    assert deliver(card, packet_sms(packet)) == (b"", 0x9000)              # no PoR 09
    assert card.state[lwm2m_applet.STATE_LAST].reason == Reason.TAR_MISMATCH
    outside = encode_command(h("1609"), 0x12, 0x12, h("b00099"), 1, READ_IMSI, RFM_KEYS)
    data, _ = deliver(card, packet_sms(outside))
    assert decode_por(data, Spi(por=PorMode.REQUIRED), None, with_udh=True).status == ResponseStatus.TAR_UNKNOWN


def test_a_card_without_personalisation():
    card = make_card(load_profile(PROFILE))
    assert deliver(card, server().send(REQUEST)) == (b"", 0x9000)
    assert card.state[lwm2m_applet.STATE_LAST].reason == Reason.TAR_MISMATCH
    assert send(card, protect_apdu(REQUEST)) == (b"", 0x6D00)


# --- client to server: the card secures -----------------------------------------------------

@pytest.mark.parametrize("t0", [True, False], ids=["t0", "t1"])
@pytest.mark.parametrize("keys", [AES, TDES], ids=["aes128", "3des3"])
def test_mo_packet_verified_by_the_server(keys, t0):
    card = make(keys, t0=t0, mo_counter=7)
    receiver = SmsBindingReceiver(*keys, Termination.UICC, Direction.MO)
    packets = []
    for i, message in enumerate((RESPONSE, REQUEST), start=8):
        packet, sw = send(card, protect_apdu(message, le=b"" if t0 else b"\x00"))
        assert sw == 0x9000 and lwm2m_applet.keyset(card, TAR).mo_counter == i
        assert receiver.receive_fields(0x7F, 0xF6, (COMMAND_PACKET_IE,), packet) == message
        assert receiver.counter == i
        packets.append(packet)
    replay = receiver.receive_fields(0x7F, 0xF6, (COMMAND_PACKET_IE,), packets[0])
    assert isinstance(replay, Discarded) and replay.reason == Reason.COUNTER_LOWER
    assert stats(card) == {"protected": 2}
    # the device-terminated keys' receiver with a class 1 PID would not take it
    device = SmsBindingReceiver(*keys, Termination.DEVICE, Direction.MO)
    assert device.receive_fields(0x7F, 0xF6, (COMMAND_PACKET_IE,), packets[1]).reason == Reason.PID


@pytest.mark.parametrize("apdu, sw", [
    (protect_apdu(REQUEST, p1=1), 0x6A86),
    (protect_apdu(REQUEST, p2=0x43), 0x6A88),                    # no keyset for BF FF 43
    (protect_apdu(bytes(99)), 0x6700),                           # 98 octets at most with AES
    (h("804C004200"), 0x6700),                                   # no data
    (protect_apdu(REQUEST, le=b"\x10"), 0x6700),                 # an Le the card cannot promise
], ids=["p1", "tar", "too-long", "no-data", "le"])
def test_mo_refusals_use_no_counter(apdu, sw):
    card = make()
    assert send(card, apdu) == (b"", sw)
    assert lwm2m_applet.keyset(card, TAR).mo_counter == 0 and stats(card) == {}
    assert send(card, protect_apdu(bytes(98)))[1] == 0x9000


def test_mo_counter_exhausted():
    card = make(mo_counter=CNTR_MAX)
    assert send(card, protect_apdu(REQUEST)) == (b"", 0x6985)
    assert lwm2m_applet.keyset(card, TAR).mo_counter == CNTR_MAX


def test_counters_are_per_tar_and_per_direction():
    card = make()
    other = (SmsKeyParameters(0x22, 0x22, 0x16, h("bfff00")), SmsBindingKeys(bytes(range(16)), bytes(16)))
    lwm2m_applet.personalise(card, *other)
    assert deliver(card, server(other).send(REQUEST)) == (REQUEST, 0x9000)
    assert send(card, protect_apdu(RESPONSE, p2=0x00))[1] == 0x9000
    assert lwm2m_applet.keyset(card, h("bfff00")).counter == 1
    assert lwm2m_applet.keyset(card, h("bfff00")).mo_counter == 1
    assert (lwm2m_applet.keyset(card, TAR).counter, lwm2m_applet.keyset(card, TAR).mo_counter) == (0, 0)
    assert deliver(card, server().send(REQUEST)) == (REQUEST, 0x9000)       # TAR 42 from 1


# --- personalisation ---------------------------------------------------------------------------

@pytest.mark.parametrize("params, keys, reason", [
    (SmsKeyParameters(0x11, 0x11, 0x16, TAR), SmsBindingKeys(bytes(8) * 2, bytes(8) * 2), Reason.SINGLE_DES),
    (SmsKeyParameters(0x22, 0x11, 0x16, TAR), AES[1], Reason.SINGLE_DES),
    (SmsKeyParameters(0x15, 0x15, 0x16, TAR), SmsBindingKeys(TDES[1].kic_key[:16], TDES[1].kid_key[:16]),
     Reason.TWO_KEY_3DES),
    (SmsKeyParameters(0x39, 0x39, 0x16, TAR), SmsBindingKeys(TDES[1].kic_key[:8] * 3, TDES[1].kid_key),
     Reason.TDES_KEYS_NOT_DISTINCT),
    (SmsKeyParameters(0x22, 0x22, 0x16, RFM_TAR), AES[1], Reason.TAR_RANGE),
    (SmsKeyParameters(0x22, 0x22, 0x12, TAR), AES[1], Reason.SPI_CIPHERING),
], ids=["des", "des-kid", "3des-2key", "3des-same-keys", "tar", "spi"])
def test_personalisation_refuses_what_the_seed_forbids(params, keys, reason):
    card = make_card(load_profile(PROFILE))
    with pytest.raises(SmsSecurityError) as err:
        lwm2m_applet.personalise(card, params, keys)
    assert err.value.reason == reason
    assert lwm2m_applet.keyset(card, params.tar) is None
    assert send(card, protect_apdu(REQUEST, p2=params.tar[2])) == (b"", 0x6D00)


def test_personalisation_refuses_counters_out_of_range_and_replaces_a_keyset():
    card = make()
    with pytest.raises(ProtocolError):
        lwm2m_applet.personalise(card, *AES, counter=CNTR_MAX + 1)
    with pytest.raises(ProtocolError):
        lwm2m_applet.personalise(card, *AES, mo_counter=-1)
    assert deliver(card, server().send(REQUEST)) == (REQUEST, 0x9000)
    lwm2m_applet.personalise(card, *TDES, counter=10)
    assert deliver(card, server().send(REQUEST)) == (b"", 0x9000)            # the old AES keys
    assert deliver(card, server(TDES, counter=10).send(REQUEST)) == (REQUEST, 0x9000)


# --- hostile octets ------------------------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(head=st.binary(min_size=7, max_size=7), tail=st.binary(max_size=120))
def test_fuzz_never_answers_data_nor_moves_the_re(head, tail):
    card = make()
    assert deliver(card, packet_sms(head + TAR + tail)) == (b"", 0x9000)
    assert isinstance(card.state[lwm2m_applet.STATE_LAST], Discarded)
    assert lwm2m_applet.keyset(card, TAR).counter == 0 and card.last_error is None
