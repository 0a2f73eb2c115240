"""An application's submit queue in front of the SMSC, as an SMPP ESME keeps one.

Messages are submitted in order. When the SMSC throttles (SMPP ESME_RTHROTTLED, the core's
``throttled`` refusal) the outbox waits and goes on from the same message: a throttled
application does not lose messages, it slows down. SMPP 3.4 §5.1.3 leaves the ESME's reaction
open; here it waits until the SMSC says a token is due, and at least ``backoff`` (20 ms by
default: long enough for a window of submits to go through together, so that a saturated SMSC
sees about one throttled submit per window rather than one per message; Kannel's
throttling-err-time is 1 s). Other
refusals (``queue_full``) are final for that message and reported to its ``on_result``.

Each application (the DM server, the OTA platform) has its own outbox; all share the SMSC's
submit token bucket, as ESMEs bound to one SMSC do.
"""
from __future__ import annotations

from collections import deque
from typing import Callable

import simpy

from dmsim.network.sms.smsc import ShortMessage, SubmitResult
from dmsim.sim.agents.smsc import SmscDriver

Wanted = Callable[[], bool]
OnResult = Callable[[SubmitResult], None]


class SmscOutbox:
    """The submit queue of one application; ``retries`` counts throttled submits."""

    def __init__(self, env: simpy.Environment, smsc: SmscDriver, backoff: float = 0.02):
        self.env, self.smsc, self.backoff = env, smsc, backoff
        self._queue: deque[tuple[ShortMessage, Wanted | None, OnResult | None]] = deque()
        self._paused = False
        self.retries = 0

    def submit(self, sm: ShortMessage, *, wanted: Wanted | None = None, on_result: OnResult | None = None) -> None:
        """Queue ``sm``; ``wanted()`` False when its turn comes drops it (its sender gave up);
        ``on_result`` gets the SMSC's final answer (accepted, or refused other than throttled)."""
        self._queue.append((sm, wanted, on_result))
        if not self._paused:
            self._flush()

    def _flush(self, _event: simpy.Event | None = None) -> None:
        self._paused = False
        queue = self._queue
        while queue:
            sm, wanted, on_result = queue[0]
            if wanted is not None and not wanted():
                queue.popleft()
                continue
            result = self.smsc.submit(sm)
            if not result.accepted and result.reason == "throttled":
                self.retries += 1
                self._paused = True
                self.env.timeout(max(result.retry_after, self.backoff)).callbacks.append(self._flush)
                return
            queue.popleft()
            if on_result is not None:
                on_result(result)
