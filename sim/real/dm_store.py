"""The real DM server's device store in SQLite: DM accounts (with their nonces) and TLS PSKs.

OMA-TS-DM_Security-V1_3 §5.5 makes the nonces part of the account (AAuthData, NextNonce): a
server that forgets them after a restart makes every device fail its next authentication. So
``SqliteAccounts`` is the ``accounts`` mapping ``DmServer`` writes every nonce change to, and
``SqlitePsks`` the identity -> key store the TLS server reads live during a PSK-TLS handshake
(seed 000 §9.2.2, RFC 4279).

Choices where the specs are silent: one table per mapping, one column per ``DmAccount`` field
(bytes fields as BLOBs; a field added to ``DmAccount`` later, such as the digest form the core
keeps for auth-md5 accounts, becomes a new column, and rows written before take its default), so
the store holds exactly what the core's account holds for its scheme; one connection shared by
all threads behind a lock, in autocommit with WAL journaling; an account that holds a TLS PSK
(``DmAccount.has_psk``) also enters it in the PSK table, so the TLS server knows it at once and
after a restart (deleting the account leaves the PSK).

Durability is a setting, ``durability`` (SQLite ``PRAGMA synchronous``): ``"full"`` (the default,
and what ``dmsim server`` uses) fsyncs the WAL at every commit, so an assignment that returned
survives a power cut, at the price of one fsync per nonce change; ``"normal"`` fsyncs only at
WAL checkpoints, so the last commits may be lost on a power cut (not on a process crash), which
a benchmark may accept; ``"off"`` never fsyncs. A lost nonce makes the device's next
authentication fail once (it is re-challenged), a lost account or PSK loses the device.

Secrets at rest: the file holds passwords and PSKs in the clear (the schemes need them), so it is
created mode 0600 and an existing one is narrowed to 0600 (SQLite gives its -wal and -shm files
the mode of the database file).
"""
from __future__ import annotations

import dataclasses
import os
import sqlite3
import threading
import typing
from collections.abc import Iterator, MutableMapping
from pathlib import Path

from dmsim.network.dm.account import DmAccount
from dmsim.base.errors import DmsimError

_HINTS = typing.get_type_hints(DmAccount)
_FIELDS = tuple(f.name for f in dataclasses.fields(DmAccount))
DURABILITY = {"full": "FULL", "normal": "NORMAL", "off": "OFF"}
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(DmAccount)
             if f.default is not dataclasses.MISSING}


def _sql_type(name: str) -> str:
    return "BLOB" if _HINTS[name] is bytes else "TEXT"


class SqliteAccounts(MutableMapping[str, DmAccount]):
    """Device URI -> ``DmAccount``, persisted in the SQLite file ``path`` (":memory:" for none).

    Safe to share between threads. ``psks`` is the PSK table of the same file; ``durability``
    one of ``DURABILITY`` (module docstring). DmsimError (naming the file) when the file is not a
    usable SQLite store or cannot be made private.
    """

    def __init__(self, path: str | Path, *, durability: str = "full"):
        self.path = str(path)
        if durability not in DURABILITY:
            raise DmsimError(f"durability {durability!r}: expected one of {', '.join(DURABILITY)}")
        self.durability = durability
        self._lock = threading.RLock()
        if self.path != ":memory:":
            _make_private(self.path)
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={DURABILITY[durability]}")
            self._create()
        except sqlite3.Error as exc:
            raise DmsimError(f"{self.path}: not a usable SQLite store: {exc}") from None
        self.psks = SqlitePsks(self)

    def _create(self) -> None:
        cols = ", ".join(f"{name} {_sql_type(name)}" for name in _FIELDS)
        self._db.execute(f"CREATE TABLE IF NOT EXISTS accounts (device TEXT PRIMARY KEY, {cols})")
        self._db.execute("CREATE TABLE IF NOT EXISTS psks (identity BLOB PRIMARY KEY, key BLOB NOT NULL)")
        have = {row[1] for row in self._db.execute("PRAGMA table_info(accounts)")}
        for name in _FIELDS:
            if name not in have:
                self._db.execute(f"ALTER TABLE accounts ADD COLUMN {name} {_sql_type(name)}")

    def _query(self, sql: str, args: tuple = ()) -> list[tuple]:
        """Return the rows of one statement, run under the lock."""
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise DmsimError(f"{self.path}: {exc}") from None

    # MutableMapping

    def __getitem__(self, device: str) -> DmAccount:
        rows = self._query(f"SELECT {', '.join(_FIELDS)} FROM accounts WHERE device = ?", (device,))
        if not rows:
            raise KeyError(device)
        values = {k: v for k, v in zip(_FIELDS, rows[0]) if v is not None or k not in _DEFAULTS}
        return DmAccount(**values)

    def __setitem__(self, device: str, account: DmAccount) -> None:
        cols = ", ".join(("device",) + _FIELDS)
        marks = ", ".join("?" * (len(_FIELDS) + 1))
        values = tuple(getattr(account, name) for name in _FIELDS)
        with self._lock:
            self._query(f"INSERT OR REPLACE INTO accounts ({cols}) VALUES ({marks})", (device,) + values)
            if account.has_psk:
                self.psks[account.psk_identity] = account.psk_key

    def __delitem__(self, device: str) -> None:
        with self._lock:
            if device not in self:
                raise KeyError(device)
            self._query("DELETE FROM accounts WHERE device = ?", (device,))

    def __contains__(self, device: object) -> bool:
        return bool(self._query("SELECT 1 FROM accounts WHERE device = ?", (device,)))

    def __iter__(self) -> Iterator[str]:
        return iter([row[0] for row in self._query("SELECT device FROM accounts ORDER BY device")])

    def __len__(self) -> int:
        return self._query("SELECT COUNT(*) FROM accounts")[0][0]

    def close(self) -> None:
        """Close the file (checkpointing the WAL); the mapping is unusable afterwards."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> "SqliteAccounts":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _make_private(path: str) -> None:
    """Create ``path`` mode 0600 if absent, else narrow it (and its WAL files) to 0600."""
    try:
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        for name in (path, path + "-wal", path + "-shm"):
            if os.path.exists(name):
                os.chmod(name, 0o600)
    except OSError as exc:
        raise DmsimError(f"{path}: cannot create the store mode 0600: {exc.strerror or exc}") from None


class SqlitePsks(MutableMapping[bytes, bytes]):
    """PSK identity -> key (bytes -> bytes) in the ``psks`` table of an ``SqliteAccounts`` file."""

    def __init__(self, store: SqliteAccounts):
        self._store = store

    def __getitem__(self, identity: bytes) -> bytes:
        rows = self._store._query("SELECT key FROM psks WHERE identity = ?", (bytes(identity),))
        if not rows:
            raise KeyError(identity)
        return bytes(rows[0][0])

    def __setitem__(self, identity: bytes, key: bytes) -> None:
        self._store._query("INSERT OR REPLACE INTO psks (identity, key) VALUES (?, ?)",
                           (bytes(identity), bytes(key)))

    def __delitem__(self, identity: bytes) -> None:
        with self._store._lock:
            if identity not in self:
                raise KeyError(identity)
            self._store._query("DELETE FROM psks WHERE identity = ?", (bytes(identity),))

    def __contains__(self, identity: object) -> bool:
        if not isinstance(identity, (bytes, bytearray)):
            return False
        return bool(self._store._query("SELECT 1 FROM psks WHERE identity = ?", (bytes(identity),)))

    def __iter__(self) -> Iterator[bytes]:
        return iter([bytes(r[0]) for r in self._store._query("SELECT identity FROM psks ORDER BY identity")])

    def __len__(self) -> int:
        return self._store._query("SELECT COUNT(*) FROM psks")[0][0]
