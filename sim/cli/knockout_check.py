"""``dmsim conformance --check --knockouts``: would each row's cited tests fail if the mechanism
broke?

For every row marked ``yes`` or ``partial`` that cites evidence (:mod:`conformance`):

1. **baseline**: all cited tests run once together, without any knockout (one pytest process);
   a row whose cited tests fail there, or of which none passes (all skipped, none collected),
   is a problem ("fails without its knockout", "not shown");
2. **knockout**: the row's cited tests run again in a pytest process of their own with the
   row's knockout applied (:mod:`knockouts`, through the plugin :mod:`knockout_plugin`), with
   ``-x -q -p no:cacheprovider``: at least one must fail. If all still pass, the row
   **overclaims**: its evidence does not depend on the mechanism it claims. Rows with the same
   knockout and the same evidence share one run; runs go ``jobs`` at a time.

A row without a knockout is **unchecked**: listed; a failure for a ``yes`` row unless
:data:`knockouts.UNCHECKED` gives the reason. A pytest process that ends otherwise (a knockout
that does not resolve, a usage error, a time-out) is an **error** of the row.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping

from dmsim.sim.cli import knockouts as ko

PLUGIN = "dmsim.sim.cli.knockout_plugin"
PYTEST_ARGS = ("-x", "-q", "-p", "no:cacheprovider", "-p", PLUGIN)
DEFAULT_TIMEOUT = 300.0  # seconds per pytest process

SHOWN, OVERCLAIMS, UNCHECKED, BASELINE, ERROR = "shown", "overclaims", "unchecked", "baseline", "error"


@dataclass
class RowResult:
    """The verdict on one row: ``status`` one of shown, overclaims, unchecked, baseline (its tests
    do not pass without the knockout), error; ``knockout`` its id (or None); ``detail`` the test
    that failed under the knockout, or what went wrong; ``problem`` True when it fails the check."""

    row: object
    knockout: str | None
    status: str
    detail: str = ""
    problem: bool = False


@dataclass
class Run:
    """One pytest process: its exit code, the outcomes by node id, the tail of its output."""

    code: int
    outcomes: dict[str, dict[str, str]] = field(default_factory=dict)
    output: str = ""
    seconds: float = 0.0


def run_pytest(node_ids: Iterable[str], root: Path, knockout: str | None, *, stop_first: bool = True,
               timeout: float = DEFAULT_TIMEOUT) -> Run:
    """Run pytest on ``node_ids`` under ``root`` with ``knockout`` (None: none) in a subprocess."""
    with tempfile.TemporaryDirectory(prefix="dmsim-knockout-") as tmp:
        report = Path(tmp) / "outcomes.json"
        env = dict(os.environ)
        env.pop(ko.ENV, None)
        if knockout:
            env[ko.ENV] = knockout
        env["DMSIM_KNOCKOUT_REPORT"] = str(report)
        args = [a for a in PYTEST_ARGS if stop_first or a != "-x"]
        cmd = [sys.executable, "-m", "pytest", *args, "--rootdir", str(root), *node_ids]
        start = time.monotonic()
        try:
            proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            out = (exc.stdout or b"")
            out = out.decode(errors="replace") if isinstance(out, bytes) else out
            return Run(-1, {}, f"timed out after {timeout:g} s\n{out[-2000:]}", time.monotonic() - start)
        outcomes = json.loads(report.read_text(encoding="utf-8")) if report.is_file() else {}
        return Run(proc.returncode, outcomes, (proc.stdout + proc.stderr)[-3000:], time.monotonic() - start)


def _matching(node_id: str, outcomes: Mapping[str, dict]) -> list[str]:
    """Return the node ids of ``outcomes`` that the cited ``node_id`` selects (itself, or its
    parametrized cases)."""
    return [n for n in outcomes if n == node_id or ("[" not in node_id and n.startswith(node_id + "["))]


def _baseline_problem(row, outcomes: Mapping[str, dict]) -> str | None:
    """Return why the row's tests do not pass without a knockout, or None."""
    passed = 0
    for node_id in row.evidence:
        found = _matching(node_id, outcomes)
        if not found:
            return f"{node_id}: not run (not collected?)"
        for n in found:
            if outcomes[n]["outcome"] == "failed":
                return f"{n} fails without the knockout: {outcomes[n]['message']}"
            passed += outcomes[n]["outcome"] == "passed"
    if not passed:
        return "none of its tests passes without the knockout (all skipped: " + "; ".join(
            sorted({outcomes[n]["message"] for e in row.evidence for n in _matching(e, outcomes)}))[:300] + ")"
    return None


def _verdict(row, knockout: str, run: Run) -> RowResult:
    failed = [n for n, o in run.outcomes.items() if o["outcome"] == "failed"]
    if run.code in (1, 2) and failed:  # 2: a collection error (the module fails to import under it)
        first = failed[0]
        return RowResult(row, knockout, SHOWN, f"{first} fails: {run.outcomes[first]['message']}")
    if run.code == 0:
        ran = sum(o["outcome"] == "passed" for o in run.outcomes.values())
        skipped = sum(o["outcome"] == "skipped" for o in run.outcomes.values())
        return RowResult(row, knockout, OVERCLAIMS, f"no cited test fails under the knockout ({ran} passed"
                         + (f", {skipped} skipped" if skipped else "") + ")", problem=True)
    tail = " | ".join(line for line in run.output.strip().splitlines()[-3:])
    return RowResult(row, knockout, ERROR, f"pytest exit {run.code}: {tail}", problem=True)


def check_knockouts(table, root: Path, *, jobs: int | None = None, timeout: float = DEFAULT_TIMEOUT,
                    assignments: Mapping[tuple[str, str, str], str] | None = None,
                    unchecked: Mapping[tuple[str, str, str], str] | None = None,
                    log: Callable[[str], None] | None = None) -> list[RowResult]:
    """Return one :class:`RowResult` per ``yes``/``partial`` row of ``table`` that cites evidence
    (module doc). ``assignments`` maps (source, side, item) to a knockout id (default
    :data:`knockouts.ROWS`), ``unchecked`` to the reason a row has none (default
    :data:`knockouts.UNCHECKED`); ``log`` receives progress lines."""
    assignments = ko.ROWS if assignments is None else assignments
    unchecked = ko.UNCHECKED if unchecked is None else unchecked
    say = log or (lambda text: None)
    results: dict[int, RowResult] = {}
    checked = []
    for i, row in enumerate(table):
        if row.supported not in ("yes", "partial") or not row.evidence:
            continue
        knockout = assignments.get(ko.row_key(row))
        if knockout is None:
            reason = unchecked.get(ko.row_key(row), "")
            results[i] = RowResult(row, None, UNCHECKED, reason or "no knockout defined",
                                   problem=row.supported == "yes" and not reason)
        elif knockout not in ko.KNOCKOUTS:
            results[i] = RowResult(row, knockout, ERROR, f"no knockout {knockout!r}", problem=True)
        else:
            checked.append((i, row, knockout))
    evidence = list(dict.fromkeys(e for _, row, _ in checked for e in row.evidence))
    if evidence:
        start = time.monotonic()
        base = run_pytest(evidence, root, None, stop_first=False, timeout=timeout)
        say(f"baseline: {len(base.outcomes)} test(s) without knockouts, pytest exit {base.code}, "
            f"{time.monotonic() - start:.1f} s")
        if base.code not in (0, 1) and not base.outcomes:
            tail = " | ".join(base.output.strip().splitlines()[-3:])
            for i, row, knockout in checked:
                results[i] = RowResult(row, knockout, ERROR, f"baseline pytest exit {base.code}: {tail}", problem=True)
            checked = []
        for i, row, knockout in list(checked):
            why = _baseline_problem(row, base.outcomes)
            if why:
                results[i] = RowResult(row, knockout, BASELINE, why, problem=True)
                checked.remove((i, row, knockout))
    runs: dict[tuple[str, tuple[str, ...]], list[tuple[int, object]]] = {}
    for i, row, knockout in checked:
        runs.setdefault((knockout, tuple(row.evidence)), []).append((i, row))

    def one(key):
        knockout, node_ids = key
        run = run_pytest(node_ids, root, knockout, timeout=timeout)
        for i, row in runs[key]:
            results[i] = _verdict(row, knockout, run)
            say(f"{row.source} {row.side} {row.item}: {knockout}: {results[i].status} ({run.seconds:.1f} s)")

    with ThreadPoolExecutor(max_workers=max(1, jobs or os.cpu_count() or 1)) as pool:
        list(pool.map(one, list(runs)))
    return [results[i] for i in sorted(results)]


def format_results(results: list[RowResult]) -> list[str]:
    """Return one readable line per row result, problems marked."""
    lines = []
    for r in results:
        mark = "FAIL " if r.problem else ""
        name = f"{r.row.source} {r.row.side} {r.row.item}"
        lines.append(f"{mark}{r.status:<10} {name:<35} {r.knockout or '-'}: {r.detail}")
    return lines
