"""The OTA sender (network side of TS 102 225) against the emulated UICC: a command packet in an
SMS-DELIVER, through ENVELOPE SMS-PP download, and the PoR checked back."""
from pathlib import Path

import pytest

from dmsim.cards.emulated import make_card
from dmsim.cards.envelope import build_envelope
from dmsim.cards.link import InProcessLink
from dmsim.cards.profile import load_profile
from dmsim.cards.uicc_files import USIM_AID, encode_imsi
from dmsim.network.sms.ota_sender import ota_sender_for
from dmsim.network.sms.tpdu import decode_tpdu
from dmsim.base.errors import SecuredPacketError

PROFILE = Path(__file__).resolve().parents[2] / "cards" / "profiles" / "example.yaml"
SELECT_IMSI = [bytes.fromhex("00a4040c10") + USIM_AID, bytes.fromhex("00a4000c026f07"), bytes.fromhex("00b0000009")]


@pytest.fixture
def setup():
    profile = load_profile(PROFILE)
    o = profile.ota[0]
    return profile, InProcessLink(make_card(profile)), ota_sender_for(o.tar, o.kic, o.kid, o.kic_key, o.kid_key)


def send(link, sms):
    data, sw = link.transmit(build_envelope(sms))
    return data, sw


def test_command_packet_sms_is_a_class2_usim_download(setup):
    _, _, sender = setup
    sms = sender.command_sms(SELECT_IMSI)
    again = decode_tpdu(sms.encode(), mt=True)
    assert (again.pid, again.dcs, again.ies[0].iei) == (0x7F, 0xF6, 0x70)
    assert sender.counter == 1


def test_por_reports_the_script_result_and_verifies(setup):
    profile, link, sender = setup
    data, sw = send(link, sender.command_sms(SELECT_IMSI))
    assert sw == 0x9000
    por = sender.check_por(data)
    assert por.status == 0
    assert por.data[0] == len(SELECT_IMSI)               # all commands executed
    assert por.data[1:] == b"\x90\x00" + encode_imsi(profile.imsi)  # last SW, then the EF_IMSI bytes


def test_replayed_packet_is_refused_with_status_02(setup):
    _, link, sender = setup
    sms = sender.command_sms(SELECT_IMSI)
    sender.check_por(send(link, sms)[0])
    assert sender.check_por(send(link, sms)[0]).status == 0x02


def test_a_por_with_a_bad_cc_is_refused(setup):
    _, link, sender = setup
    data, _ = send(link, sender.command_sms(SELECT_IMSI))
    tampered = data[:-1] + bytes([data[-1] ^ 1])
    with pytest.raises(SecuredPacketError):
        sender.check_por(tampered)
