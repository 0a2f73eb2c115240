"""GBA Push (3GPP TS 33.223): the BSF side of Zpn and the device side of Upa, sans-IO.

- Zpn (TS 33.223 §4.3.2): a NAF asks for a GBA Push Info for a user (IMPI or IMSI) and a
  NAF_Id. ``PushBsf.zpn`` takes an AV from the HSS, builds the GPI (RAND, AUTN, P-TID, NAF_Id,
  the key lifetime) and returns it with Ks_(ext)_NAF (and Ks_int_NAF for a GBA_U subscriber),
  derived from Ks = CK || IK as in TS 33.220 Annex B.3 (keys.derive_ks_naf).
- Upa (device side, TS 33.223 §4.3.3): ``PushReceiver.process`` decodes a GPI, runs AKA on
  RAND/AUTN (MAC and SQN freshness: cards/usim_auth in software for GBA_ME, or the UICC's
  AUTHENTICATE in GBA context for GBA_U, see ``card_gba_u``), derives Ks and the NAF keys and,
  for DM, the DMBIK/DMBEK (keys.dm_bootstrap_keys). A GPI already processed (same P-TID or
  RAND), a stale SQN, a wrong MAC or a malformed GPI is refused (AuthenticationError or
  DecodeError) and counted in ``counters``.

Choices where the specs leave room, or where dmsim could not check the text:
- GPI encoding: TS 33.223 defines the GPI fields; the octet layout of TS 24.109 Annex J.3 was
  not available to check here (searched for: only J.2 was found), so ``encode_gpi`` uses this
  provisional layout (to be verified against J.3.1):
  version (1 octet, 1) | flags (1 octet: bit 0 = GBA_U) | RAND (16) | AUTN (16) |
  P-TID (2-octet length + UTF-8) | NAF_Id (2-octet length + octets) |
  key expiry (8 octets, seconds since the Unix epoch, big endian). ``decode_gpi`` refuses any
  other version, a truncated or over-long field and trailing octets.
- WAP Push carriage (TS 24.109 Annex J.2: Content-Type application/vnd.3gpp.gba.gpi,
  X-WAP-Application-ID, the GPI envelope of J.3.1.2) is in ``gpi_wap`` and re-exported here
  (``gpi_push``, ``parse_gpi_push``, ``decode_gpi_push``).
- P-TID = base64(RAND)@BSF-FQDN, the B-TID form of TS 33.220 §4.5.2 (a push transaction is
  named by its RAND as a bootstrap is).
- Push AVs use their own IND (default 1, the Ub BSF uses 0): TS 33.102 Annex C.1.2 lets each
  node have its IND so that push and Ub AVs consumed out of order both stay fresh.
- Replay memory on the device is bounded (``max_seen`` RANDs, oldest forgotten first); the SQN
  check of the USIM still refuses a forgotten replay (its SEQ is not above SEQ_MS(IND)).
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

from dmsim.base.errors import AuthenticationError, DecodeError, ProtocolError
from dmsim.cards.sqn import SqnArray
from dmsim.cards.usim_auth import MacFailure, Success, SyncFailure, authenticate_3g
from dmsim.network.gba.gpi_wap import GpiPush, decode_gpi_push, gpi_push, parse_gpi_push  # noqa: F401 (re-export)
from dmsim.network.gba.hss import Hss
from dmsim.network.gba.ub_client import card_gba_u_aka, gba_authenticate_apdu
from dmsim.network.gba.keys import derive_ks_naf, dm_bootstrap_keys, gba_btid, ks_from_ck_ik, split_naf_id

GPI_VERSION = 1
FLAG_GBA_U = 0x01
MAX_FIELD = 1024
PUSH_IND = 1


@dataclass(frozen=True)
class Gpi:
    """The GBA Push Info fields dmsim carries (see the module docstring for the layout)."""

    rand: bytes
    autn: bytes
    p_tid: str
    naf_id: bytes
    expires: int
    gba_u: bool


def _lv(value: bytes) -> bytes:
    if len(value) > MAX_FIELD:
        raise DecodeError("GPI", 0, f"field of {len(value)} octets", expected=f"at most {MAX_FIELD}")
    return len(value).to_bytes(2, "big") + value


def encode_gpi(gpi: Gpi) -> bytes:
    """Return the GPI octets (provisional layout, module docstring)."""
    if len(gpi.rand) != 16 or len(gpi.autn) != 16:
        raise DecodeError("GPI", 2, "RAND and AUTN are 16 octets each", expected="16 + 16 octets")
    return (bytes([GPI_VERSION, FLAG_GBA_U if gpi.gba_u else 0]) + gpi.rand + gpi.autn
            + _lv(gpi.p_tid.encode("utf-8")) + _lv(gpi.naf_id) + gpi.expires.to_bytes(8, "big"))


def decode_gpi(data: bytes) -> Gpi:
    """Return the GPI of ``data``; DecodeError (with the offset) for anything malformed."""
    if len(data) < 34:
        raise DecodeError("GPI", len(data), "too short", expected="at least 34 octets")
    if data[0] != GPI_VERSION:
        raise DecodeError("GPI", 0, f"version {data[0]}", expected=f"version {GPI_VERSION}")
    if data[1] & ~FLAG_GBA_U:
        raise DecodeError("GPI", 1, f"unknown flags {data[1]:#04x}", expected="0x00 or 0x01")
    pos = 34
    fields = []
    for name in ("P-TID", "NAF_Id"):
        if pos + 2 > len(data):
            raise DecodeError("GPI", pos, f"no length of {name}")
        n = int.from_bytes(data[pos:pos + 2], "big")
        if n == 0 or n > MAX_FIELD or pos + 2 + n > len(data):
            raise DecodeError("GPI", pos, f"{name} length {n}", expected=f"1..{MAX_FIELD} within the GPI")
        fields.append(data[pos + 2:pos + 2 + n])
        pos += 2 + n
    if len(data) != pos + 8:
        raise DecodeError("GPI", pos, f"{len(data) - pos} octets after NAF_Id", expected="8 (the key expiry)")
    try:
        p_tid = fields[0].decode("utf-8")
    except UnicodeDecodeError:
        raise DecodeError("GPI", 36, "P-TID is not UTF-8") from None
    split_naf_id(fields[1])
    return Gpi(data[2:18], data[18:34], p_tid, fields[1], int.from_bytes(data[pos:], "big"), bool(data[1] & 1))


@dataclass(frozen=True)
class PushAnswer:
    """What Zpn returns to the NAF: the GPI and the NAF keys."""

    gpi: bytes
    p_tid: str
    impi: str
    ks_naf: bytes
    ks_int_naf: bytes | None
    expires: int


class PushBsf:
    """The BSF's Zpn (TS 33.223 §4.3.2)."""

    def __init__(self, hss: Hss, fqdn: str, *, ind: int = PUSH_IND):
        self.hss = hss
        self.fqdn = fqdn
        self.ind = ind

    def zpn(self, user: str, naf_id: bytes, now: float) -> PushAnswer:
        """Return the GPI and keys for ``user`` (IMPI or IMSI) and ``naf_id``; ProtocolError for an
        unknown user, DecodeError for a malformed NAF_Id."""
        split_naf_id(naf_id)
        guss = self.hss.guss(user)
        av = self.hss.generate_av(guss.impi, ind=self.ind)
        p_tid = gba_btid(av.rand, self.fqdn)
        expires = int(now) + guss.key_lifetime
        ext, internal = derive_ks_naf(av.ks, av.rand, guss.impi, naf_id)
        gpi = encode_gpi(Gpi(av.rand, av.autn, p_tid, naf_id, expires, guss.gba_u))
        return PushAnswer(gpi, p_tid, guss.impi, ext, internal if guss.gba_u else None, expires)


@dataclass(frozen=True)
class PushKeys:
    """The device's result: Ks_(ext)_NAF (what the ME holds), DMBIK and DMBEK from it."""

    p_tid: str
    naf_id: bytes
    ks_naf: bytes
    expires: int
    dmbik: bytes
    dmbek: bytes


# aka(rand, autn, impi, naf_id) -> Ks_(ext)_NAF, or SyncFailure / MacFailure
PushAka = Callable[[bytes, bytes, str, bytes], "bytes | SyncFailure | MacFailure"]


def software_gba_me(k: bytes, opc: bytes, sqns: SqnArray) -> PushAka:
    """Return the GBA_ME push AKA in software: the USIM's 3G AKA (cards/usim_auth), then Ks_NAF in the ME."""
    def run(rand: bytes, autn: bytes, impi: str, naf_id: bytes):
        out = authenticate_3g(k, opc, rand, autn, sqns)
        if not isinstance(out, Success):
            return out
        return derive_ks_naf(ks_from_ck_ik(out.ck, out.ik), rand, impi, naf_id)[0]
    return run


class PushReceiver:
    """The device side of GBA Push (TS 33.223 §4.3.3), with replay and freshness refusals."""

    def __init__(self, impi: str, aka: PushAka, *, max_seen: int = 256):
        self.impi = impi
        self.aka = aka
        self.max_seen = max_seen
        self._seen: OrderedDict[bytes, None] = OrderedDict()
        self.counters: dict[str, int] = {}

    def _refuse(self, what: str, message: str) -> AuthenticationError:
        self.counters[what] = self.counters.get(what, 0) + 1
        return AuthenticationError(f"GBA Push: {message}")

    def process(self, data: bytes, now: float) -> PushKeys:
        """Return the keys of a GPI; AuthenticationError for a replay, a stale SQN, a wrong MAC
        or an expired GPI, DecodeError for a malformed one (each counted)."""
        try:
            gpi = decode_gpi(data)
        except DecodeError:
            self.counters["malformed"] = self.counters.get("malformed", 0) + 1
            raise
        if gpi.rand in self._seen:
            raise self._refuse("replayed", f"GPI {gpi.p_tid[:60]!r} already processed")
        if gpi.expires <= now:
            raise self._refuse("expired", "the GPI's key lifetime has passed")
        out = self.aka(gpi.rand, gpi.autn, self.impi, gpi.naf_id)
        if isinstance(out, SyncFailure):
            raise self._refuse("stale_sqn", "SQN not fresh (TS 33.102 Annex C)")
        if isinstance(out, MacFailure):
            raise self._refuse("mac_failure", "AUTN MAC does not verify")
        self._seen[gpi.rand] = None
        while len(self._seen) > self.max_seen:
            self._seen.popitem(last=False)
        self.counters["accepted"] = self.counters.get("accepted", 0) + 1
        ik, ek = dm_bootstrap_keys(out)
        return PushKeys(gpi.p_tid, gpi.naf_id, out, gpi.expires, ik, ek)


def card_gba_u(transmit: Callable[[bytes], tuple[bytes, int]]) -> PushAka:
    """Return the GBA_U push AKA through a UICC: AUTHENTICATE P2 84 in bootstrapping mode 'DD'
    (``ub_client.card_gba_u_aka``) then NAF derivation mode 'DE' (TS 31.102 §7.1.2.3/§7.1.2.4,
    cards/usim_app.py); Ks and Ks_int_NAF stay in the card, Ks_ext_NAF comes back.
    ``transmit(apdu)`` returns (data, SW)."""
    bootstrap = card_gba_u_aka(transmit)

    def run(rand: bytes, autn: bytes, impi: str, naf_id: bytes):
        out = bootstrap(rand, autn)
        if isinstance(out, (MacFailure, SyncFailure)):
            return out
        impi_octets = impi.encode("utf-8")
        body = b"\xde" + bytes([len(naf_id)]) + naf_id + bytes([len(impi_octets)]) + impi_octets
        data, sw = transmit(gba_authenticate_apdu(body))
        if sw != 0x9000 or len(data) < 2 or data[0] != 0xDB:
            raise ProtocolError(f"AUTHENTICATE (NAF derivation) answered {sw:04X}")
        return data[2:2 + data[1]]
    return run
