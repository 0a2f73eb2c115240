"""The outputs of ``dmsim attack matrix``: the matrix as CSV, Markdown, a heat map and an HTML
page, and the catalogue as Markdown.

No spec clause. Rows are attacks (``kind``, or ``kind [without KNOCKOUT]`` for a run with a
defence switched off), columns security profiles; a cell shows the verdict and links to the run
folder that produced it (relative links, so the folder can be moved or zipped). Verdicts keep
their words everywhere (the colours only repeat them): ``succeeded`` is never softened.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from dmsim.sim.results.atomic import write_atomic
from dmsim.sim.results.report import VERDICT_COLOURS, _e, _table, page, verdict_cell

CSV_FIELDS = ("row", "profile", "attack", "knockout", "verdict", "mechanism", "time_to_outcome", "state_corrupted",
              "success", "legit_success", "baseline_success", "attacked_devices", "run_dir", "wall")
VERDICT_ORDER = ("succeeded", "detected", "blocked", "inconclusive", "n/a", "error")


def row_name(cell: dict) -> str:
    """The matrix row of a cell: its attack, or ``attack [without knockout]``."""
    return f"{cell['attack']} [without {cell['knockout']}]" if cell.get("knockout") else cell["attack"]


def _grid(cells: list[dict]) -> tuple[list[str], list[str], dict[tuple[str, str], dict]]:
    rows = list(dict.fromkeys(row_name(c) for c in cells))
    profiles = list(dict.fromkeys(c["profile"] for c in cells))
    return rows, profiles, {(row_name(c), c["profile"]): c for c in cells}


def matrix_csv(cells: list[dict]) -> str:
    """Return matrix.csv: one line per cell."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for cell in cells:
        writer.writerow({"row": row_name(cell), **{k: cell.get(k) for k in CSV_FIELDS if k != "row"}})
    return buf.getvalue()


def counts(cells: list[dict]) -> dict[str, int]:
    """Return how many cells have each verdict."""
    return {v: n for v in VERDICT_ORDER if (n := sum(1 for c in cells if c["verdict"] == v))}


def matrix_md(cells: list[dict], wall: float | None = None) -> str:
    """Return matrix.md: the table (verdict per cell, linked to its run folder) and the legend."""
    rows, profiles, by = _grid(cells)
    lines = ["# dmsim attack matrix", "",
             "Verdicts: **succeeded** (the attacker reached its goal), detected (refused and recorded), blocked "
             "(refused, no record), inconclusive (never acted), n/a (the attack cannot run in that profile). "
             "Each cell links to its run.", "",
             "Totals: " + ", ".join(f"{v} {n}" for v, n in counts(cells).items())
             + (f"; wall time {wall:.0f} s" if wall is not None else ""), "",
             "| attack | " + " | ".join(profiles) + " |", "|---|" + "---|" * len(profiles)]
    for row in rows:
        out = []
        for profile in profiles:
            cell = by.get((row, profile))
            if cell is None:
                out.append("")
                continue
            text = f"**{cell['verdict']}**" if cell["verdict"] == "succeeded" else cell["verdict"]
            out.append(f"[{text}]({cell['run_dir']}/)")
        lines.append(f"| {row} | " + " | ".join(out) + " |")
    lines += ["", "## Why each attack succeeded", ""]
    for cell in cells:
        if cell["verdict"] == "succeeded":
            lines.append(f"- {row_name(cell)} on {cell['profile']}: {cell['mechanism']}")
    return "\n".join(lines) + "\n"


def heat_map(cells: list[dict], path: Path) -> Path:
    """Draw the matrix as a heat map (one colour per verdict, its word in the cell) into ``path``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_rgb
    rows, profiles, by = _grid(cells)
    fig, ax = plt.subplots(figsize=(1.2 + 1.05 * len(profiles), 0.9 + 0.32 * len(rows)))
    image = [[to_rgb(VERDICT_COLOURS.get(by[(r, p)]["verdict"], "#ffffff") if (r, p) in by else "#ffffff")
              for p in profiles] for r in rows]
    ax.imshow(image, aspect="auto")
    for i, r in enumerate(rows):
        for j, p in enumerate(profiles):
            verdict = by[(r, p)]["verdict"] if (r, p) in by else ""
            ax.text(j, i, verdict, ha="center", va="center", fontsize=6.5,
                    color="white" if verdict in ("succeeded", "error", "blocked", "detected") else "black")
    ax.set_xticks(range(len(profiles)), profiles, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=7)
    ax.set_title("dmsim attack matrix: what each attack achieved against each security profile", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def matrix_html(cells: list[dict], png: Path | None, wall: float | None = None) -> str:
    """Return the matrix section of report.html (with the heat map inlined) as a whole page."""
    import base64
    rows, profiles, by = _grid(cells)
    table = []
    for row in rows:
        out = [_e(row)]
        for profile in profiles:
            cell = by.get((row, profile))
            out.append("" if cell is None else
                       f'<a href="{_e(cell["run_dir"])}/" title="{_e(cell.get("mechanism") or "")}">'
                       + verdict_cell(cell["verdict"]) + "</a>")
        table.append(out)
    won = [c for c in cells if c["verdict"] == "succeeded"]
    parts = ["<h1>dmsim attack matrix</h1>",
             f'<p class="meta">{_e(", ".join(f"{v}: {n}" for v, n in counts(cells).items()))}'
             + (f" · wall time {wall:.0f} s" if wall is not None else "") + "</p>"]
    if won:
        parts.append(f'<div class="alert">⚠ {len(won)} cells SUCCEEDED: the attacker reached its goal there.</div>')
    parts += ["<h2>Attack matrix</h2><p class=\"meta\">Hover a cell for what decided it; click it for its run.</p>",
              _table(["attack"] + profiles, table)]
    if png is not None and png.exists():
        data = base64.b64encode(png.read_bytes()).decode("ascii")
        parts.append(f'<h2>Heat map</h2><figure><img alt="heat map" src="data:image/png;base64,{data}"></figure>')
    parts.append("<h2>Cells</h2>" + _table(
        ["attack", "profile", "verdict", "decided by", "time to outcome (s)", "state corrupted",
         "success", "untouched devices' success", "baseline success"],
        [[_e(row_name(c)), _e(c["profile"]), verdict_cell(c["verdict"]), _e(c.get("mechanism") or ""),
          _e("–" if c.get("time_to_outcome") is None else f"{c['time_to_outcome']:.3g}"),
          _e({True: "yes", False: "no"}.get(c.get("state_corrupted"), "–")),
          _e(_pct(c.get("success"))), _e(_pct(c.get("legit_success"))), _e(_pct(c.get("baseline_success")))]
         for c in cells]))
    return page("attack matrix", parts)


def _pct(value: Any) -> str:
    return "–" if not isinstance(value, (int, float)) else f"{100 * value:.0f} %"


def catalogue_md(entries: list[dict]) -> str:
    """Return catalogue.md: every attack with what the seeds say and what an attacker needs."""
    lines = ["# dmsim attack catalogue", ""]
    for family in dict.fromkeys(e["family"] for e in entries):
        lines += [f"## {family}", ""]
        for e in (e for e in entries if e["family"] == family):
            lines += [f"### `{e['kind']}`: {e['title']}", "",
                      f"- **Positions:** {', '.join(e['positions'])}",
                      f"- **The seeds say:** {e['seeds_say']}",
                      f"- **Knowledge:** {e['knowledge']}", f"- **Position:** {e['position']}",
                      f"- **Time:** {e['time']}"]
            if e.get("expected"):
                lines.append(f"- **Expected:** {e['expected']}")
            if e.get("params"):
                lines.append("- **Params:** " + ", ".join(f"`{k}` = {v!r}" for k, v in e["params"].items()))
            lines.append("")
    return "\n".join(lines)


def write_matrix(out: Path, cells: list[dict], entries: list[dict], wall: float | None = None) -> list[Path]:
    """Write matrix.csv, matrix.md, matrix.png, report.html and catalogue.md into ``out``."""
    png = heat_map(cells, out / "matrix.png") if cells else None
    return [write_atomic(out / "matrix.csv", matrix_csv(cells)),
            write_atomic(out / "matrix.md", matrix_md(cells, wall)),
            write_atomic(out / "report.html", matrix_html(cells, png, wall)),
            write_atomic(out / "catalogue.md", catalogue_md(entries))] + ([png] if png else [])
