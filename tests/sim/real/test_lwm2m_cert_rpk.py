"""``dmsim lwm2m server`` and ``dmsim lwm2m probe`` in certificate and RPK modes (seed 004 §7.1,
D.1.1.2, D.1.1.3; sim/real/lwm2m_credentials.py): certificate mode against independent peers
(``openssl s_client -dtls1_2 -cert ... -CAfile ...`` against the server's coaps_cert listener, the
probe against ``openssl s_server -dtls1_2 -Verify 1``), RPK mode with dmsim's own client and probe
(no independent peer speaks dmsim's RPK-in-a-certificate), an LwM2M client bootstrapping over a
certificate association and registering, the principals of each mode kept apart, the
configuration file and the command line."""
import json
import os

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from lwm2m_peer import (IDENTITY, KEY, LOCAL, PSKS, TIMEOUT, ask, audit_records, channel, cli_server, converse,
                        free_udp_port, get, handshake, openssl, read_until, running_server, wait_for)

from dmsim.base.errors import ScenarioError
from dmsim.devices.lwm2m_client import BootstrapFinished, Lwm2mClient, Registered
from dmsim.devices.lwm2m_store import ObjectStore
from dmsim.network.coap.message import Code, ContentFormat
from dmsim.network.dm.tls_pki import LabCa
from dmsim.network.lwm2m import dtls, dtls_keys
from dmsim.network.lwm2m.dtls_policy import PskCredential, SecurityMode
from dmsim.network.lwm2m.events import BOOTSTRAP
from dmsim.network.lwm2m.objects import Sec
from dmsim.sim.cli.lwm2m import lwm2m
from dmsim.sim.real.lwm2m_config import EndpointSpec, load_config, psk_store
from dmsim.sim.real.lwm2m_credentials import (Authorizations, CertificateMode, CertificateName, PublicKey, RpkMode,
                                              key_material, rpk_table)
from dmsim.sim.real.lwm2m_probe import client_config, probe
from dmsim.sim.real.lwm2m_udp_server import Lwm2mUdpServer

CA = LabCa(b"dmsim lwm2m cert-mode test CA secret")
FOREIGN_CA = LabCa(b"another CA, not trusted by the server", "foreign CA")
HOST = "lwm2m.test"
SERVER_CRED = CA.issue_server(HOST)
EP = "urn:imei:490154203237518"
DEVICE = CA.issue_device(EP)
FOREIGN_DEVICE = FOREIGN_CA.issue_device(EP)
DM_IDENTITY, DM_KEY = b"ep-dm", bytes(range(16))
CERTIFICATE = CertificateMode(SERVER_CRED.cert_pem, SERVER_CRED.key_pem, CA.ca_pem)
SERVER_RPK = ec.derive_private_key(0x5E7E7, ec.SECP256R1())
CLIENT_RPK = ec.derive_private_key(0xC1E7, ec.SECP256R1())
OTHER_RPK = ec.derive_private_key(0x0DD, ec.SECP256R1())
SENSOR = "sensor-7"


def scalar(key):
    return dtls_keys.private_key_to_resource(key)


def public(key, form="spki"):
    return dtls_keys.public_key_to_resource(key.public_key(), form)


RPK = RpkMode(scalar(SERVER_RPK), ((SENSOR, public(CLIENT_RPK, "xy")),))


def rpk_client(key=CLIENT_RPK, server=SERVER_RPK):
    return dtls.rpk_client_config(scalar(key), public(server))


def cert_client(cred=DEVICE, ca=CA, host=HOST):
    return dtls.certificate_client_config(cred.cert_pem, cred.key_pem, ca.ca_pem, server_hostname=host)


def write_pki(folder):
    """Write the PEM files the openssl peers and the command line read; return their paths."""
    files = {"ca.pem": CA.ca_pem, "server.pem": SERVER_CRED.cert_pem, "server.key": SERVER_CRED.key_pem,
             "client.pem": DEVICE.cert_pem, "client.key": DEVICE.key_pem, "foreign.pem": FOREIGN_DEVICE.cert_pem,
             "foreign.key": FOREIGN_DEVICE.key_pem, "foreign-ca.pem": FOREIGN_CA.ca_pem,
             "rpk-server.key": SERVER_RPK.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                        serialization.NoEncryption()),
             "rpk-server.pub": SERVER_RPK.public_key().public_bytes(
                 serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
             "rpk-client.hex": scalar(CLIENT_RPK).hex().encode() + b"\n"}
    paths = {}
    for name, data in files.items():
        path = folder / name
        path.write_bytes(data)
        path.chmod(0o600)
        paths[name] = str(path)
    return paths


def failures(chan):
    return [e for e in chan.events if isinstance(e, dtls.DtlsFailed)]


REGISTER = dict(query=["lt=300", "b=U", "lwm2m=1.0"], payload=b"</1/0>", content_format=ContentFormat.LINK_FORMAT)


def register(chan, name):
    return ask(chan, get("/rd", Code.POST, **dict(REGISTER, query=[f"ep={name}", *REGISTER["query"]]))).code


# --- certificate mode against openssl ---------------------------------------------------------------

def s_client(server, pki, *args):
    port = server.addresses["coaps_cert"][1]
    return openssl("s_client", "-dtls1_2", "-connect", f"{LOCAL}:{port}", "-CAfile", pki["ca.pem"],
                   "-verify_return_error", *args)


def test_openssl_s_client_with_a_certificate_of_the_client_ca_completes_the_handshake(tmp_path):
    pki = write_pki(tmp_path)
    with running_server(tmp_path, certificate=CERTIFICATE) as server:
        with s_client(server, pki, "-cert", pki["client.pem"], "-key", pki["client.key"]) as proc:
            assert b"Verify return code: 0 (ok)" in read_until(proc, b"Verify return code: 0 (ok)")
            assert wait_for(lambda: server.counts["handshakes"] == 1)
        assert server.counts["handshake_failed"] == 0
    (ok,) = [r for r in audit_records(tmp_path) if r["event"] == "handshake_ok"]
    assert (ok["mode"], ok["identity"]) == ("certificate", f"x509:{EP}")
    assert ok["suite"].startswith("TLS_ECDHE_ECDSA_WITH_AES_128_")


@pytest.mark.parametrize("credential", [("foreign.pem", "foreign.key"), None], ids=["foreign-ca", "no-certificate"])
def test_openssl_s_client_without_a_certificate_of_the_client_ca_is_refused(tmp_path, credential):
    pki = write_pki(tmp_path)
    args = ["-cert", pki[credential[0]], "-key", pki[credential[1]]] if credential else []
    with running_server(tmp_path, certificate=CERTIFICATE) as server:
        with s_client(server, pki, *args) as proc:
            out = read_until(proc, b"alert")
            assert b"alert" in out, out
            assert wait_for(lambda: server.counts["handshake_failed"] == 1)
        assert server.counts["handshakes"] == 0 and server.associations == 0
    (failed,) = [r for r in audit_records(tmp_path) if r["event"] == "handshake_failed"]
    assert "identity" not in failed and failed["outcome"] == "failure"
    if credential is None:
        assert failed["detail"] == "the peer sent no certificate" and failed["alert"] == dtls.ALERT_HANDSHAKE_FAILURE
    else:
        assert failed["detail"].startswith(VERIFY_FAILED)


@pytest.fixture
def s_server(tmp_path):
    """``openssl s_server -dtls1_2 -cert server.pem -key server.key -Verify 1 -CAfile ca.pem
    -verify_return_error``: it requires a client certificate from the CA (without the last flag it
    only reports a certificate that does not verify). Yields (uri, process, pki paths)."""
    pki = write_pki(tmp_path)
    port = free_udp_port()
    with openssl("s_server", "-dtls1_2", "-accept", f"{LOCAL}:{port}", "-cert", pki["server.pem"], "-key",
                 pki["server.key"], "-Verify", "1", "-CAfile", pki["ca.pem"], "-verify_return_error") as proc:
        assert b"ACCEPT" in read_until(proc, b"ACCEPT")
        yield f"coaps://{LOCAL}:{port}", proc, pki


VERIFY_FAILED = "mbedtls: X509 - Certificate verification failed"


def run_probe(*args):
    result = CliRunner().invoke(lwm2m, ["probe", *args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_probe_with_a_certificate_against_openssl_s_server_that_verifies_it(s_server):
    uri, proc, pki = s_server
    code, out, err = run_probe(uri, "--cert", pki["client.pem"], "--key", pki["client.key"], "--ca", pki["ca.pem"],
                               "--server-name", HOST, "--timeout", "1", "--json")
    result = json.loads(out)
    assert code == 1 and result["mode"] == "certificate" and result["handshake"] == "ok"
    assert result["suite"].startswith("TLS_ECDHE_ECDSA_WITH_AES_128_") and result["ping"] == "failed"
    seen = read_until(proc, b"Client certificate")
    assert f"depth=0 CN = {EP}".encode() in seen and b"verify error" not in seen


@pytest.mark.parametrize("args, reason", [
    (["--cert", "foreign.pem", "--key", "foreign.key", "--ca", "ca.pem"], "the peer sent a fatal alert 48"),
    (["--cert", "client.pem", "--key", "client.key", "--ca", "foreign-ca.pem"], VERIFY_FAILED),
    (["--cert", "client.pem", "--key", "client.key", "--ca", "ca.pem", "--server-name", "other.test"], VERIFY_FAILED),
], ids=["client-of-a-foreign-ca", "server-not-of-our-ca", "wrong-server-name"])  # 48: unknown_ca
def test_probe_certificate_failures_against_openssl_s_server(s_server, args, reason):
    uri, _, pki = s_server
    args = [pki.get(a, a) for a in args]
    code, out, err = run_probe(uri, *args, "--timeout", "2", "--json")
    result = json.loads(out)
    assert code == 1 and result["handshake"] == "failed" and result["ping"] == "not_run"
    assert err.startswith(f"probe failed: handshake failed: {reason}"), err


# --- certificate and RPK modes against dmsim's server ----------------------------------------------

def test_dmsim_certificate_and_rpk_listeners_with_the_probe(tmp_path):
    with running_server(tmp_path, certificate=CERTIFICATE, rpk=RPK) as server:
        assert server.modes == {"coaps": "psk", "coaps_cert": "certificate", "coaps_rpk": "rpk"}
        uris = server.uris
        assert len({uris["coaps"], uris["coaps_cert"], uris["coaps_rpk"]}) == 3
        cert = probe(uris["coaps_cert"], certificate=DEVICE.cert_pem, private_key=DEVICE.key_pem, ca=CA.ca_pem,
                     server_name=HOST, timeout=3)
        assert cert.ok and cert.mode == "certificate"
        rpk = probe(uris["coaps_rpk"], rpk_key=scalar(CLIENT_RPK), server_public_key=public(SERVER_RPK, "sec1"),
                    timeout=3)
        assert rpk.ok and rpk.mode == "rpk"
        # each listener serves its mode only
        assert not probe(uris["coaps_rpk"], certificate=DEVICE.cert_pem, private_key=DEVICE.key_pem, ca=CA.ca_pem,
                         timeout=2).ok
        assert not probe(uris["coaps_cert"], rpk_key=scalar(CLIENT_RPK), server_public_key=public(SERVER_RPK),
                         timeout=2).ok
        assert not probe(uris["coaps_cert"], identity=IDENTITY, key=KEY, timeout=2).ok
        assert probe(uris["coaps"], identity=IDENTITY, key=KEY, timeout=2).ok
    identities = {(r["mode"], r["identity"]) for r in audit_records(tmp_path) if r["event"] == "handshake_ok"}
    assert identities == {("certificate", f"x509:{EP}"), ("rpk", f"rpk:{SENSOR}"), ("psk", IDENTITY.decode())}


def test_rpk_pins_both_keys_and_refuses_an_unknown_client_key(tmp_path):
    with running_server(tmp_path, rpk=RPK, coaps=False) as server:
        with channel(server, scheme="coaps_rpk", config=rpk_client()) as chan:
            done = handshake(chan)
            assert done and done.mode == SecurityMode.RPK and done.peer_public_key == public(SERVER_RPK)
        with channel(server, scheme="coaps_rpk", config=rpk_client(key=OTHER_RPK)) as chan:
            assert handshake(chan) is None
            assert [f.reason for f in failures(chan)] == [f"the peer sent a fatal alert {dtls.ALERT_BAD_CERTIFICATE}"]
        assert wait_for(lambda: server.counts["handshake_failed"] == 1)
        # the client pins the server's key: a server key it does not expect is refused by the client
        result = probe(server.uris["coaps_rpk"], rpk_key=scalar(CLIENT_RPK), server_public_key=public(OTHER_RPK),
                       timeout=2)
        assert result.handshake == "failed" and "not the pinned one" in result.reason
    failed = [r for r in audit_records(tmp_path) if r["event"] == "handshake_failed"]
    assert failed[0]["detail"] == "the peer's public key is not the pinned one" and failed[0]["alert"] == 42


# --- LwM2M over certificate and RPK associations ----------------------------------------------------

def cert_bootstrap_client(server):
    """An LwM2M client whose bootstrap account is in certificate mode (D.1.1.3)."""
    store = ObjectStore.with_device(serial="345000123")
    store.put(0, 0, {Sec.URI: server.uris["coaps_cert"], Sec.BOOTSTRAP: True, Sec.MODE: int(SecurityMode.CERTIFICATE),
                     Sec.PUBLIC_KEY_OR_IDENTITY: dtls_keys.certificate_der(DEVICE.cert_pem),
                     Sec.SERVER_PUBLIC_KEY: dtls_keys.certificate_der(SERVER_CRED.cert_pem),
                     Sec.SECRET_KEY: dtls_keys.private_key_to_resource(
                         dtls_keys.private_key_from_resource(DEVICE.key_pem))})
    return Lwm2mClient(EP, store, randbytes=os.urandom)


def test_an_lwm2m_client_bootstraps_over_a_certificate_association_then_registers(tmp_path):
    spec = EndpointSpec(EP, PskCredential(DM_IDENTITY, DM_KEY, "high"), CertificateName(EP), lifetime=300)
    with running_server(tmp_path, endpoints=[spec], certificate=CERTIFICATE) as server:
        # a certificate of the CA naming another device may not take this endpoint's plan
        with channel(server, scheme="coaps_cert", config=cert_client(CA.issue_device("urn:imei:1"))) as chan:
            assert handshake(chan)
            assert ask(chan, get("/bs", Code.POST, query=[f"ep={EP}"])).code == Code.FORBIDDEN
        client = cert_bootstrap_client(server)
        with channel(server, scheme="coaps_cert", config=cert_client()) as chan:
            assert handshake(chan).peer_name == HOST
            reports = converse(chan, client, BOOTSTRAP, client.start_bootstrap(),
                               lambda r: any(isinstance(e, BootstrapFinished) for e in r))
        assert BootstrapFinished((101,)) in reports
        account = client.account(101)
        assert account[Sec.URI] == server.uris["coaps"] and account[Sec.MODE] == SecurityMode.PSK
        assert (account[Sec.PUBLIC_KEY_OR_IDENTITY], account[Sec.SECRET_KEY]) == (DM_IDENTITY, DM_KEY)
        with channel(server, DM_IDENTITY, DM_KEY) as chan:
            assert handshake(chan)
            reports = converse(chan, client, 101, client.register(101),
                               lambda r: any(isinstance(e, Registered) for e in r))
        assert any(isinstance(e, Registered) for e in reports)
        assert wait_for(lambda: server.server.registration(EP) is not None)
        assert server.server.registration(EP).identity == DM_IDENTITY
    records = audit_records(tmp_path)
    completed = [r for r in records if r["event"] == "bootstrap_completed"]
    assert completed and completed[0]["identity"] == f"x509:{EP}"
    refused = [r for r in records if r["event"] == "bootstrap_refused"]
    assert [(r["identity"], r["reason"]) for r in refused] == [("x509:urn:imei:1", "identity_mismatch")]
    log = (tmp_path / "audit.jsonl").read_bytes()
    assert DM_KEY.hex().encode() not in log and b"PRIVATE KEY" not in log


def test_registration_over_certificate_and_rpk_keeps_the_modes_apart(tmp_path):
    """A configured endpoint registers only with its dm credential; an unconfigured name only with
    the one principal of that name: a --psk identity, else an RPK client, else a certificate."""
    endpoints = [EndpointSpec("cert-ep", CertificateName("urn:imei:2")),
                 EndpointSpec("psk-ep", PskCredential(b"urn:imei:3", DM_KEY, "high")),
                 EndpointSpec("rpk-ep", PublicKey.of(public(OTHER_RPK, "sec1")))]
    with running_server(tmp_path, endpoints=endpoints, certificate=CERTIFICATE, rpk=RPK) as server:
        def over_cert(name, *endpoints):
            with channel(server, scheme="coaps_cert", config=cert_client(CA.issue_device(name))) as chan:
                assert handshake(chan)
                return [register(chan, ep) for ep in endpoints]

        assert over_cert("urn:imei:2", "cert-ep", "urn:imei:2") == [Code.CREATED, Code.FORBIDDEN]
        assert over_cert("urn:imei:3", "psk-ep") == [Code.FORBIDDEN]  # the PSK identity's name, as a certificate
        assert over_cert("psk-ep", "psk-ep") == [Code.FORBIDDEN]  # a configured endpoint's name
        assert over_cert(IDENTITY.decode(), IDENTITY.decode()) == [Code.FORBIDDEN]  # a --psk identity's name
        assert over_cert(SENSOR, SENSOR) == [Code.FORBIDDEN]  # an RPK client's name
        assert over_cert("urn:imei:9", "urn:imei:9") == [Code.CREATED]  # a name nobody else holds
        for key, name, expected in ((OTHER_RPK, "rpk-ep", Code.CREATED), (CLIENT_RPK, SENSOR, Code.CREATED),
                                    (CLIENT_RPK, "rpk-ep", Code.FORBIDDEN)):
            with channel(server, scheme="coaps_rpk", config=rpk_client(key)) as chan:
                assert handshake(chan) and register(chan, name) == expected
        with channel(server, b"urn:imei:3", DM_KEY) as chan:
            assert handshake(chan) and register(chan, "psk-ep") == Code.CREATED
        registered = {name: reg.identity for name, reg in server.server.registrations.items()}
    assert registered == {"cert-ep": b"x509:urn:imei:2", "urn:imei:9": b"x509:urn:imei:9", "rpk-ep": b"rpk:rpk-ep",
                          SENSOR: f"rpk:{SENSOR}".encode(), "psk-ep": b"urn:imei:3"}


def test_authorizations_and_key_table_rules():
    auth = Authorizations({"ep": b"dm"}, [b"dm", b"bs"], psks={b"dm": 1, b"bs": 1, b"lab": 1},
                          rpk_names=["s"], certificates=True)
    assert auth.may_register("ep", b"dm") and not auth.may_register("ep", b"x509:ep")
    assert auth.may_register("lab", b"lab") and not auth.may_register("lab", b"x509:lab")
    assert not auth.may_register("bs", b"bs")  # a bootstrap identity stays one
    assert auth.may_register("s", b"rpk:s") and not auth.may_register("s", b"x509:s")
    assert auth.may_register("n", b"x509:n") and not auth.may_register("n", b"rpk:n")
    assert auth.registrar("n", None) is None
    with pytest.raises(ScenarioError, match="both a PSK identity and an RPK client name"):
        Authorizations({}, [], psks={b"s": 1}, rpk_names=["s"], certificates=False)
    assert rpk_table([("a", public(CLIENT_RPK, "xy")), ("a", public(CLIENT_RPK))]) == {public(CLIENT_RPK): "a"}
    with pytest.raises(ScenarioError, match="unique key-pair"):
        rpk_table([("a", public(CLIENT_RPK)), ("b", public(CLIENT_RPK, "sec1"))])
    with pytest.raises(ScenarioError, match="two different keys"):
        rpk_table([("a", public(CLIENT_RPK)), ("a", public(OTHER_RPK))])
    with pytest.raises(ScenarioError, match="begins with x509:"):
        psk_store([PskCredential(b"x509:urn:imei:2", DM_KEY, "high")])
    with pytest.raises(ScenarioError, match="dm credential is not a PSK"):
        EndpointSpec("e", CertificateName("e"), PskCredential(b"bs", DM_KEY, "high"))


def test_the_server_refuses_a_listener_without_its_credentials_and_a_key_that_is_not_its_certificates():
    with pytest.raises(ScenarioError, match="coaps_cert without a server certificate"):
        Lwm2mUdpServer(coaps_cert_addr=(LOCAL, 0))
    with pytest.raises(ScenarioError, match="an RPK server key without a coaps_rpk listener"):
        Lwm2mUdpServer(coaps_addr=(LOCAL, 0), psks=PSKS, rpk=RPK)
    with pytest.raises(ScenarioError, match="coaps_rpk without any client key"):
        Lwm2mUdpServer(coaps_rpk_addr=(LOCAL, 0), rpk=RpkMode(scalar(SERVER_RPK)))
    with pytest.raises(ScenarioError, match="not the certificate's"):
        CertificateMode(SERVER_CRED.cert_pem, DEVICE.key_pem, CA.ca_pem)
    assert "PRIVATE" not in repr(CERTIFICATE) and scalar(SERVER_RPK).hex() not in repr(RPK)


# --- configuration and the command line -------------------------------------------------------------

def test_config_file_gives_the_modes_and_credentials_of_every_kind(tmp_path):
    pki = write_pki(tmp_path)
    config = tmp_path / "lwm2m.yaml"
    config.write_text(f"""\
coaps_cert: 127.0.0.1:0
server_cert: server.pem
server_key: server.key
client_ca: ca.pem
coaps_rpk: 127.0.0.1:0
rpk_key: rpk-server.key
rpk_clients: ["{SENSOR}:{public(CLIENT_RPK, 'xy').hex()}"]
endpoints:
  - name: "{EP}"
    bootstrap: {{certificate: "{EP}"}}
    dm: {{identity: ep-dm, key: "{DM_KEY.hex()}"}}
  - name: rpk-ep
    dm: {{public_key: "{public(OTHER_RPK).hex()}"}}
""")
    config.chmod(0o600)
    cfg = load_config(config)
    assert cfg["server_cert"] == pki["server.pem"] and cfg["rpk_key"] == pki["rpk-server.key"]
    assert cfg["endpoints"][0].bootstrap == CertificateName(EP)
    assert cfg["endpoints"][1].dm == PublicKey(public(OTHER_RPK))
    bad = {"two kinds": ("{identity: a, key: '00', certificate: a}", "credential of 2 kinds"),
           "no key": ("{identity: a}", "dm.key.*without its key"),
           "bad point": ("{public_key: '0400'}", "not a P-256 public key")}
    for text, message in bad.values():
        config.write_text(f"endpoints:\n  - name: x\n    dm: {text}\n")
        with pytest.raises(ScenarioError, match=message):
            load_config(config)


def cli(*args):
    return CliRunner().invoke(lwm2m, list(args))


def test_cli_usage_errors_for_the_new_modes(tmp_path):
    pki = write_pki(tmp_path)
    cases = [
        (["server", "--coaps-cert", f"{LOCAL}:0"], "coaps_cert without a server certificate"),
        (["server", "--coaps-cert", f"{LOCAL}:0", "--cert", pki["server.pem"]], "without --key, --client-ca"),
        (["server", "--coaps-cert", f"{LOCAL}:0", "--cert", pki["server.pem"], "--key", pki["client.key"],
          "--client-ca", pki["ca.pem"]], "not the certificate's"),
        (["server", "--rpk-client", f"a:{public(CLIENT_RPK).hex()}"], "--rpk-client without --rpk-key"),
        (["server", "--coaps-rpk", f"{LOCAL}:0", "--rpk-key", pki["rpk-server.key"]], "without any client key"),
        (["server", "--coaps-rpk", f"{LOCAL}:0", "--rpk-key", pki["rpk-server.key"], "--rpk-client", "a:zz"],
         "NAME:HEXKEY"),
        (["probe", "coaps://127.0.0.1:5684", "--psk-identity", "a", "--psk", "00", "--cert", pki["client.pem"]],
         "one credential kind, not psk and certificate"),
        (["probe", "coaps://127.0.0.1:5684", "--cert", pki["client.pem"], "--ca", pki["ca.pem"]],
         "certificate mode without --key"),
        (["probe", "coaps://127.0.0.1:5684", "--rpk-key", pki["rpk-client.hex"]], "rpk mode without --server-key"),
        (["probe", "coaps://127.0.0.1:5684", "--rpk-key", pki["rpk-client.hex"], "--server-key",
          pki["rpk-server.pub"], "--low-entropy"], "--low-entropy does not apply to rpk mode"),
        (["probe", "coaps://127.0.0.1:5684", "--cert", str(tmp_path / "missing.pem"), "--key", pki["client.key"],
          "--ca", pki["ca.pem"]], "missing.pem"),
    ]
    for args, message in cases:
        result = cli(*args)
        assert result.exit_code == 2 and message in result.output, (args, result.output)
        assert "PRIVATE KEY" not in result.output and scalar(SERVER_RPK).hex() not in result.output


def test_key_files_are_read_as_pem_hex_or_octets():
    spki = public(CLIENT_RPK)
    pem = CLIENT_RPK.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    assert key_material(pem) == spki and key_material(spki.hex().encode() + b"\n") == spki
    assert key_material(spki) == spki and key_material(b"  " + SERVER_CRED.key_pem) == SERVER_CRED.key_pem.strip()
    config = client_config(rpk_key=key_material(scalar(CLIENT_RPK).hex().upper().encode()), server_public_key=spki)
    assert config.mode == SecurityMode.RPK


def test_cli_server_serves_the_three_modes_and_logs_no_key(tmp_path):
    pki = write_pki(tmp_path)
    audit = tmp_path / "cli-audit.jsonl"
    with cli_server("--coaps", f"{LOCAL}:0", "--psk", f"{IDENTITY.decode()}:{KEY.hex()}",
                    "--coaps-cert", f"{LOCAL}:0", "--cert", pki["server.pem"], "--key", pki["server.key"],
                    "--client-ca", pki["ca.pem"], "--coaps-rpk", f"{LOCAL}:0", "--rpk-key", pki["rpk-server.key"],
                    "--rpk-client", f"{SENSOR}:{public(CLIENT_RPK, 'sec1').hex()}",
                    "--audit-log", str(audit)) as (proc, info):
        assert info["modes"] == {"coaps": "psk", "coaps_cert": "certificate", "coaps_rpk": "rpk"}
        assert info["rpk_clients"] == 1 and len(info["listening"]) == 3
        listeners = info["listeners"]
        code, out, _ = run_probe(listeners["coaps_cert"], "--cert", pki["client.pem"], "--key", pki["client.key"],
                                 "--ca", pki["ca.pem"], "--server-name", HOST, "--json")
        assert code == 0 and json.loads(out)["mode"] == "certificate"
        code, out, _ = run_probe(listeners["coaps_rpk"], "--rpk-key", pki["rpk-client.hex"],
                                 "--server-key", pki["rpk-server.pub"], "--json")
        assert code == 0 and json.loads(out)["mode"] == "rpk"
        proc.terminate()
        assert proc.wait(timeout=TIMEOUT) == 0
    log = audit.read_text()
    events = [json.loads(line) for line in log.splitlines()]
    assert sum(e["event"] == "handshake_ok" for e in events) == 2
    secrets = [scalar(SERVER_RPK).hex(), scalar(CLIENT_RPK).hex(), KEY.hex(),
               scalar(dtls_keys.private_key_from_resource(SERVER_CRED.key_pem)).hex(), "PRIVATE KEY"]
    assert not [s for s in secrets if s in log.lower() or s.upper() in log]
