"""The DHE_RSA suites of seed 000 §9.2.2 on the server side, on the standard library's ``ssl``.

python-mbedtls 2.10 cannot give an Mbed TLS server Diffie-Hellman parameters, so dmsim's mbedtls
server cannot run ``TLS_DHE_RSA_WITH_AES_128_GCM_SHA256`` (0x009E) or
``TLS_DHE_RSA_WITH_AES_128_CBC_SHA256`` (0x0067), which "The DM Server SHALL support" in X509
mode (evidence in :mod:`.tls_suites`). This module serves them with OpenSSL through the standard
library: an ``ssl.SSLObject`` over two ``ssl.MemoryBIO`` (sans-IO, no socket, no clock).

- :class:`DheRsaEndpoint` has the event contract of :class:`.tls.TlsEndpoint`:
  ``receive_data`` returns ``HandshakeDone`` (IANA suite name, "TLSv1.2", the identity of the
  verified client certificate), ``AppData``, ``Closed``, ``TlsFailed`` and never raises;
  ``data_to_send``, ``send``, ``close``, ``state``, ``peer_certificate``/``peer_identity``.
- :class:`ServerDispatch` (built by :func:`.tls.server_endpoint`) is the server's connection:
  it buffers the client's first flight until the ClientHello is complete, then hands the
  connection, buffered bytes included, to mbedtls (:class:`.tls.TlsEndpoint`), unless the
  client offers DHE_RSA and no suite mbedtls can serve with this config
  (:meth:`.tls.TlsConfig.mbedtls_can_serve`), in which case :class:`DheRsaEndpoint` takes it.
  Anything that is not a well-formed ClientHello in handshake records goes to mbedtls, which
  refuses it as before; a ClientHello offering only DHE_PSK too (fatal handshake_failure).

The OpenSSL context (:func:`server_context`), one per config:

- ciphers: exactly the config's DHE_RSA suites (``DHE-RSA-AES128-GCM-SHA256``,
  ``DHE-RSA-AES128-SHA256``); TLS 1.2 only (``minimum_version = maximum_version = TLSv1_2``).
  Both suites exist only from TLS 1.2 (RFC 5288, RFC 5246 App. A.5; ``SeedSuite.min_version``),
  so nothing the seed asks is lost, and OpenSSL 3 would run TLS 1.1 only at ``@SECLEVEL=0``,
  which also lets through weak client keys (RSA below 1024 bits, SHA-1 chains): not set. A
  client offering TLS 1.1 at most gets OpenSSL's fatal ``protocol_version`` alert, which is what
  a TLS 1.1 session over a TLS 1.2-only suite comes to. OpenSSL's default security level
  (Debian: 2) stays: RSA and DH of at least 2048 bits.
- DH group: ffdhe2048 of RFC 7919 Appendix A.1 (:data:`FFDHE2048_PEM`; a test rebuilds its prime
  from the RFC's formula). Python 3.11 has no call to name a group, so the parameters are loaded
  with ``load_dh_params``.
- server certificate: the config's RSA credential (``TlsConfig.dhe_rsa``, e.g.
  ``tls_pki.LabCa.issue_server_rsa``). ``ssl`` loads certificates and keys from paths only;
  they are handed over through an anonymous in-memory file (``os.memfd_create``, read through
  ``/proc/self/fd``), so the private key never lands on a disk (a private temporary directory
  where memfd is missing).
- client authentication (OMA-TS-DM_Security §5.4, DM-SEC-S-002-M): with ``client_trust`` the
  server sends a CertificateRequest and requires a certificate of those CAs
  (``CERT_REQUIRED``, OpenSSL checks the chain, validity and the clientAuth purpose). As on the
  mbedtls path, dmsim reads the client's cleartext Certificate message first: an empty one is
  refused with a fatal ``handshake_failure`` ("the client sent no certificate"), an ECC key
  below 256 bits with ``insufficient_security``; a certificate OpenSSL does not verify gets
  OpenSSL's alert (``unknown_ca``, ``bad_certificate``, ...).
- no renegotiation (``OP_NO_RENEGOTIATION``), no compression, no session tickets.

Choices where the seed is silent: a failure never raises from ``receive_data`` (``TlsFailed``,
with the alert dmsim or OpenSSL sent when one went out in clear); an RSA credential given as a
function is built when the first DHE_RSA client arrives, and if that fails the client gets an
``internal_error`` alert; the choice of backend looks at the offered suites only (not at curves
or signature algorithms), so a client offering ECDHE_ECDSA and DHE_RSA to an ECDSA server gets
mbedtls and ECDHE_ECDSA even if it could not verify ECDSA.
"""
from __future__ import annotations

import contextlib
import os
import ssl
import tempfile
from typing import Iterator

from dmsim.base.errors import DecodeError, DmsimError, ProtocolError
from dmsim.network.dm import tls_pki
from dmsim.network.dm import tls_suites as suites
from dmsim.network.dm.tls import (ALERT_HANDSHAKE_FAILURE, AppData, Closed, Event, HandshakeDone, RecordEndpoint,
                                  TlsConfig, TlsEndpoint, TlsFailed, _check_peer_certificate, _RecordReader,
                                  _Refused, first_certificate, load_rsa_credential)

ALERT_INTERNAL_ERROR = 80  # RFC 5246 §7.2.2

# RFC 7919 Appendix A.1, ffdhe2048: p = 2^2048 - 2^1984 + {[2^1918 * e] + 560316} * 2^64 - 1,
# g = 2, as PKCS #3 DHParameter (what ``openssl genpkey -genparam -algorithm DH -pkeyopt
# group:ffdhe2048`` writes; ``openssl pkeyparam -text`` names it "GROUP: ffdhe2048").
FFDHE2048_PEM = b"""-----BEGIN DH PARAMETERS-----
MIIBCAKCAQEA//////////+t+FRYortKmq/cViAnPTzx2LnFg84tNpWp4TZBFGQz
+8yTnc4kmz75fS/jY2MMddj2gbICrsRhetPfHtXV/WVhJDP1H18GbtCFY2VVPe0a
87VXE15/V8k1mE8McODmi3fipona8+/och3xWKE2rec1MKzKT0g6eXq8CrGCsyT7
YdEIqUuyyOP7uWrat2DX9GgdT0Kj3jlN9K5W7edjcrsZCwenyO4KbXCeAvzhzffi
7MA0BM0oNC9hkXL+nOmFg/+OTxIy7vKBg8P+OxtMb61zO7X8vC7CIAXFjvGDfRaD
ssbzSibBsu/6iGtCOGEoXJf//////////wIBAg==
-----END DH PARAMETERS-----
"""

# OpenSSL's names of the seed suites this module serves (``openssl ciphers -stdname``).
OPENSSL_NAMES: dict[str, str] = {
    "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256": "DHE-RSA-AES128-GCM-SHA256",
    "TLS_DHE_RSA_WITH_AES_128_CBC_SHA256": "DHE-RSA-AES128-SHA256",
}
_BY_OPENSSL_NAME = {v: suites.BY_IANA[k] for k, v in OPENSSL_NAMES.items()}
_VERSION_CODES = {name: code for code, name in suites.VERSION_NAMES.items()}
_MAX_HELLO = 2 ** 14  # the largest ClientHello read; anything bigger goes to mbedtls
_MAX_RECORD = 2 ** 14 + 2048


# --- the OpenSSL context ---------------------------------------------------------------------

@contextlib.contextmanager
def _memory_file(data: bytes) -> Iterator[str]:
    """Yield a path whose content is ``data``: an anonymous memory file (module docstring)."""
    if hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd"):
        fd = os.memfd_create("dmsim-tls", os.MFD_CLOEXEC)
        try:
            view = memoryview(bytes(data))
            while view:
                view = view[os.write(fd, view):]
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    with tempfile.TemporaryDirectory(prefix="dmsim-tls-") as folder:  # mode 0700
        path = os.path.join(folder, "credential.pem")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(bytes(data))
        yield path


def _rsa_credential(config: TlsConfig) -> tuple[bytes, bytes]:
    source = config.dhe_rsa
    if source is None:
        raise DmsimError("the server config has no RSA credential for the DHE_RSA suites")
    cert_pem, key_pem = source() if callable(source) else source
    load_rsa_credential(cert_pem, key_pem)  # ScenarioError for a non-RSA, short or foreign key
    return bytes(cert_pem), bytes(key_pem)


def server_context(config: TlsConfig) -> ssl.SSLContext:
    """Return the OpenSSL server context of ``config``'s DHE_RSA suites (module docstring).

    Raises DmsimError (no or a wrong RSA credential) or ssl.SSLError (OpenSSL refused it).
    """
    names = [OPENSSL_NAMES[s.iana] for s in config.openssl_suites]
    if not names:
        raise DmsimError("the server config has no DHE_RSA suite")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(":".join(names))
    ctx.options |= (ssl.OP_NO_RENEGOTIATION | ssl.OP_NO_COMPRESSION | ssl.OP_NO_TICKET
                    | ssl.OP_CIPHER_SERVER_PREFERENCE | ssl.OP_SINGLE_DH_USE)
    with _memory_file(FFDHE2048_PEM) as path:
        ctx.load_dh_params(path)
    cert_pem, key_pem = _rsa_credential(config)
    with _memory_file(cert_pem) as cert_path, _memory_file(key_pem) as key_path:
        ctx.load_cert_chain(cert_path, key_path)
    if config.requires_client_cert:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cadata=b"".join(config.client_trust))
    else:
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


# --- the endpoint ----------------------------------------------------------------------------

def _alert_in(data: bytes) -> int | None:
    """Return the description of the first cleartext alert record in ``data``, or None."""
    at = 0
    while at + 5 <= len(data):
        length = int.from_bytes(data[at + 3:at + 5], "big")
        if data[at] == 21 and length == 2 and at + 7 <= len(data):
            return data[at + 6]
        at += 5 + length
    return None


def _reason(exc: ssl.SSLError) -> str:
    detail = getattr(exc, "verify_message", None) or exc.reason or str(exc)
    return f"openssl: {detail}"


class DheRsaEndpoint(RecordEndpoint):
    """The server side of one TLS connection in a DHE_RSA suite, driven by bytes in and out
    (the :class:`.tls.TlsEndpoint` interface; module docstring). Raises DmsimError or
    ssl.SSLError when created if the config's OpenSSL context cannot be built."""

    def __init__(self, config: TlsConfig):
        if not config.server:
            raise ProtocolError("DheRsaEndpoint is a server endpoint")
        self.config = config
        self._bio_in, self._bio_out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self._ssl = config.dhe_context.wrap_bio(self._bio_in, self._bio_out, server_side=True)
        self._incoming = _RecordReader()
        self._out = bytearray()
        self.state = "handshake"  # -> open -> closed, or failed
        self.suite: suites.SeedSuite | None = None
        self.version: int | None = None
        self.psk_identity: bytes | None = None  # never: DHE_RSA has no PSK
        self.peer_certificate: bytes | None = None
        self.peer_identity: str | None = None
        self._events: list[Event] = []

    # public API

    def _to_engine(self, record: bytes) -> None:
        self._bio_in.write(record)

    def send(self, data: bytes) -> None:
        """Encrypt ``data`` for the peer (read it from :meth:`data_to_send`)."""
        if self.state != "open":
            raise ProtocolError(f"TLS send in state {self.state}")
        view = memoryview(bytes(data))
        try:
            while view:
                view = view[self._ssl.write(view):]
        except ssl.SSLError as exc:
            self._drain()
            self._events = []
            self._fail(_reason(exc))
            raise ProtocolError(f"TLS send failed: {_reason(exc)}") from exc
        self._drain()

    def data_to_send(self) -> bytes:
        """Return (and forget) the TLS records waiting for the peer."""
        self._drain()
        out, self._out = bytes(self._out), bytearray()
        return out

    def close(self) -> None:
        """Queue close_notify (when the session is open) and stop the endpoint."""
        if self.state == "open":
            try:
                self._ssl.unwrap()
            except ssl.SSLError:  # SSLWantReadError: the peer's close_notify is not awaited
                pass
            self._drain()
        if self.state != "failed":
            self.state = "closed"

    # internals

    def _drain(self) -> bytes:
        data = self._bio_out.read()
        self._out += data
        return data

    def _handshake(self) -> None:
        try:
            self._ssl.do_handshake()
        except ssl.SSLWantReadError:
            self._drain()
            return
        except ssl.SSLError as exc:
            sent = self._drain()
            self._fail(_reason(exc), _alert_in(sent))
            return
        self._drain()
        self._finish_handshake()

    def _finish_handshake(self) -> None:
        cipher = self._ssl.cipher()
        suite = _BY_OPENSSL_NAME.get(cipher[0] if cipher else "")
        version = _VERSION_CODES.get(self._ssl.version() or "")
        if suite is None or suite not in self.config.openssl_suites or version != suites.TLS_1_2:
            self._fail(f"negotiated {cipher}, not a served seed suite")
            return
        if self.config.requires_client_cert and not self._bind_peer(self._ssl.getpeercert(binary_form=True)):
            return
        self.suite, self.version, self.state = suite, version, "open"
        self._events.append(HandshakeDone(suites.VERSION_NAMES[version], suite.iana, None,
                                          self.peer_identity))

    def _inspect(self, messages: list[tuple[int, bytes]]) -> None:
        """dmsim's own checks of the client's cleartext Certificate message; raise _Refused."""
        for kind, body in messages:
            if kind == 11 and self.config.requires_client_cert:
                der = first_certificate(body)
                if der is None:  # RFC 5246 §7.4.6: an empty list; the server refuses
                    raise _Refused("the client sent no certificate", ALERT_HANDSHAKE_FAILURE)
                _check_peer_certificate(der)

    def _read(self) -> None:
        while True:
            try:
                data = self._ssl.read(1 << 14)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:
                self._closed_by_peer()
                break
            except ssl.SSLError as exc:
                self._drain()
                self._fail(_reason(exc))
                return
            if not data:  # close_notify: ssl answers b"" once the peer shut down
                self._closed_by_peer()
                break
            self._events.append(AppData(data))
        self._drain()  # e.g. the no_renegotiation warning

    def _closed_by_peer(self) -> None:
        self.state = "closed"
        self._events.append(Closed())

    def _fail(self, reason: str, alert: int | None = None) -> None:
        self.state = "failed"
        self._events.append(TlsFailed(reason, alert))

    def _refuse(self, reason: str, alert: int) -> None:
        """Fail with a fatal alert of our own, in clear (the keys are not in use yet)."""
        self._drain()
        self._out += bytes([21, 3, 3, 0, 2, 2, alert])
        self._fail(reason, alert)


# --- choosing the backend from the ClientHello -----------------------------------------------

class _HelloReader:
    """Reads the ClientHello (RFC 5246 §7.4.1.2) off the client's first flight as it arrives,
    each octet once: whole handshake records are taken off ``pending`` into ``handshake``."""

    def __init__(self) -> None:
        self.pending = bytearray()
        self.handshake = bytearray()
        self.seen = 0

    def feed(self, data: bytes) -> list[int] | None:
        """Return the offered suite codes once the ClientHello is complete, None before;
        DecodeError when the flight is no well-formed ClientHello in handshake records."""
        self.pending += data
        self.seen += len(data)
        while True:
            if len(self.handshake) >= 4:
                if self.handshake[0] != 1:
                    raise DecodeError("ClientHello", 0, f"handshake type {self.handshake[0]}", "1 (client_hello)")
                length = int.from_bytes(self.handshake[1:4], "big")
                if length > _MAX_HELLO:
                    raise DecodeError("ClientHello", 1, f"length {length}", f"<= {_MAX_HELLO}")
                if len(self.handshake) >= 4 + length:
                    return _cipher_suites(bytes(self.handshake[4:4 + length]))
            if self.seen > _MAX_HELLO + 5 * 8:
                raise DecodeError("ClientHello", self.seen, "too many records", "a ClientHello in a few records")
            if len(self.pending) < 5:
                return None
            if self.pending[0] != 22:
                raise DecodeError("TLS record", 0, f"content type {self.pending[0]}", "22 (handshake)")
            length = int.from_bytes(self.pending[3:5], "big")
            if length > _MAX_RECORD:
                raise DecodeError("TLS record", 3, f"length {length}", f"<= {_MAX_RECORD}")
            if len(self.pending) < 5 + length:
                return None
            self.handshake += self.pending[5:5 + length]
            del self.pending[:5 + length]


def offered_suites(first_flight: bytes) -> list[int] | None:
    """Return the cipher suite codes of the ClientHello opening ``first_flight``, None while it is
    incomplete; DecodeError when it is no well-formed ClientHello in handshake records."""
    return _HelloReader().feed(first_flight)


def _cipher_suites(body: bytes) -> list[int]:
    if len(body) < 35 or len(body) < 35 + body[34] + 2:
        raise DecodeError("ClientHello", len(body), "message truncated", "cipher_suites")
    at = 35 + body[34]
    length = int.from_bytes(body[at:at + 2], "big")
    if length % 2 or at + 2 + length > len(body):
        raise DecodeError("ClientHello", at, f"cipher_suites length {length}", "an even length inside the message")
    return [int.from_bytes(body[i:i + 2], "big") for i in range(at + 2, at + 2 + length, 2)]


def choose_backend(config: TlsConfig, codes: list[int]) -> str:
    """Return "openssl" when the offered suite ``codes`` include a DHE_RSA suite of ``config``
    and none mbedtls can serve with it, else "mbedtls"."""
    offered = [suites.BY_CODE[c] for c in codes if c in suites.BY_CODE]
    if any(config.mbedtls_can_serve(s) for s in offered):
        return "mbedtls"
    if any(s in config.openssl_suites for s in offered):
        return "openssl"
    return "mbedtls"


class ServerDispatch:
    """A server connection that picks its backend from the ClientHello (module docstring);
    the :class:`.tls.TlsEndpoint` interface. ``backend`` is "mbedtls" or "openssl" once chosen."""

    def __init__(self, config: TlsConfig):
        if not config.server:
            raise ProtocolError("ServerDispatch is a server endpoint")
        self.config = config
        self.backend: str | None = None
        self.endpoint: TlsEndpoint | DheRsaEndpoint | None = None
        self._pending = bytearray()
        self._hello = _HelloReader()
        self._state = "handshake"
        self._out = b""

    # the endpoint's attributes (None until the backend is chosen)

    @property
    def state(self) -> str:
        return self.endpoint.state if self.endpoint is not None else self._state

    @property
    def suite(self) -> suites.SeedSuite | None:
        return getattr(self.endpoint, "suite", None)

    @property
    def version(self) -> int | None:
        return getattr(self.endpoint, "version", None)

    @property
    def psk_identity(self) -> bytes | None:
        return getattr(self.endpoint, "psk_identity", None)

    @property
    def peer_certificate(self) -> bytes | None:
        return getattr(self.endpoint, "peer_certificate", None)

    @property
    def peer_identity(self) -> str | None:
        return getattr(self.endpoint, "peer_identity", None)

    # public API

    def receive_data(self, data: bytes) -> list[Event]:
        """Return the events caused by ``data`` from the peer; b"" means the transport ended."""
        if self.endpoint is not None:
            return self.endpoint.receive_data(data)
        if self._state != "handshake":
            return []
        if not data:
            self._state = "failed"
            return [TlsFailed("transport closed by the peer")]
        self._pending += data
        try:
            codes = self._hello.feed(data)
        except DecodeError:
            return self._start("mbedtls")  # it refuses what is not a ClientHello, as before
        if codes is None:
            return []
        return self._start(choose_backend(self.config, codes))

    def send(self, data: bytes) -> None:
        """Encrypt ``data`` for the peer; ProtocolError before the session is open."""
        if self.endpoint is None:
            raise ProtocolError(f"TLS send in state {self.state}")
        self.endpoint.send(data)

    def data_to_send(self) -> bytes:
        """Return (and forget) the TLS records waiting for the peer."""
        if self.endpoint is not None:
            return self.endpoint.data_to_send()
        out, self._out = self._out, b""
        return out

    def close(self) -> None:
        """Close the session (close_notify when open)."""
        if self.endpoint is not None:
            self.endpoint.close()
        elif self._state == "handshake":
            self._state = "closed"

    def _start(self, backend: str) -> list[Event]:
        data, self._pending = bytes(self._pending), bytearray()
        try:
            endpoint = DheRsaEndpoint(self.config) if backend == "openssl" else TlsEndpoint(self.config)
        except (DmsimError, ssl.SSLError, OSError, ValueError) as exc:
            self._state = "failed"
            self._out = bytes([21, 3, 3, 0, 2, 2, ALERT_INTERNAL_ERROR])
            return [TlsFailed(f"the DHE_RSA endpoint could not start: {exc}", ALERT_INTERNAL_ERROR)]
        self.backend, self.endpoint = backend, endpoint
        return endpoint.receive_data(data)


__all__ = ["DheRsaEndpoint", "ServerDispatch", "server_context", "choose_backend", "offered_suites",
           "FFDHE2048_PEM", "OPENSSL_NAMES"]
