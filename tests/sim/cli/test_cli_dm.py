"""``dmsim calc pkg0`` and ``dmsim decode pkg0`` (the command line of the README and ``dmsim --help``): output keys, the published
vector, digest_valid and exit codes (1 invalid digest, 2 bad input with its offset)."""
import json

import click
import pytest
from click.testing import CliRunner
from conftest import load_vectors

from dmsim.sim.cli.dm import calc_pkg0_cmd, decode_pkg0_cmd

V = load_vectors("network", "dm_pkg0_digest")[0]
I, E = V["inputs"], V["expected"]
CALC = ["calc", "pkg0", "--version", str(I["version"]), "--ui-mode", str(I["ui_mode"]), "--initiator",
        str(I["initiator"]), "--session-id", str(I["session_id"]), "--server-id", I["server_identifier"],
        "--password", I["password"], "--nonce", I["nonce_hex"]]


@click.group()
def dmsim():
    """The commands as sim/cli/main.py registers them: ``calc pkg0`` and ``decode pkg0``."""


dmsim.add_command(click.Group("calc", commands={"pkg0": calc_pkg0_cmd}))
dmsim.add_command(click.Group("decode", commands={"pkg0": decode_pkg0_cmd}))


def invoke(*args, input=None):
    return CliRunner().invoke(dmsim, list(args), input=input, catch_exceptions=False)


def test_calc_pkg0_vector_json():
    res = invoke(*CALC, "--json")
    assert res.exit_code == 0
    out = json.loads(res.output)
    assert out["pkg0"] == E["package0_hex"] and out["digest"] == E["digest_hex"]
    assert out["trigger"] == E["trigger_hex"] and out["b64_h_trigger"] == E["b64_h_trigger"]
    assert out["b64_h_server_id_password"] == E["b64_h_serverid_pwd"]
    assert out["pkg1_session_id"] == E["pkg1_sessionid_hex_upper"]
    assert out["wsp_push"] == "00" + "06" + "03" + "c4" + "af87" + E["package0_hex"]
    assert all(key == key.lower() for key in out)


def test_calc_pkg0_readable_and_vendor_body():
    res = invoke(*CALC)
    assert res.exit_code == 0 and "digest" in res.output and E["digest_hex"] in res.output
    out = json.loads(invoke(*CALC, "--vendor-hex", "ab:cd", "--json").output)
    assert out["pkg0"].endswith(E["trigger_hex"] + "abcd") and out["digest"] != E["digest_hex"]


def test_decode_pkg0_fields_and_digest_valid():
    res = invoke("decode", "pkg0", E["package0_hex"], "--json")
    out = json.loads(res.output)
    assert res.exit_code == 0 and "digest_valid" not in out
    assert (out["version"], out["ui_mode"], out["ui_mode_name"], out["initiator"], out["session_id"],
            out["server_id"]) == (12, 2, "informative", 1, 4660, "funambol")
    good = invoke("decode", "pkg0", E["package0_hex"], "--password", "srvpwd", "--nonce", "", "--json")
    assert good.exit_code == 0 and json.loads(good.output)["digest_valid"] is True
    named = invoke("decode", "pkg0", E["package0_hex"], "--server-id", "funambol", "--password", "srvpwd",
                   "--nonce", "")
    assert named.exit_code == 0 and "digest_valid" in named.output


@pytest.mark.parametrize("extra", [["--password", "wrong", "--nonce", ""], ["--password", "srvpwd", "--nonce", "00"],
                                   ["--server-id", "other", "--password", "srvpwd", "--nonce", ""]])
def test_decode_pkg0_invalid_digest_exits_1(extra):
    res = invoke("decode", "pkg0", E["package0_hex"], *extra, "--json")
    assert res.exit_code == 1 and json.loads(res.output)["digest_valid"] is False


def test_round_trip_from_stdin():
    made = json.loads(invoke(*CALC[:-1], "0a0b0c", "--version", "13", "--json").output)
    res = invoke("decode", "pkg0", "-", "--password", "srvpwd", "--nonce", "0a0b0c", "--json", input=made["pkg0"])
    out = json.loads(res.output)
    assert res.exit_code == 0 and out["digest_valid"] is True and out["version"] == 13


def test_bad_hex_exits_2_with_offset():
    res = CliRunner().invoke(dmsim, ["decode", "pkg0", E["package0_hex"][:10] + "zz"])
    assert res.exit_code == 2 and "byte 5" in res.output
    res = CliRunner().invoke(dmsim, CALC[:-1] + ["01x2"])
    assert res.exit_code == 2 and "--nonce" in res.output and "byte 1" in res.output


def test_truncated_package_exits_2_with_offset():
    res = CliRunner().invoke(dmsim, ["decode", "pkg0", E["package0_hex"][:-4]])
    assert res.exit_code == 2 and "at byte 23" in res.output and "server identifier length 8" in res.output
    res = CliRunner().invoke(dmsim, ["decode", "pkg0", E["package0_hex"][:40]])
    assert res.exit_code == 2 and "at byte 20" in res.output


def test_bad_options_exit_2():
    assert CliRunner().invoke(dmsim, ["decode", "pkg0", E["package0_hex"], "--password", "x"]).exit_code == 2
    assert CliRunner().invoke(dmsim, CALC + ["--ui-mode", "4"]).exit_code == 2
    assert CliRunner().invoke(dmsim, CALC + ["--server-id", "s" * 256]).exit_code == 2


def test_registered_in_dmsim_main():
    from dmsim.sim.cli.main import main
    calc, decode = main.commands["calc"], main.commands["decode"]
    if "pkg0" not in calc.commands:
        pytest.skip("sim/cli/main.py does not register calc/decode pkg0 yet")
    assert calc.commands["pkg0"] is calc_pkg0_cmd and decode.commands["pkg0"] is decode_pkg0_cmd
