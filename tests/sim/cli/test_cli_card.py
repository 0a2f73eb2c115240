"""``dmsim card serve`` / ``dmsim card probe``: input checks (exit 2), a missing PC/SC service
(exit 1), and serve's start line and Ctrl-C, none of which need pcscd. Serving a card to pcscd
and probing it through the real stack is tests/cards/test_card_pcsc_path.py."""
import json
import os
import signal
import socket
import subprocess
import sys

import pytest
from click.testing import CliRunner

from dmsim.sim.cli.main import main

KEY = "00" * 16
PROFILE = """\
imsi: "001010123456789"
k: "000102030405060708090A0B0C0D0E0F"
opc: "0F0E0D0C0B0A09080706050403020100"
dm_bootstrap: "hello"
"""


def invoke(*args):
    return CliRunner().invoke(main, ["card", *args], catch_exceptions=False)


@pytest.mark.parametrize("args, message", [
    (["--rand", "00" * 16], "--rand and --autn go together"),
    (["--rand", "00" * 15, "--autn", "00" * 16], "--rand: 15 bytes (expected 16)"),
    (["--rand", "zz" * 16, "--autn", "00" * 16], "not a hex digit"),
    (["--scp03-keys", f"{KEY}:{KEY}"], "expected ENC:MAC:DEK"),
    (["--scp03-keys", f"{KEY}:{KEY}:{'00' * 15}"], "16, 24 or 32 bytes"),
    (["--scp03-keys", f"{KEY}:{KEY}:{KEY}", "--security-level", "22"], "expected 01, 03, 11, 13 or 33"),
    (["--pin", "12a4"], "4 to 8 digits"),
    (["--kvn", "0x300"], "is not an octet"),
    (["--kvn", "thirty"], "is not a number"),
])
def test_probe_bad_input_exits_2(args, message):
    result = invoke("probe", *args)
    assert result.exit_code == 2 and message in result.output, result.output


def test_serve_bad_input_exits_2(tmp_path):
    result = invoke("serve", "--profile", str(tmp_path / "none.yaml"))
    assert result.exit_code == 2 and "cannot read the file" in result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(PROFILE.replace("001010123456789", "12x"))
    result = invoke("serve", "--profile", str(bad))
    assert result.exit_code == 2 and f"{bad}:1" in result.output and "imsi" in result.output
    result = invoke("serve", "--profile", str(bad), "--vpcd", "localhost")
    assert result.exit_code == 2 and "HOST:PORT" in result.output


def test_probe_without_pcscd_exits_1(tmp_path):
    env = dict(os.environ, PCSCLITE_CSOCK_NAME=str(tmp_path / "no-pcscd.comm"))
    out = subprocess.run([sys.executable, "-m", "dmsim.sim.cli.main", "card", "probe", "--json"], env=env,
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "error" in json.loads(out.stdout)


def test_serve_prints_its_reader_and_stops_on_ctrl_c(tmp_path):
    path = tmp_path / "card.yaml"
    path.write_text(PROFILE)
    with socket.socket() as s:   # a port where nothing listens: the bridge keeps retrying
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    serve = subprocess.Popen([sys.executable, "-m", "dmsim.sim.cli.main", "card", "serve", "--profile", str(path),
                              "--vpcd", f"127.0.0.1:{port}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        info = json.loads(serve.stdout.readline())
        assert info["vpcd"] == f"127.0.0.1:{port}" and info["imsi"] == "001010123456789"
        assert info["atr"].startswith("3b") and info["dm_bootstrap"] is True and info["scp03"] is False
        serve.send_signal(signal.SIGINT)
        assert serve.wait(timeout=10) == 0, serve.stderr.read()
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()


def test_serve_without_vpcd_gives_up_with_one_clear_line(tmp_path):
    path = tmp_path / "card.yaml"
    path.write_text(PROFILE)
    with socket.socket() as s:   # a port where nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = subprocess.run([sys.executable, "-m", "dmsim.sim.cli.main", "card", "serve", "--profile", str(path),
                          "--vpcd", f"127.0.0.1:{port}", "--timeout", "0.5"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 1, out.stderr
    assert out.stderr.count("\n") == 1 and f"nothing listens on vpcd 127.0.0.1:{port}" in out.stderr
    assert "pcscd" in out.stderr and "Traceback" not in out.stderr
