"""The ME side of the LwM2M SMS binding terminated on the UICC (seed 004 §7.3) over a CardLink to
the emulated card: a server's secured SMS deciphered by the card for the client, the client's
CoAP secured by the card and checked by the server, silent discards, what never reaches the card."""
from pathlib import Path

import pytest

from dmsim.cards import lwm2m_applet, proactive
from dmsim.cards.emulated import make_card
from dmsim.cards.link import InProcessLink
from dmsim.cards.profile import load_profile
from dmsim.cards.scp80 import Keyset, encode_command
from dmsim.devices.lwm2m_sms_uicc import (UiccDelivery, lwm2m_verdict, protect_apdu, uicc_protect,
                                          uicc_receive, uicc_submit)
from dmsim.network.lwm2m.sms_binding import (
    COMMAND_PACKET_IE, Direction, SmsBindingReceiver, SmsBindingSender, Termination)
from dmsim.network.lwm2m.sms_security import Discarded, Reason, SmsBindingKeys, SmsKeyParameters
from dmsim.network.sms.address import Address
from dmsim.network.sms.smsc import ACK, FCS_SAT_BUSY, RP_ERROR, SC_ADDRESS, AttemptResult
from dmsim.network.sms.tpdu import SmsDeliver, SmsSubmit, decode_tpdu
from dmsim.base.errors import CardError, ProtocolError

h = bytes.fromhex
PROFILE = Path(__file__).resolve().parents[2] / "cards" / "profiles" / "example.yaml"
TAR = h("bfff42")
PARAMS = SmsKeyParameters(0x22, 0x22, 0x16, TAR)
KEYS = SmsBindingKeys(h("000102030405060708090a0b0c0d0e0f"), h("f0e0d0c0b0a090807060504030201000"))
SERVER = Address.parse("+491720000001")
READ = h("4401a1b2c3d4e5f6b2333311ff")                       # CON GET /3/0
CONTENT = h("6445a1b2c3d4e5f6c16eff") + b'{"bn":"/3/0/","e":[{"n":"0","sv":"dmsim"}]}'


class Traced:
    """A card, its link and every C-APDU the ME sent."""

    def __init__(self, t0: bool = True, personalised: bool = True):
        self.card = make_card(load_profile(PROFILE), t0=t0)
        if personalised:
            lwm2m_applet.personalise(self.card, PARAMS, KEYS)
        self.apdus: list[bytes] = []
        self.link = InProcessLink(self.card, trace=lambda c, r, s: self.apdus.append(c))


@pytest.fixture(params=[True, False], ids=["t0", "t1"])
def me(request):
    return Traced(request.param)


def server_sender(**kw) -> SmsBindingSender:
    return SmsBindingSender(PARAMS, KEYS, Termination.UICC, Direction.MT, SERVER, **kw)


def server_receiver() -> SmsBindingReceiver:
    return SmsBindingReceiver(PARAMS, KEYS, Termination.UICC, Direction.MO)


def silent(answer: UiccDelivery) -> bool:
    """Return whether the card took the SMS and gave nothing: a bare RP-ACK, no plaintext."""
    return (answer.result == AttemptResult.ack() and answer.coap is None and answer.refused is None
            and answer.sw == 0x9000)


# --- round trips ---------------------------------------------------------------------------------

def test_server_to_card_to_client(me):
    sender = server_sender()
    answer = uicc_receive(me.link, sender.send(READ), SC_ADDRESS)
    assert answer.coap == READ and answer.refused is None and answer.sw == 0x9000 and not answer.error
    # the plaintext never goes back to the network in the SMS-DELIVER-REPORT
    assert answer.result == AttemptResult.ack() and answer.result.user_data == b""
    assert me.apdus[0][:2] == h("80c2") and lwm2m_applet.keyset(me.card, TAR).counter == 1


def test_client_to_card_to_server(me):
    receiver = server_receiver()
    for mr, message in enumerate((CONTENT, READ, CONTENT)):
        tpdu = uicc_submit(me.link, TAR, message, SERVER, mr=mr)
        sms = decode_tpdu(tpdu, mt=False)
        assert isinstance(sms, SmsSubmit)
        assert (sms.da, sms.mr, sms.pid, sms.dcs, sms.ies) == (SERVER, mr, 0x7F, 0xF6, (COMMAND_PACKET_IE,))
        assert receiver.receive(tpdu) == message
    assert receiver.counter == 3 == lwm2m_applet.keyset(me.card, TAR).mo_counter
    assert all(apdu[:4] == h("804c0042") for apdu in me.apdus if apdu[1] != 0xC0)


def test_a_request_and_its_response():
    me, sender, receiver = Traced(), server_sender(), server_receiver()
    request = uicc_receive(me.link, sender.send(READ)).coap
    assert request == READ
    assert receiver.receive(uicc_submit(me.link, TAR, CONTENT, SERVER)) == CONTENT


def test_mo_packets_out_of_order_are_refused_by_the_server():
    me, receiver = Traced(), server_receiver()
    first, second = (uicc_protect(me.link, TAR, m) for m in (READ, CONTENT))
    assert receiver.receive_fields(0x7F, 0xF6, (COMMAND_PACKET_IE,), second) == CONTENT
    late = receiver.receive_fields(0x7F, 0xF6, (COMMAND_PACKET_IE,), first)
    assert isinstance(late, Discarded) and late.reason == Reason.COUNTER_LOWER


# --- silent discards by the card -----------------------------------------------------------------

def test_replayed_sms_is_discarded(me):
    tpdu = server_sender().send(READ)
    assert uicc_receive(me.link, tpdu).coap == READ
    assert silent(uicc_receive(me.link, tpdu))
    assert lwm2m_applet.keyset(me.card, TAR).counter == 1
    assert me.card.state[lwm2m_applet.STATE_LAST].reason == Reason.COUNTER_REPLAYED


def test_wrong_kid_is_discarded(me):
    forged = SmsBindingSender(SmsKeyParameters(0x22, 0x12, 0x16, TAR), KEYS, Termination.UICC, Direction.MT, SERVER)
    assert silent(uicc_receive(me.link, forged.send(READ)))
    assert me.card.state[lwm2m_applet.STATE_LAST].reason == Reason.KID_MISMATCH
    assert lwm2m_applet.keyset(me.card, TAR).counter == 0
    assert uicc_receive(me.link, server_sender().send(READ)).coap == READ


def test_forged_sms_gets_the_same_answer_as_a_replay(me):
    forged = encode_command(h("1609"), 0x22, 0x22, TAR, 1, READ, Keyset(0x22, 0x22, KEYS.kic_key, bytes(16)))
    tpdu = SmsDeliver(SERVER, 0x7F, 0xF6, bytes(7), forged, (COMMAND_PACKET_IE,)).encode()
    answer = uicc_receive(me.link, tpdu)
    assert silent(answer) and me.card.state[lwm2m_applet.STATE_LAST].reason == Reason.BAD_MAC


# --- what never reaches the card -----------------------------------------------------------------

def _deliver(packet: bytes, *, pid: int = 0x7F, dcs: int = 0xF6, ies=(COMMAND_PACKET_IE,)) -> bytes:
    return SmsDeliver(SERVER, pid, dcs, bytes(7), packet, ies).encode()


@pytest.mark.parametrize("tpdu, reason", [
    (SmsBindingSender(PARAMS, KEYS, Termination.DEVICE, Direction.MT, SERVER).send(READ), Reason.PID),
    (_deliver(b"\x00" * 30, dcs=0xF5), Reason.MESSAGE_CLASS),
    (_deliver(b"\x00" * 30, ies=()), Reason.UDH),
    (_deliver(encode_command(h("1609"), 0x12, 0x12, h("b00010"), 1, READ,
                             Keyset(0x12, 0x12, bytes(16), bytes(16)))), Reason.TAR_RANGE),
    (_deliver(h("0010")), Reason.TAR_RANGE),                     # too short to name a TAR
    (h("0400"), Reason.MALFORMED),
    (SmsSubmit(SERVER, 0x7F, 0xF6, user_data=b"x").encode(), Reason.MALFORMED),
], ids=["class1-pid7d", "class1-pid7f", "no-cpi", "ota-tar", "short", "truncated", "submit"])
def test_not_given_to_the_card(me, tpdu, reason):
    answer = uicc_receive(me.link, tpdu, SC_ADDRESS)
    assert isinstance(answer.refused, Discarded) and answer.refused.reason == reason
    assert lwm2m_verdict(tpdu) == answer.refused
    assert answer.coap is None and answer.result == AttemptResult.ack() and answer.sw is None
    assert me.apdus == [] and lwm2m_applet.keyset(me.card, TAR).counter == 0


def test_busy_toolkit_is_an_rp_error_and_the_re_stays():
    me = Traced()
    proactive.queue(me.card, proactive.send_short_message(SmsSubmit(SERVER).encode()))
    tpdu = server_sender().send(READ)
    answer = uicc_receive(me.link, tpdu)
    assert answer.result.kind == RP_ERROR and answer.result.fcs == FCS_SAT_BUSY
    assert answer.coap is None and answer.sw == 0x9300 and answer.result.user_data == b""
    assert lwm2m_applet.keyset(me.card, TAR).counter == 0
    me.card.state[proactive.STATE_QUEUE].clear()
    retried = uicc_receive(me.link, tpdu)                        # the SMSC's retry
    assert retried.result.kind == ACK and retried.coap == READ


# --- MO refusals ---------------------------------------------------------------------------------

@pytest.mark.parametrize("tar, coap, sw", [
    (h("bfff43"), READ, 0x6A88),
    (TAR, bytes(99), 0x6700),
], ids=["no-keyset", "too-long"])
def test_card_refuses_to_protect(me, tar, coap, sw):
    with pytest.raises(CardError) as err:
        uicc_protect(me.link, tar, coap)
    assert err.value.sw == sw and lwm2m_applet.keyset(me.card, TAR).mo_counter == 0


def test_no_applet_on_the_card():
    me = Traced(personalised=False)
    with pytest.raises(CardError) as err:
        uicc_submit(me.link, TAR, READ, SERVER)
    assert err.value.sw == 0x6D00
    assert silent(uicc_receive(me.link, server_sender().send(READ)))


@pytest.mark.parametrize("tar, coap", [(h("b00010"), READ), (TAR, b""), (TAR, bytes(256))])
def test_protect_apdu_refuses_what_the_card_cannot_take(tar, coap):
    with pytest.raises(ProtocolError):
        protect_apdu(tar, coap)


def test_protect_apdu_coding():
    assert protect_apdu(TAR, READ) == h("804c0042") + bytes([len(READ)]) + READ + b"\x00"
