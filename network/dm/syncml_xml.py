"""XML representation of SyncML 1.2 documents (``application/vnd.syncml.dm+xml``).

Implements the XML form of OMA-TS-SyncML_RepPro-V1_2 (namespace ``SYNCML:SYNCML1.2``) with
Meta Information elements in ``syncml:metinf`` (OMA-TS-SyncML_MetaInfo-V1_2 §6), over the same
tree as :mod:`.wbxml`: ``Element`` with plain local tag names.

Choices where the specs leave room:

* ``to_xml`` writes an XML declaration and no DOCTYPE; ``xmlns`` appears only where an element's
  namespace differs from its parent's (SyncML on the root, metinf on the outermost MetInf-page
  elements). Attributes (only dmsim's ``opaque_hex``) are written as they are.
* ``from_xml`` drops namespaces, comments and processing instructions, and whitespace-only text.
  A DOCTYPE is accepted, but one that declares an entity is refused (entity expansion attacks),
  as is a reference to an undeclared entity; external DTDs are never fetched. Nesting deeper than
  ``wbxml.MAX_DEPTH`` is refused, as in WBXML.
"""
from __future__ import annotations

from xml.etree.ElementTree import Element, tostring
from xml.parsers import expat

from dmsim.network.dm import codepages as cp
from dmsim.network.dm.wbxml import MAX_DEPTH
from dmsim.base.errors import DecodeError

XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>'
_WHAT = "xml"


# --------------------------------------------------------------------------- writing

def to_xml(root: Element) -> bytes:
    """Return ``root`` as UTF-8 SyncML XML bytes (deterministic, no pretty printing)."""
    return XML_DECLARATION + tostring(_with_namespaces(root, None), encoding="unicode").encode()


def _with_namespaces(elem: Element, inherited: str | None) -> Element:
    page = cp.page_of(elem.tag)
    ns = cp.PAGE_NAMESPACES[page] if page is not None else inherited
    attrib = {"xmlns": ns} if ns is not None and ns != inherited else {}
    attrib.update(elem.attrib)
    copy = Element(elem.tag, attrib)
    copy.text, copy.tail = elem.text, elem.tail
    copy.extend(_with_namespaces(child, ns) for child in elem)
    return copy


# --------------------------------------------------------------------------- reading

class _TreeBuilder:
    """expat callbacks that build the local-name tree and refuse entity declarations."""

    def __init__(self, parser: expat.XMLParserType):
        self.parser = parser
        self.root: Element | None = None
        self.stack: list[Element] = []

    def _fail(self, message: str) -> DecodeError:
        return DecodeError(_WHAT, max(self.parser.CurrentByteIndex, 0), message)

    def start(self, name: str, attrs: dict[str, str]) -> None:
        if len(self.stack) >= MAX_DEPTH:
            raise self._fail(f"nesting deeper than {MAX_DEPTH}")
        elem = Element(_local(name), {_local(k): v for k, v in attrs.items()})
        if self.stack:
            self.stack[-1].append(elem)
        else:
            self.root = elem
        self.stack.append(elem)

    def end(self, _name: str) -> None:
        self.stack.pop()

    def data(self, text: str) -> None:
        if not self.stack:
            return
        elem = self.stack[-1]
        if len(elem):
            elem[-1].tail = (elem[-1].tail or "") + text
        else:
            elem.text = (elem.text or "") + text

    def entity_decl(self, name: str, *_args) -> None:
        raise self._fail(f"DOCTYPE declares entity {name!r}; entity declarations are refused")

    def skipped_entity(self, name: str, _is_parameter: bool) -> None:
        raise self._fail(f"reference to undeclared entity {name!r}")


def _local(name: str) -> str:
    return name.rsplit(" ", 1)[-1]


def from_xml(data: bytes) -> Element:
    """Return the SyncML tree of the XML ``data`` (local tag names, whitespace-only text dropped).

    Raises DecodeError("xml", byte offset, ...) for malformed XML or a refused DOCTYPE.
    """
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.buffer_text = True
    builder = _TreeBuilder(parser)
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    parser.EntityDeclHandler = builder.entity_decl
    parser.UnparsedEntityDeclHandler = builder.entity_decl
    parser.SkippedEntityHandler = builder.skipped_entity
    try:
        parser.Parse(bytes(data), True)
    except expat.ExpatError as exc:
        offset = max(parser.ErrorByteIndex, 0)
        raise DecodeError(_WHAT, offset, expat.ErrorString(exc.code)) from None
    except LookupError as exc:  # an XML declaration naming an encoding Python does not know
        raise DecodeError(_WHAT, 0, f"XML declaration: {exc}", "a known encoding such as UTF-8") from None
    if builder.root is None:  # expat reports this itself; kept for safety
        raise DecodeError(_WHAT, 0, "no root element")
    for elem in builder.root.iter():
        if elem.text is not None and not elem.text.strip():
            elem.text = None
        if elem.tail is not None and not elem.tail.strip():
            elem.tail = None
    return builder.root


# --------------------------------------------------------------------------- comparing

def trees_equal(a: Element, b: Element) -> bool:
    """Return True if both trees have the same tags, attributes, stripped texts and tails."""
    pending = [(a, b)]
    while pending:
        x, y = pending.pop()
        if (x.tag != y.tag or x.attrib != y.attrib or len(x) != len(y)
                or _stripped(x.text) != _stripped(y.text)
                or _stripped(x.tail) != _stripped(y.tail)):
            return False
        pending.extend(zip(x, y))
    return True


def _stripped(text: str | None) -> str:
    return (text or "").strip()
