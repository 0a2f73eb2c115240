"""syncml:auth-hmac-sha256 (OMA-TS-DM_Security §5.6.1) driven end to end in the simulation: the
HMAC account in the bootstrap, x-syncml-hmac on every message of the simulated links, a shared
clock on the SMSC's epoch, and tampered or replayed messages refused, never a crash."""
import pytest

from conftest import run_replica
from dmsim.devices.dm_tree import DmTree, account_from_tree, install_account
from dmsim.network.dm import http_binding, wbxml
from dmsim.network.dm.account import DmAccount, account_from_bootstrap, bootstrap_document
from dmsim.network.dm.hmac_integrity import AUTH_HMAC_SHA256, HEADER_NAME, parse_header, parse_timestamp
from dmsim.network.dm.tree import text
from dmsim.base.errors import ProtocolError
from dmsim.sim.links.tap import Tap
from dmsim.sim.links.transports import SIM_EPOCH, SimulatedHttps, sim_unix_time

BASE = """
name: t
seed: 3
duration: 900
fleet: {size: 20, profiles: [{name: h, dm_auth: hmac}]}
arrival: {kind: poisson, rate: 5}
links:
  sms: {delay: {kind: fixed, value: 1.0}}
  ip: {delay: {kind: fixed, value: 0.05}}
server: {max_sessions: 50, service_time: {kind: fixed, value: 0.0}}
"""
PROFILE, OUTCOME, REASON, AUTH_RETRIES, IP_MSGS = 4, 5, 6, 15, 19
HMAC_REASONS = {"server_hmac_failed", "http_401"}  # refused by the client, by the server


class Capture(Tap):
    """Passes every message and keeps its payload."""

    def __init__(self):
        super().__init__()
        self.payloads = []

    def act(self, msg, now, rng):
        self.payloads.append((now, msg.payload))
        return [(0.0, msg.payload)]


def run(*overrides, model_hook=None):
    """Return (model, rows) of one replica of BASE with ``overrides``."""
    return run_replica(BASE, *overrides, model_hook=model_hook)


def account(scheme=AUTH_HMAC_SHA256):
    return DmAccount(server_id="srv", server_uri="http://dm/x", client_name="001010123", client_password="cpw",
                     server_name="srv", server_password="spw", client_nonce=b"\x01" * 16, server_nonce=b"\x02" * 16,
                     auth_scheme=scheme)


def test_hmac_account_travels_in_the_bootstrap_and_the_tree():
    doc = bootstrap_document(account(), "IMSI:1")
    types = {text(i, "Data") for i in doc.iter("Item") if text(i, "Target/LocURI").endswith(("AAuthType", "AAuthPref"))}
    assert types == {"HMAC"}
    assert account_from_bootstrap(wbxml.decode(wbxml.encode(doc))) == account()
    tree = DmTree()
    install_account(tree, account())
    assert account_from_tree(tree, "srv").auth_scheme == AUTH_HMAC_SHA256


def test_an_account_scheme_without_aauthtype_is_a_protocol_error():
    with pytest.raises(ProtocolError, match="AAuthType"):
        bootstrap_document(account("syncml:auth-x"), "IMSI:1")


def test_hmac_fleet_completes_with_a_mac_on_every_message():
    up, down = Capture(), Capture()

    def hook(model):
        model.ip_up.tap, model.ip_down.tap = up, down

    model, rows = run(model_hook=hook)
    assert [r[OUTCOME] for r in rows] == ["ok"] * 20
    assert {r[IP_MSGS] for r in rows} == {4} and {r[AUTH_RETRIES] for r in rows} == {0}
    assert all(a.auth_scheme == AUTH_HMAC_SHA256 for a in model.server.core.accounts.values())
    assert len(up.payloads) == len(down.payloads) == 40 and model.transport.refused == {}
    for tap in (up, down):
        for now, payload in tap.payloads:
            msg = http_binding.decode(payload)
            assert b"<Cred>" not in msg.body and b"auth-md5" not in msg.body  # no Cred in HMAC mode
            header = parse_header(msg.headers[HEADER_NAME])
            # the shared clock: simulated time on the SMSC's epoch, 2026-01-01T00:00:00Z
            assert header.timestamp.startswith("2026-01-01T00:00:")
            assert parse_timestamp(header.timestamp) == int(sim_unix_time(now))
    assert SIM_EPOCH == parse_timestamp("2026-01-01T00:00:00Z")


def test_hmac_and_md5_profiles_side_by_side_and_over_tls():
    _, rows = run("fleet.profiles=[{name: h, dm_auth: hmac}, {name: m, dm_auth: md5}]")
    assert {r[PROFILE] for r in rows} == {"h", "m"} and {r[OUTCOME] for r in rows} == {"ok"}
    model, rows = run("components.dm_server.tls.mode=psk")
    assert isinstance(model.transport, SimulatedHttps) and {r[OUTCOME] for r in rows} == {"ok"}


def test_tampered_messages_fail_sessions_with_the_hmac_reason():
    model, rows = run("fleet.size=100", "links.ip.tap={kind: tamper, probability: 0.3, match: dm}")
    failed = [r[REASON] for r in rows if r[OUTCOME] == "failed"]
    assert failed and HMAC_REASONS <= set(failed)
    # a flip in the request body may also break its WBXML before the server finds the key (400)
    assert set(failed) <= HMAC_REASONS | {"http_400", "bad_server_message", "ip_timeout"}
    assert sum(r[OUTCOME] == "ok" for r in rows) >= 20
    assert set(model.transport.refused) <= {"wrong_mac", "bad_syntax", "missing_header", "unsupported_algorithm",
                                            "missing_timestamp", "outside_window", "replay"}
    assert sum(model.transport.refused.values()) >= 1


def test_tampering_the_downlink_only_is_caught_by_the_client():
    def hook(model):
        model.ip_up.tap = Tap()

    _, rows = run("links.ip.tap={kind: tamper, probability: 1.0, match: dm}", model_hook=hook)
    reasons = [r[REASON] for r in rows]
    # a flip outside the body (a header the MAC does not cover) may leave a message that
    # verifies but does not parse, or a response that does not parse at all (lost)
    assert set(reasons) <= {"server_hmac_failed", "bad_server_message", "ip_timeout"}
    assert reasons.count("server_hmac_failed") > len(reasons) // 2


def test_replayed_requests_are_refused_and_counted():
    """Each request is delivered, then again 0.13 s later: the copy of package 1 reaches the
    server after package 3 did, is refused as a replay, and the session still completes."""
    model, rows = run("links.ip.tap={kind: replay, probability: 1.0, after: {kind: fixed, value: 0.13}}")
    assert [r[OUTCOME] for r in rows] == ["ok"] * 20
    assert model.transport.refused == {"replay": 20}
    assert model.ip_up.tap.counts["replayed"] == 40
    assert not model.server.active  # the refused copies did not take or free a session slot wrongly


def test_a_slow_link_puts_messages_outside_the_window():
    _, rows = run("links.ip.delay={kind: fixed, value: 400}", "client.request_timeout=1000", "duration=5000")
    assert {r[REASON] for r in rows} == {"http_401"}
    # server.hmac_window widens it for the server and the devices alike
    _, rows = run("links.ip.delay={kind: fixed, value: 400}", "client.request_timeout=1000", "duration=5000",
                  "server.hmac_window=1000")
    assert {r[REASON] for r in rows} == {""}
