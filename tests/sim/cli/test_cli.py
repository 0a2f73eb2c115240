"""The command line as users and scripts use it (the command line of the README and ``dmsim --help``): names, flags, output and
exit codes."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import load_vectors

from dmsim.sim.cli.main import main

REPO = Path(__file__).resolve().parents[3]


def invoke(*args, input=None):
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def test_calc_auth_md5_matches_openssl_and_json():
    res = invoke("calc", "auth-md5", "--name", "Bruce1", "--password", "OhBehave", "--nonce", "4e6f6e6365313233",
                 "--json")
    out = json.loads(res.output)
    assert res.exit_code == 0
    assert out["digest_b64"] == "HqLtXrLpOepuOLf42xZBKQ==" and out["digest"] == "1ea2ed5eb2e939ea6e38b7f8db164129"


def test_calc_auth_md5_check_failure_exits_1():
    res = invoke("calc", "auth-md5", "--name", "a", "--password", "b", "--nonce", "00", "--check", "AAAA")
    assert res.exit_code == 1 and "MISMATCH" in res.output


def test_calc_auth_basic():
    res = invoke("calc", "auth-basic", "--name", "funambol", "--password", "funambol", "--json")
    assert json.loads(res.output)["cred_b64"] == "ZnVuYW1ib2w6ZnVuYW1ib2w="


def test_calc_bootstrap_mac_readable_json_and_check():
    args = ["calc", "bootstrap-mac", "--sec", "NETWPIN", "--imsi", "001010123456789", "--body-hex", "01 02:03 0405"]
    res = invoke(*args, "--json")
    out = json.loads(res.output)
    assert out["mac"] == "bb417c1517432090002c0ee44665909523dc2a98" and out["key"] == "0910101032547698"
    assert out["content_type"].startswith("application/vnd.syncml.dm+wbxml;NETWORKID;")
    assert "mac" in invoke(*args).output
    assert invoke(*args, "--check", "bb417c1517432090002c0ee44665909523dc2a98").exit_code == 0
    assert invoke(*args, "--check", "00" * 20).exit_code == 1


def test_bad_hex_exits_2_with_offset():
    res = CliRunner().invoke(main, ["calc", "bootstrap-mac", "--sec", "USERPIN", "--imsi", "001010123456789",
                                    "--userpin", "1234", "--body-hex", "0102zz"])
    assert res.exit_code == 2 and "byte 2" in res.output


def test_hex_from_stdin_and_decode_wbxml():
    from dmsim.network.dm import wbxml
    from dmsim.network.dm.tree import E
    doc = wbxml.encode(E("SyncML", E("SyncHdr", E("VerDTD", "1.2")), E("SyncBody", E("Final"))))
    res = invoke("decode", "wbxml", "-", input=doc.hex())
    assert res.exit_code == 0 and "<VerDTD>1.2</VerDTD>" in res.output
    bad = CliRunner().invoke(main, ["decode", "wbxml", doc[:-3].hex()])
    assert bad.exit_code == 2 and "at byte" in bad.output


def test_run_refuses_a_bad_override_with_exit_2():
    res = CliRunner().invoke(main, ["run", str(REPO / "scenarios/quickstart.yaml"), "--set", "links.sms.los=0.1"])
    assert res.exit_code == 2 and "--set" in res.output and "loss" in res.output


def test_run_writes_a_run_folder(tmp_path):
    res = invoke("run", str(REPO / "scenarios/quickstart.yaml"), "--out", str(tmp_path / "run"), "--seed", "9",
                 "--replicas", "1", "--set", "fleet.size=30")
    assert res.exit_code == 0, res.output
    run = tmp_path / "run"
    assert {"sessions.csv", "summary.json", "manifest.json", "latency_cdf.png", "completions.png",
            "failure_reasons.png"} <= {p.name for p in run.iterdir()}
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["seed"] == 9 and manifest["replicas"] == 1 and manifest["versions"]["simpy"]
    (run / "latency_cdf.png").unlink()
    assert invoke("plot", str(run)).exit_code == 0 and (run / "latency_cdf.png").exists()


def test_scenario_check_names_file_line_and_path(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("fleet:\n  size: 10\nlinks:\n  sms:\n    loss: 2\n")
    res = CliRunner().invoke(main, ["scenario", "check", str(bad)])
    assert res.exit_code == 2 and "bad.yaml:5" in res.output and "links.sms.loss" in res.output


def test_ctrl_c_leaves_readable_results(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "dmsim.sim.cli.main", "run", str(REPO / "scenarios/quickstart.yaml"),
                             "--out", str(out), "--set", "fleet.size=200000", "--set", "replicas=1",
                             "--set", "arrival={kind: all_at_once}", "--no-plots"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not (out / "sessions.csv.part").exists() and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert not list(out.glob("*.part"))
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "interrupted"
    lines = (out / "sessions.csv").read_text().splitlines()
    assert lines[0].startswith("replica,") and all(line.count(",") == lines[0].count(",") for line in lines)


def test_server_command_listens_on_loopback():
    proc = subprocess.Popen([sys.executable, "-m", "dmsim.sim.cli.main", "server", "--http", "127.0.0.1:0"],
                            stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        line = proc.stdout.readline()
        info = json.loads(line)
        assert info["listening"].startswith("http://127.0.0.1:")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.parametrize("v", load_vectors("cards", "milenage"), ids=lambda v: v["id"])
def test_calc_milenage_vectors(v):
    i, e = v["inputs"], v["expected"]
    res = invoke("calc", "milenage", "--k", i["k"], "--op", i["op"], "--rand", i["rand"], "--sqn", i["sqn"],
                 "--amf", i["amf"], "--json")
    out = json.loads(res.output)
    assert (out["opc"], out["mac_a"], out["mac_s"], out["res"], out["ck"], out["ik"], out["ak"], out["ak_star"]) == (
        e["opc"], e["f1"], e["f1star"], e["f2res"], e["f3ck"], e["f4ik"], e["f5ak"], e["f5star_ak"])
    sqn_xor_ak = bytes(a ^ b for a, b in zip(bytes.fromhex(i["sqn"]), bytes.fromhex(e["f5ak"]))).hex()
    assert out["autn"] == sqn_xor_ak + i["amf"] + e["f1"]


def test_calc_milenage_needs_one_operator_key():
    res = CliRunner().invoke(main, ["calc", "milenage", "--k", "00" * 16, "--rand", "00" * 16, "--sqn", "00" * 6,
                                    "--amf", "0000"])
    assert res.exit_code == 2 and "--op" in res.output


def test_calc_gba_vectors():
    naf, btid = (next(v for v in load_vectors("network", "gba_kdf") if v["id"] == i)
                 for i in ("gba-ks-naf-ts33221", "gba-btid"))
    i = naf["inputs"]
    out = json.loads(invoke("calc", "gba-naf", "--ks", i["Ks_hex"], "--rand", i["RAND"], "--impi", i["IMPI"],
                            "--naf-fqdn", i["NAF_FQDN"], "--ua-id", i["Ua_protocol_id_hex"], "--json").output)
    assert out["ks_ext_naf"] == naf["expected"]["Ks_NAF_or_Ks_ext_NAF"]
    assert out["ks_int_naf"] == naf["expected"]["Ks_int_NAF"] and out["naf_id"] == i["NAF_Id_hex"]
    out = json.loads(invoke("calc", "gba-btid", "--rand", btid["inputs"]["RAND"], "--bsf-fqdn",
                            btid["inputs"]["bsf_fqdn"], "--json").output)
    assert out["btid"] == btid["expected"]["btid"]


def test_decode_ota_vector_verifies_and_a_wrong_key_exits_1():
    v = next(v for v in load_vectors("cards", "scp80_packet") if v["id"] == "scp80-cmd-aes128-ciphered-cc")
    i = v["inputs"]
    args = ["decode", "ota", v["expected"]["command_packet"], "--kic", i["kic"], "--json"]
    good = json.loads(invoke(*args, "--kid", i["kid"]).output)
    assert good["verified"] and good["data"] == i["apdu"] and good["tar"] == i["tar"]
    bad = CliRunner().invoke(main, args + ["--kid", "00" * 16])
    assert bad.exit_code == 1 and json.loads(bad.output)["status"] == 1
    with_udh = json.loads(invoke("decode", "ota", "027000" + v["expected"]["command_packet"], "--kic", i["kic"],
                                 "--kid", i["kid"], "--json").output)
    assert with_udh["data"] == i["apdu"]


def test_decode_sms_udh_and_apdu():
    v = load_vectors("network", "sms_tpdu")[0]
    out = json.loads(invoke("decode", "sms", v["inputs"]["tpdu_hex"], "--mo", "--json").output)
    e = v["expected"]
    assert (out["type"], out["da"], out["pid"], out["dcs"]) == ("SMS-SUBMIT", e["da"], e["pid"], e["dcs"])
    assert out["udh"]["ports"] == {"dest": 9204, "src": 9204}
    assert out["udh"]["concat"] == {"ref": 1, "total": 2, "seq": 1}
    udh = json.loads(invoke("decode", "udh", "0605040b8423f0", "--json").output)
    assert udh["ports"] == {"dest": 2948, "src": 9200}
    apdu = json.loads(invoke("decode", "apdu", "00a4040410a0000000871002ffffffff8907090000", "--json").output)
    assert (apdu["ins"], apdu["case"], apdu["lc"]) == ("a4", 3, 16)
    bad = CliRunner().invoke(main, ["decode", "apdu", "00a4040410a000"])
    assert bad.exit_code == 2 and "at byte 4" in bad.output
