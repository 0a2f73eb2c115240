"""Scenario loading: one test per kind of error (with its line and key path), defaults, --set
overrides, sweeps, the shipped scenarios, and the generic schema types."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from dmsim.base.errors import ScenarioError
from dmsim.sim.scenario.format import Scenario, describe_schema, load_scenario, parse_override, parse_scenario
from dmsim.base.schema import Bool, Field, Float, Int, Nullable, Str, Struct, validate

SCENARIOS = Path(__file__).resolve().parents[3] / "scenarios"

BASE = """\
name: t
fleet:
  size: 10
links:
  sms:
    loss: 0.1
    delay: {kind: lognormal, median: 2.0, sigma: 0.5}
"""


def load(text: str, overrides=()) -> Scenario:
    return parse_scenario(textwrap.dedent(text), "s.yaml", overrides)


def error(text: str, overrides=()) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        load(text, overrides)
    return info.value


# -- errors in the file ------------------------------------------------------------------------

def test_unknown_key_suggests_the_closest_and_lists_the_allowed():
    e = error(BASE + "    lost: 0.2\n")
    assert (e.where, e.path) == ("s.yaml:8", "links.sms.lost")
    assert "did you mean 'loss'?" in str(e)
    assert "delay" in e.expected and "queue_limit" in e.expected


def test_wrong_type_says_what_it_got():
    e = error(BASE.replace("loss: 0.1", "loss: lots"))
    assert (e.where, e.path) == ("s.yaml:6", "links.sms.loss")
    assert "got a string ('lots')" in str(e)
    assert e.expected == "a probability between 0 and 1"


def test_booleans_are_not_integers():
    e = error(BASE.replace("size: 10", "size: true"))
    assert (e.where, e.path) == ("s.yaml:3", "fleet.size")
    assert "got a boolean (true)" in str(e)


def test_value_out_of_range():
    e = error(BASE.replace("loss: 0.1", "loss: 1.5"))
    assert (e.where, e.path, e.expected) == ("s.yaml:6", "links.sms.loss", "a probability between 0 and 1")
    assert "out of range" in str(e)


def test_missing_required_key_points_at_its_mapping():
    e = error("name: t\nfleet:\n  profiles: [{name: a}]\n")
    assert (e.where, e.path) == ("s.yaml:2", "fleet.size")
    assert "missing required key 'size'" in str(e)


def test_duplicate_key():
    e = error(BASE + "    loss: 0.2\n")
    assert (e.where, e.path) == ("s.yaml:8", "links.sms.loss")
    assert "first written at line 6" in str(e)


def test_yaml_syntax_error_has_its_line():
    e = error("fleet:\n  size: 10\n links: [\n")
    assert e.where.startswith("s.yaml:") and e.where in ("s.yaml:3", "s.yaml:4")
    assert "invalid YAML" in str(e)


def test_bad_empirical_pair_points_at_its_line():
    e = error("""\
        fleet: {size: 1}
        links:
          ip:
            delay:
              kind: empirical
              quantiles:
                - [0.0, 0.1]
                - [0.5, 0.3]
                - [0.4, 0.5]
                - [1.0, 0.9]
        """)
    assert (e.where, e.path) == ("s.yaml:9", "links.ip.delay.quantiles.2.0")
    assert "not above the previous" in str(e)


def test_empirical_table_must_end_at_one_and_not_decrease():
    table = "fleet: {size: 1}\nserver:\n  service_time:\n    kind: empirical\n    quantiles:\n"
    e = error(table + "      - [0.0, 1]\n      - [0.9, 2]\n")
    assert (e.where, e.path) == ("s.yaml:7", "server.service_time.quantiles.1.0")
    e = error(table + "      - [0.0, 1]\n      - [1.0, 0.5]\n")
    assert (e.where, e.path) == ("s.yaml:7", "server.service_time.quantiles.1.1")


def test_nested_path_in_a_tagged_value():
    e = error(BASE.replace("median: 2.0", "median: -1"))
    assert (e.where, e.path) == ("s.yaml:7", "links.sms.delay.median")
    assert e.expected == "a duration in seconds > 0"


def test_unknown_kind_suggests_the_closest():
    e = error(BASE.replace("kind: lognormal", "kind: lognormel"))
    assert (e.path, e.where) == ("links.sms.delay.kind", "s.yaml:7")
    assert "did you mean 'lognormal'?" in str(e)


def test_key_of_another_kind_is_unknown_for_this_kind():
    e = error(BASE.replace("{kind: lognormal, median: 2.0, sigma: 0.5}", "{kind: fixed, median: 2.0}"))
    assert e.path == "links.sms.delay.median" and "for kind 'fixed'" in str(e)


def test_bad_sweep_key():
    e = error(BASE + "sweep:\n  key: links.sms.los\n  values: [0.1]\n")
    assert (e.where, e.path) == ("s.yaml:9", "sweep.key")
    assert "did you mean 'loss'?" in str(e)
    e = error(BASE + "sweep:\n  key: links.sms.delay\n  values: [0.1]\n")
    assert (e.where, e.path) == ("s.yaml:9", "sweep.key") and "neither a number nor a choice" in str(e)


def test_bad_sweep_value_has_its_line():
    e = error(BASE + "sweep:\n  key: links.sms.loss\n  values:\n    - 0.1\n    - 2\n")
    assert (e.where, e.path) == ("s.yaml:12", "sweep.values.1")


def test_profile_names_are_unique():
    e = error("fleet:\n  size: 2\n  profiles:\n    - name: a\n    - name: a\n")
    assert (e.where, e.path) == ("s.yaml:5", "fleet.profiles.1.name")


def test_root_must_be_a_mapping_and_keys_plain_names():
    assert "mapping" in str(error("- 1\n- 2\n"))
    assert error("fleet: {size: 1}\n? [a]\n: 1\n").where == "s.yaml:2"
    assert "merge keys" in str(error("a: &a {size: 1}\nfleet:\n  <<: *a\n"))
    assert "not supported" in str(error("fleet: !!python/object:os.system {size: 1}\n"))
    assert "an alias refers to a value that contains it" in str(error("fleet: &a {size: 1, x: *a}\n"))


def test_unreadable_file(tmp_path):
    with pytest.raises(ScenarioError) as info:
        load_scenario(tmp_path / "absent.yaml")
    assert info.value.where.endswith("absent.yaml")


# -- defaults and success ----------------------------------------------------------------------

def test_defaults_are_filled(tmp_path):
    f = tmp_path / "tiny.yaml"
    f.write_text("fleet: {size: 5}\n")
    sc = load_scenario(f)
    assert sc.name == "tiny" and sc.source == str(f) and sc.raw_text == "fleet: {size: 5}\n"
    d = sc.data
    assert (d["seed"], d["replicas"], d["duration"], d["sweep"]) == (1, 1, 3600.0, None)
    assert d["fleet"]["profiles"] == [{"name": "default", "device": "dm", "weight": 1.0, "bootstrap_security": "NETWORKID",
                                       "user_pin_digits": 8, "dm_auth": "md5", "bootstrap_via": "sms", "gba_ub": False,
                                       "gba_uicc": "u", "message_security": "none", "lwm2m": None}]
    assert d["arrival"] == {"kind": "all_at_once"}
    assert d["links"]["sms"]["delay"] == {"kind": "lognormal", "median": 2.0, "sigma": 0.5}
    assert d["links"]["ip"]["delay"] == {"kind": "exponential", "mean": 0.05}
    assert d["links"]["ip"]["tap"] == {"kind": "none"}
    assert d["links"]["sms"]["reorder_delay"] == {"kind": "exponential", "mean": 1.0}
    assert d["server"]["service_time"] == {"kind": "fixed", "value": 0.01}
    assert d["components"] == {"dm_server": {"kind": "virtual"}, "card": {"kind": "virtual", "apdu_time": {"kind": "fixed", "value": 0.002}},
                               "modem": {"kind": "virtual"}, "bsf": {"kind": "virtual"}, "esme": {"kind": "none"}}
    assert sc.get("client.request_retries") == 2 and sc.get("fleet.profiles.0.name") == "default"
    assert sc.sweep_points() == [(None, d)]


def test_link_written_without_delay_keeps_its_own_default():
    sc = load("fleet: {size: 1}\nlinks:\n  sms: {loss: 0.1}\n")
    assert sc.data["links"]["sms"]["delay"]["kind"] == "lognormal"


def test_ints_become_floats_and_aliases_work():
    sc = load("fleet: {size: 1}\nlinks:\n  sms: {delay: &d {kind: fixed, value: 2}}\n  ip: {delay: *d}\n")
    assert sc.data["links"]["ip"]["delay"] == {"kind": "fixed", "value": 2.0}
    assert isinstance(sc.data["links"]["sms"]["delay"]["value"], float)


def test_sweep_points_apply_each_value():
    sc = load(BASE + "sweep: {key: links.sms.loss, values: [0, 0.5]}\n")
    points = sc.sweep_points()
    assert [v for v, _ in points] == [0.0, 0.5]
    assert [d["links"]["sms"]["loss"] for _, d in points] == [0.0, 0.5]
    assert sc.data["links"]["sms"]["loss"] == 0.1  # the points are copies


def test_sweep_into_a_list_item_and_an_int_key():
    sc = load(BASE + "sweep: {key: fleet.profiles.0.weight, values: [1, 3]}\n")
    assert [d["fleet"]["profiles"][0]["weight"] for _, d in sc.sweep_points()] == [1.0, 3.0]
    e = error(BASE + "sweep: {key: fleet.size, values: [10, 2.5]}\n")
    assert e.path == "sweep.values.1" and e.expected.startswith("an integer")


def test_get_of_a_missing_key():
    with pytest.raises(ScenarioError):
        load(BASE).get("links.sms.nothing")


# -- overrides ---------------------------------------------------------------------------------

def test_parse_override_reads_yaml_values():
    assert parse_override("links.sms.loss=0.05") == ("links.sms.loss", 0.05)
    assert parse_override("fleet.size=100000") == ("fleet.size", 100000)
    assert parse_override("arrival.kind=poisson") == ("arrival.kind", "poisson")
    assert parse_override("links.sms.delay={kind: fixed, value: 2}") == ("links.sms.delay",
                                                                         {"kind": "fixed", "value": 2})
    assert parse_override("sweep=") == ("sweep", None)


@pytest.mark.parametrize("bad", ["no-equals", "=3", "a..b=1", "x={a: 1, a: 2}", "x=[1"])
def test_malformed_override(bad):
    with pytest.raises(ScenarioError) as info:
        parse_override(bad)
    assert info.value.where == "--set"


def test_overrides_are_applied():
    sc = load(BASE, ["links.sms.loss=0.05", "fleet.size=100000", "arrival.kind=poisson", "arrival.rate=50",
                     "links.ip.delay={kind: fixed, value: 2}", "fleet.profiles.0.weight=2"])
    d = sc.data
    assert d["links"]["sms"]["loss"] == 0.05 and d["fleet"]["size"] == 100000
    assert d["arrival"] == {"kind": "poisson", "rate": 50.0}
    assert d["links"]["ip"]["delay"] == {"kind": "fixed", "value": 2.0}
    assert d["fleet"]["profiles"][0]["weight"] == 2.0
    assert sc.overrides[0] == "links.sms.loss=0.05"


def test_override_order_of_kind_and_its_keys_does_not_matter():
    assert load(BASE, ["arrival.rate=5", "arrival.kind=poisson"]).data["arrival"] == {"kind": "poisson",
                                                                                      "rate": 5.0}


def test_override_sets_keys_absent_from_the_file():
    sc = load(BASE, ["links.ip.delay.mean=0.2", "server.max_sessions=7", "sweep.key=seed",
                     "sweep.values=[1, 2, 3]"])
    assert sc.data["links"]["ip"]["delay"] == {"kind": "exponential", "mean": 0.2}
    assert sc.data["server"]["max_sessions"] == 7
    assert [v for v, _ in sc.sweep_points()] == [1, 2, 3]


@pytest.mark.parametrize("override, path, words", [
    ("links.sms.loss=2", "links.sms.loss", "out of range"),
    ("links.sms.los=0.1", "links.sms.los", "did you mean 'loss'?"),
    ("links.sms.delay.median=-1", "links.sms.delay.median", "out of range"),
    ("links.sms.delay={kind: fixed}", "links.sms.delay.value", "missing required key 'value'"),
    ("arrival.kind=poisson", "arrival.rate", "missing required key 'rate'"),
    ("fleet.size.x=1", "fleet.size.x", "has no key 'x'"),
    ("fleet.profiles.3.weight=1", "fleet.profiles.3.weight", "not one of its indexes"),
    ("sweep.key=links.sms.delay", "sweep.values", "the sweep has no values"),
])
def test_override_errors_say_set(override, path, words):
    e = error(BASE, [override])
    assert (e.where, e.path) == ("--set", path)
    assert words in str(e)


def test_override_error_inside_a_file_value_keeps_the_file_line():
    e = error(BASE, ["links.sms.delay.kind=fixed"])
    assert (e.where, e.path) == ("s.yaml:7", "links.sms.delay.median")


# -- shipped scenarios and the format ----------------------------------------------------------

@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_scenario_loads(path):
    sc = load_scenario(path)
    assert sc.name == path.stem and sc.sweep_points()


def test_shipped_scenarios_say_what_the_brief_asks():
    q = load_scenario(SCENARIOS / "quickstart.yaml").data
    assert (q["fleet"]["size"], q["replicas"], q["seed"], q["duration"], q["sweep"]) == (1000, 3, 42, 1800.0, None)
    assert [p["weight"] for p in q["fleet"]["profiles"]] == [0.8, 0.2]
    assert q["arrival"] == {"kind": "poisson", "rate": 20.0} and q["server"]["max_sessions"] == 200
    assert q["links"]["sms"]["delay"] == {"kind": "lognormal", "median": 3.0, "sigma": 0.6}
    sweep = load_scenario(SCENARIOS / "sms-loss-sweep.yaml")
    assert [v for v, _ in sweep.sweep_points()] == [0.0, 0.05, 0.1, 0.2, 0.3]
    tap = load_scenario(SCENARIOS / "tamper-attack.yaml").data["links"]["sms"]["tap"]
    assert tap == {"kind": "tamper", "probability": 0.1, "match": "bootstrap"}


def test_describe_schema_lists_keys_defaults_and_named_types():
    text = describe_schema()
    assert "reorder_delay: DELAY  [default: {kind: exponential, mean: 1.0}]" in text
    assert "\nDELAY: " in text and "\nTAP: " in text and "\nPROFILE: " in text
    assert "size: an integer from 1 to 10000000  [required]" in text


# -- the generic schema ------------------------------------------------------------------------

def test_generic_types():
    s = Struct({"n": Field(Int(0, 3), 1), "x": Field(Float(0.0, min_exclusive=True), 2),
                "b": Field(Bool(), False), "s": Field(Nullable(Str(choices=("a", "b"))), None)})
    assert validate(s, {}) == {"n": 1, "x": 2.0, "b": False, "s": None}
    assert validate(s, {"n": 2.0, "s": "a"})["n"] == 2
    for bad in ({"b": 1}, {"x": 0}, {"x": float("inf")}, {"n": 4}, {"s": "c"}, {"n": 1.5}):
        with pytest.raises(ScenarioError):
            validate(s, bad)
    with pytest.raises(ScenarioError, match="1e3"):
        validate(s, {"x": "1e3"})


@pytest.mark.parametrize("tap", ["drop", "delay", "replay", "tamper"])
def test_every_acting_tap_takes_match(tap):
    """sim/links/tap.py: ``match`` restricts any acting tap to one kind of message (it used to be
    refused by the schema on all but tamper)."""
    extra = {"delay": ", extra: {kind: fixed, value: 1}", "replay": ", after: {kind: fixed, value: 1}"}.get(tap, "")
    sc = parse_scenario("fleet: {size: 1}\n", "t.yaml",
                        [f"links.ip.tap={{kind: {tap}, probability: 1.0, match: dm{extra}}}"])
    assert sc.data["links"]["ip"]["tap"]["match"] == "dm"
    with pytest.raises(ScenarioError, match="match"):
        parse_scenario("fleet: {size: 1}\n", "t.yaml", [f"links.ip.tap={{kind: {tap}, probability: 1.0, match: dmm{extra}}}"])
