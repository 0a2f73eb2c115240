"""Lab provisioning of the real DM server (not part of OMA DM): the JSON form of an account and
the rules for installing one, served by the admin listener of ``dm_http_server``.

``POST /dmsim/provision`` with a JSON account (``account_to_json``) installs the account a
simulated bootstrap gave a device and, with ``psk_identity`` and ``psk`` (hex), its TLS PSK,
so that a scenario with ``components.dm_server: {kind: socket}`` can run its sessions against a
real server. Because it changes who may log in as a device, it is an administrative act:

- off unless ``dmsim server --admin HOST:PORT --admin-token-file FILE`` asks for it, and then
  served only on that separate listener, which must be a loopback address;
- every request carries ``Authorization: Bearer <token>``, the token read from a file (never
  the command line, where /proc/PID/cmdline shows it), compared in constant time; a wrong token
  is a 401, an authentication failure for the per-address backoff and the audit log;
- the account is stored as the server needs it: a digest scheme (auth-md5, auth-sha256) keeps
  B64(H(name:password)) instead of the client's password (``DmAccount.hashed``, §5.4.2);
- an existing account is overwritten only when the request says ``"replace": true`` (else
  409); an existing PSK identity's key is never changed unless the request says so, and an
  identity given to the server itself (``--psk``, ``--psk-file``) never (409): a provisioned
  device must not be able to take the lab identity over.
"""
from __future__ import annotations

import hashlib
import hmac
from collections.abc import Collection, MutableMapping

from dmsim.base.errors import DmsimError
from dmsim.network.dm.account import DmAccount
from dmsim.network.dm.auth import is_digest
from dmsim.network.dm.server import DmServer

PROVISION_PATH = "/dmsim/provision"
MAX_REQUEST = 64 << 10
MIN_TOKEN = 16


class ProvisionConflict(DmsimError):
    """The request would overwrite an account or a PSK it may not (answered 409)."""


def account_to_json(device_uri: str, account: DmAccount, *, replace: bool = False) -> dict:
    """Return the JSON form of a device's account (its TLS PSK included) for the provisioning
    endpoint; ``replace`` asks the server to overwrite an existing account."""
    out = {"device": device_uri, "client_name": account.client_name, "client_password": account.client_password,
           "server_name": account.server_name, "server_password": account.server_password,
           "client_nonce": account.client_nonce.hex(), "server_nonce": account.server_nonce.hex(),
           "auth_scheme": account.auth_scheme}
    if account.server_auth_scheme:
        out["server_auth_scheme"] = account.server_auth_scheme
    if account.has_psk:
        out["psk_identity"], out["psk"] = account.psk_identity.decode("utf-8"), account.psk_key.hex()
    if replace:
        out["replace"] = True
    return out


def install_account(server: DmServer, obj: dict, psks: MutableMapping[bytes, bytes] | None = None, *,
                    protected: Collection[bytes] = ()) -> str:
    """Install an account from its JSON form, and its PSK (``psk_identity``, ``psk``) into ``psks``;
    return the device URI. DmsimError when malformed or for a PSK without a PSK table;
    ProvisionConflict for an overwrite the rules of the module docstring refuse."""
    try:
        device = str(obj["device"])
        replace = obj.get("replace", False) is True
        psk_identity, psk = b"", b""
        if "psk_identity" in obj or "psk" in obj:
            psk_identity, psk = str(obj["psk_identity"]).encode("utf-8"), bytes.fromhex(obj["psk"])
        account = DmAccount(
            server_id=server.server_id, server_uri=server.server_uri, client_name=str(obj["client_name"]),
            client_password=str(obj["client_password"]), server_name=str(obj.get("server_name", server.server_id)),
            server_password=str(obj["server_password"]), client_nonce=bytes.fromhex(obj["client_nonce"]),
            server_nonce=bytes.fromhex(obj["server_nonce"]), auth_scheme=str(obj["auth_scheme"]),
            psk_identity=psk_identity, psk_key=psk, server_auth_scheme=str(obj.get("server_auth_scheme", "")))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise DmsimError(f"provisioning request: bad or missing field: {exc}") from None
    if device in server.accounts and not replace:
        raise ProvisionConflict(f"provisioning request: device {device[:80]!r} has an account "
                                "(send \"replace\": true to overwrite it)")
    if psk_identity or psk:
        if psks is None:
            raise DmsimError("provisioning request: this server keeps no TLS PSKs")
        if not account.has_psk:
            raise DmsimError("provisioning request: empty psk_identity or psk")
        old = psks.get(psk_identity)
        if old is not None and not hmac.compare_digest(old, psk):
            if psk_identity in protected or not replace:
                raise ProvisionConflict("provisioning request: that PSK identity exists with another key")
        psks[psk_identity] = psk
    server.accounts[device] = account.hashed() if is_digest(account.auth_scheme) else account
    return device


def token_matches(header: str | None, token: str) -> bool:
    """Return True when the Authorization ``header`` is ``Bearer <token>`` (constant time)."""
    if not header or not header.startswith("Bearer "):
        return False
    given = hashlib.sha256(header[len("Bearer "):].strip().encode("utf-8", "replace")).digest()
    return hmac.compare_digest(given, hashlib.sha256(token.encode("utf-8")).digest())


def read_token(path: str) -> str:
    """Return the admin token in the file ``path`` (first line); DmsimError when the file is
    unreadable, readable by group or others, or the token shorter than ``MIN_TOKEN``."""
    import os
    import stat
    try:
        st = os.stat(path)
        with open(path, encoding="utf-8") as f:
            token = f.readline().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise DmsimError(f"admin token file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if stat.S_IMODE(st.st_mode) & 0o077:
        raise DmsimError(f"admin token file {path}: readable by others (mode {stat.S_IMODE(st.st_mode):04o}); "
                         "chmod 600 it")
    if len(token) < MIN_TOKEN:
        raise DmsimError(f"admin token file {path}: the token needs at least {MIN_TOKEN} characters")
    return token
