"""LwM2M SMS binding (seed 004 §7.3): CoAP in secured SMS, both directions, silent discards, fuzz."""
import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dmsim.cards.scp80 import CNTR_MAX, UDH_COMMAND, Keyset, encode_command
from dmsim.network.lwm2m.sms_binding import (
    COMMAND_PACKET_IE, MAX_SEGMENTS, Direction, MessageTooLong, SmsBindingReceiver, SmsBindingSender,
    Termination, encode_sms, max_message_size)
from dmsim.network.lwm2m.sms_security import (
    Discarded, Reason, SmsBindingKeys, SmsKeyParameters, SmsSecurityError, protect)
from dmsim.network.sms.address import Address
from dmsim.network.sms.tpdu import SmsDeliver, SmsSubmit, decode_tpdu
from dmsim.network.sms.udh import Concat, InformationElement, Ports

h = bytes.fromhex
TAR = h("bfff42")
AES = (SmsKeyParameters(0x22, 0x22, 0x16, TAR),
       SmsBindingKeys(h("000102030405060708090a0b0c0d0e0f"), h("f0e0d0c0b0a090807060504030201000")))
TDES = (SmsKeyParameters(0x39, 0x39, 0x16, TAR),
        SmsBindingKeys(h("0123456789abcdef23456789abcdef01456789abcdef0123"),
                       h("fedcba9876543210dcba9876543210fe98765432fedcba10")))
SERVER = Address.parse("+491720000001")
REQUEST = h("4402a1b2c3d4e5f6b2726411283d") + b"ep=urn:imei:490154203237518&lt=300&b=S"
RESPONSE = h("6441a1b2c3d4e5f6")


def _pair(direction: Direction, termination=Termination.DEVICE, keys=AES, **kw):
    sender = SmsBindingSender(*keys, termination, direction, SERVER, **kw)
    return sender, SmsBindingReceiver(*keys, termination, direction)


# --- round trips -------------------------------------------------------------------------------

@pytest.mark.parametrize("keys", [AES, TDES], ids=["aes128", "3des3"])
@pytest.mark.parametrize("termination", list(Termination))
@pytest.mark.parametrize("direction", list(Direction))
def test_round_trip(keys, termination, direction):
    sender, receiver = _pair(direction, termination, keys)
    for i, message in enumerate((REQUEST, RESPONSE, b"", bytes(max_message_size(keys[0])))):
        tpdu = sender.send(message)
        sms = decode_tpdu(tpdu, mt=direction is Direction.MT)
        assert isinstance(sms, SmsDeliver if direction is Direction.MT else SmsSubmit)
        assert (sms.pid, sms.dcs, sms.ies) == (termination.pid, termination.dcs, (COMMAND_PACKET_IE,))
        assert (sms.oa if direction is Direction.MT else sms.da) == SERVER
        assert receiver.receive(tpdu) == message
        assert sender.counter == receiver.counter == i + 1
    assert receiver.stats == {"accepted": 4}


def test_termination_settings():
    """Seed 004 §7.3: device = class 1, TP-PID 111101; UICC = class 2, TP-PID 111111 (the low six
    bits; b7-b6 = 01 select that meaning, TS 23.040 §9.2.3.9)."""
    assert (Termination.DEVICE.pid, Termination.DEVICE.dcs) == (0b01_111101, 0xF5)
    assert (Termination.UICC.pid, Termination.UICC.dcs) == (0b01_111111, 0xF6)
    assert Termination.DEVICE.dcs & 0x07 == 0x05 and Termination.UICC.dcs & 0x07 == 0x06  # 8-bit, class


def test_the_user_data_starts_with_the_command_packet_identifier():
    tpdu = SmsBindingSender(*AES, Termination.UICC, Direction.MT, SERVER).send(REQUEST)
    packet = decode_tpdu(tpdu, mt=True).user_data
    assert tpdu.endswith(UDH_COMMAND + packet) and tpdu[-len(packet) - 4] == len(packet) + 3
    assert packet[3:10] == h("1600") + h("2222") + TAR


def test_mo_counts_message_references():
    sender, _ = _pair(Direction.MO, mr=255)
    assert [decode_tpdu(sender.send(RESPONSE), mt=False).mr for _ in range(3)] == [255, 0, 1]


def test_each_direction_has_its_own_counter():
    """A client sends MO with its counter and checks MT against its RE: independent values."""
    to_client, client_rx = _pair(Direction.MT, counter=100)
    to_server, server_rx = _pair(Direction.MO)
    assert client_rx.receive(to_client.send(REQUEST)) == REQUEST and client_rx.counter == 101
    assert server_rx.receive(to_server.send(RESPONSE)) == RESPONSE and server_rx.counter == 1


@pytest.mark.parametrize("termination, dcs", [(Termination.DEVICE, 0x15), (Termination.DEVICE, 0x55),
                                               (Termination.UICC, 0x16), (Termination.UICC, 0x56)])
def test_other_codings_of_the_class_are_accepted(termination, dcs):
    receiver = SmsBindingReceiver(*AES, termination, Direction.MT)
    tpdu = SmsDeliver(SERVER, termination.pid, dcs, bytes(7), protect(*AES, 1, REQUEST),
                      (COMMAND_PACKET_IE,)).encode()
    assert receiver.receive(tpdu) == REQUEST


# --- independent decoder -----------------------------------------------------------------------

@pytest.mark.parametrize("termination", list(Termination))
def test_pycrate_reads_our_sms_deliver(termination):
    ts23040 = pytest.importorskip("pycrate_mobile.TS23040_SMS")
    tpdu = SmsBindingSender(*AES, termination, Direction.MT, SERVER).send(REQUEST)
    pdu = ts23040.SMS_DELIVER()
    pdu.from_bytes(tpdu)
    assert pdu.to_bytes() == tpdu
    assert pdu["TP_PID"].to_bytes() == bytes([termination.pid])
    assert pdu["TP_DCS"].to_bytes() == bytes([termination.dcs])
    assert pdu["TP_UD"]["UDH"]["UDH"].to_bytes() == UDH_COMMAND[1:]
    assert pdu["TP_UD"]["UD"].get_val() == decode_tpdu(tpdu, mt=True).user_data


def test_pycrate_reads_our_sms_submit():
    ts23040 = pytest.importorskip("pycrate_mobile.TS23040_SMS")
    tpdu = SmsBindingSender(*TDES, Termination.DEVICE, Direction.MO, SERVER, mr=7).send(RESPONSE)
    pdu = ts23040.SMS_SUBMIT()
    pdu.from_bytes(tpdu)
    assert pdu.to_bytes() == tpdu
    assert pdu["TP_MR"].get_val() == 7 and pdu["TP_DA"]["Num"].decode() == "491720000001"
    assert pdu["TP_PID"].to_bytes() == b"\x7d" and pdu["TP_DCS"].to_bytes() == b"\xf5"


# --- size limit --------------------------------------------------------------------------------

@pytest.mark.parametrize("keys, limit", [(AES, 98), (TDES, 106)], ids=["aes", "3des"])
def test_send_and_encode_sms_give_one_sms(keys, limit):
    """``send`` is the one-SMS form (the UICC applet's limit); ``send_segments`` concatenates up to
    1042 octets (test_sms_concatenation.py)."""
    assert max_message_size(keys[0]) == limit
    sender, receiver = _pair(Direction.MT, keys=keys)
    tpdu = sender.send(bytes(limit))
    assert decode_tpdu(tpdu, mt=True).user_data and len(tpdu) <= 176
    with pytest.raises(MessageTooLong) as info:
        sender.send(bytes(limit + 1))
    assert (info.value.size, info.value.limit) == (limit + 1, limit)
    assert sender.counter == 1  # the refused message used no counter value
    assert receiver.receive(tpdu) == bytes(limit)


# --- the rules hold: the sender refuses, the receiver discards silently -----------------------

def test_sender_and_receiver_refuse_a_configuration_breaking_a_rule():
    single_des = SmsKeyParameters(0x11, 0x11, 0x16, TAR)
    two_key = (dataclasses.replace(TDES[0], kic=0x35), TDES[1])
    for params, keys in ((single_des, AES[1]), two_key, (dataclasses.replace(AES[0], tar=h("b00000")), AES[1])):
        with pytest.raises(SmsSecurityError):
            SmsBindingSender(params, keys, Termination.DEVICE, Direction.MT, SERVER)
        with pytest.raises(SmsSecurityError):
            SmsBindingReceiver(params, keys, Termination.DEVICE, Direction.MT)
        with pytest.raises(SmsSecurityError):
            encode_sms(params, keys, Termination.DEVICE, Direction.MT, SERVER, 1, REQUEST)


def test_sender_counter_blocked():
    sender, _ = _pair(Direction.MT, counter=CNTR_MAX - 1)
    sender.send(REQUEST)
    with pytest.raises(SmsSecurityError) as info:
        sender.send(REQUEST)
    assert info.value.reason == Reason.COUNTER_BLOCKED


def _deliver(packet: bytes, *, pid=0x7D, dcs=0xF5, ies=(COMMAND_PACKET_IE,)) -> bytes:
    return SmsDeliver(SERVER, pid, dcs, bytes(7), packet, ies).encode()


def _attacker(kic, kid, kic_key, kid_key, *, counter=9, tar=TAR):
    return encode_command(h("1600"), kic, kid, tar, counter, REQUEST, Keyset(kic, kid, kic_key, kid_key))


GOOD = protect(*AES, 9, REQUEST)
HOSTILE = {
    "pid-uicc-on-device": (_deliver(GOOD, pid=0x7F), Reason.PID),
    "pid-default": (_deliver(GOOD, pid=0x00), Reason.PID),
    "class-2": (_deliver(GOOD, dcs=0xF6), Reason.MESSAGE_CLASS),
    "class-0": (_deliver(GOOD, dcs=0xF4), Reason.MESSAGE_CLASS),
    "no-class": (_deliver(GOOD, dcs=0x04), Reason.MESSAGE_CLASS),
    "7-bit": (SmsDeliver(SERVER, 0x7D, 0xF1, bytes(7), bytes(b & 0x7F for b in GOOD),
                         (COMMAND_PACKET_IE,)).encode(), Reason.MESSAGE_CLASS),
    "no-udh": (_deliver(GOOD, ies=()), Reason.UDH),
    "response-packet-ie": (_deliver(GOOD, ies=(InformationElement(0x71, b""),)), Reason.UDH),
    "ie70-with-data": (_deliver(GOOD, ies=(InformationElement(0x70, b"\x00"),)), Reason.UDH),
    "extra-port-ie": (_deliver(GOOD, ies=(COMMAND_PACKET_IE, Ports(1, 2).to_ie())), Reason.UDH),
    # concatenation (TS 31.115 §4.2; the whole rule is in test_sms_concatenation.py)
    "more-segments-than-allowed": (_deliver(GOOD, ies=(Concat(1, MAX_SEGMENTS + 1, 1).to_ie(), COMMAND_PACKET_IE)),
                                   Reason.CONCATENATED),
    "cpi-in-a-later-segment": (_deliver(GOOD, ies=(Concat(1, 2, 2).to_ie(), COMMAND_PACKET_IE)), Reason.UDH),
    "first-segment-without-cpi": (_deliver(GOOD, ies=(Concat(1, 2, 1).to_ie(),)), Reason.UDH),
    "two-concatenation-ies": (_deliver(GOOD, ies=(Concat(1, 2, 1).to_ie(), Concat(2, 2, 1).to_ie(),
                                                  COMMAND_PACKET_IE)), Reason.UDH),
    "segment-with-port-ie": (_deliver(GOOD, ies=(Concat(1, 2, 1).to_ie(), COMMAND_PACKET_IE,
                                                 Ports(1, 2).to_ie())), Reason.UDH),
    "single-des": (_deliver(_attacker(0x11, 0x11, bytes(8), bytes(8))), Reason.SINGLE_DES),
    "3des-2key": (_deliver(_attacker(0x35, 0x35, bytes(range(16)), bytes(16))), Reason.TWO_KEY_3DES),
    "wrong-kic": (_deliver(_attacker(0x32, 0x22, AES[1].kic_key, AES[1].kid_key)), Reason.KIC_MISMATCH),
    "wrong-kid": (_deliver(_attacker(0x22, 0x32, AES[1].kic_key, AES[1].kid_key)), Reason.KID_MISMATCH),
    "wrong-tar": (_deliver(_attacker(0x22, 0x22, AES[1].kic_key, AES[1].kid_key, tar=h("bfff43"))),
                  Reason.TAR_MISMATCH),
    "tar-outside-range": (_deliver(_attacker(0x22, 0x22, AES[1].kic_key, AES[1].kid_key,
                                             tar=h("b00011"))), Reason.TAR_MISMATCH),
    "wrong-key": (_deliver(_attacker(0x22, 0x22, AES[1].kid_key, AES[1].kic_key)), Reason.BAD_MAC),
    "bad-mac": (_deliver(GOOD[:-1] + bytes([GOOD[-1] ^ 1])), Reason.BAD_MAC),
    "counter-not-higher": (_deliver(protect(*AES, 5, REQUEST)), Reason.COUNTER_REPLAYED),
    "counter-lower": (_deliver(protect(*AES, 4, REQUEST)), Reason.COUNTER_LOWER),
    "sms-submit-on-mt": (SmsBindingSender(*AES, Termination.DEVICE, Direction.MO, SERVER,
                                          counter=20).send(REQUEST), Reason.MALFORMED),
    "truncated-tpdu": (_deliver(GOOD)[:-1], Reason.MALFORMED),
    "truncated-packet": (_deliver(GOOD[:-1]), Reason.MALFORMED),
    "empty": (b"", Reason.MALFORMED),
}


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_sms_is_discarded_silently(name):
    tpdu, reason = HOSTILE[name]
    receiver = SmsBindingReceiver(*AES, Termination.DEVICE, Direction.MT, counter=5)
    result = receiver.receive(tpdu)
    assert result == Discarded(reason, result.detail)
    assert receiver.counter == 5 and receiver.stats == {reason.value: 1}
    assert receiver.receive(_deliver(GOOD)) == REQUEST  # still listening, RE untouched before
    assert receiver.counter == 9


def test_replayed_sms_is_discarded():
    sender, receiver = _pair(Direction.MO, Termination.UICC)
    first, second = sender.send(REQUEST), sender.send(RESPONSE)
    assert receiver.receive(first) == REQUEST
    assert receiver.receive(first).reason == Reason.COUNTER_REPLAYED
    assert receiver.receive(second) == RESPONSE
    assert receiver.receive(first).reason == Reason.COUNTER_LOWER
    assert receiver.stats == {"accepted": 2, "counter_replayed": 1, "counter_lower": 1}


def test_a_tampered_octet_of_the_user_data_is_discarded():
    tpdu = _deliver(GOOD)
    start = len(tpdu) - len(GOOD) - 3
    for i in range(start, len(tpdu)):
        tampered = bytearray(tpdu)
        tampered[i] ^= 0x40
        receiver = SmsBindingReceiver(*AES, Termination.DEVICE, Direction.MT)
        assert isinstance(receiver.receive(bytes(tampered)), Discarded), i
        assert receiver.counter == 0


# --- fuzz --------------------------------------------------------------------------------------

RECEIVERS = [(keys, termination, direction) for keys in (AES, TDES) for termination in Termination
             for direction in Direction]


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.binary(max_size=200), st.binary(max_size=160).map(lambda b: _deliver(b[:137])),
                 st.binary(max_size=130).map(lambda b: _deliver(GOOD[:10] + b))),
       st.sampled_from(RECEIVERS))
def test_arbitrary_bytes_never_raise_and_never_yield_data(data, config):
    keys, termination, direction = config
    receiver = SmsBindingReceiver(*keys, termination, direction)
    result = receiver.receive(data)
    assert result is None or isinstance(result, Discarded)  # None: a segment held, nothing yielded
    assert receiver.counter == 0 and "accepted" not in receiver.stats


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 200), st.integers(1, 255)), min_size=1, max_size=4))
def test_mutated_sms_is_discarded_or_unchanged(flips):
    """A mutation outside the secured packet (TP-OA, TP-SCTS) may pass; the data never changes."""
    tpdu = bytearray(_deliver(GOOD))
    for position, mask in flips:
        tpdu[position % len(tpdu)] ^= mask
    result = SmsBindingReceiver(*AES, Termination.DEVICE, Direction.MT).receive(bytes(tpdu))
    assert result is None or isinstance(result, Discarded) or result == REQUEST
