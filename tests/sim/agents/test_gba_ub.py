"""GBA bootstrapping over Ub in a replica (3GPP TS 33.220 §4.5.2, TS 24.109 §4, RFC 3310): gba_ub
devices (GBA_U and GBA_ME cards) run Digest AKAv1-MD5 with the simulated BSF over the ip links,
the AKA on the emulated UICC; resends over a lossy link, AUTS resynchronisation, refusals."""
import base64
import dataclasses
import sqlite3

import pytest

from conftest import run_replica
from dmsim.base.errors import ScenarioError
from dmsim.cards.sqn import join_sqn
from dmsim.network.gba.hss import subscriber_from_profile
from dmsim.sim.scenario.format import parse_scenario

BASE = """
name: t
seed: 5
duration: 900
fleet:
  size: 8
  profiles:
    - {name: u, gba_ub: true, gba_uicc: u}
    - {name: me, gba_ub: true, gba_uicc: me}
arrival: {kind: poisson, rate: 4}
links:
  sms: {delay: {kind: fixed, value: 1.0}}
  ip: {delay: {kind: fixed, value: 0.05}}
server: {max_sessions: 50, service_time: {kind: fixed, value: 0.0}, bootstrap_timeout: 30}
client: {request_timeout: 2, request_retries: 4}
gba: {bsf_fqdn: bsf.ub.test}
components: {card: {kind: virtual, apdu_time: {kind: fixed, value: 0.01}}}
"""
PROFILE, OUTCOME, REASON, IP_RETRIES = 4, 5, 6, 16
T_UB_START, T_UB_OK = 26, 27


def keep_results(model, results):
    """Wrap the replica's finish to keep each device's Ub result (the device is gone afterwards)."""
    finish = model.finish

    def wrapped(dev, ok, reason):
        results[dev.ident.index] = dev.ub
        finish(dev, ok, reason)
    model.finish = wrapped


def test_a_fleet_bootstraps_over_ub_and_then_runs_its_dm_session():
    results = {}
    model, rows = run_replica(BASE, model_hook=lambda m: keep_results(m, results))
    assert [r[OUTCOME] for r in rows] == ["ok"] * 8, [r[REASON] for r in rows]
    assert {r[PROFILE] for r in rows} == {"u", "me"}
    for r in rows:
        assert r[T_UB_START] is not None and r[T_UB_START] < r[T_UB_OK]
        assert r[T_UB_OK] - r[T_UB_START] >= 4 * 0.05  # two round trips over the ip links
    sessions = model.agents["bsf"].ub.sessions
    assert len(sessions) == 8
    for index, result in results.items():
        session = sessions[result.btid]
        assert result.btid == base64.b64encode(session.rand).decode() + "@bsf.ub.test"
        assert result.rand == session.rand
        profile = rows[index][PROFILE]
        # GBA_U: Ks stays in the UICC; GBA_ME: the ME holds Ks = CK || IK, the BSF's Ks
        assert result.ks == (None if profile == "u" else session.ks)
        assert session.gba_u == (profile == "u")
    stats = model.stats()["gba.ub"]
    assert stats["ok"] == 8 and stats["bsf_bootstrapped"] == 8 and stats["bsf_challenges"] == 8


def test_every_ub_bootstrap_advanced_the_hss_sqn(tmp_path):
    model, rows = run_replica(BASE, f"gba.hss_dir={tmp_path}")
    model.close()
    assert [r[OUTCOME] for r in rows] == ["ok"] * 8
    db = sqlite3.connect(str(tmp_path / "hss-r0-s0.sqlite"))
    assert sorted(row[0] for row in db.execute("SELECT seq_he FROM subscriber")) == [1] * 8


def test_a_lossy_ip_link_still_bootstraps_through_resends():
    model, rows = run_replica(BASE, "links.ip.loss=0.3", "client.request_retries=8")
    # the DM session after it may still fail on such a link; the Ub bootstrapping does not
    assert all(r[T_UB_OK] is not None and not r[REASON].startswith("ub_") for r in rows), [r[REASON] for r in rows]
    assert sum(r[IP_RETRIES] for r in rows) > 0
    assert model.stats()["gba.ub"]["ok"] == 8


def test_no_answer_ends_the_device_as_ub_timeout():
    model, rows = run_replica(BASE, "fleet.size=2", "links.ip.loss=1.0", "client.request_retries=1")
    assert [r[REASON] for r in rows] == ["ub_timeout"] * 2
    assert all(r[T_UB_START] is not None and r[T_UB_OK] is None for r in rows)
    assert model.stats()["gba.ub"]["failed_timeout"] == 2


def test_a_card_ahead_of_the_hss_resynchronises_with_auts_and_succeeds():
    """The cards leave the factory with SQN SEQ 100 while the HSS has SEQ 0: the first AV is stale,
    the card answers AUTS, the device sends it to the BSF (RFC 3310 §3.4), the HSS resynchronises
    and the BSF challenges again with a fresh AV that the card accepts."""
    def hook(model):
        cards, hss = model.cards, model.agents["hss"]
        make_profile, issued = cards._profile, hss.card_issued
        cards._profile = lambda *a: dataclasses.replace(make_profile(*a), sqn=join_sqn(100, 0))

        def behind(card, gba_u):
            sub = issued(card, gba_u)
            hss.hss.store.set_seq(sub.impi, 0)
            return sub
        hss.card_issued = behind
    model, rows = run_replica(BASE, model_hook=hook)
    assert [r[OUTCOME] for r in rows] == ["ok"] * 8, [r[REASON] for r in rows]
    stats = model.stats()["gba.ub"]
    assert stats["bsf_resyncs"] == 8 and stats["bsf_challenges"] == 16 and stats["ok"] == 8


def test_an_unknown_subscriber_is_refused():
    def hook(model):
        hss = model.agents["hss"]
        hss.card_issued = lambda card, gba_u: subscriber_from_profile(card, gba_u=gba_u)  # never provisioned
    model, rows = run_replica(BASE, "fleet.size=2", model_hook=hook)
    assert [r[REASON] for r in rows] == ["ub_refused"] * 2
    assert model.stats()["gba.ub"]["failed_refused"] == 2


def test_gba_ub_needs_a_gba_block_and_virtual_cards():
    with pytest.raises(ScenarioError, match="gba block"):
        parse_scenario(BASE.replace("gba: {bsf_fqdn: bsf.ub.test}\n", ""), "t.yaml")
    with pytest.raises(ScenarioError, match="virtual cards"):
        parse_scenario(BASE, "t.yaml", ["components.card={kind: pcsc}"])
    with pytest.raises(ScenarioError, match="gba block"):
        parse_scenario(BASE.replace("gba: {bsf_fqdn: bsf.ub.test}\n", "").replace("gba_ub: true", "gba_ub: false"),
                       "t.yaml", ["components.bsf={kind: socket, url: 'http://127.0.0.1:1/'}"])


def test_same_seed_same_sessions():
    _, a = run_replica(BASE, "fleet.size=4")
    _, b = run_replica(BASE, "fleet.size=4")
    assert a == b


@pytest.mark.parametrize("uicc", ["u", "me"])
def test_a_smartcard_bootstrapped_device_bootstraps_over_ub_too(uicc):
    """The card read over SCP03 at power-on (seed 001 §8.1) is the one the HSS knows; the ME selects
    the USIM again before the AKA (it answered 6985 while the PKCS#15 application was selected)."""
    text = BASE.replace("""    - {name: u, gba_ub: true, gba_uicc: u}
    - {name: me, gba_ub: true, gba_uicc: me}""", f"    - {{name: s, gba_ub: true, gba_uicc: {uicc}, bootstrap_via: smartcard}}")
    _model, rows = run_replica(text)
    assert [(r[OUTCOME], r[REASON]) for r in rows] == [("ok", "")] * 8
    assert all(r[T_UB_OK] is not None for r in rows)
