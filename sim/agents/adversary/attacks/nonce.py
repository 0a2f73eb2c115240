"""Nonce attacks: what an attacker on the IP path gets from the nonces of the digest schemes.

OMA-TS-DM_Security-V1_3 §5.4.2: the digest is H(B64(H(name:password)):nonce), so a captured
credential is worth something only while the server still accepts its nonce. §5.4.3: a failed
credential gets one more challenge with a new nonce, and each session uses a new one; §5.5: the
NextNonce of a Chal is what the client uses next. dmsim's server (``network/dm/server.py``)
consumes a nonce when it is used, keeps a failed request's challenge nonce apart from the stored
nonce (``network/dm/challenges.py``) and locks a device out after failures
(``network/dm/lockout.py``). The attacks here check each of those from the ``ip`` position:

- ``stale-nonce``: a captured package 1 replayed once its nonce was replaced;
- ``server-nonce-reuse``: the same replay against a server whose NextNonce repeats;
- ``nonce-predictability``: the statistics of the server's nonces, and whether the next one can
  be computed from those seen;
- ``nonce-rotation-lockout``: strangers' bad package 1s that claim a device's DevId.

What the attacks share (the helpers below): the attacker's DM requests are the DM client core's
own (``devices/dm_client.py``) under an account holding *wrong* passwords, so its package 1
carries a real but wrong Cred; they reach the simulated server through an adversary endpoint
(``Adversary.endpoint``). What crosses the ``ip`` links is read in plain HTTP mode (under TLS the
position sees records only: :func:`plain_http_problem`). The judges read the server's audit
trail, which the simulated driver does not keep but a real one does (``ServerReply.audit`` and
``events``, ``sim/real/audit_log.py``): :class:`ServerAudit` keeps it (the server agent's
``audit_observers``), and :class:`SessionLog` keeps each device's session record (the attack's
``finished``). Both observe, neither changes what they see.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from dmsim.base.errors import DmsimError
from dmsim.devices.dm_client import DmClient, Send
from dmsim.network.dm import http_binding
from dmsim.network.dm import messages as m
from dmsim.network.dm.account import DmAccount
from dmsim.network.dm.auth import AUTH_MD5, AUTH_SHA256
from dmsim.network.dm.hmac_integrity import AUTH_HMAC_SHA256, HEADER_NAME
from dmsim.network.dm.notification import session_id_text
from dmsim.network.dm.server import BAD_CREDENTIAL, LOCKED, OK_OUTCOME
from dmsim.sim.agents.adversary.catalogue import Attack, Entry, register
from dmsim.sim.agents.adversary.outcome import BLOCKED, DETECTED, INCONCLUSIVE, SUCCEEDED
from dmsim.sim.agents.dm_server import DM_AUTH_SCHEMES

DIGEST_AUTH = {"md5": AUTH_MD5, "sha256": AUTH_SHA256}  # fleet.profiles[].dm_auth with a nonce
# a device's record when its credential (or x-syncml-hmac: the refusal is an HTTP 401) was refused
AUTH_FAILURES = ("client_auth_failed", "http_401")
FLEET_PLMN = "00101"  # the fleet's test PLMN: device n is IMSI 00101 + n on 10 digits (public, sequential)
FAKE_PLMN = "00199"   # DevIds of devices that do not exist
DEVINFO = {"Man": "dmsim", "Mod": "dmsim-phone-a", "DmV": "1.2", "Lang": "en-US"}


# -- scenario checks ----------------------------------------------------------------------------
def plain_http_problem(data: dict, real_ok: bool = False) -> str | None:
    """Return why the ``ip`` position cannot read or reach the DM layer in scenario ``data``:
    the simulated server is needed (the judges read its state; ``real_ok``: or a real one at an
    ``http://`` url, judged from its answers) over plain HTTP (under TLS the position sees
    records, and the attacker's endpoint has no PSK or certificate)."""
    comp = data["components"]["dm_server"]
    if real_ok and comp["kind"] == "socket":
        return None if comp["url"].startswith("http://") else "against a real server: an http:// url"
    if comp["kind"] != "virtual":
        return "needs the simulated DM server (components.dm_server kind virtual)"
    if (comp.get("tls") or {}).get("mode", "none") != "none":
        return ("needs plain HTTP DM sessions (components.dm_server.tls mode none): under TLS the ip position "
                "sees records")
    return None


def digest_problem(data: dict) -> str | None:
    """Return why no device of ``data`` uses a nonce (a profile with dm_auth md5 or sha256 is needed)."""
    if any(p.get("dm_auth", "md5") in DIGEST_AUTH for p in data["fleet"]["profiles"]):
        return None
    return "needs a profile with dm_auth md5 or sha256 (a digest scheme uses the nonce, §5.4.2)"


# -- device identities the attacker knows (public) ----------------------------------------------
def device_uri(index: int) -> str:
    """Return the DevId of fleet device ``index`` (IMSIs are sequential in a fleet: public)."""
    return f"IMSI:{FLEET_PLMN}{index:010d}"


def fake_uri(n: int) -> str:
    """Return the DevId of the ``n``-th device that does not exist (PLMN 001 99)."""
    return f"IMSI:{FAKE_PLMN}{n:010d}"


def legit_session_id(index: int) -> str:
    """Return the SessionID text of device ``index``'s client-initiated session (its index + 1)."""
    return session_id_text((index + 1) & 0xFFFF)


# -- reading the wire (plain HTTP) --------------------------------------------------------------
@dataclass(frozen=True)
class DmWire:
    """A DM message read off the ``ip`` links: the claimed device, SessionID, MsgID, the SyncHdr
    Status code and NextNonce (replies), and the HTTP message itself."""

    device: str
    session_id: str
    msg_id: str
    code: int | None
    next_nonce: bytes | None
    http: http_binding.HttpMessage


def read_wire(payload: bytes) -> DmWire | None:
    """Return the DM message an HTTP request or response carries, or None (not DM, not parsable,
    or an empty body: a clean close)."""
    try:
        http = http_binding.decode(payload)
    except DmsimError:
        return None
    return read_http(http)


def read_http(http: http_binding.HttpMessage | None) -> DmWire | None:
    """Return the DM message of a parsed HTTP request or response (see :func:`read_wire`)."""
    if http is None or not http.body:
        return None
    try:
        msg = m.decode(http.body, http.content_type)
        hdr = m.read_header(msg)
        status = m.header_status(msg)
    except DmsimError:
        return None
    device = hdr.source if http.start.startswith("POST") else hdr.target
    return DmWire(device, hdr.session_id, hdr.msg_id, status.code if status else None,
                  status.next_nonce if status else None, http)


def scheme_of(payload: bytes) -> str | None:
    """Return the auth scheme a DM request shows: its Cred's Meta/Type, or auth-hmac-sha256 for an
    x-syncml-hmac header (§5.6.1); None when neither."""
    wire = read_wire(payload)
    if wire is None:
        return None
    if HEADER_NAME.lower() in wire.http.headers:
        return AUTH_HMAC_SHA256
    try:
        cred = m.read_header(m.decode(wire.http.body, wire.http.content_type)).cred
    except DmsimError:
        return None
    return cred.scheme if cred is not None else None


def authenticated(wire: DmWire | None) -> bool:
    """Return True when a reply's SyncHdr Status says the credential was accepted (212 or 200)."""
    return wire is not None and wire.code in (m.AUTH_ACCEPTED, m.OK)


def meta_index(msg) -> int | None:
    """Return the device index of a DM link message (its meta's device; negative: an adversary's)."""
    meta = msg.meta
    dev = meta[0] if isinstance(meta, tuple) and meta else None
    ident = getattr(dev, "ident", None)
    return ident.index if ident is not None else None


# -- the attacker's own DM requests -------------------------------------------------------------
class Impostor:
    """A DM client claiming DevId ``uri`` with wrong passwords: its messages are the real client's
    (``DmClient``), their Cred a real digest (``scheme``) under a password the attacker made up."""

    def __init__(self, attack: Attack, uri: str, session_id: int, scheme: str = AUTH_MD5):
        rng, core = attack.rng, attack.replica.server.core
        account = DmAccount(server_id=core.server_id, server_uri=core.server_uri, client_name=uri.removeprefix("IMSI:"),
                            client_password=rng.randbytes(16).hex(), server_name=core.server_id,
                            server_password=rng.randbytes(16).hex(), client_nonce=rng.randbytes(16),
                            server_nonce=rng.randbytes(16), auth_scheme=scheme)
        self.attack, self.uri = attack, uri
        self.client = DmClient(account, uri, {"DevId": uri, **DEVINFO}, session_id=session_id,
                               nonce_source=rng.randbytes)
        self.endpoint = attack.adversary.endpoint(uri)

    def package1(self) -> Send:
        """Return the impostor's package 1 (Alert 1201, DevInfo, a wrong Cred)."""
        return self.client.start(self.attack.replica.transport.unix_now())

    def answer(self, reply) -> Send | None:
        """Return what the client sends after the server's ``reply`` (its retry with the
        challenge's nonce after a 401 Chal), or None when its session is over."""
        if reply is None or reply.start != "200" or not reply.body:
            return None
        step = self.client.receive(reply.body, reply.content_type, reply.headers,
                                   self.attack.replica.transport.unix_now())
        return step if isinstance(step, Send) else None

    @property
    def session_id(self) -> str:
        return self.client.session_id


def send(attack: Attack, endpoint, message: Send):
    """SimPy generator: send ``message`` from the adversary's ``endpoint`` to the DM server;
    return the HTTP reply (None: none within the clients' request_timeout)."""
    timeout = attack.replica.data["client"]["request_timeout"]
    return (yield from attack.replica.transport.exchange(endpoint, message.body, message.content_type, timeout,
                                                         message.headers))


def fresh_session_id(attack: Attack) -> int:
    """Return a SessionID for an attacker's session: 0x8000-0xFFFF, never a device's own (index + 1,
    for fleets under 32768 devices)."""
    return attack.rng.randrange(0x8000, 0x10000)


# -- what the defenders record ------------------------------------------------------------------
@dataclass
class AuditEntry:
    """One request the DM server core handled: when (simulated seconds), the device it claimed, its
    SessionID, the authentication outcome(s) of the audit (ok, bad_credential, locked, ...), the
    core's event kinds, and whether the device's stored client nonce changed while handling it."""

    t: float
    device: str
    session_id: str
    outcomes: tuple[str, ...]
    events: tuple[str, ...]
    nonce_changed: bool


class ServerAudit:
    """The simulated DM server's audit trail (``ServerReply.audit`` and ``events``, the records a
    real driver writes to its audit log, ``sim/real/audit_log.py``), as the server agent shows each
    reply to its ``audit_observers`` (``sim/agents/serving.py``). ``nonce_changed`` compares the device's stored
    client nonce after the request with the one after its previous recorded request (O(1) per
    request; the first request of a device with an account sets the reference)."""

    def __init__(self, replica):
        self.replica = replica
        self.entries: list[AuditEntry] = []
        self._nonces: dict[str, bytes] = {}  # device -> its stored client nonce after its last request
        core = replica.server.core
        replica.server.audit_observers.append(lambda reply: self._record(reply, core))

    def _record(self, reply, core) -> None:
        found = reply.audit + reply.events
        if not found:
            return
        device = next((e.device for e in found if e.device), "")
        session_id = next((e.session_id for e in found if e.session_id), "")
        account = core.accounts.get(device)
        before = self._nonces.get(device)
        changed = account is not None and before is not None and account.client_nonce != before
        if account is not None:
            self._nonces[device] = account.client_nonce
        self.entries.append(AuditEntry(self.replica.env.now, device, session_id,
                                       tuple(e.outcome for e in reply.audit),
                                       tuple(e.kind for e in reply.events), changed))

    def of(self, device: str, session_ids: set[str] | None = None,
           exclude: set[str] = frozenset()) -> list[AuditEntry]:
        """Return the entries of ``device`` (only ``session_ids``, if given; never ``exclude``)."""
        return [e for e in self.entries if e.device == device and e.session_id not in exclude
                and (session_ids is None or e.session_id in session_ids)]


@dataclass(frozen=True)
class SessionRow:
    """A device's record as ``Replica.finish`` writes it: outcome, reason, and the times."""

    ok: bool
    reason: str
    t_arrival: float
    t_session_start: float | None
    t_end: float

    @property
    def session_time(self) -> float | None:
        """Seconds of the DM session phase (None if it never started)."""
        return None if self.t_session_start is None else self.t_end - self.t_session_start


class SessionLog:
    """Each device's record (``SessionRow`` by index), fed by the attack's ``finished`` (before the
    record is written, so a verdict ``on_finish(index, row)`` decides reaches sessions.csv)."""

    def __init__(self, replica, on_finish: Callable[[int, SessionRow], None] | None = None):
        self.replica, self.on_finish = replica, on_finish
        self.rows: dict[int, SessionRow] = {}

    def record(self, dev, ok: bool, reason: str) -> None:
        """Keep ``dev``'s record (its life ended ``ok`` or with ``reason``)."""
        row = self.rows[dev.ident.index] = SessionRow(ok, reason, dev.t_arrival, dev.t_session_start,
                                                      self.replica.env.now)
        if self.on_finish is not None:
            self.on_finish(dev.ident.index, row)


# == stale-nonce and server-nonce-reuse: a captured package 1 replayed ============================
@dataclass
class Capture:
    """What the attacker saw of one device's session: its package 1 (the HTTP request), the
    NextNonces of the server's replies, when it last saw the session, and the replay's replies."""

    index: int
    uri: str
    session_id: str
    package1: http_binding.HttpMessage
    next_nonces: list[bytes] = field(default_factory=list)
    last_seen: float = 0.0
    stored_before: bytes | None = None   # the server's stored nonce when the replay began (judge's record)
    replies: list[DmWire | None] = field(default_factory=list)
    done: bool = False


class Package1Replay(Attack):
    """Capture each targeted device's package 1 on the ``ip`` uplink (plain HTTP), wait until its
    session has gone quiet for ``quiet`` seconds, then send the captured bytes ``replays`` times
    from an endpoint claiming the device. The server's stored nonce is then the NextNonce of the
    session's last reply (§5.5), so the replay's digest is over a stale nonce: the first refusal
    carries one challenge with a fresh nonce, the second ends it (§5.4.3). Against a server whose
    NextNonce repeats the nonce just used, the stored nonce is still the one package 1 used, and
    the replay authenticates as the device.

    Verdict per device: succeeded when a replay authenticated (212/200 in the SyncHdr Status;
    the attacker holds a session as the device: state corrupted), detected when every replay was
    refused and the server's audit recorded the failed credentials, blocked when refused with no
    record. The devices run one session each, so "their next session is unaffected" is read from
    the server's state: the stored nonce is still the last NextNonce the device got, and the
    replay's failures did not lock it (``state_corrupted`` otherwise). The replay's two failures
    do count towards the device's lockout record (2 of its 5), until its next success clears it.
    """

    positions = ("ip",)
    params = {"replays": 2, "quiet": 5.0}
    success_mechanism = "none: the replayed package 1's nonce was still the stored one"
    defence = ("nonce consumed on use (OMA-TS-DM_Security §5.5): the stored nonce is the session's last NextNonce, so "
               "the replay's digest (§5.4.2) is stale; §5.4.3: one challenge with a fresh nonce, the second failure "
               "ends the session (the server's audit records both)")

    @classmethod
    def check(cls, data, spec):
        return plain_http_problem(data) or digest_problem(data)

    def install(self) -> None:
        self.captures: dict[int, Capture] = {}
        self.audit = ServerAudit(self.replica)
        self.adversary.tap(self.replica.ip_up, self._uplink)
        self.adversary.tap(self.replica.ip_down, self._downlink)

    def _uplink(self, msg, now, deliveries):
        index = meta_index(msg)
        if msg.kind != "dm" or index is None or index < 0 or not self.targets(index):
            return deliveries
        wire = read_wire(msg.payload)
        if wire is not None:
            cap = self.captures.get(index)
            if cap is None and wire.msg_id == "1" and scheme_of(msg.payload) in DIGEST_AUTH.values():
                cap = self.captures[index] = Capture(index, wire.device, wire.session_id, wire.http)
            if cap is not None:
                self._seen(cap, now)
        return deliveries

    def _downlink(self, msg, now, deliveries):
        index = meta_index(msg)
        cap = self.captures.get(index) if index is not None else None
        if msg.kind == "dm" and cap is not None and not cap.done:
            wire = read_wire(msg.payload)
            if wire is not None and wire.next_nonce is not None:
                cap.next_nonces.append(wire.next_nonce)
            self._seen(cap, now)
        return deliveries

    def _seen(self, cap: Capture, now: float) -> None:
        """The device's session was seen now: replay once it has been quiet for ``quiet`` seconds."""
        cap.last_seen = now
        self.env.timeout(float(self.p["quiet"]), (cap, now)).callbacks.append(self._quiet)

    def _quiet(self, event) -> None:
        cap, seen = event.value
        if cap.done or cap.last_seen != seen:
            return
        if not self.active():
            self.env.timeout(self.at - self.env.now, (cap, seen)).callbacks.append(self._quiet)
            return
        cap.done = True
        self.env.process(self._replay(cap))

    def _replay(self, cap: Capture):
        account = self.replica.server.core.accounts.get(cap.uri)
        cap.stored_before = account.client_nonce if account is not None else None
        endpoint = self.adversary.endpoint(cap.uri)
        body = Send(cap.package1.body, cap.package1.content_type,
                    {k: v for k, v in cap.package1.headers.items() if k.startswith("x-syncml")})
        for n in range(int(self.p["replays"])):
            self.act(cap.index, f"replayed package 1 ({n + 1})")
            reply = yield from send(self, endpoint, body)
            wire = read_http(reply)
            cap.replies.append(wire)
            if authenticated(wire) or (wire is not None and wire.next_nonce is None):
                break  # in (or over: a refusal without Chal ends the session)
        self.decide(cap.index, self._device_verdict(cap))

    def _refusals_recorded(self, cap: Capture) -> int:
        """Return how many of the replay's requests the server's audit recorded as failed."""
        first = self.acted.get(cap.index)
        return 0 if first is None else sum(1 for e in self.audit.of(cap.uri, {cap.session_id})
                                           if e.t >= first and BAD_CREDENTIAL in e.outcomes)

    def _device_verdict(self, cap: Capture) -> str:
        if any(authenticated(w) for w in cap.replies):
            return SUCCEEDED
        if self._refusals_recorded(cap):
            return DETECTED
        return BLOCKED

    def judge(self):
        caps = list(self.captures.values())
        replayed = [c for c in caps if c.replies]
        core = self.replica.server.core
        entered = [c for c in replayed if any(authenticated(w) for w in c.replies)]
        moved = [c for c in replayed
                 if c.stored_before is not None and core.accounts[c.uri].client_nonce != c.stored_before]
        # the device keeps the last NextNonce it got; its next session starts with that one, and
        # is refused unchecked if the replay's failures locked the device (network/dm/lockout.py)
        now = self.replica.transport.unix_now()
        stale = [c for c in replayed if c.next_nonces and core.accounts[c.uri].client_nonce != c.next_nonces[-1]]
        locked = [c for c in replayed if core.lockout.locked_for(c.uri, now) > 0]
        evidence = {
            "captured": len(caps), "replayed": len(replayed), "authenticated": len(entered),
            "replies": _reply_shapes(replayed[0].replies) if replayed else None,
            "fresh_challenge": all(self._fresh_challenge(c) for c in replayed) if replayed else None,
            "refusals_recorded": sum(self._refusals_recorded(c) for c in replayed),
            "stored_nonce_unchanged": not moved, "locked_out": len(locked),
            "next_session_unaffected": not stale and not locked,
            "next_nonce_repeats": any(_repeats(c.next_nonces) for c in caps),
        }
        if not replayed:
            return self.outcome(INCONCLUSIVE, "no targeted device's digest package 1 was captured and replayed",
                                **evidence)
        if entered:
            return self.outcome(SUCCEEDED, self.success_mechanism, state_corrupted=True, **evidence)
        verdict = DETECTED if evidence["refusals_recorded"] else BLOCKED
        return self.outcome(verdict, self.defence, state_corrupted=bool(moved or stale or locked), **evidence)

    @staticmethod
    def _fresh_challenge(cap: Capture) -> bool:
        """Return whether the challenge the replay got carries a nonce never seen in the session."""
        chal = [w.next_nonce for w in cap.replies if w is not None and w.next_nonce is not None]
        return bool(chal) and all(n not in cap.next_nonces and n != cap.stored_before for n in chal)


def _reply_shapes(replies: list[DmWire | None]) -> str:
    """Return the replies as text: ``401+chal,401`` (code, and whether a Chal came)."""
    return ",".join("none" if w is None else f"{w.code}{'+chal' if w.next_nonce is not None else ''}"
                    for w in replies)


def _repeats(nonces: list[bytes]) -> bool:
    """Return whether a session's NextNonces repeat (the server re-issued a nonce)."""
    return len(nonces) > 1 and len(set(nonces)) < len(nonces)


@register
class StaleNonce(Package1Replay):
    """A captured package 1 replayed after its session (see :class:`Package1Replay`)."""

    kind = "stale-nonce"
    params = {"replays": 2, "quiet": 5.0}
    matrix = {"at": 0}
    success_mechanism = ("none: the replayed package 1 authenticated: the server still accepted the nonce it was "
                         "computed over (no new nonce per session, §5.4.3/§5.5)")
    entry = Entry(
        family="nonce", title="package 1 replayed over a stale nonce",
        seeds_say="§5.4.3: a failed credential gets one more challenge with a new nonce, each session a new nonce; "
                  "§5.5: the NextNonce replaces the stored nonce. A replay over a used nonce must fail twice and end.",
        knowledge="none: the package 1 as it crossed the IP path (plain HTTP)",
        position="on the IP path (an eavesdropper who can also send)",
        time="after the device's session",
        expected="detected under md5/sha256 (401 with a fresh Chal, then 401 without; the device's next session "
                 "unaffected); succeeded against a server whose NextNonce repeats")


@register
class ServerNonceReuse(Package1Replay):
    """What a server whose NextNonce repeats the nonce just used gives away: the captured package 1
    still authenticates after the session (see :class:`Package1Replay`)."""

    kind = "server-nonce-reuse"
    params = {"replays": 1, "quiet": 5.0}
    matrix = {"at": 0}
    before_knockouts = ("server-next-nonce-repeats",)
    success_mechanism = ("none: the server's NextNonce is the nonce the client just used, so the captured package "
                         "1 authenticates again (§5.4.3/§5.5 want a new nonce each session)")
    entry = Entry(
        family="nonce", title="replay against a server that re-issues nonces",
        seeds_say="§5.4.3/§5.5: the server sends a new nonce (NextNonce) for the next message and session; a server "
                  "that repeats the nonce just used lets any captured credential authenticate again.",
        knowledge="none: a package 1 and its reply as they crossed the IP path (plain HTTP)",
        position="on the IP path", time="after the device's session",
        expected="detected against dmsim's server (a fresh NextNonce every answer); succeeded when the NextNonce "
                 "repeats (knockout server-next-nonce-repeats)")


# == nonce-rotation-lockout: strangers' bad package 1s claiming a device ==========================
@register
class NonceRotationLockout(Attack):
    """Bad package 1s (a real digest under a made-up password, each a fresh SessionID) claiming
    the targeted devices' DevIds, to make their legitimate sessions fail. Two ways, both on:

    - **flood**: ``rate`` package 1s a second per targeted device, for ``seconds`` from ``at``;
    - **react** (``react``): on the path, the attacker sees each request of a targeted device go
      up, holds it back ``hold`` seconds (the ``ip`` position delays what crosses) and sends one
      bad package 1 claiming that device first.

    A server that stored a failed credential's challenge nonce as the device's nonce (dmsim before
    issue 13; knockout ``server-failure-rotates-nonce``) lets either rotate the nonce under the
    device: its Cred is then over a stale nonce, its §5.4.3 retry over a nonce rotated again, and
    its session fails. dmsim's server keeps the stored nonce (``network/dm/challenges.py``), so
    rotation is gone; but its per-device lockout (``network/dm/lockout.py``: ``threshold``
    failures lock the device, whoever failed) is a denial of service a stranger can cause too,
    which the flood does. The verdict says which.

    The impostor speaks the victim's scheme: the deployment's main one (the profile of the largest
    weight: no secret), then the one the victim's own requests show on the wire (Cred Meta/Type,
    or an x-syncml-hmac header). Rotation needs a digest scheme (md5, sha256); the lockout counts
    a wrong Cred (basic, digest) and a wrong x-syncml-hmac MAC (hmac) alike, so the flood's denial
    reaches every profile.

    Verdict: succeeded when a targeted device's session failed for its credential (its record,
    reason client_auth_failed, or http_401 for an x-syncml-hmac refusal) while the attacker was at
    work, the mechanism read from the server's audit of the device's own attempts (``locked``:
    the lockout; ``bad_credential``: the nonce rotated under it); detected when every targeted
    session succeeded and the server's audit recorded the attacker's failures; blocked when
    nothing was recorded. ``state_corrupted``: a request of the attacker changed a device's
    stored nonce.
    """

    kind = "nonce-rotation-lockout"
    positions = ("ip",)
    params = {"rate": 1.0, "seconds": 300.0, "react": True, "hold": 0.5}
    non_negative = ("rate", "seconds", "hold")
    matrix = {"at": 0}
    before_knockouts = ("server-failure-rotates-nonce",)
    entry = Entry(
        family="nonce", title="strangers' bad package 1s rotate a device's nonce or lock it out",
        seeds_say="§5.4.3 gives a failed credential one challenge with a new nonce but does not say whether it "
                  "replaces the nonce the device holds; nor does it bound failed sessions (a lockout is our choice, "
                  "network/dm/lockout.py). A server that rotates on failure, or locks per device, lets anyone "
                  "who knows a DevId deny its sessions.",
        knowledge="the victims' DevIds (sequential IMSIs: public)",
        position="anywhere that reaches the DM server (flood); on the IP path to hold a request back (react)",
        time="during the victims' sessions",
        expected="md5/sha256: succeeded with the rotation defect (knockout server-failure-rotates-nonce); against "
                 "dmsim's server detected when only reacting, succeeded through the per-device lockout when flooding "
                 "(every profile, hmac and basic included)")

    @classmethod
    def check(cls, data, spec):
        return plain_http_problem(data)

    def install(self) -> None:
        self.ours: set[str] = set()  # the attacker's SessionIDs
        self.sent = 0
        size = self.replica.data["fleet"]["size"]
        self.victims = {device_uri(i): i for i in range(size) if self.targets(i)}
        # the scheme each victim uses: the deployment's main one (no secret), then what its requests show
        main = max(self.replica.data["fleet"]["profiles"], key=lambda p: p.get("weight", 1.0))
        self.default_scheme = DM_AUTH_SCHEMES[main.get("dm_auth", "md5")]
        self.schemes: dict[int, str] = {}
        self.audit = ServerAudit(self.replica)
        self.sessions = SessionLog(self.replica, self._finished)
        if self.p["react"]:
            self.adversary.tap(self.replica.ip_up, self._react)
        if self.p["rate"] > 0 and self.p["seconds"] > 0 and self.victims:
            self.env.process(self._flood())

    def finished(self, dev, ok: bool, reason: str) -> None:
        self.sessions.record(dev, ok, reason)

    def _working(self) -> bool:
        return self.at <= self.env.now < self.at + float(self.p["seconds"])

    def _react(self, msg, now, deliveries):
        index = meta_index(msg)
        if msg.kind != "dm" or index is None or index < 0 or not self._working() \
                or device_uri(index) not in self.victims:
            return deliveries
        self.schemes[index] = scheme_of(msg.payload) or self.schemes.get(index, self.default_scheme)
        self.env.process(self._strike(index, "reacted to a request"))
        hold = float(self.p["hold"])
        return [(delay + hold, payload) for delay, payload in deliveries]

    def _flood(self):
        if self.at > self.env.now:
            yield self.env.timeout(self.at - self.env.now)
        gap = 1.0 / float(self.p["rate"])
        while self._working():
            for index in self.victims.values():
                self.env.process(self._strike(index, "flood"))
            yield self.env.timeout(gap)

    def _strike(self, index: int, what: str):
        """SimPy process: one bad package 1 claiming device ``index`` (its reply is not answered)."""
        impostor = Impostor(self, device_uri(index), fresh_session_id(self),
                            self.schemes.get(index, self.default_scheme))
        self.ours.add(impostor.session_id)
        self.sent += 1
        self.act(index, what)
        yield from send(self, impostor.endpoint, impostor.package1())

    def _finished(self, index: int, row: SessionRow) -> None:
        """A device's record is written: its verdict, if the attacker went after it."""
        if index in self.acted:
            self.decide(index, SUCCEEDED if not row.ok and row.reason in AUTH_FAILURES else DETECTED)

    def _failed(self) -> dict[int, str]:
        """Return targeted devices whose session failed for its credential while the attacker
        worked: index -> the outcome of their own attempts that says why (locked, bad_credential)."""
        out = {}
        for uri, index in self.victims.items():
            row = self.sessions.rows.get(index)
            if row is None or row.ok or row.reason not in AUTH_FAILURES or index not in self.acted:
                continue
            own = [o for e in self.audit.of(uri, exclude=self.ours) for o in e.outcomes]
            out[index] = LOCKED if LOCKED in own else BAD_CREDENTIAL if BAD_CREDENTIAL in own else row.reason
        return out

    def judge(self):
        failed = self._failed()
        ours = [e for e in self.audit.entries if e.session_id in self.ours and e.device in self.victims]
        rotations = sum(1 for e in ours if e.nonce_changed)
        recorded = sum(1 for e in ours if e.outcomes and OK_OUTCOME not in e.outcomes)
        sessions = [self.sessions.rows[i] for i in self.victims.values() if i in self.sessions.rows and i in self.acted]
        evidence = {"sent": self.sent, "refusals_recorded": recorded, "nonce_rotations": rotations,
                    "victim_sessions": len(sessions), "victim_ok": sum(1 for r in sessions if r.ok),
                    "failed_locked": sum(1 for why in failed.values() if why == LOCKED),
                    "failed_stale_nonce": sum(1 for why in failed.values() if why == BAD_CREDENTIAL)}
        if not self.acted:
            return self.outcome(INCONCLUSIVE, "no targeted device was in reach while the attack worked", **evidence)
        if failed:
            self.decided = min(self.sessions.rows[i].t_end for i in failed)  # the first victim's session failed
            return self.outcome(SUCCEEDED, self._mechanism(evidence), state_corrupted=rotations > 0, **evidence)
        if recorded:
            return self.outcome(DETECTED, "the stored nonce is not changed by a failed credential (network/dm/"
                                "challenges.py; challenge nonces bound to their session, §5.4.3) and the "
                                "device's successes reset its lockout record; the server's audit records each "
                                "failure", state_corrupted=rotations > 0, **evidence)
        return self.outcome(BLOCKED, "no failure reached the server's record", state_corrupted=rotations > 0,
                            **evidence)

    @staticmethod
    def _mechanism(evidence: dict) -> str:
        why = []
        if evidence["failed_stale_nonce"]:
            why.append("the nonce rotated: a stranger's failed credential replaced the device's stored nonce, so "
                       "its Cred and its §5.4.3 retry were over stale nonces (the defect issue 13 fixed)")
        if evidence["failed_locked"]:
            why.append("the per-device lockout (network/dm/lockout.py): the stranger's failures locked the "
                       "device, and the device's own attempts were refused unchecked")
        return "; ".join(why) or "the devices' sessions failed their credential while the attacker worked"


# == nonce-predictability: the server's nonces as a sequence ======================================
MT_WORDS = 624      # Mersenne Twister MT19937: its state is 624 32-bit words
NONCE_BYTES = 16    # every nonce of the server is nonce_source(16) (network/dm/server.py)
NONCE_WORDS = NONCE_BYTES // 4
WINDOW = MT_WORDS // NONCE_WORDS  # 156 consecutive nonces give the whole state


def untemper(y: int) -> int:
    """Return the MT19937 state word whose tempered output is ``y`` (the tempering is a bijection:
    y ^= y >> 11; y ^= (y << 7) & 0x9D2C5680; y ^= (y << 15) & 0xEFC60000; y ^= y >> 18)."""
    y ^= y >> 18
    y ^= (y << 15) & 0xEFC60000
    x = y
    for _ in range(5):
        x = y ^ ((x << 7) & 0x9D2C5680)
    y = x & 0xFFFFFFFF
    x = y
    for _ in range(3):
        x = y ^ (x >> 11)
    return x & 0xFFFFFFFF


def nonce_words(nonce: bytes) -> list[int]:
    """Return the four MT outputs of a ``randbytes(16)`` nonce: CPython's randbytes(n) is
    getrandbits(8n) little-endian, filled from the least significant 32-bit word up."""
    return [int.from_bytes(nonce[i:i + 4], "little") for i in range(0, NONCE_BYTES, 4)]


def clone_generator(window: list[bytes]):
    """Return a ``random.Random`` in the state that follows the ``WINDOW`` consecutive nonces of
    ``window`` (any 624 consecutive outputs determine the rest: the twist recurrence
    x[n+624] = f(x[n], x[n+1], x[n+397]) holds whatever the alignment)."""
    import random
    state = [untemper(w) for nonce in window for w in nonce_words(nonce)]
    generator = random.Random()
    generator.setstate((3, tuple(state) + (MT_WORDS,), None))
    return generator


def follow(generator, nonce: bytes, lookahead: int) -> int | None:
    """Advance ``generator`` to just past ``nonce``; return how many nonces were drawn before it
    (draws the observer did not see), or None when it is not among the next ``lookahead``."""
    for skipped in range(lookahead):
        if generator.randbytes(NONCE_BYTES) == nonce:
            return skipped
    return None


def recover(seen: list[bytes], lookahead: int, confirm: int = 3):
    """Return (generator positioned after the last of the nonces ``seen``, how many draws the
    observer missed after the window it used), or None. ``seen`` is in the order the server drew
    them, with missed draws in between allowed.

    Windows of ``WINDOW`` nonces are tried from the most recent back; a window is taken when the
    generator cloned from it finds each later nonce within ``lookahead`` draws (at least
    ``confirm`` of them): a window with a missed draw inside gives a wrong state, which fails."""
    for start in range(len(seen) - WINDOW - confirm, -1, -1):
        generator, missed = clone_generator(seen[start:start + WINDOW]), 0
        for nonce in seen[start + WINDOW:]:
            skipped = follow(generator, nonce, lookahead)
            if skipped is None:
                break
            missed += skipped
        else:
            return generator, missed
    return None


def bit_statistics(nonces: list[bytes]) -> tuple[float, float]:
    """Return (share of one bits over all nonces, the largest deviation from 1/2 of any one bit
    position): the monobit test and the per-bit bias."""
    if not nonces:
        return 0.0, 0.0
    bits = NONCE_BYTES * 8
    ones = [0] * bits
    for nonce in nonces:
        value = int.from_bytes(nonce, "little")
        for b in range(bits):
            ones[b] += (value >> b) & 1
    n = len(nonces)
    return sum(ones) / (n * bits), max(abs(c / n - 0.5) for c in ones)


@register
class NoncePredictability(Attack):
    """Collect the server's nonces, test them, and try to compute the next one.

    The attacker reads every NextNonce that crosses the ``ip`` downlink (plain HTTP: the Chal of
    each reply, devices' and its own) in the order the server drew them, and adds its own probes
    (``rate`` a second): a package 1 from an invented DevId, which §5.4.3 answers with a challenge
    nonce, then the client's retry, refused without Chal, which ends that session (and frees its
    server slot) at no further nonce. Once ``samples`` nonces are in: duplicates, the monobit share
    of ones, the largest per-bit bias, and the state recovery of :func:`recover` (CPU time
    measured with ``time.perf_counter``: evidence only). With a state, the attacker predicts the
    next ``lookahead`` nonces, sends one more probe and compares its challenge with them.

    Verdict: succeeded when that challenge nonce was predicted exactly (or nonces repeat);
    detected otherwise (the probes are refusals in the server's audit); inconclusive when fewer
    than ``samples`` nonces came before the horizon. The simulated server's nonce source is the
    replica's seeded ``random.Random`` (``sim/agents/dm_server.py``, for reproducibility); every
    draw of that stream is a 16-octet nonce: provisioning (two per device, carried by the
    bootstrap over SMS, unseen on ``ip``), challenges and NextNonces; the unseen ones are the
    missed draws :func:`recover` and the prediction search around.
    """

    kind = "nonce-predictability"
    positions = ("ip",)
    params = {"samples": 700, "rate": 20.0, "lookahead": 64}
    matrix = {"at": 0}
    success_mechanism = ("none: the simulated server's nonces come from the scenario's seeded Mersenne Twister "
                         "(reproducibility), predictable after 624 words; the real server uses os.urandom")
    entry = Entry(
        family="nonce", title="server nonces collected, tested and predicted",
        seeds_say="§5.4.3/§5.5 want a new nonce per session but say nothing of how it is made; a nonce an attacker "
                  "can predict lets a captured or precomputed credential be replayed against it.",
        knowledge="none: the nonces cross the IP path in clear (plain HTTP) and any stranger is challenged",
        position="on the IP path, able to send", time="about samples / rate seconds",
        expected="succeeded against the simulated server (seeded MT19937); a real server's os.urandom nonces are not "
                 "predictable")

    @classmethod
    def check(cls, data, spec):
        problem = plain_http_problem(data)
        params = {**cls.params, **(spec.get("params") or {})}
        if not problem and (params["samples"] < WINDOW + 4 or params["rate"] <= 0 or params["lookahead"] < 1):
            problem = f"samples must be at least {WINDOW + 4} (624 words and a check), rate and lookahead positive"
        return problem

    def install(self) -> None:
        self.seen: list[bytes] = []
        self.probes = 0
        self.ours: set[str] = set()
        self.result: dict = {}
        self.audit = ServerAudit(self.replica)
        self.adversary.tap(self.replica.ip_down, self._downlink)
        self.env.process(self._collect())

    def _downlink(self, msg, now, deliveries):
        if msg.kind == "dm":
            wire = read_wire(msg.payload)
            if wire is not None and wire.next_nonce is not None:
                self.seen.append(wire.next_nonce)
        return deliveries

    def _collect(self):
        if self.at > self.env.now:
            yield self.env.timeout(self.at - self.env.now)
        gap = 1.0 / float(self.p["rate"])
        while len(self.seen) < int(self.p["samples"]):
            self.env.process(self._probe())
            yield self.env.timeout(gap)
        yield from self._predict()

    def _probe(self):
        """SimPy process: one probe; return the challenge nonce it got (None: none)."""
        # invented DevIds from 1073741824 on, apart from the storm's (flooding_ip.py counts from 0)
        impostor = Impostor(self, fake_uri(0x40000000 + self.probes), fresh_session_id(self))
        self.probes += 1
        self.ours.add(impostor.session_id)
        self.act(-1, "probe")
        reply = yield from send(self, impostor.endpoint, impostor.package1())
        wire = read_http(reply)
        retry = impostor.answer(reply)
        if retry is not None:
            yield from send(self, impostor.endpoint, retry)
        return wire.next_nonce if wire is not None else None

    def _predict(self):
        seen = list(self.seen)
        started = time.perf_counter()
        found = recover(seen, int(self.p["lookahead"]))
        self.result = {"recovery_cpu_s": round(time.perf_counter() - started, 4), "state_recovered": found is not None}
        if found is None:
            return
        generator, self.result["missed_draws"] = found
        predicted = [generator.randbytes(NONCE_BYTES) for _ in range(int(self.p["lookahead"]))]
        actual = yield from self._probe()
        self.result["predicted"] = actual is not None and actual in predicted
        self.result["draws_ahead"] = predicted.index(actual) if self.result["predicted"] else None
        self.decide()

    def judge(self):
        samples = list(self.seen)
        ones, bias = bit_statistics(samples)
        duplicates = len(samples) - len(set(samples))
        refused = sum(1 for e in self.audit.entries if e.session_id in self.ours)
        evidence = {"samples": len(samples), "probes": self.probes, "duplicates": duplicates,
                    "monobit_ones": round(ones, 5), "max_bit_bias": round(bias, 5),
                    "state_recovered": self.result.get("state_recovered"),
                    "missed_draws": self.result.get("missed_draws"),
                    "predicted": self.result.get("predicted", False), "draws_ahead": self.result.get("draws_ahead"),
                    "recovery_cpu_s": self.result.get("recovery_cpu_s")}
        if not self.acted or len(samples) < int(self.p["samples"]):
            return self.outcome(INCONCLUSIVE, f"{len(samples)} nonces seen, {self.p['samples']} wanted", **evidence)
        if evidence["predicted"]:
            return self.outcome(SUCCEEDED, self.success_mechanism, **evidence)
        if duplicates:
            return self.outcome(SUCCEEDED, "none: the server's nonces repeat", **evidence)
        verdict = DETECTED if refused else BLOCKED
        return self.outcome(verdict, "the next nonce was not predicted from those seen (the server's audit records "
                            "the probes as failed attempts of unknown devices)", **evidence)
