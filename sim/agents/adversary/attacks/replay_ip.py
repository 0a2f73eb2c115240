"""Replays on the IP path to the DM server: an attacker on ``links.ip`` records a device's DM
requests (or, under TLS, its TLS flights) and sends them to the server again.

What stands in the way, per DM security mode (OMA-TS-DM_Security 1.3):

- ``syncml:auth-basic`` (§5.4.1): the Cred is B64(name:password), no nonce, so a captured Cred
  authenticates any later session; §5.4 allows basic only where the transport protects it (TLS).
- ``syncml:auth-md5`` (§5.4.2): the Cred digest covers the client nonce, and the server consumes a
  nonce when it is used, answering with a fresh NextNonce (§5.5): a replay is challenged again.
- ``syncml:auth-hmac-sha256`` (§5.6.1): x-syncml-hmac covers the whole body and a Timestamp; the
  server refuses a changed body (wrong_mac), a MAC it already accepted (replay cache) and a
  Timestamp outside its window (``server.hmac_window``) (§5.6.1.2).
- TLS (seed 000 §9.2.2): the ip path carries only records; a fresh server random makes a replayed
  handshake fail and the record sequence number a replayed record (RFC 5246 §6.2.3.1, §7.4.9).

Every attack here reads its verdict from the server's state before and after each replay
(:class:`ServerView`): a session opened or advanced, or a nonce rotated, is a success; a refusal
the server recorded (the transport's x-syncml-hmac refusal counts, a challenge issued, a lockout
record) is a detection; a cached reply with nothing changed is a block.

Choices where the brief and specs are silent:

- The attacker captures on the simulated ``links.ip`` uplink (:func:`capture_dm`). Against a real
  server (``components.dm_server: socket``, plain ``http://``) it reads the transport's view
  instead (``Adversary.observe_dm``), and ``replay-dm-credential`` judges each replay from the
  real server's answer (:func:`judge_by_reply`: its state cannot be read); the other replays need
  the simulated server, whose state they compare.
- Under TLS the DM-level replays (the first three attacks) see records, not SyncML: the attack
  acts (it watched the flights) and is **blocked** by TLS confidentiality, which leaves no trace.
- Success is read from the replayed SessionID's own state (a session opened, advanced or
  completed under it); server state read globally (the transport's refusal counts, the challenge
  table's and the lockout's sizes, the account's nonces) is attributed to the replay it follows,
  so replays run one at a time, and a scenario that wants clean evidence keeps ``after`` longer
  than a session and the fleet small (the scenario files here do).
- ``after`` shorter than the device's own trip to the server makes a race: with auth-md5 a copy
  that arrives first spends the nonce and succeeds (the digest binds neither SessionID nor body,
  §5.4.2), and the device is challenged and recovers (§5.4.3).
- Nothing closes an adversary endpoint (``transport.closed`` would forget the victim's sessions by
  DevId): a session the attacker opened keeps its ``server.max_sessions`` slot for the run.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import simpy

from dmsim.base.errors import DmsimError
from dmsim.network.dm import http_binding
from dmsim.network.dm import messages as m
from dmsim.network.dm.hmac_integrity import HEADER_NAME
from dmsim.network.dm.message_security import is_xml
from dmsim.network.dm.notification import session_id_text
from dmsim.network.dm.tls import AppData, HandshakeDone, TlsFailed, server_endpoint
from dmsim.sim.agents.adversary.catalogue import Attack, Entry, register
from dmsim.sim.agents.adversary.outcome import BLOCKED, DETECTED, INCONCLUSIVE, SUCCEEDED

TLS_BLOCK = ("TLS (seed 000 §9.2.2): the ip path carries only encrypted records, no SyncML request "
             "in clear to capture or replay")
DIGEST_RACE = ("none: the auth-md5 digest covers the nonce but neither the SessionID nor the body "
               "(OMA-TS-DM_Security §5.4.2); the replay reached the server before the device's own request "
               "and spent the nonce first (the device is then challenged, §5.4.3)")
_TLS_ALERT = 21  # RFC 5246 §6.2.1 ContentType alert
_TLS_APPDATA = 23  # RFC 5246 §6.2.1 ContentType application_data
ALERT_NAMES = {20: "bad_record_mac", 40: "handshake_failure", 42: "bad_certificate", 47: "illegal_parameter",
               48: "unknown_ca", 51: "decrypt_error", 71: "insufficient_security"}  # RFC 5246 §7.2


# --- capture ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Captured:
    """One DM request of a device as it crossed ``links.ip`` in clear: the HTTP request bytes,
    the parts a resend needs, and its SyncHdr."""

    index: int
    uri: str
    at: float
    raw: bytes
    body: bytes
    content_type: str
    headers: dict[str, str]  # the extra transport headers: x-syncml-hmac (§5.6.1.1), if any
    header: m.Header

    @property
    def key(self) -> tuple[str, str]:
        """(SessionID, MsgID): which message of which session this is."""
        return self.header.session_id, self.header.msg_id


def read_request(payload: bytes, index: int, uri: str, now: float) -> Captured | None:
    """Return the DM request ``payload`` parsed (HTTP, SyncML header), or None when it is not a
    SyncML request in clear (a TLS flight, a response)."""
    try:
        http = http_binding.decode(payload)
        header = read_sync_header(http.body, http.content_type)
    except DmsimError:
        return None
    if not http.start.startswith("POST "):
        return None
    extra = {name: value for name, value in http.headers.items() if name == HEADER_NAME}
    return Captured(index, uri, now, payload, http.body, http.content_type, extra, header)


def read_sync_header(body: bytes, content_type: str) -> m.Header:
    """Return the SyncHdr of a request body; DmsimError when there is none in clear.

    seed 002 ``xmlenc`` replaces SyncBody by an EncryptedData and keeps SyncHdr in clear (§5.5): its
    header is read from the SyncHdr alone, put back into an empty SyncML message."""
    try:
        return m.read_header(m.decode(body, content_type))
    except DmsimError:
        start, end = body.find(b"<SyncHdr"), body.find(b"</SyncHdr>")
        root = body.find(b"<SyncML")
        if not is_xml(content_type) or min(start, end, root) < 0:
            raise
        opening = body[root:body.index(b">", root) + 1]
        bare = opening + body[start:end + len(b"</SyncHdr>")] + b"<SyncBody/></SyncML>"
        return m.read_header(m.decode(bare, content_type))


def capture_dm(attack: Attack, on_request: Callable[[object, Captured], None],
               on_flight: Callable[[object, object], None] | None = None) -> None:
    """Tap ``links.ip`` upwards for ``attack``: from its ``at`` on, every DM message of a targeted
    device goes to ``on_request(dev, captured)`` when it is a SyncML request in clear (plain HTTP)
    and to ``on_flight(dev, msg)`` otherwise (a TLS flight; ``msg.meta`` is (device, segment,
    connection)). The adversary's own endpoints (negative indexes) are not reported. The tap
    only looks: every message passes unchanged. Against a real server (``components.dm_server:
    socket``) there is no simulated link: the eavesdropper's view is the transport's
    (``Adversary.observe_dm``, plain HTTP only)."""
    if not simulated_server(attack.replica.data):
        def observed(dev, body, content_type, headers, reply):
            index = dev.ident.index
            if not attack.active() or not attack.targets(index):
                return
            try:
                header = read_sync_header(body, content_type)
            except DmsimError:
                return
            extra = {name: value for name, value in headers.items() if name == HEADER_NAME}
            on_request(dev, Captured(index, dev.ident.uri, attack.env.now, b"", body, content_type, extra, header))
        attack.adversary.observe_dm(observed)
        return

    def hook(msg, now, deliveries):
        if msg.kind != "dm" or not attack.active() or not isinstance(msg.meta, tuple):
            return deliveries
        dev = msg.meta[0]
        index = dev.ident.index
        if index < 0 or not attack.targets(index):
            return deliveries
        captured = read_request(msg.payload, index, dev.ident.uri, now)
        if captured is not None:
            on_request(dev, captured)
        elif on_flight is not None:
            on_flight(dev, msg)
        return deliveries

    attack.adversary.tap(attack.adversary.ip_links()[0], hook)


def simulated_server(data: dict) -> bool:
    """Return whether the DM server is the simulated one (whose state a verdict can read)."""
    return data["components"]["dm_server"]["kind"] == "virtual"


def needs_simulated_ip(data: dict) -> str | None:
    """Return why a scenario cannot host an ip-path capture (a socket DM server), or None."""
    if data["components"]["dm_server"]["kind"] != "virtual":
        return "captures on the simulated links.ip: needs components.dm_server.kind virtual"
    return None


def tls_mode(data: dict) -> str:
    """Return the scenario's DM-server TLS mode (none, psk or x509)."""
    return (data["components"]["dm_server"].get("tls") or {}).get("mode") or "none"


# --- the server's state around a replay -------------------------------------------------------

@dataclass(frozen=True)
class ServerView:
    """What the simulated DM server holds about one DevId, and its refusal records, at one moment."""

    nonces: tuple | None  # the account's (client, server) nonce
    sessions: frozenset  # (SessionID, last MsgID, next MsgID) of its open sessions
    finished: frozenset  # (SessionID, id of the kept reply) of its finished sessions
    refused: dict  # the transport's x-syncml-hmac refusals by verdict
    challenges: int  # challenges pending, all devices (network/dm/challenges.py)
    lockout: int  # devices with a lockout record (network/dm/lockout.py)

    @classmethod
    def of(cls, replica, uri: str) -> "ServerView":
        core = replica.server.core
        account = core.accounts.get(uri)
        return cls((account.client_nonce, account.server_nonce) if account is not None else None,
                   frozenset((sid, s.last_msg_id, s.next_msg_id) for sid, s in core.sessions.get(uri, {}).items()),
                   frozenset((sid, id(kept[1])) for (dev, sid), kept in core.finished.items() if dev == uri),
                   dict(replica.transport.refused), len(core.challenges), len(core.lockout))


@dataclass
class Replayed:
    """One replay and what it did: the reply's HTTP and SyncHdr statuses and the server's changes."""

    index: int
    what: str
    at: float
    http: str | None = None  # the HTTP status ("200", "401"); None: no reply
    syncml: int | None = None  # the server's SyncHdr Status code (212, 401, ...), if any
    advanced: list[str] = field(default_factory=list)  # server state the replay created or moved
    refused: dict[str, int] = field(default_factory=dict)  # x-syncml-hmac refusals it caused
    recorded: list[str] = field(default_factory=list)  # other records of a refusal
    cached: bool = False  # the reply was one the server had sent before
    mac_header: bool = False  # the replayed request carried x-syncml-hmac
    scheme: str = ""  # the scheme of its Cred ("" without one)
    nonce_rotated: bool = False  # the account's nonces changed meanwhile

    @property
    def verdict(self) -> str:
        if self.advanced:
            return SUCCEEDED
        if self.refused or self.recorded:
            return DETECTED
        return BLOCKED


def compare(before: ServerView, after: ServerView, out: Replayed, session_id: str) -> None:
    """Fill ``out`` with what changed between ``before`` and ``after``. Only the replayed
    SessionID's own state counts as advanced (the device may still be running a session of its
    own); a rotated nonce is noted as evidence; refusal records are the server's, all devices."""
    mine = lambda view: {entry for entry in view if entry[0] == session_id}  # noqa: E731
    if mine(after.sessions) - mine(before.sessions):
        out.advanced.append("session opened or advanced")
    if mine(after.finished) - mine(before.finished):
        out.advanced.append("session completed")
    out.nonce_rotated = after.nonces != before.nonces
    out.refused = {k: n - before.refused.get(k, 0) for k, n in after.refused.items() if n > before.refused.get(k, 0)}
    if after.challenges > before.challenges:
        out.recorded.append("challenge issued (§5.4.3)")
    if after.lockout > before.lockout:
        out.recorded.append("lockout failure recorded")


def syncml_status(reply) -> int | None:
    """Return the SyncHdr Status code of a server reply (an HttpMessage), or None."""
    if reply is None or not getattr(reply, "body", b""):
        return None
    try:
        status = m.header_status(m.decode(reply.body, reply.content_type))
    except DmsimError:
        return None
    return None if status is None else status.code


def send_again(attack: Attack, captured: Captured, what: str, body: bytes | None = None,
               seen: list[bytes] | None = None):
    """SimPy generator: send ``captured`` (its ``body`` replaced, if given) to the DM server from
    a new adversary endpoint claiming the device's DevId; return the :class:`Replayed`, judged
    from the server's state before and after. ``seen``: replies already sent to the device (a
    byte-identical reply is flagged ``cached``)."""
    replica = attack.replica
    ep = attack.adversary.endpoint(captured.uri)
    body = captured.body if body is None else body
    out = Replayed(captured.index, what, attack.env.now, mac_header=HEADER_NAME in captured.headers,
                   scheme=captured.header.cred.scheme if captured.header.cred else "")
    attack.act(captured.index, what)
    simulated = simulated_server(replica.data)
    before = ServerView.of(replica, captured.uri) if simulated else None
    reply = yield from replica.transport.exchange(ep, body, captured.content_type,
                                                  replica.data["client"]["request_timeout"], captured.headers)
    if simulated:
        compare(before, ServerView.of(replica, captured.uri), out,
                read_sync_header(body, captured.content_type).session_id)
    if reply is not None and hasattr(reply, "start"):
        out.http, out.syncml = reply.start, syncml_status(reply)
        out.cached = bool(reply.body) and reply.body in (seen or [])
    if not simulated:
        judge_by_reply(out)
    attack.decide(captured.index, out.verdict)
    return out


def judge_by_reply(out: Replayed) -> None:
    """Judge a replay to a real server, whose state the simulation cannot read, from its answer:
    SyncHdr Status 212 (authentication accepted, §5.4) opened a session; 401/407 is a refusal
    the real server writes to its audit log (``client_auth``, sim/real/audit_log.py)."""
    if out.syncml == 212:
        out.advanced.append("the real server accepted the credential (SyncHdr 212)")
    elif out.syncml in (401, 407):
        out.recorded.append(f"refused with {out.syncml} (the real server audits it)")
    elif out.http is not None and out.http != "200":
        out.recorded.append(f"refused with HTTP {out.http}")


def refusal_mechanism(results: list[Replayed]) -> str:
    """Return the defence that refused ``results``, from what the server recorded."""
    refused: dict[str, int] = {}
    for r in results:
        for k, n in r.refused.items():
            refused[k] = refused.get(k, 0) + n
    if refused:
        counts = ", ".join(f"{k}: {n}" for k, n in sorted(refused.items()))
        if any(r.mac_header for r in results):
            return f"x-syncml-hmac refused ({counts}; OMA-TS-DM_Security §5.6.1.2; seed 002 §5.4 for HMAC-MD5)"
        return f"message security refused ({counts}; seed 002 §5.4 XML-Signature, signed over the SyncHdr too)"
    if any(r.mac_header for r in results):  # a real server: only its answer is known
        answers = sorted({text for r in results for text in r.recorded})
        return f"x-syncml-hmac refused ({'; '.join(answers)}; OMA-TS-DM_Security §5.6.1.2)"
    return ("nonce consumed on use: the Cred digest covers a nonce the server replaced with NextNonce, "
            "answered 401 with a new challenge (OMA-TS-DM_Security §5.4.2, §5.4.3, §5.5)")


def evidence_of(results: list[Replayed]) -> dict:
    """Return the evidence of a list of replays (counts of each verdict, statuses seen)."""
    changes = {c for r in results for c in r.advanced} | ({"nonce rotated"} if any(r.nonce_rotated for r in results)
                                                          else set())
    refusals = {c for r in results for c in r.recorded} | {k for r in results for k in r.refused}
    return {"replays": len(results),
            "succeeded": sum(r.verdict == SUCCEEDED for r in results),
            "detected": sum(r.verdict == DETECTED for r in results),
            "blocked": sum(r.verdict == BLOCKED for r in results),
            "http_statuses": sorted({r.http for r in results if r.http}) or None,
            "syncml_statuses": sorted({r.syncml for r in results if r.syncml}) or None,
            "cached_replies": sum(r.cached for r in results),
            "server_changes": sorted(changes) or None,
            "refusal_records": sorted(refusals) or None}


class IpReplay(Attack):
    """What the DM-level replays share: capture in clear, the TLS block, replays in SimPy
    processes, and a judge over their :class:`Replayed` results.

    A subclass writes :meth:`captured` (what to do with each request of a targeted device) and
    the mechanisms of its verdicts."""

    positions = ("ip",)
    success_mechanism = ""

    @classmethod
    def check(cls, data, spec):
        return needs_simulated_ip(data)

    def install(self) -> None:
        self.results: list[Replayed] = []
        self.tls_seen: set[int] = set()
        self.replies: dict[int, list[bytes]] = {}  # device -> the server's replies it got (ip_down)
        self.turn = simpy.Resource(self.env, capacity=1)
        capture_dm(self, self.captured, self._flight)
        self.adversary.tap(self.adversary.ip_links()[1], self._reply_seen)

    def captured(self, dev, captured: Captured) -> None:
        raise NotImplementedError

    def _flight(self, dev, msg) -> None:
        """A TLS flight of a targeted device: nothing in clear to replay (blocked by TLS)."""
        index = dev.ident.index
        if index not in self.tls_seen:
            self.tls_seen.add(index)
            self.act(index, "saw only TLS records on the ip path")
            self.decide(index, BLOCKED)

    def _reply_seen(self, msg, now, deliveries):
        """Keep the SyncML bodies the server sent to targeted devices (to tell a cached reply)."""
        dev = msg.meta[0] if isinstance(msg.meta, tuple) else None
        if dev is not None and dev.ident.index >= 0 and dev.ident.index in self.replies:
            try:
                self.replies[dev.ident.index].append(http_binding.decode(msg.payload).body)
            except DmsimError:
                pass
        return deliveries

    def first_of(self, captured: Captured) -> bool:
        """Return True for the first capture of its device this attack keeps (and start keeping
        the server's replies to that device)."""
        if captured.index in self.replies:
            return False
        self.replies[captured.index] = []
        return True

    def later(self, delay: float, gen_factory: Callable[[], object]) -> None:
        """Run the SimPy generator ``gen_factory()`` ``delay`` seconds from now, one replay at a
        time (so each reads the server's change as its own); keep its results."""
        def run():
            yield self.env.timeout(max(0.0, delay))
            with self.turn.request() as turn:
                yield turn
                self.results.extend((yield from gen_factory()))
        self.env.process(run())

    def judge(self):
        evidence = evidence_of(self.results)
        if self.tls_seen and not self.results:
            return self.outcome(BLOCKED, TLS_BLOCK, tls_devices=len(self.tls_seen))
        if not self.results:
            return self.outcome(INCONCLUSIVE, "no targeted device's DM request crossed the ip path", **evidence)
        verdicts = {r.verdict for r in self.results}
        if SUCCEEDED in verdicts:
            return self.outcome(SUCCEEDED, self.success_text(), state_corrupted=True, **evidence)
        if DETECTED in verdicts:
            return self.outcome(DETECTED, refusal_mechanism(self.results), **evidence)
        return self.outcome(BLOCKED, self.block_mechanism(), **evidence)

    def success_text(self) -> str:
        """Return the mechanism of a success: the class's own (auth-basic), or, for a replay
        whose Cred was a digest, the race its copy won (``after`` shorter than the session)."""
        schemes = {r.scheme for r in self.results if r.verdict == SUCCEEDED}
        if schemes and schemes <= {"syncml:auth-md5", "syncml:auth-sha256"}:
            return DIGEST_RACE
        return self.success_mechanism

    def block_mechanism(self) -> str:
        return ("the server answered from its cache of the session's last request and changed nothing "
                "(network/dm/server.py 'finished'), or did not answer")


# --- 1. credential replay -------------------------------------------------------------------

def with_session_id(captured: Captured, session_id: str) -> bytes:
    """Return the request body with its SyncHdr SessionID replaced and every other octet kept:
    in XML the element's text is edited in place (an enveloped signature and an EncryptedData,
    seed 002 §5.4-§5.5, stay as they were); WBXML is decoded and re-encoded in its own media type
    (the Cred element unchanged)."""
    if is_xml(captured.content_type):
        old = f"<SessionID>{captured.header.session_id}</SessionID>".encode()
        return captured.body.replace(old, f"<SessionID>{session_id}</SessionID>".encode(), 1)
    msg = m.decode(captured.body, captured.content_type)
    msg.find("SyncHdr/SessionID").text = session_id
    return m.encode(msg, captured.content_type)


@register
class CredentialReplay(IpReplay):
    """Capture each targeted device's package 1 (its Cred, or its x-syncml-hmac), wait ``after``
    seconds (its session is over by then), and send it again under a new SessionID: the classic
    credential replay, an attacker opening a session of its own as the device.

    Verdict per device from the server's state: a session opened under the new SessionID is a
    success; a 401 with a new challenge (auth-md5: the nonce was consumed,
    §5.5) or an x-syncml-hmac refusal (the MAC covers the SessionID, §5.6.1.2) a detection.
    """

    kind = "replay-dm-credential"
    params = {"after": 30.0}
    success_mechanism = ("none: auth-basic's Cred is B64(name:password) with no nonce, so the captured Cred "
                         "authenticates a session of the attacker's (OMA-TS-DM_Security §5.4.1; §5.4 allows basic "
                         "only under TLS)")
    entry = Entry(
        family="replay", title="package 1 of a device replayed under a new SessionID (credential replay)",
        seeds_say="§5.4.1: basic has no nonce and no replay protection, allowed only over TLS; §5.4.2/§5.5: the "
                  "md5 digest covers a nonce the server consumes; §5.6.1.2: the HMAC covers the body and is "
                  "cached against replay; seed 000: under TLS the request is not seen in clear.",
        knowledge="none beyond a position on the IP path to the DM server",
        position="the IP path (eavesdrop, then send from anywhere that reaches the server)",
        time="one captured package 1, replayed any time later",
        expected="succeeded with auth-basic over plain HTTP; detected with auth-md5 and auth-hmac-sha256; "
                 "blocked under TLS")

    @classmethod
    def check(cls, data, spec):
        dm = data["components"]["dm_server"]
        if dm["kind"] == "socket" and not dm["url"].startswith("http://"):
            return "against a real server, the eavesdropper reads plain HTTP only (an http:// url)"
        return None if dm["kind"] in ("virtual", "socket") else needs_simulated_ip(data)

    def captured(self, dev, captured: Captured) -> None:
        if captured.header.msg_id == "1" and self.first_of(captured):
            self.later(self.p["after"], lambda: self._replay(captured))

    def _replay(self, captured: Captured):
        session_id = captured.header.session_id
        while session_id == captured.header.session_id:
            session_id = session_id_text(self.rng.randrange(1, 1 << 16))
        result = yield from send_again(self, captured, f"package 1 replayed as SessionID {session_id}",
                                       with_session_id(captured, session_id), self.replies.get(captured.index))
        return [result]


# --- 2. a finished session replayed byte for byte -------------------------------------------

@register
class FinishedSessionReplay(IpReplay):
    """Record a targeted device's requests (package 1 and its session's last request, package 3)
    and, ``after`` seconds after package 1, send both again, byte for byte, SessionID and
    x-syncml-hmac included, in that order.

    network/dm/server.py keeps a finished session's last request and reply (``finished``) so a
    retransmission gets the reply again with no new state. Verdict from the server's state: a
    session opened, advanced or completed under the replayed SessionID is a success; a refusal it
    recorded a detection; a cached reply with nothing changed a block. Over the two: the worst
    for the defender.
    """

    kind = "replay-finished-session"
    params = {"after": 30.0}
    success_mechanism = ("none: auth-basic carries no nonce, so the replayed package 1 reopens the finished "
                         "session and the replayed package 3 completes it with the device's old results "
                         "(OMA-TS-DM_Security §5.4.1)")
    entry = Entry(
        family="replay", title="a finished DM session's packages 1 and 3 replayed byte for byte",
        seeds_say="§5.4.2/§5.5: a consumed nonce makes a replayed digest fail; §5.6.1.2: the replay cache and "
                  "Timestamp window refuse a replayed MAC; the server answers a retransmitted last request from "
                  "its cache (our choice, network/dm/server.py); §5.4.1: basic has no replay protection.",
        knowledge="none beyond a position on the IP path", position="the IP path",
        time="one recorded session, replayed after it ended",
        expected="succeeded with auth-basic over plain HTTP; detected with auth-md5 (package 1 challenged) "
                 "and auth-hmac-sha256; blocked under TLS")

    def install(self) -> None:
        super().install()
        self.sessions: dict[int, dict[tuple[str, str], Captured]] = {}  # device -> its requests in order

    def captured(self, dev, captured: Captured) -> None:
        index = captured.index
        requests = self.sessions.get(index)
        if requests is None:
            if captured.header.msg_id != "1" or not self.first_of(captured):
                return
            requests = self.sessions[index] = {}
            self.later(self.p["after"], lambda: self._replay(index))
        if captured.header.session_id == next(iter(requests), captured.key)[0]:
            requests.setdefault(captured.key, captured)

    def _replay(self, index: int):
        requests = list(self.sessions[index].values())
        chosen = [requests[0]] + ([requests[-1]] if len(requests) > 1 else [])
        results = []
        for n, captured in enumerate(chosen):
            what = f"replayed package {'1' if n == 0 else '3'} (MsgID {captured.header.msg_id}) byte for byte"
            results.append((yield from send_again(self, captured, what, seen=self.replies.get(index))))
        return results


# --- 3. an x-syncml-hmac request replayed inside or outside the window ----------------------

@register
class HmacReplay(IpReplay):
    """Replay, byte for byte, ``after`` seconds later, the first request of each targeted device
    that carries ``x-syncml-hmac`` (§5.6.1). Inside ``server.hmac_window`` the server's replay
    cache refuses it (``replay``), outside it the Timestamp check does (``outside_window``);
    which one, the mechanism reads from the transport's refusal counts."""

    kind = "replay-hmac"
    params = {"after": 30.0}
    success_mechanism = "none: the server accepted a replayed x-syncml-hmac (OMA-TS-DM_Security §5.6.1.2 broken)"
    entry = Entry(
        family="replay", title="a request with x-syncml-hmac replayed byte for byte",
        seeds_say="§5.6.1.2: the receiver rejects a message whose Timestamp is outside its window, and (our "
                  "reading of 'replay') one whose MAC it already accepted; the cache keeps a MAC while its "
                  "Timestamp is inside the window.",
        knowledge="none beyond a position on the IP path", position="the IP path",
        time="one captured request; `after` inside or outside server.hmac_window",
        expected="detected: replay (inside the window) or outside_window (after it)")

    @classmethod
    def check(cls, data, spec):
        problem = needs_simulated_ip(data)
        if problem is None and not any(p.get("dm_auth") == "hmac" for p in data["fleet"]["profiles"]):
            problem = "needs a profile with dm_auth hmac (x-syncml-hmac on every request)"
        return problem

    def captured(self, dev, captured: Captured) -> None:
        if HEADER_NAME in captured.headers and self.first_of(captured):
            self.later(self.p["after"], lambda: self._replay(captured))

    def _replay(self, captured: Captured):
        window = self.replica.data["server"]["hmac_window"]
        side = "inside" if self.env.now - captured.at <= window else "outside"
        what = f"x-syncml-hmac request replayed {self.env.now - captured.at:g} s later ({side} the {window:g} s window)"
        return [(yield from send_again(self, captured, what, seen=self.replies.get(captured.index)))]


# --- 4. TLS records replayed ----------------------------------------------------------------

@dataclass
class TlsReplay:
    """The replay of one device's connection: its client flights fed to a new server endpoint,
    and what that endpoint did; ``live``: what a record injected into the live connection did."""

    index: int
    events: list[str] = field(default_factory=list)  # the new server endpoint's events, in order
    alert: int | None = None  # the alert description it sent in clear, if any
    failure: str = ""  # its TlsFailed reason
    handshake: bool = False
    app_data: bool = False
    live: str = ""  # "" (not tried), "pending", or what happened: "refused" (an alert), "no alert"


def alert_description(out: bytes) -> int | None:
    """Return the description of the first alert record in ``out`` sent in clear (RFC 5246
    §7.2; an encrypted alert is longer than 2 octets of body), or None."""
    at = 0
    while at + 5 <= len(out):
        length = int.from_bytes(out[at + 3:at + 5], "big")
        if out[at] == _TLS_ALERT and length == 2 and at + 7 <= len(out):
            return out[at + 6]
        at += 5 + length
    return None


@register
class TlsRecordReplay(Attack):
    """Record the client flights of each targeted device's first TLS connection (ClientHello,
    the key exchange with Finished, the application-data records) and, ``after`` seconds after
    the first, replay them into a NEW connection to the DM server: a server endpoint made from
    the server's own TLS configuration (``transport.server_config``), fed the flights in order.
    Its fresh ServerHello random changes the keys and the transcript, so the replayed Finished
    (PSK) or CertificateVerify (X.509) fails and no request reaches the DM server core.

    ``live``: also inject a copy of the device's first application-data record into its live
    connection (a forged TCP segment, once the server has answered it): the record sequence
    number in its MAC no longer matches (RFC 5246 §6.2.3.1), the server's TLS engine fails the
    connection with a bad_record_mac alert, counted in ``tls.server_failures``; the victim's
    session dies with it (a denial an on-path attacker can always cause).

    Verdict from the TLS engines' events: a request decrypted from the replay is a success; a
    TlsFailed of the server endpoint a detection (the event the simulated server counts as
    ``tls.server_failures`` on its own connections; the alert it sent, if any, is evidence:
    Mbed TLS sends bad_record_mac for a bad Finished but no alert for a bad CertificateVerify);
    live, the transport's ``server_failures`` growing; a handshake that neither completes nor
    fails a block.
    """

    kind = "replay-tls-records"
    positions = ("ip",)
    params = {"after": 30.0, "live": False}
    entry = Entry(
        family="replay", title="a device's TLS flights replayed into a new connection (and into its live one)",
        seeds_say="seed 000 §9.2.2: DM over TLS 1.1/1.2; RFC 5246 §7.4.1.2/§7.4.9: each side's random enters the "
                  "keys and the Finished, so a replayed handshake fails against a fresh server random; §6.2.3.1: "
                  "the record MAC covers an implicit sequence number, so a replayed record fails its MAC.",
        knowledge="none beyond a position on the IP path", position="the IP path (TCP/TLS flights)",
        time="one recorded connection, replayed any time later",
        expected="detected: the server's TLS engine fails the replayed handshake with a fatal alert")

    @classmethod
    def check(cls, data, spec):
        problem = needs_simulated_ip(data)
        if problem is None and tls_mode(data) == "none":
            problem = "needs components.dm_server.tls.mode psk or x509 (TLS records on the ip path)"
        return problem

    def install(self) -> None:
        self.flights: dict[int, tuple[object, dict[int, bytes]]] = {}  # device -> (connection, seq -> flight)
        self.replays: dict[int, TlsReplay] = {}
        capture_dm(self, lambda dev, captured: None, self._flight)
        self.adversary.tap(self.adversary.ip_links()[1], self._down)

    def _flight(self, dev, msg) -> None:
        index = dev.ident.index
        _dev, seq, conn = msg.meta
        if index not in self.flights:
            self.flights[index] = (conn, {})
            self.replays[index] = TlsReplay(index)
            self.env.process(self._replay_later(index))
        first_conn, flights = self.flights[index]
        if conn is first_conn:
            flights.setdefault(seq, msg.payload)

    def _down(self, msg, now, deliveries):
        """The server's first application data to a targeted device: its request was handled, so
        (``live``) inject the request's record again into the connection."""
        if not self.p["live"] or not isinstance(msg.meta, tuple) or len(msg.meta) != 3:
            return deliveries
        dev, _seq, conn = msg.meta
        entry = self.flights.get(dev.ident.index)
        replay = self.replays.get(dev.ident.index)
        if entry is None or entry[0] is not conn or replay.live or not msg.payload[:1] == bytes([_TLS_APPDATA]):
            return deliveries
        record = next((f for _s, f in sorted(entry[1].items()) if f[:1] == bytes([_TLS_APPDATA])), None)
        if record is not None:
            replay.live = "pending"  # injected once the link has handed the answer on (no re-entry)
            self.env.timeout(0).callbacks.append(lambda _event: self._inject(conn, record, replay))
        return deliveries

    def _inject(self, conn, record: bytes, replay: TlsReplay) -> None:
        """Hand ``record`` to the live connection's server side, as a forged TCP segment with the
        next sequence number would; read the verdict from the transport's server_failures."""
        stats = self.replica.transport.stats
        failures = stats["server_failures"]
        self.act(replay.index, "injected a copy of the first application-data record into the live connection")
        conn.up.receive(conn, record)
        refused = stats["server_failures"] > failures
        replay.live = "refused" if refused else "no alert"
        self.decide(replay.index, DETECTED if refused else BLOCKED)

    def _replay_later(self, index: int):
        yield self.env.timeout(max(0.0, self.p["after"]))
        _conn, flights = self.flights[index]
        replay = self.replays[index]
        self.act(index, f"replayed {len(flights)} recorded client flights into a new TLS connection")
        server = server_endpoint(self.replica.transport.server_config)
        for _seq, flight in sorted(flights.items()):
            if not flight:
                continue  # the FIN: nothing to feed
            for event in server.receive_data(flight):
                self._note(replay, event)
            out = server.data_to_send()
            replay.alert = replay.alert if replay.alert is not None else alert_description(out)
            if server.state in ("failed", "closed"):
                break
        self.decide(index, self._verdict(replay))

    @staticmethod
    def _note(replay: TlsReplay, event) -> None:
        replay.events.append(type(event).__name__)
        if isinstance(event, HandshakeDone):
            replay.handshake = True
        elif isinstance(event, AppData):
            replay.app_data = True
        elif isinstance(event, TlsFailed):
            replay.failure = event.reason
            replay.alert = event.alert if replay.alert is None else replay.alert

    @staticmethod
    def _verdict(replay: TlsReplay) -> str:
        if replay.app_data:
            return SUCCEEDED
        if replay.failure or replay.live == "refused":
            return DETECTED
        return BLOCKED

    def judge(self):
        replays = [r for r in self.replays.values() if r.events or r.live]
        evidence = {"connections": len(replays), "handshakes_completed": sum(r.handshake for r in replays),
                    "requests_decrypted": sum(r.app_data for r in replays),
                    "failures": sorted({r.failure for r in replays if r.failure}) or None,
                    "alerts": sorted({r.alert for r in replays if r.alert is not None}) or None,
                    "live": sorted({r.live for r in replays if r.live}) or None,
                    "server_failures": self.replica.transport.stats.get("server_failures")}
        if not replays:
            return self.outcome(INCONCLUSIVE, "no targeted device's TLS connection was replayed", **evidence)
        verdicts = {self._verdict(r) for r in replays}
        if SUCCEEDED in verdicts:
            return self.outcome(SUCCEEDED, "none: a replayed TLS record was accepted (RFC 5246 §6.2.3.1 broken)",
                                state_corrupted=True, **evidence)
        live = any(r.live == "refused" for r in replays)
        if DETECTED in verdicts:
            alerts = evidence["alerts"]
            said = (f"with a fatal {', '.join(ALERT_NAMES.get(a, str(a)) for a in alerts)} alert" if alerts
                    else "without an alert (Mbed TLS fails a bad CertificateVerify silently)")
            return self.outcome(DETECTED, "TLS (seed 000 §9.2.2): the fresh server random changes the keys and the "
                                          "transcript, so the server's TLS engine fails the replayed Finished or "
                                          f"CertificateVerify {said} (RFC 5246 §7.4.8, §7.4.9)"
                                + ("; a record replayed into the live connection fails its MAC (§6.2.3.1) and "
                                   "the server closes it" if live else ""),
                                state_corrupted=live, **evidence)
        return self.outcome(BLOCKED, "TLS (seed 000 §9.2.2): the replayed handshake went nowhere, no alert",
                            **evidence)
