"""Issue 14: tests that kill surviving mutants of network/dm/notification.py (see .ci/mutation).

Package #0 of a notification-initiated session (OMA-TS-DM_Security-V1_3 §5.7, whose digest
protects the trigger; the layout is OMA-TS-DM_Notification-V1_2 §6: version 10 bits, ui-mode 2,
initiator 1, future-use 27, session-id 16, server-identifier length 8, server identifier,
vendor-specific)."""
import pytest

from dmsim.base.errors import ProtocolError
from dmsim.network.dm import notification as n
from dmsim.network.sms import wsp_push

NONCE = bytes.fromhex("00ff7a3c0102feed")


def test_vendor_specific_body_is_carried_and_covered_by_the_digest():
    """DM_Notification §6: the trigger ends with the vendor-specific body; §5.7: the digest covers
    the whole trigger, so the body given to build_pkg0 is in the package and verifies."""
    pkg0 = n.build_pkg0(session_id=7, server_id="srv", password="pw", nonce=NONCE, vendor_specific=b"\x01vendor")
    parsed = n.parse_pkg0(pkg0)
    assert parsed.vendor_specific == b"\x01vendor" and pkg0.endswith(b"srv\x01vendor")
    assert n.verify_pkg0(parsed, "srv", "pw", NONCE)


def test_future_use_field_is_27_bits_between_initiator_and_session_id():
    """DM_Notification §6: future-use is the 27 bits after the initiator bit and before the
    16-bit session-id; a value set there leaves the other fields as they were."""
    value = (1 << 27) - 1 - 0x0A5A5A5
    trigger = n.build_trigger(session_id=0xBEEF, server_id="s", initiator=n.INITIATOR_CLIENT, future_use=value)
    word = int.from_bytes(trigger[:8], "big")
    assert (word >> 24) & ((1 << 27) - 1) == value and (word >> 51) & 1 == 0
    parsed = n.parse_pkg0(bytes(16) + trigger)
    assert (parsed.future_use, parsed.session_id, parsed.initiator, parsed.server_id) == (value, 0xBEEF, 0, "s")
    n.build_trigger(session_id=0, server_id="", future_use=(1 << 27) - 1)
    with pytest.raises(ProtocolError):
        n.build_trigger(session_id=0, server_id="", future_use=1 << 27)


def test_initiator_bit_is_not_part_of_future_use():
    """DM_Notification §6: a server-initiated package (initiator 1) with future-use 0 reads back
    future-use 0 and initiator 1."""
    parsed = n.parse_pkg0(n.build_pkg0(session_id=1, server_id="s", password="pw", nonce=NONCE,
                                       initiator=n.INITIATOR_SERVER))
    assert (parsed.initiator, parsed.future_use) == (1, 0)


def test_server_identifier_of_255_octets_fits_its_length_field():
    """DM_Notification §6: server-identifier length is one octet, so 255 octets fit (256 do not)."""
    sid = "s" * 255
    parsed = n.parse_pkg0(n.build_pkg0(session_id=1, server_id=sid, password="pw", nonce=NONCE))
    assert parsed.server_id == sid


def test_shortest_package_has_no_server_identifier_and_no_vendor_body():
    """DM_Notification §6: 16 octets of digest and the 8-octet header, server-identifier length
    0, is a complete package #0."""
    pkg0 = n.build_pkg0(session_id=0x0102, server_id="", password="pw", nonce=NONCE)
    assert len(pkg0) == n.DIGEST_LEN + n.HEADER_FIXED_LEN
    parsed = n.parse_pkg0(pkg0)
    assert (parsed.server_id, parsed.session_id, parsed.vendor_specific) == ("", 0x0102, b"")


def test_push_content_type_with_parameters_is_still_the_notification_type():
    """WSP Push carriage (DM_Notification §7, content type application/vnd.syncml.notification):
    a Content-Type with a parameter names the same media type."""
    pkg0 = n.build_pkg0(session_id=9, server_id="srv", password="pw", nonce=NONCE)
    pdu = wsp_push.encode_push(n.NOTIFICATION_CONTENT_TYPE + "; charset=utf-8", pkg0, 1)
    assert n.decode_push(pdu) == n.parse_pkg0(pkg0)
