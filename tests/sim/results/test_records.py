"""Session table writer/reader (sim/results/records.py) and atomic output helpers (sim/results/atomic.py)."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
import textwrap

import pytest

from dmsim.sim.results.atomic import atomic_target, part_path, write_atomic, write_json_atomic
from dmsim.base.errors import DmsimError
from dmsim.sim.results.records import (
    _CHUNK_ROWS, COLUMN_NAMES, COLUMNS, SessionTable, read_sessions,
)


def row(replica=0, device=1, outcome="ok", reason="", latency=1.5, profile="basic", **over):
    values = dict(
        replica=replica, sweep=0, sweep_value=None, device=device, profile=profile,
        outcome=outcome, reason=reason, t_arrival=0.25, t_bootstrap_sent=0.5,
        t_bootstrap_ok=1.0, t_session_start=1.25,
        t_session_end=None if latency is None else 0.25 + latency, latency=latency,
        bootstrap_sends=1, bootstrap_rejected=0, auth_retries=0, ip_retries=2,
        sms_msgs=1, sms_bytes=140, ip_msgs=4, ip_bytes=2048, ota="", ota_latency=None,
        t_gpi_sent=None, t_gpi_received=None, t_gba_keys=None, t_ub_start=None, t_ub_ok=None, attacks=None, attack_outcome=None, protocol="dm",
    )
    values.update(over)
    return tuple(values[name] for name in COLUMN_NAMES)


ROWS = [row(device=i, latency=0.1 * i + 1e-7) for i in range(5)] + [
    row(device=9, outcome="failed", reason="ip_timeout", latency=None, profile='odd, "name"'),
]


def write(path, rows, complete=True):
    table = SessionTable(path)
    for r in rows:
        table.write(r)
    return table.close(complete=complete)


def test_columns_are_declared_once_in_order():
    assert COLUMN_NAMES[:7] == ("replica", "sweep", "sweep_value", "device", "profile",
                                "outcome", "reason")
    assert COLUMN_NAMES[-2:] == ("attack_outcome", "protocol") and len(COLUMNS) == 31
    assert {c.type for c in COLUMNS} == {int, float, str}


def test_exact_format(tmp_path):
    out = write(tmp_path / "s.csv", [row(latency=None, profile="a,b"), row(latency=2.0)])
    text = out.read_bytes().decode("utf-8")
    lines = text.split("\n")
    assert "\r" not in text and text.endswith("\n")
    assert lines[0] == ",".join(COLUMN_NAMES)
    assert lines[1] == '0,0,,1,"a,b",ok,,0.250000,0.500000,1.000000,1.250000,,,1,0,0,2,1,140,4,2048,,,,,,,,,,dm'
    assert lines[2].split(",")[11:13] == ["2.250000", "2.000000"]


def test_same_rows_give_byte_identical_files(tmp_path):
    a = write(tmp_path / "a.csv", ROWS)
    b = write(tmp_path / "b.csv", ROWS)
    assert a.read_bytes() == b.read_bytes()


def test_part_file_while_open_then_final_name(tmp_path):
    path = tmp_path / "sessions.csv"
    table = SessionTable(path)
    table.write(ROWS[0])
    assert part_path(path).exists() and not path.exists()
    assert table.close() == path
    assert path.exists() and not part_path(path).exists()
    assert table.complete is True and table.rows == 1
    assert table.close() == path  # closing twice is harmless
    with pytest.raises(DmsimError, match="after close"):
        table.write(ROWS[0])


def test_read_back_typed_values(tmp_path):
    path = write(tmp_path / "s.csv", ROWS)
    got = list(read_sessions(path))
    assert len(got) == len(ROWS)
    assert got[0]["replica"] == 0 and isinstance(got[0]["device"], int)
    assert got[1]["latency"] == pytest.approx(0.1, abs=1e-6)
    assert got[0]["sweep_value"] is None
    assert got[-1]["profile"] == 'odd, "name"'
    assert got[-1]["latency"] is None and got[-1]["t_session_end"] is None
    assert got[-1]["reason"] == "ip_timeout"
    assert list(read_sessions(path, columns=["outcome", "latency"]))[-1] == {
        "outcome": "failed", "latency": None}


def test_standard_csv_reader_reads_it(tmp_path):
    # Stand-in for pandas/polars (not installed): a plain RFC 4180 reader sees the same fields.
    path = write(tmp_path / "s.csv", ROWS)
    with open(path, newline="", encoding="utf-8") as f:
        records = list(csv.DictReader(f))
    assert list(records[0]) == list(COLUMN_NAMES)
    assert records[-1]["profile"] == 'odd, "name"' and records[-1]["latency"] == ""


def test_close_incomplete_keeps_whole_readable_lines(tmp_path):
    table = SessionTable(tmp_path / "s.csv")
    for r in ROWS[:3]:
        table.write(r)
    out = table.close(complete=False)
    assert table.complete is False
    assert out.read_bytes().endswith(b"\n")
    assert len(list(read_sessions(out))) == 3


def test_exception_in_with_block_renames_and_marks_incomplete(tmp_path):
    path = tmp_path / "s.csv"
    with pytest.raises(RuntimeError):
        with SessionTable(path) as table:
            table.write(ROWS[0])
            table.write(ROWS[1])
            raise RuntimeError("simulated crash")
    assert path.exists() and not part_path(path).exists()
    assert table.complete is False
    assert [r["device"] for r in read_sessions(path)] == [0, 1]


def test_hard_exit_leaves_only_part_with_whole_lines(tmp_path):
    path = tmp_path / "s.csv"
    script = textwrap.dedent(f"""
        import os
        from dmsim.sim.results.records import SessionTable
        t = SessionTable({str(path)!r})
        r = (0, 0, None, 1, "p", "ok", "", 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1, 0, 0, 0, 1, 1, 1, 1, "", None, None, None, None, None, None, None, None, "dm")
        for _ in range({_CHUNK_ROWS + 100}):
            t.write(r)
        os._exit(3)
    """)
    proc = subprocess.run([sys.executable, "-c", script], timeout=60)
    assert proc.returncode == 3
    assert not path.exists()
    data = part_path(path).read_bytes()
    assert data.endswith(b"\n")
    assert data.count(b"\n") == _CHUNK_ROWS  # one whole chunk (header included) reached disk


@pytest.mark.parametrize("bad, column", [
    (row(device=1.0), "device"),
    (row(t_arrival="1.0"), "t_arrival"),
    (row(t_arrival=float("nan")), "t_arrival"),
    (row(profile=None), "profile"),
])
def test_bad_values_are_refused_by_column(tmp_path, bad, column):
    table = SessionTable(tmp_path / "s.csv")
    with pytest.raises(DmsimError, match=column):
        table.write(bad)
    with pytest.raises(DmsimError, match="30"):
        table.write(bad[:-1])
    out = table.close()
    assert list(read_sessions(out)) == []


def test_reader_refuses_foreign_files(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("a,b\n1,2\n")
    with pytest.raises(DmsimError, match="header"):
        list(read_sessions(p))
    good = write(tmp_path / "s.csv", ROWS[:1])
    text = good.read_text().replace("\n0,0,", "\nzero,0,", 1)
    p.write_text(text)
    with pytest.raises(DmsimError, match=r":2: column 'replica'"):
        list(read_sessions(p))
    p.write_text(good.read_text() + "1,2\n")
    with pytest.raises(DmsimError, match=":3: 2 fields"):
        list(read_sessions(p))
    with pytest.raises(DmsimError, match="unknown session column"):
        list(read_sessions(good, columns=["nope"]))


# -- sim/results/atomic.py ---------------------------------------------------------------------------

def test_write_atomic_and_json(tmp_path):
    p = tmp_path / "a.txt"
    assert write_atomic(p, "héllo") == p
    assert p.read_bytes() == "héllo".encode()
    write_atomic(p, b"\x00\x01")
    assert p.read_bytes() == b"\x00\x01" and not part_path(p).exists()
    j = tmp_path / "s.json"
    write_json_atomic(j, {"b": 1, "a": {"d": None, "c": [1.5]}})
    text = j.read_text()
    assert text.endswith("}\n") and text.index('"a"') < text.index('"b"')
    assert text.startswith('{\n  "a": {\n    "c"')
    assert json.loads(text) == {"a": {"c": [1.5], "d": None}, "b": 1}
    with pytest.raises(DmsimError, match="JSON"):
        write_json_atomic(j, {"x": float("nan")})
    assert json.loads(j.read_text())["b"] == 1  # old content kept


def test_atomic_target_discards_part_on_error(tmp_path):
    p = tmp_path / "f.bin"
    p.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_target(p) as part:
            part.write_bytes(b"half")
            raise RuntimeError
    assert p.read_bytes() == b"old" and not part_path(p).exists()
