"""The session table of a run: one CSV row per device session, streamed to disk.

No spec clause. Format (RFC 4180 with "\\n" line endings, UTF-8, one header line) chosen so that
``pandas.read_csv`` / ``polars.read_csv`` read it without options:

* integers in decimal; floats with exactly six decimals (``%.6f``, i.e. microseconds) so that the
  same rows give a byte-identical file; an empty field means "not reached" (``None``);
* strings are quoted only when they hold a comma, a quote or a line break.

Rows are formatted into whole lines and written in chunks with a raw (unbuffered) file, so the file
on disk only ever holds whole lines, even after a crash. The table is written to
``<name>.part`` and renamed to its final name by :meth:`SessionTable.close`.

Lifecycle choice: leaving the ``with`` block by an exception also closes and renames the file
(``complete=False``); the lines written so far stay readable and the runner marks the run
"interrupted" in its manifest. Only a process that dies without unwinding (``os._exit``, SIGKILL)
leaves the ``.part`` file alone under its temporary name.
"""
from __future__ import annotations

import csv
import io
import math
import operator
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Callable, NamedTuple

from dmsim.sim.results.atomic import commit_part, part_path
from dmsim.base.errors import DmsimError


class Column(NamedTuple):
    """One column of the session table: its name and Python type (int, float or str)."""

    name: str
    type: type
    optional: bool = False  # a str column that may be empty (None is written as "")


COLUMNS: tuple[Column, ...] = (
    Column("replica", int),
    Column("sweep", int),           # sweep point index, 0 without a sweep
    Column("sweep_value", str, optional=True),  # the sweep point's value (sweep_cell), empty without a sweep
    Column("device", int),
    Column("profile", str),
    Column("outcome", str),         # "ok" | "failed"
    Column("reason", str),          # "" when ok, else e.g. "bootstrap_lost", "ip_timeout"
    Column("t_arrival", float),
    Column("t_bootstrap_sent", float),
    Column("t_bootstrap_ok", float),
    Column("t_session_start", float),
    Column("t_session_end", float),
    Column("latency", float),
    Column("bootstrap_sends", int),
    Column("bootstrap_rejected", int),
    Column("auth_retries", int),
    Column("ip_retries", int),
    Column("sms_msgs", int),
    Column("sms_bytes", int),
    Column("ip_msgs", int),
    Column("ip_bytes", int),
    Column("ota", str),             # "" without an OTA campaign, else its outcome (sim/agents/ota_platform.py)
    Column("ota_latency", float),   # command submitted -> PoR checked
    Column("t_gpi_sent", float),    # bootstrap_via gba_push: the server sends the GBA Push Info
    Column("t_gpi_received", float),  # ... the whole GPI reached the device
    Column("t_gba_keys", float),    # ... its card and ME derived Ks_NAF, DMBIK and DMBEK
    Column("t_ub_start", float),    # gba_ub: the device sends its first Ub request to the BSF
    Column("t_ub_ok", float),       # ... it holds a B-TID (the 200 OK's rspauth verified)
    Column("attacks", str, optional=True),  # the scenario's attacks that acted on this device (kinds, ";")
    Column("attack_outcome", str, optional=True),  # worst for the defender: succeeded|detected|blocked
    Column("protocol", str),        # the device's management protocol: "dm" (OMA DM 1.3) or "lwm2m" (OMA LwM2M)
)
COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in COLUMNS)
COLUMN_TYPES: dict[str, type] = {c.name: c.type for c in COLUMNS}

OUTCOME_OK = "ok"
OUTCOME_FAILED = "failed"

_CHUNK_ROWS = 8192


def _fmt_int(value: Any) -> str:
    return str(operator.index(value))  # refuses floats instead of truncating them


def _fmt_float(value: Any) -> str:
    if value is None:
        return ""
    if not math.isfinite(value):
        raise ValueError("not a finite number")
    return "%.6f" % value


def sweep_cell(value: Any) -> str:
    """Return the ``sweep_value`` text of a sweep point's value: "" for None, a number as the float
    columns write it (``%.6f``), ``true``/``false``, a choice as it is, and a grid's {key: value}
    as ``key=value`` pairs joined by ``;`` in the grid's order."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return _fmt_float(float(value))
    if isinstance(value, dict):
        return ";".join(f"{key}={sweep_cell(v)}" for key, v in value.items())
    return str(value)


def _fmt_optional_str(value: Any) -> str:
    return "" if value is None else _fmt_str(value)


def _fmt_str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("not a str")
    return value


_FORMATTERS: dict[type, Callable[[Any], str]] = {int: _fmt_int, float: _fmt_float, str: _fmt_str}


class _Lines:
    """A write() target for csv.writer that keeps each formatted line in a list."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.write = self.lines.append


class SessionTable:
    """Streams session rows to ``<path>.part``; :meth:`close` renames it to ``path``.

    Memory is bounded by one chunk of formatted lines, whatever the number of rows. After
    :meth:`close`, ``complete`` tells whether the caller closed it as a complete run and ``rows``
    how many rows were written.
    """

    columns: tuple[Column, ...] = COLUMNS

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self._row_format = tuple(_fmt_optional_str if c.optional else _FORMATTERS[c.type] for c in self.columns)
        self.part = part_path(self.path)
        self.rows = 0
        self.complete: bool | None = None
        self._lines = _Lines()
        self._csv = csv.writer(self._lines, lineterminator="\n")
        self._file: io.RawIOBase | None = open(self.part, "wb", buffering=0)
        self._csv.writerow([c.name for c in self.columns])

    def write(self, row: Sequence[Any]) -> None:
        """Append one row (values in ``COLUMNS`` order); returns nothing.

        Raises DmsimError naming the column when a value has the wrong type or the row the wrong
        length; nothing of a refused row is written.
        """
        if self._file is None:
            raise DmsimError(f"{self.path.name}: write after close")
        if len(row) != len(self.columns):
            raise DmsimError(
                f"{self.path.name}: row has {len(row)} values, expected {len(self.columns)}")
        try:
            fields = [fmt(v) for fmt, v in zip(self._row_format, row)]
        except (TypeError, ValueError):
            raise self._bad_value(row) from None
        self._csv.writerow(fields)
        self.rows += 1
        if len(self._lines.lines) >= _CHUNK_ROWS:
            self._flush()

    def write_many(self, rows: Iterable[Sequence[Any]]) -> None:
        """Append every row of ``rows``; returns nothing."""
        for row in rows:
            self.write(row)

    def _bad_value(self, row: Sequence[Any]) -> DmsimError:
        for col, fmt, value in zip(self.columns, self._row_format, row):
            try:
                fmt(value)
            except (TypeError, ValueError) as exc:
                return DmsimError(
                    f"{self.path.name}: row {self.rows + 1}: column {col.name!r}: {value!r}: {exc} "
                    f"(expected {col.type.__name__}{' or None' if col.type is float else ''})")
        return DmsimError(f"{self.path.name}: row {self.rows + 1}: bad value")

    def append_table(self, path: str | os.PathLike[str], rows: int) -> None:
        """Append the ``rows`` rows of another table with the same columns (a worker's spool,
        written by a ``SessionTable`` of this class), header left out, in bounded chunks."""
        if self._file is None:
            raise DmsimError(f"{self.path.name}: write after close")
        self._flush()
        with open(path, "rb") as src:
            header = src.readline()
            if header.rstrip(b"\n").decode("utf-8", "replace").split(",") != [c.name for c in self.columns]:
                raise DmsimError(f"{path}: not a {self.path.name} spool (header {header[:60]!r})")
            while chunk := src.read(1 << 20):
                self._write_all(chunk)
        self.rows += rows

    def _flush(self) -> None:
        self._write_all("".join(self._lines.lines).encode("utf-8"))
        self._lines.lines.clear()

    def _write_all(self, data: bytes) -> None:
        # a raw write may be partial, so loop until all is out
        view = memoryview(data)
        while view:
            n = self._file.write(view)
            view = view[n:]

    def close(self, complete: bool = True) -> Path:
        """Write out pending lines, rename the ``.part`` file to its final name; return that path.

        The file is renamed whether or not the run was complete: its lines are whole either way.
        ``complete`` is kept on the table for the caller's manifest. Closing twice is harmless.
        """
        if self._file is None:
            return self.path
        try:
            self._flush()
        finally:
            self._file.close()
            self._file = None
        self.complete = complete
        return commit_part(self.path)

    def __enter__(self) -> SessionTable:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(complete=exc_type is None)


# The SMSC's message records (network/sms/smsc.py RECORD_FIELDS), behind the replica and sweep point.
SMS_COLUMNS: tuple[Column, ...] = (
    Column("replica", int), Column("sweep", int), Column("msg_id", int), Column("origin", str),
    Column("src", str), Column("dst", str), Column("pid", int), Column("submit_time", float),
    Column("first_attempt", float), Column("final_time", float), Column("attempts", int),
    Column("outcome", str), Column("last_cause", str), Column("queue_wait", float),
)


class SmsTable(SessionTable):
    """``sms.csv``: one row per short message the SMSC stored (queue wait, attempts, outcome)."""

    columns = SMS_COLUMNS


def _parse_int(text: str) -> int:
    return int(text)


def _parse_float(text: str) -> float | None:
    return float(text) if text else None


def _parse_str(text: str) -> str:
    return text


def _parse_optional_str(text: str) -> str | None:
    return text or None


_PARSERS: dict[type, Callable[[str], Any]] = {int: _parse_int, float: _parse_float, str: _parse_str}


def read_sessions(path: str | os.PathLike[str],
                  columns: Iterable[str] | None = None) -> Iterator[dict[str, Any]]:
    """Yield each row of a session table as a dict of typed values (``None`` for empty floats).

    ``columns`` restricts the dicts to those names (faster on large tables). Raises DmsimError
    for a header that is not ``COLUMN_NAMES``, an unknown column, or a malformed row (naming its
    line).
    """
    path = Path(path)
    wanted = COLUMN_NAMES if columns is None else tuple(columns)
    unknown = [name for name in wanted if name not in COLUMN_TYPES]
    if unknown:
        raise DmsimError(
            f"unknown session column(s) {unknown} (expected one of {list(COLUMN_NAMES)})")
    optional = {c.name for c in COLUMNS if c.optional}
    picks = [(name, COLUMN_NAMES.index(name), _parse_optional_str if name in optional else _PARSERS[COLUMN_TYPES[name]])
             for name in wanted]
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or tuple(header) != COLUMN_NAMES:
            raise DmsimError(
                f"{path}:1: not a session table header (expected {','.join(COLUMN_NAMES)})")
        width = len(COLUMN_NAMES)
        for fields in reader:
            if len(fields) != width:
                raise DmsimError(
                    f"{path}:{reader.line_num}: {len(fields)} fields, expected {width}")
            try:
                row = {name: parse(fields[i]) for name, i, parse in picks}
            except ValueError:
                raise _bad_field(path, reader.line_num, fields, picks) from None
            yield row


def _bad_field(path: Path, line: int, fields: list[str], picks) -> DmsimError:
    for name, i, parse in picks:
        try:
            parse(fields[i])
        except ValueError:
            return DmsimError(f"{path}:{line}: column {name!r}: {fields[i]!r} "
                              f"(expected {COLUMN_TYPES[name].__name__})")
    return DmsimError(f"{path}:{line}: malformed row")
