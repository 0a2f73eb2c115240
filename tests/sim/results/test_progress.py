"""sim/results/progress.py: the share of simulated duration done, the ETA, and a clean finish."""
import io

import pytest

from dmsim.sim.results.progress import Progress, format_eta


class _Env:
    def __init__(self, now):
        self.now = now


class _Model:
    def __init__(self, now, duration=1000, done=3):
        self.env, self.data, self.done = _Env(now), {"duration": duration}, done


def test_format_eta():
    assert format_eta(None) == "--"
    assert format_eta(12.4) == "12s"
    assert format_eta(185) == "3m05s"
    assert format_eta(3720) == "1h02m"


def test_share_done_counts_finished_runs_and_the_current_one():
    p = Progress(4, 10, stream=io.StringIO(), force=True)
    p.start_run("replica 1/4")
    assert p.share_done(250, 1000) == pytest.approx(0.25 / 4)
    p.start_run("replica 2/4")
    assert p.share_done(500, 1000) == pytest.approx(1.5 / 4)
    assert p.share_done(5000, 1000) == pytest.approx(2 / 4)       # capped at the duration
    assert p.eta(0.005, 10.0) is None                              # too early to say
    assert p.eta(0.25, 10.0) == pytest.approx(30.0)                # a quarter in 10 s: 30 s left


def test_line_shows_the_share_and_an_eta():
    p = Progress(1, 10, stream=io.StringIO(), force=True)
    p.start_run("replica 1/1")
    line = p.line(_Model(500), p._start + 20.0)
    assert "t=500.0s sim (50%)" in line and "devices 3/10" in line and "ETA 20s" in line


def test_finish_erases_the_line_so_the_summary_starts_clean():
    out = io.StringIO()
    p = Progress(1, 10, stream=out, force=True)
    p.start_run("replica 1/1")
    p.update(_Model(100))
    drawn = out.getvalue()
    assert drawn.startswith("\r\x1b[K[1/1 replica 1/1]") and "\n" not in drawn
    p.finish()
    assert out.getvalue() == drawn + "\r\x1b[K"     # CR + erase in line: nothing is left on it
    p.finish()
    assert out.getvalue() == drawn + "\r\x1b[K"     # once only


def test_nothing_is_drawn_when_not_a_terminal():
    out = io.StringIO()
    p = Progress(1, 10, stream=out)
    p.start_run("replica 1/1")
    p.update(_Model(100))
    p.finish()
    assert out.getvalue() == ""
