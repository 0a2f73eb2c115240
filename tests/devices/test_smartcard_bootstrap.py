"""Smartcard bootstrap at power-on (seed 001 §8.1, Appendix H) against the emulated UICC: the
document read inside an SCP03 channel at level 33, authorised servers only, removal of the
servers whose data left the card, and every failure leaving the tree unchanged."""
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dmsim.cards import gp_app
from dmsim.cards.emulated import make_card
from dmsim.cards.link import InProcessLink
from dmsim.cards.profile import parse_profile
from dmsim.cards.scp03 import Scp03Keys
from dmsim.devices import dm_commands
from dmsim.devices.dm_tree import DmTree, account_from_tree, find_account, install_account
from dmsim.devices.smartcard_bootstrap import (VENDOR_STORE, Reason, card_origin, decode_document,
                                               forget_card_origin, power_on_bootstrap)
from dmsim.network.dm import syncml_xml, wbxml
from dmsim.network.dm.account import DmAccount, bootstrap_document
from dmsim.network.dm.tree import E
from dmsim.base.errors import CardAbsentError

KEY = "404142434445464748494A4B4C4D4E4F"
BASE = parse_profile(f"""\
imsi: "001010123456789"
k: "000102030405060708090A0B0C0D0E0F"
opc: "0F0E0D0C0B0A09080706050403020100"
scp03: {{kvn: 0x30, enc: "{KEY}", mac: "{KEY}", dek: "{KEY}"}}
""")
KEYS = Scp03Keys(BASE.scp03.enc, BASE.scp03.mac, BASE.scp03.dek, BASE.scp03.kvn)
AUTHORISED = {"A", "B", "A_x"}


def account(sid: str) -> DmAccount:
    return DmAccount(server_id=sid, server_uri=f"https://{sid.lower()}.example/dm", client_name="dev-1",
                     client_password=f"cpw-{sid}", server_name=sid, server_password=f"spw-{sid}",
                     client_nonce=b"cn-" + sid.encode(), server_nonce=b"sn-" + sid.encode())


def document(*sids: str) -> E:
    adds = [bootstrap_document(account(s), "IMEI:1").find("SyncBody/Add") for s in sids]
    return E("SyncML", E("SyncHdr", E("VerDTD", "1.2"), E("SessionID", "0")), E("SyncBody", *adds, E("Final")))


def item_at(doc, uri: str):
    return next(i for i in doc.iter("Item") if i.findtext("Target/LocURI") == uri)


def card_link(*sids: str, raw: bytes | None = None, trace=None, **change) -> InProcessLink:
    """Return a link to an emulated card whose PKCS#15 bootstrap holds ``sids`` (XML) or ``raw``;
    ``change`` overrides other profile fields (dm_bootstrap=None: no PKCS#15 application)."""
    change.setdefault("dm_bootstrap", raw if raw is not None else syncml_xml.to_xml(document(*sids)))
    return InProcessLink(make_card(replace(BASE, **change)), trace=trace)


def power_on(tree, link, **kw):
    kw.setdefault("scp03_keys", KEYS)
    kw.setdefault("authorised_servers", AUTHORISED)
    return power_on_bootstrap(tree, link, **kw)


def snapshot(tree: DmTree) -> list:
    return [(n.uri, n.format, n.value, str(n.acl), sorted(n.access), n.secret) for n in tree.walk(tree.root)]


@pytest.fixture
def tree():
    return DmTree()


def test_installs_the_authorised_accounts_from_the_card(tree):
    report = power_on(tree, card_link("A", "B"))
    assert report.ok and report.installed == ("A", "B") and report.security_level == 0x33
    assert account_from_tree(tree, "A") == account("A") and account_from_tree(tree, "B") == account("B")
    assert {sid for sid, _ in card_origin(tree).values()} == {"A", "B"}
    for uri in (VENDOR_STORE, f"{VENDOR_STORE}/A/ServerID"):     # the origin marks are the device's alone
        assert dm_commands.get(tree, uri, "A").code == dm_commands.COMMAND_NOT_ALLOWED
        assert dm_commands.delete(tree, uri, "A").code in (dm_commands.COMMAND_NOT_ALLOWED,
                                                            dm_commands.PERMISSION_DENIED)
    assert dm_commands.add(tree, f"{VENDOR_STORE}/C", "A").code == dm_commands.COMMAND_NOT_ALLOWED


def test_wbxml_document_on_the_card(tree):
    report = power_on(tree, card_link(raw=wbxml.encode(document("A")) + b"\xff" * 8))   # EF padding
    assert report.installed == ("A",) and account_from_tree(tree, "A") == account("A")


def test_second_power_on_changes_nothing_and_keeps_session_updates(tree):
    power_on(tree, card_link("A", "B"))
    tree.put(find_account(tree, "A") + "/AppAuth/1/AAuthData", "b64", b"next-nonce")   # NextNonce of a session
    before = snapshot(tree)
    report = power_on(tree, card_link("A", "B"))
    assert report.ok and not report.changed and report.unchanged == ("A", "B")
    assert snapshot(tree) == before
    report = power_on(tree, card_link("B", "A"))                       # order on the card does not matter
    assert report.unchanged == ("B", "A") and snapshot(tree) == before


def test_changed_card_data_replaces_the_account(tree):
    power_on(tree, card_link("A"))
    doc = document("A")
    item_at(doc, "./DMAcc/A/AppAddr/1/Addr").find("Data").text = "https://new.example/dm"
    report = power_on(tree, card_link(raw=syncml_xml.to_xml(doc)))
    assert report.installed == ("A",) and account_from_tree(tree, "A").server_uri == "https://new.example/dm"


def test_server_whose_data_left_the_card_is_removed_others_stay(tree):
    power_on(tree, card_link("A", "B"))
    install_account(tree, account("C"))                     # WAP Push bootstrap, not from the card
    report = power_on(tree, card_link("A"))
    assert report.ok and report.unchanged == ("A",)
    assert [(n.server_id, n.account, n.reason) for n in report.removed] == [("B", "./DMAcc/B", Reason.LEFT_CARD)]
    assert find_account(tree, "B") is None and tree.find(f"{VENDOR_STORE}/B") is None
    assert find_account(tree, "A") and account_from_tree(tree, "C") == account("C")
    report = power_on(tree, card_link(raw=b'<SyncML xmlns="SYNCML:SYNCML1.2"><SyncBody/></SyncML>'))
    assert [n.server_id for n in report.removed] == ["A"] and find_account(tree, "C")


def test_unauthorised_server_is_refused_and_no_longer_authorised_one_removed(tree):
    power_on(tree, card_link("A", "B"))
    report = power_on(tree, card_link("A", "B", "X"), authorised_servers={"A"})
    assert [(n.server_id, n.reason) for n in report.refused] == [("B", Reason.NOT_AUTHORISED),
                                                                ("X", Reason.NOT_AUTHORISED)]
    assert [(n.server_id, n.reason) for n in report.removed] == [("B", Reason.NOT_AUTHORISED)]
    assert find_account(tree, "X") is None and find_account(tree, "B") is None and find_account(tree, "A")


def test_card_copy_replaces_a_pushed_copy_but_never_another_servers_node(tree):
    install_account(tree, account("A.x"))                   # WAP-pushed, node ./DMAcc/A_x
    install_account(tree, account("A"))
    report = power_on(tree, card_link("A", "A_x"))          # card server A_x wants node ./DMAcc/A_x too
    assert report.installed == ("A",)
    assert [(n.server_id, n.reason) for n in report.refused] == [("A_x", Reason.CONFLICT)]
    assert account_from_tree(tree, "A.x") == account("A.x") and find_account(tree, "A_x") is None
    assert forget_card_origin(tree, "A") and not forget_card_origin(tree, "A")
    assert not power_on(tree, card_link()).removed and find_account(tree, "A")   # A now belongs to no card


@pytest.mark.parametrize("case, reason", [
    ("wrong_keys", Reason.SCP03_AUTHENTICATION),
    ("wrong_kvn", Reason.SCP03_AUTHENTICATION),
    ("no_scp03_on_card", Reason.SCP03_AUTHENTICATION),
    ("level_13", Reason.SECURITY_LEVEL),
    ("level_07", Reason.SECURITY_LEVEL),
    ("no_keys", Reason.SECURITY_LEVEL),
])
def test_failures_leave_the_tree_unchanged(tree, case, reason):
    power_on(tree, card_link("A", "B"))
    install_account(tree, account("C"))
    before = snapshot(tree)
    seen = []
    link = card_link("A", trace=lambda c, r, t: seen.append(c),
                     **({"scp03": None} if case == "no_scp03_on_card" else {}))
    kw = {"wrong_keys": {"scp03_keys": replace(KEYS, mac=bytes(16))}, "wrong_kvn": {"scp03_keys": replace(KEYS, kvn=1)},
          "level_13": {"security_level": 0x13}, "level_07": {"security_level": 0x37}, "no_keys": {"scp03_keys": None}}.get(case, {})
    report = power_on(tree, link, **kw)
    assert not report.ok and report.failure is reason and report.detail
    assert not report.changed and snapshot(tree) == before
    if reason is Reason.SECURITY_LEVEL:
        assert seen == []                                   # refused before any APDU


def test_a_card_without_pkcs15_removes_the_servers_it_installed(tree):
    """§8.1: servers no longer on the card MUST be removed; a card with no PKCS#15 application
    (6A82) holds none, so the accounts it installed go; a pushed account stays."""
    power_on(tree, card_link("A", "B"))
    install_account(tree, account("C"))
    report = power_on(tree, card_link("A", dm_bootstrap=None))
    assert report.failure is Reason.NO_PKCS15 and "6A82" in report.detail.upper().replace(" ", "")
    assert sorted((n.server_id, n.reason) for n in report.removed) == [("A", Reason.LEFT_CARD),
                                                                       ("B", Reason.LEFT_CARD)]
    assert find_account(tree, "A") is None and find_account(tree, "B") is None and find_account(tree, "C")
    assert not card_origin(tree)


def test_card_removed_and_a_tree_that_cannot_hold_accounts(tree):
    class Removed(InProcessLink):
        def _transmit_raw(self, apdu):
            raise CardAbsentError("no card in the reader")

    report = power_on(tree, Removed(None))
    assert report.failure is Reason.CARD_LINK and "no card" in report.detail
    tree.create("./DMAcc", "chr", "not an interior node")
    report = power_on(tree, card_link("A"))
    assert [(n.server_id, n.reason) for n in report.refused] == [("A", Reason.CONFLICT)] and not card_origin(tree)


def test_card_that_cannot_run_level_33_is_refused(tree, monkeypatch):
    monkeypatch.setattr(gp_app, "I_PARAM", 0x10)             # pseudo-random challenge, no R-MAC / R-ENC
    report = power_on(tree, card_link("A"))
    assert report.failure is Reason.SECURITY_LEVEL and find_account(tree, "A") is None
    report = power_on(tree, card_link("A"), security_level=0x03, required_level=0x03)   # a laxer policy
    assert report.installed == ("A",) and report.security_level == 0x03


def test_the_channel_is_really_secured_at_level_33(tree):
    seen = []
    report = power_on(tree, card_link("A", trace=lambda c, r, t: seen.append((c, r))))
    assert report.installed == ("A",)
    ext = next(i for i, (c, _) in enumerate(seen) if c[1] == 0x82)
    assert seen[ext][0][:3] == bytes.fromhex("848233")                  # EXTERNAL AUTHENTICATE, P1 = 33
    inside = [c for c, _ in seen[ext + 1:-1] if c[1] != 0xC0]           # up to the closing SELECT AID
    assert inside and all(c[0] & 0x04 for c in inside)                  # secure messaging bit: C-MAC
    responses = b"".join(r for _, r in seen)
    assert b"DMAcc" not in responses and b"spw-A" not in responses      # R-ENCRYPTION
    clear = []                                                          # the same card read in the clear
    power_on(DmTree(), card_link("A", trace=lambda c, r, t: clear.append((c, r))), scp03_keys=None,
             required_level=0)
    assert b"spw-A" in b"".join(r for _, r in clear)
    # C-DECRYPTION: each SELECT by FID carries 2 clear octets (EF_ODF is 50 31); inside the channel
    # the same SELECTs carry one padded AES block and the 8-octet C-MAC (GPC Amd D §6.2.6), never
    # the clear FID. (Looking for the 2 clear octets inside random ciphertext would fail 1 time in
    # about 700.)
    clear_fids = [c[5:7] for c, _ in clear if c[1] == 0xA4 and c[2] == 0x00 and c[4] == 2]
    secured_selects = [c for c in inside if c[1] == 0xA4 and c[2] == 0x00]
    in_application = clear_fids[clear_fids.index(bytes.fromhex("5031")):]     # EF_ODF and the files it names
    assert len(secured_selects) == len(in_application) >= 2
    assert all(c[4] == 16 + 8 and len(c) >= 5 + 24 for c in secured_selects)


class Tampering(InProcessLink):
    """A link that alters the channel's APDUs once it is open: ``what`` is command or response
    (over T=0 the wrapped response data comes back through GET RESPONSE)."""

    what = "response"
    is_open = False

    def _transmit_raw(self, apdu):
        secured = apdu[0] == 0x84 and apdu[1] != 0x82
        if secured and self.what == "command":
            apdu = apdu[:-2] + bytes([apdu[-2] ^ 1]) + apdu[-1:]
        r = bytearray(super()._transmit_raw(apdu))
        if self.is_open and self.what == "response" and len(r) > 2:
            r[0] ^= 1
        self.is_open = apdu[1] == 0x82 or (self.is_open and apdu[:3] != b"\x00\xa4\x04")
        return bytes(r)


@pytest.mark.parametrize("what", ["command", "response"])
def test_tampered_apdus_are_refused(tree, what):
    link = Tampering(make_card(replace(BASE, dm_bootstrap=syncml_xml.to_xml(document("A")))))
    link.what = what
    report = power_on(tree, link)
    assert report.failure is Reason.CHANNEL_INTEGRITY and find_account(tree, "A") is None


def _doc_without_server_id() -> bytes:
    doc = document("A")
    add = doc.find("SyncBody/Add")
    add.remove(item_at(doc, "./DMAcc/A/ServerID"))
    return syncml_xml.to_xml(doc)


def _doc_outside_dmacc() -> bytes:
    doc = document("A")
    doc.find("SyncBody/Add").append(E("Item", E("Target", E("LocURI", "./Con/x")), E("Data", "y")))
    return syncml_xml.to_xml(doc)


def _doc_duplicate_server() -> bytes:
    doc, other = document("A"), bootstrap_document(account("A"), "")
    for item in other.find("SyncBody/Add").iterfind("Item"):
        loc = item.find("Target/LocURI")
        loc.text = loc.text.replace("/DMAcc/A/", "/DMAcc/A2/")
    doc.find("SyncBody").append(other.find("SyncBody/Add"))
    return syncml_xml.to_xml(doc)


@pytest.mark.parametrize("raw", [
    b"<SyncML><SyncBody><Add>", b"<Other/>", b"\x03\x01\x6a\x00\x6d\x6c\x01", b"",
    b"<SyncML><SyncBody><Add><Item><Target><LocURI>./DMAcc/A/AAuthPref</LocURI></Target>"
    b"<Meta><Format>int</Format></Meta><Data>x</Data></Item></Add></SyncBody></SyncML>",
    b"<SyncML><SyncBody><Add><Item><Target><LocURI>./DMAcc/A/ServerID</LocURI></Target>"
    b"<Meta><Format>b64</Format></Meta><Data>QQ==</Data></Item></Add></SyncBody></SyncML>",
])
def test_malformed_documents(tree, raw):
    power_on(tree, card_link("B"))
    before = snapshot(tree)
    report = power_on(tree, card_link(raw=raw))
    assert report.failure is Reason.MALFORMED and snapshot(tree) == before


@pytest.mark.parametrize("make", [_doc_without_server_id, _doc_outside_dmacc, _doc_duplicate_server])
def test_malformed_accounts(tree, make):
    report = power_on(tree, card_link(raw=make()))
    assert report.failure is Reason.MALFORMED and find_account(tree, "A") is None


def test_decode_document_reads_both_forms():
    doc = document("A")
    assert syncml_xml.trees_equal(decode_document(b"\xef\xbb\xbf\n" + syncml_xml.to_xml(doc)), doc)
    assert syncml_xml.trees_equal(decode_document(wbxml.encode(doc) + b"\x00\xff"), doc)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.binary(min_size=1, max_size=80),
                 st.binary(max_size=40).map(lambda b: syncml_xml.to_xml(document("A"))[:60] + b)))
def test_random_card_contents_never_crash(raw):
    tree = DmTree()
    report = power_on(tree, card_link(raw=raw))
    assert report.failure is Reason.MALFORMED and tree.find("./DMAcc") is None
    assert report.to_dict()["failure"] == "malformed_bootstrap"
