"""The CoAP codec (RFC 7252 §3) against aiocoap, an independent implementation: round trips both
ways, the option delta/length extension boundaries of §3.1, every malformed case of the
message.py docstring with its byte offset, and fuzzing (nothing but DecodeError escapes)."""
import warnings

import aiocoap
import pytest
from aiocoap.numbers.optionnumbers import OptionNumber
from aiocoap.optiontypes import OpaqueOption, StringOption
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dmsim.base.errors import DecodeError
from dmsim.network.coap.message import (
    Code, ContentFormat, Message, Option, Type, decode, empty_ack, encode, ping, request, reset, response,
)

PROPERTY = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
KNOWN = [int(n) for n in OptionNumber]


def _value(number: int) -> st.SearchStrategy[bytes]:
    """Values aiocoap decodes back to the same bytes: text for its string options, a minimal
    uint for its numeric ones, anything for the opaque ones."""
    kind = OptionNumber(number).format
    if kind is OpaqueOption:
        return st.binary(max_size=300)
    if kind is StringOption:
        return st.text(max_size=40).map(lambda s: s.encode("utf-8"))
    return st.integers(0, 2 ** 32 - 1).map(lambda v: v.to_bytes((v.bit_length() + 7) // 8, "big"))


options = st.lists(
    st.one_of(st.sampled_from(KNOWN), st.integers(0, 65535)).flatmap(lambda n: _value(n).map(lambda v: (n, v))),
    max_size=6)
non_empty = st.builds(Message, type=st.integers(0, 3), code=st.integers(1, 255), message_id=st.integers(0, 65535),
                      token=st.binary(max_size=8), options=options.map(tuple), payload=st.binary(max_size=300))
empty = st.builds(Message, type=st.integers(0, 3), code=st.just(0), message_id=st.integers(0, 65535))
messages = st.one_of(non_empty, empty)


def _fields(msg: Message) -> tuple:
    """The fields as they travel: options in number order, repeats in their own order (§5.4.5)."""
    return (msg.type, msg.code, msg.message_id, msg.token, tuple(sorted(msg.options, key=lambda o: o[0])),
            msg.payload)


def _aiocoap_fields(msg: aiocoap.Message) -> tuple:
    return (int(msg.mtype), int(msg.code), msg.mid, msg.token,
            tuple((int(o.number), o.encode()) for o in msg.opt.option_list()), msg.payload)


def _aiocoap_encode(msg: Message) -> bytes:
    """Encode ``msg`` with aiocoap: an outgoing aiocoap.Message with type, MID and token set
    (the underscore arguments are what aiocoap 0.4.17 uses for them, the public ones are
    deprecated) and every option added as raw bytes."""
    theirs = aiocoap.Message(code=msg.code, payload=msg.payload, _mtype=msg.type, _mid=msg.message_id,
                             _token=msg.token)
    for number, value in msg.options:
        theirs.opt.add_option(OpaqueOption(number, value))
    return theirs.encode()


@PROPERTY
@given(messages)
def test_our_encoding_decodes_equal_in_aiocoap(msg):
    assert _aiocoap_fields(aiocoap.Message.decode(encode(msg))) == _fields(msg)


@PROPERTY
@given(messages)
def test_aiocoap_encoding_decodes_equal_in_ours(msg):
    data = _aiocoap_encode(msg)
    assert _fields(decode(data)) == _fields(msg)
    assert encode(decode(data)) == data


def test_a_real_request_reads_alike_in_both():
    msg = request(Code.POST, "/rd", message_id=0x1234, token=b"\x01\x02", query=["ep=dev1", "lt=300"],
                  payload=b"</1/0>", content_format=ContentFormat.LINK_FORMAT)
    theirs = aiocoap.Message.decode(encode(msg))
    assert theirs.opt.uri_path == ("rd",) and theirs.opt.uri_query == ("ep=dev1", "lt=300")
    assert theirs.opt.content_format == 40 and theirs.code == aiocoap.POST and theirs.mid == 0x1234
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ours = decode(aiocoap.Message(code=aiocoap.CONTENT, mtype=aiocoap.ACK, mid=7, token=b"t", payload=b"x",
                                      content_format=0, uri_path=("3", "0")).encode())
    assert (ours.type, ours.code, ours.message_id, ours.token) == (Type.ACK, Code.CONTENT, 7, b"t")
    assert ours.uri_path == ("3", "0") and ours.content_format == 0 and ours.path == "/3/0"


# -- §3.1 extension boundaries ------------------------------------------------------------------

BOUNDARIES = [(12, 12, b""), (13, 13, b"\x00"), (268, 13, b"\xff"), (269, 14, b"\x00\x00"),
              (65804, 14, b"\xff\xff")]


@pytest.mark.parametrize("field", ["delta", "length"])
@pytest.mark.parametrize("value, nibble, ext", BOUNDARIES)
def test_option_delta_and_length_boundaries(field, value, nibble, ext):
    if field == "delta":
        msg, head = Message(Type.CON, Code.GET, 1, options=((value, b"v"),)), bytes([nibble << 4 | 1])
    else:
        payload = bytes(range(256)) * (value // 256) + bytes(value % 256)
        msg, head = Message(Type.NON, Code.PUT, 2, options=((Option.ETAG, payload),)), bytes([0x40 | nibble])
    data = encode(msg)
    assert data[4:5 + len(ext)] == head + ext
    assert decode(data) == msg
    assert _aiocoap_fields(aiocoap.Message.decode(data)) == _fields(msg)
    if value < 65804:  # aiocoap 0.4.17 cannot write 65804, the largest value §3.1 can code
        assert _aiocoap_encode(msg) == data


@pytest.mark.parametrize("options", [((65805, b""),), ((Option.ETAG, bytes(65805)),), ((1, b""), (65806, b""))])
def test_encoder_refuses_what_section_3_1_cannot_code(options):
    with pytest.raises(ValueError):
        encode(Message(Type.CON, Code.GET, 1, options=options))


def test_encoder_refuses_a_long_token():
    with pytest.raises(ValueError):
        encode(Message(Type.CON, Code.GET, 1, token=bytes(9)))


# -- malformed datagrams (the message.py docstring, one by one) ---------------------------------

MALFORMED = {
    "empty datagram": (b"", 0),
    "3 bytes": (b"\x40\x01\x00", 3),
    "version 0": (b"\x00\x01\x00\x01", 0),
    "version 2": (b"\x80\x01\x00\x01", 0),
    "version 3": (b"\xc0\x01\x00\x01", 0),
    "token length 9": (b"\x49\x01\x00\x01" + bytes(9), 0),
    "token length 15": (b"\x4f\x01\x00\x01" + bytes(15), 0),
    "token past the end": (b"\x44\x01\x00\x01\xaa\xbb", 4),
    "delta nibble 15": (b"\x40\x01\x00\x01\xf1\x00", 4),
    "length nibble 15": (b"\x40\x01\x00\x01\xbf", 4),
    "length nibble 15 after a delta extension": (b"\x41\x01\x00\x01\xaa\xb1x\xdf\x00", 7),
    "length nibble 15 after a 2-byte delta extension": (b"\x40\x01\x00\x01\xef\x00\x00", 4),
    "delta extension past the end": (b"\x40\x01\x00\x01\xd0", 5),
    "2-byte delta extension past the end": (b"\x40\x01\x00\x01\xe0\x00", 5),
    "length extension past the end": (b"\x40\x01\x00\x01\xbd", 5),
    "2-byte length extension past the end": (b"\x40\x01\x00\x01\xbe\x01", 5),
    "option value past the end": (b"\x40\x01\x00\x01\xb3ab", 5),
    "extended option value past the end": (b"\x40\x01\x00\x01\xbd\x00" + bytes(12), 6),
    "payload marker without payload": (b"\x40\x01\x00\x01\xb1a\xff", 6),
    "payload marker alone": (b"\x42\x45\x00\x01ab\xff", 6),
    "Empty message with a token": (b"\x41\x00\x00\x01\xaa", 4),
    "Empty message with an option": (b"\x60\x00\x00\x01\xb1a", 4),
    "Empty message with a payload": (b"\x70\x00\x00\x01\xffx", 4),
}


@pytest.mark.parametrize("data, offset", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_datagram_is_a_decode_error_at_its_offset(data, offset):
    with pytest.raises(DecodeError) as caught:
        decode(data)
    assert caught.value.what == "coap"
    assert caught.value.offset == offset, caught.value


def test_the_smallest_wellformed_neighbours_decode():
    assert decode(b"\x40\x00\x00\x01") == ping(1)
    assert decode(b"\x48\x01\x00\x01" + bytes(8)).token == bytes(8)
    assert decode(b"\x40\x01\x00\x01\xb0\xffx") == Message(Type.CON, Code.GET, 1, options=((11, b""),), payload=b"x")


def test_text_and_uint_accessors_refuse_bad_values():
    with pytest.raises(DecodeError):
        decode(b"\x40\x01\x00\x01\xb1\xff\xffx").uri_path
    with pytest.raises(DecodeError):
        decode(b"\x40\x01\x00\x01\xc5\x01\x02\x03\x04\x05").content_format


# -- building helpers (§4.2, §4.3, §5.2) --------------------------------------------------------

def test_response_piggybacks_on_a_con_and_is_a_non_of_its_own_to_a_non():
    con = request(Code.GET, "/3/0", message_id=10, token=b"tk")
    assert response(con, Code.CONTENT, payload=b"x") == Message(Type.ACK, Code.CONTENT, 10, b"tk", (), b"x")
    non = request(Code.GET, "/3/0", message_id=11, token=b"tk", type=Type.NON)
    assert response(non, Code.CONTENT, message_id=99).type == Type.NON
    with pytest.raises(ValueError):
        response(non, Code.CONTENT)
    assert encode(empty_ack(con)) == b"\x60\x00\x00\x0a"
    assert encode(reset(con)) == b"\x70\x00\x00\x0a"


# -- fuzzing ------------------------------------------------------------------------------------

def _decode_or_error(data: bytes):
    try:
        return decode(data)
    except DecodeError as exc:
        assert 0 <= exc.offset <= len(data)
        return None


@settings(max_examples=600, deadline=None)
@given(st.binary(max_size=64))
def test_arbitrary_bytes_never_raise_anything_but_decode_error(data):
    msg = _decode_or_error(data)
    if msg is not None:  # the encoding of §3 is canonical: what decodes re-encodes to itself
        assert encode(msg) == data


@PROPERTY
@given(non_empty, st.data())
def test_mutated_messages_never_raise_anything_but_decode_error(msg, data):
    raw = bytearray(encode(msg))
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(raw) - 1))
        raw[at] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    for candidate in (bytes(raw), bytes(raw[:cut])):
        decoded = _decode_or_error(candidate)
        if decoded is not None:
            assert encode(decoded) == candidate
