"""The DM client's protocol core, sans-IO: a client-initiated DM session (Alert 1201) with mutual
authentication (OMA-TS-DM_Security-V1_3 §5.4, §5.4.3, §5.5).

``start()`` returns package 1; ``receive(body, content_type)`` consumes a server message and
returns the next thing to send or the session's end. The driver (SimPy process or real HTTP
client) owns transport, timers and retransmission; a retransmission resends the same bytes.

Rules implemented:
* every client message carries a Cred computed with the current client nonce (§5.4.1, §5.4.2);
* a 401/407 with a Chal is answered once with the challenge's NextNonce (stale nonce, §5.4.3);
  a second rejection ends the session (``client_auth_failed``);
* the server's Cred is checked on every server message; a bad one is challenged once with a new
  nonce issued by the client, a second bad one ends the session (``server_auth_failed``);
* a NextNonce received in a Chal (with status 212) replaces AAuthData for the next session (§5.5).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable
from xml.etree.ElementTree import Element

from dmsim.network.dm import messages as m
from dmsim.network.dm.account import DmAccount
from dmsim.network.dm.auth import check_credential, make_credential
from dmsim.network.dm.tree import E, text
from dmsim.sim.errors import DmsimError


@dataclass(frozen=True)
class Send:
    """Send ``body`` (Content-Type ``content_type``) to the server URI."""

    body: bytes
    content_type: str


@dataclass(frozen=True)
class Done:
    """The session ended: ``ok`` or not, with ``reason`` (empty when ok)."""

    ok: bool
    reason: str = ""


class DmClient:
    """One DM session of one device against the server of ``account``."""

    def __init__(self, account: DmAccount, device_uri: str, devinfo: dict[str, str], session_id: int,
                 nonce_source: Callable[[int], bytes], content_type: str = m.DM_WBXML):
        self.account = account
        self.device_uri = device_uri
        self.devinfo = devinfo
        self.session_id = format(session_id & 0xFFFF, "X")
        self._nonce = nonce_source
        self.content_type = content_type
        self.msg_id = 0
        self.auth_retries = 0
        self._server_rejections = 0
        self._pending_statuses: list[Element] = []
        self._server_ok = False

    def start(self) -> Send:
        """Return package 1: Alert 1201 and DevInfo, with the client's credential.

        Called again after a challenge: MsgIDs keep increasing within the session, so the server
        can tell the new attempt from a retransmission.
        """
        replace = E("Replace", E("CmdID", 2), *(
            E("Item", E("Source", E("LocURI", f"./DevInfo/{k}")), E("Meta", E("Format", "chr")), E("Data", v))
            for k, v in self.devinfo.items()))
        return self._send([E("Alert", E("CmdID", 1), E("Data", m.ALERT_CLIENT_INITIATED)), replace])

    def receive(self, body: bytes, content_type: str) -> Send | Done:
        """Consume one server message; return the next message or the end of the session."""
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
            self.account = self.account.with_nonces(client=verdict.next_nonce)
            return self.start()
        if verdict.code not in (m.OK, m.AUTH_ACCEPTED):
            return Done(False, f"server_status_{verdict.code}")
        if verdict.next_nonce is not None:
            # §5.5: AAuthData takes the NextNonce; the current session keeps its credential valid,
            # since the server switched to the new nonce for this client already.
            self.account = self.account.with_nonces(client=verdict.next_nonce)
        account = self.account
        if hdr.cred is None or not check_credential(hdr.cred, account.auth_scheme, account.server_name,
                                                    account.server_password, account.server_nonce):
            self._server_rejections += 1
            if self._server_rejections > 1:
                return Done(False, "server_auth_failed")
            nonce = self._nonce(16)
            self.account = account.with_nonces(server=nonce)
            return self._send([m.status(1, hdr.msg_id, "0", "SyncHdr", m.UNAUTHORIZED,
                                        challenge=m.chal(account.auth_scheme, nonce))])
        commands = m.body_commands(msg)
        if not commands:
            return Done(True)
        out: list[Element] = [m.status(1, hdr.msg_id, "0", "SyncHdr", m.AUTH_ACCEPTED if not self._server_ok else m.OK)]
        self._server_ok = True
        cmd_id = 2
        for cmd in commands:
            ref = text(cmd, "CmdID", "0")
            if cmd.tag == "Get":
                uris = [text(i, "Target/LocURI", "") or "" for i in cmd.iterfind("Item")]
                found = [u for u in uris if u.startswith("./DevInfo/") and u[10:] in self.devinfo]
                out.append(m.status(cmd_id, hdr.msg_id, ref, "Get", m.OK if len(found) == len(uris) else 404))
                if found:
                    out.append(E("Results", E("CmdID", cmd_id + 1), E("MsgRef", hdr.msg_id), E("CmdRef", ref), *(
                        E("Item", E("Source", E("LocURI", u)), E("Data", self.devinfo[u[10:]])) for u in found)))
                cmd_id += 2
            else:
                out.append(m.status(cmd_id, hdr.msg_id, ref, cmd.tag, 406))
                cmd_id += 1
        return self._send(out)

    def _send(self, commands: list[Element]) -> Send:
        self.msg_id += 1
        a = self.account
        cred = make_credential(a.auth_scheme, a.client_name, a.client_password, a.client_nonce)
        hdr = m.header(self.session_id, self.msg_id, a.server_uri, self.device_uri, cred=cred,
                       loc_name=a.client_name, max_msg_size=10000)
        return Send(m.encode(m.message(hdr, *commands), self.content_type), self.content_type)
