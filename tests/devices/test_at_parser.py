"""devices/at_parser.py: result codes, URCs in the middle of responses, echo, the CMGS prompt,
malformed lines; a fuzz check that any input raises nothing but AtSyntaxError."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dmsim.devices.at_parser import (MAX_LINE, AtParser, Echo, Final, Intermediate, Prompt, Urc,
                                     response_name)
from dmsim.base.errors import AtSyntaxError, DecodeError

DELIVER = "0004049194990004000000000000000000"    # SMS-DELIVER, 0 octets of user data
CMT_PDU = "00" + DELIVER                          # SC address "00" then the TPDU


def events(parser, data, *, chunk=None):
    """Return every event of ``data`` fed at once (or ``chunk`` bytes at a time)."""
    out = []
    pieces = [data] if chunk is None else [data[i:i + chunk] for i in range(0, len(data), chunk)]
    for piece in pieces:
        parser.feed(piece)
        while (event := parser.next_event()) is not None:
            out.append(event)
    return out


def test_ok_error_and_intermediate():
    p = AtParser()
    p.begin('AT+CSIM=10,"00A40000"')
    assert events(p, b'\r\n+CSIM: 4,"9000"\r\n\r\nOK\r\n') == [Intermediate('+CSIM: 4,"9000"'), Final("OK", "OK")]
    assert p.pending is None
    p.begin("AT+FOO")
    [final] = events(p, b"\r\nERROR\r\n")
    assert final == Final("ERROR", "ERROR") and not final.ok


@pytest.mark.parametrize("line, result, code", [
    ("+CMS ERROR: 304", "+CMS ERROR", 304),
    ("+CME ERROR: 10", "+CME ERROR", 10),
    ("+CME ERROR: SIM not inserted", "+CME ERROR", None),
    ("+CMS ERROR: ²", "+CMS ERROR", None),       # a digit to str.isdigit, not to int()
    ("NO CARRIER", "NO CARRIER", None),
])
def test_error_finals_carry_their_code(line, result, code):
    p = AtParser()
    p.begin("AT+CMGS=20", prompt=True)
    assert events(p, f"\r\n{line}\r\n".encode("latin-1")) == [Final(result, line, code)]


def test_urcs_in_the_middle_of_a_response_and_when_idle():
    p = AtParser()
    p.begin("AT+CREG?")
    data = (f'\r\n+CREG: 0,1\r\n\r\nRING\r\n\r\n+CMTI: "SM",3\r\n\r\n+CMT: ,{len(DELIVER) // 2}\r\n'
            f"{CMT_PDU}\r\n\r\nOK\r\n").encode()
    got = events(p, data, chunk=3)
    assert got[0] == Intermediate("+CREG: 0,1")     # the command's own response, though +CREG is a URC name
    assert got[1] == Urc("RING", "RING") and got[2] == Urc("+CMTI", '+CMTI: "SM",3')
    assert got[3].name == "+CMT" and got[3].pdu == bytes.fromhex(CMT_PDU) and got[3].tpdu == bytes.fromhex(DELIVER)
    assert got[4] == Final("OK", "OK")
    # idle: every line is unsolicited, a +CREG too
    assert events(p, b"\r\n+CREG: 1\r\n^RSSI: 12\r\n") == [Urc("+CREG", "+CREG: 1"), Urc("^RSSI", "^RSSI: 12")]


def test_echo_and_prompt():
    p = AtParser()
    p.begin("AT+CMGS=17", prompt=True)
    got = events(p, b"AT+CMGS=17\r\r\n> ")
    assert got == [Echo("AT+CMGS=17"), Prompt()]
    p.sent_after_prompt(CMT_PDU)
    got = events(p, (CMT_PDU + "\x1a\r\n+CMGS: 7\r\n\r\nOK\r\n").encode(), chunk=1)
    assert got == [Echo(CMT_PDU + "\x1a"), Intermediate("+CMGS: 7"), Final("OK", "OK")]
    assert got[1].value == "7"


def test_prompt_only_when_expected():
    p = AtParser()
    p.begin("AT")
    assert events(p, b"> \r\nOK\r\n") == [Intermediate(">"), Final("OK", "OK")]


@pytest.mark.parametrize("data, offending", [
    (b"+CMT: ,abc\r\n", "+CMT: ,abc"),
    (b"+CMT: ,17\r\n00zz\r\n", "+CMT: ,17"),                       # not hex: the header is reported
    (b"+CMT: ,5\r\n" + CMT_PDU.encode() + b"\r\n", CMT_PDU),      # length disagrees
    (b"+CDS: 0\r\n", "+CDS: 0"),
])
def test_malformed_pdu_urcs(data, offending):
    p = AtParser()
    p.feed(data)
    with pytest.raises(AtSyntaxError) as err:
        while p.next_event() is not None:
            pass
    assert err.value.line == offending and err.value.urc in ("+CMT", "+CDS")
    assert isinstance(err.value, DecodeError) and offending in str(err.value)


def test_a_result_code_instead_of_the_pdu_is_still_read():
    p = AtParser()
    p.begin("AT")
    p.feed(b"\r\n+CMT: ,17\r\nOK\r\n")
    with pytest.raises(AtSyntaxError):
        p.next_event()
    assert p.next_event() == Final("OK", "OK")


def test_overlong_line_is_an_error_then_parsing_goes_on():
    p = AtParser()
    p.feed(b"A" * (MAX_LINE + 1))
    with pytest.raises(AtSyntaxError):
        p.next_event()
    assert events(p, b"\r\nRING\r\n") == [Urc("RING", "RING")]


def test_response_name():
    assert response_name('AT+CSIM=10,"00"') == "+CSIM"
    assert response_name("at+creg?") == "+CREG" and response_name("ATE0") == "E0"


LINES = st.sampled_from(["OK", "ERROR", "+CMS ERROR: 500", "+CME ERROR: x", "RING", "+CMT: ,17", "+CMT: ,",
                         CMT_PDU, "+CDS: 3", "+CBM: 2", "0000", "> ", "+CSIM: 4,\"9000\"", "+CMTI: \"SM\",1", ""])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(LINES, st.text(max_size=40)), max_size=12),
       st.lists(st.sampled_from(["\r\n", "\r", "\n", ""]), min_size=12, max_size=12),
       st.binary(max_size=30), st.integers(1, 7), st.booleans())
def test_fuzz_only_typed_errors(lines, ends, noise, chunk, prompt):
    p = AtParser()
    p.begin("AT+CMGS=17", prompt=prompt)
    data = "".join(line + end for line, end in zip(lines, ends)).encode("utf-8") + noise
    for i in range(0, len(data), chunk):
        p.feed(data[i:i + chunk])
        for _ in range(1000):
            try:
                if p.next_event() is None:
                    break
            except AtSyntaxError:
                pass
        else:
            pytest.fail("next_event never said it needs data")
