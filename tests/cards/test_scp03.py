"""SCP03 (GP Card Spec v2.3 Amendment D): the published pySim sessions, card and host talking to
each other, and the card's refusals."""
import pytest
from conftest import load_vectors
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dmsim.cards import scp03_crypto as crypto
from dmsim.cards.scp03 import (ISD_R_AID, SECURITY_LEVELS, Scp03Card, Scp03Error, Scp03Host, Scp03Keys,
                               SecureChannelError)
from dmsim.base.errors import ProtocolError

h = bytes.fromhex
OK = b"\x90\x00"
KDF = load_vectors("cards", "scp03_kdf")
CRYPTOGRAM = load_vectors("cards", "scp03_cryptogram")
WRAP = load_vectors("cards", "scp03_cmac_wrap")
ids = lambda v: v["id"]  # noqa: E731


def vector_keys(inputs):
    return Scp03Keys(h(inputs["key_enc"]), h(inputs["key_mac"]), h(inputs["key_dek"]), int(inputs["kvn"], 16))


def vector_card(inputs):
    """Return the card that gave the vector's INITIALIZE UPDATE response."""
    counter = int.from_bytes(h(inputs["init_update_response"])[29:32], "big")
    return Scp03Card(vector_keys(inputs), sequence_counter=counter, i_param=0x70)


def test_the_vectors_cover_every_key_length_and_level():
    assert len(KDF) == len(CRYPTOGRAM) == len(WRAP) == 5
    assert {len(h(v["inputs"]["key_enc"])) for v in WRAP} == {16, 24, 32}
    assert {v["inputs"]["security_level"] for v in WRAP} == {"11", "03", "33"}


# --- published vectors -----------------------------------------------------------------------

@pytest.mark.parametrize("v", KDF, ids=ids)
def test_kdf_card_challenge(v):
    i = v["inputs"]
    assert h(i["context"]) == h(i["sequence_counter"]) + h(i["aid"])
    expected = h(v["expected"]["card_challenge"])
    assert crypto.kdf(h(i["key"]), int(i["derivation_constant"], 16), int(i["l_bits"], 16), h(i["context"])) == expected
    assert crypto.card_challenge(h(i["key"]), int(i["sequence_counter"], 16), h(i["aid"])) == expected
    assert h(i["aid"]) == ISD_R_AID


@pytest.mark.parametrize("v", CRYPTOGRAM, ids=ids)
def test_cryptograms_and_external_authenticate(v):
    i, e, f = v["inputs"], v["expected"], v["inputs"]["init_update_response_fields"]
    keys, hc, cc = vector_keys(i), h(i["host_challenge"]), h(f["card_challenge"])
    session = crypto.session_keys(keys.enc, keys.mac, hc, cc)
    d = v["derived_intermediates"]
    assert (session.s_enc.hex(), session.s_mac.hex(), session.s_rmac.hex()) == (d["s_enc"], d["s_mac"], d["s_rmac"])
    assert crypto.cryptogram(session.s_mac, crypto.CONST_CARD_CRYPTOGRAM, hc, cc).hex() == e["card_cryptogram"]
    assert crypto.cryptogram(session.s_mac, crypto.CONST_HOST_CRYPTOGRAM, hc, cc).hex() == e["host_cryptogram"]

    host = Scp03Host(keys, hc, int(i["security_level"], 16))
    card = vector_card(i)
    init_update = host.initialize_update_command()
    assert init_update.hex() == e["init_update_cmd"]
    response = card.initialize_update(init_update)
    assert response == h(i["init_update_response"]) + OK
    assert response[:-2] == h("".join(f[k] for k in ("key_diversification_data", "key_version", "scp_id",
                                                     "i_param", "card_challenge", "card_cryptogram",
                                                     "sequence_counter")))
    ext_auth = host.process_initialize_update_response(response)
    assert ext_auth.hex() == e["ext_auth_cmd"]
    assert host.sequence_counter == int(f["sequence_counter"], 16) and host.card_challenge == cc
    assert card.external_authenticate(ext_auth) == OK
    assert card.security_level == int(i["security_level"], 16)
    assert card.sequence_counter == int(f["sequence_counter"], 16) + 1


@pytest.mark.parametrize("v", WRAP, ids=ids)
def test_wrapped_session_host_side(v):
    i = v["inputs"]
    host = Scp03Host(vector_keys(i), h(i["host_challenge"]), int(i["security_level"], 16))
    host.initialize_update_command()
    assert host.process_initialize_update_response(h(i["init_update_response"]) + OK).hex() == i["ext_auth_cmd"]
    host.process_external_authenticate_response(OK)
    for step, expected in zip(i["steps"], v["expected"]["steps"], strict=True):
        if step["op"] == "wrap_cmd":
            assert host.wrap(h(step["plain"])).hex() == expected
        else:
            assert host.unwrap(h(step["protected"]) + h(step["sw"])) == h(expected) + h(step["sw"])


@pytest.mark.parametrize("v", WRAP, ids=ids)
def test_wrapped_session_card_side(v):
    i = v["inputs"]
    card = vector_card(i)
    card.initialize_update(bytes([0x80, 0x50, int(i["kvn"], 16), 0, 8]) + h(i["host_challenge"]) + b"\x00")
    assert card.external_authenticate(h(i["ext_auth_cmd"])) == OK
    for step, expected in zip(i["steps"], v["expected"]["steps"], strict=True):
        if step["op"] == "wrap_cmd":
            assert card.unwrap(h(expected)) == h(step["plain"])
        else:
            assert card.wrap(h(expected) + h(step["sw"])) == h(step["protected"]) + h(step["sw"])


# --- card and host against each other --------------------------------------------------------

KEY_LENGTHS = (16, 24, 32)
COMMANDS = [
    "80f22002",                      # case 1: no data, no Le
    "80ca006600",                    # case 2
    "80e2910006bf3e035c015a",        # case 3
    "80e2910006bf3e035c015a00",      # case 4
    "80e29100" + "10" + "ab" * 16,   # a full block: padding adds one more
    "00a4040007a000000151000000",    # a first interindustry CLA
    "81f2200200",                    # logical channel 1: CLA 81 -> 85
    "c1f2200200",                    # further interindustry coding: SM bit is b6 (C1 -> E1)
]


def make_keys(n, kvn=0x30):
    return Scp03Keys(bytes(range(n)), bytes(range(16, 16 + n)), bytes(range(32, 32 + n)), kvn)


def open_channel(level, n=16, *, card=None, host_challenge=b"hostchal"):
    """Return a (card, host) pair with an open session."""
    keys = make_keys(n)
    card = card or Scp03Card(keys, sequence_counter=5)
    host = Scp03Host(keys, host_challenge, level)
    ext_auth = host.process_initialize_update_response(card.initialize_update(host.initialize_update_command()))
    host.process_external_authenticate_response(card.external_authenticate(ext_auth))
    assert card.security_level == level
    return card, host


def answer(plain_cmd):
    """The card application: echoes the command data reversed, adds 'ok' to a case 2/4 command."""
    if len(plain_cmd) <= 5:
        return (b"ok" if len(plain_cmd) == 5 else b"") + OK
    data = plain_cmd[5:5 + plain_cmd[4]]
    return data[::-1] + (b"ok" if len(plain_cmd) == 6 + len(data) else b"") + OK


@pytest.mark.parametrize("n", KEY_LENGTHS)
@pytest.mark.parametrize("level", [0x01, 0x03, 0x13, 0x33])
def test_card_and_host_talk(level, n):
    card, host = open_channel(level, n)
    for _ in range(2):
        for hex_cmd in COMMANDS:
            plain = h(hex_cmd)
            wrapped = host.wrap(plain)
            assert wrapped[0] != plain[0]
            assert card.unwrap(wrapped) == plain
            response = answer(plain)
            protected = card.wrap(response)
            assert (protected != response) == bool(level & 0x10)
            assert host.unwrap(protected) == response
    # an error SW travels without R-MAC or R-ENCRYPTION, both ways
    card.unwrap(host.wrap(h("80f22002")))
    assert card.wrap(h("6a82")) == h("6a82")
    assert host.unwrap(h("6a82")) == h("6a82")
    assert card.security_level == level


def test_encrypted_data_does_not_show_in_the_wrapped_command():
    _, host = open_channel(0x03)
    assert b"\xab" * 16 not in host.wrap(h(COMMANDS[4]))


def test_random_card_challenge_mode():
    keys = make_keys(16)
    card = Scp03Card(keys, i_param=0x60, random_bytes=lambda n: b"\x5a" * n)
    host = Scp03Host(keys, b"12345678", 0x33)
    response = card.initialize_update(host.initialize_update_command())
    assert len(response) == 29 + 2 and response[13:21] == b"\x5a" * 8
    assert card.external_authenticate(host.process_initialize_update_response(response)) == OK
    assert host.sequence_counter is None and card.sequence_counter == 0
    assert host.unwrap(card.wrap(b"abc" + OK)) == b"abc" + OK


def test_a_new_initialize_update_replaces_the_session():
    card, host = open_channel(0x33)
    open_channel(0x01, card=card, host_challenge=b"another!")
    assert card.security_level == 0x01
    with pytest.raises(SecureChannelError):
        card.unwrap(host.wrap(h("80f22002")))  # the old session's MAC chain is gone


# --- refusals --------------------------------------------------------------------------------

def refused(card, cmd):
    with pytest.raises(SecureChannelError) as info:
        card.unwrap(cmd)
    return info.value.sw


@pytest.mark.parametrize("level", [0x01, 0x33])
def test_tampered_mac_closes_the_channel(level):
    card, host = open_channel(level)
    assert card.unwrap(host.wrap(h("80ca006600"))) == h("80ca006600")
    bad = bytearray(host.wrap(h("80e2910003010203")))
    bad[-1] ^= 1
    assert refused(card, bytes(bad)) == 0x6982
    assert card.security_level == 0
    for hex_cmd in COMMANDS:
        assert refused(card, host.wrap(h(hex_cmd))) == 0x6982
    # plain commands go on at no security level; the command handler decides what needs SCP03
    assert card.unwrap(h("80ca006600")) == h("80ca006600")
    assert card.wrap(b"x" + OK) == b"x" + OK


def test_tampered_data_and_missing_mac_are_refused():
    card, host = open_channel(0x03)
    bad = bytearray(host.wrap(h("80e2910003010203")))
    bad[6] ^= 0x80
    assert refused(card, bytes(bad)) == 0x6982
    card, host = open_channel(0x03)
    assert refused(card, h("84f22002")) == 0x6982  # SM bit set, no C-MAC
    assert card.security_level == 0


def test_extended_length_and_malformed_commands_are_refused():
    card, host = open_channel(0x01)
    assert refused(card, h("84ca0066000008") + bytes(8)) == 0x6700  # extended Lc
    assert card.security_level == 0
    assert refused(card, h("84ca006605aabb")) == 0x6700  # Lc says 5, 2 bytes follow
    with pytest.raises(Scp03Error, match="short"):
        host.wrap(h("80ca0066000002aabb"))


def test_plain_command_in_the_channel_is_refused_and_closes_it():
    card, host = open_channel(0x13)
    assert refused(card, h("80ca006600")) == 0x6982
    assert card.security_level == 0
    assert refused(card, host.wrap(h("80ca006600"))) == 0x6982


def test_wrong_host_cryptogram():
    keys = make_keys(16)
    card, host = Scp03Card(keys), Scp03Host(keys, b"hostchal", 0x03)
    response = card.initialize_update(host.initialize_update_command())
    ext_auth = bytearray(host.process_initialize_update_response(response))
    ext_auth[5] ^= 1
    assert card.external_authenticate(bytes(ext_auth)) == h("6300")
    assert card.security_level == 0
    assert card.external_authenticate(host.wrap(h("80f22002"))) == h("6985")  # no retry
    assert refused(card, host.wrap(h("80f22002"))) == 0x6982
    with pytest.raises(Scp03Error):
        host.process_external_authenticate_response(h("6300"))
    assert not host.is_open


def test_external_authenticate_refusals():
    keys = make_keys(16)
    host = Scp03Host(keys, b"hostchal", 0x33)
    card = Scp03Card(keys)
    assert card.external_authenticate(h("84823300100000000000000000000000000000000000")) == h("6985")
    ext_auth = host.process_initialize_update_response(card.initialize_update(host.initialize_update_command()))
    mac_flipped = ext_auth[:-1] + bytes([ext_auth[-1] ^ 1])
    assert card.external_authenticate(mac_flipped) == h("6982")
    card.initialize_update(host.initialize_update_command())
    assert card.external_authenticate(ext_auth[:-1]) == h("6700")
    # a card without R-MAC / R-ENCRYPTION support refuses level 33; the host sees it first
    card = Scp03Card(keys, i_param=0x10)
    with pytest.raises(Scp03Error, match="does not support"):
        host.process_initialize_update_response(card.initialize_update(host.initialize_update_command()))
    plain_host = Scp03Host(keys, b"hostchal", 0x03)
    ext_auth = plain_host.process_initialize_update_response(card.initialize_update(host.initialize_update_command()))
    assert card.external_authenticate(ext_auth[:2] + b"\x33" + ext_auth[3:]) == h("6a86")


def test_initialize_update_refusals():
    card = Scp03Card(make_keys(16, kvn=0x30), sequence_counter=0xFFFFFF)
    assert card.initialize_update(h("8050310008" + "00" * 8 + "00")) == h("6a88")
    assert card.initialize_update(h("8050300108" + "00" * 8 + "00")) == h("6a86")
    assert card.initialize_update(h("8050300004" + "00" * 4)) == h("6700")
    assert card.initialize_update(h("805030")) == h("6700")
    assert card.initialize_update(h("8450300008" + "00" * 8)) == h("6e00")
    assert card.initialize_update(h("8052300008" + "00" * 8)) == h("6d00")
    assert card.initialize_update(h("8050000008" + "00" * 8 + "00"))[-2:] == OK  # KVN 00: any
    assert card.initialize_update(h("8050300008" + "00" * 8 + "00")) == h("6985")  # counter used up


def test_host_refusals():
    keys = make_keys(16)
    host = Scp03Host(keys, b"hostchal", 0x01)
    with pytest.raises(Scp03Error):
        host.wrap(h("80f22002"))  # no session yet
    with pytest.raises(Scp03Error, match="6A88"):
        host.process_initialize_update_response(h("6a88"))
    other_card = Scp03Card(Scp03Keys(keys.enc, b"\x99" * 16, keys.dek, keys.kvn))
    with pytest.raises(Scp03Error, match="card cryptogram"):
        host.process_initialize_update_response(other_card.initialize_update(host.initialize_update_command()))
    card, host = open_channel(0x11)
    card.unwrap(host.wrap(h("80ca006600")))
    protected = bytearray(card.wrap(b"data" + OK))
    protected[0] ^= 1
    with pytest.raises(Scp03Error, match="R-MAC"):
        host.unwrap(bytes(protected))
    with pytest.raises(Scp03Error):
        host.wrap(h("84ca006600"))  # already secured
    with pytest.raises(Scp03Error):
        host.wrap(h("80e29100ff" + "00" * 255))  # does not fit a short APDU once MACed
    for bad in (lambda: Scp03Keys(b"k" * 15, b"k" * 15, b"k" * 15, 1),
                lambda: Scp03Keys(b"k" * 16, b"k" * 24, b"k" * 16, 1),
                lambda: Scp03Host(keys, b"short", 0x01),
                lambda: Scp03Host(keys, b"hostchal", 0x02),
                lambda: Scp03Card(keys, i_param=0x71)):
        with pytest.raises(Scp03Error):
            bad()


def test_errors_are_protocol_errors():
    assert issubclass(SecureChannelError, Scp03Error) and issubclass(Scp03Error, ProtocolError)
    assert str(SecureChannelError(0x6982, "C-MAC does not verify")) == "6982: C-MAC does not verify"


# --- robustness ------------------------------------------------------------------------------

ROBUST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@ROBUST
@given(level=st.sampled_from([None, *sorted(SECURITY_LEVELS)]), cmd=st.binary(max_size=300))
def test_card_unwrap_only_raises_secure_channel_error(level, cmd):
    if level is None:
        card = Scp03Card(make_keys(16))
    else:
        card, _ = open_channel(level)
    try:
        out = card.unwrap(cmd)
    except SecureChannelError as e:
        assert e.sw in (0x6700, 0x6982, 0x6988)
    else:
        assert isinstance(out, bytes)


@ROBUST
@given(level=st.sampled_from([0x03, 0x13, 0x33]), body=st.binary(max_size=64), cla=st.sampled_from([0x84, 0xE0]))
def test_card_unwrap_rejects_bad_ciphertext_behind_a_good_mac(level, body, cla):
    card, host = open_channel(level)
    host._session.counter += 1  # what host.wrap would do
    header = bytes([cla, 0xE2, 0x91, 0x00, len(body) + 8])
    cmd = header + body + host._session.command_mac(header + body)
    try:
        plain = card.unwrap(cmd)
    except SecureChannelError as e:
        assert e.sw == 0x6988 and card.security_level == 0
    else:
        assert plain[0] == cla & ~(0x20 if cla & 0x40 else 0x04)


@ROBUST
@given(iu=st.binary(max_size=40), ea=st.binary(max_size=40), resp=st.binary(max_size=60))
def test_authentication_commands_and_host_unwrap_never_raise_untyped(iu, ea, resp):
    card = Scp03Card(make_keys(16))
    assert len(card.initialize_update(iu)) >= 2
    assert len(card.external_authenticate(ea)) == 2
    _, host = open_channel(0x33)
    try:
        host.unwrap(resp)
    except Scp03Error:
        pass
    try:
        Scp03Host(make_keys(16), b"hostchal", 0x33).process_initialize_update_response(resp)
    except Scp03Error:
        pass
