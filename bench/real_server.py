"""Benchmark: complete DM sessions per wall-clock second against the real ``dmsim server`` on
loopback, over plain HTTP and over HTTPS in PSK-TLS and X.509 modes (seed 000 §9.2.2).

The server runs in its own process (``dmsim server --http --https --db --cert --key``, so client
and server do not share a GIL; ``--server inproc`` runs it on threads of this process instead,
and that is also the fallback when the subprocess does not come up). N devices are provisioned
through the lab endpoint ``POST /dmsim/provision`` of the admin listener (``--admin``, with a
bearer token from a file; each device with its own passwords, nonces and TLS PSK), then every mode runs N sessions (packages 1-4, ``syncml:auth-md5``, WBXML, the server's
default script) with C client processes, each device in one session per run:

- ``http``: one TCP connection per session, HTTP/1.1 keep-alive across its packages;
- ``http-ka``: one TCP connection per client process, kept alive across all its sessions;
- ``psk``: one PSK-TLS handshake per session, TLS_PSK_WITH_AES_128_GCM_SHA256 only (the
  device's own identity and key);
- ``x509``: one handshake per session, TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 only, the server
  holding a self-signed ECDSA P-256 certificate that the client validates (the ECDHE curve is
  mbedtls's choice; it is probed once and printed).

Prints, per mode and concurrency: sessions that ended ok, wall seconds, sessions per second,
p50/p99 session latency (connect to last reply), mean handshake time (TCP connect plus TLS
handshake) and its share of the session time, the server's CPU milliseconds per session and the
negotiated suite. Then the SQLite store size, and a persisted-store restart: reopening the file
with its N accounts (``SqliteAccounts``: open and count, then read every account) and a full
server restart up to the first session that authenticates with the nonces the store kept.

    .venv/bin/python bench/real_server.py [--sessions 300] [--concurrency 1,4]
                                          [--modes http,psk,x509] [--server subprocess|inproc] [--json]

Client nonces follow the server's NextNonce from session to session, so a session needs no
re-challenge (the ``retries`` total says otherwise). The machine's load average is printed
before and after: on a shared machine the numbers move with it.
"""
from __future__ import annotations

import argparse
import dataclasses
import http.client
import json
import math
import multiprocessing as mp
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from dmsim.devices.dm_client import DmClient, Send
from dmsim.network.dm import tls
from dmsim.network.dm import tls_suites as suites
from dmsim.network.dm.account import DmAccount
from dmsim.network.dm.auth import AUTH_MD5
from dmsim.sim.real.dm_http_server import (PROVISION_PATH, DmService, account_to_json, default_server,
                                          make_admin_server, make_http_server, make_https_server)
from dmsim.sim.real.dm_store import SqliteAccounts
from dmsim.sim.real.tls_socket import TlsHttpConnection
from dmsim.sim.links.transports import server_credential
from dmsim.base.errors import DmsimError

SERVER_ID = "dmsim-bench"
HOST = "localhost"  # the name in the server certificate
PSK_SUITE = "TLS_PSK_WITH_AES_128_GCM_SHA256"
X509_SUITE = "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"
MODES = ("http", "http-ka", "psk", "x509")
CURVE_NAMES = {23: "secp256r1 (P-256)", 24: "secp384r1", 25: "secp521r1", 29: "x25519",
               26: "brainpoolP256r1", 27: "brainpoolP384r1", 28: "brainpoolP512r1"}
TIMEOUT = 30.0
TOKEN = os.urandom(16).hex()  # the admin token of this run's server


def token_file(folder: Path) -> Path:
    """Return a mode-0600 file holding TOKEN in ``folder``."""
    path = folder / "admin.token"
    path.write_text(TOKEN)
    path.chmod(0o600)
    return path


# --- server ----------------------------------------------------------------------------------

def make_cert(folder: Path) -> tuple[Path, Path]:
    """Return (cert, key) paths of the PEMs of :func:`server_credential` for HOST, written to ``folder``."""
    cert_pem, key_pem = server_credential(HOST)
    cert_path, key_path = folder / "server.crt", folder / "server.key"
    cert_path.write_bytes(cert_pem)
    key_path.write_bytes(key_pem)
    return cert_path, key_path


class SubprocessServer:
    """``dmsim server`` in a child process; ``http``/``https`` are its (host, port)."""

    kind = "subprocess"

    def __init__(self, db: Path, cert: Path, key: Path):
        exe = Path(sys.executable).with_name("dmsim")
        cmd = [str(exe)] if exe.exists() else [sys.executable, "-c", "from dmsim.sim.cli.main import main; main()"]
        cmd += ["server", "--http", "127.0.0.1:0", "--https", "127.0.0.1:0", "--db", str(db),
                "--cert", str(cert), "--key", str(key), "--server-id", SERVER_ID,
                "--admin", "127.0.0.1:0", "--admin-token-file", str(token_file(db.parent))]
        self._err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self._err)
        line = self.proc.stdout.readline()
        try:
            info = json.loads(line)
            self.http, self.https = _host_port(info["http"]), _host_port(info["https"])
            self.admin = _host_port(info["admin"] + "/")
        except (ValueError, KeyError, TypeError):
            self.stop()
            self._err.seek(0)
            raise DmsimError(f"dmsim server did not start: {self._err.read().decode(errors='replace')[-500:]}")

    def cpu_seconds(self) -> float:
        """Return the server process's user + system CPU seconds so far."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self._err.close()


class InprocServer:
    """The same server on threads of this process (client processes are forked from it)."""

    kind = "inproc"

    def __init__(self, db: Path, cert: Path, key: Path):
        self.store = SqliteAccounts(db)
        core = default_server(SERVER_ID, "127.0.0.1", 0, scheme="https", accounts=self.store)
        service = DmService(core, self.store.psks)
        config = tls.server_config(psks=self.store.psks, cert_pem=cert.read_bytes(), key_pem=key.read_bytes(),
                                   mode="both")
        self.listeners = [make_http_server("127.0.0.1", 0, service), make_https_server("127.0.0.1", 0, service, config),
                          make_admin_server("127.0.0.1", 0, service, TOKEN)]
        self.http, self.https, self.admin = (s.server_address[:2] for s in self.listeners)
        core.server_uri = f"https://127.0.0.1:{self.https[1]}/dm"
        self.threads = [threading.Thread(target=s.serve_forever, args=(0.05,), daemon=True) for s in self.listeners]
        for t in self.threads:
            t.start()

    def cpu_seconds(self) -> float:
        """Return this process's CPU seconds (the server threads are its only work while clients run)."""
        return time.process_time()

    def stop(self) -> None:
        for s in self.listeners:
            s.shutdown()
            s.server_close()
        self.store.close()


def _host_port(url: str) -> tuple[str, int]:
    host, _, port = url.split("//", 1)[1].split("/", 1)[0].rpartition(":")
    return host, int(port)


def start_server(kind: str, db: Path, cert: Path, key: Path):
    """Return a running server of ``kind``; a subprocess that does not start falls back to inproc."""
    if kind == "subprocess":
        try:
            return SubprocessServer(db, cert, key)
        except (DmsimError, OSError) as exc:
            print(f"note: {exc}; falling back to an in-process server", file=sys.stderr)
    return InprocServer(db, cert, key)


# --- devices ---------------------------------------------------------------------------------

def device_uri(i: int) -> str:
    return f"IMSI:00101{i:010d}"


def new_account(i: int, server_uri: str) -> DmAccount:
    """Return device ``i``'s account: its own passwords, nonces and TLS PSK (auth-md5)."""
    r = os.urandom
    return DmAccount(server_id=SERVER_ID, server_uri=server_uri, client_name=f"dev{i}", client_password=r(8).hex(),
                     server_name=SERVER_ID, server_password=r(8).hex(), client_nonce=r(16), server_nonce=r(16),
                     auth_scheme=AUTH_MD5, psk_identity=f"bench-psk-{i}".encode(), psk_key=r(16))


def provision(admin_addr: tuple[str, int], accounts: list[DmAccount]) -> float:
    """Install every account through the admin listener on one keep-alive connection; return seconds."""
    conn = http.client.HTTPConnection(*admin_addr, timeout=TIMEOUT)
    t0 = time.perf_counter()
    for i, account in enumerate(accounts):
        conn.request("POST", PROVISION_PATH, json.dumps(account_to_json(device_uri(i), account)),
                     {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"})
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            raise DmsimError(f"provisioning device {i}: HTTP {resp.status} {body[:200]!r}")
    elapsed = time.perf_counter() - t0
    conn.close()
    return elapsed


# --- client side -----------------------------------------------------------------------------

def client_config(mode: str, account: DmAccount, ca_pem: bytes) -> tls.TlsConfig | None:
    """Return the TLS client config of ``mode`` restricted to its one benchmarked suite (None for HTTP)."""
    if mode == "psk":
        cfg = tls.psk_client_config(account.psk_identity, account.psk_key)
        return dataclasses.replace(cfg, suites=(suites.BY_IANA[PSK_SUITE],))
    if mode == "x509":
        return dataclasses.replace(tls.x509_client_config(ca_pem, HOST), suites=(suites.BY_IANA[X509_SUITE],))
    return None


def run_session(conn, device: str, account: DmAccount, session_id: int) -> tuple[bool, str, int, DmAccount]:
    """Run one DM session on the open ``conn``; return (ok, reason, auth retries, updated account)."""
    client = DmClient(account, device, {"DevId": device, "Mod": "dmsim-bench"}, session_id, os.urandom)
    step = client.start()
    while isinstance(step, Send):
        conn.request("POST", "/dm", step.body, {"Content-Type": step.content_type, **step.headers})
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            return False, f"HTTP {resp.status}", client.auth_retries, client.account
        step = client.receive(body, resp.getheader("Content-Type", ""), dict(resp.getheaders()))
    return step.ok, step.reason, client.auth_retries, client.account


def worker(pipe, barrier, mode: str, target: tuple[str, int], jobs: list[tuple[int, DmAccount]],
           ca_pem: bytes, session_id: int) -> None:
    """Run the sessions of ``jobs`` one after the other; send the records through ``pipe``."""
    try:
        prepared = [(i, account, client_config(mode, account, ca_pem)) for i, account in jobs]
        kept = None
        barrier.wait(TIMEOUT)
        start, cpu0 = time.monotonic(), time.process_time()
        records = []
        for i, account, cfg in prepared:
            t0 = time.monotonic()
            ok, reason, retries, cipher, account_after = False, "", 0, "", account
            conn = kept
            try:
                if conn is None:
                    conn = (http.client.HTTPConnection(*target, timeout=TIMEOUT) if cfg is None
                            else TlsHttpConnection(*target, cfg, timeout=TIMEOUT))
                    conn.connect()
                t_hs = time.monotonic() - t0
                cipher = conn.session.cipher if cfg is not None else ""
                ok, reason, retries, account_after = run_session(conn, device_uri(i), account, session_id)
            except (OSError, DmsimError, http.client.HTTPException) as exc:
                t_hs, reason = time.monotonic() - t0, f"{type(exc).__name__}: {exc}"
                if conn is not None:
                    conn.close()
                conn = kept = None
            else:
                if mode == "http-ka":
                    kept = conn
                else:
                    conn.close()
            records.append({"i": i, "ok": ok, "reason": reason, "retries": retries, "cipher": cipher,
                            "latency": time.monotonic() - t0, "handshake": t_hs, "account": account_after})
        if kept is not None:
            kept.close()
        pipe.send({"start": start, "end": time.monotonic(), "cpu": time.process_time() - cpu0, "records": records})
    except BaseException as exc:  # noqa: BLE001 - the parent reports any failure of the worker
        pipe.send({"error": f"{type(exc).__name__}: {exc}"})
    finally:
        pipe.close()


def percentile(values: list[float], q: float) -> float:
    """Return the nearest-rank ``q`` quantile (0 < q <= 1) of ``values``."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def run_point(server, mode: str, concurrency: int, accounts: list[DmAccount], ca_pem: bytes,
              session_id: int) -> dict:
    """Run one session per device in ``mode`` with ``concurrency`` client processes; update
    ``accounts`` with the nonces each session ended with; return the measures."""
    target = server.http if mode.startswith("http") else server.https
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(concurrency + 1)
    procs, pipes = [], []
    for w in range(concurrency):
        jobs = [(i, accounts[i]) for i in range(w, len(accounts), concurrency)]
        parent, child = ctx.Pipe(duplex=False)
        p = ctx.Process(target=worker, args=(child, barrier, mode, target, jobs, ca_pem, session_id), daemon=True)
        p.start()
        child.close()
        procs.append(p)
        pipes.append(parent)
    barrier.wait(TIMEOUT)
    cpu0 = server.cpu_seconds()
    outs = [pipe.recv() for pipe in pipes]
    server_cpu = server.cpu_seconds() - cpu0
    for p in procs:
        p.join(TIMEOUT)
    errors = [o["error"] for o in outs if "error" in o]
    if errors:
        raise DmsimError(f"{mode}: client process failed: {errors[0]}")
    records = [r for o in outs for r in o["records"]]
    for r in records:
        accounts[r["i"]] = r["account"]
    ok = [r for r in records if r["ok"]]
    wall = max(o["end"] for o in outs) - min(o["start"] for o in outs)
    lat = [r["latency"] for r in ok] or [0.0]
    failures = sorted({r["reason"] for r in records if not r["ok"]})
    return {"mode": mode, "concurrency": concurrency, "sessions": len(records), "ok": len(ok), "wall_s": wall,
            "sessions_per_s": len(ok) / wall if wall > 0 else 0.0,
            "p50_ms": 1000 * percentile(lat, 0.5), "p99_ms": 1000 * percentile(lat, 0.99),
            "handshake_ms": 1000 * sum(r["handshake"] for r in ok) / max(len(ok), 1),
            "handshake_share": sum(r["handshake"] for r in ok) / max(sum(lat), 1e-9),
            "server_cpu_ms": 1000 * server_cpu / max(len(records), 1),
            "client_cpu_ms": 1000 * sum(o["cpu"] for o in outs) / max(len(records), 1),
            "retries": sum(r["retries"] for r in records),
            "cipher": next((r["cipher"] for r in ok if r["cipher"]), "-"), "failures": failures[:3]}


# --- probes ----------------------------------------------------------------------------------

def probe_ecdhe_curve(https: tuple[str, int], ca_pem: bytes) -> str:
    """Return the ECDHE curve the server picks in X.509 mode, read from its ServerKeyExchange."""
    cfg = client_config("x509", None, ca_pem)  # type: ignore[arg-type]
    endpoint = tls.TlsEndpoint(cfg)
    server_bytes = bytearray()
    done = None
    with socket.create_connection(https, timeout=TIMEOUT) as sock:
        sock.sendall(endpoint.data_to_send())
        while done is None:
            data = sock.recv(65536)
            server_bytes += data
            events = endpoint.receive_data(data)
            done = next((e for e in events if isinstance(e, tls.HandshakeDone)), None)
            if not data or any(isinstance(e, tls.TlsFailed) for e in events):
                return "handshake failed"
            sock.sendall(endpoint.data_to_send())
        endpoint.close()
        sock.sendall(endpoint.data_to_send())
    handshake, at = bytearray(), 0
    while at + 5 <= len(server_bytes) and server_bytes[at] != 20:  # cleartext records up to ChangeCipherSpec
        length = int.from_bytes(server_bytes[at + 3:at + 5], "big")
        if server_bytes[at] == 22:
            handshake += server_bytes[at + 5:at + 5 + length]
        at += 5 + length
    at = 0
    while at + 4 <= len(handshake):
        kind, length = handshake[at], int.from_bytes(handshake[at + 1:at + 4], "big")
        if kind == 12:
            curve = tls.ecdhe_curve(bytes(handshake[at + 4:at + 4 + length]), suites.BY_IANA[done.cipher])
            return CURVE_NAMES.get(curve, f"curve {curve}")
        at += 4 + length
    return "no ServerKeyExchange"


def store_bytes(db: Path) -> int:
    """Return the size of the SQLite file with its WAL and shared-memory files."""
    return sum(p.stat().st_size for p in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm"))
               if p.exists())


def measure_reopen(db: Path) -> dict:
    """Return the seconds to open the store and count its accounts, and to read every account."""
    t0 = time.perf_counter()
    store = SqliteAccounts(db)
    count = len(store)
    t_open = time.perf_counter() - t0
    loaded = [store[d] for d in store]
    t_load = time.perf_counter() - t0
    store.close()
    return {"accounts": count, "open_count_s": t_open, "read_all_s": t_load, "read": len(loaded)}


# --- main ------------------------------------------------------------------------------------

def _fmt_row(r: dict) -> str:
    return (f"{r['mode']:>7} {r['concurrency']:>4} {r['ok']:>5}/{r['sessions']:<5} {r['wall_s']:>7.2f} "
            f"{r['sessions_per_s']:>10.1f} {r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f} {r['handshake_ms']:>8.2f} "
            f"{100 * r['handshake_share']:>6.1f} {r['server_cpu_ms']:>8.2f} {r['client_cpu_ms']:>8.2f} "
            f"{r['retries']:>5}  {r['cipher']}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=300, help="devices, and sessions per mode and concurrency")
    ap.add_argument("--concurrency", default="1,4", help="client processes, comma-separated list")
    ap.add_argument("--modes", default="http,psk,x509", help=f"comma-separated, of {','.join(MODES)}")
    ap.add_argument("--server", choices=("subprocess", "inproc"), default="subprocess")
    ap.add_argument("--json", action="store_true", help="print one JSON object per line instead of a table")
    args = ap.parse_args(argv)
    modes = args.modes.split(",")
    bad = [m for m in modes if m not in MODES]
    if bad or args.sessions < 1:
        ap.error(f"unknown mode {bad[0]}" if bad else "--sessions must be at least 1")
    try:
        concurrencies = [int(c) for c in args.concurrency.split(",")]
    except ValueError:
        ap.error("--concurrency: comma-separated integers")
    if min(concurrencies) < 1:
        ap.error("--concurrency: at least 1")

    def out(obj: dict, text: str) -> None:
        print(json.dumps(obj) if args.json else text, flush=True)

    tmp = Path(tempfile.mkdtemp(prefix="dmsim-bench-"))
    server = None
    try:
        db = tmp / "dm.sqlite"
        cert, key = make_cert(tmp)
        ca_pem = cert.read_bytes()
        load = os.getloadavg()
        out({"load_before": load, "cpus": os.cpu_count()},
            f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs")
        server = start_server(args.server, db, cert, key)
        server_uri = f"https://{server.https[0]}:{server.https[1]}/dm"
        accounts = [new_account(i, server_uri) for i in range(args.sessions)]
        prov = provision(server.admin, accounts)
        out({"server": server.kind, "provisioned": len(accounts), "provision_s": prov, "store_bytes": store_bytes(db)},
            f"server: {server.kind}; provisioned {len(accounts)} devices via {PROVISION_PATH} in {prov:.2f} s "
            f"({len(accounts) / prov:,.0f}/s); store {store_bytes(db) / 1024:,.0f} KiB")
        if not args.json:
            print(f"{'mode':>7} {'conc':>4} {'ok/sessions':>11} {'wall s':>7} {'sessions/s':>10} {'p50 ms':>8} "
                  f"{'p99 ms':>8} {'hs ms':>8} {'hs %':>6} {'srv ms':>8} {'cli ms':>8} {'retry':>5}  suite")
        session_id, all_ok = 0, True
        for mode in modes:
            for c in concurrencies:
                session_id += 1
                r = run_point(server, mode, c, accounts, ca_pem, session_id)
                all_ok &= r["ok"] == r["sessions"]
                out(r, _fmt_row(r) + (f"  failures: {r['failures']}" if r["failures"] else ""))
        if "x509" in modes:
            curve = probe_ecdhe_curve(server.https, ca_pem)
            out({"x509_ecdhe_curve": curve}, f"x509: ECDSA P-256 certificate, ECDHE curve {curve}")
        size_live = store_bytes(db)
        server.stop()
        size_closed = store_bytes(db)
        server = None
        out({"store_bytes_live": size_live, "store_bytes_closed": size_closed, "accounts": len(accounts)},
            f"store: {size_live / 1024:,.0f} KiB while serving (with WAL), {size_closed / 1024:,.0f} KiB closed, "
            f"{size_closed / len(accounts):,.0f} B/account")
        reopen = measure_reopen(db)
        out(reopen, f"reopen: {reopen['accounts']} accounts, open+count {1000 * reopen['open_count_s']:.1f} ms, "
                    f"read all {1000 * reopen['read_all_s']:.1f} ms")
        t0 = time.perf_counter()
        server = start_server(args.server, db, cert, key)
        t_listen = time.perf_counter() - t0
        cfg = client_config("psk", accounts[0], ca_pem)
        conn = TlsHttpConnection(*server.https, cfg, timeout=TIMEOUT)
        ok, reason, retries, _ = run_session(conn, device_uri(0), accounts[0], session_id + 1)
        conn.close()
        t_first = time.perf_counter() - t0
        all_ok &= ok and retries == 0
        out({"restart_listen_s": t_listen, "restart_first_session_s": t_first, "ok": ok, "retries": retries},
            f"restart: listening after {1000 * t_listen:.0f} ms, first PSK session "
            f"{'ok' if ok else 'FAILED ' + reason} (auth retries {retries}) after {1000 * t_first:.0f} ms")
        load = os.getloadavg()
        out({"load_after": load}, f"load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        return 0 if all_ok else 1
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
