"""The smartcard bootstrap as a fleet option (``bootstrap_via: smartcard``, seed 001 §8.1,
Appendix H): no SMS, the SCP03 read's APDU time in the latency, a mixed fleet, a card
personalised for another server refused, a device with the wrong SCP03 keys, a real card
falling back to SMS, and determinism."""
import csv
import dataclasses

import pytest

from dmsim.cards.emulated import make_card
from dmsim.cards.link import InProcessLink
from dmsim.cards.profile import PROFILE_SCHEMA, profile_from_data
from dmsim.cards.scp03 import Scp03Keys
from dmsim.devices.smartcard_bootstrap import Reason
from dmsim.sim.links import card_access
from dmsim.sim.agents import dm_server
from dmsim.sim.results.runner import run_scenario
from dmsim.sim.scenario.format import parse_scenario
from dmsim.base.schema import validate

APDU = 0.01
BASE = f"""
name: sc
seed: 11
duration: 600
fleet: {{size: 8, profiles: [{{name: card, bootstrap_via: smartcard}}]}}
arrival: {{kind: poisson, rate: 4}}
links: {{sms: {{loss: 0}}, ip: {{loss: 0}}}}
components: {{card: {{kind: virtual, apdu_time: {{kind: fixed, value: {APDU}}}}}}}
"""
MIXED = "fleet.profiles=[{name: card, bootstrap_via: smartcard}, {name: sms, bootstrap_via: sms}]"


def run(tmp_path, *overrides, name="run"):
    out = tmp_path / name
    run_scenario(parse_scenario(BASE, "sc.yaml", list(overrides)), out, plots=False)
    with open(out / "sessions.csv", newline="") as f:
        return list(csv.DictReader(f))


def apdus(seconds: float) -> float:
    return seconds / APDU


def test_smartcard_fleet_completes_without_sms_and_pays_for_its_apdus(tmp_path):
    rows = run(tmp_path)
    assert len(rows) == 8
    for r in rows:
        assert (r["outcome"], r["reason"], r["sms_msgs"], r["bootstrap_sends"]) == ("ok", "", "0", "0")
        assert r["t_bootstrap_sent"] == "" and r["ip_msgs"] == "4"
        card_time = float(r["t_bootstrap_ok"]) - float(r["t_arrival"])
        # the IMSI read alone is 9 APDUs; the SCP03 channel and the PKCS#15 files add more
        assert apdus(card_time) == pytest.approx(round(apdus(card_time))) and apdus(card_time) > 20
        assert float(r["t_session_start"]) == float(r["t_bootstrap_ok"])
        assert float(r["latency"]) > card_time


def test_mixed_fleet_both_kinds_complete(tmp_path):
    rows = run(tmp_path, MIXED, "fleet.size=16")
    kinds = {r["profile"] for r in rows}
    assert kinds == {"card", "sms"} and all(r["outcome"] == "ok" for r in rows)
    for r in rows:
        if r["profile"] == "card":
            assert r["sms_msgs"] == "0" and r["t_bootstrap_sent"] == ""
        else:
            assert int(r["sms_msgs"]) > 1 and r["bootstrap_sends"] == "1"
            assert apdus(float(r["t_bootstrap_sent"]) - float(r["t_arrival"])) == pytest.approx(9)


def test_card_personalised_for_another_server_is_refused(tmp_path, monkeypatch):
    real = dm_server.bootstrap_document
    monkeypatch.setattr(dm_server, "bootstrap_document",
                        lambda account, uri: real(dataclasses.replace(account, server_id="rogue-server"), uri))
    rows = run(tmp_path)
    for r in rows:
        assert (r["outcome"], r["reason"]) == ("failed", "smartcard_bootstrap_refused")
        assert r["bootstrap_rejected"] == "1" and r["t_session_start"] == "" and r["ip_msgs"] == "0"
        assert r["sms_msgs"] == "0"


def test_device_with_wrong_scp03_keys_fails_cleanly(tmp_path, monkeypatch):
    real = card_access.power_on_bootstrap
    wrong = Scp03Keys(b"\x00" * 16, b"\x00" * 16, b"\x00" * 16, 0x30)
    reports = []

    def power_on(tree, link, **kw):
        reports.append(real(tree, link, **{**kw, "scp03_keys": wrong}))
        return reports[-1]

    monkeypatch.setattr(card_access, "power_on_bootstrap", power_on)
    rows = run(tmp_path, "fleet.size=3")
    assert [(r["outcome"], r["reason"], r["t_session_start"], r["ip_msgs"]) for r in rows] == \
        [("failed", "smartcard_bootstrap_failed", "", "0")] * 3
    assert {r.failure for r in reports} == {Reason.SCP03_AUTHENTICATION}


def test_real_card_device_falls_back_to_sms(tmp_path, monkeypatch):
    profile = profile_from_data(validate(PROFILE_SCHEMA, {"imsi": "001019876543210", "k": "11" * 16,
                                                          "opc": "22" * 16, "pin1_enabled": False}))
    monkeypatch.setattr(card_access.CardAccess, "_real", lambda self: InProcessLink(make_card(profile)))
    rows = run(tmp_path, "components.card={kind: pcsc}", "fleet.size=3")
    by_device = {int(r["device"]): r for r in rows}
    assert all(r["outcome"] == "ok" for r in rows)
    assert int(by_device[0]["sms_msgs"]) > 1 and by_device[0]["t_bootstrap_sent"] != ""
    assert all(by_device[i]["sms_msgs"] == "0" for i in (1, 2))


def test_same_seed_same_sessions(tmp_path):
    paths = []
    for name, seed in (("a", 11), ("b", 11), ("c", 12)):
        run(tmp_path, MIXED, f"seed={seed}", name=name)
        paths.append((tmp_path / name / "sessions.csv").read_bytes())
    assert paths[0] == paths[1] != paths[2]
