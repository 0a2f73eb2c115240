"""The LwM2M Bootstrap Server, sans-IO (OMA-TS-LightweightM2M-V1_0 §5.1.2 client-initiated
bootstrap, §5.1.3 Bootstrap Write / Delete / Finish; seed 004 §7.1, §D.1).

Per Endpoint Client Name a :class:`ProvisioningPlan` says what to write: the Security instances
(URI, Security Mode, PSK identity and key or keys, SMS key parameters and secret keys, server SMS
number, Short Server ID, hold-off), the Server instances (SSID, lifetime, binding...) and any
Access Control instances, and the identity the endpoint must have authenticated with.

``receive(identity, msg, now)`` takes a decoded message with the identity its DTLS session (or SMS
binding keys) authenticated; on a Bootstrap-Request ``POST /bs?ep=NAME`` from the identity of
``NAME``'s plan it answers 2.04 and then sends, one at a time and each after the previous one's
success: Delete /0 and Delete /1 (unless the plan says not to), a Write of each Security, Server
and Access Control instance (TLV), and Bootstrap-Finish ``POST /bs``.

Refusals: an endpoint name with no plan -> 4.00 (§5.1.2: "Unknown Endpoint Client Name"); an
endpoint name whose plan's identity is not the authenticated one -> 4.03 Forbidden, so a client
never gets another's keys (a choice: 1.0 lists no code for it); a malformed request -> 4.00; more
than ``max_sessions`` bootstraps at once -> 5.03. One bootstrap per endpoint: a new request from
the right identity replaces the one in progress (the client restarted). A session that sees no
answer for ``timeout`` seconds is dropped by :meth:`expire`.

Plans are checked when they are given (:func:`objects.check_instance`), so the server never
writes a configuration the client would refuse at Bootstrap-Finish.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dmsim.base.errors import DecodeError
from dmsim.network.coap import message as coap
from dmsim.network.coap.message import Code, ContentFormat, Message, Type
from dmsim.network.lwm2m import content, sms_security
from dmsim.network.lwm2m.events import MessageIds, Send, identity_bytes
from dmsim.network.lwm2m.objects import InvalidValue, ObjectId, Sec, SecurityMode, Srv, check_instance


@dataclass(frozen=True)
class SecurityAccount:
    """One Security object instance to write (seed 004 §D.1, published 1.0 numbering)."""

    iid: int
    uri: str
    bootstrap: bool = False
    mode: int = SecurityMode.PSK
    identity: bytes = b""
    server_public_key: bytes = b""
    secret_key: bytes = b""
    ssid: int | None = None
    sms_security_mode: int | None = None
    sms_key_parameters: bytes | None = None
    sms_secret_keys: bytes | None = None
    sms_number: str | None = None
    hold_off: int | None = None

    def resources(self) -> dict[int, Any]:
        r: dict[int, Any] = {Sec.URI: self.uri, Sec.BOOTSTRAP: self.bootstrap, Sec.MODE: int(self.mode),
                             Sec.PUBLIC_KEY_OR_IDENTITY: self.identity, Sec.SERVER_PUBLIC_KEY: self.server_public_key,
                             Sec.SECRET_KEY: self.secret_key}
        optional = {Sec.SHORT_SERVER_ID: self.ssid, Sec.SMS_SECURITY_MODE: self.sms_security_mode,
                    Sec.SMS_KEY_PARAMETERS: self.sms_key_parameters, Sec.SMS_SECRET_KEYS: self.sms_secret_keys,
                    Sec.SMS_NUMBER: self.sms_number, Sec.HOLD_OFF: self.hold_off}
        r.update({k: v for k, v in optional.items() if v is not None})
        return r


@dataclass(frozen=True)
class ServerAccount:
    """One Server object instance to write (§E.2)."""

    iid: int
    ssid: int
    lifetime: int = 86400
    binding: str = "U"
    notification_storing: bool = True
    default_min_period: int | None = None
    default_max_period: int | None = None

    def resources(self) -> dict[int, Any]:
        r: dict[int, Any] = {Srv.SHORT_SERVER_ID: self.ssid, Srv.LIFETIME: self.lifetime,
                             Srv.NOTIFICATION_STORING: self.notification_storing, Srv.BINDING: self.binding}
        if self.default_min_period is not None:
            r[Srv.DEFAULT_MIN_PERIOD] = self.default_min_period
        if self.default_max_period is not None:
            r[Srv.DEFAULT_MAX_PERIOD] = self.default_max_period
        return r


@dataclass(frozen=True)
class ProvisioningPlan:
    """What one endpoint gets, and the identity it must have authenticated with."""

    identity: bytes | str
    security: tuple[SecurityAccount, ...]
    servers: tuple[ServerAccount, ...]
    access_control: tuple[tuple[int, dict[int, Any]], ...] = ()
    delete_first: bool = True

    def writes(self) -> list[tuple[int, int, dict[int, Any]]]:
        """(object ID, instance ID, resources) in the order they are written."""
        return ([(ObjectId.SECURITY, s.iid, s.resources()) for s in self.security]
                + [(ObjectId.SERVER, s.iid, s.resources()) for s in self.servers]
                + [(ObjectId.ACCESS_CONTROL, iid, r) for iid, r in self.access_control])

    def check(self) -> None:
        """InvalidValue for a resource object 0-2 refuse, or SMS keys that break seed 004 §7.3."""
        for oid, iid, resources in self.writes():
            check_instance(oid, iid, resources)
        for account in self.security:
            _check_sms_keys(account)


def _check_sms_keys(account: SecurityAccount) -> None:
    """The SMS binding's parameters and keys a plan writes follow seed 004 §7.3 (AES-CBC + CMAC or
    3DES with three keys, SPI CC + ciphering + counter higher, TAR BF FF xx): a bootstrap server
    never provisions a keyset the client must refuse."""
    if account.sms_key_parameters is None or account.sms_secret_keys is None:
        return
    path = f"/0/{account.iid}/{int(Sec.SMS_KEY_PARAMETERS)}"
    try:
        sms_security.check_policy(sms_security.SmsKeyParameters.decode(account.sms_key_parameters),
                                  sms_security.SmsBindingKeys.decode(account.sms_secret_keys))
    except (DecodeError, sms_security.SmsSecurityError) as exc:
        raise InvalidValue(path, str(exc)) from None


@dataclass(frozen=True, slots=True)
class BootstrapRequested:
    endpoint: str


@dataclass(frozen=True, slots=True)
class BootstrapRefused:
    endpoint: str
    identity: bytes
    reason: str
    code: int


@dataclass(frozen=True, slots=True)
class BootstrapCompleted:
    endpoint: str


@dataclass(frozen=True, slots=True)
class BootstrapFailed:
    endpoint: str
    path: str
    code: int | None


@dataclass
class _Session:
    endpoint: str
    identity: bytes
    steps: list[tuple[int, str, bytes]]
    deadline: float
    index: int = 0
    token: bytes = b""
    expected: dict[int, int] = field(default_factory=lambda: {Code.DELETE: Code.DELETED, Code.PUT: Code.CHANGED,
                                                              Code.POST: Code.CHANGED})


class BootstrapServer:
    """The bootstrap server core: ``plans`` by Endpoint Client Name."""

    def __init__(self, plans: Mapping[str, ProvisioningPlan], *, randbytes: Callable[[int], bytes],
                 max_sessions: int = 64, timeout: float = 60.0):
        for plan in plans.values():
            plan.check()
        self.plans = dict(plans)
        self.max_sessions = max_sessions
        self.timeout = timeout
        self.sessions: dict[str, _Session] = {}
        self._randbytes = randbytes
        self._mids = MessageIds(randbytes)

    def receive(self, identity: bytes | str, msg: Message, now: float) -> list:
        identity = identity_bytes(identity)
        if msg.is_request:
            if msg.code == Code.POST and msg.uri_path == ("bs",):
                return self._bootstrap_request(identity, msg, now)
            return [Send(identity, coap.response(msg, Code.NOT_FOUND, message_id=self._mids.next()))]
        if msg.is_empty:
            return []
        session = next((s for s in self.sessions.values() if s.identity == identity and s.token == msg.token), None)
        if session is None:
            return []
        out: list = [Send(identity, coap.empty_ack(msg))] if msg.type == Type.CON else []
        code, path, _ = session.steps[session.index]
        if msg.code != session.expected[code]:
            del self.sessions[session.endpoint]
            return out + [BootstrapFailed(session.endpoint, path, msg.code)]
        session.index += 1
        session.deadline = now + self.timeout
        if session.index == len(session.steps):
            del self.sessions[session.endpoint]
            return out + [BootstrapCompleted(session.endpoint)]
        return out + [self._send_step(session)]

    def _refuse(self, identity: bytes, msg: Message, endpoint: str, reason: str, code: int) -> list:
        return [Send(identity, coap.response(msg, code, message_id=self._mids.next())),
                BootstrapRefused(endpoint, identity, reason, code)]

    def _bootstrap_request(self, identity: bytes, msg: Message, now: float) -> list:
        try:
            eps = [q[3:] for q in msg.uri_query if q.startswith("ep=")]
        except DecodeError:  # a Uri-Query that is not UTF-8 (RFC 7252 §5.10.1)
            eps = []
        if len(eps) != 1 or not eps[0]:
            return self._refuse(identity, msg, "", "no_endpoint_name", Code.BAD_REQUEST)
        endpoint = eps[0]
        plan = self.plans.get(endpoint)
        if plan is None:
            return self._refuse(identity, msg, endpoint, "unknown_endpoint", Code.BAD_REQUEST)
        if identity_bytes(plan.identity) != identity:
            return self._refuse(identity, msg, endpoint, "identity_mismatch", Code.FORBIDDEN)
        if endpoint not in self.sessions and len(self.sessions) >= self.max_sessions:
            return self._refuse(identity, msg, endpoint, "busy", Code.SERVICE_UNAVAILABLE)
        steps: list[tuple[int, str, bytes]] = []
        if plan.delete_first:
            steps += [(Code.DELETE, "/0", b""), (Code.DELETE, "/1", b"")]
        steps += [(Code.PUT, f"/{oid}/{iid}", content.encode_instance(oid, r)) for oid, iid, r in plan.writes()]
        steps.append((Code.POST, "/bs", b""))
        session = _Session(endpoint, identity, steps, now + self.timeout)
        self.sessions[endpoint] = session
        return [Send(identity, coap.response(msg, Code.CHANGED, message_id=self._mids.next())),
                BootstrapRequested(endpoint), self._send_step(session)]

    def _send_step(self, session: _Session) -> Send:
        code, path, payload = session.steps[session.index]
        session.token = self._randbytes(4)
        fmt = ContentFormat.LWM2M_TLV if code == Code.PUT else None
        return Send(session.identity, coap.request(code, path, message_id=self._mids.next(), token=session.token,
                                                   payload=payload, content_format=fmt))

    def expire(self, now: float) -> list:
        """Drop the sessions whose peer has not answered in time."""
        out = []
        for endpoint, session in list(self.sessions.items()):
            if now >= session.deadline:
                del self.sessions[endpoint]
                out.append(BootstrapFailed(endpoint, session.steps[session.index][1], None))
        return out
