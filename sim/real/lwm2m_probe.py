"""``dmsim lwm2m probe``: is an LwM2M server's channel up? A DTLS 1.2 handshake (seed 004 §7.1,
RFC 6347) in PSK, certificate or RPK mode, and then a CoAP ping (RFC 7252 §4.3), over a real UDP
socket.

Credentials (:func:`client_config`, exactly one kind for ``coaps://``; none is read for
``coap://``): a PSK identity and key (D.1.1.1); a client certificate, its private key and the CA
the server's certificate must chain to (D.1.1.3; with ``server_name`` Mbed TLS also checks the
server certificate's name); or an RPK private key and the server's public key (D.1.1.2), which the
server's key must be (pinned: ``network/lwm2m/dtls``, RPK carried in a minimal certificate, so
only dmsim's server and client speak it).

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
from dmsim.sim.real.lwm2m_credentials import MODE_NAMES

DEFAULT_TIMEOUT = 5.0
_PORTS = {"coap": 5683, "coaps": 5684}


@dataclass
class ProbeResult:
    uri: str
    handshake: str = "skipped"
    mode: str | None = None
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


_KINDS = {"psk": ("identity", "key"), "certificate": ("certificate", "private_key", "ca"),
          "rpk": ("rpk_key", "server_public_key")}
_OPTIONS = {"identity": "--psk-identity", "key": "--psk", "certificate": "--cert", "private_key": "--key",
            "ca": "--ca", "rpk_key": "--rpk-key", "server_public_key": "--server-key", "server_name": "--server-name",
            "low_entropy": "--low-entropy"}
_NEEDS = "a PSK identity and key (--psk-identity, --psk), a certificate, its key and a CA (--cert, --key, --ca), " \
         "or an RPK key and the server's public key (--rpk-key, --server-key)"


def client_config(*, low_entropy: bool = False, server_name: str | None = None,
                  **credentials: bytes | None) -> dtls.DtlsConfig:
    """Return the DTLS client config of exactly one credential kind among ``credentials`` (keys of
    :data:`_KINDS`: identity, key; certificate, private_key, ca; rpk_key, server_public_key);
    ScenarioError naming the options otherwise. ``low_entropy`` is for PSK only, ``server_name``
    for certificates only."""
    unknown = set(credentials) - {k for keys in _KINDS.values() for k in keys}
    if unknown:
        raise TypeError(f"unknown credentials {sorted(unknown)}")
    given = {kind: [k for k in keys if credentials.get(k)] for kind, keys in _KINDS.items()}
    kinds = [kind for kind, keys in given.items() if keys]
    if not kinds:
        raise ScenarioError(f"coaps:// needs {_NEEDS}", path="credentials", expected="one credential kind")
    if len(kinds) > 1:
        shown = "; ".join(" ".join(_OPTIONS[k] for k in given[kind]) for kind in kinds)
        raise ScenarioError(f"one credential kind, not {' and '.join(kinds)} ({shown})", path="credentials",
                            expected=_NEEDS)
    (kind,) = kinds
    missing = [_OPTIONS[k] for k in _KINDS[kind] if not credentials.get(k)]
    if missing:
        raise ScenarioError(f"{kind} mode without {', '.join(missing)}", path="credentials",
                            expected=" ".join(_OPTIONS[k] for k in _KINDS[kind]))
    misplaced = [_OPTIONS[k] for k, v, home in (("low_entropy", low_entropy, "psk"),
                                                 ("server_name", server_name, "certificate")) if v and kind != home]
    if misplaced:
        raise ScenarioError(f"{', '.join(misplaced)} does not apply to {kind} mode", path="credentials",
                            expected=f"the options of {kind} mode")
    c = credentials
    if kind == "psk":
        return dtls.psk_client_config(c["identity"], c["key"], entropy="low" if low_entropy else "high")
    if kind == "certificate":
        return dtls.certificate_client_config(c["certificate"], c["private_key"], c["ca"], server_hostname=server_name)
    return dtls.rpk_client_config(c["rpk_key"], c["server_public_key"])


def probe(uri: str, *, identity: bytes | None = None, key: bytes | None = None, low_entropy: bool = False,
          timeout: float = DEFAULT_TIMEOUT, clock: Callable[[], float] = time.monotonic,
          randbytes: Callable[[int], bytes] = os.urandom, server_name: str | None = None,
          **credentials: bytes | None) -> ProbeResult:
    """Probe ``uri`` (module docstring); ``credentials`` are those of :func:`client_config` besides
    ``identity`` and ``key``. ScenarioError (or DecodeError for key bytes that do not parse) for a
    URI that does not parse or coaps:// credentials that are not exactly one complete kind; the
    network's failures are results, never exceptions."""
    scheme, host, port = parse_uri(uri)
    config = (client_config(identity=identity, key=key, low_entropy=low_entropy, server_name=server_name,
                            **credentials) if scheme == "coaps" else None)
    result = ProbeResult(uri, mode=MODE_NAMES[config.mode] if config is not None else None)
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
