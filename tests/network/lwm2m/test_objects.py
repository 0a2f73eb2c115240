"""The object definitions and value checks of OMA-TS-LightweightM2M-V1_0 Appendix E and seed 004 §D.1."""
import pytest

from dmsim.network.lwm2m.objects import (ACCESS_CONTROL, DEVICE, OBJECTS, SECURITY, SERVER, InvalidValue, ResourceType,
                                         Sec, Srv, check_instance, check_resource, parse_uri)


def psk_server(over=None):
    r = {Sec.URI: "coaps://dm.example:5684", Sec.BOOTSTRAP: False, Sec.MODE: 0, Sec.PUBLIC_KEY_OR_IDENTITY: b"dev1",
         Sec.SERVER_PUBLIC_KEY: b"", Sec.SECRET_KEY: bytes(16), Sec.SHORT_SERVER_ID: 1}
    r.update(over or {})
    return r


def test_security_object_uses_the_published_numbering_and_is_bootstrap_only():
    names = {rid: r.name for rid, r in SECURITY.resources.items()}
    assert names[5] == "Secret Key" and names[8] == "SMS Binding Secret Keys" and names[10] == "Short Server ID"
    assert names[11] == "Client Hold Off Time" and names[7] == "SMS Binding Key Parameters"
    assert SECURITY.bootstrap_only and not SERVER.bootstrap_only
    assert all(r.operations == "" for r in SECURITY.resources.values())
    assert {rid for rid, r in SECURITY.resources.items() if r.secret} == {5, 8}


def test_server_acl_and_device_definitions():
    assert SERVER.resources[Srv.UPDATE_TRIGGER].executable and SERVER.resources[Srv.UPDATE_TRIGGER].type == ResourceType.NONE
    assert SERVER.resources[Srv.SHORT_SERVER_ID].operations == "R"
    assert ACCESS_CONTROL.resources[2].multiple
    assert DEVICE.resources[4].executable and DEVICE.resources[13].writable
    assert set(OBJECTS) == {0, 1, 2, 3}


def test_a_good_psk_account_passes():
    check_instance(0, 1, psk_server())
    check_instance(0, 0, psk_server({Sec.BOOTSTRAP: True}) | {Sec.HOLD_OFF: 10})


@pytest.mark.parametrize("rid, value", [
    (Sec.MODE, 4), (Sec.MODE, -1), (Sec.SHORT_SERVER_ID, 0), (Sec.SHORT_SERVER_ID, 65536),
    (Sec.SMS_KEY_PARAMETERS, bytes(5)), (Sec.SMS_KEY_PARAMETERS, bytes(7)),
    (Sec.SMS_SECRET_KEYS, bytes(31)), (Sec.SMS_SECRET_KEYS, bytes(49)),
    (Sec.URI, "http://dm.example:80"), (Sec.URI, "coaps://dm.example"), (Sec.URI, "coaps://:5684"),
    (Sec.URI, "coaps://dm.example:0"), (Sec.URI, "coaps://dm.example:70000"), (Sec.URI, ""),
    (Sec.URI, "coaps://" + "a" * 250 + ":5684"), (Sec.SMS_NUMBER, "12ab"), (Sec.BOOTSTRAP, 1),
    (Sec.SECRET_KEY, "text"), (Sec.SECRET_KEY, bytes(5000)),
])
def test_bad_security_values_are_refused(rid, value):
    with pytest.raises(InvalidValue):
        check_resource(0, rid, value)


@pytest.mark.parametrize("rid, value", [
    (Sec.MODE, 3), (Sec.SHORT_SERVER_ID, 1), (Sec.SHORT_SERVER_ID, 65535), (Sec.SMS_KEY_PARAMETERS, bytes(6)),
    (Sec.SMS_SECRET_KEYS, bytes(32)), (Sec.SMS_SECRET_KEYS, bytes(48)), (Sec.URI, "coaps://[2001:db8::1]:5684"),
    (Sec.URI, "coap://192.0.2.1:5683"), (Sec.SMS_NUMBER, "+491720000042"),
])
def test_good_security_values_pass(rid, value):
    check_resource(0, rid, value)


def test_short_server_id_must_be_set_for_a_server():
    r = psk_server()
    del r[Sec.SHORT_SERVER_ID]
    with pytest.raises(InvalidValue, match="Short Server ID"):
        check_instance(0, 1, r)
    check_instance(0, 0, r | {Sec.BOOTSTRAP: True})  # a bootstrap server needs none


@pytest.mark.parametrize("over", [
    {Sec.URI: "coap://dm.example:5683"},                      # plain coap with PSK
    {Sec.MODE: 3},                                            # NoSec with coaps
    {Sec.SECRET_KEY: b""},                                    # PSK without a key
    {Sec.SMS_KEY_PARAMETERS: bytes(6)},                       # SMS parameters without keys
])
def test_inconsistent_security_instances_are_refused(over):
    with pytest.raises(InvalidValue):
        check_instance(0, 1, psk_server(over))
    check_instance(0, 1, psk_server({Sec.URI: "coap://dm.example:5683", Sec.MODE: 3}))


def test_missing_mandatory_resource_is_refused():
    r = psk_server()
    del r[Sec.SECRET_KEY]
    with pytest.raises(InvalidValue, match="mandatory"):
        check_instance(0, 1, r)


@pytest.mark.parametrize("rid, value", [(Srv.BINDING, "T"), (Srv.SHORT_SERVER_ID, 0), (Srv.LIFETIME, -1),
                                        (Srv.NOTIFICATION_STORING, 1)])
def test_bad_server_values(rid, value):
    with pytest.raises(InvalidValue):
        check_resource(1, rid, value)
    for binding in ("U", "UQ", "S", "SQ", "US", "UQS"):
        check_resource(1, Srv.BINDING, binding)


def test_multiple_resources_need_instances_and_executables_have_no_value():
    with pytest.raises(InvalidValue):
        check_resource(2, 2, 7)
    check_resource(2, 2, {127: 7, 310: 1})
    with pytest.raises(InvalidValue):
        check_resource(1, Srv.UPDATE_TRIGGER, b"")
    with pytest.raises(InvalidValue):
        check_resource(9, 0, 1)


def test_parse_uri():
    assert parse_uri("coaps://dm.example:5684") == ("coaps", "dm.example", 5684)
