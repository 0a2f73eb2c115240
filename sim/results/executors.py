"""Where a run's units run: local worker processes, or the workers of a Dask cluster.

No spec clause: this is simulation plumbing (issue 17). A unit is one (sweep point, replica,
shard) of a scenario (``Unit``); :func:`run_unit` runs it from the scenario data and the seed alone,
so it gives the same rows wherever it runs. An executor hands units out and yields their
:class:`RunOutput` in the order they were given, whatever order they finish in; the runner writes
them in that order, so the tables do not depend on the executor, the number of workers or the
machines.

* ``local`` (:class:`LocalProcesses`): ``jobs`` forked processes of this machine. A worker writes
  its rows to spool files in the run folder (``.unit-*.csv``) and hands back their paths, so a
  million-row unit never crosses a pipe or sits in memory; the runner appends them and removes them.
* ``tcp://HOST:PORT`` (:class:`DaskCluster`): the scheduler of a ``dask.distributed`` cluster
  (``dask scheduler`` and ``dask worker tcp://HOST:PORT`` on the machines; each needs the same dmsim
  installed, which is checked before any unit is sent). Its workers share no folder with us, so
  rows come back in the unit's result, and a GBA scenario's HSS store lives in the worker's memory
  instead of the run folder. Dask moves functions and results with pickle: point dmsim only at a
  cluster you run (Dask's TLS settings apply as for any client).
"""
from __future__ import annotations

import gc
import threading
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Iterable, Iterator

from dmsim.base.errors import DmsimError
from dmsim.sim.model.replica import Replica
from dmsim.sim.model.shards import shard_data
from dmsim.sim.real.components import ALL
from dmsim.sim.results.records import SessionTable, SmsTable


@dataclass(frozen=True)
class Unit:
    """One model of a run: a replica at a sweep point, or one shard of it."""

    sweep: int
    replica: int
    shard: int
    shards: int
    sweep_value: str  # the sessions.csv text of the sweep point
    sample: bool = False  # the sample of a fidelity: sampled run (shard 0 of ``shards``)

    @property
    def first(self) -> bool:
        """Whether this is the run's first unit (the one a pcap, a trace or a live ESME follows)."""
        return (self.sweep, self.replica, self.shard) == (0, 0, 0)

    def model(self, point_data: dict, seed: int, write, state_dir: str | None, **kwargs) -> Replica:
        """Return the model of this unit of the sweep point ``point_data`` (its shard's part of the
        capacity, ``shards.shard_data``); ``kwargs`` go to :class:`Replica` (pcap, env)."""
        return Replica(shard_data(point_data, self.shard, self.shards), seed=seed, replica=self.replica,
                       sweep=self.sweep, sweep_value=self.sweep_value, write=write, components=ALL,
                       state_dir=state_dir, shard=self.shard, shards=self.shards, **kwargs)

    def label(self, replicas: int, sweep: dict | None) -> str:
        """Return "replica 2/3, shard 1/4, loss=0.05" for the progress line."""
        text = f"replica {self.replica + 1}/{replicas}"
        if self.sample:
            text += f", the sample (1 device in {self.shards})"
        elif self.shards > 1:
            text += f", shard {self.shard + 1}/{self.shards}"
        if sweep:
            text += f", {sweep['points'][self.sweep]['label']}"
        return text


@dataclass
class RunOutput:
    """What a finished unit hands back: its rows (a list, or ``(spool path, count)``) and counters."""

    sweep: int
    replica: int
    shard: int
    rows: list | tuple[str, int]
    sms_rows: list | tuple[str, int]
    stats: dict
    arrived: int
    steps: int
    outcomes: list

    @classmethod
    def of(cls, model: Replica, rows, sms_rows) -> "RunOutput":
        """Return what the finished (and closed) model hands on, with its rows."""
        adversary = model.agents.get("adversary")
        return cls(model.sweep, model.replica, model.shard, rows, sms_rows, model.stats(), model.arrived,
                   model.steps, adversary.outcomes() if adversary is not None else [])


def run_unit(point_data: dict, seed: int, unit: Unit, spool_dir: str | None, state_dir: str | None) -> RunOutput:
    """Run ``unit`` of the sweep point ``point_data``; its rows go to spool files in ``spool_dir``
    (None: kept in memory and returned)."""
    rows: list = []
    sms_rows: list = []
    tables: list = []
    write, write_sms = rows.append, sms_rows.append
    if spool_dir is not None:
        name = f".unit-s{unit.sweep}-r{unit.replica}-k{unit.shard}"
        tables = [SessionTable(Path(spool_dir) / f"{name}-sessions.csv"), SmsTable(Path(spool_dir) / f"{name}-sms.csv")]
        write, write_sms = tables[0].write, tables[1].write
    model = unit.model(point_data, seed, write, state_dir)
    if point_data.get("smsc") is not None:
        model.write_sms = write_sms
    try:
        with PacedCollector() as pace:
            model.run(step_hook=pace)
    finally:
        model.close()
        for table in tables:
            table.close()
    if tables:
        return RunOutput.of(model, (str(tables[0].path), tables[0].rows), (str(tables[1].path), tables[1].rows))
    return RunOutput.of(model, rows, sms_rows)


class PacedCollector:
    """The cyclic garbage collector paused while a model runs, and run at a pace of its own.

    Why: a finished device is freed by reference counting (the card, the DM tree and the TLS
    connections hold no cycles; tests check each), so the automatic collector mostly rescans the
    live model. At a million devices that cost 366 µs per device, 10 % of the CPU, for nothing.
    Paused, the objects of the last ``young`` events are collected then (generations 0 and 1: the
    young objects only, so the cost per device stays flat), and everything every ``full`` events;
    a cycle somebody still makes is freed within that many events. Used as the run's step hook
    (``then``: the hook it stands in front of, e.g. the progress line); restores the collector on
    exit."""

    def __init__(self, then=None, young: int = 100_000, full: int = 5_000_000):
        self.then, self.young, self.full = then, young, full
        self._young_at = self._full_at = 0
        self._enabled = False

    def __enter__(self) -> "PacedCollector":
        self._enabled = gc.isenabled()
        gc.disable()
        return self

    def __exit__(self, *exc) -> None:
        if self._enabled:
            gc.enable()

    def __call__(self, model) -> None:
        if model.steps - self._full_at >= self.full:
            gc.collect()
            self._full_at = self._young_at = model.steps
        elif model.steps - self._young_at >= self.young:
            gc.collect(1)
            self._young_at = model.steps
        if self.then is not None:
            self.then(model)


Work = tuple[dict, int, Unit]  # (sweep point data, seed, unit)


def _in_order(futures: list, result, stop: threading.Event | None, cancel) -> Iterator[RunOutput]:
    """Yield each future's result in list order; a set ``stop`` cancels what has not run and raises
    KeyboardInterrupt after the results finished in order have been yielded (so they are written)."""
    try:
        for future in futures:
            while True:
                if stop is not None and stop.is_set():
                    raise KeyboardInterrupt
                try:
                    yield result(future)
                    break
                except TimeoutError:
                    continue
    finally:
        cancel(futures)


class LocalProcesses:
    """``jobs`` worker processes of this machine; rows spooled to the run folder."""

    def __init__(self, jobs: int, out_dir: Path, spool: bool = True):
        self.jobs, self.out_dir, self.spool = jobs, str(out_dir), spool

    def run(self, work: Iterable[Work], stop: threading.Event | None = None) -> Iterator[RunOutput]:
        from concurrent.futures import ProcessPoolExecutor
        with ProcessPoolExecutor(max_workers=self.jobs) as pool:
            spool = self.out_dir if self.spool else None
            futures = [pool.submit(run_unit, data, seed, unit, spool, self.out_dir) for data, seed, unit in work]
            yield from _in_order(futures, lambda f: f.result(timeout=0.5), stop,
                                 lambda fs: [f.cancel() for f in fs])


class DaskCluster:
    """The workers of a ``dask.distributed`` scheduler at ``address`` (``tcp://HOST:PORT``)."""

    def __init__(self, address: str, connect_timeout: float = 20.0):
        try:
            from dask.distributed import Client
        except ImportError:
            raise DmsimError(f"--scheduler {address} needs dask.distributed: pip install 'dmsim[cluster]'") from None
        try:
            self.client = Client(address, timeout=connect_timeout, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise DmsimError(f"--scheduler {address}: no Dask scheduler answers there ({exc})") from None
        try:
            self._check_workers(address)
        except BaseException:
            self.client.close()
            raise

    def _check_workers(self, address: str) -> None:
        """Refuse a cluster without workers, or whose workers run another dmsim (its rows would differ)."""
        mine = worker_versions()
        theirs = self.client.run(worker_versions)
        if not theirs:
            raise DmsimError(f"--scheduler {address}: the cluster has no workers (start some: dask worker {address})")
        for worker, versions in sorted(theirs.items()):
            if versions != mine:
                raise DmsimError(f"--scheduler {address}: worker {worker} runs {versions}, this machine {mine}: "
                                 "install the same dmsim and Python on every worker")

    def run(self, work: Iterable[Work], stop: threading.Event | None = None) -> Iterator[RunOutput]:
        try:
            futures = [self.client.submit(run_unit, data, seed, unit, None, None, pure=False)
                       for data, seed, unit in work]
            yield from _in_order(futures, lambda f: f.result(timeout=0.5), stop, self.client.cancel)
        finally:
            self.client.close()


def worker_versions() -> dict[str, str]:
    """Return what must match between this process and a cluster worker: dmsim's and Python's versions."""
    import platform
    try:
        dmsim = metadata.version("dmsim")
    except metadata.PackageNotFoundError:
        dmsim = "not installed"
    return {"dmsim": dmsim, "python": platform.python_version()}


def make_executor(scheduler: str, jobs: int, out_dir: Path, spool: bool = True):
    """Return the executor of ``--scheduler`` (``local``, or a Dask ``tcp://HOST:PORT``); ``spool``:
    local workers hand rows back through files (else in memory, as a cluster's always do)."""
    if scheduler == "local":
        return LocalProcesses(jobs, out_dir, spool)
    if scheduler.startswith(("tcp://", "tls://")):
        return DaskCluster(scheduler)
    raise DmsimError(f"--scheduler {scheduler!r}: expected local or tcp://HOST:PORT")
