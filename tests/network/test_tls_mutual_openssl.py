"""Mutual X.509 (OMA-TS-DM_Security §5.4, DM-SEC-S-002-M) against OpenSSL over loopback sockets:
``openssl s_client -cert -key`` against the dmsim server endpoint, and the dmsim client against
``openssl s_server -Verify 1``. Certificates come from dmsim's lab CA (network/dm/tls_pki.py).
The test is the I/O driver, as in test_tls_openssl.py."""
import os
import select
import socket
import time

import pytest

import openssl_peer
from dmsim.network.dm import tls, tls_pki
from openssl_peer import TIMEOUT, done, drive, got_line, lab_pems, requires_openssl, s_servers, write_pems

pytestmark = requires_openssl

HOST = "dm.example.com"
DEV = "IMSI:001010000000042"
CIPHER = "ECDHE-ECDSA-AES128-GCM-SHA256"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """The lab CA, its credentials as files for OpenSSL, and a foreign CA's device credential."""
    folder = tmp_path_factory.mktemp("pki")
    ca = tls_pki.LabCa(b"lab CA of the OpenSSL interop tests")
    files = lab_pems(ca, DEV, ("server", ca.issue_server(HOST)))
    return ca, files, write_pems(folder, files)


# --- OpenSSL s_client against the dmsim server --------------------------------------------------

def run_s_client(args, server_config, until):
    """Accept one s_client connection on a dmsim server endpoint; return (events, output)."""
    _, events, output, _ = openssl_peer.run_s_client(["-tls1_2", "-cipher", CIPHER, *args], server_config, until)
    return events, output


def dmsim_server(pki):
    ca, files, _ = pki
    return tls.x509_server_config(files["server"], files["server_key"], client_ca_pem=ca.ca_pem)


def test_openssl_s_client_with_a_lab_certificate_is_accepted(pki):
    _, _, paths = pki
    events, output = run_s_client(["-cert", str(paths["device"]), "-key", str(paths["device_key"]),
                                   "-CAfile", str(paths["ca"]), "-verify_return_error", "-servername", HOST],
                                  dmsim_server(pki), got_line)
    assert events[0] == tls.HandshakeDone("TLSv1.2", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", None, DEV), output
    assert b"".join(e.data for e in events if isinstance(e, tls.AppData)) == b"<SyncML>pkg1</SyncML>\n"
    assert b"Verify return code: 0 (ok)" in output  # and OpenSSL verified the server against the lab CA


def test_openssl_s_client_without_a_certificate_is_refused(pki):
    _, _, paths = pki
    events, output = run_s_client(["-CAfile", str(paths["ca"])], dmsim_server(pki), got_line)
    assert events == [tls.TlsFailed("the client sent no certificate", tls.ALERT_HANDSHAKE_FAILURE)], output
    assert b"alert handshake failure" in output and b"SSL alert number 40" in output


def test_openssl_s_client_with_another_cas_certificate_is_refused(pki):
    _, _, paths = pki
    events, output = run_s_client(["-cert", str(paths["foreign"]), "-key", str(paths["foreign_key"]),
                                   "-CAfile", str(paths["ca"])], dmsim_server(pki), got_line)
    assert len(events) == 1 and isinstance(events[0], tls.TlsFailed), output
    assert b"alert unknown ca" in output and b"SSL alert number 48" in output  # Mbed TLS's fatal alert


# --- the dmsim client against OpenSSL s_server -Verify 1 ---------------------------------------

@pytest.fixture
def s_server(pki):
    _, _, paths = pki
    with s_servers() as start:
        yield lambda: start("-naccept", "1", "-tls1_2", "-cipher", CIPHER, "-cert", str(paths["server"]),
                            "-key", str(paths["server_key"]), "-CAfile", str(paths["ca"]), "-Verify", "1",
                            "-verify_return_error")


def read_until(proc, marker, deadline):
    output = b""
    while marker not in output and time.monotonic() < deadline:
        if select.select([proc.stdout], [], [], 0.05)[0]:
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            output += chunk
    return output


def test_dmsim_client_certificate_is_verified_by_openssl_s_server(pki, s_server):
    ca, files, _ = pki
    port, proc = s_server()
    client = tls.TlsEndpoint(tls.x509_client_config(ca.ca_pem, HOST, cert_pem=files["device"],
                                                    key_pem=files["device_key"]))
    deadline = time.monotonic() + TIMEOUT
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        events = drive(client, sock, done, deadline)
        assert events == [tls.HandshakeDone("TLSv1.2", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256")]
        client.send(b"SyncML over mutual TLS\n")
        drive(client, sock, lambda e: True, deadline)
        output = read_until(proc, b"SyncML over mutual TLS", deadline)
        client.close()
        drive(client, sock, lambda e: True, deadline)
    assert b"SyncML over mutual TLS" in output
    assert f"CN = {DEV}".encode() in output or f"CN={DEV}".encode() in output  # the client certificate it verified


def test_dmsim_client_without_certificate_is_refused_by_openssl_s_server(pki, s_server):
    ca, _, _ = pki
    port, proc = s_server()
    client = tls.TlsEndpoint(tls.x509_client_config(ca.ca_pem, HOST))
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        events = drive(client, sock, lambda e: bool(e), time.monotonic() + TIMEOUT)
    assert len(events) == 1 and isinstance(events[0], tls.TlsFailed), events
    output = read_until(proc, b"peer did not return a certificate", time.monotonic() + TIMEOUT)
    assert b"peer did not return a certificate" in output, output
