"""Drivers of dmsim's sans-IO DTLS endpoints for the tests of this folder: an in-memory link between
a client endpoint and a DtlsServer (with a hook to drop or rewrite datagrams), credential fixtures,
and a UDP loop against openssl s_server / s_client."""
import os
import select
import shutil
import socket
import subprocess
import time

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from dmsim.network.dm import tls_pki
from dmsim.network.lwm2m import dtls, dtls_keys
from dmsim.network.lwm2m import dtls_records as wire

OPENSSL = shutil.which("openssl")
TIMEOUT = 5.0
ADDRESS = b"192.0.2.7:56830"


class Link:
    """Client endpoint <-> DtlsServer over an in-memory 'network'. ``tamper(direction, n, datagram)``
    returns the datagram to deliver (None drops it); ``direction`` is "c2s" or "s2c", ``n`` counts
    that direction's datagrams from 0."""

    def __init__(self, client, server, *, address=ADDRESS, tamper=None):
        self.client, self.server, self.address = client, server, address
        self.tamper = tamper or (lambda direction, n, d: d)
        self.sent = {"c2s": [], "s2c": []}
        self.client_events, self.server_events = [], []

    def _deliver(self, direction, datagram):
        n = len(self.sent[direction])
        self.sent[direction].append(datagram)
        datagram = self.tamper(direction, n, datagram)
        if datagram is None:
            return
        if direction == "c2s":
            self.server_events += self.server.receive_datagram(self.address, datagram)
        else:
            self.client_events += self.client.receive_datagram(datagram)

    def pump(self, rounds=20):
        """Move datagrams both ways until none is in flight; return True if any moved."""
        moved = False
        for _ in range(rounds):
            c2s = self.client.datagrams_to_send()
            s2c = [d for a, d in self.server.datagrams_to_send() if a == self.address]
            if not c2s and not s2c:
                break
            moved = True
            for d in c2s:
                self._deliver("c2s", d)
            for d in s2c:
                self._deliver("s2c", d)
        return moved

    @property
    def server_endpoint(self):
        return self.server.endpoints.get(self.address)

    def expire(self, endpoint):
        """Fire ``endpoint``'s timer (what a driver does when next_timeout elapses)."""
        assert endpoint.next_timeout is not None
        events = endpoint.on_timeout()
        (self.client_events if endpoint is self.client else self.server_events).extend(events)
        return events


def done(events):
    return [e for e in events if isinstance(e, dtls.HandshakeDone)]


def failures(events):
    return [e for e in events if isinstance(e, dtls.DtlsFailed)]


def app_data(events):
    return b"".join(e.data for e in events if isinstance(e, dtls.AppData))


def handshake(client_config, server_config, **link_options):
    """Return a Link after running a handshake between fresh endpoints of the two configs."""
    link = Link(dtls.DtlsEndpoint(client_config), dtls.DtlsServer(server_config), **link_options)
    link.pump()
    return link


def p256(seed: int) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(seed, ec.SECP256R1())


def rpk_pair(client_seed=0xC11E, server_seed=0x5E4E, name="urn:dev:client-1"):
    """Return (client config, server config) in RPK mode with the resource forms of D.1.1.2:
    raw 32-byte private keys, the server's key as 64-byte X||Y, the client's as SPKI DER."""
    ck, sk = p256(client_seed), p256(server_seed)
    client = dtls.rpk_client_config(dtls_keys.private_key_to_resource(ck),
                                    dtls_keys.public_key_to_resource(sk.public_key(), "xy"))
    server = dtls.rpk_server_config(dtls_keys.private_key_to_resource(sk),
                                    {dtls_keys.public_key_to_resource(ck.public_key()): name})
    return client, server


LAB_CA = tls_pki.LabCa(b"dmsim lwm2m dtls test CA secret")


def certificate_pair(ca=LAB_CA, dev_id="urn:imei:490154203237518", host="lwm2m.example"):
    server_cred, device_cred = ca.issue_server(host), ca.issue_device(dev_id)
    client = dtls.certificate_client_config(device_cred.cert_pem, device_cred.key_pem, ca.ca_pem,
                                            server_hostname=host)
    server = dtls.certificate_server_config(server_cred.cert_pem, server_cred.key_pem, ca.ca_pem)
    return client, server


def rewrite_client_hello_suite(datagram, old_code, new_code):
    """Return ``datagram`` with cipher suite ``old_code`` replaced in its ClientHello (same length,
    lengths unchanged), or the datagram itself when it is no ClientHello offering it."""
    hello = wire.client_hello_of(datagram)
    if hello is None or old_code not in hello.cipher_suites:
        return datagram
    # record header 13 + handshake header 12 + version 2 + random 32, then session_id, cookie
    at = wire.RECORD_HEADER + wire.HANDSHAKE_HEADER + 34
    at += 1 + datagram[at]
    at += 1 + datagram[at]
    at += 2
    suites = datagram[at:at + 2 * len(hello.cipher_suites)]
    index = hello.cipher_suites.index(old_code)
    suites = suites[:2 * index] + new_code.to_bytes(2, "big") + suites[2 * index + 2:]
    return datagram[:at] + suites + datagram[at + len(suites):]


# --- openssl over UDP ---------------------------------------------------------------------------

def require_openssl():
    if OPENSSL is None:
        pytest.fail("openssl is required for the DTLS interop tests (apt-get install openssl)")


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def udp_drive(endpoint, sock, peer, until, deadline):
    """Pump datagrams between a connected UDP ``sock`` and ``endpoint`` (its timer run on the real
    clock) until ``until(events)``; return the events."""
    events, armed, generation = [], None, None
    while time.monotonic() < deadline:
        for datagram in endpoint.datagrams_to_send():
            sock.sendto(datagram, peer)
        if until(events) or endpoint.state in ("failed", "closed"):
            break
        if endpoint.timer_generation != generation:
            generation = endpoint.timer_generation
            armed = None if endpoint.next_timeout is None else time.monotonic() + endpoint.next_timeout
        if armed is not None and time.monotonic() >= armed:
            events += endpoint.on_timeout()
            continue
        if select.select([sock], [], [], 0.05)[0]:
            data, _ = sock.recvfrom(65536)
            events += endpoint.receive_datagram(data)
    for datagram in endpoint.datagrams_to_send():
        sock.sendto(datagram, peer)
    return events


def start_openssl(args):
    """Start ``openssl <args>`` with stdin/stdout pipes; return the process."""
    return subprocess.Popen([OPENSSL, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)


def wait_output(proc, marker, timeout=TIMEOUT):
    """Read ``proc``'s stdout until ``marker`` appears (or the timeout); return what was read."""
    seen, deadline = b"", time.monotonic() + timeout
    while marker not in seen and time.monotonic() < deadline:
        if select.select([proc.stdout], [], [], 0.1)[0]:
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            seen += chunk
    return seen


def stop(proc):
    proc.kill()
    proc.wait(timeout=TIMEOUT)
    for stream in (proc.stdin, proc.stdout):
        if stream:
            stream.close()
