"""What the sans-IO LwM2M cores hand their drivers: datagrams to send and timers to arm.

Every core method returns a list of events; :class:`Send` and :class:`Timer` are the two that ask
the driver to do something, the others (defined beside each core) only report. The driver owns
the transport (DTLS over UDP, or the SMS binding), CoAP retransmission (RFC 7252 §4.2) and the
clock; it calls the core back with ``receive(...)`` and ``timer_fired(key)``.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from dmsim.network.coap.message import Message

#: The peer name of the LwM2M Bootstrap Server on the client side (a DM server is its Short Server ID).
BOOTSTRAP = "bootstrap"

Peer = int | str


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``message`` to ``peer`` (client side: ``BOOTSTRAP`` or a Short Server ID; server
    side: the authenticated identity the peer registered / bootstrapped with)."""

    peer: Peer | bytes
    message: Message


@dataclass(frozen=True, slots=True)
class Timer:
    """Call ``timer_fired(key)`` after ``delay`` seconds (a new Timer of the same key replaces it)."""

    key: str
    delay: float


def sends(events: Iterable[object]) -> list[Send]:
    return [e for e in events if isinstance(e, Send)]


def identity_bytes(value: bytes | str) -> bytes:
    """An authenticated identity as bytes (a PSK identity is UTF-8 text, seed 004 §D.1.1.1)."""
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


class MessageIds:
    """CoAP Message IDs of one endpoint: a random start, then +1 (RFC 7252 §4.4)."""

    def __init__(self, randbytes: Callable[[int], bytes]):
        self._mid = int.from_bytes(randbytes(2), "big")

    def next(self) -> int:
        self._mid = (self._mid + 1) & 0xFFFF
        return self._mid
