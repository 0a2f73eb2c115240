"""Each defence of the real DM server, attacked from 127.0.0.1 (issue 13). Every loop is bounded
and its bound stated; deadlines are shortened (Limits) so that each attack takes about a second."""
import dataclasses
import http.client
import json
import os
import socket
import sqlite3
import stat
import subprocess
import sys
import threading
import time

import pytest

from dmsim.devices.dm_client import DmClient, Done, Send
from dmsim.network.dm import tls
from dmsim.network.dm.tls import TlsEndpoint
from dmsim.sim.real.audit_log import AuditLog
from dmsim.sim.real.dm_http_server import (PROVISION_PATH, DmService, Limits, account_to_json, default_server,
                                           make_admin_server, make_http_server, make_https_server)
from dmsim.sim.real.dm_store import SqliteAccounts

DEV = "IMSI:001010000000042"
LAB = (b"lab", bytes(range(16)))
TOKEN = "attack-tests-admin-token"
SHORT = Limits(max_connections=8, max_per_address=4, handshake_deadline=1.0, request_deadline=1.0)


class Live:
    """HTTP, PSK-TLS and admin listeners on one core with the SHORT limits and an audit log."""

    def __init__(self, tmp_path, limits=SHORT):
        self.psks = {LAB[0]: LAB[1]}
        self.core = default_server("dmsim-server", "127.0.0.1", 0)
        self.audit_path = tmp_path / "audit.jsonl"
        self.service = DmService(self.core, self.psks, audit=AuditLog(str(self.audit_path)), protected={LAB[0]})
        self.http = make_http_server("127.0.0.1", 0, self.service, limits=limits)
        self.https = make_https_server("127.0.0.1", 0, self.service, tls.server_config(psks=self.psks, mode="psk"),
                                       limits=limits)
        self.admin = make_admin_server("127.0.0.1", 0, self.service, TOKEN)
        self.servers = (self.http, self.https, self.admin)
        for s in self.servers:
            threading.Thread(target=s.serve_forever, args=(0.05,), daemon=True).start()
        self.port = self.http.server_address[1]

    def stop(self):
        for s in self.servers:
            s.shutdown()
            s.server_close()
        self.service.audit.close()


@pytest.fixture
def live(tmp_path):
    srv = Live(tmp_path)
    yield srv
    srv.stop()


def post(port, path, body, headers=None, ctype="application/vnd.syncml.dm+wbxml"):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("POST", path, body, {"Content-Type": ctype, **(headers or {})})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def session(port, client, path="/dm", now=None):
    """Run one DM session over HTTP; return (Done, the Sends)."""
    step, sent = client.start(now or 0.0), []
    for _ in range(10):  # bound: a DM session here is 2 exchanges
        if not isinstance(step, Send):
            break
        sent.append(step)
        status, headers, body = post(port, path, step.body, step.headers, step.content_type)
        step = client.receive(body, headers.get("content-type", ""), headers, now or 0.0)
    return step, sent


def raw(port, data, timeout=5.0):
    """Send ``data`` on a fresh connection; return everything read until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
        return out


def lives_for(port, first: bytes, drip: bytes, every: float, limit: int) -> float:
    """Send ``first``, then one byte of ``drip`` every ``every`` s (at most ``limit`` bytes);
    return how long the server kept the connection open."""
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(first)
        for i in range(limit):
            time.sleep(every)
            try:
                s.sendall(drip[i % len(drip):i % len(drip) + 1])
                s.settimeout(0.01)
                if s.recv(1) == b"":
                    break
            except TimeoutError:
                continue
            except OSError:
                break
    return time.monotonic() - t0


# --- provisioning: account takeover -------------------------------------------------------------

def test_provisioning_needs_the_admin_listener_and_token_and_never_takes_over(live):
    victim = live.core.provision(DEV, client_name="victim", client_password="pw", server_password="spw")
    attacker = dataclasses.replace(victim, client_name="attacker", client_password="mine",
                                   psk_identity=LAB[0], psk_key=b"\xee" * 16)
    body = json.dumps(account_to_json(DEV, attacker, replace=True)).encode()
    # the DM listeners do not provision (the JSON reaches the DM service: 400)
    assert post(live.port, PROVISION_PATH, body, ctype="application/json")[0] == 400
    assert post(live.admin.server_address[1], PROVISION_PATH, body, ctype="application/json")[0] == 401
    assert post(live.admin.server_address[1], PROVISION_PATH, body, {"Authorization": "Bearer wrong-token-123456"},
                ctype="application/json")[0] == 401
    # even the admin cannot replace the server's own PSK identity
    status, _, text = post(live.admin.server_address[1], PROVISION_PATH, body, {"Authorization": f"Bearer {TOKEN}"},
                           ctype="application/json")
    assert status == 409 and b"PSK identity" in text
    assert live.core.accounts[DEV].client_name == "victim" and live.psks[LAB[0]] == LAB[1]
    # nor overwrite an account without saying so
    plain = json.dumps(account_to_json(DEV, dataclasses.replace(victim, client_name="x"))).encode()
    assert post(live.admin.server_address[1], PROVISION_PATH, plain, {"Authorization": f"Bearer {TOKEN}"},
                ctype="application/json")[0] == 409
    with pytest.raises(Exception, match="loopback"):
        make_admin_server("0.0.0.0", 0, live.service, TOKEN)


# --- HMAC replay across a kill -9 restart -------------------------------------------------------

def _start_server(db, tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "dmsim.sim.cli.server", "--http", "127.0.0.1:0", "--db", str(db),
                             "--audit-log", str(tmp_path / "audit.jsonl")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    info = json.loads(proc.stdout.readline() or proc.stderr.read())
    return proc, int(info["http"].rsplit(":", 1)[1].split("/")[0])


def test_hmac_replay_after_a_kill_9_restart_is_refused(tmp_path):
    db = tmp_path / "dm.sqlite"
    from click.testing import CliRunner
    from dmsim.sim.cli.server import server
    res = CliRunner().invoke(server, ["account", "add", "--db", str(db), "--device", DEV, "--client-name", "dev",
                                      "--client-password", "cpw", "--server-id", "dmsim-server",
                                      "--server-password", "spw", "--auth", "hmac"])
    assert res.exit_code == 0, res.output
    with SqliteAccounts(db) as store:
        account = store[DEV]
    proc, port = _start_server(db, tmp_path)
    try:
        done, sent = session(port, DmClient(account, DEV, {"DevId": DEV}, 7, os.urandom), now=time.time())
        assert done == Done(True)
    finally:
        proc.kill()  # SIGKILL: no clean shutdown
        proc.wait(10)
        proc.stdout.close()
        proc.stderr.close()
    proc, port = _start_server(db, tmp_path)
    try:
        # the first package of the finished session, replayed on the restarted server (was 200 before)
        assert post(port, "/dm", sent[0].body, sent[0].headers, sent[0].content_type)[0] == 401
    finally:
        proc.kill()
        proc.wait(10)
        proc.stdout.close()
        proc.stderr.close()


# --- deadlines, connection cap, backlog ---------------------------------------------------------

def test_a_trickled_request_is_cut_at_its_deadline(live):
    # bound: at most 40 bytes, one every 0.1 s (4 s); the request deadline is 1 s
    lived = lives_for(live.port, b"POST /dm HTTP/1.1\r\nContent-Length: 100\r\n\r\n", b"x", 0.1, 40)
    assert lived < 2.5


def test_a_trickled_tls_handshake_is_cut_at_its_deadline(live):
    hello = TlsEndpoint(tls.psk_client_config(*LAB)).data_to_send()
    # bound: at most 40 bytes of the ClientHello, one every 0.1 s; the handshake deadline is 1 s
    lived = lives_for(live.https.server_address[1], hello[:1], hello[1:], 0.1, 40)
    assert lived < 2.5


def test_connections_are_capped_and_refused_cheaply(live):
    threads_before = threading.active_count()
    socks = []
    try:
        for _ in range(20):  # bound: 20 connections, each a stalled body of the largest size
            s = socket.create_connection(("127.0.0.1", live.port), timeout=5)
            s.sendall(b"POST /dm HTTP/1.1\r\nContent-Length: %d\r\n\r\nabc" % SHORT.max_body)
            socks.append(s)
        time.sleep(0.3)
        refused = 0
        for s in socks:
            s.settimeout(0.2)
            try:
                refused += s.recv(1) == b""
            except TimeoutError:
                pass
            except ConnectionResetError:
                refused += 1
        assert refused >= 20 - SHORT.max_per_address
        assert threading.active_count() - threads_before <= SHORT.max_per_address
    finally:
        for s in socks:
            s.close()
    assert live.http.request_queue_size == 128 and Limits().backlog == 128
    time.sleep(1.2)  # the stalled ones meet their deadline; the server serves again
    assert post(live.port, "/dm", b"\x03junk")[0] == 400


def test_the_core_lock_is_not_held_while_parsing(live):
    junk = b"<SyncML>" + b"<a>x</a>" * ((SHORT.max_body - 20) // 8)  # the largest body, XML but no DM message
    big = b"<SyncML>" + b"<a>x</a>" * (1 << 17)  # 1 MiB: above the advertised MaxMsgSize
    with live.service.lock:  # the core is busy: refusing junk must not wait for it
        t0 = time.monotonic()
        assert post(live.port, "/dm", junk, ctype="application/vnd.syncml.dm+xml")[0] == 400
        assert post(live.port, "/dm", big, ctype="application/vnd.syncml.dm+xml")[0] == 413
        assert time.monotonic() - t0 < 4


def _send_oversized(port: int, total: int, seconds: float):
    """Post a ``total``-octet body (above max_body) with a 4 KiB send buffer, for at most
    ``seconds``; return (the octets sent, the answer read back or the error that ended it)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=seconds)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    s.sendall(b"POST /dm HTTP/1.1\r\nHost: x\r\nContent-Type: application/vnd.syncml.dm+xml\r\n"
              b"Content-Length: %d\r\n\r\n" % total)
    sent, end = 0, time.monotonic() + seconds
    try:
        while sent < total and time.monotonic() < end:  # bound: the octets and the seconds
            sent += s.send(b"x" * min(65536, total - sent))
        data = b""
        while time.monotonic() < end:  # bound: the seconds
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        return sent, data
    except OSError as exc:
        return sent, exc
    finally:
        s.close()


def test_an_oversized_body_still_reads_its_413(live):
    """RFC 7230 §6.6: the server lingers (discards the body) rather than resetting a peer that is
    still sending, so the 413 it wrote is read, not lost to EPIPE/ECONNRESET."""
    for _ in range(3):  # bound: 3 tries, each under 5 s
        sent, answer = _send_oversized(live.port, 1 << 20, 5.0)
        assert sent == 1 << 20 and isinstance(answer, bytes), answer
        assert answer.startswith(b"HTTP/1.1 413 ") and b"Connection: close" in answer


def test_lingering_after_a_refusal_is_bounded(tmp_path):
    """A peer that never stops sending holds the thread at most linger_seconds / linger_bytes."""
    limits = dataclasses.replace(SHORT, linger_bytes=256 << 10, linger_seconds=0.5)
    srv = Live(tmp_path, limits)
    try:
        t0 = time.monotonic()
        sent, answer = _send_oversized(srv.port, 1 << 30, 5.0)
        assert time.monotonic() - t0 < 3
        assert sent < 16 << 20  # cut after the bound (plus socket buffers), not after 1 GiB
        assert isinstance(answer, (OSError, bytes))
    finally:
        srv.stop()


def test_vanished_sessions_expire(live):
    account = live.core.provision(DEV, client_name="n", client_password="p", server_password="s")
    post(live.port, "/dm", DmClient(account, DEV, {"DevId": DEV}, 3, os.urandom).start().body)
    assert live.core.sessions.get(DEV)
    live.service.session_idle, live.service._last_expire = 0.0, 0.0
    other = live.core.provision("IMSI:2", client_name="m", client_password="p", server_password="s")
    post(live.port, "/dm", DmClient(other, "IMSI:2", {"DevId": "IMSI:2"}, 1, os.urandom).start().body)
    assert not live.core.sessions.get(DEV)


# --- authentication backoff and the audit log ---------------------------------------------------

def test_auth_failures_back_off_per_address_and_are_audited(live):
    account = live.core.provision(DEV, client_name="n", client_password="right-password", server_password="spw")
    guess = dataclasses.replace(account, client_password="guess")
    statuses = []
    for sid in range(1, 9):  # bound: 8 guesses; the backoff starts after 5 failures
        statuses.append(post(live.port, "/dm", DmClient(guess, DEV, {"DevId": DEV}, sid, os.urandom).start().body)[0])
    assert 429 in statuses
    # while backed off, even the right password is refused without reaching the core
    status, headers, _ = post(live.port, "/dm", DmClient(account, DEV, {"DevId": DEV}, 20, os.urandom).start().body)
    assert status == 429 and int(headers["retry-after"]) >= 1
    live.service.audit.close()
    text = live.audit_path.read_text()
    records = [json.loads(line) for line in text.splitlines()]
    assert stat.S_IMODE(os.stat(live.audit_path).st_mode) == 0o600
    # the core's authentication events, logged generically (per attempt, or per failed session)
    failures = [r for r in records if "auth" in r["event"] and r["outcome"] not in ("ok", "success")]
    assert failures and all(r["peer"] == "127.0.0.1" and r["device"] == DEV and "http" in r["mechanism"]
                            for r in failures)
    assert any(r["event"] == "access" and r["status"] == 429 for r in records)
    for secret in ("right-password", "guess", "spw", account.client_nonce.hex(), LAB[1].hex()):
        assert secret not in text


def test_the_audit_log_is_rotated_and_bounded(tmp_path):
    log = AuditLog(str(tmp_path / "a.jsonl"), max_bytes=1000, backups=2)
    for i in range(200):  # bound: 200 records of about 80 octets
        log.write("access", peer="127.0.0.1", device="x" * 500, status=200)
    log.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["a.jsonl", "a.jsonl.1", "a.jsonl.2"]
    assert all((tmp_path / f).stat().st_size <= 1000 for f in files)


# --- TLS ----------------------------------------------------------------------------------------

def last_record(port, config):
    """Return (content type, body) of the last record the server sent during a failed handshake."""
    endpoint = TlsEndpoint(config)
    got = b""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(endpoint.data_to_send())
        for _ in range(20):  # bound: a handshake is a few flights
            data = s.recv(65536)
            if not data:
                break
            got += data
            endpoint.receive_data(data)
            try:
                s.sendall(endpoint.data_to_send())
            except OSError:
                break
    records, i = [], 0
    while i + 5 <= len(got):
        n = int.from_bytes(got[i + 3:i + 5], "big")
        records.append((got[i], got[i + 5:i + 5 + n]))
        i += 5 + n
    return records[-1]


def test_unknown_psk_identity_and_wrong_key_look_alike(live):
    port = live.https.server_address[1]
    wrong_key = last_record(port, tls.psk_client_config(LAB[0], b"\x01" * 16))
    unknown = last_record(port, tls.psk_client_config(b"nobody", LAB[1]))
    assert wrong_key == unknown == (21, b"\x02\x14")  # fatal bad_record_mac for both (was 115 for unknown)


@pytest.mark.skipif(not __import__("shutil").which("openssl"), reason="needs openssl")
def test_renegotiation_closes_the_connection(live):
    port = live.https.server_address[1]
    proc = subprocess.Popen(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-psk", LAB[1].hex(),
                             "-psk_identity", LAB[0].decode(), "-tls1_2"], stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # not -quiet: it disables R
    try:
        time.sleep(0.7)  # the handshake (bounded by the 1 s handshake deadline)
        t0 = time.monotonic()
        proc.stdin.write(b"R\n")  # s_client's command: renegotiate
        proc.stdin.flush()
        proc.wait(timeout=5)  # before: hung until a timeout
        assert time.monotonic() - t0 < 0.9  # well inside the 1 s request deadline: refused, not timed out
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


# --- HTTP framing (RFC 7230 §3.3.3) -------------------------------------------------------------

@pytest.mark.parametrize("headers", [
    b"Content-Length: 5\r\nContent-Length: 5\r\n",
    b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
    b"Content-Length: " + b"9" * 5000 + b"\r\n",
    b"Content-Length: 5, 5\r\n",
])
def test_ambiguous_framing_is_a_400_and_closes(live, headers):
    smuggled = b"POST /dm HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
    reply = raw(live.port, b"POST /dm HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\nhello" + smuggled)
    assert reply.startswith(b"HTTP/1.1 400") and reply.count(b"HTTP/1.1") == 1


def test_any_path_reaches_the_dm_service(live):
    account = live.core.provision(DEV, client_name="n", client_password="p", server_password="s")
    assert session(live.port, DmClient(account, DEV, {"DevId": DEV}, 9, os.urandom), "/funambol/dm")[0] == Done(True)


# --- secrets at rest ----------------------------------------------------------------------------

def test_store_is_private_and_durable(tmp_path):
    with SqliteAccounts(tmp_path / "dm.sqlite") as store:
        store.psks[b"id"] = b"k" * 16
        assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    for name in os.listdir(tmp_path):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o600, name
    (tmp_path / "old.sqlite").write_bytes(b"")
    os.chmod(tmp_path / "old.sqlite", 0o644)
    with SqliteAccounts(tmp_path / "old.sqlite", durability="normal") as store:
        assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 1
    assert stat.S_IMODE(os.stat(tmp_path / "old.sqlite").st_mode) == 0o600
    with pytest.raises(Exception, match="durability"):
        SqliteAccounts(tmp_path / "x.sqlite", durability="sometimes")


def test_psk_file_keeps_the_key_off_the_command_line(tmp_path):
    key = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
    psk_file = tmp_path / "psks"
    psk_file.write_text(f"# lab\nlab:{key}\n")
    psk_file.chmod(0o600)
    proc = subprocess.Popen([sys.executable, "-m", "dmsim.sim.cli.server", "--https", "127.0.0.1:0",
                             "--psk-file", str(psk_file), "--db", str(tmp_path / "dm.sqlite")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        info = json.loads(proc.stdout.readline() or proc.stderr.read())
        assert info["psk_identities"] == 1
        assert key not in open(f"/proc/{proc.pid}/cmdline", "rb").read().decode(errors="replace")
    finally:
        proc.kill()
        proc.wait(10)
        proc.stdout.close()
        proc.stderr.close()
    with sqlite3.connect(tmp_path / "dm.sqlite") as db:
        assert db.execute("SELECT key FROM psks").fetchone()[0] == bytes.fromhex(key)
