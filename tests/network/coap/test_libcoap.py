"""Our CoAP codec, message layer and link format against libcoap (libcoap3-bin), over UDP on
127.0.0.1: we ask coap-server-notls (ping, /.well-known/core, a separate response from /async,
a NON request) and answer coap-client-notls (piggybacked, separate and NON responses).
Skipped without the binaries unless DMSIM_REQUIRE_LIBCOAP=1, then failed."""
import contextlib
import os
import random
import select
import shutil
import socket
import subprocess
import time

import pytest

from dmsim.network.coap import link_format
from dmsim.network.coap.message import (
    Code, ContentFormat, Message, Type, decode, encode, ping, request, reset, response,
)
from dmsim.network.coap.reliability import (
    Acknowledged, Endpoint, RequestReceived, ResponseReceived, Transmit,
)

SERVER = shutil.which("coap-server-notls")
CLIENT = shutil.which("coap-client-notls")
TIMEOUT = 5.0
LOCAL = "127.0.0.1"


def need(binary: str | None, name: str) -> str:
    if binary is None:
        if os.environ.get("DMSIM_REQUIRE_LIBCOAP") == "1":
            pytest.fail(f"{name} is not installed (DMSIM_REQUIRE_LIBCOAP=1 requires it)", pytrace=False)
        pytest.skip(f"needs {name} (Debian package libcoap3-bin)")
    return binary


def free_port() -> int:
    """A port free for UDP and TCP both (coap-server listens on both)."""
    for _ in range(20):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((LOCAL, 0))
            port = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((LOCAL, port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port")


@contextlib.contextmanager
def udp_socket():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((LOCAL, 0))
    try:
        yield sock
    finally:
        sock.close()


def ask(sock, peer, datagram: bytes) -> Message:
    """Send one datagram and decode the first answer from ``peer`` with our decoder."""
    sock.sendto(datagram, peer)
    deadline = time.monotonic() + TIMEOUT
    while (left := deadline - time.monotonic()) > 0:
        if select.select([sock], [], [], left)[0]:
            data, addr = sock.recvfrom(65535)
            if addr == peer:
                return decode(data)
    raise AssertionError(f"no answer from {peer} in {TIMEOUT} s")


def pump(ep: Endpoint, sock, peer, events, done, *, on_event=lambda event, now: [], idle=lambda now: []):
    """Drive ``ep`` over ``sock`` with the monotonic clock until ``done(delivered)``: Transmit
    events go to ``peer`` (learnt from the first datagram if None), the other events are
    collected and handed to ``on_event``, whose returned events are handled the same way."""
    delivered: list = []

    def handle(evts, now):
        for event in evts:
            if isinstance(event, Transmit):
                sock.sendto(event.datagram, peer)
            else:
                delivered.append(event)
                handle(on_event(event, now), now)

    handle(events, time.monotonic())
    deadline = time.monotonic() + TIMEOUT
    while not done(delivered):
        now = time.monotonic()
        assert now < deadline, f"no end within {TIMEOUT} s: {delivered}"
        due = ep.next_timeout()
        wait = 0.05 if due is None else min(0.05, max(0.0, due - now))
        if select.select([sock], [], [], wait)[0]:
            data, addr = sock.recvfrom(65535)
            if peer is None:
                peer = addr
            if addr == peer:
                handle(ep.receive(data, time.monotonic()), time.monotonic())
        now = time.monotonic()
        if (due := ep.next_timeout()) is not None and due <= now:
            handle(ep.on_timeout(now), now)
        handle(idle(now), now)
    return delivered


def got_response(delivered) -> bool:
    return any(isinstance(e, ResponseReceived) for e in delivered)


# -- we ask coap-server-notls -------------------------------------------------------------------

@pytest.fixture
def libcoap_server():
    binary = need(SERVER, "coap-server-notls")
    port = free_port()
    proc = subprocess.Popen([binary, "-A", LOCAL, "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    peer = (LOCAL, port)
    try:
        with udp_socket() as probe:  # ready when it answers a ping
            deadline = time.monotonic() + TIMEOUT
            while True:
                probe.sendto(encode(ping(1)), peer)
                if select.select([probe], [], [], 0.1)[0]:
                    probe.recvfrom(65535)
                    break
                assert time.monotonic() < deadline and proc.poll() is None, "coap-server-notls did not start"
        # each test talks from a socket of its own: libcoap sends at most one RST a second per peer
        with udp_socket() as sock:
            yield sock, peer
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_libcoap_answers_our_ping_with_a_reset(libcoap_server):
    sock, peer = libcoap_server
    answer = ask(sock, peer, encode(ping(0xBEEF)))
    assert answer == reset(ping(0xBEEF))


def test_libcoap_serves_well_known_core_to_our_get(libcoap_server):
    sock, peer = libcoap_server
    get = request(Code.GET, "/.well-known/core", message_id=0x0102, token=b"wk-1")
    answer = ask(sock, peer, encode(get))
    assert (answer.type, answer.code, answer.message_id, answer.token) == (Type.ACK, Code.CONTENT, 0x0102, b"wk-1")
    assert answer.content_format == ContentFormat.LINK_FORMAT
    links = {link.target: link for link in link_format.decode(answer.payload)}
    assert {"/", "/time"} <= set(links)
    assert links["/time"].get("if") == "clock" and links["/time"].has("obs") and links["/"].get("ct") == "0"


def test_our_endpoint_gets_libcoaps_separate_response(libcoap_server):
    sock, peer = libcoap_server
    ep = Endpoint(random.Random(7).randbytes)
    token, events = ep.request(request(Code.GET, "/async", message_id=0, query=["1"]), time.monotonic())
    delivered = pump(ep, sock, peer, events, got_response)
    acked, answer = delivered
    assert isinstance(acked, Acknowledged) and acked.token == token  # the Empty ACK first (§5.2.2)
    assert answer.request_token == token and answer.message.type == Type.CON
    assert answer.message.code == Code.CONTENT and answer.message.payload == b"done"
    assert ep.open_requests == () and ep.next_timeout() is None


def test_our_non_request_gets_libcoaps_non_response(libcoap_server):
    sock, peer = libcoap_server
    ep = Endpoint(random.Random(8).randbytes)
    token, events = ep.request(request(Code.GET, "/", message_id=0, type=Type.NON), time.monotonic())
    (answer,) = pump(ep, sock, peer, events, got_response)
    assert answer.request_token == token and answer.message.type == Type.NON
    assert b"libcoap" in answer.message.payload


# -- coap-client-notls asks us ------------------------------------------------------------------

DEVICE = b"dmsim LwM2M device 3/0"


def run_client(args, *, on_request, idle=lambda ep, now: []):
    """Run ``coap-client-notls <args> coap://127.0.0.1:PORT/3/0`` against an Endpoint on a
    socket of ours; ``on_request(ep, message, now)`` answers. Return (stdout, events)."""
    binary = need(CLIENT, "coap-client-notls")
    with udp_socket() as sock:
        port = sock.getsockname()[1]
        ep = Endpoint(random.Random(9).randbytes)
        proc = subprocess.Popen([binary, "-B", "4", *args, f"coap://{LOCAL}:{port}/3/0"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            def on_event(event, now):
                return on_request(ep, event.message, now) if isinstance(event, RequestReceived) else []

            def done(_):  # the client has exited and no CON of ours still waits for its ACK
                return proc.poll() is not None and ep.next_timeout() is None

            delivered = pump(ep, sock, None, [], done, on_event=on_event,
                             idle=lambda now: idle(ep, now))
            out, err = proc.communicate(timeout=TIMEOUT)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 0, err
    return out, delivered


def answer_device(ep, msg, now):
    if msg.code == Code.GET and msg.path == "/3/0":
        answer = response(msg, Code.CONTENT, payload=DEVICE, content_format=ContentFormat.TEXT, message_id=0)
    else:
        answer = response(msg, Code.NOT_FOUND, message_id=0)
    return ep.respond(msg, answer, now)  # the Message ID is the endpoint's to choose


def test_coap_client_reads_our_piggybacked_response():
    out, delivered = run_client([], on_request=answer_device)
    assert DEVICE in out
    (req,) = [e.message for e in delivered if isinstance(e, RequestReceived)]
    assert req.type == Type.CON and req.uri_path == ("3", "0")


def test_coap_client_reads_our_non_response_to_its_non_request():
    out, delivered = run_client(["-N"], on_request=answer_device)
    assert DEVICE in out
    (req,) = [e.message for e in delivered if isinstance(e, RequestReceived)]
    assert req.type == Type.NON


def test_coap_client_acks_our_separate_con_response():
    waiting = []

    def later(ep, msg, now):
        waiting.append((now + 0.3, msg))
        return ep.acknowledge(msg, now)

    def idle(ep, now):
        if waiting and waiting[0][0] <= now:
            _, msg = waiting.pop()
            return answer_device(ep, msg, now)
        return []

    out, delivered = run_client([], on_request=later, idle=idle)
    assert DEVICE in out
    assert any(isinstance(e, Acknowledged) for e in delivered)  # libcoap ACKed our CON response
