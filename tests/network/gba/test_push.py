"""GBA Push (network/gba/push.py): Zpn at the BSF, the GPI codec, the device side in software (GBA_ME) and
through the emulated UICC (GBA_U), and the refusals (replay, stale SQN, wrong MAC, malformed, expired)."""
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dmsim.base.errors import AuthenticationError, DecodeError, ProtocolError
from dmsim.cards.apdu import build_command, split_response
from dmsim.cards.emulated import make_card
from dmsim.cards.profile import parse_profile, pin_bytes
from dmsim.cards.sqn import SqnArray
from dmsim.cards.usim_app import gba_state
from dmsim.network.gba.hss import Hss
from dmsim.network.gba.hss_store import Subscriber
from dmsim.network.gba.keys import DMSIM_DM_UA_PROTOCOL_ID, derive_ks_naf, dm_bootstrap_keys, dm_naf_id
from dmsim.network.gba.push import (Gpi, PushBsf, PushReceiver, card_gba_u, decode_gpi, encode_gpi,
                                    software_gba_me)

h = bytes.fromhex
K, OPC, AMF = h("465b5ce8b199b49faa5f0a2ee238a6bc"), h("cd63cb71954a9f4e48a5994e37a02baf"), h("8000")
IMPI = "001010123456789@ims.mnc001.mcc001.3gppnetwork.org"
IMSI = "001010123456789"
NAF_ID = dm_naf_id("dm.example.org", DMSIM_DM_UA_PROTOCOL_ID)
T0 = 1_700_000_000
USIM_AID = "A0000000871002FFFFFFFF8907090000"


@pytest.fixture
def hss(tmp_path):
    hss = Hss.open(tmp_path / "hss.db", random.Random(4).randbytes)
    hss.provision([Subscriber(IMPI, IMSI, K, OPC, AMF, 0, False, 600)])
    yield hss
    hss.close()


def test_push_gba_me_end_to_end(hss):
    answer = PushBsf(hss, "bsf.example.org").zpn(IMSI, NAF_ID, T0)
    assert answer.impi == IMPI and answer.ks_int_naf is None and answer.expires == T0 + 600
    device = PushReceiver(IMPI, software_gba_me(K, OPC, SqnArray()))
    keys = device.process(answer.gpi, T0 + 1)
    assert keys.ks_naf == answer.ks_naf and keys.naf_id == NAF_ID and keys.p_tid == answer.p_tid
    assert (keys.dmbik, keys.dmbek) == dm_bootstrap_keys(answer.ks_naf)
    gpi = decode_gpi(answer.gpi)
    from dmsim.cards.milenage import f2345
    _, ck, ik, _ = f2345(K, OPC, gpi.rand)
    assert answer.ks_naf == derive_ks_naf(ck + ik, gpi.rand, IMPI, NAF_ID)[0]


def test_replay_stale_sqn_and_mac_failure_are_refused_and_counted(hss):
    bsf = PushBsf(hss, "bsf.example.org")
    first, second = bsf.zpn(IMPI, NAF_ID, T0), bsf.zpn(IMPI, NAF_ID, T0)
    device = PushReceiver(IMPI, software_gba_me(K, OPC, SqnArray()), max_seen=1)
    device.process(second.gpi, T0)
    with pytest.raises(AuthenticationError):
        device.process(second.gpi, T0)                 # replayed (remembered)
    with pytest.raises(AuthenticationError):
        device.process(first.gpi, T0)                  # older SQN than the one accepted: stale
    third = bsf.zpn(IMPI, NAF_ID, T0)
    device.process(third.gpi, T0)                      # pushes second out of the replay memory
    with pytest.raises(AuthenticationError):
        device.process(second.gpi, T0)                 # forgotten, but the USIM's SQN check refuses it
    other = PushReceiver(IMPI, software_gba_me(bytes(16), OPC, SqnArray()))
    with pytest.raises(AuthenticationError):
        other.process(bsf.zpn(IMPI, NAF_ID, T0).gpi, T0)
    assert device.counters == {"accepted": 2, "replayed": 1, "stale_sqn": 2}
    assert other.counters == {"mac_failure": 1}


def test_expired_and_malformed_gpi(hss):
    answer = PushBsf(hss, "bsf.example.org").zpn(IMPI, NAF_ID, T0)
    device = PushReceiver(IMPI, software_gba_me(K, OPC, SqnArray()))
    with pytest.raises(AuthenticationError):
        device.process(answer.gpi, T0 + 600)
    for bad in (b"", answer.gpi[:-1], answer.gpi + b"\x00", b"\x02" + answer.gpi[1:], answer.gpi[:1] + b"\x80" +
                answer.gpi[2:]):
        with pytest.raises(DecodeError):
            device.process(bad, T0)
    assert device.counters == {"expired": 1, "malformed": 5}


def test_zpn_refuses_unknown_users_and_bad_naf_ids(hss):
    with pytest.raises(ProtocolError):
        PushBsf(hss, "b").zpn("nobody", NAF_ID, T0)
    with pytest.raises(DecodeError):
        PushBsf(hss, "b").zpn(IMPI, b"\x01", T0)


def test_gpi_round_trip():
    g = Gpi(bytes(range(16)), bytes(range(16, 32)), "AAEC@bsf", NAF_ID, T0, True)
    assert decode_gpi(encode_gpi(g)) == g


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_decode_gpi_raises_only_decode_error(data):
    try:
        decode_gpi(data)
    except DecodeError:
        pass


def card_transmit(card):
    def transmit(apdu: bytes):
        data, sw = split_response(card.process(apdu))
        while sw >> 8 == 0x61:
            more, sw = split_response(card.process(build_command(0, 0xC0, 0, 0, le=(sw & 0xFF) or 256)))
            data += more
        return data, sw
    return transmit


def test_push_gba_u_through_the_emulated_uicc(tmp_path):
    hss = Hss.open(tmp_path / "u.db", random.Random(8).randbytes)
    hss.provision([Subscriber(IMPI, IMSI, K, OPC, AMF, 0, True, 600)])
    card = make_card(parse_profile(f'imsi: "{IMSI}"\nk: "{K.hex()}"\nopc: "{OPC.hex()}"\npin1: "1234"\n'))
    transmit = card_transmit(card)
    assert transmit(build_command(0, 0x20, 0, 1, pin_bytes("1234")))[1] == 0x9000
    assert transmit(h("00A4040C10" + USIM_AID))[1] == 0x9000
    answer = PushBsf(hss, "bsf.example.org").zpn(IMPI, NAF_ID, T0)
    device = PushReceiver(IMPI, card_gba_u(transmit))
    keys = device.process(answer.gpi, T0)
    assert keys.ks_naf == answer.ks_naf                                # Ks_ext_NAF came out of the card
    assert gba_state(card).ks_int_naf[NAF_ID] == answer.ks_int_naf     # Ks_int_NAF stayed in it
    with pytest.raises(AuthenticationError):
        PushReceiver(IMPI, card_gba_u(transmit)).process(answer.gpi, T0)   # the card refuses the old SQN
    hss.close()
