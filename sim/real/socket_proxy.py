"""A socket-like object over a connected socket: the part of the socket interface that
``http.server`` and ``http.client`` use, delegated to ``sock``. Subclasses change how bytes are
read and written (``recv``/``sendall``: a deadline, a TLS session); ``makefile`` gives them file
objects on those two methods.

No spec clause: driver plumbing. Choices: ``shutdown`` ignores OSError (the peer may be gone; the
caller closes next either way). ``close`` behaves like ``socket.socket.close`` with its
``makefile`` reference count (``_io_refs``): while a file made by ``makefile`` is open, closing
the proxy only marks it closed, and the connection really closes (``_real_close``) when the last
file does. ``http.client`` relies on that: it closes the connection as soon as a response says
``Connection: close`` and reads the body through the response's file afterwards, so a body
arriving after the headers (a later TLS record) would otherwise be lost (``IncompleteRead``).
"""
from __future__ import annotations

import io


class SocketProxy:
    """Delegates to the connected socket ``sock``; subclasses define ``recv`` and ``sendall``."""

    def __init__(self, sock):
        self.sock = sock
        self._io_refs = 0  # open files from makefile (module docstring)
        self._closed = False

    def recv(self, size: int) -> bytes:
        raise NotImplementedError

    def sendall(self, data) -> None:
        raise NotImplementedError

    def makefile(self, mode: str = "rb", buffering: int | None = None, **_ignored) -> io.IOBase:
        """Return a binary file on ``recv`` ("rb") or ``sendall`` ("wb"); unbuffered for ``buffering=0``."""
        raw = RawConnection(self, mode)
        self._io_refs += 1
        if buffering == 0:
            return raw
        size = io.DEFAULT_BUFFER_SIZE if buffering in (None, -1) else buffering
        return io.BufferedReader(raw, size) if "r" in mode else io.BufferedWriter(raw, size)

    def settimeout(self, timeout: float | None) -> None:
        self.sock.settimeout(timeout)

    def gettimeout(self) -> float | None:
        return self.sock.gettimeout()

    def setsockopt(self, *args) -> None:
        self.sock.setsockopt(*args)

    def fileno(self) -> int:
        return self.sock.fileno()

    def getpeername(self):
        return self.sock.getpeername()

    def getsockname(self):
        return self.sock.getsockname()

    def shutdown(self, how: int) -> None:
        try:
            self.sock.shutdown(how)
        except OSError:
            pass

    def close(self) -> None:
        """Close the connection, or once the last file of ``makefile`` is closed (docstring)."""
        self._closed = True
        if self._io_refs <= 0:
            self._real_close()

    def _real_close(self) -> None:
        self.sock.close()

    def _decref_io(self) -> None:
        """One file of ``makefile`` was closed: really close a proxy closed meanwhile."""
        if self._io_refs > 0:
            self._io_refs -= 1
            if self._closed and self._io_refs == 0:
                self._real_close()


class RawConnection(io.RawIOBase):
    """A raw binary stream over a ``SocketProxy``; closing it leaves the connection open, unless
    the proxy was closed meanwhile and this was its last file (``SocketProxy.close``)."""

    def __init__(self, conn: SocketProxy, mode: str):
        self._conn, self._mode = conn, mode

    def close(self) -> None:
        if not self.closed:
            super().close()
            self._conn._decref_io()

    def readable(self) -> bool:
        return "r" in self._mode

    def writable(self) -> bool:
        return "w" in self._mode

    def readinto(self, buffer) -> int:
        data = self._conn.recv(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def write(self, data) -> int:
        self._conn.sendall(bytes(data))
        return len(data)
