"""The UE side of Ub: a sans-IO bootstrapping client over HTTP bytes (TS 24.109 §4.2-§4.5,
TS 33.220 §4.5.2, RFC 3310).

    client = UbClient(impi, "bsf.example.org", aka, randbytes)
    request = client.first_request()
    while request is not None:
        request = client.receive(send_to_bsf(request))
    client.result  # UbResult: B-TID, lifetime, RAND, Ks (None when it stays in the UICC)

``aka(rand, autn)`` runs AKA in the bootstrapping mode and returns cards/usim_auth's
``GbaBootstrapped`` (RES, Ks, RAND), ``SyncFailure`` (AUTS) or ``MacFailure``:
``software_aka(k, opc, sqns)`` does it in software (GBA_ME, tests); a UICC path (GBA_U,
AUTHENTICATE P2 84 'DD', :func:`card_gba_u_aka`) returns the same types with ``ks`` empty, Ks
staying in the card.

Behaviour: the first request carries username = IMPI and empty nonce/response (TS 24.109 A.3-1);
on a 401 the client answers with the AKAv1-MD5 response (password = RES, qop as challenged,
nc 00000001, a fresh cnonce) or, after a synchronisation failure, with ``auts`` and an empty
password (RFC 3310 §3.4). On 200 it checks ``rspauth`` (mutual authentication, RFC 2617 §3.2.3)
and reads the B-TID and lifetime. A MAC failure (the network did not authenticate, TS 24.109
§4.4), a wrong rspauth or a 403 raise AuthenticationError; malformed answers DecodeError;
more than ``max_challenges`` challenges ProtocolError (bounded work against a hostile BSF).
"""
from __future__ import annotations

import base64
import hmac
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Callable

from dmsim.base.errors import AuthenticationError, DecodeError, ProtocolError
from dmsim.cards.sqn import SqnArray
from dmsim.cards.usim_auth import GbaBootstrapped, GbaResult, MacFailure, SyncFailure, gba_bootstrap
from dmsim.network.dm.http_binding import decode
from dmsim.network.gba import digest_aka as dg
from dmsim.network.gba.bsf import GBA_NAMESPACE

MAX_RESPONSE_LEN = 16384
NC = "00000001"


@dataclass(frozen=True)
class UbResult:
    """A finished bootstrapping: B-TID, lifetime (xsd:dateTime text), RAND, Ks (None for GBA_U)."""

    btid: str
    lifetime: str
    rand: bytes
    ks: bytes | None


def software_aka(k: bytes, opc: bytes, sqns: SqnArray) -> Callable[[bytes, bytes], GbaResult]:
    """Return an ``aka`` callable running the USIM's checks in software (cards/usim_auth)."""
    return lambda rand, autn: gba_bootstrap(k, opc, rand, autn, sqns)


def gba_authenticate_apdu(body: bytes) -> bytes:
    """Return AUTHENTICATE in GBA security context (CLA 00, INS 88, P1 00, P2 84, TS 31.102
    §7.1.2) with the mode-tagged ``body`` ('DD' bootstrapping, 'DE' NAF derivation) and Le 00."""
    return bytes([0x00, 0x88, 0x00, 0x84, len(body)]) + body + b"\x00"


def card_gba_u_aka(transmit: Callable[[bytes], tuple[bytes, int]]) -> Callable[[bytes, bytes], GbaResult]:
    """Return the ``aka`` of a GBA_U UICC: AUTHENTICATE P2 84 in bootstrapping mode 'DD' L RAND
    L AUTN (TS 31.102 §7.1.2.3, cards/usim_app.py): 'DB' L RES on success (Ks = CK || IK and
    RAND stay in the card, so ``ks`` is empty), 'DC' L AUTS on a synchronisation failure, SW 98 62
    on a MAC failure. ``transmit(apdu)`` returns (data, SW); any other answer is ProtocolError."""
    def run(rand: bytes, autn: bytes) -> GbaResult:
        body = b"\xdd" + bytes([len(rand)]) + rand + bytes([len(autn)]) + autn
        data, sw = transmit(gba_authenticate_apdu(body))
        if sw == 0x9862:
            return MacFailure()
        if sw != 0x9000 or len(data) < 2 or data[0] not in (0xDB, 0xDC) or len(data) < 2 + data[1]:
            raise ProtocolError(f"AUTHENTICATE (GBA bootstrapping) answered {sw:04X}")
        value = data[2:2 + data[1]]
        if data[0] == 0xDC:
            return SyncFailure(value)
        return GbaBootstrapped(value, b"", rand)
    return run


def parse_bootstrapping_info(body: bytes) -> tuple[str, str]:
    """Return (B-TID, lifetime) of a TS 24.109 bootstrapping info body; DecodeError if malformed."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise DecodeError("BootstrappingInfo", 0, f"not XML: {exc}") from None
    ns = {"g": GBA_NAMESPACE}
    btid, lifetime = root.findtext("g:btid", None, ns), root.findtext("g:lifetime", None, ns)
    if root.tag != f"{{{GBA_NAMESPACE}}}BootstrappingInfo" or not btid or not lifetime:
        raise DecodeError("BootstrappingInfo", 0, "no btid/lifetime", expected="TS 24.109 bootstrapping info")
    return btid.strip(), lifetime.strip()


class UbClient:
    """The bootstrapping client (see the module docstring)."""

    def __init__(self, impi: str, host: str, aka: Callable[[bytes, bytes], GbaResult],
                 randbytes: Callable[[int], bytes], *, uri: str = "/", max_challenges: int = 3):
        self.impi = impi
        self.host = host
        self.aka = aka
        self.randbytes = randbytes
        self.uri = uri
        self.max_challenges = max_challenges
        self.challenges = 0
        self.result: UbResult | None = None
        self._sent: dict[str, str] | None = None
        self._res = b""
        self._boot: GbaBootstrapped | None = None

    def _request(self, params: dict[str, str]) -> bytes:
        auth = "Digest " + dg.format_params(params)
        head = (f"GET {self.uri} HTTP/1.1\r\nHost: {self.host}\r\nUser-Agent: dmsim 3gpp-gba\r\n"
                f"Accept: */*\r\nAuthorization: {auth}\r\n\r\n")
        return head.encode("ascii")

    def first_request(self) -> bytes:
        """Return the initial GET (username = IMPI, empty nonce and response)."""
        self._sent = None
        realm = self.host.partition(":")[0]   # TS 24.109 A.3-1: the BSF's domain before any challenge
        return self._request({"username": self.impi, "realm": realm, "nonce": "", "uri": self.uri, "response": ""})

    def receive(self, response: bytes) -> bytes | None:
        """Consume the BSF's answer; return the next request, or None once ``result`` is set."""
        if len(response) > MAX_RESPONSE_LEN:
            raise DecodeError("Ub response", MAX_RESPONSE_LEN, f"{len(response)} bytes")
        msg = decode(response)
        if msg.start == "401":
            return self._on_challenge(msg.headers.get("www-authenticate", ""))
        if msg.start == "200" and self._sent is not None and self._boot is not None:
            self._on_success(msg.headers.get("authentication-info", ""), msg.body)
            return None
        if msg.start == "403":
            raise AuthenticationError(f"BSF refused the bootstrapping (403): {msg.body[:200]!r}")
        raise ProtocolError(f"Ub: unexpected HTTP status {msg.start}")

    def _on_challenge(self, header: str) -> bytes:
        self.challenges += 1
        if self.challenges > self.max_challenges:
            raise ProtocolError(f"Ub: more than {self.max_challenges} challenges")
        scheme, ch = dg.parse_challenge_params(header)
        if scheme.lower() != "digest" or ch.get("algorithm") != dg.ALGORITHM:
            raise DecodeError("WWW-Authenticate", 0, "not a Digest AKAv1-MD5 challenge")
        offered = [q.strip() for q in ch.get("qop", "").split(",")]
        qop = dg.QOP_AUTH_INT if dg.QOP_AUTH_INT in offered else dg.QOP_AUTH if dg.QOP_AUTH in offered else None
        if qop is None or "realm" not in ch or "nonce" not in ch:
            raise DecodeError("WWW-Authenticate", 0, "no realm, nonce or usable qop")
        rand, autn, _ = dg.split_nonce(ch["nonce"])
        outcome = self.aka(rand, autn)
        if isinstance(outcome, MacFailure):
            raise AuthenticationError("Ub: AUTN does not verify, the BSF is not authenticated (TS 24.109 §4.4)")
        cnonce = self.randbytes(16).hex()
        params = {"username": self.impi, "realm": ch["realm"], "nonce": ch["nonce"], "uri": self.uri,
                  "qop": qop, "nc": NC, "cnonce": cnonce, "algorithm": dg.ALGORITHM}
        if isinstance(outcome, SyncFailure):
            self._boot = None
            params["auts"] = base64.b64encode(outcome.auts).decode("ascii")
            res = b""
        else:
            self._boot = outcome
            res = outcome.res
        params["response"] = dg.aka_response(self.impi, ch["realm"], res, "GET", self.uri, ch["nonce"], NC,
                                             cnonce, qop)
        self._sent, self._res = params, res
        return self._request(params)

    def _on_success(self, info_header: str, body: bytes) -> None:
        info = dg.parse_params(info_header)
        sent = self._sent
        expected = dg.aka_rspauth(self.impi, sent["realm"], self._res, self.uri, sent["nonce"], sent["nc"],
                                  sent["cnonce"], sent["qop"], body)
        if not hmac.compare_digest(info.get("rspauth", "").lower(), expected):
            raise AuthenticationError("Ub: rspauth does not verify (the BSF does not know RES)")
        btid, lifetime = parse_bootstrapping_info(body)
        self.result = UbResult(btid, lifetime, self._boot.rand, self._boot.ks or None)
