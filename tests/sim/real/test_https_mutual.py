"""The real HTTPS DM server requiring client certificates of the lab CA (OMA-TS-DM_Security §5.4,
DM-SEC-S-002-M): dmsim's DM client and OpenSSL s_client over 127.0.0.1, the audit log's
mechanism naming the client's DevId, and the DevId binding."""
import json
import os
import shutil
import subprocess
import threading

import pytest

from dmsim.base.errors import ProtocolError
from dmsim.devices.dm_client import DmClient, Done, Send
from dmsim.network.dm import http_binding, tls, tls_pki
from dmsim.network.dm import messages as m
from dmsim.sim.real.audit_log import AuditLog
from dmsim.sim.real.dm_http_server import DmService, default_server, make_https_server
from dmsim.sim.real.tls_socket import TlsHttpConnection, TlsSocket

OPENSSL = shutil.which("openssl")
HOST = "dm.example.com"
DEV = "IMSI:001010000000042"
DEVINFO = {"DevId": DEV, "Mod": "dmsim-phone"}
CA = tls_pki.LabCa(b"lab CA of the real HTTPS server tests")


@pytest.fixture
def server(tmp_path):
    core = default_server("dmsim-server", "127.0.0.1", 0, scheme="https")
    audit_path = tmp_path / "audit.jsonl"
    service = DmService(core, audit=AuditLog(str(audit_path)))
    cred = CA.issue_server(HOST)
    config = tls.server_config(psks={}, cert_pem=cred.cert_pem, key_pem=cred.key_pem, client_ca_pem=CA.ca_pem)
    httpd = make_https_server("127.0.0.1", 0, service, config, handshake_timeout=3)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    httpd.core, httpd.audit_path = core, audit_path
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def client_config(cred=None):
    return tls.x509_client_config(CA.ca_pem, HOST, cert_pem=cred and cred.cert_pem, key_pem=cred and cred.key_pem)


def session(port, client, config):
    """Run ``client``'s session over one connection; return (last step, statuses, handshake)."""
    conn = TlsHttpConnection("127.0.0.1", port, config, timeout=5)
    statuses = []
    try:
        step = client.start()
        while isinstance(step, Send):
            conn.request("POST", "/dm", step.body, {"Content-Type": step.content_type})
            resp = conn.getresponse()
            body = resp.read()
            statuses.append(resp.status)
            if resp.status != 200:
                break
            step = client.receive(body, resp.getheader("Content-Type"))
        return step, statuses, conn.session
    finally:
        conn.close()


def audit(httpd):
    return [json.loads(line) for line in httpd.audit_path.read_text().splitlines()]


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
    for name, pem in (("ca", CA.ca_pem), ("dev", cred.cert_pem), ("key", cred.key_pem)):
        (tmp_path / f"{name}.pem").write_bytes(pem)
    client = DmClient(account, DEV, DEVINFO, 9, os.urandom, content_type=m.DM_XML)
    request = http_binding.encode_request("127.0.0.1", "/dm", client.start().body, m.DM_XML)
    request = request.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1)
    base = [OPENSSL, "s_client", "-connect", f"127.0.0.1:{server.server_address[1]}", "-tls1_2", "-quiet",
            "-CAfile", str(tmp_path / "ca.pem"), "-verify_return_error", "-servername", HOST]
    proc = subprocess.run([*base, "-cert", str(tmp_path / "dev.pem"), "-key", str(tmp_path / "key.pem")],
                          input=request, capture_output=True, timeout=10)
    reply = http_binding.decode(proc.stdout[proc.stdout.find(b"HTTP/1.1"):])
    assert reply.start == "200", (proc.stdout, proc.stderr)
    refused = subprocess.run(base, input=request, capture_output=True, timeout=10)
    assert b"HTTP/1.1" not in refused.stdout and b"alert handshake failure" in refused.stderr
