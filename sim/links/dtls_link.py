"""DTLS associations over the simulated ip links: LwM2M's UDP channel security (seed 004 §7.1,
RFC 6347, RFC 7252 §9) between the devices and a server, in simulated time.

No protocol logic: the sans-IO :mod:`dmsim.network.lwm2m.dtls` endpoints do the DTLS; this module
moves their datagrams and runs their timers.

- Every datagram is one :class:`~dmsim.sim.links.link.Message` of kind ``dtls`` (``coap`` for
  NoSec, seed 004 D.1 Security Mode 3) on ``replica.ip_up`` (device to server) or
  ``replica.ip_down``, so the links' delay, loss, duplication and reordering and an adversary's tap
  act on real DTLS records. ``msg.src``/``msg.dst`` are the device's transport address and the
  service's name; ``msg.meta`` is the device agent.
- DTLS timers (RFC 6347 §4.2.4): after every call into an endpoint, a ``timer_generation``
  different from the one last seen (re)starts one ``env.timeout(next_timeout)``; an expiry of an
  older generation does nothing.
- :class:`DtlsService` is a server's listening side: one
  :class:`~dmsim.network.lwm2m.dtls.DtlsServer` (its cookie gate and its associations, keyed by
  the device's address; None for NoSec) and, per association that completed its handshake, the
  application's receiver (``opened`` gives it; the owner puts a CoAP channel there).
  :class:`DtlsClientLink` is a device's side of one association: its
  :class:`~dmsim.network.lwm2m.dtls.DtlsEndpoint`, with ``suspend``/``resume`` across sleep.

Memory: the service keeps its clients in a ``WeakValueDictionary`` (as the DM transport holds its
connection weakly): a device that let go of its link frees it and its Mbed TLS context; a datagram
in flight holds its link only until it lands. A server association ends with its close_notify, a
failure, or :meth:`DtlsService.forget`.

Counting, per device: ``ip_msgs``/``ip_bytes`` every datagram of its associations, both ways
(resends included); ``ip_retries`` the flights its own endpoint re-sent on a timer. Per service
(``stats``, flat counters for summary.json): ``handshakes``, ``suite.<IANA name>``,
``failed.<reason>`` (client and server side), ``hello_verify``, ``dropped``, ``retransmissions``.

Hook points for an adversary (``sim/agents/adversary``): the links' taps see every datagram;
``DtlsService.server`` is the DtlsServer (its associations by address), ``DtlsService.clients``
the devices' live links by address.
"""
from __future__ import annotations

import weakref
from collections.abc import Callable

from dmsim.network.lwm2m.dtls import AppData, Closed, DtlsConfig, DtlsEndpoint, DtlsFailed, DtlsServer, HandshakeDone
from dmsim.sim.links.link import Message

DTLS_KIND = "dtls"
NOSEC_KIND = "coap"

Receiver = Callable[[bytes], None]


def failure_reason(reason: str) -> str:
    """Return the short sessions.csv reason of a DtlsFailed reason (``dtls_timeout`` or ``dtls_failed``)."""
    return "dtls_timeout" if reason == "timeout" else "dtls_failed"


def _count(stats: dict, key: str, n: int = 1) -> None:
    stats[key] = stats.get(key, 0) + n


class DtlsService:
    """A server's DTLS (or NoSec, ``server`` None) listener on the ip links, named ``name``.

    ``opened(address, done)`` is called when an association is usable (``done`` the HandshakeDone,
    None for NoSec) and returns the receiver of its application data, or None to refuse it;
    ``ended(address)`` when it is gone (closed, failed or forgotten).
    """

    def __init__(self, replica, name: str, server: DtlsServer | None,
                 opened: Callable[[bytes, HandshakeDone | None], Receiver | None],
                 ended: Callable[[bytes], None]):
        self.replica, self.env, self.name, self.server = replica, replica.env, name, server
        self.opened, self.ended = opened, ended
        self.clients: weakref.WeakValueDictionary[bytes, DtlsClientLink] = weakref.WeakValueDictionary()
        self.receivers: dict[bytes, Receiver] = {}
        self.stats: dict[str, int] = {}
        self._generations: dict[bytes, int] = {}

    @property
    def kind(self) -> str:
        """The message kind of this service's datagrams."""
        return NOSEC_KIND if self.server is None else DTLS_KIND

    # -- from the devices ----------------------------------------------------------------------
    def arrive(self, msg: Message) -> None:
        """A datagram from a device reached the server (the ip_up link's delivery)."""
        address = msg.src.encode()
        if self.server is None:
            receiver = self.receivers.get(address)
            if receiver is None:
                receiver = self.opened(address, None)
                if receiver is None:
                    return
                self.receivers[address] = receiver
            receiver(msg.payload)
            return
        self._events(address, self.server.receive_datagram(address, msg.payload))
        self._flush()

    def send(self, address: bytes, data: bytes) -> None:
        """Send application data (a CoAP message) to the device at ``address``."""
        if self.server is None:
            self._down(address, data)
            return
        endpoint = self.server.endpoints.get(address)
        if endpoint is None or endpoint.state != "open":
            return
        endpoint.send(data)
        self._flush()

    def forget(self, address: bytes) -> None:
        """Drop the association of ``address`` (the registration ended)."""
        if self.server is not None:
            self.server.forget(address)
        self._gone(address)

    # -- internals ------------------------------------------------------------------------------
    def _events(self, address: bytes, events: list) -> None:
        for event in events:
            kind = event.__class__
            if kind is AppData:
                receiver = self.receivers.get(address)
                if receiver is not None:
                    receiver(event.data)
            elif kind is HandshakeDone:
                _count(self.stats, "handshakes")
                _count(self.stats, f"suite.{event.cipher}")
                receiver = self.opened(address, event)
                if receiver is None:
                    self.server.forget(address)
                else:
                    self.receivers[address] = receiver
            elif kind is DtlsFailed:
                _count(self.stats, f"failed.server.{failure_reason(event.reason)}")
                self._gone(address)
            elif kind is Closed:
                self._gone(address)
        self._arm(address)

    def _gone(self, address: bytes) -> None:
        if self.receivers.pop(address, None) is not None:
            self.ended(address)
        self._generations.pop(address, None)

    def _flush(self) -> None:
        for address, datagram in self.server.datagrams_to_send():
            self._down(address, datagram)

    def _down(self, address: bytes, datagram: bytes) -> None:
        client = self.clients.get(address)
        if client is None:
            return  # the device is gone: nobody listens at that address any more
        client.count(datagram)
        self.replica.ip_down.send(Message(datagram, self.name, address.decode(), self.kind, client.dev),
                                  client.arrive)

    def _arm(self, address: bytes) -> None:
        endpoint = self.server.endpoints.get(address) if self.server is not None else None
        if endpoint is None:
            self._generations.pop(address, None)
            return
        generation = endpoint.timer_generation
        if self._generations.get(address) == generation:
            return
        self._generations[address] = generation
        if endpoint.next_timeout is not None:
            self.env.timeout(endpoint.next_timeout, (address, generation)).callbacks.append(self._expire)

    def _expire(self, event) -> None:
        address, generation = event.value
        endpoint = self.server.endpoints.get(address)
        if endpoint is None or endpoint.timer_generation != generation:
            return
        _count(self.stats, "retransmissions")
        self._events(address, endpoint.on_timeout())
        self._flush()


class DtlsClientLink:
    """A device's side of one association with ``service``: ``config`` None is NoSec.

    ``on_open()`` once the handshake is done (at once for NoSec), ``on_data(bytes)`` for each
    application record, ``on_failed(reason)`` on a failure (``dtls_timeout``, ``dtls_failed``,
    ``dtls_closed``). Application data sent before the handshake is done waits for it.
    """

    __slots__ = ("env", "replica", "dev", "service", "config", "address", "endpoint", "on_open", "on_data",
                 "on_failed", "_queue", "_generation", "state", "done", "__weakref__")

    def __init__(self, replica, dev, service: DtlsService, config: DtlsConfig | None, address: bytes,
                 on_open: Callable[[], None], on_data: Receiver, on_failed: Callable[[str], None]):
        self.env, self.replica, self.dev, self.service = replica.env, replica, dev, service
        self.config, self.address = config, address
        self.on_open, self.on_data, self.on_failed = on_open, on_data, on_failed
        self.endpoint: DtlsEndpoint | None = None
        self._queue: list[bytes] = []
        self._generation = -1
        self.state = "new"
        self.done: HandshakeDone | None = None

    def start(self) -> None:
        """Open the association: queue the ClientHello (or, for NoSec, be open at once)."""
        self.service.clients[self.address] = self
        if self.config is None:
            self.state = "open"
            self.on_open()
            return
        self.state = "handshake"
        self.endpoint = DtlsEndpoint(self.config, address=self.address)
        self._flush()

    def send(self, data: bytes) -> None:
        """Send application data now, or once the handshake is done."""
        if self.state == "open":
            if self.endpoint is None:
                self._up(data)
                return
            self.endpoint.send(data)
            self._flush()
        elif self.state == "handshake":
            self._queue.append(data)

    def close(self) -> None:
        """Send close_notify (DTLS) and stop."""
        if self.endpoint is not None and self.state == "open":
            self.endpoint.close()
            self._flush()
        self.state = "closed"
        self.endpoint = None

    def suspend(self, storage_key: bytes, nonce: bytes, generation: int) -> bytes:
        """Seal the open association for a sleep (seed 004 §7.1); the link is dead until :meth:`resume`."""
        sealed = self.endpoint.suspend(storage_key, nonce, generation)
        self.endpoint, self.state = None, "suspended"
        return sealed

    def resume(self, sealed: bytes, storage_key: bytes, generation: int) -> None:
        """Restore the association sealed by :meth:`suspend`: open again with no handshake."""
        self.endpoint = DtlsEndpoint.resume(self.config, sealed, storage_key, generation)
        self.state = "open"
        self._generation = -1
        self.service.clients[self.address] = self

    def count(self, datagram: bytes) -> None:
        """Count a datagram of this association in the device's ip columns."""
        dev = self.dev
        dev.ip_msgs += 1
        dev.ip_bytes += len(datagram)

    def arrive(self, msg: Message) -> None:
        """A datagram from the server reached the device (the ip_down link's delivery)."""
        if self.state in ("closed", "suspended", "failed", "new"):
            return
        if self.endpoint is None:
            self.on_data(msg.payload)
            return
        events = self.endpoint.receive_datagram(msg.payload)
        self._flush()
        self._events(events)

    def _events(self, events: list) -> None:
        for event in events:
            kind = event.__class__
            if kind is HandshakeDone:
                self.state, self.done = "open", event
                queued, self._queue = self._queue, []
                self.on_open()
                for data in queued:
                    self.send(data)
            elif kind is AppData:
                self.on_data(event.data)
            elif kind is DtlsFailed:
                self._fail(failure_reason(event.reason))
            elif kind is Closed:
                self._fail("dtls_closed")

    def _fail(self, reason: str) -> None:
        if self.state in ("closed", "failed"):
            return
        self.state = "failed"
        _count(self.service.stats, f"failed.client.{reason}")
        self.on_failed(reason)

    def _flush(self) -> None:
        endpoint = self.endpoint
        if endpoint is None:
            return
        for datagram in endpoint.datagrams_to_send():
            self._up(datagram)
        if endpoint.timer_generation != self._generation:
            self._generation = endpoint.timer_generation
            if endpoint.next_timeout is not None:
                self.env.timeout(endpoint.next_timeout, (weakref.ref(self), endpoint, self._generation)) \
                    .callbacks.append(_client_expired)

    def _up(self, datagram: bytes) -> None:
        self.count(datagram)
        self.replica.ip_up.send(Message(datagram, self.address.decode(), self.service.name, self.service.kind,
                                        self.dev), self.service.arrive)


def _client_expired(event) -> None:
    ref, endpoint, generation = event.value
    link = ref()
    if link is None or link.endpoint is not endpoint or endpoint.timer_generation != generation:
        return
    link.dev.ip_retries += 1
    events = endpoint.on_timeout()
    link._flush()
    link._events(events)
