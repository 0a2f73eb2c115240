"""The DM server's protocol core, sans-IO: server-initiated bootstrap and DM sessions with mutual
``syncml:auth-md5`` / ``-sha256`` / ``-basic`` authentication or ``syncml:auth-hmac-sha256``
integrity, a management script per session and multi-message packages.

Specs: OMA-TS-DM_Security-V1_3 §5.4 (both sides authenticate), §5.4.3 (a failed credential gets
one more challenge with a new nonce; each session uses a fresh nonce), §5.5 (NextNonce), §5.6.1
(``x-syncml-hmac``), §5.10.2.3 (bootstrap HMAC); OMA-TS-DM_Protocol-V1_2 packages 1-4 and
§8.2 (multiple messages in a package, Alert 1222).

The core takes request bodies, transport headers and ``now`` and returns reply bodies, headers
and events; the simulation and the real HTTP server (``sim/real/dm_http_server.py``) are thin
drivers around it. Nonces come from the ``nonce_source`` it is given (seeded in simulation, ``os.urandom``
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
A wrong MAC counts towards the device's lockout (a replay or a stale Timestamp does not).
Every reply in that mode carries ``x-syncml-hmac`` under the server's AAuthSecret (UTF-8 of
``server_password``) with ``ServerId``; the header's Timestamp is ``now`` as seconds since the
Unix epoch, so a driver using HMAC must pass wall-clock (or a consistent simulated) UTC time.
No NextNonce is issued in that mode: the 1.3 MAC does not use nonces.

Authentication against an attacker without credentials (issue 13; every choice below is ours
where the spec is silent):

* **No state for a request that did not authenticate.** A session is created only once a
  request's Cred (or MAC) verified. A failed credential is answered with SyncHdr Status 401 (a
  wrong Cred) or 407 (none), §5.4, carrying a Chal whose nonce is a *challenge nonce* bound to
  that (device, SessionID) in a bounded, expiring table (:mod:`challenges`); the stored nonce of
  the account is **not** changed, so someone without the credentials cannot invalidate the nonce
  a legitimate client holds. §5.4.3 still holds: one more challenge with a new nonce, and a
  second failure in the session is answered without Chal and ends it (``client_auth_failed``).
  Trade-off: the retry must reach us within ``challenge_ttl`` and before ``challenge_cap``
  newer challenges push it out; if not, the client fails this session and recovers in the next
  one with the nonce it still shares with the server.
* **A nonce is consumed when it is used.** Every answer to an authenticated message carries a
  Chal with a fresh NextNonce (§5.5), and the account's stored nonce becomes that one (written
  to ``accounts`` before the reply is returned), so no message, replayed in this session or
  after it, with or without a restart of a persistent store, authenticates twice. A client
  retransmission (same MsgID) still gets the cached reply. auth-basic does not use the nonce, so
  it has no replay protection (use it only under TLS, §5.4).
* **Bounded sessions.** At most ``max_sessions`` sessions (the least recently active is dropped,
  ``session_evicted``); with ``session_timeout`` set, a session with no request for that long is
  forgotten by :meth:`handle` itself, and :meth:`expire` costs only the sessions it forgets.
* **Lockout** (:mod:`lockout`): per device, after ``threshold`` failures every attempt is refused
  for a growing time without checking it (401/407 without Chal, so the client keeps its nonce);
  a success resets it.
* **Unknown devices** get the answer of a wrong password (401/407 with a Chal of
  ``default_scheme``, the same lockout), so the answer does not say whether the device exists;
  only a device whose scheme differs from ``default_scheme`` can be told apart, by its scheme.
  A request without Cred that carries ``x-syncml-hmac`` is, for an unknown device, closed like a
  wrong MAC. Bytes that are not a SyncML message keep the bare ``bad_request`` close.
* **Audit**: each authentication attempt adds one ``client_auth`` event to ``ServerReply.audit``
  (device as claimed, scheme, outcome, SessionID; never a secret or nonce), for the driver's
  audit log and per-address throttling.
* **Schemes**: the client's credential is checked under ``auth_scheme``, the server's own is
  sent under ``server_scheme`` (they may differ, e.g. a DM 1.2 client with auth-basic towards
  the server and auth-md5 from it); a digest account may keep only B64(H(name:password))
  (:meth:`DmAccount.hashed`). Nonces are opaque octets (:func:`messages.nonce_octets`).

Other choices where the spec is silent: the server authenticates every message of a session
(plain HTTP gives no session authentication, §5.4); a request whose bytes are those of the last
request of its session gets the cached reply (a client retransmission after a lost reply resends
the same bytes): before the credential check in digest mode (it was checked the first time, and
whoever sends it saw the reply go by), before the replay cache in HMAC mode (which would refuse
its MAC); a request that only repeats the MsgID is authenticated like any other. That holds for
the last message of a finished session too: its request bytes and reply are kept in ``finished``
(the most recent ``max_sessions`` sessions), so a client whose final reply was lost, and who
sends its message again, gets that reply instead of a refusal (in HMAC mode the replay cache
would refuse it, in digest mode the nonce has moved on); a request's media
type is the one its reply uses (:func:`messages.reply_type`); the server advertises its MaxMsgSize
only when ``max_msg_size`` is set. One device is expected to run one session at a time: two
concurrent sessions of one device race for its single stored nonce (the loser is challenged).

Message security (seed 002 §5.3-§5.5, :mod:`message_security`): off unless the server's
``message_security`` is given or :meth:`provision` sets one for a device; when off, the server
behaves byte for byte as before. The request's claimed SyncHdr Source names the account and so
the device's message security, which is removed under the client's AAuthSecret before the
request is handled as above (a device without one is handled as before), and a reply with a
body is protected under the server's AAuthSecret (a cached reply is protected afresh). A request
that fails (or of an unknown device, or of an account that keeps no client secret) gets the
clean close of a wrong MAC: ``client_integrity_failed`` with the reason and one ``client_auth``
audit event. As in HMAC mode, a failure that is a guess of the AAuthSecret (wrong MAC, bad
signature, no decryption) counts towards the device's lockout, and a locked device is closed
(``locked``) without a check. Under ``hmac-md5`` a replayed request that repeats the
last request of a session is let through, so that the retransmission gets the cached reply.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Callable, Mapping, MutableMapping, Sequence
from xml.etree.ElementTree import Element

from dmsim.network.dm import messages as m
from dmsim.network.dm import wbxml
from dmsim.network.dm.account import DmAccount, bootstrap_document
from dmsim.network.dm.auth import AUTH_MD5, check_credential, check_hashed_credential, Credential, make_credential
from dmsim.network.dm.challenges import DEFAULT_CAP, DEFAULT_TTL, ChallengeTable
from dmsim.network.dm.lockout import Lockout, LockoutPolicy
from dmsim.network.dm.bootstrap_mac import bootstrap_key, bootstrap_mac, format_content_type
from dmsim.network.dm.notification import build_pkg0
from dmsim.network.dm.hmac_integrity import (AUTH_HMAC_SHA256, HEADER_NAME, HmacVerifier, Reason, build_header,
                                             find_header)
from dmsim.network.dm.message_security import MessageSecurity, check_combination, sender
from dmsim.network.dm.tree import E, find_all, text
from dmsim.base.errors import DmsimError, MessageSecurityError, ProtocolError

NonceSource = Callable[[int], bytes]
DEFAULT_MAX_SESSIONS = 10_000
AUTH_EVENT = "client_auth"  # the kind of the per-attempt events in ServerReply.audit
OK_OUTCOME, BAD_CREDENTIAL, MISSING_CREDENTIAL = "ok", "bad_credential", "missing_credential"
WRONG_SCHEME, UNKNOWN_DEVICE, LOCKED = "wrong_scheme", "unknown_device", "locked"
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
    """Something the driver counts or audits: ``kind`` is one of client_authenticated,
    client_auth_failed, client_integrity_failed, server_auth_rejected, session_completed,
    session_evicted, bad_request (in ``ServerReply.events``) or ``client_auth`` (one per
    authentication attempt, in ``ServerReply.audit``); ``device`` the device URI as the request
    claimed it (unverified on a failure); ``detail`` the reason (for client_authenticated: the
    Alert code, 1201 or 1200); ``scheme`` the auth scheme checked (``syncml:auth-md5`` ...);
    ``outcome`` one of ok, bad_credential, missing_credential, wrong_scheme, unknown_device,
    locked, or an HMAC verdict (wrong_mac, replay, outside_window, ...); ``session_id`` the
    request's SessionID; ``outcomes`` (session_completed only) the script's results in order.
    No field ever holds a password, key, credential or nonce."""

    kind: str
    device: str
    detail: str = ""
    outcomes: tuple[CommandOutcome, ...] = ()
    scheme: str = ""
    outcome: str = ""
    session_id: str = ""


@dataclass
class ServerReply:
    """What to send back (``body`` empty: nothing, close the connection), with ``headers`` to add
    to the transport response (``x-syncml-hmac`` in HMAC mode), and what happened: ``events`` to
    count, ``audit`` one ``client_auth`` event per authentication attempt (for an audit log and
    per-address throttling by the driver; empty for a cached retransmission)."""

    body: bytes
    content_type: str
    events: list[ServerEvent]
    session_over: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    audit: list[ServerEvent] = field(default_factory=list)


@dataclass
class _Session:
    device: str
    session_id: str
    script: tuple[ManagementCommand, ...] = ()
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
                 hmac_verifier: HmacVerifier | None = None, lockout: LockoutPolicy | None = None,
                 max_sessions: int = DEFAULT_MAX_SESSIONS, session_timeout: float | None = None,
                 challenge_cap: int = DEFAULT_CAP, challenge_ttl: float = DEFAULT_TTL,
                 default_scheme: str = AUTH_MD5, message_security: MessageSecurity | None = None):
        """``accounts`` (device URI -> account, nonces included) may be a persistent store; every
        change of an account (a new nonce) is written back to it by item assignment, before the
        reply that announces it is returned. ``script`` is the management script of every session
        unless :meth:`plan` set one for the device; ``max_msg_size`` the largest message the
        server accepts (advertised in SyncHdr Meta); ``hmac_verifier`` the window and replay cache
        for HMAC-mode requests; ``lockout`` the per-device backoff (:mod:`lockout`);
        ``max_sessions`` the most sessions held at once (the least recently active is dropped);
        ``session_timeout`` the idle time after which :meth:`handle` forgets a session (None, the
        default: only when the driver calls :meth:`expire` or the connection closes; a wall-clock
        driver should set it, e.g. 600 s, while a simulation's links may be slower than any fixed
        value); ``challenge_cap``/``challenge_ttl`` bound the
        challenges pending for unauthenticated requests (:mod:`challenges`); ``default_scheme``
        the scheme an unknown device is challenged with; ``message_security`` the seed 002
        message security of every DM session message (None: none)."""
        if max_sessions < 1:
            raise ProtocolError("DmServer: max_sessions must be at least 1")
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
        self._activity: OrderedDict[tuple[str, str], float] = OrderedDict()  # (device, SessionID) -> last request
        # (device, SessionID) -> (last request, its reply) of the most recent finished sessions
        self.finished: OrderedDict[tuple[str, str], tuple[bytes, ServerReply]] = OrderedDict()
        self.max_sessions = max_sessions
        self.session_timeout = session_timeout
        self.lockout = Lockout(lockout)
        self.challenges = ChallengeTable(challenge_cap, challenge_ttl)
        self.default_scheme = default_scheme
        self.message_security = message_security
        self.security_of: dict[str, MessageSecurity] = {}  # device URI -> its own message security

    # -- bootstrap ---------------------------------------------------------------------------
    def provision(self, device_uri: str, *, client_name: str, client_password: str,
                  server_password: str, auth_scheme: str = AUTH_MD5,
                  server_auth_scheme: str | None = None,
                  message_security: MessageSecurity | None = None) -> DmAccount:
        """Create (or replace) the account for ``device_uri`` with fresh nonces and return it;
        ``server_auth_scheme`` (default: ``auth_scheme``) is how the server authenticates to the client;
        ``message_security`` (default: the server's) the device's seed 002 message security."""
        check_combination(message_security or self.message_security, auth_scheme)
        if message_security is not None:
            self.security_of[device_uri] = message_security
        else:
            self.security_of.pop(device_uri, None)
        account = DmAccount(server_id=self.server_id, server_uri=self.server_uri, client_name=client_name,
                            client_password=client_password, server_name=self.server_id,
                            server_password=server_password, client_nonce=self._nonce(16),
                            server_nonce=self._nonce(16), auth_scheme=auth_scheme,
                            server_auth_scheme=server_auth_scheme or "")
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
        """Process one client message with its transport ``headers``; return the reply.

        Also runs the housekeeping (:meth:`expire` with ``session_timeout``, expired
        challenges), so a driver that never calls :meth:`expire` still has bounded state."""
        if self.message_security is not None or self.security_of:
            return self._handle_secured(body, content_type, now, headers)
        return self._handle(body, content_type, now, headers)

    def _handle_secured(self, body: bytes, content_type: str, now: float, headers: Mapping[str, str]) -> ServerReply:
        """Remove the request's message security, handle it, protect the reply (module doc)."""
        try:
            device = sender(body, content_type)
        except MessageSecurityError as exc:
            return self._close("bad_request", "", str(exc))
        security = self.security_of.get(device, self.message_security)
        if security is None:
            return self._handle(body, content_type, now, headers)
        account, wire = self.accounts.get(device), body
        try:
            if account is None or not account.client_password:
                raise MessageSecurityError(UNKNOWN_DEVICE if account is None else "no_key", "no client secret")
            if self.lockout.locked_for(device, now) > 0:
                raise MessageSecurityError(LOCKED, "device locked out")
            try:
                body = security.unprotect(body, content_type, headers or NO_HEADERS,
                                          account.client_password.encode(), now)
            except MessageSecurityError as exc:
                if exc.reason != Reason.REPLAY.value or not any(
                        s.last_request == body for s in self.sessions.get(device, {}).values()):
                    raise
        except MessageSecurityError as exc:
            if exc.reason in KEY_GUESSES:
                self.lockout.failed(device, now)
            audit = [ServerEvent(AUTH_EVENT, device, scheme=security.name, outcome=exc.reason)]
            return self._close(INTEGRITY_FAILED, device, exc.reason, security.name, audit)
        reply = self._handle(body, content_type, now, headers, wire)
        account = self.accounts.get(device)
        if not reply.body or account is None:
            return reply
        # a new reply: the one handled may be the session's cached last_reply, kept unprotected
        protected, extra = security.protect(reply.body, reply.content_type, account.server_password.encode(),
                                            now, self.server_id)
        if HEADER_NAME in reply.headers:  # an x-syncml-hmac covers the bytes sent (§5.6.1.1)
            extra.update(self._mac_headers(account, protected, now))
        return replace(reply, body=protected, headers={**reply.headers, **extra})

    def _handle(self, body: bytes, content_type: str, now: float, headers: Mapping[str, str],
                wire: bytes | None = None) -> ServerReply:
        """Process one plain (message security removed) client message; see :meth:`handle`.
        ``wire``: the bytes as received, which an x-syncml-hmac covers (default ``body``)."""
        try:
            msg = m.decode(body, content_type)
            hdr = m.read_header(msg)
            reply_type = m.reply_type(content_type)
        except DmsimError as exc:
            return self._close("bad_request", "", str(exc))
        self._housekeep(now)
        device = hdr.source
        account = self.accounts.get(device)
        sess = self.sessions.get(device, {}).get(hdr.session_id)
        mac_header = find_header(headers or NO_HEADERS)
        if account is not None and account.auth_scheme == AUTH_HMAC_SHA256:
            return self._handle_hmac(body, msg, hdr, account, sess, reply_type, now, mac_header,
                                     body if wire is None else wire)
        if account is None and hdr.cred is None and mac_header is not None:
            # an unknown device speaking HMAC gets what a wrong MAC gets (see the module doc)
            audit = [self._audit(device, hdr, AUTH_HMAC_SHA256, UNKNOWN_DEVICE)]
            return self._close(INTEGRITY_FAILED, device, Reason.WRONG_MAC.value, AUTH_HMAC_SHA256, audit)
        if sess is not None and account is not None and hdr.msg_id == sess.last_msg_id \
                and sess.last_reply is not None and body == sess.last_request:
            return self._cached(sess, account, now)
        finished = self._finished_reply(device, hdr.session_id, body) if sess is None and account else None
        if finished is not None:
            return self._resend(finished, account, now)
        scheme = account.auth_scheme if account is not None else self.default_scheme
        if self.lockout.locked_for(device, now) > 0:
            return self._refuse(hdr, scheme, reply_type, now, LOCKED, sess, final=True)
        if not self._authenticates(account, hdr, now):
            outcome = (UNKNOWN_DEVICE if account is None else MISSING_CREDENTIAL if hdr.cred is None
                       else WRONG_SCHEME if hdr.cred.scheme != scheme else BAD_CREDENTIAL)
            self.lockout.failed(device, now, known=account is not None)
            return self._refuse(hdr, scheme, reply_type, now, outcome, sess)
        self.lockout.succeeded(device)
        self.challenges.pop(device, hdr.session_id)
        audit = [self._audit(device, hdr, scheme, OK_OUTCOME)]
        return self._run(sess, account, msg, hdr, body, reply_type, now, audit)

    def _handle_hmac(self, body: bytes, msg: Element, hdr: m.Header, account: DmAccount, sess: "_Session | None",
                     reply_type: str, now: float, mac_header: str | None, wire: bytes) -> ServerReply:
        """HMAC mode (§5.6.1): verify ``x-syncml-hmac``; a refusal is a clean close."""
        device = hdr.source
        if self.lockout.locked_for(device, now) > 0:
            audit = [self._audit(device, hdr, AUTH_HMAC_SHA256, LOCKED)]
            return self._close(INTEGRITY_FAILED, device, LOCKED, AUTH_HMAC_SHA256, audit)
        verdict = self.hmac.verify(mac_header, wire, account.client_password.encode(), now)
        if verdict.reason is Reason.REPLAY and sess is not None and body == sess.last_request:
            return self._cached(sess, account, now)
        finished = self._finished_reply(device, hdr.session_id, body) if sess is None else None
        if finished is not None and verdict.reason in (Reason.OK, Reason.REPLAY):
            return self._resend(finished, account, now)
        if not verdict.ok:
            if verdict.reason is Reason.WRONG_MAC:  # a guess of the key; a replay or stale time is not
                self.lockout.failed(device, now)
            audit = [self._audit(device, hdr, AUTH_HMAC_SHA256, verdict.reason.value)]
            return self._close(INTEGRITY_FAILED, device, verdict.reason.value, AUTH_HMAC_SHA256, audit)
        self.lockout.succeeded(device)
        audit = [self._audit(device, hdr, AUTH_HMAC_SHA256, OK_OUTCOME)]
        if sess is not None and hdr.msg_id == sess.last_msg_id and sess.last_reply is not None \
                and body == sess.last_request:
            return self._cached(sess, account, now)
        return self._run(sess, account, msg, hdr, body, reply_type, now, audit)

    def _run(self, sess: "_Session | None", account: DmAccount, msg: Element, hdr: m.Header, body: bytes,
             reply_type: str, now: float, audit: list[ServerEvent]) -> ServerReply:
        """Run one authenticated message in its session (opened here if new)."""
        evicted: list[ServerEvent] = []
        if sess is None:
            sess, evicted = self._open(hdr.source, hdr.session_id, now)
        self._touch(sess, now)
        try:
            reply = self._step(sess, account, msg, hdr, reply_type, now)
        except DmsimError as exc:
            reply = ServerReply(b"", self.content_type, [ServerEvent("bad_request", sess.device, str(exc))], True)
        reply.events[:0] = evicted
        reply.audit[:0] = audit
        sess.last_msg_id, sess.last_request, sess.last_reply = hdr.msg_id, bytes(body), reply
        if reply.session_over:
            self._forget(hdr.source, hdr.session_id)
            self._keep_finished((hdr.source, hdr.session_id), bytes(body), reply)
        return reply

    def _authenticates(self, account: DmAccount | None, hdr: m.Header, now: float) -> bool:
        """Return True when the request's Cred is the client's, under the stored nonce or the
        challenge nonce issued to this session (§5.4.2, §5.4.3)."""
        if account is None or hdr.cred is None:
            return False
        challenge = self.challenges.get(hdr.source, hdr.session_id, now)
        nonces = [account.client_nonce] + ([challenge.nonce] if challenge is not None else [])
        return any(client_credential_ok(account, hdr.cred, nonce) for nonce in nonces)

    def _refuse(self, hdr: m.Header, scheme: str, reply_type: str, now: float, outcome: str,
                sess: "_Session | None", *, final: bool = False) -> ServerReply:
        """Answer a request that did not authenticate: SyncHdr Status 407 (no Cred) or 401 (wrong
        Cred), §5.4. The first refusal in a session carries a Chal with a challenge nonce bound to
        that session (§5.4.3); the second, or any while the device is locked, carries none and
        ends the session. No session state is created or changed, and the stored nonce stays."""
        device, session_id = hdr.source, hdr.session_id
        pending = self.challenges.pop(device, session_id)
        challenge = None
        if not final and pending is None:
            nonce = self._nonce(16)
            self.challenges.issue(device, session_id, nonce, now)
            challenge = m.chal(scheme, nonce)
        code = m.MISSING_CREDENTIALS if hdr.cred is None else m.UNAUTHORIZED
        msg_id = sess.next_msg_id if sess is not None else 1
        reply = m.message(m.header(session_id, msg_id, device, self.server_uri, max_msg_size=self.max_msg_size),
                          m.status(1, hdr.msg_id, "0", "SyncHdr", code, challenge=challenge))
        over = challenge is None
        events = [ServerEvent("client_auth_failed", device, outcome, scheme=scheme, outcome=outcome)] if over else []
        return ServerReply(m.encode(reply, reply_type), reply_type, events, session_over=over,
                           audit=[self._audit(device, hdr, scheme, outcome)])

    @staticmethod
    def _audit(device: str, hdr: m.Header, scheme: str, outcome: str) -> ServerEvent:
        return ServerEvent(AUTH_EVENT, device, scheme=scheme, outcome=outcome, session_id=hdr.session_id)

    def _open(self, device: str, session_id: str, now: float) -> tuple["_Session", list[ServerEvent]]:
        """Create the state of an authenticated session; at ``max_sessions`` the least recently
        active session is dropped first (a ``session_evicted`` event)."""
        evicted = []
        while self._activity and len(self._activity) >= self.max_sessions:
            (dev, sid), _ = self._activity.popitem(last=False)
            self._forget(dev, sid)
            evicted.append(ServerEvent("session_evicted", dev, "max_sessions", session_id=sid))
        self.finished.pop((device, session_id), None)  # a live session of that name governs now
        sess = self.sessions.setdefault(device, {})[session_id] = _Session(
            device, session_id, script=self.plans.get(device, self.script), started=now)
        return sess, evicted

    def _touch(self, sess: "_Session", now: float) -> None:
        key = (sess.device, sess.session_id)
        self._activity.pop(key, None)
        self._activity[key] = now

    def _housekeep(self, now: float) -> None:
        self.challenges.expire(now)
        if self.session_timeout is not None:
            self.expire(now, self.session_timeout)

    def connection_closed(self, device_uri: str) -> None:
        """Forget the sessions of ``device_uri``: its client closed the connection (gave up)."""
        for sid in list(self.sessions.get(device_uri, {})):
            self._forget(device_uri, sid)

    def expire(self, now: float, idle: float) -> list[str]:
        """Forget sessions with no request for more than ``idle`` seconds; return their device URIs.

        Cheap enough to call on every request: sessions are kept in order of last activity, so
        the cost is the number of sessions forgotten (amortised O(1)). :meth:`handle` already
        calls it with ``session_timeout``; a driver may call it from a timer with the same ``now``
        clock it gives :meth:`handle`."""
        gone = []
        while self._activity:
            (dev, sid), last = next(iter(self._activity.items()))
            if now - last <= idle:
                break
            self._forget(dev, sid)
            gone.append(dev)
        return gone

    def _close(self, kind: str, device: str, detail: str, scheme: str = "",
               audit: list[ServerEvent] | None = None) -> ServerReply:
        return ServerReply(b"", self.content_type, [ServerEvent(kind, device, detail, scheme=scheme, outcome=detail)],
                           True, audit=audit or [])

    def _cached(self, sess: _Session, account: DmAccount, now: float) -> ServerReply:
        last = sess.last_reply
        if last is None:
            return self._close("bad_request", sess.device, "replayed request")
        return self._resend(last, account, now)

    def _resend(self, last: ServerReply, account: DmAccount, now: float) -> ServerReply:
        """The reply ``last`` again, with no events (it was counted once) and, in HMAC mode, a
        fresh x-syncml-hmac."""
        return ServerReply(last.body, last.content_type, [], last.session_over,
                           self._mac_headers(account, last.body, now))

    def _keep_finished(self, key: tuple[str, str], request: bytes, reply: ServerReply) -> None:
        """Keep a finished session's last request and reply, the most recent ``max_sessions``."""
        self.finished[key] = (request, reply)
        self.finished.move_to_end(key)
        while len(self.finished) > self.max_sessions:
            self.finished.popitem(last=False)

    def _finished_reply(self, device: str, session_id: str, body: bytes) -> ServerReply | None:
        """The kept reply of the finished session (``device``, ``session_id``) when ``body`` is its
        last request, byte for byte; else None."""
        kept = self.finished.get((device, session_id))
        return kept[1] if kept is not None and kept[0] == body else None

    def _forget(self, device_uri: str, session_id: str) -> None:
        self._activity.pop((device_uri, session_id), None)
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
        """Answer an authenticated message (the caller checked its Cred or MAC)."""
        scheme = account.auth_scheme
        hmac_mode = scheme == AUTH_HMAC_SHA256
        events: list[ServerEvent] = []
        sess.peer_max = hdr.max_msg_size or sess.peer_max
        first = not sess.client_authenticated
        announce = first
        sess.client_authenticated = True
        hdr_status = m.header_status(msg)
        rejected = hdr_status is not None and hdr_status.code == m.UNAUTHORIZED
        if rejected:
            # The client rejected our credential and did not run our commands: answer its
            # challenge once (§5.4.3) and send them again.
            sess.server_rejections += 1
            events.append(ServerEvent("server_auth_rejected", sess.device, scheme=account.server_scheme))
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
            events.append(ServerEvent("client_authenticated", sess.device, self._initiator(msg), scheme=scheme,
                                      outcome=OK_OUTCOME, session_id=sess.session_id))
        code = m.AUTH_ACCEPTED if announce else m.OK
        if hmac_mode:
            lead = [m.status(1, hdr.msg_id, "0", "SyncHdr", code)]
        else:
            # The nonce this message authenticated with is consumed: every answer to an
            # authenticated message carries the next one, and only that one is stored (§5.5).
            next_nonce = self._nonce(16)
            self.accounts[sess.device] = account.with_nonces(client=next_nonce)
            lead = [m.status(1, hdr.msg_id, "0", "SyncHdr", code, challenge=m.chal(scheme, next_nonce))]
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
            events.append(ServerEvent("session_completed", sess.device, outcomes=self._outcomes(sess),
                                      session_id=sess.session_id))
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
        for st in find_all(msg, "SyncBody/Status") if sess.sent else ():  # none can answer our commands yet
            index = sess.sent.get((text(st, "MsgRef", "") or "", text(st, "CmdRef", "") or ""))
            code = text(st, "Data", "") or ""
            if index is not None and code.isascii() and code.isdigit() and len(code) <= 3:
                sess.codes[index] = int(code)
        for cmd in m.body_commands(msg):
            sess.queue.append(m.status(0, hdr.msg_id, text(cmd, "CmdID", "0") or "0", cmd.tag, m.OK))
            if cmd.tag != "Results":
                continue
            index = sess.sent.get((text(cmd, "MsgRef", "") or "", text(cmd, "CmdRef", "") or ""))
            for item in cmd.findall("Item"):
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
        cred = (make_credential(account.server_scheme, account.server_name, account.server_password,
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
KEY_GUESSES = frozenset({Reason.WRONG_MAC.value, "bad_signature", "decrypt_failed"})  # message-security failures


def client_credential_ok(account: DmAccount, cred: Credential, nonce: bytes) -> bool:
    """Return True when ``cred`` is the client's credential under ``nonce`` (§5.4.2): from the
    stored B64(H(name:password)) when the account keeps only that (:meth:`DmAccount.hashed`),
    else from the password."""
    if account.client_hash and not account.client_password:
        return check_hashed_credential(cred, account.auth_scheme, account.client_hash, nonce)
    return check_credential(cred, account.auth_scheme, account.client_name, account.client_password, nonce)


def http_status(reply: ServerReply) -> int:
    """Return the HTTP status of the core's ``reply``: 200 with a body (a SyncML 401/407 refusal
    included: the SyncML client reads the status in the SyncHdr Status), 401 for a request refused
    for its x-syncml-hmac, else 400 (a clean close: bytes that are not a SyncML message)."""
    if reply.body:
        return 200
    return 401 if any(event.kind == INTEGRITY_FAILED for event in reply.events) else 400
