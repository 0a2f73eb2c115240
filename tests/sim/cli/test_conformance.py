"""``dmsim conformance`` (sim/cli/conformance.py): every SCR item of OMA-TS-DM_Security-V1_3 Appendix B
and of seed 000's SCR tables (transcribed in tests/vectors/scr_tables.json) appears exactly once, as the spec lists it; every evidence node
id names a test; a ``yes`` row has evidence and meets its Requirement column; the command's
readable, JSON and --check output. The evidence tests themselves are not run."""
import json
import re

import pytest
from click.testing import CliRunner
from conftest import VECTORS

from dmsim.sim.cli import conformance as conf
from dmsim.sim.cli.conformance import NO, PARTIAL, SEED_000, SEED_002, SEED_004, SPEC_003, YES, Scr

SCR_TABLES = json.loads((VECTORS / "scr_tables.json").read_text(encoding="utf-8"))


def appendix_b_003() -> list[tuple[str, str, str, str]]:
    """Return (side, item, function, reference) of each row of Appendix B of spec 003
    (transcribed in tests/vectors/scr_tables.json)."""
    return [(r["side"], r["item"], r["function"], r["reference"]) for r in SCR_TABLES["spec_003"]]


def scr_seed_000() -> list[tuple[str, str, str]]:
    """Return (side, item, reference) of each item of seed 000's Change 4 SCR tables."""
    return [(r["side"], r["item"], r["reference"]) for r in SCR_TABLES["seed_000"]]


def test_spec_003_parse_finds_both_tables():
    items = appendix_b_003()
    assert len(items) == 39
    assert sum(side == "client" for side, *_ in items) == 19
    assert ("client", "DM-SEC-C-023-M", "Support of USERPIN", "Section") in items  # split by a page break


def test_every_appendix_b_item_appears_exactly_once_with_its_spec_columns():
    table = {(r.side, r.item): r for r in conf.TABLE if r.source == SPEC_003}
    listed = [(r.side, r.item) for r in conf.TABLE if r.source == SPEC_003]
    assert len(listed) == len(set(listed)), "an item is listed twice"
    spec = appendix_b_003()
    assert sorted(listed) == sorted((side, item) for side, item, _, _ in spec)
    norm = lambda s: re.sub(r"-\s+", "-", " ".join(s.split()))  # noqa: E731  ("HMAC- SHA256")
    for side, item, function, reference in spec:
        row = table[side, item]
        assert norm(row.description).startswith(norm(function)), item
        if reference != "Section":
            assert reference == f"Section {row.reference}", item


def test_every_seed_000_item_appears_exactly_once():
    seed = scr_seed_000()
    assert len(seed) == 27 and ("server", "DM-SEC-C-004-M", "9.2.2") in seed
    listed = [(r.side, r.item, r.reference) for r in conf.TABLE if r.source == SEED_000]
    assert sorted(listed) == sorted(seed)
    assert {r.source for r in conf.TABLE} == {SPEC_003, SEED_000, SEED_002, conf.SPEC_GBA, SEED_004}


def test_seed_002_rows_name_each_message_security_mechanism_on_both_sides():
    rows = [r for r in conf.TABLE if r.source == SEED_002]
    assert [(r.side, r.reference) for r in rows] == [(side, ref) for side in ("client", "server")
                                                     for ref in ("5.4", "5.4", "5.5", "5.9")]
    assert all(r.item.startswith("SEED-002-") for r in rows)


# seed 004's rules by number: (reference, client status or None, server status or None)
SEED_004_RULES = {
    1: ("7.1", "M", "M"), 2: ("7.1, D.1.1", "M", "M"), 3: ("7.1", "O", "M"), 4: ("7.1", "M", "M"),
    5: ("7.1", "O", "M"), 6: ("7.1, D.1.1.2, D.1.1.3", "O", "M"), 7: ("7.1", "M", "M"), 8: ("7.1", None, "M"),
    9: ("7.1", "O", "O"), 10: ("7.3", "M", "M"), 11: ("7.3", "M", "M"), 12: ("7.3", "O", "O"), 13: ("7.3", "M", "M"),
    14: ("7.3", "M", "M"), 15: ("7.3", "M", "M"), 16: ("7.3", "O", "O"), 17: ("7.3, D.1, D.1.2", "M", "M"),
    18: ("7.3", "M", "M"), 19: ("D.1", "M", None), 20: ("D.1", "M", None), 21: ("D.1", "M", "M"),
    22: ("D.1.3", "M", None),
}


def test_seed_004_rows_are_one_per_rule_and_side_numbered_alike():
    """Seed 004 has no SCR table: dmsim's rows, one per rule and side, a rule keeping its number on
    both sides (M for the seed's MUST/SHALL; O for SHOULD/MAY and the client's choice of method)."""
    rows = [r for r in conf.TABLE if r.source == SEED_004]
    expected = [(side, f"SEED-004-{side[0].upper()}-{n:03d}-{status[side == 'server']}", ref)
                for side in ("client", "server") for n, (ref, *status) in SEED_004_RULES.items()
                if status[side == "server"] is not None]
    assert [(r.side, r.item, r.reference) for r in rows] == expected
    assert next(r for r in rows if r.item == "SEED-004-C-007-M").supported == NO  # the client cannot tell
    partial = {r.item for r in rows if r.supported == PARTIAL}
    assert {"SEED-004-C-006-O", "SEED-004-S-006-M", "SEED-004-C-009-O", "SEED-004-C-010-M"} <= partial
    assert "RFC 7250" in next(r for r in rows if r.item == "SEED-004-C-006-O").note


def test_seed_004_rows_raised_by_the_lwm2m_exchanges_over_dtls_and_the_bootstrap_servers_sms_check():
    """Rules 1 and 2 are yes on both sides once the LwM2M exchanges run over real DTLS sockets and in
    the simulated fleet; the server's SMS rules 11 and 13-16 once the bootstrap server refuses a plan
    breaking them; what is still missing keeps a row partial and is named in its note."""
    rows = {r.item: r for r in conf.TABLE if r.source == SEED_004}
    real, fleet = "tests/sim/real/test_lwm2m_server.py::", "tests/sim/agents/test_lwm2m_fleet.py::"
    for item in ("SEED-004-C-001-M", "SEED-004-S-001-M", "SEED-004-C-002-M", "SEED-004-S-002-M"):
        assert rows[item].supported == YES, item
        assert any(e.startswith(real) for e in rows[item].evidence), item
        assert any(e.startswith(fleet) for e in rows[item].evidence), item
    plan_checks = ("tests/network/lwm2m/test_bootstrap_server.py::test_plans_are_checked_when_given",
                   "tests/network/lwm2m/test_bootstrap_server_sms_policy.py::")
    for n in (11, 13, 14, 15, 16):
        server = next(r for item, r in rows.items() if item.startswith(f"SEED-004-S-{n:03d}-"))
        assert server.supported == YES and "partial" not in server.note, server.item
        assert any(e.startswith(plan_checks) for e in server.evidence), server.item
        client = next(r for item, r in rows.items() if item.startswith(f"SEED-004-C-{n:03d}-"))
        assert not any(e.startswith(plan_checks) for e in client.evidence), client.item  # the server's rule
    still = {"SEED-004-C-009-O": "abbreviated handshake", "SEED-004-C-010-M": "concatenated",
             "SEED-004-S-008-M": "serves PSK only", "SEED-004-S-007-M": "certificate clients"}
    for item, missing in still.items():
        assert rows[item].supported == PARTIAL and missing in rows[item].note, item


def test_rows_are_well_formed():
    for row in conf.TABLE:
        assert row.supported in (YES, PARTIAL, NO), row.item
        assert row.side == ("server" if "-S-" in row.item else "client") or row.item == "DM-SEC-C-004-M"
        assert row.status in ("M", "O", "M-O")
        assert row.supported == YES or row.note, f"{row.item}: a partial or no row says why"
        assert len(set(row.evidence)) == len(row.evidence), row.item


def test_every_evidence_exists_and_every_yes_has_evidence():
    assert conf.check() == []
    assert all(r.evidence for r in conf.TABLE if r.supported == YES)


def test_status_comes_from_the_item_id():
    assert [r.status for r in conf.TABLE[:3]] == ["M-O", "M", "O"]


# --- the check logic on made-up rows ------------------------------------------------------

@pytest.fixture
def checkout(tmp_path):
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_a.py").write_text(
        "import pytest\n\ndef test_one():\n    pass\n\nasync def test_two():\n    pass\n\n"
        "class TestGroup:\n    def test_three(self):\n        pass\n\ndef helper():\n    pass\n")
    (tmp_path / "tests" / "test_broken.py").write_text("def test_x(:\n")
    return tmp_path


@pytest.mark.parametrize("node_id,why", [
    ("tests/test_a.py::test_one", None),
    ("tests/test_a.py::test_two", None),
    ("tests/test_a.py::TestGroup::test_three", None),
    ("tests/test_a.py::test_one[md5-xml]", None),
    ("tests/test_a.py::test_three", "no test test_three"),
    ("tests/test_a.py::helper", "no test helper"),
    ("tests/test_gone.py::test_one", "no file"),
    ("tests/test_broken.py::test_x", "cannot parse"),
    ("tests/test_a.py", "not a node id"),
    ("test_one", "not a node id"),
])
def test_evidence_problem(checkout, node_id, why):
    got = conf.evidence_problem(node_id, checkout)
    assert got is None if why is None else why in got


def test_check_reports_missing_evidence_and_unmet_requirements(checkout):
    table = (
        Scr("DM-SEC-C-001-O", "a", "1", YES, ("tests/test_a.py::test_one",), source="x", side="client"),
        Scr("DM-SEC-C-002-O", "b", "1", YES, ("tests/test_a.py::test_gone",), source="x", side="client"),
        Scr("DM-SEC-C-003-O", "c", "1", YES, (), source="x", side="client"),
        Scr("DM-SEC-C-004-O", "d", "1", YES, ("tests/test_a.py::test_one",), requirement="DM-SEC-C-001-O AND "
            "DM-SEC-C-005-O", source="x", side="client"),
        Scr("DM-SEC-C-005-O", "e", "1", PARTIAL, (), "why", source="x", side="client"),
        Scr("DM-SEC-C-006-O", "f", "1", YES, ("tests/test_a.py::test_one",), requirement="DM-SEC-C-005-O OR "
            "DM-SEC-C-001-O", source="x", side="client"),
        Scr("DM-SEC-C-007-O", "g", "1", YES, ("tests/test_a.py::test_one",), requirement="DM-SEC-C-0099-O",
            source="x", side="client"),
        Scr("DM-SEC-C-008-O", "h", "1", "maybe", (), "?", source="x", side="client"),
    )
    problems = conf.check(table, checkout)
    assert sorted(problems) == sorted([
        "x DM-SEC-C-002-O: tests/test_a.py::test_gone: no test test_gone in tests/test_a.py",
        "x DM-SEC-C-003-O: marked yes without evidence",
        "x DM-SEC-C-008-O: supported 'maybe' is not yes/partial/no",
        "x DM-SEC-C-004-O: marked yes but its requirement 'DM-SEC-C-001-O AND DM-SEC-C-005-O' is not met",
    ])


def test_yes_rows_of_the_table_meet_their_requirement():
    assert conf.requirement_problems() == []
    # C-007-O needs C-010-O (HMAC), which is not yet "yes": it must stay below "yes" until then
    c010 = next(r for r in conf.TABLE if r.item == "DM-SEC-C-010-O")
    if c010.supported != YES:
        assert next(r for r in conf.TABLE if r.item == "DM-SEC-C-007-O").supported != YES


# --- the command ----------------------------------------------------------------------------

def invoke(*args):
    return CliRunner().invoke(conf.conformance, list(args), catch_exceptions=False)


def test_json_output_keys_and_side_filter():
    res = invoke("--json")
    assert res.exit_code == 0
    out = json.loads(res.output)
    assert len(out) == len(conf.TABLE)
    assert set(out[0]) == {"item", "side", "source", "description", "reference", "requirement", "status",
                           "supported", "evidence", "note"}
    assert out[0]["item"] == "DM-SEC-C-001-M-O" and out[0]["evidence"][0].startswith("tests/")
    server = json.loads(invoke("--json", "--side", "server").output)
    assert server and {o["side"] for o in server} == {"server"}
    assert {o["item"] for o in server} >= {"DM-SEC-S-001-M", "DM-SEC-S-028-O", "DM-SEC-C-004-M"}


def test_readable_output_is_aligned_and_counts():
    res = invoke("--side", "client")
    assert res.exit_code == 0
    lines = res.output.splitlines()
    header = lines[1]
    assert header.startswith("ITEM") and "SUPPORTED" in header
    col = header.index("SUPPORTED")
    rows = [line for line in lines if line.startswith(("DM-SEC-", "SEED-002-", "GBA-PUSH-", "SEED-004-"))]
    assert len(rows) == len(conf.rows("client"))
    assert all(line[col:].split()[0] in (YES, PARTIAL, NO) for line in rows)
    assert "    evidence: tests/devices/test_dm_session.py::" in res.output
    assert lines[-1].startswith(f"{len(rows)} items: ")
    assert "DM-SEC-S-" not in res.output


def split_runner() -> CliRunner:
    """A runner whose result keeps stderr apart from stdout (click 8.1 needs mix_stderr=False)."""
    try:
        return CliRunner(mix_stderr=False)
    except TypeError:  # click >= 8.2 always keeps them apart
        return CliRunner()


def test_check_passes_on_this_checkout_and_fails_elsewhere(tmp_path):
    ok = split_runner().invoke(conf.conformance, ["--check", "--json"])
    assert ok.exit_code == 0 and "check: ok" in ok.stderr
    json.loads(ok.stdout)  # stdout stays the JSON list
    bad = split_runner().invoke(conf.conformance, ["--check", "--root", str(tmp_path)])
    assert bad.exit_code == 1
    assert "no file tests/devices/test_dm_session.py" in bad.stderr
    assert "problem(s)" in bad.stderr.splitlines()[-1]


def test_source_filter_keeps_one_sources_rows():
    out = json.loads(invoke("--json", "--source", "seed 004").output)
    assert [o["item"] for o in out] == [r.item for r in conf.TABLE if r.source == SEED_004]
    assert len(out) == len(SEED_004_RULES) * 2 - 4  # rules 8 (server), 19, 20, 22 (client) on one side only
    server = json.loads(invoke("--json", "--source", "seed 004", "--side", "server").output)
    assert {o["side"] for o in server} == {"server"} and {o["source"] for o in server} == {SEED_004}
    assert CliRunner().invoke(conf.conformance, ["--source", "seed 999"]).exit_code == 2


def test_help_and_bad_side():
    assert invoke("--help").exit_code == 0
    assert CliRunner().invoke(conf.conformance, ["--side", "both"]).exit_code == 2


def test_registered_in_dmsim_main():
    from dmsim.sim.cli.main import main
    if "conformance" not in main.commands:
        pytest.skip("sim/cli/main.py does not register conformance yet")
    assert main.commands["conformance"] is conf.conformance
