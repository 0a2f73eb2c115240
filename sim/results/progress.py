"""A one-line progress display for ``dmsim run`` on a terminal (quiet when not a TTY).

Shows the replica and sweep point, simulated time and the share of the scenario's ``duration``
done, devices done, simulation events per wall-clock second and an estimate of the wall-clock
time left (ETA); redrawn at most every 0.2 s so it costs nothing measurable.

Choices:
- The ETA is linear in simulated time over the whole run: with ``F`` the share done of all
  runs (finished runs count 1 each, the current one ``now / duration``) and ``w`` the wall time
  since the first run started, ``ETA = w * (1 - F) / F``. A run's event rate changes with its
  load (arrivals early, an idle tail late), so this is an estimate, shown as ``--`` until 1 % is
  done.
- The line is redrawn in place with a carriage return; :meth:`Progress.finish` erases it (CR,
  then ANSI "erase in line" ``CSI K``, ECMA-48 §8.3.41) so what the command prints next starts
  on a clean line instead of after a stale progress line.
"""
from __future__ import annotations

import sys
import time
from typing import TextIO

_CLEAR = "\r\x1b[K"


def format_eta(seconds: float | None) -> str:
    """Return ``seconds`` as ``1h02m``, ``3m05s`` or ``12s``; ``--`` when unknown."""
    if seconds is None:
        return "--"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class Progress:
    """Draws progress to ``stream`` when it is a terminal (or ``force``)."""

    def __init__(self, total_runs: int, devices: int, stream: TextIO | None = None, force: bool | None = None):
        self.stream = stream or sys.stderr
        self.enabled = force if force is not None else self.stream.isatty()
        self.total_runs, self.devices = total_runs, devices
        self.run_index = 0
        self.label = ""
        self._last = 0.0
        self._t0 = time.perf_counter()
        self._start = None  # wall time the first run started
        self._steps0 = 0
        self._drawn = False

    def start_run(self, label: str) -> None:
        """A new replica/sweep point begins."""
        self.run_index += 1
        self.label = label
        self._t0, self._steps0 = time.perf_counter(), 0
        if self._start is None:
            self._start = self._t0

    def share_done(self, now: float, duration: float) -> float:
        """Return the share (0..1) of all runs done when the current one is at simulated ``now``."""
        current = min(max(now / duration, 0.0), 1.0) if duration > 0 else 1.0
        return min((max(self.run_index - 1, 0) + current) / max(self.total_runs, 1), 1.0)

    def eta(self, share: float, wall: float) -> float | None:
        """Return the wall-clock seconds left after ``wall`` seconds with ``share`` done (None below 1 %)."""
        if share < 0.01:
            return None
        return wall * (1.0 - share) / share

    def line(self, model, wall_now: float) -> str:
        """Return the progress text for a running ``Replica`` at wall time ``wall_now``."""
        now, duration = model.env.now, float(model.data["duration"])
        share = self.share_done(now, duration)
        rate = self._steps0 / max(wall_now - self._t0, 1e-9)
        eta = self.eta(share, wall_now - (self._start if self._start is not None else self._t0))
        run_share = min(now / duration, 1.0) if duration > 0 else 1.0
        return (f"[{self.run_index}/{self.total_runs} {self.label}] t={now:,.1f}s sim ({run_share:.0%})  "
                f"devices {model.done:,}/{self.devices:,}  {rate:,.0f} events/s  ETA {format_eta(eta)}")

    def update(self, model) -> None:
        """Redraw from a running ``Replica`` (called every few thousand events)."""
        self._steps0 += 4096
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self._last < 0.2:
            return
        self._last = now
        self.stream.write(_CLEAR + self.line(model, now))
        self.stream.flush()
        self._drawn = True

    def finish(self) -> None:
        """Erase the progress line, so the summary that follows prints on a clean line."""
        if self.enabled and self._drawn:
            self.stream.write(_CLEAR)
            self.stream.flush()
            self._drawn = False
