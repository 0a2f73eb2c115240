"""The real DM server's audit log: one JSON object per line for every access and every event
of the core (authentication outcomes included).

Each line has ``time`` (UTC seconds since the epoch), ``event`` (``access`` for one HTTP request,
else the core's event kind, logged generically so new kinds appear without a change here),
``peer`` (the IP address), ``device`` (as the message claims it: unauthenticated), ``outcome``
(``success``, ``failure`` or ``info``) and ``mechanism`` (the transport, and the account's
authentication scheme when the device is known), plus ``status``/``path``/``bytes`` for an
access and ``detail`` for an event. Never a secret: no header, body, password, nonce or key is
written, and every attacker-chosen text is cut to ``MAX_TEXT`` characters (JSON escaping keeps
one record per line).

Bounded: the file is rotated when it would pass ``max_bytes`` (``FILE`` -> ``FILE.1`` ... up to
``backups`` old files), so the log takes at most (backups + 1) x max_bytes on disk. Files are
created mode 0600 (peer addresses and device identities are personal data). A write that fails
(disk full) is counted in ``dropped`` and does not stop the server.
"""
from __future__ import annotations

import json
import os
import threading
import time

MAX_TEXT = 200
DEFAULT_MAX_BYTES = 10 << 20
DEFAULT_BACKUPS = 3


def outcome_of(kind: str) -> str:
    """Return success, failure or info for an event kind (named the core's way)."""
    if any(word in kind for word in ("fail", "reject", "refused", "bad", "denied", "blocked")):
        return "failure"
    if any(word in kind for word in ("authenticated", "completed", "ok", "installed")):
        return "success"
    return "info"


def _cut(value):
    return value[:MAX_TEXT] if isinstance(value, str) else value


class AuditLog:
    """Appends JSON lines to ``path`` (None: keeps nothing), rotated at ``max_bytes``."""

    def __init__(self, path: str | None, *, max_bytes: int = DEFAULT_MAX_BYTES, backups: int = DEFAULT_BACKUPS):
        self.path, self.max_bytes, self.backups = path, max_bytes, backups
        self.dropped = 0
        self._lock = threading.Lock()
        self._file = None
        if path is not None:
            self._open()

    def _open(self) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._file = os.fdopen(fd, "ab", buffering=0)

    def write(self, event: str, **fields) -> None:
        """Append one record (``fields`` with None values left out)."""
        if self.path is None:
            return
        record = {"time": round(time.time(), 3), "event": _cut(event)}
        record.update({k: _cut(v) for k, v in fields.items() if v is not None})
        line = (json.dumps(record, ensure_ascii=True) + "\n").encode("ascii")
        with self._lock:
            try:
                if self._file.tell() + len(line) > self.max_bytes:
                    self._rotate()
                self._file.write(line)
            except (OSError, ValueError):
                self.dropped += 1

    def _rotate(self) -> None:
        self._file.close()
        rotate_backups(self.path, self.backups)
        self._open()

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
                self.path = None


def rotate_backups(path: str | os.PathLike, backups: int) -> None:
    """Shift ``path`` to ``path.1``, ``path.1`` to ``path.2`` ... keeping ``backups`` old files (the
    oldest is dropped); with no backups, remove ``path``. The caller then opens ``path`` anew."""
    path = str(path)
    for i in range(backups, 0, -1):
        older = f"{path}.{i - 1}" if i > 1 else path
        if os.path.exists(older):
            os.replace(older, f"{path}.{i}")
    if backups == 0 and os.path.exists(path):
        os.remove(path)
