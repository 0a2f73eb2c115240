"""LwM2M SMS binding over concatenated SMS (seed 004 §7.3; 3GPP TS 31.115 §4.2, TS 23.040
§9.2.3.24.1): one command packet cut over segments, the CPI in the first segment only, reassembled
and checked as a whole; hostile segments never raise and never yield data."""
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dmsim.base.errors import ProtocolError
from dmsim.network.coap import message as coap
from dmsim.network.lwm2m import content
from dmsim.network.lwm2m.sms_binding import (
    COMMAND_PACKET_IE, FIRST_SEGMENT_ROOM, MAX_SEGMENTS, NEXT_SEGMENT_ROOM, PACKET_ROOM, Direction,
    MessageTooLong, SmsBindingReceiver, SmsBindingSender, Termination, encode_segments, max_message_size,
    packet_room, split_packet)
from dmsim.network.lwm2m.sms_security import Discarded, Reason, protect, unprotect
from dmsim.network.sms.tpdu import SmsDeliver, SmsSubmit, decode_tpdu
from dmsim.network.sms.udh import Concat, InformationElement, Ports

from test_sms_binding import AES, SERVER, TDES  # the same keys and number as the one-SMS tests

h = bytes.fromhex
# a Register as a client sends it (LwM2M 1.0 §5.3.1): an endpoint name, lt/b/sms queries, the
# link-format of its objects; 316 octets, 3 SMS
REGISTER = coap.encode(coap.request(
    coap.Code.POST, "/rd", message_id=0x1001, token=h("a1b2c3d4"),
    query=["ep=urn:imei:490154203237518", "lt=86400", "b=S", "lwm2m=1.0", "sms=+491720000002"],
    content_format=coap.ContentFormat.LINK_FORMAT,
    payload=content.link_format((o, i) for o in (1, 3, 4, 5, 3303, 3304, 3311) for i in range(4)).encode()))


def _pair(direction=Direction.MT, keys=AES, termination=Termination.DEVICE, **kw):
    return (SmsBindingSender(*keys, termination, direction, SERVER),
            SmsBindingReceiver(*keys, termination, direction, **kw))


def _sms(tpdu: bytes, direction=Direction.MT):
    return decode_tpdu(tpdu, mt=direction is Direction.MT)


def _feed(receiver, tpdus, now=0.0):
    return [receiver.receive(t, now) for t in tpdus]


# --- sizes ---------------------------------------------------------------------------------------

def test_segment_rooms_follow_the_udh_lengths():
    """140 octets less UDHL + concatenation IE (5) + CPI (2) in segment 1, less UDHL + 5 after."""
    assert (PACKET_ROOM, FIRST_SEGMENT_ROOM, NEXT_SEGMENT_ROOM) == (137, 132, 134)
    assert [packet_room(n) for n in (1, 2, 3, MAX_SEGMENTS)] == [137, 266, 400, 1070]


@pytest.mark.parametrize("keys, sizes", [(AES, [98, 242, 370, 1042]), (TDES, [106, 242, 370, 1042])],
                         ids=["aes", "3des"])
def test_the_limit_is_the_concatenations_maximum(keys, sizes):
    assert [max_message_size(keys[0], n) for n in (1, 2, 3, MAX_SEGMENTS)] == sizes
    sender, receiver = _pair(keys=keys)
    assert len(sender.send_segments(bytes(sizes[0]))) == 1
    assert len(sender.send_segments(bytes(sizes[0] + 1))) == 2
    assert len(sender.send_segments(bytes(sizes[1]))) == 2 and len(sender.send_segments(bytes(sizes[1] + 1))) == 3
    longest = sender.send_segments(bytes(sizes[-1]))
    assert len(longest) == MAX_SEGMENTS and all(len(_sms(t).user_data) <= 134 for t in longest)
    counter, ref = sender.counter, sender.ref
    with pytest.raises(MessageTooLong) as info:
        sender.send_segments(bytes(sizes[-1] + 1))
    assert (info.value.size, info.value.limit, info.value.segments) == (sizes[-1] + 1, sizes[-1], MAX_SEGMENTS)
    assert (sender.counter, sender.ref) == (counter, ref)  # a refused message uses nothing
    assert _feed(receiver, longest)[-1] == bytes(sizes[-1])


def test_a_smaller_bound_is_kept_by_both_ends():
    sender = SmsBindingSender(*AES, Termination.DEVICE, Direction.MT, SERVER, max_segments=2)
    with pytest.raises(MessageTooLong):
        sender.send_segments(bytes(243))
    wide = SmsBindingSender(*AES, Termination.DEVICE, Direction.MT, SERVER)
    receiver = SmsBindingReceiver(*AES, Termination.DEVICE, Direction.MT, max_segments=2)
    results = _feed(receiver, wide.send_segments(bytes(243)))
    assert [r.reason for r in results] == [Reason.CONCATENATED] * 3 and receiver.reassembler.pending == 0


# --- the structure (TS 31.115 §4.2) ----------------------------------------------------------------

@pytest.mark.parametrize("keys", [AES, TDES], ids=["aes", "3des"])
@pytest.mark.parametrize("direction", list(Direction))
def test_one_packet_one_counter_cut_over_segments(keys, direction):
    sender, receiver = _pair(direction, keys)
    tpdus = sender.send_segments(REGISTER)
    assert len(tpdus) == 3 and sender.counter == 1
    parts = [_sms(t, direction) for t in tpdus]
    for seq, sms in enumerate(parts, start=1):
        assert isinstance(sms, SmsDeliver if direction is Direction.MT else SmsSubmit)
        assert (sms.pid, sms.dcs) == (0x7D, 0xF5)
        expected = (Concat(0, 3, seq).to_ie(),) + ((COMMAND_PACKET_IE,) if seq == 1 else ())
        assert sms.ies == expected  # the CPI in the first segment only
    assert tpdus[0].find(h("07000300030170 00".replace(" ", ""))) > 0
    assert all(t.find(h(f"05000300030{i}")) > 0 for i, t in enumerate(tpdus[1:], start=2))
    packet = b"".join(sms.user_data for sms in parts)
    assert [len(sms.user_data) for sms in parts[:-1]] == [132, 134]
    assert int.from_bytes(packet[:2], "big") == len(packet) - 2  # one CPL over the whole packet
    whole = unprotect(*keys, 0, packet)  # one counter, one checksum: the packet verifies as a whole
    assert (whole.data, whole.counter) == (REGISTER, 1)
    if direction is Direction.MO:
        assert [sms.mr for sms in parts] == [0, 1, 2] and sender.mr == 3
    assert _feed(receiver, tpdus) == [None, None, REGISTER]
    assert receiver.counter == 1 and receiver.stats == {"accepted": 1}
    assert receiver.reassembler.stats.completed == 1 and receiver.reassembler.pending == 0


def test_the_reference_moves_per_concatenated_message():
    sender, receiver = _pair()
    first, short, second = sender.send_segments(REGISTER), sender.send_segments(b"\x40\x01"), \
        sender.send_segments(REGISTER)
    assert {_sms(t).ies[0].data[0] for t in first} == {0} and {_sms(t).ies[0].data[0] for t in second} == {1}
    assert len(short) == 1 and _sms(short[0]).ies == (COMMAND_PACKET_IE,)
    interleaved = [first[0], second[0], first[1], second[1], short[0], second[2], first[2]]
    results = [r for r in _feed(receiver, interleaved) if r is not None]
    # the short message and the second Register verified first: the first Register's counter is lower
    assert results[:2] == [b"\x40\x01", REGISTER] and results[2].reason == Reason.COUNTER_LOWER


@pytest.mark.parametrize("seed", range(5))
def test_segments_in_any_order_reassemble(seed):
    sender, receiver = _pair()
    tpdus = sender.send_segments(bytes(range(256)) * 3 + bytes(200))
    random.Random(seed).shuffle(tpdus)
    results = _feed(receiver, tpdus)
    assert results[:-1] == [None] * (len(tpdus) - 1) and results[-1] == bytes(range(256)) * 3 + bytes(200)


def test_pycrate_reads_the_segments_udh():
    ts23040 = pytest.importorskip("pycrate_mobile.TS23040_SMS")
    tpdus = SmsBindingSender(*AES, Termination.DEVICE, Direction.MT, SERVER, ref=0x2A).send_segments(REGISTER)
    headers = []
    for tpdu in tpdus:
        pdu = ts23040.SMS_DELIVER()
        pdu.from_bytes(tpdu)
        assert pdu.to_bytes() == tpdu
        headers.append(pdu["TP_UD"]["UDH"]["UDH"].get_val())
    assert headers == [[[0, 3, [0x2A, 3, 1]], [0x70, 0, b""]], [[0, 3, [0x2A, 3, 2]]], [[0, 3, [0x2A, 3, 3]]]]


def test_a_16_bit_reference_and_either_ie_order_are_taken():
    packet = protect(*AES, 1, REGISTER)
    receiver = SmsBindingReceiver(*AES, Termination.DEVICE, Direction.MT)
    chunks = (packet[:131], packet[131:264], packet[264:])  # a 16-bit reference costs an octet more
    ies = [(COMMAND_PACKET_IE, Concat(0x1234, 3, 1, True).to_ie()), (Concat(0x1234, 3, 2, True).to_ie(),),
           (Concat(0x1234, 3, 3, True).to_ie(),)]
    tpdus = [SmsDeliver(SERVER, 0x7D, 0xF5, bytes(7), chunk, i).encode() for chunk, i in zip(chunks, ies)]
    assert _feed(receiver, tpdus) == [None, None, REGISTER]
    assert [len(_sms(t).user_data) for t in tpdus][:2] == [131, 133]
    assert [len(chunk) for _, chunk in split_packet(packet, 0)][:2] == [132, 134]  # what we send: 8-bit


def test_encode_segments_and_the_sender_agree():
    sender, _ = _pair(Direction.MO)
    assert sender.send_segments(REGISTER) == encode_segments(*AES, Termination.DEVICE, Direction.MO, SERVER, 1,
                                                             REGISTER)


# --- UICC termination: one SMS per message -----------------------------------------------------------

def test_uicc_termination_stays_one_sms():
    sender, receiver = _pair(termination=Termination.UICC)
    with pytest.raises(MessageTooLong) as info:
        sender.send_segments(REGISTER)
    assert (info.value.limit, info.value.segments) == (98, 1) and sender.counter == 0
    device = SmsBindingSender(*AES, Termination.DEVICE, Direction.MT, SERVER)
    for tpdu in device.send_segments(REGISTER):
        uicc = SmsDeliver(SERVER, 0x7F, 0xF6, bytes(7), _sms(tpdu).user_data, _sms(tpdu).ies).encode()
        assert receiver.receive(uicc).reason == Reason.CONCATENATED
    assert receiver.stats == {"concatenated": 3} and receiver.reassembler.pending == 0


# --- hostile segments -------------------------------------------------------------------------------

def _segments(keys=AES, counter=1, ref=7, coap=REGISTER):
    return [(_sms(t).ies, _sms(t).user_data)
            for t in encode_segments(*keys, Termination.DEVICE, Direction.MT, SERVER, counter, coap, ref=ref)]


def _deliver(ies, data, *, pid=0x7D, dcs=0xF5) -> bytes:
    return SmsDeliver(SERVER, pid, dcs, bytes(7), data, tuple(ies)).encode()


def test_a_segment_of_another_pid_or_class_is_discarded_and_not_held():
    (i1, d1), (i2, d2), (i3, d3) = _segments()
    receiver = SmsBindingReceiver(*AES, Termination.DEVICE, Direction.MT)
    assert receiver.receive(_deliver(i1, d1)) is None
    assert receiver.receive(_deliver(i2, d2, pid=0x7F)).reason == Reason.PID
    assert receiver.receive(_deliver(i2, d2, dcs=0xF6)).reason == Reason.MESSAGE_CLASS
    assert receiver.receive(_deliver(i3, d3)) is None  # still missing segment 2
    assert receiver.receive(_deliver(i2, d2)) == REGISTER


def test_a_segment_with_another_total_is_discarded_and_the_message_kept():
    (i1, d1), (i2, d2), (i3, d3) = _segments()
    receiver = SmsBindingReceiver(*AES, Termination.DEVICE, Direction.MT)
    assert receiver.receive(_deliver(i1, d1)) is None
    wrong = receiver.receive(_deliver((Concat(7, 4, 2).to_ie(),), d2))
    assert wrong.reason == Reason.CONCATENATED and receiver.reassembler.stats.inconsistent == 1
    assert _feed(receiver, [_deliver(i2, d2), _deliver(i3, d3)]) == [None, REGISTER]


def test_duplicate_segments_are_ignored():
    tpdus = [_deliver(i, d) for i, d in _segments()]
    receiver = SmsBindingReceiver(*AES, Termination.DEVICE, Direction.MT)
    assert _feed(receiver, [tpdus[0], tpdus[0], tpdus[1], tpdus[1], tpdus[2]]) == [None] * 4 + [REGISTER]
    assert receiver.reassembler.stats.duplicates == 2 and receiver.stats == {"accepted": 1}


def test_an_overlapping_forged_segment_makes_the_whole_fail_and_yields_nothing():
    """The first segment seen wins; a forged one makes the reassembled packet fail its checksum."""
    (i1, d1), (i2, d2), (i3, d3) = _segments()
    receiver = SmsBindingReceiver(*AES, Termination.DEVICE, Direction.MT)
    forged = bytes(b ^ 0x01 for b in d2)
    results = _feed(receiver, [_deliver(i2, forged), _deliver(i1, d1), _deliver(i2, d2), _deliver(i3, d3)])
    assert results[:3] == [None, None, None]
    assert isinstance(results[3], Discarded) and results[3].reason in (Reason.BAD_MAC, Reason.CIPHERING)
    assert receiver.counter == 0 and "accepted" not in receiver.stats


def test_segments_spliced_from_two_messages_never_verify():
    """Segment 2 of another message (same keys, same reference and total) put in: no data."""
    first, other = _segments(counter=1), _segments(counter=2, coap=REGISTER.replace(b"3303", b"3304"))
    receiver = SmsBindingReceiver(*AES, Termination.DEVICE, Direction.MT)
    results = _feed(receiver, [_deliver(*first[0]), _deliver(*other[1]), _deliver(*first[2])])
    assert results[:2] == [None, None] and isinstance(results[2], Discarded)
    assert receiver.counter == 0


def test_a_cut_short_or_lengthened_message_does_not_verify():
    (i1, d1), (i2, d2), (i3, d3) = _segments()
    for last in (d3[:-1], d3 + b"\x00"):
        receiver = SmsBindingReceiver(*AES, Termination.DEVICE, Direction.MT)
        result = _feed(receiver, [_deliver(i1, d1), _deliver(i2, d2), _deliver(i3, last)])[-1]
        assert isinstance(result, Discarded) and receiver.counter == 0


def test_a_replayed_concatenated_message_is_discarded():
    tpdus = [_deliver(i, d) for i, d in _segments()]
    receiver = SmsBindingReceiver(*AES, Termination.DEVICE, Direction.MT)
    assert _feed(receiver, tpdus)[-1] == REGISTER
    assert _feed(receiver, tpdus)[-1].reason == Reason.COUNTER_REPLAYED


def test_pending_messages_are_bounded_by_count():
    receiver = SmsBindingReceiver(*AES, Termination.DEVICE, Direction.MT, max_pending=4)
    for ref in range(100):
        (ies, data), *_ = _segments(ref=ref)
        assert receiver.receive(_deliver(ies, data)) is None
        assert receiver.reassembler.pending <= 4
    assert receiver.reassembler.stats.evicted == 96
    # the newest still completes; an evicted one no longer can
    rest = _segments(ref=99)[1:]
    assert _feed(receiver, [_deliver(*p) for p in rest]) == [None, REGISTER]
    stale = _segments(ref=0)[1:]
    assert _feed(receiver, [_deliver(*p) for p in stale]) == [None, None]


def test_pending_messages_expire_after_the_reassembly_timeout():
    (i1, d1), (i2, d2), (i3, d3) = _segments()
    receiver = SmsBindingReceiver(*AES, Termination.DEVICE, Direction.MT, reassembly_timeout=60.0)
    assert receiver.receive(_deliver(i1, d1), 0.0) is None
    assert receiver.receive(_deliver(i2, d2), 59.0) is None
    assert receiver.receive(_deliver(i3, d3), 60.0) is None  # segment 1's message expired first
    assert receiver.reassembler.stats.expired == 1 and receiver.reassembler.pending == 1
    assert "accepted" not in receiver.stats


def test_a_receiver_refuses_an_unusable_bound():
    for bad in (0, 256):
        with pytest.raises(ProtocolError):
            SmsBindingReceiver(*AES, Termination.DEVICE, Direction.MT, max_segments=bad)


# --- fuzz --------------------------------------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 3), st.binary(max_size=3)), max_size=10),
       st.randoms(use_true_random=False))
def test_dropped_repeated_reordered_or_altered_segments_yield_the_message_or_nothing(edits, rnd):
    """Whatever is done to the segments, the receiver never raises and yields only the message."""
    parts = _segments()
    stream = [list(p) for p in parts] + [list(p) for p in parts]
    for index, action, octets in edits:
        ies, data = stream[index % len(stream)]
        if action == 0:
            stream.pop(index % len(stream))
        elif action == 1:
            stream.append([ies, data])
        elif action == 2 and data:
            cut = octets[0] % len(data) if octets else 0
            stream[index % len(stream)][1] = data[:cut] + octets + data[cut + len(octets):]
        else:
            stream[index % len(stream)][0] = tuple(ies) + (InformationElement(0x70, octets),)
        if not stream:
            break
    rnd.shuffle(stream)
    receiver = SmsBindingReceiver(*AES, Termination.DEVICE, Direction.MT, max_pending=2)
    for ies, data in stream:
        result = receiver.receive_fields(0x7D, 0xF5, ies, data)
        assert result is None or isinstance(result, Discarded) or result == REGISTER
    assert receiver.stats["accepted"] <= 1 and receiver.reassembler.pending <= 2


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 12), st.integers(1, 12), st.booleans(),
                          st.sampled_from([False, True]), st.binary(max_size=140)), max_size=12))
def test_arbitrary_segments_never_raise_and_never_yield_data(segments):
    receiver = SmsBindingReceiver(*AES, Termination.DEVICE, Direction.MT, max_pending=3)
    for ref, total, seq, cpi, ports, data in segments:
        ies = [InformationElement(0x00, bytes([ref, total, seq]))]
        if cpi:
            ies.append(COMMAND_PACKET_IE)
        if ports:
            ies.append(Ports(1, 2).to_ie())
        result = receiver.receive_fields(0x7D, 0xF5, ies, data)
        assert result is None or isinstance(result, Discarded)
    assert receiver.counter == 0 and "accepted" not in receiver.stats
    assert receiver.reassembler.pending <= 3
