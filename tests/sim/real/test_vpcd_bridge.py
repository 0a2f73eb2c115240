"""VpcdBridge's bounded wait for its first connection (sim/real/vpcd.py)."""
import socket
import threading
import time

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
