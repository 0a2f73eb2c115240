"""The LwM2M Bootstrap Server and LwM2M Server as one network agent (``lwm2m``): the sans-IO
cores of ``network/lwm2m`` driven in simulated time behind their DTLS services and their SMS
application address (seed 004 §7.1, §7.3, D.1; OMA-TS-LightweightM2M-V1_0 §5.1-§5.4).

It exists when a profile has ``device: lwm2m``. What it does for a replica:

- **Enrolment** (:meth:`Lwm2mServers.enroll`, called by each LwM2M device at power-on): the
  operator's record of the device. Every secret is drawn from the device's own named stream
  (``replica.stream("lwm2m", "device", index)``), so a seed reproduces the fleet whatever the
  arrival order. By the profile's ``lwm2m.bootstrap``:

  * ``psk``: a factory bootstrap PSK of 16 random octets (D.1.1.1's AES-128 key), declared
    high-entropy (seed 004 §7.1 method 1);
  * ``low_entropy_psk``: a PIN of ``pin_digits`` digits as the PSK, declared low-entropy: the
    client offers only TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256 and the server refuses any other
    suite for that identity (method 2, ``dtls_policy``);
  * ``certificate``: a device certificate (SAN URI = the endpoint name) from the factory lab CA;
    the bootstrap server's from the operator lab CA, which the device trusts (method 3);
  * ``rpk``: a P-256 key pair drawn for the device, its public key claimed in the bootstrap
    server's :class:`~dmsim.network.lwm2m.dtls_policy.KeyRegistry` ("unique key-pair"; a
    refused claim ends the device ``key_reused``);
  * ``factory``: Manufacturer Pre-configuration: the LwM2M server's Security and Server
    instances are in the device's store from the start; no bootstrap server.

  The bootstrap server's :class:`~dmsim.network.lwm2m.bootstrap_server.ProvisioningPlan` for the
  endpoint writes the LwM2M server's Security instance with fresh per-device credentials of the
  profile's ``security_mode`` (psk: 16 random octets and a random identity; rpk: a new key pair
  and the server's public key; certificate: a certificate from the operator lab CA and the
  server's; nosec: ``coap://``) and, for binding S, SMS Security Mode 2, the SMS Binding Key
  Parameters (KIc/KID 0x12 AES-CBC/AES-CMAC or 0x19 3DES with three keys, SPI 0x16, TAR
  BF FF 01 for the device termination or BF FF 02 for the UICC: NOTE1 of §7.3 asks two TARs),
  32 (AES) or 48 (3DES) random octets of SMS Binding Secret Keys and the server's SMS number;
  and the Server instance (SSID 101, the profile's lifetime and binding).
- **Serving**: one :class:`~dmsim.sim.links.dtls_link.DtlsService` per (server, security mode)
  (a real deployment listens on one port per mode), a CoAP channel per association; the core sees
  the identity the handshake authenticated (PSK identity, the pinned RPK's endpoint name, the
  certificate's SAN URI; for NoSec the transport address, for SMS the binding's keys, named
  ``sms:<IMSI>``). After each Register the server Reads /3/0 (§5.4.1).
- **SMS binding** (binding S): the server's application address ``lwm2m.sms_number`` at the
  SMSC (``lwm2m_sms.py``).

Stats (summary.json ``network``): ``lwm2m`` (bootstraps, bootstrap_refused.<reason>,
bootstrap_failed, registrations, register_refused.<reason>, updates, deregistrations, reads,
read_failed, coap_failed.<reason>, key_reused), ``lwm2m.bootstrap_dtls.<mode>`` and
``lwm2m.server_dtls.<mode>`` (``dtls_link``: handshakes, suite.<IANA>, failed.<side>.<reason>,
retransmissions), ``lwm2m.coap`` (the servers' retransmissions, timeouts), ``lwm2m.sms``
(sent, accepted, discarded.<reason>, the devices' ``device_discarded.<reason>``).

Hook points for an adversary: ``services`` ((role, mode) -> DtlsService), ``sms`` (the
SmsBindingApp, its ``peers``), ``bootstrap`` and ``server`` (the cores).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dmsim.base.schema import Field, Int, Seconds, Str, Struct, validate
from dmsim.devices.lwm2m_store import ObjectStore
from dmsim.network.coap.message import Code
from dmsim.network.dm.tls_pki import LabCa
from dmsim.network.lwm2m import dtls, dtls_keys
from dmsim.network.lwm2m.bootstrap_server import (BootstrapCompleted, BootstrapFailed, BootstrapRefused,
                                                  BootstrapServer, ProvisioningPlan, SecurityAccount, ServerAccount)
from dmsim.network.lwm2m.dtls_policy import HIGH, LOW, KeyRegistry, PskCredential
from dmsim.network.lwm2m.events import Send
from dmsim.network.lwm2m.objects import ObjectId, SecurityMode
from dmsim.network.lwm2m.server import (Deregistered, DmResponse, Lwm2mServer, RegistrationAccepted,
                                        RegistrationRefused, RegistrationUpdated)
from dmsim.network.lwm2m.sms_binding import Termination
from dmsim.network.lwm2m.sms_security import SPI_REQUIRED, SmsBindingKeys, SmsKeyParameters
from dmsim.sim.agents.agent import Agent
from dmsim.sim.agents.lwm2m_sms import SmsBindingApp
from dmsim.sim.links.coap_channel import SMS, UDP, CoapChannel
from dmsim.sim.links.deadline import Deadlines
from dmsim.sim.links.dtls_link import DtlsService

SSID = 101
BOOTSTRAP_HOST = "bs.lwm2m.dmsim.test"
SERVER_HOST = "lwm2m.dmsim.test"
MODES = {"psk": SecurityMode.PSK, "rpk": SecurityMode.RPK, "certificate": SecurityMode.CERTIFICATE,
         "nosec": SecurityMode.NOSEC}
PORTS = {SecurityMode.PSK: 5684, SecurityMode.RPK: 5685, SecurityMode.CERTIFICATE: 5686, SecurityMode.NOSEC: 5683}
BOOTSTRAP_PORT = 5684  # the bootstrap server's URI (coaps://bs.lwm2m.dmsim.test:5684), whatever the mode
SMS_CIPHERS = {"aes": (0x12, 0x12, 16), "3des": (0x19, 0x19, 24)}  # KIc, KID, key octets (TS 102 225 §5.1.2-§5.1.3)
TARS = {"device": bytes.fromhex("bfff01"), "uicc": bytes.fromhex("bfff02")}
TERMINATIONS = {"device": Termination.DEVICE, "uicc": Termination.UICC}
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551

LWM2M_SCHEMA = Struct({
    "max_sessions": Field(Int(1), 256, "Bootstraps the LwM2M Bootstrap Server runs at once (5.03 past it)."),
    "bootstrap_timeout": Field(Seconds(positive=True), 300.0,
                               "The bootstrap server drops a bootstrap whose client has not answered for this long; "
                               "a client with no Bootstrap-Finish this long after its Bootstrap-Request sends another."),
    "bootstrap_retries": Field(Int(0, 20), 2, "Bootstrap-Requests a client sends again before it gives up "
                                              "(reason bootstrap_timeout)."),
    "max_registrations": Field(Int(1), 1_000_000, "Registrations the LwM2M Server holds (5.03 past it)."),
    "max_associations": Field(Int(1), 100_000, "DTLS associations each DTLS service holds (new ClientHellos past "
                                               "it are dropped)."),
    "sms_number": Field(Str(pattern=r"^\+?[0-9]{1,20}$", noun="digits"), "54321",
                        "The LwM2M Server SMS Number (the binding's application address at the SMSC)."),
    "step_timeout": Field(Seconds(positive=True), 3600.0,
                          "A device gives up a step (bootstrap, register, update, de-register) after this long "
                          "(CoAP and DTLS give up earlier on their own timers)."),
}, doc="The LwM2M Bootstrap Server and LwM2M Server (sim/agents/lwm2m_servers.py).")
"""The keys of a scenario's ``lwm2m`` block."""


@dataclass
class Enrolment:
    """What a device leaves the factory with, and how it reaches its servers."""

    endpoint: str
    store: ObjectStore
    bootstrap: dtls.DtlsConfig | None  # None: factory (Manufacturer Pre-configuration)
    bootstrap_mode: SecurityMode | None
    trust: bytes  # the operator CA (certificate mode), PEM
    sms: tuple[SmsKeyParameters, SmsBindingKeys] | None  # binding S: the server's keys (for a UICC's personalisation)
    refusal: str = ""  # why the operator could not enrol it ("" if it could)


def service_name(role: str, mode: SecurityMode) -> str:
    """Return the name of ``role``'s ("bootstrap" or "server") service in ``mode``: the ``src``/``dst``
    of its datagrams on the ip links."""
    return f"lwm2m-{role}-{mode.name.lower()}"


def service_port(role: str, mode: SecurityMode) -> int:
    """Return the UDP port of that service: the port of the URI the devices are given for it."""
    return BOOTSTRAP_PORT if role == "bootstrap" else PORTS[mode]


def _scalar(randbytes: Callable[[int], bytes]) -> bytes:
    """Return a P-256 private key scalar (32 octets, 1 <= d < n) from 48 random octets."""
    value = int.from_bytes(randbytes(48), "big") % (_P256_ORDER - 1) + 1
    return value.to_bytes(32, "big")


def _spki(scalar: bytes) -> bytes:
    return dtls_keys.public_key_to_resource(dtls_keys.private_key_from_resource(scalar).public_key())


def _der(pem: bytes) -> bytes:
    return dtls_keys.certificate_der(pem)


class Lwm2mServers(Agent):
    """The replica's LwM2M Bootstrap Server and LwM2M Server (module docstring)."""

    name = "lwm2m"

    @classmethod
    def wanted(cls, data: dict) -> bool:
        return any(p.get("device") == "lwm2m" for p in data["fleet"]["profiles"])

    @classmethod
    def for_replica(cls, replica) -> "Lwm2mServers":
        return cls(replica)

    def __init__(self, replica):
        self.replica, self.env = replica, replica.env
        self.deadlines = Deadlines(self.env)  # the devices' waits (sim/links/deadline.py)
        self.spec = validate(LWM2M_SCHEMA, replica.data.get("lwm2m") or {}, ("lwm2m",))
        rng = replica.stream("lwm2m", "servers")
        self.bootstrap = BootstrapServer({}, randbytes=rng.randbytes, max_sessions=self.spec["max_sessions"],
                                         timeout=self.spec["bootstrap_timeout"])
        self.credentials: dict[str, bytes] = {}
        self.server = Lwm2mServer(self.credentials, randbytes=rng.randbytes,
                                  max_registrations=self.spec["max_registrations"])
        self._randbytes = rng.randbytes
        self.factory_ca = LabCa(replica.stream("lwm2m", "factory-ca").randbytes(32), "dmsim LwM2M factory CA")
        self.operator_ca = LabCa(replica.stream("lwm2m", "operator-ca").randbytes(32), "dmsim LwM2M operator CA")
        self.server_key = {"bootstrap": _scalar(rng.randbytes), "server": _scalar(rng.randbytes)}
        self.psks: dict[str, dict[bytes, PskCredential]] = {"bootstrap": {}, "server": {}}
        self.rpk_clients: dict[str, dict[bytes, str]] = {"bootstrap": {}, "server": {}}
        self.keys = KeyRegistry(max_keys=10_000_000)
        self._issued: dict[str, list[tuple[dict, bytes]]] = {}  # endpoint -> its entries in the stores above
        self.services: dict[tuple[str, SecurityMode], DtlsService] = {}
        self.routes: dict[str, dict[bytes, tuple[CoapChannel, DtlsService | None, bytes]]] = {
            "bootstrap": {}, "server": {}}
        self.sms_identities: dict[bytes, str] = {}  # sms:<IMSI> -> IMSI
        self.counts: dict[str, int] = {}
        self.coap_stats: dict[str, int] = {}
        self.device_sms: dict[str, int] = {}
        smsc = replica.agents.get("smsc")
        self.sms = SmsBindingApp(self.env, smsc, self.spec["sms_number"]) if smsc is not None else None

    def stats(self) -> dict[str, dict]:
        out: dict[str, dict] = {"lwm2m": dict(self.counts), "lwm2m.coap": dict(self.coap_stats)}
        for (role, mode), service in sorted(self.services.items(), key=lambda kv: (kv[0][0], int(kv[0][1]))):
            out[f"lwm2m.{role}_dtls.{mode.name.lower()}"] = dict(service.stats)
        if self.sms is not None:
            out["lwm2m.sms"] = {**self.sms.stats, **self.device_sms}
        return out

    def count(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n

    # -- enrolment -------------------------------------------------------------------------------
    def enroll(self, dev, endpoint: str) -> Enrolment:
        """Return the device's factory state and give the servers their side (module docstring)."""
        ident, spec = dev.ident, dev.spec
        draw = self.replica.stream("lwm2m", "device", ident.index).randbytes
        sms = self._sms_keys(spec, draw) if spec["binding"] == "S" else None
        account, identity = self._server_account(endpoint, spec, draw, dev.address, sms, ident.imsi)
        server = ServerAccount(0, SSID, lifetime=spec["lifetime"], binding=spec["binding"])
        store = ObjectStore.with_device(serial=ident.imsi, binding_modes="US" if sms else "U")
        self.credentials[endpoint] = identity
        if sms is not None:
            self.sms_peer(ident.imsi, *sms, spec["sms_termination"])
        if spec["bootstrap"] == "factory":
            store.put(ObjectId.SECURITY, account.iid, account.resources())
            store.put(ObjectId.SERVER, server.iid, server.resources())
            return Enrolment(endpoint, store, None, None, self.operator_ca.ca_pem, sms)
        resources, config, bs_identity, mode, refusal = self._bootstrap_account(endpoint, spec, draw)
        store.put(ObjectId.SECURITY, 0, resources)
        plan = ProvisioningPlan(bs_identity, (account,), (server,))
        plan.check()
        self.bootstrap.plans[endpoint] = plan
        return Enrolment(endpoint, store, config, mode, self.operator_ca.ca_pem, sms, refusal)

    def _sms_keys(self, spec: dict, draw) -> tuple[SmsKeyParameters, SmsBindingKeys]:
        kic, kid, size = SMS_CIPHERS[spec["sms_cipher"]]
        params = SmsKeyParameters(kic, kid, SPI_REQUIRED, TARS[spec["sms_termination"]])
        return params, SmsBindingKeys(draw(size), draw(size))

    def _server_account(self, endpoint: str, spec: dict, draw, address: bytes, sms, imsi: str
                        ) -> tuple[SecurityAccount, bytes]:
        """Return the LwM2M server's Security instance for the device and the identity the server
        will see (module docstring)."""
        mode = MODES[spec["security_mode"]]
        scheme = "coap" if mode == SecurityMode.NOSEC else "coaps"
        fields: dict = dict(uri=f"{scheme}://{SERVER_HOST}:{PORTS[mode]}", mode=mode, ssid=SSID)
        identity = endpoint.encode()
        if mode == SecurityMode.PSK:
            psk_identity, key = f"lwm2m-{draw(8).hex()}".encode(), draw(16)
            self._issue(endpoint, self.psks["server"], psk_identity, PskCredential(psk_identity, key, HIGH))
            fields.update(identity=psk_identity, secret_key=key)
            identity = psk_identity
        elif mode == SecurityMode.RPK:
            scalar = _scalar(draw)
            spki = _spki(scalar)
            self._issue(endpoint, self.rpk_clients["server"], spki, endpoint)
            fields.update(identity=spki, secret_key=scalar, server_public_key=_spki(self.server_key["server"]))
        elif mode == SecurityMode.CERTIFICATE:
            cred = self.operator_ca.issue_device(endpoint)
            fields.update(identity=_der(cred.cert_pem), secret_key=_key_scalar(cred.key_pem),
                          server_public_key=_der(self._server_credential("server").cert_pem))
        else:
            identity = b"nosec:" + address
        if sms is not None:
            params, keys = sms
            fields.update(sms_security_mode=2, sms_key_parameters=params.encode(), sms_secret_keys=keys.encode(),
                          sms_number=self.spec["sms_number"])
            identity = b"sms:" + imsi.encode()
        return SecurityAccount(1, **fields), identity

    def _bootstrap_account(self, endpoint: str, spec: dict, draw):
        """Return the factory bootstrap Security instance, the device's DTLS config, the identity
        the bootstrap server sees, the mode and a refusal ("" if none)."""
        method = spec["bootstrap"]
        common = dict(uri=f"coaps://{BOOTSTRAP_HOST}:{BOOTSTRAP_PORT}", bootstrap=True)
        refusal = ""
        if method in ("psk", "low_entropy_psk"):
            entropy = LOW if method == "low_entropy_psk" else HIGH
            key = ("".join(str(b % 10) for b in draw(spec["pin_digits"])).encode() if entropy == LOW else draw(16))
            identity = f"bs-{draw(8).hex()}".encode()
            self._issue(endpoint, self.psks["bootstrap"], identity, PskCredential(identity, key, entropy))
            resources = SecurityAccount(0, **common, mode=SecurityMode.PSK, identity=identity, secret_key=key)
            config = dtls.psk_client_config(identity, key, entropy=entropy)
            return resources.resources(), config, identity, SecurityMode.PSK, refusal
        if method == "rpk":
            scalar = _scalar(draw)
            spki = _spki(scalar)
            refusal = "key_reused" if self.keys.claim(endpoint, spki) else ""
            if not refusal:
                self._issue(endpoint, self.rpk_clients["bootstrap"], spki, endpoint)
            server_key = _spki(self.server_key["bootstrap"])
            resources = SecurityAccount(0, **common, mode=SecurityMode.RPK, identity=spki, secret_key=scalar,
                                        server_public_key=server_key)
            config = dtls.rpk_client_config(scalar, server_key)
            return resources.resources(), config, endpoint.encode(), SecurityMode.RPK, refusal
        cred = self.factory_ca.issue_device(endpoint)
        server_cert = _der(self._server_credential("bootstrap").cert_pem)
        resources = SecurityAccount(0, **common, mode=SecurityMode.CERTIFICATE, identity=_der(cred.cert_pem),
                                    secret_key=_key_scalar(cred.key_pem), server_public_key=server_cert)
        config = dtls.certificate_client_config(_der(cred.cert_pem), cred.key_pem, self.operator_ca.ca_pem,
                                                server_certificate=server_cert)
        return resources.resources(), config, endpoint.encode(), SecurityMode.CERTIFICATE, refusal

    def _issue(self, endpoint: str, store: dict, key: bytes, value) -> None:
        """Put a device's credential in a server's live store, remembered for :meth:`forget`."""
        store[key] = value
        self._issued.setdefault(endpoint, []).append((store, key))

    def _server_credential(self, role: str):
        return self.operator_ca.issue_server(BOOTSTRAP_HOST if role == "bootstrap" else SERVER_HOST)

    # -- services ----------------------------------------------------------------------------------
    def service(self, role: str, mode: SecurityMode) -> DtlsService:
        """Return the DTLS (or NoSec) service of ``role`` ("bootstrap" or "server") in ``mode``."""
        key = (role, mode)
        found = self.services.get(key)
        if found is None:
            server = None if mode == SecurityMode.NOSEC else dtls.DtlsServer(
                self._server_config(role, mode), max_endpoints=self.spec["max_associations"])
            found = self.services[key] = DtlsService(
                self.replica, service_name(role, mode), server,
                lambda address, done: self._opened(role, key, address, done),
                lambda address: self._ended(role, key, address))
        return found

    def _server_config(self, role: str, mode: SecurityMode) -> dtls.DtlsConfig:
        if mode == SecurityMode.PSK:
            return dtls.psk_server_config(self.psks[role])
        if mode == SecurityMode.RPK:
            return dtls.rpk_server_config(self.server_key[role], self.rpk_clients[role])
        cred = self._server_credential(role)
        client_ca = self.factory_ca if role == "bootstrap" else self.operator_ca
        return dtls.certificate_server_config(cred.cert_pem, cred.key_pem, client_ca.ca_pem)

    def _opened(self, role: str, key, address: bytes, done) -> Callable[[bytes], None] | None:
        """An association of ``role`` is usable: a CoAP channel for the identity it authenticated."""
        if done is None:
            identity = b"nosec:" + address
        elif done.psk_identity is not None:
            identity = done.psk_identity
        elif done.peer_name:
            identity = done.peer_name.encode()
        else:
            return None
        service = self.services[key]
        channel = CoapChannel(self.env, self._randbytes, lambda data: service.send(address, data),
                              lambda msg: self._receive(role, identity, msg),
                              lambda reason: self._coap_failed(role, identity, reason), params=UDP,
                              stats=self.coap_stats)
        self.routes[role][identity] = (channel, service, address)
        return channel.receive

    def _ended(self, role: str, key, address: bytes) -> None:
        routes = self.routes[role]
        for identity, (channel, service, at) in list(routes.items()):
            if at == address and service is self.services[key]:
                channel.close()
                del routes[identity]

    def sms_peer(self, imsi: str, params: SmsKeyParameters, keys: SmsBindingKeys, termination: str) -> None:
        """Open the server's end of a device's SMS binding (its keys were written at bootstrap or
        in the factory); the device's messages reach the server core as identity ``sms:<IMSI>``."""
        identity = b"sms:" + imsi.encode()
        channel = CoapChannel(self.env, self._randbytes, lambda data: self.sms.send(imsi, data),
                              lambda msg: self._receive("server", identity, msg),
                              lambda reason: self._coap_failed("server", identity, reason), params=SMS,
                              stats=self.coap_stats)
        self.sms.add_peer(imsi, params, keys, TERMINATIONS[termination], channel.receive)
        self.routes["server"][identity] = (channel, None, imsi.encode())
        self.sms_identities[identity] = imsi

    def _coap_failed(self, role: str, identity: bytes, reason: str) -> None:
        """A request of a server got no answer: a bootstrap waiting on it is over (the client sends
        a new Bootstrap-Request when its own timer expires)."""
        self.count(f"coap_failed.{role}.{reason}")
        if role == "bootstrap":
            for endpoint, session in list(self.bootstrap.sessions.items()):
                if session.identity == identity:
                    del self.bootstrap.sessions[endpoint]
                    self.count("bootstrap_failed")

    def device_discarded(self, reason: str) -> None:
        """A device discarded an SMS of the binding (counted in ``lwm2m.sms``)."""
        key = f"device_discarded.{reason}"
        self.device_sms[key] = self.device_sms.get(key, 0) + 1

    # -- the cores -----------------------------------------------------------------------------------
    def _receive(self, role: str, identity: bytes, msg) -> None:
        core = self.bootstrap if role == "bootstrap" else self.server
        self._dispatch(role, core.receive(identity, msg, self.env.now))

    def _dispatch(self, role: str, events: list) -> None:
        for event in events:
            kind = event.__class__
            if kind is Send:
                route = self.routes[role].get(bytes(event.peer))
                if route is not None:
                    route[0].send(event.message)
            elif kind is RegistrationAccepted:
                self.count("registrations")
                self._dispatch("server", [self.server.read(event.endpoint, (3, 0))])
            elif kind is DmResponse:
                self.count("reads" if event.code == Code.CONTENT else "read_failed")
            elif kind is RegistrationUpdated:
                self.count("updates")
            elif kind is Deregistered:
                self.count("deregistrations")
                self._release(event.endpoint)
            elif kind is RegistrationRefused:
                self.count(f"register_refused.{event.reason}")
            elif kind is BootstrapCompleted:
                self.count("bootstraps")
                self.bootstrap.plans.pop(event.endpoint, None)
            elif kind is BootstrapRefused:
                self.count(f"bootstrap_refused.{event.reason}")
            elif kind is BootstrapFailed:
                self.count("bootstrap_failed")

    def _release(self, endpoint: str) -> None:
        """The endpoint de-registered: forget its credentials (its DTLS association ends with the
        device's close_notify; its SMS binding after EXCHANGE_LIFETIME, for a lost answer's resend)."""
        identity = self.credentials.pop(endpoint, None)
        imsi = self.sms_identities.pop(identity, None) if identity is not None else None
        if imsi is not None:
            self.env.timeout(SMS.exchange_lifetime).callbacks.append(lambda _e: self._drop_sms(identity, imsi))

    def _drop_sms(self, identity: bytes, imsi: str) -> None:
        if identity in self.sms_identities:
            return  # registered again since
        route = self.routes["server"].pop(identity, None)
        if route is not None:
            route[0].close()
        self.sms.remove_peer(imsi)

    def forget(self, endpoint: str, imsi: str) -> None:
        """The device's life is over: drop whatever the servers still hold for it."""
        self.bootstrap.plans.pop(endpoint, None)
        self.bootstrap.sessions.pop(endpoint, None)
        self.credentials.pop(endpoint, None)
        for store, key in self._issued.pop(endpoint, ()):
            store.pop(key, None)


def _key_scalar(key_pem: bytes) -> bytes:
    """Return the raw 32-octet scalar of a PEM P-256 key (the Secret Key form dmsim writes, D.1.1.2)."""
    return dtls_keys.private_key_to_resource(dtls_keys.private_key_from_resource(key_pem))
