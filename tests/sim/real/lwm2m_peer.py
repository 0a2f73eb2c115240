"""Helpers of the tests of ``dmsim lwm2m server`` and ``dmsim lwm2m probe`` over 127.0.0.1 UDP: the
server in a thread with its audit log, client channels (sim/real/coap_udp_channel), libcoap and
openssl as independent peers (required: openssl always, libcoap when DMSIM_REQUIRE_LIBCOAP=1)."""
import contextlib
import json
import os
import select
import shutil
import socket
import subprocess
import sys
import time

import pytest

from dmsim.network.coap import message as coap
from dmsim.network.lwm2m import dtls
from dmsim.network.lwm2m.dtls_policy import PskCredential
from dmsim.sim.real.audit_log import AuditLog
from dmsim.sim.real.coap_udp_channel import UdpChannel
from dmsim.sim.real.lwm2m_udp_server import Lwm2mLimits, Lwm2mUdpServer

TIMEOUT = 5.0
LOCAL = "127.0.0.1"
OPENSSL = shutil.which("openssl")
# ASCII keys: libcoap 4.3.1's coap-client takes -k as the key's octets, not hex
IDENTITY = b"dev-lab-1"
KEY = b"lwm2m-lab-key-16"
PIN_IDENTITY = b"pin-user"
PIN = b"1234"
PSKS = (PskCredential(IDENTITY, KEY, "high"), PskCredential(PIN_IDENTITY, PIN, "low"))


@contextlib.contextmanager
def running_server(tmp_path, *, limits=Lwm2mLimits(), psks=PSKS, endpoints=(), coap=True, coaps=True, **modes):
    """Yield a started Lwm2mUdpServer on free ports of 127.0.0.1 (coaps and coap unless told; the
    certificate and RPK listeners when ``modes`` has ``certificate``/``rpk``), auditing to
    ``tmp_path/audit.jsonl``; stopped on leaving."""
    listeners = {"coaps_cert_addr": (LOCAL, 0) if modes.get("certificate") else None,
                 "coaps_rpk_addr": (LOCAL, 0) if modes.get("rpk") else None}
    server = Lwm2mUdpServer(coaps_addr=(LOCAL, 0) if coaps else None, coap_addr=(LOCAL, 0) if coap else None,
                            psks=psks, endpoints=endpoints, limits=limits,
                            audit=AuditLog(str(tmp_path / "audit.jsonl")), **listeners, **modes)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        server.audit.close()


@contextlib.contextmanager
def cli_server(*args):
    """Yield (process, startup line as a dict) of ``dmsim lwm2m server ARGS`` in a subprocess;
    killed on leaving if it is still running."""
    proc = subprocess.Popen([sys.executable, "-m", "dmsim.sim.cli.main", "lwm2m", "server", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert select.select([proc.stderr], [], [], 15)[0], "no startup line"
        yield proc, json.loads(proc.stderr.readline())
    finally:
        proc.kill()
        proc.wait(timeout=TIMEOUT)
        proc.stdout.close()
        proc.stderr.close()


def audit_records(tmp_path):
    return [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]


def wait_for(predicate, timeout=TIMEOUT):
    """Poll ``predicate`` (the server's thread changes what it reads) until true or the timeout."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def channel(server, identity=IDENTITY, key=KEY, *, entropy="high", scheme="coaps", config=None):
    """Return a UdpChannel to ``server``'s listener ``scheme`` (coaps, coaps_cert, coaps_rpk or coap;
    a PSK client unless ``config``)."""
    host, port = server.addresses[scheme][:2]
    if scheme == "coaps" and config is None:
        config = dtls.psk_client_config(identity, key, entropy=entropy)
    return UdpChannel.connect(host, port, config if scheme != "coap" else None)


def handshake(chan, timeout=TIMEOUT):
    """Run ``chan``'s handshake; return its HandshakeDone (or None)."""
    chan.pump(lambda: chan.dtls.state != "handshake", time.monotonic() + timeout)
    return next((e for e in chan.events if isinstance(e, dtls.HandshakeDone)), None)


def ask(chan, request, timeout=TIMEOUT):
    """Send CoAP ``request`` over ``chan``; return the response message (or None)."""
    from dmsim.network.coap.reliability import ResponseReceived
    token, events = chan.coap.request(request, time.monotonic())
    chan.transmit(events)
    match = lambda: next((e.message for e in chan.events  # noqa: E731
                          if isinstance(e, ResponseReceived) and e.request_token == token), None)
    chan.pump(lambda: match() is not None, time.monotonic() + timeout)
    return match()


def get(path, code=coap.Code.GET, **kw):
    return coap.request(code, path, message_id=0, **kw)


def converse(chan, client, peer, first, done):
    """Carry the client core's events over ``chan`` (``peer``: the client's name for the server)
    until ``done(reports)``; return the reports (the core's events that are not Sends)."""
    from dmsim.network.coap.reliability import RequestReceived, ResponseReceived
    from dmsim.network.lwm2m.events import Send
    reports = []

    def feed(events, request=None):
        for event in events:
            if isinstance(event, Send):
                chan.transmit(chan.coap.send(event.message, time.monotonic(), request))
            else:
                reports.append(event)

    feed(first)
    deadline = time.monotonic() + TIMEOUT
    while not done(reports) and chan.pump(lambda: bool(chan.events), deadline):
        pending, chan.events = chan.events, []
        for event in pending:
            if isinstance(event, RequestReceived):
                feed(client.receive(peer, event.message), event.message)
            elif isinstance(event, ResponseReceived):
                feed(client.receive(peer, event.message))
    return reports


def udp_socket(host=LOCAL):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((host, 0))
    return sock


def recv_all(sock, wait):
    """Return every datagram ``sock`` receives within ``wait`` seconds."""
    out, deadline = [], time.monotonic() + wait
    while (left := deadline - time.monotonic()) > 0:
        if select.select([sock], [], [], left)[0]:
            out.append(sock.recv(65536))
    return out


# --- independent peers ---------------------------------------------------------------------------

def require_openssl():
    if OPENSSL is None:
        pytest.fail("openssl is required for the DTLS interop tests (apt-get install openssl)")
    return OPENSSL


def libcoap(name):
    path = shutil.which(name)
    if path is None:
        if os.environ.get("DMSIM_REQUIRE_LIBCOAP") == "1":
            pytest.fail(f"{name} is not installed (DMSIM_REQUIRE_LIBCOAP=1 requires it)", pytrace=False)
        pytest.skip(f"needs {name} (Debian package libcoap3-bin)")
    return path


def read_until(proc, marker, timeout=TIMEOUT):
    """Read ``proc``'s stdout until ``marker`` appears, it ends, or the timeout; return what was read."""
    seen, deadline = b"", time.monotonic() + timeout
    while marker not in seen and (left := deadline - time.monotonic()) > 0:
        if select.select([proc.stdout], [], [], left)[0]:
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            seen += chunk
    return seen


@contextlib.contextmanager
def openssl(*args):
    """Yield ``openssl <args>`` (stdin/stdout pipes, stderr merged); killed on leaving."""
    proc = subprocess.Popen([require_openssl(), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait(timeout=TIMEOUT)
        proc.stdin.close()
        proc.stdout.close()


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((LOCAL, 0))
        return s.getsockname()[1]
