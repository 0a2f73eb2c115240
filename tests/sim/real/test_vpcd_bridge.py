"""VpcdBridge (sim/real/vpcd.py): its bounded wait for a first connection, and a 1-byte C-APDU
that must get an answer without wedging the reader (issue 13), over a socket and through pcscd."""
import os
import shutil
import socket
import subprocess
import threading
import time

import pytest

from dmsim.sim.real.vpcd import VpcdBridge


class _Card:
    atr = b"\x3b\x00"

    def process(self, apdu: bytes) -> bytes:
        return b"\x90\x00"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_gives_up_when_nothing_listens():
    port = _free_port()
    bridge = VpcdBridge(_Card(), "127.0.0.1", port, give_up_after=0.3)
    started = time.monotonic()
    bridge.serve_forever()
    assert time.monotonic() - started < 5
    assert bridge.failure and f"127.0.0.1:{port}" in bridge.failure and "attempt" in bridge.failure


def test_does_not_give_up_once_connected():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        bridge = VpcdBridge(_Card(), "127.0.0.1", server.getsockname()[1], give_up_after=0.2)
        thread = threading.Thread(target=bridge.serve_forever, daemon=True)
        thread.start()
        conn, _ = server.accept()
        conn.sendall(b"\x00\x01\x04")                 # get ATR
        assert conn.recv(16) == b"\x00\x02\x3b\x00"
        conn.close()
    time.sleep(0.6)                                   # dropped, nothing listens any more: keeps retrying
    assert thread.is_alive() and bridge.failure is None
    bridge.stop()
    thread.join(5)
    assert not thread.is_alive()


# --- issue 13: a 1-byte C-APDU must not wedge the reader --------------------------------------
# vpcd forwards a 1-byte C-APDU as a 1-byte payload, like a control code, then blocks until it
# is answered. Before the fix the bridge logged "unknown vpcd control code 0xae ignored" and
# never answered: vpcd, and pcscd's reader with it, stayed blocked for every client (>= 30 s).

class _Vpcd:
    """vpcd's side of the wire over a local socket (no PC/SC stack needed)."""

    def __init__(self, card, ambiguous_wait=0.3):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(5)
        self.bridge = VpcdBridge(card, port=self.server.getsockname()[1], ambiguous_wait=ambiguous_wait)
        self.thread = threading.Thread(target=self.bridge.serve_forever, daemon=True)
        self.thread.start()
        self.conn, _ = self.server.accept()
        self.conn.settimeout(5)                        # bound: any answer within 5 s, or the test fails

    def send(self, payload: bytes) -> None:
        self.conn.sendall(len(payload).to_bytes(2, "big") + payload)

    def recv(self) -> bytes:
        size = int.from_bytes(self._exact(2), "big")
        return self._exact(size)

    def _exact(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.conn.recv(n - len(buf))
            assert chunk, "bridge closed the connection"
            buf += chunk
        return buf

    def close(self) -> None:
        self.bridge.stop()
        self.thread.join(5)
        self.conn.close()
        self.server.close()
        assert not self.thread.is_alive()


class _ResetCard(_Card):
    resets = 0

    def reset(self) -> None:
        self.resets += 1


def test_unknown_one_byte_payload_is_answered_6700_at_once():
    vpcd = _Vpcd(_ResetCard())
    try:
        for code in (0xAE, 0x07, 0xFF):                # bounded: 3 codes, each answered within 0.25 s
            started = time.monotonic()
            vpcd.send(bytes([code]))
            assert vpcd.recv() == b"\x67\x00"
            assert time.monotonic() - started < 0.25
        vpcd.send(b"")                                 # an empty frame is answered too
        assert vpcd.recv() == b"\x67\x00"
        vpcd.send(b"\x00\xa4\x00\x00")
        assert vpcd.recv() == b"\x90\x00"
        assert vpcd.bridge.short_apdus == 4
    finally:
        vpcd.close()


def test_one_byte_00_01_02_with_vpcd_waiting_is_a_c_apdu():
    card = _ResetCard()
    vpcd = _Vpcd(card, ambiguous_wait=0.3)
    try:
        for code in (0x00, 0x01, 0x02):                # vpcd sends nothing more: it waits for an answer
            started = time.monotonic()
            vpcd.send(bytes([code]))
            assert vpcd.recv() == b"\x67\x00"
            assert 0.25 < time.monotonic() - started < 2.0
        assert card.resets == 0 and not vpcd.bridge.powered   # the attacker's "APDU 01" reset nothing
    finally:
        vpcd.close()


def test_control_codes_followed_by_a_message_get_no_answer():
    card = _ResetCard()
    vpcd = _Vpcd(card, ambiguous_wait=0.3)
    try:
        vpcd.send(b"\x01")                             # power on, then pcscd's get ATR
        vpcd.send(b"\x04")
        assert vpcd.recv() == _Card.atr
        vpcd.send(b"\x02")
        vpcd.send(b"\x00\xa4\x00\x00")
        assert vpcd.recv() == b"\x90\x00"              # no stray '6700' before it
        assert card.resets == 2 and vpcd.bridge.powered
        vpcd.send(b"\x00")
        time.sleep(0.1)                                # well inside the 0.3 s wait
        vpcd.send(b"\x04")
        assert vpcd.recv() == _Card.atr and not vpcd.bridge.powered
        vpcd.conn.settimeout(0.6)                      # nothing else comes: the power off got no answer
        try:
            extra = vpcd.conn.recv(16)
        except socket.timeout:
            extra = None
        assert extra is None
    finally:
        vpcd.close()


# --- the same attack through the real stack: pyscard -> pcscd -> vpcd -> VpcdBridge -------------

READER = "Virtual PCD 00 00"
SELECT = bytes.fromhex("00a4000c023f00")


class _SelectCard:
    atr = bytes.fromhex("3b021450")

    def process(self, apdu: bytes) -> bytes:
        return b"\x90\x00"


@pytest.fixture(scope="module")
def real_reader():
    """Yield a bridge serving _SelectCard in READER through a real pcscd (started here if none runs)."""
    from dmsim.base.errors import PcscUnavailableError
    try:
        from dmsim.sim.real import pcsc_link
    except ImportError as exc:  # pragma: no cover
        pytest.skip(f"cannot import the PC/SC link: {exc}")
    binary = shutil.which("pcscd") or shutil.which("pcscd", path="/usr/sbin:/sbin")
    if pcsc_link.scard is None or binary is None:
        if os.environ.get("DMSIM_REQUIRE_PCSC") == "1":
            pytest.fail("pyscard or pcscd missing (DMSIM_REQUIRE_PCSC=1)")
        pytest.skip("needs pyscard and pcscd with vsmartcard-vpcd")

    def readers():
        try:
            return pcsc_link.list_readers()
        except PcscUnavailableError:
            return None

    proc = None if readers() is not None else subprocess.Popen(
        [binary, "-f"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    bridge = VpcdBridge(_SelectCard())
    thread = threading.Thread(target=bridge.serve_forever, daemon=True)
    try:
        deadline = time.monotonic() + 10
        while READER not in (readers() or []):
            if time.monotonic() > deadline:
                pytest.skip(f"no reader {READER!r} after 10 s (vsmartcard-vpcd installed?)")
            time.sleep(0.05)
        thread.start()
        pcsc_link.wait_for_card(READER, timeout=10, probe=SELECT).disconnect()
        yield bridge
    finally:
        bridge.stop()
        if thread.ident is not None:  # a skip before the reader showed up never started it
            thread.join(5)
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=5)


def _transmit(apdu: bytes, bound: float) -> tuple[list, int, int, float] | None:
    """Transmit ``apdu`` in a fresh PC/SC connection in a thread; None if not answered within ``bound`` s."""
    from smartcard.System import readers

    out: list = []

    def run():
        conn = next(r for r in readers() if str(r).startswith(READER)).createConnection()
        conn.connect()
        started = time.monotonic()
        try:
            data, sw1, sw2 = conn.transmit(list(apdu))
            out.append((data, sw1, sw2, time.monotonic() - started))
        finally:
            conn.disconnect()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(bound)
    return out[0] if out else None


def test_one_byte_apdu_through_pcscd_gets_6700_and_others_go_on(real_reader):
    for apdu in (b"\xae", b"\x01"):                    # bounded: 2 attacks, each answered within 3 s
        answer = _transmit(apdu, bound=3.0)
        assert answer is not None, f"1-byte APDU {apdu.hex()} wedged the reader"
        assert answer[1:3] == (0x67, 0x00)
        victim = _transmit(SELECT, bound=3.0)         # a second client right after it
        assert victim is not None and victim[1:3] == (0x90, 0x00) and victim[3] < 1.0
