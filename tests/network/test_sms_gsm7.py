"""The GSM 7-bit default alphabet and septet packing (TS 23.038 §6.1.2.1.1, §6.2.1)."""
import pytest

from dmsim.network.sms import gsm7
from dmsim.base.errors import ProtocolError


def test_table_has_128_septets_and_the_spec_landmarks():
    assert len(gsm7.DEFAULT) == 128
    assert (gsm7.DEFAULT[0x00], gsm7.DEFAULT[0x24], gsm7.DEFAULT[0x40], gsm7.DEFAULT[0x7F]) == ("@", "¤", "¡", "à")


def test_pack_is_the_spec_example():
    # TS 23.038 §6.1.2.1.1: "hellohello" packs to E8 32 9B FD 46 97 D9 EC 37
    septets = gsm7.encode_text("hellohello")
    assert gsm7.pack(septets).hex() == "e8329bfd4697d9ec37"
    assert gsm7.unpack(bytes.fromhex("e8329bfd4697d9ec37"), 10) == septets


def test_text_round_trip_with_the_extension_table():
    text = "Price: 5€ [x] {y} ~|^\\"
    septets = gsm7.encode_text(text)
    assert septets.count(gsm7.ESCAPE) == 9
    assert gsm7.decode_text(septets) == text


def test_receiver_tolerance_and_refusals():
    assert gsm7.decode_text(bytes([gsm7.ESCAPE, 0x41])) == "A"     # undefined extension: default table
    assert gsm7.decode_text(bytes([0x41, gsm7.ESCAPE])) == "A "    # trailing escape
    with pytest.raises(ProtocolError):
        gsm7.encode_text("日本")
    with pytest.raises(ProtocolError):
        gsm7.pack(b"\x80")
