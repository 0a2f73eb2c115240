"""Splitting port-addressed payloads into SMS parts and reassembling them (TS 23.040)."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dmsim.network.sms.segmentation import Completed, Reassembler, split
from dmsim.network.sms.udh import Concat, Ports, decode_udh, encode_udh, find_concat, find_ports
from dmsim.network.sms.wsp_push import WAP_PUSH_PORT, WAP_PUSH_SRC_PORT
from dmsim.base.errors import DecodeError, ProtocolError

PORTS = {"dest_port": WAP_PUSH_PORT, "src_port": WAP_PUSH_SRC_PORT}


def test_small_payload_is_one_part_with_only_the_port_ie():
    (part,) = split(b"x" * 133, ref=1, **PORTS)
    assert len(part) == 140
    assert part[:7].hex() == "0605040b8423f0"
    ies, body = decode_udh(part)
    assert find_concat(ies) is None and body == b"x" * 133


def test_large_payload_gets_concat_and_ports_in_every_part():
    payload = bytes(range(256)) * 2
    parts = split(payload, ref=0x42, **PORTS)
    assert len(parts) == 4 and all(len(p) <= 140 for p in parts)
    assert [len(p) for p in parts[:3]] == [140, 140, 140]    # 12-octet UDH + 128 data
    for seq, part in enumerate(parts, start=1):
        ies, _ = decode_udh(part)
        assert find_ports(ies) == Ports(WAP_PUSH_PORT, WAP_PUSH_SRC_PORT)
        assert find_concat(ies) == Concat(0x42, 4, seq)
    assert b"".join(decode_udh(p)[1] for p in parts) == payload


def test_split_limits():
    assert len(split(b"", ref=0, **PORTS)) == 1
    assert len(split(bytes(134), ref=0, **PORTS)) == 2
    assert len(split(bytes(100), ref=0, max_ud=60, **PORTS)) == 3
    with pytest.raises(ProtocolError):
        split(bytes(100), ref=0, max_ud=12, **PORTS)
    with pytest.raises(ProtocolError):
        split(bytes(128 * 255 + 1), ref=0, **PORTS)
    assert len(split(bytes(128 * 255), ref=0, **PORTS)) == 255


def test_reassembles_out_of_order_and_ignores_duplicates():
    payload = bytes(range(200)) * 3
    parts = split(payload, ref=7, **PORTS)
    r = Reassembler()
    order = [2, 0, 2, 4, 1, 0]
    assert all(r.feed("+491", parts[i], now=t) is None for t, i in enumerate(order))
    done = r.feed("+491", parts[3], now=9.0)
    assert done == Completed(WAP_PUSH_PORT, payload, "+491", WAP_PUSH_SRC_PORT)
    assert r.pending == 0
    assert (r.stats.completed, r.stats.duplicates) == (1, 2)


def test_single_part_with_only_port_ie_completes_at_once():
    r = Reassembler()
    (part,) = split(b"hello", ref=0, **PORTS)
    assert r.feed("+1", part, now=0.0) == Completed(WAP_PUSH_PORT, b"hello", "+1",
                                                    WAP_PUSH_SRC_PORT)
    no_port = encode_udh([Concat(5, 1, 1).to_ie()]) + b"bare"
    assert r.feed("+1", no_port, now=0.0) == Completed(None, b"bare", "+1", None)


def test_same_ref_from_two_originators_does_not_mix():
    a = split(b"A" * 300, ref=1, **PORTS)
    b = split(b"B" * 300, ref=1, **PORTS)
    r = Reassembler()
    for pa, pb in zip(a[:-1], b[:-1]):
        assert r.feed("alice", pa, 0.0) is None and r.feed("bob", pb, 0.0) is None
    assert r.feed("bob", b[-1], 1.0).payload == b"B" * 300
    assert r.feed("alice", a[-1], 1.0).payload == b"A" * 300


def test_inconsistent_part_is_counted_rejected_and_pending_kept():
    parts = split(bytes(300), ref=9, **PORTS)            # 3 parts
    r = Reassembler()
    r.feed("+1", parts[0], 0.0)
    forged = encode_udh([Ports(WAP_PUSH_PORT, WAP_PUSH_SRC_PORT).to_ie(),
                         Concat(9, 5, 2).to_ie()]) + b"evil"
    with pytest.raises(DecodeError) as info:
        r.feed("+1", forged, 0.5)
    assert info.value.what == "concat" and r.stats.inconsistent == 1
    other_port = encode_udh([Ports(9999, 1).to_ie(), Concat(9, 3, 2).to_ie()]) + b"evil"
    with pytest.raises(DecodeError):
        r.feed("+1", other_port, 0.5)
    assert r.stats.inconsistent == 2
    assert r.feed("+1", parts[1], 1.0) is None
    assert r.feed("+1", parts[2], 1.0).payload == bytes(300)


def test_malformed_udh_raises_decode_error():
    with pytest.raises(DecodeError):
        Reassembler().feed("+1", bytes.fromhex("050003010203"), 0.0)


def test_expire_drops_incomplete_messages_by_age_of_first_part():
    r = Reassembler()
    r.feed("a", split(bytes(300), ref=1, **PORTS)[0], now=0.0)
    r.feed("b", split(bytes(300), ref=2, **PORTS)[0], now=5.0)
    r.feed("a", split(bytes(300), ref=1, **PORTS)[1], now=9.0)   # activity does not extend
    assert r.expire(now=10.0, timeout=10.0) == [("a", 1)]
    assert r.expire(now=14.0, timeout=10.0) == []
    assert r.expire(now=15.0, timeout=10.0) == [("b", 2)]
    assert r.pending == 0 and r.stats.expired == 2


def test_memory_bound_drops_the_oldest_pending_message():
    r = Reassembler(max_pending=2)
    firsts = {ref: split(bytes(300), ref=ref, **PORTS) for ref in (1, 2, 3)}
    for t, ref in enumerate((1, 2, 3)):
        r.feed("x", firsts[ref][0], float(t))
    assert r.pending == 2 and r.stats.evicted == 1
    assert r.feed("x", firsts[1][1], 3.0) is None          # ref 1 restarted, evicting ref 2
    assert r.stats.evicted == 2
    assert r.feed("x", firsts[3][1], 4.0) is None
    assert r.feed("x", firsts[3][2], 4.0).payload == bytes(300)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=1200), st.integers(0, 255), st.randoms(use_true_random=False))
def test_round_trip_any_order(payload, ref, rnd):
    parts = split(payload, ref=ref, **PORTS)
    rnd.shuffle(parts)
    if len(parts) > 1:
        parts.insert(1, parts[0])                          # a duplicate before completion
    r = Reassembler()
    results = [r.feed("o", p, 0.0) for p in parts]
    done = [x for x in results if x is not None]
    assert len(done) == 1 and done[0].payload == payload and r.pending == 0


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=30), max_size=8))
def test_fuzz_feed_decodes_or_raises_decode_error(chunks):
    r = Reassembler(max_pending=3)
    for chunk in chunks:
        try:
            r.feed("f", chunk, 0.0)
        except DecodeError:
            pass
    assert r.pending <= 3
