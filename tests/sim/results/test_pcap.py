"""sim/results/pcap.py and network/sms/gsmtap.py: the pcap file, the GSMTAP/LAPDm/CP/RP layers, and
Wireshark's reading of them.

The tshark tests need tshark on PATH (``./dev test`` installs it); without it they are skipped,
unless DMSIM_REQUIRE_TSHARK=1 (set by ``./dev test`` when CI=true), which makes that a failure.
"""
import os
from pathlib import Path
import shutil
import struct
import subprocess

import pytest

from dmsim.cards import scp80
from dmsim.network.dm import messages, wbxml
from dmsim.network.sms import gsmtap
from dmsim.network.sms.address import Address
from dmsim.network.sms.segmentation import split_parts
from dmsim.network.sms.udh import InformationElement
from dmsim.network.sms.tpdu import (DCS_8BIT_CLASS2, PID_USIM_DATA_DOWNLOAD, SmsDeliver, SmsSubmit)
from dmsim.network.sms.wsp_push import WAP_PUSH_PORT, WAP_PUSH_SRC_PORT, encode_push
from dmsim.sim.results.atomic import part_path
from dmsim.base.errors import DmsimError, ProtocolError
from dmsim.sim.results.pcap import DEFAULT_EPOCH, PcapWriter

SMSC = "+491720000001"
SERVER = Address.parse("+491721234567")
SELECT_MF = bytes.fromhex("00a40004023f00")
FCP_MF = bytes.fromhex("621a8202782183023f008a01059000")   # FCP template + SW 9000 (response)


def _bootstrap_push() -> bytes:
    """Return a WSP push of a DM message in WBXML, long enough to need several SMS."""
    hdr = messages.header("1", 1, "IMEI:490154203237518", "https://dm.example.com/" + "x" * 120)
    body = wbxml.encode(messages.message(hdr))
    return encode_push("application/vnd.syncml.dm+wbxml", body, tid=1)


def _traffic(path) -> dict[str, int]:
    """Write the test traffic to ``path``; return records written per kind."""
    counts = {"sms": 0, "apdu": 0, "concat_parts": 0}
    with PcapWriter(path) as w:
        single = SmsDeliver(SERVER, user_data=b"hello")
        counts["sms"] += w.write_sms_mt(1.0, single.encode(), SMSC, mr=1)
        parts = split_parts(_bootstrap_push(), dest_port=WAP_PUSH_PORT, src_port=WAP_PUSH_SRC_PORT,
                            ref=7)
        counts["concat_parts"] = len(parts)
        for i, (ies, chunk) in enumerate(parts):
            tpdu = SmsDeliver(SERVER, pid=PID_USIM_DATA_DOWNLOAD, dcs=DCS_8BIT_CLASS2, ies=ies,
                              user_data=chunk).encode()
            counts["sms"] += w.write_sms_mt(2.0 + i, tpdu, SMSC, mr=2 + i)
        ota = scp80.encode_command(bytes([0x00, 0x00]), 0, 0, b"\xb0\x00\x10", 1, b"\x80\xe6", None)
        ota_tpdu = SmsDeliver(SERVER, pid=PID_USIM_DATA_DOWNLOAD, dcs=DCS_8BIT_CLASS2,
                              ies=[InformationElement(scp80.IEI_COMMAND_PACKET, b"")], user_data=ota)
        counts["sms"] += w.write_sms_mt(5.0, ota_tpdu.encode(), SMSC, mr=9)
        submit = SmsSubmit(Address.parse("+491720000009"), mr=3, user_data=b"ack")
        counts["sms"] += w.write_sms_mo(6.0, submit.encode(), SMSC, mr=3)
        for now, c, r in ((7.0, SELECT_MF, FCP_MF), (7.1, bytes.fromhex("00b0000004"),
                          bytes.fromhex("010203049000")), (7.2, bytes.fromhex("80f2000000"),
                          bytes.fromhex("9000")), (7.3, bytes.fromhex("00b00000"),
                          bytes.fromhex("6700"))):
            counts["apdu"] += w.write_apdu(now, c, r)
    return counts


def _records(data: bytes) -> list[tuple[float, bytes]]:
    """Return (timestamp, frame) of each record of a native-endian microsecond pcap."""
    out, pos = [], 24
    while pos < len(data):
        sec, usec, incl, orig = struct.unpack_from("=IIII", data, pos)
        assert incl == orig
        out.append((sec + usec / 1e6, data[pos + 16:pos + 16 + incl]))
        pos += 16 + incl
    assert pos == len(data)
    return out


# --------------------------------------------------------------------------- layers, no tshark

def test_gsmtap_header_fields():
    h = gsmtap.gsmtap_header(gsmtap.GSMTAP_TYPE_UM, sub_type=gsmtap.GSMTAP_CHANNEL_SDCCH8,
                             timeslot=1, arfcn=871, uplink=True, frame_number=1234, sub_slot=3)
    assert len(h) == 16 and h[0] == 2 and h[1] == 4 and h[2] == 0x01 and h[3] == 1
    assert struct.unpack(">H", h[4:6])[0] == 871 | 0x4000
    assert struct.unpack(">I", h[8:12])[0] == 1234 and h[12] == 0x08 and h[14] == 3
    with pytest.raises(ProtocolError):
        gsmtap.gsmtap_header(1, timeslot=8)


def test_rp_data_mt_and_mo_layout():
    smsc = Address.parse(SMSC)
    tpdu = b"\x04\x0b\x91"
    mt = gsmtap.rp_data_mt(tpdu, smsc, mr=5)
    # MTI 1, MR, RP-OA: 7 octets (TOA 91 + 6 BCD octets), RP-DA empty, RP-UD
    assert mt == bytes([1, 5, 7, 0x91]) + bytes.fromhex("947102000010") + b"\x00\x03" + tpdu
    mo = gsmtap.rp_data_mo(tpdu, smsc, mr=5)
    assert mo[:3] == bytes([0, 5, 0]) and mo[3:5] == bytes([7, 0x91]) and mo.endswith(tpdu)
    cp = gsmtap.cp_data(mt)
    assert cp[:3] == bytes([0x09, 0x01, len(mt)]) and cp[3:] == mt
    with pytest.raises(ProtocolError):
        gsmtap.rp_data_mt(bytes(234), smsc)


def test_lapdm_segmentation():
    l3 = bytes(range(45))
    frames = gsmtap.lapdm_i_frames(l3, uplink=False, n_s=6, n_r=2)
    assert [len(f) for f in frames] == [23, 23, 23]
    assert b"".join(f[3:3 + (f[2] >> 2)] for f in frames) == l3
    assert [f[2] & 0x02 for f in frames] == [2, 2, 0]               # M bit on all but the last
    assert [(f[1] >> 1) & 7 for f in frames] == [6, 7, 0]           # N(S) wraps modulo 8
    assert {f[1] >> 5 for f in frames} == {2} and frames[0][0] == 0x0F   # SAPI 3, C/R 1
    assert frames[2][3 + 5:] == b"\x2b" * 15
    assert gsmtap.lapdm_i_frames(b"x", uplink=True)[0][0] == 0x0D


def test_channel_continues_send_sequence_numbers():
    ch = gsmtap.SmsChannel()
    smsc = Address.parse(SMSC)
    first = ch.sms_packets(bytes(30), smsc, mt=True)      # 3+2+8+1+1+30 = 45 octets: 3 frames
    second = ch.sms_packets(bytes(5), smsc, mt=True)
    up = ch.sms_packets(bytes(5), smsc, mt=False)
    n_s = [(p[16 + 1] >> 1) & 7 for p in first + second]
    assert n_s == [0, 1, 2, 3]
    assert (up[0][17] >> 5) == 4 and (up[0][17] >> 1) & 7 == 0   # N(R) = frames received


def test_sim_packet_t0_form():
    body = lambda c, r: gsmtap.sim_packet(c, r)[16:]          # noqa: E731
    assert body(b"\x00\xb0\x00\x00", b"\x67\x00") == bytes.fromhex("00b00000006700")
    assert body(bytes.fromhex("00b0000000"), bytes.fromhex("01029000")) == bytes.fromhex(
        "00b000000201029000")                                   # Le 256, 2 octets came back
    assert body(SELECT_MF + b"\x00", FCP_MF) == SELECT_MF + FCP_MF   # case 4: Le dropped
    assert body(b"\x00\xa4\x00\x04\x09", b"\x67\x00") == bytes.fromhex("00a40004096700")  # raw
    with pytest.raises(ProtocolError):
        gsmtap.sim_packet(b"\x00\xa4", b"\x90\x00")
    with pytest.raises(ProtocolError):
        gsmtap.sim_packet(SELECT_MF, b"\x90")


def test_pcap_file_layout_and_timestamps(tmp_path):
    path = tmp_path / "t.pcap"
    counts = _traffic(path)
    data = path.read_bytes()
    magic, major, minor, _, _, snaplen, linktype = struct.unpack_from("=IHHiIII", data)
    assert (magic, major, minor, snaplen, linktype) == (0xA1B2C3D4, 2, 4, 65535, 1)
    records = _records(data)
    assert len(records) == counts["sms"] + counts["apdu"]
    assert records[0][0] == pytest.approx(DEFAULT_EPOCH + 1.0)
    assert records[-1][0] == pytest.approx(DEFAULT_EPOCH + 7.3)
    frame = records[0][1]
    assert frame[12:14] == b"\x08\x00" and frame[14 + 9] == 17            # IPv4, UDP
    assert struct.unpack(">HH", frame[34:38]) == (4729, 4729)
    assert frame[42] == 2 and frame[44] == gsmtap.GSMTAP_TYPE_UM             # GSMTAP v2, UM
    assert not part_path(path).exists()


def test_same_traffic_same_bytes(tmp_path):
    _traffic(tmp_path / "a.pcap")
    _traffic(tmp_path / "b.pcap")
    assert (tmp_path / "a.pcap").read_bytes() == (tmp_path / "b.pcap").read_bytes()


def test_part_file_until_close_and_removed_on_error(tmp_path):
    path = tmp_path / "run.pcap"
    w = PcapWriter(path)
    w.write_apdu(0.0, SELECT_MF, FCP_MF)
    assert part_path(path).exists() and not path.exists()
    assert w.close() == path and path.exists() and not part_path(path).exists()
    w.close()                                                   # idempotent
    with pytest.raises(DmsimError):
        w.write_apdu(1.0, SELECT_MF, FCP_MF)
    with pytest.raises(RuntimeError):
        with PcapWriter(tmp_path / "bad.pcap") as w2:
            w2.write_apdu(0.0, SELECT_MF, FCP_MF)
            raise RuntimeError("boom")
    assert not (tmp_path / "bad.pcap").exists() and not part_path(tmp_path / "bad.pcap").exists()
    with pytest.raises(DmsimError):
        PcapWriter(tmp_path / "no-such-folder" / "t.pcap")


@pytest.mark.parametrize("now", [-1.0, float("nan"), float("inf"), 2.0**32])
def test_bad_time_refused(tmp_path, now):
    with PcapWriter(tmp_path / "t.pcap") as w, pytest.raises(DmsimError):
        w.write_apdu(now, SELECT_MF, FCP_MF)


# --------------------------------------------------------------------------- tshark

def _tshark() -> str:
    binary = shutil.which("tshark")
    if binary is None:
        reason = "tshark is not installed"
        if os.environ.get("DMSIM_REQUIRE_TSHARK") == "1":
            pytest.fail(f"{reason} (DMSIM_REQUIRE_TSHARK=1 requires it)", pytrace=False)
        pytest.skip(reason)
    return binary


def _run(*args: str) -> str:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture(scope="module")
def dissected(tmp_path_factory):
    """Return (counts, summary lines, -V text, malformed/expert lines) of the test traffic."""
    tshark = _tshark()
    path = tmp_path_factory.mktemp("pcap") / "traffic.pcap"
    counts = _traffic(path)
    summary = _run(tshark, "-n", "-r", str(path)).splitlines()
    verbose = _run(tshark, "-n", "-r", str(path), "-V")
    bad = _run(tshark, "-n", "-r", str(path), "-Y", "_ws.malformed || _ws.expert.severity >= warning")
    return counts, summary, verbose, bad


def test_tshark_reads_every_packet_without_malformed(dissected):
    counts, summary, _, bad = dissected
    assert len(summary) == counts["sms"] + counts["apdu"]
    assert bad == ""


def test_tshark_shows_the_sms_layers(dissected):
    counts, summary, verbose, _ = dissected
    # one reassembled CP-DATA per SMS: the single one, the concatenated parts, OTA, SUBMIT
    assert sum("CP-DATA" in line for line in summary) == 3 + counts["concat_parts"]
    assert sum("(Fragment)" in line for line in summary) == counts["sms"] - 3 - counts["concat_parts"]
    # the last concatenated part completes the WSP push, whose body is the DM message in WBXML
    assert any("WSP Push" in line and "SyncML 1.2" in line for line in summary)
    for field in ("RP-DATA (Network to MS)", "RP-DATA (MS to Network)", "RP-Originator Address",
                  "RP-Destination Address", "TP-PID: 127", "TP-MTI: SMS-SUBMIT",
                  "TP-Originating-Address - (491721234567)", "TP-Destination-Address - (491720000009)",
                  "Message Class: Class 2", "(2948)", "(U)SIM Toolkit Security Headers"):
        assert field in verbose, field


def test_tshark_shows_the_apdus(dissected):
    _, summary, verbose, _ = dissected
    sim = [line for line in summary if "GSM SIM" in line]
    assert len(sim) == 4
    assert "SELECT" in sim[0] and "READ BINARY" in sim[1] and "STATUS" in sim[2]
    assert "Status Word: 6700" in verbose


def test_dmsim_run_pcap_is_dissected_without_errors(tmp_path):
    """`dmsim run --pcap`: every SMS the first replica delivered and every APDU of its cards,
    read back by tshark with nothing malformed."""
    import csv

    from click.testing import CliRunner

    from dmsim.sim.cli.main import main

    tshark = _tshark()
    pcap = tmp_path / "run.pcap"
    res = CliRunner().invoke(main, ["run", str(Path(__file__).resolve().parents[3] / "scenarios/quickstart.yaml"),
                                    "--out", str(tmp_path / "run"), "--set", "fleet.size=5", "--set", "replicas=2",
                                    "--set", "links.sms.loss=0", "--no-plots", "-q", "--pcap", str(pcap)])
    assert res.exit_code == 0, res.output
    with open(tmp_path / "run" / "sessions.csv", newline="") as f:
        first = [r for r in csv.DictReader(f) if r["replica"] == "0"]
    summary = _run(tshark, "-n", "-r", str(pcap)).splitlines()
    assert sum("CP-DATA" in line for line in summary) == sum(int(r["sms_msgs"]) for r in first)
    assert sum("READ BINARY" in line for line in summary) >= len(first)
    assert _run(tshark, "-n", "-r", str(pcap), "-Y", "_ws.malformed || _ws.expert.severity >= warning") == ""


def test_ota_campaign_pcap_shows_commands_and_mo_pors(tmp_path):
    """An OTA campaign with PoR via SMS-SUBMIT: tshark finds the TS 102 225 command packets
    (MT, PID 127), the ENVELOPEs to the cards and the PoRs on the MO path, nothing malformed."""
    from click.testing import CliRunner

    from dmsim.sim.cli.main import main

    tshark = _tshark()
    pcap = tmp_path / "ota.pcap"
    res = CliRunner().invoke(main, ["run", str(Path(__file__).resolve().parents[3] / "scenarios/ota-campaign.yaml"),
                                    "--out", str(tmp_path / "run"), "--set", "fleet.size=4", "--set", "links.sms.loss=0",
                                    "--set", "smsc={submit_rate: 50, burst: 20}", "--no-plots", "-q", "--pcap", str(pcap)])
    assert res.exit_code == 0, res.output
    verbose = _run(tshark, "-n", "-r", str(pcap), "-V")
    submits = [p for p in verbose.split("\nFrame ") if "TP-MTI: SMS-SUBMIT" in p]
    radio = [p for p in submits if "RP-DATA (MS to Network)" in p]
    fetched = [p for p in submits if "FETCH" in p]  # the card's SEND SHORT MESSAGE, dissected by tshark too
    assert len(radio) == len(fetched) == 4 and all("TP-PID: 127" in p for p in radio)  # one PoR per device
    assert verbose.count("IE: (U)SIM Toolkit Security Headers") >= 8  # 4 command packets, 4 PoRs
    assert "ENVELOPE" in _run(tshark, "-n", "-r", str(pcap))
    assert _run(tshark, "-n", "-r", str(pcap), "-Y", "_ws.malformed || _ws.expert.severity >= warning") == ""


# --------------------------------------------------------------------------- devices, APDU times, TCP

def test_each_device_has_its_own_address_and_radio_channel(tmp_path):
    from dmsim.sim.results.pcap import device_ip

    assert (device_ip(0), device_ip(4711)) == ("10.0.0.1", "10.0.18.104")
    assert gsmtap.device_channel(0) == (1, 1, 0) and gsmtap.device_channel(57) == (2, 1, 1)
    assert gsmtap.device_channel(6944) == gsmtap.device_channel(0)          # the documented wrap
    path = tmp_path / "d.pcap"
    with PcapWriter(path) as w:
        w.write_sms_mt(1.0, SmsDeliver(SERVER, user_data=b"a").encode(), SMSC, device=4711)
        w.write_sms_mo(2.0, SmsSubmit(SERVER, user_data=b"b").encode(), SMSC, device=4711)
        w.write_sms_mt(3.0, SmsDeliver(SERVER, user_data=b"c").encode(), SMSC)   # no device: old address
    frames = [f for _, f in _records(path.read_bytes())]
    downs = [f for f in frames if f[30:34] == bytes([10, 0, 18, 104])]
    down, up = downs[0], next(f for f in frames if f[26:30] == bytes([10, 0, 18, 104]))
    anon = next(f for f in frames if f[30:34] == bytes([192, 0, 2, 2]))
    assert anon[30:34] == bytes([192, 0, 2, 2])
    arfcn, ts, sub = gsmtap.device_channel(4711)
    assert struct.unpack(">H", down[46:48])[0] == arfcn and down[45] == ts and down[56] == sub
    assert struct.unpack(">H", up[46:48])[0] == arfcn | gsmtap.GSMTAP_ARFCN_F_UPLINK
    # LAPDm state is per device: the device-less SMS starts its own N(S) at 0
    assert (anon[58 + 1] >> 1) & 7 == 0 and (up[58 + 1] >> 5) == len(downs) % 8


def test_apdus_with_offsets_are_written_in_time_order(tmp_path):
    path = tmp_path / "a.pcap"
    with PcapWriter(path) as w:
        for k in range(3):
            w.write_apdu(1.0, SELECT_MF, FCP_MF, device=1, offset=0.25 * k)
        w.write_sms_mt(1.3, SmsDeliver(SERVER, user_data=b"x").encode(), SMSC, device=2)
    times = [round(t - DEFAULT_EPOCH, 6) for t, _ in _records(path.read_bytes())]
    assert times == sorted(times) and set(times) == {1.0, 1.25, 1.3, 1.5}
    with PcapWriter(tmp_path / "b.pcap") as w, pytest.raises(DmsimError):
        w.write_apdu(1.0, SELECT_MF, FCP_MF, offset=-0.1)


def _tcp(frame: bytes) -> tuple[int, int, int, bytes]:
    """Return (seq, ack, flags, payload) of an Ethernet/IPv4/TCP frame."""
    ihl = (frame[14] & 0x0F) * 4
    tcp = frame[14 + ihl:]
    seq, ack = struct.unpack(">II", tcp[4:12])
    return seq, ack, tcp[13], tcp[(tcp[12] >> 4) * 4:]


def test_tcp_handshake_sequence_and_acknowledgement_numbers(tmp_path):
    from dmsim.sim.results.pcap import TCP_ACK, TCP_FIN, TCP_PSH, TCP_SYN

    path = tmp_path / "t.pcap"
    with PcapWriter(path) as w:
        s = w.tcp_open(1.0, 7)
        assert w.write_tcp(1.1, s, b"q" * 3000, from_device=True) == 3              # MSS 1460
        w.write_tcp(1.2, s, b"r" * 10, from_device=False)
        w.write_tcp(1.3, s, b"", from_device=False, fin=True)
    frames = [_tcp(f) for _, f in _records(path.read_bytes())]
    (c_isn, _, f1, _), (s_isn, a2, f2, _), (_, a3, f3, _) = frames[:3]
    assert (f1, f2, f3) == (TCP_SYN, TCP_SYN | TCP_ACK, TCP_ACK) and a2 == c_isn + 1 and a3 == s_isn + 1
    data = frames[3:6]
    assert [seq - c_isn - 1 for seq, *_ in data] == [0, 1460, 2920]
    assert [len(p) for *_, p in data] == [1460, 1460, 80] and data[2][2] == TCP_ACK | TCP_PSH
    seq, ack, flags, payload = frames[6]
    assert (seq, ack, payload) == (s_isn + 1, c_isn + 1 + 3000, b"r" * 10)
    seq, ack, flags, _ = frames[7]
    assert seq == s_isn + 11 and flags == TCP_ACK | TCP_FIN


def _small_run(tmp_path, scenario: str, *extra: str) -> tuple[Path, list[dict]]:
    import csv

    from click.testing import CliRunner

    from dmsim.sim.cli.main import main

    pcap = tmp_path / "run.pcap"
    res = CliRunner().invoke(main, ["run", str(Path(__file__).resolve().parents[3] / "scenarios" / scenario),
                                    "--out", str(tmp_path / "run"), "--set", "fleet.size=4", "--set", "replicas=1",
                                    "--set", "links.sms.loss=0", "--no-plots", "-q", "--pcap", str(pcap), *extra])
    assert res.exit_code == 0, res.output
    with open(tmp_path / "run" / "sessions.csv", newline="") as f:
        return pcap, list(csv.DictReader(f))


def test_dmsim_run_pcap_has_devices_apart_and_the_dm_session_as_http(tmp_path):
    """Each device its own address; its APDUs spread over time; the DM session as HTTP over TCP
    that tshark finds (-Y http) and follows (-z follow,tcp), nothing malformed."""
    tshark = _tshark()
    pcap, rows = _small_run(tmp_path, "quickstart.yaml")
    fields = _run(tshark, "-n", "-r", str(pcap), "-Y", "gsm_sim", "-T", "fields", "-e", "ip.src",
                  "-e", "frame.time_epoch").split()
    by_device: dict[str, list[float]] = {}
    for ip, t in zip(fields[::2], fields[1::2]):
        by_device.setdefault(ip, []).append(float(t))
    assert set(by_device) == {f"10.0.0.{i + 1}" for i in range(4)}
    assert all(len(set(ts)) == len(ts) and ts == sorted(ts) for ts in by_device.values())
    posts = _run(tshark, "-n", "-r", str(pcap), "-Y", 'http.request.method == "POST"', "-T", "fields",
                 "-e", "ip.src", "-e", "http.content_type").splitlines()
    assert len(posts) == sum(int(r["ip_msgs"]) for r in rows) // 2
    assert all(line.endswith("application/vnd.syncml.dm+wbxml") for line in posts)
    assert {line.split()[0] for line in posts} == set(by_device)
    assert len(_run(tshark, "-n", "-r", str(pcap), "-Y", "http.response.code == 200").splitlines()) == len(posts)
    follow = _run(tshark, "-n", "-r", str(pcap), "-q", "-z", "follow,tcp,ascii,0")
    assert "POST /dm HTTP/1.1" in follow and "HTTP/1.1 200 OK" in follow and ":80" in follow
    assert _run(tshark, "-n", "-r", str(pcap), "-Y", "_ws.malformed || _ws.expert.severity >= warning") == ""


def test_dmsim_run_pcap_shows_the_real_tls_records_on_port_443(tmp_path):
    tshark = _tshark()
    pcap, rows = _small_run(tmp_path, "dm_session_tls_psk.yaml")
    hellos = _run(tshark, "-n", "-r", str(pcap), "-Y", "tls.handshake.type == 1 && tcp.dstport == 443").splitlines()
    done = [r for r in rows if r["t_session_start"]]
    assert done and len(hellos) >= len(done)
    assert _run(tshark, "-n", "-r", str(pcap), "-Y", "tls.record.content_type == 23")
    assert _run(tshark, "-n", "-r", str(pcap), "-Y", "http") == ""            # encrypted: no key log
    assert _run(tshark, "-n", "-r", str(pcap), "-Y", "_ws.malformed || _ws.expert.severity >= warning") == ""
