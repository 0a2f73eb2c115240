"""The LwM2M 1.0 client, sans-IO (OMA-TS-LightweightM2M-V1_0 §5.1 Bootstrap, §5.3 Registration,
§5.4 Device Management, §7.3 Access Control; seed 004 §D.1, §D.1.3).

The driver tells the client who sent each message: ``receive(peer, msg)`` with ``peer`` either
:data:`~dmsim.network.lwm2m.events.BOOTSTRAP` or a Short Server ID, taken from the authenticated
identity of the DTLS session or the keys of the SMS binding that carried it. Every method returns a
list of events: :class:`Send` (a request or reply for a peer), :class:`Timer`, and the reports
below. Retransmission and duplicate detection (RFC 7252 §4) are the driver's.

Flows:

* client-initiated bootstrap: :meth:`start_bootstrap` waits the Client Hold Off Time of the
  bootstrap Security instance (a :class:`Timer` ``"bootstrap"``), then sends ``POST /bs?ep=NAME``;
  Bootstrap-Write (PUT) and Bootstrap-Delete (DELETE) on ``/``, ``/oid``, ``/oid/iid`` (and Write
  on ``/oid/iid/rid``) are taken ONLY from the bootstrap peer; Bootstrap-Finish (``POST /bs``) is
  answered 2.04 when the configuration is consistent (every Security, Server and Access Control
  instance passes :func:`objects.check_instance`, and at least one Server instance has a Security
  instance of its Short Server ID), else 4.06 Not Acceptable;
* Register ``POST /rd?ep=&lt=&b=&lwm2m=1.0`` with the link format of the instances (object 0
  left out), Update ``POST /rd/xxxx`` (its ``lt``/``b`` only when they changed) every 90 % of the
  lifetime, De-register ``DELETE /rd/xxxx``;
* DM Read (GET, TLV content), Write (PUT replace / POST partial update), Execute (POST on an
  executable resource), Create (POST on an object), Delete, Observe (GET with Observe 0: the
  observation is recorded for D.1.3; sending notifications is not done here) — all through the
  access rights of :mod:`lwm2m_store`;
* a Bootstrap-Delete of a server's Security instance runs the unbootstrapping of seed 004 §D.1.3
  and sends that server a De-register when the client is registered with it.

Refusals (each also reported as :class:`Refused` with a rule name, for counting):

* ``bootstrap_only_object``: a DM server on object 0 -> 4.04 Not Found. Object 0 "MUST NOT be
  accessible by any other Server" (seed 004 §D.1); we answer as if it did not exist (it is not in
  the registered links either), rather than 4.01, which would confirm it is there;
* ``bootstrap_read``: a GET from the bootstrap server -> 4.05 (LwM2M 1.0 has no Bootstrap Read,
  and Secret Key / SMS Binding Secret Keys "MUST NOT be readable by any server");
* ``bootstrap_operation``: another method or path from the bootstrap server -> 4.05;
* ``unknown_peer``: a Short Server ID with no Server and Security instance -> 4.01;
* ``access_control``: an operation the ACL does not grant -> 4.01 Unauthorized (§5.4);
* ``operation``: an operation the resource does not support (write a read-only resource...) -> 4.05;
* ``invalid_value``, ``content``: a value out of range, bad TLV, or a format other than TLV
  (4.00 / 4.15 / 4.06 for an Accept other than TLV); ``store_full`` -> 5.03 (4.13 would invite a
  retry in blocks);
* ``not_found`` -> 4.04.

DM requests are taken from any configured server (one with a Server instance and a Security
instance of its Short Server ID), registered or not: the authenticated channel is what names it.

A refused request changes nothing: writes are checked whole before anything is applied.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from dmsim.base.errors import DecodeError
from dmsim.devices.lwm2m_store import ObjectStore, StoreFull, UnbootstrapReport
from dmsim.network.coap import message as coap
from dmsim.network.coap.message import Code, ContentFormat, Message, Option, Type
from dmsim.network.lwm2m import content, tlv
from dmsim.network.lwm2m.events import BOOTSTRAP, MessageIds, Peer, Send, Timer
from dmsim.network.lwm2m.objects import (MAX_ID, OBJECTS, Access, InvalidValue, ObjectId, Sec, Srv,
                                         check_instance, check_resource)

TLV = ContentFormat.LWM2M_TLV
UPDATE_FRACTION = 0.9


@dataclass(frozen=True, slots=True)
class BootstrapFinished:
    ssids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class BootstrapRejected:
    reason: str


@dataclass(frozen=True, slots=True)
class Registered:
    ssid: int
    location: str


@dataclass(frozen=True, slots=True)
class Updated:
    ssid: int


@dataclass(frozen=True, slots=True)
class Deregistered:
    ssid: int


@dataclass(frozen=True, slots=True)
class RequestFailed:
    peer: Peer
    kind: str
    code: int


@dataclass(frozen=True, slots=True)
class Refused:
    rule: str
    path: str
    peer: Peer
    code: int


@dataclass(frozen=True, slots=True)
class Executed:
    ssid: int
    path: str
    arguments: bytes


@dataclass(frozen=True, slots=True)
class Unbootstrapped:
    ssid: int
    report: UnbootstrapReport


class _Refusal(Exception):
    def __init__(self, code: int, rule: str):
        self.code = code
        self.rule = rule


@dataclass
class _Registration:
    location: str
    lifetime: int
    binding: str


class Lwm2mClient:
    """One LwM2M client: ``endpoint`` is its Endpoint Client Name, ``store`` its objects."""

    def __init__(self, endpoint: str, store: ObjectStore, *, randbytes: Callable[[int], bytes],
                 msisdn: str | None = None, max_pending: int = 32):
        self.endpoint = endpoint
        self.store = store
        self.msisdn = msisdn
        self._randbytes = randbytes
        self._mids = MessageIds(randbytes)
        self._pending: OrderedDict[tuple[Peer, bytes], tuple[str, int]] = OrderedDict()
        self._max_pending = max_pending
        self.registrations: dict[int, _Registration] = {}
        self.bootstrapping = False

    # -- what the driver needs to open channels ----------------------------------------------------

    def account(self, ssid: int) -> dict[int, Any]:
        """The Security instance of server ``ssid`` (URI, mode, keys: for the driver's DTLS/SMS)."""
        iid = self.store.security_iid(ssid)
        return dict(self.store.get(ObjectId.SECURITY, iid) or {}) if iid is not None else {}

    def bootstrap_account(self) -> dict[int, Any]:
        iid = self.store.bootstrap_security_iid()
        return dict(self.store.get(ObjectId.SECURITY, iid) or {}) if iid is not None else {}

    # -- requests the client starts ----------------------------------------------------------------

    def _request(self, peer: Peer, kind: str, ssid: int, code: int, path: str, **kw: Any) -> Send:
        token = self._randbytes(4)
        self._pending[(peer, token)] = (kind, ssid)
        while len(self._pending) > self._max_pending:
            self._pending.popitem(last=False)
        return Send(peer, coap.request(code, path, message_id=self._mids.next(), token=token, **kw))

    def start_bootstrap(self) -> list:
        """Client-initiated bootstrap (§5.1.2): after the Client Hold Off Time, POST /bs?ep=."""
        self.bootstrapping = True
        hold_off = self.bootstrap_account().get(Sec.HOLD_OFF, 0)
        if hold_off > 0:
            return [Timer("bootstrap", float(hold_off))]
        return self._bootstrap_request()

    def _bootstrap_request(self) -> list:
        return [self._request(BOOTSTRAP, "bootstrap_request", 0, Code.POST, "/bs", query=[f"ep={self.endpoint}"])]

    def _server(self, ssid: int) -> dict[int, Any]:
        iid = self.store.server_iid(ssid)
        return self.store.get(ObjectId.SERVER, iid) if iid is not None else {}

    def register(self, ssid: int) -> list:
        """Register with server ``ssid`` (§5.3.1)."""
        server = self._server(ssid)
        if not server:
            raise KeyError(f"no Server object instance for Short Server ID {ssid}")
        binding = server[Srv.BINDING]
        query = [f"ep={self.endpoint}", f"lt={server[Srv.LIFETIME]}", f"b={binding}", "lwm2m=1.0"]
        if self.msisdn and "S" in binding:
            query.append(f"sms={self.msisdn}")
        links = content.link_format(self.store.paths()).encode("ascii")
        return [self._request(ssid, "register", ssid, Code.POST, "/rd", query=query, payload=links,
                              content_format=ContentFormat.LINK_FORMAT)]

    def update(self, ssid: int) -> list:
        """Registration Update (§5.3.2), with ``lt``/``b`` only if they changed since."""
        reg = self.registrations.get(ssid)
        if reg is None:
            return []
        server = self._server(ssid)
        query = []
        if server.get(Srv.LIFETIME, reg.lifetime) != reg.lifetime:
            query.append(f"lt={server[Srv.LIFETIME]}")
        if server.get(Srv.BINDING, reg.binding) != reg.binding:
            query.append(f"b={server[Srv.BINDING]}")
        return [self._request(ssid, "update", ssid, Code.POST, reg.location, query=query)]

    def deregister(self, ssid: int) -> list:
        """De-register (§5.3.3): DELETE the registration's location."""
        reg = self.registrations.pop(ssid, None)
        if reg is None:
            return []
        return [self._request(ssid, "deregister", ssid, Code.DELETE, reg.location)]

    def timer_fired(self, key: str) -> list:
        if key == "bootstrap" and self.bootstrapping:
            return self._bootstrap_request()
        if key.startswith("update:"):
            return self.update(int(key[7:]))
        return []

    # -- incoming ----------------------------------------------------------------------------------

    def receive(self, peer: Peer, msg: Message) -> list:
        """Handle one decoded message from an authenticated ``peer``."""
        if msg.is_request:
            if peer == BOOTSTRAP:
                return self._guard(peer, msg, self._bootstrap_op)
            return self._guard(peer, msg, self._dm_op)
        if msg.is_empty or msg.type == Type.RST:
            return []
        out: list = []
        if msg.type == Type.CON:
            out.append(Send(peer, coap.empty_ack(msg)))
        pending = self._pending.pop((peer, msg.token), None)
        if pending is not None:
            out += self._response(peer, pending[0], pending[1], msg)
        return out

    def _guard(self, peer: Peer, msg: Message, handler: Callable[[Peer, Message, tuple[int, ...]], list]) -> list:
        path_text = "?"
        try:
            path_text = msg.path
            return handler(peer, msg, self._path(peer, msg))
        except _Refusal as refusal:
            return [Send(peer, self._reply(msg, refusal.code)), Refused(refusal.rule, path_text, peer, refusal.code)]
        except (DecodeError, InvalidValue) as exc:
            rule = "invalid_value" if isinstance(exc, InvalidValue) else "content"
            return [Send(peer, self._reply(msg, Code.BAD_REQUEST)), Refused(rule, path_text, peer, Code.BAD_REQUEST)]
        except StoreFull:
            return [Send(peer, self._reply(msg, Code.SERVICE_UNAVAILABLE)),
                    Refused("store_full", path_text, peer, Code.SERVICE_UNAVAILABLE)]

    @staticmethod
    def _path(peer: Peer, msg: Message) -> tuple[int, ...]:
        if peer == BOOTSTRAP and msg.code == Code.POST and msg.uri_path == ("bs",):
            return ()
        try:
            return content.parse_path(msg.uri_path)
        except DecodeError:
            raise _Refusal(Code.NOT_FOUND, "not_found") from None

    def _reply(self, req: Message, code: int, **kw: Any) -> Message:
        return coap.response(req, code, message_id=self._mids.next(), **kw)

    def _response(self, peer: Peer, kind: str, ssid: int, msg: Message) -> list:
        ok = {"register": Code.CREATED, "update": Code.CHANGED, "deregister": Code.DELETED,
              "bootstrap_request": Code.CHANGED}[kind]
        if msg.code != ok:
            if kind == "update":
                self.registrations.pop(ssid, None)
            return [RequestFailed(peer, kind, msg.code)]
        if kind == "register":
            location = "/" + "/".join(msg.location_path)
            if not msg.location_path or len(msg.location_path) > 4:
                return [RequestFailed(peer, kind, msg.code)]
            server = self._server(ssid)
            if not server:  # unbootstrapped while the Register was in flight
                return [RequestFailed(peer, kind, msg.code)]
            self.registrations[ssid] = _Registration(location, server[Srv.LIFETIME], server[Srv.BINDING])
            return [Registered(ssid, location), self._update_timer(ssid)]
        if kind == "update":
            reg = self.registrations.get(ssid)
            if reg is None:
                return []
            server = self._server(ssid)
            reg.lifetime, reg.binding = server.get(Srv.LIFETIME, reg.lifetime), server.get(Srv.BINDING, reg.binding)
            return [Updated(ssid), self._update_timer(ssid)]
        if kind == "deregister":
            return [Deregistered(ssid)]
        return []

    def _update_timer(self, ssid: int) -> Timer:
        return Timer(f"update:{ssid}", max(1.0, self.registrations[ssid].lifetime * UPDATE_FRACTION))

    # -- the bootstrap interface, §5.1 -------------------------------------------------------------

    def _bootstrap_op(self, peer: Peer, msg: Message, path: tuple[int, ...]) -> list:
        if self.store.bootstrap_security_iid() is None:
            raise _Refusal(Code.UNAUTHORIZED, "unknown_peer")
        if msg.code == Code.GET:
            raise _Refusal(Code.METHOD_NOT_ALLOWED, "bootstrap_read")
        if msg.code == Code.POST and msg.uri_path == ("bs",):
            return self._bootstrap_finish(peer, msg)
        if msg.code == Code.PUT and 1 <= len(path) <= 3:
            _require_tlv(msg)
            self._bootstrap_write(path, msg.payload)
            return [Send(peer, self._reply(msg, Code.CHANGED))]
        if msg.code == Code.DELETE and len(path) <= 2:
            return self._bootstrap_delete(path) + [Send(peer, self._reply(msg, Code.DELETED))]
        raise _Refusal(Code.METHOD_NOT_ALLOWED, "bootstrap_operation")

    def _bootstrap_write(self, path: tuple[int, ...], payload: bytes) -> None:
        oid = path[0]
        if oid not in OBJECTS:
            raise _Refusal(Code.NOT_FOUND, "not_found")
        if len(path) == 1:
            writes = content.decode_object(oid, payload)
        elif len(path) == 2:
            writes = {path[1]: content.decode_instance(oid, path[1], payload)}
        else:
            writes = {path[1]: {path[2]: content.decode_resource(oid, path[2], payload)}}
        for iid, resources in writes.items():
            if iid == MAX_ID:
                raise InvalidValue(f"/{oid}/{iid}", "instance ID 65535 is reserved")
            for rid, value in resources.items():
                check_resource(oid, rid, value, iid)
        snapshot = self.store.snapshot()
        try:
            for iid, resources in writes.items():
                self.store.update(oid, iid, resources)
        except StoreFull:
            self.store.restore(snapshot)
            raise

    def _bootstrap_delete(self, path: tuple[int, ...]) -> list:
        keep = {(ObjectId.SECURITY, self.store.bootstrap_security_iid()), (ObjectId.DEVICE, 0)}
        oids = [path[0]] if path else sorted(self.store.objects)
        targets = [(oid, iid) for oid in oids for iid in sorted(self.store.instances(oid))
                   if len(path) < 2 or iid == path[1]]
        targets = [t for t in targets if t not in keep]
        out: list = []
        for oid, iid in targets:
            sec = self.store.get(oid, iid) if oid == ObjectId.SECURITY else None
            if sec and not sec.get(Sec.BOOTSTRAP) and Sec.SHORT_SERVER_ID in sec:
                out += self._unbootstrap(sec[Sec.SHORT_SERVER_ID])
        for oid, iid in targets:
            self.store.delete_with_acl(oid, iid)
        return out

    def _unbootstrap(self, ssid: int) -> list:
        """Seed 004 §D.1.3 steps 1-4 in the store, step 5 here: the De-register."""
        report = self.store.unbootstrap(ssid)
        return self.deregister(ssid) + [Unbootstrapped(ssid, report)]

    def _bootstrap_finish(self, peer: Peer, msg: Message) -> list:
        reason = self._inconsistency()
        if reason:
            return [Send(peer, self._reply(msg, Code.NOT_ACCEPTABLE)), BootstrapRejected(reason)]
        self.bootstrapping = False
        ssids = tuple(s for s in self.store.server_ssids() if self.store.security_iid(s) is not None)
        return [Send(peer, self._reply(msg, Code.CHANGED)), BootstrapFinished(ssids)]

    def _inconsistency(self) -> str:
        for oid in (ObjectId.SECURITY, ObjectId.SERVER, ObjectId.ACCESS_CONTROL):
            for iid, resources in sorted(self.store.instances(oid).items()):
                try:
                    check_instance(oid, iid, resources)
                except InvalidValue as exc:
                    return str(exc)
        if not any(self.store.security_iid(s) is not None for s in self.store.server_ssids()):
            return "no Server object instance with a Security instance of its Short Server ID"
        return ""

    # -- the device management interface, §5.4 -----------------------------------------------------

    def _dm_op(self, peer: Peer, msg: Message, path: tuple[int, ...]) -> list:
        ssid = peer
        if not isinstance(ssid, int) or ssid not in self.store.server_ssids() or self.store.security_iid(ssid) is None:
            raise _Refusal(Code.UNAUTHORIZED, "unknown_peer")
        if not path or len(path) > 3:
            raise _Refusal(Code.METHOD_NOT_ALLOWED, "operation")
        oid = path[0]
        if oid == ObjectId.SECURITY:
            raise _Refusal(Code.NOT_FOUND, "bootstrap_only_object")
        if oid not in OBJECTS:
            raise _Refusal(Code.NOT_FOUND, "not_found")
        if msg.code == Code.GET:
            return self._read(ssid, msg, path)
        if msg.code == Code.PUT and len(path) >= 2:
            return self._write(ssid, msg, path, replace=True)
        if msg.code == Code.POST and len(path) == 1:
            return self._create(ssid, msg, oid)
        if msg.code == Code.POST and len(path) == 2:
            return self._write(ssid, msg, path, replace=False)
        if msg.code == Code.POST and len(path) == 3:
            return self._execute(ssid, msg, path)
        if msg.code == Code.DELETE and len(path) == 2:
            return self._delete(ssid, msg, path)
        raise _Refusal(Code.METHOD_NOT_ALLOWED, "operation")

    def _instance(self, ssid: int, oid: int, iid: int, needed: Access) -> dict[int, Any]:
        resources = self.store.get(oid, iid)
        if resources is None:
            raise _Refusal(Code.NOT_FOUND, "not_found")
        if not self.store.rights(ssid, oid, iid) & needed:
            raise _Refusal(Code.UNAUTHORIZED, "access_control")
        return resources

    def _read(self, ssid: int, msg: Message, path: tuple[int, ...]) -> list:
        if msg.accept is not None and msg.accept != TLV:
            raise _Refusal(Code.NOT_ACCEPTABLE, "content")
        oid, odef = path[0], OBJECTS[path[0]]

        def readable(resources: dict[int, Any]) -> dict[int, Any]:
            return {r: v for r, v in resources.items()
                    if (d := odef.resource(r)) is not None and d.readable and not d.secret}

        if len(path) == 1:
            instances = self.store.instances(oid)
            allowed = {i: readable(r) for i, r in instances.items() if self.store.rights(ssid, oid, i) & Access.READ}
            if instances and not allowed:
                raise _Refusal(Code.UNAUTHORIZED, "access_control")
            payload = content.encode_object(oid, allowed)
        else:
            resources = self._instance(ssid, oid, path[1], Access.READ)
            if len(path) == 2:
                payload = content.encode_instance(oid, readable(resources))
            else:
                rdef = odef.resource(path[2])
                if rdef is None or path[2] not in resources and rdef.readable:
                    raise _Refusal(Code.NOT_FOUND, "not_found")
                if not rdef.readable or rdef.secret:
                    raise _Refusal(Code.METHOD_NOT_ALLOWED, "operation")
                payload = content.encode_resource(oid, path[2], resources[path[2]])
        options = []
        if msg.observe == 0:
            self.store.observe(ssid, path, msg.token)
            options.append((Option.OBSERVE, b""))
        elif msg.observe == 1:
            self.store.cancel_observation(ssid, path)
        return [Send(ssid, self._reply(msg, Code.CONTENT, payload=payload, content_format=TLV, options=options))]

    def _checked_writes(self, oid: int, iid: int, resources: dict[int, Any], *, create: bool = False) -> None:
        """Write needs W on each resource; Create may also give read-only ones their first value."""
        odef = OBJECTS[oid]
        for rid, value in resources.items():
            rdef = odef.resource(rid)
            if rdef is None or not (rdef.writable or create and rdef.readable):
                raise _Refusal(Code.METHOD_NOT_ALLOWED, "operation")
            check_resource(oid, rid, value, iid)

    def _write(self, ssid: int, msg: Message, path: tuple[int, ...], *, replace: bool) -> list:
        oid, iid = path[0], path[1]
        current = self._instance(ssid, oid, iid, Access.WRITE)
        _require_tlv(msg)
        if len(path) == 3:
            writes = {path[2]: content.decode_resource(oid, path[2], msg.payload)}
            replace = False
        else:
            writes = content.decode_instance(oid, iid, msg.payload)
        self._checked_writes(oid, iid, writes)
        odef = OBJECTS[oid]
        if replace:
            new = {r: v for r, v in current.items() if not odef.resources[r].writable}
        else:
            new = dict(current)
        new.update(writes)
        check_instance(oid, iid, new)
        self.store.put(oid, iid, new)
        return [Send(ssid, self._reply(msg, Code.CHANGED))]

    def _create(self, ssid: int, msg: Message, oid: int) -> list:
        if not self.store.may_create(ssid, oid):
            raise _Refusal(Code.UNAUTHORIZED, "access_control")
        _require_tlv(msg)
        items = tlv.decode(msg.payload)
        if len(items) == 1 and items[0].type == tlv.TlvType.OBJECT_INSTANCE:
            iid, resources = items[0].id, content.decode_resources(oid, items[0].children)
        else:
            iid, resources = self.store.free_iid(oid), content.decode_resources(oid, items)
        if iid == MAX_ID or self.store.get(oid, iid) is not None:
            raise _Refusal(Code.BAD_REQUEST, "invalid_value")
        self._checked_writes(oid, iid, resources, create=True)
        check_instance(oid, iid, resources)
        snapshot = self.store.snapshot()
        try:
            self.store.put(oid, iid, resources)
            if len(self.store.server_ssids()) > 1:
                self.store.add_acl(oid, iid, owner=ssid)
        except StoreFull:
            self.store.restore(snapshot)
            raise
        location = coap.path_options((str(oid), str(iid)), Option.LOCATION_PATH)
        return [Send(ssid, self._reply(msg, Code.CREATED, options=location))]

    def _execute(self, ssid: int, msg: Message, path: tuple[int, ...]) -> list:
        oid, iid, rid = path
        self._instance(ssid, oid, iid, Access.EXECUTE)
        rdef = OBJECTS[oid].resource(rid)
        if rdef is None:
            raise _Refusal(Code.NOT_FOUND, "not_found")
        if not rdef.executable:
            raise _Refusal(Code.METHOD_NOT_ALLOWED, "operation")
        out: list = [Send(ssid, self._reply(msg, Code.CHANGED)), Executed(ssid, msg.path, msg.payload)]
        if (oid, rid) == (ObjectId.SERVER, Srv.UPDATE_TRIGGER):
            out += self.update(self.store.get(oid, iid)[Srv.SHORT_SERVER_ID])
        return out

    def _delete(self, ssid: int, msg: Message, path: tuple[int, ...]) -> list:
        oid, iid = path
        self._instance(ssid, oid, iid, Access.DELETE)
        if oid == ObjectId.DEVICE:
            raise _Refusal(Code.METHOD_NOT_ALLOWED, "operation")
        self.store.delete_with_acl(oid, iid)
        return [Send(ssid, self._reply(msg, Code.DELETED))]


def _require_tlv(msg: Message) -> None:
    if msg.content_format != TLV:
        raise _Refusal(Code.UNSUPPORTED_CONTENT_FORMAT, "content")


def refused(events: Sequence[object]) -> list[Refused]:
    return [e for e in events if isinstance(e, Refused)]
