"""PcscLink: a card in a PC/SC reader, through pcscd and pyscard (PC/SC Workgroup spec part 5).

Uses pyscard's thin ``smartcard.scard`` layer (SCardEstablishContext, SCardListReaders,
SCardConnect, SCardTransmit, SCardDisconnect), so every PC/SC result code can be turned into
one of dmsim's typed errors:

* ``PcscUnavailableError``: pyscard is not installed, or pcscd is not running;
* ``ReaderNotFoundError``: no reader, or none matching the one asked for;
* ``CardAbsentError``: the reader holds no card, or the card was removed;
* ``CardLinkError``: any other PC/SC failure, with pcsc-lite's message.

A reader is named by its index in ``list_readers()`` or by its name; a name that is not exact
matches the one reader whose name starts with it ("Virtual PCD 00 00" or "Virtual PCD").
61XX / 6CXX chaining and timing come from ``CardLink``.

``wait_for_card`` exists because pcscd notices a card's removal only at its next poll: right
after a virtual card disconnects and a new one connects to vpcd, SCardConnect still succeeds on
the stale card and the first SCardTransmit fails. Waiting until a probe APDU goes through avoids
that.
"""
from __future__ import annotations

import time
from typing import Callable

from dmsim.cards.link import CardLink, TraceHook
from dmsim.base.errors import CardAbsentError, CardLinkError, PcscUnavailableError, ReaderNotFoundError

try:
    from smartcard import scard
except ImportError:  # pragma: no cover - depends on the machine
    scard = None

PROTOCOLS = ("T0", "T1", "any")


def _scard():
    """Return pyscard's ``smartcard.scard`` module, or raise PcscUnavailableError."""
    if scard is None:
        raise PcscUnavailableError("pyscard is not installed (pip install 'dmsim[pcsc]')")
    return scard


def _check(hresult: int, doing: str, reader: str = "") -> None:
    """Raise the typed error for a failed PC/SC call (nothing for SCARD_S_SUCCESS)."""
    s = _scard()
    if hresult == s.SCARD_S_SUCCESS:
        return
    text = f"{doing}: {s.SCardGetErrorMessage(hresult)} (0x{hresult & 0xFFFFFFFF:08X})"
    if reader:
        text = f"{reader}: {text}"
    if hresult in (s.SCARD_E_NO_SERVICE, s.SCARD_E_SERVICE_STOPPED):
        raise PcscUnavailableError(f"{text}; is pcscd running?")
    if hresult in (s.SCARD_E_NO_READERS_AVAILABLE, s.SCARD_E_UNKNOWN_READER, s.SCARD_E_READER_UNAVAILABLE):
        raise ReaderNotFoundError(text)
    if hresult in (s.SCARD_E_NO_SMARTCARD, s.SCARD_W_REMOVED_CARD, s.SCARD_W_UNPOWERED_CARD):
        raise CardAbsentError(text)
    raise CardLinkError(text)


def _context() -> int:
    """Return a new PC/SC context handle (release it with SCardReleaseContext)."""
    s = _scard()
    hresult, context = s.SCardEstablishContext(s.SCARD_SCOPE_USER)
    _check(hresult, "SCardEstablishContext")
    return context


def _readers(context: int) -> list[str]:
    """Return the reader names the PC/SC context sees (empty if none)."""
    s = _scard()
    hresult, readers = s.SCardListReaders(context, [])
    if hresult == s.SCARD_E_NO_READERS_AVAILABLE:
        return []
    _check(hresult, "SCardListReaders")
    return list(readers)


def list_readers() -> list[str]:
    """Return the names of the readers pcscd knows."""
    s = _scard()
    context = _context()
    try:
        return _readers(context)
    finally:
        s.SCardReleaseContext(context)


def pick_reader(readers: list[str], reader: int | str) -> str:
    """Return the reader name that ``reader`` (an index or a name) designates among ``readers``."""
    if not readers:
        raise ReaderNotFoundError("no PC/SC reader")
    if isinstance(reader, int):
        if 0 <= reader < len(readers):
            return readers[reader]
        raise ReaderNotFoundError(f"no reader #{reader}; readers: {readers}")
    if reader in readers:
        return reader
    matches = [r for r in readers if r.startswith(reader)]
    if len(matches) == 1:
        return matches[0]
    what = "matches more than one reader" if matches else "matches no reader"
    raise ReaderNotFoundError(f"{reader!r} {what}; readers: {readers}")


class PcscLink(CardLink):
    """A card in PC/SC reader ``reader`` (index or name), over T=0, T=1 or whichever the card offers.

    ``connect()`` is called by the constructor unless ``connect=False``; the link is a context
    manager that disconnects on exit.
    """

    def __init__(self, reader: int | str = 0, protocol: str = "any", *, connect: bool = True,
                 trace: TraceHook | None = None, clock: Callable[[], float] = time.perf_counter):
        super().__init__(trace, clock)
        if protocol not in PROTOCOLS:
            raise CardLinkError(f"protocol {protocol!r} is not one of {PROTOCOLS}")
        self.reader = reader
        self.protocol = protocol
        self.reader_name = ""
        self.active_protocol = ""
        self._context: int | None = None
        self._card: int | None = None
        self._pci = None
        if connect:
            self.connect()

    def connect(self) -> None:
        """Connect to the card in shared mode; raise a CardLinkError subclass on failure."""
        if self._card is not None:
            return
        s = _scard()
        self._context = _context()
        try:
            self.reader_name = pick_reader(_readers(self._context), self.reader)
            wanted = {"T0": s.SCARD_PROTOCOL_T0, "T1": s.SCARD_PROTOCOL_T1,
                      "any": s.SCARD_PROTOCOL_T0 | s.SCARD_PROTOCOL_T1}[self.protocol]
            hresult, card, active = s.SCardConnect(self._context, self.reader_name, s.SCARD_SHARE_SHARED, wanted)
            _check(hresult, "SCardConnect", self.reader_name)
        except BaseException:
            s.SCardReleaseContext(self._context)
            self._context = None
            raise
        self._card = card
        self.active_protocol = "T0" if active == s.SCARD_PROTOCOL_T0 else "T1"
        self._pci = s.SCARD_PCI_T0 if active == s.SCARD_PROTOCOL_T0 else s.SCARD_PCI_T1

    def disconnect(self) -> None:
        """Leave the card powered and release the PC/SC context (safe to call twice)."""
        s = _scard()
        if self._card is not None:
            s.SCardDisconnect(self._card, s.SCARD_LEAVE_CARD)
            self._card = None
        if self._context is not None:
            s.SCardReleaseContext(self._context)
            self._context = None

    @property
    def atr(self) -> bytes:
        """Return the ATR pcscd read from the card."""
        s = _scard()
        hresult, _reader, _state, _protocol, atr = s.SCardStatus(self._connected())
        _check(hresult, "SCardStatus", self.reader_name)
        return bytes(atr)

    def _connected(self) -> int:
        if self._card is None:
            raise CardLinkError(f"{self.reader_name or self.reader}: not connected")
        return self._card

    def _transmit_raw(self, apdu: bytes) -> bytes:
        hresult, response = _scard().SCardTransmit(self._connected(), self._pci, list(apdu))
        _check(hresult, "SCardTransmit", self.reader_name)
        return bytes(response)


def wait_for_card(reader: int | str, timeout: float = 10.0, probe: bytes | None = None,
                  protocol: str = "any") -> PcscLink:
    """Return a connected PcscLink once ``reader`` holds a card (that answers ``probe``, if given).

    Waits for pcscd, the reader and the card alike; raises the last CardLinkError after
    ``timeout`` seconds (PcscUnavailableError at once if pyscard is missing).
    """
    _scard()
    deadline = time.monotonic() + timeout
    while True:
        link = PcscLink(reader, protocol, connect=False)
        try:
            link.connect()
            if probe is not None:
                link.transmit(probe)
            return link
        except CardLinkError:
            link.disconnect()
            if time.monotonic() > deadline:
                raise
        time.sleep(0.05)
