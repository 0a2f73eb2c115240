"""``dmsim run --jobs N``: runs (sweep point x replica) in worker processes, tables byte-identical
to the serial run's (issue 17)."""
from __future__ import annotations

import json
import threading

import pytest
from click.testing import CliRunner

from dmsim.sim.cli.main import main
from dmsim.sim.results.runner import run_scenario
from dmsim.sim.scenario.format import parse_scenario

SCENARIO = """
name: par
seed: 9
duration: 900
replicas: 2
fleet: {size: 30, profiles: [{name: a, dm_auth: hmac}, {name: b, bootstrap_security: USERPIN}]}
smsc: {}
arrival: {kind: poisson, rate: 2}
sweep: {key: links.sms.loss, values: [0.0, 0.1]}
attacks: [{kind: forge-networkid-bootstrap, targets: {fraction: 0.2}}]
"""


def test_parallel_runs_write_the_serial_tables_byte_for_byte(tmp_path):
    scenario = parse_scenario(SCENARIO, "par.yaml")
    serial = run_scenario(scenario, tmp_path / "serial", plots=False)
    parallel = run_scenario(scenario, tmp_path / "parallel", plots=False, jobs=2)
    for name in ("sessions.csv", "sms.csv"):
        assert (tmp_path / "serial" / name).read_bytes() == (tmp_path / "parallel" / name).read_bytes()
    assert serial.summary == parallel.summary  # network counters, attacks and per-point blocks included
    assert serial.events == parallel.events
    rows = (tmp_path / "parallel" / "sessions.csv").read_text().splitlines()
    assert len(rows) == 1 + 2 * 2 * 30


def test_the_cli_takes_jobs(tmp_path):
    path = tmp_path / "par.yaml"
    path.write_text(SCENARIO)
    result = CliRunner().invoke(main, ["run", str(path), "--out", str(tmp_path / "out"), "--no-plots", "-q",
                                       "--jobs", "2"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["status"] == "complete"
    bad = CliRunner().invoke(main, ["run", str(path), "--jobs", "0"])
    assert bad.exit_code == 2 and "--jobs" in bad.output


def test_a_stop_before_the_runs_leaves_an_interrupted_run(tmp_path):
    stop = threading.Event()
    stop.set()
    with pytest.raises(KeyboardInterrupt):
        run_scenario(parse_scenario(SCENARIO, "par.yaml"), tmp_path / "run", plots=False, jobs=2, stop=stop)
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["status"] == "interrupted"
    assert (tmp_path / "run" / "sessions.csv").read_text().startswith("replica,")
