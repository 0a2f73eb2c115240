"""``openssl s_client`` in the DHE_RSA suites of seed 000 §9.2.2 against dmsim's server endpoint
(``tls.server_endpoint``: the ClientHello picks the standard library's ssl), over loopback sockets;
the test is the I/O driver, as in test_tls_openssl.py. Certificates from the lab CA: the server's
RSA-2048 one, the device's ECDSA one (OMA-TS-DM_Security §5.4)."""
import pytest

import openssl_peer
from dmsim.network.dm import tls, tls_pki
from openssl_peer import LINE, got_line, lab_pems, requires_openssl, write_pems

pytestmark = requires_openssl

HOST = "dm.example.com"
DEV = "IMSI:001010000000042"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pki")
    ca = tls_pki.LabCa(b"lab CA of the DHE_RSA OpenSSL tests")
    ecc, rsa_cred = ca.issue_server(HOST), ca.issue_server_rsa(HOST)
    paths = write_pems(folder, lab_pems(ca, DEV))
    mutual = tls.x509_server_config(ecc.cert_pem, ecc.key_pem, client_ca_pem=ca.ca_pem,
                                    dhe_rsa=(rsa_cred.cert_pem, rsa_cred.key_pem))
    return mutual, paths


def run_s_client(args, server_config, until=got_line):
    """Accept one s_client connection on a dmsim server endpoint; return (endpoint, events, output, rc)."""
    return openssl_peer.run_s_client(args, server_config, until, stdin=LINE, endpoint=tls.server_endpoint,
                                     answer=b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")


def with_cert(paths, name="device"):
    return ["-cert", str(paths[name]), "-key", str(paths[name + "_key"]), "-CAfile", str(paths["ca"]),
            "-verify_return_error", "-servername", HOST]


@pytest.mark.parametrize("cipher,iana", [
    ("DHE-RSA-AES128-GCM-SHA256", "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256"),
    ("DHE-RSA-AES128-SHA256", "TLS_DHE_RSA_WITH_AES_128_CBC_SHA256"),
])
def test_openssl_s_client_in_a_dhe_rsa_suite_with_a_lab_certificate(pki, cipher, iana):
    config, paths = pki
    server, events, output, rc = run_s_client(["-tls1_2", "-ign_eof", "-cipher", cipher, *with_cert(paths)], config)
    assert server.backend == "openssl"
    assert events[0] == tls.HandshakeDone("TLSv1.2", iana, None, DEV), output
    assert b"".join(e.data for e in events if isinstance(e, tls.AppData)) == LINE
    assert f"Cipher is {cipher}".encode() in output or f"Cipher    : {cipher}".encode() in output
    assert b"Verify return code: 0 (ok)" in output  # OpenSSL verified the RSA certificate against the lab CA
    assert b"Server Temp Key: DH, 2048 bits" in output  # the ffdhe2048 group
    assert b"HTTP/1.1 200 OK" in output and rc == 0


def test_openssl_s_client_dhe_rsa_without_a_certificate_is_refused(pki):
    config, paths = pki
    server, events, output, rc = run_s_client(["-tls1_2", "-cipher", "DHE-RSA-AES128-GCM-SHA256",
                                               "-CAfile", str(paths["ca"])], config)
    assert server.backend == "openssl"
    assert events == [tls.TlsFailed("the client sent no certificate", tls.ALERT_HANDSHAKE_FAILURE)], output
    assert b"alert handshake failure" in output and b"SSL alert number 40" in output and rc != 0


def test_openssl_s_client_dhe_rsa_with_another_cas_certificate_is_refused(pki):
    config, paths = pki
    server, events, output, rc = run_s_client(["-tls1_2", "-cipher", "DHE-RSA-AES128-GCM-SHA256",
                                               *with_cert(paths, "foreign")], config)
    assert len(events) == 1 and isinstance(events[0], tls.TlsFailed) and events[0].alert == 48, (events, output)
    assert b"alert unknown ca" in output and b"SSL alert number 48" in output and rc != 0


def test_a_tls_1_1_client_cannot_offer_the_seeds_dhe_rsa_suites(pki):
    """The seed's DHE_RSA suites exist from TLS 1.2 only (SHA-256 PRF/MAC): OpenSSL does not put
    them in a TLS 1.1 ClientHello (it needs @SECLEVEL=0 to offer TLS 1.1 at all), so it offers
    only the TLS 1.0 DHE-RSA-AES128-SHA, which is no seed suite: mbedtls refuses it."""
    config, paths = pki
    server, events, output, rc = run_s_client(["-tls1_1", "-cipher", "DHE-RSA-AES128-SHA256:DHE-RSA-AES128-SHA:@SECLEVEL=0",
                                               *with_cert(paths)], config)
    assert server.backend == "mbedtls" and isinstance(events[-1], tls.TlsFailed), (events, output)
    assert b"SSL alert number 40" in output and rc != 0


def test_openssl_s_client_offering_both_gets_ecdhe_ecdsa_from_mbedtls(pki):
    config, paths = pki
    server, events, output, _ = run_s_client(
        ["-tls1_2", "-cipher", "DHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-GCM-SHA256", *with_cert(paths)], config)
    assert server.backend == "mbedtls"
    assert events[0] == tls.HandshakeDone("TLSv1.2", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", None, DEV), output


def test_openssl_s_client_offering_only_dhe_psk_gets_handshake_failure(pki):
    config, _ = pki
    psk_config = tls.server_config(psks={b"dev": b"k" * 16}, cert_pem=None, key_pem=None, mode="psk")
    for server_config in (config, psk_config):
        server, events, output, rc = run_s_client(
            ["-tls1_2", "-psk", (b"k" * 16).hex(), "-psk_identity", "dev", "-cipher", "DHE-PSK-AES128-GCM-SHA256"],
            server_config)
        assert isinstance(events[-1], tls.TlsFailed) and getattr(server, "backend", "mbedtls") == "mbedtls"
        assert b"alert handshake failure" in output and b"SSL alert number 40" in output and rc != 0
