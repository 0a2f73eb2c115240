"""dmsim's DTLS endpoints against OpenSSL over 127.0.0.1 UDP (seed 004 §7.1): our client with
``openssl s_server -dtls1_2 -psk``, ``openssl s_client -dtls1_2 -psk`` with our DtlsServer."""
import socket
import time

import pytest

from dmsim.network.lwm2m import dtls
from dmsim.network.lwm2m.dtls_policy import PskCredential

from dtls_peer import (TIMEOUT, app_data, done, free_udp_port, require_openssl, start_openssl, stop,
                       udp_drive, wait_output)

IDENTITY = b"urn:imei:490154203237518"
KEY = bytes.fromhex("00112233445566778899aabbccddeeff")
LINE = b"</rd?ep=dmsim&lt=300>\n"


@pytest.mark.parametrize("openssl_cipher, entropy, iana", [
    ("PSK-AES128-CCM8", "high", "TLS_PSK_WITH_AES_128_CCM_8"),
    ("PSK-AES128-CBC-SHA256", "high", "TLS_PSK_WITH_AES_128_CBC_SHA256"),
    ("ECDHE-PSK-AES128-CBC-SHA256", "low", "TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256")])
def test_dmsim_client_with_openssl_s_server(openssl_cipher, entropy, iana):
    require_openssl()
    port = free_udp_port()
    proc = start_openssl(["s_server", "-dtls1_2", "-accept", f"127.0.0.1:{port}", "-nocert",
                          "-psk", KEY.hex(), "-psk_identity", IDENTITY.decode(), "-cipher", openssl_cipher])
    try:
        assert b"ACCEPT" in wait_output(proc, b"ACCEPT")
        client = dtls.DtlsEndpoint(dtls.psk_client_config(IDENTITY, KEY, entropy=entropy))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(TIMEOUT)
            events = udp_drive(client, sock, ("127.0.0.1", port), done, time.monotonic() + TIMEOUT)
            assert [e.cipher for e in done(events)] == [iana], events
            client.send(LINE)
            for datagram in client.datagrams_to_send():
                sock.sendto(datagram, ("127.0.0.1", port))
            assert LINE.strip() in wait_output(proc, LINE.strip())
            proc.stdin.write(b"2.01 Created\n")
            proc.stdin.flush()
            events = udp_drive(client, sock, ("127.0.0.1", port), lambda ev: b"\n" in app_data(ev),
                               time.monotonic() + TIMEOUT)
            assert app_data(events) == b"2.01 Created\n"
    finally:
        stop(proc)


def test_dmsim_low_entropy_client_cannot_be_served_a_plain_psk_suite_by_openssl():
    """openssl s_server offering only PSK-AES128-CCM8: a low-entropy client (ECDHE-PSK only)
    finds no common suite and never completes."""
    require_openssl()
    port = free_udp_port()
    proc = start_openssl(["s_server", "-dtls1_2", "-accept", f"127.0.0.1:{port}", "-nocert",
                          "-psk", KEY.hex(), "-psk_identity", IDENTITY.decode(), "-cipher", "PSK-AES128-CCM8"])
    try:
        assert b"ACCEPT" in wait_output(proc, b"ACCEPT")
        client = dtls.DtlsEndpoint(dtls.psk_client_config(IDENTITY, KEY, entropy="low"))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            events = udp_drive(client, sock, ("127.0.0.1", port), done, time.monotonic() + 2)
        assert not done(events) and client.state != "open"
    finally:
        stop(proc)


def serve_s_client(server, args, until, deadline):
    """Run ``openssl s_client <args>`` (stdin: LINE) against ``server`` on a UDP socket; return
    (events, s_client output)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        proc = start_openssl(["s_client", "-dtls1_2", "-connect", f"127.0.0.1:{port}", *args])
        events = []
        try:
            proc.stdin.write(LINE)
            proc.stdin.flush()
            sock.settimeout(0.05)
            while time.monotonic() < deadline and not until(events):
                for (host, port_), datagram in ((a.decode().rsplit(":", 1), d)
                                                for a, d in server.datagrams_to_send()):
                    sock.sendto(datagram, (host, int(port_)))
                try:
                    data, (host, port_) = sock.recvfrom(65536)
                except socket.timeout:
                    continue
                events += server.receive_datagram(f"{host}:{port_}".encode(), data)
            for address, datagram in server.datagrams_to_send():
                host, port_ = address.decode().rsplit(":", 1)
                sock.sendto(datagram, (host, int(port_)))
            output = wait_output(proc, b"\x00", timeout=0.3)
        finally:
            stop(proc)
    return events, output


@pytest.mark.parametrize("openssl_cipher, iana", [
    ("PSK-AES128-CCM8", "TLS_PSK_WITH_AES_128_CCM_8"),
    ("ECDHE-PSK-AES128-CBC-SHA256", "TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256")])
def test_openssl_s_client_with_dmsim_server(openssl_cipher, iana):
    require_openssl()
    server = dtls.DtlsServer(dtls.psk_server_config({IDENTITY: PskCredential(IDENTITY, KEY, "high")}))
    events, _ = serve_s_client(server, ["-psk", KEY.hex(), "-psk_identity", IDENTITY.decode(),
                                        "-cipher", openssl_cipher],
                               lambda ev: LINE in app_data(ev), time.monotonic() + TIMEOUT)
    assert [(e.cipher, e.psk_identity) for e in done(events)] == [(iana, IDENTITY)]
    assert LINE in app_data(events)
    assert server.hello_verify_sent >= 1


def test_dmsim_server_refuses_openssl_low_entropy_identity_on_ccm8():
    require_openssl()
    low = PskCredential(IDENTITY, KEY, "low")
    server = dtls.DtlsServer(dtls.psk_server_config({IDENTITY: low}))
    events, output = serve_s_client(server, ["-psk", KEY.hex(), "-psk_identity", IDENTITY.decode(),
                                             "-cipher", "PSK-AES128-CCM8"],
                                    lambda ev: any(isinstance(e, dtls.DtlsFailed) for e in ev),
                                    time.monotonic() + TIMEOUT)
    assert [e.alert for e in events if isinstance(e, dtls.DtlsFailed)] == [71]
    assert not done(events)
    assert b"insufficient security" in output
