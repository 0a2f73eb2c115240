"""The cyclic collector is paused during a model's run and run at its own pace (issue 17):
young cycles are freed every ``young`` events, everything every ``full`` events, and the
collector is as it was afterwards."""
from __future__ import annotations

import gc
import weakref
from types import SimpleNamespace

from dmsim.sim.results.executors import PacedCollector
from dmsim.sim.results.runner import run_scenario
from dmsim.sim.scenario.format import parse_scenario


class _Cycle:
    def __init__(self):
        self.me = self


def test_paused_then_collected_at_its_pace_then_restored():
    assert gc.isenabled()
    seen = []
    model = SimpleNamespace(steps=0)
    with PacedCollector(then=seen.append, young=1000, full=10_000) as pace:
        assert not gc.isenabled()
        ref = weakref.ref(_Cycle())
        model.steps = 999
        pace(model)
        assert ref() is not None  # not yet: fewer than ``young`` events
        model.steps = 1000
        pace(model)
        assert ref() is None  # a young cycle, freed at the pace
        assert seen == [model, model]
    assert gc.isenabled()


def test_old_cycles_wait_for_the_full_collection():
    model = SimpleNamespace(steps=0)
    with PacedCollector(young=10, full=100) as pace:
        survivor = _Cycle()
        ref = weakref.ref(survivor)
        gc.collect(1)  # promoted to the oldest generation while alive, as a long-lived object would be
        del survivor
        for steps in range(10, 100, 10):
            model.steps = steps
            pace(model)
        assert ref() is not None  # young collections do not look at the oldest generation
        model.steps = 100
        pace(model)
        assert ref() is None


def test_a_run_leaves_the_collector_as_it_found_it(tmp_path):
    sc = parse_scenario("name: g\nseed: 1\nfleet: {size: 5}\n", "g.yaml")
    run_scenario(sc, tmp_path / "r", plots=False)
    assert gc.isenabled()
    gc.disable()
    try:
        run_scenario(sc, tmp_path / "r2", plots=False)
        assert not gc.isenabled()
    finally:
        gc.enable()
