"""``dmsim server``: options, --config errors (exit 2 with file:line), and a real run serving
HTTP and HTTPS from a config file, stopped by SIGTERM with its store kept."""
import http.client
import json
import os
import signal
import subprocess
import sys

import pytest
from click.testing import CliRunner

from dmsim.devices.dm_client import DmClient, Done, Send
from dmsim.base.errors import DmsimError
from dmsim.network.dm import tls
from dmsim.network.dm.account import DmAccount
from dmsim.sim.real.dm_http_server import PROVISION_PATH, account_to_json
from dmsim.sim.real.dm_store import SqliteAccounts
from dmsim.sim.real.tls_socket import TlsHttpConnection
from dmsim.sim.cli.server import load_config, server
from dmsim.sim.links.transports import parse_psk

DEV = "IMSI:001010000000042"
TOKEN = "admin-token-of-the-cli-tests"


def invoke(*args):
    return CliRunner().invoke(server, list(args))


def test_help_lists_the_options():
    res = invoke("--help")
    assert res.exit_code == 0
    for opt in ("--config", "--http", "--https", "--psk", "--cert", "--key", "--db"):
        assert opt in res.output


@pytest.mark.parametrize("text,where,what", [
    ("http: 127.0.0.1:0\nhttps: 127.0.0.1:0\nport: 3\n", ":3", "unknown key 'port'"),
    ("psk:\n  - id1:00ff\n  - id2:xyz\n", ":3", "psk.1"),
    ("https: 127.0.0.1:99999\n", ":1", "out of range"),
    ("https: 127.0.0.1:0\ncert: c.pem\n", ":2", "key"),
    ("http: [1, 2\n", ":2", "invalid YAML"),
    ("- a list\n", ":1", "mapping"),
    ("server_id: 5\n", ":1", "expected a string"),
])
def test_config_errors_exit_2_with_file_and_line(tmp_path, text, where, what):
    cfg = tmp_path / "server.yaml"
    cfg.write_text(text)
    res = invoke("--config", str(cfg))
    assert res.exit_code == 2, res.output
    assert f"server.yaml{where}" in res.output and what in res.output


def test_bad_flags_exit_2(tmp_path):
    assert "IDENTITY:HEXKEY" in invoke("--https", "127.0.0.1:0", "--psk", "nokey").output
    assert invoke("--https", "127.0.0.1:0", "--psk", "id:0g").exit_code == 2
    assert "go together" in invoke("--https", "127.0.0.1:0", "--cert", "x.pem").output
    assert invoke("--config", str(tmp_path / "missing.yaml")).exit_code == 2
    (tmp_path / "c.pem").write_text("not a certificate")
    (tmp_path / "k.pem").write_text("not a key")
    res = invoke("--https", "127.0.0.1:0", "--cert", str(tmp_path / "c.pem"), "--key", str(tmp_path / "k.pem"))
    assert res.exit_code == 2 and "PEM" in res.output
    (tmp_path / "bad.sqlite").write_bytes(b"junk" * 500)
    assert invoke("--http", "127.0.0.1:0", "--db", str(tmp_path / "bad.sqlite")).exit_code == 2


def test_psk_identity_may_hold_colons_and_paths_follow_the_file(tmp_path):
    assert parse_psk("IMEI:490154203237518:00ff", "--psk") == (b"IMEI:490154203237518", b"\x00\xff")
    cfg = tmp_path / "server.yaml"
    cfg.write_text("db: state/dm.sqlite\npsk: ['a:b:0011']\n")
    data = load_config(cfg)
    assert data["db"] == str(tmp_path / "state/dm.sqlite") and data["psk"] == ["a:b:0011"]
    assert data["http"] is None and data["server_id"] == "dmsim-server"


@pytest.fixture
def served(tmp_path):
    """Start `dmsim server --config` (HTTP and HTTPS on free ports) with --server-id on top."""
    (tmp_path / "admin.token").write_text(TOKEN)
    (tmp_path / "admin.token").chmod(0o600)
    (tmp_path / "server.yaml").write_text(
        "server_id: from-file\nhttp: 127.0.0.1:0\nhttps: 127.0.0.1:0\ndb: dm.sqlite\n"
        "admin: 127.0.0.1:0\nadmin_token_file: admin.token\n"
        "psk:\n  - IMEI:490154203237518:00112233445566778899aabbccddeeff\n")
    proc = subprocess.Popen([sys.executable, "-m", "dmsim.sim.cli.server", "--config", str(tmp_path / "server.yaml"),
                             "--server-id", "from-flag"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        yield proc, json.loads(proc.stdout.readline() or proc.stderr.read())
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()


def test_serves_http_and_https_from_a_config_file(served, tmp_path):
    proc, info = served
    assert info["server_id"] == "from-flag" and info["tls"] == "psk" and info["psk_identities"] == 1
    assert info["listening"] == info["http"] and info["https"].startswith("https://127.0.0.1:")
    account = DmAccount("from-flag", info["https"], "n", "p", "from-flag", "s", os.urandom(16), os.urandom(16))
    admin_port = int(info["admin"].rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", admin_port, timeout=5)
    conn.request("POST", PROVISION_PATH, json.dumps(account_to_json(DEV, account)),
                 {"Authorization": f"Bearer {TOKEN}"})
    assert conn.getresponse().status == 200
    conn.close()

    https_port = int(info["https"].split(":")[2].split("/")[0])
    config = tls.psk_client_config(b"IMEI:490154203237518", bytes.fromhex("00112233445566778899aabbccddeeff"))
    conn = TlsHttpConnection("127.0.0.1", https_port, config, timeout=5)
    client = DmClient(account, DEV, {"DevId": DEV, "Mod": "m"}, 1, os.urandom)
    step = client.start()
    while isinstance(step, Send):
        conn.request("POST", "/dm", step.body, {"Content-Type": step.content_type})
        resp = conn.getresponse()
        step = client.receive(resp.read(), resp.getheader("Content-Type"))
    conn.close()
    assert step == Done(True)

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    with SqliteAccounts(tmp_path / "dm.sqlite") as store:
        assert store[DEV].client_nonce == client.account.client_nonce
        assert b"IMEI:490154203237518" in store.psks


def test_hmac_window_must_be_positive():
    from click.testing import CliRunner

    from dmsim.sim.cli.main import main
    res = CliRunner().invoke(main, ["server", "--hmac-window", "0"])
    assert res.exit_code == 2 and "--hmac-window" in res.output


def test_hmac_window_reaches_the_server_core():
    from dmsim.sim.real.dm_http_server import default_server
    assert default_server("s", "127.0.0.1", 1, hmac_window=42.0).hmac.max_age == 42.0


def test_https_without_any_credential_is_refused(tmp_path, monkeypatch):
    res = invoke("--https", "127.0.0.1:0")
    assert res.exit_code == 2 and "no TLS credentials" in res.output and "--psk" in res.output
    assert len(res.output.strip().splitlines()) == 1
    # a store that already holds a PSK is enough
    db = tmp_path / "dm.sqlite"
    store = SqliteAccounts(str(db))
    store.psks[b"dev1"] = bytes(16)
    store.close()
    started = []
    monkeypatch.setattr("dmsim.sim.cli.server._run", lambda listeners, info: started.append(info))
    res = invoke("--https", "127.0.0.1:0", "--db", str(db))
    assert res.exit_code == 0, res.output
    assert started[0]["tls"] == "psk" and started[0]["psk_identities"] == 1


def test_account_add_list_remove(tmp_path):
    db = str(tmp_path / "dm.sqlite")
    (tmp_path / "pw").write_text("server-secret\n")
    res = invoke("account", "add", "--db", db, "--device", "IMEI:490154203237518", "--client-name", "dev1",
                 "--client-password", "client-secret", "--server-id", "srv", "--server-password-file",
                 str(tmp_path / "pw"), "--auth", "hmac", "--server-auth", "md5", "--client-nonce", "abc",
                 "--psk", "00ff00ff")
    assert res.exit_code == 0, res.output
    with SqliteAccounts(db) as store:
        acc = store["IMEI:490154203237518"]
        assert (acc.client_password, acc.server_password, acc.client_nonce) == ("client-secret", "server-secret", b"abc")
        assert acc.auth_scheme == "syncml:auth-hmac-sha256" and acc.server_auth_scheme == "syncml:auth-md5"
        assert store.psks[b"IMEI:490154203237518"] == b"\x00\xff" * 2
        assert len(acc.server_nonce) == 16
    again = invoke("account", "add", "--db", db, "--device", "IMEI:490154203237518", "--client-name", "x",
                   "--client-password", "y", "--server-id", "srv", "--server-password", "z")
    assert again.exit_code == 2 and "already has an account" in again.output
    listed = invoke("account", "list", "--db", db, "--json")
    assert listed.exit_code == 0
    row = json.loads(listed.output)
    assert row == {"device": "IMEI:490154203237518", "client_name": "dev1", "server_id": "srv", "auth": "hmac",
                   "psk_identity": "IMEI:490154203237518"}
    assert "secret" not in invoke("account", "list", "--db", db).output
    assert invoke("account", "remove", "--db", db, "--device", "IMEI:490154203237518").exit_code == 0
    with SqliteAccounts(db) as store:
        assert len(store) == 0 and len(store.psks) == 0
    assert invoke("account", "remove", "--db", db, "--device", "nobody").exit_code == 2


def test_config_accounts_are_enrolled_once(tmp_path, monkeypatch):
    cfg = tmp_path / "server.yaml"
    cfg.write_text("db: dm.sqlite\naccounts:\n  - {device: 'IMSI:1', client_name: a, client_password: b, "
                   "server_password: c, auth: sha256}\n")
    cfg.chmod(0o600)
    monkeypatch.setattr("dmsim.sim.cli.server._run", lambda listeners, info: None)
    assert invoke("--config", str(cfg), "--http", "127.0.0.1:0").exit_code == 0
    with SqliteAccounts(tmp_path / "dm.sqlite") as store:
        first = store["IMSI:1"]
        assert first.auth_scheme == "syncml:auth-sha256" and first.server_id == "dmsim-server"
        assert first.client_password == "" and first.client_hash  # a digest scheme keeps B64(H(name:password))
        store["IMSI:1"] = first.with_nonces(client=b"moved-on")
    assert invoke("--config", str(cfg), "--http", "127.0.0.1:0").exit_code == 0
    with SqliteAccounts(tmp_path / "dm.sqlite") as store:
        assert store["IMSI:1"].client_nonce == b"moved-on"  # a restart does not reset the nonces
    assert (tmp_path / "dm.sqlite.audit.jsonl").exists()


def test_admin_listener_rules(tmp_path):
    token = tmp_path / "token"
    token.write_text("short")
    token.chmod(0o600)
    assert "go together" in invoke("--admin", "127.0.0.1:0").output
    assert "loopback" in invoke("--admin", "0.0.0.0:0", "--admin-token-file", str(token)).output
    assert "16 characters" in invoke("--admin", "127.0.0.1:0", "--admin-token-file", str(token)).output
    token.write_text("a-long-enough-admin-token")
    token.chmod(0o644)
    assert "readable by others" in invoke("--admin", "127.0.0.1:0", "--admin-token-file", str(token)).output
    psks = tmp_path / "psks"
    psks.write_text("id:00ff\n")
    psks.chmod(0o644)
    assert "readable by others" in invoke("--https", "127.0.0.1:0", "--psk-file", str(psks)).output


def test_default_audit_log_lives_in_the_state_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    started = []
    monkeypatch.setattr("dmsim.sim.cli.server._run", lambda listeners, info: started.append(info))
    assert invoke("--http", "127.0.0.1:0").exit_code == 0
    assert started[0]["audit_log"] == str(tmp_path / "state" / "dmsim" / "server-audit.jsonl")
    line = json.loads((tmp_path / "state" / "dmsim" / "server-audit.jsonl").read_text().splitlines()[0])
    assert line["event"] == "server_started"


def test_state_file_is_in_the_state_folder_made_private(tmp_path, monkeypatch):
    from dmsim.sim.cli.server import state_file
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert state_file("lwm2m-audit.jsonl") == str(tmp_path / "state" / "dmsim" / "lwm2m-audit.jsonl")
    assert (tmp_path / "state" / "dmsim").stat().st_mode & 0o777 == 0o700


def test_client_ca_makes_the_real_server_require_client_certificates(tmp_path):
    """`dmsim server --client-ca` (OMA-TS-DM_Security §5.4, DM-SEC-S-002-M): in X.509 mode a client
    with a certificate of that CA gets through the handshake (and an HTTP answer), one without a
    certificate or with another CA's does not."""
    from dmsim.network.dm import tls_pki
    from dmsim.sim.real.tls_socket import TlsHttpConnection
    lab, other = tls_pki.LabCa(b"cli test lab CA -------------"), tls_pki.LabCa(b"another CA ------------------")
    server = lab.issue_server("localhost")
    for name, data in (("ca.pem", lab.ca_pem), ("cert.pem", server.cert_pem), ("key.pem", server.key_pem)):
        (tmp_path / name).write_bytes(data)
    (tmp_path / "key.pem").chmod(0o600)
    assert "needs --cert" in invoke("--https", "127.0.0.1:0", "--client-ca", str(tmp_path / "ca.pem")).output
    proc = subprocess.Popen([sys.executable, "-m", "dmsim.sim.cli.server", "--https", "127.0.0.1:0",
                             "--cert", str(tmp_path / "cert.pem"), "--key", str(tmp_path / "key.pem"),
                             "--client-ca", str(tmp_path / "ca.pem")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        info = json.loads(proc.stdout.readline() or proc.stderr.read())
        assert info["client_certificates"] is True
        port = int(info["https"].split(":")[2].split("/")[0])

        def post(cred):
            config = tls.x509_client_config(lab.ca_pem, "localhost", cert_pem=cred and cred.cert_pem,
                                            key_pem=cred and cred.key_pem)
            conn = TlsHttpConnection("127.0.0.1", port, config, timeout=5)
            try:
                conn.request("POST", "/dm", b"\x03junk", {"Content-Type": "application/vnd.syncml.dm+wbxml"})
                return conn.getresponse().status
            except (OSError, DmsimError, http.client.HTTPException):
                return None
            finally:
                conn.close()

        assert post(lab.issue_device(DEV)) == 400  # through TLS; the body is no DM message
        assert post(None) is None
        assert post(other.issue_device(DEV)) is None
    finally:
        proc.kill()
        proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()
