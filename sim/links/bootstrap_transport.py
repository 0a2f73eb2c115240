"""PSK-TLS to the simulated bootstrap server, with the keys of the device's ``<x>/Auth/Bootstrap``.

Seed 001 §9.3.1.1 (the bootstrap message only over a secure transport, such as TLS) and §9.3.2
(mutual authentication with the key material stored under ``<x>/Auth/Bootstrap``; the DM client
MUST use it, §12.2). The session is :class:`~dmsim.sim.links.transports.SimulatedHttps` in PSK
mode (real python-mbedtls records on the simulated ``ip`` links, the same TCP model) with two
differences: the requests go to the bootstrap server agent, and the client's PSK is read from the
device's own DM tree (the account whose ServerURI the session is for), never from the server's
records. The server's PSK table is filled by the bootstrap server when it makes a factory
account (:meth:`BootstrapHttps.add_psk`), each identity bound to its device, so that a message
whose SyncHdr Source is another device is answered 403 (``binding_refused``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from dmsim.base.errors import DmsimError
from dmsim.devices.dm_client import Done
from dmsim.devices.dm_tree import tls_keys_from_tree
from dmsim.network.dm.account import SEC_MODE_PSK
from dmsim.network.dm.tls import TlsConfig, psk_client_config
from dmsim.sim.links.transports import SimulatedHttps

if TYPE_CHECKING:  # pragma: no cover
    from dmsim.sim.model.replica import Replica


class BootstrapHttps(SimulatedHttps):
    """HTTPS (PSK-TLS) between the devices and the bootstrap server agent ``server``."""

    def __init__(self, model: "Replica", server):
        super().__init__(model, {"mode": "psk"}, server=server)

    def _client_config(self, dev) -> TlsConfig | Done:
        """Return the PSK config from the device tree's ``<x>/Auth/Bootstrap`` of the bootstrap
        server's account, or the Done (``tls_failed``) when it holds no PSK-mode keys."""
        try:
            keys = tls_keys_from_tree(dev.tree, self.server.core.server_id) if dev.tree is not None else None
            if keys is None or keys.sec_mode != SEC_MODE_PSK:
                return Done(False, "tls_failed: no PSK-mode <x>/Auth/Bootstrap for the bootstrap server")
            return psk_client_config(keys.client_identity, keys.client_secret_key)
        except DmsimError as exc:
            return Done(False, f"tls_failed: {exc}")
