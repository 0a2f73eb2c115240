"""Smoke test of bench/lwm2m.py (LwM2M DTLS handshakes and SMS-binding messages per second) with
tiny counts, so the benchmark cannot rot: every mode negotiates its suite in the expected flights,
resumption needs no flight where Mbed TLS can save the suite and is reported as impossible where it
cannot, and every SMS case gets the verdict it should. Its speed is not tested."""
import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "lwm2m.py"
SUITES = {"psk-ccm8": "TLS_PSK_WITH_AES_128_CCM_8", "psk-cbc": "TLS_PSK_WITH_AES_128_CBC_SHA256",
          "ecdhe-psk": "TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256", "rpk": "TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8",
          "x509": "TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8"}


def run_bench(out: Path, *args: str) -> tuple[subprocess.CompletedProcess, dict | None]:
    """Return the finished run and its JSON report (None when it wrote none)."""
    proc = subprocess.run([sys.executable, str(BENCH), "--repeat", "1", "--out", str(out), *args],
                          capture_output=True, text=True, timeout=120)
    report = out / "lwm2m.json"
    return proc, json.loads(report.read_text()) if report.exists() else None


def test_every_mode_and_algorithm_runs(tmp_path):
    proc, report = run_bench(tmp_path, "--handshakes", "2", "--resumes", "3", "--messages", "4")
    assert proc.returncode == 0, proc.stderr
    assert report["bench"] == "lwm2m" and "2.28" in report["mbedtls"]
    hs = {r["mode"]: r for r in report["handshakes"]}
    assert {m: r["suite"] for m, r in hs.items()} == SUITES
    assert {m: r["ecdhe_curve"] is None for m, r in hs.items()} == {m: m.startswith("psk") for m in SUITES}
    assert all(r["ecdhe_curve"].startswith(("secp", "x")) for m, r in hs.items() if not m.startswith("psk"))
    for r in hs.values():
        assert r["ops"] == 2 and r["per_s"] > 0 and r["server_per_s"] > 0
        assert r["client_ms"] > 0 and r["server_ms"] > 0
        # ClientHello, HelloVerifyRequest, ClientHello + cookie, server flight, client flight, server Finished
        assert r["flights"] == 6 and r["datagrams"] >= 6
        assert r["bytes"] == r["bytes_c2s"] + r["bytes_s2c"] and r["max_datagram"] <= 1232
    assert hs["psk-ccm8"]["bytes"] < hs["ecdhe-psk"]["bytes"] < hs["rpk"]["bytes"] < hs["x509"]["bytes"]

    resume = {r["mode"]: r for r in report["resume"]}
    for mode in ("psk-ccm8", "rpk", "x509"):  # AEAD suites: Mbed TLS saves the association
        r = resume[mode]
        assert r["supported"] and r["ops"] == 3 and r["flights"] == r["datagrams"] == r["bytes"] == 0
        assert r["sealed_bytes"] > 0 and r["handshake_over_resume"] > 0
    for mode in ("psk-cbc", "ecdhe-psk"):  # CBC suites: mbedtls_ssl_context_save refuses them
        assert resume[mode]["supported"] is False and "AEAD" in resume[mode]["reason"]

    sms = {(r["algorithm"], r["message"], r["op"]): r for r in report["sms"]}
    assert set(sms) == {(a, m, o) for a in ("aes128", "3des3") for m in ("register", "read", "read-2.05")
                        for o in ("protect", "unprotect", "replay", "bad_mac")}
    for (algorithm, message, op), r in sms.items():
        assert r["ops"] == 4 and r["per_s"] > 0 and r["us"] > 0
        assert r["direction"] == ("mt" if message == "read" else "mo")
        assert r["coap_bytes"] <= (98 if algorithm == "aes128" else 106)  # one SMS each
        assert r["coap_bytes"] + 25 <= r["tpdu_bytes"] <= 140 + 24  # UDH, header, CNTR, CC, TPDU fields
    assert sms["aes128", "register", "protect"]["coap_bytes"] > 80  # the whole Register, SMS binding and number


def test_jobs_adds_a_parallel_rate(tmp_path):
    proc, report = run_bench(tmp_path, "--handshakes", "1", "--resumes", "2", "--messages", "2", "--jobs", "2",
                             "--modes", "psk-ccm8", "--algorithms", "aes128")
    assert proc.returncode == 0, proc.stderr
    rows = report["handshakes"] + report["resume"] + report["sms"]
    assert len(rows) == 1 + 1 + 12 and all(r["jobs_per_s"] > 0 for r in rows)
    assert "2 procs/s" in proc.stdout


def test_bad_arguments_exit_2(tmp_path):
    for args in (["--modes", "psk-gcm"], ["--algorithms", "des"], ["--handshakes", "0"], ["--jobs", "0"]):
        proc, report = run_bench(tmp_path, *args)
        assert proc.returncode == 2 and report is None, (args, proc.stderr)
