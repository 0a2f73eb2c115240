"""``dmsim attack matrix``: the catalogue run against each security profile, and what held.

No spec clause (issue 16). A *cell* is one run of one attack against one security profile: a
small scenario (:data:`BASE`, the profile's keys of :data:`PROFILES`, the keys the attack
``needs``) with one ``attacks`` entry, run by the ordinary runner into its own folder
``cells/<profile>/<attack>/`` (sessions.csv, summary.json, scenario.yaml: the cell can be run
again with ``dmsim run``). A *baseline* cell per profile runs the same scenario without an
attack; an attack cell's side effect is its success rate beside the baseline's (``success``:
every device; ``legit_success``: those no attack acted on). A cell whose scenario the attack
cannot run in (``Attack.check``: a GPI replay
without GBA) is ``n/a`` with the reason; a cell that raised is ``error`` with its message: the
matrix itself never stops on a cell.

Attacks that name ``before_knockouts`` (a knockout of ``knockouts.py`` that restores a defect
dmsim once had, e.g. the nonce a stranger could rotate) get a second row, ``<kind> [without
<knockout>]``, run with that knockout applied inside the cell's process: the same attack before
and after the fix.

Cells run in parallel on every core (``--jobs``, default ``os.cpu_count()``), each in a process
of its own (knockouts patch modules). The outputs (``sim/results/attack_report.py``):
``matrix.csv``, ``matrix.md``, ``report.html`` with the heat map ``matrix.png``, and
``catalogue.md``; each cell links to its folder.
"""
from __future__ import annotations

import copy
import json
import os
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from dmsim.base.errors import ScenarioError
from dmsim.sim.agents.adversary.catalogue import ATTACKS, load_catalogue

BASE: dict[str, Any] = {
    "seed": 1,
    "duration": 1200,
    "fleet": {"size": 6, "profiles": [{"name": "p"}]},
    "arrival": {"kind": "poisson", "rate": 0.1},
    "links": {"sms": {"delay": {"kind": "lognormal", "median": 2.0, "sigma": 0.3}}},
    "server": {"bootstrap_timeout": 60},
}
"""Each cell's scenario before the profile and the attack: six devices arriving over about a
minute (so an attack acting from a given time meets devices before and after it)."""

def _lwm2m(**keys) -> dict[str, Any]:
    """Return the scenario keys of an LwM2M profile (seed 004): one registration update after a
    minute's sleep, the rest as ``keys`` say."""
    return {"fleet": {"profiles": [{"name": "p", "device": "lwm2m",
                                    "lwm2m": {"updates": 1, "sleep": 60, **keys}}]}}


PROFILES: dict[str, dict[str, Any]] = {
    "networkid": {"fleet": {"profiles": [{"name": "p", "bootstrap_security": "NETWORKID", "dm_auth": "md5"}]}},
    "userpin": {"fleet": {"profiles": [{"name": "p", "bootstrap_security": "USERPIN", "user_pin_digits": 6,
                                        "dm_auth": "md5"}]}},
    "auth-basic": {"fleet": {"profiles": [{"name": "p", "dm_auth": "basic"}]}},
    "auth-sha256": {"fleet": {"profiles": [{"name": "p", "dm_auth": "sha256"}]}},
    "hmac": {"fleet": {"profiles": [{"name": "p", "dm_auth": "hmac"}]}},
    "tls-psk": {"components": {"dm_server": {"kind": "virtual", "tls": {"mode": "psk"}}}},
    "x509": {"components": {"dm_server": {"kind": "virtual", "tls": {"mode": "x509", "client_cert": False}}}},
    "x509-mutual": {"components": {"dm_server": {"kind": "virtual", "tls": {"mode": "x509"}}}},
    "smartcard": {"fleet": {"profiles": [{"name": "p", "bootstrap_via": "smartcard"}]}},
    "gba": {"fleet": {"profiles": [{"name": "p", "bootstrap_via": "gba_push"}]}, "gba": {}},
    "lwm2m-psk": _lwm2m(bootstrap="psk", security_mode="psk", binding="U"),
    "lwm2m-low-entropy": _lwm2m(bootstrap="low_entropy_psk", pin_digits=4, security_mode="psk", binding="U"),
    "lwm2m-sms-aes": {**_lwm2m(bootstrap="psk", binding="S", sms_cipher="aes"), "smsc": {}},
    "lwm2m-sms-3des": {**_lwm2m(bootstrap="certificate", binding="S", sms_cipher="3des"), "smsc": {}},
    "lwm2m-sms-uicc": {**_lwm2m(bootstrap="rpk", binding="S", sms_termination="uicc"), "smsc": {}},
}
"""The security profiles, as scenario keys over :data:`BASE`. ``networkid`` is the NETWORKID
bootstrap with syncml:auth-md5 over plain HTTP (so it is also the auth-md5 column); the others
change one thing from it. ``userpin`` uses 6-digit PINs so that the offline search of a cell
takes seconds (the bench ``bench/offline_guessing.py`` measures 4, 6 and 8 digits). The ``lwm2m-*``
profiles are LwM2M fleets (seed 004): DTLS with a high-entropy PSK (``lwm2m-psk``) or a 4-digit PIN
bootstrap (``lwm2m-low-entropy``: the offline search of a cell stays under a second), and the SMS
binding with AES on the device, 3DES (certificate bootstrap) and AES on the UICC (RPK bootstrap).
An attack runs only on the profiles of its protocol (:func:`protocol_mismatch`)."""

NA, ERROR = "n/a", "error"


def protocol_mismatch(profile: str, attack: str) -> str | None:
    """Return why ``attack`` has no cell in ``profile`` (its ``protocol``, "dm" unless it says
    "lwm2m", is not the profile's devices'), or None."""
    devices = {p.get("device", "dm") for p in deep_merge(BASE, PROFILES[profile])["fleet"]["profiles"]}
    wanted = ATTACKS[attack].protocol
    if wanted not in devices:
        return (f"{attack} attacks {'OMA DM' if wanted == 'dm' else 'LwM2M'} devices; profile {profile}'s are "
                + ", ".join(sorted(devices)))
    return None


@dataclass
class Cell:
    """One cell's result (a row of matrix.csv)."""

    profile: str
    attack: str
    knockout: str
    verdict: str
    mechanism: str
    time_to_outcome: float | None
    state_corrupted: bool | None
    success: float | None           # every device of the cell
    legit_success: float | None     # the devices no attack acted on (None: every device was attacked)
    baseline_success: float | None  # every device of the profile's baseline cell
    attacked_devices: int | None
    run_dir: str
    wall: float

    @property
    def row(self) -> str:
        """The matrix row this cell is in: the attack, or ``attack [without knockout]``."""
        return f"{self.attack} [without {self.knockout}]" if self.knockout else self.attack


def deep_merge(base: dict, over: dict) -> dict:
    """Return ``base`` with ``over`` merged in (mappings merged key by key; lists of profiles
    item by item; anything else replaced)."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        elif (isinstance(value, list) and isinstance(out.get(key), list) and value and out[key]
              and all(isinstance(v, dict) for v in value + out[key])):
            out[key] = [deep_merge(a, b) for a, b in zip(out[key], value)] + value[len(out[key]):]
        else:
            out[key] = copy.deepcopy(value)
    return out


def cell_scenario(profile: str, attack: str | None) -> dict:
    """Return the scenario data of a cell (``attack`` None: the profile's baseline)."""
    data = deep_merge(BASE, PROFILES[profile])
    data["name"] = f"{profile}-{attack or 'baseline'}"
    if attack is not None:
        cls = ATTACKS[attack]
        data = deep_merge(data, cls.needs)
        data["attacks"] = [{"kind": attack, **copy.deepcopy(cls.matrix)}]
    return data


def plan(profiles: list[str], attacks: list[str]) -> list[tuple[str, str | None, str]]:
    """Return the cells to run as (profile, attack or None for the baseline, knockout or "")."""
    cells: list[tuple[str, str | None, str]] = [(p, None, "") for p in profiles]
    for attack in attacks:
        for knockout in ("",) + tuple(ATTACKS[attack].before_knockouts):
            cells += [(p, attack, knockout) for p in profiles]
    return cells


def run_cell(out: str, profile: str, attack: str | None, knockout: str) -> dict:
    """Run one cell into ``out/cells/...`` (in a worker process); return its result as data."""
    from dmsim.sim.results.runner import run_scenario
    from dmsim.sim.scenario.format import parse_scenario
    load_catalogue()
    folder = Path(out) / "cells" / profile / ((attack or "baseline") + (f"--without-{knockout}" if knockout else ""))
    started = time.perf_counter()
    result: dict[str, Any] = {"profile": profile, "attack": attack or "", "knockout": knockout,
                              "run_dir": str(folder.relative_to(out))}
    try:
        data = cell_scenario(profile, attack)
        text = yaml.safe_dump(data, sort_keys=False)
        mismatch = attack is not None and protocol_mismatch(profile, attack)
        if mismatch:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "scenario.yaml").write_text(text, encoding="utf-8")
            result.update(verdict=NA, mechanism=mismatch)
            return result
        try:
            scenario = parse_scenario(text, str(folder / "scenario.yaml"))
        except ScenarioError as exc:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "scenario.yaml").write_text(text, encoding="utf-8")
            result.update(verdict=NA, mechanism=exc.detail)
            return result
        with _knocked_out(knockout):
            run = run_scenario(scenario, folder, plots=False)
        summary = run.summary
        block = summary.get("attacks") or {}
        outcome = (block.get("outcomes") or [{}])[0]
        legit = (block.get("side_effects") or {}).get("legitimate") or {}
        result.update(verdict=outcome.get("verdict", "baseline" if attack is None else ERROR),
                      mechanism=outcome.get("mechanism", ""), time_to_outcome=outcome.get("time_to_outcome"),
                      state_corrupted=outcome.get("state_corrupted"),
                      success=summary.get("success_rate"), legit_success=legit.get("success_rate"),
                      attacked_devices=((block.get("side_effects") or {}).get("attacked") or {}).get("devices"))
    except Exception as exc:  # a cell never stops the matrix: it is an error cell
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "error.txt").write_text(traceback.format_exc(), encoding="utf-8")
        result.update(verdict=ERROR, mechanism=f"{type(exc).__name__}: {exc}"[:300])
    finally:
        result["wall"] = round(time.perf_counter() - started, 3)
    return result


class _knocked_out:
    """Apply a knockout (``knockouts.py``) for the duration of a ``with`` block ("" : none),
    without pytest: a small stand-in for ``pytest.MonkeyPatch``."""

    def __init__(self, knockout_id: str):
        self.knockout_id = knockout_id
        self.saved: list[tuple[Any, str, Any]] = []

    def setattr(self, owner, name, value) -> None:
        self.saved.append((owner, name, owner.__dict__.get(name, getattr(owner, name))))
        setattr(owner, name, value)

    def __enter__(self):
        if self.knockout_id:
            from dmsim.sim.cli.knockouts import KNOCKOUTS, apply
            apply(KNOCKOUTS[self.knockout_id], self)
        return self

    def __exit__(self, *exc) -> None:
        for owner, name, value in reversed(self.saved):
            setattr(owner, name, value)


def run_matrix(out: Path, profiles: list[str], attacks: list[str], jobs: int | None = None,
               echo=print) -> list[Cell]:
    """Run every cell into ``out`` on ``jobs`` processes; return the cells (baselines' success
    rates filled into their profile's cells)."""
    out.mkdir(parents=True, exist_ok=True)
    todo = plan(profiles, attacks)
    jobs = max(1, jobs or os.cpu_count() or 1)
    results: list[dict] = []
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(run_cell, str(out), p, a, k) for p, a, k in todo]
        for n, future in enumerate(futures, 1):
            results.append(future.result())
            r = results[-1]
            echo(f"[{n}/{len(todo)}] {r['profile']} / {r['attack'] or 'baseline'}"
                 f"{' without ' + r['knockout'] if r['knockout'] else ''}: {r['verdict']} ({r['wall']:.1f} s)")
    baseline = {r["profile"]: r.get("success") for r in results if not r["attack"]}
    cells = [Cell(profile=r["profile"], attack=r["attack"], knockout=r["knockout"], verdict=r["verdict"],
                  mechanism=r.get("mechanism", ""), time_to_outcome=r.get("time_to_outcome"),
                  state_corrupted=r.get("state_corrupted"), success=r.get("success"),
                  legit_success=r.get("legit_success"),
                  baseline_success=baseline.get(r["profile"]), attacked_devices=r.get("attacked_devices"),
                  run_dir=r["run_dir"], wall=r["wall"])
             for r in results if r["attack"]]
    (out / "cells.json").write_text(json.dumps([asdict(c) for c in cells], indent=1), encoding="utf-8")
    return cells
