"""Nonce attacks (sim/agents/adversary/attacks/nonce.py) run from scenarios: a package 1 replayed
over a stale nonce is challenged once with a fresh nonce, then refused (OMA-TS-DM_Security
§5.4.3, §5.5), and authenticates against a server whose NextNonce repeats; the simulated server's
seeded Mersenne Twister nonces are predicted (os.urandom's are not); strangers' bad package 1s no
longer rotate a device's nonce (they did before issue 13: knockout server-failure-rotates-nonce),
but a flood of them locks the device out through the per-device lockout."""
from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from dmsim.base.errors import ScenarioError
from dmsim.sim.agents.adversary.attacks import nonce
from dmsim.sim.cli import knockouts as ko
from dmsim.sim.results.runner import run_scenario
from dmsim.sim.scenario.format import parse_scenario

ROOT = Path(__file__).resolve().parents[4]
SCENARIOS = ROOT / "scenarios"


def scenario_text(name: str) -> str:
    return (SCENARIOS / f"{name}.yaml").read_text(encoding="utf-8")


def outcome(tmp_path: Path, text: str) -> dict:
    result = run_scenario(parse_scenario(text, "x.yaml"), tmp_path / "run", plots=False)
    return result.summary["attacks"]["outcomes"][0]


# --- stale-nonce and server-nonce-reuse ---------------------------------------------------------

def test_a_replayed_package_1_gets_one_fresh_challenge_then_a_final_refusal(tmp_path):
    out = outcome(tmp_path, scenario_text("attack_stale_nonce"))
    assert out["verdict"] == "detected" and "§5.4.3" in out["mechanism"]
    ev = out["evidence"]
    assert ev["captured"] == ev["replayed"] == 4 and ev["authenticated"] == 0
    assert ev["replies"] == "401+chal,401"          # one more challenge, then the session ends
    assert ev["fresh_challenge"] and ev["refusals_recorded"] == 8
    # the server still stores the nonce each device holds: its next session is unaffected
    assert ev["stored_nonce_unchanged"] and ev["next_session_unaffected"] and not out["state_corrupted"]


def test_the_same_replay_authenticates_when_the_server_repeats_its_nonce(tmp_path, monkeypatch):
    text = scenario_text("attack_server_nonce_reuse")
    fixed = outcome(tmp_path / "fixed", text)
    assert fixed["verdict"] == "detected" and not fixed["evidence"]["next_nonce_repeats"]
    ko.apply(ko.KNOCKOUTS["server-next-nonce-repeats"], monkeypatch)
    broken = outcome(tmp_path / "broken", text)
    assert broken["verdict"] == "succeeded" and broken["state_corrupted"]
    ev = broken["evidence"]
    assert ev["next_nonce_repeats"] and ev["authenticated"] == 4 and ev["replies"] == "212+chal"


@pytest.mark.parametrize("change, why", [
    ("dm_auth: md5", "dm_auth md5 or sha256"),
    ("duration: 600\ncomponents: {dm_server: {kind: virtual, tls: {mode: psk}}}", "plain HTTP"),
])
def test_replays_need_a_digest_profile_over_plain_http(change, why):
    text = scenario_text("attack_stale_nonce")
    text = text.replace("dm_auth: md5", "dm_auth: basic") if change == "dm_auth: md5" else \
        text.replace("duration: 600", change)
    with pytest.raises(ScenarioError, match=why):
        parse_scenario(text, "x.yaml")


# --- nonce-predictability -----------------------------------------------------------------------

def test_the_simulated_servers_next_nonce_is_predicted(tmp_path):
    out = outcome(tmp_path, scenario_text("attack_nonce_predictability"))
    assert out["verdict"] == "succeeded" and "Mersenne Twister" in out["mechanism"]
    ev = out["evidence"]
    assert ev["samples"] >= 700 and ev["duplicates"] == 0
    assert abs(ev["monobit_ones"] - 0.5) < 0.01 and ev["max_bit_bias"] < 0.1  # statistically fine...
    assert ev["state_recovered"] and ev["predicted"]                           # ...and predictable


def test_state_recovery_without_a_simulation_skips_unseen_draws():
    """Bench-free: nonces of a seeded random.Random (randbytes(16), as the simulated server draws
    them) with some draws the observer never sees are enough to compute the next ones; the
    operating system's nonces are not."""
    source = random.Random(2026)
    seen = []
    for n in range(400):
        drawn = source.randbytes(16)
        if n not in (20, 30, 250, 251, 390):  # draws the observer misses (provisioning nonces)
            seen.append(drawn)
    generator, missed = nonce.recover(seen, lookahead=8)
    assert missed == 3  # the draws after the window it used (250, 251, 390)
    source.randbytes(16)  # an unseen draw
    upcoming = source.randbytes(16)
    assert upcoming in [generator.randbytes(16) for _ in range(8)]
    assert nonce.recover([os.urandom(16) for _ in range(200)], lookahead=8) is None


def test_untemper_inverts_the_mersenne_twister_tempering():
    source = random.Random(7)
    state = source.getstate()[1][:624]
    outputs = [source.getrandbits(32) for _ in range(624)]
    clone = random.Random()
    clone.setstate((3, tuple(nonce.untemper(y) for y in outputs) + (624,), None))
    assert [clone.getrandbits(32) for _ in range(10)] == [source.getrandbits(32) for _ in range(10)]
    assert len(state) == 624


def test_bit_statistics_count_ones_and_the_worst_bit():
    ones, bias = nonce.bit_statistics([b"\xff" * 16, b"\x00" * 16])
    assert ones == 0.5 and bias == 0.0
    assert nonce.bit_statistics([b"\x01" + b"\x00" * 15]) == (1 / 128, 0.5)


# --- nonce-rotation-lockout ---------------------------------------------------------------------

def test_strangers_no_longer_rotate_a_devices_nonce(tmp_path):
    """After issue 13 (challenge nonces bound to their session): every device authenticates."""
    out = outcome(tmp_path, scenario_text("attack_nonce_rotation_react"))
    assert out["verdict"] == "detected" and "challenges.py" in out["mechanism"]
    ev = out["evidence"]
    assert ev["victim_ok"] == ev["victim_sessions"] == 4 and ev["nonce_rotations"] == 0
    assert not out["state_corrupted"]


def test_before_issue_13_the_same_strangers_rotate_the_nonce_and_the_sessions_fail(tmp_path, monkeypatch):
    ko.apply(ko.KNOCKOUTS["server-failure-rotates-nonce"], monkeypatch)
    out = outcome(tmp_path, scenario_text("attack_nonce_rotation_react"))
    assert out["verdict"] == "succeeded" and "nonce rotated" in out["mechanism"]
    ev = out["evidence"]
    assert ev["victim_ok"] == 0 and ev["failed_stale_nonce"] == 4 and ev["failed_locked"] == 0
    assert ev["nonce_rotations"] > 0 and out["state_corrupted"]


@pytest.mark.parametrize("dm_auth", ["md5", "hmac"])
def test_a_flood_of_strangers_failures_locks_devices_out(tmp_path, dm_auth):
    """The per-device lockout counts a stranger's failures (a wrong Cred, a wrong x-syncml-hmac MAC)
    against the device: a denial of service by anyone who knows the DevId (network/dm/lockout.py
    says so), though no nonce moves."""
    text = scenario_text("attack_nonce_rotation_flood").replace("dm_auth: md5", f"dm_auth: {dm_auth}")
    out = outcome(tmp_path, text)
    assert out["verdict"] == "succeeded" and "lockout" in out["mechanism"]
    ev = out["evidence"]
    assert ev["failed_locked"] >= 1 and ev["failed_stale_nonce"] == 0
    assert ev["nonce_rotations"] == 0 and not out["state_corrupted"]


def test_the_rotation_knockout_restores_the_old_server_and_is_no_conformance_row():
    knockout = ko.KNOCKOUTS["server-failure-rotates-nonce"]
    assert knockout in ko.REHEARSAL_LIST and knockout.id not in ko.ROWS.values()
    ko.check_target(knockout)
    assert nonce.NonceRotationLockout.before_knockouts == ("server-failure-rotates-nonce",)


def test_after_the_replays_each_device_still_opens_its_next_session_at_the_first_try():
    """Devices run one session each: play each device's next package 1 against the server core
    the run left, with the nonce the device got last (its final NextNonce, seen on the wire)."""
    from dmsim.devices.dm_client import DmClient
    from dmsim.network.dm import messages as m
    from dmsim.sim.model.replica import Replica

    data = parse_scenario(scenario_text("attack_stale_nonce"), "x.yaml").data
    model = Replica(data, seed=data["seed"], replica=0, sweep=0, sweep_value=None, write=lambda row: None)
    model.run()
    attack = model.agents["adversary"].attacks[0]
    core = model.server.core
    assert len(attack.captures) == 4
    for cap in attack.captures.values():
        assert [w.code for w in cap.replies] == [m.UNAUTHORIZED, m.UNAUTHORIZED]
        held = core.accounts[cap.uri].with_nonces(client=cap.next_nonces[-1])  # what the device keeps
        client = DmClient(held, cap.uri, {"DevId": cap.uri}, session_id=0x7000, nonce_source=os.urandom)
        step = client.start(model.transport.unix_now())
        reply = core.handle(step.body, step.content_type, model.transport.unix_now())
        assert m.header_status(m.decode(reply.body, reply.content_type)).code == m.AUTH_ACCEPTED
