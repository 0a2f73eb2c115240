"""Smoke test of bench/real_server.py (DM sessions against the real server on loopback) with
tiny sizes, so the benchmark cannot rot: every mode completes its sessions with the seed suite,
the store keeps every account and a restarted server authenticates the first session at once."""
import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[3] / "bench" / "real_server.py"


def run_bench(*args: str) -> tuple[int, list[dict], str]:
    """Return (exit code, JSON lines, stderr) of one benchmark run."""
    proc = subprocess.run([sys.executable, str(BENCH), "--json", *args], capture_output=True, text=True, timeout=60)
    return proc.returncode, [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")], proc.stderr


def test_real_server_benchmark_runs_every_mode():
    code, lines, err = run_bench("--sessions", "3", "--concurrency", "1,2", "--modes", "http,http-ka,psk,x509")
    assert code == 0, err
    rows = [r for r in lines if "mode" in r]
    assert [(r["mode"], r["concurrency"]) for r in rows] == [
        (m, c) for m in ("http", "http-ka", "psk", "x509") for c in (1, 2)]
    for r in rows:
        assert r["ok"] == r["sessions"] == 3 and r["retries"] == 0, r
        assert r["sessions_per_s"] > 0 and 0 < r["p50_ms"] <= r["p99_ms"]
        assert 0 <= r["handshake_share"] <= 1
    ciphers = {r["mode"]: r["cipher"] for r in rows}
    assert ciphers["psk"] == "TLS_PSK_WITH_AES_128_GCM_SHA256"
    assert ciphers["x509"] == "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"
    summary = {k: v for r in lines if "mode" not in r for k, v in r.items()}
    assert summary["server"] == "subprocess" and summary["provisioned"] == 3
    assert summary["accounts"] == 3 and summary["read"] == 3 and summary["store_bytes_closed"] > 0
    assert summary["ok"] is True and summary["retries"] == 0  # restart: nonces and PSK survived
    assert summary["x509_ecdhe_curve"].startswith(("secp", "x25519", "brainpool"))  # the probe read it


def test_inproc_server_fallback_runs():
    code, lines, err = run_bench("--sessions", "2", "--concurrency", "1", "--modes", "http", "--server", "inproc")
    assert code == 0, err
    assert any(r.get("server") == "inproc" for r in lines)
    assert [r["ok"] for r in lines if "mode" in r] == [2]


def test_bad_arguments_exit_2():
    for args in (["--modes", "ftp"], ["--concurrency", "0"], ["--sessions", "0"]):
        proc = subprocess.run([sys.executable, str(BENCH), *args], capture_output=True, text=True, timeout=30)
        assert proc.returncode == 2, (args, proc.stderr)
