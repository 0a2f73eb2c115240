"""Issue 17: the codecs' fast paths give exactly what their generic paths give.

The inputs are what every shipped scenario feeds the codecs (a two-device run of each, captured
by wrapping the codec functions): the SyncML trees WBXML-encoded, the WBXML documents decoded,
the TPDUs encoded and decoded and the pushes split. Each fast path is compared with its generic
path on all of them, and on hand-built edge cases:

* WBXML encode from a kept format (``_FORMATS``) vs ``_encode_tree`` (element by element);
* WBXML decode from a kept tree (``_PROTOTYPES``) vs ``_decode_tokens`` (token by token),
  including errors (type, offset, text) for mutated documents;
* TPDU decode with warm memos (addresses, UDHs, typed IE views) vs empty memos, and the decoded
  SmsDeliver/SmsSubmit vs one made by the dataclass ``__init__``;
* the IE and address octets kept on the instance, and the IEs split_parts shares, vs new ones;
* the character checks of wsp_push and http_binding vs the per-character forms they replace.
"""
from __future__ import annotations

import copy
from dataclasses import fields
from pathlib import Path
from xml.etree.ElementTree import Element, SubElement

import pytest

from dmsim.base.errors import DecodeError, DmsimError, ProtocolError
from dmsim.network.dm import http_binding, wbxml
from dmsim.network.memo import Memo
from dmsim.network.sms import address, segmentation, tpdu, udh, wsp_push
from dmsim.network.sms.udh import Concat, InformationElement, Ports

SCENARIOS = sorted((Path(__file__).resolve().parents[2] / "scenarios").glob("*.yaml"))


class Shipped:
    """What the codecs were given during the shipped scenarios' runs."""

    def __init__(self) -> None:
        self.trees: list[Element] = []        # encoded by wbxml.encode
        self.documents: list[bytes] = []      # decoded by wbxml.decode
        self.tpdus: list[tuple[bytes, bool]] = []  # (octets, mt) given to the TPDU decoders
        self.encoded: list[tpdu.SmsDeliver | tpdu.SmsSubmit] = []
        self.splits: list[tuple[tuple, dict]] = []


def _wrap(mp: pytest.MonkeyPatch, owner, name: str, keep) -> None:
    original = getattr(owner, name)

    def wrapper(*args, **kwargs):
        keep(*args, **kwargs)
        return original(*args, **kwargs)
    mp.setattr(owner, name, wrapper)


@pytest.fixture(scope="module")
def shipped(tmp_path_factory) -> Shipped:
    """Run every shipped scenario with two devices, one replica, keeping the codecs' inputs."""
    from dmsim.sim.results.runner import run_scenario
    from dmsim.sim.scenario.format import load_scenario
    seen = Shipped()
    with pytest.MonkeyPatch.context() as mp:
        _wrap(mp, wbxml, "encode", lambda root: seen.trees.append(copy.deepcopy(root)))
        _wrap(mp, wbxml, "decode", lambda data: seen.documents.append(bytes(data)))
        _wrap(mp, tpdu, "_decode_deliver", lambda data: seen.tpdus.append((bytes(data), True)))
        _wrap(mp, tpdu, "_decode_submit", lambda data: seen.tpdus.append((bytes(data), False)))
        _wrap(mp, tpdu.SmsDeliver, "encode", seen.encoded.append)
        _wrap(mp, tpdu.SmsSubmit, "encode", seen.encoded.append)
        _wrap(mp, segmentation, "split_parts", lambda *a, **kw: seen.splits.append((a, kw)))
        for path in SCENARIOS:
            scenario = load_scenario(path, ["fleet.size=2", "replicas=1"])
            run_scenario(scenario, tmp_path_factory.mktemp(path.stem), plots=False)
    assert seen.trees and seen.documents and seen.tpdus and seen.encoded and seen.splits
    return seen


def same_tree(a: Element, b: Element) -> bool:
    """Strict equality: tags, texts, tails and attributes as they are (not stripped)."""
    return (a.tag == b.tag and a.text == b.text and a.tail == b.tail and a.attrib == b.attrib
            and len(a) == len(b) and all(same_tree(x, y) for x, y in zip(a, b)))


def outcome(fn, *args, **kwargs):
    """Return ("ok", value) or ("error", type, str) of ``fn(*args, **kwargs)``."""
    try:
        return "ok", fn(*args, **kwargs)
    except (DmsimError, AttributeError, TypeError) as exc:
        return "error", type(exc), str(exc)


# --------------------------------------------------------------------------- WBXML encode

def test_every_shipped_tree_encodes_from_its_format_as_element_by_element(shipped):
    wbxml._FORMATS.clear()
    formatted = 0
    for tree in shipped.trees:
        reference = wbxml._encode_tree(tree)
        assert wbxml.encode(tree) == reference   # first of its shape: learns the format
        assert wbxml.encode(tree) == reference   # from the format
        shape = wbxml._text_shape(tree)
        if shape is None:  # a tree with opaque_hex (binary data) goes element by element
            assert any(elem.keys() for elem in tree.iter())
        else:
            assert shape[0] in wbxml._FORMATS
            formatted += 1
    assert formatted > 0.99 * len(shipped.trees)


def _learned_tree() -> Element:
    """A tree on both code pages, with inner text and empty elements; its format is learned."""
    root = Element("SyncML")
    hdr = SubElement(root, "SyncHdr")
    SubElement(hdr, "VerDTD").text = "1.2"
    SubElement(hdr, "SessionID").text = "1"
    body = SubElement(root, "SyncBody")
    status = SubElement(body, "Status")
    status.text = "x"
    meta = SubElement(status, "Meta")
    SubElement(meta, "Type").text = "text/plain"   # MetInf page
    SubElement(status, "Data").text = "200"
    SubElement(body, "Final")
    wbxml.encode(root)
    assert wbxml._text_shape(root)[0] in wbxml._FORMATS
    return root


def _with(tree: Element, index: int, **attrs) -> Element:
    """A copy of ``tree`` whose element ``index`` (document order) has ``attrs`` set."""
    tree = copy.deepcopy(tree)
    elem = list(tree.iter())[index]
    for name, value in attrs.items():
        if name == "attrib":
            elem.attrib.update(value)
        else:
            setattr(elem, name, value)
    return tree


@pytest.mark.parametrize("index, attrs", [
    (2, {"text": "50% %s %% %(x)s"}),               # format characters in a text
    (2, {"text": "caf\u00e9 \U0001F600 \ue000"}),   # non-ASCII, and the format's own marker
    (2, {"text": "a\x00b"}),                         # NUL: goes as OPAQUE
    (2, {"text": ""}),                               # empty text: no STR_I, another shape
    (3, {"text": None}),
    (4, {"tail": "tail"}),                           # mixed content
    (0, {"tail": "ignored"}),                        # the root's tail is no part of the document
    (2, {"attrib": {"opaque_hex": "00ff"}}),
    (2, {"attrib": {"lang": "en"}}),                 # no WBXML form
    (2, {"text": "\ud800"}),                         # lone surrogate: no UTF-8 form
    (2, {"text": 5}),                                # not a str
    (2, {"tag": "Bogus"}),
    (2, {"tag": ["unhashable"]}),
])
def test_encode_edge_cases_on_a_learned_shape_match_element_by_element(index, attrs):
    tree = _with(_learned_tree(), index, **attrs)
    fast, generic = outcome(wbxml.encode, tree), outcome(wbxml._encode_tree, tree)
    assert fast == generic
    if fast[0] == "ok":  # and once more, now that this shape may be learned too
        assert wbxml.encode(tree) == fast[1]


def test_trees_differing_only_in_nesting_have_their_own_formats():
    flat = Element("SyncML")
    SubElement(flat, "SyncHdr")
    SubElement(flat, "SyncBody").text = "x"
    nested = Element("SyncML")
    SubElement(SubElement(nested, "SyncHdr"), "SyncBody").text = "x"
    for tree in (flat, nested, flat, nested):
        assert wbxml.encode(tree) == wbxml._encode_tree(tree)


# --------------------------------------------------------------------------- WBXML decode

def test_every_shipped_document_decodes_from_its_kept_tree_as_token_by_token(shipped):
    wbxml._PROTOTYPES.clear()
    kept = 0
    for data in shipped.documents:
        reference = wbxml._decode_tokens(data)
        assert same_tree(wbxml.decode(data), reference)   # first of its skeleton: kept
        split = wbxml._split_strings(data)
        if split is None:  # binary OPAQUE (opaque_hex): the body is not UTF-8
            assert any(elem.keys() for elem in reference.iter())
        else:
            assert split[0] in wbxml._PROTOTYPES
            kept += 1
        copied = wbxml.decode(data)
        assert same_tree(copied, reference)
        copied.append(Element("Final"))                    # a decoded tree is the caller's
        assert same_tree(wbxml.decode(data), reference)
    assert kept > 0.99 * len(shipped.documents)


def _learned_document() -> bytes:
    data = wbxml.encode(_learned_tree())
    wbxml.decode(data)
    assert wbxml._split_strings(data)[0] in wbxml._PROTOTYPES
    return data


def _same_decode(data: bytes) -> None:
    fast, generic = outcome(wbxml.decode, data), outcome(wbxml._decode_tokens, data)
    if fast[0] == "ok" and generic[0] == "ok":
        assert same_tree(fast[1], generic[1])
    else:
        assert fast == generic


@pytest.mark.parametrize("old, new", [
    (b"\x031.2\x00", b"\x03\x00"),                         # empty string
    (b"\x031.2\x00", "\x03caf\u00e9 \x03 \x02\x01\x00".encode()),  # non-ASCII, token bytes
    (b"\x031.2\x00", b"\x03\xff\xfe\x00"),                 # not UTF-8: the generic error
    (b"\x031.2\x00", b"\x031\x00\x032\x00"),               # two strings in one element
    (b"\x031.2\x00", b"\xc3\x02\xff\xfe"),                 # OPAQUE binary: opaque_hex
    (b"\x031.2\x00", b"\x02\x41"),                         # ENTITY
    (b"\x031.2\x00", b"\x031.2"),                          # unterminated
])
def test_decode_edge_cases_on_a_learned_skeleton_match_token_by_token(old, new):
    data = _learned_document()
    assert old in data
    _same_decode(data.replace(old, new, 1))


def test_decode_of_every_mutation_of_a_learned_document_matches_token_by_token():
    data = _learned_document()
    for pos in range(len(data)):
        _same_decode(data[:pos])
        _same_decode(data[:pos] + data[pos + 1:])
        for octet in (0x00, 0x01, 0x03, 0x45, 0x80, 0xC3, 0xFF):
            _same_decode(data[:pos] + bytes([octet]) + data[pos + 1:])
    _same_decode(data + b"\x01")


@pytest.mark.parametrize("skeleton", [
    "\x45\x02\x00\x01",       # ENTITY: text the strings do not hold
    "\x45\x83\x00\x01",       # STR_T
    "\x45\x03\x00\x01\x03",  # an STR_I left unterminated
])
def test_a_skeleton_with_other_tokens_is_never_kept(skeleton):
    wbxml._learn_prototype((skeleton, []), Element("SyncML"))
    assert skeleton not in wbxml._PROTOTYPES


@pytest.mark.parametrize("text, tail, strings", [
    ("a", "", ["a"]),         # a tail, even empty, is not a text slot
    ("ab", None, ["a"]),      # the text is not the string
    ("a", None, ["a", "b"]),  # two strings, one text
])
def test_a_tree_whose_texts_are_not_its_strings_is_never_kept(text, tail, strings):
    root = Element("SyncML")
    root.text = text
    SubElement(root, "Final").tail = tail
    skeleton = wbxml._SKELETON_CUT.join(["\x6d"] + ["\x2e\x01"] * len(strings))
    wbxml._learn_prototype((skeleton, strings), root)
    assert skeleton not in wbxml._PROTOTYPES


def test_mixed_content_is_never_kept():
    root = Element("SyncML")
    root.text = "a"
    SubElement(root, "Final").tail = "b"
    data = wbxml.encode(root)
    wbxml.decode(data)
    assert wbxml._split_strings(data)[0] not in wbxml._PROTOTYPES
    _same_decode(data)


# --------------------------------------------------------------------------- TPDUs and UDH

def _forget() -> None:
    """Empty every memo of the SMS codecs."""
    for memo in (tpdu._ADDRESSES, tpdu._DELIVER_HEADS, udh._KNOWN_UDHS, udh._VIEWS):
        memo.clear()


def _fields(pdu) -> dict:
    return {f.name: getattr(pdu, f.name) for f in fields(pdu)}


def _alike_with_and_without_memos(fn, *args, **kwargs):
    """Return the outcome of ``fn`` with empty memos, asserting it is the same once they are warm."""
    _forget()
    cold = outcome(fn, *args, **kwargs)
    assert outcome(fn, *args, **kwargs) == cold
    return cold


def test_shipped_tpdus_decode_alike_with_and_without_memos(shipped):
    for data, mt in shipped.tpdus:
        result = _alike_with_and_without_memos(tpdu.decode_tpdu, data, mt=mt)
        if result[0] != "ok":
            continue
        pdu = result[1]
        built = type(pdu)(**_fields(pdu))       # through the dataclass __init__
        assert pdu == built and vars(pdu) == vars(built)
        _alike_with_and_without_memos(udh.find_concat, pdu.ies)
        _alike_with_and_without_memos(udh.find_ports, pdu.ies)


def test_decoded_tpdus_stay_their_own(shipped):
    """A TPDU decoded from the memos shares no state with the next one decoded from them."""
    mt = [data for data, is_mt in shipped.tpdus if is_mt]
    decoded = [tpdu.decode_tpdu(data, mt=True) for data in mt]
    _forget()
    assert decoded == [tpdu.decode_tpdu(data, mt=True) for data in mt]


def test_decode_of_every_mutation_of_a_tpdu_is_alike_with_and_without_memos(shipped):
    data, _ = next((data, mt) for data, mt in shipped.tpdus if mt and data[0] & 0x40)
    for pos in range(len(data)):
        for mutant in (data[:pos], data[:pos] + data[pos + 1:],
                       *(data[:pos] + bytes([octet]) + data[pos + 1:] for octet in (0, 0x41, 0x7F, 0xFF))):
            tpdu.decode_tpdu(data, mt=True)           # warm
            warm = outcome(tpdu.decode_tpdu, mutant, mt=True)
            assert _alike_with_and_without_memos(tpdu.decode_tpdu, mutant, mt=True) == warm


def test_a_udh_reads_alike_from_the_memo():
    header = bytes.fromhex("0b05040b8423f00003a70a03")
    _forget()
    fresh = udh._read_ies(header, 0)
    assert udh.read_udh(header + b"body") == (fresh, len(header))
    assert udh.read_udh(header + b"body") == (fresh, len(header))   # from the memo
    assert udh.decode_udh(header + b"body") == (list(fresh), b"body")


def test_memos_do_not_hide_errors_or_shift_offsets():
    good = bytes.fromhex("050003010201")
    udh.decode_udh(good)
    with pytest.raises(DecodeError) as info:
        udh.decode_udh(bytes.fromhex("050003010200"), base=30)
    assert info.value.offset == 35
    bad = InformationElement(udh.IEI_CONCAT_8BIT, bytes([1, 2, 3]))
    with pytest.raises(DecodeError):
        udh.find_concat([bad])
    with pytest.raises(DecodeError):                 # still refused the second time
        udh.find_concat([bad])
    mutable = InformationElement(udh.IEI_PORTS_16BIT, bytearray(b"\x0b\x84\x23\xf0"))
    assert udh.find_ports([mutable]) == Ports(2948, 9200)
    octets = bytes.fromhex("00010201")               # the same data under two IEIs
    assert udh.find_ports([InformationElement(udh.IEI_PORTS_16BIT, octets)]) == Ports(1, 0x0201)
    assert udh.find_concat([InformationElement(udh.IEI_CONCAT_16BIT, octets)]) == Concat(1, 2, 1, True)


@pytest.mark.parametrize("flags", range(16))
def test_decoded_tpdus_are_what_init_makes_for_every_flag(flags):
    bits = [bool(flags & (1 << i)) for i in range(4)]
    oa = address.Address("12345")
    ies = (Ports(2948, 9200).to_ie(),)
    sent = [tpdu.SmsDeliver(oa, scts=bytes(7), user_data=b"x", ies=ies, more_messages=bits[0],
                            loop_prevention=bits[1], status_report=bits[2], reply_path=bits[3]),
            tpdu.SmsSubmit(oa, mr=flags, vp=flags if bits[0] else None, user_data=b"x", ies=ies,
                           reject_duplicates=bits[1], status_report_request=bits[2],
                           reply_path=bits[3])]
    for pdu in sent:
        got = tpdu.decode_tpdu(pdu.encode(), mt=isinstance(pdu, tpdu.SmsDeliver))
        assert got == pdu and vars(got) == vars(type(pdu)(**_fields(pdu)))


def test_shipped_tpdus_encode_alike_with_fresh_ies_and_addresses(shipped):
    for pdu in shipped.encoded:
        for ie in pdu.ies:
            assert ie.octets == bytes((ie.iei, len(ie.data))) + ie.data == ie.encode()
        role = "oa" if isinstance(pdu, tpdu.SmsDeliver) else "da"
        addr = getattr(pdu, role)
        assert addr.octets == address.encode_address.__wrapped__(addr)
        fresh = type(pdu)(**{**_fields(pdu), role: address.Address(addr.digits, addr.ton, addr.npi),
                             "ies": tuple(InformationElement(ie.iei, ie.data) for ie in pdu.ies)})
        assert outcome(pdu.encode) == outcome(fresh.encode)


def test_refused_ie_octets_are_refused_every_time():
    ie = InformationElement(0x70, bytes(300))
    for _ in range(2):
        with pytest.raises(ProtocolError):
            ie.encode()


@pytest.mark.parametrize("max_ud", [140, 60, 13, 12])
def test_split_parts_shares_ies_equal_to_new_ones(shipped, max_ud):
    for args, kwargs in shipped.splits + [((bytes(300),), {"dest_port": 2948, "src_port": 9200, "ref": 7})]:
        kwargs = {**kwargs, "max_ud": max_ud}
        assert outcome(segmentation.split_parts, *args, **kwargs) == outcome(_split_reference, *args, **kwargs)


def _split_reference(payload, *, dest_port, src_port, ref, max_ud=140):
    """split_parts as it was: new IEs for every call and part."""
    ports = Ports(dest_port, src_port).to_ie()
    if len(udh.encode_udh([ports])) + len(payload) <= max_ud:
        return [([ports], payload)]
    room = max_ud - len(udh.encode_udh([ports, Concat(0, 1, 1).to_ie()]))
    if room <= 0:
        raise ProtocolError(f"max_ud {max_ud} leaves no room for data after the UDH")
    chunks = [payload[i:i + room] for i in range(0, len(payload), room)]
    if len(chunks) > 255:
        raise ProtocolError(f"payload of {len(payload)} octets needs {len(chunks)} parts, at most 255")
    return [([ports, Concat(ref, len(chunks), seq).to_ie()], chunk)
            for seq, chunk in enumerate(chunks, start=1)]


def test_a_full_memo_starts_afresh():
    memo: Memo[int, str] = Memo(2)
    assert memo.remember(1, "a") == "a" and memo.remember(2, "b") == "b"
    memo.remember(3, "c")
    assert memo == {3: "c"}


# --------------------------------------------------------------------------- character checks

def test_wsp_text_check_is_printable_ascii():
    for code in list(range(0x3000)) + [0xD800, 0xFEFF, 0x10FFFF]:
        ch = chr(code)
        allowed = 0x20 <= code <= 0x7E
        assert outcome(wsp_push._text, ch)[0] == ("ok" if allowed else "error")
        if 0 < code < 0x100:  # (NUL ends the text)
            raw = bytes([code, 0])
            assert outcome(wsp_push._read_text, raw, 0, 2, "x")[0] == ("ok" if allowed else "error")
    assert outcome(wsp_push._text, "")[0] == "error"


def test_http_token_and_value_checks_are_the_rfc_2616_ones():
    for code in list(range(0x3000)) + [0xD800, 0x10FFFF]:
        ch = chr(code)
        token = 0x21 <= code <= 0x7E and ch not in http_binding.TOKEN_SPECIALS
        assert http_binding.is_token_char(ch) is token
        assert (outcome(http_binding._extra, {f"a{ch}b": "v"})[0] == "ok") is token
        printable = ch == "\t" or (ch.isascii() and ch.isprintable())
        assert (outcome(http_binding._extra, {"a": f"v{ch}v"})[0] == "ok") is printable
    assert outcome(http_binding._extra, {"": "v"})[0] == "error"


def test_a_hostile_peers_large_documents_are_decoded_but_never_kept():
    """dmsim server decodes what a socket sends: a large document of plain tags is decoded right,
    and neither memo keeps its megabyte skeleton (512 of them would be gigabytes)."""
    root = Element("SyncML")
    for i in range(3000):
        SubElement(SubElement(root, "SyncBody"), "Final")
    data = wbxml._encode_tree(root)
    kept = (dict(wbxml._PROTOTYPES), dict(wbxml._FORMATS))
    for _ in range(2):
        assert len(wbxml.decode(data)) == 3000
        assert len(wbxml.encode(root)) == len(data)
    assert (dict(wbxml._PROTOTYPES), dict(wbxml._FORMATS)) == kept
