"""``dmsim run --scheduler tcp://HOST:PORT``: the units on a Dask distributed cluster (issue 17).

A ``LocalCluster`` of two worker processes stands in for a cluster: the merged tables and
summary are the local run's, byte for byte, for replicas, sweep points and shards."""
from __future__ import annotations

import socket

import pytest
from click.testing import CliRunner

pytest.importorskip("dask.distributed")
from dask.distributed import LocalCluster  # noqa: E402

from dmsim.base.errors import DmsimError  # noqa: E402
from dmsim.sim.cli.main import main  # noqa: E402
from dmsim.sim.results.executors import DaskCluster  # noqa: E402
from dmsim.sim.results.runner import run_scenario  # noqa: E402
from dmsim.sim.scenario.format import parse_scenario  # noqa: E402

SCENARIO = """
name: cluster
seed: 21
duration: 900
replicas: 2
shards: 2
fleet: {size: 40, profiles: [{name: a, dm_auth: hmac}, {name: b, bootstrap_security: USERPIN}]}
smsc: {}
arrival: {kind: poisson, rate: 2}
sweep: {key: links.sms.loss, values: [0.0, 0.1]}
"""


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      host="127.0.0.1") as c:
        yield c


def test_a_cluster_run_merges_to_the_local_run_byte_for_byte(tmp_path, cluster):
    scenario = parse_scenario(SCENARIO, "cluster.yaml")
    local = run_scenario(scenario, tmp_path / "local", plots=False, jobs=2)
    remote = run_scenario(scenario, tmp_path / "dask", plots=False, scheduler=cluster.scheduler_address)
    serial = run_scenario(scenario, tmp_path / "serial", plots=False, jobs=1)
    for name in ("sessions.csv", "sms.csv"):
        data = (tmp_path / "local" / name).read_bytes()
        assert data == (tmp_path / "dask" / name).read_bytes() == (tmp_path / "serial" / name).read_bytes()
    assert local.summary == remote.summary == serial.summary
    assert local.events == remote.events
    assert len((tmp_path / "dask" / "sessions.csv").read_text().splitlines()) == 1 + 2 * 2 * 40


def test_the_cli_sends_the_runs_to_the_scheduler(tmp_path, cluster):
    path = tmp_path / "cluster.yaml"
    path.write_text(SCENARIO)
    result = CliRunner().invoke(main, ["run", str(path), "--out", str(tmp_path / "out"), "--no-plots", "-q",
                                       "--scheduler", cluster.scheduler_address])
    assert result.exit_code == 0, result.output
    assert '"scheduler": "%s"' % cluster.scheduler_address in (tmp_path / "out" / "manifest.json").read_text()
    bad = CliRunner().invoke(main, ["run", str(path), "--scheduler", "udp://x"])
    assert bad.exit_code == 2 and "--scheduler" in bad.output


def test_no_scheduler_at_the_address_is_a_clear_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    with pytest.raises(DmsimError, match="no Dask scheduler answers"):
        DaskCluster(f"tcp://127.0.0.1:{port}", connect_timeout=2)


def test_a_cluster_without_workers_is_refused():
    with LocalCluster(n_workers=0, processes=True, dashboard_address=None, host="127.0.0.1") as empty:
        with pytest.raises(DmsimError, match="no workers"):
            DaskCluster(empty.scheduler_address)
