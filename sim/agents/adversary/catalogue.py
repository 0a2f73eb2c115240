"""The attack catalogue: every attack dmsim can rehearse, what the seeds say of it, and what a
real attacker needs to mount it.

No spec clause for the framework (issue 16); each attack's docstring cites what it tests. An
attack is a subclass of :class:`Attack` registered with :func:`register` under its ``kind``; a
scenario names it in its ``attacks:`` list (``sim/scenario/format.py``)::

    attacks:
      - kind: forge-networkid-bootstrap   # a catalogue kind, or "package.module:Class" (a user's own)
        on: sms_air                        # where the adversary sits (default: the attack's first position)
        at: 0                              # simulated second from which it acts
        targets: {fraction: 0.5}           # or {devices: [0, 3]}: which devices it goes after
        params: {server_id: evil}          # the attack's own knobs (checked against its ``params``)

Positions (:data:`POSITIONS`): ``sms_air`` (the radio leg to the devices: a false base station
that sees, drops, changes and injects SMS-DELIVERs), ``smsc`` (an ESME of the SMSC: submits with
any originating address), ``ip`` (the IP path to the DM server: sees the HTTP or TLS bytes,
injects requests, or sits in the middle of a TCP/TLS connection with keys of its own), ``bsf``
(the Ub and Zpn paths of GBA), ``card`` (between the ME and its UICC: every APDU).

Life of an attack in a replica: built at the replica's start (``__init__``), :meth:`Attack.install`
once every agent and transport exists (taps on links, SimPy processes, wrappers), then it acts
from ``at`` on; at the end :meth:`Attack.judge` reads the state it left (devices' records,
servers' counters) and returns the :class:`~dmsim.sim.agents.adversary.outcome.Outcome`.
:meth:`Attack.device_verdict` says what became of each targeted device, for sessions.csv.

Writing one's own attack (a user's module, named ``module:Class`` in ``kind``) is subclassing
:class:`Attack`: set ``kind``, ``positions``, ``entry`` and ``params``, and write ``install`` and
``judge`` (README, "Writing an attack"). A user's module is Python the scenario's author chose to
run, like a pytest conftest: it is imported, not sandboxed.
"""
from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from dmsim.base.errors import ScenarioError
from dmsim.sim.agents.adversary.outcome import BLOCKED, DETECTED, INCONCLUSIVE, SUCCEEDED, Outcome

if TYPE_CHECKING:  # pragma: no cover
    from dmsim.sim.agents.adversary.agent import Adversary

POSITIONS = ("sms_air", "smsc", "ip", "bsf", "card")
FAMILIES = ("replay", "nonce", "mitm", "forgery", "guessing", "flooding")


@dataclass(frozen=True)
class Entry:
    """An attack as the catalogue writes it down."""

    family: str       # one of FAMILIES
    title: str        # one line
    seeds_say: str    # what the seeds (and the specs they lean on) say should happen, with the clause
    knowledge: str    # what the attacker must know
    position: str     # where it must be
    time: str         # how long it takes, or when it must act
    expected: str = ""  # the verdict the seeds lead one to expect, per profile, in words


class Attack:
    """Base of every attack; see the module doc. Subclasses set the class attributes."""

    kind: ClassVar[str] = ""
    protocol: ClassVar[str] = "dm"  # the device kind it attacks: "dm" (OMA DM) or "lwm2m"
    positions: ClassVar[tuple[str, ...]] = ()
    entry: ClassVar[Entry]
    params: ClassVar[dict[str, Any]] = {}  # accepted params and their defaults
    choices: ClassVar[dict[str, tuple]] = {}  # params that take one of a few values
    positive: ClassVar[tuple[str, ...]] = ()  # numeric params that must be > 0
    non_negative: ClassVar[tuple[str, ...]] = ()  # numeric params that must be >= 0
    # for ``dmsim attack matrix`` (sim/cli/attack_matrix.py): the scenario keys a cell needs (an
    # smsc block, a session trigger), the attack entry's other keys there (at, targets, params),
    # and knockouts that restore a defect dmsim once had, each run as a row of its own
    needs: ClassVar[dict[str, Any]] = {}
    matrix: ClassVar[dict[str, Any]] = {}
    before_knockouts: ClassVar[tuple[str, ...]] = ()

    def __init__(self, adversary: "Adversary", spec: dict, number: int):
        self.adversary = adversary
        self.replica = adversary.replica
        self.env = adversary.replica.env
        self.number = number
        self.on = spec.get("on") or self.positions[0]
        self.at = float(spec.get("at", 0.0))
        self.spec = spec
        self.p = {**self.params, **(spec.get("params") or {})}
        targets = spec.get("targets") or {}
        self.fraction = float(targets.get("fraction", 1.0))
        self.devices = None if targets.get("devices") is None else frozenset(targets["devices"])
        self.rng = adversary.replica.stream("adversary", number, self.kind)
        self.acted: dict[int, float] = {}  # device index (or -1: no device) -> first act
        self.decided: float | None = None
        self.attempts = 0
        self.outcomes: dict[int, str] = {}  # device index -> its verdict (sessions.csv)

    # -- scenario-time checks -----------------------------------------------------------------
    @classmethod
    def check(cls, data: dict, spec: dict) -> str | None:
        """Return why this attack cannot run in the validated scenario ``data`` (None: it can)."""
        return None

    # -- targeting ----------------------------------------------------------------------------
    def targets(self, index: int) -> bool:
        """Return whether device ``index`` is one this attack goes after (a draw of its own per
        device, the same in every run of the seed)."""
        if self.devices is not None:
            return index in self.devices
        if self.fraction >= 1.0:
            return True
        from dmsim.base.rng import substream
        return substream(self.replica.seed, "adversary", self.number, "target", index).random() < self.fraction

    def active(self) -> bool:
        """Return whether the attack acts now (from ``at`` on)."""
        return self.env.now >= self.at

    def act(self, index: int = -1, what: str = "") -> None:
        """Record that the attack acted (on device ``index``; -1: on no device in particular)."""
        self.attempts += 1
        self.acted.setdefault(index, self.env.now)
        self.adversary.traced(index, self.kind, what or "acted")

    def decide(self, index: int | None = None, verdict: str | None = None) -> None:
        """Record the moment the outcome was decided (the first call wins), and a device's verdict."""
        if self.decided is None:
            self.decided = self.env.now
        if index is not None and verdict is not None and index >= 0:
            self.outcomes[index] = _worst(self.outcomes.get(index), verdict)

    # -- the attack's work --------------------------------------------------------------------
    def install(self) -> None:
        """Set the attack up in the replica (every agent and transport exists now)."""
        raise NotImplementedError

    def judge(self) -> Outcome:
        """Return the attack's outcome from the state the replica ended in."""
        raise NotImplementedError

    def finished(self, dev, ok: bool, reason: str) -> None:
        """Device ``dev``'s life ended (``ok``, or failed with ``reason``), just before its record is
        written: an attack that judges devices by how they ended decides them here."""

    def device_verdict(self, dev) -> str:
        """Return what became of targeted device ``dev`` ("" when the attack never touched it);
        called as its record is written, with its failure reason in ``self.adversary.reason``."""
        return self.outcomes.get(dev.ident.index, "")

    # -- helpers for judge --------------------------------------------------------------------
    def outcome(self, verdict: str, mechanism: str, *, state_corrupted: bool = False, **evidence) -> Outcome:
        """Return this attack's Outcome (``time_to_outcome`` from its first act to its decision)."""
        first = min(self.acted.values()) if self.acted else None
        if first is None and verdict != INCONCLUSIVE:
            verdict, mechanism = INCONCLUSIVE, f"the attack never acted ({mechanism})"
        end = self.decided if self.decided is not None else self.env.now
        elapsed = None if first is None else max(0.0, end - first)
        return Outcome(self.kind, self.on, verdict, mechanism, elapsed, self.attempts, state_corrupted,
                       {k: v for k, v in evidence.items() if v is not None})


_ORDER = {SUCCEEDED: 3, DETECTED: 2, BLOCKED: 1, INCONCLUSIVE: 0, None: -1, "": -1}


def _worst(a: str | None, b: str) -> str:
    """Return the verdict of the two that is worst for the defender."""
    return a if _ORDER.get(a, -1) >= _ORDER.get(b, -1) else b


ATTACKS: dict[str, type[Attack]] = {}


def register(cls: type[Attack]) -> type[Attack]:
    """Class decorator: add ``cls`` to the catalogue under its ``kind``."""
    if not cls.kind or cls.kind in ATTACKS:
        raise ValueError(f"attack kind {cls.kind!r} is empty or registered twice")
    if not cls.positions or any(p not in POSITIONS for p in cls.positions):
        raise ValueError(f"attack {cls.kind!r}: positions {cls.positions!r} not all in {POSITIONS}")
    if cls.entry.family not in FAMILIES:
        raise ValueError(f"attack {cls.kind!r}: family {cls.entry.family!r} not in {FAMILIES}")
    ATTACKS[cls.kind] = cls
    return cls


def resolve(kind: str, path: str = "attacks.kind") -> type[Attack]:
    """Return the attack class ``kind`` names: a catalogue kind, or ``module:Class`` (a module on
    the path, or a file ``path/to/file.py:Class`` relative to the working folder, imported);
    ScenarioError naming ``path`` otherwise."""
    load_catalogue()
    if kind in ATTACKS:
        return ATTACKS[kind]
    module, sep, name = kind.partition(":")
    if not sep:
        raise ScenarioError(f"unknown attack kind {kind!r}", path=path,
                            expected="a catalogue kind (dmsim attack list) or module:Class")
    try:
        cls = getattr(_import(module), name)
    except Exception as exc:  # a user module may raise anything on import: it is their scenario's error
        raise ScenarioError(f"cannot load attack {kind!r}: {exc}", path=path,
                            expected="module:Class (on PYTHONPATH) or file.py:Class") from None
    if not (isinstance(cls, type) and issubclass(cls, Attack)) or not cls.positions:
        raise ScenarioError(f"{kind!r} is not an Attack subclass with positions", path=path,
                            expected="a subclass of dmsim.sim.agents.adversary.catalogue.Attack")
    return cls


def _import(module: str):
    """Import ``module``: a dotted name on the path, or a ``.py`` file (relative to the working
    folder), loaded once under a name derived from its path."""
    if not module.endswith(".py"):
        return importlib.import_module(module)
    import importlib.util
    import sys
    from pathlib import Path
    path = Path(module).resolve()
    name = "dmsim_user_attack_" + "".join(c if c.isalnum() else "_" for c in str(path))
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{module}: not a Python file")
    loaded = importlib.util.module_from_spec(spec)
    sys.modules[name] = loaded
    try:
        spec.loader.exec_module(loaded)
    except BaseException:
        del sys.modules[name]
        raise
    return loaded


def check_spec(spec: dict, data: dict, path: str) -> None:
    """Check one ``attacks`` entry against its attack class and the scenario; ScenarioError naming
    the offending key."""
    cls = resolve(spec["kind"], f"{path}.kind")
    devices = {p.get("device", "dm") for p in data["fleet"]["profiles"]}
    if cls.protocol not in devices:
        raise ScenarioError(f"{cls.kind} attacks {cls.protocol} devices and this fleet has none",
                            path=f"{path}.kind", expected="a fleet profile with device: " + cls.protocol)
    on = spec.get("on") or cls.positions[0]
    if on not in cls.positions:
        raise ScenarioError(f"{cls.kind} cannot sit on {on!r}", path=f"{path}.on",
                            expected="one of " + ", ".join(cls.positions))
    params = spec.get("params") or {}
    unknown = sorted(set(params) - set(cls.params))
    if unknown:
        raise ScenarioError(f"unknown param {unknown[0]!r} of {cls.kind}", path=f"{path}.params.{unknown[0]}",
                            expected="one of " + (", ".join(sorted(cls.params)) or "(none)"))
    for key, default in cls.params.items():
        if key in params and isinstance(default, (int, float)) and not isinstance(default, bool):
            value = params[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ScenarioError(f"got {value!r}", path=f"{path}.params.{key}", expected="a number")
    merged = {**cls.params, **params}
    for key, allowed in cls.choices.items():
        if merged[key] not in allowed:
            raise ScenarioError(f"got {merged[key]!r}", path=f"{path}.params.{key}",
                                expected="one of " + ", ".join(map(str, allowed)))
    for keys, ok, what in ((cls.positive, lambda v: v > 0, "a number > 0"),
                           (cls.non_negative, lambda v: v >= 0, "a number >= 0")):
        for key in keys:
            if not ok(merged[key]):
                raise ScenarioError(f"got {merged[key]!r}", path=f"{path}.params.{key}", expected=what)
    problem = cls.check(data, {**spec, "on": on})
    if problem:
        raise ScenarioError(problem, path=path, expected=f"a scenario {cls.kind} can run in")


def load_catalogue() -> None:
    """Import the modules that register the built-in attacks (once)."""
    from dmsim.sim.agents.adversary import attacks  # noqa: F401  (registers on import)
