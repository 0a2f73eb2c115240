"""Enrolling real devices in the DM server's store: ``dmsim server account add|list|remove`` and
the ``accounts:`` list of ``dmsim server --config``.

An account is what the device holds in its DMAcc (OMA-TS-DM_StdObj): the client's name and
password (how it authenticates to the server: ``auth``), the ServerID and the server password
(how the server authenticates to it: ``server_auth``), the starting AAuthData of each direction,
and optionally a TLS PSK (RFC 4279; identity default: the device ID).

The server stores only what the scheme needs: a digest scheme (md5, sha256) keeps
B64(H(name:password)) instead of the client's password (``DmAccount.hashed``, §5.4.2), while basic
and hmac need the password itself.

Choices: nonces are given as the AAuthData texts the client stores; their UTF-8 octets are the
nonce (default 16 fresh random octets); ``server_auth`` defaults to ``auth``, and a core whose
``DmAccount`` keeps one scheme for both directions refuses a different one (DmsimError) rather
than silently using ``auth``; an existing account, or an existing PSK identity with another key,
is replaced only with ``replace``; listing shows no password, nonce or key.
"""
from __future__ import annotations

import dataclasses
import os

from dmsim.base.errors import DmsimError
from dmsim.network.dm.account import DmAccount
from dmsim.network.dm.auth import AUTH_BASIC, AUTH_MD5, AUTH_SHA256, is_digest
from dmsim.network.dm.hmac_integrity import AUTH_HMAC_SHA256

AUTH_NAMES = {"basic": AUTH_BASIC, "md5": AUTH_MD5, "sha256": AUTH_SHA256, "hmac": AUTH_HMAC_SHA256}
_FIELDS = {f.name for f in dataclasses.fields(DmAccount)}


def make_account(*, client_name: str, client_password: str, server_id: str, server_password: str,
                 auth: str = "md5", server_auth: str | None = None, client_nonce: str | None = None,
                 server_nonce: str | None = None, psk: bytes | None = None, psk_identity: bytes | None = None,
                 device: str = "") -> DmAccount:
    """Return the account of the enrolment fields (module docstring); DmsimError when refused."""
    for name, value in (("auth", auth), ("server-auth", server_auth)):
        if value is not None and value not in AUTH_NAMES:
            raise DmsimError(f"--{name} {value!r}: expected one of {', '.join(AUTH_NAMES)}")
    if not client_name or not client_password or not server_password:
        raise DmsimError("the client name, the client password and the server password must not be empty")
    extra = {}
    if server_auth is not None and server_auth != auth:
        if "server_auth_scheme" not in _FIELDS:
            raise DmsimError(f"--server-auth {server_auth} differs from --auth {auth}, and this server core keeps "
                             "one scheme for both directions")
        extra["server_auth_scheme"] = AUTH_NAMES[server_auth]
    if psk is not None and not psk:
        raise DmsimError("--psk: an empty key")
    nonce = (lambda text: os.urandom(16) if text is None else text.encode("utf-8"))
    account = DmAccount(server_id=server_id, server_uri="", client_name=client_name, client_password=client_password,
                     server_name=server_id, server_password=server_password, client_nonce=nonce(client_nonce),
                     server_nonce=nonce(server_nonce), auth_scheme=AUTH_NAMES[auth],
                     psk_identity=(psk_identity or device.encode("utf-8")) if psk else b"", psk_key=psk or b"",
                     **extra)
    return account.hashed() if is_digest(account.auth_scheme) else account


def enrol(store, device: str, account: DmAccount, *, replace: bool = False) -> None:
    """Write ``account`` for ``device`` into ``store`` (``SqliteAccounts``); DmsimError when the
    device has an account or the PSK identity another key, unless ``replace``."""
    if not device.strip():
        raise DmsimError("--device must not be empty")
    if device in store and not replace:
        raise DmsimError(f"device {device!r} already has an account (remove it first)")
    if account.has_psk:
        old = store.psks.get(account.psk_identity)
        if old is not None and old != account.psk_key and not replace:
            raise DmsimError(f"PSK identity {account.psk_identity.decode('utf-8', 'replace')!r} exists with another key")
    store[device] = account


def describe(store) -> list[dict]:
    """Return one row per account of ``store``: no password, nonce or key."""
    names = {v: k for k, v in AUTH_NAMES.items()}
    rows = []
    for device in store:
        a = store[device]
        rows.append({"device": device, "client_name": a.client_name, "server_id": a.server_id,
                     "auth": names.get(a.auth_scheme, a.auth_scheme),
                     "psk_identity": a.psk_identity.decode("utf-8", "replace") if a.has_psk else None})
    return rows
