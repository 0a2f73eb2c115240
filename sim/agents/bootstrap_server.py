"""The bootstrap server as an agent: a DM server acting as bootstrap server (seed 001 §9.3), for
the devices of profiles with ``bootstrap_via: tls``.

Seed 001 §9.3.1.1: "The Bootstrap message MUST be sent to the DM Client only if a secure transport
is available ... Transport specific security MUST be used such as TLS"; §9.3.2: client and server
MUST authenticate each other, with the key material of ``<x>/Auth/Bootstrap``, which no other
server may change; §12.2.1: those nodes are configured by one of the bootstrap mechanisms of §8.

What dmsim models (choices where the seed is silent, or leaves it to "another mechanism"):

- **Factory bootstrap** (:meth:`BootstrapServerAgent.factory_account`, seed 001 §8): each such
  device leaves the factory with the account of the bootstrap server ``dmsim-bootstrap``, at
  ``https://bs.dmsim.test/bootstrap``: its AppAuth credentials (the profile's ``dm_auth``, 128-bit
  passwords) and ``<x>/Auth/Bootstrap`` in PSK mode (ServerURI, a fresh PSK identity and a
  32-octet PSK). The server's copy is the same record (the manufacturer and the operator share
  it). Everything is drawn from the replica's ``bootstrap_server`` stream, so the seed fixes it.
- **The bootstrap session**: the device opens PSK-TLS to ServerURI with those keys (mutual
  authentication by the PSK, RFC 4279) and runs an ordinary client-initiated DM session with the
  account's credentials on top (§9.3.2 "the same mechanism as ... a non bootstrap DM Session").
  The transport answers 403 to a message whose SyncHdr Source is not the device that owns the
  PSK identity of the connection, so one device's keys cannot fetch another's account.
- **The bootstrap message** (:meth:`plan_bootstrap`): the session's management script Adds
  every node of the DM server's account (the nodes of ``account.bootstrap_document``; binary
  leaves in Format b64, ``<x>/Auth/Trsp`` with the DM session's own PSK when the DM server runs
  PSK-TLS) and finally Replaces the new account's ACL with the DM server's own
  (``Add=S&Delete=S&Get=S&Replace=S``): the bootstrap server, owner of what it added (TND
  §7.7.1), hands it over and can read it no more.

It serves requests like the DM server (``serving.py``): ``server.max_sessions``,
``server.service_time``, its own ``bootstrap_service`` stream.
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from dmsim.devices.dm_tree import DmTree, acl_for, install_account, wire_value
from dmsim.network.dm.account import SEC_MODE_PSK, DmAccount, TlsKeys, fresh_password
from dmsim.network.dm.hmac_integrity import HmacVerifier
from dmsim.network.dm.server import DmServer, ManagementCommand
from dmsim.sim.agents.agent import Agent
from dmsim.sim.agents.dm_server import DM_AUTH_SCHEMES
from dmsim.sim.agents.serving import Serving
from dmsim.sim.links.bootstrap_transport import BootstrapHttps
from dmsim.sim.links.transports import fresh_psk

if TYPE_CHECKING:  # pragma: no cover
    from dmsim.sim.model.fleet import DeviceIdentity
    from dmsim.sim.model.replica import Replica

BOOTSTRAP_ID = "dmsim-bootstrap"
BOOTSTRAP_URI = "https://bs.dmsim.test/bootstrap"
VIA_TLS = "tls"  # fleet.profiles[].bootstrap_via


class BootstrapServerAgent(Agent, Serving):
    """The replica's bootstrap server: ``core`` is a sans-IO ``DmServer``; ``tls`` the PSK-TLS
    transport the devices reach it by."""

    name = "bootstrap_server"

    @classmethod
    def wanted(cls, data: dict) -> bool:
        """Return True when a fleet profile bootstraps over TLS."""
        return any(p.get("bootstrap_via") == VIA_TLS for p in data["fleet"]["profiles"])

    @classmethod
    def for_replica(cls, replica: "Replica") -> "BootstrapServerAgent":
        """Return the replica's bootstrap server."""
        return cls(replica)

    def __init__(self, replica: "Replica"):
        srv = replica.data["server"]
        Serving.__init__(self, replica, DmServer(BOOTSTRAP_ID, BOOTSTRAP_URI,
                                                 replica.stream("bootstrap_server", "nonces").randbytes,
                                                 hmac_verifier=HmacVerifier(max_age=srv["hmac_window"])),
                         "bootstrap_service")
        self.keys_rng = replica.stream("bootstrap_server", "keys")
        self.tls = BootstrapHttps(replica, self)

    @property
    def transport(self) -> BootstrapHttps:
        """The PSK-TLS transport of the bootstrap sessions."""
        return self.tls

    def stats(self) -> dict[str, dict]:
        """The bootstrap TLS counters, in ``summary.json``'s ``network`` block."""
        return {"bootstrap_tls": dict(self.tls.stats)}

    def factory_account(self, ident: "DeviceIdentity") -> DmAccount:
        """Provision the bootstrap account of ``ident`` and return it as the device holds it from
        the factory (with ``<x>/Auth/Bootstrap``); the transport learns its PSK."""
        rng = self.keys_rng
        account = self.core.provision(ident.uri, client_name=ident.imsi,
                                      client_password=fresh_password(rng.randbytes),
                                      server_password=fresh_password(rng.randbytes),
                                      auth_scheme=DM_AUTH_SCHEMES[ident.profile["dm_auth"]])
        identity, key = fresh_psk(rng)
        account = dataclasses.replace(account, bootstrap=TlsKeys(BOOTSTRAP_URI, SEC_MODE_PSK, identity,
                                                                  BOOTSTRAP_ID.encode("ascii"), key))
        self.core.accounts[ident.uri] = account
        self.tls.add_psk(identity, key, ident.uri)
        return account

    def plan_bootstrap(self, ident: "DeviceIdentity", account: DmAccount) -> None:
        """Make the next session of ``ident`` deliver ``account`` (the DM server's) and hand its ACL over."""
        self.core.plan(ident.uri, bootstrap_script(account))


def bootstrap_script(account: DmAccount) -> tuple[ManagementCommand, ...]:
    """Return the management commands that install ``account`` in a client's tree: an Add per
    leaf (as its bootstrap document carries it), then the Replace of the account node's ACL."""
    scratch = DmTree()
    node = scratch.find(install_account(scratch, account))
    adds = []
    for leaf in DmTree.walk(node):
        if leaf.interior:
            continue
        fmt, data = wire_value(leaf)
        adds.append(ManagementCommand("Add", leaf.uri, data, fmt))
    return (*adds, ManagementCommand("Replace", f"{node.uri}?prop=ACL", str(acl_for(account.server_id))))
