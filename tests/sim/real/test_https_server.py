"""The DM server over HTTPS on 127.0.0.1 (seed 000 §9.2.2, PSK-TLS and X.509), against OpenSSL's
s_client and dmsim's own DM client over real sockets, on a SQLite store that survives restarts."""
import dataclasses
import http.client
import json
import os
import shutil
import socket
import subprocess
import threading

import pytest
from dmsim.devices.dm_client import DmClient, Done, Send
from dmsim.network.dm import http_binding, tls
from dmsim.network.dm import messages as m
from dmsim.sim.real.dm_http_server import (PROVISION_PATH, DmService, account_to_json, default_server,
                                          make_admin_server, make_http_server, make_https_server)
from dmsim.sim.real.dm_store import SqliteAccounts
from dmsim.sim.real.tls_socket import TlsHttpConnection, TlsSocket
from dmsim.base.errors import ProtocolError
from dmsim.sim.links.transports import server_credential
from https_peer import closing_request, post_session

OPENSSL = shutil.which("openssl")
DEV = "IMSI:001010000000042"
IDENTITY, KEY = b"IMEI:490154203237518", bytes.fromhex("00112233445566778899aabbccddeeff")
HOST = "dm.example.com"
DEVINFO = {"DevId": DEV, "Mod": "dmsim-phone"}
TOKEN = "admin-token-of-the-https-tests"


@pytest.fixture(scope="module")
def ecdsa_cert():
    """Return (cert PEM, key PEM): the simulator's self-signed ECDSA P-256 certificate for HOST."""
    return server_credential(HOST)


class Live:
    """An HTTP and an HTTPS listener on one DM core and store, each on its own thread."""

    def __init__(self, db, cert=None):
        self.store = SqliteAccounts(db)
        self.store.psks[IDENTITY] = KEY
        self.core = default_server("dmsim-server", "127.0.0.1", 0, scheme="https", accounts=self.store)
        service = DmService(self.core, self.store.psks)
        config = tls.server_config(psks=self.store.psks, cert_pem=cert and cert[0], key_pem=cert and cert[1],
                                   mode="both" if cert else "psk")
        self.https = make_https_server("127.0.0.1", 0, service, config, handshake_timeout=3)
        self.http = make_http_server("127.0.0.1", 0, service)
        self.admin = make_admin_server("127.0.0.1", 0, service, TOKEN)
        self.threads = [threading.Thread(target=s.serve_forever, args=(0.05,), daemon=True)
                        for s in (self.https, self.http, self.admin)]
        for t in self.threads:
            t.start()
        self.port = self.https.server_address[1]
        self.stopped = False

    def stop(self):
        if self.stopped:
            return
        self.stopped = True
        for s in (self.https, self.http, self.admin):
            s.shutdown()
            s.server_close()
        self.store.close()


@pytest.fixture
def live(tmp_path):
    servers = []

    def start(cert=None):
        servers.append(Live(tmp_path / "dm.sqlite", cert))
        return servers[-1]

    yield start
    for s in servers:
        s.stop()


def run_session(port, client, config, server_hostname=None):
    """Run ``client``'s whole session over one TLS connection; return (Done, handshake outcome)."""
    conn = TlsHttpConnection("127.0.0.1", port, config, timeout=5)

    def look(resp, body):
        assert resp.status == 200, body

    try:
        return post_session(conn, client, look), conn.session
    finally:
        conn.close()


def psk_client():
    return tls.psk_client_config(IDENTITY, KEY)


# --- OpenSSL as the client ---------------------------------------------------------------------

@pytest.mark.skipif(OPENSSL is None, reason="openssl not installed")
def test_openssl_s_client_carries_a_syncml_session(live):
    """Each package travels in its own `openssl s_client -psk` connection (XML, so it is text);
    the server's replies are accepted by the DM client and the session ends ok."""
    srv = live()
    account = srv.core.provision(DEV, client_name="001010000000042", client_password="pw", server_password="spw")
    client = DmClient(account, DEV, DEVINFO, 9, os.urandom, content_type=m.DM_XML)
    step, exchanges = client.start(), 0
    assert b"<SyncML" in step.body
    while isinstance(step, Send):
        request = closing_request(step.body, step.content_type)
        proc = subprocess.run([OPENSSL, "s_client", "-psk", KEY.hex(), "-psk_identity", IDENTITY.decode(),
                               "-tls1_2", "-connect", f"127.0.0.1:{srv.port}", "-quiet"],
                              input=request, capture_output=True, timeout=10)
        reply = http_binding.decode(proc.stdout[proc.stdout.find(b"HTTP/1.1"):])
        assert reply.start == "200", (proc.stdout, proc.stderr)
        step = client.receive(reply.body, reply.content_type)
        exchanges += 1
    assert step == Done(True) and exchanges == 2


@pytest.mark.skipif(OPENSSL is None, reason="openssl not installed")
def test_openssl_s_client_with_a_wrong_psk_gets_no_answer(live):
    srv = live()
    proc = subprocess.run([OPENSSL, "s_client", "-psk", "ff" * 16, "-psk_identity", IDENTITY.decode(), "-tls1_2",
                           "-connect", f"127.0.0.1:{srv.port}", "-quiet"],
                          input=b"POST /dm HTTP/1.1\r\nContent-Length: 0\r\n\r\n", capture_output=True, timeout=10)
    assert b"HTTP/1.1" not in proc.stdout and proc.returncode != 0


# --- dmsim's client over real sockets -----------------------------------------------------------

@pytest.mark.parametrize("mode", ["psk", "x509"])
def test_dmsim_client_session_over_tls(live, ecdsa_cert, mode):
    srv = live(ecdsa_cert)
    account = srv.core.provision(DEV, client_name="n", client_password="p", server_password="s")
    config = psk_client() if mode == "psk" else tls.x509_client_config(ecdsa_cert[0], HOST)
    done, session = run_session(srv.port, DmClient(account, DEV, DEVINFO, 3, os.urandom), config)
    assert done == Done(True)
    assert session.version == "TLSv1.2"
    if mode == "psk":
        assert session.psk_identity == IDENTITY and "PSK" in session.cipher
    else:
        assert session.psk_identity is None and "ECDHE_ECDSA" in session.cipher


def test_state_survives_a_restart(live):
    """Provision (with its PSK) over the admin listener, restart on the same file, run two
    sessions, each on a fresh server: both authenticate at once with the nonces the store kept."""
    srv = live()
    account = srv.core.provision("IMSI:seed", client_name="x", client_password="y", server_password="z")
    psk = (b"dev7-identity", os.urandom(16))
    dev_account = dataclasses.replace(account, client_name="dev7", client_password="pw7", psk_identity=psk[0],
                                      psk_key=psk[1])
    conn = http.client.HTTPConnection("127.0.0.1", srv.admin.server_address[1], timeout=5)
    conn.request("POST", PROVISION_PATH, json.dumps(account_to_json(DEV, dev_account)),
                 {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"})
    assert conn.getresponse().status == 200
    conn.close()
    srv.stop()
    for session_id in (1, 2):
        srv = live()
        assert srv.store[DEV].client_nonce == dev_account.client_nonce and srv.store.psks[psk[0]] == psk[1]
        client = DmClient(dev_account, DEV, DEVINFO, session_id, os.urandom)
        done, session = run_session(srv.port, client, tls.psk_client_config(*psk))
        assert done == Done(True) and client.auth_retries == 0 and session.psk_identity == psk[0]
        dev_account = client.account  # the NextNonce the server issued, now in its store
        srv.stop()


def test_wrong_psk_closes_the_connection_and_the_server_goes_on(live):
    srv = live()
    account = srv.core.provision(DEV, client_name="n", client_password="p", server_password="s")
    for bad in (tls.psk_client_config(IDENTITY, b"\x01" * 16), tls.psk_client_config(b"unknown", KEY)):
        with pytest.raises(ProtocolError, match="handshake"):
            TlsSocket.connect("127.0.0.1", srv.port, bad, timeout=5)
    done, _ = run_session(srv.port, DmClient(account, DEV, DEVINFO, 4, os.urandom), psk_client())
    assert done == Done(True)


def read_all(sock):
    out = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return out
        out += chunk


def test_garbage_and_malformed_http_close_cleanly(live):
    srv = live()
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as sock:  # not TLS at all
        sock.sendall(b"POST /dm HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
        assert b"HTTP" not in read_all(sock)
    conn = TlsSocket.connect("127.0.0.1", srv.port, psk_client(), timeout=5)  # TLS, then not HTTP
    conn.sendall(b"\x00\x01 not an HTTP request\r\n\r\n")
    reply = b""
    while chunk := conn.recv():
        reply += chunk
    # a request line that is not HTTP/1.x gets http.server's HTTP/0.9-style error (no status line)
    assert b"400" in reply and conn.endpoint.state == "closed"
    conn.close()
    conn = TlsSocket.connect("127.0.0.1", srv.port, psk_client(), timeout=5)  # no Content-Length
    conn.sendall(b"POST /dm HTTP/1.1\r\nHost: x\r\n\r\n")
    assert conn.recv().startswith(b"HTTP/1.1 411")
    conn.close()
    account = srv.core.provision(DEV, client_name="n", client_password="p", server_password="s")
    assert run_session(srv.port, DmClient(account, DEV, DEVINFO, 5, os.urandom), psk_client())[0] == Done(True)
