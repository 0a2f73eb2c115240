"""Card profiles: YAML loading with exact error locations, defaults, and generated fleets."""
from pathlib import Path

import pytest

from dmsim.cards.profile import (CardProfile, default_iccid, describe_profile_schema, generate_profiles,
                                 load_profile, luhn_ok, parse_profile, pin_bytes)
from dmsim.cards.uicc import Uicc
from dmsim.base.errors import ScenarioError

PROFILES = Path(__file__).resolve().parents[2] / "cards" / "profiles"
MINIMAL = 'imsi: "001010123456789"\nk: "000102030405060708090A0B0C0D0E0F"\nopc: "0F0E0D0C0B0A09080706050403020100"\n'


def error(text: str) -> ScenarioError:
    with pytest.raises(ScenarioError) as e:
        parse_profile(text, "card.yaml")
    return e.value


def test_defaults():
    p = parse_profile(MINIMAL)
    assert p.iccid == default_iccid("001010123456789") and len(p.iccid) == 19 and luhn_ok(p.iccid)
    assert p.impi == "001010123456789@ims.mnc001.mcc001.3gppnetwork.org"
    assert p.k == bytes(range(16)) and p.op is None and p.amf == b"\x80\x00" and p.sqn == bytes(6)
    assert (p.pin1, p.puk1, p.pin1_enabled, p.adm1) == ("1234", "12345678", True, pin_bytes("88888888"))
    assert p.scp03 is None and p.ota == () and p.dm_bootstrap is None


def test_example_profiles_load_and_make_cards():
    for path in sorted(PROFILES.glob("*.yaml")):
        p = load_profile(path)
        assert isinstance(p, CardProfile) and p.source == str(path)
        assert Uicc(p).process(bytes.fromhex("00A4000C023F00")) == b"\x90\x00"
    ex = load_profile(PROFILES / "example.yaml")
    assert ex.scp03.kvn == 0x30 and len(ex.scp03.enc) == 16
    assert ex.ota[0].tar == bytes.fromhex("B00010") and ex.ota[0].counter == bytes(5)
    assert ex.dm_bootstrap.startswith(b"<SyncML")


def test_mnc_length_and_explicit_values():
    p = parse_profile('imsi: "310410123456789"\nmnc_length: 3\nk: "' + "11" * 16 + '"\nop: "' + "22" * 16
                      + '"\nimpi: "user@example.org"\nadm1: "0123456789ABCDEF"\ndm_bootstrap: "hex:C0FFEE"\n')
    assert p.op == b"\x22" * 16 and p.opc is None and p.impi == "user@example.org"
    assert p.adm1 == bytes.fromhex("0123456789ABCDEF") and p.dm_bootstrap == b"\xc0\xff\xee"


@pytest.mark.parametrize("text, where, path, words", [
    ('k: "' + "00" * 16 + '"\nopc: "' + "00" * 16 + '"\n', "card.yaml:1", "imsi", "missing required key 'imsi'"),
    (MINIMAL + 'op: "' + "00" * 16 + '"\n', "card.yaml:4", "op", "not both"),
    ('imsi: "001010123456789"\nk: "' + "00" * 16 + '"\n', "card.yaml:1", "opc", "missing required key 'opc'"),
    (MINIMAL.replace('"000102030405060708090A0B0C0D0E0F"', '"0001"'), "card.yaml:2", "k", "does not match"),
    (MINIMAL.replace('"001010123456789"', "1234"), "card.yaml:1", "imsi", "put it in quotes"),
    (MINIMAL + "pin1: 12ab\n", "card.yaml:4", "pin1", "does not match"),
    (MINIMAL + "scp03:\n  kvn: 0x30\n  enc: \"" + "00" * 16 + "\"\n  mac: \"00\"\n  dek: \"" + "00" * 16 + "\"\n",
     "card.yaml:7", "scp03.mac", "does not match"),
    (MINIMAL + "ota:\n  - tar: \"B00010\"\n    kic_key: \"" + "00" * 16 + "\"\n    kid_key: \"" + "00" * 16
     + "\"\n    spi: 1\n", "card.yaml:8", "ota.0.spi", "unknown key 'spi'"),
    (MINIMAL + 'iccid: "8999010101234567890"\n', "card.yaml:4", "iccid", "Luhn"),
    (MINIMAL + 'dm_bootstrap: "hex:ABC"\n', "card.yaml:4", "dm_bootstrap", "does not match"),
    (MINIMAL + "mnc_length: 4\n", "card.yaml:4", "mnc_length", "out of range"),
    (MINIMAL + "imsi: \"1\"\n", "card.yaml:4", "imsi", "duplicate key"),
    ("- 1\n- 2\n", "card.yaml:1", "", "a card profile is a mapping"),
    ("imsi: [\n", "card.yaml:2", "", "invalid YAML"),
])
def test_validation_errors_name_line_and_key(text, where, path, words):
    e = error(text)
    assert e.where == where and e.path == path and words in str(e), str(e)


def test_load_profile_errors(tmp_path):
    with pytest.raises(ScenarioError, match="cannot read"):
        load_profile(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"imsi: \xff\n")
    with pytest.raises(ScenarioError, match="not UTF-8"):
        load_profile(bad)


def test_generate_profiles_distinct_and_reproducible():
    fleet = generate_profiles(7, 500)
    assert len({p.imsi for p in fleet}) == 500 and len({p.iccid for p in fleet}) == 500
    assert len({p.k for p in fleet}) == 500 and all(luhn_ok(p.iccid) for p in fleet)
    assert generate_profiles(7, 500) == fleet and generate_profiles(8, 3) != fleet[:3]
    assert all(p.imsi.startswith("00101") and len(p.imsi) == 15 for p in fleet)
    template = parse_profile(MINIMAL + 'dm_bootstrap: "doc"\npin1: "0000"\n')
    copies = generate_profiles(1, 2, template=template, mcc_mnc="310410")
    assert all(c.dm_bootstrap == b"doc" and c.pin1 == "0000" and c.mnc_length == 3 for c in copies)
    assert copies[0].impi.endswith("@ims.mnc410.mcc310.3gppnetwork.org") and copies[0].op is None
    with pytest.raises(ScenarioError):
        generate_profiles(1, 1, mcc_mnc="1")


def test_describe_lists_every_key():
    text = describe_profile_schema()
    for key in ("imsi", "k", "opc", "op", "scp03", "ota", "dm_bootstrap", "kic_key", "counter"):
        assert f"{key}:" in text
