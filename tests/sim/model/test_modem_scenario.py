"""components.modem: serial: device 0 of a scenario behind an AT modem on a serial line (here the
virtual modem on a pty, `dmsim modem serve --msisdn`, whose loopback network returns an SMS sent
to its own number): its IMSI read through AT+CSIM, its bootstrap SMS across the modem."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from dmsim.cards.emulated import make_card
from dmsim.cards.profile import load_profile
from dmsim.network.sms.tpdu import decode_tpdu
from dmsim.network.sms.udh import find_ports
from dmsim.base.errors import ScenarioError
from dmsim.sim.results.runner import run_scenario
from dmsim.sim.scenario.format import parse_scenario
from dmsim.sim.real.virtual_modem import VirtualModem, loopback_network

pytest.importorskip("serial")
ROOT = Path(__file__).resolve().parents[3]
PROFILE = ROOT / "cards" / "profiles" / "example.yaml"
MSISDN = "491720000042"


def scenario(port: str, smsc: str = "null"):
    return parse_scenario(f"""
name: modem
duration: 900
fleet: {{size: 3}}
links: {{sms: {{loss: 0, delay: {{kind: fixed, value: 0.5}}}}}}
smsc: {smsc}
components:
  modem: {{kind: serial, port: "{port}", msisdn: "{MSISDN}", timeout: 5, pin: "1234"}}
""", "modem.yaml")


@pytest.fixture
def modem():
    vm = VirtualModem(card=make_card(load_profile(PROFILE)))
    vm.core.submit = loopback_network(vm, MSISDN)
    with vm:
        yield vm


@pytest.mark.parametrize("smsc", ["null", "{}"])
def test_device_0_bootstraps_through_the_modem(modem, tmp_path, smsc):
    # the example card holds 001010000000001, the fleet IMSI of device 1: that simulated device moves to
    # another test MNC so that the real subscriber keeps its own account
    res = run_scenario(scenario(modem.path, smsc), tmp_path, plots=False)
    assert res.summary["success_rate"] == 1.0
    looped = res.summary["network"]["modem"]
    assert looped["sms_looped"] == len(modem.core.submitted) >= 10 and looped["sms_lost"] == looped["errors"] == 0
    # what crossed the modem: SMS-SUBMITs to the SIM's own number carrying the WAP Push parts
    for _sca, tpdu, _mr in modem.core.submitted:
        sms = decode_tpdu(tpdu, mt=False)
        assert sms.da.digits == MSISDN and find_ports(sms.ies).dest == 2948


def test_dmsim_modem_serve_as_the_scenario_modem(tmp_path):
    """The CLI's virtual modem in its own process, opened by the scenario as a serial port."""
    proc = subprocess.Popen([sys.executable, "-m", "dmsim.sim.cli.modem", "serve", "--profile", str(PROFILE),
                             "--msisdn", MSISDN], stdout=subprocess.PIPE, text=True)
    try:
        ready = json.loads(proc.stdout.readline())
        res = run_scenario(scenario(ready["pty"]), tmp_path, plots=False)
        assert res.summary["success_rate"] == 1.0 and res.summary["network"]["modem"]["sms_looped"] >= 10
    finally:
        proc.terminate()
        proc.wait(10)
    submits = [json.loads(line) for line in proc.stdout if line.startswith("{")]
    assert submits and {s["da"] for s in submits} == {MSISDN}


def test_a_silent_modem_loses_the_sms_not_the_run(tmp_path):
    vm = VirtualModem(card=make_card(load_profile(PROFILE)))  # no loopback: nothing comes back
    with vm:
        sc = scenario(vm.path)
        sc.data["components"]["modem"]["timeout"] = 0.3
        sc.data["server"]["bootstrap_retries"] = 0
        res = run_scenario(sc, tmp_path, plots=False)
    rows = {r.split(",")[3]: r.split(",") for r in (tmp_path / "sessions.csv").read_text().splitlines()[1:]}
    assert res.summary["network"]["modem"]["sms_lost"] >= 10
    assert rows["0"][5:7] == ["failed", "bootstrap_lost"]  # device 0; the others are simulated
    assert rows["1"][5] == rows["2"][5] == "ok"


def test_one_sim_for_device_0():
    with pytest.raises(ScenarioError, match="one SIM"):
        parse_scenario(f"""
fleet: {{size: 1}}
components:
  card: {{kind: pcsc}}
  modem: {{kind: serial, port: /dev/null, msisdn: "{MSISDN}"}}
""", "x.yaml")
