"""Atomic file output for run folders: a file either has its old content or its whole new content.

No spec clause. Every output is written to ``<name>.part`` in the same folder, flushed to disk
(fsync) and then renamed over the final name with ``os.replace``, which is atomic on POSIX and
Windows when both names are on one file system (hence the same folder). A reader therefore never
sees a half-written ``summary.json`` or PNG; a crash leaves at most a stray ``.part`` file.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dmsim.base.errors import DmsimError

PART_SUFFIX = ".part"


def part_path(path: str | os.PathLike[str]) -> Path:
    """Return the temporary name ``<name>.part`` that ``path`` is written under."""
    path = Path(path)
    return path.with_name(path.name + PART_SUFFIX)


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable; directories cannot be opened on Windows, so skip there.
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def commit_part(path: str | os.PathLike[str]) -> Path:
    """Fsync ``<path>.part`` and rename it to ``path``; return the final path."""
    path = Path(path)
    part = part_path(path)
    with open(part, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(part, path)
    _fsync_dir(path.parent)
    return path


@contextmanager
def atomic_target(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield the ``.part`` path to write; on normal exit commit it to ``path``.

    If the block raises, the ``.part`` file is removed and ``path`` keeps its old content (or
    stays absent). Use it for writers that take a file name, such as ``Figure.savefig``.
    """
    path = Path(path)
    part = part_path(path)
    try:
        yield part
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    commit_part(path)


def write_atomic(path: str | os.PathLike[str], data: bytes | str) -> Path:
    """Write ``data`` (str is encoded as UTF-8) atomically to ``path``; return the final path."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    with atomic_target(path) as part:
        with open(part, "wb") as f:
            f.write(data)
    return Path(path)


def write_json_atomic(path: str | os.PathLike[str], obj: object) -> Path:
    """Write ``obj`` as JSON (sorted keys, indent 2, trailing newline) atomically; return the path.

    NaN and infinities are refused (they are not JSON): producers write ``None`` for "no value".
    """
    try:
        text = json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise DmsimError(f"{Path(path).name}: cannot write as JSON: {exc}") from exc
    return write_atomic(path, text + "\n")
