"""SCP80 secured packets (TS 102 225 / TS 31.115): vectors, round trips, refusals, fuzz."""
import dataclasses

import pytest
from conftest import load_vectors
from hypothesis import given, settings
from hypothesis import strategies as st

from dmsim.cards.scp80 import (
    CNTR_MAX, UDH_COMMAND, UDH_RESPONSE, CounterMode, Integrity, Keyset, PorMode,
    ResponseStatus, Spi, check_counter, decode_command, decode_por, encode_command, encode_por,
)
from dmsim.cards.scp80_crypto import checksum_for, cipher_for
from dmsim.base.errors import DecodeError, ProtocolError, SecuredPacketError

PACKETS = load_vectors("cards", "scp80_packet")
PORS = load_vectors("cards", "scp80_por")
h = bytes.fromhex

AES = Keyset(0x22, 0x22, h("200102030405060708090a0b0c0d0e0f"),
             h("201102030405060708090a0b0c0d0e0f"))
TDES = Keyset(0x35, 0x35, h("300102030405060708090a0b0c0d0e0f"),
              h("301102030405060708090a0b0c0d0e0f"))
TAR = h("b00011")
APDU = h("00a40004023f00")
SECURE = Spi(Integrity.CC, True, CounterMode.HIGHER, PorMode.REQUIRED, Integrity.CC, True)


def _keyset(inputs: dict) -> Keyset:
    return Keyset(int(inputs["kic_byte"], 16), int(inputs["kid_byte"], 16),
                  h(inputs["kic"]), h(inputs["kid"]))


def _only(keys: Keyset, tar: bytes = TAR):
    return lambda t, kic, kid: keys if t == tar else None


# --- published vectors ----------------------------------------------------------------

@pytest.mark.parametrize("vector", PACKETS, ids=[v["id"] for v in PACKETS])
def test_command_vectors(vector):
    inputs, expected = vector["inputs"], h(vector["expected"]["command_packet"])
    keys = _keyset(inputs)
    packet = encode_command(h(inputs["spi"]), keys.kic_byte, keys.kid_byte, h(inputs["tar"]),
                            int(inputs["cntr"], 16), h(inputs["apdu"]), keys)
    spi = Spi.decode(h(inputs["spi"]))
    if spi.ciphered:
        assert packet == expected
    else:  # quirk (1): pySim leaves out CPL when the command is not ciphered
        assert packet == len(expected).to_bytes(2, "big") + expected
    decoded = decode_command(packet, _only(keys, h(inputs["tar"])))
    assert (decoded.spi, decoded.tar, decoded.cntr, decoded.data) == (
        spi, h(inputs["tar"]), 0, h(inputs["apdu"]))
    with_udh = encode_command(spi, keys.kic_byte, keys.kid_byte, h(inputs["tar"]), 0,
                              h(inputs["apdu"]), keys, with_udh=True)
    assert with_udh == UDH_COMMAND + packet
    assert decode_command(with_udh, _only(keys, h(inputs["tar"])), with_udh=True) == decoded


def test_command_vector_inside_the_published_tpdu():
    # quirk (2): the published TPDU has UDL 03; all else is the UD 02 70 00 || command packet.
    vector = PACKETS[0]
    tpdu = h(vector["quirky_published"]["encoded_tpdu"])
    packet = h(vector["expected"]["command_packet"])
    assert tpdu.endswith(UDH_COMMAND + packet)
    assert tpdu[-len(packet) - 4] == 0x03


@pytest.mark.parametrize("vector", PORS, ids=[v["id"] for v in PORS])
def test_por_vectors(vector):
    inputs, expected = vector["inputs"], vector["expected"]
    keys = _keyset(inputs)
    spi = Spi(por=PorMode.REQUIRED, por_ciphered=inputs["por_ciphered"],
              por_integrity=Integrity.CC if inputs["por_cc"] else Integrity.NONE)
    ud = h(inputs["response_ud"])
    por = decode_por(ud, spi, keys, with_udh=True)
    assert expected["cc_valid"] is True
    assert por.status == ResponseStatus.POR_OK == int(expected["response_status"][:2], 16)
    assert (por.tar, por.cntr, por.pcntr) == (
        h(expected["tar"]), int(expected["cntr"], 16), int(expected["pcntr"], 16))
    assert por.data == h(expected["secured_data"])
    # TS 102 226 compact remote response: number of commands, last SW, last response data
    assert por.data[:1] == h(expected["number_of_commands"])
    assert por.data[1:3] == h(expected["last_status_word"])
    assert por.data[3:] == h(expected["last_response_data"])
    # the card side produces the same octets (zero padding, zero ICV)
    assert encode_por(spi, por.tar, por.cntr, por.status, por.data, keys, with_udh=True) == ud
    bare = encode_por(spi, por.tar, por.cntr, por.status, por.data, keys)
    assert UDH_RESPONSE + bare == ud and decode_por(bare, spi, keys) == por


def test_por_vector_with_a_bad_cc_is_refused():
    vector = next(v for v in PORS if v["inputs"]["por_cc"])
    keys = _keyset(vector["inputs"])
    ud = bytearray(h(vector["inputs"]["response_ud"]))
    ud[-1] ^= 0x01
    with pytest.raises(SecuredPacketError) as info:
        decode_por(bytes(ud), SECURE, keys, with_udh=True)
    assert info.value.status == ResponseStatus.RC_CC_DS_FAILED


# --- SPI, KIc/KID coding -----------------------------------------------------------------

def test_spi_coding():
    spi = Spi.decode(h("0619"))
    assert spi == Spi(Integrity.CC, True, CounterMode.NONE, PorMode.REQUIRED, Integrity.CC, True)
    assert spi.encode() == h("0619")
    assert Spi.decode(h("1639")).counter == CounterMode.HIGHER
    assert Spi.decode(h("1e39")).counter == CounterMode.ONE_HIGHER
    assert Spi.decode(h("1639")).por_via_submit
    with pytest.raises(ProtocolError):
        Spi.decode(b"\x06")


@pytest.mark.parametrize("kic, name, block", [
    (0x11, "DES-CBC", 8), (0x35, "3DES-2KEY-CBC", 8), (0x39, "3DES-3KEY-CBC", 8),
    (0x1D, "DES-ECB", 8), (0x22, "AES-CBC", 16)])
def test_kic_coding(kic, name, block):
    assert (cipher_for(kic).name, cipher_for(kic).block) == (name, block)


def test_kid_coding():
    assert checksum_for(0x22, redundancy=False).name == "AES-CMAC-64"
    assert checksum_for(0x35, redundancy=False).name == "3DES-2KEY-CBC-MAC"
    assert checksum_for(0x15, redundancy=True).length == 4
    assert checksum_for(0x11, redundancy=True).length == 2
    assert cipher_for(0x20) is None and cipher_for(0x03) is None  # implicit, proprietary


# --- round trips ---------------------------------------------------------------------

CRC32 = Keyset(0x1D, 0x15, bytes(8))       # DES-ECB, RC CRC-32
CRC16 = Keyset(0x22, 0x11, bytes(16))      # AES-CBC, RC CRC-16
CC_KEYSETS = {"aes": AES, "3des2": TDES, "3des3": Keyset(0x39, 0x39, bytes(range(24)), bytes(24)),
              "des": Keyset(0x11, 0x11, bytes(8), bytes(range(8)))}
CC_SPIS = {"cc+ciph": SECURE, "cc": Spi(Integrity.CC, False, CounterMode.ONE_HIGHER),
           "ciph": Spi(Integrity.NONE, True), "none": Spi()}
RC_SPIS = {"rc+ciph": Spi(Integrity.RC, True), "rc": Spi(Integrity.RC)}
CASES = ([(f"{k}-{s}", keys, spi) for k, keys in CC_KEYSETS.items() for s, spi in CC_SPIS.items()]
         + [(f"{k}-{s}", keys, spi) for k, keys in (("crc32", CRC32), ("crc16", CRC16))
            for s, spi in RC_SPIS.items()])


@pytest.mark.parametrize("keys, spi", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
@pytest.mark.parametrize("size", [0, 1, 7, 8, 16, 100])
def test_command_round_trip(keys, spi, size):
    data = bytes(range(size))
    packet = encode_command(spi, keys.kic_byte, keys.kid_byte, TAR, 41, data, keys)
    decoded = decode_command(packet, _only(keys))
    assert (decoded.spi, decoded.cntr, decoded.data) == (spi, 41, data)
    if spi.ciphered:
        assert (len(packet) - 10) % cipher_for(keys.kic_byte).block == 0
        assert decoded.pcntr < cipher_for(keys.kic_byte).block


@pytest.mark.parametrize("keys", [AES, TDES], ids=["aes", "3des"])
@pytest.mark.parametrize("status", [ResponseStatus.POR_OK, ResponseStatus.CNTR_LOW])
def test_por_round_trip(keys, status):
    for spi, keyset in ((SECURE, keys), (dataclasses.replace(SECURE, por_ciphered=False), keys),
                        (Spi(por_integrity=Integrity.RC, por_ciphered=True), CRC16),
                        (Spi(por_integrity=Integrity.RC), CRC32), (Spi(), None)):
        ud = encode_por(spi, TAR, 7, status, h("016132"), keyset, with_udh=True)
        por = decode_por(ud, spi, keyset, with_udh=True)
        assert (por.tar, por.cntr, por.status, por.data) == (TAR, 7, status, h("016132"))


def test_implicit_algorithm_takes_the_keysets():
    packet = encode_command(SECURE, 0x20, 0x20, TAR, 1, APDU, AES)  # KIc/KID "implicit"
    assert packet[5:7] == b"\x20\x20"
    assert decode_command(packet, _only(AES)).data == APDU
    with pytest.raises(ProtocolError):
        encode_command(SECURE, 0x20, 0x20, TAR, 1, APDU, Keyset(0x20, 0x20, bytes(16), bytes(16)))


# --- counter rules (TS 102 225 §5.1.1) ---------------------------------------------------

@pytest.mark.parametrize("mode, cntr, stored, status", [
    (CounterMode.NONE, 0, 9, ResponseStatus.POR_OK),
    (CounterMode.AVAILABLE, 3, 9, ResponseStatus.POR_OK),
    (CounterMode.HIGHER, 10, 9, ResponseStatus.POR_OK),
    (CounterMode.HIGHER, 500, 9, ResponseStatus.POR_OK),
    (CounterMode.HIGHER, 9, 9, ResponseStatus.CNTR_LOW),
    (CounterMode.HIGHER, 2, 9, ResponseStatus.CNTR_LOW),
    (CounterMode.ONE_HIGHER, 10, 9, ResponseStatus.POR_OK),
    (CounterMode.ONE_HIGHER, 11, 9, ResponseStatus.CNTR_HIGH),
    (CounterMode.ONE_HIGHER, 9, 9, ResponseStatus.CNTR_LOW),
    (CounterMode.HIGHER, CNTR_MAX, CNTR_MAX, ResponseStatus.CNTR_BLOCKED),
])
def test_counter_rules(mode, cntr, stored, status):
    assert check_counter(cntr, stored, Spi(counter=mode)) == status


def test_replayed_counter_is_refused():
    stored = 0
    packet = encode_command(SECURE, 0x22, 0x22, TAR, 1, APDU, AES)
    first = decode_command(packet, _only(AES))
    assert check_counter(first.cntr, stored, first.spi) == ResponseStatus.POR_OK
    stored = first.cntr
    replay = decode_command(packet, _only(AES))  # the CC is valid: only the counter rule refuses
    assert check_counter(replay.cntr, stored, replay.spi) == ResponseStatus.CNTR_LOW


# --- refusals --------------------------------------------------------------------------

def _status(packet: bytes, keys_for_tar=_only(AES)) -> int:
    with pytest.raises(SecuredPacketError) as info:
        decode_command(packet, keys_for_tar)
    assert info.value.tar == packet[7:10]
    return info.value.status


@pytest.mark.parametrize("spi", [SECURE, Spi(Integrity.CC)], ids=["ciphered", "plain"])
def test_bad_cc_is_refused_with_01(spi):
    packet = bytearray(encode_command(spi, 0x22, 0x22, TAR, 5, APDU, AES))
    packet[-1] ^= 0x80
    assert _status(bytes(packet)) == ResponseStatus.RC_CC_DS_FAILED
    wrong_key = dataclasses.replace(AES, kid_key=bytes(16))
    good = encode_command(spi, 0x22, 0x22, TAR, 5, APDU, AES)
    assert _status(good, _only(wrong_key)) == ResponseStatus.RC_CC_DS_FAILED


def test_unknown_tar_is_refused_with_09():
    packet = encode_command(SECURE, 0x22, 0x22, h("000001"), 5, APDU, AES)
    assert _status(packet) == ResponseStatus.TAR_UNKNOWN


def test_ciphertext_length_is_refused_with_05():
    packet = encode_command(SECURE, 0x22, 0x22, TAR, 5, APDU, AES)
    cut = (len(packet) - 3).to_bytes(2, "big") + packet[2:-1]
    assert _status(cut) == ResponseStatus.CIPHERING_ERROR


def test_insufficient_security_level_0a():
    strict = dataclasses.replace(AES, msl=0x16)  # CC, ciphering, counter higher
    weak = encode_command(Spi(Integrity.CC, True), 0x22, 0x22, TAR, 5, APDU, AES)
    assert _status(weak, _only(strict)) == ResponseStatus.INSUFFICIENT_SECURITY_LEVEL
    assert decode_command(encode_command(SECURE, 0x22, 0x22, TAR, 5, APDU, AES),
                          _only(strict)).data == APDU


def test_unsupported_security_is_refused_with_06():
    ds = encode_command(Spi(), 0x22, 0x22, TAR, 5, APDU, AES)
    ds = ds[:3] + b"\x03" + ds[4:]  # SPI says DS
    assert _status(ds) == ResponseStatus.UNIDENTIFIED_SECURITY_ERROR
    short_key = dataclasses.replace(AES, kic_key=bytes(5))
    packet = encode_command(SECURE, 0x22, 0x22, TAR, 5, APDU, AES)
    assert _status(packet, _only(short_key)) == ResponseStatus.UNIDENTIFIED_SECURITY_ERROR
    with pytest.raises(ProtocolError):
        encode_command(Spi(Integrity.DS), 0x22, 0x22, TAR, 5, APDU, AES)


def test_malformed_header_is_a_decode_error():
    packet = encode_command(SECURE, 0x22, 0x22, TAR, 5, APDU, AES)
    cases = ((packet[:9], 9), (packet + b"\x00", 0), (packet[:2] + b"\x05" + packet[3:], 2))
    for bad, offset in cases:
        with pytest.raises(DecodeError) as info:
            decode_command(bad, _only(AES))
        assert info.value.what == "scp80" and info.value.offset == offset
    with pytest.raises(DecodeError):
        decode_command(b"\x02\x00\x00" + packet, _only(AES), with_udh=True)  # no IEI 70


def test_encoder_refuses_what_does_not_fit():
    for args in ((b"\x01\x02", 0), (TAR, CNTR_MAX + 1), (TAR, -1)):
        with pytest.raises(ProtocolError):
            encode_command(SECURE, 0x22, 0x22, args[0], args[1], APDU, AES)
    with pytest.raises(ProtocolError):
        encode_command(SECURE, 0x22, 0x22, TAR, 0, APDU, None)


# --- fuzz: random octets give a result or a typed error ----------------------------------

def _lookup(tar, kic, kid):
    return (None, AES, TDES, CRC16)[tar[0] % 4]


def _framed(body: bytes) -> bytes:
    return len(body).to_bytes(2, "big") + body


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=80), st.binary(max_size=80).map(_framed)))
def test_decode_command_fuzz(data):
    try:
        packet = decode_command(data, _lookup)
    except (DecodeError, SecuredPacketError):
        return
    assert packet.tar == data[7:10]


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=3, max_size=80).map(lambda b: _framed(bytes([13]) + b)),
       st.sampled_from([SECURE, Spi(), Spi(Integrity.RC, True)]))
def test_decode_command_fuzz_valid_header(data, spi):
    data = data[:3] + spi.encode() + data[5:]
    try:
        decode_command(data, lambda *_: AES)
    except (DecodeError, SecuredPacketError):
        pass


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=80), st.binary(max_size=80).map(_framed),
                 st.binary(max_size=80).map(lambda b: UDH_RESPONSE + _framed(b))),
       st.sampled_from([SECURE, Spi(), Spi(por_integrity=Integrity.RC),
                        dataclasses.replace(SECURE, por_ciphered=False)]),
       st.sampled_from([AES, TDES, CRC16]), st.booleans())
def test_decode_por_fuzz(data, spi, keys, with_udh):
    try:
        decode_por(data, spi, keys, with_udh=with_udh)
    except (DecodeError, SecuredPacketError):
        pass
