"""The report of a run folder: ``report.html``, one self-contained page for any browser.

No spec clause. Choices:

* Self-contained: the CSS is inline, every plot is a ``data:image/png;base64`` URI, there is no
  script, and a Content-Security-Policy meta tag forbids loading anything else, so the page
  reads the same when mailed or opened offline.
* Every text taken from the run (scenario, profile and reason names, sweep labels, YAML) goes
  through ``html.escape``; the page's own markup is the only unescaped text.
* Sections, in order: warnings (shown loudly: a run that is not ``complete``, devices that never
  arrived before ``duration`` when ``fleet.not_arrived > 0``), the summary table (the whole run,
  then one row per sweep point), per profile, failure reasons with their share of failures and of
  sessions, fleet and arrival counts, every plot, and the scenario as run with its defaults filled
  in (``manifest.json`` key ``scenario``, shown as YAML).
* Every ``summary.json`` key beyond ``sessions`` may be missing (older run folders); a missing
  section is left out and a missing number shows as "–".
"""
from __future__ import annotations

import base64
import html
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from dmsim.base.errors import DmsimError
from dmsim.sim.results.atomic import write_atomic
from dmsim.sim.results.plots import load_json, point_text

REPORT_NAME = "report.html"
_MISSING = "–"

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222;
       padding: 0 1em; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 2px solid #ccd; padding-bottom: 0.2em; margin-top: 1.6em; }
.meta { color: #555; }
.alert { background: #fde2e1; border: 2px solid #c62828; color: #8e0000; padding: 0.8em 1em;
         margin: 1em 0; font-weight: bold; border-radius: 4px; }
.bad { color: #c62828; font-weight: bold; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border: 1px solid #ccd; padding: 0.3em 0.6em; text-align: right; }
th { background: #e8ebf5; } td:first-child, th:first-child { text-align: left; }
tr:nth-child(even) td { background: #f6f7fb; }
.ci { color: #777; font-size: 0.8em; display: block; white-space: nowrap; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { color: #555; font-size: 0.9em; }
pre { background: #f4f4f4; border: 1px solid #ddd; padding: 0.8em; overflow-x: auto; }
"""
_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _num(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _fmt(value: Any, unit: str = "", percent: bool = False) -> str:
    """Return a number as short text (a percentage when ``percent``), "–" when missing."""
    if not _num(value):
        return _MISSING
    if percent:
        return f"{100.0 * value:.1f} %"
    if isinstance(value, int):
        return f"{value:,}{unit}"
    return f"{value:.4g}{unit}"


def _estimate_cell(est: Any, unit: str = "", percent: bool = False) -> str:
    """Return the escaped cell of a ``{value, ci95_low, ci95_high}`` block: value, then its CI."""
    if not isinstance(est, dict):
        return _e(_fmt(est, unit, percent))
    cell = _e(_fmt(est.get("value"), unit, percent))
    low, high = est.get("ci95_low"), est.get("ci95_high")
    if _num(low) and _num(high):
        cell += f' <span class="ci">[{_e(_fmt(low, "", percent))}, {_e(_fmt(high, "", percent))}]</span>'
    return cell


def _table(head: list[str], rows: Iterable[list[str]]) -> str:
    """Return an HTML table; ``head`` is plain text (escaped here), ``rows`` hold escaped cells."""
    out = ["<table><tr>" + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr>"]
    out += ["<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows]
    return "\n".join(out) + "</table>"


_BLOCK_HEAD = ["sessions", "ok", "success rate [95 % CI]", "latency p50 (s)", "p90 (s)", "p99 (s)",
               "mean (s)", "throughput (ok/s)"]


def _block_cells(block: dict[str, Any]) -> list[str]:
    """Return the escaped cells of one summary block (whole run, sweep point or profile)."""
    lat = block.get("latency_s") or {}
    rate = block.get("success_rate_estimate")
    if not isinstance(rate, dict):
        rate = {"value": block.get("success_rate")}
    return [_e(_fmt(block.get("sessions"))), _e(_fmt(block.get("ok"))), _estimate_cell(rate, percent=True),
            *(_estimate_cell(lat.get(name)) for name in ("p50", "p90", "p99", "mean")),
            _estimate_cell(block.get("throughput_per_s"))]


def _summary_section(summary: dict[str, Any]) -> str:
    rows = [[_e("whole run")] + _block_cells(summary)]
    sweep = summary.get("sweep")
    first = "run"
    if isinstance(sweep, dict):
        keys = sweep.get("keys") if isinstance(sweep.get("keys"), list) else None
        first = ", ".join(map(str, keys or [sweep.get("key") or "sweep point"]))
        for point in sweep.get("points") or []:
            if isinstance(point, dict):
                rows.append([_e(point_text(point))] + _block_cells(point))
    return ("<h2>Summary</h2><p class=\"meta\">95 % Student-t intervals over replicas in brackets.</p>"
            + _table([first] + _BLOCK_HEAD, rows))


def _per_section(summary: dict[str, Any], key: str, noun: str) -> str:
    """Return the table of ``summary[key]`` (per profile, per protocol), one row per name."""
    blocks = summary.get(key)
    if not isinstance(blocks, dict) or not blocks:
        return ""
    rows = [[_e(name)] + _block_cells(block if isinstance(block, dict) else {})
            for name, block in blocks.items()]
    return f"<h2>Per {noun}</h2>" + _table([noun] + _BLOCK_HEAD, rows)


def _profile_section(summary: dict[str, Any]) -> str:
    return _per_section(summary, "per_profile", "profile")


def _protocol_section(summary: dict[str, Any]) -> str:
    """Per protocol (OMA DM, LwM2M) when the fleet mixes them."""
    protocols = summary.get("per_protocol")
    return _per_section(summary, "per_protocol", "protocol") if isinstance(protocols, dict) and len(protocols) > 1 else ""


def _reasons_section(summary: dict[str, Any]) -> str:
    reasons = {k: v for k, v in (summary.get("failure_reasons") or {}).items() if _num(v)}
    sessions = summary.get("sessions") if _num(summary.get("sessions")) else 0
    if not reasons:
        return f"<h2>Failure reasons</h2><p>No failures in {_e(_fmt(sessions))} sessions.</p>"
    failed = sum(reasons.values())
    rows = [[_e(name), _e(_fmt(count)), _e(_fmt(count / failed, percent=True)),
             _e(_fmt(count / sessions, percent=True) if sessions else _MISSING)]
            for name, count in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))]
    rows.append(["<b>all failures</b>", _e(_fmt(failed)), _e("100.0 %"),
                 _e(_fmt(failed / sessions, percent=True) if sessions else _MISSING)])
    return "<h2>Failure reasons</h2>" + _table(["reason", "failed sessions", "share of failures",
                                                 "share of sessions"], rows)


_FLEET_ROWS = (("size", "devices in the fleet"), ("runs", "runs (sweep points × replicas)"),
               ("expected", "device arrivals expected"), ("arrived", "arrived before the end"),
               ("not_arrived", "never arrived before duration"),
               ("success_rate_of_fleet", "ok sessions over every expected device"))


def _fleet_section(summary: dict[str, Any]) -> str:
    fleet = summary.get("fleet")
    if not isinstance(fleet, dict) or not fleet:
        return ""
    rows = [[_e(text), _e(_fmt(fleet.get(key), percent=key == "success_rate_of_fleet"))]
            for key, text in _FLEET_ROWS if key in fleet]
    for row, key in zip(rows, [k for k, _ in _FLEET_ROWS if k in fleet]):
        if key == "not_arrived" and _num(fleet[key]) and fleet[key] > 0:
            row[:] = [f'<span class="bad">{cell}</span>' for cell in row]
    rows += [[_e(key), _e(_fmt(v) if _num(v) else v)] for key, v in fleet.items()
             if key not in dict(_FLEET_ROWS)]
    return "<h2>Fleet and arrivals</h2>" + _table(["fleet", "value"], rows)


def _warnings(summary: dict[str, Any], manifest: dict[str, Any]) -> list[str]:
    """Return the plain-text warnings the page shows first (unescaped)."""
    out = []
    status = manifest.get("status") or summary.get("status")
    if status and status != "complete":
        error = manifest.get("error")
        out.append(f"This run is {status}, not complete" + (f": {error}" if error else "")
                   + ". The tables and plots cover only the sessions written before it stopped.")
    fleet = summary.get("fleet")
    if isinstance(fleet, dict) and _num(fleet.get("not_arrived")) and fleet["not_arrived"] > 0:
        expected = fleet.get("expected")
        of = f" of {_fmt(expected)} expected" if _num(expected) else ""
        out.append(f"{_fmt(fleet['not_arrived'])}{of} device arrivals never happened before the "
                   f"scenario's duration ended: those devices have no session row, and the success "
                   f"rate does not count them. Lengthen duration or raise the arrival rate.")
    for note in summary.get("conformance") or []:
        out.append(f"Not a conformant deployment: {note}.")
    fidelity = summary.get("fidelity")
    if isinstance(fidelity, dict):
        out.append(fidelity_warning(fidelity))
    shards = summary.get("shards")
    if isinstance(shards, dict):
        out.append(f"Each replica ran as {_fmt(shards.get('count'))} shards: {shards.get('approximation')}.")
    outcomes = (summary.get("attacks") or {}).get("outcomes") or []
    won = [o.get("kind") for o in outcomes if isinstance(o, dict) and o.get("verdict") == "succeeded"]
    if won:
        out.append(f"{len(won)} of {len(outcomes)} attacks SUCCEEDED: {', '.join(map(str, won))} "
                   "(see Attacks).")
    return out


VERDICT_COLOURS = {"succeeded": "#e53935", "detected": "#43a047", "blocked": "#1e88e5",
                   "inconclusive": "#9e9e9e", "n/a": "#ffffff", "error": "#212121"}


def verdict_cell(verdict: Any, text: str | None = None) -> str:
    """Return an escaped table cell's content: ``verdict`` (or ``text``) on its colour."""
    colour = VERDICT_COLOURS.get(str(verdict), "#ffffff")
    ink = "#fff" if verdict in ("succeeded", "error", "blocked", "detected") else "#222"
    return (f'<span style="background:{colour};color:{ink};padding:0 0.3em;border-radius:3px">'
            f"{text if text is not None else _e(verdict)}</span>")


def _attacks_section(summary: dict[str, Any]) -> str:
    block = summary.get("attacks")
    if not isinstance(block, dict):
        return ""
    rows = [[_e(o.get("kind")), _e(o.get("on")), verdict_cell(o.get("verdict")), _e(o.get("mechanism")),
             _e(_fmt(o.get("time_to_outcome"), " s")), _e("yes" if o.get("state_corrupted") else "no"),
             _e(_fmt(o.get("attempts")))]
            for o in block.get("outcomes") or [] if isinstance(o, dict)]
    effects = [[_e(name), _e(_fmt(g.get("devices"))), _e(_fmt(g.get("success_rate"), percent=True)),
                _e(_fmt(g.get("latency_p50"), " s")),
                _e(", ".join(f"{k}: {v}" for k, v in (g.get("failures") or {}).items()) or _MISSING)]
               for name, g in (block.get("side_effects") or {}).items() if isinstance(g, dict)]
    return ("<h2>Attacks</h2><p class=\"meta\">succeeded: the attacker reached its goal; detected: refused and "
            "recorded by a defence; blocked: refused without a record; inconclusive: never got to act.</p>"
            + _table(["attack", "on", "verdict", "decided by", "time to outcome", "state corrupted", "attempts"], rows)
            + "<h3>Side effects</h3>"
            + _table(["devices", "count", "success rate", "latency p50", "failures"], effects))


def fidelity_warning(fidelity: dict) -> str:
    """Return the loud line of a sampled run: how much of the fleet ran the protocol."""
    text = (f"Sampled fidelity: {_fmt(fidelity.get('sample_devices'))} devices ran the real protocol "
            f"({fidelity.get('ran_the_protocol')}); {_fmt(fidelity.get('modelled_devices'))} were modelled from them "
            "and added no load (see Fidelity).")
    if _num(fidelity.get("unmodelled_devices")) and fidelity["unmodelled_devices"]:
        text += (f" {_fmt(fidelity['unmodelled_devices'])} devices of profiles without a sample device could not be "
                 "modelled (reason unmodelled): raise fidelity_sample.")
    return text


def _fidelity_section(summary: dict[str, Any]) -> str:
    block = summary.get("fidelity")
    if not isinstance(block, dict):
        return ""
    rows = []
    for profile, sides in (block.get("calibration") or {}).items():
        for side in ("sample", "modelled"):
            tally = (sides or {}).get(side) or {}
            phases = tally.get("phases_s") or {}
            rows.append([_e(profile), _e(side), _e(_fmt(tally.get("devices"))),
                         _e(_fmt(tally.get("success_rate"), percent=True))]
                        + [_e(" / ".join(_fmt((phases.get(p) or {}).get(q), " s") for q in ("p50", "p90", "p99")))
                           for p in ("bootstrap", "connect", "session", "latency")])
    return ("<h2>Fidelity</h2><p class=\"meta\">" + _e(block.get("model")) + ". Calibration: the sample beside the "
            "devices modelled from it, per profile (phase p50 / p90 / p99 of ok sessions).</p>"
            + _table(["profile", "devices", "count", "success rate", "bootstrap", "connect", "session", "latency"],
                     rows))


def _plots_section(plots: list[Path]) -> str:
    figures = []
    for path in plots:
        try:
            data = base64.b64encode(path.read_bytes()).decode("ascii")
        except OSError as exc:
            raise DmsimError(f"{path}: cannot read the plot: {exc.strerror or exc}") from None
        figures.append(f'<figure><img alt="{_e(path.stem)}" src="data:image/png;base64,{data}">'
                       f"<figcaption>{_e(path.name)}</figcaption></figure>")
    return "<h2>Plots</h2>" + "\n".join(figures) if figures else ""


def _scenario_section(manifest: dict[str, Any]) -> str:
    scenario = manifest.get("scenario")
    if scenario is None:
        return ""
    text = yaml.safe_dump(scenario, sort_keys=False, allow_unicode=True, default_flow_style=False)
    return ("<h2>Scenario as run</h2><p class=\"meta\">With every default filled in "
            "(manifest.json, key <code>scenario</code>).</p><pre>" + _e(text) + "</pre>")


def render_report(summary: dict[str, Any], manifest: dict[str, Any], plots: list[Path],
                  title: str) -> str:
    """Return the HTML text of the report of a run with ``summary`` and ``manifest`` (the JSON
    objects of the run folder) and the PNG files ``plots``, inlined in that order."""
    meta = [f"{key}: {manifest[key]}" for key in ("status", "seed", "replicas", "started_utc", "git_revision")
            if manifest.get(key) is not None]
    if _num(manifest.get("wall_seconds")):
        meta.append(f"wall time: {manifest['wall_seconds']:.1f} s")
    alerts = "".join(f'<div class="alert">⚠ {_e(w)}</div>' for w in _warnings(summary, manifest))
    body = [f"<h1>{_e(title)}</h1>", f'<p class="meta">{_e(" · ".join(meta))}</p>' if meta else "",
            alerts, _summary_section(summary), _fidelity_section(summary), _attacks_section(summary),
            _protocol_section(summary),
            _profile_section(summary),
            _reasons_section(summary), _fleet_section(summary), _plots_section(plots), _scenario_section(manifest)]
    return page(title, body)


def page(title: str, body: list[str]) -> str:
    """Return a self-contained HTML page of the already escaped ``body`` parts (see the module doc)."""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
            f"<title>{_e(title)}: dmsim report</title><style>{_CSS}</style></head>\n<body>\n"
            + "\n".join(part for part in body if part) + "\n</body></html>\n")


def write_report(run_dir: str | Path, plots: Iterable[str | Path] | None = None) -> Path:
    """Write ``report.html`` into the run folder ``run_dir``; return its path.

    ``plots`` are the PNG files to inline, in order (what ``plot_run`` returned); None takes every
    ``*.png`` of the folder by name. Reads ``summary.json`` (required) and ``manifest.json``
    (optional); raises DmsimError naming a file that cannot be read.
    """
    run_dir = Path(run_dir)
    summary = load_json(run_dir / "summary.json", required=True)
    manifest = load_json(run_dir / "manifest.json", required=False)
    title = str(manifest.get("scenario_name") or run_dir.name)
    images = sorted(run_dir.glob("*.png")) if plots is None else [Path(p) for p in plots]
    return write_atomic(run_dir / REPORT_NAME, render_report(summary, manifest, images, title))
