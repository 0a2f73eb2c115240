"""The fake ECDHE-PSK server of the fake-bootstrap-server attack (sim/agents/adversary/
dtls_fake_server.py) against real clients: Mbed TLS (network/lwm2m/dtls.py) in memory and
``openssl s_client -dtls1_2`` over 127.0.0.1 UDP. The client takes the attacker's flight and sends
its ClientKeyExchange and Finished; with the ECDH secret that Finished is an offline oracle for
the PIN (RFC 5489 §2, seed 004 §7.1 method 2), without it there is none."""
from __future__ import annotations

import random
import select
import shutil
import socket
import subprocess
import time

import pytest

from dmsim.base.errors import DecodeError
from dmsim.network.lwm2m import dtls, dtls_policy
from dmsim.network.lwm2m import dtls_records as wire
from dmsim.network.lwm2m.dtls_policy import PskCredential
from dmsim.sim.agents.adversary import dtls_hello, dtls_offline as off
from dmsim.sim.agents.adversary import dtls_fake_server as fake

IDENTITY = b"urn:imsi:001010000000042"
ECDHE_PSK = dtls_policy.ECDHE_PSK_AES_128_CBC_SHA256.code


def pin_client(pin: str = "0042") -> dtls.DtlsEndpoint:
    """A PIN bootstrap client as dmsim's devices run it (ECDHE-PSK only, seed 004 §7.1 method 2)."""
    return dtls.DtlsEndpoint(dtls.psk_client_config(IDENTITY, pin.encode(), entropy="low"))


def exchange(client, server, rounds=6, tamper=lambda d: d):
    """Move datagrams client -> fake server -> client until quiet; return (up, down) datagrams."""
    ups, downs = [], []
    for _ in range(rounds):
        up = client.datagrams_to_send()
        down = [a for d in up for a in server.receive(tamper(d))]
        for d in down:
            client.receive_datagram(d)
        ups += up
        downs += down
        if not up and not down:
            break
    return ups, downs


def messages(datagrams):
    """The (record seq, msg_type, message_seq, body) of the epoch-0 handshake messages in ``datagrams``."""
    return [(r.seq, f.msg_type, f.message_seq, f.body) for d in datagrams for r in wire.split_records(d)
            if r.epoch == 0 and r.content_type == wire.CT_HANDSHAKE for f in wire.split_handshake(r.fragment)]


def test_a_real_mbedtls_client_takes_the_fake_flight_and_its_finished_gives_the_pin():
    client, server = pin_client("7305"), fake.FakeEcdhePskServer(random.Random(1).randbytes)
    ups, downs = exchange(client, server)
    # the client answered: ClientKeyExchange, ChangeCipherSpec and its encrypted Finished (epoch 1)
    records = [r for d in ups[1:] for r in wire.split_records(d)]
    assert [(r.content_type, r.epoch) for r in records] == [(22, 0), (20, 0), (22, 1)]
    assert client.state == "handshake" and client.suite == dtls_policy.ECDHE_PSK_AES_128_CBC_SHA256
    hs = server.handshake
    assert hs.suite == ECDHE_PSK and hs.identity == IDENTITY
    assert hs.extended_master_secret and hs.encrypt_then_mac and len(server.shared_secret) == 32
    oracle = server.oracle()
    assert oracle.check(b"7305") and not oracle.check(b"7304")
    assert off.search(oracle, off.pins(4, start=7000)) == ("7305", 306)


def test_without_the_ecdh_secret_the_same_finished_is_no_oracle():
    client, server = pin_client("7305"), fake.FakeEcdhePskServer(random.Random(2).randbytes)
    exchange(client, server)
    with pytest.raises(ValueError, match="ECDH shared secret"):
        off.GuessOracle(server.handshake)  # what a passive observer of the same handshake has
    wrong = bytes(32)
    assert off.search(off.GuessOracle(server.handshake, other_secret=wrong), off.pins(4)) == (None, 10_000)


@pytest.mark.parametrize("decline", [{off.EXT_EXTENDED_MASTER_SECRET}, {off.EXT_ENCRYPT_THEN_MAC},
                                     {off.EXT_EXTENDED_MASTER_SECRET, off.EXT_ENCRYPT_THEN_MAC,
                                      fake.EXT_RENEGOTIATION_INFO, fake.EXT_EC_POINT_FORMATS}],
                         ids=["no-ems", "no-etm", "no-extensions"])
def test_the_oracle_follows_what_the_server_echoed(decline):
    """A server that does not echo the extended master secret gets the RFC 5246 master secret,
    one that does not echo encrypt-then-MAC gets MAC-then-encrypt CBC records (RFC 5246
    §6.2.3.2): the real client's Finished tests the PIN on both paths of the oracle."""
    client = pin_client("0042")
    server = fake.FakeEcdhePskServer(random.Random(3).randbytes, decline=frozenset(decline), hint=b"bs")
    exchange(client, server)
    hs = server.handshake
    assert hs.extended_master_secret == (off.EXT_EXTENDED_MASTER_SECRET not in decline)
    assert hs.encrypt_then_mac == (off.EXT_ENCRYPT_THEN_MAC not in decline)
    assert off.search(server.oracle(), off.pins(4)) == ("0042", 43)


def test_the_flight_is_framed_as_a_dtls_1_2_server_frames_it():
    client, server = pin_client(), fake.FakeEcdhePskServer(random.Random(4).randbytes, hint=b"lwm2m-bs")
    hello = client.datagrams_to_send()[0]
    flight = server.receive(hello)
    found = messages(flight)
    assert [(seq, kind, mseq) for seq, kind, mseq, _ in found] == [(0, 2, 0), (1, 12, 1), (2, 14, 2)]
    sh, ske, shd = (body for *_, body in found)
    assert sh[:2] == b"\xfe\xfd" and sh[34] == 0 and int.from_bytes(sh[35:37], "big") == ECDHE_PSK
    assert off.hello_extensions(sh) == {0xFF01, 0x0016, 0x0017, 0x000B}  # session_ticket (0x23) not echoed
    assert ske[:10] == b"\x00\x08lwm2m-bs" and ske[10:13] == b"\x03\x00\x17" and ske[13] == 65 and ske[14] == 4
    assert len(ske) == 14 + 65 and shd == b""


def test_after_a_hello_verify_request_the_flight_takes_the_second_hellos_message_seq():
    """The cookie round (RFC 6347 §4.2.1) was someone else's: the ClientHello with the cookie has
    message_seq 1, and the server's messages go on from it."""
    client = pin_client("9999")
    real = dtls.DtlsServer(dtls.psk_server_config({IDENTITY: PskCredential(IDENTITY, b"9999", "low")}))
    real.receive_datagram(b"a:1", client.datagrams_to_send()[0])
    for _address, hvr in real.datagrams_to_send():
        client.receive_datagram(hvr)
    server = fake.FakeEcdhePskServer(random.Random(5).randbytes)
    ups, downs = exchange(client, server)
    assert wire.client_hello_of(ups[0]).cookie and [m[2] for m in messages(downs)] == [1, 2, 3]
    assert off.search(server.oracle(), off.pins(4, start=9990)) == ("9999", 10)


def test_a_retransmitted_hello_gets_the_flight_again_under_new_record_numbers_a_bounded_number_of_times():
    client, server = pin_client(), fake.FakeEcdhePskServer(random.Random(6).randbytes)
    hello = client.datagrams_to_send()[0]
    first, again = server.receive(hello), server.receive(hello)
    assert [m[1:] for m in messages(first)] == [m[1:] for m in messages(again)]
    assert [m[0] for m in messages(again)] == [3, 4, 5]
    answers = [server.receive(hello) for _ in range(fake.MAX_ANSWERS)]
    assert sum(1 for a in answers if a) == fake.MAX_ANSWERS - 2 and server.answers == fake.MAX_ANSWERS
    other = pin_client().datagrams_to_send()[0]  # another association (another client random)
    assert fake.FakeEcdhePskServer(random.Random(6).randbytes).receive(other) and not server.receive(other)


def test_the_client_never_completes_with_the_fake_server():
    """The fake server cannot send its Finished without the PIN: the client re-sends its last
    flight on its timer and gives up (RFC 6347 §4.2.4)."""
    client, server = pin_client(), fake.FakeEcdhePskServer(random.Random(7).randbytes)
    exchange(client, server)
    events = []
    while client.state == "handshake":
        events += client.on_timeout()
        assert not [a for d in client.datagrams_to_send() for a in server.receive(d)]
    assert client.state == "failed" and [e.reason for e in events] == ["timeout"]


def test_a_client_without_ecdhe_psk_or_secp256r1_gets_no_answer():
    plain = dtls.DtlsEndpoint(dtls.psk_client_config(IDENTITY, bytes(16), entropy="high"))
    server = fake.FakeEcdhePskServer(random.Random(8).randbytes)
    assert server.receive(plain.datagrams_to_send()[0]) == [] and "no TLS_ECDHE_PSK" in server.refusal
    groups = {fake.EXT_SUPPORTED_GROUPS: b"\x00\x04\x00\x18\x00\x19"}
    assert "secp256r1" in fake.curve_refusal(groups)
    assert "uncompressed" in fake.curve_refusal({fake.EXT_EC_POINT_FORMATS: b"\x01\x01"})
    assert fake.curve_refusal({fake.EXT_SUPPORTED_GROUPS: b"\x00\x02\x00\x17",
                               fake.EXT_EC_POINT_FORMATS: b"\x01\x00"}) is None


def test_hostile_bytes_and_an_off_curve_point_give_nothing():
    server = fake.FakeEcdhePskServer(random.Random(9).randbytes)
    for junk in (b"", b"\x16\xfe\xfd", wire.encode_record(22, 0, 0, b"\x01\x00\x00\x05\x00"), bytes(200)):
        assert server.receive(junk) == []
    client = pin_client()
    bad = bytearray()

    def off_curve(datagram: bytes) -> bytes:
        records = wire.split_records(datagram)
        if records[0].epoch or records[0].fragment[0] != wire.HS_CLIENT_KEY_EXCHANGE:
            return datagram
        raw = bytearray(datagram)
        raw[records[0].offset + 13 + len(records[0].fragment) - 1] ^= 1  # the point's last byte of y
        bad.extend(raw)
        return bytes(raw)
    exchange(client, server, tamper=off_curve)
    assert bad and server.handshake is not None and server.shared_secret is None
    assert "not on the curve" in server.refusal and server.oracle() is None
    for cut in (b"", b"\x00", b"\x00\x02ab", b"\x00\x00\x05\x04"):
        with pytest.raises(DecodeError):
            fake.client_point(cut)
    assert fake.client_point(b"\x00\x01a\x02\x04\x05") == b"\x04\x05"
    with pytest.raises(DecodeError):
        dtls_hello.client_hello_extensions(b"\xfe\xfd" + bytes(32) + b"\x00\x00\x00\x02")


# --- an independent client: openssl s_client ---------------------------------------------------------

def test_openssl_s_client_takes_the_fake_flight_and_its_finished_gives_the_pin():
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("openssl is required for the DTLS interop tests (apt-get install openssl)")
    server = fake.FakeEcdhePskServer(random.Random(10).randbytes)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        proc = subprocess.Popen([openssl, "s_client", "-dtls1_2", "-connect", f"127.0.0.1:{sock.getsockname()[1]}",
                                 "-psk", b"2580".hex(), "-psk_identity", IDENTITY.decode(),
                                 "-cipher", "ECDHE-PSK-AES128-CBC-SHA256"],
                                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 5
            while server.handshake is None and time.monotonic() < deadline:
                if select.select([sock], [], [], 0.1)[0]:
                    data, peer = sock.recvfrom(65536)
                    for answer in server.receive(data):
                        sock.sendto(answer, peer)
        finally:
            proc.kill()
            proc.wait(timeout=5)
            proc.stdin.close()
    hs = server.handshake
    assert hs is not None and hs.identity == IDENTITY and hs.extended_master_secret
    assert off.search(server.oracle(), off.pins(4, start=2500)) == ("2580", 81)
