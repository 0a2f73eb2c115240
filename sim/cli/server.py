"""``dmsim server``: the DM server on real sockets (the command line in the README), HTTP and HTTPS.

HTTPS is SyncML DM over TLS (seed 000 §9.2.2): PSK-TLS with the identities of ``--psk`` and
those already in the store (provisioned ones included), X.509 with ``--cert``/``--key``; with a
certificate the server offers both modes; with neither a PSK (given or in the store) nor a
certificate, ``--https`` is refused (exit 2) rather than serving a TLS port no client can use.
Accounts, nonces, PSKs and the x-syncml-hmac replay cache live in the SQLite file of ``--db``
(in memory without it), created mode 0600, and survive a restart; ``--durability`` (default
``full``: fsync at every commit) is the SQLite synchronous setting (``sim/real/dm_store.py``).
``--psk`` shows its key in /proc/PID/cmdline: prefer ``--psk-file`` (one IDENTITY:HEXKEY a line,
``#`` comments; the file must not be readable by group or others).

Provisioning (``POST /dmsim/provision``, ``sim/real/provisioning.py``) is off unless
``--admin HOST:PORT`` (a loopback address of its own) and ``--admin-token-file FILE`` are given.
Devices are enrolled offline with ``dmsim server account add|list|remove --db FILE`` or the
``accounts`` list of ``--config`` (installed at start when the device has no account yet, so a
restart never resets its nonces).

Audit log: JSON lines of every request and every authentication event (``sim/real/audit_log.py``;
no secret is written), by default next to the store (``FILE.sqlite.audit.jsonl``) or, without
``--db``, in the user's state folder (``$XDG_STATE_HOME/dmsim/server-audit.jsonl``, by default
``~/.local/state/dmsim/``, created mode 0700; not the current folder, which may be a source
tree); ``--audit-log FILE`` moves it. It is created mode
0600 and rotated at 10 MiB, keeping 3 old files (``FILE.1`` .. ``FILE.3``).

``--config FILE`` is a YAML mapping with the keys of ``CONFIG_SCHEMA`` (``dmsim server --help``
lists them); a flag given on the command line overrides its key (``--psk`` replaces the whole
``psk`` list). Relative ``cert``, ``key`` and ``db`` paths in the file are relative to the
file's folder. A bad file exits 2 naming ``file:line`` and the key.

Prints one JSON line when listening (``listening`` is the first URL, then ``http``, ``https``,
``admin``, ``audit_log``);
Ctrl-C or SIGTERM stops it (exit 0).
"""
from __future__ import annotations

import json
import os
import signal
import stat
import sys
import threading
from pathlib import Path

import click

from dmsim.base.errors import DmsimError, ScenarioError
from dmsim.base.schema import (Bool, Field, List, Nullable, Problem, Seconds, Str, Struct, load_yaml, read_text,
                               validate)
from dmsim.sim.cli.toolbox import ParseFailure, parse_host_port

DEFAULT_HTTP = "127.0.0.1:8080"
DEFAULT_AUDIT = "server-audit.jsonl"
_AUTH = ("basic", "md5", "sha256", "hmac")
_HOST_PORT = Str(pattern=r"^.+:[0-9]{1,5}$", noun="HOST:PORT")
_PSK = Str(pattern=r"^.+:(?:[0-9A-Fa-f]{2})+$", noun="IDENTITY:HEXKEY (the key after the last colon)")


def _pairing(cfg: dict) -> Problem | None:
    if (cfg["cert"] is None) != (cfg["key"] is None):
        given, missing = ("cert", "key") if cfg["key"] is None else ("key", "cert")
        return Problem((given,), f"{given} given without {missing}", "both cert and key, or neither")
    if cfg["client_ca"] is not None and cfg["cert"] is None:
        return Problem(("client_ca",), "client_ca given without cert", "a server certificate (cert, key) too")
    return None


ACCOUNT_SCHEMA = Struct({
    "device": Field(Str(pattern=r"\S", noun="a device ID"), None, "The device ID (SyncHdr Source LocURI)."),
    "client_name": Field(Str(pattern=r"\S", noun="a name"), None, "The client's name (AAuthName)."),
    "client_password": Field(Str(pattern=r"\S", noun="a password"), None, "The client's password."),
    "server_id": Field(Nullable(Str()), None, "The ServerID the device knows [the server's]."),
    "server_password": Field(Str(pattern=r"\S", noun="a password"), None, "The server's password."),
    "auth": Field(Str(choices=_AUTH), "md5", "How the client authenticates to the server."),
    "server_auth": Field(Nullable(Str(choices=_AUTH)), None, "How the server authenticates to the client [auth]."),
    "client_nonce": Field(Nullable(Str()), None, "The client's starting AAuthData text [random]."),
    "server_nonce": Field(Nullable(Str()), None, "The server's starting AAuthData text [random]."),
    "psk": Field(Nullable(Str(pattern=r"^(?:[0-9A-Fa-f]{2})+$", noun="hex")), None, "A TLS PSK (hex)."),
}, doc="one enrolled device", name="account")


CONFIG_SCHEMA = Struct({
    "server_id": Field(Str(), "dmsim-server", "The DM server's ServerID."),
    "http": Field(Nullable(_HOST_PORT), None, f"Listen for HTTP on HOST:PORT ({DEFAULT_HTTP} when "
                                              "neither http nor https is set)."),
    "https": Field(Nullable(_HOST_PORT), None, "Listen for HTTPS (SyncML DM over TLS) on HOST:PORT."),
    "psk": Field(List(_PSK), [], "TLS PSKs, each IDENTITY:HEXKEY; written to the store."),
    "psk_file": Field(Nullable(Str()), None, "File of TLS PSKs, one IDENTITY:HEXKEY a line (mode 0600)."),
    "admin": Field(Nullable(_HOST_PORT), None, "Serve provisioning on this loopback HOST:PORT (off if unset)."),
    "admin_token_file": Field(Nullable(Str()), None, "File holding the admin token (mode 0600, >= 16 chars)."),
    "audit_log": Field(Nullable(Str()), None, "Audit log file [next to db, or $XDG_STATE_HOME/dmsim/]."),
    "durability": Field(Str(choices=("full", "normal", "off")), "full", "SQLite synchronous setting of the store."),
    "accounts": Field(List(ACCOUNT_SCHEMA), [], "Devices to enrol at start (skipped when already in the store)."),
    "cert": Field(Nullable(Str()), None, "PEM certificate chain (leaf first) for X.509 mode."),
    "key": Field(Nullable(Str()), None, "PEM private key of cert (ECDSA >= 256 bits, or RSA)."),
    "client_ca": Field(Nullable(Str()), None,
                       "PEM CA certificate(s): in X.509 mode the server requires a client certificate they issued "
                       "and binds it to the message's DevId (OMA-TS-DM_Security §5.4)."),
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
    for key in ("http", "https", "admin"):
        if cfg[key] is not None:
            _, _, port = cfg[key].rpartition(":")
            if int(port) > 65535:
                raise ScenarioError(f"port {port} is out of range", where=locator((key,)), path=key,
                                    expected="HOST:PORT with a port from 0 to 65535")
    for key in ("cert", "key", "client_ca", "db", "psk_file", "admin_token_file", "audit_log"):
        if cfg[key] is not None and cfg[key] != ":memory:":
            cfg[key] = str(path.parent / cfg[key])
    for i, acc in enumerate(cfg["accounts"]):
        for name in ("device", "client_name", "client_password", "server_password"):
            if acc[name] is None:
                raise ScenarioError(f"accounts.{i}: {name} is required", where=locator(("accounts", i)),
                                    path=f"accounts.{i}.{name}", expected="a non-empty string")
    if cfg["accounts"] and os.stat(path).st_mode & 0o077:
        print(f"warning: {path} holds passwords and is readable by others; chmod 600 it", file=sys.stderr)
    return cfg


def _read(path: str, option: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ParseFailure(f"{option} {path}: {exc.strerror or exc}") from None


def read_psk_file(path: str) -> list[tuple[bytes, bytes]]:
    """Return the (identity, key) pairs of a PSK file; exit 2 when it is unreadable, readable by
    group or others, or a line is not IDENTITY:HEXKEY."""
    from dmsim.sim.links.transports import parse_psk
    try:
        if stat.S_IMODE(os.stat(path).st_mode) & 0o077:
            raise ParseFailure(f"--psk-file {path}: readable by others; chmod 600 it")
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ParseFailure(f"--psk-file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    out = []
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if line and not line.startswith("#"):
            try:
                out.append(parse_psk(line, f"{path}:{n}"))
            except ScenarioError:
                raise ParseFailure(f"--psk-file {path}:{n}: not IDENTITY:HEXKEY") from None
    return out


@click.group("server", invoke_without_command=True)
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help="YAML file with the keys of the options (server_id, http, https, psk, psk_file, cert, key, client_ca, db, "
                   "admin, admin_token_file, audit_log, durability, hmac_window) and accounts; flags override it.")
@click.option("--http", "http_addr", metavar="HOST:PORT",
              help=f"Listen for HTTP on HOST:PORT [{DEFAULT_HTTP} when neither --http nor --https is given].")
@click.option("--https", "https_addr", metavar="HOST:PORT", help="Listen for HTTPS (SyncML DM over TLS).")
@click.option("--psk", "psks", multiple=True, metavar="IDENTITY:HEXKEY",
              help="A PSK-TLS identity and key (repeatable), added to the store; visible in the process list, "
                   "prefer --psk-file.")
@click.option("--psk-file", type=click.Path(dir_okay=False), help="File of IDENTITY:HEXKEY lines (mode 0600).")
@click.option("--cert", type=click.Path(dir_okay=False), help="PEM certificate chain for X.509 mode.")
@click.option("--key", type=click.Path(dir_okay=False), help="PEM private key of --cert.")
@click.option("--client-ca", type=click.Path(dir_okay=False),
              help="PEM CA certificate(s): require a client certificate they issued in X.509 mode, bound to the "
                   "DevId (OMA-TS-DM_Security §5.4; needs --cert).")
@click.option("--db", type=click.Path(dir_okay=False), help="SQLite device store, mode 0600 [in memory].")
@click.option("--server-id", help="The DM server's ServerID [dmsim-server].")
@click.option("--hmac-window", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
              help="Oldest x-syncml-hmac Timestamp accepted, in seconds [300].")
@click.option("--admin", "admin_addr", metavar="HOST:PORT",
              help="Serve provisioning (POST /dmsim/provision) on this loopback address [off].")
@click.option("--admin-token-file", type=click.Path(dir_okay=False),
              help="File holding the admin bearer token (mode 0600, at least 16 characters).")
@click.option("--audit-log", type=click.Path(dir_okay=False),
              help="Audit log, JSON lines, rotated at 10 MiB [DB.audit.jsonl, or "
                   "~/.local/state/dmsim/server-audit.jsonl].")
@click.option("--durability", type=click.Choice(["full", "normal", "off"]),
              help="SQLite synchronous setting of the store [full].")
@click.pass_context
def server(ctx, config_file: str | None, http_addr: str | None, https_addr: str | None, psks: tuple[str, ...],
           psk_file: str | None, cert: str | None, key: str | None, client_ca: str | None, db: str | None,
           server_id: str | None,
           hmac_window: float | None, admin_addr: str | None, admin_token_file: str | None, audit_log: str | None,
           durability: str | None) -> None:
    """Run the DM server on real sockets: HTTP and HTTPS (PSK-TLS, X.509), backed by SQLite.
    With a subcommand (account), manage the store instead."""
    if ctx.invoked_subcommand is not None:
        return
    try:
        cfg = load_config(config_file) if config_file else validate(CONFIG_SCHEMA, {})
    except ScenarioError as exc:
        raise ParseFailure(str(exc)) from None
    flags = {"server_id": server_id, "http": http_addr, "https": https_addr, "cert": cert, "key": key,
             "client_ca": client_ca, "db": db,
             "psk": list(psks) or None, "hmac_window": hmac_window, "psk_file": psk_file, "admin": admin_addr,
             "admin_token_file": admin_token_file, "audit_log": audit_log, "durability": durability}
    cfg.update({k: v for k, v in flags.items() if v is not None})
    if cfg["http"] is None and cfg["https"] is None:
        cfg["http"] = DEFAULT_HTTP
    if (cfg["cert"] is None) != (cfg["key"] is None):
        raise ParseFailure("--cert and --key go together")
    if cfg["client_ca"] is not None and cfg["cert"] is None:
        raise ParseFailure("--client-ca needs --cert and --key (client certificates are asked in X.509 mode)")
    if (cfg["admin"] is None) != (cfg["admin_token_file"] is None):
        raise ParseFailure("--admin and --admin-token-file go together")
    http = parse_host_port(cfg["http"], "--http", listen=True) if cfg["http"] else None
    https = parse_host_port(cfg["https"], "--https", listen=True) if cfg["https"] else None
    admin = parse_host_port(cfg["admin"], "--admin", listen=True) if cfg["admin"] else None
    from dmsim.sim.links.transports import parse_psk
    from dmsim.sim.real.dm_http_server import is_loopback
    from dmsim.sim.real.provisioning import read_token
    if admin and not is_loopback(admin[0]):
        raise ParseFailure(f"--admin {cfg['admin']}: the admin listener must be on a loopback address")
    try:
        psk_pairs = [parse_psk(p, "--psk") for p in cfg["psk"]]
    except ScenarioError as exc:
        raise ParseFailure(str(exc)) from None
    if cfg["psk_file"]:
        psk_pairs += read_psk_file(cfg["psk_file"])
    try:
        token = read_token(cfg["admin_token_file"]) if admin else None
    except DmsimError as exc:
        raise ParseFailure(str(exc)) from None
    cert_pem = _read(cfg["cert"], "--cert") if cfg["cert"] else None
    key_pem = _read(cfg["key"], "--key") if cfg["key"] else None
    cfg["client_ca_pem"] = _read(cfg["client_ca"], "--client-ca") if cfg["client_ca"] else None
    _serve(cfg, http, https, psk_pairs, cert_pem, key_pem, admin, token)


def _open_store(db: str | None, durability: str = "full"):
    from dmsim.sim.real.dm_store import SqliteAccounts
    try:
        return SqliteAccounts(db or ":memory:", durability=durability)
    except DmsimError as exc:
        raise ParseFailure(f"--db: {exc}") from None


def _enrol_configured(store, cfg: dict) -> None:
    """Enrol the accounts of the configuration that the store does not hold yet."""
    from dmsim.sim.real.enrolment import enrol, make_account
    for i, acc in enumerate(cfg["accounts"]):
        if acc["device"] in store:
            continue
        try:
            enrol(store, acc["device"], make_account(
                client_name=acc["client_name"], client_password=acc["client_password"],
                server_id=acc["server_id"] or cfg["server_id"], server_password=acc["server_password"],
                auth=acc["auth"], server_auth=acc["server_auth"], client_nonce=acc["client_nonce"],
                server_nonce=acc["server_nonce"], psk=bytes.fromhex(acc["psk"]) if acc["psk"] else None,
                device=acc["device"]))
        except DmsimError as exc:
            raise ParseFailure(f"accounts.{i}: {exc}") from None


def state_file(name: str) -> str:
    """Return the path of ``name`` in the user's dmsim state folder (``$XDG_STATE_HOME/dmsim``,
    created mode 0700): where the real servers keep their default audit logs."""
    state = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "dmsim"
    try:
        state.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise ParseFailure(f"audit log folder {state}: {exc.strerror or exc}; give --audit-log FILE") from None
    return str(state / name)


def _default_audit(db: str | None) -> str:
    """Return the default audit log path (module docstring)."""
    if db and db != ":memory:":
        return f"{db}.audit.jsonl"
    return state_file(DEFAULT_AUDIT)


def _serve(cfg: dict, http, https, psk_pairs, cert_pem, key_pem, admin=None, token=None) -> None:
    from dmsim.network.dm import tls
    from dmsim.sim.real.audit_log import AuditLog
    from dmsim.sim.real.dm_http_server import (DmService, default_server, make_admin_server, make_http_server,
                                               make_https_server)
    from dmsim.sim.real.tls_socket import UniformPsks

    store = _open_store(cfg["db"], cfg.get("durability", "full"))
    listeners, service, audit = [], None, None
    try:
        for identity, psk in psk_pairs:
            store.psks[identity] = psk
        _enrol_configured(store, cfg)
        if https and cert_pem is None and not len(store.psks):
            raise ParseFailure(f"--https {cfg['https']}: no TLS credentials: give --psk IDENTITY:HEXKEY (PSK-TLS), "
                               "--psk-file FILE, --cert PEM --key PEM (X.509), or a --db that holds PSKs")
        first_host, first_port = https or http
        core = default_server(cfg["server_id"], first_host, first_port, scheme="https" if https else "http",
                              accounts=store, hmac_window=cfg["hmac_window"])
        audit_path = cfg.get("audit_log") or _default_audit(cfg["db"])
        service = DmService(core, store.psks, protected={identity for identity, _ in psk_pairs})
        urls: dict[str, str | None] = {"http": None, "https": None, "admin": None}
        try:
            if https:
                config = tls.server_config(psks=UniformPsks(store.psks), cert_pem=cert_pem, key_pem=key_pem,
                                           mode="both" if cert_pem else "psk",
                                           client_ca_pem=cfg.get("client_ca_pem"))
                listeners.append(make_https_server(*https, service, config))
                urls["https"] = f"https://{https[0]}:{listeners[-1].server_address[1]}/dm"
            if http:
                listeners.append(make_http_server(*http, service))
                urls["http"] = f"http://{http[0]}:{listeners[-1].server_address[1]}/dm"
            if admin:
                listeners.append(make_admin_server(*admin, service, token))
                urls["admin"] = f"http://{admin[0]}:{listeners[-1].server_address[1]}"
        except DmsimError as exc:
            raise ParseFailure(str(exc)) from None
        except OSError as exc:
            raise ParseFailure(f"cannot listen: {exc.strerror or exc}") from None
        core.server_uri = urls["https"] or urls["http"]
        try:  # opened once every listener is bound, so a refused start leaves no file behind
            service.audit = audit = AuditLog(audit_path)
        except OSError as exc:
            raise ParseFailure(f"audit log {audit_path}: {exc.strerror or exc}") from None
        audit.write("server_started", outcome="info", detail=json.dumps({k: v for k, v in urls.items() if v}))
        _run(listeners, {"listening": urls["http"] or urls["https"], **urls, "server_id": cfg["server_id"],
                         "db": cfg["db"], "tls": None if not https else ("psk+x509" if cert_pem else "psk"),
                         "client_certificates": bool(https and cfg.get("client_ca_pem")),
                         "psk_identities": len(store.psks), "audit_log": audit_path})
    finally:
        for httpd in listeners:
            httpd.server_close()
        # daemon handler threads may still be inside a request: close between requests
        if service is None:
            store.close()
        else:
            with service.lock:
                store.close()
        if audit is not None:
            audit.close()


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


# --- dmsim server account add|list|remove ---------------------------------------------------------

def _secret(value: str | None, file: str | None, option: str) -> str:
    """Return a password given on the command line or in a file (``-``: the first line of stdin)."""
    if (value is None) == (file is None):
        raise ParseFailure(f"give exactly one of {option} and {option}-file")
    if value is not None:
        return value
    try:
        text = sys.stdin.readline() if file == "-" else Path(file).read_text(encoding="utf-8").splitlines()[0]
    except (OSError, UnicodeDecodeError, IndexError) as exc:
        raise ParseFailure(f"{option}-file {file}: {getattr(exc, 'strerror', None) or 'empty or unreadable'}") from None
    return text.rstrip("\r\n")


@server.group("account")
def account() -> None:
    """Enrol, list and remove devices in the server's SQLite store."""


_DB = click.option("--db", required=True, type=click.Path(dir_okay=False), help="The server's SQLite store.")


@account.command("add")
@_DB
@click.option("--device", required=True, help="The device ID (SyncHdr Source LocURI), e.g. IMEI:... or IMSI:...")
@click.option("--client-name", required=True, help="The client's name (AAuthName).")
@click.option("--client-password", metavar="PW", help="The client's password.")
@click.option("--client-password-file", metavar="FILE", help="... read from FILE (- for stdin) instead.")
@click.option("--server-id", required=True, help="The ServerID the device knows.")
@click.option("--server-password", metavar="PW", help="The server's password.")
@click.option("--server-password-file", metavar="FILE", help="... read from FILE (- for stdin) instead.")
@click.option("--auth", type=click.Choice(_AUTH), default="md5", show_default=True,
              help="How the client authenticates to the server.")
@click.option("--server-auth", type=click.Choice(_AUTH), help="How the server authenticates to the client [--auth].")
@click.option("--client-nonce", metavar="TEXT", help="The client's starting AAuthData text [random].")
@click.option("--server-nonce", metavar="TEXT", help="The server's starting AAuthData text [random].")
@click.option("--psk", metavar="HEX", help="A TLS PSK for the device (identity: the device ID).")
@click.option("--replace", is_flag=True, help="Overwrite an existing account or PSK.")
def account_add(db, device, client_name, client_password, client_password_file, server_id, server_password,
                server_password_file, auth, server_auth, client_nonce, server_nonce, psk, replace) -> None:
    """Enrol a device: write its account (and TLS PSK) into the store."""
    from dmsim.sim.cli.toolbox import parse_hex
    from dmsim.sim.real.enrolment import enrol, make_account
    key = parse_hex(psk, "--psk") if psk is not None else None
    store = _open_store(db)
    try:
        acc = make_account(client_name=client_name, server_id=server_id, auth=auth, server_auth=server_auth,
                           client_password=_secret(client_password, client_password_file, "--client-password"),
                           server_password=_secret(server_password, server_password_file, "--server-password"),
                           client_nonce=client_nonce, server_nonce=server_nonce, psk=key, device=device)
        enrol(store, device, acc, replace=replace)
    except DmsimError as exc:
        raise ParseFailure(str(exc)) from None
    finally:
        store.close()
    click.echo(json.dumps({"added": device}))


@account.command("list")
@_DB
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def account_list(db, as_json) -> None:
    """List the enrolled devices (no password, nonce or key is shown)."""
    from dmsim.sim.real.enrolment import describe
    if not Path(db).exists():
        raise ParseFailure(f"--db {db}: no such file")
    store = _open_store(db)
    try:
        rows = describe(store)
    finally:
        store.close()
    for row in rows:
        click.echo(json.dumps(row) if as_json else
                   f"{row['device']}\t{row['client_name']}\t{row['server_id']}\t{row['auth']}\t{row['psk_identity'] or '-'}")


@account.command("remove")
@_DB
@click.option("--device", required=True, help="The device ID to remove.")
def account_remove(db, device) -> None:
    """Remove a device's account and its TLS PSK."""
    if not Path(db).exists():
        raise ParseFailure(f"--db {db}: no such file")
    store = _open_store(db)
    try:
        if device not in store:
            raise ParseFailure(f"device {device!r} has no account")
        acc = store[device]
        del store[device]
        if acc.has_psk and store.psks.get(acc.psk_identity) == acc.psk_key:
            del store.psks[acc.psk_identity]
    finally:
        store.close()
    click.echo(json.dumps({"removed": device}))


if __name__ == "__main__":  # pragma: no cover
    server()
