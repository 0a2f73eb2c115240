"""The DTLS retransmission timer of the real UDP drivers, on their wall clock.

:class:`DtlsTimer` runs a ``DtlsEndpoint``'s retransmission timer on the driver's clock
(``network/lwm2m/dtls.py``: re-armed whenever ``timer_generation`` changes, measured from the call
that changed it). A core's CoAP messages go on the peer's
:class:`~dmsim.network.coap.reliability.Endpoint` with ``Endpoint.send``.
"""
from __future__ import annotations

from dmsim.network.lwm2m.dtls import DtlsEndpoint
from dmsim.network.lwm2m.dtls import Event as DtlsEvent


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
