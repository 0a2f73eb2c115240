"""sim/results/trace.py (``dmsim run --trace``), trace_fields.py and the link observer seam."""
import csv
import json
import random
from pathlib import Path

import pytest
import simpy
from click.testing import CliRunner

from dmsim.base.errors import ScenarioError
from dmsim.sim.cli.main import main
from dmsim.sim.links.link import Message, SimLink
from dmsim.sim.links.tap import Tap
from dmsim.sim.results import trace_fields
from dmsim.sim.results.observe import Both
from dmsim.sim.results.trace import DeviceTrace, parse_devices

ROOT = Path(__file__).resolve().parents[3]
SMALL = ("--set", "fleet.size=6", "--set", "replicas=2", "--set", "links.sms.loss=0", "--no-plots", "-q")
# the only keys trace_fields may write: headers and lengths, never a payload (secrets live there)
FIELD_KEYS = {"tp_mti", "oa", "da", "tp_pid", "tp_dcs", "ud_length", "ports", "concat", "method", "path", "status",
              "content_type", "content_length", "tls_records", "tcp", "cla", "ins", "p1", "p2", "lc", "le", "sw",
              "response_length", "undecoded"}


def _run(out: Path, *args: str, scenario: str = "quickstart.yaml"):
    res = CliRunner().invoke(main, ["run", str(ROOT / "scenarios" / scenario), "--out", str(out), *args])
    return res


def _lines(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "trace.jsonl").read_text().splitlines()]


def _rows(run: Path) -> list[dict]:
    with open(run / "sessions.csv", newline="") as f:
        return list(csv.DictReader(f))


# --------------------------------------------------------------------------- selecting devices

def test_parse_devices_takes_indexes_and_fleet_imsis():
    assert parse_devices("4, 7,001010000000011,4", 20) == (4, 7, 11)


@pytest.mark.parametrize("text", ["abc", "4;5", "20", "999990000000001", "12345678901", ""])
def test_parse_devices_refuses_what_is_not_a_device(text):
    with pytest.raises(ScenarioError) as err:
        parse_devices(text, 20)
    assert err.value.where == "--trace"


def test_bad_trace_option_is_bad_input_not_a_traceback(tmp_path):
    res = _run(tmp_path / "run", "--trace", "1000000", *SMALL)
    assert res.exit_code == 2 and "--trace" in res.output and "not in the fleet of 6" in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)


# --------------------------------------------------------------------------- a traced run

@pytest.fixture(scope="module")
def traced(tmp_path_factory):
    """Return (run folder of a run traced for device 3, run folder of the same run untraced)."""
    base = tmp_path_factory.mktemp("trace")
    res = _run(base / "traced", "--trace", "001010000000003", "--pcap", str(base / "run.pcap"), *SMALL)
    assert res.exit_code == 0, res.output
    res = _run(base / "plain", *SMALL)
    assert res.exit_code == 0, res.output
    return base / "traced", base / "plain"


def test_tracing_and_capturing_leave_sessions_csv_byte_identical(traced):
    run, plain = traced
    assert (run / "sessions.csv").read_bytes() == (plain / "sessions.csv").read_bytes()
    assert not (plain / "trace.jsonl").exists()


def test_trace_tells_one_devices_story_in_the_first_replica(traced):
    lines = _lines(traced[0])
    assert lines[0] == {"event": "device", "device": 3, "imsi": "001010000000003", "ip": "10.0.0.4"}
    assert {line["device"] for line in lines} == {3}
    records = [line for line in lines if line["event"] == "record"]
    assert len(records) == 1 and lines[-1] is records[0]        # one replica, the record ends the story
    row = next(r for r in _rows(traced[0]) if r["replica"] == "0" and r["device"] == "3")
    record = records[0]["record"]
    assert (record["outcome"], record["reason"] or "", record["sms_msgs"]) == (row["outcome"], row["reason"],
                                                                                int(row["sms_msgs"]))
    times = [line["t"] for line in lines[1:]]
    assert times == sorted(times)


def test_trace_shows_apdus_with_increasing_times(traced):
    apdus = [line for line in _lines(traced[0]) if line["event"] == "apdu"]
    assert len(apdus) >= 5
    assert all(b["t"] > a["t"] for a, b in zip(apdus, apdus[1:]))
    first = apdus[0]
    assert (first["link"], first["dir"], first["fields"]["ins"], first["fields"]["sw"]) == \
        ("card", "ME -> UICC", "A4", "9000")                      # SELECT, answered 9000


def test_trace_shows_sms_and_http_fields_and_outcomes(traced):
    messages = [line for line in _lines(traced[0]) if line["event"] == "message"]
    sms = [m for m in messages if m["kind"] == "bootstrap"]
    assert sms and all(m["fields"]["tp_mti"] == "SMS-DELIVER" and m["fields"]["ports"]["dest"] == 2948 for m in sms)
    parts = {m["fields"]["concat"]["part"] for m in sms}
    assert parts == set(range(1, sms[0]["fields"]["concat"]["of"] + 1))
    assert {m["outcome"] for m in sms} == {"sent", "delivered"}   # no loss in this run
    http = [m for m in messages if m["kind"] == "dm"]
    posts = [m for m in http if m["fields"].get("method") == "POST" and m["outcome"] == "sent"]
    answers = [m for m in http if m["fields"].get("status") == 200 and m["outcome"] == "delivered"]
    assert posts and len(answers) == len(posts)
    assert all(m["dir"] == "IMSI:001010000000003 -> server" and m["agent"] == "device" for m in posts)
    assert all("syncml" in m["fields"]["content_type"] for m in posts + answers)


def test_trace_holds_headers_only(traced):
    for line in _lines(traced[0]):
        assert set(line.get("fields", {})) <= FIELD_KEYS, line


def test_lost_sms_are_traced_as_lost(tmp_path):
    res = _run(tmp_path / "run", "--trace", "0", "--set", "fleet.size=1", "--set", "links.sms.loss=1",
               "--set", "duration=300", "--replicas", "1", "--no-plots", "-q")
    assert res.exit_code == 0, res.output
    outcomes = [line["outcome"] for line in _lines(tmp_path / "run") if line.get("kind") == "bootstrap"]
    assert outcomes and set(outcomes) == {"sent", "lost"} and outcomes.count("sent") == outcomes.count("lost")


# --------------------------------------------------------------------------- the link seam

class _DropAll(Tap):
    def act(self, msg, now, rng):
        return []


def _link_events(tmp_path, spec: dict, tap=None) -> list[str]:
    env = simpy.Environment()
    link = SimLink(env, "links.sms", spec, random.Random(1), tap)
    trace = DeviceTrace(tmp_path / "t.jsonl", [2])
    link.observer = trace
    got = []
    for dst in ("IMSI:001010000000002", "IMSI:001010000000005"):   # the second device is not traced
        link.send(Message(b"\x04", "smsc", dst, "bootstrap"), got.append)
    env.run()
    trace.close()
    lines = [json.loads(x) for x in (tmp_path / "t.jsonl").read_text().splitlines()][1:]
    assert {line["device"] for line in lines} <= {2}
    return [line["outcome"] for line in lines], got


def test_link_observer_sees_delivery_loss_and_tap_drops(tmp_path):
    outcomes, got = _link_events(tmp_path, {"delay": {"kind": "fixed", "value": 1.5}})
    assert outcomes == ["sent", "delivered"] and len(got) == 2
    outcomes, _ = _link_events(tmp_path, {"loss": 1.0})
    assert outcomes == ["sent", "lost"]
    outcomes, _ = _link_events(tmp_path, {}, tap=_DropAll())
    assert outcomes == ["sent", "dropped_by_tap"]
    outcomes, _ = _link_events(tmp_path, {"duplicate": 1.0})
    assert outcomes == ["sent", "delivered", "delivered_again"]


def test_two_observers_on_one_link_both_see_each_arrival(tmp_path):
    seen = []

    class Counter:
        def __init__(self, name):
            self.name = name

        def sent(self, link, msg, deliver):
            def arrived(copy):
                seen.append(self.name)
                deliver(copy)
            return arrived

        def outcome(self, link, msg, what):
            seen.append(what)

        def tapped(self, link, msg, deliveries):
            pass

    env = simpy.Environment()
    link = SimLink(env, "x", {}, random.Random(1), Tap())
    link.observer = Both(Counter("a"), Counter("b"))
    got = []
    link.send(Message(b"1", "a", "b", "dm"), got.append)
    env.run()
    assert seen == ["a", "b"] and len(got) == 1


# --------------------------------------------------------------------------- fields

def test_tls_fields_name_clear_handshakes_and_hide_encrypted_ones():
    hs = bytes([22, 3, 3, 0, 8, 16, 0, 0, 4]) + b"abcd"                    # ClientKeyExchange
    ccs = bytes([20, 3, 3, 0, 1, 1])
    fin = bytes([22, 3, 3, 0, 5, 0, 0, 0, 1, 9])                           # looks like hello_request
    fields = trace_fields.tls_fields(hs + ccs + fin)
    assert [r.get("handshake") for r in fields["tls_records"]] == ["client_key_exchange", None, "encrypted"]
    assert trace_fields.tls_fields(b"") == {"tcp": "FIN"}


def test_apdu_fields():
    assert trace_fields.apdu_fields(bytes.fromhex("00b0000004"), bytes.fromhex("010203049000")) == {
        "cla": "00", "ins": "B0", "p1": "00", "p2": "00", "le": 4, "sw": "9000", "response_length": 4}
