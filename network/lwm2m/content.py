"""Typed LwM2M content: object instances as Python values <-> OMA-TLV, and LwM2M paths
(OMA-TS-LightweightM2M-V1_0 §6.4.3, §6.4.3.1-§6.4.3.2, §5.4.1, §5.4.3).

An instance's resources are a ``dict`` of resource ID -> value, where a multiple resource's value
is a ``dict`` of resource instance ID -> value. Values are typed by :mod:`objects`; a resource of
an object the definitions do not know is kept as raw bytes.

Choices: a TLV payload for an object (``/oid``) is a sequence of Object Instance TLVs; for an
instance (``/oid/iid``) it is either the instance's resources or one Object Instance TLV whose ID
must be the path's (§6.4.3.1 shows both for Read); for a resource it is one Resource (or Multiple
Resource) TLV whose ID must be the path's. A resource unknown to the object definition is a
DecodeError (the client answers 4.00).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from dmsim.base.errors import DecodeError
from dmsim.network.coap import link_format as link_format_codec
from dmsim.network.lwm2m import tlv
from dmsim.network.lwm2m.objects import MAX_ID, OBJECTS, ObjectDef, ResourceDef, ResourceType
from dmsim.network.lwm2m.tlv import Tlv, TlvType

Resources = dict[int, Any]


def parse_path(segments: Sequence[str]) -> tuple[int, ...]:
    """Return the numeric LwM2M path of Uri-Path segments (at most /oid/iid/rid/riid)."""
    if len(segments) > 4:
        raise DecodeError("lwm2m-path", 0, f"{len(segments)} path segments", "at most 4 (§5.4)")
    out = []
    for i, seg in enumerate(segments):
        if not seg.isdigit() or not seg.isascii() or len(seg) > 5 or int(seg) > MAX_ID:
            raise DecodeError("lwm2m-path", i, f"path segment {seg!r}", "a decimal ID 0-65535")
        out.append(int(seg))
    return tuple(out)


def _value_tlv(rdef: ResourceDef | None, rid: int, value: Any) -> Tlv:
    rtype = rdef.type if rdef else ResourceType.OPAQUE
    if isinstance(value, dict):
        return tlv.multiple(rid, {i: tlv.encode_value(rtype, v) for i, v in value.items()})
    return tlv.resource(rid, tlv.encode_value(rtype, value))


def resource_tlvs(odef: ObjectDef | None, resources: Resources) -> list[Tlv]:
    """Return the Resource / Multiple Resource TLVs of ``resources`` in ID order."""
    return [_value_tlv(odef.resource(rid) if odef else None, rid, v) for rid, v in sorted(resources.items())]


def encode_instance(oid: int, resources: Resources) -> bytes:
    """The payload of a Read or Write on ``/oid/iid``: its resources' TLVs."""
    return tlv.encode(resource_tlvs(OBJECTS.get(oid), resources))


def encode_object(oid: int, instances: dict[int, Resources]) -> bytes:
    """The payload of a Read on ``/oid``: one Object Instance TLV per instance (§6.4.3.2)."""
    odef = OBJECTS.get(oid)
    return tlv.encode(tlv.instance(iid, resource_tlvs(odef, r)) for iid, r in sorted(instances.items()))


def encode_resource(oid: int, rid: int, value: Any) -> bytes:
    odef = OBJECTS.get(oid)
    return tlv.encode([_value_tlv(odef.resource(rid) if odef else None, rid, value)])


def _typed(odef: ObjectDef | None, item: Tlv) -> Any:
    rdef = odef.resource(item.id) if odef else None
    if odef is not None and rdef is None:
        raise DecodeError("lwm2m-tlv", item.offset, f"resource {item.id} of object {odef.id}", "a defined resource")
    rtype = rdef.type if rdef else ResourceType.OPAQUE
    if rdef is not None and rdef.multiple != (item.type == TlvType.MULTIPLE_RESOURCE):
        raise DecodeError("lwm2m-tlv", item.offset, f"resource {item.id} as {item.type.name}",
                          "a Multiple Resource TLV" if rdef.multiple else "a Resource TLV")
    if item.type == TlvType.MULTIPLE_RESOURCE:
        return {c.id: tlv.decode_value(rtype, c.value, c.offset) for c in item.children}
    return tlv.decode_value(rtype, item.value, item.offset)


def decode_resources(oid: int, items: Iterable[Tlv]) -> Resources:
    """Return the typed resources of Resource / Multiple Resource TLVs of object ``oid``."""
    odef = OBJECTS.get(oid)
    out: Resources = {}
    for item in items:
        if item.type not in (TlvType.RESOURCE_VALUE, TlvType.MULTIPLE_RESOURCE):
            raise DecodeError("lwm2m-tlv", item.offset, f"a {item.type.name} among resources",
                              "Resource or Multiple Resource TLVs")
        out[item.id] = _typed(odef, item)
    return out


def decode_instance(oid: int, iid: int, payload: bytes) -> Resources:
    """Return the resources of a payload for ``/oid/iid`` (bare resources or one wrapped instance)."""
    items = tlv.decode(payload)
    if items and items[0].type == TlvType.OBJECT_INSTANCE:
        if len(items) != 1 or items[0].id != iid:
            raise DecodeError("lwm2m-tlv", 0, "Object Instance TLV(s) not matching the path",
                              f"one Object Instance {iid}")
        items = items[0].children
    return decode_resources(oid, items)


def decode_object(oid: int, payload: bytes) -> dict[int, Resources]:
    """Return instance ID -> resources of a payload for ``/oid`` (Object Instance TLVs)."""
    out: dict[int, Resources] = {}
    for item in tlv.decode(payload):
        if item.type != TlvType.OBJECT_INSTANCE:
            raise DecodeError("lwm2m-tlv", item.offset, f"a {item.type.name} for an object", "Object Instance TLVs")
        out[item.id] = decode_resources(oid, item.children)
    return out


def decode_resource(oid: int, rid: int, payload: bytes) -> Any:
    """Return the typed value of a payload for ``/oid/iid/rid`` (one TLV of ID ``rid``)."""
    items = tlv.decode(payload)
    if len(items) != 1 or items[0].id != rid:
        raise DecodeError("lwm2m-tlv", 0, "resource TLV not matching the path", f"one TLV of ID {rid}")
    return decode_resources(oid, items)[rid]


def decode_for_path(path: Sequence[int], payload: bytes) -> Any:
    """Decode a payload for a path of 1-3 IDs (object, instance or resource)."""
    if len(path) == 1:
        return decode_object(path[0], payload)
    if len(path) == 2:
        return decode_instance(path[0], path[1], payload)
    if len(path) == 3:
        return decode_resource(path[0], path[2], payload)
    raise DecodeError("lwm2m-path", 0, f"a path of {len(path)} IDs", "/oid, /oid/iid or /oid/iid/rid")


def link_format(paths: Iterable[Sequence[int]]) -> str:
    """The CoRE Link Format payload of a Register/Update (§5.3.1): ``</1/0>,</3/0>``
    (RFC 6690 §2, :mod:`dmsim.network.coap.link_format`)."""
    return link_format_codec.encode(
        link_format_codec.Link("/" + "/".join(str(i) for i in p)) for p in paths).decode("ascii")


def parse_link_paths(text: str | bytes, *, max_links: int = 256) -> tuple[tuple[int, ...], ...]:
    """Return the object / instance paths of a Register payload (RFC 6690 §2, decoded strictly
    by :mod:`dmsim.network.coap.link_format`: DecodeError with the offset for a malformed one or
    more than ``max_links`` links); links that are not a numeric path of 1-2 IDs (such as
    ``</>;rt="oma.lwm2m"``) are skipped."""
    out = []
    for link in link_format_codec.decode(text, max_links=max_links):
        segs = [s for s in link.target.split("/") if s]
        if link.target.startswith("/") and 1 <= len(segs) <= 2 and all(
                s.isdigit() and s.isascii() and len(s) <= 5 and int(s) <= MAX_ID for s in segs):
            out.append(tuple(int(s) for s in segs))
    return tuple(out)
