"""Every GBA key derivation of dmsim, in one module (3GPP TS 33.220 Annex B, OMA DM seeds).

- KDF (TS 33.220 Annex B.2): derived key = HMAC-SHA-256(Key, S), S = FC || P0 || L0 || P1 ||
  L1 ... with Li the length of Pi on two octets, big endian (B.2.1).
- Ks = CK || IK (TS 33.220 §4.5.2 step 5; also GBA Push, TS 33.223 §4.3.3).
- Ks_NAF / Ks_ext_NAF = KDF(Ks, "gba-me", RAND, IMPI, NAF_Id) and
  Ks_int_NAF = KDF(Ks, "gba-u", RAND, IMPI, NAF_Id), FC = 0x01 (TS 33.220 Annex B.3).
- NAF_Id = NAF FQDN || Ua security protocol identifier (TS 33.220 §4.5.2, Annex H).
- B-TID = base64(RAND)@BSF_servers_domain_name (TS 33.220 §4.5.2 step 6).
- DMBIK / DMBEK (OMA-TS-DM_Security-V1_3 §5.10.2.4.1, seed 001 §9.3.1.3.1):
  KDF(Ks_(ext/int)_NAF, P0) with FC = 0x01 and no further parameter.

Choices where the texts are silent or disagree:
- DMBIK/DMBEK P0: both seeds' prose write P0 = "dmbik" / "dmbek" (5 characters) while their
  byte tables spell 0x64 0x6D 0x2D 0x62 0x69 0x6B and 0x64 0x6D 0x2D 0x62 0x65 0x6B, i.e.
  "dm-bik" / "dm-bek", and give L0 = 6 (0x00 0x06). dmsim follows the bytes and the length
  field: P0 = b"dm-bik" / b"dm-bek", L0 = 00 06. ``DMBIK_P0``/``DMBEK_P0`` are written as the
  seeds' bytes so the choice is visible.
- The Ua security protocol identifier for DM: both seeds (§5.10.2.4.1 / §9.3.1.3.1) say "the one
  defined for DM in OMNA" and give no value; Appendix C of seed 003 (DM with GBA Push) gives
  none either. The OMNA "GBA Protocol Identifiers" registry gives OMA the organisation octet
  0x03 and lists ULP (03 00 00 00 01), LOCSIP (03 00 00 00 02), SIP Digest (03 00 00 00 03)
  and TLS cipher-suite ids (03 00 01 YY ZZ), but no DM entry. ``dm_naf_id`` therefore takes the
  identifier as an argument. ``DMSIM_DM_UA_PROTOCOL_ID`` is dmsim's default for simulations and
  tests: FF 64 6D 00 01, in the private range that TS 33.220 Annex H.2 reserves for local and
  experimental protocols (first octet 0xFF, no registration), rather than a value in OMA's 0x03
  space that OMA may assign to something else. A deployment that uses another identifier sets it
  (it enters NAF_Id, so both ends must agree).
- Strings (IMPI, FQDNs) are encoded in UTF-8 (TS 33.220 Annex B.2.1: "character strings shall
  be encoded to octet strings according to UTF-8").
- A parameter longer than 65535 octets cannot be given a 2-octet length: DecodeError.
"""
from __future__ import annotations

import base64
import hashlib
import hmac

from dmsim.base.errors import DecodeError

FC_NAF = 0x01                    # TS 33.220 Annex B.3 (and the seeds' DMBIK/DMBEK)
P0_GBA_ME = b"gba-me"            # Ks_NAF (GBA_ME) / Ks_ext_NAF (GBA_U), Annex B.3
P0_GBA_U = b"gba-u"              # Ks_int_NAF (GBA_U), Annex B.3
DMBIK_P0 = bytes((0x64, 0x6D, 0x2D, 0x62, 0x69, 0x6B))   # "dm-bik": the seeds' byte table
DMBEK_P0 = bytes((0x64, 0x6D, 0x2D, 0x62, 0x65, 0x6B))   # "dm-bek": the seeds' byte table
MAX_PARAM_LEN = 0xFFFF
KEY_LEN = 32                     # HMAC-SHA-256 output

UA_PROTOCOL_ID_LEN = 5           # TS 33.220 Annex H.1
UA_ORG_3GPP = 0x01               # TS 33.220 Annex H.2
UA_ORG_OMA = 0x03                # OMNA GBA Protocol Identifiers registry
UA_TS33221 = bytes((0x01, 0x00, 0x00, 0x00, 0x00))        # Annex H.3: Ua according to TS 33.221
UA_HTTP_DIGEST = bytes((0x01, 0x00, 0x00, 0x00, 0x02))    # Annex H.3: HTTP Digest per TS 24.109
UA_ORG_PRIVATE = 0xFF            # TS 33.220 Annex H.2: the private range
DMSIM_DM_UA_PROTOCOL_ID = bytes((UA_ORG_PRIVATE, 0x64, 0x6D, 0x00, 0x01))  # "dm", private range; see above


def kdf_input(fc: int, *params: bytes) -> bytes:
    """Return S = FC || P0 || L0 || P1 || L1 ... (TS 33.220 Annex B.2.1), Li on 2 octets."""
    if not 0 <= fc <= 0xFF:
        raise DecodeError("KDF FC", 0, f"{fc} does not fit one octet", expected="0..255")
    out = bytearray([fc])
    for i, p in enumerate(params):
        if len(p) > MAX_PARAM_LEN:
            raise DecodeError(f"KDF P{i}", MAX_PARAM_LEN, f"{len(p)} octets", expected="at most 65535")
        out += p + len(p).to_bytes(2, "big")
    return bytes(out)


def gba_kdf(key: bytes, fc: int, *params: bytes) -> bytes:
    """Return HMAC-SHA-256(key, S) (32 octets): the generic KDF of TS 33.220 Annex B.2."""
    return hmac.new(key, kdf_input(fc, *params), hashlib.sha256).digest()


def ks_from_ck_ik(ck: bytes, ik: bytes) -> bytes:
    """Return Ks = CK || IK (TS 33.220 §4.5.2 step 5, TS 33.223 §4.3.3); CK, IK 16 octets each."""
    for name, value in (("CK", ck), ("IK", ik)):
        if len(value) != 16:
            raise DecodeError(name, min(len(value), 16), f"{len(value)} octets", expected="16 octets")
    return ck + ik


def make_naf_id(naf_fqdn: str, ua_protocol_id: bytes) -> bytes:
    """Return NAF_Id = FQDN (UTF-8) || Ua security protocol identifier (TS 33.220 §4.5.2, H.1)."""
    if len(ua_protocol_id) != UA_PROTOCOL_ID_LEN:
        raise DecodeError("Ua security protocol identifier", min(len(ua_protocol_id), UA_PROTOCOL_ID_LEN),
                          f"{len(ua_protocol_id)} octets", expected="5 octets")
    if not naf_fqdn:
        raise DecodeError("NAF FQDN", 0, "empty", expected="a domain name")
    return naf_fqdn.encode("utf-8") + ua_protocol_id


def split_naf_id(naf_id: bytes) -> tuple[str, bytes]:
    """Return (FQDN, Ua security protocol identifier) of a NAF_Id (the inverse of make_naf_id)."""
    if len(naf_id) <= UA_PROTOCOL_ID_LEN:
        raise DecodeError("NAF_Id", len(naf_id), f"{len(naf_id)} octets",
                          expected="an FQDN and a 5-octet Ua security protocol identifier")
    head = naf_id[:-UA_PROTOCOL_ID_LEN]
    try:
        return head.decode("utf-8"), naf_id[-UA_PROTOCOL_ID_LEN:]
    except UnicodeDecodeError as exc:
        raise DecodeError("NAF_Id FQDN", exc.start, "not UTF-8", expected="a UTF-8 domain name") from None


def dm_naf_id(dm_server_fqdn: str, ua_protocol_id: bytes) -> bytes:
    """Return the NAF_Id of 3GPP_GBA: the DM Server FQDN || the DM Ua identifier
    (OMA-TS-DM_Security-V1_3 §5.10.2.4.1 first bullet). The identifier is the caller's: the
    seeds give no value (see the module docstring; ``DMSIM_DM_UA_PROTOCOL_ID`` for tests)."""
    return make_naf_id(dm_server_fqdn, ua_protocol_id)


def _naf_tail(rand: bytes, impi: str, naf_id: bytes) -> tuple[bytes, bytes, bytes]:
    if len(rand) != 16:
        raise DecodeError("RAND", min(len(rand), 16), f"{len(rand)} octets", expected="16 octets")
    return rand, impi.encode("utf-8"), naf_id


def ks_ext_naf(ks: bytes, rand: bytes, impi: str, naf_id: bytes) -> bytes:
    """Return Ks_ext_NAF = KDF(Ks, "gba-me", RAND, IMPI, NAF_Id), which is also GBA_ME's Ks_NAF
    (TS 33.220 Annex B.3)."""
    return gba_kdf(ks, FC_NAF, P0_GBA_ME, *_naf_tail(rand, impi, naf_id))


def ks_int_naf(ks: bytes, rand: bytes, impi: str, naf_id: bytes) -> bytes:
    """Return Ks_int_NAF = KDF(Ks, "gba-u", RAND, IMPI, NAF_Id) (TS 33.220 Annex B.3, GBA_U)."""
    return gba_kdf(ks, FC_NAF, P0_GBA_U, *_naf_tail(rand, impi, naf_id))


def derive_ks_naf(ks: bytes, rand: bytes, impi: str, naf_id: bytes) -> tuple[bytes, bytes]:
    """Return (Ks_ext_NAF, Ks_int_NAF), 32 octets each (TS 33.220 Annex B.3, FC 0x01)."""
    return ks_ext_naf(ks, rand, impi, naf_id), ks_int_naf(ks, rand, impi, naf_id)


def gba_btid(rand: bytes, bsf_fqdn: str) -> str:
    """Return B-TID = base64(RAND)@BSF_FQDN (TS 33.220 §4.5.2 step 6; RFC 4648 base64)."""
    return f"{base64.b64encode(rand).decode('ascii')}@{bsf_fqdn}"


def dmbik(ks_naf: bytes) -> bytes:
    """Return DMBIK = KDF(Ks_(ext/int)_NAF, FC 0x01, P0 = 64 6D 2D 62 69 6B, L0 = 00 06)
    (OMA-TS-DM_Security-V1_3 §5.10.2.4.1; P0 per the seeds' bytes, see the module docstring)."""
    return gba_kdf(ks_naf, FC_NAF, DMBIK_P0)


def dmbek(ks_naf: bytes) -> bytes:
    """Return DMBEK = KDF(Ks_(ext/int)_NAF, FC 0x01, P0 = 64 6D 2D 62 65 6B, L0 = 00 06)
    (OMA-TS-DM_Security-V1_3 §5.10.2.4.1; P0 per the seeds' bytes)."""
    return gba_kdf(ks_naf, FC_NAF, DMBEK_P0)


def dm_bootstrap_keys(ks_naf: bytes) -> tuple[bytes, bytes]:
    """Return (DMBIK, DMBEK) from Ks_(ext/int)_NAF (seed 003 §5.10.2.4.1, seed 001 §9.3.1.3.1)."""
    return dmbik(ks_naf), dmbek(ks_naf)
