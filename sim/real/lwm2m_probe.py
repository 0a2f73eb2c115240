"""``dmsim lwm2m probe``: is an LwM2M server's channel up? A DTLS 1.2 PSK handshake (seed 004 §7.1,
RFC 6347) and then a CoAP ping (RFC 7252 §4.3), over a real UDP socket.

The sans-IO ``DtlsEndpoint`` and CoAP ``Endpoint`` run on the wall clock here (their
retransmission timers included). ``coaps://`` runs both steps; ``coap://`` (NoSec) only the ping.

Outcomes (:class:`ProbeResult`): ``handshake`` is ``ok``, ``failed`` or ``skipped`` (coap://);
``ping`` is ``ok`` (the peer answered the Empty CON with a RST, §4.3, or an Empty ACK), ``failed``
or ``not_run`` (no association to run it on). Each step gets ``timeout`` seconds of its own; a
CoAP peer that lets a ping go unanswered that long is as good as absent, even if RFC 7252 would
retransmit for 45 s. A DTLS peer that is no CoAP endpoint (``openssl s_server``) completes the
handshake and never answers the ping: the result says so (handshake ok, ping failed, no answer).
``reason`` names the step that failed and why, in one line; ``ok`` is true only when every step
run succeeded.

Choices: the low-entropy flag makes the probe offer only TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256,
as a client provisioned with a PIN must (``dtls_policy.client_suites``); the host is resolved
once (first address of ``getaddrinfo``); the socket is connected, so datagrams from anyone else
are never read; an open association is closed with close_notify at the end.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from urllib.parse import urlsplit

from dmsim.base.errors import ScenarioError
from dmsim.network.coap.reliability import Acknowledged, Reset, Timeout
from dmsim.network.lwm2m import dtls
from dmsim.sim.real.coap_udp_channel import UdpChannel

DEFAULT_TIMEOUT = 5.0
_PORTS = {"coap": 5683, "coaps": 5684}


@dataclass
class ProbeResult:
    uri: str
    handshake: str = "skipped"
    suite: str | None = None
    handshake_ms: float | None = None
    ping: str = "not_run"
    ping_rtt_ms: float | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.handshake in ("ok", "skipped") and self.ping == "ok"

    def as_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}


def parse_uri(uri: str) -> tuple[str, str, int]:
    """Return (scheme, host, port) of ``coaps://HOST[:PORT]`` or ``coap://HOST[:PORT]``;
    ScenarioError otherwise."""
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError as exc:
        raise ScenarioError(f"{uri!r}: {exc}", path="uri", expected="coaps://HOST:PORT or coap://HOST:PORT") from None
    if parts.scheme not in _PORTS or not parts.hostname or parts.path not in ("", "/") or parts.query:
        raise ScenarioError(f"{uri!r} is not a CoAP server address", path="uri",
                            expected="coaps://HOST:PORT or coap://HOST:PORT")
    return parts.scheme, parts.hostname, port or _PORTS[parts.scheme]


def probe(uri: str, *, identity: bytes | None = None, key: bytes | None = None, low_entropy: bool = False,
          timeout: float = DEFAULT_TIMEOUT, clock: Callable[[], float] = time.monotonic,
          randbytes: Callable[[int], bytes] = os.urandom) -> ProbeResult:
    """Probe ``uri`` (module docstring). ScenarioError for a URI that does not parse or a coaps://
    URI without ``identity`` and ``key``; the network's failures are results, never exceptions."""
    scheme, host, port = parse_uri(uri)
    if scheme == "coaps" and (not identity or not key):
        raise ScenarioError("coaps:// needs a PSK identity and key", path="psk", expected="--psk-identity and --psk")
    config = (dtls.psk_client_config(identity, key, entropy="low" if low_entropy else "high")
              if scheme == "coaps" else None)
    result = ProbeResult(uri)
    try:
        channel = UdpChannel.connect(host, port, config, randbytes=randbytes, clock=clock)
    except OSError as exc:
        result.handshake = "failed" if config else "skipped"
        result.reason = f"cannot reach {host}: {exc.strerror or exc}"
        return result
    with channel:
        if channel.dtls is None or _handshake(channel, result, timeout):
            _ping(channel, result, timeout)
    return result


def _handshake(channel: UdpChannel, result: ProbeResult, timeout: float) -> bool:
    start = channel.clock()
    channel.pump(lambda: channel.dtls.state != "handshake", start + timeout)
    done = [e for e in channel.events if isinstance(e, dtls.HandshakeDone)]
    if done:
        result.handshake, result.suite = "ok", done[0].cipher
        result.handshake_ms = round((channel.clock() - start) * 1000, 3)
        return True
    result.handshake = "failed"
    result.reason = f"handshake failed: {_failure(channel, f'no answer within {timeout:g} s')}"
    return False


def _ping(channel: UdpChannel, result: ProbeResult, timeout: float) -> None:
    start = channel.clock()
    channel.events = []
    channel.transmit(channel.coap.ping(start))
    if channel.pump(lambda: any(isinstance(e, (Reset, Acknowledged, Timeout)) for e in channel.events),
                    start + timeout) and not any(isinstance(e, Timeout) for e in channel.events):
        result.ping, result.ping_rtt_ms = "ok", round((channel.clock() - start) * 1000, 3)
        return
    result.ping = "failed"
    result.reason = f"ping failed: {_failure(channel, f'no answer to the CoAP ping within {timeout:g} s')}"


def _failure(channel: UdpChannel, silence: str) -> str:
    """Return why a step failed: the DTLS failure or close, the socket's error, else ``silence``."""
    reasons = [getattr(e, "reason", "the peer closed the association") for e in channel.events
               if isinstance(e, (dtls.DtlsFailed, dtls.Closed))]
    return reasons[0] if reasons else channel.error or silence
