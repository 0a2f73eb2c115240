"""``dmsim bsf serve`` as a real process on 127.0.0.1 (sim/real/bsf_http_server.py): a Ub bootstrap by a
real HTTP client (http.client driving network/gba/ub_client.py) that gets a B-TID, then bounded attacks:
connection flood, slowloris, oversized requests, garbage, a wrong RES (refused, no state change), and no
secret (K, OPc, RES, CK, IK, Ks) in the server's output or audit log."""
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from dmsim.cards.milenage import f2345
from dmsim.cards.sqn import SqnArray
from dmsim.network.dm.http_binding import decode
from dmsim.network.gba import digest_aka as dg
from dmsim.network.gba.hss_store import SubscriberStore
from dmsim.network.gba.ub_client import UbClient, software_aka

K, OPC = "465b5ce8b199b49faa5f0a2ee238a6bc", "cd63cb71954a9f4e48a5994e37a02baf"
IMSI = "001010123456789"
IMPI = "001010123456789@ims.mnc001.mcc001.3gppnetwork.org"
CAP = 6


def dmsim(*args, **kw):
    return subprocess.run([sys.executable, "-m", "dmsim.sim.cli.main", *args], capture_output=True, text=True,
                          timeout=60, **kw)


@pytest.fixture(scope="module")
def bsf(tmp_path_factory):
    db = tmp_path_factory.mktemp("bsf") / "hss.sqlite"
    assert dmsim("bsf", "subscriber", "add", "--db", str(db), "--imsi", IMSI, "--k", K, "--opc", OPC).returncode == 0
    proc = subprocess.Popen([sys.executable, "-m", "dmsim.sim.cli.main", "bsf", "serve", "--http", "127.0.0.1:0",
                             "--db", str(db), "--fqdn", "bsf.example.org", "--request-deadline", "1.5",
                             "--max-connections", str(CAP)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = json.loads(proc.stdout.readline())
    host, port = line["listening"].split("//")[1].rstrip("/").rsplit(":", 1)
    server = {"host": host, "port": int(port), "db": db, "proc": proc, "audit": line["audit_log"], "secrets": []}
    yield server
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


def exchange(bsf, raw: bytes) -> bytes:
    """Send one Ub request (as UbClient wrote it) with http.client; return the answer's bytes."""
    head, _, _ = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    conn = http.client.HTTPConnection(bsf["host"], bsf["port"], timeout=10)
    conn.request("GET", lines[0].split(" ")[1], headers=headers)
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    out = f"HTTP/1.1 {resp.status} {resp.reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in resp.getheaders())
    return out.encode() + b"\r\n" + body


def raw_exchange(bsf, data: bytes, *, wait: float = 5.0) -> bytes:
    with socket.create_connection((bsf["host"], bsf["port"]), timeout=wait) as s:
        s.sendall(data)
        out = b""
        try:
            while chunk := s.recv(4096):
                out += chunk
        except (ConnectionResetError, socket.timeout):
            pass
        return out


def seq_he(bsf) -> int:
    with SubscriberStore(bsf["db"]) as store:
        return store.get(IMSI).seq_he


def bootstrap(bsf):
    sqns = SqnArray()
    client = UbClient(IMPI, "bsf.example.org", software_aka(bytes.fromhex(K), bytes.fromhex(OPC), sqns), os.urandom)
    request = client.first_request()
    while request is not None:
        request = client.receive(exchange(bsf, request))
    assert client.result.btid.endswith("@bsf.example.org") and client.result.lifetime.endswith("Z")
    res, ck, ik, _ = f2345(bytes.fromhex(K), bytes.fromhex(OPC), client.result.rand)
    assert client.result.ks == ck + ik
    bsf["secrets"] += [res.hex(), ck.hex(), ik.hex(), client.result.ks.hex()]


def test_ub_bootstrap_over_http_client_gets_a_btid(bsf):
    bootstrap(bsf)


def test_wrong_res_is_refused_without_state_change(bsf):
    first = dg.format_params({"username": IMPI, "realm": "bsf.example.org", "nonce": "", "uri": "/", "response": ""})
    get = "GET / HTTP/1.1\r\nHost: bsf\r\nAuthorization: Digest {}\r\n\r\n"
    challenge = decode(raw_exchange(bsf, get.format(first).encode()))
    assert challenge.start == "401"
    _, ch = dg.parse_challenge_params(challenge.headers["www-authenticate"])
    before = seq_he(bsf)
    params = {"username": IMPI, "realm": ch["realm"], "nonce": ch["nonce"], "uri": "/", "qop": ch["qop"],
              "nc": "00000001", "cnonce": "abcd", "algorithm": dg.ALGORITHM}
    params["response"] = dg.aka_response(IMPI, ch["realm"], b"\x00" * 8, "GET", "/", ch["nonce"], "00000001", "abcd",
                                         ch["qop"])
    refused = decode(raw_exchange(bsf, get.format(dg.format_params(params)).encode()))
    assert refused.start == "403" and b"btid" not in refused.body
    assert seq_he(bsf) == before                      # no AV consumed, no SEQ moved by the refusal
    again = decode(raw_exchange(bsf, get.format(dg.format_params(params)).encode()))
    assert again.start == "401"                       # the challenge was dropped: a replay gets a new one


def test_garbage_is_answered_400_at_once(bsf):
    t0 = time.monotonic()
    out = raw_exchange(bsf, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(256)))
    assert out.startswith(b"HTTP/1.1 400") and time.monotonic() - t0 < 1.0
    assert raw_exchange(bsf, b"NONSENSE\r\n\r\n").startswith(b"HTTP/1.1 400")


def test_oversized_requests_are_refused(bsf):
    huge = b"GET / HTTP/1.1\r\nHost: b\r\nX-Pad: " + b"a" * 6000 + b"\r\n\r\n"
    assert raw_exchange(bsf, huge).startswith(b"HTTP/1.1 431")
    body = b"GET / HTTP/1.1\r\nHost: b\r\nContent-Length: 100000\r\n\r\n" + b"x" * 20000
    assert raw_exchange(bsf, body).startswith(b"HTTP/1.1 413")
    smuggle = b"GET / HTTP/1.1\r\nHost: b\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\nx"
    assert raw_exchange(bsf, smuggle).startswith(b"HTTP/1.1 400")


def test_slowloris_is_cut_at_the_deadline(bsf):
    with socket.create_connection((bsf["host"], bsf["port"]), timeout=5) as s:
        t0 = time.monotonic()
        s.sendall(b"GET / HTTP/1.1\r\n")
        closed_at = None
        for _ in range(40):                           # at most 40 x 0.1 s of trickling
            time.sleep(0.1)
            try:
                s.sendall(b"X")
                s.setblocking(False)
                if s.recv(1) == b"":
                    closed_at = time.monotonic() - t0
                    break
            except BlockingIOError:
                pass
            except OSError:
                closed_at = time.monotonic() - t0
                break
            finally:
                s.setblocking(True)
    assert closed_at is not None and closed_at < 3.5


def test_connection_flood_is_capped(bsf):
    socks, open_ = [], 0
    try:
        for _ in range(CAP * 3):
            socks.append(socket.create_connection((bsf["host"], bsf["port"]), timeout=2))
        time.sleep(0.3)
        for s in socks:
            s.setblocking(False)
            try:
                open_ += s.recv(1) != b""             # closed at once by the gate: b""
            except BlockingIOError:
                open_ += 1                            # still open, waiting for its request
            except OSError:
                pass
    finally:
        for s in socks:
            s.close()
    assert open_ <= CAP
    time.sleep(0.2)
    assert raw_exchange(bsf, b"NONSENSE\r\n\r\n").startswith(b"HTTP/1.1 400")   # serving again


def test_zz_no_secret_in_output_or_log(bsf):
    if not bsf["secrets"]:
        bootstrap(bsf)
    proc = bsf["proc"]
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    log = open(bsf["audit"]).read()
    assert log.count('"event": "access"') >= 2 and '"status": 200' in log
    text = (out + err + log).lower()
    assert len(bsf["secrets"]) >= 4
    for secret in [K, OPC, *bsf["secrets"]]:
        assert secret.lower() not in text
    listed = dmsim("bsf", "subscriber", "list", "--db", str(bsf["db"]), "--json")
    assert K not in listed.stdout and OPC not in listed.stdout and IMSI in listed.stdout
