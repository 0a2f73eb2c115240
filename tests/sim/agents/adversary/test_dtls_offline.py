"""The offline PSK search of the LwM2M attacks (sim/agents/adversary/dtls_offline.py) against real
handshakes of network/lwm2m/dtls.py (Mbed TLS) in memory: a PIN on a plain PSK suite falls to one
recorded handshake; ECDHE-PSK gives a passive observer no oracle (seed 004 §7.1)."""
from __future__ import annotations

import dataclasses
import hashlib
import hmac

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from dmsim.base.errors import DecodeError
from dmsim.network.lwm2m import dtls, dtls_policy
from dmsim.network.lwm2m import dtls_records as wire
from dmsim.network.lwm2m.dtls_policy import PskCredential, SecurityMode
from dmsim.sim.agents.adversary import dtls_hello, dtls_offline as off

ADDRESS = b"192.0.2.9:5684"
IDENTITY = b"urn:serial:0042"


def derived(pin: str) -> bytes:
    """A 16-byte key made from a PIN (declared high-entropy: the misconfiguration seed 004 warns of)."""
    return hashlib.sha256(pin.encode()).digest()[:16]


def run(client_config, server_config, tamper=lambda c2s, d: d):
    """Run a handshake in memory; return (recorder result, client, server, the datagrams c2s/s2c)."""
    client, server = dtls.DtlsEndpoint(client_config), dtls.DtlsServer(server_config)
    recorder, seen, found = off.HandshakeRecorder(), [], None
    for _ in range(20):
        up, down = client.datagrams_to_send(), [d for a, d in server.datagrams_to_send() if a == ADDRESS]
        if not up and not down:
            break
        for d in up:
            d = tamper(True, d)
            seen.append((True, d))
            found = recorder.feed(True, d) or found
            server.receive_datagram(ADDRESS, d)
        for d in down:
            seen.append((False, d))
            found = recorder.feed(False, d) or found
            client.receive_datagram(d)
    return found, client, server, seen


def plain(suite, key, entropy="high"):
    cred = PskCredential(IDENTITY, key, entropy)
    return (dtls.DtlsConfig(server=False, mode=SecurityMode.PSK, psk=cred, suites=(suite,)),
            dtls.psk_server_config({IDENTITY: cred}))


@pytest.mark.parametrize("suite", [dtls_policy.PSK_AES_128_CCM_8, dtls_policy.PSK_AES_128_CBC_SHA256],
                         ids=lambda s: s.iana)
def test_a_pin_derived_key_on_a_plain_psk_suite_falls_to_one_recorded_handshake(suite):
    hs, client, _server, _seen = run(*plain(suite, derived("4821")))
    assert client.state == "open" and hs is not None
    assert hs.suite == suite.code and hs.identity == IDENTITY and hs.extended_master_secret
    assert hs.encrypt_then_mac == (suite is dtls_policy.PSK_AES_128_CBC_SHA256)
    oracle = off.GuessOracle(hs)
    assert oracle.check(derived("4821")) and not oracle.check(derived("4820"))
    assert off.search(oracle, off.pins(4, start=4000), key_of=derived) == ("4821", 822)
    assert off.search(oracle, off.pins(4, start=4822), key_of=derived, limit=9000) == (None, 9000)


def test_the_pin_itself_as_key_falls_when_the_server_rule_is_knocked_out(monkeypatch):
    """The low-entropy rule is what keeps a PIN off CCM-8; without it the PIN is read offline."""
    monkeypatch.setattr(dtls_policy, "psk_suite_refusal", lambda entropy, suite: None)
    hs, client, _server, _seen = run(*plain(dtls_policy.PSK_AES_128_CCM_8, b"730519", "low"))
    assert client.state == "open"
    assert off.search(off.GuessOracle(hs), off.pins(6, start=730000)) == ("730519", 520)


def test_the_server_refusal_71_comes_after_the_pin_has_leaked():
    """A client that offers a plain PSK suite with a PIN sends its Finished in the flight whose
    ClientKeyExchange the server refuses (alert 71): the session fails, the PIN is read offline
    all the same. Only the client's own rule (ECDHE-PSK alone) keeps the PIN."""
    hs, client, _server, seen = run(*plain(dtls_policy.PSK_AES_128_CCM_8, b"730519", "low"))
    alerts = [r.fragment for up, d in seen if not up for r in wire.split_records(d)
              if r.content_type == wire.CT_ALERT]
    assert alerts == [bytes([2, dtls_policy.ALERT_INSUFFICIENT_SECURITY])] and client.state == "failed"
    assert off.search(off.GuessOracle(hs), off.pins(6, start=730000)) == ("730519", 520)


def test_a_hello_rewritten_to_the_forbidden_suite_is_refused_by_a_correct_client_before_its_finished():
    ccm8 = (dtls_policy.PSK_AES_128_CCM_8.code,)
    cred = PskCredential(IDENTITY, b"7305", "low")
    hs, client, _server, seen = run(dtls.psk_client_config(IDENTITY, b"7305", entropy="low"),
                                    dtls.psk_server_config({IDENTITY: cred}),
                                    tamper=lambda up, d: (dtls_hello.rewrite_suites(d, ccm8) or d) if up else d)
    assert client.state == "failed" and hs is None
    assert not [r for up, d in seen if up for r in wire.split_records(d) if r.epoch == 1]
    assert [a for up, d in seen if up for a in dtls_hello.fatal_alerts(d)] == [47]  # illegal_parameter


def test_a_rewritten_hello_keeps_its_framing():
    client = dtls.DtlsEndpoint(dtls.psk_client_config(IDENTITY, derived("1"), entropy="high"))
    hello = client.datagrams_to_send()[0]
    changed = dtls_hello.rewrite_suites(hello, (0x00AE,))
    parsed, before = wire.client_hello_of(changed), wire.client_hello_of(hello)
    assert parsed.cipher_suites == (0x00AE,) and parsed.random == before.random
    assert parsed.record_seq == before.record_seq and len(changed) < len(hello)
    assert dtls_hello.rewrite_suites(b"not dtls", (1,)) is None
    assert dtls_hello.rewrite_suites(wire.alert_record(40, 1), (1,)) is None
    assert dtls_hello.fatal_alerts(wire.alert_record(71, 3)) == [71] and dtls_hello.fatal_alerts(b"x") == []


def test_ecdhe_psk_gives_a_passive_observer_no_oracle():
    config = dtls.psk_client_config(IDENTITY, b"7305", entropy="low")
    cred = PskCredential(IDENTITY, b"7305", "low")
    hs, client, _server, _seen = run(config, dtls.psk_server_config({IDENTITY: cred}))
    assert client.state == "open" and hs.suite == dtls_policy.ECDHE_PSK_AES_128_CBC_SHA256.code
    assert "ECDH shared secret" in hs.no_oracle()
    with pytest.raises(ValueError, match="ECDHE-PSK"):
        off.GuessOracle(hs)


def test_a_tampered_finished_matches_no_guess():
    hs, *_ = run(*plain(dtls_policy.PSK_AES_128_CCM_8, derived("0007")))
    frag = bytearray(hs.finished.fragment)
    frag[12] ^= 1
    bad = dataclasses.replace(hs, finished=dataclasses.replace(hs.finished, fragment=bytes(frag)))
    assert off.search(off.GuessOracle(bad), off.pins(4), key_of=derived) == (None, 10_000)


def test_mac_then_encrypt_cbc_records_are_checked_after_decryption():
    """RFC 5246 §6.2.3.2 (no encrypt-then-MAC): a Finished sealed under the right key passes, a
    wrong key or broken padding does not. Mbed TLS always negotiates RFC 7366 for CBC, so the
    record is sealed here with the key block the module derives."""
    hs, *_ = run(*plain(dtls_policy.PSK_AES_128_CBC_SHA256, derived("1234")))
    mte = dataclasses.replace(hs, encrypt_then_mac=False)
    block = off.GuessOracle(mte).keys(derived("1234"))
    content = bytes([20, 0, 0, 12, 0, 3, 0, 0, 0, 0, 0, 12]) + bytes(12)
    header = hs.finished.raw[3:11] + bytes([22]) + hs.finished.raw[1:3]
    mac = hmac.digest(block[:32], header + len(content).to_bytes(2, "big") + content, "sha256")
    pad = 16 - (len(content) + 32) % 16
    plain_text = content + mac + bytes([pad - 1]) * pad
    iv = bytes(range(16))
    enc = Cipher(algorithms.AES(block[64:80]), modes.CBC(iv)).encryptor()
    sealed = iv + enc.update(plain_text) + enc.finalize()
    oracle = off.GuessOracle(dataclasses.replace(mte, finished=dataclasses.replace(hs.finished, fragment=sealed)))
    assert oracle.check(derived("1234")) and not oracle.check(derived("1235"))


def test_the_prf_matches_the_published_tls12_sha256_vector():
    out = off.prf_sha256(bytes.fromhex("9bbe436ba940f017b17652849a71db35"), b"test label",
                         bytes.fromhex("a0ba9f936cda311827a6f796ffd5198c"), 100)
    assert out.hex().startswith("e3f229ba727be17b8d122620557cd453") and out.hex().endswith("0187347b66")


def test_hostile_bytes_never_make_a_handshake():
    recorder = off.HandshakeRecorder()
    for from_client, data in ((True, b"\x16\xfe\xfd" + bytes(5)), (False, b"garbage"),
                              (True, wire.encode_record(22, 0, 0, b"\x01\x00\x00\x50")),
                              (True, wire.encode_record(22, 1, 0, b"x" * 40))):
        assert recorder.feed(from_client, data) is None
    with pytest.raises(DecodeError):
        off.hello_extensions(bytes(36))
    assert off.hello_extensions(bytes(38)) == set()
    assert off.psk_premaster(b"ab") == b"\x00\x02\x00\x00\x00\x02ab"
    assert off.psk_premaster(b"ab", b"Z") == b"\x00\x01Z\x00\x02ab"
