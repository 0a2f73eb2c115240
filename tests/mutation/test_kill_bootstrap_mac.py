"""Issue 14: tests that kill surviving mutants of network/dm/bootstrap_mac.py (see .ci/mutation).

OMA-TS-DM_Security-V1_3 §5.10.2.3 (NETWORKID / USERPIN / USERPIN_NETWORKID shared secrets) and
§5.10.2.3.2 (HMAC-SHA1 over the WBXML bootstrap, the Push Content-Type ABNF)."""
import hashlib
import hmac

import pytest

from dmsim.base.errors import BootstrapVerificationError
from dmsim.network.dm.bootstrap_mac import (BOOTSTRAP_MEDIA_TYPE, bootstrap_key, bootstrap_mac, format_content_type,
                                            networkid_from_imsi, parse_content_type, verify_bootstrap)

BODY = bytes.fromhex("030b6a00") + b"bootstrap-wbxml"
IMSI = "001010123456789"


def _content_type(key_type: str, key: bytes) -> str:
    return f"{BOOTSTRAP_MEDIA_TYPE};{key_type};{hmac.new(key, BODY, hashlib.sha1).hexdigest().upper()}"


def test_networkid_bootstrap_verifies_with_the_device_imsi():
    """§5.10.2.3: NETWORKID is the shared secret the device already holds (the IMSI for GSM/UMTS);
    §5.10.2.3.1: the client MUST support it, so a bootstrap MACed under it verifies."""
    ct = _content_type("NETWORKID", networkid_from_imsi(IMSI))
    assert verify_bootstrap(ct, BODY, imsi=IMSI, userpin=None) == "NETWORKID"
    ct = _content_type("USERPIN_NETWORKID", b"1234:" + networkid_from_imsi(IMSI))
    assert verify_bootstrap(ct, BODY, imsi=IMSI, userpin="1234") == "USERPIN_NETWORKID"


def test_key_type_names_are_case_insensitive():
    """§5.10.2.3.2 ABNF: "NETWORKID" / "USERPIN" / "USERPIN_NETWORKID" are quoted strings, which
    RFC 5234 §2.3 matches case-insensitively: a lower-case key type is the same key type."""
    assert parse_content_type(_content_type("networkid", b"k"))[0] == "NETWORKID"
    ct = _content_type("userpin", b"1234")
    assert verify_bootstrap(ct, BODY, imsi=None, userpin="1234") == "USERPIN"
    assert format_content_type("userpin", "AB" * 20) == f"{BOOTSTRAP_MEDIA_TYPE};USERPIN;{'AB' * 20}"


def test_other_key_type_is_kept_as_sent():
    """§5.10.2.3.2 ABNF: Other_Key = 1*VCHAR, a non-standard key type, taken as it is (not
    folded to upper case like the three named ones)."""
    mac = "0123456789abcdef0123456789ABCDEF01234567"
    assert parse_content_type(f"{BOOTSTRAP_MEDIA_TYPE};x-Vendor-Key;{mac}") == ("x-Vendor-Key", mac.upper())
    assert format_content_type("x-Vendor-Key", mac).split(";")[1] == "x-Vendor-Key"


def test_shortest_imsi_is_accepted():
    """NETWORKID from the IMSI (TS 23.003 §2.2: MCC 3 digits, MNC 2, MSIN at least one: 6 digits)
    in the EF_IMSI layout of TS 31.102 §4.2.2 (parity nibble 1 for an even digit count)."""
    assert networkid_from_imsi("001011") == bytes([0x01, 0x10, 0x10, 0xF1])
    assert bootstrap_key("NETWORKID", imsi="001011") == bytes([0x01, 0x10, 0x10, 0xF1])
    ct = f"{BOOTSTRAP_MEDIA_TYPE};NETWORKID;{bootstrap_mac(networkid_from_imsi('001011'), BODY)}"
    assert verify_bootstrap(ct, BODY, imsi="001011", userpin=None) == "NETWORKID"


@pytest.mark.parametrize("call", [
    lambda: networkid_from_imsi("001010123456789\n"),
    lambda: bootstrap_key("USERPIN", userpin="1234\n"),
])
def test_a_trailing_newline_is_not_a_digit_or_a_pin_character(call):
    """§5.10.2.3: the IMSI is decimal digits and the PIN's octets are the key; a trailing newline
    is neither (a ``$`` regex would let it through, into the key)."""
    with pytest.raises(BootstrapVerificationError):
        call()
