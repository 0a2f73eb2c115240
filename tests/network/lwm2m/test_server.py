"""The sans-IO LwM2M Server: registration (OMA-TS-LightweightM2M-V1_0 §5.3) bound to the
authenticated identity, and DM requests (§5.4) with their TLV replies."""
import itertools
import json
from pathlib import Path

import pytest

from dmsim.network.coap import message as coap
from dmsim.network.coap.message import Code, ContentFormat, Option
from dmsim.network.lwm2m import content
from dmsim.network.lwm2m.events import Send
from dmsim.network.lwm2m.server import (Deregistered, DmResponse, Lwm2mServer, RegistrationAccepted,
                                        RegistrationExpired, RegistrationRefused, RegistrationUpdated)

DEVICE_TLV = bytes.fromhex(next(v for v in json.loads(
    (Path(__file__).resolve().parents[2] / "vectors" / "lwm2m_tlv.json").read_text())["vectors"]
    if v["id"] == "device-read-3-0")["tlv_hex"])
CREDS = {"dev1": b"psk-id-1", "dev2": b"psk-id-2"}


def randbytes():
    counter = itertools.count(0xA0)
    return lambda n: next(counter).to_bytes(n, "big")


def wire(msg):
    return coap.decode(coap.encode(msg))


_mid = itertools.count(1)


def register(ep="dev1", lt="300", extra=()):
    return wire(coap.request(Code.POST, "/rd", message_id=next(_mid), token=b"r",
                             query=[f"ep={ep}", f"lt={lt}", "b=U", "lwm2m=1.0", *extra],
                             payload=b"</1/0>,</3/0>", content_format=ContentFormat.LINK_FORMAT))


def reply_of(events):
    (send,) = [e for e in events if isinstance(e, Send)]
    return wire(send.message)


def registered_server(**kw):
    server = Lwm2mServer(CREDS, randbytes=randbytes(), **kw)
    events = server.receive(b"psk-id-1", register(), now=0.0)
    return server, reply_of(events)


def test_register_with_the_endpoint_s_identity():
    server, reply = registered_server()
    assert reply.code == Code.CREATED and reply.location_path == ("rd", "000000a1")
    reg = server.registration("dev1")
    assert reg.identity == b"psk-id-1" and reg.objects == ((1, 0), (3, 0)) and reg.expires == 300.0


@pytest.mark.parametrize("identity, ep", [(b"psk-id-2", "dev1"), (b"psk-id-1", "stranger"), (b"", "dev1")])
def test_register_from_another_identity_is_refused_and_changes_nothing(identity, ep):
    server, _ = registered_server()
    before = dict(server.registrations)
    events = server.receive(identity, register(ep), now=1.0)
    assert reply_of(events).code == Code.FORBIDDEN
    assert any(isinstance(e, RegistrationRefused) and e.reason == "identity_mismatch" for e in events)
    assert server.registrations == before and server.registration("dev1").location == "/rd/000000a1"


@pytest.mark.parametrize("lt, extra", [("0", ()), ("x", ()), ("99999999999", ()), ("300", ("lwm2m=1.1",)),
                                       ("300", ("b=T",))])
def test_malformed_registers(lt, extra):
    server = Lwm2mServer(CREDS, randbytes=randbytes())
    assert reply_of(server.receive(b"psk-id-1", register(lt=lt, extra=extra), now=0.0)).code == Code.BAD_REQUEST
    assert server.registrations == {}


def test_registrations_are_bounded_and_a_re_register_replaces():
    server, _ = registered_server(max_registrations=1)
    assert reply_of(server.receive(b"psk-id-2", register("dev2"), now=0.0)).code == Code.SERVICE_UNAVAILABLE
    reply = reply_of(server.receive(b"psk-id-1", register(), now=5.0))
    assert reply.code == Code.CREATED and server.registration("dev1").location == "/" + "/".join(reply.location_path)
    assert len(server.registrations) == 1


def update(location, **kw):
    return wire(coap.request(Code.POST, location, message_id=next(_mid), token=b"u", **kw))


def test_update_and_deregister_only_from_the_registered_identity():
    server, reply = registered_server()
    loc = "/" + "/".join(reply.location_path)
    assert reply_of(server.receive(b"psk-id-2", update(loc, query=["lt=5"]), now=10.0)).code == Code.FORBIDDEN
    assert server.registration("dev1").lifetime == 300
    events = server.receive(b"psk-id-1", update(loc, query=["lt=600"]), now=10.0)
    assert reply_of(events).code == Code.CHANGED and RegistrationUpdated("dev1") in events
    assert server.registration("dev1").expires == 610.0
    delete = wire(coap.request(Code.DELETE, loc, message_id=next(_mid)))
    assert reply_of(server.receive(b"psk-id-2", delete, now=11.0)).code == Code.FORBIDDEN
    events = server.receive(b"psk-id-1", delete, now=11.0)
    assert reply_of(events).code == Code.DELETED and Deregistered("dev1") in events
    assert reply_of(server.receive(b"psk-id-1", update(loc), now=12.0)).code == Code.NOT_FOUND


def test_lifetime_expiry():
    server, reply = registered_server()
    loc = "/" + "/".join(reply.location_path)
    assert server.next_expiry() == 300.0
    assert reply_of(server.receive(b"psk-id-1", update(loc), now=300.0)).code == Code.NOT_FOUND
    assert server.expire(299.0) == []
    assert server.expire(300.0) == [RegistrationExpired("dev1")] and server.registrations == {}


def client_answer(request, code, payload=b"", fmt=ContentFormat.LWM2M_TLV, options=()):
    return wire(coap.response(request, code, payload=payload, content_format=fmt if payload else None,
                              options=options))


def test_read_parses_the_tlv_reply():
    server, _ = registered_server()
    send = server.read("dev1", (3, 0))
    assert send.peer == b"psk-id-1"
    req = wire(send.message)
    assert req.code == Code.GET and req.path == "/3/0" and req.accept == ContentFormat.LWM2M_TLV
    (resp,) = server.receive(b"psk-id-1", client_answer(req, Code.CONTENT, DEVICE_TLV), now=1.0)
    assert resp.code == Code.CONTENT and resp.value[0] == "Open Mobile Alliance" and resp.value[13] == 1367491215


def test_a_reply_from_another_identity_or_bad_tlv():
    server, _ = registered_server()
    req = wire(server.read("dev1", (3, 0, 0)).message)
    assert server.receive(b"psk-id-2", client_answer(req, Code.CONTENT, b"\xc3\x00ab"), now=1.0) == []
    (resp,) = server.receive(b"psk-id-1", client_answer(req, Code.CONTENT, b"\xc3\x00ab"), now=1.0)
    assert resp.value is None and "lwm2m-tlv" in resp.error


def test_write_execute_create_delete_requests():
    server, _ = registered_server()
    w = wire(server.write("dev1", (1, 0, 1), 600).message)
    assert w.code == Code.PUT and content.decode_resource(1, 1, w.payload) == 600
    p = wire(server.write("dev1", (1, 0), {1: 600}, replace=False).message)
    assert p.code == Code.POST and content.decode_instance(1, 0, p.payload) == {1: 600}
    x = wire(server.execute("dev1", (3, 0, 4)).message)
    assert x.code == Code.POST and x.path == "/3/0/4" and x.payload == b""
    c = wire(server.create("dev1", 1, {0: 5, 1: 60, 6: True, 7: "U"}).message)
    assert c.code == Code.POST and c.path == "/1"
    (resp,) = server.receive(b"psk-id-1", client_answer(c, Code.CREATED, options=coap.path_options(
        "/1/1", Option.LOCATION_PATH)), now=1.0)
    assert resp == DmResponse("dev1", "create", (1,), Code.CREATED, (1, 1))
    d = wire(server.delete("dev1", (1, 1)).message)
    assert d.code == Code.DELETE and d.path == "/1/1"
    with pytest.raises(KeyError):
        server.read("nobody", (3, 0))


def test_registration_accepted_event_and_callable_credentials():
    server = Lwm2mServer(lambda ep: b"id-" + ep.encode() if ep.startswith("dev") else None, randbytes=randbytes())
    events = server.receive("id-dev9", register("dev9"), now=0.0)
    assert any(isinstance(e, RegistrationAccepted) and e.endpoint == "dev9" for e in events)
    assert reply_of(server.receive("id-x", register("x"), now=0.0)).code == Code.FORBIDDEN
