"""``dmsim lwm2m``: the LwM2M bootstrap server + server on real UDP sockets, and a probe of any
LwM2M server's channel (the command line in the README).

- ``dmsim lwm2m server [--coaps HOST:PORT] [--coap HOST:PORT] [--psk IDENTITY:HEXKEY ...]
  [--low-entropy-psk IDENTITY:PIN ...] [--coaps-cert HOST:PORT --cert FILE --key FILE --client-ca
  FILE] [--coaps-rpk HOST:PORT --rpk-key FILE --rpk-client NAME:HEXKEY ...] [--config FILE]
  [--audit-log FILE] [bounds]``: serves until Ctrl-C or SIGTERM (exit 0), after printing one JSON
  line on stderr (``listening``: the URIs, ``listeners``: name -> URI, ``modes``: listener ->
  security mode, ``audit_log``, ``psk_identities``, ``rpk_clients``, ``endpoints``). ``coaps`` is
  CoAP over DTLS 1.2 PSK, ``coaps-cert`` certificate mode (clients present a certificate issued by
  ``--client-ca``; the server presents ``--cert``), ``coaps-rpk`` RPK mode (the server's key
  ``--rpk-key``; clients' keys from ``--rpk-client`` and the endpoints), ``coap`` NoSec, which
  only answers pings and ``GET /.well-known/core`` (4.01 to anything else: nothing
  unauthenticated may provision or register; ``sim/real/lwm2m_udp_server.py``). With no listener
  given, ``--coaps 127.0.0.1:5684``. A listener without its credentials, or credentials without
  their listener, exits 2. ``--config`` (``sim/real/lwm2m_config.py``) gives the endpoints and
  their provisioning; flags override its keys (``--psk``, ``--low-entropy-psk`` and
  ``--rpk-client`` add to its lists). Keys on the command line show in the process list: prefer
  ``--config`` with a file of mode 0600; key files others can read are warned of.
- ``dmsim lwm2m probe coaps://HOST:PORT (--psk-identity ID --psk HEX [--low-entropy] | --cert FILE
  --key FILE --ca FILE [--server-name NAME] | --rpk-key FILE --server-key FILE) [--timeout S]
  [--json]`` (or ``coap://HOST:PORT``, ping only): prints the mode, the suite, the handshake time
  and the ping round trip; exit 0 when every step succeeded, 1 when one failed (its one-line
  reason on stderr, ``sim/real/lwm2m_probe.py``), 2 for input that does not parse, including
  credentials of no kind, of two kinds or of one kind incomplete.

Key files (``--key``, ``--rpk-key``, ``--server-key``, ``--rpk-client`` values in hex): PEM, DER,
hex text or the raw octets of a D.1.1.2 form (``lwm2m_credentials.key_material``).

Choices: the audit log goes to ``--audit-log``, else to ``$XDG_STATE_HOME/dmsim/lwm2m-audit.jsonl``
(``~/.local/state/dmsim/``, as ``dmsim server`` does: never the current folder).
"""
from __future__ import annotations

import json
import signal
import sys
import threading

import click

from dmsim.base.errors import DmsimError
from dmsim.sim.cli.server import state_file
from dmsim.sim.cli.toolbox import ParseFailure, emit, json_option, parse_hex, parse_host_port

DEFAULT_COAPS = "127.0.0.1:5684"
DEFAULT_AUDIT = "lwm2m-audit.jsonl"


@click.group()
def lwm2m() -> None:
    """OMA LwM2M over real UDP: the bootstrap server + server, and a channel probe."""


@lwm2m.command("server")
@click.option("--coaps", "coaps_addr", metavar="HOST:PORT",
              help=f"Listen for CoAP over DTLS 1.2 (PSK) [{DEFAULT_COAPS} when neither --coaps nor --coap is given].")
@click.option("--coap", "coap_addr", metavar="HOST:PORT",
              help="Listen for NoSec CoAP: pings and GET /.well-known/core only (4.01 to anything else).")
@click.option("--psk", "psks", multiple=True, metavar="IDENTITY:HEXKEY",
              help="A PSK identity and key (repeatable); high entropy unless under 16 octets. Such an identity may "
                   "also register as the endpoint of the same name.")
@click.option("--low-entropy-psk", "low_psks", multiple=True, metavar="IDENTITY:PIN",
              help="A low-entropy PSK (repeatable): the PIN's UTF-8 octets are the key; only "
                   "TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256 is accepted for it (seed 004 §7.1), alert 71 otherwise.")
@click.option("--coaps-cert", "coaps_cert_addr", metavar="HOST:PORT",
              help="Listen for CoAP over DTLS 1.2 in certificate mode (needs --cert, --key, --client-ca).")
@click.option("--cert", "cert_file", type=click.Path(dir_okay=False), metavar="FILE",
              help="Certificate mode: the server's certificate chain (PEM, leaf first; P-256).")
@click.option("--key", "key_file", type=click.Path(dir_okay=False), metavar="FILE",
              help="Certificate mode: the server certificate's private key (PEM).")
@click.option("--client-ca", "client_ca_file", type=click.Path(dir_okay=False), metavar="FILE",
              help="Certificate mode: the CA (PEM) that issues the clients' certificates. A client certificate "
                   "naming N (SAN URI, else CN) has the identity x509:N and may register as endpoint N.")
@click.option("--coaps-rpk", "coaps_rpk_addr", metavar="HOST:PORT",
              help="Listen for CoAP over DTLS 1.2 in RPK mode (needs --rpk-key and client keys).")
@click.option("--rpk-key", "rpk_key_file", type=click.Path(dir_okay=False), metavar="FILE",
              help="RPK mode: the server's P-256 private key (PEM, DER, hex or the 32-octet scalar).")
@click.option("--rpk-client", "rpk_clients", multiple=True, metavar="NAME:HEXKEY",
              help="RPK mode: a client's public key (repeatable; hex of SubjectPublicKeyInfo DER, 04||X||Y, "
                   "02/03||X or X||Y). Its identity is rpk:NAME; it may register as endpoint NAME.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help="YAML/JSON file: coaps, coap, coaps_cert, coaps_rpk, psk, low_entropy_psk, server_cert, server_key, "
                   "client_ca, rpk_key, rpk_clients, audit_log and endpoints (name, dm and bootstrap credentials: "
                   "PSK, certificate or public_key; ssid, lifetime, binding, server_uri); flags override it.")
@click.option("--audit-log", type=click.Path(dir_okay=False),
              help="Audit log, JSON lines, rotated at 10 MiB [~/.local/state/dmsim/lwm2m-audit.jsonl].")
@click.option("--max-associations", type=click.IntRange(1, 65536), metavar="N", help="DTLS associations at once [256].")
@click.option("--max-per-address", type=click.IntRange(1, 65536), metavar="N",
              help="... of them from one IP address [32].")
@click.option("--handshake-deadline", type=click.FloatRange(0.1, 600), metavar="SECONDS",
              help="A DTLS handshake must complete within it [30].")
@click.option("--idle-timeout", type=click.FloatRange(1, 7 * 86400), metavar="SECONDS",
              help="An association with no authenticated datagram for that long is closed [600].")
@click.option("--max-datagram", type=click.IntRange(64, 65507), metavar="OCTETS",
              help="Larger datagrams are dropped unread [1500].")
@click.option("--max-bootstraps", type=click.IntRange(1, 65536), metavar="N", help="Bootstrap sessions at once [64].")
def server(coaps_addr, coap_addr, psks, low_psks, coaps_cert_addr, cert_file, key_file, client_ca_file,
           coaps_rpk_addr, rpk_key_file, rpk_clients, config_file, audit_log, max_associations, max_per_address,
           handshake_deadline, idle_timeout, max_datagram, max_bootstraps) -> None:
    """Run the LwM2M bootstrap server and server until Ctrl-C or SIGTERM."""
    from dmsim.sim.real.lwm2m_config import CONFIG_SCHEMA, load_config, psk_of
    from dmsim.sim.real.lwm2m_udp_server import Lwm2mLimits
    from dmsim.base.schema import validate
    try:
        cfg = load_config(config_file) if config_file else validate(CONFIG_SCHEMA, {})
        credentials = ([psk_of(p, low_entropy=False, where="--psk") for p in [*cfg["psk"], *psks]]
                       + [psk_of(p, low_entropy=True, where="--low-entropy-psk")
                          for p in [*cfg["low_entropy_psk"], *low_psks]])
        modes = _modes(cfg, cert_file, key_file, client_ca_file, rpk_key_file, rpk_clients)
    except DmsimError as exc:
        raise ParseFailure(str(exc)) from None
    given = {"coaps": coaps_addr or cfg["coaps"], "coap": coap_addr or cfg["coap"],
             "coaps_cert": coaps_cert_addr or cfg["coaps_cert"], "coaps_rpk": coaps_rpk_addr or cfg["coaps_rpk"]}
    if not any(given.values()):
        given["coaps"] = DEFAULT_COAPS
    listen = {f"{name}_addr": parse_host_port(addr, "--" + name.replace("_", "-"), listen=True) if addr else None
              for name, addr in given.items()}
    bounds = {"max_associations": max_associations, "max_per_address": max_per_address,
              "handshake_deadline": handshake_deadline, "idle_timeout": idle_timeout, "max_datagram": max_datagram,
              "max_bootstraps": max_bootstraps}
    limits = Lwm2mLimits(**{k: v for k, v in bounds.items() if v is not None})
    _serve(listen, credentials, modes, cfg["endpoints"], limits, audit_log or cfg["audit_log"])


def _modes(cfg: dict, cert_file, key_file, client_ca_file, rpk_key_file, rpk_clients) -> dict:
    """Return the ``certificate`` and ``rpk`` arguments of the server from the flags and ``cfg``."""
    from dmsim.base.errors import ScenarioError
    from dmsim.sim.real.lwm2m_config import read_file, rpk_client_of
    from dmsim.sim.real.lwm2m_credentials import CertificateMode, RpkMode, key_material
    files = {"--cert": cert_file or cfg["server_cert"], "--key": key_file or cfg["server_key"],
             "--client-ca": client_ca_file or cfg["client_ca"]}
    certificate = None
    if any(files.values()):
        missing = [flag for flag, path in files.items() if not path]
        if missing:
            raise ScenarioError(f"certificate mode without {', '.join(missing)}", path="certificate",
                                expected="--cert, --key and --client-ca")
        certificate = CertificateMode(read_file(files["--cert"], "--cert"),
                                      key_material(read_file(files["--key"], "--key", secret=True)),
                                      read_file(files["--client-ca"], "--client-ca"))
    clients = tuple(rpk_client_of(text, "--rpk-client") for text in [*cfg["rpk_clients"], *rpk_clients])
    rpk_key = rpk_key_file or cfg["rpk_key"]
    if clients and not rpk_key:
        raise ScenarioError("--rpk-client without --rpk-key", path="rpk_key", expected="--rpk-key FILE")
    rpk = RpkMode(key_material(read_file(rpk_key, "--rpk-key", secret=True)), clients) if rpk_key else None
    return {"certificate": certificate, "rpk": rpk}


def _serve(listen: dict, credentials: list, modes: dict, endpoints: list, limits, audit_path: str | None) -> None:
    from dmsim.sim.real.audit_log import AuditLog
    from dmsim.sim.real.lwm2m_udp_server import Lwm2mUdpServer
    try:
        udp = Lwm2mUdpServer(**listen, psks=credentials, endpoints=endpoints, limits=limits, **modes)
    except DmsimError as exc:
        raise ParseFailure(str(exc)) from None
    except OSError as exc:
        raise ParseFailure(f"cannot listen: {exc.strerror or exc}") from None
    audit_path = audit_path or state_file(DEFAULT_AUDIT)
    try:  # opened once the sockets are bound, so a refused start leaves no file behind
        udp.audit = AuditLog(audit_path)
    except OSError as exc:
        udp.close()
        raise ParseFailure(f"audit log {audit_path}: {exc.strerror or exc}") from None
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda signum, frame: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        click.echo(json.dumps({"listening": list(udp.uris.values()), "listeners": udp.uris, "modes": udp.modes,
                               "audit_log": audit_path, "psk_identities": len(udp.psks),
                               "rpk_clients": len(udp.rpk_clients), "endpoints": len(endpoints)}), err=True)
        sys.stderr.flush()
        udp.serve(stop)
    finally:
        udp.close()
        udp.audit.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@lwm2m.command("probe")
@click.argument("uri")
@click.option("--psk-identity", metavar="ID", help="PSK mode: the PSK identity (coaps://).")
@click.option("--psk", "psk_hex", metavar="HEX", help="PSK mode: the PSK, hex (coaps://).")
@click.option("--cert", "cert_file", type=click.Path(dir_okay=False), metavar="FILE",
              help="Certificate mode: the client's certificate (PEM or DER; P-256).")
@click.option("--key", "key_file", type=click.Path(dir_okay=False), metavar="FILE",
              help="Certificate mode: its private key (PEM, DER, hex or the 32-octet scalar).")
@click.option("--ca", "ca_file", type=click.Path(dir_okay=False), metavar="FILE",
              help="Certificate mode: the CA (PEM) the server's certificate must chain to.")
@click.option("--server-name", metavar="NAME", help="Certificate mode: the name the server's certificate must bear.")
@click.option("--rpk-key", "rpk_key_file", type=click.Path(dir_okay=False), metavar="FILE",
              help="RPK mode: the client's P-256 private key (PEM, DER, hex or the 32-octet scalar).")
@click.option("--server-key", "server_key_file", type=click.Path(dir_okay=False), metavar="FILE",
              help="RPK mode: the server's public key, pinned (PEM, or a D.1.1.2 form as DER, hex or octets).")
@click.option("--timeout", type=click.FloatRange(0.05, 300), default=5.0, show_default=True, metavar="SECONDS",
              help="Wall-clock bound of each step (the handshake, the ping).")
@click.option("--low-entropy", is_flag=True,
              help="The PSK is a PIN or password: offer only TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256 (seed 004 §7.1).")
@json_option
def probe(uri: str, psk_identity: str | None, psk_hex: str | None, cert_file, key_file, ca_file,
          server_name: str | None, rpk_key_file, server_key_file, timeout: float, low_entropy: bool,
          as_json: bool) -> None:
    """DTLS handshake (coaps://: PSK, certificate or RPK mode) then a CoAP ping (Empty CON,
    answered by RST) to URI."""
    from dmsim.sim.real.lwm2m_config import read_file
    from dmsim.sim.real.lwm2m_credentials import key_material
    from dmsim.sim.real.lwm2m_probe import probe as run_probe
    key = parse_hex(psk_hex, "--psk") if psk_hex is not None else None
    identity = psk_identity.encode("utf-8") if psk_identity is not None else None
    try:
        files = {"certificate": (cert_file, "--cert", False, False), "private_key": (key_file, "--key", True, True),
                 "ca": (ca_file, "--ca", False, False), "rpk_key": (rpk_key_file, "--rpk-key", True, True),
                 "server_public_key": (server_key_file, "--server-key", False, True)}
        credentials = {name: (key_material if is_key else bytes)(read_file(path, flag, secret=secret))
                       for name, (path, flag, secret, is_key) in files.items() if path}
        result = run_probe(uri, identity=identity, key=key, low_entropy=low_entropy, timeout=timeout,
                           server_name=server_name, **credentials)
    except DmsimError as exc:
        raise ParseFailure(str(exc)) from None
    if not result.ok:
        click.echo(f"probe failed: {result.reason}", err=True)
    emit(result.as_dict(), as_json, ok=result.ok)
