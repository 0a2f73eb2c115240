"""Man in the middle: an attacker on a path who changes, drops or answers what crosses it.

Positions: ``sms_air`` (a false base station), ``ip`` (DNS spoofing, a rogue access point, a
router on the path: it sees and rewrites the HTTP or TLS bytes of ``ip_up``/``ip_down``), ``card``
(an interposer between the ME and its UICC). What each attack tests, with the clause:

- ``tamper-bootstrap``: bits flipped in the WAP Push bootstrap; the bootstrap HMAC
  (OMA-TS-DM_Security §5.10.2.3) must make the device reject it;
- ``fake-dm-server``: the attacker answers the device's DM requests itself; the client must
  authenticate the server (§5.4, DM-SEC-C-002-M) and refuse it;
- ``tls-intercept``: the attacker terminates the device's TLS with its own certificate or a
  guessed PSK; the client's certificate check or the PSK (seed 000 §9.2.2) must fail it; with
  no TLS the attacker reads the plaintext;
- ``downgrade-tls``: the ClientHello rewritten to SSL 3.0, TLS 1.0 or weak suites; the server
  must refuse (seed 000 §9.2.2: TLS 1.1 and 1.2 only, the seed's suite lists);
- ``downgrade-auth``: the server's Chal rewritten to ``syncml:auth-basic`` so the client would
  send B64(name:password) (§5.4); the client must keep its own AAuthType;
- ``strip-hmac``: the ``x-syncml-hmac`` header removed (§5.6.1); the receiver must refuse;
- ``scp03-mitm``: a bit flipped in a secured C-APDU after EXTERNAL AUTHENTICATE; the card's
  C-MAC check (seed 001 §8.1, GlobalPlatform Amendment D §6.2.4) must refuse it.

Every attack rewrites the real encodings (TPDUs, HTTP, SyncML WBXML, TLS records, APDUs). Per
device the verdict is read when its life ends (the reason of its session record, in
``Attack.finished``) or as soon as its state shows it (a rejected bootstrap, a password read).

Choices where the specs are silent, shared by the attacks: an attacker on ``ip`` sees both
directions of every device's traffic; the devices it does not target pass untouched; a device
whose session never reached the point the attack acts on counts as not acted on.
"""
from __future__ import annotations

import base64
import copy
import dataclasses
from collections import Counter
from collections.abc import Mapping
from typing import Callable, Iterator

from dmsim.base.errors import DmsimError
from dmsim.devices.smartcard_bootstrap import Reason as CardReason
from dmsim.network.dm import http_binding
from dmsim.network.dm import messages as m
from dmsim.network.dm.auth import AUTH_BASIC, AUTH_MD5
from dmsim.network.dm.hmac_integrity import HEADER_NAME
from dmsim.network.dm.server import DmServer, http_status
from dmsim.network.dm.tls import TlsEndpoint, psk_server_config, x509_server_config
from dmsim.network.dm.tls_pki import LabCa
from dmsim.network.dm.tree import E
from dmsim.network.sms import tpdu
from dmsim.sim.agents.adversary.catalogue import Attack, Entry, register
from dmsim.sim.agents.adversary.outcome import BLOCKED, DETECTED, INCONCLUSIVE, SUCCEEDED
from dmsim.sim.agents.adversary.sms_forge import device_of, is_push_to
from dmsim.sim.links.link import Message

# the headers http_binding writes itself (everything else is an extra header to carry over)
_OWN_HEADERS = frozenset({"host", "content-type", "content-length", "cache-control", "accept", "accept-charset",
                          "user-agent"})
_WEAK_SUITES = (0x0005, 0x0002)  # TLS_RSA_WITH_RC4_128_SHA, TLS_RSA_WITH_NULL_SHA: in no seed list
_VERSIONS = {"ssl3": 0x0300, "tls1.0": 0x0301, "tls1.1": 0x0302}
_SM_BIT = 0x04  # ISO 7816-4 §5.4.1: CLA b3 set, secure messaging (GlobalPlatform: C-MAC present)
_EXTERNAL_AUTHENTICATE = 0x82
WATCH_EVERY = 0.5  # simulated seconds between two looks of tamper-bootstrap at a device's state


# --- shared helpers -------------------------------------------------------------------------------

def profile_of(data: dict, key: str, value: str) -> bool:
    """Return whether some profile of the scenario ``data`` has ``key`` equal to ``value``."""
    return any(p.get(key) == value for p in data["fleet"]["profiles"])


def tls_mode(data: dict) -> str:
    """Return ``components.dm_server.tls.mode`` of the scenario (none when absent)."""
    return ((data["components"]["dm_server"].get("tls") or {}).get("mode")) or "none"


def virtual_server(data: dict) -> str | None:
    """Return why an ``ip`` attack cannot sit in front of the scenario's DM server, or None: it
    needs the simulated one (a real server's bytes never cross the simulated links)."""
    if data["components"]["dm_server"]["kind"] != "virtual":
        return "needs components.dm_server kind virtual (the simulated links carry the DM traffic)"
    return None


def read_dm(payload: bytes) -> tuple[http_binding.HttpMessage, object] | None:
    """Return (HTTP message, SyncML element) of an HTTP request or response carrying a DM
    message, or None when the bytes are not one (a TLS record, an empty close)."""
    try:
        http = http_binding.decode(payload)
        return http, m.decode(http.body, http.content_type)
    except DmsimError:
        return None


def dm_header(payload: bytes) -> m.Header | None:
    """Return the SyncHdr fields of the DM message in an HTTP request or response, or None."""
    parsed = read_dm(payload)
    try:
        return m.read_header(parsed[1]) if parsed is not None else None
    except DmsimError:
        return None


def header_status(msg):
    """Return the Status element for the SyncHdr in the SyncML message ``msg`` (or None)."""
    return next((st for st in msg.iterfind("SyncBody/Status") if st.findtext("Cmd") == "SyncHdr"), None)


def write_dm(http: http_binding.HttpMessage, msg=None, *, drop: frozenset[str] = frozenset()) -> bytes:
    """Return ``http`` encoded again, with the SyncML element ``msg`` as its body (None: the body
    as it was) and without the extra headers named in ``drop`` (lower case)."""
    body = http.body if msg is None else m.encode(msg, http.content_type)
    extra = {k: v for k, v in http.headers.items() if k not in _OWN_HEADERS and k not in drop}
    if http.start.isdigit():
        return http_binding.encode_response(int(http.start), body, http.content_type, extra)
    path = http.start.partition(" ")[2]
    return http_binding.encode_request(http.headers.get("host", ""), path, body, http.content_type,
                                       user_agent=http.headers.get("user-agent", "dmsim"), headers=extra)


def dev_of(msg: Message):
    """Return the device (or adversary endpoint) an ``ip`` link message belongs to (meta[0])."""
    meta = msg.meta
    return meta[0] if isinstance(meta, tuple) and meta else None


def basic_secret(data: str) -> str | None:
    """Return ``name:password`` of a ``syncml:auth-basic`` Cred Data (B64, §5.4), or None."""
    try:
        return base64.b64decode(data, validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None


def password_in(ident, cred) -> bool | None:
    """Return, for a SyncHdr Cred of device ``ident``, None when it is not ``syncml:auth-basic``,
    else whether the B64(name:password) it carries (§5.4) is the device's own password."""
    if cred is None or cred.scheme != AUTH_BASIC:
        return None
    return basic_secret(cred.data) == f"{ident.imsi}:{ident.client_password}"


def flip_bit(data: bytes, offset: int, bit: int) -> bytes:
    """Return ``data`` with bit ``bit`` (0-7) of octet ``offset`` inverted."""
    out = bytearray(data)
    out[offset] ^= 1 << bit
    return bytes(out)


class MitmAttack(Attack):
    """What every attack of this family shares: the per-device verdicts (``outcomes``, set with
    ``decide``) made into the verdict over the run, the worst for the defender first."""

    def tally(self) -> dict[str, int]:
        """Return the per-device verdicts counted by verdict."""
        return dict(Counter(self.outcomes.values()))

    def overall(self, success: str, detected: str, blocked: str, *, none: str, corrupted: bool = False,
                **evidence):
        """Return the Outcome over the run: succeeded if a device's verdict is, else detected,
        else blocked, each with its mechanism; inconclusive (``none``) when the attack never
        acted. ``corrupted``: some device's state was changed, even if the attack failed."""
        tally = self.tally()
        evidence = {"devices": len(self.acted), "verdicts": tally, **evidence}
        if not self.acted:
            return self.outcome(INCONCLUSIVE, none, **evidence)
        verdict = next((v for v in (SUCCEEDED, DETECTED) if tally.get(v)), BLOCKED)
        mechanism = {SUCCEEDED: success, DETECTED: detected, BLOCKED: blocked}[verdict]
        return self.outcome(verdict, mechanism, state_corrupted=corrupted, **evidence)


class IpMitm(MitmAttack):
    """What the ``ip`` attacks share: the targeted device of a message, the verdict of each
    targeted device from the reason its life ended (:meth:`verdict_of`), and the counts."""

    positions = ("ip",)
    detected_reasons: tuple[str, ...] = ()  # session-record reasons (before the colon) meaning detected

    def install(self) -> None:
        self.ended: dict[int, str] = {}  # targeted device acted on -> the reason its life ended
        self.devs: dict[int, object] = {}  # targeted device acted on -> its state, kept after its end
        up, down = self.adversary.ip_links()
        self.adversary.tap(up, self._hooked(self.on_up))
        self.adversary.tap(down, self._hooked(self.on_down))

    def _hooked(self, hook):
        def run(msg, now, deliveries):
            dev = dev_of(msg)
            if dev is None or not self.active() or dev.ident.index < 0 or not self.targets(dev.ident.index):
                return deliveries
            return hook(dev, msg, deliveries)
        return run

    def on_up(self, dev, msg: Message, deliveries: list) -> list:
        """A targeted device's message to the server; return what is delivered instead."""
        return deliveries

    def on_down(self, dev, msg: Message, deliveries: list) -> list:
        """The server's message to a targeted device; return what is delivered instead."""
        return deliveries

    def finished(self, dev, ok: bool, reason: str) -> None:
        index = dev.ident.index
        if index in self.acted:
            self.devs[index] = dev
            self.ended[index] = reason or "ok"
            self.decide(index, self.verdict_of(dev, ok, reason.split(":")[0]))

    def verdict_of(self, dev, ok: bool, reason: str) -> str:
        """Return the verdict for targeted device ``dev`` whose life ended ``ok`` with ``reason``."""
        return DETECTED if reason in self.detected_reasons else BLOCKED

    def reasons(self) -> dict[str, int]:
        """Return how many acted-on devices ended with each reason."""
        return dict(Counter(self.ended.values()))

    def overall(self, success: str, detected: str, blocked: str, *, none: str = "no targeted device's traffic "
                "crossed the path", corrupted: bool = False, **evidence):
        """:meth:`MitmAttack.overall` with the reasons the acted-on devices' lives ended."""
        return super().overall(success, detected, blocked, none=none, corrupted=corrupted, reasons=self.reasons(),
                               **evidence)


# --- tamper-bootstrap -----------------------------------------------------------------------------

@register
class TamperBootstrap(MitmAttack):
    """Flip one bit in every SMS of a targeted device's bootstrap push on the air.

    The attacker on the radio leg (a relay between the network and the device) changes each
    SMS-DELIVER it forwards: one bit of its TP-UD (after the UDH: the WSP push and its WBXML), at
    an offset drawn from the attack's stream, inverted; the TPDU is otherwise the server's, so the
    device (or, with an SMSC, its RP-ACK to the SMSC) sees a normal delivery. The device
    reassembles the push and checks its HMAC (OMA-TS-DM_Security §5.10.2.3): a mismatch (or a
    push that no longer decodes) is a rejected bootstrap (``bootstrap_rejected`` grows): detected.
    A device that takes the bootstrap anyway holds altered settings (succeeded) or, when its
    account is the server's, the flip hit nothing the device uses (blocked). The server resends
    unanswered bootstraps; they are tampered too.

    Choice: the attacker looks at the device's state every :data:`WATCH_EVERY` simulated seconds
    after its first tampered SMS (the decision time, ``time_to_outcome``, is that precise; nothing
    else depends on it), and at its end.
    """

    kind = "tamper-bootstrap"
    positions = ("sms_air",)
    params = {}
    entry = Entry(
        family="mitm", title="bootstrap SMS bit-flipped on the air",
        seeds_say="§5.10.2.3: the bootstrap carries an HMAC over the WBXML body (keyed by NETWORKID, USERPIN or "
                  "both); a device MUST reject a bootstrap whose MAC does not verify.",
        knowledge="none (the air interface is not integrity protected for SMS)",
        position="a false base station on the SMS air interface", time="each bootstrap push",
        expected="detected for every bootstrap security")

    @classmethod
    def check(cls, data, spec):
        if not profile_of(data, "bootstrap_via", "sms"):
            return "needs a profile with bootstrap_via sms (a bootstrap that crosses the air)"
        return None

    def install(self) -> None:
        self.tampered = 0
        self.devs: dict[int, tuple[object, int]] = {}  # device -> (its state, bootstrap_rejected before)
        for link in self.adversary.sms_links():
            self.adversary.tap(link, self._on_air)

    def _on_air(self, msg, now, deliveries):
        index = device_of(msg)
        if index is None or not self.active() or not is_push_to(msg, index) or not self.targets(index):
            return deliveries
        dev = self.replica.live.get(index)
        if dev is None or dev.accepted:
            return deliveries
        try:
            sms = tpdu.decode_tpdu(msg.payload, mt=True)
        except DmsimError:
            return deliveries
        if not sms.user_data:
            return deliveries
        offset = self.rng.randrange(len(sms.user_data))
        pdu = dataclasses.replace(sms, user_data=flip_bit(sms.user_data, offset, self.rng.randrange(8))).encode()
        self.tampered += 1
        self.act(index, f"flipped a bit of TP-UD octet {offset}")
        if index not in self.devs:
            self.devs[index] = (dev, dev.rejected)
            self.env.process(self._watch(index))
        return [(extra, pdu) for extra, _ in deliveries]

    def _watch(self, index: int):
        """SimPy process: judge device ``index`` once its state tells (see the class doc)."""
        while index not in self.outcomes and index in self.replica.live:
            yield self.env.timeout(WATCH_EVERY)
            self._judge_device(index)

    def finished(self, dev, ok: bool, reason: str) -> None:
        self._judge_device(dev.ident.index, final=True)

    def _judge_device(self, index: int, final: bool = False) -> None:
        """Decide device ``index``'s verdict when its state tells: a rejection (detected), an
        accepted bootstrap (succeeded or blocked), or at its end (``final``) neither (blocked)."""
        if index not in self.devs or index in self.outcomes:
            return
        dev, before = self.devs[index]
        if dev.rejected > before:
            self.decide(index, DETECTED)
        elif dev.accepted:
            genuine = self.replica.server.core.accounts.get(dev.ident.uri)
            self.decide(index, BLOCKED if dev.account == genuine else SUCCEEDED)
        elif final:
            self.decide(index, BLOCKED)

    def judge(self):
        return self.overall(
            "none: a device installed a tampered bootstrap",
            "bootstrap HMAC (OMA-TS-DM_Security §5.10.2.3): the device rejected the altered push",
            "the altered push was not completed at the device",
            none="no targeted device's bootstrap crossed the air", corrupted=bool(self.tally().get(SUCCEEDED)),
            tampered_sms=self.tampered, bootstrap_rejected=sum(d.rejected - b for d, b in self.devs.values()))


# --- strip-hmac -----------------------------------------------------------------------------------

@register
class StripHmac(IpMitm):
    """Remove the ``x-syncml-hmac`` header (OMA-TS-DM_Security §5.6.1) from a targeted device's
    requests (``direction: up``), from the server's responses (``down``) or both, in plain HTTP.

    Without the header the server cannot check the request: it refuses it with a clean close
    (HTTP 401, counted in the transport's ``refused`` by verdict) and the client's session ends
    ``http_401``; a response without it fails the client's check (``server_hmac_failed``). Both
    are detected. A device whose session ends well anyway would mean the check was skipped:
    succeeded.
    """

    kind = "strip-hmac"
    params = {"direction": "up"}
    choices = {"direction": ("up", "down", "both")}
    detected_reasons = ("http_401", "server_hmac_failed")
    entry = Entry(
        family="mitm", title="x-syncml-hmac header stripped on the wire",
        seeds_say="§5.6.1: with syncml:auth-hmac-sha256 every message carries x-syncml-hmac and the receiver "
                  "MUST verify it; a message without it is not authenticated and is refused.",
        knowledge="none", position="the IP path of plain-HTTP DM sessions", time="any message of a session",
        expected="detected (the server's integrity refusal, or the client's server_hmac_failed)")

    @classmethod
    def check(cls, data, spec):
        if not profile_of(data, "dm_auth", "hmac"):
            return "needs a profile with dm_auth hmac (x-syncml-hmac on every message)"
        if tls_mode(data) != "none":
            return "needs tls.mode none: inside TLS the header is encrypted"
        return virtual_server(data)

    def install(self) -> None:
        super().install()
        self.refused_before = dict(self.replica.transport.refused)
        self.stripped = {"up": 0, "down": 0}

    def on_up(self, dev, msg, deliveries):
        return self._strip(dev, msg, deliveries, "up")

    def on_down(self, dev, msg, deliveries):
        return self._strip(dev, msg, deliveries, "down")

    def _strip(self, dev, msg, deliveries, way: str):
        if self.p["direction"] not in (way, "both"):
            return deliveries
        parsed = read_dm(msg.payload)
        if parsed is None or HEADER_NAME not in parsed[0].headers:
            return deliveries
        self.stripped[way] += 1
        self.act(dev.ident.index, f"stripped x-syncml-hmac ({way})")
        payload = write_dm(parsed[0], drop=frozenset({HEADER_NAME}))
        return [(extra, payload) for extra, _ in deliveries]

    def verdict_of(self, dev, ok, reason):
        if ok:
            return SUCCEEDED
        return super().verdict_of(dev, ok, reason)

    def judge(self):
        refused = self.replica.transport.refused
        before = self.refused_before
        grown = {k: v - before.get(k, 0) for k, v in refused.items() if v > before.get(k, 0)}
        return self.overall(
            "none: a message without x-syncml-hmac was accepted (OMA-TS-DM_Security §5.6.1 not enforced)",
            "x-syncml-hmac verification (OMA-TS-DM_Security §5.6.1): the message without it was refused",
            "the stripped message was never judged", stripped=self.stripped, server_refused=grown)


# --- fake-dm-server -------------------------------------------------------------------------------

class ImpostorCore(DmServer):
    """The attacker's own DM server core: the real one (``network/dm/server.py``) except that it
    lets every client in, since it cannot check a password it does not know; what it sends of
    itself (its Cred under the server password it guessed) is what the client must refuse."""

    def _authenticates(self, account, hdr, now) -> bool:
        return account is not None


@register
class FakeDmServer(IpMitm):
    """Answer a targeted device's DM requests from the attacker's own server (DNS spoofing, a
    rogue access point): its requests never reach the real server.

    The attacker's core (:class:`ImpostorCore`) claims the real ServerID and holds an account for
    the device's DevId with the IMSI as client name and passwords of its own (it does not know
    the real ones). The client checks the server's Cred on every message (OMA-TS-DM_Security
    §5.4, DM-SEC-C-002-M), challenges it once with a new nonce (§5.4.3) and ends the session
    ``server_auth_failed`` (``server_hmac_failed`` with auth-hmac-sha256, whose header the
    impostor cannot compute): detected.

    ``learn: true``: the attacker first lets the device talk to the real server and watches
    ``ip_down`` for the server's Cred; once it has one it takes the session over and sends that
    Cred, verbatim, in its own messages. auth-basic's Cred is static (B64(name:password)), so the
    client accepts the impostor and runs its commands: succeeded, judged from the impostor's
    ``session_completed``. A digest Cred is valid only for the server nonce the client last
    issued, and the client issues a new one with every server message it accepts (§5.5,
    ``DmClient._next_server_nonce``): detected. Before issue 16 the client kept that nonce until
    it challenged, and the learned md5 Cred took the session over (the knockout
    ``client-keeps-server-nonce``, the matrix's "without" row). Choice: the takeover starts with
    the first request after the Cred was seen (package 3 of the same session).
    """

    kind = "fake-dm-server"
    params = {"learn": False}
    matrix = {"params": {"learn": True}}
    before_knockouts = ("client-keeps-server-nonce",)
    entry = Entry(
        family="mitm", title="rogue DM server answering the device (DNS spoofing / rogue AP)",
        seeds_say="§5.4: the client MUST authenticate the server (DM-SEC-C-002-M); a server whose Cred fails "
                  "twice ends the session (§5.4.3). Over plain HTTP nothing binds the Cred to the body (§5.3).",
        knowledge="the device's DevId and IMSI (its client name); with learn, one server Cred seen on the wire",
        position="the IP path of plain-HTTP DM sessions", time="one DM session",
        expected="detected; with learn: succeeded against auth-basic over plain HTTP (a static Cred), detected "
                 "with auth-md5 (the client renews the server's nonce) and auth-hmac-sha256")

    @classmethod
    def check(cls, data, spec):
        if not isinstance((spec.get("params") or {}).get("learn", False), bool):
            return "learn is true or false"
        if tls_mode(data) != "none":
            return "needs tls.mode none: inside TLS the attacker cannot answer without keys (see tls-intercept)"
        return virtual_server(data)

    def install(self) -> None:
        super().install()
        real = self.replica.server.core
        self.core = ImpostorCore(real.server_id, real.server_uri, self.rng.randbytes)
        self.learned: dict[int, object] = {}  # device -> the server Cred element seen on ip_down
        self.read: Counter[str] = Counter()  # what the learned Creds gave away, by kind
        self.challenged: set[int] = set()  # the client refused the impostor's Cred (server_auth_rejected)
        self.completed: set[int] = set()  # the impostor's session ran to its end (session_completed)

    def on_down(self, dev, msg, deliveries):
        index = dev.ident.index
        if not self.p["learn"] or index in self.learned or index in self.acted:
            return deliveries
        parsed = read_dm(msg.payload)
        if parsed is None:
            return deliveries
        cred = parsed[1].find("SyncHdr/Cred")
        self.learned[index] = copy.deepcopy(cred)  # None (auth-hmac-sha256): nothing to replay
        if cred is not None:
            scheme = cred.findtext("Meta/Type") or ""
            what = "server_password" if scheme == AUTH_BASIC and basic_secret(cred.findtext("Data") or "") else scheme
            self.read[what] += 1
        return deliveries

    def on_up(self, dev, msg, deliveries):
        if self.p["learn"] and dev.ident.index not in self.learned:
            return deliveries  # still watching the genuine exchange
        parsed = read_dm(msg.payload)
        if parsed is None:
            return deliveries
        self._answer(dev, msg, parsed[0])
        return []

    def _answer(self, dev, msg, http) -> None:
        """Answer the request ``http`` from the impostor and send its response down to ``dev``."""
        ident, index = dev.ident, dev.ident.index
        if ident.uri not in self.core.accounts:
            scheme = AUTH_BASIC if ident.profile.get("dm_auth") == "basic" else AUTH_MD5
            self.core.provision(ident.uri, client_name=ident.imsi, client_password=self.rng.randbytes(8).hex(),
                                server_password=self.rng.randbytes(8).hex(), auth_scheme=scheme)
        reply = self.core.handle(http.body, http.content_type, self.replica.transport.unix_now(), headers=http.headers)
        for event in reply.events:
            if event.kind == "server_auth_rejected":
                self.challenged.add(index)
            elif event.kind == "session_completed":
                self.completed.add(index)
        body = reply.body
        replayed = self.learned.get(index)
        if body and replayed is not None:
            body = self._with_cred(body, reply.content_type, replayed)
        self.act(index, "answered as the DM server" + (" with a replayed Cred" if replayed is not None else ""))
        payload = http_binding.encode_response(http_status(reply), body, reply.content_type, reply.headers)
        self.replica.transport.respond(Message(payload, "server", ident.uri, "dm", msg.meta))

    @staticmethod
    def _with_cred(body: bytes, content_type: str, cred) -> bytes:
        """Return the SyncML message ``body`` with its SyncHdr Cred replaced by ``cred``."""
        msg = m.decode(body, content_type)
        hdr = msg.find("SyncHdr")
        old = hdr.find("Cred")
        at = list(hdr).index(old) if old is not None else len(hdr)
        if old is not None:
            hdr.remove(old)
        hdr.insert(at, copy.deepcopy(cred))
        return m.encode(msg, content_type)

    def verdict_of(self, dev, ok, reason):
        if reason in ("server_auth_failed", "server_hmac_failed"):
            return DETECTED
        return SUCCEEDED if dev.ident.index in self.completed else BLOCKED

    def judge(self):
        planted = sum(1 for i in self.acted if self._nonce_planted(i))
        return self.overall(
            "none: the client accepted the impostor's replayed server Cred and ran its commands (plain HTTP: "
            "the Cred covers no body, OMA-TS-DM_Security §5.3, §5.4)",
            "server authentication (OMA-TS-DM_Security §5.4, §5.4.3; §5.6.1 with auth-hmac-sha256): the client "
            "refused the impostor's credential",
            "the impostor's session ended before the client judged it",
            corrupted=planted > 0, learned=sum(1 for c in self.learned.values() if c is not None),
            read=dict(self.read), client_challenged=len(self.challenged), impostor_completed=len(self.completed),
            client_nonce_planted=planted)

    def _nonce_planted(self, index: int) -> bool:
        """Return whether device ``index``'s client took the impostor's NextNonce as its nonce."""
        dev = self.devs.get(index)
        account = self.core.accounts.get(dev.ident.uri) if dev is not None else None
        client = dev.client if dev is not None else None
        return bool(account and client and client.account.client_nonce == account.client_nonce)


# --- downgrade-auth -------------------------------------------------------------------------------

@register
class DowngradeAuth(IpMitm):
    """Rewrite the server's challenge to ``syncml:auth-basic`` so the client sends its password.

    In every server message to a targeted device (plain HTTP) the Chal of the SyncHdr Status gets
    Meta/Type ``syncml:auth-basic`` (a Chal is added where there is none); every request of the
    device is read for a Basic Cred, B64(name:password) (§5.4). The attacker reads the password
    when the client follows the rewritten Chal, or when its scheme is auth-basic anyway:
    succeeded (the password read is compared with the device's own). The seeds do not let a Chal
    change the client's scheme: the client uses the AAuthType of its account (§5.4, §5.5: the
    NextNonce is kept only under the digest schemes), so a digest client goes on with auth-md5
    and nobody notices: blocked. With auth-hmac-sha256 the rewritten body breaks the server's
    x-syncml-hmac and the client ends ``server_hmac_failed``: detected.
    """

    kind = "downgrade-auth"
    params = {}
    detected_reasons = ("server_hmac_failed",)
    entry = Entry(
        family="mitm", title="server challenge rewritten to auth-basic (password in clear)",
        seeds_say="§5.4: auth-basic is B64(userid:password), 'susceptible to network eavesdrop'; the client "
                  "authenticates with its account's AAuthType, and a Chal's NextNonce is used only under the "
                  "digest schemes (§5.5). Plain HTTP without integrity breaks §5.3.",
        knowledge="none", position="the IP path of plain-HTTP DM sessions", time="one DM session",
        expected="blocked against auth-md5 (the client keeps its scheme); succeeded against auth-basic (no "
                 "downgrade needed); detected against auth-hmac-sha256")

    @classmethod
    def check(cls, data, spec):
        if tls_mode(data) != "none":
            return "needs tls.mode none: inside TLS the Chal is encrypted"
        return virtual_server(data)

    def install(self) -> None:
        super().install()
        self.rewritten = 0
        self.passwords: dict[int, bool] = {}  # device -> whether the password it read is the device's
        self.before_rewrite: set[int] = set()  # devices whose password was read before any rewrite

    def on_down(self, dev, msg, deliveries):
        parsed = read_dm(msg.payload)
        status = header_status(parsed[1]) if parsed is not None else None
        if status is None:
            return deliveries
        chal = status.find("Chal")
        if chal is None:
            chal = E("Chal", E("Meta", E("Type", AUTH_BASIC), E("Format", "b64")))
            status.insert(list(status).index(status.find("Data")), chal)
        elif chal.find("Meta/Type") is not None:
            chal.find("Meta/Type").text = AUTH_BASIC
        self.rewritten += 1
        self.act(dev.ident.index, "rewrote the server's Chal to syncml:auth-basic")
        payload = write_dm(parsed[0], parsed[1])
        return [(extra, payload) for extra, _ in deliveries]

    def on_up(self, dev, msg, deliveries):
        hdr = dm_header(msg.payload)
        if hdr is None:
            return deliveries
        index = dev.ident.index
        read = password_in(dev.ident, hdr.cred)
        if read is not None and index not in self.passwords:
            if index not in self.acted:
                self.before_rewrite.add(index)
            self.act(index, "read a Basic Cred")
            self.passwords[index] = read
            self.decide(index, SUCCEEDED if read else BLOCKED)
        return deliveries

    def verdict_of(self, dev, ok, reason):
        if self.passwords.get(dev.ident.index):
            return SUCCEEDED
        return super().verdict_of(dev, ok, reason)

    def judge(self):
        return self.overall(
            "none: the device's password crossed in a Basic Cred (OMA-TS-DM_Security §5.4: auth-basic over a "
            "transport without confidentiality)",
            "x-syncml-hmac (OMA-TS-DM_Security §5.6.1): the rewritten server message failed the client's check",
            "the client keeps its account's AAuthType (OMA-TS-DM_Security §5.4, §5.5); the rewritten Chal only "
            "carried the NextNonce",
            rewritten=self.rewritten, passwords_read=sum(self.passwords.values()),
            read_without_downgrade=len(self.before_rewrite))


# --- tls-intercept --------------------------------------------------------------------------------

class GuessedPsks(Mapping):
    """The attacker's PSK store: for any identity a client names, a key guessed from ``rng``
    (``size`` random octets, the size of the simulated server's PSKs: the identity travels in
    clear in the ClientKeyExchange, RFC 4279 §2, the key never does). ``identities`` keeps the
    identities it was asked for."""

    def __init__(self, rng, size: int = 32):
        self.rng, self.size = rng, size
        self.identities: list[bytes] = []

    def __getitem__(self, identity: bytes) -> bytes:
        self.identities.append(bytes(identity))
        return self.rng.randbytes(self.size)

    def __iter__(self) -> Iterator[bytes]:
        return iter(())

    def __len__(self) -> int:
        return 0


class TlsMitm(IpMitm):
    """What the attacks on a device's TLS connection share: each new connection of a targeted
    device (its segment 0 on ``ip_up``, the ClientHello, with meta (device, segment, connection))
    is handed to :meth:`on_connection` once; the connections are kept per device."""

    def install(self) -> None:
        super().install()
        self.conns: dict[int, list] = {}
        self.alerts: Counter[int] = Counter()  # fatal alerts in clear towards targeted devices, by description
        self.stats_before = dict(getattr(self.replica.transport, "stats", {}) or {})

    def on_up(self, dev, msg, deliveries):
        meta = msg.meta
        if len(meta) != 3 or meta[1] != 0:
            return self.on_http(dev, msg, deliveries) if len(meta) == 2 else deliveries
        conns = self.conns.setdefault(dev.ident.index, [])
        if any(c is meta[2] for c in conns):
            return deliveries  # a retransmitted ClientHello
        conns.append(meta[2])
        return self.on_connection(dev, meta[2], msg, deliveries)

    def on_down(self, dev, msg, deliveries):
        data = msg.payload
        if len(msg.meta) == 3 and len(data) >= 7 and data[0] == 21 and data[5] == 2:
            self.alerts[data[6]] += 1  # a fatal alert in clear (RFC 5246 §7.2): what the server refused with
        return deliveries

    def on_connection(self, dev, conn, msg, deliveries) -> list:
        """A targeted device opened the TLS connection ``conn``; ``msg`` is its ClientHello."""
        return deliveries

    def on_http(self, dev, msg, deliveries) -> list:
        """A targeted device's plain HTTP request (tls.mode none)."""
        return deliveries

    def tls_stats(self) -> dict[str, int]:
        """Return how the transport's TLS counters grew since the attack was installed."""
        stats = getattr(self.replica.transport, "stats", {}) or {}
        grown = {k: v - self.stats_before.get(k, 0) for k, v in stats.items()
                 if k in ("handshakes", "client_failures", "server_failures") and v != self.stats_before.get(k, 0)}
        return {**grown, "alerts_to_device": {str(code): n for code, n in sorted(self.alerts.items())}}


@register
class TlsIntercept(TlsMitm):
    """Terminate a targeted device's TLS connection with the attacker's own credential.

    The attacker in the path answers the device's ClientHello instead of the server: its
    endpoint (python-mbedtls, like the server's) takes the place of the server's in the device's
    connection before the ClientHello arrives. ``credential: certificate``: a server certificate
    for the DM server's host name from a lab CA of the attacker's own (``tls_pki.LabCa`` keyed
    from the attack's stream), which the device does not trust; ``psk``: a PSK server that
    answers any identity the device names with a guessed key (:class:`GuessedPsks`). The
    device's handshake must fail (seed 000 §9.2.2; X.509: the certificate does not chain to the
    device's CA; PSK: the Finished MACs differ, RFC 4279 §2) and its session ends ``tls_failed``
    (counted in the transport's ``client_failures``; the attacker's endpoint sits in the server's
    seat, so its own failure on the device's alert counts in ``server_failures``): detected. A
    handshake that completes with the attacker means it reads and relays everything: succeeded.

    With ``tls.mode none`` there is nothing to terminate: the attacker reads each request in
    clear (succeeded), and the evidence says what it read (the Cred's scheme, and the password
    of a Basic Cred, §5.4).
    """

    kind = "tls-intercept"
    params = {"credential": "certificate"}
    choices = {"credential": ("certificate", "psk")}
    detected_reasons = ("tls_failed",)
    entry = Entry(
        family="mitm", title="TLS terminated by the attacker (own certificate or guessed PSK)",
        seeds_say="seed 000 §9.2.2: the client validates the server certificate (X.509 mode) or shares the PSK "
                  "issued in its bootstrap (PSK-TLS); OMA-TS-DM_Security §5.3: without TLS the DM messages cross "
                  "in clear.",
        knowledge="the DM server's host name; with psk, the identity (sent in clear)",
        position="the IP path (DNS spoofing, rogue access point)", time="one TLS handshake",
        expected="detected with tls.mode x509 or psk; succeeded (plaintext read) with tls.mode none")

    @classmethod
    def check(cls, data, spec):
        return virtual_server(data)

    def install(self) -> None:
        super().install()
        self.endpoints: list[TlsEndpoint] = []
        self.read: Counter[str] = Counter()  # the requests read in clear, by what their Cred gave away
        self._config = None
        self.psks: GuessedPsks | None = None

    def _attacker_config(self):
        """Return the attacker's TLS server config (made on first use: a lab CA costs a few ms)."""
        if self._config is None:
            if self.p["credential"] == "psk":
                self.psks = GuessedPsks(self.rng)
                self._config = psk_server_config(self.psks)
            else:
                own = LabCa(self.rng.randbytes(32), name="attacker CA").issue_server(self.replica.transport.hostname)
                self._config = x509_server_config(own.cert_pem, own.key_pem)
        return self._config

    def on_connection(self, dev, conn, msg, deliveries):
        endpoint = TlsEndpoint(self._attacker_config())
        self.endpoints.append(endpoint)
        conn.server = endpoint  # the attacker answers the ClientHello now, the server never sees it
        self.act(dev.ident.index, f"terminated TLS with a {self.p['credential']}")
        return deliveries

    def on_http(self, dev, msg, deliveries):
        hdr = dm_header(msg.payload)
        if hdr is None:
            return deliveries
        cred, index = hdr.cred, dev.ident.index
        self.act(index, "read a DM request in clear")
        what = "password" if password_in(dev.ident, cred) else (cred.scheme if cred is not None else "no_cred")
        self.read[what] += 1
        self.decide(index, SUCCEEDED)
        return deliveries

    def verdict_of(self, dev, ok, reason):
        index = dev.ident.index
        if self.outcomes.get(index) == SUCCEEDED or any(
                c.server in self.endpoints and c.server.version is not None for c in self.conns.get(index, ())):
            return SUCCEEDED
        return super().verdict_of(dev, ok, reason)

    def judge(self):
        completed = sum(1 for e in self.endpoints if e.version is not None)
        return self.overall(
            "none: the attacker read the DM session (" + ("TLS completed with the attacker's credential"
                                                          if completed else "no TLS: OMA-TS-DM_Security §5.3") + ")",
            "TLS server authentication (seed 000 §9.2.2): the device's handshake with the attacker failed",
            "the device's connection ended before its handshake did",
            read=dict(self.read), handshakes_with_attacker=completed, tls=self.tls_stats(),
            psk_identities_seen=len(self.psks.identities) if self.psks is not None else None)


# --- downgrade-tls --------------------------------------------------------------------------------

def rewrite_client_hello(flight: bytes, *, version: int | None = None,
                         suites: tuple[int, ...] | None = None) -> bytes | None:
    """Return the TLS flight ``flight`` whose first record is a ClientHello (RFC 5246 §7.4.1.2)
    with its client_version (and record version) set to ``version`` and/or its cipher_suites
    list replaced by ``suites``, the lengths fixed; None when the flight is not a ClientHello."""
    if len(flight) < 5 + 4 + 35 or flight[0] != 22 or flight[5] != 1:
        return None
    rec_len = int.from_bytes(flight[3:5], "big")
    record, rest = bytearray(flight[5:5 + rec_len]), flight[5 + rec_len:]
    body = bytearray(record[4:4 + int.from_bytes(record[1:4], "big")])
    tail = record[4 + len(body):]
    at = 2 + 32
    at += 1 + body[at]  # session_id
    cs_len = int.from_bytes(body[at:at + 2], "big")
    if suites is not None:
        body[at:at + 2 + cs_len] = len(suites * 2).to_bytes(2, "big") + b"".join(s.to_bytes(2, "big") for s in suites)
    if version is not None:
        body[0:2] = version.to_bytes(2, "big")
    record = bytes([1]) + len(body).to_bytes(3, "big") + bytes(body) + tail
    rec_version = version.to_bytes(2, "big") if version is not None else flight[1:3]
    return bytes([22]) + rec_version + len(record).to_bytes(2, "big") + record + rest


@register
class DowngradeTls(TlsMitm):
    """Rewrite a targeted device's ClientHello on the wire: ``to: ssl3``, ``tls1.0`` or
    ``tls1.1`` sets its client_version (and record version) to 0x0300, 0x0301 or 0x0302;
    ``weak-suite`` replaces its cipher_suites by TLS_RSA_WITH_RC4_128_SHA and
    TLS_RSA_WITH_NULL_SHA, in no seed list.

    Seed 000 §9.2.2: sessions run TLS 1.1 or 1.2 only ("SHALL NOT take place over SSL 2.0", and
    dmsim refuses SSL 3.0 and TLS 1.0 as well: RFC 7568) and only the seed's suites; the server
    refuses the hello with a fatal alert (protocol_version, or handshake_failure for no shared
    suite), counted in the transport's ``server_failures``, and the device's session ends
    ``tls_failed``: detected. ``tls1.1`` is a version both ends allow: the server answers at
    TLS 1.1 and the client goes along, but the two transcripts differ from the first message, so
    the server cannot verify the client's Finished (RFC 5246 §7.4.9; with the extended master
    secret of RFC 7627 the keys already differ: bad_record_mac): detected all the same. A
    handshake that completes below the client's highest version or with a suite outside its list
    is a downgrade: succeeded; one that completes as offered (the rewrite had no effect) is
    blocked.
    """

    kind = "downgrade-tls"
    params = {"to": "tls1.0"}
    choices = {"to": (*_VERSIONS, "weak-suite")}
    detected_reasons = ("tls_failed",)
    entry = Entry(
        family="mitm", title="ClientHello rewritten to SSL 3.0 / TLS 1.0 / TLS 1.1 / a weak suite",
        seeds_say="seed 000 §9.2.2: TLS 1.1 mandatory, never SSL 2.0, only the listed suites; the Finished "
                  "messages cover the whole handshake, so a changed hello cannot go unnoticed.",
        knowledge="none", position="the IP path of TLS DM sessions", time="one TLS handshake",
        expected="detected (the server refuses the hello, or the client's Finished with tls1.1)")

    @classmethod
    def check(cls, data, spec):
        if tls_mode(data) == "none":
            return "needs tls.mode psk or x509 (a ClientHello to rewrite)"
        return virtual_server(data)

    def on_connection(self, dev, conn, msg, deliveries):
        to = self.p["to"]
        changed = rewrite_client_hello(msg.payload, version=_VERSIONS.get(to),
                                       suites=_WEAK_SUITES if to == "weak-suite" else None)
        if changed is None:
            return deliveries
        self.act(dev.ident.index, f"rewrote the ClientHello ({to})")
        return [(extra, changed) for extra, _ in deliveries]

    def verdict_of(self, dev, ok, reason):
        client = next((c.client for c in reversed(self.conns.get(dev.ident.index, []))), None)
        if client is not None and client.version is not None:
            weak = client.version < client.config.versions[1] or client.suite not in client.config.suites
            return SUCCEEDED if weak else BLOCKED
        return super().verdict_of(dev, ok, reason)

    def judge(self):
        return self.overall(
            "none: the handshake completed below the client's highest version or with a suite outside its list",
            "TLS version and suite checks (seed 000 §9.2.2), or the Finished over the transcript (RFC 5246 "
            "§7.4.9): the server refused the rewritten ClientHello",
            "the handshake completed with a seed suite: the rewrite had no effect",
            tls=self.tls_stats(), suites=dict(getattr(self.replica.transport, "suites", {})))


# --- scp03-mitm -----------------------------------------------------------------------------------

class CardInterposer:
    """What sits between a device's ME and its UICC: it passes every C-APDU on to ``card``, but
    the first secure-messaging command after EXTERNAL AUTHENTICATE (CLA b3 set, with data) gets
    one bit of its data field inverted (``flip(apdu) -> apdu``, told to ``acted``)."""

    def __init__(self, card, flip: Callable[[bytes], bytes], acted: Callable[[bytes], None]):
        self.card, self.flip, self.acted = card, flip, acted
        self.authenticated = self.flipped = False

    @property
    def atr(self) -> bytes:
        return bytes(getattr(self.card, "atr", b""))

    def process(self, apdu: bytes) -> bytes:
        secured = len(apdu) > 5 and bool(apdu[0] & _SM_BIT) and apdu[0] != 0xFF
        if secured and self.authenticated and not self.flipped:
            self.flipped = True
            self.acted(apdu)
            apdu = self.flip(apdu)
        if secured and apdu[1] == _EXTERNAL_AUTHENTICATE:
            self.authenticated = True
        return self.card.process(apdu)


@register
class Scp03Mitm(MitmAttack):
    """Flip one bit in the first C-APDU of the SCP03 secure channel after EXTERNAL AUTHENTICATE,
    between a targeted device's ME and its UICC (the smartcard bootstrap of seed 001 §8.1).

    At security level 33 every command carries a C-MAC chained over the session (GlobalPlatform
    Card Specification Amendment D §6.2.4) and its data is encrypted (C-DEC); the card checks the
    C-MAC before anything else and refuses the command (SW 6982) and the session. The ME reports
    ``secure_channel_integrity`` and the device's life ends ``smartcard_bootstrap_failed``:
    detected. A device that installs its account anyway means the altered command went through:
    succeeded. The flipped bit is drawn from the attack's stream over the command's data field.
    The interposer is the card seam's ``interpose`` hook (``sim/links/card_access.py``): the
    capture and trace show the APDUs as the ME sent them.
    """

    kind = "scp03-mitm"
    positions = ("card",)
    params = {}
    entry = Entry(
        family="mitm", title="bit flipped in an SCP03 C-APDU between the ME and the UICC",
        seeds_say="seed 001 §8.1: the smartcard bootstrap is read over SCP03 at security level 0x33 (C-MAC, "
                  "C-DEC, R-MAC, R-ENC); GlobalPlatform Amendment D: a command whose C-MAC fails is refused and "
                  "the secure channel closed.",
        knowledge="none (physical access to the ME-UICC interface)", position="between the ME and its UICC",
        time="the power-on bootstrap", expected="detected")

    @classmethod
    def check(cls, data, spec):
        if not profile_of(data, "bootstrap_via", "smartcard"):
            return "needs a profile with bootstrap_via smartcard (an SCP03 channel to the card)"
        if data["components"]["card"]["kind"] != "virtual":
            return "needs components.card kind virtual (the simulation cannot get between a real ME and card)"
        return None

    def install(self) -> None:
        self.flipped: dict[int, str] = {}  # device -> the INS of the altered command
        self.ends: dict[int, str] = {}
        cards = self.replica.cards
        inner = cards.interpose

        def interpose(index: int, card):
            card = card if inner is None else inner(index, card)
            if not self.active() or not self.targets(index):
                return card
            return CardInterposer(card, self._flip, lambda apdu: self._acted(index, apdu))
        cards.interpose = interpose

    def _flip(self, apdu: bytes) -> bytes:
        lc = apdu[4]
        return flip_bit(apdu, 5 + self.rng.randrange(min(lc, len(apdu) - 5)), self.rng.randrange(8))

    def _acted(self, index: int, apdu: bytes) -> None:
        self.flipped[index] = f"{apdu[1]:02X}"
        self.act(index, f"flipped a bit of the secured C-APDU INS {apdu[1]:02X}")

    def finished(self, dev, ok: bool, reason: str) -> None:
        index = dev.ident.index
        if index not in self.flipped:
            return
        report = dev.card_report
        failure = report.failure if report is not None else None
        self.ends[index] = failure.value if failure is not None else (reason or "ok")
        if failure is CardReason.CHANNEL_INTEGRITY or reason == "smartcard_bootstrap_failed":
            self.decide(index, DETECTED)
        elif dev.accepted:
            self.decide(index, SUCCEEDED)
        else:
            self.decide(index, BLOCKED)

    def judge(self):
        return self.overall(
            "none: the card ran the altered command",
            "SCP03 C-MAC (seed 001 §8.1, GlobalPlatform Amendment D §6.2.4): the card refused the altered command",
            "the device's bootstrap ended without a verdict on the altered command",
            none="no targeted device opened an SCP03 channel", corrupted=bool(self.tally().get(SUCCEEDED)),
            card_reports=dict(Counter(self.ends.values())), instructions=sorted(set(self.flipped.values())))
