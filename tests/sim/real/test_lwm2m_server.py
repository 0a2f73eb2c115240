"""``dmsim lwm2m server`` on real UDP sockets (sim/real/lwm2m_udp_server.py): DTLS PSK associations
carrying CoAP to the bootstrap server and server cores, the sans-IO LwM2M client bootstrapping and
registering over real DTLS, NoSec limited to pings and discovery, and the server as a target
(cookie gate, bounds, garbage, oversize, deadlines, the low-entropy rule, an audit log without keys)."""
import json
import os
import signal
import time
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner

from lwm2m_peer import (IDENTITY, KEY, LOCAL, PIN, PIN_IDENTITY, TIMEOUT, ask, audit_records, channel, cli_server,
                        converse, get, handshake, openssl, read_until, recv_all, running_server, udp_socket,
                        wait_for)

from dmsim.base.errors import ScenarioError
from dmsim.devices.lwm2m_client import BootstrapFinished, Lwm2mClient, Registered
from dmsim.devices.lwm2m_store import ObjectStore
from dmsim.network.coap import link_format
from dmsim.network.coap import message as coap
from dmsim.network.coap.message import Code, ContentFormat, Type
from dmsim.network.coap.reliability import Endpoint, Reset
from dmsim.network.lwm2m import dtls, dtls_policy
from dmsim.network.lwm2m import dtls_records as wire
from dmsim.network.lwm2m.dtls_policy import PskCredential, SecurityMode
from dmsim.network.lwm2m.events import BOOTSTRAP
from dmsim.network.lwm2m.objects import Sec
from dmsim.sim.cli.lwm2m import lwm2m
from dmsim.sim.real.coap_udp_channel import UdpChannel
from dmsim.sim.real.lwm2m_config import EndpointSpec, load_config, psk_store
from dmsim.sim.real.lwm2m_probe import probe
from dmsim.sim.real.lwm2m_udp_server import Lwm2mLimits

EP = "urn:imei:490154203237518"
BS_IDENTITY, BS_PIN = "ep-bs", "246810"
DM_IDENTITY, DM_KEY = "ep-dm", "000102030405060708090a0b0c0d0e0f"
CONFIG = f"""\
endpoints:
  - name: "{EP}"
    bootstrap: {{identity: {BS_IDENTITY}, key: "{BS_PIN.encode().hex()}", entropy: low}}
    dm: {{identity: {DM_IDENTITY}, key: "{DM_KEY}"}}
    ssid: 101
    lifetime: 300
"""


def ping(chan):
    chan.events = []
    chan.transmit(chan.coap.ping(time.monotonic()))
    return chan.pump(lambda: any(isinstance(e, Reset) for e in chan.events), time.monotonic() + TIMEOUT)


def link_targets(payload):
    return {link.target for link in link_format.decode(payload)}


def is_hello_verify_request(datagram):
    (record,) = wire.split_records(datagram)
    return wire.split_handshake(record.fragment)[0].msg_type == wire.HS_HELLO_VERIFY_REQUEST


def secret_forms(*keys):
    """Every way a key could leak into a text log: its octets, and hex either case."""
    return [f for k in keys for f in (k, k.hex().encode(), k.hex().upper().encode())]


# --- DTLS: handshake, ping, discovery --------------------------------------------------------------

def test_psk_association_answers_a_ping_with_rst_and_well_known_core_with_the_links(tmp_path):
    with running_server(tmp_path) as server, channel(server) as chan:
        done = handshake(chan)
        assert done.cipher in {s.iana for s in dtls_policy.HIGH_ENTROPY_PSK_SUITES + dtls_policy.LOW_ENTROPY_PSK_SUITES}
        assert ping(chan)
        answer = ask(chan, get("/.well-known/core"))
        assert answer.code == Code.CONTENT and answer.content_format == ContentFormat.LINK_FORMAT
        assert link_targets(answer.payload) == {"/bs", "/rd"}
        assert ask(chan, get("/.well-known/core", Code.POST)).code == Code.METHOD_NOT_ALLOWED
        assert ask(chan, get("/nothing/here")).code == Code.NOT_FOUND
    (ok,) = [r for r in audit_records(tmp_path) if r["event"] == "handshake_ok"]
    assert ok["identity"] == IDENTITY.decode() and ok["suite"] == done.cipher and ok["outcome"] == "success"


# --- an LwM2M client over real DTLS ----------------------------------------------------------------

def client_for(server):
    store = ObjectStore.with_device(serial="345000123")
    store.put(0, 0, {Sec.URI: server.uris["coaps"], Sec.BOOTSTRAP: True, Sec.MODE: 0,
                     Sec.PUBLIC_KEY_OR_IDENTITY: BS_IDENTITY.encode(), Sec.SERVER_PUBLIC_KEY: b"",
                     Sec.SECRET_KEY: BS_PIN.encode()})
    return Lwm2mClient(EP, store, randbytes=os.urandom)


def test_the_lwm2m_client_bootstraps_then_registers_over_real_dtls(tmp_path):
    config = tmp_path / "lwm2m.yaml"
    config.write_text(CONFIG)
    config.chmod(0o600)
    endpoints = load_config(config)["endpoints"]
    with running_server(tmp_path, endpoints=endpoints) as server:
        client = client_for(server)
        with channel(server, BS_IDENTITY.encode(), BS_PIN.encode(), entropy="low") as chan:
            assert handshake(chan).cipher == "TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256"
            reports = converse(chan, client, BOOTSTRAP, client.start_bootstrap(),
                               lambda r: any(isinstance(e, BootstrapFinished) for e in r))
        assert BootstrapFinished((101,)) in reports
        account = client.account(101)
        assert account[Sec.URI] == server.uris["coaps"]
        assert (account[Sec.PUBLIC_KEY_OR_IDENTITY], account[Sec.SECRET_KEY]) == (DM_IDENTITY.encode(),
                                                                                   bytes.fromhex(DM_KEY))
        url = urlsplit(account[Sec.URI])
        config_dm = dtls.psk_client_config(account[Sec.PUBLIC_KEY_OR_IDENTITY], account[Sec.SECRET_KEY],
                                           entropy="high")
        with UdpChannel.connect(url.hostname, url.port, config_dm) as chan:
            assert handshake(chan)
            reports = converse(chan, client, 101, client.register(101),
                               lambda r: any(isinstance(e, Registered) for e in r))
        (registered,) = [e for e in reports if isinstance(e, Registered)]
        assert wait_for(lambda: server.server.registration(EP) is not None)
        assert server.server.registration(EP).identity == DM_IDENTITY.encode()
        assert registered.location == server.server.registration(EP).location
        assert server.server.registration(EP).objects == ((1, 0), (3, 0))
    events = [r["event"] for r in audit_records(tmp_path)]
    assert "bootstrap_completed" in events and "registration_accepted" in events
    # the bootstrap carried the DM key to the client: the log holds none of the keys
    log = (tmp_path / "audit.jsonl").read_bytes()
    assert not [f for f in secret_forms(bytes.fromhex(DM_KEY), BS_PIN.encode(), KEY) if f in log]


def test_the_cores_see_the_dtls_identity_not_the_endpoint_name_claimed(tmp_path):
    spec = EndpointSpec(EP, PskCredential(DM_IDENTITY.encode(), bytes.fromhex(DM_KEY), "high"),
                        PskCredential(BS_IDENTITY.encode(), BS_PIN.encode(), "low"))
    register = dict(query=[f"ep={EP}", "lt=300", "b=U", "lwm2m=1.0"], payload=b"</1/0>",
                    content_format=ContentFormat.LINK_FORMAT)
    with running_server(tmp_path, endpoints=[spec]) as server, channel(server) as chan:
        assert handshake(chan)
        assert ask(chan, get("/bs", Code.POST, query=[f"ep={EP}"])).code == Code.FORBIDDEN
        assert ask(chan, get("/rd", Code.POST, **register)).code == Code.FORBIDDEN
        assert server.bootstrap.sessions == {} and server.server.registrations == {}
        # a --psk identity no endpoint claims registers as the endpoint of its own name
        own = dict(register, query=[f"ep={IDENTITY.decode()}", "lt=300"])
        assert ask(chan, get("/rd", Code.POST, **own)).code == Code.CREATED
    refused = {(r["event"], r.get("reason"), r["identity"]) for r in audit_records(tmp_path)
               if r["outcome"] == "failure"}
    assert ("bootstrap_refused", "identity_mismatch", IDENTITY.decode()) in refused
    assert ("registration_refused", "identity_mismatch", IDENTITY.decode()) in refused


# --- NoSec ------------------------------------------------------------------------------------------

def test_nosec_serves_pings_and_discovery_and_refuses_everything_else_with_4_01(tmp_path):
    with running_server(tmp_path, endpoints=[EndpointSpec(
            EP, PskCredential(DM_IDENTITY.encode(), bytes.fromhex(DM_KEY), "high"),
            PskCredential(BS_IDENTITY.encode(), BS_PIN.encode(), "low"))]) as server:
        with channel(server, scheme="coap") as chan:
            assert ping(chan)
            answer = ask(chan, get("/.well-known/core"))
            assert answer.code == Code.CONTENT and link_targets(answer.payload) == {"/bs", "/rd"}
            assert ask(chan, get("/bs", Code.POST, query=[f"ep={EP}"])).code == Code.UNAUTHORIZED
            assert ask(chan, get("/rd", Code.POST, query=[f"ep={EP}"], payload=b"</1/0>")).code == Code.UNAUTHORIZED
            assert ask(chan, get("/.well-known/core", type=Type.NON)).code == Code.CONTENT
        assert server.bootstrap.sessions == {} and server.server.registrations == {}
        assert server.associations == 0
    assert any(r["event"] == "nosec_refused" for r in audit_records(tmp_path))


def test_a_malformed_nosec_con_gets_a_rst_and_other_garbage_nothing(tmp_path):
    with running_server(tmp_path) as server, udp_socket() as sock:
        sock.sendto(b"\x4f\x01\x12\x34", server.addresses["coap"])  # CON with token length 15
        (rst,) = recv_all(sock, 0.5)
        assert coap.decode(rst) == coap.Message(Type.RST, Code.EMPTY, 0x1234)
        sock.sendto(b"\x80\x01\x12\x34", server.addresses["coap"])  # version 2
        assert recv_all(sock, 0.3) == []


# --- the server as a target ----------------------------------------------------------------------

def test_spoofed_client_hellos_get_only_a_hello_verify_request_and_create_no_state(tmp_path):
    with running_server(tmp_path) as server, udp_socket() as a, udp_socket() as b:
        target = server.addresses["coaps"]
        client = dtls.DtlsEndpoint(dtls.psk_client_config(IDENTITY, KEY, entropy="high"))
        (hello,) = client.datagrams_to_send()
        for _ in range(20):
            a.sendto(hello, target)
        answers = recv_all(a, 0.5)
        assert len(answers) == 20
        assert all(is_hello_verify_request(d) and len(d) <= len(hello) for d in answers)
        assert server.associations == 0 and len(server.dtls.endpoints) == 0
        client.receive_datagram(answers[0])
        (with_cookie,) = client.datagrams_to_send()
        b.sendto(with_cookie, target)  # the cookie is bound to a's address
        (again,) = recv_all(b, 0.5)
        assert is_hello_verify_request(again) and server.associations == 0
        a.sendto(with_cookie, target)
        assert wait_for(lambda: server.associations == 1)
        assert server.counts["hello_verify"] == 21


def _channel_from(server, source):
    sock = udp_socket(source)
    sock.connect(server.addresses["coaps"])
    return UdpChannel(sock, dtls.DtlsEndpoint(dtls.psk_client_config(IDENTITY, KEY, entropy="high")),
                      Endpoint(os.urandom))


def test_a_flood_of_source_ports_is_bounded_per_address_and_in_total(tmp_path):
    limits = Lwm2mLimits(max_associations=4, max_per_address=2)
    with running_server(tmp_path, limits=limits) as server:
        local = [_channel_from(server, LOCAL) for _ in range(3)]
        assert [bool(handshake(c, timeout=0.8)) for c in local] == [True, True, False]
        assert local[2].events == [] and server.counts["address_full"] >= 1
        other = [_channel_from(server, "127.0.0.2") for _ in range(2)] + [_channel_from(server, "127.0.0.3")]
        assert [bool(handshake(c, timeout=0.8)) for c in other] == [True, True, False]
        assert server.associations == 4 and server.counts["associations_full"] >= 1
        local[0].close()  # close_notify frees its slot
        assert wait_for(lambda: server.associations == 3)
        again = _channel_from(server, LOCAL)
        assert handshake(again)
        for c in local[1:] + other + [again]:
            c.close()
    refusals = {r["detail"] for r in audit_records(tmp_path) if r["event"] == "association_refused"}
    assert refusals == {"address_full", "associations_full"}


GARBAGE = [b"", b"\x00", b"\x16\xfe\xfd", bytes(range(256)), b"\x16\xfe\xfd" + bytes(8) + b"\xff\xff",
           b"\x17\xfe\xfd" + bytes(10) + b"\x00\x05hello", b"\x15\xfe\xfd" + bytes(10) + b"\x00\x02\x02\x28",
           b"\x16\xfe\xfd" + bytes(10) + b"\x00\x0c\x01" + b"\xff" * 11, b"\x44\x01\x00\x01\xff",
           b"\x40\x00\x00\x01", b"\x60\x45\x00\x01", bytes(1400)]


def test_garbage_datagrams_never_crash_it(tmp_path):
    import random
    rng = random.Random(18)
    garbage = GARBAGE + [rng.randbytes(rng.randrange(1, 1500)) for _ in range(200)]
    with running_server(tmp_path) as server, channel(server) as chan, udp_socket() as sock:
        assert handshake(chan)
        read = server.counts["datagrams"]
        for i, data in enumerate(garbage, 1):
            sock.sendto(data, server.addresses["coaps"])
            sock.sendto(data, server.addresses["coap"])
            chan.sock.send(data)  # from the address of an open association, too
            if i % 10 == 0 or i == len(garbage):  # paced: the socket buffer would drop a burst unread
                assert wait_for(lambda: server.counts["datagrams"] >= read + 3 * i)
        assert server._thread.is_alive()
        assert ping(chan), "the association survives garbage from its own address"
        assert server.associations == 1
        assert probe(server.uris["coaps"], identity=IDENTITY, key=KEY, timeout=2).ok
        assert probe(server.uris["coap"], timeout=2).ok


def test_an_oversized_datagram_is_dropped_unread(tmp_path):
    with running_server(tmp_path, limits=Lwm2mLimits(max_datagram=600)) as server, udp_socket() as sock:
        small = coap.encode(coap.request(Code.GET, "/.well-known/core", message_id=7, payload=b"x" * 100))
        large = coap.encode(coap.request(Code.GET, "/.well-known/core", message_id=8, payload=b"x" * 600))
        sock.sendto(large, server.addresses["coap"])
        assert recv_all(sock, 0.4) == []
        sock.sendto(small, server.addresses["coap"])
        (answer,) = recv_all(sock, 0.4)
        assert coap.decode(answer).code == Code.CONTENT
        hello = dtls.DtlsEndpoint(dtls.psk_client_config(IDENTITY, KEY, entropy="high")).datagrams_to_send()[0]
        sock.sendto(hello + bytes(601 - len(hello)), server.addresses["coaps"])
        assert recv_all(sock, 0.4) == []
        assert server.counts["oversize"] == 2 and server.counts["hello_verify"] == 0


def test_a_handshake_that_stops_halfway_is_dropped_at_the_deadline(tmp_path):
    with running_server(tmp_path, limits=Lwm2mLimits(handshake_deadline=0.5)) as server, udp_socket() as sock:
        target = server.addresses["coaps"]
        client = dtls.DtlsEndpoint(dtls.psk_client_config(IDENTITY, KEY, entropy="high"))
        sock.sendto(client.datagrams_to_send()[0], target)
        (hvr,) = recv_all(sock, 0.3)
        client.receive_datagram(hvr)
        sock.sendto(client.datagrams_to_send()[0], target)  # ClientHello with the cookie
        assert recv_all(sock, 0.3), "the server's flight (ServerHello ... ServerHelloDone)"
        assert server.associations == 1
        assert wait_for(lambda: server.associations == 0, timeout=2.0)  # the client never answers
        assert server.counts["handshake_timeout"] == 1
    (failed,) = [r for r in audit_records(tmp_path) if r["event"] == "handshake_failed"]
    assert "not complete within 0.5 s" in failed["detail"]


def test_an_idle_association_is_closed_with_close_notify(tmp_path):
    with running_server(tmp_path, limits=Lwm2mLimits(idle_timeout=0.6)) as server, channel(server) as chan:
        assert handshake(chan) and ping(chan)
        assert chan.pump(lambda: any(isinstance(e, dtls.Closed) for e in chan.events), time.monotonic() + 3)
        assert wait_for(lambda: server.associations == 0) and server.counts["idle_timeout"] == 1


def test_a_low_entropy_identity_runs_ecdhe_psk_and_nothing_else(tmp_path):
    forbidden = dtls.DtlsConfig(server=False, mode=SecurityMode.PSK, psk=PskCredential(PIN_IDENTITY, PIN, "low"),
                                suites=(dtls_policy.PSK_AES_128_CCM_8,))  # a misconfigured client
    with running_server(tmp_path) as server:
        with channel(server, PIN_IDENTITY, PIN, entropy="low") as chan:
            assert handshake(chan).cipher == "TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256"
        with channel(server, config=forbidden) as chan:
            assert handshake(chan) is None
            failed = [e.reason for e in chan.events if isinstance(e, dtls.DtlsFailed)]
            assert failed == ["the peer sent a fatal alert 71"]
        port = server.addresses["coaps"][1]
        with openssl("s_client", "-dtls1_2", "-connect", f"{LOCAL}:{port}", "-psk", PIN.hex(),
                     "-psk_identity", PIN_IDENTITY.decode(), "-cipher", "PSK-AES128-CCM8") as proc:
            assert b"insufficient security" in read_until(proc, b"insufficient security")
        assert wait_for(lambda: server.counts["handshake_failed"] == 2)
    failed = [r for r in audit_records(tmp_path) if r["event"] == "handshake_failed"]
    assert [(r["identity"], r["alert"]) for r in failed] == [(PIN_IDENTITY.decode(), 71)] * 2
    assert not [f for f in secret_forms(PIN, KEY) if f in (tmp_path / "audit.jsonl").read_bytes()]


# --- configuration and the command line -------------------------------------------------------------

def test_config_file_is_validated_with_its_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("endpoints:\n  - name: x\n    dm: {identity: a, key: zz}\n")
    with pytest.raises(ScenarioError, match=r"bad.yaml:3.*endpoints.0.dm.key"):
        load_config(bad)
    with pytest.raises(ScenarioError, match="given twice"):
        psk_store([PskCredential(b"a", KEY, "high"), PskCredential(b"a", bytes(16), "high")])


def test_cli_refuses_coaps_without_any_psk_and_a_psk_that_does_not_parse():
    result = CliRunner().invoke(lwm2m, ["server", "--coaps", f"{LOCAL}:0"])
    assert result.exit_code == 2 and "coaps without any PSK" in result.output
    result = CliRunner().invoke(lwm2m, ["server", "--psk", "dev1:00zz"])
    assert result.exit_code == 2 and "IDENTITY:HEXKEY" in result.output and "00zz" not in result.output


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_cli_server_prints_its_uris_and_stops_cleanly_on_a_signal(tmp_path, stop_signal):
    audit = tmp_path / "cli-audit.jsonl"
    with cli_server("--coaps", f"{LOCAL}:0", "--coap", f"{LOCAL}:0", "--psk", f"{IDENTITY.decode()}:{KEY.hex()}",
                    "--audit-log", str(audit)) as (proc, info):
        coaps, coap_uri = info["listening"]
        assert coaps.startswith("coaps://127.0.0.1:") and coap_uri.startswith("coap://127.0.0.1:")
        assert info["audit_log"] == str(audit) and info["psk_identities"] == 1
        assert probe(coaps, identity=IDENTITY, key=KEY, timeout=3).ok
        proc.send_signal(stop_signal)
        assert proc.wait(timeout=TIMEOUT) == 0
    events = [json.loads(line)["event"] for line in audit.read_text().splitlines()]
    assert events[0] == "server_started" and events[-1] == "server_stopped" and "handshake_ok" in events
    assert KEY.hex() not in audit.read_text()


def test_bytes_a_core_cannot_decode_cost_that_request_only(tmp_path):
    """A Uri-Query that is not UTF-8 from an authenticated peer: 4.00, and the server goes on."""
    bad_query = [(coap.Option.URI_QUERY, b"ep=\xff\xfe")]
    with running_server(tmp_path) as server, channel(server) as chan:
        assert handshake(chan)
        assert ask(chan, get("/bs", Code.POST, options=bad_query)).code == Code.BAD_REQUEST
        assert ask(chan, get("/rd", Code.POST, options=bad_query)).code == Code.BAD_REQUEST
        assert ask(chan, coap.Message(Type.CON, Code.GET, 0, options=((coap.Option.URI_PATH, b"\xff"),))).code \
            == Code.BAD_REQUEST
        assert ping(chan) and server._thread.is_alive()
