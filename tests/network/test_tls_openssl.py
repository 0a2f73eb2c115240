"""dmsim TLS endpoints against OpenSSL (s_server / s_client) over loopback sockets.

The test is the I/O driver: it moves bytes between a socket and the sans-IO endpoint.
Seed 000 §9.2.2: PSK-TLS suites, TLS 1.1/1.2 only, ECDHE curves of at least 256 bits.
"""
import dataclasses
import os
import select
import socket
import subprocess
import time

import pytest

import openssl_peer
from dmsim.network.dm import tls
from dmsim.network.dm import tls_suites as suites
from openssl_peer import OPENSSL, TIMEOUT, done, drive, got_line, requires_openssl, s_servers

pytestmark = requires_openssl

IDENTITY, KEY = b"IMEI:490154203237518", bytes.fromhex("00112233445566778899aabbccddeeff")


def linger(sock, deadline):
    """Read until the peer closes, so that closing our side sends FIN, not RST."""
    sock.shutdown(socket.SHUT_WR)
    while time.monotonic() < deadline:
        try:
            if select.select([sock], [], [], 0.05)[0] and not sock.recv(65536):
                return
        except OSError:
            return


def connect(port):
    return socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)


@pytest.fixture
def openssl_server():
    with s_servers() as start:
        yield lambda cipher, *extra: start("-nocert", "-psk", KEY.hex(), "-psk_identity", IDENTITY.decode(),
                                           "-cipher", cipher, "-naccept", "1", *extra)


def _only(config, suite_iana):
    return dataclasses.replace(config, suites=(suites.BY_IANA[suite_iana],))


@pytest.mark.parametrize("iana,openssl_name", [
    ("TLS_PSK_WITH_AES_128_GCM_SHA256", "PSK-AES128-GCM-SHA256"),
    ("TLS_DHE_PSK_WITH_AES_128_GCM_SHA256", "DHE-PSK-AES128-GCM-SHA256"),
    ("TLS_DHE_PSK_WITH_AES_128_CBC_SHA256", "DHE-PSK-AES128-CBC-SHA256"),
    ("TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256", "ECDHE-PSK-AES128-CBC-SHA256"),
])
def test_dmsim_client_against_openssl_s_server(openssl_server, iana, openssl_name):
    port, proc = openssl_server(openssl_name, "-tls1_2")
    client = tls.TlsEndpoint(_only(tls.psk_client_config(IDENTITY, KEY), iana))
    deadline = time.monotonic() + TIMEOUT
    with connect(port) as sock:
        events = drive(client, sock, done, deadline)
        assert events == [tls.HandshakeDone("TLSv1.2", iana, IDENTITY)]
        client.send(b"SyncML over TLS-PSK\n")
        drive(client, sock, lambda e: True, deadline)
        output = b""
        while b"SyncML over TLS-PSK" not in output and time.monotonic() < deadline:
            if select.select([proc.stdout], [], [], 0.05)[0]:
                output += os.read(proc.stdout.fileno(), 65536)
        client.close()
        drive(client, sock, lambda e: True, deadline)
        linger(sock, deadline)
    proc.wait(timeout=TIMEOUT)  # -naccept 1: it exits after our connection
    assert b"SyncML over TLS-PSK" in output


def test_p192_ecdhe_with_openssl_s_server_never_completes(openssl_server):
    """OpenSSL offers only secp192r1: the handshake fails (dmsim's own curve check is tested
    in memory in test_tls.py, mbedtls does not offer P-192 to begin with)."""
    port, _ = openssl_server("ECDHE-PSK-AES128-CBC-SHA256", "-tls1_2", "-groups", "secp192r1")
    client = tls.TlsEndpoint(_only(tls.psk_client_config(IDENTITY, KEY),
                                   "TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256"))
    with connect(port) as sock:
        events = drive(client, sock, done, time.monotonic() + TIMEOUT)
    assert events and isinstance(events[0], tls.TlsFailed), events


# --- dmsim server, OpenSSL client -------------------------------------------------------------

def run_s_client(args, stdin, server_config, until=done):
    """Accept one s_client connection on the dmsim server; return (events, s_client output, exit code)."""
    _, events, output, returncode = openssl_peer.run_s_client(args, server_config, until, stdin=stdin)
    return events, output, returncode


PSK_SERVER = tls.psk_server_config({IDENTITY: KEY})
PSK_ARGS = ["-psk", KEY.hex(), "-psk_identity", IDENTITY.decode()]


@pytest.mark.parametrize("version_flag,cipher,version", [
    ("-tls1_2", "PSK-AES128-GCM-SHA256", "TLSv1.2"),
    ("-tls1_2", "ECDHE-PSK-AES128-CBC-SHA256", "TLSv1.2"),
    ("-tls1_1", "PSK-AES128-CBC-SHA256:@SECLEVEL=0", "TLSv1.1"),
])
def test_openssl_s_client_against_dmsim_server(version_flag, cipher, version):
    events, output, _ = run_s_client([*PSK_ARGS, version_flag, "-cipher", cipher],
                                     b"<SyncML>pkg1</SyncML>\n", PSK_SERVER, got_line)
    assert isinstance(events[0], tls.HandshakeDone), (events, output)
    assert events[0].version == version and events[0].psk_identity == IDENTITY
    received = b"".join(e.data for e in events if isinstance(e, tls.AppData))
    assert received == b"<SyncML>pkg1</SyncML>\n"


def test_openssl_s_client_with_wrong_psk_is_refused():
    events, _, _ = run_s_client(["-psk", "ff" * 16, "-psk_identity", IDENTITY.decode(),
                                 "-tls1_2"], b"x\n", PSK_SERVER)
    assert isinstance(events[-1], tls.TlsFailed)


def test_openssl_s_client_only_p192_is_refused_by_dmsim_server():
    events, output, _ = run_s_client([*PSK_ARGS, "-tls1_2", "-cipher",
                                      "ECDHE-PSK-AES128-CBC-SHA256", "-groups", "secp192r1"],
                                     b"x\n", PSK_SERVER)
    assert events and isinstance(events[0], tls.TlsFailed), (events, output)


def test_openssl_s_client_tls_1_0_gets_protocol_version_alert():
    events, output, returncode = run_s_client(
        [*PSK_ARGS, "-tls1", "-cipher", "PSK-AES128-CBC-SHA256:PSK-AES128-CBC-SHA:@SECLEVEL=0"],
        b"x\n", PSK_SERVER)
    assert events == [tls.TlsFailed(events[0].reason, tls.ALERT_PROTOCOL_VERSION)], output
    assert returncode != 0


def test_openssl_s_client_ssl3_fails():
    """OpenSSL 3.0 is built without SSL 3.0: s_client cannot even offer it against dmsim."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        proc = subprocess.run([OPENSSL, "s_client", "-connect", f"127.0.0.1:{port}",
                               *PSK_ARGS, "-ssl3"], input=b"", capture_output=True,
                              timeout=TIMEOUT)
    assert proc.returncode != 0
