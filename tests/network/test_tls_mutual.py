"""Mutual X.509 authentication in memory: the lab CA (network/dm/tls_pki.py) and a server that
requests and requires client certificates (OMA-TS-DM_Security-V1_3 §5.4, DM-SEC-S-002-M; seed 000
§9.2.2 X509 mode, ECC keys >= 256 bits)."""
import dataclasses
import datetime

import pytest
from cryptography import x509 as cx509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from dmsim.base.errors import DecodeError, ScenarioError
from dmsim.network.dm import tls, tls_pki
from dmsim.network.dm import tls_suites as suites
from tls_pump import pump

HOST = "dm.example.com"
DEV = "IMSI:001010000000042"




@pytest.fixture(scope="module")
def ca():
    return tls_pki.LabCa(b"seeded secret of the lab CA tests")


@pytest.fixture(scope="module")
def server_config(ca):
    cred = ca.issue_server(HOST)
    return tls.x509_server_config(cred.cert_pem, cred.key_pem, client_ca_pem=ca.ca_pem)


def client_config(ca, cred=None, suite=None):
    config = tls.x509_client_config(ca.ca_pem, HOST, cert_pem=cred and cred.cert_pem, key_pem=cred and cred.key_pem)
    return dataclasses.replace(config, suites=(suite,)) if suite else config


def self_signed(name=DEV, curve=ec.SECP256R1()):
    """Return a Credential: a self-signed client certificate naming ``name``."""
    key = ec.generate_private_key(curve)
    subject = cx509.Name([cx509.NameAttribute(NameOID.COMMON_NAME, name)])
    start = datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc)
    cert = (cx509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(5).not_valid_before(start).not_valid_after(start.replace(year=2045))
            .sign(key, hashes.SHA256()))
    return tls_pki.Credential(cert.public_bytes(serialization.Encoding.PEM), tls_pki._key_pem(key), name)


# --- the lab CA -------------------------------------------------------------------------------

def test_lab_ca_is_deterministic_from_its_secret_and_p256():
    a, b, other = (tls_pki.LabCa(s) for s in (b"s" * 32, b"s" * 32, b"t" * 32))
    assert a.ca_pem == b.ca_pem and a.ca_pem != other.ca_pem
    assert a.issue_device(DEV) == b.issue_device(DEV) != other.issue_device(DEV)
    assert a.issue_server(HOST) == b.issue_server(HOST)
    for pem in (a.ca_pem, a.issue_device(DEV).cert_pem, a.issue_server(HOST).cert_pem):
        key = cx509.load_pem_x509_certificate(pem).public_key()
        assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.key_size == 256


def test_lab_ca_certificates_name_the_device_and_the_host(ca):
    dev = cx509.load_pem_x509_certificate(ca.issue_device(DEV).cert_pem)
    assert dev.issuer == ca.certificate.subject and dev.subject.rfc4514_string() == f"CN={DEV}"
    san = dev.extensions.get_extension_for_class(cx509.SubjectAlternativeName).value
    assert san.get_values_for_type(cx509.UniformResourceIdentifier) == [DEV]
    ca.certificate.public_key().verify(dev.signature, dev.tbs_certificate_bytes, ec.ECDSA(hashes.SHA256()))
    srv = cx509.load_pem_x509_certificate(ca.issue_server(HOST).cert_pem)
    assert srv.extensions.get_extension_for_class(cx509.SubjectAlternativeName).value \
        .get_values_for_type(cx509.DNSName) == [HOST]


def test_the_ca_private_key_is_not_in_any_text_it_gives(ca):
    ca_key = ca._ca_key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())
    texts = [repr(ca), ca.ca_pem, repr(ca.issue_device(DEV)), ca.issue_device(DEV).key_pem]
    assert "PRIVATE" not in repr(ca) and "PRIVATE" not in repr(ca.issue_device(DEV))
    assert all(ca_key.hex() not in (t.hex() if isinstance(t, bytes) else t) for t in texts)


def test_lab_ca_refuses_a_short_secret_and_empty_names(ca):
    with pytest.raises(ScenarioError):
        tls_pki.LabCa(b"short")
    with pytest.raises(ScenarioError):
        ca.issue_device("")
    with pytest.raises(ScenarioError):
        ca.issue_server("")


def test_certificate_identity_is_the_san_uri_else_the_cn(ca):
    der = cx509.load_pem_x509_certificate(ca.issue_device(DEV).cert_pem).public_bytes(serialization.Encoding.DER)
    assert tls_pki.certificate_identity(der) == DEV
    plain = cx509.load_pem_x509_certificate(self_signed("IMEI:1").cert_pem)
    assert tls_pki.certificate_identity(plain.public_bytes(serialization.Encoding.DER)) == "IMEI:1"
    with pytest.raises(DecodeError):
        tls_pki.certificate_identity(b"\x30\x03\x02\x01\x00")


def test_binding_refusal():
    assert tls_pki.binding_refusal(None, "IMSI:2") is None  # no client certificate: nothing to bind
    assert tls_pki.binding_refusal(DEV, DEV) is None
    assert "IMSI:2" in tls_pki.binding_refusal(DEV, "IMSI:2")
    assert tls_pki.binding_refusal(DEV, None) is not None


# --- the handshake ----------------------------------------------------------------------------

@pytest.mark.parametrize("suite", [s for s in suites.X509_SUITES if s.key_exchange == "ECDHE_ECDSA"],
                         ids=lambda s: s.iana)
def test_handshake_with_a_ca_issued_client_certificate(ca, server_config, suite):
    server = tls.TlsEndpoint(server_config)
    client = tls.TlsEndpoint(client_config(ca, ca.issue_device(DEV), suite))
    ev_c, ev_s = pump(client, server)
    assert ev_c == [tls.HandshakeDone("TLSv1.2", suite.iana)]
    assert ev_s == [tls.HandshakeDone("TLSv1.2", suite.iana, None, DEV)]
    assert server.peer_identity == DEV and server.peer_certificate is not None
    client.send(b"<SyncML/>")
    assert server.receive_data(client.data_to_send()) == [tls.AppData(b"<SyncML/>")]


def test_server_sends_a_certificate_request(ca, server_config):
    server = tls.TlsEndpoint(server_config)
    client = tls.TlsEndpoint(client_config(ca, ca.issue_device(DEV)))
    server.receive_data(client.data_to_send())
    flight = server.data_to_send()
    kinds = [kind for record in tls._RecordReader().split(flight) for kind, _ in tls._RecordReader().messages(record)]
    assert 13 in kinds  # CertificateRequest (RFC 5246 §7.4.4)


def test_client_without_certificate_is_refused_with_handshake_failure(ca, server_config):
    server = tls.TlsEndpoint(server_config)
    ev_c, ev_s = pump(tls.TlsEndpoint(client_config(ca)), server)
    assert ev_s == [tls.TlsFailed("the client sent no certificate", tls.ALERT_HANDSHAKE_FAILURE)]
    assert len(ev_c) == 1 and isinstance(ev_c[0], tls.TlsFailed)
    assert server.peer_identity is None


@pytest.mark.parametrize("which", ["self-signed", "other CA"])
def test_client_certificate_not_issued_by_the_lab_ca_is_refused(ca, server_config, which):
    cred = self_signed() if which == "self-signed" else tls_pki.LabCa(b"another lab" * 3).issue_device(DEV)
    server = tls.TlsEndpoint(server_config)
    ev_c, ev_s = pump(tls.TlsEndpoint(client_config(ca, cred)), server)
    assert len(ev_s) == 1 and isinstance(ev_s[0], tls.TlsFailed) and "verif" in ev_s[0].reason
    assert len(ev_c) == 1 and "alert" in ev_c[0].reason  # Mbed TLS sent the fatal alert
    assert server.state == "failed" and server.peer_identity is None


def test_p192_client_certificate_gets_insufficient_security(ca, server_config):
    key = ec.generate_private_key(ec.SECP192R1())
    cert = (cx509.CertificateBuilder().subject_name(cx509.Name([cx509.NameAttribute(NameOID.COMMON_NAME, DEV)]))
            .issuer_name(ca.certificate.subject).public_key(key.public_key()).serial_number(9)
            .not_valid_before(tls_pki.NOT_BEFORE).not_valid_after(tls_pki.NOT_AFTER)
            .sign(ca._ca_key, hashes.SHA256()))
    with pytest.raises(ScenarioError):  # the config refuses it already ...
        tls.x509_client_config(ca.ca_pem, HOST, cert_pem=cert.public_bytes(serialization.Encoding.PEM),
                               key_pem=tls_pki._key_pem(key))
    config = dataclasses.replace(  # ... so it is forced in, as a foreign client would send it
        client_config(ca), certs=(cert.public_bytes(serialization.Encoding.DER),),
        key_der=key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()), key_is_ecc=True)
    _, ev_s = pump(tls.TlsEndpoint(config), tls.TlsEndpoint(server_config))
    assert [type(e) for e in ev_s] == [tls.TlsFailed] and ev_s[0].alert == tls.ALERT_INSUFFICIENT_SECURITY


def test_without_client_ca_the_server_asks_for_nothing(ca):
    cred = ca.issue_server(HOST)
    server = tls.TlsEndpoint(tls.x509_server_config(cred.cert_pem, cred.key_pem))
    _, ev_s = pump(tls.TlsEndpoint(client_config(ca)), server)
    assert [type(e) for e in ev_s] == [tls.HandshakeDone] and ev_s[0].peer_identity is None


@pytest.mark.parametrize("suite", [s for s in suites.suites_for("psk", server=True) if s.key_exchange != "RSA_PSK"],
                         ids=lambda s: s.iana)
def test_psk_clients_are_served_by_a_server_requiring_client_certificates(ca, suite):
    """PSK suites carry no CertificateRequest: the PSK authenticates the client (RFC 4279)."""
    cred = ca.issue_server(HOST)
    server = tls.TlsEndpoint(tls.server_config(psks={b"id-1": b"k" * 16}, cert_pem=cred.cert_pem,
                                               key_pem=cred.key_pem, client_ca_pem=ca.ca_pem))
    client = tls.TlsEndpoint(dataclasses.replace(tls.psk_client_config(b"id-1", b"k" * 16), suites=(suite,)))
    _, ev_s = pump(client, server)
    assert ev_s == [tls.HandshakeDone(ev_s[0].version, suite.iana, b"id-1")]


def test_client_certificate_without_key_is_refused(ca):
    with pytest.raises(ScenarioError):
        tls.x509_client_config(ca.ca_pem, HOST, cert_pem=ca.issue_device(DEV).cert_pem)


def test_key_is_not_in_the_config_repr(ca, server_config):
    assert "key_der" not in repr(server_config)
