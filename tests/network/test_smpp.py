"""SMPP 3.4 codec and the SMSC-side session: round trips, every error with its offset, fuzz."""
import json
import struct

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from dmsim.network.sms import smpp
from dmsim.network.sms.smpp_session import BindThrottle, Malformed, SmppSession, State
from dmsim.sim.cli.smsc import decode_smpp_cmd
from dmsim.base.errors import DecodeError, ProtocolError

WAP_PUSH = bytes.fromhex("0605040b8423f0") + b"\x01\x06\x03\xc4\xaf\x87"
SUBMIT = smpp.SubmitSm(sequence=7, source_addr="123", destination_addr="+3161", esm_class=0x40,
                       data_coding=4, registered_delivery=1, short_message=WAP_PUSH)
SUBMIT_HEX = ("00000036" "00000004" "00000000" "00000007"
              "00" "0000" "31323300" "0000" "2b3331363100" "40" "00" "00" "00" "00" "01" "00" "04" "00"
              "0d" + WAP_PUSH.hex())


def header(length, command_id, status=0, seq=1):
    return struct.pack(">IIII", length, command_id, status, seq)


# --- codec: known encodings and round trips --------------------------------------------------

def test_submit_sm_known_encoding():
    assert smpp.encode_pdu(SUBMIT).hex() == SUBMIT_HEX
    pdu = smpp.decode_pdu(bytes.fromhex(SUBMIT_HEX))
    assert pdu == SUBMIT and pdu.udhi and pdu.message == WAP_PUSH


def test_bind_transceiver_known_encoding():
    pdu = smpp.BindTransceiver(sequence=1, system_id="esme", password="secret", system_type="WWW")
    raw = smpp.encode_pdu(pdu)
    assert raw.hex() == ("00000024" "00000009" "00000000" "00000001" "65736d6500" "73656372657400"
                         "57575700" "34" "00" "00" "00")
    assert smpp.decode_pdu(raw) == pdu and pdu.mode == "trx"


@pytest.mark.parametrize("pdu", [
    smpp.GenericNack(sequence=3, status=smpp.ESME_RINVCMDID),
    smpp.BindTransmitter(sequence=1, system_id="a", password="b", addr_ton=1, addr_npi=1, address_range="^1"),
    smpp.BindReceiver(sequence=2, system_id="a" * 15, password="p" * 8, system_type="s" * 12),
    smpp.BindTransceiver(sequence=0x7FFFFFFF),
    smpp.BindTransmitterResp(sequence=1, system_id="dmsim"),
    smpp.BindReceiverResp(sequence=1, system_id="dmsim", tlvs=(smpp.Tlv(0x0210, b"\x34"),)),
    smpp.BindTransceiverResp(sequence=1, status=smpp.ESME_RINVPASWD),
    smpp.BindTransceiverResp(sequence=1, status=smpp.ESME_RINVPASWD, system_id="dmsim"),
    SUBMIT,
    smpp.SubmitSm(sequence=2, schedule_delivery_time="260101120000000+",
                  validity_period="000001000000000R", tlvs=(smpp.Tlv(0x0424, b"x" * 300),)),
    smpp.DeliverSm(sequence=9, esm_class=0x04, short_message=b"id:1 stat:DELIVRD"),
    smpp.SubmitSmResp(sequence=7, message_id="m" * 64),
    smpp.SubmitSmResp(sequence=7, status=smpp.ESME_RSUBMITFAIL),
    smpp.DeliverSmResp(sequence=9),
    smpp.Unbind(sequence=4), smpp.UnbindResp(sequence=4),
    smpp.EnquireLink(sequence=5), smpp.EnquireLinkResp(sequence=5),
])
def test_round_trip(pdu):
    raw = smpp.encode_pdu(pdu)
    assert struct.unpack(">I", raw[:4])[0] == len(raw)
    assert smpp.decode_pdu(raw) == pdu
    assert smpp.decode_body(pdu.command_id, raw[16:], status=pdu.status, sequence=pdu.sequence) == pdu


def test_enquire_link_is_a_bare_header():
    assert smpp.encode_pdu(smpp.EnquireLink(sequence=1)).hex() == "00000010000000150000000000000001"


def test_error_resp_omits_its_body_and_absent_bodies_decode():
    assert smpp.encode_pdu(smpp.SubmitSmResp(sequence=1, status=smpp.ESME_RSYSERR)) == \
        header(16, smpp.SUBMIT_SM_RESP, smpp.ESME_RSYSERR)
    assert smpp.decode_pdu(header(16, smpp.DELIVER_SM_RESP)) == smpp.DeliverSmResp(sequence=1)
    assert smpp.encode_pdu(smpp.DeliverSmResp(sequence=1)).endswith(b"\0")  # status 0: NULL message_id


def test_message_payload_and_tlvs_kept_raw():
    tlvs = (smpp.Tlv(0x1403, b"\x01\x02"), smpp.Tlv(smpp.TAG_MESSAGE_PAYLOAD, b"long" * 100),
            smpp.Tlv(0x0424, b"second"))
    pdu = smpp.decode_pdu(smpp.encode_pdu(smpp.SubmitSm(sequence=1, tlvs=tlvs)))
    assert pdu.tlvs == tlvs and pdu.message == b"long" * 100 and pdu.tlv(0x9999) is None


def test_names():
    assert smpp.status_name(smpp.ESME_RINVBNDSTS) == "ESME_RINVBNDSTS"
    assert smpp.status_name(0x1234) == "0x00001234"
    assert smpp.command_name(smpp.BIND_RECEIVER_RESP) == "bind_receiver_resp"
    assert smpp.command_name(0x103) == "0x00000103"


# --- codec: errors with offsets --------------------------------------------------------------

def _with_body(command_id, body, status=0):
    return header(16 + len(body), command_id, status) + body


SM_HEAD = b"\0" + b"\0\0" + b"1\0" + b"\0\0" + b"2\0" + b"\0\0\0"  # service_type .. priority_flag: 12 octets


@pytest.mark.parametrize("raw, offset, fragment", [
    (b"", 0, "header truncated"),
    (bytes(15), 15, "header truncated"),
    (header(15, 0x15), 0, "shorter than the header"),
    (header(20, 0x15), 16, "PDU truncated"),
    (header(16, 0x15) + b"x", 16, "after command_length"),
    (header(16, 0x103), 4, "unknown command_id"),
    (_with_body(0x15, b"\0"), 16, "after the enquire_link body"),
    (_with_body(smpp.BIND_TRANSMITTER, b"x" * 16), 16, "system_id: no NUL"),
    (_with_body(smpp.BIND_TRANSMITTER, b"sys\0" + b"p" * 9), 20, "password: no NUL"),
    (_with_body(smpp.BIND_TRANSMITTER, b"sys\0pw\0\0"), 24, "interface_version: body ends"),
    (_with_body(smpp.BIND_TRANSMITTER, b"sys\0pw\0\0\x34\0\0\0x"), 28, "octets after the bind_transmitter"),
    (_with_body(smpp.SUBMIT_SM, SM_HEAD + b"2601011200+\0"), 28, "schedule_delivery_time"),
    (_with_body(smpp.SUBMIT_SM, SM_HEAD + b"260101120000000X\0"), 28, "not an SMPP time"),
    (_with_body(smpp.SUBMIT_SM, SM_HEAD + b"\0\0\0\0\0\0\x05abc"), 35, "sm_length says 5"),
    (_with_body(smpp.SUBMIT_SM, SM_HEAD + b"\0\0\0\0\0\0\xff" + bytes(255)), 34, "sm_length 255"),
    (_with_body(smpp.SUBMIT_SM, SM_HEAD + b"\0\0\0\0\0\0\0\x04\x24"), 35, "optional parameter header truncated"),
    (_with_body(smpp.SUBMIT_SM, SM_HEAD + b"\0\0\0\0\0\0\0" + b"\x14\x03\x00\x01\x01"
                + b"\x04\x24\x00\x05ab"), 40, "0x0424 says 5 octets"),
    (_with_body(smpp.SUBMIT_SM, SM_HEAD + b"\0\0\0\0\0\0\x01a" + b"\x14\x03\x00\x00\x04\x24\x00\x01b"), 40,
     "both present"),
    (_with_body(smpp.SUBMIT_SM_RESP, b"abc"), 16, "message_id: no NUL"),
])
def test_decode_errors_name_the_offset(raw, offset, fragment):
    with pytest.raises(DecodeError) as info:
        smpp.decode_pdu(raw)
    assert info.value.what == "smpp" and info.value.offset == offset
    assert fragment in str(info.value)


def test_decode_body_offsets_count_from_the_body():
    with pytest.raises(DecodeError) as info:
        smpp.decode_body(smpp.BIND_TRANSMITTER, b"sys\0" + b"p" * 9)
    assert info.value.offset == 4
    with pytest.raises(DecodeError) as info:
        smpp.decode_body(0x103, b"")
    assert info.value.offset == 0


@pytest.mark.parametrize("pdu, fragment", [
    (smpp.BindTransmitter(system_id="x" * 16), "system_id"),
    (smpp.BindTransmitter(password="p\0"), "password"),
    (smpp.BindTransmitter(system_id="é€"), "Latin-1"),
    (smpp.BindTransmitter(interface_version=256), "interface_version"),
    (smpp.SubmitSm(short_message=bytes(255)), "message_payload"),
    (smpp.SubmitSm(validity_period="1h"), "validity_period"),
    (smpp.SubmitSm(short_message=b"a", tlvs=(smpp.Tlv(0x0424, b"b"),)), "both set"),
    (smpp.SubmitSm(tlvs=(smpp.Tlv(0x10000, b""),)), "TLV"),
    (smpp.EnquireLink(sequence=-1), "sequence"),
])
def test_encode_refuses_what_does_not_fit(pdu, fragment):
    with pytest.raises(ProtocolError, match=fragment):
        smpp.encode_pdu(pdu)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_fuzz_decode_raises_only_decode_error(data):
    try:
        smpp.decode_pdu(data)
    except DecodeError:
        pass


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(sorted(smpp.PDU_CLASSES)), st.integers(0, 0xFF), st.binary(max_size=120))
def test_fuzz_bodies_decode_or_fail_cleanly_and_reencode(command_id, status, body):
    raw = header(16 + len(body), command_id, status, 42) + body
    try:
        pdu = smpp.decode_pdu(raw)
    except DecodeError as exc:
        assert 16 <= exc.offset <= len(raw)
        return
    assert smpp.decode_pdu(smpp.encode_pdu(pdu)) == pdu


_cstr = st.text(alphabet=st.characters(min_codepoint=1, max_codepoint=255), max_size=20)


@settings(max_examples=150, deadline=None)
@given(st.builds(smpp.SubmitSm, sequence=st.integers(1, 0x7FFFFFFF), source_addr=_cstr, destination_addr=_cstr,
                 esm_class=st.integers(0, 255), protocol_id=st.integers(0, 255), data_coding=st.integers(0, 255),
                 registered_delivery=st.integers(0, 255), short_message=st.binary(max_size=254),
                 tlvs=st.lists(st.builds(smpp.Tlv, st.integers(0, 0x0423), st.binary(max_size=30)),
                               max_size=3).map(tuple)))
def test_fuzz_submit_sm_round_trip(pdu):
    assert smpp.decode_pdu(smpp.encode_pdu(pdu)) == pdu


# --- delivery receipts -----------------------------------------------------------------------

def test_delivery_receipt():
    text = smpp.SubmitSm(source_addr="111", destination_addr="222", short_message=b"hello there, this is long")
    receipt = smpp.delivery_receipt(text, "0000000042", submit_date="2601011200", done_date="2601011201")
    assert (receipt.source_addr, receipt.destination_addr, receipt.esm_class) == ("222", "111", 0x04)
    assert receipt.short_message == (b"id:0000000042 sub:001 dlvrd:001 submit date:2601011200 "
                                     b"done date:2601011201 stat:DELIVRD err:000 text:hello there, this is")
    assert receipt.tlv(smpp.TAG_RECEIPTED_MESSAGE_ID) == b"0000000042\0"
    assert receipt.tlv(smpp.TAG_MESSAGE_STATE) == b"\x02"
    binary = smpp.delivery_receipt(SUBMIT, "1", submit_date="2601011200", done_date="2601011200", stat="UNDELIV")
    assert binary.short_message.endswith(b"stat:UNDELIV err:000 text:") and binary.tlv(0x0427) == b"\x05"
    assert smpp.decode_pdu(smpp.encode_pdu(receipt)) == receipt


@pytest.mark.parametrize("registered, delivered, wanted", [
    (0, True, False), (1, True, True), (1, False, True), (2, True, False), (2, False, True), (0x11, True, True),
])
def test_wants_receipt(registered, delivered, wanted):
    assert smpp.wants_receipt(registered, delivered) is wanted


# --- the SMSC-side session (sans-IO) ---------------------------------------------------------

def _replies(session):
    out, data = [], session.data_to_send()
    while data:
        length = struct.unpack(">I", data[:4])[0]
        out.append(smpp.decode_pdu(data[:length]))
        data = data[length:]
    return out


def _bound(mode=smpp.BindTransceiver, accounts=None):
    s = SmppSession(accounts)
    s.receive_data(smpp.encode_pdu(mode(sequence=1, system_id="esme", password="pw")))
    _replies(s)
    return s


def test_lab_bind_then_submit_enquire_unbind():
    s = SmppSession(system_id="smsc1")
    events = s.receive_data(smpp.encode_pdu(smpp.BindTransceiver(sequence=1, system_id="any", password="x")))
    assert isinstance(events[0], smpp.BindTransceiver) and s.state is State.BOUND_TRX and s.peer_system_id == "any"
    (resp,) = _replies(s)
    assert resp == smpp.BindTransceiverResp(sequence=1, system_id="smsc1", tlvs=(smpp.Tlv(0x0210, b"\x34"),))
    raw = smpp.encode_pdu(SUBMIT) + smpp.encode_pdu(smpp.EnquireLink(sequence=8))
    events = []
    for i in range(len(raw)):  # one octet at a time: framing across reads
        events += s.receive_data(raw[i:i + 1])
    assert events == [SUBMIT, smpp.EnquireLink(sequence=8)]
    assert _replies(s) == [smpp.EnquireLinkResp(sequence=8)]
    assert s.pending_submits == {7}
    resp = smpp.decode_pdu(s.send(smpp.SubmitSmResp(sequence=7, message_id="abc")))
    assert resp.message_id == "abc" and not s.pending_submits
    with pytest.raises(ProtocolError, match="no submit_sm 7"):
        s.send(smpp.SubmitSmResp(sequence=7))
    assert s.receive_data(smpp.encode_pdu(smpp.Unbind(sequence=9))) == [smpp.Unbind(sequence=9)]
    assert _replies(s) == [smpp.UnbindResp(sequence=9)] and s.state is State.UNBOUND


@pytest.mark.parametrize("system_id, password, status", [
    ("esme", "pw", smpp.ESME_ROK), ("esme", "wrong", smpp.ESME_RBINDFAIL), ("other", "pw", smpp.ESME_RBINDFAIL),
])
def test_bind_with_accounts(system_id, password, status):
    # issue 13: unknown system_id and wrong password get the same status (was RINVSYSID / RINVPASWD)
    s = SmppSession({"esme": "pw"})
    s.receive_data(smpp.encode_pdu(smpp.BindTransmitter(sequence=3, system_id=system_id, password=password)))
    (resp,) = _replies(s)
    assert isinstance(resp, smpp.BindTransmitterResp) and resp.status == status
    assert s.state is (State.BOUND_TX if status == smpp.ESME_ROK else State.OPEN)
    assert s.last_bind_failure in ("", "wrong password", "unknown system_id")   # the reason, never the password


def test_session_closes_after_max_bind_failures():
    s = SmppSession({"esme": "pw"}, max_bind_failures=3)
    for i in range(3):                                   # bounded: 3 refused binds, then CLOSED
        s.receive_data(smpp.encode_pdu(smpp.BindTransmitter(sequence=i + 1, system_id="esme", password="x")))
        assert _replies(s)[0].status == smpp.ESME_RBINDFAIL
    assert s.state is State.CLOSED and s.bind_failures == 3
    assert s.receive_data(smpp.encode_pdu(smpp.BindTransmitter(sequence=9, system_id="esme", password="pw"))) == []


def test_throttle_refuses_the_right_password_during_backoff():
    throttle = BindThrottle(free=2, first=1.0, cap=4.0)
    bind = lambda seq, pw: smpp.encode_pdu(smpp.BindTransmitter(sequence=seq, system_id="esme", password=pw))
    for i in range(3):                                   # 2 free failures, the 3rd earns 1 s of backoff
        s = SmppSession({"esme": "pw"}, throttle=throttle, peer="127.0.0.1")
        s.receive_data(bind(1, "x"), now=10.0)
    s = SmppSession({"esme": "pw"}, throttle=throttle, peer="127.0.0.2")    # same system_id, other address
    s.receive_data(bind(1, "pw"), now=10.5)
    assert _replies(s)[0].status == smpp.ESME_RBINDFAIL and s.last_bind_failure.startswith("throttled")
    s.receive_data(bind(2, "pw"), now=11.1)             # backoff over
    assert _replies(s)[0].status == smpp.ESME_ROK and len(throttle) == 1   # the system_id forgotten
    for i in range(6):                                   # bounded: backoff doubles to its 4 s cap
        throttle.failed((("address", "a"),), now=20.0 + i)
    assert throttle.blocked((("address", "a"),), now=25.0 + 3.9)
    assert not throttle.blocked((("address", "a"),), now=25.0 + 4.1)


def test_throttle_table_is_bounded():
    throttle = BindThrottle(max_keys=100)
    for i in range(1000):                                # bounded: 1,000 invented system_ids
        throttle.failed((("system_id", f"id{i}"),), now=1.0)
    assert len(throttle) == 100                          # the oldest 900 went first


def test_state_refusals():
    s = SmppSession()
    (event,) = s.receive_data(smpp.encode_pdu(SUBMIT))
    assert isinstance(event, Malformed) and event.status == smpp.ESME_RINVBNDSTS
    assert _replies(s) == [smpp.SubmitSmResp(sequence=7, status=smpp.ESME_RINVBNDSTS)]
    s.receive_data(smpp.encode_pdu(smpp.Unbind(sequence=2)))
    assert _replies(s)[0].status == smpp.ESME_RINVBNDSTS
    with pytest.raises(ProtocolError, match="deliver_sm needs"):
        s.send(smpp.DeliverSm())
    with pytest.raises(ProtocolError, match="unbind in state open"):
        s.send(smpp.Unbind())
    rx = _bound(smpp.BindReceiver)
    rx.receive_data(smpp.encode_pdu(SUBMIT))
    assert _replies(rx)[0].status == smpp.ESME_RINVBNDSTS
    rx.receive_data(smpp.encode_pdu(smpp.BindTransmitter(sequence=4)))
    assert _replies(rx) == [smpp.BindTransmitterResp(sequence=4, status=smpp.ESME_RALYBND, system_id="dmsim")]
    with pytest.raises(ProtocolError, match="by itself"):
        rx.send(smpp.BindTransceiverResp())


def test_deliver_sm_and_server_unbind():
    s = _bound(smpp.BindReceiver)
    first = smpp.decode_pdu(s.send(smpp.DeliverSm(short_message=b"mo")))
    second = smpp.decode_pdu(s.send(smpp.EnquireLink()))
    assert (first.sequence, second.sequence) == (1, 2)
    assert s.receive_data(smpp.encode_pdu(smpp.DeliverSmResp(sequence=1))) == [smpp.DeliverSmResp(sequence=1)]
    unbind = smpp.decode_pdu(s.send(smpp.Unbind()))
    assert s.state is State.BOUND_RX
    s.receive_data(smpp.encode_pdu(smpp.UnbindResp(sequence=unbind.sequence)))
    assert s.state is State.UNBOUND
    s.close()
    with pytest.raises(ProtocolError, match="closed"):
        s.send(smpp.EnquireLink())
    assert s.receive_data(b"anything") == []


def test_garbage_closes_the_session():
    s = _bound()
    (event,) = s.receive_data(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert isinstance(event, Malformed) and event.fatal and event.status == smpp.ESME_RINVCMDLEN
    (nack,) = _replies(s)
    assert isinstance(nack, smpp.GenericNack) and nack.status == smpp.ESME_RINVCMDLEN
    assert s.state is State.CLOSED
    short = SmppSession()
    (event,) = short.receive_data(b"\x00\x00\x00\x05")  # command_length under 16: known before the header ends
    assert event.fatal and _replies(short) == [smpp.GenericNack(status=smpp.ESME_RINVCMDLEN)]


def test_recoverable_errors_nack_and_stay_open():
    s = _bound()
    events = s.receive_data(header(16, 0x103, seq=5) + _with_body(smpp.SUBMIT_SM, b"x" * 30)
                            + smpp.encode_pdu(smpp.DeliverSm(sequence=6)))
    assert [(e.status, e.offset, e.fatal) for e in events] == [
        (smpp.ESME_RINVCMDID, 4, False), (smpp.ESME_RINVCMDLEN, 16, False), (smpp.ESME_RINVCMDID, 4, False)]
    assert [(type(r), r.status, r.sequence) for r in _replies(s)] == [
        (smpp.GenericNack, smpp.ESME_RINVCMDID, 5), (smpp.GenericNack, smpp.ESME_RINVCMDLEN, 1),
        (smpp.GenericNack, smpp.ESME_RINVCMDID, 6)]
    assert s.state is State.BOUND_TRX


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=6))
def test_fuzz_session_never_raises(chunks):
    s = _bound()
    for chunk in chunks:
        for event in s.receive_data(chunk):
            assert isinstance(event, (smpp.Pdu, Malformed))
    _replies(s)


# --- dmsim decode smpp -----------------------------------------------------------------------

def test_cli_decode_smpp_readable_and_json():
    runner = CliRunner()
    result = runner.invoke(decode_smpp_cmd, [SUBMIT_HEX])
    assert result.exit_code == 0 and "submit_sm" in result.output and "ESME_ROK" in result.output
    result = runner.invoke(decode_smpp_cmd, [SUBMIT_HEX, "--json"])
    out = json.loads(result.output)
    assert out["esm_class"] == 0x40 and out["data_coding"] == 4 and out["udh"]["ports"] == {"dest": 2948, "src": 9200}
    body = smpp.encode_body(smpp.BindTransceiver(system_id="esme", password="pw"))
    result = runner.invoke(decode_smpp_cmd, [body.hex(), "--command-id", "0x00000009", "--json"])
    assert json.loads(result.output)["system_id"] == "esme"


@pytest.mark.parametrize("args, fragment", [
    ([SUBMIT_HEX[:-2]], "at byte 53"),
    (["61626364", "--command-id", "80000004"], "at byte 0"),
    (["00", "--command-id", "zz"], "not hex"),
    (["0g"], "not a hex digit"),
])
def test_cli_decode_smpp_bad_input_exits_2(args, fragment):
    result = CliRunner().invoke(decode_smpp_cmd, args)
    assert result.exit_code == 2 and fragment in result.output
