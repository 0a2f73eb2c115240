"""Sans-IO DTLS 1.2 endpoints for LwM2M channel security (seed 004 §7.1, RFC 6347, RFC 7252 §9).

The real Mbed TLS engine (python-mbedtls 2.10 over Mbed TLS 2.28, ``DTLSConfiguration`` and
``wrap_buffers``) runs on in-memory buffers; dmsim adds what a datagram driver needs and the
checks the seed asks for. API (a SimPy link, a UDP socket loop or a test is the driver):

- :class:`DtlsEndpoint` (one association). ``receive_datagram(data) -> list[Event]`` takes one UDP
  datagram; ``datagrams_to_send() -> list[bytes]`` returns (and forgets) the datagrams to send,
  each one UDP payload of at most ``config.mtu`` bytes; a handshake flight is all the datagrams of
  one call. ``send(app)`` encrypts application data (state "open"), ``close()`` sends close_notify.
  A client queues its ClientHello when created. States: handshake -> open -> closed, or failed,
  or suspended (:meth:`DtlsEndpoint.suspend`).
- Timers: ``next_timeout`` is the number of seconds after which the driver calls ``on_timeout()``,
  or None for no timer; ``timer_generation`` grows each time the endpoint (re)arms or cancels it,
  so a driver (re)starts its timer whenever the generation it last saw changed, measured from the
  call that changed it, and ignores an expiry of an older generation. RFC 6347 §4.2.4: the timer
  runs while a handshake flight waits for the peer's answer; 1 s at first (``Retransmission``),
  doubled at each expiry up to 60 s; each expiry re-sends the last flight; the expiry after
  ``max_retransmissions`` re-sends gives :class:`DtlsFailed` ("timeout"). Progress (a new flight)
  restarts at 1 s. A peer's retransmitted flight makes Mbed TLS re-send ours (with new record
  sequence numbers) without touching the timer; the node that sent the final flight runs no timer
  and answers retransmissions of the peer's final flight (§4.2.4, "FINISHED" state).
- :class:`DtlsServer`: the cookie gate (RFC 6347 §4.2.1) in front of the endpoints, keyed by the
  client's transport address as bytes. ``receive_datagram(address, data) -> list[Event]``,
  ``datagrams_to_send() -> list[(address, datagram)]``, ``endpoints`` (address -> endpoint; the
  driver runs each endpoint's timer), ``adopt``/``forget``.
- Events: :class:`HandshakeDone`, ``AppData`` and ``Closed`` (those of ``network.dm.tls``),
  :class:`DtlsFailed`.

Configuration (``*_config`` functions; formats of the Security Object, seed 004 D.1.1, converted by
:mod:`.dtls_keys`): PSK (identity UTF-8, key bytes, declared entropy; suites of
:mod:`.dtls_policy`), RPK and certificate modes (P-256, ECDHE-ECDSA suites).

RPK IS CARRIED IN A CERTIFICATE. Mbed TLS 2.28 / python-mbedtls 2.10 have no RFC 7250 raw public
keys. In RPK mode each side sends a minimal self-signed certificate holding its P-256 key
(``dtls_keys.rpk_carrier_certificate``); Mbed TLS runs with certificate verification OPTIONAL (no
chain is ever trusted, the certificate fields mean nothing) and dmsim authenticates the peer by
pinning: the SubjectPublicKeyInfo of the peer's certificate must be the configured "Server Public
Key" (client) or one of the registered client keys (server). The check is made on the cleartext
Certificate message before Mbed TLS sees it (a mismatch is refused with a fatal bad_certificate
alert, 42; an empty Certificate with handshake_failure, 40) and again on the certificate Mbed TLS
used once the handshake is over. Possession of the private key is proved by the handshake itself
(ServerKeyExchange signature, CertificateVerify), which Mbed TLS verifies with the pinned key.
On the wire this is not RFC 7250: a peer that insists on raw public keys (cert_type extensions)
will not interoperate.

Checks made on the cleartext flights (Mbed TLS cannot make them): the low-entropy PSK rule (the
server refuses a low-entropy identity on a suite other than ECDHE-PSK with insufficient_security,
71, :func:`.dtls_policy.psk_suite_refusal`), RPK pinning, P-256 certificate keys and ECDHE curves of
at least 256 bits (71). A cleartext record that does not parse is dropped silently, as Mbed TLS
drops invalid records (RFC 6347 §4.1.2.7); a handshake message that does not parse is refused with
decode_error (50). An off-path attacker who can spoof the peer's address and guess the handshake
state can inject a cleartext message that makes dmsim refuse the handshake: that is a denial of
service, which DTLS over UDP cannot prevent anyway, never an acceptance.

No wall clock in the engine: Mbed TLS's own retransmission timer (which reads the clock) is set to
a day, so it never fires within a handshake, and the endpoint re-sends its stored flight itself.
Re-sent records keep their sequence numbers, which Mbed TLS's anti-replay window would drop when
the original arrived; dmsim therefore turns Mbed TLS anti-replay off and keeps its own RFC 6347
§4.1.2.6 window (64 records) over the application-data records of the current epoch, updated
only after Mbed TLS has authenticated a record; handshake records go to Mbed TLS, whose
message_seq bookkeeping discards duplicates and answers retransmissions. One clock read is left
inside Mbed TLS: the HelloVerifyRequest cookie (``mbedtls_ssl_cookie``) embeds the host time and
expires after 60 s; it never drives a timer.

Session resumption across sleep (seed 004 §7.1 "keep a DTLS session in use ... If a session
persists across sleep cycles, encrypted and integrity-protected storage SHOULD be used for the
session keys and counters"). python-mbedtls 2.10 has no session API for an abbreviated handshake
(``TLSSession`` is empty, there is no ``mbedtls_ssl_get_session``/``set_session`` binding and no
server session cache or ticket key in the extension), so RFC 5246 resumption is impossible with
it. What it has is Mbed TLS DTLS context serialisation (``mbedtls_ssl_context_save``/``load``,
exposed as ``__getstate__``/``__setstate__``): :meth:`DtlsEndpoint.suspend` serialises the whole
association (keys, epoch, record counters, dmsim's replay window) and seals it with AES-128/256-GCM
under a storage key; :meth:`DtlsEndpoint.resume` restores it and the association goes on with no
handshake at all (zero flights), as long as the peer kept its side (a server keeps its endpoints
in memory; it can also suspend/resume them and ``DtlsServer.adopt`` one). Saving resets the Mbed
TLS context, so a suspended endpoint is dead: only one live copy exists. Restoring an old sealed
state would reuse record sequence numbers, i.e. AES-CCM/GCM nonces: the blob carries a generation
number (bound as associated data) and ``resume`` accepts only the generation the caller expects,
which the caller keeps in rollback-protected storage and increments at each suspend. Mbed TLS
cannot save a context whose handshake data is still held (a server keeps its last flight until
the client's first application record), so ``suspend`` raises ProtocolError then. Mbed TLS 2.28
saves AEAD-suite associations only (CCM, GCM: ``mbedtls_ssl_context_save`` refuses the CBC
suites), so an association on a CBC suite cannot be suspended either (ProtocolError, checked before
Mbed TLS is asked): the low-entropy bootstrap's ECDHE-PSK-AES128-CBC-SHA256 is one, which costs
nothing in LwM2M since the bootstrap association is closed after Bootstrap-Finish; the server
accounts the bootstrap server writes use the CCM_8 suites, which can sleep.

ECDHE curve: python-mbedtls 2.10 has no binding for ``mbedtls_ssl_conf_curves`` and Mbed TLS 2.28
prefers its largest curve, so the ECDHE suites between two dmsim endpoints run on secp521r1 (a peer
that offers only secp256r1, as RFC 7252 §9.1.3.2 devices do, gets secp256r1; ``bench/lwm2m.py``
reports the curve of each handshake). Curves below 256 bits are refused (alert 71).

Choices where the specs are silent: DTLS 1.2 only (DTLS 1.0 refused); MTU 1232 (IPv6 minimum 1280
minus IPv6 and UDP headers); the cookie gate drops everything from a new address when
``max_endpoints`` associations exist (no HelloVerifyRequest either) and anything from a new
address that is not a ClientHello; a ClientHello with a valid cookie and a new client random from
the address of an open association replaces it (RFC 6347 §4.2.8: the cookie shows reachability),
the same random is a late duplicate and goes to the association; failures never raise from
``receive_datagram``.
"""
from __future__ import annotations

import types
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Union

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from mbedtls import exceptions as mbedtls_exceptions
from mbedtls import pk as mbedtls_pk
from mbedtls import tls as mbedtls_tls
from mbedtls import x509 as mbedtls_x509

from dmsim.base.errors import DecodeError, ProtocolError, ScenarioError
from dmsim.network.dm import tls_pki, tls_suites
from dmsim.network.dm.tls import AppData, Closed, ecdhe_curve, first_certificate, psk_identity_of, \
    server_hello_fields
from dmsim.network.dm.tls_suites import SeedSuite
from dmsim.network.lwm2m import dtls_keys, dtls_policy
from dmsim.network.lwm2m import dtls_records as wire
from dmsim.network.lwm2m.dtls_policy import PskCredential, SecurityMode

ALERT_HANDSHAKE_FAILURE = 40
ALERT_BAD_CERTIFICATE = 42
ALERT_ILLEGAL_PARAMETER = 47
ALERT_DECODE_ERROR = 50
ALERT_INSUFFICIENT_SECURITY = dtls_policy.ALERT_INSUFFICIENT_SECURITY

DEFAULT_MTU = 1232
_MBEDTLS_TIMER = 86400.0  # seconds: Mbed TLS's own (wall-clock) retransmission never fires
_HANDSHAKE_STEPS = 64  # do_handshake() calls per input, far above the states of one flight
_READ_CHUNK = 1 << 14
_WINDOW = 64  # RFC 6347 §4.1.2.6
_SEAL_MAGIC = b"DMSIM-DTLS-1"
_AEAD_ENDINGS = ("_CCM", "_CCM_8", "_GCM_SHA256", "_GCM_SHA384")  # suites Mbed TLS can save (suspend)
_ERR_PEER_CLOSE_NOTIFY = -0x7880
_ERR_FATAL_ALERT = -0x7780


# --- configuration ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Retransmission:
    """RFC 6347 §4.2.4 timer values: first timeout, ceiling, re-sends before giving up."""

    initial: float = 1.0
    maximum: float = 60.0
    max_retransmissions: int = 6

    def interval(self, expired: int) -> float:
        """Return the timeout after ``expired`` expiries (doubled each time, capped)."""
        return min(self.initial * (2 ** expired), self.maximum)


@dataclass(frozen=True, eq=False)
class DtlsConfig:
    """One side's DTLS settings; build it with the ``*_config`` functions.

    ``psk`` is a client's credential, ``psks`` a server's store (identity -> credential, read
    live). ``certs``/``key_der`` are the own chain (DER, leaf first; in RPK mode the carrier
    certificate) and PKCS#8 key; ``trust`` the CA certificates (certificate mode).
    ``pinned_keys`` (RPK) maps the SubjectPublicKeyInfo DER of each acceptable peer key to the
    peer's name, read live (a client: the one "Server Public Key"; a server: its clients' keys,
    names being endpoint names). ``server_certificate`` (certificate-mode client) is the
    "Server Public Key or Identity" certificate the server must present, if set.
    """

    server: bool
    mode: SecurityMode
    suites: tuple[SeedSuite, ...]
    psk: PskCredential | None = None
    psks: Mapping[bytes, PskCredential] | None = None
    certs: tuple[bytes, ...] = ()
    key_der: bytes = field(default=b"", repr=False)
    trust: tuple[bytes, ...] = ()
    pinned_keys: Mapping[bytes, str] | None = None
    server_certificate: bytes | None = None
    server_hostname: str | None = None
    retransmission: Retransmission = Retransmission()
    mtu: int = DEFAULT_MTU

    @cached_property
    def context(self) -> Union[mbedtls_tls.ClientContext, mbedtls_tls.ServerContext]:
        """Return the Mbed TLS context (made once, shared by every endpoint of this config)."""
        kwargs: dict = dict(
            ciphers=tuple(s.mbedtls_name for s in self.suites),
            lowest_supported_version=mbedtls_tls.DTLSVersion.DTLSv1_2,
            highest_supported_version=mbedtls_tls.DTLSVersion.DTLSv1_2,
            anti_replay=False,  # dmsim's own window (module docstring)
            handshake_timeout_min=_MBEDTLS_TIMER, handshake_timeout_max=_MBEDTLS_TIMER,
            validate_certificates=self.mode == SecurityMode.CERTIFICATE,
        )
        if self.certs:
            chain = tuple(mbedtls_x509.CRT.from_DER(der) for der in self.certs)
            kwargs["certificate_chain"] = (chain, mbedtls_pk.ECC.from_DER(self.key_der))
        if self.trust:
            kwargs["trust_store"] = mbedtls_tls.TrustStore(
                [mbedtls_x509.CRT.from_DER(der) for der in self.trust])
        if self.psks is not None:
            kwargs["pre_shared_key_store"] = _PskKeys(self.psks)
        if self.psk is not None:
            kwargs["pre_shared_key"] = (self.psk.identity.decode("utf-8"), self.psk.key)
        conf = mbedtls_tls.DTLSConfiguration(**kwargs)
        return mbedtls_tls.ServerContext(conf) if self.server else mbedtls_tls.ClientContext(conf)


class _PskKeys(Mapping):
    """A server's identity -> credential store as python-mbedtls reads it (str -> key)."""

    def __init__(self, psks: Mapping[bytes, PskCredential]):
        self._psks = psks

    def __getitem__(self, identity: str) -> bytes:
        cred = dtls_policy.psk_lookup(self._psks, identity.encode("utf-8"))
        if cred is None:
            raise KeyError(identity)
        return cred.key

    def __iter__(self) -> Iterator[str]:
        return (k.decode("utf-8", "replace") for k in self._psks)

    def __len__(self) -> int:
        return len(self._psks)


def psk_client_config(identity: bytes, key: bytes, *, entropy: str, **options) -> DtlsConfig:
    """Return a PSK-mode client config (D.1.1.1: identity UTF-8, key bytes).

    ``entropy`` ("low"/"high") is what the bootstrap method declares; the suites offered follow
    :func:`.dtls_policy.client_suites` with the effective entropy. ``options``: ``retransmission``,
    ``mtu``.
    """
    cred = PskCredential(bytes(identity), bytes(key), entropy)
    return DtlsConfig(server=False, mode=SecurityMode.PSK, psk=cred,
                      suites=dtls_policy.client_suites(SecurityMode.PSK, cred.effective_entropy),
                      **options)


def psk_server_config(psks: Mapping[bytes, PskCredential], **options) -> DtlsConfig:
    """Return a PSK-mode server config over a live identity -> credential store."""
    return DtlsConfig(server=True, mode=SecurityMode.PSK, psks=psks,
                      suites=dtls_policy.server_suites(SecurityMode.PSK), **options)


def _own_rpk(private_key: bytes) -> dict:
    key = dtls_keys.private_key_from_resource(private_key)
    return dict(certs=(dtls_keys.rpk_carrier_certificate(key),), key_der=dtls_keys.private_key_der(key))


def rpk_client_config(private_key: bytes, server_public_key: bytes, **options) -> DtlsConfig:
    """Return an RPK-mode client config from the "Secret Key" and "Server Public Key" resources
    (D.1.1.2 forms, :mod:`.dtls_keys`)."""
    pinned = {dtls_keys.spki_der(server_public_key): "server"}
    return DtlsConfig(server=False, mode=SecurityMode.RPK, pinned_keys=pinned,
                      suites=dtls_policy.client_suites(SecurityMode.RPK), **_own_rpk(private_key),
                      **options)


def rpk_server_config(private_key: bytes, client_keys: Mapping[bytes, str], **options) -> DtlsConfig:
    """Return an RPK-mode server config: own key (D.1.1.2 form) and the live map of accepted
    client keys, SubjectPublicKeyInfo DER (``dtls_keys.spki_der``) -> endpoint name."""
    return DtlsConfig(server=True, mode=SecurityMode.RPK, pinned_keys=client_keys,
                      suites=dtls_policy.server_suites(SecurityMode.RPK), **_own_rpk(private_key),
                      **options)


def _own_certificate(certificate: bytes, private_key: bytes) -> dict:
    chain = dtls_keys.certificate_chain_der(certificate)
    key = dtls_keys.private_key_from_resource(private_key)
    if dtls_keys.certificate_spki(chain[0]) != dtls_keys.public_key_to_resource(key.public_key()):
        raise ScenarioError("the private key is not the certificate's", path="security.secret_key",
                            expected="the key of the certificate")
    dtls_keys.public_key_from_resource(dtls_keys.certificate_spki(chain[0]), "security.certificate")
    return dict(certs=chain, key_der=dtls_keys.private_key_der(key))


def certificate_client_config(certificate: bytes, private_key: bytes, ca: bytes, *,
                              server_certificate: bytes | None = None,
                              server_hostname: str | None = None, **options) -> DtlsConfig:
    """Return a certificate-mode client config (D.1.1.3: DER certificate, key as in RPK mode;
    PEM accepted). ``ca`` validates the server's chain; ``server_certificate`` (the "Server Public
    Key or Identity" resource) additionally pins the server's leaf; ``server_hostname`` is checked
    against it by Mbed TLS."""
    return DtlsConfig(server=False, mode=SecurityMode.CERTIFICATE,
                      suites=dtls_policy.client_suites(SecurityMode.CERTIFICATE),
                      trust=dtls_keys.certificate_chain_der(ca),
                      server_certificate=(dtls_keys.certificate_der(server_certificate)
                                          if server_certificate is not None else None),
                      server_hostname=server_hostname, **_own_certificate(certificate, private_key),
                      **options)


def certificate_server_config(certificate: bytes, private_key: bytes, client_ca: bytes,
                              **options) -> DtlsConfig:
    """Return a certificate-mode server config requiring client certificates from ``client_ca``."""
    return DtlsConfig(server=True, mode=SecurityMode.CERTIFICATE,
                      suites=dtls_policy.server_suites(SecurityMode.CERTIFICATE),
                      trust=dtls_keys.certificate_chain_der(client_ca),
                      **_own_certificate(certificate, private_key), **options)


# --- events -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class HandshakeDone:
    """The handshake completed: "DTLSv1.2", the IANA suite name, the mode, and what identifies
    the peer: its PSK identity (PSK), SubjectPublicKeyInfo DER (RPK, certificate), certificate
    DER (certificate mode) and name (RPK: the pinned key's name; certificate: ``tls_pki``
    identity of the certificate)."""

    version: str
    cipher: str
    mode: SecurityMode
    psk_identity: bytes | None = None
    peer_public_key: bytes | None = None
    peer_certificate: bytes | None = None
    peer_name: str | None = None


@dataclass(frozen=True)
class DtlsFailed:
    """The association failed; ``reason`` says why, ``alert`` is the alert dmsim sent (or None)."""

    reason: str
    alert: int | None = None


Event = Union[HandshakeDone, AppData, Closed, DtlsFailed]


class _Refused(Exception):
    def __init__(self, reason: str, alert: int):
        super().__init__(reason)
        self.reason, self.alert = reason, alert


# --- endpoint ---------------------------------------------------------------------------------

@dataclass
class Stats:
    """What an endpoint sent: handshake flights (first sends and re-sends), datagrams, bytes."""

    flights: int = 0
    datagrams: int = 0
    bytes: int = 0
    dropped: int = 0  # incoming datagrams/records discarded unread (bad framing, replays)


class DtlsEndpoint:
    """One DTLS association, driven by datagrams in and out (module docstring for the API)."""

    def __init__(self, config: DtlsConfig, *, address: bytes = b"", _buffer=None):
        self.config = config
        self.address = bytes(address)
        ctx = config.context
        if _buffer is not None:
            self._buf = _buffer
        elif config.server:
            self._buf = ctx.wrap_buffers()
            self._buf.setcookieparam(self.address or b"\0")
        else:
            self._buf = ctx.wrap_buffers(config.server_hostname)
        self._buf.setmtu(config.mtu)
        self.state = "handshake"
        self.suite: SeedSuite | None = None
        self.psk_identity: bytes | None = config.psk.identity if config.psk else None
        self.peer_public_key: bytes | None = None
        self.peer_certificate: bytes | None = None
        self.peer_name: str | None = None
        self.client_random: bytes | None = None
        self.next_timeout: float | None = None
        self.timer_generation = 0
        self.stats = Stats()
        self._incoming, self._outgoing = wire.Reassembler(), wire.Reassembler()
        self._queue: list[bytes] = []
        self._flight: list[bytes] = []
        self._expired = 0
        self._fresh_out = 0  # own handshake messages seen leaving (new flights)
        self._out_seq0 = 0
        self._window_top, self._window = -1, 0
        self._events: list[Event] = []
        self._peer_alert: int | None = None
        if _buffer is None and not config.server:
            self._progress(self._handshake)

    # public API

    def receive_datagram(self, data: bytes) -> list[Event]:
        """Return the events caused by one datagram from the peer."""
        self._events = []
        if self.state not in ("handshake", "open"):
            return []
        try:
            records = wire.split_records(data)
        except DecodeError:
            self.stats.dropped += 1
            return []
        self._progress(lambda: self._feed(records))
        return self._events

    def datagrams_to_send(self) -> list[bytes]:
        """Return (and forget) the datagrams waiting for the peer."""
        out, self._queue = self._queue, []
        return out

    def send(self, data: bytes) -> None:
        """Encrypt ``data`` (one record; at most what fits in a datagram) for the peer."""
        if self.state != "open":
            raise ProtocolError(f"DTLS send in state {self.state}")
        try:
            self._buf.write(bytes(data))
        except mbedtls_exceptions.TLSError as exc:
            self._events = []
            self._fail(f"mbedtls: {exc.msg}")
            raise ProtocolError(f"DTLS send failed: {exc.msg}") from exc
        self._queue_records(self._drain())

    def close(self) -> None:
        """Queue close_notify (when open) and stop the endpoint."""
        if self.state == "open":
            try:
                self._buf.shutdown()
            except mbedtls_exceptions.TLSError:
                pass
            self._queue_records(self._drain())
        if self.state in ("handshake", "open"):
            self.state = "closed"
        self._set_timer(None)

    def on_timeout(self) -> list[Event]:
        """The timer of ``next_timeout`` expired: re-send the last flight, or give up."""
        self._events = []
        if self.state != "handshake" or self.next_timeout is None:
            return []
        policy = self.config.retransmission
        if self._expired >= policy.max_retransmissions:
            self._fail("timeout")
            return self._events
        self._expired += 1
        self._send_flight(self._flight)
        self._set_timer(policy.interval(self._expired))
        return self._events

    # flights and timers

    def _progress(self, step) -> None:
        """Run ``step`` (which feeds Mbed TLS) and send what it produced: a new flight when the
        handshake advanced (timer restarted), a re-send when it did not (timer kept)."""
        before, fresh = self._buf._handshake_state, self._fresh_out
        try:
            step()
            records = self._drain()
        except _Refused as exc:
            self._refuse(exc.reason, exc.alert)
            return
        if self.state != "handshake":
            self._set_timer(None)
        if self.state == "failed":
            self._queue_records(records)  # Mbed TLS's own fatal alert
            return
        handshake = [r for r in records if r.content_type in (wire.CT_HANDSHAKE, wire.CT_CHANGE_CIPHER_SPEC)]
        if not handshake:
            self._queue_records(records)
            return
        datagrams = wire.pack_datagrams([r.raw for r in records], self.config.mtu)
        # a new flight carries new handshake messages (or moves Mbed TLS on); a re-send does not
        advanced = self._buf._handshake_state is not before or self._fresh_out != fresh
        if advanced or not self._flight:
            self._flight = datagrams
        self._send_flight(datagrams)
        if self.state == "handshake" and (advanced or self.next_timeout is None):
            self._expired = 0
            self._set_timer(self.config.retransmission.initial)

    def _send_flight(self, datagrams: list[bytes]) -> None:
        self.stats.flights += 1
        self._queue_datagrams(datagrams)

    def _set_timer(self, seconds: float | None) -> None:
        if seconds is None and self.next_timeout is None:
            return
        self.next_timeout = seconds
        self.timer_generation += 1

    def _queue_records(self, records: list[wire.Record]) -> None:
        self._queue_datagrams(wire.pack_datagrams([r.raw for r in records], self.config.mtu))

    def _queue_datagrams(self, datagrams: list[bytes]) -> None:
        self.stats.datagrams += len(datagrams)
        self.stats.bytes += sum(map(len, datagrams))
        self._queue.extend(datagrams)

    def _drain(self) -> list[wire.Record]:
        """Take Mbed TLS's output, inspect its cleartext handshake messages (may raise _Refused:
        the output is then withheld) and return its records."""
        data = self._buf.peek_outgoing(1 << 20)
        if not data:
            return []
        self._buf.consume_outgoing(len(data))
        records = wire.split_records(data)
        for record in records:
            if record.epoch == 0:
                self._out_seq0 = max(self._out_seq0, record.seq)
                if record.content_type == wire.CT_HANDSHAKE and self.state == "handshake":
                    self._inspect(record, incoming=False)
        return records

    # input

    def _feed(self, records: list[wire.Record]) -> None:
        for record in records:
            if self.state not in ("handshake", "open"):
                return
            if record.epoch == 0 and self.state == "open":
                # stale handshake retransmissions, unauthenticated alerts, reconnect ClientHellos
                # (DtlsServer's gate handles those): Mbed TLS would end the association on some
                self.stats.dropped += 1
                continue
            if record.epoch == 0 and record.content_type == wire.CT_ALERT and len(record.fragment) == 2:
                self._peer_alert = record.fragment[1]
            if record.epoch == 0 and record.content_type == wire.CT_HANDSHAKE and self.state == "handshake":
                self._inspect(record, incoming=True)
            if record.content_type == wire.CT_APPLICATION_DATA and self._replayed(record):
                self.stats.dropped += 1
                continue
            self._buf.receive_from_network(record.raw)
            if self.state == "handshake":
                self._handshake()
            if self.state == "open":
                self._read(record)

    def _handshake(self) -> None:
        done = mbedtls_tls.HandshakeStep.HANDSHAKE_OVER
        try:
            for _ in range(_HANDSHAKE_STEPS):
                if self._buf._handshake_state is done:
                    break
                try:
                    self._buf.do_handshake()
                except mbedtls_tls.WantReadError:
                    break
                except mbedtls_tls.WantWriteError:
                    pass
        except mbedtls_exceptions.TLSError as exc:
            self._fail(self._mbedtls_reason(exc))
            return
        if self._buf._handshake_state is done:
            self._finish_handshake()

    def _read(self, record: wire.Record) -> None:
        buffer = bytearray(_READ_CHUNK)
        while self.state == "open":
            try:
                size = self._buf.readinto(buffer, _READ_CHUNK)
            except mbedtls_tls.WantReadError:
                return
            except mbedtls_tls.RaggedEOF:
                self._closed_by_peer()
                return
            except mbedtls_exceptions.TLSError as exc:
                if exc.err in (_ERR_PEER_CLOSE_NOTIFY, -_ERR_PEER_CLOSE_NOTIFY):
                    self._closed_by_peer()
                else:
                    self._fail(self._mbedtls_reason(exc))
                return
            if record.content_type == wire.CT_APPLICATION_DATA:
                self._accept_seq(record)
            self._events.append(AppData(bytes(buffer[:size])))

    def _replayed(self, record: wire.Record) -> bool:
        """RFC 6347 §4.1.2.6: True for a record of an old epoch, or a sequence number seen or left
        of the 64-record window (only records Mbed TLS authenticated moved the window)."""
        if self.state != "open":
            return False
        if record.seq > self._window_top:
            return False
        behind = self._window_top - record.seq
        return behind >= _WINDOW or bool(self._window >> behind & 1)

    def _accept_seq(self, record: wire.Record) -> None:
        if record.seq > self._window_top:
            shift = record.seq - self._window_top
            self._window = ((self._window << shift) | 1) & ((1 << _WINDOW) - 1) if shift < _WINDOW else 1
            self._window_top = record.seq
        else:
            self._window |= 1 << (self._window_top - record.seq)

    def _closed_by_peer(self) -> None:
        self.state = "closed"
        self._events.append(Closed())

    def _mbedtls_reason(self, exc: mbedtls_exceptions.TLSError) -> str:
        if exc.err in (_ERR_FATAL_ALERT, -_ERR_FATAL_ALERT):
            alert = f" {self._peer_alert}" if self._peer_alert is not None else ""
            return f"the peer sent a fatal alert{alert}"
        return f"mbedtls: {exc.msg}"

    # dmsim's checks

    def _inspect(self, record: wire.Record, *, incoming: bool) -> None:
        """Check the cleartext handshake messages ``record`` completes; raise _Refused."""
        reassembler = self._incoming if incoming else self._outgoing
        try:
            for fragment in wire.split_handshake(record.fragment):
                for kind, _seq, body in reassembler.add(fragment):
                    self._fresh_out += not incoming
                    self._check_message(kind, body, incoming)
        except DecodeError as exc:
            raise _Refused(str(exc), ALERT_DECODE_ERROR) from exc

    def _check_message(self, kind: int, body: bytes, incoming: bool) -> None:
        server = self.config.server
        if kind == wire.HS_CLIENT_HELLO and incoming and server and self.client_random is None:
            self.client_random = wire.parse_client_hello(body).random
        elif kind == wire.HS_SERVER_HELLO and incoming != server:
            _version, code = server_hello_fields(body)
            self.suite = dtls_policy.BY_CODE.get(code)
            if self.suite is None or self.suite not in self.config.suites:
                raise _Refused(f"server chose suite {code:#06x}, not offered", ALERT_ILLEGAL_PARAMETER)
        elif kind == wire.HS_CERTIFICATE and incoming:
            self._check_peer_certificate(first_certificate(body))
        elif kind == wire.HS_SERVER_KEY_EXCHANGE and incoming != server and self.suite and self.suite.uses_ecdhe:
            curve = ecdhe_curve(body, self.suite)
            bits = tls_suites.CURVE_BITS.get(curve, 0) if curve is not None else 0
            if bits < tls_suites.MIN_ECC_BITS:
                raise _Refused(f"ECDHE curve {curve} has {bits or 'unknown'} bits", ALERT_INSUFFICIENT_SECURITY)
        elif kind == wire.HS_CLIENT_KEY_EXCHANGE and incoming and server and self.suite and self.suite.uses_psk:
            self.psk_identity = psk_identity_of(body)
            refusal = self._psk_refusal()
            if refusal:
                raise _Refused(refusal, ALERT_INSUFFICIENT_SECURITY)

    def _psk_refusal(self) -> str | None:
        """Return why the PSK identity may not run on the suite (dtls_policy), or None."""
        if not self.config.server or self.psk_identity is None:
            return None
        cred = dtls_policy.psk_lookup(self.config.psks or {}, self.psk_identity)
        if cred is None:
            return None  # unknown identity: Mbed TLS answers unknown_psk_identity
        return dtls_policy.psk_suite_refusal(cred.effective_entropy, self.suite)

    def _check_peer_certificate(self, der: bytes | None) -> None:
        """Refuse a missing certificate, a key that is not P-256, or (RPK) a key not pinned."""
        if self.config.mode not in (SecurityMode.RPK, SecurityMode.CERTIFICATE):
            return
        if der is None:
            raise _Refused("the peer sent no certificate", ALERT_HANDSHAKE_FAILURE)
        try:
            spki = dtls_keys.certificate_spki(der)
            dtls_keys.public_key_from_resource(spki, "peer certificate")
        except DecodeError as exc:
            raise _Refused(str(exc), ALERT_BAD_CERTIFICATE) from exc
        except ScenarioError as exc:
            raise _Refused(f"peer key: {exc.detail}", ALERT_INSUFFICIENT_SECURITY) from exc
        if self.config.mode == SecurityMode.RPK and spki not in (self.config.pinned_keys or {}):
            raise _Refused("the peer's public key is not the pinned one", ALERT_BAD_CERTIFICATE)
        if self.config.server_certificate is not None and der != self.config.server_certificate:
            raise _Refused("the server certificate is not the configured one", ALERT_BAD_CERTIFICATE)

    def _finish_handshake(self) -> None:
        """Check what Mbed TLS negotiated and used, then report HandshakeDone."""
        name = (self._buf.cipher() or "").replace("-", "_")
        suite = dtls_policy.BY_IANA.get(name)
        if suite is None or suite not in self.config.suites:
            self._fail(f"negotiated suite {name} is not offered")
            return
        self.suite = suite
        if not suite.uses_psk:
            self.psk_identity = None
        refusal = self._psk_refusal()
        if refusal:
            self._fail(refusal)
            return
        if self.config.mode in (SecurityMode.RPK, SecurityMode.CERTIFICATE):
            der = self._buf.getpeercert(binary_form=True)
            try:
                self._check_peer_certificate(der)
            except _Refused as exc:
                self._fail(exc.reason)
                return
            self.peer_public_key = dtls_keys.certificate_spki(der)
            if self.config.mode == SecurityMode.RPK:
                self.peer_name = (self.config.pinned_keys or {}).get(self.peer_public_key)
            else:
                self.peer_certificate = bytes(der)
                self.peer_name = tls_pki.certificate_identity(der)
        self.state = "open"
        self._events.append(self._done_event())

    def _done_event(self) -> HandshakeDone:
        return HandshakeDone("DTLSv1.2", self.suite.iana if self.suite else "", self.config.mode,
                             self.psk_identity, self.peer_public_key, self.peer_certificate, self.peer_name)

    def _fail(self, reason: str, alert: int | None = None) -> None:
        self.state = "failed"
        self._set_timer(None)
        self._events.append(DtlsFailed(reason, alert))

    def _refuse(self, reason: str, alert: int) -> None:
        """Fail with a fatal alert of our own, in clear (no keys are in use yet)."""
        self._out_seq0 += 1
        self._queue_datagrams([wire.alert_record(alert, self._out_seq0)])
        self._fail(reason, alert)

    # sleep: suspend and resume (module docstring)

    def suspend(self, storage_key: bytes, nonce: bytes, generation: int) -> bytes:
        """Return the association sealed with AES-GCM under ``storage_key`` (16 or 32 bytes) and
        ``nonce`` (12 bytes, never reused with that key), bound to ``generation``; the endpoint is
        dead afterwards. ProtocolError when it is not open or Mbed TLS cannot save it yet."""
        if self.state != "open":
            raise ProtocolError(f"DTLS suspend in state {self.state}")
        if self.suite is not None and not self.suite.iana.endswith(_AEAD_ENDINGS):
            raise ProtocolError(f"Mbed TLS saves AEAD-suite associations only, not {self.suite.iana}")
        if len(nonce) != 12:
            raise ScenarioError(f"nonce of {len(nonce)} bytes", path="dtls.suspend", expected="12 bytes")
        aead = _aead(storage_key)
        try:
            connection = self._buf.__getstate__()["connection"]
        except TypeError as exc:
            raise ProtocolError(f"Mbed TLS cannot save this association now: {exc}") from exc
        self.state = "suspended"
        self._set_timer(None)
        plain = _pack([bytes([int(self.config.mode)]), (self.suite.code if self.suite else 0).to_bytes(2, "big"),
                       self.psk_identity or b"", self.peer_public_key or b"", self.peer_certificate or b"",
                       (self.peer_name or "").encode("utf-8"), self.address,
                       (self._window_top + 1).to_bytes(8, "big"), self._window.to_bytes(8, "big"),
                       self._out_seq0.to_bytes(8, "big"), bytes(connection)])
        header = _SEAL_MAGIC + generation.to_bytes(8, "big") + bytes(nonce)
        return header + aead.encrypt(bytes(nonce), plain, header)

    @classmethod
    def resume(cls, config: DtlsConfig, sealed: bytes, storage_key: bytes, generation: int) -> "DtlsEndpoint":
        """Return the open endpoint sealed by :meth:`suspend`; ProtocolError when the blob is not
        authentic, not of ``generation`` (a rollback) or not of this config's mode."""
        sealed = bytes(sealed)
        head = len(_SEAL_MAGIC) + 8 + 12
        if len(sealed) < head + 16 or not sealed.startswith(_SEAL_MAGIC):
            raise ProtocolError("not a sealed DTLS association")
        found = int.from_bytes(sealed[len(_SEAL_MAGIC):len(_SEAL_MAGIC) + 8], "big")
        if found != generation:
            raise ProtocolError(f"sealed association of generation {found}, expected {generation}")
        try:
            plain = _aead(storage_key).decrypt(sealed[head - 12:head], sealed[head:], sealed[:head])
        except InvalidTag as exc:
            raise ProtocolError("sealed association does not authenticate") from exc
        (mode, code, identity, spki, cert, name, address, top, window, seq0, connection) = _unpack(plain, 11)
        if mode[0] != int(config.mode):
            raise ProtocolError(f"sealed association of mode {mode[0]}, config mode {int(config.mode)}")
        buf = mbedtls_tls.TLSWrappedBuffer.__new__(mbedtls_tls.TLSWrappedBuffer)
        try:
            buf.__setstate__({"connection": connection, "context": config.context,
                              "server_hostname": config.server_hostname})
        except TypeError as exc:
            raise ProtocolError(f"Mbed TLS refused the saved association: {exc}") from exc
        endpoint = cls(config, address=address, _buffer=buf)
        endpoint.state = "open"
        endpoint.suite = dtls_policy.BY_CODE.get(int.from_bytes(code, "big"))
        endpoint.psk_identity, endpoint.peer_public_key = identity or None, spki or None
        endpoint.peer_certificate, endpoint.peer_name = cert or None, name.decode("utf-8") or None
        endpoint._window_top = int.from_bytes(top, "big") - 1
        endpoint._window = int.from_bytes(window, "big")
        endpoint._out_seq0 = int.from_bytes(seq0, "big")
        return endpoint


def _aead(key: bytes) -> AESGCM:
    if len(key) not in (16, 32):
        raise ScenarioError(f"storage key of {len(key)} bytes", path="dtls.storage_key",
                            expected="16 or 32 bytes (AES-128/256-GCM)")
    return AESGCM(bytes(key))


def _pack(parts: list[bytes]) -> bytes:
    return b"".join(len(p).to_bytes(4, "big") + p for p in parts)


def _unpack(data: bytes, count: int) -> list[bytes]:
    parts, at = [], 0
    for _ in range(count):
        if at + 4 > len(data):
            raise DecodeError("sealed association", at, "truncated", "4-byte length")
        size = int.from_bytes(data[at:at + 4], "big")
        if at + 4 + size > len(data):
            raise DecodeError("sealed association", at, f"part of {size} bytes beyond the end")
        parts.append(data[at + 4:at + 4 + size])
        at += 4 + size
    return parts


# --- server: cookie gate and associations ------------------------------------------------------

# Mbed TLS server states up to the cookie check: a ClientHello without a valid cookie passes
# SERVER_HELLO to SERVER_HELLO_VERIFY_REQUEST_SENT; one with a valid cookie writes the ServerHello
# and goes on to SERVER_CERTIFICATE.
_BEFORE_COOKIE = frozenset({mbedtls_tls.HandshakeStep.HELLO_REQUEST, mbedtls_tls.HandshakeStep.CLIENT_HELLO,
                            mbedtls_tls.HandshakeStep.SERVER_HELLO,
                            mbedtls_tls.HandshakeStep.SERVER_HELLO_VERIFY_REQUEST_SENT})


class DtlsServer:
    """The server side: a stateless HelloVerifyRequest gate (RFC 6347 §4.2.1) in front of at most
    ``max_endpoints`` associations keyed by transport address (module docstring).

    A datagram from an address without an association must be one ClientHello; without a valid
    cookie it gets a HelloVerifyRequest (smaller than the ClientHello, so no amplification) and
    leaves no state; with one it becomes an endpoint. Cookies are Mbed TLS's (HMAC keyed by a
    random secret of this config's context, bound to the address bytes).
    """

    def __init__(self, config: DtlsConfig, *, max_endpoints: int = 64):
        if not config.server:
            raise ScenarioError("DtlsServer needs a server config", path="dtls", expected="a *_server_config")
        if max_endpoints < 1:
            raise ScenarioError(f"max_endpoints {max_endpoints}", path="dtls.max_endpoints", expected=">= 1")
        self.config, self.max_endpoints = config, max_endpoints
        self._endpoints: dict[bytes, DtlsEndpoint] = {}
        self._gate = None
        self._out: list[tuple[bytes, bytes]] = []
        self.hello_verify_sent = 0
        self.dropped = 0

    @property
    def endpoints(self) -> Mapping[bytes, DtlsEndpoint]:
        """Return the live associations (read-only view), address -> endpoint."""
        return types.MappingProxyType(self._endpoints)

    def receive_datagram(self, address: bytes, data: bytes) -> list[Event]:
        """Return the events one datagram from ``address`` causes (its association's)."""
        address = bytes(address)
        self._purge()
        endpoint = self._endpoints.get(address)
        try:
            hello = wire.client_hello_of(data)
        except DecodeError:
            hello = None
        if endpoint is not None and not (hello is not None and endpoint.state == "open"
                                         and hello.random != endpoint.client_random):
            return endpoint.receive_datagram(data)
        if hello is None or (endpoint is None and len(self._endpoints) >= self.max_endpoints):
            self.dropped += 1
            return []
        return self._admit(address, bytes(data))

    def _admit(self, address: bytes, data: bytes) -> list[Event]:
        gate, self._gate = self._gate or self.config.context.wrap_buffers(), None
        gate.setcookieparam(address)
        gate.receive_from_network(data)
        verified = False
        try:
            for _ in range(_HANDSHAKE_STEPS):
                try:
                    gate.do_handshake()
                except mbedtls_tls.WantWriteError:
                    pass
                if gate._handshake_state not in _BEFORE_COOKIE:
                    verified = True
                    break
        except mbedtls_tls.HelloVerifyRequest:
            hvr = gate.peek_outgoing(1 << 16)
            gate.consume_outgoing(len(hvr))
            self._out.append((address, hvr))
            self.hello_verify_sent += 1
            self._gate = gate  # python-mbedtls reset it: reusable
            return []
        except mbedtls_exceptions.TLSError:
            pass  # python-mbedtls reset it
        if not verified:
            gate.consume_outgoing(len(gate.peek_outgoing(1 << 16)))
            self._gate = gate if gate._handshake_state is mbedtls_tls.HandshakeStep.HELLO_REQUEST else None
            self.dropped += 1
            return []
        endpoint = DtlsEndpoint(self.config, address=address, _buffer=gate)
        endpoint.client_random = wire.client_hello_of(data).random
        endpoint._progress(endpoint._handshake)
        self._endpoints[address] = endpoint
        return endpoint._events

    def datagrams_to_send(self) -> list[tuple[bytes, bytes]]:
        """Return (and forget) (address, datagram) pairs: HelloVerifyRequests and every
        association's output; associations that ended are dropped afterwards."""
        out, self._out = self._out, []
        for address, endpoint in self._endpoints.items():
            out.extend((address, d) for d in endpoint.datagrams_to_send())
        self._purge()
        return out

    def adopt(self, endpoint: DtlsEndpoint) -> None:
        """Put a (resumed) server endpoint in the table under its address."""
        if not endpoint.config.server:
            raise ProtocolError("adopt needs a server endpoint")
        if endpoint.address not in self._endpoints and len(self._endpoints) >= self.max_endpoints:
            raise ProtocolError(f"{self.max_endpoints} associations already")
        self._endpoints[endpoint.address] = endpoint

    def forget(self, address: bytes) -> None:
        """Drop the association of ``address`` (no alert is sent)."""
        self._endpoints.pop(bytes(address), None)

    def _purge(self) -> None:
        for address in [a for a, e in self._endpoints.items()
                        if e.state not in ("handshake", "open") and not e._queue]:
            del self._endpoints[address]


__all__ = ["DtlsConfig", "Retransmission", "DtlsEndpoint", "DtlsServer", "HandshakeDone", "AppData",
           "Closed", "DtlsFailed", "Event", "Stats", "psk_client_config", "psk_server_config",
           "rpk_client_config", "rpk_server_config", "certificate_client_config",
           "certificate_server_config", "ALERT_HANDSHAKE_FAILURE", "ALERT_BAD_CERTIFICATE",
           "ALERT_DECODE_ERROR", "ALERT_INSUFFICIENT_SECURITY"]
