"""WBXML tag code pages of SyncML 1.2, as data.

Page 0 is the SyncML representation page (OMA-TS-SyncML_RepPro-V1_2 §8, "WBXML code page 00"),
page 1 the Meta Information page (OMA-TS-SyncML_MetaInfo-V1_2 §8, "WBXML code page 01"). Token
0x30 of page 0 is reserved. Values were checked against libwbxml's tables and the
``wbxml-libwbxml-pkg1-string-table`` vector.

The two pages have no tag name in common, so a tag name alone selects its page.
"""
from __future__ import annotations

SYNCML_12_FPI = "-//SYNCML//DTD SyncML 1.2//EN"
SYNCML_11_FPI = "-//SYNCML//DTD SyncML 1.1//EN"
SYNCML_10_FPI = "-//SYNCML//DTD SyncML 1.0//EN"

PUBLIC_ID_SYNCML_12 = 0x1201
PUBLIC_ID_SYNCML_11 = 0x0FD3
PUBLIC_ID_SYNCML_10 = 0x0FD1

# Public ids accepted on input. DM 1.1.2 messages carry SyncML 1.1; the 1.0/1.1 tokens used by
# DM are the same as 1.2's, 1.2 only appends tags at the end of page 0.
ACCEPTED_PUBLIC_IDS: dict[int, str] = {
    PUBLIC_ID_SYNCML_12: SYNCML_12_FPI,
    PUBLIC_ID_SYNCML_11: SYNCML_11_FPI,
    PUBLIC_ID_SYNCML_10: SYNCML_10_FPI,
}
ACCEPTED_FPIS = frozenset(ACCEPTED_PUBLIC_IDS.values())

PAGE_SYNCML = 0
PAGE_METINF = 1

SYNCML_NS = "SYNCML:SYNCML1.2"
METINF_NS = "syncml:metinf"
PAGE_NAMESPACES: dict[int, str] = {PAGE_SYNCML: SYNCML_NS, PAGE_METINF: METINF_NS}

_PAGE0_NAMES = (
    "Add", "Alert", "Archive", "Atomic", "Chal", "Cmd", "CmdID", "CmdRef", "Copy", "Cred",
    "Data", "Delete", "Exec", "Final", "Get", "Item", "Lang", "LocName", "LocURI", "Map",
    "MapItem", "Meta", "MsgID", "MsgRef", "NoResp", "NoResults", "Put", "Replace", "RespURI",
    "Results", "Search", "Sequence", "SessionID", "SftDel", "Source", "SourceRef", "Status",
    "Sync", "SyncBody", "SyncHdr", "SyncML", "Target", "TargetRef", None, "VerDTD", "VerProto",
    "NumberOfChanges", "MoreData", "Field", "Filter", "Record", "FilterType", "SourceParent",
    "TargetParent", "Move", "Correlator",
)
_PAGE1_NAMES = (
    "Anchor", "EMI", "Format", "FreeID", "FreeMem", "Last", "Mark", "MaxMsgSize", "Mem",
    "MetInf", "Next", "NextNonce", "SharedMem", "Size", "Type", "Version", "MaxObjSize",
    "FieldLevel",
)
_FIRST_TAG_TOKEN = 0x05  # 0x00-0x04 are WBXML global tokens


def _page(names: tuple[str | None, ...]) -> dict[int, str]:
    return {_FIRST_TAG_TOKEN + i: n for i, n in enumerate(names) if n is not None}


# page -> {token: tag name}
TAG_BY_TOKEN: dict[int, dict[int, str]] = {
    PAGE_SYNCML: _page(_PAGE0_NAMES),
    PAGE_METINF: _page(_PAGE1_NAMES),
}
# tag name -> (page, token)
TOKEN_BY_TAG: dict[str, tuple[int, int]] = {
    name: (page, token) for page, table in TAG_BY_TOKEN.items() for token, name in table.items()
}


def page_of(tag: str) -> int | None:
    """Return the code page of ``tag``, or None for a tag on neither page."""
    entry = TOKEN_BY_TAG.get(tag)
    return entry[0] if entry else None
