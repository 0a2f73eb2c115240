"""The real PC/SC stack: pyscard -> pcscd -> vpcd -> VpcdBridge -> an in-process card.

Needs pcscd, vsmartcard-vpcd and pyscard (``./dev test`` installs them and runs pcscd). Without
them these tests are skipped, unless DMSIM_REQUIRE_PCSC=1 (set by ``./dev test`` when CI=true),
which makes a missing stack a failure. If no pcscd runs, the fixture starts ``pcscd -f`` and
stops it afterwards.

The bridge tests at the end need none of this: they play vpcd's side over a local socket.
"""
import os
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time

import pytest

from dmsim.sim.real.vpcd import VpcdBridge
from dmsim.base.errors import CardAbsentError, PcscUnavailableError, ReaderNotFoundError
from test_card_link import CASE4, EF_DATA, FCP_MF, READ_BINARY_WRONG_LE, SELECT_MF, SELECT_MF_FCP, StandInCard

READER = "Virtual PCD 00 00"
EMPTY_READER = "Virtual PCD 00 01"
DELAYED_ACK = 0.040
MEDIAN_BOUND = 0.010   # "well under" the 40 ms delayed-ACK stall


def _missing(reason: str):
    if os.environ.get("DMSIM_REQUIRE_PCSC") == "1":
        pytest.fail(f"{reason} (DMSIM_REQUIRE_PCSC=1 requires the PC/SC stack)", pytrace=False)
    pytest.skip(reason)


def _wait(what: str, probe, timeout: float = 10.0):
    """Return probe()'s first non-None result; after ``timeout`` seconds the stack is missing."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result is not None:
            return result
        if time.monotonic() > deadline:
            _missing(f"no {what} after {timeout:.0f} s")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def pcscd():
    """Yield once pcscd shows the vpcd reader (pcscd is started here, and stopped after, if none runs)."""
    try:
        from dmsim.sim.real import pcsc_link
    except ImportError as exc:  # pragma: no cover
        _missing(f"cannot import the PC/SC link: {exc}")
    if pcsc_link.scard is None:
        _missing("pyscard is not installed (pip install pyscard)")
    binary = shutil.which("pcscd") or shutil.which("pcscd", path="/usr/sbin:/sbin")
    if binary is None:
        _missing("pcscd is not installed (apt-get install pcscd vsmartcard-vpcd)")

    def running():
        try:
            return pcsc_link.list_readers()
        except PcscUnavailableError:
            return None

    proc = None
    if running() is None:
        proc = subprocess.Popen([binary, "-f"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield _wait(f"reader {READER!r} (is pcscd up, vsmartcard-vpcd installed?)",
                    lambda: READER in (running() or []) or None)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=5)


@pytest.fixture(scope="module")
def served(pcscd):
    """Yield (card, bridge, link): the stand-in card in reader READER, connected through PC/SC."""
    from dmsim.sim.real.pcsc_link import wait_for_card

    card = StandInCard(reply_len=300)
    bridge = VpcdBridge(card)
    thread = threading.Thread(target=bridge.serve_forever, name="vpcd-bridge", daemon=True)
    thread.start()
    link = wait_for_card(READER, timeout=10, probe=SELECT_MF)
    yield card, bridge, link
    link.disconnect()
    bridge.stop()
    thread.join(timeout=5)
    assert not thread.is_alive()


def test_select_and_read_binary(served):
    _card, _bridge, link = served
    assert link.transmit(SELECT_MF) == (b"", 0x9000)
    assert link.transmit(READ_BINARY_WRONG_LE) == (EF_DATA, 0x9000)   # 6CXX handled


def test_61xx_chaining_through_pcscd(served):
    card, _bridge, link = served
    assert link.transmit(SELECT_MF_FCP) == (FCP_MF, 0x9000)
    data, sw = link.transmit(CASE4)
    assert sw == 0x9000 and data == bytes(i & 0xFF for i in range(300))
    assert card.seen[-2:] == [bytes.fromhex("00c0000000"), bytes.fromhex("00c000002c")]


def test_atr_and_protocol(served):
    _card, _bridge, link = served
    assert link.atr == StandInCard.atr
    assert link.active_protocol in ("T0", "T1")


def test_round_trip_is_well_under_the_delayed_ack(served, record_property):
    _card, _bridge, link = served
    samples = []
    for _ in range(200):
        link.transmit(SELECT_MF)
        samples.append(link.last_latency)
    median = statistics.median(samples)
    record_property("pcsc_median_ms", round(median * 1e3, 3))
    assert median < MEDIAN_BOUND, f"median {median * 1e3:.2f} ms: the {DELAYED_ACK * 1e3:.0f} ms delayed-ACK stall?"


def test_typed_errors(pcscd):
    from dmsim.sim.real.pcsc_link import PcscLink

    with pytest.raises(ReaderNotFoundError, match="readers"):
        PcscLink("No Such Reader")
    with pytest.raises(ReaderNotFoundError):
        PcscLink(99)
    with pytest.raises(CardAbsentError):
        PcscLink(EMPTY_READER)


def test_pcscd_down_is_a_typed_error(pcscd, tmp_path):
    # pcsc-lite's client finds pcscd through PCSCLITE_CSOCK_NAME; a fresh process is needed
    # because the library reads it once.
    code = ("from dmsim.sim.real.pcsc_link import PcscLink\n"
            "from dmsim.base.errors import PcscUnavailableError\n"
            "try:\n    PcscLink(0)\nexcept PcscUnavailableError as e:\n    print('typed:', e)\n")
    env = dict(os.environ, PCSCLITE_CSOCK_NAME=str(tmp_path / "no-pcscd.comm"))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=30)
    assert out.stdout.startswith("typed:") and "pcscd" in out.stdout, out.stdout + out.stderr


# --- the bridge against a stand-in vpcd (no PC/SC stack needed) --------------------------------

class FakeVpcd:
    """vpcd's side of the protocol: a listening socket that frames payloads."""

    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(5)
        self.port = self.server.getsockname()[1]
        self.conn = None

    def accept(self):
        self.conn, _ = self.server.accept()
        self.conn.settimeout(5)

    def send(self, payload: bytes, raw: bytes | None = None):
        self.conn.sendall(raw if raw is not None else len(payload).to_bytes(2, "big") + payload)

    def recv(self) -> bytes:
        size = int.from_bytes(self._exact(2), "big")
        return self._exact(size)

    def _exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.conn.recv(n - len(buf))
            assert chunk, "bridge closed the connection"
            buf += chunk
        return buf


@pytest.fixture
def fake():
    vpcd = FakeVpcd()
    card = StandInCard()
    bridge = VpcdBridge(card, port=vpcd.port)
    thread = threading.Thread(target=bridge.serve_forever, daemon=True)
    thread.start()
    vpcd.accept()
    yield vpcd, card, bridge
    bridge.stop()
    thread.join(timeout=5)
    assert not thread.is_alive()
    vpcd.server.close()


def test_bridge_control_codes(fake):
    vpcd, card, bridge = fake
    vpcd.send(b"\x04")
    assert vpcd.recv() == StandInCard.atr
    vpcd.send(b"\x01")
    vpcd.send(b"\x02")
    vpcd.send(SELECT_MF)              # the power on/reset got no answer: this is the next one
    assert vpcd.recv() == b"\x90\x00"
    assert card.resets == 2 and bridge.powered
    vpcd.send(b"\x00")
    vpcd.send(SELECT_MF)
    assert vpcd.recv() == b"\x90\x00" and not bridge.powered


def test_bridge_survives_malformed_frames(fake):
    vpcd, card, _bridge = fake
    vpcd.send(b"", raw=b"\x00\x00")   # empty frame: no C-APDU
    vpcd.send(b"\x07")                # no control code: a 1-byte C-APDU (issue 13: answered, not ignored)
    vpcd.send(b"\x00\xa4\x00")        # 3 bytes: no C-APDU
    assert [vpcd.recv() for _ in range(3)] == [b"\x67\x00"] * 3
    card.process = lambda apdu: 1 / 0  # a card bug
    vpcd.send(SELECT_MF)
    assert vpcd.recv() == b"\x6f\x00"
    card.process = lambda apdu: b"\x90"
    vpcd.send(SELECT_MF)
    assert vpcd.recv() == b"\x6f\x00"
    del card.process
    vpcd.send(SELECT_MF)
    assert vpcd.recv() == b"\x90\x00"


def test_bridge_reconnects_when_vpcd_restarts(fake):
    vpcd, _card, bridge = fake
    vpcd.send(b"", raw=b"\x00\x05\x00\xa4")   # the connection drops mid-frame
    vpcd.conn.close()
    vpcd.accept()
    vpcd.send(SELECT_MF)
    assert vpcd.recv() == b"\x90\x00"
    assert bridge.connected.wait(1)
