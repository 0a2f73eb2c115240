"""The DM server core behind a real HTTP socket (OMA SyncML HTTP binding), in wall-clock time.

``serve(host, port, server)`` runs the same ``DmServer`` core the simulation drives, behind the
standard library's threaded HTTP server: ``POST <any path>`` with a SyncML DM body goes to
``DmServer.handle``. One lock serialises the core, which is not thread-safe.

Lab extension (not part of OMA DM): ``POST /dmsim/provision`` with a JSON account
(``account_to_json``) installs the account a simulated bootstrap gave a device, so that a
scenario with ``components.dm_server: {kind: socket}`` can run its sessions against this server.
Bind it to loopback or a lab network only.
"""
from __future__ import annotations

import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from dmsim.network.dm.account import DmAccount
from dmsim.network.dm.server import DmServer
from dmsim.sim.errors import DmsimError

PROVISION_PATH = "/dmsim/provision"
MAX_BODY = 1 << 20


def account_to_json(device_uri: str, account: DmAccount) -> dict:
    """Return the JSON form of a device's account for the provisioning endpoint."""
    return {"device": device_uri, "client_name": account.client_name, "client_password": account.client_password,
            "server_name": account.server_name, "server_password": account.server_password, "client_nonce": account.client_nonce.hex(),
            "server_nonce": account.server_nonce.hex(), "auth_scheme": account.auth_scheme}


def install_account(server: DmServer, obj: dict) -> str:
    """Install an account from its JSON form; return the device URI. DmsimError when malformed."""
    try:
        device = str(obj["device"])
        server.accounts[device] = DmAccount(
            server_id=server.server_id, server_uri=server.server_uri, client_name=str(obj["client_name"]),
            client_password=str(obj["client_password"]), server_name=str(obj.get("server_name", server.server_id)),
            server_password=str(obj["server_password"]), client_nonce=bytes.fromhex(obj["client_nonce"]),
            server_nonce=bytes.fromhex(obj["server_nonce"]), auth_scheme=str(obj["auth_scheme"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise DmsimError(f"provisioning request: bad or missing field: {exc}") from None
    return device


def make_http_server(host: str, port: int, server: DmServer) -> ThreadingHTTPServer:
    """Return a bound (not yet serving) HTTP server around ``server``."""
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "dmsim"

        def log_message(self, fmt, *args):  # quiet: the CLI reports sessions, not requests
            pass

        def _answer(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):  # noqa: N802 - http.server's naming
            length = self.headers.get("Content-Length", "")
            if not length.isdigit() or int(length) > MAX_BODY:
                self._answer(411 if not length.isdigit() else 413, b"", "text/plain")
                return
            body = self.rfile.read(int(length))
            ctype = self.headers.get("Content-Type", "")
            with lock:
                if self.path == PROVISION_PATH:
                    try:
                        device = install_account(server, json.loads(body))
                        self._answer(200, json.dumps({"device": device}).encode(), "application/json")
                    except (DmsimError, ValueError) as exc:
                        self._answer(400, str(exc).encode(), "text/plain")
                    return
                reply = server.handle(body, ctype, time.monotonic())
            self._answer(200 if reply.body else 400, reply.body, reply.content_type)

    return ThreadingHTTPServer((host, port), Handler)


def default_server(server_id: str, host: str, port: int) -> DmServer:
    """Return a DM server core with OS-random nonces, addressed as http://host:port/dm."""
    return DmServer(server_id, f"http://{host}:{port}/dm", os.urandom)
