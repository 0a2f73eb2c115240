"""WBXML 1.3 codec for SyncML 1.2 documents (OMA DM's ``application/vnd.syncml.dm+wbxml``).

Implements WAP-192-WBXML-20010725 (WBXML 1.3) §5 (document structure, mb_u_int32, string table,
global tokens, code pages) with the SyncML 1.2 tag pages of :mod:`.codepages`
(OMA-TS-SyncML_RepPro-V1_2 §8, OMA-TS-SyncML_MetaInfo-V1_2 §8).

The tree is an ``xml.etree.ElementTree.Element`` with plain local tag names. Choices where the
specs leave room:

* ``encode`` writes version 1.3, public id 0x1201, charset UTF-8, an empty string table, and
  every PCDATA as inline string (STR_I). A text containing NUL cannot be STR_I and goes as
  OPAQUE UTF-8; an element with attribute ``opaque_hex`` goes as OPAQUE of those bytes.
* Both directions keep, per document shape seen, what makes the next document of that shape
  cheap (``_FORMATS``, ``_PROTOTYPES``); see "Shape caches" below. Every document is still
  encoded from its own tree and decoded from its own bytes.
* ``decode`` accepts WBXML 1.0-1.3, SyncML 1.0/1.1/1.2 public ids (numeric or as a string-table
  reference), charsets UTF-8, US-ASCII and "unknown" (read as UTF-8), and PCDATA as STR_I, STR_T,
  ENTITY or OPAQUE. OPAQUE bytes that are not UTF-8 set attribute ``opaque_hex`` instead of text.
  Attributes, LITERAL tags, extensions and processing instructions are refused: SyncML has none.
  Nesting deeper than ``MAX_DEPTH`` is refused.
"""
from __future__ import annotations

import copy
import re
from operator import attrgetter
from typing import Iterable
from xml.etree.ElementTree import Element

from dmsim.network.dm import codepages as cp
from dmsim.network.memo import Memo
from dmsim.network.varint import encode_varint32
from dmsim.base.errors import DecodeError, ProtocolError

MEDIA_TYPE_DM_WBXML = "application/vnd.syncml.dm+wbxml"
MEDIA_TYPE_DM_XML = "application/vnd.syncml.dm+xml"
MEDIA_TYPE_DS_WBXML = "application/vnd.syncml+wbxml"

WBXML_VERSION_13 = 0x03
CHARSET_UTF8 = 0x6A  # IANA MIBenum
CHARSET_US_ASCII = 0x03
CHARSET_UNKNOWN = 0x00
MAX_DEPTH = 64
OPAQUE_HEX_ATTR = "opaque_hex"

# WBXML 1.3 §7.1 global tokens
SWITCH_PAGE = 0x00
END = 0x01
ENTITY = 0x02
STR_I = 0x03
LITERAL = 0x04
EXT_I = (0x40, 0x41, 0x42)
PI = 0x43
LITERAL_C = 0x44
EXT_T = (0x80, 0x81, 0x82)
STR_T = 0x83
LITERAL_A = 0x84
EXT = (0xC0, 0xC1, 0xC2)
OPAQUE = 0xC3
LITERAL_AC = 0xC4

TAG_HAS_ATTRIBUTES = 0x80
TAG_HAS_CONTENT = 0x40
TAG_ID_MASK = 0x3F

_LITERALS = (LITERAL, LITERAL_C, LITERAL_A, LITERAL_AC)
_CHARSETS = {CHARSET_UTF8: "utf-8", CHARSET_US_ASCII: "ascii", CHARSET_UNKNOWN: "utf-8"}
_WHAT = "wbxml"


def is_wbxml(content_type: str) -> bool:
    """Return True if ``content_type`` (parameters allowed) names SyncML DM or DS WBXML."""
    media = content_type.split(";", 1)[0].strip().lower()
    return media in (MEDIA_TYPE_DM_WBXML, MEDIA_TYPE_DS_WBXML)


# --------------------------------------------------------------------------- encoding

mb_u_int32 = encode_varint32  # WBXML §5.1 names it so


# Header written by ``encode``: version 1.3, SyncML 1.2 public id, UTF-8, empty string table.
_HEADER = (bytes([WBXML_VERSION_13]) + mb_u_int32(cp.PUBLIC_ID_SYNCML_12) + mb_u_int32(CHARSET_UTF8)
           + mb_u_int32(0))
# tag name -> (page, tag byte without content, tag byte with content, the latter followed by
# STR_I), so that the encoder does one lookup per element.
_TAG_BYTES: dict[str, tuple[int, int, int, bytes]] = {
    name: (page, token, token | TAG_HAS_CONTENT, bytes([token | TAG_HAS_CONTENT, STR_I]))
    for name, (page, token) in cp.TOKEN_BY_TAG.items()
}
_SWITCH_TO = {page: bytes([SWITCH_PAGE, page]) for page in cp.TAG_BY_TOKEN}


def encode(root: Element) -> bytes:
    """Return the WBXML 1.3 encoding of the SyncML tree ``root`` (deterministic).

    Raises ProtocolError for a tag on neither code page or an attribute other than
    ``opaque_hex``: such a tree has no WBXML form.
    """
    shape = _text_shape(root)
    if shape is not None:
        key, texts = shape
        try:
            fmt = _FORMATS.get(key)
        except TypeError:  # an unhashable tag: _encode_tree refuses it
            fmt = shape = None
        if fmt is not None:
            try:
                return _HEADER + (fmt % texts).encode("utf-8")
            except UnicodeEncodeError:  # a lone surrogate: _encode_tree says which text
                pass
    out = _encode_tree(root)
    if shape is not None and key not in _FORMATS:
        _learn_format(key, root)
    return out


def _encode_tree(root: Element) -> bytes:
    """Return the encoding of ``root`` written element by element (WAP-192-WBXML §5.8)."""
    if root.tail:  # not part of the document: encode a copy without it
        root = copy.copy(root)
        root.tail = None
    out = bytearray(_HEADER)
    try:
        _encode_elements((root,), out, cp.PAGE_SYNCML)
    except UnicodeEncodeError as exc:  # str.encode of a text with a lone surrogate
        raise ProtocolError(f"text {exc.object!r} has no UTF-8 form") from None
    return bytes(out)


def _encode_elements(elems: Iterable[Element], out: bytearray, page: int) -> int:
    """Append ``elems``, each followed by its tail, to ``out``; return the code page then in use.

    ``page`` is the code page in use before. A text with no UTF-8 form raises UnicodeEncodeError.
    """
    for elem in elems:
        tag = elem.tag
        try:
            tag_page, empty_byte, content_byte, text_prefix = _TAG_BYTES[tag]
        except (KeyError, TypeError):  # TypeError: a tag that is not even hashable
            raise ProtocolError(f"no SyncML 1.2 WBXML token for tag {tag!r}") from None
        # keys(), not attrib: reading attrib would add an empty dict to every element.
        opaque = opaque_bytes(elem) if elem.keys() else None
        if tag_page != page:
            out += _SWITCH_TO[tag_page]
            page = tag_page
        text = elem.text
        if len(elem) or opaque is not None:
            out.append(content_byte)
            if opaque is not None:
                _encode_opaque(opaque, out)
            if text:
                _encode_text(text, out)
            page = _encode_elements(elem, out, page)
            out.append(END)
        elif text and "\x00" not in text:
            # Fast path, for speed: a leaf holding text, as nearly all SyncML PCDATA is, goes
            # as tag and STR_I at once, the text, then its NUL and the END at once.
            out += text_prefix
            out += text.encode("utf-8")
            out += b"\x00\x01"
        elif text:
            out.append(content_byte)
            _encode_text(text, out)
            out.append(END)
        else:
            out.append(empty_byte)
        if elem.tail:
            _encode_text(elem.tail, out)
    return page


def opaque_bytes(elem: Element) -> bytes | None:
    """Return the bytes of attribute ``opaque_hex``, or None; ProtocolError for other attributes."""
    extra = set(elem.attrib) - {OPAQUE_HEX_ATTR}
    if extra:
        raise ProtocolError(f"<{elem.tag}> has attributes {sorted(extra)}; SyncML has none")
    hex_text = elem.get(OPAQUE_HEX_ATTR)
    if hex_text is None:
        return None
    try:
        return bytes.fromhex(hex_text)
    except ValueError:
        raise ProtocolError(f"<{elem.tag}> {OPAQUE_HEX_ATTR}={hex_text!r} is not hex") from None


def _encode_opaque(raw: bytes, out: bytearray) -> None:
    out.append(OPAQUE)
    out += mb_u_int32(len(raw))
    out += raw


def _encode_text(text: str, out: bytearray) -> None:
    raw = text.encode("utf-8")
    if 0 in raw:  # a NUL byte cannot be inside STR_I
        _encode_opaque(raw, out)
    else:
        out.append(STR_I)
        out += raw
        out.append(0)


# --------------------------------------------------------------------------- decoding

class _Reader:
    """A cursor over the WBXML bytes; every read past the end raises DecodeError."""

    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def fail(self, message: str, expected: str = "", offset: int | None = None) -> DecodeError:
        return DecodeError(_WHAT, self.pos if offset is None else offset, message, expected)

    def u8(self, what: str) -> int:
        if self.pos >= len(self.data):
            raise self.fail(f"truncated: missing {what}")
        b = self.data[self.pos]
        self.pos += 1
        return b

    def mb_u_int32(self, what: str) -> int:
        # Indexes the bytes directly instead of calling u8 per byte: every header has three.
        data, start = self.data, self.pos
        end = start + 5 if start + 5 <= len(data) else len(data)  # min() costs more here
        value = 0
        for pos in range(start, end):
            b = data[pos]
            value = (value << 7) | (b & 0x7F)
            if not b & 0x80:
                if value > 0xFFFFFFFF:
                    break
                self.pos = pos + 1
                return value
        else:
            if end - start < 5:
                raise self.fail(f"truncated: missing {what}", offset=end)
        raise self.fail(f"mb_u_int32 overflow in {what}", "at most 32 bits in 5 bytes", start)

    def take(self, n: int, what: str) -> bytes:
        if n > len(self.data) - self.pos:
            raise self.fail(f"truncated: {what} needs {n} bytes, {len(self.data) - self.pos} left")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def cstring(self, what: str) -> bytes:
        end = self.data.find(b"\x00", self.pos)
        if end < 0:
            raise self.fail(f"unterminated {what}", "NUL terminator")
        chunk = self.data[self.pos:end]
        self.pos = end + 1
        return chunk


def _text(raw: bytes, codec: str, reader: _Reader, offset: int, what: str) -> str:
    try:
        return raw.decode(codec)
    except UnicodeDecodeError as exc:
        raise _not_text(exc, codec, reader, offset, what) from None


def _not_text(exc: UnicodeDecodeError, codec: str, reader: _Reader, offset: int,
              what: str) -> DecodeError:
    """Return the DecodeError for ``what`` at ``offset`` that ``codec`` could not decode."""
    return reader.fail(f"{what} is not valid {codec}: {exc.reason}", offset=offset)


def _table_string(table: bytes, index: int, codec: str, reader: _Reader, offset: int) -> str:
    if index >= len(table):
        raise reader.fail(f"string table index {index} beyond table of {len(table)} bytes",
                          offset=offset)
    end = table.find(b"\x00", index)
    if end < 0:
        raise reader.fail(f"string table entry at {index} has no NUL terminator", offset=offset)
    return _text(table[index:end], codec, reader, offset, "string table entry")


def _add_text(elem: Element, text: str) -> None:
    if len(elem):
        last = elem[-1]
        last.tail = (last.tail or "") + text
    else:
        elem.text = (elem.text or "") + text


def decode(data: bytes) -> Element:
    """Return the SyncML tree encoded in the WBXML ``data``.

    Raises DecodeError("wbxml", offset, ...) for any malformed or unsupported input.
    """
    data = bytes(data)
    split = _split_strings(data)
    if split is not None:
        prototype = _PROTOTYPES.get(split[0])
        if prototype is not None:
            return _fill(prototype, split[1])
    root = _decode_tokens(data)
    if split is not None:
        _learn_prototype(split, root)
    return root


def _decode_tokens(data: bytes) -> Element:
    """Return the tree of ``data`` read token by token (WAP-192-WBXML §5.3, §5.8)."""
    r = _Reader(data)
    if data.startswith(_HEADER):  # fast path: the header ``encode`` writes
        r.pos = len(_HEADER)
        table, codec = b"", "utf-8"
    else:
        table, codec = _decode_header(r)
    return _decode_body(r, table, codec)


def _decode_header(r: _Reader) -> tuple[bytes, str]:
    """Return the string table and the codec of its charset, read from the start of ``r``."""
    version = r.u8("version")
    if version > WBXML_VERSION_13:
        raise r.fail(f"unsupported WBXML version 0x{version:02x}", "0x00-0x03", 0)
    pid_offset = r.pos
    public_id = r.mb_u_int32("public id")
    fpi_index = r.mb_u_int32("public id string index") if public_id == 0 else None
    charset_offset = r.pos
    charset = r.mb_u_int32("charset") if version >= 0x01 else CHARSET_UTF8
    codec = _CHARSETS.get(charset)
    if codec is None:
        raise r.fail(f"unsupported charset MIBenum {charset}", "UTF-8 (106)", charset_offset)
    table = r.take(r.mb_u_int32("string table length"), "string table")
    if fpi_index is not None:
        fpi = _table_string(table, fpi_index, codec, r, pid_offset)
        if fpi not in cp.ACCEPTED_FPIS:
            raise r.fail(f"public id {fpi!r} is not SyncML", cp.SYNCML_12_FPI, pid_offset)
    elif public_id not in cp.ACCEPTED_PUBLIC_IDS:
        raise r.fail(f"public id 0x{public_id:x} is not SyncML",
                     f"0x{cp.PUBLIC_ID_SYNCML_12:x}", pid_offset)
    return table, codec


def _tag_bytes(page: int) -> tuple[Element | None, ...]:
    """Return, for each byte value, an empty element of the tag that byte is on ``page``.

    None for a byte that is no attribute-less tag of ``page``: a global token, a tag with
    attributes or an unknown token. The decoder copies these prototypes: copying one costs
    less than calling Element(). They must stay empty.
    """
    by_byte: list[Element | None] = [None] * 256
    for token, name in cp.TAG_BY_TOKEN[page].items():
        by_byte[token] = by_byte[token | TAG_HAS_CONTENT] = Element(name)
    return tuple(by_byte)


# page -> tag bytes of that page, as _tag_bytes returns them
_TAGS_BY_BYTE = {page: _tag_bytes(page) for page in cp.TAG_BY_TOKEN}


def _decode_body(r: _Reader, table: bytes, codec: str) -> Element:
    """Return the root element of the body that starts at ``r.pos``."""
    # Fast path, for speed: tags, END and SWITCH_PAGE are read here by indexing the bytes with a
    # local offset, a tag byte looked up in one table, and a leaf holding one inline string
    # read at once. Any other token goes to _decode_other through the reader, moved to the
    # same offset.
    data = r.data
    size = len(data)
    pos = r.pos
    tags = _TAGS_BY_BYTE[cp.PAGE_SYNCML]
    page = cp.PAGE_SYNCML
    root: Element | None = None
    parent: Element | None = None          # the innermost open element
    stack: list[Element] = []              # the open elements, root first
    while True:
        try:
            tok = data[pos]
        except IndexError:
            missing = "element" if root is None else "END or content"
            raise r.fail(f"truncated: missing {missing}", offset=pos) from None
        start = pos
        pos += 1
        prototype = tags[tok]
        if prototype is not None:
            elem = prototype.__copy__()
            if parent is None:
                root = elem
            else:
                parent.append(elem)
            if not tok & TAG_HAS_CONTENT:
                if parent is None:         # an empty root element
                    break
                continue
            if len(stack) >= MAX_DEPTH:
                raise r.fail(f"nesting deeper than {MAX_DEPTH}", offset=start)
            # A leaf holding one inline string (tag, STR_I, text, NUL, END), as nearly all
            # SyncML PCDATA is, is read at once. Anything else, errors included, is read token
            # by token.
            if pos < size and data[pos] == STR_I:
                end = data.find(0, pos + 1)
                if end >= 0 and end + 1 < size and data[end + 1] == END:
                    try:  # _text, inlined
                        elem.text = data[pos + 1:end].decode(codec)
                    except UnicodeDecodeError as exc:
                        raise _not_text(exc, codec, r, pos, "inline string") from None
                    pos = end + 2
                    if parent is None:     # the root was this leaf
                        break
                    continue
            stack.append(elem)
            parent = elem
        elif tok == END:
            if parent is None:
                raise r.fail("END outside any element", offset=start)
            stack.pop()
            if not stack:
                break
            parent = stack[-1]
        elif tok == SWITCH_PAGE:
            if pos >= size:
                raise r.fail("truncated: missing code page", offset=pos)
            page = data[pos]
            pos += 1
            tags = _TAGS_BY_BYTE.get(page)
            if tags is None:
                raise r.fail(f"unknown code page {page}", "0 (SyncML) or 1 (MetInf)", start + 1)
        else:
            r.pos = pos
            _decode_other(r, tok, parent, page, table, codec, start)
            pos = r.pos
    if pos < size:
        raise r.fail("trailing bytes after the root element", "end of data", pos)
    return root


def _decode_other(r: _Reader, tok: int, parent: Element | None, page: int, table: bytes,
                  codec: str, start: int) -> None:
    """Read the token ``tok`` found at ``start`` that _decode_body has no fast path for.

    That is character data (STR_I, STR_T, ENTITY, OPAQUE); every other such token is one
    SyncML does not use, and raises DecodeError.
    """
    if tok in (STR_I, STR_T, OPAQUE, ENTITY):
        if parent is None:
            raise r.fail("character data outside the root element", offset=start)
        _decode_content(r, tok, parent, table, codec, start)
    elif tok in _LITERALS:
        raise r.fail("LITERAL tag/attribute: SyncML uses only code page tokens", offset=start)
    elif tok in EXT_I or tok in EXT_T or tok in EXT:
        raise r.fail(f"extension token 0x{tok:02x} not used by SyncML", offset=start)
    elif tok == PI:
        raise r.fail("processing instruction not supported", offset=start)
    elif tok & TAG_HAS_ATTRIBUTES:
        raise r.fail(f"tag 0x{tok:02x} has attributes; SyncML has none", offset=start)
    else:
        raise r.fail(f"unknown tag token 0x{tok & TAG_ID_MASK:02x} on page {page}", offset=start)


def _decode_content(r: _Reader, tok: int, elem: Element, table: bytes, codec: str,
                    start: int) -> None:
    if tok == STR_I:
        _add_text(elem, _text(r.cstring("inline string"), codec, r, start, "inline string"))
    elif tok == STR_T:
        index = r.mb_u_int32("string table index")
        _add_text(elem, _table_string(table, index, codec, r, start))
    elif tok == ENTITY:
        code = r.mb_u_int32("entity")
        if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
            raise r.fail(f"entity {code:#x} is not a Unicode scalar value", offset=start)
        _add_text(elem, chr(code))
    else:
        raw = r.take(r.mb_u_int32("opaque length"), "opaque data")
        try:
            _add_text(elem, raw.decode("utf-8"))
        except UnicodeDecodeError:
            elem.set(OPAQUE_HEX_ATTR, elem.get(OPAQUE_HEX_ATTR, "") + raw.hex())


# --------------------------------------------------------------------------- shape caches
#
# For speed, both directions remember the documents' shapes. The shape of a tree is its tags in
# document order, each element's child count and whether it has text; documents of one shape
# differ only in their texts, and so do their encodings, which are a fixed skeleton of tokens
# with the texts' UTF-8 in between (WAP-192-WBXML §5.8.4.1 STR_I).
#
# Encoding: the skeleton of a shape is kept as a %-format whose %s are the texts, made once by
# the element-by-element encoder. A tree of a known shape is encoded by formatting its own texts
# into it. Trees with attributes, tails or a text holding NUL (which goes as OPAQUE) take the
# element-by-element encoder.
#
# Decoding: the body, read as UTF-8, is split at its STR_I strings; what is left (the tokens,
# the strings cut out) is the skeleton. For a skeleton made only of tags without attributes,
# END and SWITCH_PAGE, byte-equal skeletons parse to the same tree whatever the strings, so the
# tree decoded the first time, emptied of its texts, is kept; a later document with that
# skeleton is a copy of it with the strings read from its own bytes put back. Anything else,
# errors included, is read token by token by _decode_body.

_SHAPES_MAX = 512  # shapes either memo holds before it starts afresh
# Longest skeleton kept (characters): DM messages have a few hundred; a hostile peer's large documents
# (dmsim server decodes what a socket sends) must not fill 512 slots with megabyte trees.
_SKELETON_MAX = 4096
_MARK = "\ue000"  # stands for a text while a format is made: not ASCII, so not in a skeleton
_tag_of = attrgetter("tag")
_text_of = attrgetter("text")
_FORMATS: Memo[tuple[tuple, tuple[int, ...], tuple[bool, ...]], str] = Memo(_SHAPES_MAX)


def _text_shape(root: Element) -> tuple[tuple, tuple[str, ...]] | None:
    """Return the shape of ``root`` and its texts in document order, or None for a tree the
    format cannot encode: one with an attribute, a tail, a text holding NUL or a text that is
    no str. Every per-element read here is a C-level map, for speed."""
    elems = list(root.iter())
    try:
        if any(map(Element.keys, elems)):
            return None
        texts = tuple(root.itertext())  # the non-empty texts and tails (below root)
        joined = "".join(texts)  # TypeError for a text that is no str
    except TypeError:  # also an element that is no C Element
        return None
    has_text = tuple(map(bool, map(_text_of, elems)))
    if "\x00" in joined or has_text.count(True) != len(texts):  # NUL, or a tail among texts
        return None
    return (tuple(map(_tag_of, elems)), tuple(map(len, elems)), has_text), texts


def _learn_format(key: tuple, root: Element) -> None:
    """Keep the %-format of the shape ``key`` of ``root``, made by _encode_tree on a copy whose
    texts are each _MARK."""
    marked = copy.deepcopy(root)
    for elem in marked.iter():
        if elem.text:
            elem.text = _MARK
    skeleton = _encode_tree(marked)[len(_HEADER):].decode("utf-8")
    if len(skeleton) <= _SKELETON_MAX:
        _FORMATS.remember(key, skeleton.replace("%", "%%").replace(_MARK, "%s"))


_STR_I_STRING = re.compile("\x03([^\x00]*)\x00")  # STR_I, its string, NUL (body read as UTF-8)
_SKELETON_CUT = "\x03\x00"  # what stays of an STR_I in a skeleton
# Tokens a kept skeleton may hold besides cut STR_I: SWITCH_PAGE and its page, END and tags
# without attributes (WAP-192-WBXML §5.8.2); none of them is STR_I's 0x03.
_SIMPLE_TOKENS = re.compile("[\x00\x01\x05-\x3f\x45-\x7f]*")
_PROTOTYPES: Memo[str, tuple[Element, tuple[int, ...]]] = Memo(_SHAPES_MAX)


def _split_strings(data: bytes) -> tuple[str, list[str]] | None:
    """Return the skeleton of the body of ``data`` and its STR_I strings, or None unless ``data``
    starts with the header ``encode`` writes and its body is UTF-8."""
    if not data.startswith(_HEADER):
        return None
    try:
        body = data[len(_HEADER):].decode("utf-8")
    except UnicodeDecodeError:
        return None
    pieces = _STR_I_STRING.split(body)
    return _SKELETON_CUT.join(pieces[0::2]), pieces[1::2]


def _fill(prototype: tuple[Element, tuple[int, ...]], strings: list[str]) -> Element:
    """Return a copy of the kept tree with ``strings`` as the texts of its elements ``slots``."""
    tree, slots = prototype
    root = tree.__deepcopy__({})
    elems = list(root.iter())
    for index, text in zip(slots, strings):
        elems[index].text = text
    return root


def _learn_prototype(split: tuple[str, list[str]], root: Element) -> None:
    """Keep ``root``, decoded by _decode_body from a body split as ``split``, if its skeleton is
    simple tokens only and each string became, in order, the text of one element."""
    skeleton, strings = split
    if len(skeleton) > _SKELETON_MAX or not _SIMPLE_TOKENS.fullmatch(skeleton.replace(_SKELETON_CUT, "")):
        return
    elems = list(root.iter())
    slots = tuple(i for i, elem in enumerate(elems) if elem.text is not None)
    if any(elem.tail is not None for elem in elems) or [elems[i].text for i in slots] != strings:
        return
    tree = copy.deepcopy(root)
    for elem in tree.iter():
        elem.text = None
    _PROTOTYPES.remember(skeleton, (tree, slots))
