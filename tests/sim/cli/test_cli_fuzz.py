"""No traceback, ever: the command line driven with random argv and random files (hypothesis).

Each property drives ``dmsim.sim.cli.main:main`` through click's CliRunner and asserts the
contract of every command: no Python exception escapes (``result.exception`` is None or a
SystemExit), the exit status is 0, 1 (a failed check, a run stopped by an error) or 2 (bad
input), and a failure says what was wrong in one line, with no "Traceback".

Choices: the examples are derandomized (the same ones each run, so a failure reproduces and the
suite never flakes on a new find) and bounded to about 200 in all, with no deadline (a ``run``
builds a replica); widen ``max_examples`` locally to hunt. ``run`` always gets a tiny fleet and
duration, no sweep and only virtual components (the last ``--set`` wins), so an example that is
valid runs in a fraction of a second and never opens a socket or a reader. The calc and decode
options are read from the commands themselves, so a new option is fuzzed without a change here.
"""
from __future__ import annotations

import json
import re
import string
import tempfile
from pathlib import Path

import click
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dmsim.base.schema import REQUIRED, Bool, Float, Int, List, Nullable, Str, Struct, Tagged, Tuple, Type
from dmsim.sim.cli.main import main
from dmsim.sim.scenario.format import SCENARIO_SCHEMA

VECTORS = Path(__file__).resolve().parents[2] / "vectors"

FUZZ = settings(max_examples=50, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# -- the contract -------------------------------------------------------------------------------

_USAGE = ("Usage:", "Try '")


def check_clean(result, argv) -> None:
    """Assert the no-traceback contract of one invocation."""
    shown = f"argv={argv!r}\nstdout={result.stdout!r}\nstderr={result.stderr!r}"
    exc = result.exception
    assert exc is None or isinstance(exc, SystemExit), f"{type(exc).__name__}: {exc}\n{shown}"
    assert result.exit_code in (0, 1, 2), shown
    assert "Traceback" not in result.output, shown
    # one message per error: click's own messages continue on indented lines ("Choose from:\n\tnetwpin,");
    # warnings about the scenario (a fleet that cannot fit, a non-conformant deployment) are not errors
    errors = [line for line in result.stderr.splitlines()
              if line.strip() and not line.startswith(_USAGE) and not line[0].isspace()
              and not line.lower().startswith("warning:") and ": warning: " not in line]
    if result.exit_code == 2:
        assert len(errors) == 1, f"not one error line\n{shown}"
    elif result.exit_code == 1:
        assert len(errors) <= 1, f"more than one error line\n{shown}"


def invoke(argv: list[str], stdin: str | None = None):
    result = CliRunner().invoke(main, argv, input=stdin)
    check_clean(result, argv)
    return result


# -- random scenario files ------------------------------------------------------------------------

_KEYS = ["name", "seed", "replicas", "duration", "fleet", "size", "profiles", "arrival", "kind", "rate", "links",
         "sms", "ip", "delay", "loss", "median", "sigma", "quantiles", "tap", "server", "client", "smsc",
         "submit_rate", "burst", "retry", "initial", "factor", "max_attempts", "availability", "mean_up",
         "alert_sc", "ota", "por", "timeout", "dm_auth", "weight", "on", "<<", "x"]
_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**30, 10**30), st.floats(allow_nan=True),
                     st.sampled_from(["poisson", "lognormal", "fixed", "md5", "1e3", "~", ".inf", "0x1F", "yes",
                                      "2001-12-14", "B00010", "", "-"]),
                     st.text(max_size=12))
_VALUES = st.recursive(_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(_KEYS), inner, max_size=4)), max_leaves=12)


def from_schema(t: Type) -> st.SearchStrategy:
    """Return a strategy for values of schema type ``t``: mostly valid ones (so that a run gets
    past the checks), now and then (1 in 64 at each key) any YAML value in their place."""
    valid = _valid(t)
    return st.integers(0, 63).flatmap(lambda n: _SCALARS if n == 0 else valid)


def _valid(t: Type) -> st.SearchStrategy:
    if isinstance(t, Nullable):
        return st.one_of(st.none(), from_schema(t.inner))
    if isinstance(t, Int):
        return st.integers(t.min if t.min is not None else -10, t.max if t.max is not None else 10**6)
    if isinstance(t, Float):
        return st.floats(t.min if t.min is not None else -1e6, t.max if t.max is not None else 1e6,
                         exclude_min=t.min_exclusive, allow_nan=False)
    if isinstance(t, Str):
        if t.choices:
            return st.sampled_from(t.choices)
        return st.from_regex(t.pattern) if t.pattern else st.text(min_size=1, max_size=8)
    if isinstance(t, Bool):
        return st.booleans()
    if isinstance(t, List):
        return st.lists(from_schema(t.item), min_size=t.min_len, max_size=max(t.min_len, 3))
    if isinstance(t, Tuple):
        return st.tuples(*(from_schema(i) for i in t.items)).map(list)
    if isinstance(t, Struct):
        values = {k: st.deferred(lambda f=f: from_schema(f.type)) for k, f in t.fields.items()}
        required = {k for k, f in t.fields.items() if f.default is REQUIRED}
        return st.fixed_dictionaries({k: v for k, v in values.items() if k in required},
                                     optional={k: v for k, v in values.items() if k not in required})
    if isinstance(t, Tagged):
        return st.one_of(*(_valid(v).map(lambda d, k=k: {t.tag: k, **d}) for k, v in t.variants.items()))
    return _SCALARS


_SCENARIOS = st.builds(lambda fleet, rest: {**({"fleet": fleet} if fleet is not None else {}), **rest},
                       st.one_of(st.none(), st.fixed_dictionaries({"size": st.integers(-1, 3)}), _VALUES),
                       st.dictionaries(st.sampled_from(_KEYS), _VALUES, max_size=5))
_YAMLISH = st.text(alphabet="[]{}:,-&*!|>'\"#%@`?\n\t  abcxyz019.~<", max_size=120)
FILES = st.one_of(
    from_schema(SCENARIO_SCHEMA).map(lambda d: yaml.safe_dump(d, allow_unicode=True).encode()),
    _SCENARIOS.map(lambda d: yaml.safe_dump(d, allow_unicode=True).encode()),
    _YAMLISH.map(str.encode),
    st.binary(max_size=120),
    st.integers(60, 200).map(lambda n: ("fleet: {size: 2}\nx: " + "[" * n + "]" * n + "\n").encode()),
)
_OVERRIDE_KEYS = st.one_of(st.sampled_from(["fleet.size", "smsc", "smsc.submit_rate", "smsc.retry.initial",
                                            "links.sms.loss", "arrival", "arrival.rate", "seed", "ota.por",
                                            "links.sms.delay.median", "nope", "", ".", "fleet..size"]),
                           st.text(alphabet=string.ascii_lowercase + "._0", max_size=15))
OVERRIDES = st.lists(st.builds(lambda k, v: f"{k}={v}", _OVERRIDE_KEYS, st.one_of(
    st.sampled_from(["5", "true", "{}", "[", "{submit_rate: 0}", "-1", "0.5", "poisson", ""]), _YAMLISH)),
    max_size=3)


def _write(folder: str, content: bytes) -> str:
    path = Path(folder) / "s.yaml"
    path.write_bytes(content)
    return str(path)


@FUZZ
@given(content=FILES, overrides=OVERRIDES)
def test_scenario_check_never_tracebacks(content, overrides):
    with tempfile.TemporaryDirectory() as folder:
        argv = ["scenario", "check", _write(folder, content)] + [a for o in overrides for a in ("--set", o)]
        invoke(argv)


_TINY = ["--set", "sweep=", "--set", "replicas=1", "--set", "components={}", "--set", "fleet={size: 2}", "--set", "duration=5",
         "--set", "arrival={kind: all_at_once}"]


@settings(FUZZ, max_examples=25)
@given(content=FILES, overrides=OVERRIDES, seed=st.one_of(st.none(), st.integers(-3, 2**70)),
       replicas=st.one_of(st.none(), st.integers(-1, 2)))
def test_run_never_tracebacks(content, overrides, seed, replicas):
    with tempfile.TemporaryDirectory() as folder:
        argv = ["run", _write(folder, content), "--out", str(Path(folder) / "out"), "--no-plots", "-q"]
        argv += [a for o in overrides for a in ("--set", o)] + _TINY
        argv += [] if seed is None else ["--seed", str(seed)]
        argv += [] if replicas is None else ["--replicas", str(replicas)]
        invoke(argv)


# -- random calc and decode argv ------------------------------------------------------------------

_HEX_RE = re.compile(r"\A(?:[0-9a-fA-F]{2}){2,}\Z")


def _vector_hex() -> list[str]:
    """Return every hex string of tests/vectors/*.json: real PDUs, packets and keys to mutate, so
    that decoders get past their first byte."""
    found: set[str] = set()

    def walk(value) -> None:
        if isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)
        elif isinstance(value, str) and _HEX_RE.match(value):
            found.add(value.lower())

    for path in sorted(VECTORS.glob("*.json")):
        walk(json.loads(path.read_text()))
    return sorted(found)


_CORPUS = _vector_hex()


@st.composite
def _mutated_hex(draw) -> str:
    """Return a vector's hex cut, with a byte changed, or with bytes added."""
    data = bytearray.fromhex(draw(st.sampled_from(_CORPUS)))
    how = draw(st.sampled_from(["as is", "cut", "flip", "append", "udh"]))
    if how == "cut":
        data = data[:draw(st.integers(0, len(data)))]
    elif how == "flip" and data:
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    elif how == "append":
        data += draw(st.binary(min_size=1, max_size=8))
    elif how == "udh":
        data = bytearray(draw(st.sampled_from([b"\x02\x70\x00", b"\x02\x71\x00"]))) + data
    return data.hex()


_HEX = st.one_of(st.binary(max_size=48).map(bytes.hex), _mutated_hex())
_TEXT = st.one_of(st.text(max_size=20), st.sampled_from(["-", "", "0", "-1", "zz", "0x12", "ff", "1234", "a" * 300]))
_ARG = st.one_of(_HEX, _TEXT, st.integers(-5, 2**70).map(str), st.binary(min_size=16, max_size=16).map(bytes.hex))


def _value(draw, p: click.Option) -> str:
    """Return a value for option ``p``: mostly of its type (a choice, an integer), else anything."""
    if isinstance(p.type, click.Choice) and draw(st.integers(0, 3)):
        return draw(st.sampled_from(list(p.type.choices)))
    if isinstance(p.type, click.types.IntParamType) and draw(st.integers(0, 3)):
        return str(draw(st.integers(-2, 2**64)))
    return draw(_ARG)


@st.composite
def toolbox_argv(draw, group: str):
    """Return (argv, stdin): ``group`` SUBCOMMAND, most of its options (so that the required ones
    are there and the command gets past click), random values."""
    names = sorted(main.commands[group].commands)
    name = draw(st.sampled_from(names))
    argv = [group, name]
    for p in main.commands[group].commands[name].params:
        if isinstance(p, click.Argument):
            argv.append(draw(st.one_of(_HEX, _TEXT)))
        elif p.is_flag:
            argv += [p.opts[0]] if draw(st.booleans()) else []
        elif draw(st.integers(0, 5)):
            argv += [p.opts[0], _value(draw, p)]
    if draw(st.integers(0, 9)) == 0:
        argv.append(draw(st.sampled_from(["--bogus", "extra", "--json"])))
    stdin = draw(st.one_of(_HEX, st.text(max_size=30))) if "-" in argv else None
    return argv, stdin


@FUZZ
@given(case=toolbox_argv("calc"))
def test_calc_never_tracebacks(case):
    invoke(*case)


@FUZZ
@given(case=toolbox_argv("decode"))
def test_decode_never_tracebacks(case):
    invoke(*case)


# -- what the fuzzing found, pinned ---------------------------------------------------------------

def _check_text(tmp_path, text: str, *extra: str):
    path = tmp_path / "s.yaml"
    path.write_text(text)
    return invoke(["scenario", "check", str(path), *extra])


def test_a_scalar_smsc_block_is_an_error_at_its_line(tmp_path):
    for value in ("5", "true"):
        res = _check_text(tmp_path, f"fleet: {{size: 2}}\nsmsc: {value}\n")
        assert res.exit_code == 2 and "s.yaml:2: smsc: expected a mapping" in res.stderr
    res = _check_text(tmp_path, "fleet: {size: 2}\n", "--set", "smsc=5")
    assert res.exit_code == 2 and "--set: smsc: expected a mapping" in res.stderr


def test_deep_nesting_is_refused_at_its_line(tmp_path):
    res = _check_text(tmp_path, "fleet: {size: 2}\nx: " + "[" * 5000 + "]" * 5000 + "\n")
    assert res.exit_code == 2 and "s.yaml:2:" in res.stderr and "nested more than 64 deep" in res.stderr


def test_seed_and_replicas_errors_name_their_flag(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("fleet: {size: 2}\n")
    for flag, value in (("--replicas", "0"), ("--seed", "-1")):
        res = invoke(["run", str(path), "--out", str(tmp_path / "out"), flag, value])
        assert res.exit_code == 2 and res.stderr.count("\n") <= 3
        assert f"{flag}: {flag[2:]}: {value} is out of range" in res.stderr and "--set" not in res.stderr


def test_an_error_quoting_a_line_break_stays_on_one_line(tmp_path):
    res = _check_text(tmp_path, "fleet: {size: 2}\n", "--set", "x\x1b[31m\ny")
    assert res.exit_code == 2 and res.stderr.count("\n") == 1 and "\\n" in res.stderr and "\x1b" not in res.stderr


def test_a_typed_error_from_deep_inside_a_command_exits_2_on_one_line():
    """The root group turns a DmsimError that no command handled into exit 2 on one line."""
    from dmsim.base.errors import ProtocolError
    from dmsim.sim.cli.main import _Dmsim

    def boom():
        raise ProtocolError("SPI has 0 octets,\nexpected 2")

    group = _Dmsim(commands={"boom": click.Command("boom", callback=boom)})
    res = CliRunner().invoke(group, ["boom"])
    assert res.exit_code == 2 and res.stderr == "Error: SPI has 0 octets,\\nexpected 2\n"


def test_a_run_folder_that_cannot_be_made_is_one_line_not_a_traceback(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("fleet: {size: 2, profiles: [{name: p, dm_auth: hmac}]}\nduration: 5\n")  # conformant: no warning
    (tmp_path / "ro").write_text("a file, so no folder can be made under it")
    res = invoke(["run", str(path), "--out", str(tmp_path / "ro" / "out"), "--no-plots", "-q"])
    assert res.exit_code == 1 and res.stderr.startswith("run stopped: cannot write") and res.stderr.count("\n") == 1
