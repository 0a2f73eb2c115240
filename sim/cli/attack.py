"""``dmsim attack list`` and ``dmsim attack matrix``: the catalogue, and the catalogue run against
every security profile (``attack_matrix.py``)."""
from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import click

from dmsim.sim.agents.adversary.catalogue import ATTACKS, load_catalogue


def catalogue_entries() -> list[dict]:
    """Return every catalogue attack as data: kind, positions, params and its Entry's fields."""
    load_catalogue()
    return [{"kind": kind, "positions": list(cls.positions), "params": dict(cls.params), **asdict(cls.entry)}
            for kind, cls in sorted(ATTACKS.items(), key=lambda kv: (kv[1].entry.family, kv[0]))]


@click.group()
def attack() -> None:
    """Rehearse attacks: the catalogue, and the matrix of what held."""


@attack.command("list")
@click.option("--markdown", is_flag=True, help="The whole catalogue as Markdown (what the seeds say, what it needs).")
def list_cmd(markdown: bool) -> None:
    """Print the catalogue of attacks (a scenario's attacks: kind)."""
    entries = catalogue_entries()
    if markdown:
        from dmsim.sim.results.attack_report import catalogue_md
        click.echo(catalogue_md(entries), nl=False)
        return
    for e in entries:
        click.echo(f"{e['kind']:34} {e['family']:9} on {'|'.join(e['positions']):14} {e['title']}")


def _names(text: str | None, known: list[str], what: str) -> list[str]:
    if not text:
        return known
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise click.BadParameter(f"unknown {what} {unknown[0]!r}; known: {', '.join(known)}")
    return names


@attack.command("matrix")
@click.option("--profiles", help="Security profiles to run, comma-separated (default: all).")
@click.option("--attacks", help="Attacks to run, comma-separated (default: the whole catalogue).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder (default: results/attack-matrix-<UTC time>).")
@click.option("--jobs", type=click.IntRange(1, 256), default=None, help="Cells run at once (default: every core).")
def matrix_cmd(profiles: str | None, attacks: str | None, out: Path | None, jobs: int | None) -> None:
    """Run each attack against each security profile; write matrix.csv, matrix.md, matrix.png,
    report.html and catalogue.md (each cell links to its run folder under cells/)."""
    from dmsim.sim.cli.attack_matrix import PROFILES, run_matrix
    from dmsim.sim.results.attack_report import counts, write_matrix
    load_catalogue()
    chosen_profiles = _names(profiles, list(PROFILES), "profile")
    chosen_attacks = _names(attacks, sorted(ATTACKS), "attack")
    if out is None:
        out = Path("results") / ("attack-matrix-" + time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))
    started = time.perf_counter()
    cells = run_matrix(out, chosen_profiles, chosen_attacks, jobs, echo=click.echo)
    wall = time.perf_counter() - started
    data = [asdict(c) for c in cells]
    for path in write_matrix(out, data, catalogue_entries(), wall):
        click.echo(f"wrote {path}")
    click.echo(f"{len(cells)} cells in {wall:.0f} s: " + ", ".join(f"{v} {n}" for v, n in counts(data).items()))
