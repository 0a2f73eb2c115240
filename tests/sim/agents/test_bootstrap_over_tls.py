"""Bootstrap over TLS (seed 001 §9.3, profile ``bootstrap_via: tls``): the factory account of the
bootstrap server with its <x>/Auth/Bootstrap PSK, a DM session over PSK-TLS that Adds the DM
server's account (with <x>/Auth/Trsp), the ACL handed over, and what fails when it should."""
import dataclasses

import pytest

from conftest import PayloadTap, run_replica
from dmsim.devices import dm_commands, dm_tree
from dmsim.network.dm import messages as m
from dmsim.network.dm.account import AUTH_BOOTSTRAP, AUTH_TRSP
from dmsim.sim.agents import bootstrap_server as bs
from dmsim.sim.agents.device import bootstrap as device_bootstrap
from dmsim.sim.links.bootstrap_transport import BootstrapHttps

BASE = """
name: t
seed: 5
duration: 900
fleet: {size: 6, profiles: [{name: f, bootstrap_via: tls, dm_auth: hmac}]}
arrival: {kind: poisson, rate: 5}
links:
  sms: {delay: {kind: fixed, value: 1.0}}
  ip: {delay: {kind: fixed, value: 0.05}}
server: {max_sessions: 50, service_time: {kind: fixed, value: 0.0}}
components: {dm_server: {kind: virtual, tls: {mode: psk}}}
"""
OUTCOME, REASON = 5, 6


def keep_trees(model):
    """Keep each device's DM tree after its life (the replica drops the device)."""
    trees = {}
    original = device_bootstrap.via_tls

    def via_tls(dev):
        result = yield from original(dev)
        trees[dev.ident.uri] = dev.tree
        return result

    return trees, via_tls


def test_devices_fetch_the_dm_account_over_psk_tls_and_complete(monkeypatch):
    trees, wrapped = keep_trees(None)
    monkeypatch.setattr(device_bootstrap, "via_tls", wrapped)
    taps = {}

    def hook(model):
        taps["up"] = model.ip_up.tap = PayloadTap()

    model, rows = run_replica(BASE, model_hook=hook)
    assert [r[OUTCOME] for r in rows] == ["ok"] * 6
    boot = model.agents["bootstrap_server"]
    assert isinstance(boot.transport, BootstrapHttps)
    assert boot.transport.stats["handshakes"] == 6 and boot.transport.suites
    assert model.transport.stats["handshakes"] == 6  # then the DM session over its own PSK-TLS
    assert not model.sms.stats()["sent"]  # nothing went over SMS
    for uri, tree in trees.items():
        account = dm_tree.account_from_tree(tree, model.server.core.server_id)
        server_copy = model.server.core.accounts[uri]
        assert (account.psk_identity, account.psk_key) == (server_copy.psk_identity, server_copy.psk_key)
        assert dm_tree.tls_keys_from_tree(tree, model.server.core.server_id, AUTH_TRSP) is not None
        # seed 001 §12.2: the bootstrap keys are the bootstrap server's account's alone
        assert dm_tree.tls_keys_from_tree(tree, bs.BOOTSTRAP_ID).server_uri == bs.BOOTSTRAP_URI
        assert dm_tree.tls_keys_from_tree(tree, model.server.core.server_id, AUTH_BOOTSTRAP) is None
        # the ACL is handed over: the DM server owns its account, the bootstrap server reads it no more
        acc = dm_tree.find_account(tree, model.server.core.server_id)
        assert str(tree.find(acc).acl) == str(dm_tree.acl_for(model.server.core.server_id))
        assert dm_commands.get(tree, f"{acc}/AppAuth/1/AAuthName", bs.BOOTSTRAP_ID).code == 425
        assert dm_commands.get(tree, f"{acc}/AppAuth/1/AAuthName", model.server.core.server_id).code == 200
    # no secret of either account crosses the link in clear: only TLS records go up
    secrets = [a.client_password.encode() for a in model.server.core.accounts.values()]
    secrets += [a.client_password.encode() for a in boot.core.accounts.values()]
    wire = b"".join(taps["up"].payloads)
    assert wire and not any(s in wire for s in secrets)
    assert b"SyncML" not in wire and m.DM_WBXML.encode() not in wire


def test_the_bootstrap_is_over_tls_even_when_dm_sessions_are_plain_http():
    model, rows = run_replica(BASE, "components.dm_server.tls.mode=none", "fleet.size=3")
    assert [r[OUTCOME] for r in rows] == ["ok"] * 3
    assert model.agents["bootstrap_server"].transport.stats["handshakes"] == 3
    assert not any(a.has_psk for a in model.server.core.accounts.values())


def test_sms_profiles_get_no_bootstrap_server():
    model, _ = run_replica(BASE, "fleet.profiles=[{name: f}]", "fleet.size=1")
    assert "bootstrap_server" not in model.agents


def test_a_device_with_the_wrong_bootstrap_psk_fails_the_handshake(monkeypatch):
    original = bs.BootstrapServerAgent.factory_account

    def tampered(self, ident):
        account = original(self, ident)
        keys = dataclasses.replace(account.bootstrap, client_secret_key=bytes(32))
        return dataclasses.replace(account, bootstrap=keys)  # the device's copy differs from the server's

    monkeypatch.setattr(bs.BootstrapServerAgent, "factory_account", tampered)
    model, rows = run_replica(BASE, "fleet.size=2")
    assert [(r[OUTCOME], r[REASON]) for r in rows] == [("failed", "bootstrap_tls_failed")] * 2
    assert not model.transport.stats["handshakes"]  # no DM session without the bootstrap


def test_a_psk_cannot_fetch_another_devices_account():
    """The bootstrap transport binds each PSK identity to its device: a message over device A's
    connection claiming device B is answered 403 and never reaches the bootstrap server."""
    model, rows = run_replica(BASE, "fleet.size=2")
    transport = model.agents["bootstrap_server"].transport
    owners = transport.psk_owners
    assert sorted(owners.values()) == sorted(model.server.core.accounts)
    identity = next(iter(owners))
    other = next(u for u in model.server.core.accounts if u != owners[identity])
    assert transport.binding_refusal(psk_identity=identity, dev_id=other)
    assert transport.binding_refusal(psk_identity=identity, dev_id=owners[identity]) is None


def test_a_bootstrap_that_installs_nothing_is_rejected(monkeypatch):
    monkeypatch.setattr(bs, "bootstrap_script", lambda account: ())
    _, rows = run_replica(BASE, "fleet.size=2")
    assert [(r[OUTCOME], r[REASON]) for r in rows] == [("failed", "bootstrap_rejected")] * 2


@pytest.mark.parametrize("seed", [5, 6])
def test_same_seed_same_keys(seed):
    a, _ = run_replica(BASE, f"seed={seed}", "fleet.size=2")
    b, _ = run_replica(BASE, f"seed={seed}", "fleet.size=2")
    keys = lambda model: [acc.bootstrap for acc in model.agents["bootstrap_server"].core.accounts.values()]  # noqa: E731
    assert keys(a) == keys(b)
