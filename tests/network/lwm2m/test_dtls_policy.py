"""The suite rules of seed 004 §7.1 (network/lwm2m/dtls_policy.py) and the Security Object key
formats of D.1.1 (network/lwm2m/dtls_keys.py)."""
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from dmsim.base.errors import DecodeError, ScenarioError
from dmsim.network.lwm2m import dtls_keys, dtls_policy as policy
from dmsim.network.lwm2m.dtls_policy import PskCredential, SecurityMode

from dtls_peer import LAB_CA, p256


def test_security_mode_numbers_of_d1():
    assert [int(m) for m in (SecurityMode.PSK, SecurityMode.RPK, SecurityMode.CERTIFICATE,
                             SecurityMode.NOSEC)] == [0, 1, 2, 3]


@pytest.mark.parametrize("key, declared, effective", [
    (bytes(16), "high", "high"), (bytes(32), "low", "low"), (bytes(15), "high", "low"), (b"1234", "low", "low")])
def test_entropy_classification(key, declared, effective):
    assert policy.classify_psk(key, declared) == effective


@pytest.mark.parametrize("declared", [None, "", "medium", "HIGH"])
def test_entropy_must_be_declared(declared):
    with pytest.raises(ScenarioError):
        PskCredential(b"id", bytes(16), declared)


def test_psk_credential_checks_identity_and_key():
    for identity, key in ((b"\xff\xfe", bytes(16)), (b"", bytes(16)), (b"x" * 129, bytes(16)),
                          (b"id", b""), (b"id", bytes(65))):
        with pytest.raises(ScenarioError):
            PskCredential(identity, key, "high")
    assert PskCredential(b"x" * 128, bytes(64), "high").effective_entropy == "high"


def test_client_suites_follow_the_entropy():
    assert policy.client_suites(SecurityMode.PSK, "high") == (policy.PSK_AES_128_CCM_8,
                                                              policy.PSK_AES_128_CBC_SHA256)
    assert policy.client_suites(SecurityMode.PSK, "low") == (policy.ECDHE_PSK_AES_128_CBC_SHA256,)
    assert policy.client_suites(SecurityMode.RPK) == policy.client_suites(SecurityMode.CERTIFICATE) \
        == (policy.ECDHE_ECDSA_AES_128_CCM_8, policy.ECDHE_ECDSA_AES_128_GCM_SHA256)
    with pytest.raises(ScenarioError):
        policy.client_suites(SecurityMode.PSK)
    with pytest.raises(ScenarioError):
        policy.client_suites(SecurityMode.NOSEC)
    assert policy.server_suites(SecurityMode.PSK)[0] == policy.ECDHE_PSK_AES_128_CBC_SHA256
    assert [s.code for s in policy.LWM2M_SUITES] == [0xC037, 0xC0A8, 0x00AE, 0xC0AE, 0xC02B]


@pytest.mark.parametrize("suite", policy.HIGH_ENTROPY_PSK_SUITES, ids=lambda s: s.iana)
def test_low_entropy_refused_on_plain_psk_suites(suite):
    assert "low-entropy" in policy.psk_suite_refusal("low", suite)
    assert policy.psk_suite_refusal("high", suite) is None


def test_low_entropy_allowed_on_ecdhe_psk_and_irrelevant_without_psk():
    assert policy.psk_suite_refusal("low", policy.ECDHE_PSK_AES_128_CBC_SHA256) is None
    assert policy.psk_suite_refusal("low", policy.ECDHE_ECDSA_AES_128_CCM_8) is None
    assert policy.psk_suite_refusal("low", None) is None


def test_key_registry_refuses_a_key_of_another_endpoint_in_any_form():
    registry = policy.KeyRegistry()
    key = p256(41).public_key()
    assert registry.claim("urn:dev:a", dtls_keys.public_key_to_resource(key)) is None
    assert registry.claim("urn:dev:a", dtls_keys.public_key_to_resource(key, "xy")) is None
    refusal = registry.claim("urn:dev:b", dtls_keys.public_key_to_resource(key, "sec1"))
    assert "urn:dev:a" in refusal and "unique" in refusal
    assert registry.owner(dtls_keys.public_key_to_resource(key, "xy")) == "urn:dev:a"
    assert registry.claim("urn:dev:b", dtls_keys.public_key_to_resource(p256(42).public_key())) is None


def test_key_registry_reads_certificates_and_is_bounded():
    registry = policy.KeyRegistry(max_keys=1)
    device = LAB_CA.issue_device("urn:imei:1")
    cert_der = dtls_keys.certificate_der(device.cert_pem)
    assert registry.claim("urn:imei:1", cert_der) is None
    key_of_cert = dtls_keys.certificate_spki(cert_der)
    assert "already used" in registry.claim("urn:imei:2", key_of_cert)
    assert "full" in registry.claim("urn:imei:3", dtls_keys.public_key_to_resource(p256(5).public_key()))
    assert len(registry) == 1


@pytest.mark.parametrize("form, size", [("spki", 91), ("sec1", 65), ("xy", 64)])
def test_public_key_forms_round_trip(form, size):
    key = p256(7).public_key()
    data = dtls_keys.public_key_to_resource(key, form)
    assert len(data) == size
    assert dtls_keys.public_key_from_resource(data).public_numbers() == key.public_numbers()
    compressed = key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)
    assert dtls_keys.public_key_from_resource(compressed).public_numbers() == key.public_numbers()


@pytest.mark.parametrize("data", [bytes(32), b"\x04" + bytes(64), b"\x30\x03\x02\x01\x00", b""])
def test_ambiguous_or_broken_public_keys_are_refused(data):
    with pytest.raises(DecodeError):
        dtls_keys.public_key_from_resource(data)


def test_keys_not_on_p256_are_refused():
    other = ec.generate_private_key(ec.SECP384R1())
    spki = other.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(ScenarioError):
        dtls_keys.public_key_from_resource(spki)
    with pytest.raises(ScenarioError):
        policy.KeyRegistry().claim("x", spki)


def test_private_key_forms():
    key = p256(99)
    raw = dtls_keys.private_key_to_resource(key)
    assert len(raw) == 32 and dtls_keys.private_key_from_resource(raw).private_numbers() == key.private_numbers()
    der = dtls_keys.private_key_der(key)
    assert dtls_keys.private_key_from_resource(der).private_numbers() == key.private_numbers()
    with pytest.raises(DecodeError):
        dtls_keys.private_key_from_resource(bytes(32))  # scalar 0
    with pytest.raises(DecodeError):
        dtls_keys.private_key_from_resource(b"\x30\x00")


def test_rpk_carrier_certificate_holds_only_the_key_and_is_deterministic():
    key = p256(1234)
    cert = dtls_keys.rpk_carrier_certificate(key)
    assert cert == dtls_keys.rpk_carrier_certificate(key)
    assert dtls_keys.certificate_spki(cert) == dtls_keys.public_key_to_resource(key.public_key())
