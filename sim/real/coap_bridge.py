"""Glue between the sans-IO LwM2M cores and the CoAP message layer, for the real UDP drivers.

The cores (``network/lwm2m/bootstrap_server``, ``network/lwm2m/server``, ``devices/lwm2m_client``)
hand out whole CoAP messages in :class:`~dmsim.network.lwm2m.events.Send` events and leave
retransmission and duplicate detection (RFC 7252 §4) to their driver; a real driver runs one
:class:`~dmsim.network.coap.reliability.Endpoint` per peer for that. :func:`carry` puts one core
message on that Endpoint; :class:`DtlsTimer` runs a ``DtlsEndpoint``'s retransmission timer on the
driver's clock (``network/lwm2m/dtls.py``: re-armed whenever ``timer_generation`` changes, measured
from the call that changed it).
"""
from __future__ import annotations

from dmsim.network.coap.message import Message
from dmsim.network.coap.reliability import Endpoint, Event
from dmsim.network.lwm2m.dtls import DtlsEndpoint
from dmsim.network.lwm2m.dtls import Event as DtlsEvent


def carry(endpoint: Endpoint, message: Message, now: float, request: Message | None = None) -> list[Event]:
    """Send a core's ``message`` through ``endpoint`` and return the Endpoint's events.

    A request goes through :meth:`Endpoint.request` (its token kept, so the core matches the
    answer; its Message ID replaced); a response answers ``request`` (the request being handled,
    same token) through :meth:`Endpoint.respond`, piggybacked when it can be; an Empty ACK is
    dropped, because the Endpoint acknowledges CON responses by itself (RFC 7252 §5.2.2).
    ``QueueFullError`` propagates (the Endpoint's bounds). A response with no request to answer
    is the caller's error (ValueError): the cores never make one.
    """
    if message.is_request:
        return endpoint.request(message, now)[1]
    if message.is_empty:
        return []
    if request is None or message.token != request.token:
        raise ValueError("a response needs the request it answers")
    return endpoint.respond(request, message, now)


class DtlsTimer:
    """The retransmission timer of one DtlsEndpoint on the driver's clock: ``at`` is when
    :meth:`expire` fires it (None: not running)."""

    def __init__(self) -> None:
        self._generation: int | None = None
        self.at: float | None = None

    def sync(self, endpoint: DtlsEndpoint, now: float) -> float | None:
        """Re-arm from ``now`` if the endpoint changed its timer since the last call; return ``at``."""
        if endpoint.timer_generation != self._generation:
            self._generation = endpoint.timer_generation
            self.at = None if endpoint.next_timeout is None else now + endpoint.next_timeout
        return self.at

    def expire(self, endpoint: DtlsEndpoint, now: float) -> list[DtlsEvent]:
        """Fire the endpoint's timer if it is due at ``now``; return its events."""
        self.sync(endpoint, now)
        if self.at is None or now < self.at:
            return []
        self.at = None  # until the endpoint re-arms it
        events = endpoint.on_timeout()
        self.sync(endpoint, now)
        return events
