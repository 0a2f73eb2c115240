"""syncml:auth-hmac-sha256 against the real server (http_server.py) in wall-clock time, and a
simulated fleet whose DM server is a real HTTPS server with PSK-TLS (components.dm_server socket)."""
import csv
import dataclasses
import http.client
import json
import os
import threading
import time

import pytest

from dmsim.devices.dm_client import DmClient, Done, Send
from dmsim.network.dm import tls
from dmsim.network.dm.hmac_integrity import AUTH_HMAC_SHA256, HEADER_NAME, parse_header, parse_timestamp
from dmsim.sim.real.dm_http_server import (DmService, default_server, make_admin_server, make_http_server,
                                           make_https_server)
from dmsim.sim.real.tls_socket import TlsHttpConnection
from dmsim.sim.results.runner import run_scenario
from dmsim.sim.scenario.format import parse_scenario

DEV = "IMSI:001010000000042"
LAB = (b"lab", bytes.fromhex("0f" * 16))
TOKEN = "the-admin-token-of-this-test"


class Live:
    """An HTTP, a PSK-only HTTPS and an admin listener on one DM core, each on its own thread."""

    def __init__(self):
        self.psks = {LAB[0]: LAB[1]}
        self.core = default_server("dmsim-server", "127.0.0.1", 0)
        service = DmService(self.core, self.psks, protected={LAB[0]})
        self.http = make_http_server("127.0.0.1", 0, service)
        self.https = make_https_server("127.0.0.1", 0, service, tls.server_config(psks=self.psks, mode="psk"),
                                       handshake_timeout=3)
        self.admin = make_admin_server("127.0.0.1", 0, service, TOKEN)
        for s in (self.http, self.https, self.admin):
            threading.Thread(target=s.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self):
        for s in (self.http, self.https, self.admin):
            s.shutdown()
            s.server_close()


@pytest.fixture
def live():
    srv = Live()
    yield srv
    srv.stop()


def post(conn, step):
    """Return (status, headers, body) of POSTing ``step`` (a Send) with its headers on ``conn``."""
    conn.request("POST", "/dm", step.body, {"Content-Type": step.content_type, **step.headers})
    resp = conn.getresponse()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()


def hmac_account(core):
    return core.provision(DEV, client_name="001010000000042", client_password="cpw", server_password="spw",
                          auth_scheme=AUTH_HMAC_SHA256)


@pytest.mark.parametrize("https", [False, True])
def test_hmac_session_from_dmsims_client(live, https):
    account = hmac_account(live.core)
    client = DmClient(account, DEV, {"DevId": DEV, "Mod": "m"}, 7, os.urandom)
    conn = (TlsHttpConnection("127.0.0.1", live.https.server_address[1], tls.psk_client_config(*LAB), timeout=5)
            if https else http.client.HTTPConnection("127.0.0.1", live.http.server_address[1], timeout=5))
    step, sent = client.start(time.time()), []
    try:
        while isinstance(step, Send):
            assert HEADER_NAME in step.headers
            sent.append(step)
            status, headers, body = post(conn, step)
            assert status == 200
            # the server's MAC, Timestamped on its wall clock
            assert abs(parse_timestamp(parse_header(headers[HEADER_NAME]).timestamp) - time.time()) < 5
            step = client.receive(body, headers["content-type"], headers, time.time())
    finally:
        conn.close()
    assert step == Done(True) and len(sent) == 2 and client.hmac_verdict.ok
    # a replayed request, a request without its header and one with a foreign MAC are refused (401)
    conn = http.client.HTTPConnection("127.0.0.1", live.http.server_address[1], timeout=5)
    try:
        assert post(conn, sent[0])[0] == 401
        assert post(conn, Send(sent[0].body, sent[0].content_type))[0] == 401
        forged = DmClient(dataclasses.replace(account, client_password="guess"), DEV, {}, 8,
                          os.urandom).start(time.time())
        status, _, body = post(conn, forged)
        assert (status, body) == (401, b"")
        # a message from the device's own clock, far off the server's
        late = DmClient(account, DEV, {}, 9, os.urandom).start(time.time() - 3600)
        assert post(conn, late)[0] == 401
    finally:
        conn.close()


def test_a_tampered_reply_ends_the_client_session(live):
    account = hmac_account(live.core)
    client = DmClient(account, DEV, {"DevId": DEV}, 7, os.urandom)
    conn = http.client.HTTPConnection("127.0.0.1", live.http.server_address[1], timeout=5)
    try:
        status, headers, body = post(conn, client.start(time.time()))
    finally:
        conn.close()
    assert status == 200
    step = client.receive(body[:-1] + bytes([body[-1] ^ 1]), headers["content-type"], headers, time.time())
    assert step == Done(False, "server_hmac_failed") and client.hmac_verdict.reason.value == "wrong_mac"


SCENARIO = """
name: real-https
seed: 4
duration: 600
fleet: {{size: 6, profiles: [{{name: h, dm_auth: hmac}}, {{name: m, dm_auth: md5}}]}}
arrival: {{kind: poisson, rate: 3}}
links: {{sms: {{loss: 0}}}}
components: {{dm_server: {{kind: socket, url: "https://127.0.0.1:{port}/dm"}}}}
"""


def fleet(live, tmp_path, admin: bool):
    token = tmp_path / "admin.token"
    token.write_text(TOKEN)
    token.chmod(0o600)
    overrides = [f"components.dm_server.admin={{url: 'http://127.0.0.1:{live.admin.server_address[1]}', "
                 f"token_file: '{token}'}}"] if admin else []
    sc = parse_scenario(SCENARIO.format(port=live.https.server_address[1]), "real.yaml", overrides)
    res = run_scenario(sc, tmp_path, plots=False)
    with open(tmp_path / "sessions.csv", newline="") as f:
        return res, list(csv.DictReader(f))


def test_fleet_against_a_real_https_psk_server(live, tmp_path):
    res, rows = fleet(live, tmp_path, admin=True)
    assert res.summary["success_rate"] == 1.0 and len(rows) == 6
    # every device brought its own PSK (from its bootstrap) to the server, besides the lab one
    assert len(live.psks) == 7 and all(a.has_psk for a in live.core.accounts.values())
    assert {a.auth_scheme for a in live.core.accounts.values()} == {AUTH_HMAC_SHA256, "syncml:auth-md5"}
    assert all(0 < float(r["t_session_end"]) - float(r["t_session_start"]) < 5 for r in rows)


def test_fleet_against_https_without_an_admin_listener_says_why(live, tmp_path):
    res, rows = fleet(live, tmp_path, admin=False)
    assert {r["reason"] for r in rows} == {"provision_failed"}
    assert json.loads((tmp_path / "summary.json").read_text())["failure_reasons"] == {"provision_failed": 6}
