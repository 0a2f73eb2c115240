"""The SMPP server against a real ESME (smpplib, test-only) on 127.0.0.1, and `dmsim smsc serve`."""
import json
import os
import signal
import socket
import struct
import subprocess
import sys

import pytest

from dmsim.network.sms import smpp
import time

from dmsim.sim.real.smpp_server import BindResult, SmppServer
from dmsim.sim.cli.smsc import LogSink, MemoryStore
from dmsim.base.errors import ProtocolError

smpplib_client = pytest.importorskip("smpplib.client")
smpplib_exceptions = pytest.importorskip("smpplib.exceptions")
smpplib_smpp = pytest.importorskip("smpplib.smpp")

WAP_PUSH = bytes.fromhex("0605040b8423f0") + bytes.fromhex("0106") + b"\x03\xc4\xaf\x87" + b"\x02\x6a\x00"


@pytest.fixture
def lab():
    lines = []
    store = MemoryStore(echo=lines.append)
    server = SmppServer(store.on_submit, port=0, on_submitted=store.on_submitted, on_event=store.on_event)
    store.server = server
    server.start()
    yield server, store, lines
    server.stop()


def client(server):
    c = smpplib_client.Client(*server.address, timeout=5, allow_unknown_opt_params=True)
    c.connect()
    return c


def test_transceiver_submits_wap_push_and_gets_receipt(lab):
    server, store, lines = lab
    received, sent = [], []
    c = client(server)
    c.set_message_received_handler(lambda pdu: received.append(pdu))
    c.set_message_sent_handler(lambda pdu: sent.append(pdu))
    resp = c.bind_transceiver(system_id="esme1", password="any")
    assert resp.status == 0 and resp.system_id == b"dmsim"
    c.send_message(source_addr_ton=1, source_addr="4471", dest_addr_ton=1, dest_addr_npi=1,
                   destination_addr="31612345678", short_message=WAP_PUSH, esm_class=0x40, data_coding=0x04,
                   protocol_id=0x00, registered_delivery=1)
    c.read_once()  # submit_sm_resp
    c.read_once()  # deliver_sm receipt (answered with deliver_sm_resp by smpplib)
    message_id = sent[0].message_id.decode()
    assert sent[0].status == 0 and message_id == "0000000001"
    (receipt,) = received
    assert receipt.esm_class == smpp.ESM_CLASS_DELIVERY_RECEIPT
    assert receipt.receipted_message_id.decode() == message_id
    assert receipt.short_message.startswith(f"id:{message_id} ".encode()) and b"stat:DELIVRD" in receipt.short_message
    system_id, stored = store.messages[message_id]
    assert system_id == "esme1" and stored.message == WAP_PUSH
    assert (stored.esm_class, stored.data_coding, stored.protocol_id, stored.destination_addr) == \
        (0x40, 0x04, 0x00, "31612345678")
    c.send_pdu(smpplib_smpp.make_pdu("enquire_link", client=c))
    assert c.read_pdu().command == "enquire_link_resp"
    assert c.unbind().command == "unbind_resp"
    c.disconnect()
    # the server answers a PDU before it logs it: give its thread a moment (bounded) to log the unbind
    deadline = time.monotonic() + 5
    while len(lines) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    logged = [json.loads(line) for line in lines]
    assert [r["event"] for r in logged] == ["bind", "submit_sm", "deliver_sm", "unbind"]
    assert logged[1]["udh"]["ports"] == {"dest": 2948, "src": 9200} and logged[1]["message_id"] == message_id


def test_wrong_password_refused_with_accounts():
    server = SmppServer(lambda system_id, pdu: "1", port=0, accounts={"esme": "secret"})
    with server:
        c = client(server)
        with pytest.raises(smpplib_exceptions.PDUError) as info:
            c.bind_transmitter(system_id="esme", password="wrong")
        assert info.value.args[1] == smpp.ESME_RBINDFAIL                          # was ESME_RINVPASWD
        assert c.bind_transmitter(system_id="esme", password="secret").status == 0  # the session stayed open
        assert server.bound() == [("esme", "bound_tx")]
        with pytest.raises(ProtocolError, match="no receiver"):
            server.deliver("esme", smpp.DeliverSm(short_message=b"mo"))
        c.disconnect()


def _read_pdu(sock):
    head = b""
    while len(head) < 16:
        chunk = sock.recv(16 - len(head))
        if not chunk:
            return None
        head += chunk
    length = struct.unpack(">I", head[:4])[0]
    body = b""
    while len(body) < length - 16:
        body += sock.recv(length - 16 - len(body))
    return smpp.decode_pdu(head + body)


def test_garbage_closes_that_connection_only(lab):
    server, _, lines = lab
    good = client(server)
    good.bind_receiver(system_id="rx", password="x")
    with socket.create_connection(server.address, timeout=5) as bad:
        bad.sendall(b"GET / HTTP/1.1\r\nHost: smsc\r\n\r\n")
        nack = _read_pdu(bad)
        assert isinstance(nack, smpp.GenericNack) and nack.status == smpp.ESME_RINVCMDLEN
        assert bad.recv(10) == b""  # closed by the server
    assert server.deliver("rx", smpp.DeliverSm(source_addr="123", short_message=b"MO text")) == 1
    pdu = good.read_pdu()
    assert pdu.command == "deliver_sm" and pdu.short_message == b"MO text"
    fresh = client(server)
    assert fresh.bind_transmitter(system_id="tx", password="x").status == 0
    fresh.disconnect()
    good.disconnect()
    assert any('"malformed"' in line and '"closed": true' in line for line in lines)


def test_callback_failures_answer_errors_and_the_server_goes_on():
    def on_submit(system_id, pdu):
        if pdu.short_message == b"refuse":
            raise ProtocolError("no route")
        raise RuntimeError("bug")

    with SmppServer(on_submit, port=0) as server, socket.create_connection(server.address, timeout=5) as sock:
        sock.sendall(smpp.encode_pdu(smpp.BindTransmitter(sequence=1, system_id="a")))
        assert _read_pdu(sock).status == 0
        sock.sendall(smpp.encode_pdu(smpp.SubmitSm(sequence=2, short_message=b"refuse"))
                     + smpp.encode_pdu(smpp.SubmitSm(sequence=3, short_message=b"boom")))
        answers = {p.sequence: p.status for p in (_read_pdu(sock), _read_pdu(sock))}
        assert answers == {2: smpp.ESME_RSUBMITFAIL, 3: smpp.ESME_RSYSERR}
        sock.sendall(smpp.encode_pdu(smpp.EnquireLink(sequence=4)))
        assert _read_pdu(sock) == smpp.EnquireLinkResp(sequence=4)


def test_cli_smsc_serve_logs_and_stops_on_ctrl_c():
    code = ("from dmsim.sim.cli.smsc import smsc; smsc(['serve', '--smpp', '127.0.0.1:0', '--account', 'esme:pw', "
            "'--bind-timeout', '2', '--idle-timeout', '30', '--max-connections', '8'])")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        start = json.loads(proc.stdout.readline())
        host, port = start["listening"].removeprefix("smpp://").rsplit(":", 1)
        assert start["accounts"] == ["esme"]
        assert (start["bind_timeout"], start["idle_timeout"], start["max_connections"]) == (2, 30, 8)
        c = smpplib_client.Client(host, int(port), timeout=5, allow_unknown_opt_params=True)
        c.connect()
        c.bind_transceiver(system_id="esme", password="pw")
        c.send_message(source_addr="1", destination_addr="2", short_message=b"hi", registered_delivery=1)
        c.read_once()
        c.read_once()
        c.disconnect()
        events = [json.loads(proc.stdout.readline())["event"] for _ in range(3)]
        assert events == ["bind", "submit_sm", "deliver_sm"]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


# --- issue 13: an attacker on 127.0.0.1 ----------------------------------------------------------

def _closed_by_server(sock, within: float) -> bool:
    """Return True when the server closes ``sock`` within ``within`` seconds."""
    sock.settimeout(within)
    try:
        return sock.recv(1) == b""
    except socket.timeout:
        return False
    except OSError:
        return True


def test_idle_and_excess_connections_are_closed():
    # Before: 200 idle connections were all still open after 30 s (no timeout, no cap).
    with SmppServer(lambda s, p: "1", port=0, max_connections=20, bind_timeout=0.5, idle_timeout=1.0) as server:
        socks = [socket.create_connection(server.address, timeout=5) for _ in range(50)]   # bounded: 50
        try:
            started = time.monotonic()
            closed = sum(_closed_by_server(s, 3.0) for s in socks)    # each waits at most 3 s
            assert closed == 50 and time.monotonic() - started < 4.0
            assert server.counts["refused_connections"] >= 30 and server.counts["bind_timeout"] <= 20
        finally:
            for s in socks:
                s.close()
        with socket.create_connection(server.address, timeout=5) as live, \
                socket.create_connection(server.address, timeout=5) as idle:
            for sock in (live, idle):
                sock.sendall(smpp.encode_pdu(smpp.BindReceiver(sequence=1, system_id="rx")))
                assert _read_pdu(sock).status == smpp.ESME_ROK
            for i in range(6):                                          # bounded: 6 x 0.3 s of enquire_link
                time.sleep(0.3)
                live.sendall(smpp.encode_pdu(smpp.EnquireLink(sequence=2 + i)))
                assert _read_pdu(live) == smpp.EnquireLinkResp(sequence=2 + i)
            assert _closed_by_server(idle, 0.1)                         # idle since its bind 1.8 s ago
            assert not _closed_by_server(live, 0.1)                     # kept alive by enquire_link
        assert server.counts["idle_timeout"] == 1


def _bind(address, system_id, password, sequence=1):
    with socket.create_connection(address, timeout=5) as sock:
        sock.sendall(smpp.encode_pdu(smpp.BindTransmitter(sequence=sequence, system_id=system_id, password=password)))
        return _read_pdu(sock).status


def test_failed_binds_are_throttled_and_reveal_nothing():
    # Before: 2,000 wrong passwords in 0.2 s on one connection, ESME_RINVSYSID for an unknown
    # system_id and ESME_RINVPASWD for a wrong password, and the right password right after.
    events = []
    server = SmppServer(lambda s, p: "1", port=0, accounts={"esme": "secret"},
                        on_event=lambda peer, e: events.append(e))
    with server:
        assert _bind(server.address, "nobody", "x") == _bind(server.address, "esme", "x") == smpp.ESME_RBINDFAIL
        with socket.create_connection(server.address, timeout=5) as sock:
            answers = []
            for i in range(200):                                        # bounded: 200 wrong passwords
                try:
                    sock.sendall(smpp.encode_pdu(smpp.BindTransmitter(sequence=i + 1, system_id="esme",
                                                                      password=f"g{i}")))
                    pdu = _read_pdu(sock)
                except OSError:
                    pdu = None
                if pdu is None:
                    break
                answers.append(pdu.status)
            assert answers == [smpp.ESME_RBINDFAIL] * 3                 # closed after the third
        for i in range(20):                                             # bounded: 20 more connections
            assert _bind(server.address, "esme", f"h{i}") == smpp.ESME_RBINDFAIL
        assert _bind(server.address, "esme", "secret") == smpp.ESME_RBINDFAIL   # throttled: no oracle
        deadline = time.monotonic() + 2                                 # the count follows the answer
        while server.counts["failed_binds"] < 26 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.counts["failed_binds"] == 2 + 3 + 20 + 1
    results = [e for e in events if isinstance(e, BindResult)]          # what the operator's log sees
    assert len(results) == 26 and {r.status for r in results} == {smpp.ESME_RBINDFAIL}
    assert not any("secret" in repr(r) or "h1" in repr(r) for r in results)
    assert {r.reason for r in results} == {"unknown system_id", "wrong password", "throttled: too many failed "
                                           "binds from this address or for this system_id"}


def test_log_is_bounded_and_never_holds_passwords(tmp_path):
    # Before: 1,500 submits of 60 KB made a 384 MB log (about 240 KB of JSON per submit).
    path = tmp_path / "smsc.log"
    sink = LogSink(str(path), max_bytes=64 * 1024, backups=2)
    store = MemoryStore(sink=sink, keep=10)
    server = SmppServer(store.on_submit, port=0, accounts={"esme": "secret"}, on_event=store.on_event)
    store.server = server
    with server, socket.create_connection(server.address, timeout=10) as sock:
        sock.sendall(smpp.encode_pdu(smpp.BindTransmitter(sequence=1, system_id="esme", password="secret")))
        assert _read_pdu(sock).status == smpp.ESME_ROK
        udh = bytes.fromhex("0605040b8423f0")                          # ports 2948 <- 9200, then 60 KB
        big = smpp.Tlv(smpp.TAG_MESSAGE_PAYLOAD, udh + b"A" * 60_000)
        for i in range(1500):                                           # bounded: 1,500 x 60 KB
            sock.sendall(smpp.encode_pdu(smpp.SubmitSm(sequence=i + 2, source_addr="1", destination_addr="2",
                                                       esm_class=0x40, tlvs=(big,))))
            assert _read_pdu(sock).status == smpp.ESME_ROK
    sink.close()
    files = sorted(tmp_path.iterdir())
    total = sum(f.stat().st_size for f in files)
    assert len(files) <= 3 and total <= 3 * 64 * 1024
    text = "".join(f.read_text() for f in files)
    assert "secret" not in text and "4141" not in text and "AAAA" not in text
    last = json.loads(path.read_text().splitlines()[-1])
    assert last["event"] == "submit_sm" and last["tlvs"][0]["length"] == 60_007 and last["message_len"] == 60_007
    assert last["udh"]["ports"] == {"dest": 2948, "src": 9200}
    assert len(store.messages) == 10 and "0000001500" in store.messages
