"""report.html (sim/results/report.py): self-contained, escaped, loud about missing devices, and
rendered by a real headless browser (Debian's chromium).

The browser test is skipped when chromium is absent, unless DMSIM_REQUIRE_CHROMIUM=1 (set by
``./dev test`` when CI=true), which makes that a failure.
"""
from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image
from test_plots import make_run

from dmsim.base.errors import DmsimError
from dmsim.sim.cli.main import main
from dmsim.sim.results.atomic import write_json_atomic
from dmsim.sim.results.plots import plot_run
from dmsim.sim.results.report import REPORT_NAME, write_report

REPO = Path(__file__).resolve().parents[3]
PAGE_TAGS = {"html", "head", "meta", "title", "style", "body", "h1", "h2", "p", "div", "table", "tr",
             "th", "td", "span", "b", "figure", "img", "figcaption", "pre", "code"}
EVIL = '"><img src=x onerror=alert(1)>'


class _Page(HTMLParser):
    """The tags, attributes and text of a page."""

    def __init__(self, text: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def patch_json(path: Path, **changes) -> dict:
    data = json.loads(path.read_text()) if path.exists() else {}
    data.update(changes)
    write_json_atomic(path, data)
    return data


def report_of(run: Path, plots=None) -> tuple[str, _Page]:
    path = write_report(run, plots)
    assert path == run / REPORT_NAME and not list(run.glob("*.part"))
    text = path.read_text(encoding="utf-8")
    return text, _Page(text)


def test_report_is_self_contained_with_every_plot_inline(tmp_path):
    run = make_run(tmp_path / "run", sweep_values=[0.0, 0.1], n=20)
    plots = plot_run(run)
    text, page = report_of(run, plots)
    images = [attrs["src"] for tag, attrs in page.tags if tag == "img"]
    assert [base64.b64decode(src.split(",", 1)[1]) for src in images] == [p.read_bytes() for p in plots]
    assert all(src.startswith("data:image/png;base64,") for src in images)
    assert {tag for tag, _ in page.tags} <= PAGE_TAGS                   # no script, link, iframe
    links = [v for _, attrs in page.tags for k, v in attrs.items() if k in ("src", "href")]
    assert all(v.startswith("data:") for v in links)
    assert "default-src 'none'" in text                                    # nothing else may load


def test_summary_tables_per_point_profile_and_failure_shares(tmp_path):
    run = make_run(tmp_path / "run", sweep_values=[0.0, 0.1], n=20, reasons=["ip_timeout"])
    summary = json.loads((run / "summary.json").read_text())
    failed, sessions = summary["failure_reasons"]["ip_timeout"], summary["sessions"]
    patch_json(run / "summary.json", per_profile={"basic": summary, "pin": summary})
    patch_json(run / "manifest.json", scenario={"name": "fleet-basic", "fleet": {"size": 20}})
    text, page = report_of(run)
    cells = [t.strip() for t in page.text if t.strip()]
    for heading in ("Summary", "Per profile", "Failure reasons", "Scenario as run"):
        assert heading in cells
    assert ["whole run", f"{sessions:,}"] == cells[cells.index("whole run"):][:2]
    assert "0.1" in cells and "basic" in cells and "pin" in cells      # a row per point and profile
    reason_row = cells[cells.index("ip_timeout"):][:4]
    assert reason_row == ["ip_timeout", str(failed), "100.0 %", f"{100.0 * failed / sessions:.1f} %"]
    assert "fleet:\n  size: 20\n" in text and "name: fleet-basic" in text
    assert "Per protocol" not in cells  # one protocol: no table of one row


def test_a_mixed_fleet_gets_a_table_per_protocol(tmp_path):
    run = make_run(tmp_path / "run", n=20, reasons=["ip_timeout"])
    summary = json.loads((run / "summary.json").read_text())
    patch_json(run / "summary.json", per_protocol={"dm": summary, "lwm2m": summary})
    _text, page = report_of(run)
    cells = [t.strip() for t in page.text if t.strip()]
    assert "Per protocol" in cells and "dm" in cells and "lwm2m" in cells


def test_every_user_text_is_escaped(tmp_path):
    run = make_run(tmp_path / "run", n=20, reasons=[EVIL])
    summary = json.loads((run / "summary.json").read_text())
    patch_json(run / "summary.json", per_profile={"<i>p&q</i>": summary},
               sweep={"key": "<b>k</b>", "points": [{**summary, "value": "<u>v</u>"}]})
    patch_json(run / "manifest.json", scenario_name="<script>alert(1)</script>",
               scenario={"name": "</pre><script>x</script>"})
    text, page = report_of(run)
    assert {tag for tag, _ in page.tags} <= PAGE_TAGS
    for raw in (EVIL, "<script>", "<i>p&q</i>", "<b>k</b>", "<u>v</u>", "</pre><script>"):
        assert raw not in text
    joined = "".join(page.text)
    for shown in (EVIL, "<script>alert(1)</script>", "<i>p&q</i>", "<b>k</b>", "<u>v</u>"):
        assert shown in joined                                             # shown as text


def test_devices_that_never_arrived_are_shown_loudly(tmp_path):
    run = make_run(tmp_path / "run", n=10)
    fleet = {"size": 10, "runs": 2, "expected": 20, "arrived": 15, "not_arrived": 5,
             "success_rate_of_fleet": 0.5}
    patch_json(run / "summary.json", fleet=fleet)
    text, page = report_of(run)
    alerts = re.findall(r'<div class="alert">(.*?)</div>', text)
    assert len(alerts) == 1 and "5 of 20 expected device arrivals never happened" in alerts[0]
    assert '<span class="bad">5</span>' in text and "50.0 %" in text
    patch_json(run / "summary.json", fleet={**fleet, "arrived": 20, "not_arrived": 0})
    text, _ = report_of(run)
    assert 'class="alert"' not in text and "Fleet and arrivals" in text


def test_an_old_or_interrupted_run_folder_still_gives_a_report(tmp_path):
    run = tmp_path / "old"
    run.mkdir()
    write_json_atomic(run / "summary.json", {"sessions": 3, "ok": 3, "failure_reasons": {}, "sweep": None})
    text, page = report_of(run)
    assert "No failures in 3 sessions." in text and "Per profile" not in text and "Fleet" not in text
    assert "<img" not in text and "–" in text                                 # missing numbers
    patch_json(run / "manifest.json", status="interrupted", error="KeyboardInterrupt")
    text, _ = report_of(run)
    assert re.search(r'class="alert">[^<]*interrupted, not complete: KeyboardInterrupt', text)


def test_missing_summary_or_plot_is_a_typed_error(tmp_path):
    with pytest.raises(DmsimError, match="summary.json"):
        write_report(tmp_path)
    run = make_run(tmp_path / "run", n=5)
    with pytest.raises(DmsimError, match="gone.png"):
        write_report(run, [run / "gone.png"])


def test_plot_command_redraws_plots_and_report(tmp_path):
    run = make_run(tmp_path / "run", n=10)
    res = CliRunner().invoke(main, ["plot", str(run)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert res.output.splitlines()[-1] == str(run / REPORT_NAME)
    text = (run / REPORT_NAME).read_text()
    assert text.count("<img") == len(res.output.splitlines()) - 1


def test_run_writes_the_report_only_with_plots(tmp_path):
    from dmsim.sim.results.runner import run_scenario
    from dmsim.sim.scenario.format import load_scenario
    sc = load_scenario(REPO / "scenarios/quickstart.yaml", ["fleet.size=5", "replicas=1"])
    run_scenario(sc, tmp_path / "plots", plots=True)
    assert (tmp_path / "plots" / REPORT_NAME).exists()
    run_scenario(sc, tmp_path / "bare", plots=False)
    assert not (tmp_path / "bare" / REPORT_NAME).exists()


# --------------------------------------------------------------------------- chromium

def _chromium() -> str:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        reason = "chromium is not installed"
        if os.environ.get("DMSIM_REQUIRE_CHROMIUM") == "1":
            pytest.fail(f"{reason} (DMSIM_REQUIRE_CHROMIUM=1 requires it)", pytrace=False)
        pytest.skip(reason)
    return binary


def test_report_renders_in_headless_chromium(tmp_path):
    chromium = _chromium()
    run = make_run(tmp_path / "run", sweep_values=[0.0, 0.1], n=20)
    write_report(run, plot_run(run))
    shot = tmp_path / "shot.png"
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}",
                    f"--screenshot={shot}", "--window-size=1200,3000", (run / REPORT_NAME).as_uri()],
                   check=True, capture_output=True, timeout=120)
    with Image.open(shot) as image:
        assert image.size == (1200, 3000)
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
    white = max(colours)[0] / (1200 * 3000)
    assert len(colours) > 100 and white < 0.97       # tables, text and plots drew, not a blank page


def test_the_attack_matrix_page_renders_in_headless_chromium(tmp_path):
    """``dmsim attack matrix``'s report.html: the table's verdict colours and the inlined heat map
    draw in a real browser (a succeeded cell's red among them)."""
    from dmsim.sim.results.attack_report import write_matrix
    chromium = _chromium()
    cells = [{"profile": p, "attack": a, "knockout": "", "verdict": v, "mechanism": "why <b>not</b>",
              "time_to_outcome": 1.5, "state_corrupted": v == "succeeded", "success": 1.0, "legit_success": None,
              "baseline_success": 1.0, "attacked_devices": 3, "run_dir": f"cells/{p}/{a}", "wall": 0.1}
             for a, verdicts in (("forge-networkid-bootstrap", ("succeeded", "detected")),
                                 ("tamper-bootstrap", ("detected", "n/a")))
             for p, v in zip(("networkid", "gba"), verdicts)]
    write_matrix(tmp_path, cells, [], wall=1.0)
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "why &lt;b&gt;not&lt;/b&gt;" in page and "<b>not</b>" not in page  # run text is escaped
    shot = tmp_path / "shot.png"
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}",
                    f"--screenshot={shot}", "--window-size=1000,1400", (tmp_path / "report.html").as_uri()],
                   check=True, capture_output=True, timeout=120)
    with Image.open(shot) as image:
        colours = dict((rgb, n) for n, rgb in image.convert("RGB").getcolors(maxcolors=1 << 20))
    assert colours.get((0xE5, 0x39, 0x35), 0) > 50  # the succeeded red, in the table and the heat map
    assert len(colours) > 50
