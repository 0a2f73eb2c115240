"""Building and reading SyncML element trees (OMA SyncML RepPro 1.2 element names).

Trees are ``xml.etree.ElementTree.Element`` objects with plain local names; the WBXML and XML
codecs (``wbxml.py``, ``syncml_xml.py``) turn them into bytes. These helpers keep protocol code
short: ``E("Item", E("Target", E("LocURI", "./DevInfo/Mod")), E("Data", "x"))``.
"""
from __future__ import annotations

from xml.etree.ElementTree import Element

from dmsim.base.errors import ProtocolError


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


def text(elem: Element, path: str, default: str | None = None) -> str | None:
    """Return the stripped text at ``path`` below ``elem`` ('' for an empty element), or ``default``."""
    found = elem.find(path)
    if found is None:
        return default
    return (found.text or "").strip()


def need_text(elem: Element, path: str, where: str) -> str:
    """Return the text at ``path``; raise ProtocolError naming ``where`` when it is missing."""
    value = text(elem, path)
    if value is None:
        raise ProtocolError(f"{where}: missing <{path}>")
    return value
