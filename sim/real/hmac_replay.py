"""The x-syncml-hmac replay cache of the real DM server, persisted in its SQLite store.

The core's ``HmacVerifier`` remembers accepted (Timestamp, MAC) pairs in memory only, so after a
restart (or a kill -9) a message accepted just before it could be replayed while its Timestamp
is still inside the window (OMA-TS-DM_Security §5.6.1.2 asks the server to refuse replays).
``PersistentHmacVerifier`` runs the core's checks and then consults, and adds to, the
``hmac_seen`` table of the store, in the same file as the accounts: an accepted pair is on disk
(with the store's durability, FULL for ``dmsim server``) before the answer leaves.

Choice: persisting rather than refusing every Timestamp older than the server's start, because a
floor at the start refuses honest clients whose clock lags, or who signed in the second the
server started, for a whole window after every restart. Rows older than the window are pruned
every ``PRUNE_EVERY`` accepted messages, so the table is bounded by the accepted rate times the
window, like the core's cache.
"""
from __future__ import annotations

import sqlite3

from dmsim.base.errors import DmsimError
from dmsim.network.dm.hmac_integrity import DEFAULT_MAX_AGE, HmacVerifier, Reason, Verdict, parse_timestamp

PRUNE_EVERY = 256


class PersistentHmacVerifier(HmacVerifier):
    """An ``HmacVerifier`` whose replay cache also lives in ``store`` (a ``SqliteAccounts``)."""

    def __init__(self, store, *, max_age: float = DEFAULT_MAX_AGE, **kwargs):
        super().__init__(max_age=max_age, **kwargs)
        self.store = store
        self._accepted = 0
        self.store._query("CREATE TABLE IF NOT EXISTS hmac_seen (timestamp TEXT NOT NULL, mac BLOB NOT NULL, "
                          "sent REAL NOT NULL, PRIMARY KEY (timestamp, mac))")

    def verify(self, header_value: str | None, msg: bytes, key: bytes, now: float) -> Verdict:
        verdict = super().verify(header_value, msg, key, now)
        if not verdict.ok:
            return verdict
        ts, mac = verdict.header.timestamp, bytes(verdict.header.mac)
        try:
            self.store._query("INSERT INTO hmac_seen (timestamp, mac, sent) VALUES (?, ?, ?)",
                              (ts, mac, parse_timestamp(ts)))
        except DmsimError as exc:
            if not isinstance(exc.__context__, sqlite3.IntegrityError) and "UNIQUE" not in str(exc):
                raise
            return Verdict(Reason.REPLAY, f"mac already accepted before a restart (Timestamp {ts})",
                           header=verdict.header)
        self._accepted += 1
        if self._accepted % PRUNE_EVERY == 0:
            self.store._query("DELETE FROM hmac_seen WHERE sent < ?", (now - self.max_age,))
        return verdict
