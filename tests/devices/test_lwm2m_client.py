"""The sans-IO LwM2M client (OMA-TS-LightweightM2M-V1_0 §5.1, §5.3, §5.4, §7.3; seed 004 §D.1):
each rule holds, and the violation is refused with nothing changed. Every request reaches the
client through the CoAP codec, and every reply is decoded back."""
import pytest
from lwm2m_fixtures import TLV, client, only_send, provisioned, req, security, server

from dmsim.devices.lwm2m_client import (BootstrapFinished, BootstrapRejected, Deregistered, Executed,
                                         Registered, Updated, refused)
from dmsim.network.coap.message import Code, ContentFormat, Option, Type
from dmsim.network.coap import message as coap
from dmsim.network.lwm2m import content
from dmsim.network.lwm2m.events import BOOTSTRAP, Timer
from dmsim.network.lwm2m.objects import Access, Sec


def rule_of(events):
    return [r.rule for r in refused(events)]


# -- object 0 and the secrets are out of every DM server's reach -----------------------------------

@pytest.mark.parametrize("code, path, payload", [
    (Code.PUT, "/0/10/5", content.encode_resource(0, 5, b"attacker-key....")),
    (Code.PUT, "/0/10", content.encode_instance(0, {5: b"x" * 16})),
    (Code.POST, "/0/10", content.encode_instance(0, {5: b"x" * 16})),
    (Code.DELETE, "/0/10", b""),
    (Code.POST, "/0", content.encode_instance(0, security(7))),
])
def test_dm_server_cannot_change_object_0(code, path, payload):
    c = client()
    before = c.store.snapshot()
    events = c.receive(1, req(code, path, payload))
    assert only_send(events).code == Code.NOT_FOUND
    assert rule_of(events) == ["bootstrap_only_object"]
    assert c.store.snapshot() == before


@pytest.mark.parametrize("path", ["/0", "/0/10", "/0/10/5", "/0/10/8", "/0/0/5"])
def test_dm_server_cannot_read_object_0_or_its_secrets(path):
    c = client()
    reply = only_send(evs := c.receive(1, req(Code.GET, path)))
    assert reply.code == Code.NOT_FOUND and reply.payload == b""
    assert rule_of(evs) == ["bootstrap_only_object"]


def test_register_links_leave_out_object_0():
    c = client()
    reg = only_send(c.register(1))
    assert reg.code == Code.POST and reg.path == "/rd"
    assert reg.uri_query == ("ep=urn:imei:490154203237518", "lt=300", "b=U", "lwm2m=1.0")
    assert reg.content_format == ContentFormat.LINK_FORMAT
    assert reg.payload == b"</1/0>,</3/0>"


# -- the bootstrap interface only from the bootstrap peer ------------------------------------------

def test_bootstrap_write_from_the_bootstrap_server_is_taken():
    c = client()
    reply = only_send(c.receive(BOOTSTRAP, req(Code.PUT, "/0/11", content.encode_instance(0, security(2)))))
    assert reply.code == Code.CHANGED
    assert c.store.get(0, 11)[Sec.SHORT_SERVER_ID] == 2
    reply = only_send(c.receive(BOOTSTRAP, req(Code.PUT, "/0/11/5", content.encode_resource(0, 5, b"k" * 16))))
    assert reply.code == Code.CHANGED and c.store.get(0, 11)[Sec.SECRET_KEY] == b"k" * 16


@pytest.mark.parametrize("peer", [1, 2])
def test_bootstrap_write_from_a_dm_server_is_refused(peer):
    c = client(provisioned((1, 2)))
    before = c.store.snapshot()
    events = c.receive(peer, req(Code.PUT, "/0/11", content.encode_instance(0, security(2, key=b"evil" * 4))))
    assert only_send(events).code == Code.NOT_FOUND and refused(events)
    events = c.receive(peer, req(Code.POST, "/bs"))
    assert only_send(events).code in (Code.NOT_FOUND, Code.METHOD_NOT_ALLOWED)
    assert not any(isinstance(e, BootstrapFinished) for e in events)
    assert c.store.snapshot() == before


def test_delete_of_bs_is_not_a_delete_of_everything():
    c = client()
    before = c.store.snapshot()
    assert only_send(c.receive(BOOTSTRAP, req(Code.DELETE, "/bs"))).code == Code.NOT_FOUND
    assert c.store.snapshot() == before


def test_bootstrap_server_cannot_read_even_secrets():
    c = client()
    for path in ("/0/10/5", "/0/10/8", "/0", "/3/0"):
        events = c.receive(BOOTSTRAP, req(Code.GET, path))
        reply = only_send(events)
        assert reply.code == Code.METHOD_NOT_ALLOWED and reply.payload == b""
        assert rule_of(events) == ["bootstrap_read"]


def test_bootstrap_write_with_a_bad_value_changes_nothing():
    c = client()
    before = c.store.snapshot()
    bad = security(2)
    bad[Sec.MODE] = 7
    events = c.receive(BOOTSTRAP, req(Code.PUT, "/0", content.encode_object(0, {11: security(3), 12: bad})))
    assert only_send(events).code == Code.BAD_REQUEST and rule_of(events) == ["invalid_value"]
    assert c.store.snapshot() == before


def test_bootstrap_finish_checks_the_configuration():
    c = client()
    assert only_send(c.receive(BOOTSTRAP, req(Code.DELETE, "/0"))).code == Code.DELETED
    assert c.store.get(0, 0) is not None  # the bootstrap account stays
    assert c.store.get(0, 10) is None
    assert c.store.get(1, 0) is None  # unbootstrapping (D.1.3 step 4) took the Server instance too
    events = c.receive(BOOTSTRAP, req(Code.POST, "/bs"))
    assert only_send(events).code == Code.NOT_ACCEPTABLE
    assert any(isinstance(e, BootstrapRejected) for e in events)
    c.receive(BOOTSTRAP, req(Code.PUT, "/1/0", content.encode_instance(1, server(1))))
    events = c.receive(BOOTSTRAP, req(Code.POST, "/bs"))  # a Server instance without its Security instance
    assert only_send(events).code == Code.NOT_ACCEPTABLE
    c.receive(BOOTSTRAP, req(Code.PUT, "/0/10", content.encode_instance(0, security(1))))
    events = c.receive(BOOTSTRAP, req(Code.POST, "/bs"))
    assert only_send(events).code == Code.CHANGED
    assert BootstrapFinished((1,)) in events


def test_bootstrap_finish_refuses_an_incomplete_security_instance():
    c = client()
    c.receive(BOOTSTRAP, req(Code.PUT, "/0/11/0", content.encode_resource(0, 0, "coaps://x.example:5684")))
    assert only_send(c.receive(BOOTSTRAP, req(Code.POST, "/bs"))).code == Code.NOT_ACCEPTABLE


def test_client_hold_off_time_delays_the_bootstrap_request():
    c = client(provisioned(hold_off=30))
    assert c.start_bootstrap() == [Timer("bootstrap", 30.0)]
    msg = only_send(c.timer_fired("bootstrap"))
    assert msg.code == Code.POST and msg.path == "/bs" and msg.uri_query == ("ep=urn:imei:490154203237518",)
    c2 = client(provisioned())
    assert only_send(c2.start_bootstrap()).path == "/bs"


# -- registration -----------------------------------------------------------------------------------

def registered(c, ssid=1, location=("rd", "5a3f")):
    reg = only_send(c.register(ssid))
    ack = coap.response(reg, Code.CREATED, options=coap.path_options(location, Option.LOCATION_PATH))
    return c.receive(ssid, coap.decode(coap.encode(ack)))


def test_register_update_deregister():
    c = client()
    events = registered(c)
    assert Registered(1, "/rd/5a3f") in events and Timer("update:1", 270.0) in events
    up = only_send(c.timer_fired("update:1"))
    assert up.code == Code.POST and up.path == "/rd/5a3f" and up.uri_query == ()
    assert Updated(1) in c.receive(1, coap.response(up, Code.CHANGED))
    c.store.get(1, 0)[1] = 600
    up = only_send(c.update(1))
    assert up.uri_query == ("lt=600",)
    de = only_send(c.deregister(1))
    assert de.code == Code.DELETE and de.path == "/rd/5a3f"
    assert c.receive(1, coap.response(de, Code.DELETED)) == [Deregistered(1)]


def test_a_response_from_another_peer_is_not_taken():
    c = client(provisioned((1, 2)))
    reg = only_send(c.register(1))
    ack = coap.response(reg, Code.CREATED, options=coap.path_options("/rd/x", Option.LOCATION_PATH))
    assert c.receive(2, ack) == []
    assert c.registrations == {}


# -- device management -------------------------------------------------------------------------------

def test_read_write_execute_on_the_device_object():
    c = client()
    reply = only_send(c.receive(1, req(Code.GET, "/3/0")))
    assert reply.code == Code.CONTENT and reply.content_format == TLV
    values = content.decode_instance(3, 0, reply.payload)
    assert values[2] == "345000123" and 4 not in values
    reply = only_send(c.receive(1, req(Code.GET, "/3/0/2")))
    assert content.decode_resource(3, 2, reply.payload) == "345000123"
    assert only_send(c.receive(1, req(Code.PUT, "/3/0/13", content.encode_resource(3, 13, 1700000000)))).code \
        == Code.CHANGED
    assert c.store.get(3, 0)[13] == 1700000000
    events = c.receive(1, req(Code.POST, "/3/0/4"))
    assert only_send(events).code == Code.CHANGED and Executed(1, "/3/0/4", b"") in events


@pytest.mark.parametrize("code, path, payload", [
    (Code.PUT, "/3/0/2", content.encode_resource(3, 2, "forged")),   # read-only resource
    (Code.POST, "/3/0/2", b""),                                      # execute a non-executable
    (Code.GET, "/3/0/4", b""),                                       # read an executable
    (Code.DELETE, "/3/0", b""),                                      # the Device instance stays
])
def test_operations_the_resource_does_not_support(code, path, payload):
    c = client()
    before = c.store.snapshot()
    events = c.receive(1, req(code, path, payload))
    assert only_send(events).code == Code.METHOD_NOT_ALLOWED and rule_of(events) == ["operation"]
    assert c.store.snapshot() == before


def test_write_with_a_bad_value_or_format_changes_nothing():
    c = client()
    before = c.store.snapshot()
    assert only_send(c.receive(1, req(Code.PUT, "/1/0/7", content.encode_resource(1, 7, "T")))).code == Code.BAD_REQUEST
    assert only_send(c.receive(1, req(Code.PUT, "/3/0/13", b"17", fmt=ContentFormat.TEXT))).code \
        == Code.UNSUPPORTED_CONTENT_FORMAT
    assert only_send(c.receive(1, req(Code.PUT, "/3/0/13", b"\xc4\x0d\x00"))).code == Code.BAD_REQUEST
    assert only_send(c.receive(1, req(Code.GET, "/3/0", options=[(Option.ACCEPT, b"\x32")]))).code \
        == Code.NOT_ACCEPTABLE
    assert c.store.snapshot() == before


def test_registration_update_trigger():
    c = client()
    registered(c)
    events = c.receive(1, req(Code.POST, "/1/0/8"))
    sent = [e.message for e in events if hasattr(e, "message")]
    assert [m.code for m in sent] == [Code.CHANGED, Code.POST] and sent[1].path == "/rd/5a3f"


def test_create_and_delete_in_a_single_server_client():
    c = client()
    events = c.receive(1, req(Code.POST, "/1", content.encode_instance(1, server(5))))
    reply = only_send(events)
    assert reply.code == Code.CREATED and reply.location_path == ("1", "1")
    assert c.store.get(1, 1)[0] == 5
    # a second Server instance makes the client multi-server: the creator owns the new instance's ACL
    assert c.store.get(2, c.store.acl_iid(1, 1))[3] == 1
    assert only_send(c.receive(1, req(Code.DELETE, "/1/1"))).code == Code.DELETED
    assert c.store.get(1, 1) is None and c.store.acl_iid(1, 1) is None
    assert only_send(c.receive(1, req(Code.POST, "/2", b"\xc1\x00\x03"))).code == Code.UNAUTHORIZED


def test_unknown_server_is_refused():
    c = client()
    events = c.receive(9, req(Code.GET, "/3/0"))
    assert only_send(events).code == Code.UNAUTHORIZED and rule_of(events) == ["unknown_peer"]


# -- access control with two servers (§7.3) ------------------------------------------------------------

def two_servers():
    c = client(provisioned((1, 2)))
    c.store.add_acl(3, 0, owner=1, entries={2: Access.READ})
    c.store.add_acl(1, 0, owner=1)
    c.store.add_acl(1, 1, owner=2)
    return c


def test_acl_grants_read_to_the_second_server_and_not_write():
    c = two_servers()
    assert only_send(c.receive(2, req(Code.GET, "/3/0/2"))).code == Code.CONTENT
    before = c.store.snapshot()
    events = c.receive(2, req(Code.PUT, "/3/0/13", content.encode_resource(3, 13, 5)))
    assert only_send(events).code == Code.UNAUTHORIZED and rule_of(events) == ["access_control"]
    assert c.store.snapshot() == before
    assert only_send(c.receive(1, req(Code.PUT, "/3/0/13", content.encode_resource(3, 13, 5)))).code == Code.CHANGED


def test_acl_keeps_servers_out_of_each_other_s_instances():
    c = two_servers()
    assert only_send(c.receive(2, req(Code.GET, "/1/0"))).code == Code.UNAUTHORIZED
    assert only_send(c.receive(2, req(Code.DELETE, "/1/0"))).code == Code.UNAUTHORIZED
    assert c.store.get(1, 0) is not None
    assert only_send(c.receive(2, req(Code.GET, "/1/1"))).code == Code.CONTENT
    reply = only_send(c.receive(2, req(Code.GET, "/1")))
    assert list(content.decode_object(1, reply.payload)) == [1]


def test_default_acl_entry_and_create_bit():
    c = two_servers()
    c.store.add_acl(3, 0, owner=1)  # a second, later ACL instance is ignored: the first one decides
    aiid = c.store.acl_iid(1, 0)
    c.store.get(2, aiid)[2] = {0: Access.READ}
    assert only_send(c.receive(2, req(Code.GET, "/1/0"))).code == Code.CONTENT
    assert only_send(c.receive(2, req(Code.POST, "/1", content.encode_instance(1, server(7))))).code \
        == Code.UNAUTHORIZED
    c.store.add_acl(1, 65535, owner=1, entries={2: Access.CREATE})
    reply = only_send(c.receive(2, req(Code.POST, "/1", content.encode_instance(1, server(7)))))
    assert reply.code == Code.CREATED
    new_iid = int(reply.location_path[1])
    assert c.store.get(2, c.store.acl_iid(1, new_iid))[3] == 2  # the creator owns it


def test_only_the_owner_writes_an_acl_instance():
    c = two_servers()
    aiid = c.store.acl_iid(3, 0)
    grant = content.encode_resource(2, 2, {2: int(Access.READ | Access.WRITE)})
    assert only_send(c.receive(2, req(Code.PUT, f"/2/{aiid}/2", grant))).code == Code.UNAUTHORIZED
    assert c.store.get(2, aiid)[2] == {2: Access.READ}
    assert only_send(c.receive(1, req(Code.PUT, f"/2/{aiid}/2", grant))).code == Code.CHANGED
    assert only_send(c.receive(1, req(Code.DELETE, f"/2/{aiid}"))).code == Code.UNAUTHORIZED


def test_a_non_confirmable_request_gets_a_non_reply():
    c = client()
    msg = coap.decode(coap.encode(coap.request(Code.GET, "/3/0/2", message_id=7, token=b"t", type=Type.NON)))
    reply = only_send(c.receive(1, msg))
    assert reply.type == Type.NON and reply.token == b"t" and reply.code == Code.CONTENT


from hypothesis import given, settings, strategies as st  # noqa: E402


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([Code.PUT, Code.POST]), st.sampled_from(["/0", "/0/10", "/1/0", "/3/0", "/1", "/2", "/3/0/13"]),
       st.binary(max_size=48), st.sampled_from([1, BOOTSTRAP]))
def test_hostile_payloads_never_crash_the_client(code, path, payload, peer):
    c = client()
    events = c.receive(peer, req(code, path, payload, fmt=TLV))
    assert only_send(events).code >> 5 in (2, 4, 5)
