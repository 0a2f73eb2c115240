"""DM sessions over real TLS (python-mbedtls, in memory) whose flights cross the simulated IP
links: PSK from the bootstrap, X.509, a wrong PSK, loss and TCP resends, real records on the
wire, determinism."""
import dataclasses

import pytest

from conftest import PayloadTap, run_replica
from dmsim.devices import bootstrap_client, dm_tree
from dmsim.network.dm import wbxml
from dmsim.network.dm.account import DmAccount, account_from_bootstrap, bootstrap_document
from dmsim.sim.agents.device import bootstrap as device_bootstrap
from dmsim.base.errors import ProtocolError, ScenarioError
from dmsim.sim.scenario.format import parse_scenario
from dmsim.sim.links.transports import SimulatedHttps, http_messages
from tls_fleet import tls_scenario

BASE = tls_scenario(size=20, mode="psk")
OUTCOME, REASON, START, END, IP_RETRIES, IP_MSGS, IP_BYTES = 5, 6, 10, 11, 16, 19, 20


def run(*overrides, model_hook=None):
    """Return (model, rows) of one replica of BASE with ``overrides``."""
    return run_replica(BASE, *overrides, model_hook=model_hook)


def session_times(rows):
    return [r[END] - r[START] for r in rows]


def test_psk_fleet_completes_with_the_psk_of_its_bootstrap():
    model, rows = run()
    assert isinstance(model.transport, SimulatedHttps)
    assert [r[OUTCOME] for r in rows] == ["ok"] * 20
    # 4 handshake flights, 2 requests, 2 responses, close_notify
    assert {r[IP_MSGS] for r in rows} == {9}
    assert model.transport.stats["handshakes"] == 20
    assert model.transport.suites == {"TLS_PSK_WITH_AES_128_GCM_SHA256": 20}
    accounts = model.server.core.accounts.values()
    assert {a.psk_identity: a.psk_key for a in accounts} == model.transport.psks
    assert all(a.server_uri.startswith("https://") and len(a.psk_key) == 32 for a in accounts)
    # the handshake's two round trips fall on the first exchange: 4 round trips of 0.1 s in all
    assert min(session_times(rows)) == pytest.approx(0.4)


def test_plain_http_session_is_two_round_trips():
    _, rows = run("components.dm_server.tls.mode=none")
    assert [r[OUTCOME] for r in rows] == ["ok"] * 20 and {r[IP_MSGS] for r in rows} == {4}
    assert min(session_times(rows)) == pytest.approx(0.2)


def test_x509_fleet_completes():
    model, rows = run("fleet.size=6", "components.dm_server.tls.mode=x509")
    assert [r[OUTCOME] for r in rows] == ["ok"] * 6
    assert model.transport.suites == {"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": 6}
    assert not model.transport.psks


def test_a_chosen_suite_is_the_one_negotiated():
    model, rows = run("fleet.size=3", "components.dm_server.tls.suite=TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256")
    assert [r[OUTCOME] for r in rows] == ["ok"] * 3
    assert model.transport.suites == {"TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256": 3}


def test_a_suite_of_the_other_mode_is_refused():
    with pytest.raises(ScenarioError, match="suite"):
        parse_scenario(BASE, "t.yaml", ["components.dm_server.tls.suite=TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"])


def test_wrong_psk_on_the_device_fails_with_tls_reason(monkeypatch):
    def wrong_key(push_pdu, **kw):
        accepted = bootstrap_client.accept_bootstrap(push_pdu, **kw)
        account = dataclasses.replace(accepted.account, psk_key=bytes(32))
        return dataclasses.replace(accepted, account=account)

    monkeypatch.setattr(device_bootstrap, "accept_bootstrap", wrong_key)
    model, rows = run("fleet.size=4")
    assert [(r[OUTCOME], r[REASON], r[IP_RETRIES]) for r in rows] == [("failed", "tls_failed", 0)] * 4
    assert model.transport.stats["handshakes"] == 0
    assert model.transport.stats["client_failures"] == 4


def test_loss_on_the_ip_links_is_resent_and_costs_time():
    _, clean = run()
    model, lossy = run("links.ip.loss=0.2")
    assert [r[OUTCOME] for r in lossy] == ["ok"] * 20
    assert model.transport.stats["retransmissions"] > 0
    assert sum(session_times(lossy)) > sum(session_times(clean)) + 1.0  # each resend waits >= 1 s
    assert sum(r[IP_MSGS] for r in lossy) > sum(r[IP_MSGS] for r in clean)


def test_a_dead_link_ends_in_ip_timeout_not_tls_failed():
    model, rows = run("fleet.size=2", "links.ip.loss=1.0", "client.request_timeout=5", "client.request_retries=1")
    assert [(r[OUTCOME], r[REASON], r[IP_RETRIES]) for r in rows] == [("failed", "ip_timeout", 1)] * 2
    assert model.transport.stats["aborted"] == 4
    # RTO 1, 2 (then 4 would pass the 5 s timeout): 3 sends of the ClientHello per attempt
    assert {r[IP_MSGS] for r in rows} == {6}


def records(payload):
    """Return (type, version) of each TLS record in ``payload``; fails on anything else."""
    out, at = [], 0
    while at < len(payload):
        assert at + 5 <= len(payload)
        out.append((payload[at], int.from_bytes(payload[at + 1:at + 3], "big")))
        at += 5 + int.from_bytes(payload[at + 3:at + 5], "big")
    assert at == len(payload)
    return out


def test_the_messages_on_the_ip_links_are_real_tls_records():
    taps = {}

    def hook(model):
        taps["up"] = model.ip_up.tap = PayloadTap()
        taps["down"] = model.ip_down.tap = PayloadTap()

    run("fleet.size=3", model_hook=hook)
    up, down = taps["up"].payloads, taps["down"].payloads
    assert len(up) == 3 * 5 and len(down) == 3 * 4 and len(taps["up"].log) == 15
    hellos = [p for p in up if p[0] == 0x16 and p[5] == 1]  # handshake record, ClientHello
    assert len(hellos) == 3
    assert all(p[:3] == b"\x16\x03\x03" and p[5] == 2 for p in down if p[0] == 0x16)  # ServerHello, TLS 1.2
    for p in up + down:
        for ctype, version in records(p):
            assert 20 <= ctype <= 23
            # the ClientHello's record carries the lowest version offered (TLS 1.1), all else TLS 1.2
            assert version == 0x0303 or (p in hellos and version == 0x0302)
        assert b"SyncML" not in p and b"POST" not in p and b"HTTP/1.1" not in p  # encrypted


def test_a_seed_reproduces_the_psk_session_table():
    _, a = run("links.ip.loss=0.1")
    _, b = run("links.ip.loss=0.1")
    _, c = run("links.ip.loss=0.1", "seed=4")
    assert a == b and a != c


def test_a_seed_reproduces_x509_outcomes():
    # ECDSA signatures vary in length (Mbed TLS's randomness), so only outcomes and times compare
    _, a = run("fleet.size=4", "components.dm_server.tls.mode=x509")
    _, b = run("fleet.size=4", "components.dm_server.tls.mode=x509")
    assert [r[:IP_BYTES] for r in a] == [r[:IP_BYTES] for r in b]


# --- the PSK in the account and the bootstrap document -------------------------------------------

ACCOUNT = DmAccount("srv", "https://dm.example/dm", "dev", "cpw", "srv", "spw", b"\x01" * 16, b"\x02" * 16)


@pytest.mark.parametrize("key", [bytes(range(32)), "é".encode() * 8, b" \x00key "])
def test_bootstrap_document_carries_the_psk(key):
    account = dataclasses.replace(ACCOUNT, psk_identity=b"psk-0011", psk_key=key)
    doc = wbxml.decode(wbxml.encode(bootstrap_document(account, "IMSI:1")))
    assert account_from_bootstrap(doc) == account
    tree = dm_tree.DmTree()
    dm_tree.apply_bootstrap(tree, doc)
    keys = dm_tree.tls_keys_from_tree(tree, "srv", "Auth/Trsp")  # seed 000 §9.2.1: the DM session's TLS keys
    assert (keys.sec_mode, keys.client_identity, keys.client_secret_key) == ("PSK", b"psk-0011", key)
    assert tree.find("./DMAcc/srv/Auth/Bootstrap") is None  # that is for the bootstrap server's account alone
    assert dm_tree.is_secret_uri("./DMAcc/srv/Auth/Trsp/ClientSecretKey")
    assert dm_tree.account_from_tree(tree, "srv") == account


def test_bootstrap_without_psk_has_no_auth_trsp():
    doc = bootstrap_document(ACCOUNT, "IMSI:1")
    assert not any("/Auth/" in (e.text or "") for e in doc.iter("LocURI"))
    assert not account_from_bootstrap(doc).has_psk


def test_psk_mode_subtree_without_key_is_refused():
    account = dataclasses.replace(ACCOUNT, psk_identity=b"psk-0011", psk_key=b"k")
    doc = bootstrap_document(account, "IMSI:1")
    add = doc.find("SyncBody/Add")
    add.remove([i for i in add.iterfind("Item") if i.findtext("Target/LocURI").endswith("ClientSecretKey")][0])
    with pytest.raises(ProtocolError, match="ClientSecretKey"):
        account_from_bootstrap(doc)


def test_http_messages_frames_by_content_length():
    one = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"
    buf = bytearray(one + one[:20])
    assert http_messages(buf) == [one] and buf == bytearray(one[:20])
    buf += one[20:] + b"POST / HTTP/1.1\r\n\r\n"
    assert http_messages(buf) == [one, b"POST / HTTP/1.1\r\n\r\n"] and not buf


def test_tls_counters_reach_the_summary(tmp_path):
    import json

    from dmsim.sim.results.runner import run_scenario
    from dmsim.sim.scenario.format import load_scenario
    root = __import__("pathlib").Path(__file__).resolve().parents[3]
    run_scenario(load_scenario(root / "scenarios/dm_session_tls_psk.yaml", ["fleet.size=20"]), tmp_path, plots=False)
    tls = json.loads((tmp_path / "summary.json").read_text())["network"]["tls"]
    assert tls["handshakes"] == 20 and tls["client_failures"] == tls["server_failures"] == 0
