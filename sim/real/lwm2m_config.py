"""What ``dmsim lwm2m server`` serves: its PSK store and, per LwM2M endpoint, the bootstrap and
registration credentials (seed 004 §7.1, D.1; OMA-TS-LightweightM2M-V1_0 §5.1.2, §5.3.1).

An :class:`EndpointSpec` names one LwM2M client (its Endpoint Client Name) and

* ``dm``: the PSK identity and key it registers with. Register ``POST /rd?ep=NAME`` is accepted
  only over a DTLS association authenticated with that identity (``network/lwm2m/server.py``);
* ``bootstrap`` (optional): the PSK credential it bootstraps with. ``POST /bs?ep=NAME`` over an
  association of that identity gets the plan of :meth:`EndpointSpec.plan`: Delete /0 and /1, a
  Security instance (iid 1: this server's coaps URI or ``server_uri``, PSK mode, the ``dm``
  identity and key, ``ssid``), a Server instance (iid 0: ``ssid``, ``lifetime``, ``binding``),
  Bootstrap-Finish.

Both credentials join the server's PSK store with their entropy (``high`` or ``low``: a
low-entropy identity may only run TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256, ``dtls_policy``).

The file of ``--config`` (YAML or JSON, :data:`CONFIG_SCHEMA`)::

    coaps: 127.0.0.1:5684          # optional, like --coaps / --coap / --audit-log
    psk: ["IDENTITY:HEXKEY"]       # like --psk; low_entropy_psk: ["IDENTITY:PIN"] like --low-entropy-psk
    endpoints:
      - name: urn:imei:490154203237518
        dm: {identity: dev1, key: 000102030405060708090a0b0c0d0e0f}
        bootstrap: {identity: dev1-bs, key: 31323334, entropy: low}
        ssid: 101
        lifetime: 300

Choices: an identity given twice with different keys or entropies is refused (a PSK store maps
one identity to one key); a ``--low-entropy-psk`` PIN is used as text, its UTF-8 octets being the
key (``1234`` is the key 31323334), since that is what a user types; a ``--psk`` identity that no
endpoint claims may register as the endpoint of the same name (a lab convenience: ``--psk dev1:...``
lets ``ep=dev1`` register); it has no bootstrap plan.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from dmsim.base.errors import ScenarioError
from dmsim.base.schema import Field, Int, List, Nullable, Str, Struct, load_yaml, read_text, validate
from dmsim.network.lwm2m.bootstrap_server import ProvisioningPlan, SecurityAccount, ServerAccount
from dmsim.network.lwm2m.dtls_policy import HIGH, LOW, PskCredential
from dmsim.network.lwm2m.objects import BINDINGS, SecurityMode

_HEX = r"^(?:[0-9A-Fa-f]{2})+$"
_HOST_PORT = Str(pattern=r"^.+:[0-9]{1,5}$", noun="HOST:PORT")

PSK_SCHEMA = Struct({
    "identity": Field(Str(pattern=r"\S", noun="a PSK identity"), doc="The PSK identity (UTF-8, seed 004 D.1.1.1)."),
    "key": Field(Str(pattern=_HEX, noun="hex"), doc="The key, hex."),
    "entropy": Field(Str(choices=(HIGH, LOW)), HIGH,
                     "low: a PIN or password, allowed only on ECDHE-PSK (seed 004 §7.1); keys under 16 octets are "
                     "low whatever is written."),
}, doc="a PSK credential", name="psk credential")

ENDPOINT_SCHEMA = Struct({
    "name": Field(Str(pattern=r"\S", noun="an Endpoint Client Name"), doc="The Endpoint Client Name (ep=)."),
    "dm": Field(PSK_SCHEMA, doc="The credential it registers with (provisioned by the bootstrap)."),
    "bootstrap": Field(Nullable(PSK_SCHEMA), None, "The credential it bootstraps with [not bootstrapped here]."),
    "ssid": Field(Int(1, 65534), 101, "Short Server ID of this server."),
    "lifetime": Field(Int(1, 0x7FFFFFFF), 86400, "Registration lifetime written to the Server object, s."),
    "binding": Field(Str(choices=tuple(sorted(BINDINGS))), "U", "Binding written to the Server object."),
    "server_uri": Field(Nullable(Str(pattern=r"^coaps://", noun="coaps://HOST:PORT")), None,
                        "Server URI written to the Security object [this server's coaps listener]."),
}, doc="one LwM2M endpoint", name="endpoint")

CONFIG_SCHEMA = Struct({
    "coaps": Field(Nullable(_HOST_PORT), None, "Listen for CoAP over DTLS (PSK) on HOST:PORT."),
    "coap": Field(Nullable(_HOST_PORT), None, "Listen for NoSec CoAP on HOST:PORT."),
    "psk": Field(List(Str(pattern=r"^.+:(?:[0-9A-Fa-f]{2})+$", noun="IDENTITY:HEXKEY")), [],
                 "PSKs, each IDENTITY:HEXKEY (high entropy unless under 16 octets)."),
    "low_entropy_psk": Field(List(Str(pattern=r"^.+:.+$", noun="IDENTITY:PIN")), [],
                             "Low-entropy PSKs, each IDENTITY:PIN (ECDHE-PSK only)."),
    "audit_log": Field(Nullable(Str()), None, "Audit log file (JSON lines)."),
    "endpoints": Field(List(ENDPOINT_SCHEMA), [], "LwM2M endpoints, their credentials and provisioning."),
}, doc="dmsim lwm2m server configuration", name="lwm2m server config")


@dataclass(frozen=True)
class EndpointSpec:
    """One LwM2M client the server knows (module docstring)."""

    name: str
    dm: PskCredential
    bootstrap: PskCredential | None = None
    ssid: int = 101
    lifetime: int = 86400
    binding: str = "U"
    server_uri: str | None = None

    def plan(self, default_uri: str) -> ProvisioningPlan:
        """Return what the bootstrap server writes for this endpoint (module docstring)."""
        if self.bootstrap is None:
            raise ScenarioError(f"endpoint {self.name!r} has no bootstrap credential", path="endpoints.bootstrap")
        security = SecurityAccount(1, self.server_uri or default_uri, mode=SecurityMode.PSK,
                                   identity=self.dm.identity, secret_key=self.dm.key, ssid=self.ssid)
        return ProvisioningPlan(identity=self.bootstrap.identity, security=(security,),
                                servers=(ServerAccount(0, self.ssid, lifetime=self.lifetime, binding=self.binding),))


def psk_of(text: str, *, low_entropy: bool, where: str) -> PskCredential:
    """Return the credential of ``IDENTITY:HEXKEY`` (or, ``low_entropy``, ``IDENTITY:PIN``, the PIN's
    UTF-8 octets being the key); the identity is what precedes the last colon."""
    identity, sep, secret = text.rpartition(":")
    noun = "IDENTITY:PIN" if low_entropy else "IDENTITY:HEXKEY"
    if not sep or not identity or not secret:
        raise ScenarioError(f"not {noun}", path=where, expected=noun)  # never echo a key
    if low_entropy:
        key = secret.encode("utf-8")
    else:
        try:
            key = bytes.fromhex(secret)
        except ValueError:
            raise ScenarioError(f"the key of identity {identity!r} is not hex", path=where, expected=noun) from None
    return PskCredential(identity.encode("utf-8"), key, LOW if low_entropy else HIGH)


def psk_store(credentials: Iterable[PskCredential]) -> dict[bytes, PskCredential]:
    """Return identity -> credential; ScenarioError for an identity given twice differently."""
    store: dict[bytes, PskCredential] = {}
    for cred in credentials:
        old = store.setdefault(cred.identity, cred)
        if old.key != cred.key or old.entropy != cred.entropy:
            raise ScenarioError(f"PSK identity {cred.identity.decode('utf-8', 'replace')!r} is given twice with "
                                "different keys or entropies", path="psk", expected="one key per identity")
    return store


def _credential(raw: Mapping) -> PskCredential:
    return PskCredential(raw["identity"].encode("utf-8"), bytes.fromhex(raw["key"]), raw["entropy"])


def load_config(path: str | os.PathLike) -> dict:
    """Return the validated configuration of ``path`` with ``endpoints`` as EndpointSpecs;
    ScenarioError naming ``file:line`` when it is refused. Warns when others can read it (it
    holds keys)."""
    path = Path(path)
    raw, locator = load_yaml(read_text(path), str(path))
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ScenarioError("an lwm2m server configuration is a mapping of keys", where=locator(()),
                            expected="a mapping")
    cfg = validate(CONFIG_SCHEMA, raw, (), locator)
    specs = []
    for i, ep in enumerate(cfg["endpoints"]):
        try:
            specs.append(EndpointSpec(ep["name"], _credential(ep["dm"]),
                                      _credential(ep["bootstrap"]) if ep["bootstrap"] else None,
                                      ep["ssid"], ep["lifetime"], ep["binding"], ep["server_uri"]))
        except ScenarioError as exc:
            raise ScenarioError(exc.detail, where=locator(("endpoints", i)), path=f"endpoints.{i}",
                                expected=exc.expected) from None
    if len({s.name for s in specs}) != len(specs):
        raise ScenarioError("an endpoint name is given twice", where=locator(("endpoints",)), path="endpoints",
                            expected="each name once")
    cfg["endpoints"] = specs
    if cfg["audit_log"] is not None:
        cfg["audit_log"] = str(path.parent / cfg["audit_log"])
    if (cfg["psk"] or specs) and os.stat(path).st_mode & 0o077:
        print(f"warning: {path} holds keys and is readable by others; chmod 600 it", file=sys.stderr)
    return cfg
