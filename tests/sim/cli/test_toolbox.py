"""``dmsim calc``/``decode`` output as engineers read it (field tables, indented XML, named
APDUs, every TP field) and the input they get wrong (exit 2 with one line, no traceback)."""
import json

import pytest
from click.testing import CliRunner

from dmsim.network.dm import notification
from dmsim.network.sms import gsm7, tpdu
from dmsim.network.sms.address import Address, Npi, Ton
from dmsim.network.sms.segmentation import split_parts
from dmsim.network.sms.udh import Concat
from dmsim.sim.cli.main import main
from dmsim.sim.cli.toolbox import format_table, indented_xml

OTA = "00281506192222b00011e87cceebb2d93083011ce294f93fc4d8de80da1abae8c37ca3e72ec4432e5058"
KIC, KID = "200102030405060708090a0b0c0d0e0f", "201102030405060708090a0b0c0d0e0f"
POR = "027100000d0ab00011000000000100009000"
SCTS = bytes.fromhex("62401241000080")


def run(*args, input=None):
    return CliRunner().invoke(main, list(args), input=input)


def as_json(*args):
    res = run(*args, "--json")
    assert res.exit_code == 0, res.output
    return json.loads(res.output)


# --- the readable form ----------------------------------------------------------------------

def test_field_table_aligns_values_and_indents_nested_fields():
    text = format_table({"type": "X", "udh": {"ports": {"dest": 2948}}, "ies": [{"iei": 5}], "ok": True,
                         "none": None, "empty": "", "list": [1, 2]})
    assert text.splitlines() == ["type      X", "udh", "  ports", "    dest  2948", "ies[0]", "  iei     5",
                                 "ok        yes", "none      -", "empty     (none)", "list      1, 2"]


def test_xml_is_indented_and_keeps_text():
    xml = b'<?xml version="1.0" encoding="UTF-8"?><SyncML xmlns="SYNCML:SYNCML1.2"><SyncHdr><VerDTD>1.2</VerDTD>' \
          b'</SyncHdr><SyncBody><Final/></SyncBody></SyncML>'
    assert indented_xml(xml).splitlines() == [
        '<?xml version="1.0" encoding="UTF-8"?>', '<SyncML xmlns="SYNCML:SYNCML1.2">', "  <SyncHdr>",
        "    <VerDTD>1.2</VerDTD>", "  </SyncHdr>", "  <SyncBody>", "    <Final/>", "  </SyncBody>", "</SyncML>"]


def test_text_output_is_no_python_repr():
    res = run("decode", "udh", "0605040b8423f0")
    assert res.exit_code == 0 and "{" not in res.output and "'" not in res.output
    assert "ports\n  dest  2948\n" in res.output


# --- tracebacks that were ---------------------------------------------------------------------

def test_gba_naf_refuses_a_ua_id_that_is_not_5_octets():
    res = run("calc", "gba-naf", "--ks", "00" * 32, "--rand", "00" * 16, "--impi", "a@b", "--naf-fqdn", "naf",
              "--ua-id", "00")
    assert res.exit_code == 2 and isinstance(res.exception, SystemExit)
    assert "--ua-id" in res.output and "5 octets" in res.output and len(res.output.strip().splitlines()) == 1


def test_ota_refuses_a_kic_byte_that_is_not_hex():
    res = run("decode", "ota", POR, "--kic-byte", "zz", "--por")
    assert res.exit_code == 2 and isinstance(res.exception, SystemExit)
    assert "--kic-byte" in res.output and len(res.output.strip().splitlines()) == 1
    assert run("decode", "ota", POR, "--kid-byte", "0102").exit_code == 2


# --- decode ota --------------------------------------------------------------------------------

def test_ota_without_keys_prints_the_header_and_says_the_body_stays_ciphered():
    res = run("decode", "ota", OTA)
    assert res.exit_code == 0 and "key of 0 octets" not in res.output
    out = as_json("decode", "ota", OTA)
    assert (out["spi"], out["kic"], out["kid"], out["tar"], out["cpl"], out["chl"]) == ("0619", "22", "22", "b00011",
                                                                                        40, 21)
    assert out["kic_algorithm"] == "AES-CBC" and out["spi_fields"]["ciphered"] is True
    assert out["body"].startswith("ciphered") and out["verified"] is None and "data" not in out


def test_ota_with_keys_decodes_and_names_the_algorithms():
    out = as_json("decode", "ota", OTA, "--kic", KIC, "--kid", KID)
    assert out["verified"] and out["data"] == "00a40004023f00" and out["kid_algorithm"] == "AES-CMAC-64"


def test_ota_plain_packet_with_a_cc_and_no_kid_shows_the_data_unchecked():
    from dmsim.cards import scp80
    key = bytes(range(16))
    packet = scp80.encode_command(bytes.fromhex("0200"), 0x00, 0x22, b"\xb0\x00\x11", 5, b"\xa0\xb0", scp80.Keyset(
        0x22, 0x22, key, key)).hex()
    out = as_json("decode", "ota", packet)
    assert out["data"] == "a0b0" and out["cntr"] == 5 and out["verified"] is None and "--kid" in out["check"]
    assert as_json("decode", "ota", packet, "--kid", key.hex())["verified"] is True


def test_por_names_its_status():
    assert as_json("decode", "ota", POR)["status_name"] == "por_ok"


# --- decode apdu ----------------------------------------------------------------------------

def test_apdu_names_instruction_and_file():
    out = as_json("decode", "apdu", "00a40004026f07")
    assert out["summary"] == "SELECT File EF_IMSI" and out["instruction"] == "SELECT" and out["file"] == "EF_IMSI"
    assert "SELECT File EF_IMSI" in run("decode", "apdu", "00a40004026f07").output
    assert as_json("decode", "apdu", "00a4040410a0000000871002ffffffff8907090000")["file"] == "ADF.USIM"
    assert as_json("decode", "apdu", "00a40804047f106f3c")["summary"] == "SELECT File DF_TELECOM/EF_SMS"
    assert as_json("decode", "apdu", "00b0870009")["summary"] == "READ BINARY SFI 07"
    assert as_json("decode", "apdu", "0088008122" + "10" + "00" * 16 + "10" + "00" * 16)["summary"] == "AUTHENTICATE"


# --- decode sms -----------------------------------------------------------------------------

def _deliver(**kw) -> tpdu.SmsDeliver:
    return tpdu.SmsDeliver(Address("Operator", Ton.ALPHANUMERIC, Npi.UNKNOWN), scts=SCTS, **kw)


def test_sms_shows_every_tp_field_and_an_alphanumeric_originator():
    raw = _deliver(dcs=0x00, user_data=gsm7.encode_text("Hi {DM}"), status_report=True).encode().hex()
    out = as_json("decode", "sms", raw)
    assert (out["type"], out["oa"], out["oa_type"]["ton"], out["text"]) == ("SMS-DELIVER", "Operator",
                                                                            "alphanumeric", "Hi {DM}")
    assert out["scts"] == SCTS.hex() and out["scts_time"] == "2026-04-21T14:00:00+02:00"
    assert (out["mti"], out["mms"], out["sri"], out["lp"], out["rp"], out["udhi"]) == (0, True, True, False, False,
                                                                                       False)
    assert out["udl"] == 9 and out["dcs_alphabet"] == "gsm7"


def test_sms_submit_shows_mr_and_validity_period():
    raw = tpdu.SmsSubmit(Address.parse("+491720000042"), mr=0x2A, vp=167, user_data=b"x").encode().hex()
    out = as_json("decode", "sms", "--mo", raw)
    assert (out["mr"], out["vp"], out["vp_period"], out["vpf"], out["da"]) == (42, 167, "24 h", "relative",
                                                                              "+491720000042")


def test_sms_parts_are_reassembled():
    texts = ["first part, ", "second part"]
    raws = [_deliver(dcs=0x00, user_data=gsm7.encode_text(t), ies=[Concat(9, 2, n).to_ie()]).encode().hex()
            for n, t in enumerate(texts, 1)]
    out = as_json("decode", "sms", raws[1], raws[0])
    assert len(out["parts"]) == 2 and out["messages"][0]["text"] == "first part, second part"
    alone = as_json("decode", "sms", raws[0], raws[0])
    assert alone["messages"] == [] and alone["incomplete"] == [{"address": "Operator", "ref": 9, "total": 2,
                                                                "missing": [2]}]


def test_sms_wap_push_carrying_a_package_0_is_decoded():
    pkg0 = notification.build_pkg0(session_id=7, server_id="dm.example", password="pw", nonce=b"\x01")
    push = notification.encode_push(pkg0, tid=3)
    raw = _deliver(dcs=0xF5, user_data=push, ies=split_parts(push, dest_port=2948, src_port=9200, ref=0)[0][0])
    out = as_json("decode", "sms", raw.encode().hex())
    assert out["wsp_push"]["pkg0"]["server_id"] == "dm.example" and out["wsp_push"]["pkg0"]["session_id"] == 7
    parts = split_parts(push + bytes(200), dest_port=2948, src_port=9200, ref=5)
    raws = [_deliver(dcs=0xF5, user_data=chunk, ies=ies).encode().hex() for ies, chunk in parts]
    assert "give every part" in as_json("decode", "sms", raws[0])["wsp_push"]
    message = as_json("decode", "sms", *raws)["messages"][0]
    assert message["port"] == 2948 and message["wsp_push"]["content_type"] == notification.NOTIFICATION_CONTENT_TYPE


def test_sms_bad_part_names_which_one():
    good = _deliver(user_data=b"x").encode().hex()
    res = run("decode", "sms", good, good[:-2])
    assert res.exit_code == 2 and "HEX #2" in res.output and len(res.output.strip().splitlines()) == 1


@pytest.mark.parametrize("argv, message", [
    (["calc", "milenage", "--k", "465b5ce8b199b49faa5f0a2ee238a6bc", "--op", "", "--rand",
      "23553cbe9637a89d218ae64dae47bf35", "--sqn", "ff9bb4d0b607", "--amf", "b9b9"], "OP: at byte 0"),
    (["calc", "bootstrap-mac", "--sec", "USERPIN", "--imsi", "001010123456789", "--userpin", "12\u00e94",
      "--body-hex", "01"], "not printable ASCII"),
    (["calc", "bootstrap-mac", "--sec", "NETWPIN", "--imsi", "00101\u0661123456789", "--body-hex", "01"],
     "not 6 to 15 decimal digits"),
])
def test_empty_or_non_ascii_inputs_exit_2_with_one_line(argv, message):
    from click.testing import CliRunner
    from dmsim.sim.cli.main import main
    res = CliRunner().invoke(main, argv)
    assert res.exit_code == 2 and (res.exception is None or isinstance(res.exception, SystemExit))
    assert message in res.output and "Traceback" not in res.output
