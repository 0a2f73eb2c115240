"""``dmsim bsf``: the BSF's Ub endpoint on a real socket and its HSS subscribers (the command line
in the README; ``sim/real/bsf_http_server.py``).

- ``dmsim bsf serve [--http HOST:PORT] [--db FILE.sqlite]``: listens on 127.0.0.1:8081 unless
  told otherwise; the HSS lives in ``--db`` (created if missing, in memory without it). Prints
  one JSON line when listening; Ctrl-C or SIGTERM stops it (exit 0). The audit log (one JSON line
  per request, no secret) goes next to the store (``FILE.sqlite.bsf-audit.jsonl``) or to
  ``--audit-log``.
- ``dmsim bsf subscriber add --db FILE --imsi DIGITS --k HEX --opc HEX [--amf HEX] [--sqn HEX]
  [--gba-u]``: one subscriber; the IMPI is derived from the IMSI (TS 23.003 §13.3) unless
  ``--impi`` is given. SEQ_HE starts at the SEQ of ``--sqn`` (the SQN the card holds).
- ``dmsim bsf subscriber list --db FILE [--json]``: identities, AMF, SEQ_HE, UICC type and key
  lifetime, never K or OPc.

Choices: the BSF's FQDN (B-TID suffix and Digest realm) defaults to the listening host
(``--fqdn`` sets it); the default port 8081 keeps clear of ``dmsim server``'s 8080.
"""
from __future__ import annotations

import json
import signal
import sys
import threading

import click

from dmsim.base.errors import DmsimError
from dmsim.sim.cli.toolbox import ParseFailure, emit, json_option, parse_hex, parse_host_port

DEFAULT_HTTP = "127.0.0.1:8081"


@click.group()
def bsf() -> None:
    """The BSF (GBA Ub, 3GPP TS 24.109) and its HSS subscribers."""


@bsf.command("serve")
@click.option("--http", "http_addr", default=DEFAULT_HTTP, show_default=True, help="Listen on HOST:PORT.")
@click.option("--db", default=None, help="SQLite HSS store (created if missing); in memory if unset.")
@click.option("--fqdn", default=None, help="The BSF's FQDN (B-TID suffix, Digest realm) [the listening host].")
@click.option("--audit-log", default=None, help="Audit log file [FILE.sqlite.bsf-audit.jsonl next to --db].")
@click.option("--request-deadline", type=click.FloatRange(0.1, 600), default=None, metavar="SECONDS",
              help="Wall-clock bound of one request, first byte to last byte of the answer [10].")
@click.option("--max-connections", type=click.IntRange(1, 4096), default=None, help="Connections at once [64].")
def serve(http_addr: str, db: str | None, fqdn: str | None, audit_log: str | None, request_deadline: float | None,
          max_connections: int | None) -> None:
    """Serve Ub (HTTP Digest AKA bootstrapping) until Ctrl-C or SIGTERM."""
    import dataclasses

    from dmsim.sim.real.audit_log import AuditLog
    from dmsim.sim.real.bsf_http_server import BSF_LIMITS, BsfService, make_bsf_server
    host, port = parse_host_port(http_addr, "--http", listen=True)
    limits = BSF_LIMITS
    if request_deadline is not None:
        limits = dataclasses.replace(limits, request_deadline=request_deadline)
    if max_connections is not None:
        limits = dataclasses.replace(limits, max_connections=max_connections,
                                     max_per_address=min(limits.max_per_address, max_connections))
    log_path = audit_log or (f"{db}.bsf-audit.jsonl" if db else None)
    try:
        audit = AuditLog(log_path)
        service = BsfService(db or ":memory:", fqdn or host, audit=audit)
    except (OSError, DmsimError) as exc:
        raise ParseFailure(f"cannot open the store or the audit log: {exc}") from None
    try:
        httpd = make_bsf_server(host, port, service, limits=limits)
    except OSError as exc:
        service.close()
        raise ParseFailure(f"--http {http_addr}: {exc.strerror or exc}") from None
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda signum, frame: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    try:
        thread.start()
        bound_host, bound_port = httpd.server_address[:2]
        click.echo(json.dumps({"listening": f"http://{bound_host}:{bound_port}/", "fqdn": service.bsf.fqdn,
                               "db": db or ":memory:", "audit_log": log_path}, sort_keys=True))
        sys.stdout.flush()
        while not stop.wait(0.2):
            pass
    finally:
        httpd.shutdown()
        httpd.server_close()
        service.close()
        audit.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@bsf.group()
def subscriber() -> None:
    """Provision the HSS's subscribers."""


def _octets(value: str, option: str, size: int) -> bytes:
    data = parse_hex(value, option)
    if len(data) != size:
        raise ParseFailure(f"{option}: at byte {len(data)}: {len(data)} octets (expected {size})")
    return data


@subscriber.command("add")
@click.option("--db", required=True, help="SQLite HSS store (created if missing).")
@click.option("--imsi", required=True, help="IMSI, 6 to 15 digits.")
@click.option("--k", "k_hex", required=True, help="K (16 bytes hex).")
@click.option("--opc", "opc_hex", required=True, help="OPc (16 bytes hex).")
@click.option("--amf", "amf_hex", default="8000", show_default=True, help="AMF (2 bytes hex).")
@click.option("--sqn", "sqn_hex", default="000000000000", show_default=True,
              help="The SQN the card holds (6 bytes hex); SEQ_HE starts at its SEQ.")
@click.option("--gba-u", is_flag=True, help="The UICC runs GBA_U (GUSS uiccType); default GBA_ME.")
@click.option("--impi", default=None, help="IMPI [derived from the IMSI, TS 23.003 §13.3].")
@click.option("--mnc-length", type=click.IntRange(2, 3), default=2, show_default=True)
@click.option("--key-lifetime", type=click.IntRange(1, 10 * 365 * 86400), default=86400, show_default=True,
              metavar="SECONDS", help="Ks lifetime (GUSS).")
def subscriber_add(db, imsi, k_hex, opc_hex, amf_hex, sqn_hex, gba_u, impi, mnc_length, key_lifetime) -> None:
    """Add one subscriber to the HSS store."""
    from dmsim.cards.profile import default_impi
    from dmsim.cards.sqn import split_sqn
    from dmsim.network.gba.hss_store import Subscriber, SubscriberStore
    if not (imsi.isascii() and imsi.isdigit() and 6 <= len(imsi) <= 15):
        raise ParseFailure(f"--imsi {imsi!r}: expected 6 to 15 digits")
    k, opc = _octets(k_hex, "--k", 16), _octets(opc_hex, "--opc", 16)
    amf, sqn = _octets(amf_hex, "--amf", 2), _octets(sqn_hex, "--sqn", 6)
    sub = Subscriber(impi or default_impi(imsi, mnc_length), imsi, k, opc, amf, split_sqn(sqn)[0], gba_u,
                     key_lifetime)
    with SubscriberStore(db) as store:
        store.add([sub])
    click.echo(f"added {sub.impi} ({'GBA_U' if gba_u else 'GBA'})")


@subscriber.command("list")
@click.option("--db", required=True, help="SQLite HSS store.")
@json_option
def subscriber_list(db: str, as_json: bool) -> None:
    """List the subscribers (never K or OPc)."""
    from dmsim.network.gba.hss_store import SubscriberStore
    with SubscriberStore(db) as store:
        rows = [{"impi": s.impi, "imsi": s.imsi, "amf": s.amf.hex(), "seq_he": s.seq_he,
                 "uicc_type": "GBA_U" if s.gba_u else "GBA", "key_lifetime": s.key_lifetime} for s in store]
    if as_json:
        emit({"subscribers": rows}, True)
    elif rows:
        emit({"subscribers": rows}, False)
    else:
        click.echo("no subscribers")
