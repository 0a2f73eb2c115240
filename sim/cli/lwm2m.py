"""``dmsim lwm2m``: the LwM2M bootstrap server + server on real UDP sockets, and a probe of any
LwM2M server's channel (the command line in the README).

- ``dmsim lwm2m server [--coaps HOST:PORT] [--coap HOST:PORT] [--psk IDENTITY:HEXKEY ...]
  [--low-entropy-psk IDENTITY:PIN ...] [--config FILE] [--audit-log FILE] [bounds]``: serves
  until Ctrl-C or SIGTERM (exit 0), after printing one JSON line on stderr (``listening``: the
  URIs, ``audit_log``, ``psk_identities``, ``endpoints``). ``coaps`` is CoAP over DTLS 1.2 PSK,
  ``coap`` NoSec, which only answers pings and ``GET /.well-known/core`` (4.01 to anything else:
  nothing unauthenticated may provision or register; ``sim/real/lwm2m_udp_server.py``). With
  neither, ``--coaps 127.0.0.1:5684``. A coaps listener without any PSK exits 2. ``--config``
  (``sim/real/lwm2m_config.py``) gives the endpoints and their provisioning; flags override
  its keys (``--psk`` and ``--low-entropy-psk`` add to its lists). Keys on the command line
  show in the process list: prefer ``--config`` with a file of mode 0600.
- ``dmsim lwm2m probe coaps://HOST:PORT --psk-identity ID --psk HEX [--timeout S] [--low-entropy]
  [--json]`` (or ``coap://HOST:PORT``, ping only): prints the suite, the handshake time and the
  ping round trip; exit 0 when every step succeeded, 1 when one failed (its one-line reason on
  stderr, ``sim/real/lwm2m_probe.py``), 2 for input that does not parse.

Choices: the audit log goes to ``--audit-log``, else to ``$XDG_STATE_HOME/dmsim/lwm2m-audit.jsonl``
(``~/.local/state/dmsim/``, as ``dmsim server`` does: never the current folder).
"""
from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path

import click

from dmsim.base.errors import DmsimError
from dmsim.sim.cli.toolbox import ParseFailure, emit, json_option, parse_hex, parse_host_port

DEFAULT_COAPS = "127.0.0.1:5684"
DEFAULT_AUDIT = "lwm2m-audit.jsonl"


@click.group()
def lwm2m() -> None:
    """OMA LwM2M over real UDP: the bootstrap server + server, and a channel probe."""


def _default_audit() -> str:
    """Return the default audit log: next to ``dmsim server``'s in the user's state folder."""
    from dmsim.sim.cli.server import _default_audit as server_audit  # creates the folder, mode 0700
    return str(Path(server_audit(None)).with_name(DEFAULT_AUDIT))


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
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help="YAML/JSON file: coaps, coap, psk, low_entropy_psk, audit_log and endpoints (name, dm and bootstrap "
                   "credentials, ssid, lifetime, binding, server_uri); flags override it.")
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
def server(coaps_addr, coap_addr, psks, low_psks, config_file, audit_log, max_associations, max_per_address,
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
    except DmsimError as exc:
        raise ParseFailure(str(exc)) from None
    coaps = coaps_addr or cfg["coaps"]
    coap = coap_addr or cfg["coap"]
    if coaps is None and coap is None:
        coaps = DEFAULT_COAPS
    listen = {"coaps_addr": parse_host_port(coaps, "--coaps", listen=True) if coaps else None,
              "coap_addr": parse_host_port(coap, "--coap", listen=True) if coap else None}
    bounds = {"max_associations": max_associations, "max_per_address": max_per_address,
              "handshake_deadline": handshake_deadline, "idle_timeout": idle_timeout, "max_datagram": max_datagram,
              "max_bootstraps": max_bootstraps}
    limits = Lwm2mLimits(**{k: v for k, v in bounds.items() if v is not None})
    _serve(listen, credentials, cfg["endpoints"], limits, audit_log or cfg["audit_log"])


def _serve(listen: dict, credentials: list, endpoints: list, limits, audit_path: str | None) -> None:
    from dmsim.sim.real.audit_log import AuditLog
    from dmsim.sim.real.lwm2m_udp_server import Lwm2mUdpServer
    try:
        udp = Lwm2mUdpServer(**listen, psks=credentials, endpoints=endpoints, limits=limits)
    except DmsimError as exc:
        raise ParseFailure(str(exc)) from None
    except OSError as exc:
        raise ParseFailure(f"cannot listen: {exc.strerror or exc}") from None
    audit_path = audit_path or _default_audit()
    try:  # opened once the sockets are bound, so a refused start leaves no file behind
        udp.audit = AuditLog(audit_path)
    except OSError as exc:
        udp.close()
        raise ParseFailure(f"audit log {audit_path}: {exc.strerror or exc}") from None
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda signum, frame: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        click.echo(json.dumps({"listening": list(udp.uris.values()), "audit_log": audit_path,
                               "psk_identities": len(udp.psks), "endpoints": len(endpoints)}), err=True)
        sys.stderr.flush()
        udp.serve(stop)
    finally:
        udp.close()
        udp.audit.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@lwm2m.command("probe")
@click.argument("uri")
@click.option("--psk-identity", metavar="ID", help="The PSK identity (coaps://).")
@click.option("--psk", "psk_hex", metavar="HEX", help="The PSK, hex (coaps://).")
@click.option("--timeout", type=click.FloatRange(0.05, 300), default=5.0, show_default=True, metavar="SECONDS",
              help="Wall-clock bound of each step (the handshake, the ping).")
@click.option("--low-entropy", is_flag=True,
              help="The PSK is a PIN or password: offer only TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256 (seed 004 §7.1).")
@json_option
def probe(uri: str, psk_identity: str | None, psk_hex: str | None, timeout: float, low_entropy: bool,
          as_json: bool) -> None:
    """DTLS handshake (coaps://) then a CoAP ping (Empty CON, answered by RST) to URI."""
    from dmsim.sim.real.lwm2m_probe import probe as run_probe
    key = parse_hex(psk_hex, "--psk") if psk_hex is not None else None
    identity = psk_identity.encode("utf-8") if psk_identity is not None else None
    try:
        result = run_probe(uri, identity=identity, key=key, low_entropy=low_entropy, timeout=timeout)
    except DmsimError as exc:
        raise ParseFailure(str(exc)) from None
    if not result.ok:
        click.echo(f"probe failed: {result.reason}", err=True)
    emit(result.as_dict(), as_json, ok=result.ok)
