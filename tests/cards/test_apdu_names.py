"""Instruction and file names for decoded APDUs (TS 102 221 §10.1.2, the FIDs of uicc_files)."""
from dmsim.cards import apdu_names, uicc_files


def test_file_names_come_from_the_declared_fids():
    assert apdu_names.file_name(uicc_files.EF_IMSI) == "EF_IMSI"
    assert apdu_names.file_name(0x3F00) == "MF" and apdu_names.file_name(0x1234) == "1234"
    assert all(apdu_names.file_name(getattr(uicc_files, n)) == n for n in ("EF_ICCID", "EF_GBABP", "EF_DM_BOOTSTRAP"))


def test_aids_full_and_partial():
    assert apdu_names.aid_name(uicc_files.USIM_AID) == "ADF.USIM"
    assert apdu_names.aid_name(uicc_files.ISIM_AID[:7]) == "ADF.ISIM"
    assert apdu_names.aid_name(uicc_files.PKCS15_AID) == "ADF.PKCS#15"
    assert apdu_names.aid_name(bytes.fromhex("a000000151")) is None


def test_describe_reads_like_tshark():
    assert apdu_names.describe(0xA4, 0x00, bytes.fromhex("6f07")) == "SELECT File EF_IMSI"
    assert apdu_names.describe(0xA4, 0x08, bytes.fromhex("7f106f3c")) == "SELECT File DF_TELECOM/EF_SMS"
    assert apdu_names.describe(0xA4, 0x04, bytes.fromhex("a000000151")) == "SELECT Application AID A000000151"
    assert apdu_names.describe(0xB0, 0x82, b"") == "READ BINARY SFI 02"
    assert apdu_names.describe(0xC2, 0x00, b"") == "ENVELOPE"
    assert apdu_names.describe(0x3A, 0x00, b"") == "INS 3A"
