"""Simulated DM sessions in X.509 mode with client certificates (OMA-TS-DM_Security §5.4,
DM-SEC-S-002-M): the seeded lab CA, the server's CertificateRequest, the DevId binding."""
import dataclasses
import types

import pytest

from conftest import run_replica
from dmsim.base.errors import ScenarioError
from dmsim.sim.scenario.format import parse_scenario
from tls_fleet import after_each_exchange, tls_scenario

BASE = tls_scenario(size=5, mode="x509")
OUTCOME, REASON, IP_BYTES = 5, 6, 20


def watch_server_handshakes(model):
    """Record the client identity of every server-side handshake of ``model``'s transport."""
    seen = []
    model.seen_identities = seen

    def see(dev, conn):
        if conn.server.peer_identity is not None:
            seen.append((dev.ident.uri, conn.server.peer_identity))
    after_each_exchange(model, see)


def test_x509_fleet_completes_with_client_certificates_naming_each_device():
    model, rows = run_replica(BASE, model_hook=watch_server_handshakes)
    assert [r[OUTCOME] for r in rows] == ["ok"] * 5
    assert model.transport.server_config.requires_client_cert
    pairs = set(model.seen_identities)
    assert all(uri == identity for uri, identity in pairs) and len(pairs) == 5
    assert model.transport.stats["binding_refused"] == 0 and model.transport.stats["server_failures"] == 0


def test_the_seed_gives_the_lab_ca_and_another_seed_another():
    a, _ = run_replica(BASE, "fleet.size=1")
    b, _ = run_replica(BASE, "fleet.size=1")
    c, _ = run_replica(BASE, "fleet.size=1", "seed=4")
    assert a.transport.pki.ca_pem == b.transport.pki.ca_pem != c.transport.pki.ca_pem
    assert a.transport.pki.issue_device("IMSI:1") == b.transport.pki.issue_device("IMSI:1")


def test_client_cert_false_is_server_only_authentication():
    model, rows = run_replica(BASE, "components.dm_server.tls.client_cert=false", model_hook=watch_server_handshakes)
    assert [r[OUTCOME] for r in rows] == ["ok"] * 5
    assert not model.transport.server_config.requires_client_cert and model.seen_identities == []
    _, rows_certs = run_replica(BASE)
    # the client's Certificate and CertificateVerify cost bytes on the link
    assert sum(r[IP_BYTES] for r in rows_certs) > sum(r[IP_BYTES] for r in rows)


def test_a_device_presenting_another_devices_certificate_gets_403():
    def swap(model):
        transport = model.transport
        original = transport._client_config

        def other_device(dev):  # the certificate of another DevId
            return original(types.SimpleNamespace(account=dev.account,
                                                  ident=dataclasses.replace(dev.ident, imsi=dev.ident.imsi + "9")))
        transport._client_config = other_device
    model, rows = run_replica(BASE, model_hook=swap)
    assert {r[OUTCOME] for r in rows} != {"ok"} and {r[REASON] for r in rows} == {"http_403"}
    assert model.transport.stats["binding_refused"] == 5


def test_a_device_without_certificate_fails_the_handshake():
    def strip(model):
        transport = model.transport
        transport.client_cert = False  # the devices get no certificate; the server still requires one
    model, rows = run_replica(BASE, model_hook=strip)
    assert all(r[REASON].startswith("tls_failed") for r in rows)
    assert model.transport.stats["server_failures"] == 5


def test_client_cert_is_a_boolean_key():
    with pytest.raises(ScenarioError):
        parse_scenario(BASE, "t.yaml", ["components.dm_server.tls.client_cert=7"])


def test_lab_ca_secret_is_not_written_to_the_summary(tmp_path):
    import json

    from dmsim.sim.results.runner import run_scenario
    from dmsim.sim.scenario.format import load_scenario
    scenario = tmp_path / "s.yaml"
    scenario.write_text(BASE)
    run_scenario(load_scenario(scenario, ["fleet.size=2"]), tmp_path / "out", plots=False)
    text = "".join(p.read_text(errors="replace") for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert "PRIVATE KEY" not in text and "BEGIN CERTIFICATE" not in text
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["network"]["tls"]["binding_refused"] == 0


def test_x509_without_client_certificates_is_named_nonconformant():
    from dmsim.sim.scenario.conformance import RULE_CLIENT_CERT, nonconformities
    assert nonconformities(parse_scenario(BASE, "t.yaml", []).data) == []
    notes = nonconformities(parse_scenario(BASE, "t.yaml", ["components.dm_server.tls.client_cert=false"]).data)
    assert len(notes) == 1 and RULE_CLIENT_CERT in notes[0]
