"""libcoap's coap-client (libcoap3-bin 4.3.1, OpenSSL DTLS) against ``dmsim lwm2m server``: a GET of
/.well-known/core over DTLS PSK (``-u IDENTITY -k KEY``, the key as its octets) and over NoSec, a
wrong key, a NoSec POST /bs. Skipped without the binaries unless DMSIM_REQUIRE_LIBCOAP=1, then failed."""
import subprocess

from lwm2m_peer import IDENTITY, KEY, TIMEOUT, audit_records, libcoap, running_server, wait_for

from dmsim.network.coap import link_format


def coap_client(binary, *args):
    """Run coap-client with a 3 s cap on its wait (-B 3); return (exit code, stdout + stderr)."""
    result = subprocess.run([binary, "-B", "3", *args], capture_output=True, timeout=TIMEOUT + 5)
    return result.returncode, result.stdout + result.stderr


def links_in(output):
    line = next(line for line in output.splitlines() if line.startswith(b"<"))
    return {link.target: link for link in link_format.decode(line.strip())}


def test_libcoap_gets_well_known_core_over_dtls_psk(tmp_path):
    client = libcoap("coap-client-openssl")
    with running_server(tmp_path) as server:
        code, out = coap_client(client, "-u", IDENTITY.decode(), "-k", KEY.decode(),
                                f"{server.uris['coaps']}/.well-known/core")
        assert code == 0, out
        links = links_in(out)
        assert set(links) == {"/bs", "/rd"} and links["/rd"].get("rt") == "core.rd"
        assert wait_for(lambda: server.counts["handshakes"] == 1)
        assert server.counts["handshake_failed"] == 0
    (ok,) = [r for r in audit_records(tmp_path) if r["event"] == "handshake_ok"]
    assert ok["identity"] == IDENTITY.decode()


def test_libcoap_with_a_wrong_key_fails_and_the_server_counts_a_failed_handshake(tmp_path):
    client = libcoap("coap-client-openssl")
    with running_server(tmp_path) as server:
        _, out = coap_client(client, "-u", IDENTITY.decode(), "-k", "not-the-lab-key!",
                             f"{server.uris['coaps']}/.well-known/core")
        assert b"</rd>" not in out
        assert wait_for(lambda: server.counts["handshake_failed"] == 1), dict(server.counts)
        assert server.counts["handshakes"] == 0
    (failed,) = [r for r in audit_records(tmp_path) if r["event"] == "handshake_failed"]
    assert failed["identity"] == IDENTITY.decode() and "MAC" in failed["detail"]


def test_libcoap_over_nosec_discovers_but_cannot_bootstrap(tmp_path):
    client = libcoap("coap-client-notls")
    with running_server(tmp_path) as server:
        code, out = coap_client(client, f"{server.uris['coap']}/.well-known/core")
        assert code == 0 and set(links_in(out)) == {"/bs", "/rd"}
        _, out = coap_client(client, "-m", "post", f"{server.uris['coap']}/bs?ep=dev-lab-1")
        assert b"4.01" in out
        assert server.bootstrap.sessions == {}
