"""Names of UICC instructions and files, to print a command APDU the way tshark does
("SELECT File EF_IMSI").

Instructions: ETSI TS 102 221 §10.1.2 (Table 10.5), with the GlobalPlatform SCP03 commands
(GP Card Spec Amd D §7.1, §7.2), AUTHENTICATE (TS 31.102 §7.1.2) and the CAT ones (TS 102 223).
Files and applications: the FIDs and AIDs that cards/uicc_files.py and cards/filesystem.py
declare (``EF_*``, ``DF_*``, ``MF_FID``, ``*_AID``), read from those modules, not copied.

Choices where the specs leave room:
- A FID declared in more than one DF (EF_AD 6FAD under ADF.USIM and ADF.ISIM) gets its one
  name; the FID alone does not say which DF it is in.
- An AID is named when it starts with the RID and application code of a declared one (the
  first 7 octets: 3GPP USIM/ISIM, TS 101 220 Annex E) or equals it: a partial DF name selects
  the same application (TS 102 221 §11.1.1.2).
- SELECT by path (P1 08/09) names each FID of the path, joined by '/'.
"""
from __future__ import annotations

from dmsim.cards import filesystem, uicc_files

INS_NAMES = {
    0x4C: "LWM2M PROTECT",  # proprietary class, cards/lwm2m_applet.py
    0xA4: "SELECT", 0xF2: "STATUS", 0xB0: "READ BINARY", 0xD6: "UPDATE BINARY", 0xB2: "READ RECORD",
    0xDC: "UPDATE RECORD", 0xA2: "SEARCH RECORD", 0x32: "INCREASE", 0xCB: "RETRIEVE DATA", 0xDB: "SET DATA",
    0x20: "VERIFY", 0x24: "CHANGE PIN", 0x26: "DISABLE PIN", 0x28: "ENABLE PIN", 0x2C: "UNBLOCK PIN",
    0x04: "DEACTIVATE FILE", 0x44: "ACTIVATE FILE", 0x88: "AUTHENTICATE", 0x89: "AUTHENTICATE",
    0x84: "GET CHALLENGE", 0xAA: "TERMINAL CAPABILITY", 0x10: "TERMINAL PROFILE", 0xC2: "ENVELOPE",
    0x12: "FETCH", 0x14: "TERMINAL RESPONSE", 0x70: "MANAGE CHANNEL", 0x73: "MANAGE SECURE CHANNEL",
    0x75: "TRANSACT DATA", 0xC0: "GET RESPONSE", 0xCA: "GET DATA", 0x50: "INITIALIZE UPDATE",
    0x82: "EXTERNAL AUTHENTICATE", 0xE6: "INSTALL", 0xE8: "LOAD", 0xE4: "DELETE", 0xD8: "PUT KEY",
    0xF0: "SET STATUS",
}

_AID_PREFIX = 7  # RID (5) + application code (2), TS 101 220 Annex E


def _declared(prefixes: tuple[str, ...], kind: type) -> dict:
    """Return {value: name} of the constants of the card modules whose names start so."""
    table = {}
    for module in (uicc_files, filesystem):
        for name, value in vars(module).items():
            if name.startswith(prefixes) and isinstance(value, kind) and value not in table:
                table[value] = name
    return table


FILE_NAMES: dict[int, str] = {fid: name for fid, name in _declared(("EF_", "DF_"), int).items()}
FILE_NAMES[filesystem.MF_FID] = "MF"
FILE_NAMES[filesystem.CURRENT_ADF_FID] = "ADF (current)"
AID_NAMES: dict[bytes, str] = {aid: "ADF." + name.removesuffix("_AID").replace("PKCS15", "PKCS#15")
                               for aid, name in _declared(("USIM_AID", "ISIM_AID", "PKCS15_AID"), bytes).items()}


def ins_name(ins: int) -> str | None:
    """Return the name of instruction ``ins``, or None for one not listed."""
    return INS_NAMES.get(ins)


def file_name(fid: int) -> str:
    """Return the declared name of file ``fid``, or its FID in hex."""
    return FILE_NAMES.get(fid, f"{fid:04X}")


def aid_name(aid: bytes) -> str | None:
    """Return the application an AID (possibly partial) selects, or None."""
    for known, name in AID_NAMES.items():
        if aid == known or (len(aid) >= _AID_PREFIX and known.startswith(aid[:_AID_PREFIX])):
            return name
    return None


def selected(p1: int, data: bytes) -> str | None:
    """Return what a SELECT with ``p1`` and ``data`` selects (TS 102 221 §11.1.1.2), or None
    when its data does not fit the selection method."""
    if p1 == 0x04:
        return aid_name(data) or f"AID {data.hex().upper()}"
    if p1 in (0x00, 0x08, 0x09) and data and len(data) % 2 == 0:
        fids = [int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2)]
        return "/".join(file_name(fid) for fid in fids)
    return None


def describe(ins: int, p1: int, data: bytes) -> str:
    """Return a one-line summary like tshark's: ``SELECT File EF_IMSI``, ``READ BINARY``,
    ``READ BINARY SFI 07``, or ``INS 3A`` for an instruction not listed."""
    name = ins_name(ins) or f"INS {ins:02X}"
    if ins == 0xA4:
        target = selected(p1, data)
        if target is not None:
            return f"{name} {'Application' if p1 == 0x04 else 'File'} {target}"
    if ins in (0xB0, 0xD6) and p1 & 0x80:
        return f"{name} SFI {p1 & 0x1F:02X}"
    return name
