"""The real HTTPS DM server requiring client certificates of the lab CA (OMA-TS-DM_Security §5.4,
DM-SEC-S-002-M): dmsim's DM client and OpenSSL s_client over 127.0.0.1, the audit log's
mechanism naming the client's DevId, and the DevId binding."""
import json
import os
import shutil
import subprocess

import pytest

from dmsim.base.errors import ProtocolError
from dmsim.devices.dm_client import DmClient, Done
from dmsim.network.dm import http_binding, tls, tls_pki
from dmsim.network.dm import messages as m
from dmsim.sim.real.tls_socket import TlsSocket
from https_peer import audit, audited_server, closing_request, session, stop, write_client_pems

OPENSSL = shutil.which("openssl")
HOST = "dm.example.com"
DEV = "IMSI:001010000000042"
DEVINFO = {"DevId": DEV, "Mod": "dmsim-phone"}
CA = tls_pki.LabCa(b"lab CA of the real HTTPS server tests")


@pytest.fixture
def server(tmp_path):
    cred = CA.issue_server(HOST)
    config = tls.server_config(psks={}, cert_pem=cred.cert_pem, key_pem=cred.key_pem, client_ca_pem=CA.ca_pem)
    httpd = audited_server(tmp_path, config)
    yield httpd
    stop(httpd)


def client_config(cred=None):
    return tls.x509_client_config(CA.ca_pem, HOST, cert_pem=cred and cred.cert_pem, key_pem=cred and cred.key_pem)


def test_dmsim_client_with_its_lab_certificate_completes_a_session(server):
    account = server.core.provision(DEV, client_name="n", client_password="p", server_password="s")
    step, statuses, handshake = session(server.server_address[1], DmClient(account, DEV, DEVINFO, 3, os.urandom),
                                        client_config(CA.issue_device(DEV)))
    assert step == Done(True) and statuses == [200, 200]
    assert "ECDHE_ECDSA" in handshake.cipher
    access = [e for e in audit(server) if e["event"] == "access"]
    assert len(access) == 2 and all(e["mechanism"] == f"https-x509 client={DEV}" for e in access)


def test_a_client_without_certificate_fails_the_handshake(server):
    with pytest.raises(ProtocolError):
        session(server.server_address[1], DmClient(server.core.provision(DEV, client_name="n", client_password="p",
                                                                           server_password="s"),
                                                   DEV, DEVINFO, 3, os.urandom), client_config())


def test_another_devices_certificate_is_refused_with_403(server):
    """Over TlsSocket directly: http.client closes a TlsSocket as soon as it sees
    "Connection: close" and would lose the body that follows in a later record."""
    account = server.core.provision(DEV, client_name="n", client_password="p", server_password="s")
    first = DmClient(account, DEV, DEVINFO, 3, os.urandom).start()
    conn = TlsSocket.connect("127.0.0.1", server.server_address[1],
                             client_config(CA.issue_device("IMSI:001010000000099")))
    try:
        conn.sendall(http_binding.encode_request(HOST, "/dm", first.body, first.content_type))
        received = b""
        while chunk := conn.recv(65536):
            received += chunk
    finally:
        conn.close()
    reply = http_binding.decode(received)
    assert reply.start == "403" and reply.body == b"client certificate does not name this device"
    mismatch = [e for e in audit(server) if "client_cert_mismatch" in json.dumps(e)]
    assert mismatch and mismatch[0]["device"] == DEV
    assert "IMSI:001010000000099" in mismatch[0]["mechanism"]


@pytest.mark.skipif(OPENSSL is None, reason="openssl not installed")
def test_openssl_s_client_with_a_lab_certificate_gets_a_dm_answer(server, tmp_path):
    account = server.core.provision(DEV, client_name="n", client_password="p", server_password="s")
    cred = CA.issue_device(DEV)
    write_client_pems(tmp_path, CA, cred)
    client = DmClient(account, DEV, DEVINFO, 9, os.urandom, content_type=m.DM_XML)
    request = closing_request(client.start().body)
    base = [OPENSSL, "s_client", "-connect", f"127.0.0.1:{server.server_address[1]}", "-tls1_2", "-quiet",
            "-CAfile", str(tmp_path / "ca.pem"), "-verify_return_error", "-servername", HOST]
    proc = subprocess.run([*base, "-cert", str(tmp_path / "dev.pem"), "-key", str(tmp_path / "key.pem")],
                          input=request, capture_output=True, timeout=10)
    reply = http_binding.decode(proc.stdout[proc.stdout.find(b"HTTP/1.1"):])
    assert reply.start == "200", (proc.stdout, proc.stderr)
    refused = subprocess.run(base, input=request, capture_output=True, timeout=10)
    assert b"HTTP/1.1" not in refused.stdout and b"alert handshake failure" in refused.stderr
