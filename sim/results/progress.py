"""A one-line progress display for ``dmsim run`` on a terminal (quiet when not a TTY).

Shows the replica and sweep point, simulated time, devices done and simulation events per
wall-clock second; redrawn at most every 0.2 s so it costs nothing measurable.
"""
from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Draws progress to ``stream`` when it is a terminal (or ``force``)."""

    def __init__(self, total_runs: int, devices: int, stream: TextIO | None = None, force: bool | None = None):
        self.stream = stream or sys.stderr
        self.enabled = force if force is not None else self.stream.isatty()
        self.total_runs, self.devices = total_runs, devices
        self.run_index = 0
        self._last = 0.0
        self._t0 = time.perf_counter()
        self._steps0 = 0

    def start_run(self, label: str) -> None:
        """A new replica/sweep point begins."""
        self.run_index += 1
        self.label = label
        self._t0, self._steps0 = time.perf_counter(), 0

    def update(self, model) -> None:
        """Redraw from a running ``Replica`` (called every few thousand events)."""
        self._steps0 += 4096
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self._last < 0.2:
            return
        self._last = now
        rate = self._steps0 / max(now - self._t0, 1e-9)
        self.stream.write(f"\r[{self.run_index}/{self.total_runs} {self.label}] t={model.env.now:,.1f}s sim  "
                          f"devices {model.done:,}/{self.devices:,}  {rate:,.0f} events/s   ")
        self.stream.flush()

    def finish(self) -> None:
        """End the line."""
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
