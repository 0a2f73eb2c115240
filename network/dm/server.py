"""The DM server's protocol core, sans-IO: server-initiated bootstrap and DM sessions with mutual
``syncml:auth-md5`` / ``syncml:auth-basic`` authentication.

Specs: OMA-TS-DM_Security-V1_3 §5.4 (both sides authenticate), §5.4.3 (a failed credential gets
one more challenge with a new nonce; each session uses a fresh nonce), §5.5 (NextNonce),
§5.10.2.3 (bootstrap HMAC); SyncML DM packages 1-4.

The core takes request bodies and ``now`` and returns reply bodies and events; the simulation
and the real HTTP server (``http_server.py``) are thin drivers around it. Nonces come from the
``nonce_source`` it is given (seeded in simulation, ``os.urandom`` over real sockets).

Choices where the spec is silent: the server authenticates every message of a session (plain
HTTP gives no session authentication, §5.4), a request repeating the last MsgID gets the cached
reply (a client retransmission after a lost reply), and the session's single Get asks for
``./DevInfo/Mod`` to exercise package 3.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, MutableMapping
from xml.etree.ElementTree import Element

from dmsim.network.dm import messages as m
from dmsim.network.dm import wbxml
from dmsim.network.dm.account import DmAccount, bootstrap_document
from dmsim.network.dm.auth import AUTH_MD5, check_credential, make_credential
from dmsim.network.dm.bootstrap_mac import bootstrap_key, bootstrap_mac, format_content_type
from dmsim.network.dm.tree import E, text
from dmsim.sim.errors import DmsimError

NonceSource = Callable[[int], bytes]


@dataclass(frozen=True)
class ServerEvent:
    """Something the driver counts: ``kind`` is one of client_authenticated, client_auth_failed,
    server_auth_rejected, session_completed, bad_request; ``device`` the device URI if known."""

    kind: str
    device: str
    detail: str = ""


@dataclass
class ServerReply:
    """What to send back (``body`` empty: nothing) and what happened."""

    body: bytes
    content_type: str
    events: list[ServerEvent]
    session_over: bool = False


@dataclass
class _Session:
    device: str
    session_id: str
    client_failures: int = 0
    server_rejections: int = 0
    client_authenticated: bool = False
    results: dict[str, str] = field(default_factory=dict)
    last_msg_id: str = ""
    last_reply: ServerReply | None = None
    next_msg_id: int = 1
    started: float = 0.0


class DmServer:
    """The DM server core for a fleet of devices identified by ``IMSI:<digits>`` URIs."""

    def __init__(self, server_id: str, server_uri: str, nonce_source: NonceSource, *,
                 content_type: str = m.DM_WBXML, accounts: MutableMapping[str, DmAccount] | None = None):
        """``accounts`` (device URI -> account, nonces included) may be a persistent store; every
        change of an account (a new nonce) is written back to it by item assignment."""
        self.server_id = server_id
        self.server_uri = server_uri
        self._nonce = nonce_source
        self.content_type = content_type
        self.accounts: MutableMapping[str, DmAccount] = {} if accounts is None else accounts
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

    # -- sessions ----------------------------------------------------------------------------
    def handle(self, body: bytes, content_type: str, now: float) -> ServerReply:
        """Process one client message and return the reply (packages 2 and 4)."""
        try:
            msg = m.decode(body, content_type)
            hdr = m.read_header(msg)
        except DmsimError as exc:
            return ServerReply(b"", self.content_type, [ServerEvent("bad_request", "", str(exc))], True)
        account = self.accounts.get(hdr.source)
        if account is None:
            return ServerReply(b"", self.content_type, [ServerEvent("bad_request", hdr.source, "unknown device")], True)
        sess = self.sessions.get(hdr.source, {}).get(hdr.session_id)
        if sess is None:
            sess = self.sessions.setdefault(hdr.source, {})[hdr.session_id] = _Session(hdr.source, hdr.session_id,
                                                                                       started=now)
        elif hdr.msg_id == sess.last_msg_id and sess.last_reply is not None:
            return ServerReply(sess.last_reply.body, self.content_type, [], sess.last_reply.session_over)
        try:
            reply = self._step(sess, account, msg, hdr)
        except DmsimError as exc:
            reply = ServerReply(b"", self.content_type, [ServerEvent("bad_request", sess.device, str(exc))], True)
        sess.last_msg_id, sess.last_reply = hdr.msg_id, reply
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

    def _forget(self, device_uri: str, session_id: str) -> None:
        by_id = self.sessions.get(device_uri)
        if by_id is not None:
            by_id.pop(session_id, None)
            if not by_id:
                del self.sessions[device_uri]

    def _step(self, sess: _Session, account: DmAccount, msg: Element, hdr: m.Header) -> ServerReply:
        scheme = account.auth_scheme
        events: list[ServerEvent] = []
        cred_ok = hdr.cred is not None and check_credential(
            hdr.cred, scheme, account.client_name, account.client_password, account.client_nonce)
        if not cred_ok:
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
            reply = self._reply(sess, account, hdr, [m.status(1, hdr.msg_id, "0", "SyncHdr", code, challenge=challenge)],
                                with_cred=False)
            return ServerReply(reply, self.content_type, events, session_over=not retry)

        first = not sess.client_authenticated
        sess.client_authenticated = True
        commands: list[Element] = []
        hdr_status = m.header_status(msg)
        if hdr_status is not None and hdr_status.code == m.UNAUTHORIZED:
            # The client rejected our credential: answer its challenge once (§5.4.3).
            sess.server_rejections += 1
            events.append(ServerEvent("server_auth_rejected", sess.device))
            if sess.server_rejections > 1 or hdr_status.next_nonce is None:
                return ServerReply(b"", self.content_type, events, session_over=True)
            account = account.with_nonces(server=hdr_status.next_nonce)
            self.accounts[sess.device] = account
            first = True
        elif hdr_status is not None and hdr_status.next_nonce is not None:
            account = account.with_nonces(server=hdr_status.next_nonce)
            self.accounts[sess.device] = account
        if first:
            events.append(ServerEvent("client_authenticated", sess.device))
            next_nonce = self._nonce(16)
            self.accounts[sess.device] = account.with_nonces(client=next_nonce)
            commands.append(m.status(1, hdr.msg_id, "0", "SyncHdr", m.AUTH_ACCEPTED,
                                     challenge=m.chal(scheme, next_nonce)))
        else:
            commands.append(m.status(1, hdr.msg_id, "0", "SyncHdr", m.OK))
        cmd_id = 2
        for cmd in m.body_commands(msg):
            commands.append(m.status(cmd_id, hdr.msg_id, text(cmd, "CmdID", "0"), cmd.tag, m.OK))
            cmd_id += 1
            if cmd.tag == "Results":
                for item in cmd.iterfind("Item"):
                    sess.results[text(item, "Source/LocURI", "") or ""] = text(item, "Data", "") or ""
        if "./DevInfo/Mod" not in sess.results and first:
            commands.append(E("Get", E("CmdID", cmd_id), E("Item", E("Target", E("LocURI", "./DevInfo/Mod")))))
            over = False
        else:
            over = "./DevInfo/Mod" in sess.results
            if over:
                events.append(ServerEvent("session_completed", sess.device))
        body = self._reply(sess, self.accounts[sess.device], hdr, commands, with_cred=True)
        return ServerReply(body, self.content_type, events, session_over=over)

    def _reply(self, sess: _Session, account: DmAccount, hdr: m.Header, commands: list[Element],
               *, with_cred: bool) -> bytes:
        cred = (make_credential(account.auth_scheme, account.server_name, account.server_password,
                                account.server_nonce) if with_cred else None)
        msg_id = sess.next_msg_id
        sess.next_msg_id += 1
        out = m.message(m.header(sess.session_id, msg_id, sess.device, self.server_uri, cred=cred), *commands)
        return m.encode(out, self.content_type)

