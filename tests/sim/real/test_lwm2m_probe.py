"""``dmsim lwm2m probe`` (sim/real/lwm2m_probe.py): a DTLS PSK handshake then a CoAP ping over a real
socket, against ``openssl s_server -dtls1_2 -psk`` (DTLS without CoAP: the handshake succeeds, the
ping cannot) and against dmsim's own server (both succeed); failures exit 1 naming the step."""
import json

import pytest
from click.testing import CliRunner

from lwm2m_peer import (IDENTITY, KEY, LOCAL, PIN, PIN_IDENTITY, free_udp_port, openssl, read_until,
                        running_server)

from dmsim.sim.cli.lwm2m import lwm2m

WRONG = bytes(16)


def run_probe(*args):
    result = CliRunner().invoke(lwm2m, ["probe", *args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def probe_json(uri, identity=IDENTITY, key=KEY, *extra):
    code, out, err = run_probe(uri, "--psk-identity", identity.decode(), "--psk", key.hex(), "--json", *extra)
    return code, json.loads(out), err


@pytest.fixture
def s_server():
    """``openssl s_server -dtls1_2 -psk KEY -psk_identity IDENTITY -nocert`` on a free port; yields
    (uri, process)."""
    port = free_udp_port()
    with openssl("s_server", "-dtls1_2", "-accept", f"{LOCAL}:{port}", "-nocert", "-psk", KEY.hex(),
                 "-psk_identity", IDENTITY.decode()) as proc:
        assert b"ACCEPT" in read_until(proc, b"ACCEPT")
        yield f"coaps://{LOCAL}:{port}", proc


def test_openssl_s_server_completes_the_handshake_but_cannot_answer_the_ping(s_server):
    uri, proc = s_server
    code, result, err = probe_json(uri, IDENTITY, KEY, "--timeout", "1")
    assert code == 1
    assert result["handshake"] == "ok" and result["suite"].startswith("TLS_PSK_WITH_AES_128_")
    assert result["handshake_ms"] > 0 and result["ping"] == "failed" and result["ping_rtt_ms"] is None
    assert err.strip() == "probe failed: ping failed: no answer to the CoAP ping within 1 s"
    # what s_server got is our Empty CON: version 1, type CON, code 0.00
    assert read_until(proc, b"\x40\x00", timeout=1)


def test_a_wrong_psk_fails_the_handshake_against_openssl(s_server):
    uri, _ = s_server
    code, result, err = probe_json(uri, IDENTITY, WRONG, "--timeout", "2")
    assert code == 1 and result["handshake"] == "failed" and result["ping"] == "not_run"
    assert err.startswith("probe failed: handshake failed: the peer sent a fatal alert")


def test_probe_of_dmsim_server_succeeds_both_steps(tmp_path):
    with running_server(tmp_path) as server:
        code, result, err = probe_json(server.uris["coaps"])
        assert code == 0 and err == ""
        assert result["ok"] is True and result["handshake"] == "ok" and result["ping"] == "ok"
        assert result["suite"] == "TLS_PSK_WITH_AES_128_CCM_8" and result["ping_rtt_ms"] >= 0
        code, out, _ = run_probe(server.uris["coaps"], "--psk-identity", IDENTITY.decode(), "--psk", KEY.hex())
        assert code == 0 and "TLS_PSK_WITH_AES_128_CCM_8" in out and "ping_rtt_ms" in out


def test_a_wrong_psk_fails_the_handshake_against_dmsim_server(tmp_path):
    with running_server(tmp_path) as server:
        code, result, err = probe_json(server.uris["coaps"], IDENTITY, WRONG, "--timeout", "2")
        assert code == 1 and result["handshake"] == "failed" and result["ok"] is False
        assert err.startswith("probe failed: handshake failed: ")
        assert server.counts["handshake_failed"] == 1


def test_low_entropy_offers_only_ecdhe_psk(tmp_path, s_server):
    with running_server(tmp_path) as server:
        code, result, _ = probe_json(server.uris["coaps"], PIN_IDENTITY, PIN, "--low-entropy")
        assert code == 0 and result["suite"] == "TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256"
    # s_server's default suites include plain PSK ones, and ECDHE-PSK: a PIN never runs the former
    uri, _ = s_server
    code, result, _ = probe_json(uri, IDENTITY, KEY, "--low-entropy", "--timeout", "1")
    assert result["handshake"] == "ok" and result["suite"] == "TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256"


def test_low_entropy_probe_finds_no_suite_on_a_plain_psk_only_server():
    port = free_udp_port()
    with openssl("s_server", "-dtls1_2", "-accept", f"{LOCAL}:{port}", "-nocert", "-psk", KEY.hex(),
                 "-psk_identity", IDENTITY.decode(), "-cipher", "PSK-AES128-CCM8") as proc:
        assert b"ACCEPT" in read_until(proc, b"ACCEPT")
        code, result, err = probe_json(f"coaps://{LOCAL}:{port}", IDENTITY, KEY, "--low-entropy", "--timeout", "1")
    assert code == 1 and result["handshake"] == "failed" and "handshake failed" in err


def test_coap_nosec_probe_is_a_ping_only(tmp_path):
    with running_server(tmp_path) as server:
        code, out, err = run_probe(server.uris["coap"], "--json")
    result = json.loads(out)
    assert code == 0 and result["handshake"] == "skipped" and result["ping"] == "ok" and result["suite"] is None


def test_a_closed_port_fails_the_ping():
    code, out, err = run_probe(f"coap://{LOCAL}:{free_udp_port()}", "--json", "--timeout", "1")
    assert code == 1 and json.loads(out)["ping"] == "failed" and err.startswith("probe failed: ping failed:")


@pytest.mark.parametrize("args, message", [
    (["http://127.0.0.1:5684"], "not a CoAP server address"),
    (["coaps://127.0.0.1:5684/rd"], "not a CoAP server address"),
    (["coaps://127.0.0.1:99999", "--psk-identity", "a", "--psk", "00"], "uri"),
    (["coaps://127.0.0.1:5684"], "needs a PSK identity and key"),
    (["coaps://127.0.0.1:5684", "--psk-identity", "a", "--psk", "0g"], "not a hex digit"),
])
def test_input_that_does_not_parse_exits_2(args, message):
    result = CliRunner().invoke(lwm2m, ["probe", *args])
    assert result.exit_code == 2 and message in result.output
