"""The TLS cipher suites, versions and curve sizes of seed 000 (OMA DM 1.3 security, §9.2.2).

Seed 000 §9.2.2 "Confidentiality and integrity" lists, for each mode, the suites the DM Server
SHALL support and the suites of which the DM Client SHALL support at least one; both lists are
the same, so one table per mode serves server and client:

- PSK-TLS mode [RFC4279]: ``PSK_SUITES``.
- X509 certificate mode: ``X509_SUITES``.
- SSL 3.0 sessions (``SSL_RSA_WITH_RC4_128_SHA``, ``SSL_RSA_WITH_3DES_EDE_CBC_SHA``): not here,
  dmsim never runs SSL 3.0 ("A session SHALL NOT take place over SSL2.0 or weaker than SSL3.0";
  SSL 3.0 is only a SHOULD and is broken, RFC 7568), so neither suite is offered.

Versions: the GCM suites and the X.509 suites exist only from TLS 1.2 (RFC 5288, RFC 5289,
RFC 5246 App. A.5); the PSK CBC-SHA256 suites (RFC 5487 §3.2, RFC 5489 §3) also run over
TLS 1.0/1.1. So a TLS 1.1 session (the seed's "SHALL support TLS 1.1") is possible in PSK-TLS
mode with the four CBC suites, and X.509 mode is TLS 1.2 only (``SeedSuite.min_version``).

Library limits (python-mbedtls 2.10 over Mbed TLS 2.28): all 13 seed suites are compiled in,
but python-mbedtls has no call to load Diffie-Hellman parameters into a server configuration,
so an mbedtls *server* cannot run DHE_PSK or DHE_RSA ("Bad input parameters";
``MBEDTLS_SERVER_UNUSABLE``). dmsim's server therefore runs on two backends: mbedtls
(``tls.TlsEndpoint``) for every suite but the DHE ones, and the standard library's ``ssl``
(OpenSSL, ``tls_dhe.DheRsaEndpoint``, DH group ffdhe2048 of RFC 7919) for DHE_RSA
(``OPENSSL_SERVED``); ``tls.server_endpoint`` picks one per connection from the ClientHello's
suite list. DHE_PSK has no backend (below): it stays out of the server's list
(``SERVER_UNUSABLE``). dmsim's client offers all of them and completes DHE_PSK with a server
that has DH parameters (OpenSSL). Seed 000 §9.2.2 says the server SHALL support all 13, so
DHE_PSK on the server side is a known gap of dmsim, not a choice.

Server-side DHE, what each candidate binding offers (checked 2026-12, issue 14 item 4):

- python-mbedtls 2.10.1 (the installed one): ``TLSConfiguration`` has the fields
  validate_certificates, certificate_chain, ciphers, inner_protocols, lowest/highest_supported_
  version, trust_store, max_fragmentation_length, read_timeout, sni_callback, pre_shared_key,
  pre_shared_key_store: none for DH. Its ``_tls`` extension imports ``mbedtls_ssl_conf_*`` for
  authmode, ca_chain, ciphersuites, own_cert, psk, psk_cb, renegotiation, ... but neither
  ``mbedtls_ssl_conf_dh_param_bin`` nor ``mbedtls_ssl_conf_dh_param_ctx`` (``nm -D`` of
  ``_tls.cpython-311-x86_64-linux-gnu.so``), and the C ``mbedtls_ssl_config`` is not reachable
  from Python, so there is no way to give it DH parameters short of patching the extension.
- pyOpenSSL 26.4.0 (latest; needs cryptography >= 49, < 51, which fits): ``Connection`` over
  memory BIOs (``bio_write``/``bio_read``) is sans-IO and ``Context.load_tmp_dh`` loads DH
  parameters, so DHE_RSA would run; but ``OpenSSL/SSL.py`` has no PSK API at all (no
  ``set_psk_server_callback``, no ``use_psk_identity_hint``). PSK would need cryptography's raw
  cffi bindings (``Binding().lib.SSL_CTX_set_psk_server_callback``, present) on pyOpenSSL's
  private ``Context._context`` with an ``ffi.callback``: private, unsupported internals of two
  projects, not a sound base for DHE_PSK.
- The standard library ``ssl`` of Python 3.11 (OpenSSL 3.0): ``SSLContext.wrap_bio`` with
  ``MemoryBIO`` (``SSLObject``) is sans-IO, ``SSLContext.load_dh_params`` loads DH parameters
  (RFC 7919 ffdhe2048 serves), ``verify_mode = CERT_REQUIRED`` with ``load_verify_locations``
  does client authentication. A proof of concept served ``DHE-RSA-AES128-GCM-SHA256`` and
  ``DHE-RSA-AES128-SHA256`` (TLS 1.2) to ``openssl s_client -cert`` with a lab-CA client
  certificate (RSA 2048 server certificate signed by the lab CA) and refused a client without a
  certificate ("peer did not return a certificate"). PSK callbacks
  (``SSLContext.set_psk_server_callback``) exist only from Python 3.13; dmsim runs on 3.11, so
  no DHE_PSK here either.

Verdict: DHE_PSK (0x00AA, 0x00B2) cannot be served soundly by any maintained binding on the
supported Pythons (3.11/3.12): it stays in ``SERVER_UNUSABLE``, and a ClientHello offering only
DHE_PSK suites is refused by mbedtls with a fatal handshake_failure alert. DHE_RSA (0x009E,
0x0067) is served by ``network/dm/tls_dhe.py`` on the standard library ``ssl`` (same
receive_data/data_to_send/TlsFailed contract, an RSA certificate, DH parameters of RFC 7919),
TLS 1.2 only like every X.509 suite.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SeedSuite:
    """One cipher suite of the seed: IANA name and code point, mode, key exchange."""

    iana: str
    code: int
    mode: str  # "psk" or "x509"
    key_exchange: str  # PSK, DHE_PSK, RSA_PSK, ECDHE_PSK, ECDHE_ECDSA, DHE_RSA, RSA
    min_version: int = 0x0303  # lowest TLS version the suite runs over, floored at TLS 1.1

    @property
    def mbedtls_name(self) -> str:
        """Return the name python-mbedtls uses (dashes instead of underscores)."""
        return self.iana.replace("_", "-")

    @property
    def uses_psk(self) -> bool:
        """Return True when the key exchange carries a PSK identity (RFC 4279 §2)."""
        return self.key_exchange.endswith("PSK")

    @property
    def uses_ecdhe(self) -> bool:
        """Return True when the ServerKeyExchange names an elliptic curve (RFC 4492 §5.4)."""
        return self.key_exchange.startswith("ECDHE")


# seed 000 §9.2.2: "The DM Server SHALL support the following Cipher Suites when using an
# PSK-TLS mode" and "The DM Client SHALL support at least one of ..." (same seven suites).
PSK_SUITES: tuple[SeedSuite, ...] = (
    SeedSuite("TLS_PSK_WITH_AES_128_GCM_SHA256", 0x00A8, "psk", "PSK"),
    SeedSuite("TLS_DHE_PSK_WITH_AES_128_GCM_SHA256", 0x00AA, "psk", "DHE_PSK"),
    SeedSuite("TLS_RSA_PSK_WITH_AES_128_GCM_SHA256", 0x00AC, "psk", "RSA_PSK"),
    SeedSuite("TLS_PSK_WITH_AES_128_CBC_SHA256", 0x00AE, "psk", "PSK", 0x0302),
    SeedSuite("TLS_DHE_PSK_WITH_AES_128_CBC_SHA256", 0x00B2, "psk", "DHE_PSK", 0x0302),
    SeedSuite("TLS_RSA_PSK_WITH_AES_128_CBC_SHA256", 0x00B6, "psk", "RSA_PSK", 0x0302),
    SeedSuite("TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256", 0xC037, "psk", "ECDHE_PSK", 0x0302),
)

# seed 000 §9.2.2: "The DM Server SHALL support the following Cipher Suites when using X509
# mode" and "The DM Client SHALL support at least one of ..." (same six suites).
X509_SUITES: tuple[SeedSuite, ...] = (
    SeedSuite("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", 0xC02B, "x509", "ECDHE_ECDSA"),
    SeedSuite("TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", 0x009E, "x509", "DHE_RSA"),
    SeedSuite("TLS_RSA_WITH_AES_128_GCM_SHA256", 0x009C, "x509", "RSA"),
    SeedSuite("TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", 0xC023, "x509", "ECDHE_ECDSA"),
    SeedSuite("TLS_DHE_RSA_WITH_AES_128_CBC_SHA256", 0x0067, "x509", "DHE_RSA"),
    SeedSuite("TLS_RSA_WITH_AES_128_CBC_SHA256", 0x003C, "x509", "RSA"),
)

SEED_SUITES: tuple[SeedSuite, ...] = PSK_SUITES + X509_SUITES
BY_CODE: dict[int, SeedSuite] = {s.code: s for s in SEED_SUITES}
BY_IANA: dict[str, SeedSuite] = {s.iana: s for s in SEED_SUITES}

# Key exchanges an mbedtls server cannot run through python-mbedtls 2.10 (no DH parameters).
MBEDTLS_SERVER_UNUSABLE: frozenset[str] = frozenset({"DHE_PSK", "DHE_RSA"})
# Of those, the ones dmsim's server runs on the standard library's ssl (network/dm/tls_dhe.py).
OPENSSL_SERVED: frozenset[str] = frozenset({"DHE_RSA"})
# Key exchanges dmsim's server cannot run at all: DHE_PSK, no maintained binding on Python 3.11
# serves it (stdlib ssl has PSK callbacks only from 3.13, pyOpenSSL no PSK API; docstring).
SERVER_UNUSABLE: frozenset[str] = MBEDTLS_SERVER_UNUSABLE - OPENSSL_SERVED

# TLS record versions (RFC 5246 §6.2.1). Seed 000 §9.2.2: both sides SHALL support TLS 1.1 and
# SHALL NOT run SSL 2.0; SSL 3.0 and TLS 1.0 are only SHOULDs, and dmsim refuses them (both
# are deprecated, RFC 7568 and RFC 8996), so the lowest version dmsim accepts is TLS 1.1.
TLS_1_0, TLS_1_1, TLS_1_2 = 0x0301, 0x0302, 0x0303
LOWEST_VERSION = TLS_1_1
VERSION_NAMES: dict[int, str] = {0x0300: "SSLv3", TLS_1_0: "TLSv1", TLS_1_1: "TLSv1.1",
                                 TLS_1_2: "TLSv1.2"}

# Named groups (RFC 8422 §5.1.1, RFC 7027) and their key size in bits, for the seed's
# "When an ECDHE or ECDSA algorithm is used, the minimum key length SHALL be at least 256 bits".
# x25519 counts as 256 bits: its keys are 32 bytes (RFC 7748), its security level that of P-256.
CURVE_BITS: dict[int, int] = {
    15: 160, 16: 160, 17: 160, 18: 192, 19: 192, 20: 224, 21: 224,
    22: 256, 23: 256, 24: 384, 25: 521, 26: 256, 27: 384, 28: 512, 29: 256, 30: 448,
}
MIN_ECC_BITS = 256


def suites_for(mode: str, *, server: bool) -> tuple[SeedSuite, ...]:
    """Return the seed suites of ``mode`` ("psk", "x509" or "both") one side offers, in order.

    A server drops the suites of ``SERVER_UNUSABLE`` (see the module docstring).
    """
    chosen = {"psk": PSK_SUITES, "x509": X509_SUITES, "both": SEED_SUITES}[mode]
    if server:
        chosen = tuple(s for s in chosen if s.key_exchange not in SERVER_UNUSABLE)
    return chosen
