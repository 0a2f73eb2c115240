"""Seed 002 §5.3-§5.5 message security in whole DM sessions between the client and server cores:
each choice completes, protects every message on the wire, refuses a tampered or wrong-key
message on both sides, and leaves a device without message security byte-identical."""
import random

import pytest

from dmsim.base.errors import MessageSecurityError, ProtocolError
from dmsim.devices.dm_client import DmClient, Done
from dmsim.network.dm import message_security as ms
from dmsim.network.dm import messages as m
from dmsim.network.dm import xml_encryption, xml_signature
from dmsim.network.dm.hmac_integrity import AUTH_HMAC_SHA256, HEADER_NAME
from dmsim.network.dm.server import INTEGRITY_FAILED, DmServer, http_status

DEV = "IMSI:001010000000001"
OTHER = "IMSI:001010000000002"
SECRET, SRV_SECRET = "client-secret-Zq8x", "server-secret-Kp3w"
NOW = 1_700_000_000.0
CHOICES = ("hmac-md5", "xmldsig", "xmlenc")


def content_type(name):
    return m.DM_XML if name in ("xmldsig", "xmlenc") else m.DM_WBXML


def setup(name, *, scheme="syncml:auth-md5", per_device=False, device=DEV):
    rng = random.Random(3)
    srv = DmServer("dmsim-server", "http://dm.test/dm", rng.randbytes,
                   message_security=None if per_device else ms.make(name))
    account = srv.provision(device, client_name=device[5:], client_password=SECRET, server_password=SRV_SECRET,
                            auth_scheme=scheme, message_security=ms.make(name) if per_device else None)
    client = DmClient(account, device, {"Mod": "model-x"}, 5, random.Random(4).randbytes, content_type(name),
                      message_security=ms.make(name))
    return srv, client


def run(srv, client, *, up=None, down=None):
    """Run a session (``up``/``down`` may change the wire); return (Done, events, wire)."""
    step, events, wire = client.start(NOW), [], []
    for i in range(40):
        if isinstance(step, Done):
            return step, events, wire
        body = up(step.body) if up else step.body
        reply = srv.handle(body, step.content_type, NOW + i, step.headers)
        wire += [("up", body, step.headers), ("down", reply.body, reply.headers)]
        events += reply.events
        step = client.receive(down(reply.body) if down else reply.body, reply.content_type, reply.headers, NOW + i)
    raise AssertionError("session did not end")


@pytest.mark.parametrize("name", CHOICES)
def test_session_completes_with_every_message_protected(name):
    srv, client = setup(name)
    done, events, wire = run(srv, client)
    assert done.ok, done
    assert "session_completed" in [e.kind for e in events]
    for _, body, headers in wire:
        if name == "hmac-md5":
            assert headers[HEADER_NAME].startswith("algorithm=MD5,")
        else:
            assert b"<ds:Signature" in body
        if name == "xmlenc":
            assert b"xenc:EncryptedData" in body and b"<SyncBody" not in body


def test_xmlenc_hides_the_management_data():
    srv, client = setup("xmlenc")
    _, _, wire = run(srv, client)
    assert all(b"model-x" not in body for _, body, _ in wire)


@pytest.mark.parametrize("name", CHOICES)
def test_server_refuses_a_tampered_request(name):
    srv, client = setup(name)
    tamper = (lambda b: b.replace(b"model-x", b"model-y")) if name != "xmlenc" else (
        lambda b: b.replace(b"<xenc:CipherValue>", b"<xenc:CipherValue>AAAA"))
    done, events, _ = run(srv, client, up=tamper)
    assert not done.ok
    refused = [e for e in events if e.kind == INTEGRITY_FAILED]
    assert refused and refused[0].scheme == name
    assert DEV not in srv.sessions


@pytest.mark.parametrize("name", CHOICES)
def test_client_refuses_a_tampered_server_message(name):
    srv, client = setup(name)
    tamper = (lambda b: b.replace(b"</SyncHdr>", b"<Final/></SyncHdr>", 1)) if name != "hmac-md5" else (
        lambda b: b + b"\x00")
    done, _, _ = run(srv, client, down=tamper)
    assert done == Done(False, "server_message_security_failed")
    assert isinstance(client.security_error, MessageSecurityError)


@pytest.mark.parametrize("name", CHOICES)
def test_wrong_client_key_is_refused(name):
    srv, client = setup(name)
    client.account = client.account.__class__(**{**client.account.__dict__, "client_password": "guess"})
    done, events, wire = run(srv, client)
    assert not done.ok and [e.kind for e in events] == [INTEGRITY_FAILED]
    assert wire[1][1] == b""  # a clean close, HTTP 401 from a driver


def test_refusal_maps_to_http_401():
    srv, client = setup("xmldsig")
    step = client.start(NOW)
    forged = xml_signature.sign(xml_signature.verify(step.body, SECRET.encode()), b"guess")
    reply = srv.handle(forged, step.content_type, NOW, step.headers)
    assert http_status(reply) == 401 and reply.events[0].detail == "bad_signature"


def test_unsigned_request_is_refused():
    srv, client = setup("xmldsig")
    step = client.start(NOW)
    plain = xml_signature.verify(step.body, SECRET.encode())
    reply = srv.handle(plain, step.content_type, NOW, step.headers)
    assert reply.events[0].kind == INTEGRITY_FAILED and reply.events[0].detail == "unsigned"


def test_xml_security_needs_the_xml_media_type():
    srv, client = setup("xmldsig")
    client.content_type = m.DM_WBXML
    with pytest.raises(MessageSecurityError) as exc:
        client.start(NOW)
    assert exc.value.reason == "needs_xml"


def test_hmac_md5_retransmission_gets_the_cached_reply_but_a_later_replay_does_not():
    srv, client = setup("hmac-md5")
    first = client.start(NOW)
    a = srv.handle(first.body, first.content_type, NOW, first.headers)
    b = srv.handle(first.body, first.content_type, NOW + 1, first.headers)  # retransmission
    assert a.body and b.body and not b.events
    second = client.receive(a.body, a.content_type, a.headers, NOW + 1)
    srv.handle(second.body, second.content_type, NOW + 2, second.headers)  # the session ends
    late = srv.handle(first.body, first.content_type, NOW + 3, first.headers)
    assert late.events[0].kind == INTEGRITY_FAILED and late.events[0].detail == "replay"


def test_xmldsig_runs_with_an_hmac_sha256_account():
    srv, client = setup("xmldsig", scheme=AUTH_HMAC_SHA256)
    done, _, wire = run(srv, client)
    assert done.ok and all(HEADER_NAME in headers for _, _, headers in wire)


def test_hmac_md5_cannot_share_the_header_with_hmac_sha256():
    with pytest.raises(ProtocolError):
        setup("hmac-md5", scheme=AUTH_HMAC_SHA256)


def test_per_device_choice_leaves_other_devices_byte_identical():
    """A server with message security for one device answers another device exactly, byte for
    byte, as a server without message security does."""
    wires = []
    for security in (None, ms.make("xmlenc")):
        srv = DmServer("dmsim-server", "http://dm.test/dm", random.Random(3).randbytes)
        account = srv.provision(OTHER, client_name=OTHER[5:], client_password=SECRET, server_password=SRV_SECRET)
        srv.provision(DEV, client_name=DEV[5:], client_password=SECRET, server_password=SRV_SECRET,
                      message_security=security)
        client = DmClient(account, OTHER, {"Mod": "model-x"}, 5, random.Random(4).randbytes, m.DM_WBXML)
        done, _, wire = run(srv, client)
        assert done.ok
        wires.append(wire)
    assert wires[0] == wires[1]


def test_encryption_key_is_per_direction():
    assert xml_encryption.derive_key(SECRET.encode()) != xml_encryption.derive_key(SRV_SECRET.encode())


def test_make_refuses_an_unknown_choice():
    assert ms.make("none") is None
    with pytest.raises(ProtocolError):
        ms.make("rot13")


def test_repeated_bad_signatures_lock_the_device_out():
    srv, client = setup("xmldsig")
    step = client.start(NOW)
    forged = xml_signature.sign(xml_signature.verify(step.body, SECRET.encode()), b"guess")
    details = [srv.handle(forged, step.content_type, NOW, step.headers).events[0].detail for _ in range(6)]
    assert details[:5] == ["bad_signature"] * 5 and details[5] == "locked"
    # even the right signature waits out the lock
    assert srv.handle(step.body, step.content_type, NOW, step.headers).events[0].detail == "locked"
