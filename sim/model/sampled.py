"""``fidelity: sampled``: the real protocol for a sample of the fleet, modelled rows for the rest.

No spec clause: this is simulation plumbing (issue 17), for fleets too large to run byte for byte
(10M devices). Chosen design, written down because the specs are silent:

* **The sample is a shard.** Devices with ``index % every == 0`` (``every`` = round(1 /
  ``fidelity_sample``)) run as shard 0 of ``every`` (``shards.py``): real SMS PDUs, WBXML,
  crypto and cards, against their part of the server's slots and the SMSC's rates, so the sample
  meets the load the whole fleet would put on its share of the network.
* **The rest are modelled, not run.** Every other device keeps its own identity and arrival
  time (the unsharded fleet and arrival streams) and gets a row drawn from the sample: a sample
  device of the same profile that arrived within ``window`` seconds of it (the nearest one when
  none did), whose outcome, failure reason, counters and phase times relative to arrival (bootstrap
  sent and done, session start and end, GPI, Ub, OTA) are carried over, shifted to the modelled
  device's arrival. That is an empirical per-phase timing model conditioned on profile and on
  arrival time, so load that builds up over the run carries over; phase times keep their joint
  distribution (a slow bootstrap and a slow session stay together). A modelled time past
  ``duration`` is cut like a real one: the device is ``not_finished``.
* **What it cannot show.** A modelled device never touches the network: it does not add load,
  and effects that need one particular device (an attack, a real component) do not exist for it;
  both are refused with this fidelity. A profile without a single sample device cannot be modelled:
  its devices get reason ``unmodelled`` and the summary counts them.

Rows of modelled devices are ordinary ``sessions.csv`` rows; ``summary.json``'s ``fidelity`` block
says which indexes ran the protocol and sets the sample's phase quantiles and success rate beside
the modelled ones (``calibration``).
"""
from __future__ import annotations

import bisect
from typing import Iterator

from dmsim.base.errors import ScenarioError
from dmsim.sim.model.arrivals import arrival_times
from dmsim.sim.model.fleet import Fleet
from dmsim.sim.model.replica import whole_stream
from dmsim.sim.model.registry import DEFAULT_DEVICE, DEVICE_AGENTS
from dmsim.sim.model.shards import real_components

# positions in a session row (Replica.finish; sim/results/records.py COLUMNS, checked by a test)
INDEX, PROFILE, OUTCOME, REASON, T_ARRIVAL, T_END, LATENCY = 3, 4, 5, 6, 7, 11, 12
TIMES = (8, 9, 10, 11, 23, 24, 25, 26, 27)  # absolute times after the arrival: shifted with it
ROW_WIDTH = 31  # values in a row
PROTOCOL = 30
PHASES = {"bootstrap": (7, 9), "connect": (9, 10), "session": (10, 11), "latency": (7, 11)}


def every_of(data: dict) -> int:
    """Return the sample's stride: device ``i`` runs the protocol when ``i % every == 0``."""
    return max(1, round(1 / data["fidelity_sample"]))


def check_fidelity(data: dict, where=None) -> None:
    """Raise ScenarioError when ``data`` (validated) asks for a sampled run that cannot be one."""
    if data.get("fidelity", "full") == "full":
        return
    locate = where or (lambda keys: None)
    if data.get("shards", 1) != 1:
        raise ScenarioError("a sampled run is sharded already (its sample is one shard)", where=locate(("shards",)),
                            path="shards", expected="1 with fidelity: sampled")
    if data.get("attacks"):
        raise ScenarioError("attacks act on devices a sampled run only models", where=locate(("fidelity",)),
                            path="fidelity", expected="full with attacks")
    real = real_components(data)
    if real:
        raise ScenarioError(f"real components ({', '.join(f'components.{n}' for n in real)}) need full fidelity",
                            where=locate(("fidelity",)), path="fidelity", expected="full with real components")
    if every_of(data) > data["server"]["max_sessions"]:
        raise ScenarioError(f"fidelity_sample {data['fidelity_sample']} leaves the sample less than one of the "
                            f"{data['server']['max_sessions']} server slots", where=locate(("fidelity_sample",)),
                            path="fidelity_sample", expected=f"at least {1 / data['server']['max_sessions']:g}")


class Calibration:
    """The sample's rows of one run, by profile and arrival time, to draw modelled rows from."""

    def __init__(self, rows: list[tuple], window: float):
        self.window = window
        self._by_profile: dict[str, tuple[list[float], list[tuple]]] = {}
        for row in sorted(rows, key=lambda r: (r[PROFILE], r[T_ARRIVAL], r[INDEX])):
            times, group = self._by_profile.setdefault(row[PROFILE], ([], []))
            times.append(row[T_ARRIVAL])
            group.append(row)

    def draw(self, profile: str, t: float, rng) -> tuple | None:
        """Return a sample row of ``profile`` that arrived within ``window`` of ``t`` (the nearest
        when none did), or None when the profile has no sample device."""
        entry = self._by_profile.get(profile)
        if entry is None:
            return None
        times, group = entry
        lo, hi = bisect.bisect_left(times, t - self.window), bisect.bisect_right(times, t + self.window)
        if lo < hi:
            return group[lo + int(rng.random() * (hi - lo))]
        at = bisect.bisect_left(times, t)
        if at == len(times) or (at > 0 and t - times[at - 1] <= times[at] - t):
            at -= 1
        return group[at]


def modelled_rows(data: dict, seed: int, replica: int, sweep: int, sweep_value: str,
                  sample: list[tuple]) -> Iterator[tuple]:
    """Yield the rows of the devices of one run that are not in the sample (see the module)."""
    every = every_of(data)
    duration = float(data["duration"])
    fleet = Fleet(data["fleet"], whole_stream(seed, replica, sweep, "fleet"))
    arrivals = arrival_times(data["arrival"], fleet.size, whole_stream(seed, replica, sweep, "arrival"))
    rng = whole_stream(seed, replica, sweep, "fidelity")
    calibration = Calibration(sample, window=max(1.0, duration / 200))
    for index, t in enumerate(arrivals):
        if t >= duration:
            return
        ident = fleet.device(index)
        if index % every == 0:
            continue
        template = calibration.draw(ident.profile["name"], t, rng)
        if template is None:
            yield _unmodelled(replica, sweep, sweep_value, index, ident.profile, t)
            continue
        yield shifted(template, replica, sweep, sweep_value, index, t, duration)


def shifted(template: tuple, replica: int, sweep: int, sweep_value: str, index: int, t: float,
            duration: float) -> tuple:
    """Return ``template`` (a sample row) as device ``index`` arriving at ``t``; cut at ``duration``."""
    row = list(template)
    row[0], row[1], row[2], row[INDEX], row[T_ARRIVAL] = replica, sweep, sweep_value, index, t
    delta = t - template[T_ARRIVAL]
    late = False
    for i in TIMES:
        if row[i] is not None:
            row[i] += delta
            if row[i] >= duration:
                row[i], late = None, True
    if late or row[REASON] == "not_finished":  # ended after the horizon, or the sample device never finished
        row[OUTCOME], row[REASON], row[T_END], row[LATENCY] = "failed", "not_finished", None, None
    return tuple(row)


def _unmodelled(replica: int, sweep: int, sweep_value: str, index: int, profile: dict, t: float) -> tuple:
    row: list = [None] * ROW_WIDTH
    row[0], row[1], row[2], row[INDEX], row[PROFILE] = replica, sweep, sweep_value, index, profile["name"]
    row[PROTOCOL] = DEVICE_AGENTS[profile.get("device", DEFAULT_DEVICE)].protocol
    row[OUTCOME], row[REASON], row[T_ARRIVAL] = "failed", "unmodelled", t
    for i in range(13, 21):  # counters: nothing happened
        row[i] = 0
    row[21] = ""  # ota
    return tuple(row)
