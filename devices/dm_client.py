"""The DM client's protocol core, sans-IO: a client-initiated (Alert 1201) or notification-
initiated (Alert 1200, after a package #0) DM session with mutual authentication
(OMA-TS-DM_Security-V1_3 §5.4, §5.4.3, §5.5) or ``syncml:auth-hmac-sha256`` integrity (§5.6.1),
running the server's commands on the device's DM tree (OMA-TS-DM_Protocol-V1_2 §6.5, ACLs of
OMA-TS-DM_TND-V1_2 §7.7.1) in multi-message packages (§8.2).

``start(now)`` returns package 1; ``receive(body, content_type, headers, now)`` consumes a server
message and returns the next thing to send (with the transport headers to add) or the session's
end. The driver (SimPy process or real HTTP client) owns transport, timers and retransmission; a
retransmission resends the same bytes and headers.

Rules implemented:
* every client message carries a Cred computed with the current client nonce (§5.4.1, §5.4.2),
  except in HMAC mode, where it carries none and the ``x-syncml-hmac`` header instead (MAC under
  the UTF-8 octets of the client's AAuthSecret, with ``ServerId``; no ``username``, which the
  1.3 grammar of §5.6.1.1 does not have);
* a 401/407 with a Chal is answered once with the challenge's NextNonce (stale nonce, §5.4.3) by
  sending the refused commands again; a second rejection ends the session (``client_auth_failed``);
* the server's Cred is checked on every server message under the account's server scheme (SRVCRED
  AAuthType; a DM 1.2 client may use auth-basic towards the server and expect auth-md5 back); a
  bad one is challenged once with a new nonce issued by the client, a second bad one ends the
  session (``server_auth_failed``); a good one under a digest scheme is answered with a fresh
  NextNonce in the Chal of the SyncHdr Status (§5.5, §5.4.3), so the server's Cred is never the
  same twice: a server Cred seen on the wire cannot be replayed by an impostor (before, the client
  kept the nonce it issued at bootstrap until a challenge, so the server's digest repeated in every
  message and session, and ``fake-dm-server`` with ``learn`` succeeded);
* in HMAC mode every server message must carry an ``x-syncml-hmac`` that verifies under the
  server's AAuthSecret, inside the verifier's window and not replayed, or the session ends
  (``server_hmac_failed``, the verdict in ``hmac_verdict``); the check runs before parsing;
* a NextNonce received in a Chal replaces the client nonce, and AAuthData of the CLCRED AppAuth
  in the tree, for the next message and session, when the session's scheme is DIGEST (auth-md5),
  DIGEST-SHA256 or HMAC; under any other scheme (auth-basic) it is ignored (§5.5); a nonce the
  client issues is stored in the SRVCRED AAuthData;
* a nonce from the server is taken before the server has authenticated: a 401/407 Chal (the
  server's refusal carries no Cred, since it cannot know the account of a client that failed,
  §5.4.3) and a NextNonce in the Status of a message whose Cred then fails (the server's nonce
  was stale while the server had already moved the client's: taking it is what lets the
  client's challenge of the server be accepted, so the session recovers). An impostor can so set
  the stored client nonce, which costs the next session with the real server one more challenge
  (no worse than dropping messages), and obtain the client's digest over a nonce it chose, which
  the real server, whose nonces are 16 random octets, does not accept;
* Get, Replace, Add, Delete, Exec and Sequence run through :func:`dm_commands.handle_command`
  with the ServerID of the authenticated server, so ACLs and secret nodes are enforced; the
  Statuses and Results go back in the next message, split by the server's MaxMsgSize.

Choices where the spec is silent: the tree given to the client is used as it is (the account is
installed only if the tree has none for ``account.server_id``); credentials come from
``account`` for the whole session, so a server's Replace of AAuthSecret takes effect in the next
session built from the tree; a message answering a credential challenge carries no Status for the
unauthenticated message that asked it; an HMAC account is stored with AAuthType ``HMAC`` (the
mapping of :mod:`account`). The SessionID is :func:`notification.session_id_text` of the 16-bit
``session_id`` in both directions of initiation ("0005" for 5). Pass one long-lived
``hmac_verifier`` per device to refuse replays across sessions.

Message security (seed 002 §5.3-§5.5, :mod:`message_security`): with a ``message_security``
object every message sent is protected under the client's AAuthSecret after it is packed (and
before its x-syncml-hmac, if any, is computed), and every server message is unprotected under the
server's AAuthSecret (after its x-syncml-hmac, which covers the bytes as sent) before anything
else; a refusal ends the session
(``server_message_security_failed``, the error in ``security_error``). Without one (the default)
the client behaves, byte for byte, as it did before.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Callable, Mapping
from xml.etree.ElementTree import Element, SubElement

from dmsim.devices.dm_commands import handle_command
from dmsim.devices.dm_tree import DEVINFO, DmTree, find_account, install_account, install_devinfo
from dmsim.network.dm import messages as m
from dmsim.network.dm.account import DmAccount
from dmsim.network.dm.auth import AUTH_MD5, AUTH_SHA256, check_credential, is_digest, make_credential
from dmsim.network.dm.hmac_integrity import (AUTH_HMAC_SHA256, HEADER_NAME, HmacVerifier, Verdict, build_header,
                                             find_header)
from dmsim.network.dm.message_security import MessageSecurity, check_combination
from dmsim.network.dm.notification import session_id_text
from dmsim.network.dm.tree import text
from dmsim.base.errors import DmsimError, MessageSecurityError, ProtocolError

INITIATORS = {"client": m.ALERT_CLIENT_INITIATED, "server": m.ALERT_SERVER_INITIATED}
NONCE_SCHEMES = frozenset({AUTH_MD5, AUTH_SHA256, AUTH_HMAC_SHA256})  # §5.5: the schemes whose NextNonce is kept
_NO_HEADERS: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True)
class Send:
    """Send ``body`` (Content-Type ``content_type``, plus the transport ``headers``) to the server URI."""

    body: bytes
    content_type: str
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Done:
    """The session ended: ``ok`` or not, with ``reason`` (empty when ok)."""

    ok: bool
    reason: str = ""


class DmClient:
    """One DM session of one device against the server of ``account``, on the device's ``tree``."""

    def __init__(self, account: DmAccount, device_uri: str, devinfo: dict[str, str], session_id: int,
                 nonce_source: Callable[[int], bytes], content_type: str = m.DM_WBXML, *,
                 tree: DmTree | None = None, initiator: str = "client", max_msg_size: int = 10000,
                 hmac_verifier: HmacVerifier | None = None, message_security: MessageSecurity | None = None):
        """``initiator`` is ``client`` (Alert 1201) or ``server`` (Alert 1200, the session a
        package #0 asked for; ``session_id`` is then the package's). ``tree`` defaults to a new
        tree with ``devinfo`` and ``account``; ``max_msg_size`` is advertised to the server;
        ``message_security`` is applied to every message (seed 002 §5.3-§5.5; None: none)."""
        if initiator not in INITIATORS:
            raise ProtocolError(f"initiator {initiator!r}, expected client or server")
        check_combination(message_security, account.auth_scheme)
        self.security = message_security
        self.security_error: MessageSecurityError | None = None
        self.tree = tree if tree is not None else DmTree()
        if devinfo:
            install_devinfo(self.tree, devinfo)
        if find_account(self.tree, account.server_id) is None:
            install_account(self.tree, account)
        self._account = account
        self._store_nonces()
        self.device_uri = device_uri
        self.devinfo = devinfo
        self.session_id = session_id_text(session_id & 0xFFFF)
        self._nonce = nonce_source
        self.content_type = content_type
        self.alert = INITIATORS[initiator]
        self.max_msg_size = max_msg_size
        self.hmac = hmac_verifier if hmac_verifier is not None else HmacVerifier()
        self.hmac_verdict: Verdict | None = None
        self.msg_id = 0
        self.auth_retries = 0
        self._server_rejections = 0
        self._server_ok = False
        self._queue: list[Element] = []
        self._last_sent: list[Element] = []
        self._last_final = False
        self._peer_max: int | None = None

    @property
    def account(self) -> DmAccount:
        """Return the account in use (nonces as updated so far)."""
        return self._account

    @account.setter
    def account(self, account: DmAccount) -> None:
        self._account = account
        self._store_nonces()

    @property
    def hmac_mode(self) -> bool:
        """Return True when the account uses ``syncml:auth-hmac-sha256``."""
        return self._account.auth_scheme == AUTH_HMAC_SHA256

    def _store_nonces(self) -> None:
        """Mirror the account's nonces into AAuthData of the tree's AppAuth nodes (§5.5)."""
        acc = find_account(self.tree, self._account.server_id)
        app_auth = self.tree.find(f"{acc}/AppAuth") if acc is not None else None
        for auth in (app_auth.children or {}).values() if app_auth is not None else ():
            level, data = (auth.children or {}).get("AAuthLevel"), (auth.children or {}).get("AAuthData")
            if level is None or data is None or data.interior:
                continue
            nonce = {"CLCRED": self._account.client_nonce, "SRVCRED": self._account.server_nonce}.get(level.value)
            if nonce is not None:
                data.format, data.value = "b64", nonce

    def start(self, now: float = 0.0) -> Send:
        """Return package 1: Alert 1201 (or 1200) and DevInfo, with the client's credential."""
        self._queue = [m.alert(self.alert), self._devinfo_replace()]
        return self._send([], ask_next=False, now=now)

    def _devinfo_replace(self) -> Element:
        """Return the Replace of package 1 carrying the DevInfo leaves, Format chr (DM_Protocol package 1)."""
        replace = Element("Replace")
        m.append_leaf(replace, "CmdID", 0)
        node = self.tree.find(DEVINFO)
        if node is None:
            return replace
        base = node.uri  # a child's URI is its parent's and its name (DmTree Node.uri)
        for leaf in (node.children or {}).values():
            if leaf.interior:
                continue
            item = SubElement(replace, "Item")
            m.append_leaf(SubElement(item, "Source"), "LocURI", f"{base}/{leaf.name}")
            m.append_leaf(SubElement(item, "Meta"), "Format", "chr")
            m.append_leaf(item, "Data", leaf.value)
        return replace

    def receive(self, body: bytes, content_type: str, headers: Mapping[str, str] = _NO_HEADERS,
                now: float = 0.0) -> Send | Done:
        """Consume one server message and its transport ``headers``; return the next message or
        the end of the session."""
        if self.hmac_mode:
            self.hmac_verdict = self.hmac.verify(find_header(headers or _NO_HEADERS), body,
                                                 self._account.server_password.encode(), now)
            if not self.hmac_verdict.ok:
                return Done(False, "server_hmac_failed")
        if self.security is not None:
            try:
                body = self.security.unprotect(body, content_type, headers or _NO_HEADERS,
                                               self._account.server_password.encode(), now)
            except MessageSecurityError as exc:
                self.security_error = exc
                return Done(False, "server_message_security_failed")
        try:
            msg = m.decode(body, content_type)
            hdr = m.read_header(msg)
            verdict = m.header_status(msg)
        except DmsimError as exc:
            return Done(False, f"bad_server_message: {exc}")
        if verdict is None:
            return Done(False, "bad_server_message: no Status for SyncHdr")
        if verdict.code in (m.UNAUTHORIZED, m.MISSING_CREDENTIALS):
            if verdict.next_nonce is None or self.auth_retries >= 1:
                return Done(False, "client_auth_failed")
            self.auth_retries += 1
            self.account = self._account.with_nonces(client=verdict.next_nonce)
            self._queue[:0] = self._last_sent
            return self._send([], ask_next=False, now=now)
        if verdict.code not in (m.OK, m.AUTH_ACCEPTED):
            return Done(False, f"server_status_{verdict.code}")
        if verdict.next_nonce is not None and self._account.auth_scheme in NONCE_SCHEMES:
            # §5.5: AAuthData takes the NextNonce under DIGEST, DIGEST-SHA256 and HMAC (ignored
            # otherwise); the current session keeps its credential valid, since the server switched
            # to the new nonce for this client already. Taken before the server's Cred is checked
            # (see the module doc: the recovery when both nonces moved needs it).
            self.account = self._account.with_nonces(client=verdict.next_nonce)
        account = self._account
        if not self.hmac_mode and (hdr.cred is None or not check_credential(
                hdr.cred, account.server_scheme, account.server_name, account.server_password, account.server_nonce)):
            self._server_rejections += 1
            if self._server_rejections > 1:
                return Done(False, "server_auth_failed")
            nonce = self._nonce(16)
            self.account = account.with_nonces(server=nonce)
            return self._send([m.status(1, hdr.msg_id, "0", "SyncHdr", m.UNAUTHORIZED,
                                        challenge=m.chal(account.server_scheme, nonce))],
                              ask_next=False, now=now, take=False)
        self._peer_max = hdr.max_msg_size or self._peer_max
        commands = m.body_commands(msg)
        if m.is_final(msg) and not commands and self._last_final:
            return Done(True)
        lead = [m.status(1, hdr.msg_id, "0", "SyncHdr", m.OK if self._server_ok else m.AUTH_ACCEPTED,
                         challenge=self._next_server_nonce())]
        self._server_ok = True
        try:
            for cmd in commands:
                if m.is_next_message(cmd):
                    self._queue.append(m.status(0, hdr.msg_id, text(cmd, "CmdID", "0") or "0", "Alert", m.OK))
                else:
                    self._queue += handle_command(self.tree, cmd, account.server_id, hdr.msg_id, 1)[0]
        except DmsimError as exc:
            return Done(False, f"bad_server_message: {exc}")
        return self._send(lead, ask_next=m.peer_has_more(msg), now=now)

    def _next_server_nonce(self) -> Element | None:
        """Return the Chal that gives the server a fresh nonce for its next Cred (§5.5 NextNonce,
        §5.4.3 "a new nonce SHOULD be used"), and keep it, when the server authenticates under a
        digest scheme; None otherwise (auth-basic has no nonce, HMAC mode no Cred)."""
        account = self._account
        if self.hmac_mode or not is_digest(account.server_scheme):
            return None
        nonce = self._nonce(16)
        self.account = account.with_nonces(server=nonce)
        return m.chal(account.server_scheme, nonce)

    def _send(self, lead: list[Element], *, ask_next: bool, now: float, take: bool = True) -> Send:
        """Return the next message: ``lead``, then as many queued items as fit (``take``)."""
        self.msg_id += 1
        a = self._account
        cred = None if self.hmac_mode else make_credential(a.auth_scheme, a.client_name, a.client_password,
                                                           a.client_nonce)
        hdr = m.header(self.session_id, self.msg_id, a.server_uri, self.device_uri, cred=cred,
                       loc_name=a.client_name, max_msg_size=self.max_msg_size)
        queue = self._queue if take else []
        body, count, self._last_final = m.pack(hdr, lead, queue, content_type=self.content_type,
                                               max_size=self._peer_max, ask_next=ask_next)
        self._last_sent = queue[:count]
        del queue[:count]
        headers = {}
        if self.security is not None:
            body, extra = self.security.protect(body, self.content_type, a.client_password.encode(), now, a.server_id)
            headers.update(extra)
        if self.hmac_mode:
            # the 1.3 grammar (§5.6.1.1) has algorithm, ServerId, Timestamp and mac: no username
            headers[HEADER_NAME] = build_header(a.client_password.encode(), body, now, server_id=a.server_id)
        return Send(body, self.content_type, headers)
