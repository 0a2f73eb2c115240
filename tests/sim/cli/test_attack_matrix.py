"""``dmsim attack list`` and ``dmsim attack matrix``: the catalogue against the profiles, each
cell a real run whose folder the outputs link to."""
from __future__ import annotations

import csv
import json
from pathlib import Path

from click.testing import CliRunner

from dmsim.network.dm import server as dm_server
from dmsim.sim.cli.attack_matrix import _knocked_out, cell_scenario, deep_merge, plan
from dmsim.sim.cli.main import main


def test_attack_list_prints_every_kind_and_the_catalogue():
    runner = CliRunner()
    plain = runner.invoke(main, ["attack", "list"])
    assert plain.exit_code == 0 and "forge-networkid-bootstrap" in plain.output
    md = runner.invoke(main, ["attack", "list", "--markdown"])
    assert md.exit_code == 0 and "**The seeds say:**" in md.output and "DM-SEC-C-022-M" in md.output


def test_the_matrix_runs_cells_in_parallel_and_links_each_to_its_run(tmp_path):
    out = tmp_path / "m"
    result = CliRunner().invoke(main, ["attack", "matrix", "--profiles", "networkid,userpin,smartcard",
                                       "--attacks", "forge-networkid-bootstrap,forge-bootstrap-guessed-pin",
                                       "--out", str(out), "--jobs", "2"])
    assert result.exit_code == 0, result.output
    with open(out / "matrix.csv", newline="", encoding="utf-8") as f:
        cells = {(r["attack"], r["profile"]): r for r in csv.DictReader(f)}
    verdicts = {key: r["verdict"] for key, r in cells.items()}
    assert verdicts == {
        ("forge-networkid-bootstrap", "networkid"): "succeeded",
        ("forge-networkid-bootstrap", "userpin"): "succeeded",
        ("forge-networkid-bootstrap", "smartcard"): "n/a",
        ("forge-bootstrap-guessed-pin", "networkid"): "succeeded",
        ("forge-bootstrap-guessed-pin", "userpin"): "detected",
        ("forge-bootstrap-guessed-pin", "smartcard"): "n/a",
    }
    detected = cells[("forge-bootstrap-guessed-pin", "userpin")]
    assert float(detected["success"]) == 1.0 and float(detected["baseline_success"]) == 1.0
    assert detected["legit_success"] == ""  # every device was a target: none untouched
    assert "no bootstrap crosses the air" in cells[("forge-networkid-bootstrap", "smartcard")]["mechanism"]
    for r in cells.values():  # every cell's link names a folder with the scenario that produced it
        assert (out / r["run_dir"] / "scenario.yaml").is_file()
    ran = out / cells[("forge-networkid-bootstrap", "networkid")]["run_dir"]
    summary = json.loads((ran / "summary.json").read_text())
    assert summary["attacks"]["outcomes"][0]["verdict"] == "succeeded"
    md = (out / "matrix.md").read_text()
    assert "| forge-networkid-bootstrap | [**succeeded**](cells/networkid/forge-networkid-bootstrap/)" in md
    page = (out / "report.html").read_text()
    assert 'href="cells/userpin/forge-bootstrap-guessed-pin/"' in page and "cells SUCCEEDED" in page
    assert (out / "matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "### `forge-networkid-bootstrap`" in (out / "catalogue.md").read_text()
    assert "6 cells in" in result.output and "succeeded 3, detected 1, n/a 2" in result.output


def test_unknown_names_are_refused():
    result = CliRunner().invoke(main, ["attack", "matrix", "--profiles", "nope"])
    assert result.exit_code == 2 and "unknown profile 'nope'" in result.output


def test_a_cell_scenario_is_the_base_the_profile_and_what_the_attack_needs():
    data = cell_scenario("gba", "forge-networkid-bootstrap")
    assert data["gba"] == {} and data["fleet"]["profiles"][0]["bootstrap_via"] == "gba_push"
    assert data["attacks"] == [{"kind": "forge-networkid-bootstrap"}]
    assert deep_merge({"a": {"b": 1, "c": 2}}, {"a": {"b": 3}}) == {"a": {"b": 3, "c": 2}}
    assert plan(["p"], []) == [("p", None, "")]


def test_a_knockout_is_undone_after_its_cell():
    original = dm_server.DmServer._refuse
    with _knocked_out("server-refuses-without-chal"):
        assert dm_server.DmServer.__dict__["_refuse"] is not original
    assert dm_server.DmServer.__dict__["_refuse"] is original
