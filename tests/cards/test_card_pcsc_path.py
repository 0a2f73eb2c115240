"""The device's card host code over the real PC/SC stack: pyscard -> pcscd -> vpcd -> the full
emulated card (cards/emulated.py), and ``dmsim card serve`` / ``dmsim card probe`` as processes.

Same rule as test_pcsc.py: skipped without pcscd, vsmartcard-vpcd and pyscard, a failure when
DMSIM_REQUIRE_PCSC=1 (``./dev test`` in CI). The CLI's input checks, which need no PC/SC, are in
tests/sim/cli/test_cli_card.py.
"""
import json
import signal
import subprocess
import sys
import threading

import pytest

from dmsim.cards.apdu import build_command
from dmsim.cards.emulated import make_card
from dmsim.cards.milenage import f1, f2345
from dmsim.cards.profile import parse_profile
from dmsim.cards.scp03 import Scp03Keys
from dmsim.sim.real.vpcd import VPCD_PORT, VpcdBridge
from dmsim.devices import card_host as host
from test_pcsc import READER, pcscd  # noqa: F401  (the fixture that starts pcscd if needed)

SECOND_READER = "Virtual PCD 00 01"
KEY = "00112233445566778899AABBCCDDEEFF"
PROFILE = f"""\
imsi: "262019876543210"
k: "465B5CE8B199B49FAA5F0A2EE238A6BC"
opc: "CD63CB71954A9F4E48A5994E37A02BAF"
sqn: "000000000020"
scp03: {{kvn: 0x30, enc: "{KEY}", mac: "{KEY}", dek: "{KEY}"}}
dm_bootstrap: "{'<SyncML><SyncHdr/>' + 'b' * 300 + '</SyncML>'}"
"""
RAND = bytes.fromhex("23553CBE9637A89D218AE64DAE47BF35")
KEYS_ARG = f"{KEY}:{KEY}:{KEY}"
DMSIM = [sys.executable, "-m", "dmsim.sim.cli.main"]


def autn(profile, sqn: int) -> bytes:
    """AUTN for SQN ``sqn`` as the AuC builds it (TS 33.102 §6.3.2)."""
    sqn_b = sqn.to_bytes(6, "big")
    ak = f2345(profile.k, profile.opc, RAND)[3]
    return bytes(a ^ b for a, b in zip(sqn_b, ak)) + profile.amf + f1(profile.k, profile.opc, RAND, sqn_b, profile.amf)


@pytest.fixture(scope="module")
def profile():
    return parse_profile(PROFILE)


@pytest.fixture(scope="module")
def served(pcscd, profile):  # noqa: F811
    """Yield a PcscLink to the full emulated card, served by a VpcdBridge thread in READER."""
    from dmsim.sim.real.pcsc_link import wait_for_card

    bridge = VpcdBridge(make_card(profile))
    thread = threading.Thread(target=bridge.serve_forever, name="vpcd-bridge", daemon=True)
    thread.start()
    link = wait_for_card(READER, timeout=10, probe=build_command(0x00, 0xA4, 0x00, 0x0C, b"\x3f\x00"))
    yield link
    link.disconnect()
    bridge.stop()
    thread.join(timeout=5)


def test_identities_authenticate_and_bootstrap_over_pcsc(served, profile):
    link = served
    assert link.atr[:2] == bytes.fromhex("3b9f")
    assert host.read_iccid(link) == profile.iccid
    assert host.read_imsi(link, pin="1234") == profile.imsi
    result = host.authenticate(link, RAND, autn(profile, 0x40), pin="1234")
    assert result.outcome == "success" and result.res == f2345(profile.k, profile.opc, RAND)[0]
    k = profile.scp03
    data = host.read_dm_bootstrap(link, Scp03Keys(k.enc, k.mac, k.dek, 0), host_challenge=bytes(8))
    assert data == profile.dm_bootstrap


def test_probe_json_against_the_bridge(served, profile):
    out = subprocess.run(DMSIM + ["card", "probe", "--reader", READER, "--pin", "1234", "--rand", RAND.hex(),
                                  "--autn", autn(profile, 0x60).hex(), "--scp03-keys", KEYS_ARG, "--json"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["iccid"] == profile.iccid and result["imsi"] == profile.imsi
    assert result["auth"]["outcome"] == "success"
    assert result["auth"]["res"] == f2345(profile.k, profile.opc, RAND)[0].hex()
    assert bytes.fromhex(result["dm_bootstrap"]) == profile.dm_bootstrap
    assert result["scp03_security_level"] == "33" and result["reader"] == READER


def test_probe_exit_1_when_the_card_refuses(served, profile):
    wrong = "00" * 16
    out = subprocess.run(DMSIM + ["card", "probe", "--reader", READER, "--pin", "1234",
                                  "--scp03-keys", f"{wrong}:{wrong}:{wrong}", "--json"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1, out.stdout + out.stderr
    result = json.loads(out.stdout)
    assert result["imsi"] == profile.imsi and "INITIALIZE UPDATE" in result["error"]


def test_card_serve_then_probe(pcscd, profile, tmp_path):  # noqa: F811
    path = tmp_path / "card.yaml"
    path.write_text(PROFILE)
    serve = subprocess.Popen(DMSIM + ["card", "serve", "--profile", str(path), "--vpcd",
                                      f"127.0.0.1:{VPCD_PORT + 1}"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        info = json.loads(serve.stdout.readline())
        assert info["reader"] == SECOND_READER and info["imsi"] == profile.imsi
        out = subprocess.run(DMSIM + ["card", "probe", "--reader", info["reader"], "--wait", "10", "--pin", "1234",
                                      "--scp03-keys", KEYS_ARG],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        lines = dict(line.split(None, 1) for line in out.stdout.splitlines())
        assert lines["imsi"] == profile.imsi and lines["iccid"] == profile.iccid
        assert bytes.fromhex(lines["dm_bootstrap"]) == profile.dm_bootstrap
    finally:
        serve.send_signal(signal.SIGINT)
        try:
            assert serve.wait(timeout=10) == 0, serve.stderr.read()
        finally:
            if serve.poll() is None:
                serve.kill()


def test_scenario_device_zero_runs_on_the_real_card(served, profile):
    """components.card: pcsc — device 0 reads its IMSI through pcscd, is bootstrapped under that
    subscriber and completes its session; its card time is measured, not modelled."""
    from dmsim.sim.model.replica import Replica
    from dmsim.sim.real.components import ALL
    from dmsim.sim.scenario.format import parse_scenario

    sc = parse_scenario(f"""
name: real-card
seed: 4
duration: 900
fleet: {{size: 4}}
arrival: {{kind: poisson, rate: 1}}
links: {{sms: {{loss: 0}}}}
components: {{card: {{kind: pcsc, reader: "{READER}", pin: "1234"}}}}
""", "real-card.yaml")
    rows = []
    model = Replica(sc.data, seed=4, replica=0, sweep=0, sweep_value=None, write=rows.append, components=ALL)
    try:
        model.run()
    finally:
        model.close()
    assert f"IMSI:{profile.imsi}" in model.server.core.accounts
    by_device = {r[3]: r for r in rows}
    assert all(r[5] == "ok" for r in rows) and len(rows) == 4
    card_time = {d: r[8] - r[7] for d, r in by_device.items()}  # t_bootstrap_sent - t_arrival
    assert card_time[1] == pytest.approx(card_time[2])          # virtual cards: n APDUs x apdu_time
    assert card_time[0] != pytest.approx(card_time[1])          # the real card: measured wall-clock time
