"""The LwM2M Server, sans-IO: the Client Registration interface and Device Management requests
(OMA-TS-LightweightM2M-V1_0 §5.3 Register / Update / De-register, §5.4 Read, Write, Execute,
Create, Delete; seed 004 §7.1).

``receive(identity, msg, now)`` takes a decoded message with the identity its DTLS session (PSK
identity, certificate or raw public key) or SMS binding keys authenticated. The registration
store is bounded (``max_registrations``, 5.03 past it) and keyed by endpoint name:

* Register ``POST /rd?ep=&lt=&b=&lwm2m=1.0``: refused 4.03 Forbidden, changing nothing, when the
  authenticated identity is not the one ``credentials`` holds for the endpoint name (an endpoint
  the server has no credentials for is refused the same way); a malformed one 4.00. A new
  Register of a registered endpoint replaces its registration (§5.3.1). The reply is 2.01 with
  the Location-Path ``/rd/<8 hex digits>`` (random, from ``randbytes``);
* Update ``POST /rd/xxxx`` and De-register ``DELETE /rd/xxxx``: 4.04 for an unknown or expired
  location, 4.03 (nothing changed) when the identity is not the registration's;
* a registration whose lifetime ran out is removed by :meth:`expire` (call it at
  :meth:`next_expiry`); it is also unknown to an Update after its expiry time.

DM requests are built for a registered endpoint (:meth:`read`, :meth:`write`, :meth:`execute`,
:meth:`create`, :meth:`delete`) and sent to the identity it registered with; their responses come
back as :class:`DmResponse` with the TLV content decoded by :mod:`content`. A response from any
other identity, or with an unknown token, is ignored.

Choices: ``lwm2m=`` must be ``1.0`` when given; ``lt`` is 1-2^31-1 s (86400 when absent, §E.2's
usual default); ``b`` one of §5.3.1's bindings (``U`` when absent).
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dmsim.base.errors import DecodeError
from dmsim.network.coap import message as coap
from dmsim.network.coap.message import Code, ContentFormat, Message, Option, Type
from dmsim.network.lwm2m import content
from dmsim.network.lwm2m.events import MessageIds, Send, identity_bytes
from dmsim.network.lwm2m.objects import BINDINGS

DEFAULT_LIFETIME = 86400
TLV = ContentFormat.LWM2M_TLV


@dataclass
class Registration:
    endpoint: str
    identity: bytes
    location: str
    lifetime: int
    binding: str
    objects: tuple[tuple[int, ...], ...]
    expires: float
    sms: str | None = None


@dataclass(frozen=True, slots=True)
class RegistrationAccepted:
    endpoint: str
    location: str


@dataclass(frozen=True, slots=True)
class RegistrationRefused:
    endpoint: str
    identity: bytes
    reason: str
    code: int


@dataclass(frozen=True, slots=True)
class RegistrationUpdated:
    endpoint: str


@dataclass(frozen=True, slots=True)
class Deregistered:
    endpoint: str


@dataclass(frozen=True, slots=True)
class RegistrationExpired:
    endpoint: str


@dataclass(frozen=True, slots=True)
class DmResponse:
    """The answer to a DM request: ``value`` is the decoded content of a 2.05 (instances, an
    instance's resources or a resource value per the path), the Location-Path of a 2.01 Create as
    a path tuple, else None; ``error`` says why a 2.05's content could not be decoded."""

    endpoint: str
    operation: str
    path: tuple[int, ...]
    code: int
    value: Any = None
    error: str = ""


class _Bad(Exception):
    def __init__(self, code: int, reason: str):
        self.code = code
        self.reason = reason


class Lwm2mServer:
    """A DM server core. ``credentials`` maps an endpoint name to the identity it must have
    authenticated with (a mapping, or a callable returning None for an unknown endpoint)."""

    def __init__(self, credentials: Mapping[str, bytes | str] | Callable[[str], bytes | str | None], *,
                 randbytes: Callable[[int], bytes], max_registrations: int = 1024, max_pending: int = 256):
        self._credentials = credentials.get if isinstance(credentials, Mapping) else credentials
        self._randbytes = randbytes
        self.max_registrations = max_registrations
        self.max_pending = max_pending
        self.registrations: dict[str, Registration] = {}
        self._by_location: dict[str, str] = {}
        self._pending: OrderedDict[tuple[bytes, bytes], tuple[str, str, tuple[int, ...]]] = OrderedDict()
        self._mids = MessageIds(randbytes)

    def registration(self, endpoint: str) -> Registration | None:
        return self.registrations.get(endpoint)

    # -- incoming ----------------------------------------------------------------------------------

    def receive(self, identity: bytes | str, msg: Message, now: float) -> list:
        identity = identity_bytes(identity)
        if not msg.is_request:
            return self._response(identity, msg)
        try:
            segments = msg.uri_path
            if msg.code == Code.POST and segments == ("rd",):
                return self._register(identity, msg, now)
            if len(segments) == 2 and segments[0] == "rd" and msg.code in (Code.POST, Code.DELETE):
                return self._update_or_deregister(identity, msg, now)
            raise _Bad(Code.NOT_FOUND, "not_found")
        except _Bad as bad:
            ep = next((q[3:] for q in _safe_query(msg) if q.startswith("ep=")), "")
            return [self._reply(identity, msg, bad.code), RegistrationRefused(ep, identity, bad.reason, bad.code)]
        except DecodeError:
            return [self._reply(identity, msg, Code.BAD_REQUEST),
                    RegistrationRefused("", identity, "malformed", Code.BAD_REQUEST)]

    def _reply(self, identity: bytes, msg: Message, code: int, **kw: Any) -> Send:
        return Send(identity, coap.response(msg, code, message_id=self._mids.next(), **kw))

    def _register(self, identity: bytes, msg: Message, now: float) -> list:
        params = _params(msg.uri_query)
        endpoint = params.get("ep", "")
        if not endpoint or len(endpoint) > 255:
            raise _Bad(Code.BAD_REQUEST, "endpoint_name")
        expected = self._credentials(endpoint)
        if expected is None or identity_bytes(expected) != identity:
            raise _Bad(Code.FORBIDDEN, "identity_mismatch")
        if params.get("lwm2m", "1.0") != "1.0":
            raise _Bad(Code.BAD_REQUEST, "version")
        lifetime, binding = _lifetime(params.get("lt", str(DEFAULT_LIFETIME))), params.get("b", "U")
        if binding not in BINDINGS:
            raise _Bad(Code.BAD_REQUEST, "binding")
        objects = content.parse_link_paths(msg.payload.decode("utf-8", "replace")) if msg.payload else ()
        old = self.registrations.get(endpoint)
        if old is None and len(self.registrations) >= self.max_registrations:
            raise _Bad(Code.SERVICE_UNAVAILABLE, "registrations_full")
        if old is not None:
            self._by_location.pop(old.location, None)
        location = self._new_location()
        self.registrations[endpoint] = Registration(endpoint, identity, location, lifetime, binding, objects,
                                                    now + lifetime, params.get("sms"))
        self._by_location[location] = endpoint
        options = coap.path_options(location, Option.LOCATION_PATH)
        return [self._reply(identity, msg, Code.CREATED, options=options), RegistrationAccepted(endpoint, location)]

    def _new_location(self) -> str:
        while True:
            location = "/rd/" + self._randbytes(4).hex()
            if location not in self._by_location:
                return location

    def _update_or_deregister(self, identity: bytes, msg: Message, now: float) -> list:
        endpoint = self._by_location.get(msg.path)
        reg = self.registrations.get(endpoint) if endpoint else None
        if reg is None or now >= reg.expires:
            raise _Bad(Code.NOT_FOUND, "unknown_registration")
        if reg.identity != identity:
            raise _Bad(Code.FORBIDDEN, "identity_mismatch")
        if msg.code == Code.DELETE:
            self._remove(reg.endpoint)
            return [self._reply(identity, msg, Code.DELETED), Deregistered(reg.endpoint)]
        params = _params(msg.uri_query)
        lifetime = _lifetime(params["lt"]) if "lt" in params else reg.lifetime
        binding = params.get("b", reg.binding)
        if binding not in BINDINGS:
            raise _Bad(Code.BAD_REQUEST, "binding")
        if msg.payload:
            reg.objects = content.parse_link_paths(msg.payload.decode("utf-8", "replace"))
        reg.lifetime, reg.binding, reg.expires = lifetime, binding, now + lifetime
        return [self._reply(identity, msg, Code.CHANGED), RegistrationUpdated(reg.endpoint)]

    def _remove(self, endpoint: str) -> None:
        reg = self.registrations.pop(endpoint)
        self._by_location.pop(reg.location, None)

    def expire(self, now: float) -> list:
        """Remove every registration whose lifetime ran out (§5.3.1)."""
        gone = [ep for ep, reg in self.registrations.items() if now >= reg.expires]
        for ep in gone:
            self._remove(ep)
        return [RegistrationExpired(ep) for ep in gone]

    def next_expiry(self) -> float | None:
        return min((r.expires for r in self.registrations.values()), default=None)

    # -- device management, §5.4 -------------------------------------------------------------------

    def _dm(self, endpoint: str, operation: str, code: int, path: Sequence[int], **kw: Any) -> Send:
        reg = self.registrations.get(endpoint)
        if reg is None:
            raise KeyError(f"endpoint {endpoint!r} is not registered")
        token = self._randbytes(4)
        self._pending[(reg.identity, token)] = (endpoint, operation, tuple(path))
        while len(self._pending) > self.max_pending:
            self._pending.popitem(last=False)
        text = "/" + "/".join(str(i) for i in path)
        return Send(reg.identity, coap.request(code, text, message_id=self._mids.next(), token=token, **kw))

    def read(self, endpoint: str, path: Sequence[int]) -> Send:
        return self._dm(endpoint, "read", Code.GET, path, options=[(Option.ACCEPT, coap.uint_value(TLV))])

    def write(self, endpoint: str, path: Sequence[int], value: Any, *, replace: bool = True) -> Send:
        """Write ``value`` (an instance's resources for /oid/iid, a value for /oid/iid/rid): PUT
        replaces, POST (``replace=False``) updates part of an instance (§5.4.3)."""
        if len(path) == 3:
            payload = content.encode_resource(path[0], path[2], value)
        else:
            payload = content.encode_instance(path[0], value)
        code = Code.PUT if replace or len(path) == 3 else Code.POST
        return self._dm(endpoint, "write", code, path, payload=payload, content_format=TLV)

    def execute(self, endpoint: str, path: Sequence[int], arguments: bytes = b"") -> Send:
        return self._dm(endpoint, "execute", Code.POST, path, payload=arguments)

    def create(self, endpoint: str, oid: int, resources: dict[int, Any], iid: int | None = None) -> Send:
        if iid is None:
            payload = content.encode_instance(oid, resources)
        else:
            payload = content.encode_object(oid, {iid: resources})
        return self._dm(endpoint, "create", Code.POST, (oid,), payload=payload, content_format=TLV)

    def delete(self, endpoint: str, path: Sequence[int]) -> Send:
        return self._dm(endpoint, "delete", Code.DELETE, path)

    def _response(self, identity: bytes, msg: Message) -> list:
        if msg.is_empty:
            return []
        pending = self._pending.pop((identity, msg.token), None)
        out: list = [Send(identity, coap.empty_ack(msg))] if msg.type == Type.CON else []
        if pending is None:
            return out
        endpoint, operation, path = pending
        value: Any = None
        error = ""
        try:
            if msg.code == Code.CONTENT and operation == "read":
                if msg.content_format != TLV:
                    error = f"content format {msg.content_format}, not TLV"
                else:
                    value = content.decode_for_path(path, msg.payload)
            elif msg.code == Code.CREATED:
                value = content.parse_path(msg.location_path)
        except DecodeError as exc:
            error = str(exc)
        return out + [DmResponse(endpoint, operation, path, msg.code, value, error)]


def _safe_query(msg: Message) -> tuple[str, ...]:
    try:
        return msg.uri_query
    except DecodeError:
        return ()


def _params(query: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for q in query:
        key, sep, value = q.partition("=")
        if not sep or key in out:
            raise _Bad(Code.BAD_REQUEST, "query")
        out[key] = value
    return out


def _lifetime(text: str) -> int:
    if len(text) > 10 or not text.isdigit() or not text.isascii() or not 1 <= int(text) <= 0x7FFFFFFF:
        raise _Bad(Code.BAD_REQUEST, "lifetime")
    return int(text)
