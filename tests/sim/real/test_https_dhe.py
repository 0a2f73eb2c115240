"""The real HTTPS DM server in the DHE_RSA suites of seed 000 §9.2.2 (served by the standard
library's ssl, network/dm/tls_dhe.py, chosen per connection from the ClientHello): dmsim's DM client
and ``openssl s_client`` over 127.0.0.1 with a lab-CA client certificate (OMA-TS-DM_Security §5.4);
and ``TlsHttpConnection`` reading a ``Connection: close`` answer whose body comes in a later TLS
record (the connection stays open while the response's file is read, ``socket_proxy``)."""
import dataclasses
import http.client
import os
import shutil
import socket
import subprocess
import threading
import time

import pytest

from dmsim.base.errors import ProtocolError
from dmsim.devices.dm_client import DmClient, Done
from dmsim.network.dm import http_binding, tls, tls_pki
from dmsim.network.dm import messages as m
from dmsim.network.dm import tls_suites as suites
from dmsim.sim.links.transports import http_messages
from dmsim.sim.real.conn_guard import Limits
from dmsim.sim.real.tls_socket import TlsHttpConnection, TlsSocket
from https_peer import audit, audited_server, closing_request, session, stop, write_client_pems

OPENSSL = shutil.which("openssl")
HOST = "dm.example.com"
DEV = "IMSI:001010000000042"
DEVINFO = {"DevId": DEV, "Mod": "dmsim-phone"}
CA = tls_pki.LabCa(b"lab CA of the real HTTPS DHE_RSA tests")
DHE_GCM = suites.BY_IANA["TLS_DHE_RSA_WITH_AES_128_GCM_SHA256"]
DHE_CBC = suites.BY_IANA["TLS_DHE_RSA_WITH_AES_128_CBC_SHA256"]


@pytest.fixture(scope="module")
def rsa_cred():
    return CA.issue_server_rsa(HOST)


@pytest.fixture
def server(tmp_path, rsa_cred):
    ecc = CA.issue_server(HOST)
    config = tls.server_config(psks={}, cert_pem=ecc.cert_pem, key_pem=ecc.key_pem, client_ca_pem=CA.ca_pem,
                               dhe_rsa=(rsa_cred.cert_pem, rsa_cred.key_pem))
    httpd = audited_server(tmp_path, config)
    yield httpd
    stop(httpd)


def client_config(cred, suite):
    config = tls.x509_client_config(CA.ca_pem, HOST, cert_pem=cred and cred.cert_pem, key_pem=cred and cred.key_pem)
    return dataclasses.replace(config, suites=(suite,))


def provision(httpd):
    return httpd.core.provision(DEV, client_name="n", client_password="p", server_password="s")


@pytest.mark.parametrize("suite", [DHE_GCM, DHE_CBC], ids=lambda s: s.iana)
def test_dmsim_client_in_a_dhe_rsa_suite_completes_a_session(server, suite):
    step, statuses, handshake = session(server.server_address[1],
                                        DmClient(provision(server), DEV, DEVINFO, 3, os.urandom),
                                        client_config(CA.issue_device(DEV), suite))
    assert step == Done(True) and statuses == [200, 200]
    assert handshake.cipher == suite.iana and handshake.version == "TLSv1.2"
    access = [e for e in audit(server) if e["event"] == "access"]
    assert len(access) == 2 and all(e["mechanism"] == f"https-x509 client={DEV}" for e in access)


def test_a_dhe_rsa_client_without_certificate_fails_the_handshake(server):
    with pytest.raises(ProtocolError):
        session(server.server_address[1], DmClient(provision(server), DEV, DEVINFO, 3, os.urandom),
                client_config(None, DHE_GCM))


def test_another_devices_certificate_over_dhe_rsa_gets_403_with_its_body(server):
    """Through http.client: the 403 says Connection: close and its body follows the headers in a
    separate TLS record; the body must still be read."""
    step, statuses, handshake = session(server.server_address[1],
                                        DmClient(provision(server), DEV, DEVINFO, 3, os.urandom),
                                        client_config(CA.issue_device("IMSI:001010000000099"), DHE_GCM))
    assert statuses == [403] and handshake.cipher == DHE_GCM.iana
    mismatch = [e for e in audit(server) if e["event"] == "client_cert_mismatch"]
    assert mismatch and mismatch[0]["device"] == DEV


@pytest.mark.skipif(OPENSSL is None, reason="openssl not installed")
@pytest.mark.parametrize("cipher", ["DHE-RSA-AES128-GCM-SHA256", "DHE-RSA-AES128-SHA256"])
def test_openssl_s_client_in_a_dhe_rsa_suite_gets_a_dm_answer(server, tmp_path, cipher):
    account = provision(server)
    cred = CA.issue_device(DEV)
    write_client_pems(tmp_path, CA, cred)
    client = DmClient(account, DEV, DEVINFO, 9, os.urandom, content_type=m.DM_XML)
    request = closing_request(client.start().body)
    proc = subprocess.run([OPENSSL, "s_client", "-connect", f"127.0.0.1:{server.server_address[1]}", "-tls1_2",
                           "-cipher", cipher, "-ign_eof", "-CAfile", str(tmp_path / "ca.pem"), "-verify_return_error",
                           "-servername", HOST, "-cert", str(tmp_path / "dev.pem"), "-key", str(tmp_path / "key.pem")],
                          input=request, capture_output=True, timeout=10)
    out = proc.stdout
    answer = bytearray(out[out.find(b"HTTP/1.1"):])  # s_client's session report follows it
    messages = http_messages(answer)
    assert messages, (out, proc.stderr)
    reply = http_binding.decode(messages[0])
    assert reply.start == "200" and b"<SyncML" in reply.body, (out, proc.stderr)
    assert f"Cipher is {cipher}".encode() in out and b"Server Temp Key: DH, 2048 bits" in out
    assert client.receive(reply.body, m.DM_XML) is not None  # a DM answer the client reads
    access = [e for e in audit(server) if e["event"] == "access"]
    assert access and access[0]["mechanism"] == f"https-x509 client={DEV}"


# --- Connection: close with the body in a later record (sim/real/socket_proxy.py) --------------

PSK = (b"dev-psk", bytes(range(16)))


def one_shot_server(answer_head: bytes, body: bytes, pause: float):
    """Serve one TLS-PSK connection: read a request, send ``answer_head``, wait ``pause``, send
    ``body`` (a later TLS record), close. Return (port, thread)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def run():
        with listener:
            sock, _ = listener.accept()
            conn = TlsSocket(sock, tls.psk_server_config({PSK[0]: PSK[1]}))
            try:
                conn.handshake()
                request = b""
                while b"\r\n\r\n" not in request:
                    request += conn.recv(65536)
                conn.sendall(answer_head)
                time.sleep(pause)
                conn.sendall(body)
            finally:
                conn.close()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return listener.getsockname()[1], thread


@pytest.mark.parametrize("status", [403, 413])
def test_a_connection_close_body_in_a_later_record_is_read(status):
    body = b"refused: " + str(status).encode() * 40
    head = (f"HTTP/1.1 {status} Refused\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n").encode()
    port, thread = one_shot_server(head, body, 0.3)
    conn = TlsHttpConnection("127.0.0.1", port, tls.psk_client_config(*PSK), timeout=5)
    try:
        conn.request("POST", "/dm", b"<SyncML/>", {"Content-Type": m.DM_XML})
        resp = conn.getresponse()
        assert resp.status == status and resp.will_close
        assert conn.sock is None  # http.client let go of the connection already...
        assert resp.read() == body  # ...and the body still arrives
    finally:
        conn.close()
    thread.join(5)


def test_the_connection_really_closes_once_the_response_is_read():
    port, thread = one_shot_server(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\nConnection: close\r\n\r\n",
                                   b"no", 0.1)
    conn = TlsHttpConnection("127.0.0.1", port, tls.psk_client_config(*PSK), timeout=5)
    conn.connect()
    tls_sock = conn.sock
    conn.request("POST", "/dm", b"x", {"Content-Type": m.DM_XML})
    resp = conn.getresponse()
    assert tls_sock.sock.fileno() != -1  # open while the response is being read
    assert resp.read() == b"no"
    assert tls_sock.sock.fileno() == -1 and tls_sock.endpoint.state == "closed"
    thread.join(5)


def test_a_413_of_the_real_server_is_read_through_http_client(tmp_path):
    config = tls.server_config(psks={PSK[0]: PSK[1]}, mode="psk")
    httpd = audited_server(tmp_path, config, Limits(max_body=100, linger_seconds=0.5))
    try:
        conn = TlsHttpConnection("127.0.0.1", httpd.server_address[1], tls.psk_client_config(*PSK), timeout=5)
        try:
            conn.request("POST", "/dm", b"x" * 1000, {"Content-Type": m.DM_XML})
            resp = conn.getresponse()
            assert resp.status == 413 and resp.read() == b"body above 100 octets"
        finally:
            conn.close()
    finally:
        stop(httpd)


def test_http_client_still_raises_incomplete_read_when_the_peer_cuts_the_body():
    port, thread = one_shot_server(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 50\r\nConnection: close\r\n\r\n",
                                   b"short", 0.1)
    conn = TlsHttpConnection("127.0.0.1", port, tls.psk_client_config(*PSK), timeout=5)
    conn.request("POST", "/dm", b"x", {"Content-Type": m.DM_XML})
    with pytest.raises(http.client.IncompleteRead):
        conn.getresponse().read()
    conn.close()
    thread.join(5)
