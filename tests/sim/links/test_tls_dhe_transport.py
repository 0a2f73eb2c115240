"""Simulated DM sessions in the DHE_RSA suites of seed 000 §9.2.2 (X.509 mode): the simulated
server hands a ClientHello offering only DHE_RSA to the standard library's ssl (network/dm/tls_dhe.py)
with the lab CA's RSA-2048 certificate, and still requires and binds the device's client
certificate (OMA-TS-DM_Security §5.4)."""
import pytest

from conftest import run_replica
from dmsim.base.errors import ScenarioError
from dmsim.network.dm import tls_dhe
from dmsim.sim.links.transports import TLS_SUITES
from dmsim.sim.scenario.format import parse_scenario
from tls_fleet import after_each_exchange, tls_scenario

BASE = tls_scenario(size=4, mode="x509")
OUTCOME = 5
DHE_SUITES = ["TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_DHE_RSA_WITH_AES_128_CBC_SHA256"]


def watch_backends(model):
    """Record (DevId, server backend, client certificate identity) of every exchange's connection."""
    seen = []
    model.seen = seen
    after_each_exchange(model, lambda dev, conn: seen.append(
        (dev.ident.uri, getattr(conn.server, "backend", None), conn.server.peer_identity)))


@pytest.mark.parametrize("suite", DHE_SUITES)
def test_a_dhe_rsa_fleet_completes_with_bound_client_certificates(suite):
    model, rows = run_replica(BASE, f"components.dm_server.tls.suite={suite}", model_hook=watch_backends)
    assert [r[OUTCOME] for r in rows] == ["ok"] * 4
    assert model.transport.suites == {suite: 4}
    assert {(uri, backend) for uri, backend, _ in model.seen} == {(uri, "openssl") for uri, _, _ in model.seen}
    assert all(uri == identity for uri, _, identity in model.seen) and len({u for u, _, _ in model.seen}) == 4
    assert model.transport.stats["server_failures"] == 0 and model.transport.stats["binding_refused"] == 0


def test_without_a_chosen_suite_the_fleet_keeps_ecdhe_ecdsa_and_no_rsa_key_is_derived():
    model, rows = run_replica(BASE, model_hook=watch_backends)
    assert [r[OUTCOME] for r in rows] == ["ok"] * 4
    assert model.transport.suites == {"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": 4}
    assert {backend for _, backend, _ in model.seen} == {"mbedtls"}
    assert not model.transport.pki._rsa_keys  # derived on the first DHE_RSA handshake only


def test_without_client_certificates_dhe_rsa_still_serves():
    model, rows = run_replica(BASE, f"components.dm_server.tls.suite={DHE_SUITES[0]}",
                              "components.dm_server.tls.client_cert=false")
    assert [r[OUTCOME] for r in rows] == ["ok"] * 4
    assert not model.transport.server_config.requires_client_cert


def test_the_scenario_accepts_dhe_rsa_in_x509_mode_and_refuses_dhe_psk():
    assert set(DHE_SUITES) <= set(TLS_SUITES["x509"]) and set(DHE_SUITES) == set(tls_dhe.OPENSSL_NAMES)
    parse_scenario(BASE, "t.yaml", [f"components.dm_server.tls.suite={DHE_SUITES[1]}"])
    for suite, mode in (("TLS_DHE_PSK_WITH_AES_128_GCM_SHA256", "psk"), (DHE_SUITES[0], "psk")):
        with pytest.raises(ScenarioError, match="suite"):
            parse_scenario(BASE, "t.yaml", [f"components.dm_server.tls.mode={mode}",
                                            f"components.dm_server.tls.suite={suite}"])
