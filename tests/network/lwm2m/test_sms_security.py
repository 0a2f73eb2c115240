"""LwM2M SMS payload security (seed 004 §7.3, D.1.2): resources, rules, protect/unprotect, vectors."""
import dataclasses

import pytest
from conftest import load_vectors
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC
from hypothesis import given, settings
from hypothesis import strategies as st

from dmsim.base.errors import DecodeError, ProtocolError
from dmsim.cards.scp80 import CNTR_MAX, Keyset, encode_command
from dmsim.cards.scp80_crypto import checksum_for, cipher_for
from dmsim.network.lwm2m.sms_security import (
    Discarded, Reason, SmsBindingKeys, SmsKeyParameters, SmsSecurityError, Unprotected,
    check_policy, max_data_length, protect, unprotect, violations)

h = bytes.fromhex
TAR = h("bfff10")
AES_PARAMS = SmsKeyParameters(0x22, 0x22, 0x16, TAR)
AES_KEYS = SmsBindingKeys(h("000102030405060708090a0b0c0d0e0f"), h("101112131415161718191a1b1c1d1e1f"))
AES192_KEYS = SmsBindingKeys(bytes(range(24)), bytes(range(24, 48)))
TDES_PARAMS = SmsKeyParameters(0x39, 0x39, 0x16, TAR)
TDES_KEYS = SmsBindingKeys(h("0123456789abcdef23456789abcdef01456789abcdef0123"),
                           h("fedcba9876543210dcba9876543210fe98765432fedcba10"))
PAIRS = {"aes128": (AES_PARAMS, AES_KEYS), "aes192": (AES_PARAMS, AES192_KEYS),
         "3des3": (TDES_PARAMS, TDES_KEYS)}
COAP = h("4401a1b2c3d4e5f6b2726411283d")  # CON POST, token, Uri-Path "rd"


def _reasons(params, keys):
    return [reason for reason, _ in violations(params, keys)]


# --- the resources (seed 004 D.1.2) ---------------------------------------------------------

def test_key_parameters_resource_layout():
    value = h("2239 16 bfff10".replace(" ", ""))
    params = SmsKeyParameters.decode(value)
    assert (params.kic, params.kid, params.spi, params.tar) == (0x22, 0x39, 0x16, TAR)
    assert params.encode() == value and params.spi_octets == h("1600")


@pytest.mark.parametrize("length", [0, 5, 7, 8])
def test_key_parameters_refuse_other_lengths(length):
    with pytest.raises(DecodeError) as info:
        SmsKeyParameters.decode(bytes(length))
    assert info.value.what == "sms-key-parameters"


def test_key_parameters_refuse_bad_fields():
    with pytest.raises(ProtocolError):
        SmsKeyParameters(0x100, 0x22, 0x16, TAR)
    with pytest.raises(ProtocolError):
        SmsKeyParameters(0x22, 0x22, 0x16, TAR[:2])


@pytest.mark.parametrize("length", [32, 48])
def test_secret_keys_resource_is_kic_then_kid(length):
    value = bytes(range(length))
    keys = SmsBindingKeys.decode(value)
    assert keys.kic_key == value[:length // 2] and keys.kid_key == value[length // 2:]
    assert keys.encode() == value
    assert value.hex() not in repr(keys)  # secrets stay out of logs


@pytest.mark.parametrize("length", [0, 16, 31, 33, 40, 47, 49, 64])
def test_secret_keys_refuse_other_lengths(length):
    with pytest.raises(DecodeError) as info:
        SmsBindingKeys.decode(bytes(length))
    assert info.value.what == "sms-secret-keys"


def test_secret_keys_encode_refuses_what_the_resource_cannot_hold():
    for kic, kid in ((bytes(16), bytes(24)), (bytes(32), bytes(32)), (bytes(8), bytes(8))):
        with pytest.raises(ProtocolError):
            SmsBindingKeys(kic, kid).encode()


# --- the rules of seed 004 §7.3 -------------------------------------------------------------

@pytest.mark.parametrize("name", PAIRS)
def test_allowed_pairs_break_no_rule(name):
    params, keys = PAIRS[name]
    assert violations(params, keys) == []
    check_policy(params, keys)


def _tdes(k1: bytes, k2: bytes, k3: bytes) -> SmsBindingKeys:
    return SmsBindingKeys(k1 + k2 + k3, TDES_KEYS.kid_key)


def _p(**changes) -> SmsKeyParameters:
    return dataclasses.replace(AES_PARAMS, **changes)


K1, K2, K3 = h("0123456789abcdef"), h("23456789abcdef01"), h("456789abcdef0123")
BROKEN = {
    "kic-single-des-cbc": (_p(kic=0x11), AES_KEYS, Reason.SINGLE_DES),
    "kic-single-des-ecb": (_p(kic=0x1D), AES_KEYS, Reason.SINGLE_DES),
    "kid-single-des": (_p(kid=0x11), AES_KEYS, Reason.SINGLE_DES),
    "kic-3des-2key": (_p(kic=0x35, kid=0x39), TDES_KEYS, Reason.TWO_KEY_3DES),
    "kid-3des-2key": (_p(kic=0x39, kid=0x35), TDES_KEYS, Reason.TWO_KEY_3DES),
    "kic-aes-not-cbc": (_p(kic=0x26), AES_KEYS, Reason.AES_MODE),
    "kid-aes-not-cmac": (_p(kid=0x2A), AES_KEYS, Reason.AES_MODE),
    "kic-implicit": (_p(kic=0x20), AES_KEYS, Reason.KIC_ALGORITHM),
    "kic-proprietary": (_p(kic=0x23), AES_KEYS, Reason.KIC_ALGORITHM),
    "kid-implicit": (_p(kid=0x20), AES_KEYS, Reason.KID_ALGORITHM),
    "kid-des-reserved": (_p(kid=0x1D), AES_KEYS, Reason.KID_ALGORITHM),
    "3des-with-a-16-octet-key": (TDES_PARAMS, SmsBindingKeys(K1 + K2, TDES_KEYS.kid_key),
                                 Reason.KEY_LENGTH),
    "aes-with-a-20-octet-cmac-key": (AES_PARAMS, SmsBindingKeys(AES_KEYS.kic_key, bytes(20)),
                                     Reason.KEY_LENGTH),
    "3des-k1-k2": (TDES_PARAMS, _tdes(K1, K1, K3), Reason.TDES_KEYS_NOT_DISTINCT),
    "3des-k2-k3": (TDES_PARAMS, _tdes(K1, K2, K2), Reason.TDES_KEYS_NOT_DISTINCT),
    "3des-k1-k3": (TDES_PARAMS, _tdes(K1, K2, K1), Reason.TDES_KEYS_NOT_DISTINCT),
    "3des-parity-only": (TDES_PARAMS, _tdes(K1, bytes(b ^ 1 for b in K1), K3),
                         Reason.TDES_KEYS_NOT_DISTINCT),
    "3des-kid-k1-k2": (TDES_PARAMS, SmsBindingKeys(TDES_KEYS.kic_key, K2 + K2 + K3),
                       Reason.TDES_KEYS_NOT_DISTINCT),
    "spi-no-counter": (_p(spi=0x06), AES_KEYS, Reason.SPI_COUNTER),
    "spi-counter-one-higher": (_p(spi=0x1E), AES_KEYS, Reason.SPI_COUNTER),
    "spi-counter-available": (_p(spi=0x0E), AES_KEYS, Reason.SPI_COUNTER),
    "spi-not-ciphered": (_p(spi=0x12), AES_KEYS, Reason.SPI_CIPHERING),
    "spi-rc": (_p(spi=0x15), AES_KEYS, Reason.SPI_INTEGRITY),
    "spi-no-integrity": (_p(spi=0x14), AES_KEYS, Reason.SPI_INTEGRITY),
    "spi-reserved": (_p(spi=0x36), AES_KEYS, Reason.SPI_RESERVED),
    "tar-below": (_p(tar=h("bffeff")), AES_KEYS, Reason.TAR_RANGE),
    "tar-above": (_p(tar=h("c00000")), AES_KEYS, Reason.TAR_RANGE),
    "tar-ota": (_p(tar=h("b00011")), AES_KEYS, Reason.TAR_RANGE),
}


@pytest.mark.parametrize("name", BROKEN)
def test_each_broken_rule_is_refused(name):
    params, keys, reason = BROKEN[name]
    assert _reasons(params, keys) == [reason]
    with pytest.raises(SmsSecurityError) as info:
        check_policy(params, keys)
    assert info.value.reason == reason
    with pytest.raises(SmsSecurityError):
        protect(params, keys, 1, COAP)
    with pytest.raises(SmsSecurityError):  # a local misconfiguration, not a packet's fault
        unprotect(params, keys, 0, protect(AES_PARAMS, AES_KEYS, 1, COAP))


@pytest.mark.parametrize("tar", ["bfff00", "bfff80", "bfffff"])
def test_tar_range_bounds_are_allowed(tar):
    assert violations(dataclasses.replace(AES_PARAMS, tar=h(tar)), AES_KEYS) == []


def test_every_broken_rule_is_listed():
    params = SmsKeyParameters(0x11, 0x35, 0x00, h("000000"))
    assert _reasons(params, AES_KEYS) == [Reason.SINGLE_DES, Reason.TWO_KEY_3DES, Reason.SPI_INTEGRITY,
                                          Reason.SPI_CIPHERING, Reason.SPI_COUNTER, Reason.TAR_RANGE]


@pytest.mark.parametrize("vector", load_vectors("cards", "scp80_packet"), ids=lambda v: v["id"])
def test_the_published_ota_keysets_are_refused_for_lwm2m(vector):
    """The pySim vectors (SIM OTA, TS 102 225) use a TAR outside BF FF xx and an SPI without a
    counter; the 3DES ones the 2-key variant."""
    inputs = vector["inputs"]
    params = SmsKeyParameters(int(inputs["kic_byte"], 16), int(inputs["kid_byte"], 16),
                              h(inputs["spi"])[0], h(inputs["tar"]))
    found = set(_reasons(params, SmsBindingKeys(h(inputs["kic"]), h(inputs["kid"]))))
    assert {Reason.TAR_RANGE, Reason.SPI_COUNTER} <= found
    assert (Reason.TWO_KEY_3DES in found) == (inputs["kic_byte"] == "35")


# --- published vectors of the algorithms the rules allow -------------------------------------

RFC4493_KEY = h("2b7e151628aed2a6abf7158809cf4f3c")
NIST_M = h("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
           "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710")


@pytest.mark.parametrize("length, mac", [
    (0, "bb1d6929e95937287fa37d129b756746"), (16, "070a16b46b4d4144f79bdd9dd04a287c"),
    (40, "dfa66747de9ae63030ca32611497c827"), (64, "51f0bebf7e3b9d92fc49741779363cfe")])
def test_aes_cmac_rfc4493_examples(length, mac):
    """RFC 4493 §4 (NIST SP 800-38B D.1): the KID 0x?2 checksum is the CMAC's first 8 octets."""
    assert checksum_for(AES_PARAMS.kid, redundancy=False).compute(RFC4493_KEY, NIST_M[:length]) == h(mac)[:8]


def _fold_iv(iv: bytes, plaintext: bytes) -> bytes:
    """Return the plaintext whose zero-ICV CBC encryption equals ``plaintext``'s under ``iv``."""
    return bytes(a ^ b for a, b in zip(iv, plaintext)) + plaintext[len(iv):]


def test_aes_cbc_sp800_38a_f21():
    """NIST SP 800-38A F.2.1 CBC-AES128.Encrypt through the KIc 0x?2 cipher (zero ICV, IV folded)."""
    ciphertext = h("7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b2"
                   "73bed6b8e3c1743b7116e69e222295163ff1caa1681fac09120eca307586e1a7")
    aes = cipher_for(AES_PARAMS.kic)
    folded = _fold_iv(h("000102030405060708090a0b0c0d0e0f"), NIST_M)
    assert aes.encrypt(RFC4493_KEY, folded) == ciphertext
    assert aes.decrypt(RFC4493_KEY, ciphertext) == folded


def test_3des_3key_sp800_67_example():
    """NIST SP 800-67 Rev. 1 appendix B example (three keys, ECB): as CBC with zero ICV, each
    plaintext block XORed with the previous ciphertext block gives the same ciphertext; the
    3DES CBC-MAC (KID 0x?9) is then its last block."""
    key = K1 + K2 + K3
    plain = [b"The qufc", b"k brown ", b"fox jump"]
    expected = [h("a826fd8ce53b855f"), h("cce21c8112256fe6"), h("68d5c05dd9b6b900")]
    chained = plain[0] + b"".join(bytes(a ^ b for a, b in zip(p, c))
                                  for p, c in zip(plain[1:], expected))
    assert cipher_for(TDES_PARAMS.kic).encrypt(key, chained) == b"".join(expected)
    assert checksum_for(TDES_PARAMS.kid, redundancy=False).compute(key, chained) == expected[-1]
    assert violations(TDES_PARAMS, SmsBindingKeys(key, TDES_KEYS.kid_key)) == []


# --- protect / unprotect --------------------------------------------------------------------

@pytest.mark.parametrize("name", PAIRS)
@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 98, 200])
def test_round_trip(name, size):
    params, keys = PAIRS[name]
    data = bytes(range(size))
    packet = protect(params, keys, 7, data)
    assert packet[3:10] == params.spi_octets + bytes([params.kic, params.kid]) + params.tar
    assert unprotect(params, keys, 6, packet) == Unprotected(data, 7)
    assert unprotect(params, keys, 0, packet) == Unprotected(data, 7)


def _independent_open(cipher, mac, block: int, params, keys, packet: bytes) -> bytes:
    """Decipher and check a command packet with cryptography directly (TS 102 225 §5.1)."""
    header, body = packet[:10], packet[10:]
    dec = Cipher(cipher(keys.kic_key), modes.CBC(bytes(block))).decryptor()
    plain = dec.update(body) + dec.finalize()
    cntr, pcntr, cc, padded = plain[:5], plain[5], plain[6:14], plain[14:]
    assert int.from_bytes(packet[:2], "big") == len(packet) - 2 and packet[2] == 21
    assert mac(keys.kid_key, header + cntr + bytes([pcntr]) + padded) == cc
    assert padded[len(padded) - pcntr:] == bytes(pcntr) and len(plain) % block == 0
    return padded[:len(padded) - pcntr]


def _cmac8(key, data):
    mac = CMAC(algorithms.AES(key))
    mac.update(data)
    return mac.finalize()[:8]


def _cbc_mac_3des(key, data):
    enc = Cipher(TripleDES(key), modes.CBC(bytes(8))).encryptor()
    return (enc.update(data + bytes(-len(data) % 8)) + enc.finalize())[-8:]


@pytest.mark.parametrize("name, cipher, mac, block", [
    ("aes128", algorithms.AES, _cmac8, 16), ("3des3", TripleDES, _cbc_mac_3des, 8)])
def test_protect_matches_an_independent_reading(name, cipher, mac, block):
    params, keys = PAIRS[name]
    packet = protect(params, keys, 0x0102030405, COAP)
    assert _independent_open(cipher, mac, block, params, keys, packet) == COAP


def test_counter_must_be_higher():
    packet = protect(AES_PARAMS, AES_KEYS, 9, COAP)
    assert unprotect(AES_PARAMS, AES_KEYS, 8, packet) == Unprotected(COAP, 9)
    assert unprotect(AES_PARAMS, AES_KEYS, 2, packet) == Unprotected(COAP, 9)  # gaps are fine
    assert unprotect(AES_PARAMS, AES_KEYS, 9, packet).reason == Reason.COUNTER_REPLAYED
    assert unprotect(AES_PARAMS, AES_KEYS, 10, packet).reason == Reason.COUNTER_LOWER
    top = protect(AES_PARAMS, AES_KEYS, CNTR_MAX, COAP)
    assert unprotect(AES_PARAMS, AES_KEYS, CNTR_MAX, top).reason == Reason.COUNTER_BLOCKED


def test_only_a_verified_packet_gives_a_counter():
    """The caller's RE moves only with an Unprotected; a forged high counter gives none."""
    stored = 0
    for counter in (1, 5, 5, 3, 6):
        result = unprotect(AES_PARAMS, AES_KEYS, stored, protect(AES_PARAMS, AES_KEYS, counter, COAP))
        if isinstance(result, Unprotected):
            stored = result.counter
    assert stored == 6
    forged = bytearray(protect(AES_PARAMS, AES_KEYS, 1000, COAP))
    forged[-1] ^= 1
    assert isinstance(unprotect(AES_PARAMS, AES_KEYS, stored, bytes(forged)), Discarded)


# Where a flipped bit lands -> the verdict (CPL, CHL, SPI, SPI 2 under the CC, KIc, KID, TAR, rest)
REGIONS = [(0, {Reason.MALFORMED}), (1, {Reason.MALFORMED}), (2, {Reason.MALFORMED}),
           (3, {Reason.SPI_MISMATCH}), (4, {Reason.BAD_MAC}),
           (5, {Reason.KIC_MISMATCH, Reason.SINGLE_DES, Reason.TWO_KEY_3DES}),
           (6, {Reason.KID_MISMATCH, Reason.SINGLE_DES, Reason.TWO_KEY_3DES}),
           (7, {Reason.TAR_MISMATCH}), (8, {Reason.TAR_MISMATCH}), (9, {Reason.TAR_MISMATCH})]


@pytest.mark.parametrize("name", ["aes128", "3des3"])
@pytest.mark.parametrize("bit", [0x01, 0x80])
def test_a_tampered_octet_anywhere_is_discarded(name, bit):
    params, keys = PAIRS[name]
    packet = protect(params, keys, 4, COAP)
    expected = dict(REGIONS)
    for i in range(len(packet)):
        tampered = bytearray(packet)
        tampered[i] ^= bit
        result = unprotect(params, keys, 0, bytes(tampered))
        assert isinstance(result, Discarded), i
        assert result.reason in expected.get(i, {Reason.BAD_MAC, Reason.CIPHERING}), (i, result)


@pytest.mark.parametrize("name", ["aes128", "3des3"])
def test_truncated_packets_are_discarded(name):
    params, keys = PAIRS[name]
    packet = protect(params, keys, 4, COAP)
    for cut in range(len(packet)):
        assert unprotect(params, keys, 0, packet[:cut]).reason == Reason.MALFORMED
        framed = (cut - 2).to_bytes(2, "big") + packet[2:cut] if cut >= 2 else packet[:cut]
        result = unprotect(params, keys, 0, framed)  # CPL made to fit the cut
        assert isinstance(result, Discarded)
        assert result.reason in (Reason.MALFORMED, Reason.CIPHERING, Reason.BAD_MAC)


def _codec_packet(kic: int, kid: int, kic_key: bytes, kid_key: bytes, *, spi=h("1600"), tar=TAR):
    """A packet an attacker builds with the shared codec, outside the policy layer."""
    return encode_command(spi, kic, kid, tar, 50, COAP, Keyset(kic, kid, kic_key, kid_key))


@pytest.mark.parametrize("packet, reason", [
    (_codec_packet(0x11, 0x11, K1, K2), Reason.SINGLE_DES),
    (_codec_packet(0x22, 0x11, AES_KEYS.kic_key, K2), Reason.SINGLE_DES),
    (_codec_packet(0x35, 0x35, K1 + K2, K2 + K3), Reason.TWO_KEY_3DES),
    (_codec_packet(0x32, 0x22, AES_KEYS.kic_key, AES_KEYS.kid_key), Reason.KIC_MISMATCH),
    (_codec_packet(0x22, 0x32, AES_KEYS.kic_key, AES_KEYS.kid_key), Reason.KID_MISMATCH),
    (_codec_packet(0x39, 0x39, TDES_KEYS.kic_key, TDES_KEYS.kid_key), Reason.KIC_MISMATCH),
    (_codec_packet(0x22, 0x22, AES_KEYS.kic_key, AES_KEYS.kid_key, tar=h("bfff11")),
     Reason.TAR_MISMATCH),
    (_codec_packet(0x22, 0x22, AES_KEYS.kic_key, AES_KEYS.kid_key, tar=h("b00011")),
     Reason.TAR_MISMATCH),
    (_codec_packet(0x22, 0x22, AES_KEYS.kic_key, AES_KEYS.kid_key, spi=h("0200")),
     Reason.SPI_MISMATCH),
    (_codec_packet(0x22, 0x22, AES_KEYS.kic_key, AES_KEYS.kid_key, spi=h("1e00")),
     Reason.SPI_MISMATCH),
    (_codec_packet(0x22, 0x22, AES_KEYS.kid_key, AES_KEYS.kid_key), Reason.BAD_MAC),
    (_codec_packet(0x22, 0x22, AES_KEYS.kic_key, AES_KEYS.kic_key), Reason.BAD_MAC),
], ids=["des", "des-kid", "3des2", "kic-version", "kid-version", "3des-for-aes", "tar-other",
        "tar-ota", "spi-plain", "spi-one-higher", "wrong-kic-key", "wrong-kid-key"])
def test_unexpected_parameters_or_keys_are_discarded(packet, reason):
    assert unprotect(AES_PARAMS, AES_KEYS, 0, packet).reason == reason


def test_a_packet_asking_for_a_por_still_verifies():
    """The second SPI octet is not a stored parameter: it is covered by the CC and ignored."""
    packet = _codec_packet(0x22, 0x22, AES_KEYS.kic_key, AES_KEYS.kid_key, spi=h("1621"))
    assert unprotect(AES_PARAMS, AES_KEYS, 0, packet) == Unprotected(COAP, 50)


def test_max_data_length():
    assert max_data_length(AES_PARAMS, 137) == 98 and max_data_length(TDES_PARAMS, 137) == 106
    assert len(protect(AES_PARAMS, AES_KEYS, 1, bytes(98))) == 10 + 112
    assert len(protect(AES_PARAMS, AES_KEYS, 1, bytes(99))) > 137
    assert len(protect(TDES_PARAMS, TDES_KEYS, 1, bytes(106))) == 10 + 120


# --- fuzz: hostile octets never raise and never give data -----------------------------------

def _framed(body: bytes) -> bytes:
    return len(body).to_bytes(2, "big") + body


HEADER = h("15") + AES_PARAMS.spi_octets + bytes([AES_PARAMS.kic, AES_PARAMS.kid]) + TAR


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.binary(max_size=160), st.binary(max_size=160).map(_framed),
                 st.binary(max_size=140).map(lambda b: _framed(HEADER + b))),
       st.sampled_from(sorted(PAIRS)), st.integers(0, CNTR_MAX))
def test_unprotect_fuzz(data, name, stored):
    params, keys = PAIRS[name]
    result = unprotect(params, keys, stored, data)
    assert isinstance(result, Discarded) and isinstance(result.reason, Reason)
