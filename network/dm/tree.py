"""Building and reading SyncML element trees (OMA SyncML RepPro 1.2 element names).

Trees are ``xml.etree.ElementTree.Element`` objects with plain local names; the WBXML and XML
codecs (``wbxml.py``, ``syncml_xml.py``) turn them into bytes. These helpers keep protocol code
short: ``E("Item", E("Target", E("LocURI", "./DevInfo/Mod")), E("Data", "x"))``.

Reading: a path of plain tag names (``"Cred/Meta/Type"``) is followed child by child
(:func:`find_path`, :func:`find_all`) with the C ``Element.find``/``findall`` of one tag, which
do not go through ElementPath; the result is the one ``Element.find``/``iterfind`` give for the
same path (the first match in document order, or all of them in document order). Any other
path (``.``, ``*``, ``//``, predicates, namespaces) goes to ElementPath as before.
"""
from __future__ import annotations

import re
from xml.etree.ElementTree import Element

from dmsim.base.errors import ProtocolError

_PLAIN_PATH = re.compile(r"[A-Za-z0-9_-]+(?:/[A-Za-z0-9_-]+)*\Z")
_PATHS: dict[str, tuple[str, ...] | None] = {}  # path -> its tag names, or None: ElementPath syntax


def E(tag: str, *content: "Element | str | int | None") -> Element:
    """Return an element with ``tag``; str/int content becomes its text, elements its children."""
    elem = Element(tag)
    for c in content:
        if c is None:
            continue
        if c.__class__ is Element:  # exact-class test: this runs for every element of every message
            elem.append(c)
        else:
            elem.text = c if c.__class__ is str else str(c)
    return elem


def _names(path: str) -> tuple[str, ...] | None:
    """Return the tag names of a plain ``a/b/c`` path, or None for one that needs ElementPath."""
    try:
        return _PATHS[path]
    except KeyError:
        names = tuple(path.split("/")) if _PLAIN_PATH.match(path) else None
        if len(_PATHS) < 1024:  # paths are literals of the code; the bound only guards misuse
            _PATHS[path] = names
        return names


def find_path(elem: Element, path: str) -> Element | None:
    """Return ``elem.find(path)``: the first element at ``path`` in document order, or None."""
    if "/" not in path:
        return elem.find(path)  # one tag: C code; anything else goes to ElementPath there too
    names = _names(path)
    if names is None:
        return elem.find(path)
    return _first(elem, names, 0)


def _first(elem: Element, names: tuple[str, ...], depth: int) -> Element | None:
    """Return the first element at ``names[depth:]`` below ``elem``, trying each match of
    ``names[depth]`` in turn (ElementPath's order: the first ``a`` may have no ``b``)."""
    last = len(names) - 1
    for child in elem.findall(names[depth]):
        found = child.find(names[last]) if depth + 1 == last else _first(child, names, depth + 1)
        if found is not None:
            return found
    return None


def find_all(elem: Element, path: str) -> list[Element]:
    """Return ``list(elem.iterfind(path))``: every element at ``path``, in document order."""
    names = _names(path)
    if names is None:
        return list(elem.iterfind(path))
    level = elem.findall(names[0])
    for name in names[1:]:
        level = [found for parent in level for found in parent.findall(name)]
    return level


def text(elem: Element, path: str, default: str | None = None) -> str | None:
    """Return the stripped text at ``path`` below ``elem`` ('' for an empty element), or ``default``."""
    found = elem.find(path) if "/" not in path else find_path(elem, path)
    if found is None:
        return default
    return (found.text or "").strip()


def need_text(elem: Element, path: str, where: str) -> str:
    """Return the text at ``path``; raise ProtocolError naming ``where`` when it is missing."""
    value = text(elem, path)
    if value is None:
        raise ProtocolError(f"{where}: missing <{path}>")
    return value
