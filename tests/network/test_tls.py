"""dmsim TLS endpoints (network/dm/tls.py) against each other and raw mbedtls peers, in memory.

Seed 000 §9.2.2: the PSK-TLS and X509 suites, TLS 1.1/1.2 only, ECC keys >= 256 bits.
"""
import dataclasses
import datetime

import pytest
from cryptography import x509 as cx509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st
from mbedtls import exceptions as mbedtls_exceptions
from mbedtls import pk as mbedtls_pk
from mbedtls import _tls as mbedtls_tls_core
from mbedtls import tls as mt
from mbedtls import x509 as mbedtls_x509

from dmsim.network.dm import tls
from dmsim.network.dm import tls_suites as suites
from dmsim.base.errors import DecodeError, ProtocolError, ScenarioError
from tls_pump import pump

PSKS = {b"IMEI:490154203237518": bytes(range(16)), b"bootstrap-1": b"\xaa" * 32}
IDENTITY, KEY = b"IMEI:490154203237518", bytes(range(16))
HOST = "dm.example.com"


def make_cert(key, name=HOST):
    """Return (cert PEM, key PEM) of a self-signed CA/server certificate for ``name``."""
    subject = cx509.Name([cx509.NameAttribute(NameOID.COMMON_NAME, name)])
    start = datetime.datetime(2024, 1, 1)
    cert = (cx509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(7)
            .not_valid_before(start).not_valid_after(start + datetime.timedelta(days=36500))
            .add_extension(cx509.SubjectAlternativeName([cx509.DNSName(name)]), False)
            .add_extension(cx509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


@pytest.fixture(scope="module")
def ecdsa_p256():
    return make_cert(ec.generate_private_key(ec.SECP256R1()))


@pytest.fixture(scope="module")
def ecdsa_p192():
    return make_cert(ec.generate_private_key(ec.SECP192R1()))


@pytest.fixture(scope="module")
def rsa2048():
    return make_cert(rsa.generate_private_key(65537, 2048))




def only(config, suite):
    """Return ``config`` restricted to one seed suite."""
    return dataclasses.replace(config, suites=(suite,))


class RawPeer:
    """A plain mbedtls peer (not dmsim) with the endpoint's byte interface, for foreign peers."""

    def __init__(self, server, **conf):
        conf.setdefault("validate_certificates", False)
        configuration = mt.TLSConfiguration(**conf)
        if server:
            self.buf = mt.ServerContext(configuration).wrap_buffers()
        else:
            self.buf = mt.ClientContext(configuration).wrap_buffers(None)
        self.error = None
        self._step()

    def _step(self):
        try:
            while self.buf._handshake_state is not mt.HandshakeStep.HANDSHAKE_OVER:
                try:
                    self.buf.do_handshake()
                except mt.WantReadError:
                    return
                except mt.WantWriteError:
                    pass
        except mbedtls_exceptions.TLSError as exc:
            self.error = exc

    def receive_data(self, data):
        if self.error is None:
            self.buf.receive_from_network(data)
            self._step()
        return []

    def data_to_send(self):
        out = self.buf.peek_outgoing(1 << 20)
        self.buf.consume_outgoing(len(out))
        return out


def failed(events):
    return [e for e in events if isinstance(e, tls.TlsFailed)]


# --- suite table ------------------------------------------------------------------------------

def test_seed_tables_are_the_seed_lists_and_mbedtls_has_every_suite():
    assert len(suites.PSK_SUITES) == 7 and len(suites.X509_SUITES) == 6
    available = set(mt.ciphers_available())
    for suite in suites.SEED_SUITES:
        assert suite.mbedtls_name in available
        assert mbedtls_tls_core._get_ciphersuite_id(suite.mbedtls_name) == suite.code
    assert not any("RC4" in s.iana or "3DES" in s.iana for s in suites.SEED_SUITES)


def test_server_lists_leave_out_dhe_and_clients_offer_every_seed_suite():
    server = tls.server_config(psks=PSKS, cert_pem=None, key_pem=None, mode="psk")
    assert {s.key_exchange for s in server.suites} == {"PSK", "RSA_PSK", "ECDHE_PSK"}
    assert tls.psk_client_config(IDENTITY, KEY).suites == suites.PSK_SUITES


def test_mbedtls_server_cannot_run_dhe_psk_library_limit():
    """python-mbedtls 2.10 loads no DH parameters into a server: why DHE is not served."""
    dhe = suites.BY_IANA["TLS_DHE_PSK_WITH_AES_128_GCM_SHA256"]
    server = RawPeer(True, ciphers=(dhe.mbedtls_name,), pre_shared_key_store={"x": b"k" * 16})
    client = tls.TlsEndpoint(only(tls.psk_client_config(b"x", b"k" * 16), dhe))
    ev_client, _ = pump(client, server)
    assert server.error is not None and "Bad input" in server.error.msg
    assert client.state == "handshake" and ev_client == []  # mbedtls sends no alert here


# --- PSK-TLS ----------------------------------------------------------------------------------

SERVED_PSK = [s for s in suites.suites_for("psk", server=True)]


@pytest.mark.parametrize("suite", SERVED_PSK, ids=lambda s: s.iana)
def test_psk_handshake_each_served_suite(suite, rsa2048):
    cert, key = rsa2048
    server = tls.TlsEndpoint(tls.psk_server_config(PSKS, cert_pem=cert, key_pem=key))
    client = tls.TlsEndpoint(only(tls.psk_client_config(IDENTITY, KEY), suite))
    ev_client, ev_server = pump(client, server)
    expected = tls.HandshakeDone("TLSv1.2", suite.iana, IDENTITY)
    assert ev_client == [expected] and ev_server == [expected]
    assert server.psk_identity == IDENTITY and client.suite is suite


def test_psk_server_without_certificate_picks_plain_psk():
    server = tls.TlsEndpoint(tls.psk_server_config(PSKS))
    client = tls.TlsEndpoint(tls.psk_client_config(b"bootstrap-1", b"\xaa" * 32))
    ev_client, ev_server = pump(client, server)
    assert ev_server == [tls.HandshakeDone("TLSv1.2", "TLS_PSK_WITH_AES_128_GCM_SHA256",
                                           b"bootstrap-1")]
    assert ev_client == ev_server


def test_wrong_psk_fails_both_sides():
    server = tls.TlsEndpoint(tls.psk_server_config(PSKS))
    client = tls.TlsEndpoint(tls.psk_client_config(IDENTITY, bytes(16)))
    ev_client, ev_server = pump(client, server)
    assert "MAC" in failed(ev_server)[0].reason
    assert failed(ev_client) and server.state == client.state == "failed"
    with pytest.raises(ProtocolError):
        client.send(b"x")


def test_unknown_identity_fails_and_accounts_added_later_are_found():
    store = dict(PSKS)
    config = tls.psk_server_config(store)
    ev_client, ev_server = pump(tls.TlsEndpoint(tls.psk_client_config(b"new", b"n" * 16)),
                                tls.TlsEndpoint(config))
    assert "identity" in failed(ev_server)[0].reason and failed(ev_client)
    store[b"new"] = b"n" * 16
    ev_client, ev_server = pump(tls.TlsEndpoint(tls.psk_client_config(b"new", b"n" * 16)),
                                tls.TlsEndpoint(config))
    assert ev_server[0].psk_identity == b"new" and not failed(ev_client)


# --- X.509 ------------------------------------------------------------------------------------

def x509_suites(kx):
    return [s for s in suites.X509_SUITES if s.key_exchange == kx]


@pytest.mark.parametrize("suite", x509_suites("ECDHE_ECDSA"), ids=lambda s: s.iana)
def test_x509_ecdsa_p256(suite, ecdsa_p256):
    cert, key = ecdsa_p256
    server = tls.TlsEndpoint(tls.x509_server_config(cert, key))
    client = tls.TlsEndpoint(only(tls.x509_client_config(cert, HOST), suite))
    ev_client, ev_server = pump(client, server)
    assert ev_client == ev_server == [tls.HandshakeDone("TLSv1.2", suite.iana, None)]


@pytest.mark.parametrize("suite", x509_suites("RSA"), ids=lambda s: s.iana)
def test_x509_rsa_2048(suite, rsa2048):
    cert, key = rsa2048
    server = tls.TlsEndpoint(tls.x509_server_config(cert, key))
    client = tls.TlsEndpoint(only(tls.x509_client_config(cert, HOST), suite))
    ev_client, ev_server = pump(client, server)
    assert ev_client == ev_server == [tls.HandshakeDone("TLSv1.2", suite.iana, None)]


def test_x509_wrong_hostname_and_untrusted_ca_fail(ecdsa_p256, rsa2048):
    cert, key = ecdsa_p256
    for client_config in (tls.x509_client_config(cert, "other.example.com"),
                          tls.x509_client_config(rsa2048[0], HOST)):
        ev_client, _ = pump(tls.TlsEndpoint(client_config),
                            tls.TlsEndpoint(tls.x509_server_config(cert, key)))
        assert failed(ev_client)


def test_server_config_refuses_p192_key(ecdsa_p192):
    cert, key = ecdsa_p192
    with pytest.raises(ScenarioError, match="192 bits"):
        tls.x509_server_config(cert, key)
    with pytest.raises(ScenarioError, match="256"):
        tls.check_ecc_key_size(ec.generate_private_key(ec.SECP192R1()).public_key())


def test_client_refuses_p192_server_certificate_on_the_wire(ecdsa_p192):
    cert, key = ecdsa_p192
    server = RawPeer(True, ciphers=("TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256",),
                     certificate_chain=((mbedtls_x509.CRT.from_PEM(cert.decode()),),
                                        mbedtls_pk.ECC.from_PEM(key.decode())))
    client = tls.TlsEndpoint(tls.x509_client_config(cert, HOST))
    ev_client, _ = pump(client, server)
    assert ev_client == [tls.TlsFailed(ev_client[0].reason, tls.ALERT_INSUFFICIENT_SECURITY)]
    assert "secp192r1" in ev_client[0].reason


def test_bad_pem_is_a_decode_error():
    with pytest.raises(DecodeError):
        tls.x509_client_config(b"not a certificate", HOST)


# --- suites and versions refused ----------------------------------------------------------------

def test_server_refuses_client_offering_only_a_non_seed_suite():
    client = RawPeer(False, ciphers=("TLS-PSK-WITH-AES-128-CBC-SHA",),
                     pre_shared_key=("bootstrap-1", b"\xaa" * 32))
    server = tls.TlsEndpoint(tls.psk_server_config(PSKS))
    _, ev_server = pump(client, server)
    assert failed(ev_server) and client.error is not None


def test_server_refuses_tls_1_0_client():
    client = RawPeer(False, ciphers=("TLS-PSK-WITH-AES-128-CBC-SHA",),
                     pre_shared_key=("bootstrap-1", b"\xaa" * 32),
                     lowest_supported_version=mt.TLSVersion.TLSv1,
                     highest_supported_version=mt.TLSVersion.TLSv1)
    server = tls.TlsEndpoint(tls.psk_server_config(PSKS))
    _, ev_server = pump(client, server)
    assert ev_server == [tls.TlsFailed(ev_server[0].reason, tls.ALERT_PROTOCOL_VERSION)]
    assert client.error is not None


def server_hello(version, suite_code):
    body = version.to_bytes(2, "big") + bytes(32) + b"\x00" + suite_code.to_bytes(2, "big") + b"\x00"
    handshake = b"\x02" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + len(handshake).to_bytes(2, "big") + handshake


@pytest.mark.parametrize("version", [0x0300, 0x0301])
def test_client_checks_server_version_itself(version):
    client = tls.TlsEndpoint(tls.psk_client_config(IDENTITY, KEY))
    client.data_to_send()
    events = client.receive_data(server_hello(version, 0x00A8))
    assert events == [tls.TlsFailed(events[0].reason, tls.ALERT_PROTOCOL_VERSION)]
    assert client.data_to_send() == bytes([21, 3, 3, 0, 2, 2, 70])


def handshake_record(kind, body):
    message = bytes([kind]) + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x03" + len(message).to_bytes(2, "big") + message


@pytest.mark.parametrize("curve,refused", [(19, True), (21, True), (23, False), (29, False)])
def test_client_checks_ecdhe_curve_size(curve, refused):
    client = tls.TlsEndpoint(tls.psk_client_config(IDENTITY, KEY))
    client.data_to_send()
    ske = b"\x00\x00" + b"\x03" + curve.to_bytes(2, "big") + b"\x41" + bytes(65)
    events = client.receive_data(server_hello(0x0303, 0xC037) + handshake_record(12, ske))
    if refused:
        assert events == [tls.TlsFailed(events[0].reason, tls.ALERT_INSUFFICIENT_SECURITY)]
    else:  # passes dmsim's check; mbedtls then fails on the forged flight
        assert not events or events[0].alert is None


def test_client_refuses_a_suite_it_did_not_offer():
    client = tls.TlsEndpoint(tls.psk_client_config(IDENTITY, KEY))
    client.data_to_send()
    events = client.receive_data(server_hello(0x0303, 0x0005))  # SSL_RSA_WITH_RC4_128_SHA
    assert events[0].alert == tls.ALERT_ILLEGAL_PARAMETER


@pytest.mark.parametrize("versions", [(0x0300, 0x0303), (0x0301, 0x0303), (0x0303, 0x0302),
                                      (0x0302, 0x0304)])
def test_config_refuses_versions_outside_tls_1_1_and_1_2(versions):
    with pytest.raises(ScenarioError):
        tls.psk_client_config(IDENTITY, KEY, versions=versions)


TLS11 = (0x0302, 0x0302)


@pytest.mark.parametrize("suite", suites.suites_for("psk", server=True), ids=lambda s: s.iana)
def test_tls_1_1_runs_the_psk_cbc_suites_only(suite, rsa2048):
    """The seed's TLS 1.1: PSK CBC-SHA256 suites run over it, GCM needs TLS 1.2."""
    cert, key = rsa2048
    server = tls.TlsEndpoint(tls.psk_server_config(PSKS, cert_pem=cert, key_pem=key,
                                                   versions=TLS11))
    client = tls.TlsEndpoint(only(tls.psk_client_config(IDENTITY, KEY, versions=TLS11), suite))
    ev_client, ev_server = pump(client, server)
    if suite.min_version <= 0x0302:
        assert ev_client == ev_server == [tls.HandshakeDone("TLSv1.1", suite.iana, IDENTITY)]
    else:
        assert failed(ev_client) and failed(ev_server)


def test_x509_mode_needs_tls_1_2(ecdsa_p256):
    cert, key = ecdsa_p256
    ev_client, ev_server = pump(
        tls.TlsEndpoint(tls.x509_client_config(cert, HOST, versions=TLS11)),
        tls.TlsEndpoint(tls.x509_server_config(cert, key)))
    assert failed(ev_client) and failed(ev_server)


def test_ecdhe_curve_reader():
    ecdhe_psk = suites.BY_IANA["TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256"]
    ecdsa = suites.BY_IANA["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"]
    assert tls.ecdhe_curve(b"\x00\x00\x03\x00\x17\x41", ecdhe_psk) == 23
    assert tls.ecdhe_curve(b"\x03\x00\x13\x31", ecdsa) == 19
    assert tls.ecdhe_curve(b"\x01\x00", ecdsa) is None
    with pytest.raises(DecodeError):
        tls.ecdhe_curve(b"\x03\x00", ecdsa)


# --- application data and close -----------------------------------------------------------------

def open_pair():
    server = tls.TlsEndpoint(tls.psk_server_config(PSKS))
    client = tls.TlsEndpoint(tls.psk_client_config(IDENTITY, KEY))
    pump(client, server)
    assert client.state == server.state == "open"
    return client, server


def test_app_data_round_trip_and_close():
    client, server = open_pair()
    request = bytes(range(256)) * 200  # 51200 bytes: several records
    client.send(request)
    received = server.receive_data(client.data_to_send())
    assert b"".join(e.data for e in received) == request
    server.send(b"<SyncML/>")
    assert client.receive_data(server.data_to_send()) == [tls.AppData(b"<SyncML/>")]
    client.close()
    assert server.receive_data(client.data_to_send()) == [tls.Closed()]
    assert client.state == server.state == "closed"
    assert server.receive_data(b"more") == []


def test_send_before_handshake_is_a_protocol_error():
    with pytest.raises(ProtocolError):
        tls.TlsEndpoint(tls.psk_client_config(IDENTITY, KEY)).send(b"x")


def test_transport_end_is_reported():
    client, server = open_pair()
    assert failed(server.receive_data(b""))


def test_tampered_record_fails():
    client, server = open_pair()
    client.send(b"Replace ./DevDetail")
    record = bytearray(client.data_to_send())
    record[-1] ^= 1
    assert "MAC" in failed(server.receive_data(bytes(record)))[0].reason


# --- fuzz -------------------------------------------------------------------------------------

SERVER_CONFIG = tls.psk_server_config(PSKS)
CLIENT_CONFIG = tls.psk_client_config(IDENTITY, KEY)
EVENT_TYPES = (tls.HandshakeDone, tls.AppData, tls.Closed, tls.TlsFailed)


def records(payload_strategy):
    return st.builds(lambda t, p: bytes([t, 3, 3]) + len(p).to_bytes(2, "big") + p,
                     st.sampled_from([20, 21, 22, 23]), payload_strategy)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(st.binary(max_size=300), records(st.binary(max_size=300))),
                min_size=1, max_size=4))
def test_fuzz_server_never_crashes(chunks):
    server = tls.TlsEndpoint(SERVER_CONFIG)
    for chunk in chunks:
        events = server.receive_data(chunk)
        assert all(isinstance(e, EVENT_TYPES) for e in events)
    server.data_to_send()
    assert server.state in ("handshake", "failed")


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=1, max_size=400))
def test_fuzz_client_after_hello_never_crashes(data):
    client = tls.TlsEndpoint(CLIENT_CONFIG)
    client.data_to_send()
    events = client.receive_data(b"\x16\x03\x03" + len(data).to_bytes(2, "big") + data)
    assert all(isinstance(e, EVENT_TYPES) for e in events)
