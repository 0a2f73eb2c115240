"""The UICC engine (TS 102 221 §10-§11): each command's success and error status words, the file
contents (TS 31.102), logical channels, PINs, T=0 GET RESPONSE, the handler hooks, and a fuzz run."""
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dmsim.cards import sw as SW
from dmsim.cards.apdu import build_command, split_response
from dmsim.cards.profile import parse_profile, pin_bytes
from dmsim.cards.uicc import INTERINDUSTRY, PROPRIETARY, Reply, Uicc
from dmsim.cards.uicc_files import (DM_BOOTSTRAP_OID, ISIM_AID, PKCS15_AID, USIM_AID, decode_imsi, encode_iccid,
                                    encode_imsi)

PROFILE_TEXT = """\
imsi: "001010123456789"
iccid: "8999010101234567898"
k: "000102030405060708090A0B0C0D0E0F"
opc: "0F0E0D0C0B0A09080706050403020100"
dm_bootstrap: "hello bootstrap"
"""
PIN = pin_bytes("1234").hex()
ADM = pin_bytes("88888888").hex()


@pytest.fixture
def card():
    return Uicc(parse_profile(PROFILE_TEXT))


def send(card, hexa, channel=0):
    """Return (data, sw) of one command; ``channel`` goes into the CLA's low bits."""
    raw = bytearray(bytes.fromhex(hexa))
    raw[0] |= channel
    return split_response(card.process(bytes(raw)))


def fetch(card, hexa, channel=0):
    """Return (data, sw) of a command, collecting 61xx data with GET RESPONSE."""
    data, sw = send(card, hexa, channel)
    out = data
    while sw >> 8 == 0x61:
        data, sw = send(card, f"00C00000{sw & 0xFF:02X}", channel)
        out += data
    return out, sw


def tlvs(data):
    """Return {tag: value} of a flat run of one-byte-tag BER-TLVs."""
    out, i = {}, 0
    while i < len(data):
        tag, n = data[i], data[i + 1]
        out[tag] = data[i + 2:i + 2 + n]
        i += 2 + n
    return out


def select_usim(card, channel=0):
    assert send(card, "00A4040C07A0000000871002", channel)[1] == 0x9000


# -- SELECT and FCP ----------------------------------------------------------------------------

def test_select_mf_returns_fcp_through_get_response(card):
    data, sw = send(card, "00A40004023F00")
    assert data == b"" and sw >> 8 == 0x61
    fcp, sw = send(card, f"00C00000{sw & 0xFF:02X}")
    assert sw == 0x9000 and fcp[0] == 0x62 and fcp[1] == len(fcp) - 2
    inner = tlvs(fcp[2:])
    assert inner[0x82] == b"\x78\x21" and inner[0x83] == b"\x3f\x00" and inner[0x8A] == b"\x05"
    assert 0xC6 in inner and 0x81 in inner and 0xAB in inner


def test_fcp_of_ef_and_adf(card):
    fcp, sw = fetch(card, "00A40004022FE2")
    inner = tlvs(fcp[2:])
    assert sw == 0x9000 and inner[0x82] == b"\x41\x21" and inner[0x83] == b"\x2f\xe2"
    assert inner[0x80] == b"\x00\x0a" and inner[0x88] == bytes((0x02 << 3,))
    assert inner[0xAB] == bytes.fromhex("800101" "9000" "800102" "9700")  # READ always, UPDATE never
    fcp, _ = fetch(card, "00A40004022F00")
    assert tlvs(fcp[2:])[0x82][:2] == b"\x42\x21"
    fcp, _ = fetch(card, "00A4040407A0000000871004")
    inner = tlvs(fcp[2:])
    assert inner[0x84] == ISIM_AID and 0x83 not in inner and inner[0xC6][:3] == b"\x90\x01\xc0"


def test_fcp_shows_pin1_disabled():
    card = Uicc(parse_profile(PROFILE_TEXT + "pin1_enabled: false\n"))
    fcp, _ = fetch(card, "00A40004023F00")
    assert tlvs(fcp[2:])[0xC6][:3] == b"\x90\x01\x40"


def test_select_modes(card):
    assert send(card, "00A4000C027F10") == (b"", 0x9000)        # child DF
    assert send(card, "00A4000C026F3C") == (b"", 0x9000)        # its child EF
    assert send(card, "00A4000C027F10") == (b"", 0x9000)        # the current DF
    assert send(card, "00A4000C023F00") == (b"", 0x9000)        # the MF
    assert send(card, "00A4080C047F106F3C") == (b"", 0x9000)    # path from the MF
    assert send(card, "00A4080C063F007F106F3C") == (b"", 0x9000)  # tolerated 3F00 prefix
    assert send(card, "00A4000C027F10")[1] == 0x9000
    assert send(card, "00A4090C026F3C") == (b"", 0x9000)        # path from the current DF
    assert send(card, "00A4080C047FFF6F07")[1] == 0x6A82        # no application selected yet
    select_usim(card)
    assert send(card, "00A4080C047FFF6F07") == (b"", 0x9000)
    assert send(card, "00A4000C027FFF") == (b"", 0x9000)
    assert card.channels[0].current_df is card.channels[0].application


@pytest.mark.parametrize("hexa, sw", [
    ("00A4000C026F07", 0x6A82),            # EF_IMSI is not in the MF
    ("00A4000C031234", 0x6700),            # Lc 3 with 2 bytes: not an APDU
    ("00A4000C03123456", 0x6700),          # FID of 3 bytes
    ("00A4000C", 0x6700),                  # no data
    ("00A4050C023F00", 0x6A86),            # unknown P1
    ("00A40010023F00", 0x6A86),            # unknown P2
    ("00A4040C05A000000099", 0x6A82),      # unknown AID
    ("00A4080C037F106F", 0x6700),          # odd path
    ("00A4080C046F3C7F10", 0x6A82),        # path through an EF
    ("00A4040C11" + "A0" * 17, 0x6A80),    # AID longer than 16 bytes
])
def test_select_errors(card, hexa, sw):
    assert send(card, hexa)[1] == sw


def test_partial_aid_selects_application(card):
    fcp, sw = fetch(card, "00A4040405A000000087")
    assert sw == 0x9000 and tlvs(fcp[2:])[0x84] == USIM_AID
    assert card.channels[0].application_aid == USIM_AID


# -- file contents -----------------------------------------------------------------------------

def test_ef_iccid_is_bcd_swapped(card):
    assert send(card, "00A4000C022FE2")[1] == 0x9000
    data, sw = send(card, "00B000000A")
    assert sw == 0x9000 and data == bytes.fromhex("989910101032547698F8")
    assert data == encode_iccid("8999010101234567898")


def test_ef_imsi_content_needs_pin1(card):
    select_usim(card)
    assert send(card, "00A4000C026F07")[1] == 0x9000
    assert send(card, "00B0000009")[1] == 0x6982
    assert send(card, "0020000108" + PIN) == (b"", 0x9000)
    data, sw = send(card, "00B0000009")
    assert sw == 0x9000 and data == bytes.fromhex("080910101032547698")
    assert decode_imsi(data) == "001010123456789"


def test_imsi_coding_even_length():
    data = encode_imsi("00101012345678")
    assert data == bytes.fromhex("0801101010325476F8")
    assert decode_imsi(data) == "00101012345678" and len(data) == 9


def test_usim_isim_and_pkcs15_files(card):
    select_usim(card)
    assert send(card, "00A4000C026FAD")[1] == 0x9000
    assert send(card, "00B0000000") == (bytes.fromhex("00000002"), 0x9000)
    send(card, "0020000108" + PIN)
    send(card, "00A4000C026FD6")
    data, _ = send(card, "00B0000004")
    assert data == bytes.fromhex("000000FF")
    send(card, "00A4000C026FD7")
    data, _ = send(card, "00B2010460")
    assert data == b"\xff" * 96
    assert send(card, "00A4040C07A0000000871004")[1] == 0x9000
    data, sw = send(card, "00B0820000")  # SFI 2 = EF_IMPI
    assert sw == 0x9000 and data[0] == 0x80 and data[2:] == b"001010123456789@ims.mnc001.mcc001.3gppnetwork.org"


def test_pkcs15_bootstrap_chain(card):
    data, _ = send(card, "0070000001")
    ch = data[0]
    assert send(card, "00A4040C0C" + PKCS15_AID.hex(), ch)[1] == 0x9000
    assert send(card, "00A4000C025031", ch)[1] == 0x9000
    odf, _ = send(card, "00B0000000", ch)
    assert odf == bytes.fromhex("A706300404026430")
    path = odf[-2:].hex()
    assert send(card, f"00A4000C02{path}", ch)[1] == 0x9000
    dodf, _ = send(card, "00B0000000", ch)
    assert bytes((6, len(DM_BOOTSTRAP_OID))) + DM_BOOTSTRAP_OID in dodf and dodf.endswith(b"\x04\x02\x64\x32")
    assert send(card, "00A4000C026432", ch)[1] == 0x9000
    assert send(card, "00B0000000", ch) == (b"hello bootstrap", 0x9000)


def test_ef_dir_lists_applications():
    card = Uicc(parse_profile(PROFILE_TEXT.replace('dm_bootstrap: "hello bootstrap"\n', "")))
    assert send(card, "00A4000C022F00")[1] == 0x9000
    rec, sw = send(card, "00B2010420")
    assert sw == 0x9000 and rec[:4] == bytes.fromhex("61184F10") and rec[4:20] == USIM_AID
    assert rec[20:26] == b"\x50\x04USIM" and rec[26:] == b"\xff" * 6
    assert send(card, "00B2030420")[1] == 0x6A83  # no PKCS#15 application without a bootstrap
    assert send(card, "00A4040C0C" + PKCS15_AID.hex())[1] == 0x6A82


# -- READ/UPDATE BINARY ------------------------------------------------------------------------

def test_read_binary(card):
    assert send(card, "00B0000001")[1] == 0x6986  # nothing selected
    send(card, "00A4000C022FE2")
    assert send(card, "00B0000304")[0] == encode_iccid("8999010101234567898")[3:7]
    assert send(card, "00B0000000")[0] == encode_iccid("8999010101234567898")
    assert send(card, "00B000000B")[1] == 0x6C0A      # wrong Le: exact length 10
    assert send(card, "00B0000805")[1] == 0x6C02
    assert send(card, "00B0000A01")[1] == 0x6B00      # offset past the end
    assert send(card, "00B00000")[1] == 0x6700        # no Le
    assert send(card, "00B0000001AA")[1] == 0x6700    # data in a read
    send(card, "00A4000C022F00")
    assert send(card, "00B0000001")[1] == 0x6981      # a record file


def test_read_binary_by_sfi_selects_the_file(card):
    send(card, "00A4000C022F00")
    data, sw = send(card, "00B0820002")  # SFI 2 in the MF: EF_ICCID
    assert sw == 0x9000 and data == b"\x98\x99"
    assert card.channels[0].current_ef.name == "EF_ICCID"
    assert send(card, "00B0830001")[1] == 0x6A82  # no SFI 3 in the MF
    assert send(card, "00B0A20001")[1] == 0x6A86  # b7-b6 of P1 must be 0


def test_update_binary_access_conditions(card):
    select_usim(card)
    send(card, "00A4000C026FAD")
    assert send(card, "00D600030103")[1] == 0x6982
    assert send(card, "0020000A08" + ADM)[1] == 0x9000
    assert send(card, "00D600030103")[1] == 0x9000
    assert send(card, "00B0000000")[0] == bytes.fromhex("00000003")
    assert send(card, "00D60003020102")[1] == 0x6700  # past the end
    assert send(card, "00D6000401FF")[1] == 0x6B00
    assert send(card, "00D60000")[1] == 0x6700
    send(card, "00A4000C023F00")
    send(card, "00A4000C022FE2")
    assert send(card, "00D6000001FF")[1] == 0x6982  # EF_ICCID: never, even with ADM1


# -- READ/UPDATE RECORD ------------------------------------------------------------------------

def test_read_record_modes(card):
    send(card, "00A4000C022F00")
    first, _ = send(card, "00B2010420")
    second, _ = send(card, "00B2020420")
    assert first[4:20] == USIM_AID and second[4:20] == ISIM_AID
    assert send(card, "00B2000420")[1] == 0x6A83                 # no current record yet
    assert send(card, "00B2000220") == (first, 0x9000)           # next from none: first
    assert send(card, "00B2000220") == (second, 0x9000)
    assert send(card, "00B2000420") == (second, 0x9000)          # current record
    assert send(card, "00B2000320") == (first, 0x9000)           # previous
    assert send(card, "00B2000320")[1] == 0x6A83                 # before the first
    assert send(card, "00B2040420")[1] == 0x6A83                 # past the last
    assert send(card, "00B2010410")[1] == 0x6C20                 # wrong Le
    assert send(card, "00B2010520")[1] == 0x6A86                 # unknown mode
    assert send(card, "00B2010220")[1] == 0x6A86                 # next with a record number
    send(card, "00A4000C023F00")
    assert send(card, "00B201F420")[0] == first                  # SFI 1E in P2
    send(card, "00A4000C022FE2")
    assert send(card, "00B2010420")[1] == 0x6981


def test_update_record(card):
    send(card, "00A4080C047F106F3C")
    record = "01" + "AB" * 175
    assert send(card, "00DC0104B0" + record)[1] == 0x6982
    send(card, "0020000108" + PIN)
    assert send(card, "00DC0104B0" + record) == (b"", 0x9000)
    assert send(card, "00B20104B0")[0] == bytes.fromhex(record)
    assert send(card, "00DC010402" + "0102")[1] == 0x6700
    assert send(card, "00DC0B04B0" + record)[1] == 0x6A83
    assert send(card, "00DC0003B0" + record)[1] == 0x9000       # previous from none: the last
    assert send(card, "00B20A04B0")[0] == bytes.fromhex(record)


# -- PINs --------------------------------------------------------------------------------------

def test_pin_retries_block_and_unblock_with_puk(card):
    wrong = pin_bytes("9999").hex()
    assert send(card, "00200001")[1] == 0x63C3
    assert send(card, "0020000108" + wrong)[1] == 0x63C2
    assert send(card, "0020000108" + wrong)[1] == 0x63C1
    assert send(card, "0020000108" + wrong)[1] == 0x63C0
    assert send(card, "0020000108" + PIN)[1] == 0x6983  # blocked, even the right PIN
    assert send(card, "00200001")[1] == 0x6983
    assert send(card, "002C0001")[1] == 0x63CA
    assert send(card, "002C000110" + pin_bytes("00000000").hex() + pin_bytes("4321").hex())[1] == 0x63C9
    assert send(card, "002C000110" + pin_bytes("12345678").hex() + pin_bytes("4321").hex()) == (b"", 0x9000)
    assert send(card, "00200001") == (b"", 0x9000)  # verified by the unblock
    card.reset()
    assert send(card, "00200001")[1] == 0x63C3
    assert send(card, "0020000108" + PIN)[1] == 0x63C2
    assert send(card, "0020000108" + pin_bytes("4321").hex()) == (b"", 0x9000)


def test_puk_blocks_after_ten(card):
    bad = "002C000110" + pin_bytes("00000000").hex() + PIN
    assert [send(card, bad)[1] for _ in range(10)] == [0x63C0 | n for n in range(9, -1, -1)]
    assert send(card, bad)[1] == 0x6983
    assert send(card, "002C000110" + pin_bytes("12345678").hex() + PIN)[1] == 0x6983


def test_change_disable_enable(card):
    new = pin_bytes("5555").hex()
    assert send(card, "0024000110" + pin_bytes("0000").hex() + new)[1] == 0x63C2
    assert send(card, "0024000110" + PIN + new) == (b"", 0x9000)
    assert send(card, "0024000110" + new + "31FFFFFFFFFFFFFF")[1] == 0x6A80   # new PIN of 1 digit
    assert send(card, "0026000108" + new) == (b"", 0x9000)
    assert send(card, "0026000108" + new)[1] == 0x6985                       # already disabled
    assert send(card, "0024000110" + new + PIN)[1] == 0x6984                 # change while disabled
    card.reset()
    select_usim(card)
    send(card, "00A4000C026F07")
    assert send(card, "00B0000009")[1] == 0x9000                              # no PIN needed now
    assert send(card, "0028000108" + new) == (b"", 0x9000)
    assert send(card, "00B0000009")[1] == 0x9000                              # verified by ENABLE
    card.reset()
    select_usim(card)
    send(card, "00A4000C026F07")
    assert send(card, "00B0000009")[1] == 0x6982


@pytest.mark.parametrize("hexa, sw", [
    ("0020000208" + PIN, 0x6A88),           # unknown key reference
    ("0020010108" + PIN, 0x6A86),           # P1 must be 00
    ("0020000107" + PIN[:14], 0x6700),      # PIN of 7 bytes
    ("002000010800", 0x6700),               # Lc 8 with 1 byte: not an APDU
    ("0026000A08" + ADM, 0x6985),           # ADM1 cannot be disabled
    ("002C000A10" + ADM + PIN, 0x6A88),     # ADM1 has no PUK
    ("002C000108" + PIN, 0x6700),
])
def test_pin_errors(card, hexa, sw):
    assert send(card, hexa)[1] == sw


# -- GET RESPONSE and T=0 ----------------------------------------------------------------------

def test_get_response_le_handling(card):
    _, sw = send(card, "00A40004023F00")
    n = sw & 0xFF
    assert send(card, f"00C00000{n + 1:02X}")[1] == 0x6C00 | n     # too long: exact length
    part, sw = send(card, "00C0000010")                              # shorter: the rest stays
    assert len(part) == 16 and sw == 0x6100 | (n - 16)
    rest, sw = send(card, f"00C00000{n - 16:02X}")
    assert sw == 0x9000 and len(part + rest) == n and (part + rest)[0] == 0x62
    assert send(card, "00C0000010")[1] == 0x6985                     # nothing left
    assert send(card, "00C0010010")[1] == 0x6A86
    assert send(card, "00C00000")[1] == 0x6700


def test_other_command_drops_pending_response(card):
    send(card, "00A40004023F00")
    send(card, "00A4000C022FE2")
    assert send(card, "00C0000000")[1] == 0x6985


def test_t1_mode_answers_at_once():
    card = Uicc(parse_profile(PROFILE_TEXT), t0=False)
    data, sw = send(card, "00A40004023F00")
    assert sw == 0x9000 and data[0] == 0x62


# -- MANAGE CHANNEL and channel isolation ------------------------------------------------------

def test_manage_channel(card):
    assert send(card, "0070000001") == (b"\x01", 0x9000)
    assert send(card, "0070000300") == (b"", 0x9000)
    assert send(card, "0070000300")[1] == 0x6A86                      # already open
    assert send(card, "0070000001") == (b"\x02", 0x9000)
    assert send(card, "0070000001")[1] == 0x6A81                      # none free
    assert send(card, "0070000400")[1] == 0x6A81                      # channel 4 unsupported
    assert send(card, "0070800200") == (b"", 0x9000)
    assert send(card, "02A4000C023F00")[1] == 0x6881                  # closed channel
    assert send(card, "40A4000C023F00")[1] == 0x6881                  # channel 4
    assert send(card, "0070800000")[1] == 0x6A86                      # basic channel stays
    assert send(card, "0070800200")[1] == 0x6A86                      # not open
    assert send(card, "0070000002")[1] == 0x6C01
    assert send(card, "0070010000")[1] == 0x6A86
    assert send(card, "007000000101")[1] == 0x6700


def test_channels_keep_their_own_selection(card):
    send(card, "0070000001")
    select_usim(card, 0)
    assert send(card, "00A4040C07A0000000871004", 1)[1] == 0x9000
    send(card, "0020000108" + PIN)
    send(card, "00A4000C026F07", 0)
    send(card, "00A4000C026F02", 1)
    imsi, _ = send(card, "00B0000009", 0)
    impi, _ = send(card, "00B0000000", 1)
    assert decode_imsi(imsi) == "001010123456789" and impi.startswith(b"\x80")
    assert card.channels[0].application_aid == USIM_AID and card.channels[1].application_aid == ISIM_AID
    assert send(card, "00A4000C027FFF", 1)[1] == 0x9000
    assert send(card, "00A4000C026F07", 1)[1] == 0x6A82            # 7FFF is the ISIM on channel 1
    send(card, "00A4000C026F07", 0)
    assert send(card, "00B0000009", 0) == (imsi, 0x9000)
    # a GET RESPONSE belongs to its channel
    _, sw = send(card, "00A40004023F00", 1)
    assert send(card, "00C0000000", 0)[1] == 0x6985
    assert send(card, f"00C00000{sw & 0xFF:02X}", 1)[1] == 0x9000
    # a channel opened from channel 1 starts where channel 1 is
    send(card, "00A4040C07A0000000871004", 1)
    data, _ = send(card, "0070000001", 1)
    assert card.channels[data[0]].application_aid == ISIM_AID


# -- STATUS ------------------------------------------------------------------------------------

def test_status(card):
    select_usim(card)
    data, sw = send(card, "80F2000000")
    assert sw == 0x9000 and tlvs(data[2:])[0x84] == USIM_AID
    assert send(card, "80F2000100") == (bytes((0x84, 16)) + USIM_AID, 0x9000)
    assert send(card, "80F2000105")[1] == 0x6C12
    assert send(card, "80F2000C00") == (b"", 0x9000)
    assert send(card, "80F2000200")[1] == 0x6A86
    assert send(card, "80F2030000")[1] == 0x6A86
    other = Uicc(parse_profile(PROFILE_TEXT))
    assert send(other, "80F2000100")[1] == 0x6A88


# -- dispatch and hooks ------------------------------------------------------------------------

@pytest.mark.parametrize("hexa, sw", [
    ("00FE000000", 0x6D00),     # unknown INS
    ("0088008110" + "00" * 16, 0x6D00),  # AUTHENTICATE not plugged in
    ("80A4000C023F00", 0x6E00),  # SELECT is interindustry
    ("00F2000000", 0x6E00),      # STATUS is proprietary
    ("A0A40000023F00", 0x6E00),  # GSM class
    ("FFA4000C023F00", 0x6E00),
    ("0CA4000C023F00", 0x6882),  # secure messaging bits
    ("00A4", 0x6700),            # not an APDU
])
def test_dispatch_errors(card, hexa, sw):
    assert send(card, hexa)[1] == sw


def test_registered_handler_sees_channel_application(card):
    seen = []

    def authenticate(c, channel, cmd):
        seen.append((c is card, channel.number, channel.application_aid, cmd.p2, cmd.data))
        return Reply(b"\xdb\x08" + b"R" * 8, SW.OK)

    card.register(INTERINDUSTRY, 0x88, authenticate)
    send(card, "0070000001")
    select_usim(card, 1)
    data, sw = fetch(card, "0088008103010203", 1)
    assert (data, sw) == (b"\xdb\x08RRRRRRRR", 0x9000)
    assert seen == [(True, 1, USIM_AID, 0x81, b"\x01\x02\x03")]


def test_handler_errors_and_secure_messaging():
    calls = []

    def external_authenticate(card, channel, cmd):
        calls.append(cmd.cla)
        return Reply(b"", 0x9000)

    def broken(card, channel, cmd):
        raise KeyError("bug")

    card = Uicc(parse_profile(PROFILE_TEXT), handlers={(PROPRIETARY, 0xC2): broken})
    card.register(PROPRIETARY, 0x82, external_authenticate, secure_messaging=True)
    assert send(card, "8482330010" + "00" * 16)[1] == 0x9000 and calls == [0x84]
    assert send(card, "80C2000002D100")[1] == 0x6F00 and isinstance(card.last_error, KeyError)


# -- fuzzing -----------------------------------------------------------------------------------

CLAS = [0x00, 0x01, 0x02, 0x03, 0x80, 0x81, 0x84, 0x0C, 0x40, 0x41, 0xA0, 0xC0]
INSS = [0xA4, 0xB0, 0xD6, 0xB2, 0xDC, 0x20, 0x24, 0x26, 0x28, 0x2C, 0x70, 0xC0, 0xF2, 0x88, 0xC2, 0x50, 0x82]
P12 = [0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x08, 0x09, 0x0A, 0x0C, 0x1E, 0x80, 0x82, 0x9E, 0xF4, 0xFF]
DATA = [b"", b"\x3f\x00", b"\x2f\xe2", b"\x2f\x00", b"\x7f\x10", b"\x6f\x3c", b"\x7f\xff", b"\x6f\x07",
        b"\x7f\x10\x6f\x3c", b"\x7f\xff\x6f\x07", USIM_AID[:7], ISIM_AID, PKCS15_AID, pin_bytes("1234"),
        pin_bytes("88888888"), pin_bytes("12345678") + pin_bytes("1234"), b"\x00" * 176, b"\xff" * 32]

LES = [None, None, 1, 2, 9, 10, 0x20, 0xB0, 256, 300]
BYTES = P12 + list(range(256))  # the interesting values twice as likely
valid_ish = st.tuples(st.sampled_from(CLAS), st.sampled_from(INSS), st.sampled_from(BYTES), st.sampled_from(BYTES),
                      st.sampled_from(DATA), st.sampled_from(LES)).map(lambda t: build_command(*t))
raw_apdus = st.binary(max_size=24)
FUZZ_PROFILE = parse_profile(PROFILE_TEXT)


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(valid_ish | raw_apdus, min_size=1, max_size=2))
def test_fuzz_every_answer_is_a_known_status_word(apdus):
    card = Uicc(FUZZ_PROFILE)
    for apdu in apdus:
        out = card.process(apdu)
        assert isinstance(out, bytes) and len(out) >= 2
        sw = (out[-2] << 8) | out[-1]
        assert SW.is_known(sw), SW.describe(sw)
        assert card.last_error is None, repr(card.last_error)

