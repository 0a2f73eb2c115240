"""The HSS's subscriber table in SQLite: identities, MILENAGE keys, SEQ_HE and the GUSS fields.

One row per subscriber: IMPI (primary key), IMSI (unique), K, OPc, AMF, SEQ_HE (the highest
SEQ handed out, TS 33.102 Annex C.1.1), the GBA_U capability (UICC type of the GUSS,
TS 29.109 / TS 33.220 §4.4.7) and the Ks lifetime in seconds (GUSS BSF-info lifetime).

Crash safety, the one rule of this module: ``next_seq`` increments SEQ_HE and COMMITs (with
``PRAGMA synchronous=FULL``: the commit is on disk when it returns) before it returns the new
value, so an AV built from it can never carry a SEQ that a restarted HSS would hand out again.
A ``kill -9`` between the commit and the AV only burns one SEQ (a gap, which Annex C allows).

Choices: the rollback journal (journal_mode=DELETE, SQLite's default) with synchronous=FULL;
each write is its own ``BEGIN IMMEDIATE`` transaction so concurrent HSS processes on one file
serialise; ``path`` ":memory:" gives a throw-away store for simulations.
"""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable, Iterator

from dmsim.base.errors import ProtocolError, ScenarioError
from dmsim.cards.sqn import SEQ_MAX

SCHEMA = """
CREATE TABLE IF NOT EXISTS subscriber (
    impi TEXT PRIMARY KEY,
    imsi TEXT NOT NULL UNIQUE,
    k BLOB NOT NULL,
    opc BLOB NOT NULL,
    amf BLOB NOT NULL,
    seq_he INTEGER NOT NULL,
    gba_u INTEGER NOT NULL,
    key_lifetime INTEGER NOT NULL
)"""
_COLUMNS = "impi, imsi, k, opc, amf, seq_he, gba_u, key_lifetime"


@dataclass(frozen=True)
class Subscriber:
    """One subscriber as the HSS holds it."""

    impi: str
    imsi: str
    k: bytes
    opc: bytes
    amf: bytes
    seq_he: int
    gba_u: bool
    key_lifetime: int

    def with_seq(self, seq_he: int) -> Subscriber:
        """Return a copy with another SEQ_HE."""
        return replace(self, seq_he=seq_he)


def _row(row: tuple) -> Subscriber:
    impi, imsi, k, opc, amf, seq_he, gba_u, lifetime = row
    return Subscriber(impi, imsi, bytes(k), bytes(opc), bytes(amf), seq_he, bool(gba_u), lifetime)


class SubscriberStore:
    """The SQLite subscriber table (see the module docstring for the durability rule)."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        self._db = sqlite3.connect(self.path, isolation_level=None)
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA journal_mode=DELETE")
        self._db.execute(SCHEMA)

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def __enter__(self) -> SubscriberStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def synchronous(self) -> int:
        """Return the connection's PRAGMA synchronous (2 = FULL)."""
        return self._db.execute("PRAGMA synchronous").fetchone()[0]

    def add(self, subscribers: Iterable[Subscriber]) -> int:
        """Insert ``subscribers`` in one transaction; return how many. A duplicate IMPI or IMSI
        raises ScenarioError and inserts none."""
        rows = [(s.impi, s.imsi, s.k, s.opc, s.amf, s.seq_he, int(s.gba_u), s.key_lifetime) for s in subscribers]
        try:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(f"INSERT INTO subscriber ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
            self._db.execute("COMMIT")
        except sqlite3.IntegrityError as exc:
            self._db.execute("ROLLBACK")
            raise ScenarioError(f"subscriber already provisioned: {exc}", where=self.path,
                                expected="distinct IMPIs and IMSIs") from None
        return len(rows)

    def put(self, subscribers: Iterable[Subscriber]) -> int:
        """Insert or replace ``subscribers`` (a row with the same IMPI or IMSI goes) in one
        transaction; return how many. For a provisioning system that owns these subscribers (the
        simulation re-issuing its fleet's cards); ``add`` is the one that refuses duplicates."""
        rows = [(s.impi, s.imsi, s.k, s.opc, s.amf, s.seq_he, int(s.gba_u), s.key_lifetime) for s in subscribers]
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany(f"INSERT OR REPLACE INTO subscriber ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                 rows)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return len(rows)

    def get(self, user: str) -> Subscriber | None:
        """Return the subscriber whose IMPI or IMSI is ``user``, or None."""
        row = self._db.execute(f"SELECT {_COLUMNS} FROM subscriber WHERE impi = ? OR imsi = ?",
                               (user, user)).fetchone()
        return None if row is None else _row(row)

    def __iter__(self) -> Iterator[Subscriber]:
        return (_row(r) for r in self._db.execute(f"SELECT {_COLUMNS} FROM subscriber ORDER BY impi").fetchall())

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM subscriber").fetchone()[0]

    def next_seq(self, impi: str) -> int:
        """Return SEQ_HE + 1 after storing it durably (committed before this returns).

        ProtocolError if the IMPI is unknown or SEQ is exhausted (TS 33.102 Annex C.1.1)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            row = self._db.execute("UPDATE subscriber SET seq_he = seq_he + 1 WHERE impi = ? AND seq_he < ? "
                                   "RETURNING seq_he", (impi, SEQ_MAX)).fetchone()
            if row is None:
                raise ProtocolError(f"HSS: no SEQ left for {impi!r} (unknown subscriber or SEQ exhausted)")
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return row[0]

    def set_seq(self, impi: str, seq_he: int) -> None:
        """Store SEQ_HE := ``seq_he`` durably (resynchronisation, TS 33.102 §6.3.5)."""
        if not 0 <= seq_he <= SEQ_MAX:
            raise ProtocolError(f"HSS: SEQ {seq_he} out of range for {impi!r}")
        self._db.execute("BEGIN IMMEDIATE")
        try:
            cur = self._db.execute("UPDATE subscriber SET seq_he = ? WHERE impi = ?", (seq_he, impi))
            if cur.rowcount != 1:
                raise ProtocolError(f"HSS: unknown subscriber {impi!r}")
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
