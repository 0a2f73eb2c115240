"""Scenario input that must be refused cleanly: the typed smsc block, nesting, alias and size
limits of the YAML loader, command-line flags named in their errors, and one-line messages."""
from __future__ import annotations

from pathlib import Path

import pytest

import dmsim.base.schema as schema
from dmsim.base.errors import ScenarioError
from dmsim.sim.agents.smsc import SMSC_SCHEMA, parse_smsc_spec
from dmsim.sim.scenario.format import describe_schema, load_scenario, parse_scenario

BASE = "fleet: {size: 2}\n"


def error(text: str, overrides=(), **kw) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text, "s.yaml", list(overrides), **kw)
    return info.value


# -- the smsc block has a schema -----------------------------------------------------------------

@pytest.mark.parametrize("value,got", [("5", "an integer (5)"), ("true", "a boolean (true)"), ("[]", "a list")])
def test_a_scalar_smsc_block_is_refused_at_its_line(value, got):
    e = error(BASE + f"smsc: {value}\n")
    assert (e.where, e.path) == ("s.yaml:2", "smsc") and f"expected a mapping, got {got}" in str(e)
    e = error(BASE, [f"smsc={value}"])
    assert (e.where, e.path) == ("--set", "smsc")


def test_smsc_keys_can_be_set_and_get_their_defaults():
    data = parse_scenario(BASE, "s.yaml", ["smsc.submit_rate=10", "smsc.retry.max_attempts=3"]).data["smsc"]
    assert data["submit_rate"] == 10.0 and data["burst"] == 1 and data["validity"] == 86400.0
    assert data["retry"] == {"initial": 30.0, "factor": 2.0, "max": 3600.0, "max_attempts": 3}
    assert data["availability"] is None and data["alert_sc"] is False


@pytest.mark.parametrize("text,path,where", [
    ("smsc: {submit_rate: 0}\n", "smsc.submit_rate", "s.yaml:2"),
    ("smsc:\n  retry: {factor: 0.5}\n", "smsc.retry.factor", "s.yaml:3"),
    ("smsc:\n  availability: {mean_up: 1}\n", "smsc.availability.mean_down", "s.yaml:3"),
    ("smsc: {queue_limit: 1.5}\n", "smsc.queue_limit", "s.yaml:2"),
    ("smsc: {alert_sc: 1}\n", "smsc.alert_sc", "s.yaml:2"),
    ("smsc: {radio: {loss: 0.1}}\n", "smsc.radio", "s.yaml:2"),
])
def test_smsc_keys_are_checked_at_their_own_line(text, path, where):
    e = error(BASE + text)
    assert (e.where, e.path) == (where, path)


def test_the_scenario_block_and_the_driver_read_the_same_defaults():
    data = parse_scenario(BASE + "smsc: {}\n", "s.yaml").data["smsc"]
    assert parse_smsc_spec(data) == parse_smsc_spec({}) == parse_smsc_spec(None)
    spec = parse_smsc_spec({})
    assert (spec.config.burst, spec.config.validity, spec.config.retry_initial, spec.config.retry_factor,
            spec.config.retry_max, spec.config.attempt_timeout) == (1, 86400.0, 30.0, 2.0, 3600.0, 30.0)
    assert spec.config.submit_rate is None and spec.availability is None and spec.alert_sc is False


def test_the_driver_still_takes_its_radio_and_checks_it():
    spec = parse_smsc_spec({"radio": {"loss": 0.5}})
    assert spec.radio == spec.radio_up == {"loss": 0.5}
    with pytest.raises(ScenarioError) as err:
        parse_smsc_spec({"radio_up": 5})
    assert err.value.path == "smsc.radio_up"


def test_scenario_format_documents_every_smsc_key():
    text = describe_schema()
    block = text[text.index("\nsmsc:"):text.index("\nota:")]
    for key in [*SMSC_SCHEMA.fields, "initial", "factor", "max_attempts", "mean_up", "mean_down"]:
        assert f"  {key}:" in block, key


# -- limits of the YAML loader ---------------------------------------------------------------------

def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_nesting_up_to_the_limit_loads_and_one_more_is_refused_at_its_line():
    assert schema.load_yaml(nested(schema.MAX_DEPTH), "s.yaml")[0] is not None
    with pytest.raises(ScenarioError) as err:
        schema.load_yaml("a:\n  b: " + nested(schema.MAX_DEPTH - 1), "s.yaml")
    assert err.value.where == "s.yaml:2" and f"nested more than {schema.MAX_DEPTH} deep" in str(err.value)


def test_a_5000_deep_list_is_an_error_not_a_recursion_error():
    e = error(BASE + "x: " + nested(5000) + "\n")
    assert e.where == "s.yaml:2" and "nested more than 64 deep" in str(e)


def test_aliases_cannot_nest_past_the_limit():
    lines = [BASE, "a0: &a0 " + nested(40) + "\n"]
    lines += [f"a{i}: &a{i} " + "[" * 40 + f"*a{i - 1}" + "]" * 40 + "\n" for i in range(1, 4)]
    e = error("".join(lines))
    assert "nested more than 64 deep (through aliases)" in str(e) and e.where.startswith("s.yaml:")


def test_billion_laughs_is_refused():
    lines = [BASE, "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"]
    prev = "a"
    for name in "bcdefghi":
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]\n")
        prev = name
    assert "the document is too large" in str(error("".join(lines)))


def test_too_many_values_as_written_are_refused_while_composing(monkeypatch):
    monkeypatch.setattr(schema, "MAX_NODES", 50)
    e = error(BASE + "x: [" + ", ".join(["1"] * 60) + "]\n")
    assert e.where == "s.yaml:2" and "over 50 values" in str(e)


def test_a_huge_file_is_refused_without_reading_it(tmp_path, monkeypatch):
    big = tmp_path / "big.yaml"
    big.write_text(BASE + "#" * 200 + "\n")
    monkeypatch.setattr(schema, "MAX_BYTES", 100)
    with pytest.raises(ScenarioError) as err:
        load_scenario(big)
    assert err.value.where == str(big) and "larger than 100 bytes" in str(err.value)
    assert "longer than 100 characters" in str(error(BASE + "#" * 200 + "\n"))


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_an_endless_file_is_refused():
    with pytest.raises(ScenarioError) as err:
        load_scenario("/dev/zero")
    assert "larger than" in str(err.value)


# -- command-line flags and --set ------------------------------------------------------------------

@pytest.mark.parametrize("flag,value", [("--replicas", 0), ("--replicas", 1001), ("--seed", -1)])
def test_a_bad_flag_value_names_the_flag(flag, value):
    e = error(BASE, flags={flag: value})
    assert (e.where, e.path) == (flag, flag[2:]) and "--set" not in str(e)


def test_flags_are_applied_after_the_overrides_and_recorded():
    sc = parse_scenario(BASE, "s.yaml", ["seed=4"], flags={"--seed": 7, "--replicas": None})
    assert sc.data["seed"] == 7 and sc.data["replicas"] == 1
    assert sc.overrides == ("seed=4", "seed=7")


def test_set_inside_a_value_of_the_wrong_kind_is_an_error():
    e = error("fleet: []\n", ["fleet.size=5"])
    assert (e.where, e.path) == ("--set", "fleet.size") and "fleet is a list in the scenario" in str(e)
    e = error(BASE + "links: {sms: {delay: [1]}}\n", ["links.sms.delay.mean=1"])
    assert e.path == "links.sms.delay.mean" and "is a list in the scenario" in str(e)


@pytest.mark.parametrize("text,overrides,words", [
    (BASE + '"a\\nb": 1\n', [], "unknown key 'a\\nb'"),
    (BASE, ["x\ny"], "'x\\ny' is not KEY=VALUE"),
    ('fleet: {size: 2, profiles: [{name: "a\\nb"}, {name: "a\\nb"}]}\n', [], "profile name 'a\\nb' is already used"),
    (BASE + 'arrival: {kind: "pois\\nson"}\n', [], "unknown kind 'pois\\nson'"),
])
def test_errors_quoting_input_stay_on_one_line(text, overrides, words):
    e = error(text, overrides)
    assert "\n" not in str(e) and words in str(e), str(e)
