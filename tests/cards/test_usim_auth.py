"""USIM AKA (TS 33.102 §6.3.3), SQN array (Annex C), AUTHENTICATE responses (TS 31.102 §7.1.2)
and the GBA card functions (TS 33.220 Annex B, §4.5.2)."""
import pytest
from conftest import load_vectors
from hypothesis import given, settings
from hypothesis import strategies as st

from dmsim.cards.milenage import f1, f1star, f2345, f5star
from dmsim.cards.sqn import DEFAULT_DELTA, SLOTS, SqnArray, join_sqn, split_sqn
from dmsim.cards.usim_auth import (
    GbaBootstrapped, MacFailure, Success, SyncFailure, authenticate_3g,
    gba_bootstrap, kc_from_ck_ik, naf_derivation_response, success_response,
)
from dmsim.network.gba.keys import derive_ks_naf, gba_btid, kdf_input, make_naf_id
from dmsim.base.errors import DecodeError, ScenarioError

SET1 = next(v for v in load_vectors("cards", "milenage") if v["id"] == "milenage-ts35208-set1")
K = bytes.fromhex(SET1["inputs"]["k"])
OPC = bytes.fromhex(SET1["expected"]["opc"])
RAND = bytes.fromhex(SET1["inputs"]["rand"])
AMF = bytes.fromhex(SET1["inputs"]["amf"])
GBA = {v["id"]: v for v in load_vectors("network", "gba_kdf")}


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b))


def make_autn(sqn: bytes, k: bytes = K, rand: bytes = RAND, amf: bytes = AMF) -> bytes:
    """The AuC side (TS 33.102 §6.3.2): AUTN = (SQN xor AK) || AMF || MAC-A."""
    ak = f2345(k, OPC, rand)[3]
    return _xor(sqn, ak) + amf + f1(k, OPC, rand, sqn, amf)


def recover_sqn_ms(auts: bytes, rand: bytes = RAND) -> bytes:
    """The AuC side of resynchronisation (§6.3.5): SQN_MS, after checking MAC-S (AMF 0000)."""
    sqn_ms = _xor(auts[:6], f5star(K, OPC, rand))
    assert f1star(K, OPC, rand, sqn_ms, b"\x00\x00") == auts[6:]
    return sqn_ms


# --- 3G authentication ------------------------------------------------------------------

def test_vector_success_and_response():
    sqns = SqnArray(delta=None)
    sqn = bytes.fromhex(SET1["inputs"]["sqn"])
    result = authenticate_3g(K, OPC, RAND, make_autn(sqn), sqns)
    e = SET1["expected"]
    assert isinstance(result, Success)
    got = (result.res.hex(), result.ck.hex(), result.ik.hex())
    assert got == (e["f2res"], e["f3ck"], e["f4ik"])
    halves = [result.ck[:8], result.ck[8:], result.ik[:8], result.ik[8:]]
    kc = bytes(a ^ b ^ c ^ d for a, b, c, d in zip(*halves))
    assert result.kc == kc == kc_from_ck_ik(result.ck, result.ik)
    assert result.response() == (b"\xdb\x08" + result.res + b"\x10" + result.ck + b"\x10"
                                 + result.ik + b"\x08" + kc)
    assert result.response(include_kc=False) == success_response(result.res, result.ck, result.ik)
    assert len(result.response(include_kc=False)) == 1 + 9 + 17 + 17
    assert sqns.highest() == sqn


def test_replay_is_a_sync_failure_and_auts_gives_sqn_ms():
    sqns = SqnArray()
    sqn = join_sqn(5, 3)
    autn = make_autn(sqn)
    assert isinstance(authenticate_3g(K, OPC, RAND, autn, sqns), Success)
    replay = authenticate_3g(K, OPC, RAND, autn, sqns)
    assert isinstance(replay, SyncFailure)
    assert len(replay.auts) == 14
    assert replay.response() == b"\xdc\x0e" + replay.auts
    assert recover_sqn_ms(replay.auts) == sqn
    # MAC-S is computed with the dummy AMF 0000, not the AMF of the challenge
    assert f1star(K, OPC, RAND, sqn, AMF) != replay.auts[6:]


def test_sync_failure_names_highest_sqn_anywhere_in_the_array():
    sqns = SqnArray()
    for seq, ind in ((9, 4), (12, 7), (3, 0)):
        result = authenticate_3g(K, OPC, RAND, make_autn(join_sqn(seq, ind)), sqns)
        assert isinstance(result, Success)
    stale = authenticate_3g(K, OPC, RAND, make_autn(join_sqn(3, 0)), sqns)
    assert recover_sqn_ms(stale.auts) == join_sqn(12, 7)


def test_default_delta_refuses_a_far_jump_then_resync_works():
    sqns = SqnArray()
    far = bytes.fromhex(SET1["inputs"]["sqn"])  # SEQ far above 2**28
    result = authenticate_3g(K, OPC, RAND, make_autn(far), sqns)
    assert isinstance(result, SyncFailure)
    sqn_ms = recover_sqn_ms(result.auts)
    assert sqn_ms == bytes(6)
    seq_ms, _ = split_sqn(sqn_ms)
    assert isinstance(authenticate_3g(K, OPC, RAND, make_autn(join_sqn(seq_ms + 1, 0)), sqns),
                      Success)


def test_wrong_mac_is_a_mac_failure_and_leaves_the_array():
    sqns = SqnArray()
    autn = bytearray(make_autn(join_sqn(1, 1)))
    autn[-1] ^= 0x80
    result = authenticate_3g(K, OPC, RAND, bytes(autn), sqns)
    assert result == MacFailure()
    assert result.sw.sw == 0x9862
    assert result.response() == b""
    assert sqns.to_list() == [0] * SLOTS


def test_wrong_key_and_tampered_sqn_are_mac_failures():
    sqns = SqnArray()
    wrong_k = bytes([K[0] ^ 1]) + K[1:]
    assert isinstance(authenticate_3g(wrong_k, OPC, RAND, make_autn(join_sqn(1, 1)), sqns),
                      MacFailure)
    autn = bytearray(make_autn(join_sqn(1, 1)))
    autn[5] ^= 0x20  # SQN becomes IND 2 instead of 1: MAC-A no longer verifies
    assert isinstance(authenticate_3g(K, OPC, RAND, bytes(autn), sqns), MacFailure)
    assert sqns.to_list() == [0] * SLOTS


def test_wrong_lengths_raise_decode_error():
    with pytest.raises(DecodeError):
        authenticate_3g(K, OPC, RAND, bytes(15), SqnArray())
    with pytest.raises(DecodeError):
        authenticate_3g(K, OPC, RAND[:8], bytes(16), SqnArray())


@settings(max_examples=60, deadline=None)
@given(rand=st.binary(min_size=16, max_size=16), autn=st.binary(min_size=16, max_size=16))
def test_random_challenge_never_raises(rand, autn):
    result = authenticate_3g(K, OPC, rand, autn, SqnArray())
    assert isinstance(result, (Success, SyncFailure, MacFailure))
    assert isinstance(result.response(), bytes)


@settings(max_examples=60, deadline=None)
@given(rand=st.binary(min_size=16, max_size=16), sqn=st.binary(min_size=6, max_size=6),
       seqs=st.lists(st.integers(0, 2**43 - 1), min_size=SLOTS, max_size=SLOTS))
def test_authentic_challenge_gives_success_or_sync_failure(rand, sqn, seqs):
    sqns = SqnArray(seqs)
    result = authenticate_3g(K, OPC, rand, make_autn(sqn, rand=rand), sqns)
    assert isinstance(result, (Success, SyncFailure))
    if isinstance(result, SyncFailure):
        assert sqns.to_list() == seqs
        assert recover_sqn_ms(result.auts, rand) == sqns.highest()
    else:
        seq, ind = split_sqn(sqn)
        assert seq > seqs[ind]
        assert sqns.to_list() == seqs[:ind] + [seq] + seqs[ind + 1:]


# --- SQN array (TS 33.102 Annex C) ---------------------------------------------------------

def test_ind_slots_allow_out_of_order_use():
    sqns = SqnArray()
    assert sqns.accept(join_sqn(10, 1))
    assert sqns.accept(join_sqn(7, 2))  # older SEQ, other IND: still fresh
    assert not sqns.accept(join_sqn(7, 1))
    assert not sqns.accept(join_sqn(10, 1))
    assert sqns.accept(join_sqn(11, 1))
    assert sqns.accept(join_sqn(8, 2))
    assert sqns.highest() == join_sqn(11, 1)


def test_split_and_join():
    assert split_sqn(join_sqn(0x1234, 31)) == (0x1234, 31)
    assert join_sqn(1, 0) == b"\x00\x00\x00\x00\x00\x20"
    with pytest.raises(DecodeError):
        split_sqn(bytes(5))
    with pytest.raises(DecodeError):
        SqnArray().accept(bytes(7))


def test_delta_wrap_protection():
    sqns = SqnArray()
    assert sqns.accept(join_sqn(100, 0))
    assert not sqns.accept(join_sqn(101 + DEFAULT_DELTA, 1))
    assert sqns.accept(join_sqn(100 + DEFAULT_DELTA, 1))  # SEQ - SEQ_MS <= delta
    assert SqnArray(delta=None).accept(join_sqn(2**43 - 1, 0))


def test_age_limit():
    sqns = SqnArray(age_limit=10)
    assert sqns.accept(join_sqn(100, 0))
    assert not sqns.accept(join_sqn(90, 1))  # SEQ_MS - SEQ must stay below L
    assert sqns.accept(join_sqn(91, 1))
    assert SqnArray(SqnArray().to_list()).age_limit is None  # no limit by default


def test_highest_on_new_card_and_on_ties():
    assert SqnArray().highest() == bytes(6)
    seqs = [0] * SLOTS
    seqs[9] = seqs[4] = 50
    assert SqnArray(seqs).highest() == join_sqn(50, 4)


def test_serialise_and_restore():
    sqns = SqnArray()
    sqns.accept(join_sqn(42, 17))
    sqns.accept(join_sqn(3, 0))
    restored = SqnArray.from_list(sqns.to_list(), delta=None)
    assert restored.to_list() == sqns.to_list()
    assert restored.highest() == join_sqn(42, 17)
    assert restored.delta is None
    assert not restored.accept(join_sqn(42, 17))


@pytest.mark.parametrize("bad", [
    [0] * 31, [0] * 33, [-1] + [0] * 31, [2**43] + [0] * 31, [1.5] + [0] * 31,
    [True] + [0] * 31, "0" * 32, None, 7, {"a": 1},
])
def test_restore_refuses_malformed(bad):
    with pytest.raises(ScenarioError):
        SqnArray.from_list(bad)


# --- GBA (TS 31.102 §7.1.2.3/§7.1.2.4, TS 33.220) ---------------------------------------------

def test_gba_bootstrap():
    sqns = SqnArray()
    autn = make_autn(join_sqn(1, 0))
    result = gba_bootstrap(K, OPC, RAND, autn, sqns)
    e = SET1["expected"]
    assert isinstance(result, GbaBootstrapped)
    assert result.ks.hex() == e["f3ck"] + e["f4ik"]
    assert result.rand == RAND
    assert result.response() == b"\xdb\x08" + bytes.fromhex(e["f2res"])
    assert isinstance(gba_bootstrap(K, OPC, RAND, autn, sqns), SyncFailure)
    assert isinstance(gba_bootstrap(K, OPC, RAND, bytes(16), sqns), MacFailure)


def test_ks_naf_vector():
    v = GBA["gba-ks-naf-ts33221"]
    i, e = v["inputs"], v["expected"]
    rand, ks = bytes.fromhex(i["RAND"]), bytes.fromhex(i["Ks_hex"])
    nid = make_naf_id(i["NAF_FQDN"], bytes.fromhex(i["Ua_protocol_id_hex"]))
    assert nid.hex() == i["NAF_Id_hex"]
    assert kdf_input(0x01, b"gba-me", rand, i["IMPI"].encode(), nid).hex() == e["S_hex"]
    ext, int_ = derive_ks_naf(ks, rand, i["IMPI"], nid)
    assert ext.hex() == e["Ks_NAF_or_Ks_ext_NAF"]
    assert int_.hex() == e["Ks_int_NAF"]
    assert naf_derivation_response(ext) == b"\xdb\x20" + ext


def test_ks_naf_from_bootstrap_matches_vector_ks():
    # the vector's Ks is CK || IK of TS 35.208 set 1
    result = gba_bootstrap(K, OPC, RAND, make_autn(join_sqn(1, 0)), SqnArray())
    assert result.ks.hex() == GBA["gba-ks-naf-ts33221"]["inputs"]["Ks_hex"]


def test_make_naf_id_refuses_bad_ua_id():
    with pytest.raises(DecodeError):
        make_naf_id("naf.example.org", b"\x01\x00")


def test_btid_vector():
    v = GBA["gba-btid"]
    got = gba_btid(bytes.fromhex(v["inputs"]["RAND"]), v["inputs"]["bsf_fqdn"])
    assert got == v["expected"]["btid"]
