"""``dmsim server``: the DM server on real sockets (the command line in the README), HTTP and HTTPS.

HTTPS is SyncML DM over TLS (seed 000 §9.2.2): PSK-TLS with the identities of ``--psk`` and
those already in the store (provisioned ones included), X.509 with ``--cert``/``--key``; with a
certificate the server offers both modes; with neither a PSK (given or in the store) nor a
certificate, ``--https`` is refused (exit 2) rather than serving a TLS port no client can use.
Accounts, nonces and PSKs live in the SQLite file of ``--db`` (in memory without it) and
survive a restart.

``--config FILE`` is a YAML mapping with the keys of ``CONFIG_SCHEMA`` (``dmsim server --help``
lists them); a flag given on the command line overrides its key (``--psk`` replaces the whole
``psk`` list). Relative ``cert``, ``key`` and ``db`` paths in the file are relative to the
file's folder. A bad file exits 2 naming ``file:line`` and the key.

Prints one JSON line when listening (``listening`` is the first URL, then ``http``, ``https``);
Ctrl-C or SIGTERM stops it (exit 0).
"""
from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path

import click

from dmsim.base.errors import DmsimError, ScenarioError
from dmsim.base.schema import Field, List, Nullable, Problem, Seconds, Str, Struct, load_yaml, read_text, validate
from dmsim.sim.cli.toolbox import ParseFailure, parse_host_port

DEFAULT_HTTP = "127.0.0.1:8080"
_HOST_PORT = Str(pattern=r"^.+:[0-9]{1,5}$", noun="HOST:PORT")
_PSK = Str(pattern=r"^.+:(?:[0-9A-Fa-f]{2})+$", noun="IDENTITY:HEXKEY (the key after the last colon)")


def _pairing(cfg: dict) -> Problem | None:
    if (cfg["cert"] is None) != (cfg["key"] is None):
        given, missing = ("cert", "key") if cfg["key"] is None else ("key", "cert")
        return Problem((given,), f"{given} given without {missing}", "both cert and key, or neither")
    return None


CONFIG_SCHEMA = Struct({
    "server_id": Field(Str(), "dmsim-server", "The DM server's ServerID."),
    "http": Field(Nullable(_HOST_PORT), None, f"Listen for HTTP on HOST:PORT ({DEFAULT_HTTP} when "
                                              "neither http nor https is set)."),
    "https": Field(Nullable(_HOST_PORT), None, "Listen for HTTPS (SyncML DM over TLS) on HOST:PORT."),
    "psk": Field(List(_PSK), [], "TLS PSKs, each IDENTITY:HEXKEY; written to the store."),
    "cert": Field(Nullable(Str()), None, "PEM certificate chain (leaf first) for X.509 mode."),
    "key": Field(Nullable(Str()), None, "PEM private key of cert (ECDSA >= 256 bits, or RSA)."),
    "db": Field(Nullable(Str()), None, "SQLite device store (accounts, nonces, PSKs); in memory if unset."),
    "hmac_window": Field(Seconds(positive=True), 300.0,
                         "How old an x-syncml-hmac Timestamp may be (OMA-TS-DM_Security §5.6.1; replays "
                         "inside it are refused by the replay cache)."),
}, doc="dmsim server configuration", name="server config", rule=_pairing)


def load_config(path: str | Path) -> dict:
    """Return the validated configuration in the YAML file ``path``; ScenarioError with
    ``file:line`` when it is refused."""
    path = Path(path)
    raw, locator = load_yaml(read_text(path), str(path))
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ScenarioError("a server configuration is a mapping of keys", where=locator(()), expected="a mapping")
    cfg = validate(CONFIG_SCHEMA, raw, (), locator)
    for key in ("http", "https"):
        if cfg[key] is not None:
            _, _, port = cfg[key].rpartition(":")
            if int(port) > 65535:
                raise ScenarioError(f"port {port} is out of range", where=locator((key,)), path=key,
                                    expected="HOST:PORT with a port from 0 to 65535")
    for key in ("cert", "key", "db"):
        if cfg[key] is not None and cfg[key] != ":memory:":
            cfg[key] = str(path.parent / cfg[key])
    return cfg


def _read(path: str, option: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ParseFailure(f"{option} {path}: {exc.strerror or exc}") from None


@click.command("server")
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help="YAML file with the keys server_id, http, https, psk (list), cert, key, db; flags override it.")
@click.option("--http", "http_addr", metavar="HOST:PORT",
              help=f"Listen for HTTP on HOST:PORT [{DEFAULT_HTTP} when neither --http nor --https is given].")
@click.option("--https", "https_addr", metavar="HOST:PORT", help="Listen for HTTPS (SyncML DM over TLS).")
@click.option("--psk", "psks", multiple=True, metavar="IDENTITY:HEXKEY",
              help="A PSK-TLS identity and key (repeatable), added to the store.")
@click.option("--cert", type=click.Path(dir_okay=False), help="PEM certificate chain for X.509 mode.")
@click.option("--key", type=click.Path(dir_okay=False), help="PEM private key of --cert.")
@click.option("--db", type=click.Path(dir_okay=False), help="SQLite device store [in memory].")
@click.option("--server-id", help="The DM server's ServerID [dmsim-server].")
@click.option("--hmac-window", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
              help="Oldest x-syncml-hmac Timestamp accepted, in seconds [300].")
def server(config_file: str | None, http_addr: str | None, https_addr: str | None, psks: tuple[str, ...],
           cert: str | None, key: str | None, db: str | None, server_id: str | None,
           hmac_window: float | None) -> None:
    """Run the DM server on real sockets: HTTP and HTTPS (PSK-TLS, X.509), backed by SQLite."""
    try:
        cfg = load_config(config_file) if config_file else validate(CONFIG_SCHEMA, {})
    except ScenarioError as exc:
        raise ParseFailure(str(exc)) from None
    flags = {"server_id": server_id, "http": http_addr, "https": https_addr, "cert": cert, "key": key, "db": db,
             "psk": list(psks) or None, "hmac_window": hmac_window}
    cfg.update({k: v for k, v in flags.items() if v is not None})
    if cfg["http"] is None and cfg["https"] is None:
        cfg["http"] = DEFAULT_HTTP
    if (cfg["cert"] is None) != (cfg["key"] is None):
        raise ParseFailure("--cert and --key go together")
    http = parse_host_port(cfg["http"], "--http", listen=True) if cfg["http"] else None
    https = parse_host_port(cfg["https"], "--https", listen=True) if cfg["https"] else None
    from dmsim.sim.links.transports import parse_psk
    try:
        psk_pairs = [parse_psk(p, "--psk") for p in cfg["psk"]]
    except ScenarioError as exc:
        raise ParseFailure(str(exc)) from None
    cert_pem = _read(cfg["cert"], "--cert") if cfg["cert"] else None
    key_pem = _read(cfg["key"], "--key") if cfg["key"] else None
    _serve(cfg, http, https, psk_pairs, cert_pem, key_pem)


def _serve(cfg: dict, http, https, psk_pairs, cert_pem, key_pem) -> None:
    from dmsim.network.dm import tls
    from dmsim.sim.real.dm_http_server import DmService, default_server, make_http_server, make_https_server
    from dmsim.sim.real.dm_store import SqliteAccounts

    try:
        store = SqliteAccounts(cfg["db"] or ":memory:")
    except DmsimError as exc:
        raise ParseFailure(f"--db: {exc}") from None
    listeners, service = [], None
    try:
        for identity, psk in psk_pairs:
            store.psks[identity] = psk
        if https and cert_pem is None and not len(store.psks):
            raise ParseFailure(f"--https {cfg['https']}: no TLS credentials: give --psk IDENTITY:HEXKEY (PSK-TLS), "
                               "--cert PEM --key PEM (X.509), or a --db that holds PSKs")
        first_host, first_port = https or http
        core = default_server(cfg["server_id"], first_host, first_port, scheme="https" if https else "http",
                              accounts=store, hmac_window=cfg["hmac_window"])
        service = DmService(core, store.psks)
        urls: dict[str, str | None] = {"http": None, "https": None}
        try:
            if https:
                config = tls.server_config(psks=store.psks, cert_pem=cert_pem, key_pem=key_pem,
                                           mode="both" if cert_pem else "psk")
                listeners.append(make_https_server(*https, service, config))
                urls["https"] = f"https://{https[0]}:{listeners[-1].server_address[1]}/dm"
            if http:
                listeners.append(make_http_server(*http, service))
                urls["http"] = f"http://{http[0]}:{listeners[-1].server_address[1]}/dm"
        except DmsimError as exc:
            raise ParseFailure(str(exc)) from None
        except OSError as exc:
            raise ParseFailure(f"cannot listen: {exc.strerror or exc}") from None
        core.server_uri = urls["https"] or urls["http"]
        _run(listeners, {"listening": urls["http"] or urls["https"], **urls, "server_id": cfg["server_id"],
                         "db": cfg["db"], "tls": None if not https else ("psk+x509" if cert_pem else "psk"),
                         "psk_identities": len(store.psks)})
    finally:
        for httpd in listeners:
            httpd.server_close()
        # daemon handler threads may still be inside a request: close between requests
        if service is None:
            store.close()
        else:
            with service.lock:
                store.close()


def _run(listeners: list, info: dict) -> None:
    """Serve every listener on its own thread until SIGINT or SIGTERM."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda signum, frame: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    threads = [threading.Thread(target=httpd.serve_forever, daemon=True) for httpd in listeners]
    try:
        for t in threads:
            t.start()
        click.echo(json.dumps(info))
        sys.stdout.flush()
        while not stop.wait(0.2):
            pass
    finally:
        for httpd, t in zip(listeners, threads):
            if t.is_alive():
                httpd.shutdown()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":  # pragma: no cover
    server()
