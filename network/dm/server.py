"""The DM server's protocol core, sans-IO: server-initiated bootstrap and DM sessions with mutual
``syncml:auth-md5`` / ``-sha256`` / ``-basic`` authentication or ``syncml:auth-hmac-sha256``
integrity, a management script per session and multi-message packages.

Specs: OMA-TS-DM_Security-V1_3 §5.4 (both sides authenticate), §5.4.3 (a failed credential gets
one more challenge with a new nonce; each session uses a fresh nonce), §5.5 (NextNonce), §5.6.1
(``x-syncml-hmac``), §5.10.2.3 (bootstrap HMAC); OMA-TS-DM_Protocol-V1_2 packages 1-4 and
§8.2 (multiple messages in a package, Alert 1222).

The core takes request bodies, transport headers and ``now`` and returns reply bodies, headers
and events; the simulation and the real HTTP server (``http_server.py``) are thin drivers around
it. Nonces come from the ``nonce_source`` it is given (seeded in simulation, ``os.urandom``
over real sockets): every nonce is a fresh ``nonce_source(16)``, never derived from another.

A session: package 1 (the client's Alert 1201/1200 and DevInfo) is answered, once the client is
authenticated and its package complete, by package 2: the Statuses and the session's
management script (:class:`ManagementCommand`; by default the single Get of ``./DevInfo/Mod``).
Package 3 (the client's Statuses and Results) is answered by package 4, Statuses only, which
ends the session with a ``session_completed`` event carrying each command's
:class:`CommandOutcome`. A package larger than the client's MaxMsgSize goes in several messages
(see :func:`messages.pack`); the client asks for the next one with Alert 1222, and the server
does the same for a package 3 that the client splits by the server's ``max_msg_size``.

HMAC mode (an account whose ``auth_scheme`` is ``syncml:auth-hmac-sha256``): requests carry no
Cred; the request's ``x-syncml-hmac`` header must verify under the client's AAuthSecret (the
UTF-8 octets of ``client_password``), within the timestamp window and not replayed (the
:class:`HmacVerifier` given or a default one). A request that fails is rejected with a **clean
close**: an empty body, ``session_over`` and a ``client_integrity_failed`` event whose detail is
the verdict; it changes no session state (a forged message cannot end someone else's session).
Every reply in that mode carries ``x-syncml-hmac`` under the server's AAuthSecret (UTF-8 of
``server_password``) with ``ServerId``; the header's Timestamp is ``now`` as seconds since the
Unix epoch, so a driver using HMAC must pass wall-clock (or a consistent simulated) UTC time.
No NextNonce is issued in that mode: the 1.3 MAC does not use nonces.

Choices where the spec is silent: the server authenticates every message of a session (plain
HTTP gives no session authentication, §5.4); a request repeating the last MsgID gets the cached
reply (a client retransmission after a lost reply) — in HMAC mode only when the bytes are those
of the last request, whose MAC the replay cache would otherwise refuse; a request's media type is
the one its reply uses (:func:`messages.reply_type`); the server advertises its MaxMsgSize only
when ``max_msg_size`` is set.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Callable, Mapping, MutableMapping, Sequence
from xml.etree.ElementTree import Element

from dmsim.network.dm import messages as m
from dmsim.network.dm import wbxml
from dmsim.network.dm.account import DmAccount, bootstrap_document
from dmsim.network.dm.auth import AUTH_MD5, check_credential, make_credential
from dmsim.network.dm.bootstrap_mac import bootstrap_key, bootstrap_mac, format_content_type
from dmsim.network.dm.notification import build_pkg0
from dmsim.network.dm.hmac_integrity import (AUTH_HMAC_SHA256, HEADER_NAME, HmacVerifier, Reason, build_header,
                                             find_header)
from dmsim.network.dm.tree import E, text
from dmsim.base.errors import DmsimError, ProtocolError

NonceSource = Callable[[int], bytes]
NO_HEADERS: Mapping[str, str] = MappingProxyType({})
VERBS = ("Get", "Replace", "Add", "Delete", "Exec")


@dataclass(frozen=True)
class ManagementCommand:
    """One command of a management script: ``verb`` on ``uri``; Replace/Add/Exec carry ``data``
    (wire form: base64 text for Format b64) in Format ``fmt``; Add of an interior node is
    ``fmt="node"`` without data."""

    verb: str
    uri: str
    data: str | None = None
    fmt: str = "chr"
    mime_type: str = ""

    def __post_init__(self):
        if self.verb not in VERBS:
            raise ProtocolError(f"management command {self.verb!r}, expected one of {', '.join(VERBS)}")
        if not self.uri:
            raise ProtocolError("management command without a target URI")

    def element(self) -> Element:
        """Return the command element (CmdID set when packed)."""
        meta = None
        if self.verb in ("Add", "Replace"):
            meta = E("Meta", E("Format", self.fmt), E("Type", self.mime_type) if self.mime_type else None)
        return E(self.verb, E("CmdID", 0), E("Item", E("Target", E("LocURI", self.uri)), meta,
                                             E("Data", self.data) if self.data is not None else None))


DEFAULT_SCRIPT: tuple[ManagementCommand, ...] = (ManagementCommand("Get", "./DevInfo/Mod"),)


@dataclass(frozen=True)
class CommandOutcome:
    """What the client answered to one script command: its status ``code`` (None if none came)
    and, for a Get, the Results ``data`` and ``fmt`` (None if no Results came)."""

    command: ManagementCommand
    code: int | None
    data: str | None = None
    fmt: str | None = None


@dataclass(frozen=True)
class ServerEvent:
    """Something the driver counts: ``kind`` is one of client_authenticated, client_auth_failed,
    client_integrity_failed, server_auth_rejected, session_completed, bad_request; ``device`` the
    device URI if known; ``detail`` the reason (for client_authenticated: the Alert code, 1201 or
    1200); ``outcomes`` (session_completed only) the script's results in order."""

    kind: str
    device: str
    detail: str = ""
    outcomes: tuple[CommandOutcome, ...] = ()


@dataclass
class ServerReply:
    """What to send back (``body`` empty: nothing, close the connection), with ``headers`` to add
    to the transport response (``x-syncml-hmac`` in HMAC mode), and what happened."""

    body: bytes
    content_type: str
    events: list[ServerEvent]
    session_over: bool = False
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Session:
    device: str
    session_id: str
    script: tuple[ManagementCommand, ...] = ()
    client_failures: int = 0
    server_rejections: int = 0
    client_authenticated: bool = False
    results: dict[str, str] = field(default_factory=dict)
    last_msg_id: str = ""
    last_request: bytes = b""
    last_reply: ServerReply | None = None
    next_msg_id: int = 1
    started: float = 0.0
    phase: str = "init"  # init (package 1) -> manage (packages 2/3) -> closing (package 4)
    queue: list[Element] = field(default_factory=list)
    last_sent: list[Element] = field(default_factory=list)
    peer_max: int | None = None
    # id(element) -> (element, script index); holding the element keeps its id from being reused
    script_items: dict[int, tuple[Element, int]] = field(default_factory=dict)
    sent: dict[tuple[str, str], int] = field(default_factory=dict)  # (MsgID, CmdID) -> script index
    codes: dict[int, int] = field(default_factory=dict)
    data: dict[int, tuple[str, str]] = field(default_factory=dict)


class DmServer:
    """The DM server core for a fleet of devices identified by ``IMSI:<digits>`` URIs."""

    def __init__(self, server_id: str, server_uri: str, nonce_source: NonceSource, *,
                 content_type: str = m.DM_WBXML, accounts: MutableMapping[str, DmAccount] | None = None,
                 script: Sequence[ManagementCommand] = DEFAULT_SCRIPT, max_msg_size: int | None = None,
                 hmac_verifier: HmacVerifier | None = None):
        """``accounts`` (device URI -> account, nonces included) may be a persistent store; every
        change of an account (a new nonce) is written back to it by item assignment. ``script``
        is the management script of every session unless :meth:`plan` set one for the device;
        ``max_msg_size`` the largest message the server accepts (advertised in SyncHdr Meta);
        ``hmac_verifier`` the window and replay cache for HMAC-mode requests."""
        self.server_id = server_id
        self.server_uri = server_uri
        self._nonce = nonce_source
        self.content_type = content_type
        self.accounts: MutableMapping[str, DmAccount] = {} if accounts is None else accounts
        self.script = tuple(script)
        self.max_msg_size = max_msg_size
        self.hmac = hmac_verifier if hmac_verifier is not None else HmacVerifier()
        self.plans: dict[str, tuple[ManagementCommand, ...]] = {}
        self.sessions: dict[str, dict[str, _Session]] = {}  # device URI -> SessionID -> state

    # -- bootstrap ---------------------------------------------------------------------------
    def provision(self, device_uri: str, *, client_name: str, client_password: str,
                  server_password: str, auth_scheme: str = AUTH_MD5) -> DmAccount:
        """Create (or replace) the account for ``device_uri`` with fresh nonces and return it."""
        account = DmAccount(server_id=self.server_id, server_uri=self.server_uri, client_name=client_name,
                            client_password=client_password, server_name=self.server_id,
                            server_password=server_password, client_nonce=self._nonce(16),
                            server_nonce=self._nonce(16), auth_scheme=auth_scheme)
        self.accounts[device_uri] = account
        return account

    def bootstrap_message(self, device_uri: str, imsi: str, key_type: str,
                          userpin: str | None = None) -> tuple[str, bytes]:
        """Return (Content-Type, WBXML body) of the bootstrap for a provisioned device (§5.10.2.3)."""
        body = wbxml.encode(bootstrap_document(self.accounts[device_uri], device_uri))
        mac = bootstrap_mac(bootstrap_key(key_type, imsi=imsi, userpin=userpin), body)
        return format_content_type(key_type, mac), body

    def notification(self, device_uri: str, session_id: int) -> bytes:
        """Return package #0 (OMA DM Notification) asking ``device_uri`` to open session
        ``session_id``; its digest uses the server's credential: ServerID, the server password
        and the nonce the client issued for it (OMA-TS-DM_Notification §6.2; version 1.2)."""
        account = self.accounts[device_uri]
        return build_pkg0(session_id=session_id, server_id=self.server_id, password=account.server_password,
                          nonce=account.server_nonce)

    def plan(self, device_uri: str, script: Sequence[ManagementCommand]) -> None:
        """Use ``script`` for the sessions of ``device_uri`` until one of them completes."""
        self.plans[device_uri] = tuple(script)

    # -- sessions ----------------------------------------------------------------------------
    def handle(self, body: bytes, content_type: str, now: float,
               headers: Mapping[str, str] = NO_HEADERS) -> ServerReply:
        """Process one client message with its transport ``headers``; return the reply."""
        try:
            msg = m.decode(body, content_type)
            hdr = m.read_header(msg)
            reply_type = m.reply_type(content_type)
        except DmsimError as exc:
            return self._close("bad_request", "", str(exc))
        account = self.accounts.get(hdr.source)
        if account is None:
            return self._close("bad_request", hdr.source, "unknown device")
        sess = self.sessions.get(hdr.source, {}).get(hdr.session_id)
        if account.auth_scheme == AUTH_HMAC_SHA256:
            verdict = self.hmac.verify(find_header(headers or NO_HEADERS), body, account.client_password.encode(),
                                       now)
            if verdict.reason is Reason.REPLAY and sess is not None and body == sess.last_request:
                return self._cached(sess, account, now)
            if not verdict.ok:
                return self._close(INTEGRITY_FAILED, hdr.source, verdict.reason.value)
        if sess is None:
            sess = self.sessions.setdefault(hdr.source, {})[hdr.session_id] = _Session(
                hdr.source, hdr.session_id, script=self.plans.get(hdr.source, self.script), started=now)
        elif hdr.msg_id == sess.last_msg_id and sess.last_reply is not None:
            return self._cached(sess, account, now)
        try:
            reply = self._step(sess, account, msg, hdr, reply_type, now)
        except DmsimError as exc:
            reply = ServerReply(b"", self.content_type, [ServerEvent("bad_request", sess.device, str(exc))], True)
        sess.last_msg_id, sess.last_request, sess.last_reply = hdr.msg_id, bytes(body), reply
        if reply.session_over:
            self._forget(hdr.source, hdr.session_id)
        return reply

    def connection_closed(self, device_uri: str) -> None:
        """Forget the sessions of ``device_uri``: its client closed the connection (gave up)."""
        self.sessions.pop(device_uri, None)

    def expire(self, now: float, idle: float) -> list[str]:
        """Forget sessions started more than ``idle`` seconds ago; return their device URIs."""
        stale = [(dev, sid) for dev, by_id in self.sessions.items() for sid, s in by_id.items()
                 if now - s.started > idle]
        for dev, sid in stale:
            self._forget(dev, sid)
        return [dev for dev, _ in stale]

    def _close(self, kind: str, device: str, detail: str) -> ServerReply:
        return ServerReply(b"", self.content_type, [ServerEvent(kind, device, detail)], True)

    def _cached(self, sess: _Session, account: DmAccount, now: float) -> ServerReply:
        last = sess.last_reply
        if last is None:
            return self._close("bad_request", sess.device, "replayed request")
        return ServerReply(last.body, last.content_type, [], last.session_over,
                           self._mac_headers(account, last.body, now))

    def _forget(self, device_uri: str, session_id: str) -> None:
        by_id = self.sessions.get(device_uri)
        if by_id is not None:
            by_id.pop(session_id, None)
            if not by_id:
                del self.sessions[device_uri]

    def _mac_headers(self, account: DmAccount, body: bytes, now: float) -> dict[str, str]:
        if account.auth_scheme != AUTH_HMAC_SHA256 or not body:
            return {}
        return {HEADER_NAME: build_header(account.server_password.encode(), body, now, server_id=self.server_id)}

    def _step(self, sess: _Session, account: DmAccount, msg: Element, hdr: m.Header, reply_type: str,
              now: float) -> ServerReply:
        scheme = account.auth_scheme
        hmac_mode = scheme == AUTH_HMAC_SHA256
        events: list[ServerEvent] = []
        sess.peer_max = hdr.max_msg_size or sess.peer_max
        if not hmac_mode and not (hdr.cred is not None and check_credential(
                hdr.cred, scheme, account.client_name, account.client_password, account.client_nonce)):
            sess.client_failures += 1
            # §5.4.3: one more challenge with a new nonce; after that, no further attempt.
            retry = sess.client_failures <= 1
            code = m.MISSING_CREDENTIALS if hdr.cred is None else m.UNAUTHORIZED
            challenge = None
            if retry:
                nonce = self._nonce(16)
                self.accounts[sess.device] = account.with_nonces(client=nonce)
                challenge = m.chal(scheme, nonce)
            else:
                events.append(ServerEvent("client_auth_failed", sess.device))
            lead = [m.status(1, hdr.msg_id, "0", "SyncHdr", code, challenge=challenge)]
            body, _ = self._send(sess, account, lead, reply_type, take=False, ask_next=False, with_cred=False)
            return ServerReply(body, reply_type, events, session_over=not retry)

        first = not sess.client_authenticated
        announce = first
        sess.client_authenticated = True
        hdr_status = m.header_status(msg)
        rejected = hdr_status is not None and hdr_status.code == m.UNAUTHORIZED
        if rejected:
            # The client rejected our credential and did not run our commands: answer its
            # challenge once (§5.4.3) and send them again.
            sess.server_rejections += 1
            events.append(ServerEvent("server_auth_rejected", sess.device))
            if sess.server_rejections > 1 or hdr_status.next_nonce is None:
                return ServerReply(b"", reply_type, events, session_over=True)
            account = account.with_nonces(server=hdr_status.next_nonce)
            self.accounts[sess.device] = account
            sess.queue[:0], sess.last_sent = sess.last_sent, []
            announce = True
        elif hdr_status is not None and hdr_status.next_nonce is not None:
            account = account.with_nonces(server=hdr_status.next_nonce)
            self.accounts[sess.device] = account
        if first:
            events.append(ServerEvent("client_authenticated", sess.device, self._initiator(msg)))
        if announce and not hmac_mode:
            next_nonce = self._nonce(16)
            self.accounts[sess.device] = account.with_nonces(client=next_nonce)
            lead = [m.status(1, hdr.msg_id, "0", "SyncHdr", m.AUTH_ACCEPTED, challenge=m.chal(scheme, next_nonce))]
        else:
            lead = [m.status(1, hdr.msg_id, "0", "SyncHdr", m.AUTH_ACCEPTED if announce else m.OK)]
        if not rejected:
            self._absorb(sess, msg, hdr)
        ask_next = not rejected and m.peer_has_more(msg)
        if m.is_final(msg) and not rejected:
            if sess.phase == "init":
                for index, command in enumerate(sess.script):
                    element = command.element()
                    sess.script_items[id(element)] = (element, index)
                    sess.queue.append(element)
                sess.phase = "manage" if sess.script else "closing"
            elif sess.phase == "manage":
                sess.phase = "closing"
        body, final = self._send(sess, self.accounts[sess.device], lead, reply_type, take=True, ask_next=ask_next,
                                 with_cred=not hmac_mode)
        over = final and sess.phase == "closing"
        if over:
            events.append(ServerEvent("session_completed", sess.device, outcomes=self._outcomes(sess)))
            self.plans.pop(sess.device, None)
        return ServerReply(body, reply_type, events, session_over=over,
                           headers=self._mac_headers(account, body, now))

    @staticmethod
    def _initiator(msg: Element) -> str:
        for cmd in m.body_commands(msg):
            if cmd.tag == "Alert" and text(cmd, "Data") in (m.ALERT_CLIENT_INITIATED, m.ALERT_SERVER_INITIATED):
                return text(cmd, "Data") or ""
        return ""

    def _absorb(self, sess: _Session, msg: Element, hdr: m.Header) -> None:
        """Record the client's Statuses and Results for our commands and queue our Statuses."""
        for st in msg.iterfind("SyncBody/Status"):
            index = sess.sent.get((text(st, "MsgRef", "") or "", text(st, "CmdRef", "") or ""))
            code = text(st, "Data", "") or ""
            if index is not None and code.isascii() and code.isdigit() and len(code) <= 3:
                sess.codes[index] = int(code)
        for cmd in m.body_commands(msg):
            sess.queue.append(m.status(0, hdr.msg_id, text(cmd, "CmdID", "0") or "0", cmd.tag, m.OK))
            if cmd.tag != "Results":
                continue
            index = sess.sent.get((text(cmd, "MsgRef", "") or "", text(cmd, "CmdRef", "") or ""))
            for item in cmd.iterfind("Item"):
                data = text(item, "Data", "") or ""
                sess.results[text(item, "Source/LocURI", "") or ""] = data
                if index is not None and index not in sess.data:
                    sess.data[index] = (data, text(item, "Meta/Format") or text(cmd, "Meta/Format") or "chr")

    @staticmethod
    def _outcomes(sess: _Session) -> tuple[CommandOutcome, ...]:
        return tuple(CommandOutcome(command, sess.codes.get(i), *sess.data.get(i, (None, None)))
                     for i, command in enumerate(sess.script))

    def _send(self, sess: _Session, account: DmAccount, lead: list[Element], reply_type: str, *, take: bool,
              ask_next: bool, with_cred: bool) -> tuple[bytes, bool]:
        """Return (body, Final?) of the next message: ``lead``, then queued items (``take``)."""
        cred = (make_credential(account.auth_scheme, account.server_name, account.server_password,
                                account.server_nonce) if with_cred else None)
        msg_id = sess.next_msg_id
        sess.next_msg_id += 1
        hdr = m.header(sess.session_id, msg_id, sess.device, self.server_uri, cred=cred,
                       max_msg_size=self.max_msg_size)
        queue = sess.queue if take else []
        body, count, final = m.pack(hdr, lead, queue, content_type=reply_type, max_size=sess.peer_max,
                                    ask_next=ask_next)
        if take:
            sess.last_sent = queue[:count]
            del queue[:count]
            for element in sess.last_sent:
                entry = sess.script_items.get(id(element))
                if entry is not None:
                    sess.sent[(str(msg_id), text(element, "CmdID", "") or "")] = entry[1]
        return body, final


INTEGRITY_FAILED = "client_integrity_failed"  # the event kind of a request refused for its x-syncml-hmac


def http_status(reply: ServerReply) -> int:
    """Return the HTTP status of the core's ``reply``: 200 with a body, 401 for a request refused
    for its x-syncml-hmac, else 400 (a clean close)."""
    if reply.body:
        return 200
    return 401 if any(event.kind == INTEGRITY_FAILED for event in reply.events) else 400
