"""The DHE_RSA suites on the server side (network/dm/tls_dhe.py, the standard library's ssl) and the
dispatcher that picks mbedtls or ssl from the ClientHello, in memory against dmsim's mbedtls client.
Seed 000 §9.2.2: "The DM Server SHALL support" TLS_DHE_RSA_WITH_AES_128_GCM_SHA256 and
TLS_DHE_RSA_WITH_AES_128_CBC_SHA256 in X509 mode; RFC 7919 ffdhe2048; OMA-TS-DM_Security §5.4."""
import dataclasses
import math
import shutil
import ssl
import subprocess
import warnings

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from dmsim.base.errors import ProtocolError, ScenarioError
from dmsim.network.dm import tls, tls_dhe, tls_pki
from dmsim.network.dm import tls_suites as suites
from tls_pump import pump as memory_pump

HOST = "dm.example.com"
DEV = "IMSI:001010000000042"
CA = tls_pki.LabCa(b"lab CA of the DHE_RSA tests")
DHE_GCM = suites.BY_IANA["TLS_DHE_RSA_WITH_AES_128_GCM_SHA256"]
DHE_CBC = suites.BY_IANA["TLS_DHE_RSA_WITH_AES_128_CBC_SHA256"]
DHE_RSA = (DHE_GCM, DHE_CBC)


@pytest.fixture(scope="module")
def rsa_cred():
    return CA.issue_server_rsa(HOST)


@pytest.fixture(scope="module")
def server_config(rsa_cred):
    ecc = CA.issue_server(HOST)
    return tls.x509_server_config(ecc.cert_pem, ecc.key_pem, client_ca_pem=CA.ca_pem,
                                  dhe_rsa=(rsa_cred.cert_pem, rsa_cred.key_pem))


def client(*offer, cred=None, ca=CA):
    own = (cred if cred is not None else CA.issue_device(DEV)) or None
    config = tls.x509_client_config(ca.ca_pem, HOST, cert_pem=own and own.cert_pem, key_pem=own and own.key_pem)
    return tls.TlsEndpoint(dataclasses.replace(config, suites=offer) if offer else config)


def pump(a, b):
    """Move flights between client ``a`` and server ``b`` (at most 20 rounds)."""
    return memory_pump(a, b, rounds=20)


def alerts(records):
    """Return the (level, description) of the cleartext alert records in ``records``."""
    out, at = [], 0
    while at + 5 <= len(records):
        length = int.from_bytes(records[at + 3:at + 5], "big")
        if records[at] == 21 and length == 2:
            out.append((records[at + 5], records[at + 6]))
        at += 5 + length
    return out


# --- the suite tables ------------------------------------------------------------------------

def test_only_dhe_psk_stays_unusable_on_the_server_side():
    assert suites.SERVER_UNUSABLE == {"DHE_PSK"}
    assert suites.OPENSSL_SERVED == {"DHE_RSA"}
    assert {s.key_exchange for s in suites.suites_for("x509", server=True)} == {"ECDHE_ECDSA", "DHE_RSA", "RSA"}
    assert all(s.min_version == suites.TLS_1_2 for s in DHE_RSA)  # no TLS 1.1 variant in the seed


def test_config_splits_the_suites_between_mbedtls_and_openssl(server_config):
    assert set(server_config.openssl_suites) == set(DHE_RSA)
    assert not set(server_config.mbedtls_suites) & set(DHE_RSA)
    assert set(server_config.mbedtls_suites) | set(DHE_RSA) == set(server_config.suites)
    assert [s.mbedtls_name for s in server_config.mbedtls_suites] == list(server_config.context.configuration.ciphers)


def test_a_server_without_rsa_credential_has_no_dhe_rsa_and_no_dispatch():
    ecc = CA.issue_server(HOST)
    config = tls.x509_server_config(ecc.cert_pem, ecc.key_pem)
    assert not config.openssl_suites and DHE_GCM not in config.suites
    assert isinstance(tls.server_endpoint(config), tls.TlsEndpoint)
    psk_only = tls.psk_server_config({b"a": b"k" * 16})
    assert isinstance(tls.server_endpoint(psk_only), tls.TlsEndpoint)


def test_an_rsa_main_certificate_serves_dhe_rsa_too(rsa_cred):
    config = tls.server_config(psks={}, cert_pem=rsa_cred.cert_pem, key_pem=rsa_cred.key_pem)
    assert set(config.openssl_suites) == set(DHE_RSA)
    assert isinstance(tls.server_endpoint(config), tls_dhe.ServerDispatch)


def test_the_dhe_credential_must_be_rsa_of_2048_bits():
    ecc = CA.issue_server(HOST)
    with pytest.raises(ScenarioError, match="RSA"):
        tls.x509_server_config(ecc.cert_pem, ecc.key_pem, dhe_rsa=(ecc.cert_pem, ecc.key_pem))


def test_a_client_endpoint_is_no_server_endpoint():
    with pytest.raises(ProtocolError):
        tls.server_endpoint(tls.x509_client_config(CA.ca_pem, HOST))


# --- the DH group and the lab CA's RSA key ---------------------------------------------------

def test_ffdhe2048_is_the_group_of_rfc_7919_appendix_a1():
    with warnings.catch_warnings():  # cryptography deprecates finite-field DH; the numbers are what we read
        warnings.simplefilter("ignore")
        numbers = serialization.load_pem_parameters(tls_dhe.FFDHE2048_PEM).parameter_numbers()
    # p = 2^2048 - 2^1984 + {[2^1918 * e] + 560316} * 2^64 - 1, e from its series to 400 terms
    terms = 400
    e_scaled = (sum(math.factorial(terms) // math.factorial(k) for k in range(terms + 1)) << 1918) \
        // math.factorial(terms)
    assert numbers.p == 2 ** 2048 - 2 ** 1984 + (e_scaled + 560316) * 2 ** 64 - 1
    assert numbers.g == 2


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_openssl_names_the_group_ffdhe2048():
    out = subprocess.run(["openssl", "pkeyparam", "-text", "-noout"], input=tls_dhe.FFDHE2048_PEM,
                         capture_output=True, timeout=10).stdout
    assert b"GROUP: ffdhe2048" in out


def test_the_lab_cas_rsa_key_is_derived_from_the_secret(rsa_cred):
    again = tls_pki.LabCa(b"lab CA of the DHE_RSA tests").issue_server_rsa(HOST)
    assert again == rsa_cred  # certificate and key, byte for byte
    key = serialization.load_pem_private_key(rsa_cred.key_pem, None)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
    assert key.public_key().public_numbers().e == 65537
    other = tls_pki.LabCa(b"another lab CA entirely!").issue_server_rsa(HOST)
    assert other.key_pem != rsa_cred.key_pem
    cert = tls_pki.x509.load_pem_x509_certificate(rsa_cred.cert_pem)
    cert.verify_directly_issued_by(CA.certificate)
    assert tls_pki.certificate_identity(cert.public_bytes(serialization.Encoding.DER)) == HOST


# --- handshakes through the dispatcher -------------------------------------------------------

@pytest.mark.parametrize("suite", DHE_RSA, ids=lambda s: s.iana)
def test_dmsim_client_offering_dhe_rsa_gets_it_from_openssl_with_its_certificate_bound(server_config, suite):
    c, s = client(suite), tls.server_endpoint(server_config)
    ev_c, ev_s = pump(c, s)
    assert s.backend == "openssl"
    assert ev_c == [tls.HandshakeDone("TLSv1.2", suite.iana)]
    assert ev_s == [tls.HandshakeDone("TLSv1.2", suite.iana, None, DEV)]
    assert s.peer_identity == DEV and s.peer_certificate and s.suite is suite and s.state == "open"
    assert s.version == suites.TLS_1_2 and s.psk_identity is None
    c.send(b"<SyncML>pkg1</SyncML>")
    assert s.receive_data(c.data_to_send()) == [tls.AppData(b"<SyncML>pkg1</SyncML>")]
    s.send(b"<SyncML>pkg2</SyncML>" * 2000)  # several records
    got = b"".join(e.data for e in c.receive_data(s.data_to_send()))
    assert got == b"<SyncML>pkg2</SyncML>" * 2000
    c.close()
    assert s.receive_data(c.data_to_send()) == [tls.Closed()] and s.state == "closed"


def test_a_client_offering_an_mbedtls_suite_too_gets_mbedtls(server_config):
    c, s = client(), tls.server_endpoint(server_config)  # every X.509 seed suite
    ev_c, ev_s = pump(c, s)
    assert s.backend == "mbedtls"
    assert ev_s == [tls.HandshakeDone("TLSv1.2", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", None, DEV)]


def test_rsa_key_transport_with_an_ecdsa_certificate_is_not_mbedtls_so_dhe_rsa_serves(server_config):
    rsa_kt = suites.BY_IANA["TLS_RSA_WITH_AES_128_GCM_SHA256"]
    c, s = client(rsa_kt, DHE_CBC), tls.server_endpoint(server_config)
    _, ev_s = pump(c, s)
    assert s.backend == "openssl" and ev_s[0].cipher == DHE_CBC.iana


def test_server_closes_with_close_notify(server_config):
    c, s = client(DHE_GCM), tls.server_endpoint(server_config)
    pump(c, s)
    s.close()
    assert c.receive_data(s.data_to_send()) == [tls.Closed()] and s.state == "closed"
    with pytest.raises(ProtocolError):
        s.send(b"x")


def test_a_client_without_certificate_is_refused_with_handshake_failure(server_config):
    c, s = client(DHE_GCM, cred=False), tls.server_endpoint(server_config)
    c_events, s_events = [], []
    c_out = c.data_to_send()
    s_events += s.receive_data(c_out)
    c_events += c.receive_data(s.data_to_send())
    s_events += s.receive_data(c.data_to_send())  # the empty Certificate message
    out = s.data_to_send()
    assert s.backend == "openssl"
    assert s_events == [tls.TlsFailed("the client sent no certificate", tls.ALERT_HANDSHAKE_FAILURE)]
    assert alerts(out) == [(2, tls.ALERT_HANDSHAKE_FAILURE)]
    assert isinstance(c.receive_data(out)[-1], tls.TlsFailed) and s.peer_identity is None


def test_another_cas_certificate_is_refused_by_openssl(server_config):
    foreign = tls_pki.LabCa(b"some other CA entirely").issue_device(DEV)
    c, s = client(DHE_GCM, cred=foreign), tls.server_endpoint(server_config)
    ev_c, ev_s = pump(c, s)
    assert len(ev_s) == 1 and isinstance(ev_s[0], tls.TlsFailed) and ev_s[0].alert == 48  # unknown_ca
    assert "certificate" in ev_s[0].reason and s.state == "failed" and s.peer_identity is None
    assert isinstance(ev_c[-1], tls.TlsFailed)


def test_without_client_ca_no_certificate_is_asked(rsa_cred):
    config = tls.server_config(psks={}, cert_pem=rsa_cred.cert_pem, key_pem=rsa_cred.key_pem, mode="x509")
    c, s = client(DHE_GCM, cred=False), tls.server_endpoint(config)
    ev_c, ev_s = pump(c, s)
    assert ev_s == [tls.HandshakeDone("TLSv1.2", DHE_GCM.iana)] and s.peer_identity is None


def test_a_client_hello_offering_only_dhe_psk_is_refused_with_handshake_failure(server_config):
    dhe_psk = suites.BY_IANA["TLS_DHE_PSK_WITH_AES_128_GCM_SHA256"]
    c = tls.TlsEndpoint(dataclasses.replace(tls.psk_client_config(b"dev", b"k" * 16), suites=(dhe_psk,)))
    s = tls.server_endpoint(dataclasses.replace(server_config, psks={b"dev": b"k" * 16}))
    s_events = s.receive_data(c.data_to_send())
    out = s.data_to_send()
    assert s.backend == "mbedtls" and s.state == "failed" and isinstance(s_events[-1], tls.TlsFailed)
    assert alerts(out) == [(2, tls.ALERT_HANDSHAKE_FAILURE)]


def test_a_tls_1_1_client_hello_offering_dhe_rsa_gets_protocol_version_from_openssl(server_config):
    """DHE_RSA runs over TLS 1.2 only (the seed's suites use SHA-256); a ClientHello whose
    client_version is TLS 1.1 is refused by OpenSSL (minimum TLS 1.2) with protocol_version."""
    hello = bytearray(client(DHE_GCM).data_to_send())
    hello[9:11] = suites.TLS_1_1.to_bytes(2, "big")  # ClientHello.client_version
    s = tls.server_endpoint(server_config)
    events = s.receive_data(bytes(hello))
    assert s.backend == "openssl" and len(events) == 1 and events[0].alert == tls.ALERT_PROTOCOL_VERSION
    assert alerts(s.data_to_send())[0][1] == tls.ALERT_PROTOCOL_VERSION


# --- the ClientHello reader ------------------------------------------------------------------

def test_a_client_hello_split_over_records_and_calls_is_read_whole(server_config):
    c, s = client(DHE_GCM), tls.server_endpoint(server_config)
    hello = c.data_to_send()
    body = hello[5:]
    half = len(body) // 2
    records = (bytes([22, 3, 3]) + half.to_bytes(2, "big") + body[:half]
               + bytes([22, 3, 3]) + (len(body) - half).to_bytes(2, "big") + body[half:])
    assert tls_dhe.offered_suites(records[:7]) is None
    assert tls_dhe.offered_suites(records) == [DHE_GCM.code, 0x00FF]  # and the SCSV of RFC 5746
    for byte in records[:-1]:
        assert s.receive_data(bytes([byte])) == [] and s.backend is None and s.state == "handshake"
    assert s.receive_data(records[-1:]) == [] and s.backend == "openssl"
    ev_c, ev_s = pump(c, s)
    assert ev_s == [tls.HandshakeDone("TLSv1.2", DHE_GCM.iana, None, DEV)]


@pytest.mark.parametrize("garbage", [
    b"GET / HTTP/1.1\r\n\r\n",                       # not TLS
    bytes([22, 3, 3, 0, 4, 2, 0, 0, 0]),             # a ServerHello first
    bytes([22, 3, 3, 0, 8, 1, 0, 0, 4, 3, 3, 0, 0]),  # a ClientHello too short for its suites
    bytes([22, 3, 3, 0xff, 0xff]),                   # a record above 2^14 + 2048
    bytes([22, 3, 3, 0, 4, 1, 0, 0x40, 1]),          # a ClientHello above 2^14 octets
    bytes([22, 3, 3, 0, 0]) * 3500,                  # empty records, without end
])
def test_what_is_not_a_client_hello_goes_to_mbedtls_which_refuses_it(server_config, garbage):
    s = tls.server_endpoint(server_config)
    events = s.receive_data(garbage)
    assert s.backend == "mbedtls" and s.state == "failed" and isinstance(events[-1], tls.TlsFailed)


def test_the_transport_ending_before_the_client_hello_fails(server_config):
    s = tls.server_endpoint(server_config)
    assert s.receive_data(b"\x16\x03") == []
    assert s.receive_data(b"") == [tls.TlsFailed("transport closed by the peer")] and s.state == "failed"
    assert s.receive_data(b"more") == [] and s.data_to_send() == b""
    with pytest.raises(ProtocolError):
        s.send(b"x")


def test_a_credential_function_is_called_at_the_first_dhe_client_only(rsa_cred):
    ecc = CA.issue_server(HOST)
    calls = []

    def credential():
        calls.append(1)
        return rsa_cred.cert_pem, rsa_cred.key_pem
    config = tls.x509_server_config(ecc.cert_pem, ecc.key_pem, dhe_rsa=credential)
    pump(client(cred=False), tls.server_endpoint(config))
    assert calls == []  # ECDHE_ECDSA: mbedtls
    for _ in range(2):
        _, ev_s = pump(client(DHE_GCM, cred=False), tls.server_endpoint(config))
        assert ev_s == [tls.HandshakeDone("TLSv1.2", DHE_GCM.iana)]
    assert calls == [1]  # one context per config


def test_a_credential_that_fails_gives_internal_error(rsa_cred):
    ecc = CA.issue_server(HOST)
    config = tls.x509_server_config(ecc.cert_pem, ecc.key_pem, dhe_rsa=lambda: (ecc.cert_pem, ecc.key_pem))
    c, s = client(DHE_GCM, cred=False), tls.server_endpoint(config)
    events = s.receive_data(c.data_to_send())
    assert len(events) == 1 and events[0].alert == tls_dhe.ALERT_INTERNAL_ERROR and s.state == "failed"
    assert alerts(s.data_to_send()) == [(2, tls_dhe.ALERT_INTERNAL_ERROR)]


def test_the_openssl_context_is_tls_1_2_with_exactly_the_dhe_rsa_suites(server_config):
    ctx = server_config.dhe_context
    assert ctx.minimum_version == ctx.maximum_version == ssl.TLSVersion.TLSv1_2
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    names = {c["name"] for c in ctx.get_ciphers() if c["protocol"] != "TLSv1.3"}
    assert names == {"DHE-RSA-AES128-GCM-SHA256", "DHE-RSA-AES128-SHA256"}
    assert ctx.options & ssl.OP_NO_RENEGOTIATION and ctx.options & ssl.OP_NO_TICKET
