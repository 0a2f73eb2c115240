"""SMS-PP data download on the ME (TS 31.111 §7.1.1) between the network's OTA sender and the
emulated UICC: PoR in the RP-ACK, PoR via a proactive SEND SHORT MESSAGE (SMS-SUBMIT), toolkit
busy, replays, and card answers the ME cannot use."""
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dmsim.cards import proactive
from dmsim.cards.emulated import make_card
from dmsim.cards.link import CardLink, InProcessLink
from dmsim.cards.profile import load_profile
from dmsim.cards.uicc import Reply
from dmsim.cards.uicc_files import USIM_AID, encode_imsi
from dmsim.devices.sms_pp import DownloadAnswer, download, is_data_download, message_class
from dmsim.network.sms.address import Address
from dmsim.network.sms.ota_sender import ota_sender_for
from dmsim.network.sms.smsc import ACK, RP_ERROR, SC_ADDRESS
from dmsim.network.sms.tpdu import SmsDeliver, SmsSubmit, decode_tpdu
from dmsim.network.sms.udh import encode_udh
from dmsim.base.errors import CardLinkError, DecodeError, ProtocolError

PROFILE = Path(__file__).resolve().parents[2] / "cards" / "profiles" / "example.yaml"
READ_IMSI = [bytes.fromhex("00a4040c10") + USIM_AID, bytes.fromhex("00a4000c026f07"), bytes.fromhex("00b0000009")]
SPI_RP_ACK = bytes.fromhex("1619")
SPI_SUBMIT = bytes.fromhex("1639")   # second octet b6: PoR via SMS-SUBMIT
OA = Address.parse("+4917099")


@pytest.fixture(params=[True, False], ids=["t0", "t1"])
def setup(request):
    profile = load_profile(PROFILE)
    o = profile.ota[0]
    card = make_card(profile, t0=request.param)
    sender = replace(ota_sender_for(o.tar, o.kic, o.kid, o.kic_key, o.kid_key), originator=OA)
    return profile, card, InProcessLink(card), sender


def submit_por(answer: DownloadAnswer) -> tuple[SmsSubmit, bytes]:
    """Return the SMS-SUBMIT of ``answer`` and its TP-UD with the header (what check_por reads)."""
    sms = decode_tpdu(answer.mo, mt=False)
    assert isinstance(sms, SmsSubmit)
    return sms, encode_udh(sms.ies) + sms.user_data


# --- the two PoR paths ------------------------------------------------------------------------

def test_por_in_the_rp_ack(setup):
    profile, _, link, sender = setup
    answer = download(link, sender.command_sms(READ_IMSI).encode(), SC_ADDRESS)
    assert answer.result.kind == ACK and answer.mo is None and answer.sw == 0x9000 and not answer.error
    por = sender.check_por(answer.result.user_data)
    assert por.status == 0 and por.data == b"\x03\x90\x00" + encode_imsi(profile.imsi)


def test_por_via_sms_submit(setup):
    profile, card, link, sender = setup
    sender.spi = SPI_SUBMIT
    answer = download(link, sender.command_sms(READ_IMSI).encode(), SC_ADDRESS)
    assert answer.result.kind == ACK and answer.result.user_data == b""
    assert answer.sw >> 8 == 0x91 and not answer.error
    sms, ud = submit_por(answer)
    assert (sms.da, sms.pid, sms.dcs, [ie.iei for ie in sms.ies]) == (OA, 0x7F, 0xF6, [0x71])
    por = sender.check_por(ud)
    assert por.status == 0 and por.data == b"\x03\x90\x00" + encode_imsi(profile.imsi)
    # the card took the ME's TERMINAL RESPONSE and is free again
    assert not proactive.busy(card)
    assert [(r.type, r.result) for r in card.state[proactive.STATE_RESPONSES]] == [(0x13, 0)]
    assert card.state["ota.last"].por_via_submit


def test_sms_submit_decodes_with_pycrate(setup):
    ts23040 = pytest.importorskip("pycrate_mobile.TS23040_SMS")
    _, _, link, sender = setup
    sender.spi = SPI_SUBMIT
    answer = download(link, sender.command_sms(READ_IMSI).encode(), SC_ADDRESS)
    pdu = ts23040.SMS_SUBMIT()
    pdu.from_bytes(answer.mo)
    assert pdu.to_bytes() == answer.mo
    assert pdu["TP_MTI"].get_val() == 1 and pdu["TP_UDHI"].get_val() == 1
    assert pdu["TP_DA"]["Num"].decode() == "4917099"
    assert pdu["TP_PID"].to_bytes() == b"\x7f" and pdu["TP_DCS"].to_bytes() == b"\xf6"
    assert pdu["TP_UD"]["UDH"]["UDH"].get_val() == [[0x71, 0, b""]]   # response packet IEI, no data
    _, ud = submit_por(answer)
    assert pdu["TP_UD"]["UDL"].get_val() == len(ud)
    assert pdu["TP_UD"]["UD"].get_val() == ud[3:]


@pytest.mark.parametrize("spi", [SPI_RP_ACK, SPI_SUBMIT], ids=["rp-ack", "sms-submit"])
def test_replayed_packet_answers_status_02_on_both_paths(setup, spi):
    _, _, link, sender = setup
    sender.spi = spi
    tpdu = sender.command_sms(READ_IMSI).encode()
    first, again = download(link, tpdu, SC_ADDRESS), download(link, tpdu, SC_ADDRESS)
    assert first.result.kind == again.result.kind == ACK
    if spi == SPI_SUBMIT:
        assert sender.check_por(submit_por(first)[1]).status == 0
        assert sender.check_por(submit_por(again)[1]).status == 0x02
    else:
        assert sender.check_por(first.result.user_data).status == 0
        assert sender.check_por(again.result.user_data).status == 0x02


def test_no_sc_address_is_fine(setup):
    _, _, link, sender = setup
    sender.spi = SPI_SUBMIT
    answer = download(link, sender.command_sms(READ_IMSI).encode())
    assert answer.result.kind == ACK and sender.check_por(submit_por(answer)[1]).status == 0


# --- toolkit busy and refusals ----------------------------------------------------------------

def test_toolkit_busy_is_rp_error_d4(setup):
    _, card, link, sender = setup
    sender.spi = SPI_SUBMIT
    tpdu = sender.command_sms(READ_IMSI).encode()
    # a proactive command left pending (not fetched) makes the toolkit busy
    proactive.queue(card, proactive.send_short_message(SmsSubmit(OA).encode(), number=9))
    answer = download(link, tpdu, SC_ADDRESS)
    assert answer.result.kind == RP_ERROR and answer.result.fcs == 0xD4 and answer.sw == 0x9300
    assert answer.result.cause_text() == "rp_error:111/fcs:0xd4" and answer.mo is None


def test_toolkit_busy_from_a_card_hook(setup):
    _, card, link, sender = setup
    card.add_hook(lambda c, ch, cmd: Reply(b"", 0x9300) if cmd.ins == 0xC2 else None)
    answer = download(link, sender.command_sms(READ_IMSI).encode(), SC_ADDRESS)
    assert (answer.result.kind, answer.result.fcs) == (RP_ERROR, 0xD4)


@pytest.mark.parametrize("sw, data, fcs", [(0x6F00, b"", 0xD5), (0x6A80, b"", 0xD5), (0x6D00, b"", 0xD5),
                                           (0x6282, b"\x01\x02", 0xD5), (0x6300, b"", 0xD5)])
def test_error_status_words_are_rp_error_d5(setup, sw, data, fcs):
    _, card, link, sender = setup
    card.t0 = False
    card.add_hook(lambda c, ch, cmd: Reply(data, sw) if cmd.ins == 0xC2 else None)
    answer = download(link, sender.command_sms(READ_IMSI).encode(), SC_ADDRESS)
    assert (answer.result.kind, answer.result.fcs, answer.sw) == (RP_ERROR, fcs, sw)
    assert answer.result.user_data == (data if sw >> 8 in (0x62, 0x63) else b"")


def test_not_a_data_download_is_refused():
    plain = SmsDeliver(OA, user_data=b"hi").encode()
    with pytest.raises(ProtocolError):
        download(InProcessLink(make_card(load_profile(PROFILE))), plain)
    with pytest.raises(DecodeError):
        download(InProcessLink(make_card(load_profile(PROFILE))), b"\x04")


@pytest.mark.parametrize("pid, dcs, expected", [(0x7F, 0xF6, True), (0x7F, 0x16, True), (0x7F, 0xF5, False),
                                                (0x7F, 0x04, False), (0x00, 0xF6, False), (0x7D, 0xF6, False)])
def test_is_data_download(pid, dcs, expected):
    sms = SmsDeliver(OA, pid, dcs, user_data=b"\x00")
    assert is_data_download(sms) is expected and is_data_download(sms.encode()) is expected
    assert is_data_download(b"") is False and is_data_download(b"\x01\x00") is False
    assert message_class(0x00) is None and message_class(0xF2) == 2


# --- proactive sessions the ME does not like --------------------------------------------------

def queue_on_envelope(card, *commands: bytes) -> None:
    """Make the card answer the next ENVELOPE by queuing ``commands`` (91 XX)."""
    def hook(c, ch, cmd):
        if cmd.ins != 0xC2:
            return None
        sw = None
        for command in commands:
            sw = proactive.queue(c, command)
        return Reply(b"", sw)
    card.add_hook(hook)


def test_other_commands_are_refused_and_only_one_submit_is_taken(setup):
    _, card, link, sender = setup
    first = SmsSubmit(OA, user_data=b"first").encode()
    other = proactive.send_short_message(first, number=1)
    other = other[:5] + b"\x21" + other[6:]            # type 21: DISPLAY TEXT
    queue_on_envelope(card, other, proactive.send_short_message(b"\x00\x01", number=2),
                      proactive.send_short_message(first, number=3),
                      proactive.send_short_message(SmsSubmit(OA, user_data=b"second").encode(), number=4))
    answer = download(link, sender.command_sms(READ_IMSI).encode(), SC_ADDRESS)
    assert answer.result.kind == ACK and answer.mo == first
    assert [r.result for r in card.state[proactive.STATE_RESPONSES]] == [0x30, 0x32, 0x00, 0x20]
    assert "0x21" in answer.error and not proactive.busy(card)


def test_endless_proactive_session_is_cut(setup):
    _, card, link, sender = setup
    queue_on_envelope(card, *[proactive.send_short_message(SmsSubmit(OA).encode(), number=n) for n in range(1, 8)])
    answer = download(link, sender.command_sms(READ_IMSI).encode(), SC_ADDRESS)
    assert answer.result.kind == ACK and answer.mo is not None and "more than" in answer.error


class ScriptedLink(CardLink):
    """A link answering raw R-APDUs from a script, then 6F00; records what it was sent."""

    def __init__(self, *answers: bytes):
        super().__init__()
        self.answers, self.sent = list(answers), []

    def _transmit_raw(self, apdu: bytes) -> bytes:
        self.sent.append(apdu)
        answer = self.answers.pop(0) if self.answers else b"\x6f\x00"
        if isinstance(answer, Exception):
            raise answer
        return answer


TPDU = SmsDeliver(OA, 0x7F, 0xF6, user_data=b"\x00" * 20).encode()


@pytest.mark.parametrize("answers, kind, fcs", [
    ((b"\x90",), RP_ERROR, 0xD5),                                  # one byte: no SW
    ((b"",), RP_ERROR, 0xD5),
    ((CardLinkError("reader gone"),), RP_ERROR, 0xD5),
    ((b"\x61\x05",) * 70, RP_ERROR, 0xD5),                         # endless 61XX
    ((b"\x91\x10", b"\x90\x00"), ACK, None),                       # FETCH answers no command
    ((b"\x91\x10", b"\xd0\x03\x81\x01\x01\x90\x00"), ACK, None),   # FETCH answers garbage
    ((b"\x91\x10", b"\x6f\x00"), ACK, None),                       # FETCH refused
    ((b"\x91\x10", b"\x01"), ACK, None),                           # FETCH answer too short
])
def test_garbage_card_answers_never_crash(answers, kind, fcs):
    answer = download(ScriptedLink(*answers), TPDU, SC_ADDRESS)
    assert answer.result.kind == kind and answer.result.fcs == fcs and answer.mo is None
    assert answer.error


def test_terminal_response_refused_still_sends_the_submit():
    mo = SmsSubmit(OA, user_data=b"x").encode()
    command = proactive.send_short_message(mo)
    link = ScriptedLink(b"\x91" + bytes([len(command)]), command + b"\x90\x00", b"\x6a\x80")
    answer = download(link, TPDU)
    assert answer.result.kind == ACK and answer.mo == mo and "TERMINAL RESPONSE" in answer.error
    assert link.sent[1] == bytes.fromhex("80120000") + bytes([len(command)]) and link.sent[2][:2] == b"\x80\x14"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(max_size=40), min_size=1, max_size=4))
def test_fuzz_card_answers(answers):
    answer = download(ScriptedLink(*answers), TPDU, SC_ADDRESS)
    assert answer.result.kind in (ACK, RP_ERROR)
    if answer.mo is not None:
        assert isinstance(decode_tpdu(answer.mo, mt=False), SmsSubmit)
