"""What ``dmsim lwm2m server`` serves: its PSK store, its certificate and RPK material and, per
LwM2M endpoint, the bootstrap and registration credentials (seed 004 §7.1, D.1;
OMA-TS-LightweightM2M-V1_0 §5.1.2, §5.3.1).

An :class:`EndpointSpec` names one LwM2M client (its Endpoint Client Name) and two credentials,
each a PSK (``{identity, key, entropy}``), a client certificate (``{certificate: NAME}``: one
issued by the client CA naming NAME, its SAN URI else its CN) or a raw public key
(``{public_key: HEX}``, a D.1.1.2 form): who the association must have authenticated
(``lwm2m_credentials`` for the principal of each mode):

* ``dm``: what it registers with. Register ``POST /rd?ep=NAME`` is accepted only over a DTLS
  association authenticated with it (``network/lwm2m/server.py``);
* ``bootstrap`` (optional): what it bootstraps with. ``POST /bs?ep=NAME`` over an association
  of that principal gets the plan of :meth:`EndpointSpec.plan`: Delete /0 and /1, a Security
  instance (iid 1: this server's coaps (PSK) URI or ``server_uri``, PSK mode, the ``dm``
  identity and key, ``ssid``), a Server instance (iid 0: ``ssid``, ``lifetime``, ``binding``),
  Bootstrap-Finish.

PSK credentials join the server's PSK store with their entropy (``high`` or ``low``: a
low-entropy identity may only run TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256, ``dtls_policy``); public
keys join its RPK key table under the endpoint's name.

The file of ``--config`` (YAML or JSON, :data:`CONFIG_SCHEMA`)::

    coaps: 127.0.0.1:5684          # optional, like --coaps / --coap / --audit-log
    psk: ["IDENTITY:HEXKEY"]       # like --psk; low_entropy_psk: ["IDENTITY:PIN"] like --low-entropy-psk
    coaps_cert: 127.0.0.1:5694     # certificate mode, like --coaps-cert / --server-cert ...
    server_cert: server.pem        # files, relative to this one
    server_key: server.key
    client_ca: ca.pem
    coaps_rpk: 127.0.0.1:5704      # RPK mode, like --coaps-rpk / --rpk-key / --rpk-client
    rpk_key: server-rpk.key
    rpk_clients: ["sensor-7:3059301306072a8648ce3d0201..."]   # NAME:HEXKEY, like --rpk-client
    endpoints:
      - name: urn:imei:490154203237518
        dm: {identity: dev1, key: 000102030405060708090a0b0c0d0e0f}
        bootstrap: {identity: dev1-bs, key: 31323334, entropy: low}
        ssid: 101
        lifetime: 300
      - name: urn:imei:490154203237519
        dm: {identity: dev2, key: 0f0e0d0c0b0a09080706050403020100}
        bootstrap: {certificate: "urn:imei:490154203237519"}
      - name: sensor-9
        dm: {public_key: "04a1b2..."}

Choices: an identity given twice with different keys or entropies is refused (a PSK store maps
one identity to one key); a ``--low-entropy-psk`` PIN is used as text, its UTF-8 octets being the
key (``1234`` is the key 31323334), since that is what a user types; a ``--psk`` identity that no
endpoint claims may register as the endpoint of the same name (a lab convenience: ``--psk dev1:...``
lets ``ep=dev1`` register); it has no bootstrap plan. The bootstrap server provisions PSK
credentials only, so an endpoint with a ``bootstrap`` credential has a PSK ``dm``; an endpoint whose
``dm`` is a certificate or a public key registers with what it already holds (factory
pre-configuration) and has no plan here.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from dmsim.base.errors import ScenarioError
from dmsim.base.schema import (Field, Int, List, Nullable, Problem, Str, Struct, load_yaml, read_text,
                               validate)
from dmsim.network.lwm2m.bootstrap_server import ProvisioningPlan, SecurityAccount, ServerAccount
from dmsim.network.lwm2m.dtls_policy import HIGH, LOW, PskCredential
from dmsim.network.lwm2m.objects import BINDINGS, SecurityMode
from dmsim.sim.real.lwm2m_credentials import (CertificateName, Credential, PublicKey, check_psk_identity,
                                              principal)

_HEX = r"^(?:[0-9A-Fa-f]{2})+$"
_HOST_PORT = Str(pattern=r"^.+:[0-9]{1,5}$", noun="HOST:PORT")
_KINDS = "{identity, key[, entropy]} (PSK), {certificate} or {public_key}"


def _one_kind(cred: dict) -> Problem | None:
    psk = cred["identity"] is not None or cred["key"] is not None
    kinds = psk + (cred["certificate"] is not None) + (cred["public_key"] is not None)
    if kinds != 1:
        return Problem((), f"a credential of {kinds} kinds", f"exactly one of {_KINDS}")
    if psk and (cred["identity"] is None or cred["key"] is None):
        missing = "key" if cred["key"] is None else "identity"
        return Problem((missing,), "a PSK credential without its " + missing, "identity and key")
    return None


CREDENTIAL_SCHEMA = Struct({
    "identity": Field(Nullable(Str(pattern=r"\S", noun="a PSK identity")), None,
                      "PSK: the identity (UTF-8, seed 004 D.1.1.1)."),
    "key": Field(Nullable(Str(pattern=_HEX, noun="hex")), None, "PSK: the key, hex."),
    "entropy": Field(Str(choices=(HIGH, LOW)), HIGH,
                     "PSK: low for a PIN or password, allowed only on ECDHE-PSK (seed 004 §7.1); keys under "
                     "16 octets are low whatever is written."),
    "certificate": Field(Nullable(Str(pattern=r"\S", noun="a certificate identity")), None,
                         "Certificate mode: the identity a client certificate from the client CA names (SAN "
                         "URI, else CN)."),
    "public_key": Field(Nullable(Str(pattern=_HEX, noun="hex")), None,
                        "RPK mode: the client's P-256 public key, hex of a D.1.1.2 form (SubjectPublicKeyInfo "
                        "DER, 04||X||Y, 02/03||X or X||Y)."),
}, doc="a client credential: " + _KINDS, name="credential", rule=_one_kind)

ENDPOINT_SCHEMA = Struct({
    "name": Field(Str(pattern=r"\S", noun="an Endpoint Client Name"), doc="The Endpoint Client Name (ep=)."),
    "dm": Field(CREDENTIAL_SCHEMA, doc="The credential it registers with (a PSK one is provisioned by the "
                                       "bootstrap)."),
    "bootstrap": Field(Nullable(CREDENTIAL_SCHEMA), None,
                       "The credential it bootstraps with [not bootstrapped here]; needs a PSK dm."),
    "ssid": Field(Int(1, 65534), 101, "Short Server ID of this server."),
    "lifetime": Field(Int(1, 0x7FFFFFFF), 86400, "Registration lifetime written to the Server object, s."),
    "binding": Field(Str(choices=tuple(sorted(BINDINGS))), "U", "Binding written to the Server object."),
    "server_uri": Field(Nullable(Str(pattern=r"^coaps://", noun="coaps://HOST:PORT")), None,
                        "Server URI written to the Security object [this server's coaps (PSK) listener]."),
}, doc="one LwM2M endpoint", name="endpoint")

CONFIG_SCHEMA = Struct({
    "coaps": Field(Nullable(_HOST_PORT), None, "Listen for CoAP over DTLS (PSK) on HOST:PORT."),
    "coap": Field(Nullable(_HOST_PORT), None, "Listen for NoSec CoAP on HOST:PORT."),
    "coaps_cert": Field(Nullable(_HOST_PORT), None, "Listen for CoAP over DTLS (certificate mode) on HOST:PORT."),
    "coaps_rpk": Field(Nullable(_HOST_PORT), None, "Listen for CoAP over DTLS (RPK mode) on HOST:PORT."),
    "psk": Field(List(Str(pattern=r"^.+:(?:[0-9A-Fa-f]{2})+$", noun="IDENTITY:HEXKEY")), [],
                 "PSKs, each IDENTITY:HEXKEY (high entropy unless under 16 octets)."),
    "low_entropy_psk": Field(List(Str(pattern=r"^.+:.+$", noun="IDENTITY:PIN")), [],
                             "Low-entropy PSKs, each IDENTITY:PIN (ECDHE-PSK only)."),
    "server_cert": Field(Nullable(Str()), None, "Certificate mode: the server's certificate chain file (PEM)."),
    "server_key": Field(Nullable(Str()), None, "Certificate mode: its private key file (PEM)."),
    "client_ca": Field(Nullable(Str()), None, "Certificate mode: the CA file (PEM) client certificates chain to."),
    "rpk_key": Field(Nullable(Str()), None, "RPK mode: the server's private key file (PEM, DER, hex or 32 octets)."),
    "rpk_clients": Field(List(Str(pattern=r"^.+:(?:[0-9A-Fa-f]{2})+$", noun="NAME:HEXKEY")), [],
                         "RPK mode: client public keys, each NAME:HEXKEY (hex of a D.1.1.2 form); such a client "
                         "may register as the endpoint NAME."),
    "audit_log": Field(Nullable(Str()), None, "Audit log file (JSON lines)."),
    "endpoints": Field(List(ENDPOINT_SCHEMA), [], "LwM2M endpoints, their credentials and provisioning."),
}, doc="dmsim lwm2m server configuration", name="lwm2m server config")
FILE_KEYS = ("server_cert", "server_key", "client_ca", "rpk_key")  # paths relative to the config file
MAX_FILE = 1 << 20


@dataclass(frozen=True)
class EndpointSpec:
    """One LwM2M client the server knows (module docstring)."""

    name: str
    dm: Credential
    bootstrap: Credential | None = None
    ssid: int = 101
    lifetime: int = 86400
    binding: str = "U"
    server_uri: str | None = None

    def __post_init__(self):
        if self.bootstrap is not None and not isinstance(self.dm, PskCredential):
            raise ScenarioError(f"endpoint {self.name!r} is bootstrapped here but its dm credential is not a PSK",
                                path="endpoints.dm", expected="a PSK dm (the bootstrap server provisions PSKs)")

    @property
    def credentials(self) -> tuple[Credential, ...]:
        return (self.dm,) + ((self.bootstrap,) if self.bootstrap is not None else ())

    def principals(self) -> tuple[bytes, bytes | None]:
        """Return the principals of ``dm`` and ``bootstrap`` (None without one)."""
        return (principal(self.dm, self.name),
                principal(self.bootstrap, self.name) if self.bootstrap is not None else None)

    def plan(self, default_uri: str) -> ProvisioningPlan:
        """Return what the bootstrap server writes for this endpoint (module docstring)."""
        if self.bootstrap is None:
            raise ScenarioError(f"endpoint {self.name!r} has no bootstrap credential", path="endpoints.bootstrap")
        security = SecurityAccount(1, self.server_uri or default_uri, mode=SecurityMode.PSK,
                                   identity=self.dm.identity, secret_key=self.dm.key, ssid=self.ssid)
        return ProvisioningPlan(identity=self.principals()[1], security=(security,),
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


def rpk_client_of(text: str, where: str) -> tuple[str, bytes]:
    """Return (name, key bytes) of ``NAME:HEXKEY`` (the name is what precedes the last colon)."""
    name, sep, key = text.rpartition(":")
    try:
        if not sep or not name:
            raise ValueError
        return name, bytes.fromhex(key)
    except ValueError:
        raise ScenarioError(f"{text!r} is not NAME:HEXKEY", path=where, expected="NAME:HEXKEY") from None


def psk_store(credentials: Iterable[PskCredential]) -> dict[bytes, PskCredential]:
    """Return identity -> credential; ScenarioError for an identity given twice differently or
    one in the certificate or RPK namespace (``lwm2m_credentials``)."""
    store: dict[bytes, PskCredential] = {}
    for cred in credentials:
        check_psk_identity(cred.identity)
        old = store.setdefault(cred.identity, cred)
        if old.key != cred.key or old.entropy != cred.entropy:
            raise ScenarioError(f"PSK identity {cred.identity.decode('utf-8', 'replace')!r} is given twice with "
                                "different keys or entropies", path="psk", expected="one key per identity")
    return store


def _credential(raw: Mapping) -> Credential:
    if raw["certificate"] is not None:
        return CertificateName(raw["certificate"])
    if raw["public_key"] is not None:
        return PublicKey.of(bytes.fromhex(raw["public_key"]))
    return PskCredential(raw["identity"].encode("utf-8"), bytes.fromhex(raw["key"]), raw["entropy"])


def read_file(path: str | os.PathLike, what: str, *, secret: bool = False) -> bytes:
    """Return the bytes of ``path`` (at most 1 MiB); ScenarioError naming ``what`` when it cannot be
    read. A ``secret`` file that others can read is warned of."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE + 1)
            mode = os.fstat(f.fileno()).st_mode
    except OSError as exc:
        raise ScenarioError(f"{path}: {exc.strerror or exc}", path=what, expected="a readable file") from None
    if len(data) > MAX_FILE:
        raise ScenarioError(f"{path} is over {MAX_FILE} octets", path=what, expected="a key or certificate file")
    if secret and mode & 0o077:
        print(f"warning: {path} holds a private key and is readable by others; chmod 600 it", file=sys.stderr)
    return data


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
    for key in ("audit_log",) + FILE_KEYS:
        if cfg[key] is not None:
            cfg[key] = str(path.parent / cfg[key])
    if (cfg["psk"] or specs) and os.stat(path).st_mode & 0o077:
        print(f"warning: {path} holds keys and is readable by others; chmod 600 it", file=sys.stderr)
    return cfg
