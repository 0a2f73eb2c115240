"""A non-conformant deployment is named, never passed off (sim/scenario/conformance.py):
OMA-TS-DM_Security §5.3 (transport-neutral integrity without TLS) and auth-basic in clear."""
import json
from pathlib import Path

from click.testing import CliRunner

from dmsim.sim.cli.main import main
from dmsim.sim.scenario.conformance import RULE_BASIC_CLEAR, RULE_INTEGRITY, RULE_LWM2M_NOSEC, nonconformities
from dmsim.sim.scenario.format import load_scenario, parse_scenario

REPO = Path(__file__).resolve().parents[3]
BASE = "fleet: {size: 4, profiles: [{name: a, dm_auth: %s}]}\nduration: 100\narrival: {kind: poisson, rate: 1}\n"


def notes(auth, *overrides):
    return nonconformities(parse_scenario(BASE % auth, "t.yaml", list(overrides)).data)


def test_each_rule_is_named_with_its_profile():
    assert notes("hmac") == []
    md5 = notes("md5")
    assert len(md5) == 1 and "profile a" in md5[0] and RULE_INTEGRITY in md5[0]
    basic = notes("basic")
    assert len(basic) == 2 and RULE_BASIC_CLEAR in basic[1]
    assert notes("md5", "components.dm_server.tls.mode=psk") == []
    assert notes("basic", "components.dm_server={kind: socket, url: 'https://127.0.0.1:8443/dm'}") == []
    assert len(notes("md5", "components.dm_server={kind: socket, url: 'http://127.0.0.1:8080/dm'}")) == 1


def test_seed_002_message_security_is_transport_neutral_integrity():
    for choice in ("hmac-md5", "xmldsig", "xmlenc"):
        assert notes("md5", f"fleet.profiles=[{{name: a, message_security: {choice}}}]") == []
    basic = notes("basic", "fleet.profiles=[{name: a, dm_auth: basic, message_security: xmlenc}]")
    assert len(basic) == 1 and RULE_BASIC_CLEAR in basic[0]  # the Cred rides in the clear SyncHdr
    assert "message_security" in notes("md5")[0]


def test_the_quickstart_is_conformant():
    assert nonconformities(load_scenario(REPO / "scenarios" / "quickstart.yaml").data) == []


def test_check_run_and_summary_name_the_broken_rule(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(BASE % "md5" + "sweep: {key: components.dm_server.tls.mode, values: [none, psk]}\n")
    res = CliRunner().invoke(main, ["scenario", "check", str(path)])
    assert res.exit_code == 0 and res.output.count("not conformant") == 1 and RULE_INTEGRITY in res.output
    res = CliRunner().invoke(main, ["run", str(path), "--out", str(tmp_path / "run"), "--no-plots", "-q"])
    assert res.exit_code == 0 and "WARNING: not conformant: profile a" in res.output
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert len(summary["conformance"]) == 1
    none, psk = summary["sweep"]["points"]
    assert len(none["conformance"]) == 1 and psk["conformance"] == []


def test_lwm2m_profiles_are_held_to_seed_004_not_to_the_dm_rules():
    lwm2m = "fleet.profiles=[{name: l, device: lwm2m, lwm2m: {security_mode: %s}}]"
    assert notes("md5", lwm2m % "psk") == []  # no dm_auth rule for a device that runs no DM session
    nosec = notes("md5", lwm2m % "nosec")
    assert len(nosec) == 1 and "profile l" in nosec[0] and RULE_LWM2M_NOSEC in nosec[0]
    assert notes("md5", lwm2m % "nosec", "components.dm_server.tls.mode=psk") == nosec


def test_the_mixed_lwm2m_scenario_is_conformant():
    assert nonconformities(load_scenario(REPO / "scenarios" / "lwm2m_sms_bootstrap.yaml").data) == []
