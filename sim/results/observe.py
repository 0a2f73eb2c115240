"""Attaching the run's observers to the first replica: the pcap's IP capture and the device trace.

Both are link observers (``sim/links/link.py``: ``sent``, ``outcome``, ``tapped``); a link
holds one, so two on the same link go through :class:`Both` (the first sees each event first;
``sent`` wraps the second's delivery callback in the first's). The replica and its links know
nothing of these classes: they are handed over as plain objects (duck-typed), as the pcap is.
"""
from __future__ import annotations

from typing import Callable


class Both:
    """Two link observers as one."""

    __slots__ = ("first", "second")

    def __init__(self, first, second):
        self.first, self.second = first, second

    def sent(self, link, msg, deliver: Callable) -> Callable:
        return self.first.sent(link, msg, self.second.sent(link, msg, deliver))

    def outcome(self, link, msg, what: str) -> None:
        self.first.outcome(link, msg, what)
        self.second.outcome(link, msg, what)

    def tapped(self, link, msg, deliveries: list) -> None:
        self.first.tapped(link, msg, deliveries)
        self.second.tapped(link, msg, deliveries)


def add_observer(link, observer) -> None:
    """Give ``link`` ``observer`` too (after any it has)."""
    link.observer = observer if link.observer is None else Both(link.observer, observer)


def replica_links(model) -> list:
    """Return every simulated link of replica ``model``: ``links.sms``, both ``links.ip``
    directions and, with an SMSC, its radio downlink and uplink."""
    links = [model.sms, model.ip_up, model.ip_down]
    smsc = model.agents.get("smsc")
    if smsc is not None:
        links += [smsc.down, smsc.up]
    return links


def observe(model, *, ip_capture=None, trace=None) -> None:
    """Attach ``ip_capture`` (``ip_capture.IpCapture``) to the ``ip`` links of ``model`` and
    ``trace`` (``trace.DeviceTrace``) to all its links, its card seam and its session records."""
    if ip_capture is not None:
        add_observer(model.ip_up, ip_capture)
        add_observer(model.ip_down, ip_capture)
    if trace is not None:
        model.trace = trace
        model.write = trace.wrap(model.write, model.env)
        for link in replica_links(model):
            add_observer(link, trace)
