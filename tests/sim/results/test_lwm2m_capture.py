"""``dmsim run --pcap`` and ``--trace`` for LwM2M devices (seed 004): every DTLS datagram and NoSec
CoAP message as UDP/IPv4 between the device and its servers, the SMS of the binding as GSMTAP, the
UICC's APDUs; the trace's DTLS/CoAP/SMS header fields; what cannot be captured is counted.

The tshark tests need tshark on PATH; without it they are skipped, unless DMSIM_REQUIRE_TSHARK=1,
which makes that a failure (as tests/sim/results/test_pcap.py).
"""
import csv
import json
import random
import struct
import subprocess
from pathlib import Path

import pytest
import simpy
from click.testing import CliRunner
from test_pcap import _tshark   # skips without tshark, fails with DMSIM_REQUIRE_TSHARK=1

from dmsim.base.errors import DmsimError
from dmsim.network.coap import message as coap
from dmsim.network.lwm2m import dtls_records
from dmsim.network.lwm2m.sms_binding import COMMAND_PACKET_IE, Direction, SmsBindingSender, Termination
from dmsim.network.lwm2m.sms_security import SmsBindingKeys, SmsKeyParameters
from dmsim.network.sms.address import Address
from dmsim.network.sms.tpdu import SmsDeliver
from dmsim.sim.cli.main import main
from dmsim.sim.links.link import Message, SimLink
from dmsim.sim.results import trace_fields
from dmsim.sim.results.ip_capture import LWM2M_DEVICE_PORT, IpCapture
from dmsim.sim.results.pcap import DEFAULT_EPOCH, MAX_UDP_PAYLOAD, PcapWriter, device_ip, server_ip

ROOT = Path(__file__).resolve().parents[3]
BOOTSTRAP, SERVER = server_ip("lwm2m-bootstrap"), server_ip("lwm2m-server")
# PSK and NoSec only: with RPK or certificates Mbed TLS's ECDSA signatures vary by an octet between runs
SCENARIO = """
name: lwm2m_capture
seed: 7
replicas: 1
duration: 3600
fleet:
  size: 16
  profiles:
    - {name: dm, weight: 0.1, dm_auth: hmac}
    - name: psk-udp
      weight: 0.2
      device: lwm2m
      lwm2m: {bootstrap: psk, security_mode: psk, binding: U, updates: 1, sleep: 60}
    - name: pin-nosec
      weight: 0.2
      device: lwm2m
      lwm2m: {bootstrap: low_entropy_psk, pin_digits: 4, security_mode: nosec, binding: U, updates: 1, sleep: 60}
    - name: sms-device
      weight: 0.25
      device: lwm2m
      lwm2m: {bootstrap: psk, binding: S, sms_termination: device, sms_cipher: aes, updates: 1, sleep: 60}
    - name: sms-uicc
      weight: 0.25
      device: lwm2m
      lwm2m: {bootstrap: psk, binding: S, sms_termination: uicc, sms_cipher: 3des, updates: 1, sleep: 60}
arrival: {kind: poisson, rate: 5}
links:
  sms: {delay: {kind: fixed, value: 1.0}, loss: 0}
  ip: {delay: {kind: exponential, mean: 0.05}, loss: 0}
smsc: {}
lwm2m: {}
"""
# the only keys trace_fields may write: headers and lengths, never a payload (the DM device's too)
FIELD_KEYS = {"tp_mti", "oa", "da", "tp_pid", "tp_dcs", "ud_length", "ports", "concat", "command_packet",
              "dtls_records", "coap", "method", "path", "status", "content_type", "content_length",
              "cla", "ins", "p1", "p2", "lc", "le", "sw", "response_length", "undecoded"}
NESTED_KEYS = {"command_packet": {"cpl", "chl", "spi", "kic", "kid", "tar"},
               "coap": {"type", "code", "mid", "token_length", "uri_path", "payload_length"}}
RECORD_KEYS = {"type", "epoch", "seq", "length", "handshake", "fragment"}


def _shark(pcap: Path, *args: str) -> list[list[str]]:
    """Return tshark's lines for ``pcap`` (with ``-T fields``: each line's fields)."""
    proc = subprocess.run([_tshark(), "-n", "-r", str(pcap), *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return [line.split("\t") for line in proc.stdout.splitlines()]


def _run(out: Path, scenario: Path, *args: str):
    res = CliRunner().invoke(main, ["run", str(scenario), "--out", str(out), "--no-plots", "-q", *args])
    assert res.exit_code == 0, res.output
    with open(out / "sessions.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def captured(tmp_path_factory):
    """Return (rows, pcap path, trace lines, run folder, plain run folder) of the small LwM2M fleet,
    run with --pcap and --trace of every device, and once without."""
    base = tmp_path_factory.mktemp("lwm2m_capture")
    scenario = base / "s.yaml"
    scenario.write_text(SCENARIO)
    rows = _run(base / "run", scenario, "--pcap", str(base / "run.pcap"), "--trace", ",".join(map(str, range(16))))
    _run(base / "plain", scenario)
    lines = [json.loads(line) for line in (base / "run" / "trace.jsonl").read_text().splitlines()]
    return rows, base / "run.pcap", lines, base / "run", base / "plain"


def _by_profile(rows: list[dict], profile: str) -> list[dict]:
    found = [r for r in rows if r["profile"] == profile]
    assert found, f"the fleet drew no {profile} device"
    return found


# --------------------------------------------------------------------------- the run's tables

def test_capturing_and_tracing_leave_the_tables_byte_identical(captured):
    rows, _, _, run, plain = captured
    assert all(r["outcome"] == "ok" for r in rows)
    for table in ("sessions.csv", "sms.csv"):
        assert (run / table).read_bytes() == (plain / table).read_bytes(), table


# --------------------------------------------------------------------------- pcap

def test_every_datagram_of_every_lwm2m_device_is_in_the_pcap(captured):
    """No loss: what each device sent and received (ip_msgs/ip_bytes) is exactly its UDP datagrams."""
    rows, pcap, *_ = captured
    per_ip: dict[str, list[int]] = {}
    for src, dst, length in _shark(pcap, "-Y", f"udp.port == {LWM2M_DEVICE_PORT}", "-T", "fields",
                                   "-e", "ip.src", "-e", "ip.dst", "-e", "udp.length"):
        device = src if src.startswith("10.") else dst
        per_ip.setdefault(device, []).append(int(length) - 8)
    lwm2m = [r for r in rows if r["protocol"] == "lwm2m"]
    assert {device_ip(int(r["device"])) for r in lwm2m} == set(per_ip)
    for r in lwm2m:
        sizes = per_ip[device_ip(int(r["device"]))]
        assert (len(sizes), sum(sizes)) == (int(r["ip_msgs"]), int(r["ip_bytes"])), r["device"]


def test_tshark_dissects_the_dtls_handshakes_with_both_servers(captured):
    rows, pcap, *_ = captured
    hellos = _shark(pcap, "-Y", "dtls.handshake.type == 1", "-T", "fields", "-e", "ip.src", "-e", "ip.dst",
                    "-e", "udp.srcport", "-e", "udp.dstport")
    psk = {device_ip(int(r["device"])) for r in _by_profile(rows, "psk-udp")}
    lwm2m = {device_ip(int(r["device"])) for r in rows if r["protocol"] == "lwm2m"}
    assert {(src, dst, sport, dport) for src, dst, sport, dport in hellos} == \
        {(ip, BOOTSTRAP, str(LWM2M_DEVICE_PORT), "5684") for ip in lwm2m} | \
        {(ip, SERVER, str(LWM2M_DEVICE_PORT), "5684") for ip in psk}
    verify = _shark(pcap, "-Y", "dtls.handshake.type == 3", "-T", "fields", "-e", "ip.src")
    assert {src for (src,) in verify} == {BOOTSTRAP, SERVER}         # HelloVerifyRequest: the cookie exchange
    assert _shark(pcap, "-Y", "dtls.record.content_type == 23 && ip.src == " + SERVER)


def test_tshark_dissects_nosec_coap_and_nothing_else_as_coap(captured):
    rows, pcap, *_ = captured
    nosec = {device_ip(int(r["device"])) for r in _by_profile(rows, "pin-nosec")}
    registers = _shark(pcap, "-Y", 'coap.code == 2 && coap.opt.uri_path == "rd"', "-T", "fields",
                       "-e", "ip.src", "-e", "ip.dst", "-e", "udp.dstport")
    assert {tuple(line) for line in registers} == {(ip, SERVER, "5683") for ip in nosec}
    ends = {src if src.startswith("10.") else dst for src, dst in
            _shark(pcap, "-Y", "coap", "-T", "fields", "-e", "ip.src", "-e", "ip.dst")}
    assert ends == nosec                                             # DTLS hides the CoAP of the others


def test_binding_sms_are_gsmtap_with_their_tp_pid_both_ways(captured):
    rows, pcap, *_ = captured
    sms = _shark(pcap, "-Y", "gsmtap.type == 1 && gsm_sms", "-T", "fields", "-e", "ip.src", "-e", "ip.dst",
                 "-e", "gsm_sms.tp-pid", "-e", "gsm_sms.tp-mti")
    for profile, pid in (("sms-device", "125"), ("sms-uicc", "127")):       # 0x7D and 0x7F
        for r in _by_profile(rows, profile):
            ip = device_ip(int(r["device"]))
            mine = [line for line in sms if ip in line[:2]]
            assert len(mine) == int(r["sms_msgs"])                       # MO and MT, no loss
            assert {(line[0] == ip, line[2], line[3]) for line in mine} == {(True, pid, "1"), (False, pid, "0")}
    verbose = subprocess.run([_tshark(), "-n", "-r", str(pcap), "-V", "-Y", "gsm_sms.tp-pid == 0x7d"],
                             capture_output=True, text=True, timeout=60).stdout
    assert "(U)SIM Toolkit Security Headers" in verbose and "TP-PID: 125" in verbose


def test_uicc_termination_apdus_are_in_the_pcap(captured):
    rows, pcap, *_ = captured
    by_ins: dict[str, set[str]] = {}
    for src, ins in _shark(pcap, "-Y", "gsm_sim.apdu.ins == 0x4c || gsm_sim.apdu.ins == 0xc2", "-T", "fields",
                           "-e", "ip.src", "-e", "gsm_sim.apdu.ins"):
        by_ins.setdefault(ins, set()).add(src)
    uicc = {device_ip(int(r["device"])) for r in _by_profile(rows, "sms-uicc")}
    assert by_ins == {"0x4c": uicc, "0xc2": uicc}                     # LWM2M PROTECT (MO), ENVELOPE (MT)


def test_nothing_in_the_pcap_is_malformed(captured):
    _, pcap, *_ = captured
    assert _shark(pcap, "-Y", "_ws.malformed || _ws.expert.severity >= warning") == []


# --------------------------------------------------------------------------- trace

def _story(lines: list[dict], device: int) -> list[dict]:
    return [line for line in lines if line.get("device") == device]


def test_trace_tells_each_devices_story_up_to_its_record(captured):
    """One record per device, at the end of its life; after it only messages already on their way
    arrive (the close_notify, the RP-ACK of the last SMS), nothing new is sent."""
    rows, _, lines, *_ = captured
    for r in rows:
        story = _story(lines, int(r["device"]))
        records = [k for k, line in enumerate(story) if line["event"] == "record"]
        assert story[0]["event"] == "device" and len(records) == 1
        assert story[records[0]]["record"]["ip_msgs"] == int(r["ip_msgs"])
        assert all(line["event"] == "message" and line["outcome"] != "sent" for line in story[records[0] + 1:])
        times = [line["t"] for line in story[1:]]
        assert times == sorted(times)


def test_trace_shows_the_dtls_records_of_both_associations(captured):
    rows, _, lines, *_ = captured
    device = int(_by_profile(rows, "psk-udp")[0]["device"])
    dtls = [m for m in _story(lines, device) if m.get("kind") == "dtls"]
    sent = [m for m in dtls if m["outcome"] == "sent"]
    assert len(sent) == int(_by_profile(rows, "psk-udp")[0]["ip_msgs"])
    assert {m["agent"] for m in sent} == {"device", "lwm2m-bootstrap", "lwm2m-server"}
    assert {m["dir"] for m in sent if m["agent"] == "device"} == \
        {f"lwm2m-{device} -> lwm2m-bootstrap-psk", f"lwm2m-{device} -> lwm2m-server-psk"}
    handshakes = [rec.get("handshake") for m in sent for rec in m["fields"]["dtls_records"]]
    for name in ("client_hello", "hello_verify_request", "server_hello", "server_hello_done",
                 "client_key_exchange", "encrypted"):
        assert name in handshakes, name
    records = [rec for m in sent for rec in m["fields"]["dtls_records"]]
    assert all(rec["epoch"] == 0 for rec in records if rec.get("handshake") not in (None, "encrypted"))
    assert any(rec["type"] == "application_data" and rec["epoch"] == 1 for rec in records)


def test_trace_shows_nosec_coap_headers_and_binding_sms_headers(captured):
    rows, _, lines, *_ = captured
    device = int(_by_profile(rows, "pin-nosec")[0]["device"])
    coap_lines = [m for m in _story(lines, device) if m.get("kind") == "coap" and m["outcome"] == "sent"]
    register = next(m for m in coap_lines if m["fields"]["coap"]["uri_path"] == "/rd")
    assert register["fields"]["coap"]["code"] == "0.02" and register["fields"]["coap"]["type"] == "CON"
    assert register["agent"] == "device" and register["dir"].endswith("-> lwm2m-server-nosec")
    assert any(m["agent"] == "lwm2m-server" and m["fields"]["coap"]["code"] == "2.01" for m in coap_lines)
    for profile, pid, tar in (("sms-device", 125, "BFFF01"), ("sms-uicc", 127, "BFFF02")):
        device = int(_by_profile(rows, profile)[0]["device"])
        sms = [m for m in _story(lines, device) if m.get("kind") in ("sms-deliver", "sms-submit")]
        assert {m["kind"] for m in sms} == {"sms-deliver", "sms-submit"}
        for m in sms:
            header = m["fields"]["command_packet"]
            assert m["fields"]["tp_pid"] == pid and header["tar"] == tar and header["spi"].startswith("16")
    uicc = int(_by_profile(rows, "sms-uicc")[0]["device"])
    assert {"4C", "C2"} <= {a["fields"]["ins"] for a in _story(lines, uicc) if a["event"] == "apdu"}


def test_trace_holds_headers_only(captured):
    for line in captured[2]:
        fields = line.get("fields", {})
        assert set(fields) <= FIELD_KEYS, line
        for key, allowed in NESTED_KEYS.items():
            assert set(fields.get(key, {})) <= allowed, line
        for rec in fields.get("dtls_records", []):
            assert set(rec) <= RECORD_KEYS, line


def test_trace_arrivals_are_the_pcaps_datagrams(captured):
    """The trace's deliveries of a device's datagrams happen at the pcap's timestamps."""
    rows, pcap, lines, *_ = captured
    for profile in ("psk-udp", "pin-nosec"):
        device = int(_by_profile(rows, profile)[0]["device"])
        ip = device_ip(device)
        traced = sorted(m["t"] for m in _story(lines, device)
                        if m.get("kind") in ("dtls", "coap") and m["outcome"] == "delivered")
        stamps = sorted(round(float(t) - DEFAULT_EPOCH, 6) for (t,) in
                        _shark(pcap, "-Y", f"udp.port == {LWM2M_DEVICE_PORT} && ip.addr == {ip}", "-T", "fields",
                               "-e", "frame.time_epoch"))
        assert traced == pytest.approx(stamps, abs=2e-6)


# --------------------------------------------------------------------------- the shipped scenario

def test_shipped_scenario_with_rpk_and_certificate_servers(tmp_path):
    """lwm2m_sms_bootstrap.yaml with losses, the LwM2M server in RPK mode (port 5685): tshark still
    finds DTLS (its heuristic) and nothing malformed; the rows are those of an uncaptured run (but
    for ip_bytes, which RPK/certificate signatures make vary by an octet)."""
    scenario = ROOT / "scenarios" / "lwm2m_sms_bootstrap.yaml"
    sets = ("--set", "fleet.size=12", "--set", "fleet.profiles.1.lwm2m.security_mode=rpk")
    rows = _run(tmp_path / "run", scenario, *sets, "--pcap", str(tmp_path / "run.pcap"), "--trace", "3,5")
    plain = _run(tmp_path / "plain", scenario, *sets)
    assert [{k: v for k, v in r.items() if k != "ip_bytes"} for r in rows] == \
        [{k: v for k, v in r.items() if k != "ip_bytes"} for r in plain]
    pcap = tmp_path / "run.pcap"
    rpk = {device_ip(int(r["device"])) for r in _by_profile(rows, "lwm2m-psk-udp")}
    hellos = _shark(pcap, "-Y", f"dtls.handshake.type == 1 && ip.dst == {SERVER}", "-T", "fields",
                    "-e", "ip.src", "-e", "udp.dstport")
    assert {tuple(line) for line in hellos} == {(ip, "5685") for ip in rpk}
    assert _shark(pcap, "-Y", f"dtls.handshake.type == 11 && ip.src == {BOOTSTRAP}")   # certificate bootstrap
    assert _shark(pcap, "-Y", "_ws.malformed || _ws.expert.severity >= warning") == []


# --------------------------------------------------------------------------- units: pcap, gaps, fields

def _udp(frame: bytes) -> tuple[bytes, bytes, int, int, int, bytes]:
    """Return (src IP, dst IP, sport, dport, checksum, payload) of an Ethernet/IPv4/UDP frame."""
    ip = frame[14:34]
    sport, dport, length, checksum = struct.unpack(">HHHH", frame[34:42])
    return ip[12:16], ip[16:20], sport, dport, checksum, frame[42:34 + length]


def _ones_complement_sum(data: bytes) -> int:
    data += b"\x00" * (len(data) % 2)
    total = sum(struct.unpack(f">{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def test_write_udp_frames_each_way_with_a_valid_checksum(tmp_path):
    path = tmp_path / "u.pcap"
    with PcapWriter(path) as w:
        assert w.write_udp(1.0, 7, b"hello", server="lwm2m-bootstrap", server_port=5684, device_port=56830,
                           from_device=True) == 1
        w.write_udp(1.5, 7, b"back", server="lwm2m-server", server_port=5683, device_port=56830, from_device=False)
    data = path.read_bytes()
    frames, pos = [], 24
    while pos < len(data):
        sec, usec, incl, _ = struct.unpack_from("=IIII", data, pos)
        frames.append((sec - DEFAULT_EPOCH + usec / 1e6, data[pos + 16:pos + 16 + incl]))
        pos += 16 + incl
    (t1, up), (t2, down) = frames
    assert (t1, t2) == (1.0, 1.5)
    assert _udp(up)[:4] == (bytes([10, 0, 0, 8]), bytes([198, 51, 100, 2]), 56830, 5684)
    assert _udp(down)[:4] == (bytes([198, 51, 100, 3]), bytes([10, 0, 0, 8]), 5683, 56830)
    for frame in (up, down):
        src, dst, *_, payload = _udp(frame)
        udp = frame[34:42 + len(payload)]
        pseudo = src + dst + struct.pack(">BBH", 0, 17, len(udp))
        assert _ones_complement_sum(pseudo + udp) == 0xFFFF          # RFC 768: the checksum verifies


def test_what_cannot_be_written_is_counted_and_warned_about(tmp_path):
    with PcapWriter(tmp_path / "g.pcap") as w:
        assert w.gaps == {} and w.warnings() == []
        with pytest.raises(DmsimError):
            w.write_udp(1.0, 0, bytes(MAX_UDP_PAYLOAD + 1), server="lwm2m-server", server_port=5684,
                        device_port=56830, from_device=True)
        with pytest.raises(DmsimError):
            w.write_sms_mt(float("nan"), b"\x00", "+1")
        with pytest.raises(DmsimError):
            w.write_apdu(1.0, b"\x00", b"\x90\x00")                    # not a command APDU
        assert w.write_udp(1.0, 0, bytes(MAX_UDP_PAYLOAD), server="lwm2m-server", server_port=5684,
                           device_port=56830, from_device=True) == 1   # the largest that fits
        assert w.gaps == {"udp": 1, "sms": 1, "apdu": 1}
        (warning,) = w.warnings()
        assert "1 apdu, 1 sms, 1 udp" in warning and "g.pcap" in warning


class _Dev:
    class ident:  # noqa: N801 - the device agent's ident, as dtls_link's msg.meta has it
        index = 2


def test_ip_capture_writes_lwm2m_datagrams_on_arrival_and_counts_unknown_ends(tmp_path):
    env = simpy.Environment()
    link = SimLink(env, "links.ip", {"delay": {"kind": "fixed", "value": 0.25}}, random.Random(1))
    with PcapWriter(tmp_path / "c.pcap") as w:
        link.observer = IpCapture(w)
        got: list = []
        link.send(Message(b"\x16hello", "lwm2m-2", "lwm2m-server-rpk", "dtls", _Dev()), got.append)
        link.send(Message(b"x", "lwm2m-2", "nobody", "dtls", _Dev()), got.append)
        env.run()
        assert len(got) == 2                       # both delivered: the capture only watches
        assert w.records == 1 and w.gaps == {"udp_unknown_endpoint": 1}
    data = (tmp_path / "c.pcap").read_bytes()
    sec, usec = struct.unpack_from("=II", data, 24)
    assert (sec - DEFAULT_EPOCH, usec) == (0, 250000)                 # written when it arrived
    assert _udp(data[40:])[:4] == (bytes([10, 0, 0, 3]), bytes([198, 51, 100, 3]), LWM2M_DEVICE_PORT, 5685)


def _hs(msg_type: int, body: bytes, *, length: int | None = None, offset: int = 0) -> bytes:
    total = len(body) if length is None else length
    return (bytes([msg_type]) + total.to_bytes(3, "big") + (0).to_bytes(2, "big") + offset.to_bytes(3, "big")
            + len(body).to_bytes(3, "big") + body)


def test_dtls_fields_name_clear_handshakes_hide_encrypted_ones_and_never_crash():
    hello = dtls_records.encode_record(22, 0, 0, _hs(1, b"secret-hello"))
    frag = dtls_records.encode_record(22, 0, 1, _hs(11, b"abcd", length=10, offset=4))
    ccs = dtls_records.encode_record(20, 0, 2, b"\x01")
    fin = dtls_records.encode_record(22, 1, 0, bytes(40))
    app = dtls_records.encode_record(23, 1, 1, b"top secret coap")
    fields = trace_fields.message_fields("dtls", hello + frag + ccs + fin + app)
    assert fields == {"dtls_records": [
        {"type": "handshake", "epoch": 0, "seq": 0, "length": 24, "handshake": "client_hello"},
        {"type": "handshake", "epoch": 0, "seq": 1, "length": 16, "handshake": "certificate", "fragment": [4, 4, 10]},
        {"type": "change_cipher_spec", "epoch": 0, "seq": 2, "length": 1},
        {"type": "handshake", "epoch": 1, "seq": 0, "length": 40, "handshake": "encrypted"},
        {"type": "application_data", "epoch": 1, "seq": 1, "length": 15}]}
    assert "secret" not in json.dumps(fields)
    bad = trace_fields.message_fields("dtls", hello[:20])
    assert set(bad) == {"undecoded"} and "DTLS record" in bad["undecoded"]
    assert set(trace_fields.message_fields("dtls", b"\x17\x03\x03")) == {"undecoded"}


def test_coap_fields_show_the_header_not_token_query_or_payload():
    msg = coap.request(coap.Code.POST, "rd", message_id=0x1234, token=b"\xde\xad\xbe\xef",
                       query=("ep=urn:imsi:001010000000004", "lt=86400"), payload=b"</1/0>,</3/0>")
    fields = trace_fields.message_fields("coap", coap.encode(msg))
    assert fields == {"coap": {"type": "CON", "code": "0.02", "mid": 0x1234, "token_length": 4, "uri_path": "/rd",
                               "payload_length": 13}}
    text = json.dumps(fields)
    assert "dead" not in text and "imsi" not in text and "</3/0>" not in text
    assert set(trace_fields.message_fields("coap", b"\x40\x01")) == {"undecoded"}


def test_sms_fields_show_the_secured_packets_clear_header_only():
    keys = SmsBindingKeys(bytes(range(16)), bytes(range(16, 32)))
    sender = SmsBindingSender(SmsKeyParameters(0x12, 0x12, 0x16, bytes.fromhex("bfff01")), keys,
                              Termination.DEVICE, Direction.MT, Address.parse("54321"))
    tpdu = sender.send(b"\x40\x01\x00\x01secret coap")
    fields = trace_fields.message_fields("sms-deliver", tpdu)
    header = fields["command_packet"]
    assert (fields["tp_pid"], header["kic"], header["kid"], header["tar"]) == (0x7D, "12", "12", "BFFF01")
    assert header["spi"].startswith("16") and header["cpl"] == fields["ud_length"] - 2
    assert set(header) == NESTED_KEYS["command_packet"]
    short = SmsDeliver(Address.parse("54321"), ies=(COMMAND_PACKET_IE,), user_data=b"\x00\x01").encode()
    assert set(trace_fields.message_fields("sms-deliver", short)["command_packet"]) == {"undecoded"}


def test_a_run_whose_pcap_misses_records_says_so_in_summary_and_closing_lines(tmp_path, monkeypatch):
    """Whole truth: a datagram the pcap cannot write is counted in summary.json and warned of at
    the end of the run, never left out quietly."""
    def refuse(self, *args, **kwargs):
        self._refuse("udp", "refused by the test")
    monkeypatch.setattr(PcapWriter, "write_udp", refuse)
    scenario = tmp_path / "s.yaml"
    scenario.write_text(SCENARIO.replace("size: 16", "size: 4"))
    res = CliRunner().invoke(main, ["run", str(scenario), "--out", str(tmp_path / "run"), "--no-plots",
                                    "--pcap", str(tmp_path / "run.pcap")])
    assert res.exit_code == 0, res.output
    capture = json.loads((tmp_path / "run" / "summary.json").read_text())["capture"]
    assert capture["gaps"]["udp"] > 0 and "lacks" in capture["warnings"][0]
    assert capture["warnings"][0] in res.output
