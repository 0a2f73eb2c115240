"""Seed 002 §5.3-§5.5 message security as a fleet profile choice (``message_security``), driven
end to end in the simulation: every choice completes, protects what is on the ip link, and a
tampered message fails its session with a message-security reason, never a crash."""
import pytest

from conftest import PayloadTap, run_replica
from dmsim.base.errors import ScenarioError
from dmsim.network.dm import http_binding
from dmsim.sim.links.tap import Tap

BASE = """
name: t
seed: 5
duration: 900
fleet: {size: 10, profiles: [{name: p, message_security: xmlenc}]}
arrival: {kind: poisson, rate: 5}
links:
  sms: {delay: {kind: fixed, value: 1.0}}
  ip: {delay: {kind: fixed, value: 0.05}}
server: {max_sessions: 50, service_time: {kind: fixed, value: 0.0}}
"""
OUTCOME, REASON = 5, 6


@pytest.mark.parametrize("choice,auth", [("hmac-md5", "md5"), ("xmldsig", "md5"), ("xmldsig", "hmac"),
                                         ("xmlenc", "basic")])
def test_fleet_completes_with_every_dm_message_protected(choice, auth):
    up, down = PayloadTap(), PayloadTap()

    def hook(model):
        model.ip_up.tap, model.ip_down.tap = up, down

    _, rows = run_replica(BASE, f"fleet.profiles=[{{name: p, message_security: {choice}, dm_auth: {auth}}}]",
                          model_hook=hook)
    assert [r[OUTCOME] for r in rows] == ["ok"] * 10
    assert up.payloads and down.payloads
    for payload in up.payloads + down.payloads:
        msg = http_binding.decode(payload)
        if choice == "hmac-md5":
            assert msg.headers["x-syncml-hmac"].startswith("algorithm=MD5,")
        else:
            assert msg.content_type.startswith("application/vnd.syncml.dm+xml") and b"<ds:Signature" in msg.body
        if choice == "xmlenc":
            assert b"<SyncBody" not in msg.body and b"DevInfo" not in msg.body


class CipherFlip(Tap):
    """Flips one base64 character inside the request's first CipherValue: the XML stays well
    formed, so the server must refuse it for what it says (its signature over the ciphertext)."""

    def act(self, msg, now, rng):
        start = msg.payload.find(b"<xenc:CipherValue>")
        if start < 0:
            return [(0.0, msg.payload)]
        at = start + len(b"<xenc:CipherValue>") + 8
        changed = bytearray(msg.payload)
        changed[at] = ord("B") if changed[at] != ord("B") else ord("C")
        return [(0.0, bytes(changed))]


def test_tampered_uplink_is_refused_by_the_server():
    def hook(model):
        model.ip_down.tap = Tap()

    model, rows = run_replica(BASE, "links.ip.tap={kind: tamper, probability: 1.0, match: dm}", model_hook=hook)
    # a flip that breaks the XML is a bare bad request (400); one that keeps it XML fails the signature
    # (401); which one depends on where the random offset lands in ciphertext whose IV is random
    assert {r[REASON] for r in rows} <= {"http_401", "http_400"}
    assert set(model.transport.refused) <= {"bad_signature", "bad_xml", "bad_signature_form", "unsigned",
                                            "not_encrypted", "decrypt_failed"}


def test_a_changed_ciphertext_is_refused_by_its_signature():
    flip = CipherFlip()

    def hook(model):
        model.ip_up.tap, model.ip_down.tap = flip, Tap()

    model, rows = run_replica(BASE, model_hook=hook)
    assert {r[REASON] for r in rows} == {"http_401"} and len(rows) == 10
    assert model.transport.refused == {"bad_signature": 10}


def test_tampered_downlink_is_refused_by_the_client():
    def hook(model):
        model.ip_up.tap = Tap()

    _, rows = run_replica(BASE, "links.ip.tap={kind: tamper, probability: 1.0, match: dm}", model_hook=hook)
    reasons = {r[REASON] for r in rows}
    assert "server_message_security_failed" in reasons
    assert reasons <= {"server_message_security_failed", "bad_server_message", "ip_timeout"}


def test_hmac_md5_with_dm_auth_hmac_is_refused_by_the_scenario():
    with pytest.raises(ScenarioError, match="x-syncml-hmac"):
        run_replica(BASE, "fleet.profiles=[{name: p, message_security: hmac-md5, dm_auth: hmac}]")


def test_message_security_towards_a_real_server_is_refused_up_front():
    import pytest
    from dmsim.base.errors import ScenarioError
    from dmsim.sim.scenario.format import parse_scenario
    with pytest.raises(ScenarioError, match="simulated only"):
        parse_scenario("fleet: {size: 2, profiles: [{name: p, message_security: xmldsig}]}\n"
                       "components: {dm_server: {kind: socket, url: 'http://127.0.0.1:8080/dm'}}\n", "t.yaml")
