"""Issue 18: tests that kill surviving mutants of network/lwm2m/sms_security.py (see .ci/mutation).

Seed 004 §7.3 and D.1.2 (the SMS binding's secured packets), ETSI TS 102 225 §5.1.1-§5.1.3
(SPI, KIc and KID codings, counter), 3GPP TS 31.115 §4.2 (command packet layout)."""
import pytest

from dmsim.base.errors import ProtocolError
from dmsim.cards.scp80 import CNTR_MAX
from dmsim.network.lwm2m.sms_security import (
    Discarded, Reason, SmsBindingKeys, SmsKeyParameters, SmsSecurityError, Unprotected, check_policy,
    counter_verdict, max_data_length, protect, unprotect, violations)

h = bytes.fromhex
TAR = h("bfff10")
AES = SmsKeyParameters(0x22, 0x22, 0x16, TAR)
AES_KEYS = SmsBindingKeys(bytes(range(16)), bytes(range(16, 32)))
TDES = SmsKeyParameters(0x39, 0x39, 0x16, TAR)
COAP = h("4401a1b2c3d4e5f6b2726411283d")


def test_every_octet_value_is_a_resource_field_and_256_is_not():
    """D.1.2: KIc, KID and SPI are octets, 0xFF included (a proprietary KIc/KID coding the policy
    refuses by rule, not a malformed resource); 256 and -1 are no octet, named in the error."""
    params = SmsKeyParameters.decode(h("ffff16bfff10"))
    assert (params.kic, params.kid, params.spi) == (0xFF, 0xFF, 0x16)
    assert [r for r, _ in violations(params, AES_KEYS)] == [Reason.KIC_ALGORITHM, Reason.KID_ALGORITHM]
    for field, args in (("kic", (0x100, 0x22, 0x16)), ("kid", (0x22, -1, 0x16)), ("spi", (0x22, 0x22, 0x100))):
        with pytest.raises(ProtocolError, match=rf"^{field} -?\d+ is not an octet$"):
            SmsKeyParameters(*args, TAR)


def test_resources_keep_their_own_copy_of_mutable_input():
    """A resource built from a caller's buffer is immutable: changing the buffer afterwards
    changes neither the TAR nor the keys the binding protects and checks packets with."""
    tar, kic_key, kid_key = bytearray(TAR), bytearray(range(16)), bytearray(range(16, 32))
    params, keys = SmsKeyParameters(0x22, 0x22, 0x16, tar), SmsBindingKeys(kic_key, kid_key)
    packet = protect(params, keys, 1, COAP)
    tar[2] ^= 1
    kic_key[0] ^= 1
    kid_key[0] ^= 1
    assert (type(params.tar), type(keys.kic_key), type(keys.kid_key)) == (bytes, bytes, bytes)
    assert params.tar == TAR and keys == AES_KEYS and hash(keys) == hash(AES_KEYS)
    assert unprotect(params, keys, 0, packet) == Unprotected(COAP, 1)


def test_violations_name_the_resource_part_and_algorithm():
    """The refusal says which of KIc / KID breaks the rule, and for a key of the wrong length
    which algorithm it was checked for: AES-CBC for KIc (§5.1.2), AES-CMAC for KID (§5.1.3.1)."""
    assert violations(SmsKeyParameters(0x21, 0x25, 0x16, TAR), AES_KEYS) == [
        (Reason.SINGLE_DES, "KIc 0x21"), (Reason.TWO_KEY_3DES, "KID 0x25")]
    assert violations(AES, SmsBindingKeys(bytes(15), bytes(20))) == [
        (Reason.KEY_LENGTH, "KIc: AES-CBC key of 15 octets"),
        (Reason.KEY_LENGTH, "KID: AES-CMAC-64 key of 20 octets")]
    same = bytes(range(8)) * 3
    assert violations(TDES, SmsBindingKeys(same, same)) == [
        (Reason.TDES_KEYS_NOT_DISTINCT, "KIc: the three DES keys are not all different"),
        (Reason.TDES_KEYS_NOT_DISTINCT, "KID: the three DES keys are not all different")]


def test_policy_error_carries_reason_and_detail():
    with pytest.raises(SmsSecurityError) as info:
        check_policy(SmsKeyParameters(0x21, 0x22, 0x16, TAR), AES_KEYS)
    assert info.value.reason is Reason.SINGLE_DES and info.value.detail == "KIc 0x21"
    assert str(info.value) == "SMS binding security (single_des): KIc 0x21"


def _with_octet(packet: bytes, index: int, value: int) -> bytes:
    return packet[:index] + bytes([value]) + packet[index + 1:]


def test_received_des_ecb_kic_is_single_des_but_kid_0xd_is_a_mismatch():
    """TS 102 225 §5.1.2: KIc low nibble D is DES in ECB mode, single DES; §5.1.3.1: for KID
    that coding is reserved, so a KID 0x1D is only a mismatch, not a single-DES packet."""
    packet = protect(AES, AES_KEYS, 1, COAP)
    assert unprotect(AES, AES_KEYS, 0, _with_octet(packet, 5, 0x1D)).reason is Reason.SINGLE_DES
    assert unprotect(AES, AES_KEYS, 0, _with_octet(packet, 6, 0x1D)).reason is Reason.KID_MISMATCH
    assert unprotect(AES, AES_KEYS, 0, _with_octet(packet, 6, 0x11)).reason is Reason.SINGLE_DES


def test_discard_details_come_from_the_codec():
    """A discarded packet's detail says what failed (the codec's message), for the run's log."""
    packet = protect(AES, AES_KEYS, 1, COAP)
    assert unprotect(AES, AES_KEYS, 0, packet[:-1] + bytes([packet[-1] ^ 1])) == Discarded(
        Reason.BAD_MAC, "AES-CMAC-64 does not verify")
    truncated = unprotect(AES, AES_KEYS, 0, packet[:5])
    assert truncated.reason is Reason.MALFORMED and "scp80" in truncated.detail
    assert "packet truncated" in truncated.detail


def test_counter_verdict_details():
    """TS 102 225 §5.1.1: "higher than the value in the RE"; a counter at CNTR_MAX blocks."""
    assert counter_verdict(5, 5, b"") == Discarded(Reason.COUNTER_REPLAYED, "counter 5, stored 5")
    assert counter_verdict(4, 5, b"") == Discarded(Reason.COUNTER_LOWER, "counter 4, stored 5")
    assert counter_verdict(CNTR_MAX, CNTR_MAX, b"") == Discarded(
        Reason.COUNTER_BLOCKED, f"stored counter {CNTR_MAX} at its maximum")


@pytest.mark.parametrize("params", [AES, TDES])
def test_max_data_length_boundary(params):
    """A 26-octet packet holds one 16-octet ciphered part: counter part 6 + CC 8 + 2 data
    octets; 25 octets hold no data at all (0, never a negative or a 1 that does not fit)."""
    keys = AES_KEYS if params is AES else SmsBindingKeys(h("0123456789abcdef23456789abcdef01456789abcdef0123"),
                                                          h("fedcba9876543210dcba9876543210fe98765432fedcba10"))
    assert [max_data_length(params, room) for room in (0, 10, 25, 26)] == [0, 0, 0, 2]
    assert len(protect(params, keys, 1, b"ab")) == 26
    assert len(protect(params, keys, 1, b"abc")) > 26
