"""SyncML 1.2 WBXML/XML codec: dmsim.network.dm.{codepages,wbxml,syncml_xml}."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from xml.etree.ElementTree import Element, SubElement

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dmsim.network.dm import codepages as cp
from dmsim.network.dm.syncml_xml import from_xml, to_xml, trees_equal
from dmsim.network.dm.wbxml import (
    MAX_DEPTH,
    MEDIA_TYPE_DM_WBXML,
    decode,
    encode,
    is_wbxml,
    mb_u_int32,
)
from dmsim.base.errors import DecodeError, ProtocolError

from conftest import VECTORS as VECTOR_DIR

VECTORS = VECTOR_DIR / "network.json"
HEADER = bytes.fromhex("03a4016a00")  # WBXML 1.3, public id 0x1201, UTF-8, empty string table

# A server package #2: Status, Chal with NextNonce, nested MetInf, Get/Exec/Sequence/Atomic.
RICH_XML = b"""<?xml version="1.0" encoding="UTF-8"?>
<SyncML xmlns="SYNCML:SYNCML1.2">
 <SyncHdr><VerDTD>1.2</VerDTD><VerProto>DM/1.2</VerProto><SessionID>4a</SessionID>
  <MsgID>2</MsgID><Target><LocURI>IMEI:493005100592800</LocURI></Target>
  <Source><LocURI>https://dm.example/dm</LocURI><LocName>srv</LocName></Source>
  <RespURI>https://dm.example/dm?s=4a</RespURI>
 </SyncHdr>
 <SyncBody>
  <Status><CmdID>1</CmdID><MsgRef>1</MsgRef><CmdRef>0</CmdRef><Cmd>SyncHdr</Cmd>
   <TargetRef>https://dm.example/dm</TargetRef><SourceRef>IMEI:493005100592800</SourceRef>
   <Chal><Meta><Format xmlns="syncml:metinf">b64</Format><Type xmlns="syncml:metinf">syncml:auth-md5</Type>
    <NextNonce xmlns="syncml:metinf">bm9uY2U=</NextNonce></Meta></Chal><Data>401</Data></Status>
  <Get><CmdID>2</CmdID><Item><Target><LocURI>./DevInfo/Mod</LocURI></Target></Item></Get>
  <Sequence><CmdID>3</CmdID><NoResp/>
   <Exec><CmdID>4</CmdID><Correlator>c-1</Correlator><Item><Target><LocURI>./FUMO/Update</LocURI></Target>
    <Meta><Type xmlns="syncml:metinf">text/plain</Type><Size xmlns="syncml:metinf">12</Size></Meta>
    <Data>caf\xc3\xa9 &amp; &lt;x&gt;</Data><MoreData/></Item></Exec>
  </Sequence>
  <Atomic><CmdID>5</CmdID><Add><CmdID>6</CmdID><Meta><MetInf xmlns="syncml:metinf"><Mem><FreeMem>9</FreeMem></Mem>
   <MaxObjSize>4096</MaxObjSize></MetInf></Meta>
   <Item><Target><LocURI>./a</LocURI></Target></Item></Add></Atomic>
  <Final/>
 </SyncBody>
</SyncML>
"""


@pytest.fixture(scope="module")
def vector() -> dict:
    vectors = json.loads(VECTORS.read_text())["vectors"]
    return next(v for v in vectors if v["id"] == "wbxml-libwbxml-pkg1-string-table")


@pytest.fixture(scope="module")
def rich() -> Element:
    return from_xml(RICH_XML)


def leaf(tag: str, text: str | None = None) -> Element:
    elem = Element(tag)
    elem.text = text
    return elem


def expect_error(data: bytes, offset: int, fragment: str) -> DecodeError:
    with pytest.raises(DecodeError) as info:
        decode(data)
    err = info.value
    assert err.what == "wbxml"
    assert err.offset == offset, str(err)
    assert fragment in err.detail, str(err)
    return err


# --------------------------------------------------------------------------- code pages

def test_page0_tokens_match_vector(vector):
    for name, token in vector["expected"]["tokens_page0"].items():
        assert cp.TOKEN_BY_TAG[name] == (cp.PAGE_SYNCML, token), name


def test_page1_tokens_match_vector(vector):
    for name, token in vector["expected"]["tokens_page1_metinf"].items():
        assert cp.TOKEN_BY_TAG[name] == (cp.PAGE_METINF, token), name


def test_page_tables_are_complete_and_disjoint():
    page0, page1 = cp.TAG_BY_TOKEN[0], cp.TAG_BY_TOKEN[1]
    assert min(page0) == 0x05 and max(page0) == 0x3C and 0x30 not in page0
    assert len(page0) == 0x3C - 0x05  # 0x05..0x3c less the reserved 0x30
    assert page0[0x34] == "MoreData" and page0[0x3C] == "Correlator" and page0[0x19] == "MapItem"
    assert sorted(page1) == list(range(0x05, 0x17))
    assert page1[0x10] == "NextNonce" and page1[0x16] == "FieldLevel"
    assert not set(page0.values()) & set(page1.values())
    assert len(cp.TOKEN_BY_TAG) == len(page0) + len(page1)


@pytest.mark.parametrize("name", sorted(cp.TOKEN_BY_TAG))
def test_every_tag_encodes_to_its_token(name):
    page, token = cp.TOKEN_BY_TAG[name]
    switch = bytes([0x00, page]) if page else b""
    assert encode(Element(name)) == HEADER + switch + bytes([token])
    assert decode(HEADER + switch + bytes([token])).tag == name


# --------------------------------------------------------------------------- libwbxml vector

def test_decode_libwbxml_vector_equals_its_xml(vector):
    data = bytes.fromhex(vector["inputs"]["wbxml_hex"])
    assert data[1:3] == mb_u_int32(vector["expected"]["public_id"])
    assert vector["expected"]["string_table_hex"] in data.hex()
    decoded = decode(data)
    assert trees_equal(decoded, from_xml(vector["inputs"]["xml"].encode()))
    # the STR_T reference and the OPAQUE value both come back as text
    assert decoded.find("SyncHdr/Source/LocURI").text == "IMEI:493005100592800"
    assert decoded.find("SyncBody/Replace/Item/Data").text == "IMEI:493005100592800"
    assert decoded.find("SyncHdr/Cred/Meta/Type").text == "syncml:auth-md5"


def test_encode_vector_tree(vector):
    tree = from_xml(vector["inputs"]["xml"].encode())
    data = encode(tree)
    assert data.startswith(HEADER + bytes([0x6D, 0x6C, 0x71, 0x03]) + b"1.2\x00\x01")
    # Meta (page 0) then SWITCH_PAGE 1, Format with content
    assert bytes([0x5A, 0x00, 0x01, 0x47, 0x03]) + b"b64\x00\x01" in data
    assert b"\x83" not in data and b"\xc3" not in data  # STR_I only
    assert data.endswith(bytes([0x12, 0x01, 0x01]))  # <Final/> END SyncBody, END SyncML
    assert trees_equal(decode(data), tree)
    assert encode(tree) == data  # deterministic


def test_round_trip_rich_document(rich):
    data = encode(rich)
    back = decode(data)
    assert trees_equal(back, rich)
    assert encode(back) == data
    assert back.find("SyncBody/Sequence/Exec/Item/Data").text == "café & <x>"
    assert back.find("SyncBody/Atomic/Add/Meta/MetInf/Mem/FreeMem").text == "9"


def test_page_switches_only_when_needed():
    meta = Element("Meta")
    for tag in ("Format", "Type"):
        SubElement(meta, tag).text = "x"
    SubElement(meta, "Data").text = "y"  # not legal SyncML, but shows the switch back
    assert encode(meta)[len(HEADER):] == bytes(
        [0x5A, 0x00, 0x01, 0x47, 0x03, 0x78, 0x00, 0x01, 0x53, 0x03, 0x78, 0x00, 0x01,
         0x00, 0x00, 0x4F, 0x03, 0x79, 0x00, 0x01, 0x01])


# --------------------------------------------------------------------------- string table, OPAQUE, ENTITY, header

def test_string_table_references_and_substrings():
    table = b"abc\x00hello\x00"
    data = (bytes.fromhex("03a4016a") + mb_u_int32(len(table)) + table
            + bytes([0x6D, 0x4F, 0x83, 0x04, 0x03]) + b"!\x00" + bytes([0x83, 0x01, 0x01, 0x01]))
    assert decode(data).find("Data").text == "hello!bc"


def test_opaque_utf8_becomes_text():
    data = HEADER + bytes([0x4F, 0xC3, 0x04]) + "€a".encode() + b"\x01"
    assert decode(data).text == "€a"


def test_opaque_binary_sets_opaque_hex_and_round_trips():
    data = HEADER + bytes([0x4F, 0xC3, 0x03, 0xFF, 0x00, 0x80, 0x01])
    elem = decode(data)
    assert elem.get("opaque_hex") == "ff0080" and not elem.text
    assert encode(elem) == data
    assert trees_equal(from_xml(to_xml(elem)), elem)


def test_text_with_nul_goes_as_opaque():
    data = encode(leaf("Data", "a\x00b"))
    assert data == HEADER + bytes([0x4F, 0xC3, 0x03]) + b"a\x00b\x01"
    assert decode(data).text == "a\x00b"


def test_entity_and_empty_elements():
    data = HEADER + bytes([0x4F, 0x02, 0x81, 0x82, 0x2C, 0x03]) + b"x\x00\x01"
    assert decode(data).text == "\u412cx"  # 0x81 0x82 0x2c = 0x412c
    assert trees_equal(decode(HEADER + bytes([0x4F, 0x01])), Element("Data"))
    assert encode(leaf("Final", "")) == HEADER + b"\x12"


def test_mixed_content_keeps_tails():
    data = HEADER + bytes([0x4F, 0x03]) + b"a\x00" + bytes([0x00, 0x01, 0x13, 0x03]) + b"b\x00\x01"
    elem = decode(data)
    assert elem.text == "a" and elem[0].tag == "Type" and elem[0].tail == "b"
    assert trees_equal(decode(encode(elem)), elem)


@pytest.mark.parametrize("header", [
    bytes.fromhex("02a4016a00"),  # WBXML 1.2
    bytes.fromhex("009f5300"),  # WBXML 1.0 (no charset field), SyncML 1.1
    bytes.fromhex("039f536a00"),  # SyncML 1.1 (DM 1.1.2)
    bytes.fromhex("039f516a00"),  # SyncML 1.0
    bytes.fromhex("03a4010300"),  # US-ASCII
    bytes.fromhex("03a4010000"),  # unknown charset, read as UTF-8
    bytes.fromhex("0300006a1e") + cp.SYNCML_12_FPI.encode() + b"\x00",  # FPI in the string table
])
def test_accepted_headers(header):
    assert decode(header + b"\x12").tag == "Final"


def test_public_id_string_must_be_syncml():
    table = b"-//WAPFORUM//DTD SI 1.0//EN\x00"
    data = b"\x03\x00\x00\x6a" + mb_u_int32(len(table)) + table + b"\x12"
    expect_error(data, 1, "not SyncML")


# --------------------------------------------------------------------------- errors

H = HEADER
ERROR_CASES = [
    (b"", 0, "missing version"),
    (b"\x04\xa4\x01\x6a\x00\x12", 0, "unsupported WBXML version"),
    (b"\x03", 1, "missing public id"),
    (b"\x03\xff\xff\xff\xff\x7f", 1, "overflow"),
    (b"\x03\x80\x80\x80\x80\x80\x01", 1, "overflow"),
    (b"\x03\x02\x6a\x00\x12", 1, "not SyncML"),
    (b"\x03\x00\x05\x6a\x00\x12", 1, "beyond table of"),
    (b"\x03\xa4\x01\x04\x00\x12", 3, "unsupported charset"),
    (b"\x03\xa4\x01\x6a\x05ab", 5, "truncated: string table"),
    (H, 5, "missing element"),
    (H + b"\x01", 5, "END outside"),
    (H + b"\x03a\x00", 5, "outside the root"),
    (H + b"\xed", 5, "has attributes"),
    (H + b"\x04\x00", 5, "LITERAL"),
    (H + b"\x6d\x44\x00", 6, "LITERAL"),
    (H + b"\x6d\x84\x00", 6, "LITERAL"),
    (H + b"\x6d\xc4\x00", 6, "LITERAL"),
    (H + b"\x6d\x40", 6, "extension token"),
    (H + b"\x6d\x80\x00", 6, "extension token"),
    (H + b"\x6d\xc0", 6, "extension token"),
    (H + b"\x43", 5, "processing instruction"),
    (H + b"\x6d\x30", 6, "unknown tag token 0x30 on page 0"),
    (H + b"\x00\x01\x6d", 7, "unknown tag token 0x2d on page 1"),
    (H + b"\x00\x05\x6d", 6, "unknown code page 5"),
    (H + b"\x00", 6, "missing code page"),
    (H + b"\x6d\x03abc", 7, "unterminated inline string"),
    (H + b"\x6d\x03\xff\x00\x01", 6, "not valid utf-8"),
    (H + b"\x6d\x83\x05\x01", 6, "beyond table of"),
    (b"\x03\xa4\x01\x6a\x02ab\x6d\x83\x00\x01", 8, "no NUL terminator"),
    (H + b"\x6d\x83", 7, "missing string table index"),
    (H + b"\x6d\xc3\x05ab", 8, "truncated: opaque data"),
    (H + b"\x6d\xc3\x90\x80\x80\x80\x00", 7, "overflow"),
    (H + b"\x6d\xc3\x8f\xff\xff\xff\x7f", 12, "truncated: opaque data"),
    (H + b"\x6d\x02\x83\xb0\x00\x01", 6, "not a Unicode scalar"),
    (H + b"\x6d\x02\xc4\x80\x80\x00\x01", 6, "not a Unicode scalar"),
    (H + b"\x6d\x6c", 7, "missing END or content"),
    (H + b"\x6d\x01\x01", 7, "trailing bytes"),
    (H + b"\x12\x12", 6, "trailing bytes"),
    (H + b"\x6c" * (MAX_DEPTH + 1), 5 + MAX_DEPTH, "nesting deeper"),
]


@pytest.mark.parametrize(("data", "offset", "fragment"), ERROR_CASES)
def test_error_paths(data, offset, fragment):
    expect_error(data, offset, fragment)


def test_decode_error_message_names_offset():
    err = expect_error(H + b"\x6d\x30", 6, "unknown tag")
    assert str(err).startswith("wbxml: at byte 6:")


def test_encode_refuses_trees_without_wbxml_form():
    with pytest.raises(ProtocolError):
        encode(Element("NotSyncML"))
    with pytest.raises(ProtocolError):
        encode(Element("Data", {"lang": "en"}))
    with pytest.raises(ProtocolError):
        encode(Element("Data", {"opaque_hex": "zz"}))
    with pytest.raises(ProtocolError):
        encode(leaf("Data", "\ud800"))


def test_mb_u_int32():
    assert mb_u_int32(0) == b"\x00"
    assert mb_u_int32(0x1201) == b"\xa4\x01"
    assert mb_u_int32(0xA0) == b"\x81\x20"
    assert mb_u_int32(0xFFFFFFFF) == b"\x8f\xff\xff\xff\x7f"
    with pytest.raises(ProtocolError):
        mb_u_int32(1 << 32)


# --------------------------------------------------------------------------- fuzz

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def decodes_or_decode_error(data: bytes) -> None:
    try:
        tree = decode(data)
    except DecodeError as err:
        assert 0 <= err.offset <= len(data)
        return
    # whatever decodes has a WBXML form again
    assert decode(encode(tree)).tag == tree.tag


@FUZZ
@given(st.binary(max_size=200))
def test_fuzz_random_bytes(data):
    decodes_or_decode_error(data)


@FUZZ
@given(st.binary(max_size=60))
def test_fuzz_random_body(body):
    decodes_or_decode_error(HEADER + body)


@FUZZ
@given(st.data())
def test_fuzz_mutations_of_valid_document(rich, data):
    doc = bytearray(encode(rich))
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        pos = data.draw(st.integers(0, max(len(doc) - 1, 0)))
        if op == "flip" and doc:
            doc[pos] = data.draw(st.integers(0, 255))
        elif op == "insert":
            doc[pos:pos] = data.draw(st.binary(min_size=1, max_size=4))
        elif op == "delete":
            del doc[pos:pos + data.draw(st.integers(1, 4))]
        else:
            del doc[pos:]
    decodes_or_decode_error(bytes(doc))


@FUZZ
@given(st.one_of(st.binary(max_size=120), st.text(max_size=80).map(str.encode),
                 st.integers(0, len(RICH_XML)).map(lambda n: RICH_XML[:n])))
def test_fuzz_from_xml(data):
    try:
        from_xml(data)
    except DecodeError as err:
        assert err.what == "xml" and 0 <= err.offset <= len(data)


# --------------------------------------------------------------------------- XML

def test_to_xml_namespaces_and_round_trip(rich):
    xml = to_xml(rich)
    assert xml.startswith(b'<?xml version="1.0" encoding="UTF-8"?><SyncML xmlns="SYNCML:SYNCML1.2">')
    assert b'<Format xmlns="syncml:metinf">b64</Format>' in xml
    assert b'<MetInf xmlns="syncml:metinf"><Mem><FreeMem>9</FreeMem>' in xml
    assert b"caf\xc3\xa9 &amp; &lt;x&gt;" in xml
    assert xml.count(b'xmlns="SYNCML:SYNCML1.2"') == 1
    assert to_xml(rich) == xml
    assert trees_equal(from_xml(xml), rich)


def test_from_xml_strips_namespaces_and_whitespace(vector):
    tree = from_xml(vector["inputs"]["xml"].encode())  # has a plain DOCTYPE: accepted
    assert tree.tag == "SyncML" and tree.text is None and not tree.attrib
    fmt = tree.find("SyncHdr/Cred/Meta/Format")
    assert fmt.text == "b64" and fmt.tail is None
    prefixed = b'<s:SyncML xmlns:s="SYNCML:SYNCML1.2" xmlns:m="syncml:metinf"><m:Type> t </m:Type></s:SyncML>'
    tree = from_xml(prefixed)
    assert tree.tag == "SyncML" and tree[0].tag == "Type" and tree[0].text == " t "


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE SyncML [<!ENTITY a "aaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>
<SyncML>&b;</SyncML>"""


@pytest.mark.parametrize(("data", "fragment"), [
    (BILLION_LAUGHS, "declares entity 'a'"),
    (b'<!DOCTYPE SyncML [<!ENTITY x SYSTEM "file:///etc/passwd">]><SyncML>&x;</SyncML>',
     "declares entity 'x'"),
    (b'<!DOCTYPE SyncML [<!ENTITY % p SYSTEM "http://x/">]><SyncML/>', "declares entity 'p'"),
    (b'<!DOCTYPE SyncML SYSTEM "http://x/d.dtd"><SyncML>&u;</SyncML>', "undeclared entity 'u'"),
    (b"<SyncML>&u;</SyncML>", "undefined entity"),
    (b"", "no element found"),
    (b"<SyncML><SyncHdr></SyncML>", "mismatched tag"),
    (b"<SyncML/><SyncML/>", "junk after document element"),
    (b"<p:SyncML/>", "unbound prefix"),
    (b"<SyncML>\xff</SyncML>", "not well-formed"),
    (b"<a>" * (MAX_DEPTH + 1), "nesting deeper"),
])
def test_from_xml_refuses(data, fragment):
    with pytest.raises(DecodeError) as info:
        from_xml(data)
    err = info.value
    assert err.what == "xml" and fragment in err.detail, str(err)
    assert 0 <= err.offset <= len(data)


def test_from_xml_error_offsets():
    with pytest.raises(DecodeError) as info:
        from_xml(b"<SyncML><SyncHdr></SyncML>")
    assert info.value.offset == 19
    with pytest.raises(DecodeError) as info:
        from_xml(BILLION_LAUGHS)
    offset = info.value.offset  # inside the first declaration
    assert BILLION_LAUGHS.index(b"<!ENTITY a") <= offset < BILLION_LAUGHS.index(b"<!ENTITY b")


def test_trees_equal():
    a = from_xml(b"<SyncML><Data> x </Data><Final/></SyncML>")
    assert trees_equal(a, from_xml(b"<SyncML>\n <Data>x</Data>\n <Final></Final></SyncML>"))
    assert not trees_equal(a, from_xml(b"<SyncML><Data>y</Data><Final/></SyncML>"))
    assert not trees_equal(a, from_xml(b"<SyncML><Data>x</Data></SyncML>"))
    assert not trees_equal(a, from_xml(b"<SyncML><Data>x</Data><NoResp/></SyncML>"))
    assert not trees_equal(a, from_xml(b'<SyncML><Data opaque_hex="00">x</Data><Final/></SyncML>'))


def test_media_types():
    assert MEDIA_TYPE_DM_WBXML == "application/vnd.syncml.dm+wbxml"
    assert is_wbxml("application/vnd.syncml.dm+wbxml")
    assert is_wbxml("Application/VND.SyncML+WBXML; charset=utf-8")
    assert not is_wbxml("application/vnd.syncml.dm+xml")
    assert not is_wbxml("")


# --------------------------------------------------------------------------- libwbxml interop

LIBWBXML = shutil.which("xml2wbxml") and shutil.which("wbxml2xml")
needs_libwbxml = pytest.mark.skipif(not LIBWBXML, reason="libwbxml2-utils not installed")


def _run(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, timeout=20)


@needs_libwbxml
def test_libwbxml_reads_our_encoding(rich, tmp_path):
    (tmp_path / "ours.wbxml").write_bytes(encode(rich))
    _run("wbxml2xml", "-m", "0", "-o", str(tmp_path / "out.xml"), str(tmp_path / "ours.wbxml"))
    assert trees_equal(from_xml((tmp_path / "out.xml").read_bytes()), rich)


@needs_libwbxml
@pytest.mark.parametrize("options", [("-v", "1.3"), ("-v", "1.2", "-n"), ("-v", "1.1")])
def test_we_read_libwbxml_encoding(rich, tmp_path, options):
    doctype = (b'<!DOCTYPE SyncML PUBLIC "-//SYNCML//DTD SyncML 1.2//EN" '
               b'"http://www.openmobilealliance.org/tech/DTD/OMA-TS-SyncML_RepPro_DTD-V1_2.dtd">')
    xml = to_xml(rich)
    decl_end = xml.index(b"?>") + 2
    (tmp_path / "in.xml").write_bytes(xml[:decl_end] + doctype + xml[decl_end:])
    _run("xml2wbxml", *options, "-o", str(tmp_path / "out.wbxml"), str(tmp_path / "in.xml"))
    assert trees_equal(decode((tmp_path / "out.wbxml").read_bytes()), rich)


def test_xml_with_an_unknown_encoding_is_a_decode_error():
    from dmsim.network.dm.syncml_xml import from_xml as decode_xml
    from dmsim.base.errors import DecodeError
    with pytest.raises(DecodeError, match="encoding"):
        decode_xml(b'<?xml version="1.0" encoding="TTF-8"?><SyncML/>')
