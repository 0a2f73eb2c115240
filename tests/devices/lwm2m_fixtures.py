"""Shared builders for the LwM2M client tests: deterministic randomness, provisioned stores, and
requests passed through the CoAP codec (network/coap/message encode/decode)."""
from __future__ import annotations

import itertools

from dmsim.devices.lwm2m_client import Lwm2mClient
from dmsim.devices.lwm2m_store import ObjectStore
from dmsim.network.coap import message as coap
from dmsim.network.coap.message import ContentFormat, Message
from dmsim.network.lwm2m.events import Send
from dmsim.network.lwm2m.objects import Sec, Srv

TLV = ContentFormat.LWM2M_TLV


def randbytes_counter(seed: int = 0):
    counter = itertools.count(seed)
    return lambda n: next(counter).to_bytes(8, "big")[-n:].rjust(n, b"\0")


def security(ssid: int | None, *, bootstrap: bool = False, key: bytes = bytes(range(16)),
             identity: bytes = b"dev1", hold_off: int | None = None) -> dict:
    r = {Sec.URI: "coaps://bs.example:5684" if bootstrap else f"coaps://dm{ssid}.example:5684",
         Sec.BOOTSTRAP: bootstrap, Sec.MODE: 0, Sec.PUBLIC_KEY_OR_IDENTITY: identity, Sec.SERVER_PUBLIC_KEY: b"",
         Sec.SECRET_KEY: key}
    if ssid is not None:
        r[Sec.SHORT_SERVER_ID] = ssid
    if hold_off is not None:
        r[Sec.HOLD_OFF] = hold_off
    return r


def server(ssid: int, lifetime: int = 300, binding: str = "U") -> dict:
    return {Srv.SHORT_SERVER_ID: ssid, Srv.LIFETIME: lifetime, Srv.NOTIFICATION_STORING: True, Srv.BINDING: binding}


def provisioned(ssids=(1,), *, hold_off: int | None = None) -> ObjectStore:
    """A store with the bootstrap account (/0/0) and, per SSID, /0/ssid and /1/ssid-1."""
    store = ObjectStore.with_device(serial="345000123")
    store.put(0, 0, security(None, bootstrap=True, hold_off=hold_off))
    for i, ssid in enumerate(ssids):
        store.put(0, 10 + i, security(ssid, key=bytes([ssid]) * 16))
        store.put(1, i, server(ssid))
    return store


def client(store: ObjectStore | None = None, **kw) -> Lwm2mClient:
    return Lwm2mClient("urn:imei:490154203237518", store or provisioned(), randbytes=randbytes_counter(), **kw)


def wire(msg: Message) -> Message:
    """The message as the peer sees it: encoded to a datagram and decoded again."""
    return coap.decode(coap.encode(msg))


_mid = itertools.count(100)


def req(code: int, path: str, payload: bytes = b"", *, fmt: int | None = None, **kw) -> Message:
    if payload and fmt is None:
        fmt = TLV
    return wire(coap.request(code, path, message_id=next(_mid), token=next(_mid).to_bytes(2, "big"),
                             payload=payload, content_format=fmt, **kw))


def only_send(events) -> Message:
    sent = [e for e in events if isinstance(e, Send)]
    assert len(sent) == 1, events
    return wire(sent[0].message)
