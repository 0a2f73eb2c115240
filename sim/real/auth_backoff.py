"""Per-address backoff after authentication failures at the real servers.

A peer address that fails authentication (the core's events whose kind says so, or a wrong
admin token) more than ``free`` times is refused for ``base`` seconds, doubling with every
further failure up to ``cap`` seconds; while refused, its requests are answered 429 with
Retry-After and never reach the core (no nonce is spent, no lock is taken). Failures are
forgotten ``forget`` seconds after the last one.

Choices: keyed on the IP address only (an attacker rarely owns many; a NAT of honest devices
shares one, hence the ``free`` failures and a short cap); a success does not reset the count
(an attacker holding one valid account would otherwise reset his own penalty); at most
``max_addresses`` are tracked, the least recently failed one evicted first, so the table is
bounded whatever the number of addresses.
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Callable


def is_auth_failure(kind: str) -> bool:
    """Return True for an event kind that reports a failed authentication or integrity check
    (client_auth_failed, client_integrity_failed, and kinds added later named the same way)."""
    return ("auth" in kind or "integrity" in kind) and ("fail" in kind or "reject" in kind) \
        and not kind.startswith("server_")


class AuthBackoff:
    """Failure counts and refusal times per peer address; thread-safe."""

    def __init__(self, *, free: int = 5, base: float = 1.0, cap: float = 60.0, forget: float = 900.0,
                 max_addresses: int = 10_000, clock: Callable[[], float] = time.monotonic):
        self.free, self.base, self.cap, self.forget = free, base, cap, forget
        self.max_addresses = max_addresses
        self.clock = clock
        self._lock = threading.Lock()
        self._state: OrderedDict[str, tuple[int, float, float]] = OrderedDict()  # failures, last, blocked until

    def retry_after(self, address: str) -> float:
        """Return the seconds ``address`` must still wait (0: it may go on)."""
        now = self.clock()
        with self._lock:
            state = self._state.get(address)
            if state is None:
                return 0.0
            if now - state[1] > self.forget:
                del self._state[address]
                return 0.0
            return max(0.0, state[2] - now)

    def failed(self, address: str) -> None:
        """Count one authentication failure of ``address``."""
        now = self.clock()
        with self._lock:
            failures, last, _ = self._state.pop(address, (0, now, 0.0))
            if now - last > self.forget:
                failures = 0
            failures += 1
            over = failures - self.free
            until = now + min(self.cap, self.base * 2 ** (over - 1)) if over > 0 else 0.0
            self._state[address] = (failures, now, until)
            while len(self._state) > self.max_addresses:
                self._state.popitem(last=False)
