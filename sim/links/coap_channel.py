"""The CoAP message layer of one peer in simulated time: RFC 7252 §4 (reliability, deduplication)
driven by SimPy timers, between an LwM2M core and a transport (DTLS records on the ip links, or
secured SMS).

The LwM2M cores (``network/lwm2m``, ``devices/lwm2m_client.py``) build whole messages and leave
retransmission and duplicate detection to their driver (``network/lwm2m/events.py``); the sans-IO
:class:`~dmsim.network.coap.reliability.Endpoint` does both. :class:`CoapChannel` joins them:

- a message from the core goes out through ``Endpoint.send``: a request as a CON, retransmitted
  with the §4.2 back-off; a response as the answer to the request it names by token (piggybacked
  in the ACK); an Empty ACK from the core is dropped, the Endpoint acknowledges separate
  responses itself;
- a datagram from the transport goes through ``Endpoint.receive``: new requests and matched
  responses reach the core (``deliver``), duplicates are answered by the Endpoint with the very
  bytes of the first answer;
- ``Endpoint.next_timeout`` is turned into one ``env.timeout`` at a time; a Timeout or a Reset of
  our request calls ``failed(reason)`` (``coap_timeout`` / ``coap_reset``).

Transmission parameters (RFC 7252 §4.8 allows other values "for the specific environment"):
:data:`UDP` is the RFC's default set (ACK_TIMEOUT 2 s). :data:`SMS` is chosen for one secured SMS
per message through a store-and-forward SMSC, whose delivery takes seconds (the scenario's
``links.sms`` median is 2-3 s, the SMSC's first retry 30 s): ACK_TIMEOUT 30 s, ACK_RANDOM_FACTOR
1.5, MAX_RETRANSMIT 4 (the last retransmission 8 * 30-45 s after the first send, given up after
about 23-35 minutes in all), and, derived as in §4.8.2, EXCHANGE_LIFETIME = MAX_TRANSMIT_SPAN
(30 * 15 * 1.5 = 675 s) + 2 * MAX_LATENCY (taken as 100 s for SMS, §4.8.2's value) + PROCESSING
DELAY (30 s) = 905 s. A shorter ACK_TIMEOUT would only retransmit SMS that are still in the SMSC.

The channel holds no strong reference from its timers (a ``weakref``), so a channel its owner
dropped is freed with its Endpoint even while a timer is pending. ``stats`` is a dict shared with
the owner (``retransmissions``, ``timeouts``, ``ignored``).
"""
from __future__ import annotations

import weakref
from collections import OrderedDict
from collections.abc import Callable

import simpy

from dmsim.network.coap.message import Message
from dmsim.network.coap.reliability import (
    Endpoint, Ignored, Parameters, QueueFullError, RequestReceived, Reset, ResponseReceived, Timeout,
    Transmit)

UDP = Parameters()
SMS_ACK_TIMEOUT = 30.0
SMS_EXCHANGE_LIFETIME = 30.0 * 15 * 1.5 + 2 * 100.0 + 30.0  # 905 s, RFC 7252 §4.8.2 with ACK_TIMEOUT 30 s
SMS = Parameters(ack_timeout=SMS_ACK_TIMEOUT, exchange_lifetime=SMS_EXCHANGE_LIFETIME,
                 non_lifetime=SMS_EXCHANGE_LIFETIME - 100.0, response_timeout=SMS_EXCHANGE_LIFETIME)
_MAX_OPEN_REQUESTS = 16  # requests received and not answered yet (the cores answer at once)


class CoapChannel:
    """One peer's CoAP message layer over ``transmit(datagram)``; see the module docstring."""

    __slots__ = ("env", "endpoint", "transmit", "deliver", "failed", "stats", "_received", "_armed", "closed",
                 "__weakref__")

    def __init__(self, env: simpy.Environment, randbytes: Callable[[int], bytes], transmit: Callable[[bytes], None],
                 deliver: Callable[[Message], None], failed: Callable[[str], None], *,
                 params: Parameters = UDP, stats: dict | None = None):
        self.env = env
        self.endpoint = Endpoint(randbytes, params=params, dedup_capacity=64, queue_capacity=8, max_requests=16)
        self.transmit, self.deliver, self.failed = transmit, deliver, failed
        self.stats = stats if stats is not None else {}
        self._received: OrderedDict[bytes, Message] = OrderedDict()
        self._armed: float | None = None
        self.closed = False

    def send(self, msg: Message) -> None:
        """Send a message the core built (request, response to a received request, Empty ACK)."""
        if self.closed:
            return
        if msg.is_empty:
            return  # the Endpoint acknowledges a CON response by itself
        request = None
        if not msg.is_request:
            request = self._received.pop(msg.token, None)
            if request is None:
                return  # not an answer to a request of the peer still open
        try:
            events = self.endpoint.send(msg, self.env.now, request)
        except QueueFullError:
            self.failed("coap_queue_full")
            return
        self._handle(events)

    def receive(self, datagram: bytes) -> None:
        """Take one datagram of the peer (plaintext CoAP)."""
        if not self.closed:
            self._handle(self.endpoint.receive(datagram, self.env.now))

    def close(self) -> None:
        """Stop: no more sends, retransmissions or deliveries."""
        self.closed = True

    def _handle(self, events: list) -> None:
        for event in events:
            if self.closed:
                return
            kind = event.__class__
            if kind is Transmit:
                self.transmit(event.datagram)
            elif kind is RequestReceived:
                self._received[event.message.token] = event.message
                while len(self._received) > _MAX_OPEN_REQUESTS:
                    self._received.popitem(last=False)
                self.deliver(event.message)
            elif kind is ResponseReceived:
                self.deliver(event.message)
            elif kind is Timeout:
                self._count("timeouts")
                self.failed("coap_timeout")
            elif kind is Reset:
                self.failed("coap_reset")
            elif kind is Ignored:
                self._count("ignored")
        self._arm()

    def _count(self, key: str) -> None:
        self.stats[key] = self.stats.get(key, 0) + 1

    def _arm(self) -> None:
        due = self.endpoint.next_timeout()
        if due is None or self.closed or (self._armed is not None and self._armed <= due):
            return
        self._armed = due
        self.env.timeout(max(0.0, due - self.env.now), (weakref.ref(self), due)).callbacks.append(_fire)

    def _fire(self, due: float) -> None:
        if self._armed == due:
            self._armed = None
        if self.closed:
            return
        due_now = self.endpoint.next_timeout()
        if due_now is not None and due_now <= self.env.now:
            events = self.endpoint.on_timeout(self.env.now)
            self._count_retransmissions(events)
            self._handle(events)
        else:
            self._arm()

    def _count_retransmissions(self, events: list) -> None:
        sent = sum(1 for e in events if e.__class__ is Transmit)
        if sent:
            self.stats["retransmissions"] = self.stats.get("retransmissions", 0) + sent


def _fire(event: simpy.Event) -> None:
    ref, due = event.value
    channel = ref()
    if channel is not None:
        channel._fire(due)

