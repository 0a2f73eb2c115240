"""sim/real/modem_at.py over a real pty against sim/real/virtual_modem.py (and sim/cli/modem.py):
set-up with CNMI fallbacks, AT+CMGS, +CMT/+CMTI reception and +CNMA, AT+CSIM to the emulated
card, typed errors, echo, URCs mid-response, slow and silent modems."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dmsim.cards.emulated import make_card
from dmsim.cards.profile import load_profile
from dmsim.devices.card_host import read_imsi
from dmsim.sim.real.modem_at import AtModem, CsimLink, sc_address
from dmsim.sim.real.virtual_modem import Misbehaviour, VirtualModem
from dmsim.network.sms.address import Address
from dmsim.network.sms.tpdu import SmsDeliver, SmsSubmit
from dmsim.base.errors import ModemError, ModemTimeoutError, ProtocolError

PROFILE = Path(__file__).resolve().parents[3] / "cards" / "profiles" / "example.yaml"
SUBMIT = SmsSubmit(Address.parse("+491701234567"), user_data=b"hello").encode()
DELIVER = SmsDeliver(Address.parse("+4912345"), user_data=b"push").encode()
VERIFY_1234 = bytes.fromhex("0020000108") + b"1234" + b"\xff" * 4


@pytest.fixture
def rig(request):
    """Return (virtual modem, driver) on a fresh pty; parametrise with a dict of VirtualModem kwargs."""
    kwargs = dict(getattr(request, "param", {}))
    timeout = kwargs.pop("timeout", 2.0)
    with VirtualModem(**kwargs) as vm:
        modem = AtModem(vm.path, timeout=timeout)
        try:
            yield vm, modem
        finally:
            modem.close()


@pytest.mark.parametrize("rig", [{"behaviour": Misbehaviour(cnmi_allowed=((0, 1, 2), (0, 1), (0,), (0,), (0,)))}],
                         indirect=True)
def test_init_falls_back_when_cnmi_options_are_refused_and_reads_stored_sms(rig):
    vm, modem = rig
    assert modem.init() == (2, 1, 0, 0, 0)
    assert vm.core.cnmi == (2, 1, 0, 0, 0) and vm.core.csms == 1 and not vm.core.echo
    vm.inject_sms(DELIVER, bytes.fromhex("0491947106"))     # stored, announced by +CMTI
    got = modem.receive_sms(timeout=2)
    assert got.tpdu == DELIVER and got.sca == bytes.fromhex("0491947106") and got.sms.user_data == b"push"
    assert vm.core.stored == {} and vm.core.acks == []        # read with +CMGR, deleted, no +CNMA


def test_init_fails_when_every_cnmi_option_is_refused():
    with VirtualModem(behaviour=Misbehaviour(cnmi_allowed=((0,), (0,), (0,), (0,), (0,)))) as vm, \
            AtModem(vm.path, timeout=2) as modem:
        with pytest.raises(ModemError, match="every \\+CNMI option refused"):
            modem.init()


@pytest.mark.parametrize("rig", [{"submit": lambda tpdu, sca: 42}], indirect=True)
def test_send_pdu_returns_the_message_reference(rig):
    vm, modem = rig
    modem.init()
    assert modem.send_pdu(SUBMIT) == 42
    assert modem.send_pdu(SUBMIT, Address.parse("+491710760000")) == 42
    assert vm.core.submitted[0] == (b"\x00", SUBMIT, 42)
    assert vm.core.submitted[1][0] == bytes.fromhex("0791947101670000")
    assert sc_address(Address.parse("+491710760000")) == bytes.fromhex("0791947101670000")


def test_send_pdu_without_submit_handler_counts_mr(rig):
    _, modem = rig
    modem.init()
    assert [modem.send_pdu(SUBMIT) for _ in range(3)] == [0, 1, 2]


def test_incoming_cmt_is_decoded_and_acknowledged(rig):
    vm, modem = rig
    modem.init()
    assert modem.receive_sms(timeout=0.05) is None
    vm.inject_sms(DELIVER)
    got = modem.receive_sms(timeout=2)
    assert got.sms.oa == Address.parse("+4912345") and got.sca == b"\x00"
    assert vm.core.acks == [0] and vm.core.awaiting_ack == 0


def test_undecodable_cmt_is_acknowledged_negatively(rig):
    vm, modem = rig
    modem.init()
    vm.inject_sms(bytes.fromhex("02000000"))    # TP-MTI 10: an SMS-STATUS-REPORT, not decoded here
    assert modem.receive_sms(timeout=0.3) is None
    assert vm.core.acks == [2] and len(modem.rejected) == 1


@pytest.mark.parametrize("rig", [{"card": make_card(load_profile(PROFILE))}], indirect=True)
def test_csim_reads_ef_imsi_from_the_emulated_card(rig):
    vm, modem = rig
    modem.init()
    assert modem.csim(VERIFY_1234)[-2:] == b"\x90\x00"
    assert read_imsi(CsimLink(modem), pin="1234") == load_profile(PROFILE).imsi
    # a +CMT arriving in the middle of a +CSIM answer is read and acknowledged after it
    vm.inject_sms(DELIVER, mid_response=True)
    assert modem.csim(bytes.fromhex("00A40004023F00"))[-2] in (0x61, 0x90)
    assert modem.receive_sms().tpdu == DELIVER and vm.core.acks == [0]


def test_csim_without_a_card_is_a_cme_error(rig):
    _, modem = rig
    modem.init()
    with pytest.raises(ModemError) as err:
        modem.csim(VERIFY_1234)
    assert (err.value.result, err.value.code) == ("+CME ERROR", 10)


def _refuse(tpdu, sca):
    raise ModemError("AT+CMGS", "+CMS ERROR", 38)


@pytest.mark.parametrize("rig", [{"submit": _refuse}], indirect=True)
def test_cms_error_surfaces_as_typed_error(rig):
    _, modem = rig
    modem.init()
    with pytest.raises(ModemError) as err:
        modem.send_pdu(SUBMIT)
    assert (err.value.result, err.value.code, err.value.line) == ("+CMS ERROR", 38, "+CMS ERROR: 38")
    assert err.value.command == f"AT+CMGS={len(SUBMIT)}"
    with pytest.raises(ModemError) as err:                   # the modem's own check of the PDU length
        modem.send_pdu(b"\x01")
    assert err.value.code == 304
    assert modem.command("AT") == []                          # still in step


@pytest.mark.parametrize("rig", [{"behaviour": Misbehaviour(echo=True, dribble=True, mid_response_urcs=("RING",)),
                                  "card": make_card(load_profile(PROFILE)), "submit": lambda t, s: 7}],
                         indirect=True)
def test_echo_dribbled_answers_and_urcs_mid_response(rig):
    vm, modem = rig
    assert modem.command("AT+CMEE=1") == []                   # echo still on
    assert modem.command("ATI") == ["dmsim virtual modem"]    # RING in the middle is not a response line
    assert modem.send_pdu(SUBMIT) == 7                        # echo of the command and of the PDU
    modem.init()
    assert modem.csim(VERIFY_1234)[-2:] == b"\x90\x00"
    assert {u.name for u in modem.urcs} == {"RING"} and len(modem.urcs) >= 5
    vm.core.behaviour.dribble = False
    vm.core.echo = True                                       # as after an ATZ
    assert modem.command("AT") == []


@pytest.mark.parametrize("rig", [{"behaviour": Misbehaviour(silent=True), "timeout": 0.3}], indirect=True)
def test_timeout_when_the_modem_is_silent(rig):
    _, modem = rig
    start = time.monotonic()
    with pytest.raises(ModemTimeoutError) as err:
        modem.init()
    assert 0.3 <= time.monotonic() - start < 1.5
    assert err.value.command == "ATE0" and err.value.result == "timeout"
    assert isinstance(err.value, ModemError)


@pytest.mark.parametrize("rig", [{"behaviour": Misbehaviour(delay=0.15)}], indirect=True)
def test_slow_modem_within_and_beyond_the_timeout(rig):
    _, modem = rig
    assert modem.command("AT") == []
    with pytest.raises(ModemTimeoutError):
        modem.command("ATI", timeout=0.05)
    # the late answer to ATI is discarded, not taken for the next command's
    assert modem.command("AT+CMEE?") == ["+CMEE: 0"]


def test_bad_port_is_a_protocol_error(tmp_path):
    with pytest.raises(ProtocolError, match="cannot open"):
        AtModem(str(tmp_path / "no-such-tty"))


def test_cli_modem_serve(tmp_path):
    link = tmp_path / "modem"
    serve = subprocess.Popen([sys.executable, "-m", "dmsim.sim.cli.modem", "serve", "--link", str(link),
                              "--profile", str(PROFILE)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        info = json.loads(serve.stdout.readline())
        assert info["link"] == str(link) and os.readlink(link) == info["pty"]
        assert info["imsi"] == load_profile(PROFILE).imsi
        with AtModem(str(link), timeout=2) as modem:
            modem.init()
            assert modem.send_pdu(SUBMIT) == 0
            assert read_imsi(CsimLink(modem), pin="1234") == info["imsi"]
        record = json.loads(serve.stdout.readline())
        assert record == {"event": "submit", "mr": 0, "sca": "00", "tpdu": SUBMIT.hex(), "da": "+491701234567"}
        serve.send_signal(signal.SIGINT)
        assert serve.wait(timeout=10) == 0, serve.stderr.read()
        assert not os.path.lexists(link)
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()


def test_cli_modem_serve_refuses_a_link_over_a_file(tmp_path):
    from click.testing import CliRunner

    from dmsim.sim.cli.modem import modem
    path = tmp_path / "file"
    path.write_text("x")
    result = CliRunner().invoke(modem, ["serve", "--link", str(path)])
    assert result.exit_code == 2 and "not a symlink" in result.output
