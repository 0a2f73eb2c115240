"""CoRE Link Format (RFC 6690 §2) as LwM2M uses it (OMA-TS-LightweightM2M-V1_0 §5.3.1): the
examples of both specs, round trips, strict refusals with their byte offset, bounds, fuzzing.
(libcoap's /.well-known/core is decoded in test_libcoap.py.)"""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dmsim.base.errors import DecodeError
from dmsim.network.coap.link_format import Link, decode, encode

REGISTER = b'</>;rt="oma.lwm2m";ct=11543,</1/0>,</3/0>'


def test_lwm2m_register_payload_is_written_as_the_spec_writes_it():
    links = (Link("/", (("rt", "oma.lwm2m"), ("ct", "11543"))), Link("/1/0"), Link("/3/0"))
    assert encode(links) == REGISTER
    assert decode(REGISTER) == links
    assert decode(REGISTER)[0].get("rt") == "oma.lwm2m" and decode(REGISTER)[0].get("ct") == "11543"


def test_lwm2m_discover_answer():
    text = "</3/0>;pmin=10;pmax=60,</3/0/1>,</3/0/6>;dim=2,</3/0/7>;dim=2;gt=50"
    links = decode(text)
    assert [link.target for link in links] == ["/3/0", "/3/0/1", "/3/0/6", "/3/0/7"]
    assert links[0].params == (("pmin", "10"), ("pmax", "60")) and links[3].get("gt") == "50"
    assert encode(links).decode() == text


def test_rfc6690_section_5_example():
    text = ('</sensors>;ct=40;title="Sensor Index",</sensors/temp>;rt="temperature-c";if="sensor",'
            '</sensors/light>;rt="light-lux";if="sensor",'
            '<http://www.example.com/sensors/t123>;anchor="/sensors/temp";rel="describedby",'
            '</t>;anchor="/sensors/temp";rel="alternate"')
    links = decode(text)
    assert len(links) == 5 and links[0].get("title") == "Sensor Index"
    assert links[3].target == "http://www.example.com/sensors/t123" and links[3].get("rel") == "describedby"
    assert encode(links).decode() == text


def test_quoted_pairs_valueless_params_and_utf8_titles():
    links = decode('</a>;obs;title="say \\"hi\\" \\\\ there";title*=utf-8\'\'%e2%82%ac,</b>;t="\xe2\x82\xac"'.encode(
        "latin-1"))
    assert links[0].params == (("obs", None), ("title", 'say "hi" \\ there'), ("title*", "utf-8''%e2%82%ac"))
    assert links[0].has("obs") and links[0].get("obs") is None and not links[0].has("rt")
    assert links[1].get("t") == "\u20ac"
    assert decode(encode(links)) == links


def test_empty_payload_is_no_links():
    assert decode(b"") == () and encode([]) == b""


BAD = {
    "trailing comma": (b"</a>,", 5),
    "empty link-value": (b"</a>,,</b>", 5),
    "space after a comma": (b"</a>, </b>", 5),
    "space before a parameter": (b"</a> ;ct=0", 4),
    "no angle brackets": (b"/a", 0),
    "unclosed target": (b"</a;ct=0", 8),
    "space in a target": (b"</a b>", 3),
    "quote in a target": (b'</a">', 3),
    "non-ASCII in a target": ("</\u20ac>".encode(), 2),
    "bad percent-encoding": (b"</a%4>", 3),
    "truncated percent-encoding": (b"</a%>", 3),
    "empty parameter name": (b"</a>;=1", 5),
    "empty parameter": (b"</a>;", 5),
    "empty value": (b"</a>;ct=", 8),
    "comma in a value": (b"</a>;ct=1,2", 10),
    "bad parameter name": (b"</a>;c(t=1", 6),
    "unclosed quoted string": (b'</a>;rt="x', 8),
    "control character in a quoted string": (b'</a>;rt="a\nb"', 10),
    "control character in a quoted-pair": (b'</a>;rt="a\\\x01"', 11),
    "quoted-pair at the end": (b'</a>;rt="a\\', 11),
    "bad UTF-8 in a quoted string": (b'</a>;title="ab\xff"', 14),
    "garbage after a link": (b"</a>x", 4),
    "two quoted strings": (b'</a>;rt="x""y"', 11),
}


@pytest.mark.parametrize("data, offset", BAD.values(), ids=BAD.keys())
def test_bad_link_format_is_a_decode_error_at_its_offset(data, offset):
    with pytest.raises(DecodeError) as caught:
        decode(data)
    assert caught.value.what == "link-format"
    assert caught.value.offset == offset, caught.value


def test_bounds_are_enforced():
    many = b",".join(b"</%d>" % i for i in range(11))
    assert len(decode(many, max_links=11)) == 11
    with pytest.raises(DecodeError) as caught:
        decode(many, max_links=10)
    assert caught.value.offset == many.index(b"</10>")
    params = b"</a>" + b";x" * 5
    assert len(decode(params, max_params=5)[0].params) == 5
    with pytest.raises(DecodeError):
        decode(params, max_params=4)
    with pytest.raises(DecodeError) as caught:
        decode(b"</a>" * 10, max_length=39)
    assert caught.value.offset == 39


@pytest.mark.parametrize("link", [Link("/a b"), Link("/a>"), Link("/\u20ac"), Link("/a", (("", "1"),)),
                                  Link("/a", (("c t", "1"),)), Link("/a", (("t", "a\nb"),))])
def test_encoder_refuses_what_the_decoder_would(link):
    with pytest.raises(ValueError):
        encode([link])


_URI = st.text("abcXYZ019-._~:/?#[]@!$&'()*+,;=", max_size=20)
_NAME = st.text("abcxyz019!#$&+-.^_`|~", min_size=1, max_size=8)
_VALUE = st.one_of(st.none(), st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=12))
links = st.lists(st.builds(Link, _URI, st.lists(st.tuples(_NAME, _VALUE), max_size=4).map(tuple)), max_size=5)


@settings(max_examples=300, deadline=None)
@given(links)
def test_round_trip(value):
    assert decode(encode(value)) == tuple(value)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=80))
def test_arbitrary_bytes_never_raise_anything_but_decode_error(data):
    try:
        decoded = decode(data)
    except DecodeError as exc:
        assert 0 <= exc.offset <= len(data)
    else:
        assert decode(encode(decoded)) == decoded


@settings(max_examples=300, deadline=None)
@given(st.text('<>/;,="\\ab1 \x01', max_size=40))
def test_near_miss_text_never_raises_anything_but_decode_error(text):
    try:
        decode(text)
    except DecodeError as exc:
        assert 0 <= exc.offset <= len(text.encode())
