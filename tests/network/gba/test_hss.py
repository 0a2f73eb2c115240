"""The GBA HSS (network/gba/hss.py, hss_store.py, aka.py): MILENAGE AVs against TS 35.208 set 1, AVs the
USIM accepts, resynchronisation from AUTS (TS 33.102 §6.3.5), and crash safety of SEQ_HE with a real
``kill -9`` of a process that hands out AVs."""
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import load_vectors

from dmsim.base.errors import AuthenticationError, DecodeError, ProtocolError, ScenarioError
from dmsim.cards.milenage import opc_from_op
from dmsim.cards.profile import generate_profiles
from dmsim.cards.sqn import SqnArray, join_sqn, split_sqn
from dmsim.cards.usim_auth import Success, SyncFailure, authenticate_3g
from dmsim.network.gba.aka import make_auts, make_av, sqn_ms_from_auts
from dmsim.network.gba.hss import Hss, subscriber_from_profile
from dmsim.network.gba.hss_store import Subscriber, SubscriberStore

h = bytes.fromhex
SET1 = next(v for v in load_vectors("cards", "milenage") if v["id"] == "milenage-ts35208-set1")
K, OPC = h(SET1["inputs"]["k"]), h(SET1["expected"]["opc"])
RAND, AMF, SQN = h(SET1["inputs"]["rand"]), h(SET1["inputs"]["amf"]), h(SET1["inputs"]["sqn"])
E = SET1["expected"]
IMPI = "001010123456789@ims.mnc001.mcc001.3gppnetwork.org"
CHILD = Path(__file__).with_name("hss_child.py")
REPO = Path(__file__).resolve().parents[3]


def set1_subscriber(seq_he: int = 0) -> Subscriber:
    return Subscriber(IMPI, "001010123456789", K, OPC, AMF, seq_he, True, 3600)


@pytest.fixture
def hss(tmp_path):
    hss = Hss.open(tmp_path / "hss.db", random.Random(7).randbytes)
    hss.provision([set1_subscriber()])
    yield hss
    hss.close()


def test_av_matches_ts35208_set1():
    av = make_av(K, OPC, RAND, SQN, AMF)
    assert av.xres.hex() == E["f2res"] and av.ck.hex() == E["f3ck"] and av.ik.hex() == E["f4ik"]
    assert av.autn == bytes(a ^ b for a, b in zip(SQN, h(E["f5ak"]))) + AMF + h(E["f1"])
    assert av.ks.hex() == E["f3ck"] + E["f4ik"]


def test_hss_av_from_set1_rand_and_sqn(tmp_path):
    seq, ind = split_sqn(SQN)
    hss = Hss.open(tmp_path / "h.db", lambda n: RAND)
    hss.provision([set1_subscriber(seq - 1)])
    av = hss.generate_av(IMPI, ind=ind)
    assert av.sqn == SQN and av.rand == RAND and av.autn[8:].hex() == E["f1"] and av.xres.hex() == E["f2res"]


def test_store_commits_with_synchronous_full(hss):
    assert hss.store.synchronous() == 2   # FULL


def test_successive_avs_are_accepted_by_the_usim(hss):
    sqns = SqnArray()
    seen = []
    for ind in (0, 0, 3, 0, 3):
        av = hss.generate_av(IMPI, ind=ind)
        res = authenticate_3g(K, OPC, av.rand, av.autn, sqns)
        assert isinstance(res, Success) and res.res == av.xres and res.ck + res.ik == av.ks
        seen.append(av.sqn)
    assert seen == sorted(seen) and len(set(seen)) == 5


def test_lookup_by_imsi_and_guss(hss):
    assert hss.subscriber("001010123456789").impi == IMPI
    g = hss.guss(IMPI)
    assert g.uicc_type == "GBA_U" and g.key_lifetime == 3600


def test_unknown_user_and_duplicates_and_bad_ind(hss):
    with pytest.raises(ProtocolError):
        hss.generate_av("nobody@example.org")
    with pytest.raises(ScenarioError):
        hss.provision([set1_subscriber()])
    with pytest.raises(ProtocolError):
        hss.generate_av(IMPI, ind=32)


def test_resync_from_auts_then_next_av_is_accepted(hss):
    card = SqnArray([5000] + [0] * 31)            # the card is far ahead of the HSS in IND 0
    av = hss.generate_av(IMPI)
    fail = authenticate_3g(K, OPC, av.rand, av.autn, card)
    assert isinstance(fail, SyncFailure)
    sqn_ms = hss.resync(IMPI, av.rand, fail.auts)
    assert sqn_ms == join_sqn(5000, 0)
    assert hss.store.get(IMPI).seq_he == 5000
    av2 = hss.generate_av(IMPI)
    assert isinstance(authenticate_3g(K, OPC, av2.rand, av2.autn, card), Success)


def test_resync_does_not_move_down_when_the_hss_is_ahead(hss):
    hss.store.set_seq(IMPI, 900)
    card = SqnArray([0] * 31 + [100])
    auts = make_auts(K, OPC, RAND, card.highest())
    hss.resync(IMPI, RAND, auts)
    assert hss.store.get(IMPI).seq_he == 900


def test_resync_resets_when_the_hss_is_beyond_delta(tmp_path):
    hss = Hss.open(tmp_path / "d.db", random.Random(1).randbytes, delta=1000)
    hss.provision([set1_subscriber(50_000)])
    card = SqnArray([10] + [0] * 31, delta=1000)
    av = hss.generate_av(IMPI)
    fail = authenticate_3g(K, OPC, av.rand, av.autn, card)
    assert isinstance(fail, SyncFailure)
    hss.resync(IMPI, av.rand, fail.auts)
    av2 = hss.generate_av(IMPI)
    assert isinstance(authenticate_3g(K, OPC, av2.rand, av2.autn, card), Success)


def test_resync_with_a_bad_mac_s_is_refused_and_changes_nothing(hss):
    auts = bytearray(make_auts(K, OPC, RAND, join_sqn(7000, 0)))
    auts[-1] ^= 1
    with pytest.raises(AuthenticationError):
        hss.resync(IMPI, RAND, bytes(auts))
    assert hss.store.get(IMPI).seq_he == 0
    with pytest.raises(DecodeError):
        hss.resync(IMPI, RAND, bytes(13))


def test_auts_recovers_sqn_ms_with_the_set1_ak_star():
    auts = make_auts(K, OPC, RAND, SQN)
    assert auts[:6] == bytes(a ^ b for a, b in zip(SQN, h(E["f5star_ak"])))
    assert sqn_ms_from_auts(K, OPC, RAND, auts) == SQN


def test_fleet_from_a_seed_matches_the_cards(tmp_path):
    hss = Hss.open(tmp_path / "f.db", random.Random(3).randbytes)
    profiles = hss.provision_fleet(42, 5)
    assert profiles == generate_profiles(42, 5)
    assert len(hss.store) == 5
    for p in profiles:
        sub = hss.subscriber(p.imsi)
        assert sub == subscriber_from_profile(p) and sub.k == p.k and sub.opc == p.opc


def test_profile_with_op_gets_opc(tmp_path):
    from dmsim.cards.profile import load_profile
    p = load_profile(REPO / "cards" / "profiles" / "minimal.yaml")
    sub = subscriber_from_profile(p, gba_u=False)
    assert sub.opc == opc_from_op(p.k, p.op) and p.opc is None
    assert not sub.gba_u and sub.impi == p.impi


def test_seq_survives_a_reopen(tmp_path):
    hss = Hss.open(tmp_path / "r.db", random.Random(2).randbytes)
    hss.provision([set1_subscriber()])
    last = [hss.generate_av(IMPI).sqn for _ in range(10)][-1]
    hss.close()
    again = Hss.open(tmp_path / "r.db", random.Random(2).randbytes)
    assert again.generate_av(IMPI).sqn > last


# -- crash safety: kill -9 ----------------------------------------------------------------------

def run_and_kill(db: Path, mode: str, block: bool, read_before_kill: int) -> list[int]:
    """Start the child, read ``read_before_kill`` SQNs, SIGKILL it, return every SEQ it handed out."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "tests")}
    child = subprocess.Popen([sys.executable, str(CHILD), str(db), IMPI, "5000", mode, "1" if block else "0"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    lines = []
    try:
        for i in range(read_before_kill):
            line = child.stdout.readline()
            assert line, "the child stopped early"
            lines.append(line)
            if block and i + 1 < read_before_kill:
                child.stdin.write(b"\n")
                child.stdin.flush()
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        lines.extend(child.stdout.readlines())       # whatever it wrote before dying
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
        child.stdin.close()
    assert child.returncode == -signal.SIGKILL
    return [split_sqn(bytes.fromhex(x.decode().strip()))[0] for x in lines if x.strip()]


def next_seq_after_restart(db: Path) -> int:
    hss = Hss.open(db, random.Random(9).randbytes)
    try:
        return split_sqn(hss.generate_av(IMPI).sqn)[0]
    finally:
        hss.close()


def provisioned(tmp_path, name: str) -> Path:
    db = tmp_path / name
    with SubscriberStore(db) as store:
        store.add([set1_subscriber()])
    return db


@pytest.mark.parametrize("block, read", [(True, 1), (True, 17), (False, 200)])
def test_kill_9_never_makes_seq_go_backwards(tmp_path, block, read):
    db = provisioned(tmp_path, "crash.db")
    handed_out = run_and_kill(db, "commit-first", block, read)
    assert len(handed_out) >= read
    assert next_seq_after_restart(db) > max(handed_out)


def test_the_crash_test_catches_a_commit_after_handing_out(tmp_path):
    """Negative control: the same harness against a store that commits late must see the SEQ repeat."""
    db = provisioned(tmp_path, "broken.db")
    handed_out = run_and_kill(db, "defer", True, 5)
    assert next_seq_after_restart(db) <= max(handed_out)


def test_two_rounds_of_crashes(tmp_path):
    db = provisioned(tmp_path, "twice.db")
    seen = []
    for read in (30, 40):
        seen += run_and_kill(db, "commit-first", False, read)
    assert len(seen) == len(set(seen))             # no SEQ handed out twice across restarts
    assert next_seq_after_restart(db) > max(seen)


def test_put_replaces_a_subscriber_that_add_refuses(tmp_path):
    """``put`` is for a provisioning system that owns its subscribers (the simulation re-issuing its
    fleet's cards into a real BSF's store): same IMPI or IMSI, the new row wins."""
    with SubscriberStore(tmp_path / "h.sqlite") as store:
        store.add([set1_subscriber(5)])
        with pytest.raises(ScenarioError):
            store.add([set1_subscriber(0)])
        new = Subscriber(IMPI, "001010123456789", b"\x01" * 16, b"\x02" * 16, b"\x80\x00", 0, False, 60)
        assert store.put([new]) == 1
        assert len(store) == 1 and store.get(IMPI) == new
