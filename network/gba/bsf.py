"""The BSF: the Ub bootstrapping procedure as a sans-IO state machine over HTTP bytes, and Zn
(3GPP TS 33.220 §4.5.2/§4.5.3, TS 24.109 §4.2-§4.5, RFC 3310).

``Bsf.handle(request_bytes, now)`` returns the response bytes:

1. GET with ``Authorization: Digest username=<IMPI>, ..., nonce="", response=""`` (TS 24.109
   A.3-1): the BSF fetches the GUSS and an AV from the HSS (Zh) and answers 401 with
   ``WWW-Authenticate: Digest realm, nonce = base64(RAND || AUTN), qop="auth-int",
   algorithm=AKAv1-MD5``.
2. GET with the digest response (password = RES as raw octets): 200 with
   ``Authentication-Info`` (qop, rspauth, cnonce, nc) and the bootstrapping information
   (application/vnd.3gpp.bsf+xml: ``<BootstrappingInfo xmlns="uri:3gpp-gba"><btid>``,
   ``<lifetime>`` as an xsd:dateTime in UTC, TS 24.109 §4.2 / annex C). The BSF keeps
   B-TID = base64(RAND)@BSF-FQDN -> (IMPI, Ks = CK || IK, RAND, expiry, UICC type).
3. GET with ``auts`` (synchronisation failure, TS 24.109 §4.5, RFC 3310 §3.4; the response is
   computed with an empty password): the HSS resynchronises (MAC-S checked) and the BSF
   answers 401 with a new challenge.

``Bsf.zn(btid, naf_id, now)`` (TS 33.220 §4.5.3): Ks_NAF (GBA_ME) or Ks_ext_NAF and
Ks_int_NAF (GBA_U), the key lifetime and the IMPI; ProtocolError if the B-TID is unknown or
expired.

Hostile input: every request is answered (400 for malformed HTTP or Digest syntax, 403 for a
refused authentication, never an exception). Every store is bounded: requests beyond
MAX_REQUEST_LEN are refused, pending challenges are capped (``max_pending``) and expire after
``challenge_ttl`` seconds, sessions are capped (``max_sessions``) and expire with their key.

Choices where the specs leave room:
- One pending challenge per IMPI: a new first request while one is pending and fresh gets the
  same challenge again, so a flood of first requests does not burn SEQ numbers at the HSS.
- A wrong response, or an unknown user, is answered 403 Forbidden and the challenge is
  dropped (one try per AV); a nonce the BSF does not know (expired, replaced, forged) gets a new
  challenge (401), as after a stale nonce.
- When a store is full the oldest entry goes first (expired ones are purged before that).
- ``now`` is seconds since the Unix epoch (the lifetime dateTime is computed from it).
- Methods other than GET and URIs other than the configured one are refused with 400.
"""
from __future__ import annotations

import hmac
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable
from xml.sax.saxutils import escape

from dmsim.base.errors import AuthenticationError, DecodeError, ProtocolError
from dmsim.network.dm.http_binding import decode, encode_response
from dmsim.network.gba import digest_aka as dg
from dmsim.network.gba.aka import AuthVector
from dmsim.network.gba.hss import Hss
from dmsim.network.gba.keys import gba_btid, ks_ext_naf, ks_int_naf, split_naf_id

BSF_CONTENT_TYPE = "application/vnd.3gpp.bsf+xml"   # TS 24.109 §4.2
GBA_NAMESPACE = "uri:3gpp-gba"                       # TS 24.109 annex C
MAX_REQUEST_LEN = 8192
MAX_NC_LEN = 8
MAX_CNONCE_LEN = 256


@dataclass
class Pending:
    """A challenge sent and not yet answered."""

    impi: str
    av: AuthVector
    nonce: str
    expires: float


@dataclass(frozen=True)
class Session:
    """A bootstrapping session (TS 33.220 §4.5.2 step 6)."""

    btid: str
    impi: str
    ks: bytes
    rand: bytes
    expires: float
    gba_u: bool


@dataclass(frozen=True)
class ZnAnswer:
    """What Zn gives a NAF (TS 33.220 §4.5.3): ``ks_naf`` is Ks_NAF (GBA_ME) or Ks_ext_NAF (GBA_U);
    ``ks_int_naf`` only for GBA_U; ``expires`` the key lifetime (seconds since the epoch)."""

    impi: str
    ks_naf: bytes
    ks_int_naf: bytes | None
    expires: float
    uicc_type: str


def lifetime_text(expires: float) -> str:
    """Return the xsd:dateTime of ``expires`` (UTC, seconds), as the bootstrapping info carries it."""
    return datetime.fromtimestamp(int(expires), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def bootstrapping_info(btid: str, expires: float) -> bytes:
    """Return the 200 OK body (TS 24.109 §4.2, annex C)."""
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<BootstrappingInfo xmlns="{GBA_NAMESPACE}">'
            f"<btid>{escape(btid)}</btid><lifetime>{lifetime_text(expires)}</lifetime>"
            "</BootstrappingInfo>").encode("utf-8")


class _Refused(Exception):
    """Internal: answer with ``status`` (and a new challenge for 401)."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


class Bsf:
    """The BSF (see the module docstring)."""

    def __init__(self, hss: Hss, fqdn: str, *, realm: str | None = None, qop: str = dg.QOP_AUTH_INT,
                 uri: str = "/", ind: int = 0, challenge_ttl: float = 60.0, max_pending: int = 1024,
                 max_sessions: int = 100_000, randbytes: Callable[[int], bytes] | None = None):
        if qop not in (dg.QOP_AUTH, dg.QOP_AUTH_INT):
            raise ProtocolError(f"BSF: qop {qop!r} is neither auth nor auth-int")
        self.hss = hss
        self.fqdn = fqdn
        self.realm = realm or fqdn
        self.qop = qop
        self.uri = uri
        self.ind = ind
        self.challenge_ttl = challenge_ttl
        self.max_pending = max_pending
        self.max_sessions = max_sessions
        self.pending: OrderedDict[str, Pending] = OrderedDict()    # by nonce
        self._pending_by_impi: dict[str, str] = {}
        self.sessions: OrderedDict[str, Session] = OrderedDict()   # by B-TID
        self.counters: dict[str, int] = {}

    # -- bookkeeping -------------------------------------------------------------------------

    def _count(self, what: str) -> None:
        self.counters[what] = self.counters.get(what, 0) + 1

    def _drop_pending(self, nonce: str) -> None:
        p = self.pending.pop(nonce, None)
        if p is not None and self._pending_by_impi.get(p.impi) == nonce:
            del self._pending_by_impi[p.impi]

    def _purge(self, now: float) -> None:
        for nonce in [n for n, p in self.pending.items() if p.expires <= now]:
            self._drop_pending(nonce)
        for btid in [b for b, s in self.sessions.items() if s.expires <= now]:
            del self.sessions[btid]

    def _add_pending(self, p: Pending) -> None:
        while len(self.pending) >= self.max_pending:
            self._drop_pending(next(iter(self.pending)))
            self._count("pending_evicted")
        self.pending[p.nonce] = p
        self._pending_by_impi[p.impi] = p.nonce

    def _add_session(self, s: Session) -> None:
        self.sessions.pop(s.btid, None)
        while len(self.sessions) >= self.max_sessions:
            self.sessions.popitem(last=False)
            self._count("sessions_evicted")
        self.sessions[s.btid] = s

    # -- Ub ------------------------------------------------------------------------------------

    def handle(self, request: bytes, now: float) -> bytes:
        """Return the HTTP response to one Ub request (never raises on bad input)."""
        self._purge(now)
        try:
            return self._handle(request, now)
        except _Refused as r:
            self._count(f"refused_{r.status}")
            return encode_response(r.status, r.reason.encode("utf-8"), "text/plain")
        except DecodeError as exc:
            self._count("refused_400")
            return encode_response(400, str(exc).encode("utf-8", "replace"), "text/plain")
        except ProtocolError as exc:   # the HSS refused (unknown user, SEQ exhausted)
            self._count("refused_403")
            return encode_response(403, str(exc).encode("utf-8", "replace"), "text/plain")

    def _handle(self, request: bytes, now: float) -> bytes:
        if len(request) > MAX_REQUEST_LEN:
            raise _Refused(400, f"request of {len(request)} bytes")
        msg = decode(request)
        method, _, uri = msg.start.partition(" ")
        if method != "GET" or uri != self.uri:
            raise _Refused(400, f"expected GET {self.uri}")
        auth = msg.headers.get("authorization")
        if auth is None:
            raise _Refused(400, "no Authorization header (the IMPI is needed, TS 24.109 §4.2)")
        scheme, params = dg.parse_challenge_params(auth)
        username = params.get("username")
        if scheme.lower() != "digest" or not username:
            raise _Refused(400, "Authorization is not Digest with a username")
        nonce = params.get("nonce", "")
        if not nonce:
            return self._challenge(username, now)
        pending = self.pending.get(nonce)
        if pending is None or pending.impi != username:
            self._count("unknown_nonce")
            return self._challenge(username, now)
        return self._answer(pending, params, msg.body, now)

    def _challenge(self, user: str, now: float, *, reuse: bool = True) -> bytes:
        nonce = self._pending_by_impi.get(user) if reuse else None
        if nonce is None:
            try:
                self.hss.guss(user)
                av = self.hss.generate_av(user, ind=self.ind)
            except ProtocolError:
                raise _Refused(403, "unknown user") from None
            nonce = dg.make_nonce(av.rand, av.autn)
            self._add_pending(Pending(user, av, nonce, now + self.challenge_ttl))
            self._count("challenges")
        header = "Digest " + dg.format_params(
            {"realm": self.realm, "nonce": nonce, "qop": self.qop, "algorithm": dg.ALGORITHM},
            unquoted=frozenset({"algorithm"}))
        return encode_response(401, b"", "text/plain", {"WWW-Authenticate": header})

    def _answer(self, p: Pending, params: dict[str, str], body: bytes, now: float) -> bytes:
        if params.get("algorithm", dg.ALGORITHM) != dg.ALGORITHM:
            raise _Refused(400, "algorithm is not AKAv1-MD5")
        if params.get("uri") != self.uri or params.get("qop") != self.qop or params.get("realm") != self.realm:
            raise _Refused(400, "uri, qop or realm differ from the challenge")
        nc, cnonce, response = params.get("nc", ""), params.get("cnonce", ""), params.get("response", "")
        if not (0 < len(nc) <= MAX_NC_LEN and 0 < len(cnonce) <= MAX_CNONCE_LEN and len(response) == 32):
            raise _Refused(400, "nc, cnonce or response missing or malformed")
        auts = params.get("auts")
        password = b"" if auts is not None else p.av.xres
        expected = dg.aka_response(p.impi, self.realm, password, "GET", self.uri, p.nonce, nc, cnonce, self.qop, body)
        if not hmac.compare_digest(expected, response.lower()):
            self._drop_pending(p.nonce)
            self._count("auth_failures")
            raise _Refused(403, "digest response does not verify")
        self._drop_pending(p.nonce)
        if auts is not None:
            return self._resync(p, auts, now)
        return self._bootstrapped(p, nc, cnonce, now)

    def _resync(self, p: Pending, auts_b64: str, now: float) -> bytes:
        auts = dg.b64decode_strict(auts_b64, "auts")
        try:
            self.hss.resync(p.impi, p.av.rand, auts)
        except (AuthenticationError, DecodeError) as exc:
            self._count("resync_refused")
            raise _Refused(403, f"resynchronisation refused: {exc}") from None
        self._count("resyncs")
        return self._challenge(p.impi, now, reuse=False)

    def _bootstrapped(self, p: Pending, nc: str, cnonce: str, now: float) -> bytes:
        guss = self.hss.guss(p.impi)
        btid = gba_btid(p.av.rand, self.fqdn)
        expires = now + guss.key_lifetime
        self._add_session(Session(btid, p.impi, p.av.ks, p.av.rand, expires, guss.gba_u))
        self._count("bootstrapped")
        body = bootstrapping_info(btid, expires)
        rspauth = dg.aka_rspauth(p.impi, self.realm, p.av.xres, self.uri, p.nonce, nc, cnonce, self.qop, body)
        info = dg.format_params({"qop": self.qop, "rspauth": rspauth, "cnonce": cnonce, "nc": nc})
        return encode_response(200, body, BSF_CONTENT_TYPE, {"Authentication-Info": info})

    # -- Zn ------------------------------------------------------------------------------------

    def zn(self, btid: str, naf_id: bytes, now: float) -> ZnAnswer:
        """Return the NAF keys for ``btid`` and ``naf_id`` (TS 33.220 §4.5.3); ProtocolError if
        the B-TID is unknown or expired, DecodeError if the NAF_Id is malformed."""
        split_naf_id(naf_id)
        s = self.sessions.get(btid)
        if s is not None and s.expires <= now:
            del self.sessions[btid]
            s = None
        if s is None:
            self._count("zn_unknown")
            raise ProtocolError(f"Zn: B-TID {btid[:80]!r} unknown or expired")
        self._count("zn")
        ext = ks_ext_naf(s.ks, s.rand, s.impi, naf_id)
        internal = ks_int_naf(s.ks, s.rand, s.impi, naf_id) if s.gba_u else None
        return ZnAnswer(s.impi, ext, internal, s.expires, "GBA_U" if s.gba_u else "GBA")

