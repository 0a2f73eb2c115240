"""AUTHENTICATE on the emulated card (TS 31.102 §7.1.2) through ``card.process``: 3G context with
TS 35.208 set 1, resynchronisation, MAC failure, GBA bootstrapping and NAF derivation against the
GBA KDF vector, the status words of every refusal, the ATR and a fuzz run."""
from functools import reduce

import pytest
from conftest import load_vectors
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dmsim.cards import sw as SW
from dmsim.cards.apdu import build_command, split_response
from dmsim.cards.emulated import ATR, ATR_T1, make_card
from dmsim.cards.milenage import f1, f1star, f2345, f5star
from dmsim.cards.profile import parse_profile, pin_bytes
from dmsim.cards.usim_app import gba_state, sqn_array, sqn_array_from_profile

h = bytes.fromhex
SET1 = next(v for v in load_vectors("cards", "milenage") if v["id"] == "milenage-ts35208-set1")
NAF = next(v for v in load_vectors("network", "gba_kdf") if v["id"] == "gba-ks-naf-ts33221")
K, OPC = h(SET1["inputs"]["k"]), h(SET1["expected"]["opc"])
RAND, AMF, SQN = h(SET1["inputs"]["rand"]), h(SET1["inputs"]["amf"]), h(SET1["inputs"]["sqn"])
NEXT_SQN = (int.from_bytes(SQN, "big") + 32).to_bytes(6, "big")  # next SEQ, same IND
USIM_AID = "A0000000871002FFFFFFFF8907090000"

PROFILE = f"""\
imsi: "001010123456789"
k: "{K.hex()}"
opc: "{OPC.hex()}"
sqn: "{SQN.hex()}"
pin1: "1234"
"""


def xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b))


def make_autn(sqn: bytes, rand: bytes = RAND, amf: bytes = AMF) -> bytes:
    """The AuC side (TS 33.102 §6.3.2): AUTN = (SQN xor AK) || AMF || MAC-A."""
    return xor(sqn, f2345(K, OPC, rand)[3]) + amf + f1(K, OPC, rand, sqn, amf)


def recover_sqn_ms(auts: bytes, rand: bytes = RAND) -> bytes:
    """The AuC side of resynchronisation (TS 33.102 §6.3.5): SQN_MS after checking MAC-S."""
    sqn_ms = xor(auts[:6], f5star(K, OPC, rand))
    assert f1star(K, OPC, rand, sqn_ms, b"\x00\x00") == auts[6:]
    return sqn_ms


def lv(value: bytes) -> bytes:
    return bytes([len(value)]) + value


def send(card, apdu: bytes, channel: int = 0):
    raw = bytearray(apdu)
    raw[0] |= channel
    return split_response(card.process(bytes(raw)))


def fetch(card, apdu: bytes, channel: int = 0):
    """Return (data, sw), collecting 61xx data with GET RESPONSE."""
    data, sw = send(card, apdu, channel)
    while sw >> 8 == 0x61:
        more, sw = send(card, build_command(0, 0xC0, 0, 0, le=(sw & 0xFF) or 256), channel)
        data += more
    return data, sw


def authenticate(p2: int, data: bytes, p1: int = 0) -> bytes:
    return build_command(0x00, 0x88, p1, p2, data, le=256)


def ready(card, channel: int = 0):
    """VERIFY PIN1 and select ADF.USIM on ``channel``."""
    assert send(card, build_command(0, 0x20, 0, 1, pin_bytes("1234")))[1] == 0x9000
    assert send(card, h("00A4040C10" + USIM_AID), channel)[1] == 0x9000
    return card


@pytest.fixture
def card():
    return ready(make_card(parse_profile(PROFILE)))


# --- 3G context ---------------------------------------------------------------------------

def test_3g_success_is_the_vector_and_moves_sqn(card):
    e = SET1["expected"]
    first = send(card, authenticate(0x81, lv(RAND) + lv(make_autn(NEXT_SQN))))
    assert first == (b"", 0x6135)                         # T=0: 53 bytes wait for GET RESPONSE
    data, sw = send(card, h("00C0000035"))
    res, ck, ik = h(e["f2res"]), h(e["f3ck"]), h(e["f4ik"])
    kc = reduce(xor, (ck[:8], ck[8:], ik[:8], ik[8:]))
    assert sw == 0x9000
    assert data == b"\xdb" + lv(res) + lv(ck) + lv(ik) + lv(kc)
    assert sqn_array(card).highest() == NEXT_SQN


def test_t1_card_answers_at_once():
    card = ready(make_card(parse_profile(PROFILE), t0=False))
    data, sw = send(card, authenticate(0x81, lv(RAND) + lv(make_autn(NEXT_SQN))))
    assert sw == 0x9000 and data[:2] == b"\xdb\x08" and len(data) == 53
    assert card.atr == ATR_T1


def test_replay_gives_auts_and_the_network_resynchronises(card):
    autn = make_autn(NEXT_SQN)
    assert fetch(card, authenticate(0x81, lv(RAND) + lv(autn)))[1] == 0x9000
    data, sw = fetch(card, authenticate(0x81, lv(RAND) + lv(autn)))
    assert sw == 0x9000 and data[:2] == b"\xdc\x0e" and len(data) == 16
    sqn_ms = recover_sqn_ms(data[2:])
    assert sqn_ms == NEXT_SQN
    resync = (int.from_bytes(sqn_ms, "big") + 32).to_bytes(6, "big")
    data, sw = fetch(card, authenticate(0x81, lv(RAND) + lv(make_autn(resync))))
    assert sw == 0x9000 and data[0] == 0xDB


def test_new_card_reports_the_profile_sqn(card):
    assert sqn_array_from_profile(SQN).highest() == SQN
    data, sw = fetch(card, authenticate(0x81, lv(RAND) + lv(make_autn(SQN))))
    assert sw == 0x9000 and data[0] == 0xDC
    assert recover_sqn_ms(data[2:]) == SQN


def test_bad_mac_answers_9862_and_keeps_sqn(card):
    autn = bytearray(make_autn(NEXT_SQN))
    autn[-1] ^= 1
    assert send(card, authenticate(0x81, lv(RAND) + lv(bytes(autn)))) == (b"", 0x9862)
    assert sqn_array(card).highest() == SQN


@pytest.mark.parametrize("p1, p2, data, sw", [
    (0, 0x81, lv(RAND[:15]) + lv(bytes(16)), 0x6700),        # RAND of 15 octets
    (0, 0x81, lv(RAND) + lv(bytes(16)) + b"\x00", 0x6700),   # a trailing octet
    (0, 0x81, lv(RAND) + b"\x20" + bytes(16), 0x6700),       # AUTN length beyond the data
    (0, 0x81, b"", 0x6700),
    (1, 0x81, lv(RAND) + lv(bytes(16)), 0x6A86),
    (0, 0x83, lv(RAND) + lv(bytes(16)), 0x6A86),              # RFU context
    (0, 0x01, lv(RAND) + lv(bytes(16)), 0x6A86),              # no specific reference data
    (0, 0x80, lv(RAND), 0x9864),                              # GSM context: not run
    (0, 0x84, b"\xdc" + lv(RAND) + lv(bytes(16)), 0x6A80),    # GBA mode tag
    (0, 0x84, b"\xdd" + lv(RAND), 0x6700),
    (0, 0x84, b"\xde" + lv(b"naf") + lv(b""), 0x6700),        # empty IMPI
    (0, 0x84, b"\xde" + lv(b"naf") + lv(b"\xff\xfe"), 0x6A80),  # IMPI not UTF-8
])
def test_refusals(card, p1, p2, data, sw):
    apdu = authenticate(p2, data, p1) if data else build_command(0, 0x88, p1, p2, le=256)
    assert send(card, apdu) == (b"", sw)
    assert sqn_array(card).highest() == SQN


def test_needs_the_usim_as_current_application():
    card = make_card(parse_profile(PROFILE))
    assert send(card, build_command(0, 0x20, 0, 1, pin_bytes("1234")))[1] == 0x9000
    request = authenticate(0x81, lv(RAND) + lv(make_autn(NEXT_SQN)))
    assert send(card, request) == (b"", 0x6985)                                # at the MF
    assert send(card, h("00A4040C10A0000000871004FFFFFFFF8907090000"))[1] == 0x9000
    assert send(card, request) == (b"", 0x6985)                                # ISIM
    assert send(card, h("00A4040C10" + USIM_AID))[1] == 0x9000
    assert send(card, h("00A4000C023F00"))[1] == 0x9000
    assert send(card, request) == (b"", 0x6985)                                # back at the MF
    assert send(card, h("0070000001")) == (b"\x01", 0x9000)                    # channel 1
    assert send(card, h("00A4040C10" + USIM_AID), channel=1)[1] == 0x9000
    assert send(card, h("00A4000C026F07"), channel=1)[1] == 0x9000           # an EF under the ADF
    data, sw = fetch(card, request, channel=1)
    assert sw == 0x9000 and data[0] == 0xDB


def test_needs_pin1_unless_disabled():
    card = make_card(parse_profile(PROFILE))
    assert send(card, h("00A4040C10" + USIM_AID))[1] == 0x9000
    request = authenticate(0x81, lv(RAND) + lv(make_autn(NEXT_SQN)))
    assert send(card, request) == (b"", 0x6982)
    open_card = make_card(parse_profile(PROFILE + "pin1_enabled: false\n"))
    assert send(open_card, h("00A4040C10" + USIM_AID))[1] == 0x9000
    assert fetch(open_card, request)[0][0] == 0xDB


# --- GBA context --------------------------------------------------------------------------

def test_gba_bootstrap_then_naf_derivation_match_the_kdf_vector(card):
    inputs, expected = NAF["inputs"], NAF["expected"]
    assert h(inputs["RAND"]) == RAND
    assert h(inputs["Ks_hex"]) == h(SET1["expected"]["f3ck"] + SET1["expected"]["f4ik"])
    data, sw = fetch(card, authenticate(0x84, b"\xdd" + lv(RAND) + lv(make_autn(NEXT_SQN))))
    assert (data, sw) == (b"\xdb" + lv(h(SET1["expected"]["f2res"])), 0x9000)
    state = gba_state(card)
    assert (state.ks, state.rand) == (h(inputs["Ks_hex"]), RAND)
    naf_id = h(inputs["NAF_Id_hex"])
    data, sw = fetch(card, authenticate(0x84, b"\xde" + lv(naf_id) + lv(inputs["IMPI"].encode())))
    assert (data, sw) == (b"\xdb" + lv(h(expected["Ks_NAF_or_Ks_ext_NAF"])), 0x9000)
    assert state.ks_int_naf == {naf_id: h(expected["Ks_int_NAF"])}


def test_naf_derivation_needs_a_bootstrap_first(card):
    request = authenticate(0x84, b"\xde" + lv(b"naf.example.org\x01\x00\x00\x00\x00") + lv(b"me@realm"))
    assert send(card, request) == (b"", 0x6985)
    autn = bytearray(make_autn(NEXT_SQN))
    autn[8] ^= 0x80
    assert send(card, authenticate(0x84, b"\xdd" + lv(RAND) + lv(bytes(autn)))) == (b"", 0x9862)
    assert gba_state(card).ks is None
    assert send(card, request) == (b"", 0x6985)


def test_gba_bootstrap_sync_failure(card):
    data, sw = fetch(card, authenticate(0x84, b"\xdd" + lv(RAND) + lv(make_autn(SQN))))
    assert sw == 0x9000 and data[:2] == b"\xdc\x0e"
    assert recover_sqn_ms(data[2:]) == SQN and gba_state(card).ks is None


# --- the card as a whole ------------------------------------------------------------------

def test_atr_check_byte():
    card = make_card(parse_profile(PROFILE))
    assert card.atr == ATR and ATR[:4] == h("3B9F9680") and ATR[-3:-1] == h("9000")
    for atr in (ATR, ATR_T1):
        assert reduce(lambda a, b: a ^ b, atr[1:], 0) == 0          # TCK
        assert len(atr) == 1 + 1 + 4 + 15 + 1


FUZZ_CARD = ready(make_card(parse_profile(PROFILE)))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(p1=st.sampled_from([0, 0, 1]), p2=st.sampled_from([0x81, 0x84, 0x80, 0x00, 0xFF]),
       body=st.one_of(
           st.binary(max_size=60),
           st.tuples(st.sampled_from([b"", b"\xdd", b"\xde"]), st.binary(max_size=20),
                     st.binary(max_size=20)).map(lambda t: t[0] + lv(t[1]) + lv(t[2])),
       ))
def test_fuzz_authenticate_never_fails(p1, p2, body):
    FUZZ_CARD.last_error = None
    raw = bytes([0x00, 0x88, p1, p2]) + (bytes([len(body)]) + body if body else b"")
    data, sw = split_response(FUZZ_CARD.process(raw))
    assert FUZZ_CARD.last_error is None
    assert SW.is_known(sw) and sw != 0x6F00
