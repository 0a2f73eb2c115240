"""The device's card host code against the emulated card, in process: identities, AUTHENTICATE,
and the DM Bootstrap read inside an SCP03 channel at level 33 (OMA-TS-DM_Security Appendix H),
with the card's refusals (tampered C-MAC, plain command in the channel) and the host's (R-MAC)."""
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dmsim.cards import gp_app, usim_app
from dmsim.cards.apdu import build_command
from dmsim.cards.emulated import make_card
from dmsim.cards.link import InProcessLink
from dmsim.cards.milenage import f1, f2345
from dmsim.cards.profile import parse_profile
from dmsim.cards.scp03 import Scp03Keys
from dmsim.cards.uicc import Uicc
from dmsim.devices import card_host as host
from dmsim.base.errors import CardError, DecodeError

KEY = "404142434445464748494A4B4C4D4E4F"
PROFILE = f"""\
imsi: "001010123456789"
k: "000102030405060708090A0B0C0D0E0F"
opc: "0F0E0D0C0B0A09080706050403020100"
sqn: "000000000040"
scp03: {{kvn: 0x30, enc: "{KEY}", mac: "{KEY}", dek: "{KEY}"}}
dm_bootstrap: "{'<SyncML>' + 'x' * 600 + '</SyncML>'}"
"""
HC = bytes.fromhex("0102030405060708")


def make(profile, **gp):
    """Return the full emulated card; with ``gp`` options, a USIM + SCP03 card registered with them."""
    if not gp:
        return make_card(profile)
    card = Uicc(profile)
    usim_app.register(card)
    gp_app.register(card, **gp)
    return card


@pytest.fixture
def profile():
    return parse_profile(PROFILE)


@pytest.fixture
def link(profile):
    return InProcessLink(make(profile))


def keys(profile, kvn=0x30, **change):
    k = profile.scp03
    return Scp03Keys(change.get("enc", k.enc), change.get("mac", k.mac), k.dek, kvn)


def autn(profile, rand, sqn, mac_ok=True):
    """AUTN as the AuC builds it (TS 33.102 §6.3.2)."""
    ak = f2345(profile.k, profile.opc, rand)[3]
    mac = f1(profile.k, profile.opc, rand, sqn, profile.amf)
    if not mac_ok:
        mac = bytes([mac[0] ^ 1]) + mac[1:]
    return bytes(a ^ b for a, b in zip(sqn, ak)) + profile.amf + mac


def test_iccid_imsi_and_applications(link, profile):
    assert host.read_iccid(link) == profile.iccid
    assert host.read_imsi(link, pin="1234") == profile.imsi
    labels = [label for _, label in host.applications(link)]
    assert labels == ["USIM", "ISIM", "PKCS#15"]


def test_imsi_without_pin_names_the_apdu_and_sw(link):
    with pytest.raises(CardError) as err:
        host.read_imsi(link)
    assert err.value.sw == 0x6982 and err.value.command == "READ BINARY"
    assert err.value.apdu == bytes.fromhex("00b0000009") and "00b0000009" in str(err.value)


def test_authenticate_success_mac_failure_and_resync(link, profile):
    rand = bytes(range(16))
    sqn = (0x40 + 32).to_bytes(6, "big")   # next SEQ, same IND
    res, ck, ik, _ = f2345(profile.k, profile.opc, rand)
    result = host.authenticate(link, rand, autn(profile, rand, sqn), pin="1234")
    assert (result.outcome, result.res, result.ck, result.ik) == ("success", res, ck, ik)
    assert result.to_dict()["res"] == res.hex()
    bad = host.authenticate(link, rand, autn(profile, rand, sqn, mac_ok=False))
    assert bad.outcome == "mac_failure" and bad.sw == 0x9862
    replay = host.authenticate(link, rand, autn(profile, rand, sqn))
    assert replay.outcome == "sync_failure" and len(replay.auts) == 14
    with pytest.raises(DecodeError):
        host.authenticate(link, rand[:8], autn(profile, rand, sqn))


def test_read_dm_bootstrap_over_scp03_level_33(link, profile):
    assert host.read_dm_bootstrap(link, keys(profile), host_challenge=HC) == profile.dm_bootstrap
    assert host.read_dm_bootstrap(link, keys(profile, kvn=0)) == profile.dm_bootstrap   # kvn 0: default set
    assert host.read_dm_bootstrap(link, None) == profile.dm_bootstrap                   # in the clear


@pytest.mark.parametrize("level", [0x01, 0x03, 0x13, 0x33])
@pytest.mark.parametrize("iso_class", [False, True])
def test_every_level_and_both_classes(link, profile, level, iso_class):
    host.select_pkcs15(link)
    channel = host.open_scp03(link, keys(profile), level, HC, iso_class=iso_class)
    assert channel.security_level == level
    assert host.read_pkcs15_bootstrap(channel) == profile.dm_bootstrap


def test_commands_inside_the_channel_are_wrapped_and_enciphered(profile):
    card = make(profile)
    seen = []
    link = InProcessLink(card, trace=lambda c, r, t: seen.append((c, r)))
    host.read_dm_bootstrap(link, keys(profile), host_challenge=HC)
    after_auth = [c for c, _ in seen[next(i for i, (c, _) in enumerate(seen) if c[1] == 0x82) + 1:]]
    assert after_auth[-1].hex() == "00a4040c0ca000000063504b43532d3135"   # re-selecting ends the session
    assert all(c[0] == 0x84 or c[1] == 0xC0 for c in after_auth[:-1])
    responses = b"".join(r for _, r in seen)
    assert profile.dm_bootstrap[:16] not in responses and b"SyncML" not in responses


def test_tampered_wrapped_command_is_refused_and_closes_the_session(link, profile):
    host.select_pkcs15(link)
    channel = host.open_scp03(link, keys(profile), 0x33, HC)
    wrapped = bytearray(channel.host.wrap(build_command(0x80, 0xA4, 0x00, 0x0C, b"\x50\x31")))
    wrapped[-2] ^= 0x01                     # a bit of the C-MAC
    assert link.transmit(bytes(wrapped)) == (b"", 0x6982)
    with pytest.raises(CardError) as err:   # the session is gone: a good wrap is refused too
        host.select_fid(channel, host.EF_ODF)
    assert err.value.sw == 0x6982 and err.value.command == "SELECT"


def test_plain_read_inside_the_33_channel_is_refused(link, profile):
    host.select_pkcs15(link)
    channel = host.open_scp03(link, keys(profile), 0x33, HC)
    host.select_fid(channel, host.EF_ODF)
    assert link.transmit(bytes.fromhex("00b0000000")) == (b"", 0x6982)
    with pytest.raises(CardError, match="6982"):
        host.read_binary(channel, None)
    assert host.read_binary(link, None)[:1] == b"\xa7"   # closed: plain reads pass again (no policy)


def test_policy_refuses_plain_reads_of_the_pkcs15_application(profile):
    link = InProcessLink(make(profile, require_secure_channel=True))
    with pytest.raises(CardError) as err:
        host.read_dm_bootstrap(link, None)
    assert err.value.sw == 0x6982
    assert host.read_dm_bootstrap(link, keys(profile), host_challenge=HC) == profile.dm_bootstrap


def test_wrong_keys_and_wrong_state(link, profile):
    host.select_usim(link)
    assert link.transmit(bytes.fromhex("84a4000c0a0102030405060708090a")) == (b"", 0x6982)   # no channel
    host.select_pkcs15(link)
    with pytest.raises(CardError, match="card cryptogram"):
        host.open_scp03(link, keys(profile, mac=bytes(16)), 0x33, HC)
    with pytest.raises(CardError) as err:
        host.open_scp03(link, keys(profile, kvn=0x31), 0x33, HC)
    assert err.value.sw == 0x6A88
    host.select_usim(link)
    with pytest.raises(CardError) as err:       # INITIALIZE UPDATE outside the PKCS#15 application
        host.open_scp03(link, keys(profile), 0x33, HC)
    assert err.value.sw == 0x6985


def test_card_without_scp03_keys(profile):
    from dataclasses import replace
    link = InProcessLink(make(replace(profile, scp03=None)))
    with pytest.raises(CardError) as err:
        host.read_dm_bootstrap(link, keys(profile))
    assert err.value.sw == 0x6A88
    secured = build_command(0x84, 0xB0, 0, 0, bytes(8), 256)
    assert link.transmit(secured) == (b"", 0x6982)   # secured command, no session


def test_tampered_response_is_caught_by_the_host(profile):
    card = make(profile)

    class Flipping(InProcessLink):
        flip = False

        def _transmit_raw(self, apdu):
            r = bytearray(super()._transmit_raw(apdu))
            if self.flip and len(r) > 2:
                r[0] ^= 1
            return bytes(r)

    link = Flipping(card)
    host.select_pkcs15(link)
    channel = host.open_scp03(link, keys(profile), 0x33, HC)
    link.flip = True
    with pytest.raises(CardError, match="R-MAC"):
        host.select_fid(channel, host.EF_ODF, fcp=True)


def test_session_is_per_channel_and_ends_with_reset(profile):
    card = make(profile)
    link = InProcessLink(card)
    host.select_pkcs15(link)
    channel = host.open_scp03(link, keys(profile), 0x33, HC)
    assert link.transmit(bytes.fromhex("0070000001")) == (b"\x01", 0x9000)
    assert link.transmit(bytes.fromhex("01a4040c0ca000000063504b43532d3135"))[1] == 0x9000
    host.select_fid(channel, host.EF_ODF)
    assert link.transmit(bytes.fromhex("01a4000c025031"))[1] == 0x9000    # channel 1: no session
    assert link.transmit(bytes.fromhex("01b0000000"))[1] == 0x9000
    assert host.read_binary(channel, None)[:1] == b"\xa7"                  # channel 0 still open
    card.reset()
    with pytest.raises(CardError, match="6982"):
        host.read_binary(channel, None)


@pytest.mark.parametrize("data", [b"\xa7\x05\x30\x03\x04\x02", b"\x5f", b"\x30\x84\x00\x00\x00\x01\x00"])
def test_malformed_pkcs15_files_are_decode_errors(data):
    with pytest.raises(DecodeError):
        host.odf_dodf_path(data)
    with pytest.raises(DecodeError):
        host.dodf_bootstrap_path(data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cla=st.sampled_from([0x00, 0x04, 0x80, 0x84, 0x0C, 0x44, 0xE0]), ins=st.integers(0, 255),
       body=st.binary(max_size=40))
def test_random_commands_in_an_open_channel_never_break_the_card(profile, cla, ins, body):
    card = make_card(profile)
    link = InProcessLink(card)
    host.select_pkcs15(link)
    host.open_scp03(link, keys(profile), 0x33, HC)
    answer = card.process(bytes((cla, ins)) + body)
    assert len(answer) >= 2 and card.last_error is None
