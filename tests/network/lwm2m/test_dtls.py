"""dmsim's sans-IO DTLS 1.2 endpoints (network/lwm2m/dtls.py) over an in-memory link: every mode,
the low-entropy PSK rule both ways, downgrade, loss and retransmission, resumption across sleep,
the cookie gate and its bound (seed 004 §7.1, RFC 6347)."""
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from dmsim.base.errors import ProtocolError, ScenarioError
from dmsim.network.lwm2m import dtls, dtls_keys, dtls_policy
from dmsim.network.lwm2m import dtls_records as wire
from dmsim.network.lwm2m.dtls_policy import PskCredential, SecurityMode

from dtls_peer import (ADDRESS, LAB_CA, Link, app_data, certificate_pair, done, failures, handshake,
                       p256, rewrite_client_hello_suite, rpk_pair)

KEY = bytes(range(16))
PIN = b"1234"


def psk_server(**creds):
    store = {c.identity: c for c in creds.values()}
    return dtls.psk_server_config(store)


HIGH = PskCredential(b"urn:imei:1", KEY, "high")
LOW = PskCredential(b"urn:serial:77", PIN + bytes(12), "low")


def open_link(link):
    assert link.client.state == "open", (link.client_events, link.server_events)
    assert link.server_endpoint is not None and link.server_endpoint.state == "open"


# --- PSK mode and the low-entropy rule --------------------------------------------------------

def test_psk_high_entropy_runs_ccm8_and_carries_data_both_ways():
    link = handshake(dtls.psk_client_config(HIGH.identity, KEY, entropy="high"), psk_server(h=HIGH))
    open_link(link)
    (c_done,), (s_done,) = done(link.client_events), done(link.server_events)
    assert c_done.cipher == s_done.cipher == "TLS_PSK_WITH_AES_128_CCM_8"
    assert s_done.psk_identity == HIGH.identity and s_done.mode == SecurityMode.PSK
    assert link.server.hello_verify_sent == 1
    link.client.send(b"</1/0>")
    link.pump()
    assert app_data(link.server_events) == b"</1/0>"
    link.server_endpoint.send(b"2.01 Created")
    link.pump()
    assert app_data(link.client_events) == b"2.01 Created"
    assert link.client.next_timeout is None and link.server_endpoint.next_timeout is None


def test_psk_high_entropy_client_offers_only_the_lwm2m_psk_suites():
    client = dtls.DtlsEndpoint(dtls.psk_client_config(HIGH.identity, KEY, entropy="high"))
    offered = set(wire.client_hello_of(client.datagrams_to_send()[0]).cipher_suites)
    assert {0xC0A8, 0x00AE} <= offered
    assert not offered & {0xC037, 0xC0AE, 0xC02B}


@pytest.mark.parametrize("key, declared", [(PIN + bytes(12), "low"), (b"12345678", "high")])
def test_low_entropy_client_offers_only_ecdhe_psk(key, declared):
    """Declared low, or shorter than 16 bytes whatever was declared: ECDHE-PSK only."""
    config = dtls.psk_client_config(b"urn:serial:77", key, entropy=declared)
    assert config.suites == (dtls_policy.ECDHE_PSK_AES_128_CBC_SHA256,)
    client = dtls.DtlsEndpoint(config)
    offered = set(wire.client_hello_of(client.datagrams_to_send()[0]).cipher_suites) - {0x00FF}
    assert offered == {0xC037}


def test_low_entropy_client_completes_on_ecdhe_psk():
    link = handshake(dtls.psk_client_config(LOW.identity, LOW.key, entropy="low"), psk_server(l=LOW, h=HIGH))
    open_link(link)
    assert done(link.server_events)[0].cipher == "TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256"


def misconfigured_low_client(suite):
    """A client whose low-entropy credential was put on a forbidden suite (misconfigured or
    tampered): built directly, around the policy."""
    return dtls.DtlsConfig(server=False, mode=SecurityMode.PSK, psk=LOW, suites=(suite,))


@pytest.mark.parametrize("suite", dtls_policy.HIGH_ENTROPY_PSK_SUITES, ids=lambda s: s.iana)
def test_server_refuses_low_entropy_identity_on_forbidden_suite(suite):
    link = handshake(misconfigured_low_client(suite), psk_server(l=LOW, h=HIGH))
    (refusal,) = failures(link.server_events)
    assert refusal.alert == dtls.ALERT_INSUFFICIENT_SECURITY and "low-entropy" in refusal.reason
    assert not done(link.server_events) and not done(link.client_events)
    assert link.client.state == "failed"
    assert failures(link.client_events)[0].reason == "the peer sent a fatal alert 71"


def test_server_accepts_high_entropy_identity_on_the_suite_refused_to_a_low_one():
    config = dtls.DtlsConfig(server=False, mode=SecurityMode.PSK, psk=HIGH,
                             suites=(dtls_policy.PSK_AES_128_CCM_8,))
    link = handshake(config, psk_server(l=LOW, h=HIGH))
    open_link(link)
    assert done(link.server_events)[0].cipher == "TLS_PSK_WITH_AES_128_CCM_8"


def test_a_short_key_stored_as_high_entropy_is_still_refused_on_ccm8():
    short = PskCredential(b"urn:serial:9", b"12345678", "high")
    config = dtls.DtlsConfig(server=False, mode=SecurityMode.PSK, psk=short,
                             suites=(dtls_policy.PSK_AES_128_CCM_8,))
    link = handshake(config, psk_server(s=short))
    assert failures(link.server_events)[0].alert == 71


def test_wrong_psk_fails_the_handshake():
    link = handshake(dtls.psk_client_config(HIGH.identity, bytes(16), entropy="high"), psk_server(h=HIGH))
    assert link.client.state != "open"
    assert link.server_endpoint is None or link.server_endpoint.state != "open"
    assert failures(link.server_events)


def test_rewritten_client_hello_suite_list_fails_the_finished_check():
    """An on-path attacker removes CCM_8 from the ClientHello (downgrade to CBC): the server
    picks CBC, the transcripts differ and the client's Finished does not verify (Mbed TLS binds
    the keys to the transcript, RFC 7627, so it already fails as a bad record MAC)."""
    def tamper(direction, n, datagram):
        return rewrite_client_hello_suite(datagram, 0xC0A8, 0x0A0A) if direction == "c2s" else datagram

    link = handshake(dtls.psk_client_config(HIGH.identity, KEY, entropy="high"), psk_server(h=HIGH), tamper=tamper)
    assert any(wire.client_hello_of(d) for d in link.sent["c2s"])
    assert not done(link.server_events) and not done(link.client_events)
    assert "MAC" in failures(link.server_events)[0].reason
    assert link.client.state != "open"


# --- loss and retransmission (RFC 6347 §4.2.4) ------------------------------------------------

def run_with_timeouts(link, rounds=4):
    link.pump()
    for _ in range(rounds):
        if link.client.state == "open" and link.server_endpoint and link.server_endpoint.state == "open":
            break
        for endpoint in (link.client, link.server_endpoint):
            if endpoint is not None and endpoint.next_timeout is not None:
                link.expire(endpoint)
                break
        link.pump()


@pytest.mark.parametrize("direction, index", [("c2s", 0), ("c2s", 1), ("s2c", 1), ("c2s", 2), ("s2c", 2)],
                         ids=["ClientHello", "ClientHello+cookie", "server flight", "client Finished flight",
                              "server Finished flight"])
def test_a_lost_datagram_is_recovered_by_on_timeout(direction, index):
    def tamper(d, n, datagram):
        return None if (d, n) == (direction, index) else datagram

    link = Link(dtls.DtlsEndpoint(dtls.psk_client_config(HIGH.identity, KEY, entropy="high")),
                dtls.DtlsServer(psk_server(h=HIGH)), tamper=tamper)
    link.pump()
    assert not (link.client.state == "open" and link.server_endpoint and link.server_endpoint.state == "open")
    run_with_timeouts(link)
    open_link(link)
    link.client.send(b"after loss")
    link.pump()
    assert app_data(link.server_events) == b"after loss"


def test_timer_doubles_up_to_60s_then_gives_up():
    client = dtls.DtlsEndpoint(dtls.psk_client_config(HIGH.identity, KEY, entropy="high"))
    first = client.datagrams_to_send()
    intervals, generations = [client.next_timeout], [client.timer_generation]
    while client.state == "handshake":
        events = client.on_timeout()
        if client.state == "handshake":
            assert client.datagrams_to_send() == first  # the same flight again
            intervals.append(client.next_timeout)
            generations.append(client.timer_generation)
    assert intervals == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0]
    assert generations == sorted(set(generations))
    assert events == [dtls.DtlsFailed("timeout")] and client.next_timeout is None


def test_a_peer_retransmission_does_not_restart_the_timer():
    link = Link(dtls.DtlsEndpoint(dtls.psk_client_config(HIGH.identity, KEY, entropy="high")),
                dtls.DtlsServer(psk_server(h=HIGH)),
                tamper=lambda d, n, datagram: None if d == "c2s" and n >= 2 else datagram)
    link.pump()
    server = link.server_endpoint
    link.expire(server)
    assert server.next_timeout == 2.0
    generation = server.timer_generation
    link.expire(link.client)  # the client re-sends its ClientHello; the server re-sends its flight
    link.pump()
    assert server.timer_generation == generation and server.next_timeout == 2.0


# --- resumption across sleep (seed 004 §7.1) --------------------------------------------------

STORAGE_KEY = bytes(range(32))


def test_suspended_association_resumes_without_any_handshake():
    link = handshake(dtls.psk_client_config(HIGH.identity, KEY, entropy="high"), psk_server(h=HIGH))
    open_link(link)
    full = link.client.stats
    link.client.send(b"register")
    link.pump()
    sealed = link.client.suspend(STORAGE_KEY, b"\x01" * 12, generation=1)
    assert link.client.state == "suspended" and KEY not in sealed
    with pytest.raises(ProtocolError):
        link.client.send(b"dead")

    resumed = dtls.DtlsEndpoint.resume(link.client.config, sealed, STORAGE_KEY, generation=1)
    assert resumed.state == "open" and resumed.suite == dtls_policy.PSK_AES_128_CCM_8
    assert resumed.psk_identity == HIGH.identity
    link.client = resumed
    resumed.send(b"update after sleep")
    link.pump()
    assert app_data(link.server_events) == b"registerupdate after sleep"
    link.server_endpoint.send(b"2.04 Changed")
    link.pump()
    assert app_data(link.client_events) == b"2.04 Changed"
    assert full.flights >= 3 and resumed.stats.flights == 0
    assert resumed.stats.bytes < full.bytes


def test_a_sealed_association_refuses_rollback_tampering_and_the_wrong_key():
    link = handshake(dtls.psk_client_config(HIGH.identity, KEY, entropy="high"), psk_server(h=HIGH))
    sealed = link.client.suspend(STORAGE_KEY, b"\x02" * 12, generation=7)
    config = link.client.config
    with pytest.raises(ProtocolError, match="generation 7, expected 8"):
        dtls.DtlsEndpoint.resume(config, sealed, STORAGE_KEY, generation=8)
    with pytest.raises(ProtocolError, match="authenticate"):
        dtls.DtlsEndpoint.resume(config, sealed[:-1] + bytes([sealed[-1] ^ 1]), STORAGE_KEY, generation=7)
    with pytest.raises(ProtocolError, match="authenticate"):
        dtls.DtlsEndpoint.resume(config, sealed, bytes(32), generation=7)
    with pytest.raises(ProtocolError):
        dtls.DtlsEndpoint.resume(rpk_pair()[0], sealed, STORAGE_KEY, generation=7)
    assert dtls.DtlsEndpoint.resume(config, sealed, STORAGE_KEY, generation=7).state == "open"


def test_a_cbc_suite_association_cannot_be_suspended_and_stays_open():
    link = handshake(dtls.psk_client_config(LOW.identity, LOW.key, entropy="low"), psk_server(l=LOW, h=HIGH))
    open_link(link)
    with pytest.raises(ProtocolError, match="AEAD"):
        link.client.suspend(STORAGE_KEY, b"\x03" * 12, generation=1)
    assert link.client.state == "open"


def test_a_server_still_holding_its_last_flight_cannot_suspend():
    link = handshake(dtls.psk_client_config(HIGH.identity, KEY, entropy="high"), psk_server(h=HIGH))
    with pytest.raises(ProtocolError):
        link.server_endpoint.suspend(STORAGE_KEY, bytes(12), generation=1)
    link.client.send(b"first")  # the client's first record lets Mbed TLS free the handshake
    link.pump()
    assert link.server_endpoint.suspend(STORAGE_KEY, bytes(12), generation=1)


# --- cookie gate and bound ---------------------------------------------------------------------

def test_a_client_hello_without_cookie_gets_a_small_hello_verify_request_and_no_state():
    server = dtls.DtlsServer(psk_server(h=HIGH))
    client = dtls.DtlsEndpoint(dtls.psk_client_config(HIGH.identity, KEY, entropy="high"))
    (hello,) = client.datagrams_to_send()
    assert wire.client_hello_of(hello).cookie == b""
    assert server.receive_datagram(ADDRESS, hello) == []
    (out,) = server.datagrams_to_send()
    assert out[0] == ADDRESS and len(out[1]) <= len(hello)
    (record,) = wire.split_records(out[1])
    assert wire.split_handshake(record.fragment)[0].msg_type == wire.HS_HELLO_VERIFY_REQUEST
    assert dict(server.endpoints) == {} and server.hello_verify_sent == 1


def test_a_cookie_is_bound_to_the_address_it_was_issued_to():
    server = dtls.DtlsServer(psk_server(h=HIGH))
    client = dtls.DtlsEndpoint(dtls.psk_client_config(HIGH.identity, KEY, entropy="high"))
    server.receive_datagram(ADDRESS, client.datagrams_to_send()[0])
    client.receive_datagram(server.datagrams_to_send()[0][1])
    (hello_with_cookie,) = client.datagrams_to_send()
    assert wire.client_hello_of(hello_with_cookie).cookie
    assert server.receive_datagram(b"198.51.100.9:5683", hello_with_cookie) == []
    assert dict(server.endpoints) == {} and server.hello_verify_sent == 2
    server.receive_datagram(ADDRESS, hello_with_cookie)
    assert list(server.endpoints) == [ADDRESS]


@pytest.mark.parametrize("garbage", [b"", b"\x16", b"\x17\xfe\xfd" + bytes(10) + b"\x00\x05hello",
                                     bytes(range(256)), b"\x16\xfe\xfd" + bytes(8) + b"\xff\xff"])
def test_garbage_from_a_new_address_gets_no_answer_and_no_state(garbage):
    server = dtls.DtlsServer(psk_server(h=HIGH))
    assert server.receive_datagram(ADDRESS, garbage) == []
    assert server.datagrams_to_send() == [] and dict(server.endpoints) == {}
    client = dtls.DtlsEndpoint(dtls.psk_client_config(HIGH.identity, KEY, entropy="high"))
    assert client.receive_datagram(garbage) == [] and client.state == "handshake"


def test_the_number_of_associations_is_bounded():
    server = dtls.DtlsServer(psk_server(h=HIGH), max_endpoints=2)
    links = [Link(dtls.DtlsEndpoint(dtls.psk_client_config(HIGH.identity, KEY, entropy="high")), server,
                  address=f"10.0.0.{i}:5683".encode()) for i in range(3)]
    for link in links:
        link.pump()
    assert [link.client.state for link in links] == ["open", "open", "handshake"]
    assert len(server.endpoints) == 2 and b"10.0.0.2:5683" not in server.endpoints
    assert links[2].sent["s2c"] == [] and server.dropped >= 1


def test_a_new_handshake_from_the_same_address_replaces_the_association_after_the_cookie():
    server_config = psk_server(h=HIGH)
    link = handshake(dtls.psk_client_config(HIGH.identity, KEY, entropy="high"), server_config)
    old = link.server_endpoint
    late_duplicate = link.sent["c2s"][1]  # the ClientHello with cookie, arriving again
    assert link.server.receive_datagram(ADDRESS, late_duplicate) == []
    assert link.server_endpoint is old and old.state == "open"
    rebooted = Link(dtls.DtlsEndpoint(dtls.psk_client_config(HIGH.identity, KEY, entropy="high")), link.server)
    rebooted.pump()
    assert rebooted.client.state == "open" and link.server_endpoint is not old


def test_an_application_record_replayed_is_delivered_once():
    link = handshake(dtls.psk_client_config(HIGH.identity, KEY, entropy="high"), psk_server(h=HIGH))
    link.client.send(b"execute /3/0/4")
    (record,) = link.client.datagrams_to_send()
    endpoint = link.server_endpoint
    events = endpoint.receive_datagram(record) + endpoint.receive_datagram(record)
    assert app_data(events) == b"execute /3/0/4"
    assert endpoint.stats.dropped == 1
    link.client.send(b"next")
    assert app_data(endpoint.receive_datagram(link.client.datagrams_to_send()[0])) == b"next"


def test_a_forged_application_record_neither_delivers_nor_moves_the_window():
    link = handshake(dtls.psk_client_config(HIGH.identity, KEY, entropy="high"), psk_server(h=HIGH))
    forged = wire.encode_record(wire.CT_APPLICATION_DATA, 1, 2 ** 40, bytes(32))
    assert link.server_endpoint.receive_datagram(forged) == []
    link.client.send(b"still here")
    link.pump()
    assert app_data(link.server_events) == b"still here"


def test_close_notify_reaches_the_peer():
    link = handshake(dtls.psk_client_config(HIGH.identity, KEY, entropy="high"), psk_server(h=HIGH))
    endpoint = link.server_endpoint
    link.client.close()
    link.pump()
    assert endpoint.state == "closed" and any(isinstance(e, dtls.Closed) for e in link.server_events)
    assert ADDRESS not in link.server.endpoints


# --- RPK mode ---------------------------------------------------------------------------------

def test_rpk_mode_authenticates_both_keys_by_pinning():
    client_config, server_config = rpk_pair()
    link = handshake(client_config, server_config)
    open_link(link)
    (s_done,) = done(link.server_events)
    assert s_done.cipher == "TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8" and s_done.mode == SecurityMode.RPK
    assert s_done.peer_name == "urn:dev:client-1"
    assert s_done.peer_public_key == dtls_keys.public_key_to_resource(p256(0xC11E).public_key())
    assert done(link.client_events)[0].peer_name == "server"


def test_rpk_client_refuses_a_server_key_that_is_not_the_pinned_one():
    _, server_config = rpk_pair()
    impostor = dtls.rpk_client_config(dtls_keys.private_key_to_resource(p256(0xC11E)),
                                      dtls_keys.public_key_to_resource(p256(0xBAD).public_key()))
    link = handshake(impostor, server_config)
    (refusal,) = failures(link.client_events)
    assert refusal.alert == dtls.ALERT_BAD_CERTIFICATE and "pinned" in refusal.reason
    assert link.server_endpoint is None or link.server_endpoint.state != "open"


def test_rpk_server_refuses_an_unregistered_client_key():
    client_config, server_config = rpk_pair(client_seed=0x0DD)
    registered_other = dtls.rpk_server_config(dtls_keys.private_key_to_resource(p256(0x5E4E)),
                                              {dtls_keys.public_key_to_resource(p256(0xC11E).public_key()): "x"})
    link = handshake(client_config, registered_other)
    (refusal,) = failures(link.server_events)
    assert refusal.alert == dtls.ALERT_BAD_CERTIFICATE
    assert not done(link.server_events) and link.client.state == "failed"


# --- certificate mode -------------------------------------------------------------------------

def test_certificate_mode_binds_the_device_identity():
    client_config, server_config = certificate_pair()
    link = handshake(client_config, server_config)
    open_link(link)
    (s_done,) = done(link.server_events)
    assert s_done.peer_name == "urn:imei:490154203237518" and s_done.peer_certificate
    assert s_done.cipher in ("TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256")


def test_certificate_mode_refuses_a_client_of_another_ca():
    from dmsim.network.dm import tls_pki
    _, server_config = certificate_pair()
    foreign = tls_pki.LabCa(b"some other CA entirely").issue_device("urn:imei:1")
    client_config = dtls.certificate_client_config(foreign.cert_pem, foreign.key_pem, LAB_CA.ca_pem)
    link = handshake(client_config, server_config)
    assert failures(link.server_events) and not done(link.server_events)
    assert link.client.state != "open"


def test_certificate_mode_client_pins_the_server_certificate_resource():
    client_config, server_config = certificate_pair()
    other = LAB_CA.issue_server("other.example")
    pinned = dtls.certificate_client_config(LAB_CA.issue_device("urn:imei:490154203237518").cert_pem,
                                            LAB_CA.issue_device("urn:imei:490154203237518").key_pem,
                                            LAB_CA.ca_pem, server_certificate=other.cert_pem)
    link = handshake(pinned, server_config)
    assert failures(link.client_events)[0].alert == dtls.ALERT_BAD_CERTIFICATE


def test_configs_refuse_keys_that_are_not_p256():
    key = ec.generate_private_key(ec.SECP384R1())
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    with pytest.raises(ScenarioError):
        dtls.rpk_client_config(der, dtls_keys.public_key_to_resource(p256(1).public_key()))

