"""The 3GPP_GBA bootstrap over GBA Push in a replica (OMA-TS-DM_Security §5.10.2.4, Appendix C;
3GPP TS 33.223): HSS, BSF (Zpn) and NAF agents, the GPI over SMS, the AKA on the emulated UICC
(GBA_U and GBA_ME), DMBIK/DMBEK, the protected bootstrap, then the DM session."""
import sqlite3

import pytest

from conftest import run_replica
from dmsim.base.errors import ScenarioError
from dmsim.sim.scenario.format import parse_scenario

BASE = """
name: t
seed: 4
duration: 900
fleet:
  size: 8
  profiles:
    - {name: u, bootstrap_via: gba_push, gba_uicc: u, dm_auth: hmac}
    - {name: me, bootstrap_via: gba_push, gba_uicc: me, dm_auth: hmac}
arrival: {kind: poisson, rate: 4}
links:
  sms: {delay: {kind: fixed, value: 1.0}}
  ip: {delay: {kind: fixed, value: 0.05}}
server: {max_sessions: 50, service_time: {kind: fixed, value: 0.0}, bootstrap_timeout: 30}
gba: {}
components: {card: {kind: virtual, apdu_time: {kind: fixed, value: 0.01}}}
"""
PROFILE, OUTCOME, REASON, REJECTED = 4, 5, 6, 14
T_BOOT_SENT, T_BOOT_OK, T_START = 8, 9, 10
T_GPI_SENT, T_GPI_RECEIVED, T_GBA_KEYS = 23, 24, 25


def test_a_gba_fleet_bootstraps_end_to_end_with_each_phase_timed():
    model, rows = run_replica(BASE)
    assert [r[OUTCOME] for r in rows] == ["ok"] * 8, [r[REASON] for r in rows]
    assert {r[PROFILE] for r in rows} == {"u", "me"}
    for r in rows:
        times = (r[T_GPI_SENT], r[T_GPI_RECEIVED], r[T_GBA_KEYS], r[T_BOOT_SENT], r[T_BOOT_OK], r[T_START])
        assert all(t is not None for t in times) and list(times) == sorted(times)
        assert r[T_GPI_RECEIVED] - r[T_GPI_SENT] == pytest.approx(1.0)  # one SMS hop
        assert r[T_GBA_KEYS] > r[T_GPI_RECEIVED]  # the card's APDUs take simulated time
    stats = model.stats()
    assert stats["gba.zpn"]["answered"] == 8 and stats["gba.upa"] == {"accepted": 8}
    assert stats["gba.naf"]["no_keys"] == 0


def test_the_proxy_naf_hands_over_the_keys_over_its_own_link():
    model, rows = run_replica(BASE, "gba.naf=proxy")
    assert [r[OUTCOME] for r in rows] == ["ok"] * 8
    stats = model.stats()
    assert stats["gba.naf"]["deployment_proxy"] == 1 and stats["gba.naf_link"]["delivered"] == 16


def test_the_hss_store_is_sqlite_and_every_av_advanced_the_sqn(tmp_path):
    model, rows = run_replica(BASE, f"gba.hss_dir={tmp_path}")
    model.close()
    db = sqlite3.connect(str(tmp_path / "hss-r0-s0.sqlite"))
    seqs = [row[0] for row in db.execute("SELECT seq_he FROM subscriber")]
    assert len(seqs) == 8 and all(s >= 1 for s in seqs)


def test_a_replayed_gpi_is_refused_and_counted():
    """An adversary on the SMS link replays every message half a second later: the device has
    the GPI's keys by then, the replayed GPI is refused (TS 33.223: a GPI is used once) and
    counted, and every device still bootstraps."""
    model, rows = run_replica(BASE, "links.sms.tap={kind: replay, probability: 1.0, after: {kind: fixed, value: 0.5}}")
    assert [r[OUTCOME] for r in rows] == ["ok"] * 8
    upa = model.stats()["gba.upa"]
    assert upa["accepted"] == 8 and upa["replayed"] >= 8


def test_a_tampered_protected_bootstrap_is_rejected():
    _, rows = run_replica(BASE, "fleet.size=3", "links.sms.tap={kind: tamper, probability: 1.0, match: bootstrap}",
                          "server.bootstrap_retries=1")
    assert {r[OUTCOME] for r in rows} == {"failed"}  # nothing tampered is ever acted on
    assert {r[REASON] for r in rows} <= {"gpi_lost", "gpi_rejected", "bootstrap_lost", "bootstrap_rejected"}
    assert sum(r[REJECTED] for r in rows) > 0  # what still parsed was refused by its MAC, and counted


def test_gba_push_needs_a_gba_block_and_virtual_cards():
    with pytest.raises(ScenarioError, match="gba block"):
        parse_scenario(BASE.replace("gba: {}\n", ""), "t.yaml")
    with pytest.raises(ScenarioError, match="virtual cards"):
        parse_scenario(BASE, "t.yaml", ["components.card={kind: pcsc}"])


def test_same_seed_same_sessions():
    _, a = run_replica(BASE, "fleet.size=4")
    _, b = run_replica(BASE, "fleet.size=4")
    assert a == b
