"""A small declarative schema for YAML-shaped data, with exact error locations.

Field types are data, in the manner of a tiny JSON Schema: ``Int``, ``Float``, ``Probability``,
``Seconds``, ``Str``, ``Bool``, ``List``, ``Tuple``, ``Struct`` (named fields with defaults and
docs), ``Tagged`` (a mapping whose ``kind`` picks one of several ``Struct`` variants),
``Nullable`` and ``Raw``. ``validate()`` returns the value normalised (ints accepted as floats,
defaults filled in) or raises ``ScenarioError`` with the ``file:line``, the dotted key path and
what was expected. ``load_yaml()`` reads a YAML 1.1 document (PyYAML ``SafeLoader``) through
``yaml.compose`` so that every key path keeps its line; ``set_path()`` applies a ``--set``
override to raw data, checked against the schema; ``describe()`` prints a schema as text.

Choices where YAML itself is loose: booleans are never integers; mapping keys are taken as
written (``on:`` is the key "on", not ``True``); duplicate keys and merge keys (``<<``) are
refused; anchors and aliases are allowed (an error inside an alias points at its anchor).

Limits, so that no file makes the loader crash or hang (each refusal is a ``ScenarioError``
naming the file and line): a file or text of at most ``MAX_BYTES`` (1 MiB; a scenario is a few
kilobytes, and PyYAML's pure-Python parser takes seconds per MiB of dense values); lists and
mappings nested at most ``MAX_DEPTH`` (64) deep, counted both as written and once aliases are
expanded (PyYAML composes recursively, so a 5000-deep ``[[[...]]]`` would otherwise end in a
RecursionError); at most ``MAX_NODES`` (200000) values, counted both as written and once
aliases are expanded ("billion laughs": nine aliases of nine aliases ... would be 10^9 values).
"""
from __future__ import annotations

import copy
import difflib
import math
import re
import textwrap
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dmsim.base.errors import ScenarioError

KeyPath = tuple  # a key path: str segments for mapping keys, int segments for list items
Locate = Callable[[KeyPath], str]

MAX_BYTES = 1 << 20  # the largest scenario file or text read (module docstring: Limits)
MAX_DEPTH = 64  # the deepest nesting of lists and mappings
MAX_NODES = 200_000  # the most values, as written and with aliases expanded


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()
"""The default of a field that must be written."""


@dataclass(frozen=True)
class Derived:
    """The default of a field the caller fills in after validation; ``doc`` says from what."""

    doc: str


@dataclass(frozen=True)
class Problem:
    """A cross-field rule's complaint: ``at`` is the key path relative to the checked value."""

    at: KeyPath
    message: str
    expected: str = ""


Rule = Callable[[Any], "Problem | None"]


def quoted(text: Any) -> str:
    """Return ``text`` in single quotes for an error message, escaped (``repr``) when it holds a
    line break or another unprintable character, so that every error stays on one line."""
    text = str(text)
    return f"'{text}'" if text.isprintable() else repr(text)


def dotted(path: Iterable) -> str:
    """Return a key path written as ``links.sms.delay.quantiles.2`` (a key with a line break or
    another unprintable character escaped, as ``quoted`` does, without the quotes of a plain one)."""
    return ".".join(str(p) if str(p).isprintable() else repr(str(p)) for p in path)


def kind_of(value: Any) -> str:
    """Return how an error message names the type (and value) that was found."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({'true' if value else 'false'})"
    if isinstance(value, int):
        return f"an integer ({value})"
    if isinstance(value, float):
        return f"a number ({value})"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"a string ({shown!r})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__} ({value})"


def _fail(message: str, path: KeyPath, locate: Locate, expected: str = "") -> ScenarioError:
    return ScenarioError(message, where=locate(path), path=dotted(path), expected=expected)


def _suggest(key: str, allowed: Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(allowed), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else repr(x)


def _apply_rule(rule: Rule | None, value: Any, path: KeyPath, locate: Locate) -> None:
    problem = rule(value) if rule else None
    if problem is not None:
        raise _fail(problem.message, path + tuple(problem.at), locate, problem.expected)


# -- types --------------------------------------------------------------------------------------

class Type:
    """A field type; ``validate`` returns the normalised value or raises ``ScenarioError``."""

    name: str = ""  # a named type is described once, in its own section

    def expected(self) -> str:
        """Return what this type accepts, as a phrase ("an integer >= 0")."""
        raise NotImplementedError

    def validate(self, value: Any, path: KeyPath, locate: Locate) -> Any:
        """Return ``value`` normalised, with defaults filled in."""
        raise NotImplementedError


def _range_text(lo: float | None, hi: float | None, lo_exclusive: bool, closed: str) -> str:
    """Return " >= 0", " > 0 and <= 5" or, for a closed range, ``closed`` formatted with lo, hi."""
    if lo is not None and hi is not None and not lo_exclusive:
        return " " + closed.format(_num(lo), _num(hi))
    parts = []
    if lo is not None:
        parts.append(f"{'>' if lo_exclusive else '>='} {_num(lo)}")
    if hi is not None:
        parts.append(f"<= {_num(hi)}")
    return (" " + " and ".join(parts)) if parts else ""


@dataclass(frozen=True)
class Int(Type):
    """An integer in ``[min, max]``; a float with no fraction is accepted (``1.0e+6``)."""

    min: int | None = None
    max: int | None = None

    def expected(self) -> str:
        return "an integer" + _range_text(self.min, self.max, False, "from {} to {}")

    def validate(self, value, path, locate):
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(f"expected an integer, got {kind_of(value)}", path, locate, self.expected())
        if (self.min is not None and value < self.min) or (self.max is not None and value > self.max):
            raise _fail(f"{value} is out of range", path, locate, self.expected())
        return value


@dataclass(frozen=True)
class Float(Type):
    """A finite number in its range (ints are accepted and returned as floats)."""

    min: float | None = None
    max: float | None = None
    min_exclusive: bool = False
    noun: str = "a number"

    def expected(self) -> str:
        return self.noun + _range_text(self.min, self.max, self.min_exclusive, "between {} and {}")

    def validate(self, value, path, locate):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            hint = ""
            if isinstance(value, str) and re.fullmatch(r"\s*[-+]?[0-9.]+[eE][-+]?[0-9]+\s*", value):
                hint = " (YAML 1.1 reads 1e3 as text: write 1000.0 or 1.0e+3)"
            raise _fail(f"expected a number, got {kind_of(value)}{hint}", path, locate, self.expected())
        value = float(value)
        if not math.isfinite(value):
            raise _fail(f"{value} is not a finite number", path, locate, self.expected())
        too_low = self.min is not None and (value <= self.min if self.min_exclusive else value < self.min)
        if too_low or (self.max is not None and value > self.max):
            raise _fail(f"{_num(value)} is out of range", path, locate, self.expected())
        return value


def Probability() -> Float:  # noqa: N802 - reads as a type, like the classes
    """Return the type of a probability: a number from 0 to 1."""
    return Float(0.0, 1.0, noun="a probability")


def Seconds(positive: bool = False) -> Float:  # noqa: N802
    """Return the type of a duration in simulated seconds, ``>= 0`` (or ``> 0`` if ``positive``)."""
    return Float(0.0, None, min_exclusive=positive, noun="a duration in seconds")


@dataclass(frozen=True)
class Str(Type):
    """A string, optionally one of ``choices`` or matching ``pattern`` (``re.search``)."""

    choices: tuple[str, ...] | None = None
    pattern: str | None = None
    noun: str = ""  # how ``expected`` names it, when the pattern is not for reading

    def expected(self) -> str:
        if self.noun:
            return self.noun
        if self.choices:
            return "one of " + ", ".join(self.choices)
        return f"a string matching {self.pattern}" if self.pattern else "a string"

    def validate(self, value, path, locate):
        if not isinstance(value, str):
            hint = " (put it in quotes to make it text)" if isinstance(value, (bool, int, float)) else ""
            raise _fail(f"expected a string, got {kind_of(value)}{hint}", path, locate, self.expected())
        if self.choices is not None and value not in self.choices:
            raise _fail(f"{quoted(value)} is not allowed{_suggest(value, self.choices)}", path, locate, self.expected())
        if self.pattern is not None and not re.search(self.pattern, value):
            raise _fail(f"{quoted(value)} does not match {self.pattern}", path, locate, self.expected())
        return value


@dataclass(frozen=True)
class Bool(Type):
    """``true`` or ``false`` (YAML 1.1 also reads yes/no/on/off)."""

    def expected(self) -> str:
        return "true or false"

    def validate(self, value, path, locate):
        if not isinstance(value, bool):
            raise _fail(f"expected true or false, got {kind_of(value)}", path, locate, self.expected())
        return value


@dataclass(frozen=True)
class Raw(Type):
    """Any value, unchecked (another rule checks it later, as a sweep's values are)."""

    what: str = "any value"

    def expected(self) -> str:
        return self.what

    def validate(self, value, path, locate):
        return value


@dataclass(frozen=True)
class Nullable(Type):
    """``null`` or a value of ``inner``."""

    inner: Type

    def expected(self) -> str:
        return f"null or {self.inner.expected()}"

    def validate(self, value, path, locate):
        return None if value is None else self.inner.validate(value, path, locate)


@dataclass(frozen=True)
class List(Type):
    """A list of at least ``min_len`` items of type ``item``; ``rule`` checks the whole list."""

    item: Type
    min_len: int = 0
    rule: Rule | None = None

    def expected(self) -> str:
        inner = self.item.name or self.item.expected()
        return f"a list of at least {self.min_len} items, each {inner}" if self.min_len else f"a list, each item {inner}"

    def validate(self, value, path, locate):
        if not isinstance(value, list):
            raise _fail(f"expected a list, got {kind_of(value)}", path, locate, self.expected())
        if len(value) < self.min_len:
            raise _fail(f"needs at least {self.min_len} item(s), has {len(value)}", path, locate,
                        self.expected())
        out = [self.item.validate(v, path + (i,), locate) for i, v in enumerate(value)]
        _apply_rule(self.rule, out, path, locate)
        return out


@dataclass(frozen=True)
class Tuple(Type):
    """A list of exactly ``len(items)`` values, item ``i`` of type ``items[i]``."""

    items: tuple[Type, ...]
    names: tuple[str, ...] = ()

    def expected(self) -> str:
        names = self.names or tuple(f"item{i}" for i in range(len(self.items)))
        inner = "; ".join(f"{n}: {t.expected()}" for n, t in zip(names, self.items))
        return f"a [{', '.join(names)}] list ({inner})"

    def validate(self, value, path, locate):
        if not isinstance(value, list) or len(value) != len(self.items):
            got = f"a list of {len(value)}" if isinstance(value, list) else kind_of(value)
            raise _fail(f"expected a list of {len(self.items)}, got {got}", path, locate, self.expected())
        return [t.validate(v, path + (i,), locate) for i, (t, v) in enumerate(zip(self.items, value))]


@dataclass(frozen=True)
class Field:
    """A key of a ``Struct``: its type, its default (``REQUIRED``, a ``Derived`` or a raw value
    validated like a written one) and the sentence that documents it."""

    type: Type
    default: Any = REQUIRED
    doc: str = ""


@dataclass(frozen=True)
class Struct(Type):
    """A mapping with the given keys, no others; ``rule`` checks the filled-in mapping."""

    fields: dict[str, Field]
    doc: str = ""
    name: str = ""
    rule: Rule | None = None

    def expected(self) -> str:
        return "a mapping"

    def validate(self, value, path, locate, *, tag: tuple[str, str] | None = None):
        if not isinstance(value, dict):
            raise _fail(f"expected a mapping, got {kind_of(value)}", path, locate,
                        "a mapping with keys " + ", ".join(self.fields))
        allowed = ([tag[0]] if tag else []) + list(self.fields)
        for key in value:
            if key not in allowed:
                what = f" for kind '{tag[1]}'" if tag else ""
                raise _fail(f"unknown key {quoted(key)}{what}{_suggest(str(key), allowed)}", path + (key,), locate,
                            "one of the keys " + ", ".join(allowed) if allowed else "no keys")
        out: dict[str, Any] = {tag[0]: tag[1]} if tag else {}
        for key, f in self.fields.items():
            sub = path + (key,)
            if key in value:
                out[key] = f.type.validate(value[key], sub, locate)
            elif f.default is REQUIRED:
                raise _fail(f"missing required key '{key}'", sub, locate, f.type.expected())
            elif not isinstance(f.default, Derived):
                out[key] = f.type.validate(copy.deepcopy(f.default), sub, locate)
        _apply_rule(self.rule, out, path, locate)
        return out


@dataclass(frozen=True)
class Tagged(Type):
    """A mapping whose ``tag`` key (``kind``) picks the ``Struct`` that checks the other keys."""

    variants: dict[str, Struct]
    tag: str = "kind"
    name: str = ""
    doc: str = ""

    def expected(self) -> str:
        return f"a mapping with {self.tag}: one of " + ", ".join(self.variants)

    def validate(self, value, path, locate):
        if not isinstance(value, dict):
            raise _fail(f"expected a mapping, got {kind_of(value)}", path, locate, self.expected())
        kinds = list(self.variants)
        if self.tag not in value:
            raise _fail(f"missing required key '{self.tag}'", path + (self.tag,), locate, "one of " + ", ".join(kinds))
        kind = value[self.tag]
        if not isinstance(kind, str) or kind not in self.variants:
            shown = quoted(kind) if isinstance(kind, str) else kind_of(kind)
            raise _fail(f"unknown {self.tag} {shown}{_suggest(str(kind), kinds)}", path + (self.tag,), locate,
                        "one of " + ", ".join(kinds))
        return self.variants[kind].validate(value, path, locate, tag=(self.tag, kind))


def validate(schema: Type, value: Any, path: KeyPath = (), locate: Locate | None = None) -> Any:
    """Return ``value`` checked against ``schema``, normalised and with defaults filled in."""
    return schema.validate(value, tuple(path), locate or (lambda _p: ""))


def is_numeric(t: Type) -> bool:
    """Return whether ``t`` (or the type inside a ``Nullable``) is an ``Int`` or a ``Float``."""
    while isinstance(t, Nullable):
        t = t.inner
    return isinstance(t, (Int, Float))


# -- key paths inside schema + data ------------------------------------------------------------

class _PathProblem(Exception):
    def __init__(self, message: str, expected: str = ""):
        super().__init__(message)
        self.message, self.expected = message, expected


def _child(t: Type, seg: str, node: Any, at: KeyPath, strict: bool) -> tuple[Type, Any, str | int]:
    """Return (type, default, key) of segment ``seg`` inside a value ``node`` of type ``t``.

    With ``strict`` a ``Tagged`` key must belong to the node's own kind; otherwise a key of any
    kind is accepted, so that ``--set`` overrides of a kind and its keys work in any order.
    """
    while isinstance(t, Nullable):
        t = t.inner
    where = dotted(at) or "the top level"
    if isinstance(t, Struct):
        if seg not in t.fields:
            raise _PathProblem(f"{where} has no key {quoted(seg)}{_suggest(seg, t.fields)}",
                               "one of the keys " + ", ".join(t.fields))
        f = t.fields[seg]
        return f.type, f.default, seg
    if isinstance(t, Tagged):
        if seg == t.tag:
            return Str(choices=tuple(t.variants)), REQUIRED, seg
        kind = node.get(t.tag) if isinstance(node, dict) else None
        own = t.variants.get(kind) if isinstance(kind, str) else None
        order = [own] if strict else [own] + list(t.variants.values())
        for variant in (v for v in order if v is not None):
            if seg in variant.fields:
                f = variant.fields[seg]
                return f.type, f.default, seg
        keys = sorted({k for v in ([own] if strict and own else t.variants.values()) for k in v.fields})
        of = f" of kind '{kind}'" if strict and own else ""
        raise _PathProblem(f"{where}{of} has no key {quoted(seg)}{_suggest(seg, keys)}",
                           "one of the keys " + ", ".join([t.tag] + keys))
    if isinstance(t, (List, Tuple)):
        size = len(node) if isinstance(node, list) else 0
        if not seg.isdigit() or int(seg) >= size:
            raise _PathProblem(f"{where} is a list of {size} item(s); {quoted(seg)} is not one of its indexes",
                               f"an index from 0 to {size - 1}" if size else "an existing list item")
        return (t.item if isinstance(t, List) else t.items[int(seg)]), REQUIRED, int(seg)
    raise _PathProblem(f"{where} is {t.expected()}, it has no key {quoted(seg)}")


def split_path(text: str, *, where: str = "", at: str = "") -> list[str]:
    """Return the segments of a dotted key path; refuses empty segments."""
    segs = text.strip().split(".")
    if not text.strip() or any(not s.strip() for s in segs):
        raise ScenarioError(f"{quoted(text)} is not a dotted key path", where=where, path=at,
                            expected="keys joined by dots, like links.sms.loss")
    return [s.strip() for s in segs]


def type_at(schema: Type, data: Any, path: str, *, where: str = "", at: str = "") -> tuple[Type, KeyPath]:
    """Return the type at dotted ``path`` in validated ``data`` and the path as a key tuple.

    Errors are raised with ``where`` and ``at`` (the key that named ``path``)."""
    t, node, done = schema, data, ()
    try:
        for seg in split_path(path, where=where, at=at):
            t, _default, key = _child(t, seg, node, done, strict=True)
            node = node.get(key) if isinstance(node, dict) else node[key] if isinstance(node, list) else None
            done += (key,)
    except _PathProblem as p:
        raise ScenarioError(p.message, where=where, path=at, expected=p.expected) from None
    return t, done


def _container(t: Type) -> type | tuple[type, ...]:
    """Return the Python type a raw value of schema type ``t`` must have for a key to be set inside it."""
    while isinstance(t, Nullable):
        t = t.inner
    if isinstance(t, (Struct, Tagged)):
        return dict
    return list if isinstance(t, (List, Tuple)) else (dict, list)


def set_path(schema: Type, raw: dict, path: str, value: Any, *, where: str = "--set") -> tuple[KeyPath, list[KeyPath]]:
    """Set ``value`` at dotted ``path`` in unvalidated ``raw`` data, checking keys against ``schema``.

    Missing mappings on the way are created from their schema default (so that ``delay.median``
    lands in the default delay); returns the key path set and the paths created."""
    segs = split_path(path, where=where, at=path)
    t, node, done, created = schema, raw, (), []
    try:
        for i, seg in enumerate(segs):
            t, default, key = _child(t, seg, node, done, strict=False)
            done += (key,)
            if i == len(segs) - 1:
                node[key] = value
                return done, created
            if isinstance(node, dict) and node.get(key) is None:
                node[key] = copy.deepcopy(default) if isinstance(default, (dict, list)) else {}
                created.append(done)
            if not isinstance(node[key], _container(t)):
                raise _PathProblem(f"{dotted(done)} is {kind_of(node[key])} in the scenario, "
                                   f"so {quoted(seg)} has no key {quoted(segs[i + 1])} to set", t.expected())
            node = node[key]
    except _PathProblem as p:
        raise ScenarioError(p.message, where=where, path=path, expected=p.expected) from None
    raise AssertionError("unreachable")


# -- YAML with lines ---------------------------------------------------------------------------

class Locator:
    """Maps key paths to ``file:line``; a path with no line of its own takes its parent's."""

    def __init__(self, source: str):
        self.source = source
        self._places: dict[KeyPath, str] = {}

    def record(self, path: KeyPath, line: int) -> None:
        """Note that ``path`` is written at 1-based ``line``."""
        self._places[path] = f"{self.source}:{line}"

    def mark(self, path: KeyPath, where: str) -> None:
        """Note that ``path`` and everything under it now come from ``where`` (``--set``)."""
        n = len(path)
        for p in [p for p in self._places if len(p) > n and p[:n] == path]:
            del self._places[p]
        self._places[path] = where

    def __call__(self, path: KeyPath) -> str:
        p = tuple(path)
        while p not in self._places:
            if not p:
                return self.source
            p = p[:-1]
        return self._places[p]


_PLAIN_TAGS = {"tag:yaml.org,2002:seq", "tag:yaml.org,2002:map"}


class _Builder:
    """Turns composed YAML nodes into Python values, recording each key path's line."""

    def __init__(self, locator: Locator, place: Callable[[yaml.Node], str]):
        self.locator, self.place = locator, place
        self.constructor = yaml.constructor.SafeConstructor()
        self.count = 0

    def error(self, message: str, node: yaml.Node, path: KeyPath, expected: str = "") -> ScenarioError:
        return ScenarioError(message, where=self.place(node), path=dotted(path), expected=expected)

    def build(self, node: yaml.Node, path: KeyPath, stack: frozenset = frozenset()) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise self.error(f"the document is too large (aliases expand to over {MAX_NODES} values)", node, path)
        if id(node) in stack:
            raise self.error("an alias refers to a value that contains it", node, path)
        if len(path) >= MAX_DEPTH and not isinstance(node, yaml.ScalarNode):
            raise self.error(f"lists and mappings are nested more than {MAX_DEPTH} deep (through aliases)",
                             node, path)
        if isinstance(node, yaml.ScalarNode):
            try:
                return self.constructor.construct_object(node, deep=True)
            except (yaml.YAMLError, ValueError, TypeError) as exc:
                raise self.error(f"cannot read the value {node.value!r}: {getattr(exc, 'problem', None) or exc}",
                                 node, path) from None
        if node.tag not in _PLAIN_TAGS:
            raise self.error(f"the YAML tag {node.tag} is not supported here", node, path, "a plain list or mapping")
        inner = stack | {id(node)}
        if isinstance(node, yaml.SequenceNode):
            out = []
            for i, item in enumerate(node.value):
                self.locator.record(path + (i,), item.start_mark.line + 1)
                out.append(self.build(item, path + (i,), inner))
            return out
        result: dict[str, Any] = {}
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise self.error("merge keys (<<) are not supported; write the keys out or alias the whole value",
                                 key_node, path)
            if not isinstance(key_node, yaml.ScalarNode):
                raise self.error("a key must be a plain name, not a list or mapping", key_node, path)
            key, line = key_node.value, key_node.start_mark.line + 1
            if key in first_line:
                raise self.error(f"duplicate key {quoted(key)} (first written at line {first_line[key]})", key_node,
                                 path + (key,), "each key once per mapping")
            first_line[key] = line
            self.locator.record(path + (key,), line)
            result[key] = self.build(value_node, path + (key,), inner)
        return result


class _TooMuch(Exception):
    """Raised inside the composer: ``message`` at ``mark`` (load_yaml turns it into a ScenarioError)."""

    def __init__(self, message: str, mark):
        super().__init__(message)
        self.message, self.mark = message, mark


class _BoundedLoader(yaml.SafeLoader):
    """``SafeLoader`` whose composer refuses more than ``MAX_DEPTH`` nested lists and mappings and
    more than ``MAX_NODES`` values, before its recursion or the node count can blow up."""

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = self._nodes = 0

    def compose_node(self, parent, index):
        self._nodes += 1
        if self._nodes > MAX_NODES:
            raise _TooMuch(f"the document is too large (over {MAX_NODES} values)", self.peek_event().start_mark)
        nested = self.check_event(yaml.SequenceStartEvent, yaml.MappingStartEvent)
        if nested and self._depth >= MAX_DEPTH:
            raise _TooMuch(f"lists and mappings are nested more than {MAX_DEPTH} deep", self.peek_event().start_mark)
        self._depth += nested
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= nested


def read_text(path: Path) -> str:
    """Return the UTF-8 text of ``path``; ScenarioError naming the file when it cannot be read
    or is over ``MAX_BYTES`` (only that much is read, so a huge file or a device costs nothing)."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ScenarioError(f"cannot read the file: {exc.strerror or exc}", where=str(path)) from None
    if len(data) > MAX_BYTES:
        raise ScenarioError(f"the file is larger than {MAX_BYTES} bytes", where=str(path))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"not UTF-8 text (byte {exc.start})", where=str(path)) from None


def load_yaml(text: str, source: str, *, with_lines: bool = True) -> tuple[Any, Locator]:
    """Return the value of one YAML document and a ``Locator`` of its key paths.

    Errors name ``source:line`` (or just ``source`` when ``with_lines`` is false, as for a
    ``--set`` value)."""
    def place(mark_or_node) -> str:
        mark = getattr(mark_or_node, "start_mark", mark_or_node)
        return f"{source}:{mark.line + 1}" if with_lines and mark is not None else source

    if len(text) > MAX_BYTES:
        raise ScenarioError(f"the text is longer than {MAX_BYTES} characters", where=source)
    try:
        root = yaml.compose(text, Loader=_BoundedLoader)
    except _TooMuch as exc:
        raise ScenarioError(exc.message, where=place(exc.mark)) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        context = f"{exc.context} at line {exc.context_mark.line + 1}: " if exc.context and exc.context_mark else ""
        raise ScenarioError(f"invalid YAML: {context}{exc.problem or exc}", where=place(mark)) from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"invalid YAML: {exc}", where=source) from None
    locator = Locator(source)
    if root is None:
        locator.record((), 1)
        return None, locator
    locator.record((), root.start_mark.line + 1)
    return _Builder(locator, place).build(root, ()), locator


# -- describing a schema -----------------------------------------------------------------------

def flow(value: Any) -> str:
    """Return ``value`` written as YAML flow text (``{kind: fixed, value: 0.01}``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(flow(v) for v in value) + "]"
    if isinstance(value, str):
        return value if value and re.fullmatch(r"[A-Za-z_][\w.-]*", value) else repr(value)
    return repr(value)


class _Describer:
    def __init__(self, width: int):
        self.width, self.lines, self.named, self.seen = width, [], [], set()

    def ref(self, t: Type) -> str:
        inner = t
        while isinstance(inner, (Nullable, List)):
            inner = inner.inner if isinstance(inner, Nullable) else inner.item
        if inner.name:
            if inner.name not in self.seen:
                self.seen.add(inner.name)
                self.named.append(inner)
            if inner is t:
                return inner.name
        if isinstance(t, Nullable):
            return f"null or {self.ref(t.inner)}"
        if isinstance(t, List):
            inner_ref = self.ref(t.item) if t.item.name else ("a mapping" if isinstance(t.item, Struct) else
                                                             t.item.expected())
            return f"list of at least {t.min_len}, each {inner_ref}" if t.min_len else f"list, each {inner_ref}"
        if isinstance(t, Tagged):
            return f"one of the kinds below ({t.tag}: {', '.join(t.variants)})"
        return t.expected()

    def doc(self, text: str, indent: int) -> None:
        if text:
            pad = " " * indent
            self.lines += textwrap.wrap(text, self.width, initial_indent=pad, subsequent_indent=pad)

    def field(self, key: str, f: Field, indent: int) -> None:
        if f.default is REQUIRED:
            default = "required"
        elif isinstance(f.default, Derived):
            default = f"default: {f.default.doc}"
        else:
            default = f"default: {flow(f.default)}"
        self.lines.append(f"{' ' * indent}{key}: {self.ref(f.type)}  [{default}]")
        self.doc(f.doc, indent + 4)
        self.body(f.type, indent + 2)

    def body(self, t: Type, indent: int, expand: bool = False) -> None:
        """Write the keys under ``t``; a named type only when ``expand`` (it has its own section)."""
        while isinstance(t, (Nullable, List)):
            t = t.inner if isinstance(t, Nullable) else t.item
        if t.name and not expand:
            return
        if isinstance(t, Struct):
            for key, f in t.fields.items():
                self.field(key, f, indent)
        elif isinstance(t, Tagged):
            for kind, variant in t.variants.items():
                self.lines.append(f"{' ' * indent}{t.tag}: {kind}")
                self.doc(variant.doc, indent + 4)
                self.body(variant, indent + 2)


def describe(schema: Type, *, width: int = 100) -> str:
    """Return the keys of ``schema`` with their types, defaults and docs, as indented text;
    named types (``Struct``/``Tagged`` with a ``name``) are written once, after the rest."""
    d = _Describer(width)
    d.body(schema, 0, expand=True)
    done = 0
    while done < len(d.named):
        t = d.named[done]
        done += 1
        d.lines += ["", f"{t.name}: {t.expected()}"]
        d.doc(getattr(t, "doc", ""), 4)
        d.body(t, 2, expand=True)
    return "\n".join(d.lines)
