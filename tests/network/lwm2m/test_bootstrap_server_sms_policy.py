"""The LwM2M Bootstrap Server never provisions an SMS keyset seed 004 §7.3 forbids: each rule the
binding enforces (no single DES, AES or three-key 3DES, AES in CBC / CMAC, SPI with checksum,
ciphering and counter higher, TAR in BF FF 00 - BF FF FF) refuses a plan that breaks it, naming
the Key Parameters resource and the rule; a resource of the wrong size (D.1: 6 and 32-48 bytes) is
refused for its size; the keysets the rules allow are written as given."""
from __future__ import annotations

import itertools

import pytest

from dmsim.network.coap import message as coap
from dmsim.network.coap.message import Code
from dmsim.network.lwm2m import content
from dmsim.network.lwm2m.bootstrap_server import BootstrapServer, ProvisioningPlan, SecurityAccount, ServerAccount
from dmsim.network.lwm2m.events import Send
from dmsim.network.lwm2m.objects import InvalidValue, Sec
from dmsim.network.lwm2m.sms_security import Reason

AES = bytes(range(1, 33))  # KIc key then KID key, 16 + 16
K1, K2, K3 = bytes.fromhex("0123456789abcdef"), bytes.fromhex("23456789abcdef01"), bytes.fromhex("456789abcdef0123")
TDES = (K1 + K2 + K3) * 2  # three distinct DES keys, for KIc and for KID


def counter():
    numbers = itertools.count(1)
    return lambda n: next(numbers).to_bytes(n, "big")


def plan(key_parameters: str, secret_keys: bytes) -> ProvisioningPlan:
    """A plan writing one LwM2M server account with the SMS keyset (KIc KID SPI TAR as hex)."""
    account = SecurityAccount(1, "coaps://lwm2m.example:5684", identity=b"dev", secret_key=bytes(16), ssid=101,
                              sms_security_mode=2, sms_key_parameters=bytes.fromhex(key_parameters),
                              sms_secret_keys=secret_keys, sms_number="+491720000001")
    return ProvisioningPlan(b"dev-bs", (account,), (ServerAccount(0, 101, binding="US"),))


# name -> (KIc KID SPI TAR, secret keys, the rule it breaks)
BREAKS = {
    "kic-single-des": ("112216bfff01", AES, Reason.SINGLE_DES),
    "kid-single-des": ("221116bfff01", AES, Reason.SINGLE_DES),
    "kic-single-des-ecb": ("1d2216bfff01", AES, Reason.SINGLE_DES),
    "two-key-3des": ("353516bfff01", TDES, Reason.TWO_KEY_3DES),
    "3des-key-repeated": ("191916bfff01", (K1 + K1 + K3) * 2, Reason.TDES_KEYS_NOT_DISTINCT),
    "aes-kic-not-cbc": ("262216bfff01", AES, Reason.AES_MODE),
    "aes-kid-not-cmac": ("222a16bfff01", AES, Reason.AES_MODE),
    "spi-no-counter": ("222206bfff01", AES, Reason.SPI_COUNTER),
    "spi-not-ciphered": ("222212bfff01", AES, Reason.SPI_CIPHERING),
    "spi-redundancy-check": ("222215bfff01", AES, Reason.SPI_INTEGRITY),
    "tar-below": ("222216bffeff", AES, Reason.TAR_RANGE),
    "tar-above": ("222216c00000", AES, Reason.TAR_RANGE),
}


@pytest.mark.parametrize("name", BREAKS)
def test_a_plan_whose_sms_keyset_breaks_a_rule_is_refused(name):
    key_parameters, keys, reason = BREAKS[name]
    with pytest.raises(InvalidValue) as err:
        BootstrapServer({"dev": plan(key_parameters, keys)}, randbytes=counter())
    assert err.value.path == f"/0/1/{int(Sec.SMS_KEY_PARAMETERS)}" and f"({reason.value})" in err.value.detail
    with pytest.raises(InvalidValue):
        plan(key_parameters, keys).check()  # the check a driver adding plans later calls


@pytest.mark.parametrize("key_parameters, keys", [("222216bfff01", AES), ("191916bfff02", TDES),
                                                  ("222216bfffff", AES)],
                         ids=["aes", "3des-3-key-uicc-tar", "aes-last-tar"])
def test_a_plan_with_an_allowed_sms_keyset_writes_it_as_given(key_parameters, keys):
    server = BootstrapServer({"dev": plan(key_parameters, keys)}, randbytes=counter())
    events = server.receive(b"dev-bs", coap.decode(coap.encode(coap.request(
        Code.POST, "/bs", message_id=1, token=b"t", query=["ep=dev"]))), now=0.0)
    writes = []
    while requests := [e.message for e in events if isinstance(e, Send) and e.message.is_request]:
        (request,) = requests
        writes.append(request)
        answer = Code.DELETED if request.code == Code.DELETE else Code.CHANGED
        events = server.receive(b"dev-bs", coap.decode(coap.encode(coap.response(request, answer))), now=1.0)
    (written,) = [w for w in writes if w.code == Code.PUT and w.path == "/0/1"]
    resources = content.decode_instance(0, 1, written.payload)
    assert resources[Sec.SMS_KEY_PARAMETERS] == bytes.fromhex(key_parameters)
    assert resources[Sec.SMS_SECRET_KEYS] == keys


@pytest.mark.parametrize("key_parameters, keys, path, size", [
    ("222216bfff", AES, Sec.SMS_KEY_PARAMETERS, "5 bytes, not 6"),
    ("222216bfff0100", AES, Sec.SMS_KEY_PARAMETERS, "7 bytes, not 6"),
    ("222216bfff01", AES[:31], Sec.SMS_SECRET_KEYS, "31 bytes, not 32-48"),
    ("191916bfff01", TDES + b"\x01", Sec.SMS_SECRET_KEYS, "49 bytes, not 32-48"),
], ids=["parameters-5", "parameters-7", "keys-31", "keys-49"])
def test_a_plan_whose_sms_resource_has_the_wrong_size_is_refused_for_its_size(key_parameters, keys, path, size):
    """Seed 004 D.1: the Key Parameters resource is 6 bytes, the Secret Keys 32-48; the Security
    object's own definition refuses another size before the keyset is read."""
    with pytest.raises(InvalidValue) as err:
        BootstrapServer({"dev": plan(key_parameters, keys)}, randbytes=counter())
    assert err.value.path == f"/0/1/{int(path)}" and size in err.value.detail
