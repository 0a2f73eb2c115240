"""A pytest plugin for ``dmsim conformance --check --knockouts``: load it with
``-p dmsim.sim.cli.knockout_plugin``.

* ``DMSIM_KNOCKOUT=<id>``: applies the knockout ``<id>`` of :mod:`dmsim.sim.cli.knockouts` with a
  ``pytest.MonkeyPatch`` when pytest starts (before collection) and undoes it at the end. An
  unknown id or a target that does not resolve is a usage error (exit 4), never a test failure.
* ``DMSIM_KNOCKOUT_REPORT=<file>``: writes the outcome of every test run, as JSON
  ``{node id: {"outcome": passed|failed|skipped, "message": first line of the failure}}``.

Without either variable the plugin does nothing.
"""
from __future__ import annotations

import json
import os

import pytest

from dmsim.sim.cli import knockouts

REPORT_ENV = "DMSIM_KNOCKOUT_REPORT"
_APPLIED = pytest.StashKey[list]()
_outcomes: dict[str, dict[str, str]] = {}  # node id -> outcome, message (one pytest run per process)


def pytest_configure(config: pytest.Config) -> None:
    _outcomes.clear()
    config.stash[_APPLIED] = []
    ko_id = os.environ.get(knockouts.ENV, "")
    if not ko_id:
        return
    knockout = knockouts.KNOCKOUTS.get(ko_id)
    if knockout is None:
        raise pytest.UsageError(f"{knockouts.ENV}={ko_id}: no such knockout")
    patcher = pytest.MonkeyPatch()
    config.add_cleanup(patcher.undo)
    try:
        config.stash[_APPLIED] = knockouts.apply(knockout, patcher)
    except (ImportError, AttributeError) as exc:
        raise pytest.UsageError(f"knockout {ko_id}: target {knockout.target} does not resolve: {exc}") from exc


def pytest_report_header(config: pytest.Config) -> str | None:
    ko_id = os.environ.get(knockouts.ENV, "")
    if ko_id:
        return f"dmsim knockout {ko_id}: {', '.join(config.stash.get(_APPLIED, []))}"
    return None


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if not os.environ.get(REPORT_ENV):
        return
    entry = _outcomes.setdefault(report.nodeid, {"outcome": "passed", "message": ""})
    if report.failed and entry["outcome"] != "failed":
        crash = getattr(report.longrepr, "reprcrash", None)
        message = crash.message if crash is not None else str(report.longrepr)
        entry.update(outcome="failed", message=(message.strip().splitlines() or [""])[0][:300])
    elif report.skipped and entry["outcome"] == "passed":
        entry["outcome"] = "skipped"
        longrepr = report.longrepr
        entry["message"] = str(longrepr[2] if isinstance(longrepr, tuple) else longrepr)[:300]


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if os.environ.get(REPORT_ENV) and report.failed:
        message = str(report.longrepr).strip().splitlines()
        _outcomes[report.nodeid] = {"outcome": "failed", "message": "collection error: " + (message[-1] if message
                                                                                            else "")[:300]}


def pytest_sessionfinish(session: pytest.Session) -> None:
    path = os.environ.get(REPORT_ENV)
    if path:
        with open(path, "w", encoding="utf-8") as out:
            json.dump(_outcomes, out, indent=1)
