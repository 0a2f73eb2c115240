"""The file tree of an emulated UICC, built from a card profile.

Files and their encodings:
- MF 3F00 (TS 102 221 §13): EF_ICCID 2FE2 (§13.2, BCD with the digits of each byte swapped,
  padded with F), EF_DIR 2F00 (§13.1, linear fixed, one record per application: template 61
  with 4F AID and 50 label, padded with FF), DF.TELECOM 7F10 with EF_SMS 6F3C (TS 51.011
  §10.5.3: 10 free records of 176 bytes; there to exercise DF selection and records).
- ADF.USIM (TS 31.102 §4.2): EF_IMSI 6F07 (§4.2.2: length byte, then the first digit with
  the parity/type nibble 9 (odd) or 1 (even), then BCD digit pairs swapped, FF padded to 9
  bytes), EF_AD 6FAD (§4.2.18: mode 00, 0000, MNC length), EF_GBABP 6FD6 (§4.2.79: empty, i.e.
  RAND, B-TID and key lifetime all of length 00, then FF), EF_GBANL 6FD7 (§4.2.80: linear
  fixed, every record FF: no NAF keys yet).
- ADF.ISIM (TS 31.103 §4.2): EF_IMPI 6F02 (80 NAI), EF_DOMAIN 6F03 (80 realm of the IMPI),
  EF_IMPU 6F04 (one record, 80 sip:IMPI), EF_AD 6FAD.
- ADF.PKCS15, only when the profile has ``dm_bootstrap``: EF_ODF 5031, EF_DODF-bootstrap 6430
  and EF_DMBootstrap 6432 holding the document.

AIDs: RID A000000087 (3GPP) then the PIX of TS 101 220 Annex E: application code 1002 (USIM)
or 1004 (ISIM), country code FFFF (none), application provider code FFFF89 and provider field
07090000 -- the pattern of commercial USIMs. The PKCS#15 AID A000000063504B43532D3135 is
PKCS #15 v1.1 §5.2.

Where the bootstrap object sits: OMA puts smartcard bootstrap data in a PKCS#15 application
(EF_ODF -> EF_DODF-bootstrap -> the data file) found by AID via EF_DIR and selected on a
logical channel. The FIDs 6430/6432 and the layout follow OMA LwM2M TS Appendix G (G.3.1-G.3.3),
the same scheme the DM bootstrap smartcard profile (ProvSC) uses; the DM Bootstrap text itself
was not at hand. ODF (PKCS #15 §6.2): ``A7 {30 {04 path}}`` (dataObjects, path 6430). DODF: one
opaque data object, ``30 {30 {0C label, 03 flags}, 30 {0C "OMA DM", 06 applicationOID},
A1 {30 {04 path 6432}}}``. The applicationOID 2.23.43.7.1 (wap(43) provisioning(7)
bootstrap(1)) is this module's choice. The flags are empty (not private, not modifiable), so
the document reads with ALW like the DODF; updates need ADM1.

The tree is one ``Template`` per layout (``layout``), shared by every card of that layout: what a
profile changes in the structure is only the EF_IMPU record size and whether the PKCS#15
application exists; the subscriber's files (ICCID, IMSI, AD, IMPI, domain, IMPU, the bootstrap)
are functions of the profile that give each card its own content (``Template.contents``).
"""
from __future__ import annotations

import functools

from dmsim.cards.filesystem import (ADM1, ALW, MF_FID, NEV, PIN1, DF, Access, Template, linear_fixed, tlv,
                                    transparent)
from dmsim.cards.profile import CardProfile

RID_3GPP = bytes.fromhex("A000000087")
USIM_AID = bytes.fromhex("A0000000871002FFFFFFFF8907090000")
ISIM_AID = bytes.fromhex("A0000000871004FFFFFFFF8907090000")
PKCS15_AID = bytes.fromhex("A000000063504B43532D3135")

EF_ICCID, EF_DIR, DF_TELECOM, EF_SMS = 0x2FE2, 0x2F00, 0x7F10, 0x6F3C
EF_IMSI, EF_AD, EF_GBABP, EF_GBANL = 0x6F07, 0x6FAD, 0x6FD6, 0x6FD7
EF_IMPI, EF_DOMAIN, EF_IMPU = 0x6F02, 0x6F03, 0x6F04
EF_ODF, EF_DODF, EF_DM_BOOTSTRAP = 0x5031, 0x6430, 0x6432

DM_BOOTSTRAP_OID = bytes.fromhex("672B0701")  # 2.23.43.7.1, DER content octets
DIR_RECORD_SIZE = 32
GBABP_SIZE = 128
GBANL_RECORDS, GBANL_RECORD_SIZE = 4, 96
SMS_RECORDS, SMS_RECORD_SIZE = 10, 176


_SWAP_NIBBLES = bytes(((b & 0x0F) << 4) | (b >> 4) for b in range(256))


def bcd_swapped(digits: str, size: int) -> bytes:
    """Return ``digits`` as BCD with the digits of each byte swapped, F-padded to ``size`` bytes."""
    padded = (digits + "F" * (2 * size - len(digits)))[:2 * size]
    return bytes.fromhex(padded).translate(_SWAP_NIBBLES)


def encode_iccid(iccid: str) -> bytes:
    """Return the 10 bytes of EF_ICCID, TS 102 221 §13.2."""
    return bcd_swapped(iccid, 10)


def encode_imsi(imsi: str) -> bytes:
    """Return the 9 bytes of EF_IMSI, TS 31.102 §4.2.2."""
    nibbles = ("9" if len(imsi) % 2 else "1") + imsi
    body = bcd_swapped(nibbles, (len(nibbles) + 1) // 2)
    return (bytes((len(body),)) + body).ljust(9, b"\xff")


def decode_imsi(data: bytes) -> str:
    """Return the IMSI digits stored in EF_IMSI bytes ``data``."""
    n = data[0] if data else 0
    nibbles = bytes(data[1:1 + n]).translate(_SWAP_NIBBLES).hex().upper()  # each byte: low digit, then high
    return nibbles[1:].rstrip("F")


def dir_record(aid: bytes, label: str) -> bytes:
    """Return an EF_DIR application template: 61 {4F AID, 50 label}, TS 102 221 §13.1."""
    return tlv(0x61, tlv(0x4F, aid) + tlv(0x50, label.encode("ascii")))


def odf(dodf_fid: int) -> bytes:
    """Return EF_ODF: one dataObjects entry (A7) with the path of the DODF, PKCS #15 §6.2."""
    return tlv(0xA7, tlv(0x30, tlv(0x04, dodf_fid.to_bytes(2, "big"))))


def dodf(data_fid: int, label: str = "OMA DM Bootstrap") -> bytes:
    """Return EF_DODF-bootstrap: one opaque data object pointing to ``data_fid``, PKCS #15 §6.7."""
    common = tlv(0x30, tlv(0x0C, label.encode()) + tlv(0x03, b"\x00"))
    data_attrs = tlv(0x30, tlv(0x0C, b"OMA DM") + tlv(0x06, DM_BOOTSTRAP_OID))
    type_attrs = tlv(0xA1, tlv(0x30, tlv(0x04, data_fid.to_bytes(2, "big"))))
    return tlv(0x30, common + data_attrs + type_attrs)


def _ad(profile: CardProfile) -> bytes:
    return bytes((0x00, 0x00, 0x00, profile.mnc_length))


def _impu(profile: CardProfile) -> bytes:
    return tlv(0x80, f"sip:{profile.impi}".encode())


def _realm(profile: CardProfile) -> bytes:
    return tlv(0x80, profile.impi.split("@", 1)[1].encode())


@functools.lru_cache(maxsize=None)
def layout(impu_size: int, pkcs15: bool) -> Template:
    """Return the file tree shared by every card whose EF_IMPU record is ``impu_size`` bytes and
    which has (``pkcs15``) or not a PKCS#15 application: what a profile changes in the structure."""
    operator = Access(read=ALW, update=ADM1)
    subscriber = Access(read=PIN1, update=ADM1)
    user = Access(read=PIN1, update=PIN1)
    usim = DF(None, "ADF.USIM", aid=USIM_AID).add(
        transparent(EF_IMSI, "EF_IMSI", lambda p: encode_imsi(p.imsi), subscriber, sfi=0x07),
        transparent(EF_AD, "EF_AD", _ad, operator, sfi=0x03),
        transparent(EF_GBABP, "EF_GBABP", b"\x00\x00\x00".ljust(GBABP_SIZE, b"\xff"), user),
        linear_fixed(EF_GBANL, "EF_GBANL", [b""] * GBANL_RECORDS, GBANL_RECORD_SIZE, user),
    )
    isim = DF(None, "ADF.ISIM", aid=ISIM_AID).add(
        transparent(EF_IMPI, "EF_IMPI", lambda p: tlv(0x80, p.impi.encode()), subscriber, sfi=0x02),
        transparent(EF_DOMAIN, "EF_DOMAIN", _realm, subscriber, sfi=0x05),
        linear_fixed(EF_IMPU, "EF_IMPU", lambda p: [_impu(p)], impu_size, subscriber, sfi=0x04, count=1),
        transparent(EF_AD, "EF_AD", _ad, operator, sfi=0x03),
    )
    apps = [(usim, "USIM"), (isim, "ISIM")]
    if pkcs15:
        pkcs15_adf = DF(None, "ADF.PKCS15", aid=PKCS15_AID).add(
            transparent(EF_ODF, "EF_ODF", odf(EF_DODF), operator),
            transparent(EF_DODF, "EF_DODF", dodf(EF_DM_BOOTSTRAP), operator),
            transparent(EF_DM_BOOTSTRAP, "EF_DMBootstrap", lambda p: p.dm_bootstrap, operator),
        )
        apps.append((pkcs15_adf, "PKCS#15"))
    telecom = DF(DF_TELECOM, "DF.TELECOM").add(
        linear_fixed(EF_SMS, "EF_SMS", [b"\x00"] * SMS_RECORDS, SMS_RECORD_SIZE, user))
    mf = DF(MF_FID, "MF").add(
        transparent(EF_ICCID, "EF_ICCID", lambda p: encode_iccid(p.iccid), Access(read=ALW, update=NEV), sfi=0x02),
        linear_fixed(EF_DIR, "EF_DIR", [dir_record(df.aid or b"", label) for df, label in apps], DIR_RECORD_SIZE,
                     operator, sfi=0x1E),
        telecom,
        *(df for df, _ in apps),
    )
    return Template(mf, [df for df, _ in apps])


def template_for(profile: CardProfile) -> Template:
    """Return the shared file tree of a card personalised with ``profile``."""
    return layout(max(len(_impu(profile)), 1), profile.dm_bootstrap is not None)
