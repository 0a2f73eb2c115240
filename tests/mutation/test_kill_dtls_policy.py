"""Issue 18: tests that kill surviving mutants of network/lwm2m/dtls_policy.py (see .ci/mutation).

Seed 004 §7.1 (OMA-TS-LightweightM2M-V1_0 §7.1.1-7.1.3): the suites of each Security Mode, the
server's PSK store, the unique key-pair registry."""
import pytest

from dmsim.base.errors import ScenarioError
from dmsim.network.lwm2m import dtls_policy as policy
from dmsim.network.lwm2m.dtls_policy import KeyRegistry, PskCredential, SecurityMode


def test_psk_lookup_finds_the_credential_of_an_identity():
    cred = PskCredential(b"urn:imei:1", bytes(16), "high")
    store = {b"urn:imei:1": cred, b"raw": bytes(16)}
    assert policy.psk_lookup(store, bytearray(b"urn:imei:1")) is cred
    assert policy.psk_lookup(store, b"urn:imei:2") is None
    # a store value that is not a credential (no declared entropy) is never used as one
    assert policy.psk_lookup(store, b"raw") is None


def test_server_suites_of_the_public_key_modes():
    """RPK and Certificate servers accept the ECDHE-ECDSA suites (RFC 7252 §9.1.3.2-3); NoSec
    has no DTLS suite at all."""
    for mode in (SecurityMode.RPK, SecurityMode.CERTIFICATE):
        assert policy.server_suites(mode) == policy.PUBLIC_KEY_SUITES
    with pytest.raises(ScenarioError):
        policy.server_suites(SecurityMode.NOSEC)


def test_key_registry_default_bound_and_empty_endpoint():
    """The registry is bounded (100 000 keys unless configured); an empty endpoint name is
    refused before the key is even parsed."""
    registry = KeyRegistry()
    assert registry.max_keys == 100_000
    assert registry.claim("", b"not a key") == "empty endpoint name" and len(registry) == 0
