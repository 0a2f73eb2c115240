"""A real ESME (smpplib) injects SMS into a running scenario through components.esme (sim/real/esme_gateway.py)."""
import csv
import json
import socket
import threading
import time

import pytest

from dmsim.network.sms import smpp
from dmsim.sim.real.esme_gateway import receipt_stat, short_message
from dmsim.base.errors import DecodeError, ScenarioError
from dmsim.sim.results.runner import run_scenario
from dmsim.sim.scenario.format import parse_scenario

smpplib_client = pytest.importorskip("smpplib.client")
smpplib_exceptions = pytest.importorskip("smpplib.exceptions")

DEVICE0 = "001010000000000"  # the fleet's IMSI of device 0 (sim/model/fleet.py), the address the SMSC routes on


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scenario_text(port: int, smsc: str = "{}", duration: int = 40) -> str:
    return f"""
name: esme
duration: {duration}
fleet: {{size: 2}}
links: {{sms: {{delay: {{kind: fixed, value: 0.5}}}}}}
smsc: {smsc}
components:
  esme: {{kind: smpp, listen: "127.0.0.1:{port}", speed: 20, accounts: ["esme1:pw"]}}
"""


def connect(port: int, deadline: float = 10.0):
    """Return a bound smpplib transceiver once the run's server listens."""
    end = time.monotonic() + deadline
    while True:
        c = smpplib_client.Client("127.0.0.1", port, timeout=5, allow_unknown_opt_params=True)
        try:
            c.connect()
            break
        except smpplib_exceptions.ConnectionError:
            if time.monotonic() > end:
                raise
            time.sleep(0.05)
    assert c.bind_transceiver(system_id="esme1", password="pw").status == 0
    return c


def start_run(tmp_path, text: str):
    sc = parse_scenario(text, "esme.yaml")
    box: dict = {}
    thread = threading.Thread(target=lambda: box.update(result=run_scenario(sc, tmp_path / "run", plots=False)))
    thread.start()
    return thread, box


def test_esme_submits_reach_simulated_devices_and_receipts_come_back(tmp_path):
    port = free_port()
    thread, box = start_run(tmp_path, scenario_text(port))
    c = connect(port)
    sent, received = [], []
    c.set_message_sent_handler(lambda pdu: sent.append(pdu))
    c.set_message_received_handler(lambda pdu: received.append(pdu))
    c.send_message(source_addr="4471", destination_addr=DEVICE0, short_message=b"hello device",
                   data_coding=0, registered_delivery=1)
    c.send_message(source_addr="4471", destination_addr="999", short_message=b"nobody", registered_delivery=1)
    for _ in range(4):  # two submit_sm_resp, two receipts (answered by smpplib)
        c.read_once()
    c.unbind()
    c.disconnect()
    thread.join(30)
    assert [s.status for s in sent] == [0, 0]
    ids = [s.message_id.decode() for s in sent]
    receipts = {r.receipted_message_id.decode(): r.short_message for r in received}
    assert b"stat:DELIVRD" in receipts[ids[0]] and b"err:000" in receipts[ids[0]]
    assert b"stat:UNDELIV" in receipts[ids[1]] and b"err:067" in receipts[ids[1]]  # TP-ST 0x43, no such subscriber
    result = box["result"]
    assert result.status == "complete" and result.summary["network"]["esme"]["accepted"] == 2
    rows = list(csv.DictReader((tmp_path / "run" / "sms.csv").open()))
    esme_rows = {r["dst"]: r for r in rows if r["origin"] == "esme"}
    assert esme_rows[DEVICE0]["outcome"] == "delivered" and esme_rows["999"]["outcome"] != "delivered"
    # the devices' own bootstraps went on beside the ESME's traffic
    sessions = list(csv.DictReader((tmp_path / "run" / "sessions.csv").open()))
    assert [s["outcome"] for s in sessions] == ["ok", "ok"]


def test_smsc_throttling_answers_esme_rthrottled(tmp_path):
    port = free_port()
    # one submit token a minute, and the bootstraps of the fleet have used it: the ESME is throttled
    thread, _ = start_run(tmp_path, scenario_text(port, "{submit_rate: 0.016, burst: 1}", duration=20))
    c = connect(port)
    time.sleep(0.2)
    with pytest.raises(smpplib_exceptions.PDUError) as info:
        c.send_message(source_addr="4471", destination_addr=DEVICE0, short_message=b"x")
        c.read_once()
    assert info.value.args[1] == smpp.ESME_RTHROTTLED
    c.disconnect()
    thread.join(30)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["network"]["esme"]["refused"] == 1


def test_busy_port_is_a_scenario_error(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        sc = parse_scenario(scenario_text(taken.getsockname()[1]), "esme.yaml")
        with pytest.raises(ScenarioError, match="cannot listen"):
            run_scenario(sc, tmp_path / "run", plots=False)
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["status"] == "interrupted"


def test_esme_needs_an_smsc():
    with pytest.raises(ScenarioError) as info:
        parse_scenario("fleet: {size: 1}\ncomponents: {esme: {kind: smpp}}\n", "x.yaml")
    assert info.value.path == "components.esme" and info.value.where == "x.yaml:2"


def test_submit_mapping():
    text = smpp.SubmitSm(source_addr="+44", destination_addr="+31", short_message=b"caf\xe9", data_coding=3,
                         registered_delivery=1)
    sm = short_message(text)
    assert (sm.src, sm.dst, sm.dcs, sm.user_data, sm.status_report) == ("44", "31", 0, b"caf?", True)
    push = smpp.SubmitSm(destination_addr="31", esm_class=0x40, data_coding=4,
                         short_message=bytes.fromhex("0605040b8423f0") + b"\x01\x06")
    sm = short_message(push)
    assert [ie.iei for ie in sm.ies] == [5] and sm.user_data == b"\x01\x06" and sm.dcs == 4
    with pytest.raises(DecodeError):
        short_message(smpp.SubmitSm(destination_addr="31", esm_class=0x40, short_message=b"\x09\x05"))
    assert [receipt_stat(st) for st in (0x00, 0x02, 0x46, 0x43, 0x61)] == \
        ["DELIVRD", "DELIVRD", "EXPIRED", "UNDELIV", "UNDELIV"]


def test_listen_port_is_checked_on_load():
    with pytest.raises(ScenarioError) as info:
        parse_scenario(scenario_text(70000), "x.yaml")
    assert info.value.path == "components.esme.listen"
