"""The CoAP message layer (RFC 7252 §4, §5.2-§5.3): the retransmission schedule, ACK/RST matching,
duplicate detection with a bounded cache, separate responses matched by token, NSTART = 1,
observations, and refusals of what does not match (each also as a test that the rule holds)."""
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dmsim.network.coap.message import (
    Code, Message, Option, Type, decode, encode, request, reset, response, uint_value,
)
from dmsim.network.coap.reliability import (
    Acknowledged, Endpoint, Ignored, Parameters, QueueFullError, RequestReceived, Reset, ResponseReceived,
    Timeout, Transmit,
)


def scripted(fraction_bytes: bytes = b"\0\0\0\0", seed: int = 1):
    """A randbytes whose 4-byte draws (the initial ACK timeout) are ``fraction_bytes``."""
    rng = random.Random(seed)
    return lambda n: fraction_bytes if n == 4 else rng.randbytes(n)


def sent(events) -> list[bytes]:
    return [e.datagram for e in events if isinstance(e, Transmit)]


def others(events) -> list:
    return [e for e in events if not isinstance(e, Transmit)]


def get(path="/3/0", type=Type.CON):
    return request(Code.GET, path, message_id=0, type=type)


# -- Message IDs and tokens (§4.4, §5.3.1) ------------------------------------------------------

def test_message_ids_run_on_from_the_given_start_and_wrap():
    ep = Endpoint(scripted(), message_id=65534)
    assert [ep.next_message_id() for _ in range(3)] == [65534, 65535, 0]


def test_message_id_start_comes_from_randbytes():
    draws = iter([b"\x12\x34"])
    ep = Endpoint(lambda n: next(draws) if n == 2 else bytes(n))
    assert ep.next_message_id() == 0x1234


def test_requests_get_fresh_tokens_and_their_own_message_ids():
    ep = Endpoint(scripted(), message_id=100, queue_capacity=4)
    t1, e1 = ep.request(get(), 0.0)
    t2, e2 = ep.request(get(type=Type.NON), 0.0)
    assert t1 != t2 and len(t1) == 8
    first, second = decode(sent(e1)[0]), decode(sent(e2)[0])
    assert (first.message_id, first.token, second.message_id, second.token) == (100, t1, 101, t2)


def test_a_token_in_use_is_refused():
    ep = Endpoint(scripted())
    token, _ = ep.request(get(), 0.0)
    with pytest.raises(ValueError):
        ep.request(request(Code.GET, "/1", message_id=0, token=token, type=Type.NON), 0.0)


# -- retransmission (§4.2, §4.8) ----------------------------------------------------------------

@pytest.mark.parametrize("fraction, initial", [(b"\0\0\0\0", 2.0), (b"\x80\0\0\0", 2.5),
                                               (b"\xff\xff\xff\xff", 3.0 - 2 ** -32)])
def test_con_is_retransmitted_four_times_with_doubling_then_times_out(fraction, initial):
    ep = Endpoint(scripted(fraction))
    token, events = ep.request(get(), 10.0)
    (first,) = sent(events)
    times = [10.0]
    while (due := ep.next_timeout()) is not None:
        assert ep.on_timeout(due - 1e-6) == []  # nothing before its time
        events = ep.on_timeout(due)
        times.append(due)
        if not sent(events):
            break
        assert sent(events) == [first]
    assert [round(b - a, 9) for a, b in zip(times, times[1:])] == [round(initial * 2 ** i, 9) for i in range(5)]
    assert others(events) == [Timeout(token, decode(first).message_id)]
    assert times[-1] == pytest.approx(10.0 + 31 * initial) and ep.next_timeout() is None
    assert ep.open_requests == ()


def test_initial_timeout_stays_within_ack_timeout_and_its_random_factor():
    for seed in range(50):
        ep = Endpoint(random.Random(seed).randbytes)
        ep.request(get(), 0.0)
        assert 2.0 <= ep.next_timeout() < 3.0


def test_empty_ack_stops_retransmission_and_the_separate_response_matches_by_token():
    ep = Endpoint(scripted())
    token, events = ep.request(get(), 0.0)
    req = decode(sent(events)[0])
    assert ep.receive(encode(Message(Type.ACK, Code.EMPTY, req.message_id)), 1.0) == [
        Acknowledged(token, req.message_id)]
    assert ep.next_timeout() == 1.0 + 247.0  # waiting for the separate response, no retransmission
    assert ep.on_timeout(5.0) == []
    separate = Message(Type.CON, Code.CONTENT, 0x7777, token, payload=b"42")
    events = ep.receive(encode(separate), 6.0)
    assert sent(events) == [b"\x60\x00\x77\x77"]  # the Empty ACK of the CON response (§5.2.2)
    assert others(events) == [ResponseReceived(token, separate)]
    assert ep.open_requests == () and ep.next_timeout() is None


def test_piggybacked_response_ends_the_exchange():
    ep = Endpoint(scripted())
    token, events = ep.request(get(), 0.0)
    req = decode(sent(events)[0])
    ack = response(req, Code.CONTENT, payload=b"x")
    assert ep.receive(encode(ack), 0.5) == [ResponseReceived(token, ack)]
    assert ep.next_timeout() is None and ep.open_requests == ()
    assert others(ep.receive(encode(ack), 0.6)) == [Ignored("unmatched_ack", req.message_id)]


def test_ack_with_another_token_is_refused_and_retransmission_goes_on():
    ep = Endpoint(scripted())
    token, events = ep.request(get(), 0.0)
    req = decode(sent(events)[0])
    forged = Message(Type.ACK, Code.CONTENT, req.message_id, b"other", payload=b"evil")
    assert ep.receive(encode(forged), 0.5) == [Ignored("token_mismatch", req.message_id)]
    assert sent(ep.on_timeout(2.0)) == [encode(req)]


def test_ack_of_another_message_id_is_ignored():
    ep = Endpoint(scripted())
    _, events = ep.request(get(), 0.0)
    mid = decode(sent(events)[0]).message_id
    assert ep.receive(encode(Message(Type.ACK, Code.EMPTY, (mid + 1) & 0xFFFF)), 0.5)[0].reason == "unmatched_ack"
    assert ep.next_timeout() == 2.0


def test_ack_carrying_a_request_is_refused():
    ep = Endpoint(scripted())
    _, events = ep.request(get(), 0.0)
    req = decode(sent(events)[0])
    bad = Message(Type.ACK, Code.GET, req.message_id, req.token)
    assert ep.receive(encode(bad), 0.5) == [Ignored("bad_ack", req.message_id)]


def test_rst_ends_the_request():
    ep = Endpoint(scripted())
    token, events = ep.request(get(), 0.0)
    req = decode(sent(events)[0])
    assert ep.receive(encode(reset(req)), 0.5) == [Reset(token, req.message_id)]
    assert ep.next_timeout() is None and ep.open_requests == ()


def test_rst_of_a_non_request_ends_it_and_a_stray_rst_is_ignored():
    ep = Endpoint(scripted())
    token, events = ep.request(get(type=Type.NON), 0.0)
    req = decode(sent(events)[0])
    assert ep.next_timeout() == 247.0  # no retransmission of a NON, only the response wait
    assert ep.receive(encode(reset(req)), 0.5) == [Reset(token, req.message_id)]
    assert ep.open_requests == ()
    assert ep.receive(encode(reset(req)), 0.6) == [Ignored("unmatched_rst", req.message_id)]


def test_non_empty_rst_is_ignored():
    ep = Endpoint(scripted())
    _, events = ep.request(get(), 0.0)
    mid = decode(sent(events)[0]).message_id
    assert ep.receive(encode(Message(Type.RST, Code.CONTENT, mid, b"t")), 0.5) == [Ignored("bad_rst", mid)]
    assert ep.open_requests != ()


def test_ping_is_answered_by_reset_and_ends_in_reset():
    client, server = Endpoint(scripted(seed=1)), Endpoint(scripted(seed=2))
    (datagram,) = sent(client.ping(0.0))
    assert decode(datagram).type == Type.CON and decode(datagram).is_empty
    (answer,) = server.receive(datagram, 0.1)
    assert decode(answer.datagram) == reset(decode(datagram))
    assert client.receive(answer.datagram, 0.2) == [Reset(b"", decode(datagram).message_id)]


# -- NSTART = 1 (§4.7) --------------------------------------------------------------------------

def test_second_con_waits_for_the_first_and_the_queue_is_bounded():
    ep = Endpoint(scripted(), queue_capacity=2)
    t1, e1 = ep.request(get(), 0.0)
    t2, e2 = ep.request(get("/1/0"), 0.0)
    t3, e3 = ep.request(get("/5/0"), 0.0)
    assert len(sent(e1)) == 1 and e2 == [] and e3 == []
    with pytest.raises(QueueFullError):
        ep.request(get("/4/0"), 0.0)
    nons = [ep.request(get(type=Type.NON), 0.0)[1] for _ in range(2)]
    assert all(len(sent(e)) == 1 for e in nons)  # NONs are not held back
    first = decode(sent(e1)[0])
    events = ep.receive(encode(response(first, Code.CONTENT)), 1.0)
    assert others(events)[0].request_token == t1
    assert decode(sent(events)[0]).token == t2 and decode(sent(events)[0]).path == "/1/0"


def test_open_requests_are_bounded():
    ep = Endpoint(scripted(), max_requests=3)
    for _ in range(3):
        ep.request(get(type=Type.NON), 0.0)
    with pytest.raises(QueueFullError):
        ep.request(get(type=Type.NON), 0.0)


def test_cancel_stops_retransmission_and_sends_the_next():
    ep = Endpoint(scripted())
    t1, _ = ep.request(get(), 0.0)
    _, e2 = ep.request(get("/1/0"), 0.0)
    events = ep.cancel(t1, 0.5)
    assert decode(sent(events)[0]).path == "/1/0"
    assert t1 not in ep.open_requests


# -- duplicates (§4.5) --------------------------------------------------------------------------

def test_duplicate_con_gets_the_same_reply_and_is_delivered_once():
    server = Endpoint(scripted())
    req = request(Code.GET, "/3/0", message_id=0x4242, token=b"tok")
    (delivered,) = server.receive(encode(req), 0.0)
    assert delivered == RequestReceived(req)
    assert server.receive(encode(req), 1.0) == [Ignored("duplicate", 0x4242)]  # not answered yet: no reply
    (ack,) = server.respond(req, response(req, Code.CONTENT, payload=b"v"), 1.5)
    assert decode(ack.datagram) == Message(Type.ACK, Code.CONTENT, 0x4242, b"tok", (), b"v")
    again = server.receive(encode(req), 3.0)
    assert again == [Transmit(ack.datagram), Ignored("duplicate", 0x4242)]


def test_duplicate_non_is_dropped_silently():
    server = Endpoint(scripted())
    req = request(Code.GET, "/3/0", message_id=9, token=b"t", type=Type.NON)
    assert server.receive(encode(req), 0.0) == [RequestReceived(req)]
    assert server.receive(encode(req), 1.0) == [Ignored("duplicate", 9)]


def test_a_message_id_is_new_again_after_its_lifetime():
    server = Endpoint(scripted())
    con = request(Code.GET, "/3/0", message_id=1, token=b"a")
    non = request(Code.GET, "/3/0", message_id=2, token=b"b", type=Type.NON)
    server.receive(encode(con), 0.0)
    server.receive(encode(non), 0.0)
    assert server.receive(encode(non), 144.9) == [Ignored("duplicate", 2)]
    assert server.receive(encode(non), 145.0) == [RequestReceived(non)]  # NON_LIFETIME
    assert server.receive(encode(con), 246.9) == [Ignored("duplicate", 1)]
    assert server.receive(encode(con), 247.0) == [RequestReceived(con)]  # EXCHANGE_LIFETIME


def test_dedup_cache_stays_bounded_under_a_flood_of_message_ids():
    server = Endpoint(scripted(), dedup_capacity=64)
    for mid in range(5000):
        events = server.receive(encode(Message(Type.NON, Code.GET, mid, b"f")), mid * 0.001)
        assert len(events) == 1 and isinstance(events[0], RequestReceived)
        assert server.dedup_entries <= 64
    assert server.dedup_entries == 64
    assert server.receive(encode(Message(Type.NON, Code.GET, 4999, b"f")), 5.0) == [Ignored("duplicate", 4999)]
    assert server.receive(encode(Message(Type.NON, Code.GET, 4936, b"f")), 5.0) == [Ignored("duplicate", 4936)]
    # the documented price: the least recently used ID was dropped and counts as new
    assert isinstance(server.receive(encode(Message(Type.NON, Code.GET, 0, b"f")), 5.0)[0], RequestReceived)


def test_duplicate_hit_keeps_an_entry_from_eviction():
    server = Endpoint(scripted(), dedup_capacity=3)
    for mid in (1, 2, 3):
        server.receive(encode(Message(Type.NON, Code.GET, mid, b"f")), 0.0)
    server.receive(encode(Message(Type.NON, Code.GET, 1, b"f")), 0.1)  # 1 is now the most recent
    server.receive(encode(Message(Type.NON, Code.GET, 4, b"f")), 0.2)  # evicts 2
    assert server.receive(encode(Message(Type.NON, Code.GET, 1, b"f")), 0.3)[0].reason == "duplicate"
    assert isinstance(server.receive(encode(Message(Type.NON, Code.GET, 2, b"f")), 0.4)[0], RequestReceived)


def test_duplicate_separate_response_is_acked_again_not_delivered_twice():
    ep = Endpoint(scripted())
    token, events = ep.request(get(), 0.0)
    req = decode(sent(events)[0])
    ep.receive(encode(Message(Type.ACK, Code.EMPTY, req.message_id)), 0.5)
    separate = encode(Message(Type.CON, Code.CONTENT, 0x1000, token, payload=b"x"))
    first = ep.receive(separate, 1.0)
    assert isinstance(others(first)[0], ResponseReceived)
    assert ep.receive(separate, 2.0) == [Transmit(sent(first)[0]), Ignored("duplicate", 0x1000)]


# -- responses by token (§5.2, §5.3.2) ----------------------------------------------------------

def test_response_with_unknown_token_is_rejected_with_rst():
    ep = Endpoint(scripted())
    stray = Message(Type.CON, Code.CONTENT, 0x2000, b"nobody", payload=b"x")
    assert ep.receive(encode(stray), 0.0) == [Transmit(encode(reset(stray))), Ignored("unknown_token", 0x2000)]
    non = Message(Type.NON, Code.CONTENT, 0x2001, b"nobody")
    assert sent(ep.receive(encode(non), 0.0)) == [encode(reset(non))]


def test_non_request_gets_a_non_response_matched_by_token():
    client, server = Endpoint(scripted(seed=1)), Endpoint(scripted(seed=2))
    token, events = client.request(get(type=Type.NON), 0.0)
    (received,) = server.receive(sent(events)[0], 0.1)
    answer = server.respond(received.message, Message(Type.NON, Code.CONTENT, 0, payload=b"v"), 0.2)
    reply = decode(sent(answer)[0])
    assert reply.type == Type.NON and reply.token == token and reply.message_id != received.message.message_id
    assert client.receive(sent(answer)[0], 0.3) == [ResponseReceived(token, reply)]


def test_separate_con_response_before_the_lost_ack_stops_retransmission():
    ep = Endpoint(scripted())
    token, events = ep.request(get(), 0.0)
    events = ep.receive(encode(Message(Type.CON, Code.CONTENT, 0x3000, token, payload=b"x")), 1.0)
    assert isinstance(others(events)[0], ResponseReceived)
    assert ep.next_timeout() is None and ep.on_timeout(100.0) == []


def test_request_waiting_for_a_separate_response_times_out():
    ep = Endpoint(scripted(), params=Parameters(response_timeout=30.0))
    token, events = ep.request(get(), 0.0)
    mid = decode(sent(events)[0]).message_id
    ep.receive(encode(Message(Type.ACK, Code.EMPTY, mid)), 1.0)
    assert ep.on_timeout(30.9) == []
    assert ep.on_timeout(31.0) == [Timeout(token, mid)]


def test_server_acknowledges_then_sends_a_separate_con_response_until_acked():
    server = Endpoint(scripted(), message_id=500)
    req = request(Code.POST, "/rd", message_id=0x10, token=b"reg")
    server.receive(encode(req), 0.0)
    (ack,) = server.acknowledge(req, 0.1)
    assert ack.datagram == b"\x60\x00\x00\x10"
    assert server.acknowledge(req, 0.2) == []
    events = server.respond(req, response(req, Code.CREATED), 5.0)
    separate = decode(sent(events)[0])
    assert (separate.type, separate.message_id, separate.token) == (Type.CON, 500, b"reg")
    assert server.receive(encode(req), 6.0) == [Transmit(ack.datagram), Ignored("duplicate", 0x10)]
    assert sent(server.on_timeout(server.next_timeout())) == [encode(separate)]
    assert server.receive(encode(Message(Type.ACK, Code.EMPTY, 500)), 9.0) == [Acknowledged(b"reg", 500)]
    assert server.next_timeout() is None


def test_respond_refuses_a_request_code():
    server = Endpoint(scripted())
    req = request(Code.GET, "/", message_id=1, token=b"t")
    with pytest.raises(ValueError):
        server.respond(req, Message(Type.ACK, Code.GET, 0), 0.0)


# -- observations (RFC 7641) --------------------------------------------------------------------

def test_observation_stays_open_for_notifications_until_cancelled():
    client, server = Endpoint(scripted(seed=1)), Endpoint(scripted(seed=2))
    observe = request(Code.GET, "/3/0/9", message_id=0, options=[(Option.OBSERVE, b"")])
    token, events = client.request(observe, 0.0)
    (received,) = server.receive(sent(events)[0], 0.1)
    first = server.respond(received.message, response(received.message, Code.CONTENT, payload=b"80",
                                                      options=[(Option.OBSERVE, uint_value(1))]), 0.2)
    assert others(client.receive(sent(first)[0], 0.3))[0].request_token == token
    assert client.open_requests == (token,) and client.next_timeout() is None
    note = server.notify(Message(Type.NON, Code.CONTENT, 0, token, ((Option.OBSERVE, b"\x02"),), b"79"), 10.0)
    assert others(client.receive(sent(note)[0], 10.1)) == [ResponseReceived(token, decode(sent(note)[0]))]
    assert client.cancel(token, 11.0) == []
    later = server.notify(Message(Type.CON, Code.CONTENT, 0, token, ((Option.OBSERVE, b"\x03"),), b"78"), 20.0)
    rejected = client.receive(sent(later)[0], 20.1)
    assert others(rejected) == [Ignored("unknown_token", decode(sent(later)[0]).message_id)]
    assert server.receive(sent(rejected)[0], 20.2) == [Reset(token, decode(sent(later)[0]).message_id)]


def test_plain_get_is_closed_by_its_response_even_with_an_observe_option_in_the_answer():
    ep = Endpoint(scripted())
    token, events = ep.request(get(), 0.0)
    req = decode(sent(events)[0])
    ep.receive(encode(response(req, Code.CONTENT, options=[(Option.OBSERVE, b"\x05")])), 0.1)
    assert ep.open_requests == ()


# -- refusals of what cannot be processed (§4.2, §4.3) ------------------------------------------

def test_malformed_con_is_rejected_with_rst_and_garbage_is_ignored():
    ep = Endpoint(scripted())
    events = ep.receive(b"\x40\x01\x12\x34\xf0", 0.0)
    assert sent(events) == [b"\x70\x00\x12\x34"] and others(events)[0].reason == "malformed"
    assert ep.receive(b"\x50\x01\x12\x35\xf0", 0.0)[0].reason == "malformed"  # a NON: no RST
    assert [e.reason for e in ep.receive(b"\x00", 0.0)] == ["malformed"]


def test_reserved_code_class_is_rejected():
    ep = Endpoint(scripted())
    con = Message(Type.CON, (1 << 5) | 1, 7, b"t")
    assert ep.receive(encode(con), 0.0) == [Transmit(encode(reset(con))), Ignored("reserved_class", 7)]
    assert ep.receive(encode(Message(Type.NON, (7 << 5), 8, b"t")), 0.0) == [Ignored("reserved_class", 8)]


def test_empty_non_is_ignored():
    ep = Endpoint(scripted())
    assert ep.receive(encode(Message(Type.NON, Code.EMPTY, 3)), 0.0) == [Ignored("empty_non", 3)]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=8), st.booleans())
def test_receive_never_raises_on_arbitrary_datagrams(datagrams, busy):
    ep = Endpoint(scripted(), dedup_capacity=4)
    if busy:
        ep.request(get(), 0.0)
    for i, data in enumerate(datagrams):
        for event in ep.receive(data, float(i)):
            assert not isinstance(event, Transmit) or decode(event.datagram).type in (Type.ACK, Type.RST)
    assert ep.dedup_entries <= 4


# -- two endpoints over a lossy link ------------------------------------------------------------

def test_lossy_link_exchange_completes_once():
    client, server = Endpoint(scripted(seed=1)), Endpoint(scripted(seed=2))
    drops = {0, 1, 3}  # the first request, its first retransmission, and the first ACK are lost
    count = 0
    delivered, results = [], []
    token, events = client.request(request(Code.PUT, "/1/0/1", message_id=0, payload=b"300"), 0.0)
    now = 0.0
    pending = [(client, server, d) for d in sent(events)]
    for _ in range(50):
        while pending:
            src, dst, data = pending.pop(0)
            count += 1
            if count - 1 in drops:
                continue
            for event in dst.receive(data, now):
                if isinstance(event, Transmit):
                    pending.append((dst, src, event.datagram))
                elif isinstance(event, RequestReceived):
                    delivered.append(event.message)
                    reply = server.respond(event.message, response(event.message, Code.CHANGED), now)
                    pending += [(server, client, d) for d in sent(reply)]
                elif dst is client:
                    results.append(event)
        due = client.next_timeout()
        if due is None:
            break
        now = due
        pending += [(client, server, d) for d in sent(client.on_timeout(now))]
    assert len(delivered) == 1 and count == 6  # request x3, ACK x2 (one lost), duplicate's ACK again
    assert [type(e) for e in results] == [ResponseReceived] and results[0].request_token == token
    assert results[0].message.code == Code.CHANGED and client.next_timeout() is None


# -- a core's whole messages (Endpoint.send) ----------------------------------------------------

def test_send_carries_a_cores_request_response_and_empty_ack():
    client, server = Endpoint(scripted(seed=1)), Endpoint(scripted(seed=2))
    req = request(Code.POST, "/rd", message_id=0, token=b"core-tok")
    out = client.send(req, 0.0)
    wire = decode(sent(out)[0])
    assert wire.token == b"core-tok" and wire.code == Code.POST  # the core's token kept for matching
    received = [e.message for e in server.receive(sent(out)[0], 0.1) if isinstance(e, RequestReceived)]
    assert server.send(Message(Type.ACK, Code.EMPTY, received[0].message_id), 0.1) == []  # Empty ACK dropped
    answer = server.send(response(received[0], Code.CREATED), 0.1, received[0])
    ack = decode(sent(answer)[0])
    assert ack.type == Type.ACK and ack.code == Code.CREATED and ack.message_id == wire.message_id  # piggybacked
    with pytest.raises(ValueError):
        server.send(response(received[0], Code.CHANGED), 0.2)  # a response needs its request
    with pytest.raises(ValueError):
        server.send(response(get(), Code.CHANGED), 0.2, received[0])  # ... the one it answers (same token)
