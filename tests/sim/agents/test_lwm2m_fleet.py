"""LwM2M devices and servers in the simulation (issue 18, seed 004 §7.1, §7.3): a mixed DM/LwM2M
fleet, the DTLS bootstrap and registration over the ip links, the SMS binding through the SMSC,
suspend/resume across sleep, and what fails when it should."""
import dataclasses

import pytest

from conftest import run_replica
from dmsim.base.errors import ScenarioError
from dmsim.cards import lwm2m_applet
from dmsim.network.lwm2m import dtls, sms_binding
from dmsim.sim.agents import lwm2m_servers
from dmsim.sim.links.tap import Tap
from dmsim.sim.results.runner import run_scenario
from dmsim.sim.scenario.format import parse_scenario

DEVICE, PROFILE, OUTCOME, REASON = 3, 4, 5, 6
T_BS_SENT, T_BS_OK, T_START, T_END = 8, 9, 10, 11
BS_SENDS, REJECTED, IP_RETRIES, SMS_MSGS, SMS_BYTES, IP_MSGS = 13, 14, 16, 17, 18, 19
PROTOCOL = -1

MIXED = """
name: t
seed: 7
duration: 4000
fleet: {size: 14, profiles: [
  {name: dm, dm_auth: hmac},
  {name: psk-udp, device: lwm2m, lwm2m: {bootstrap: psk, security_mode: psk}},
  {name: pin-sms, device: lwm2m, lwm2m: {bootstrap: low_entropy_psk, binding: S, sms_cipher: aes}},
  {name: cert-sms, device: lwm2m, lwm2m: {bootstrap: certificate, security_mode: certificate, binding: S,
                                          sms_cipher: 3des}},
  {name: rpk-uicc, device: lwm2m, lwm2m: {bootstrap: rpk, security_mode: rpk, binding: S, sms_termination: uicc}},
  {name: factory-nosec, device: lwm2m, lwm2m: {bootstrap: factory, security_mode: nosec}}]}
arrival: {kind: poisson, rate: 2}
smsc: {}
links:
  sms: {delay: {kind: fixed, value: 1.0}}
  ip: {delay: {kind: fixed, value: 0.05}}
"""

UDP_ONLY = """
name: t
seed: 3
duration: 4000
fleet: {size: 6, profiles: [{name: u, device: lwm2m, lwm2m: {bootstrap: psk, security_mode: psk, updates: 2,
                                                              sleep: 120}}]}
arrival: {kind: poisson, rate: 2}
links:
  ip: {delay: {kind: fixed, value: 0.05}}
"""

SMS_ONLY = """
name: t
seed: 4
duration: 6000
fleet: {size: 4, profiles: [{name: s, device: lwm2m, lwm2m: {bootstrap: psk, binding: S}}]}
arrival: {kind: poisson, rate: 1}
smsc: {}
links:
  sms: {delay: {kind: fixed, value: 1.0}}
  ip: {delay: {kind: fixed, value: 0.05}}
"""


def by_profile(rows):
    out = {}
    for r in rows:
        out.setdefault(r[PROFILE], []).append(r)
    return out


def test_a_mixed_fleet_ends_ok_with_each_protocol_in_its_rows():
    model, rows = run_replica(MIXED)
    assert len(rows) == 14 and [r[OUTCOME] for r in rows] == ["ok"] * 14, [r[REASON] for r in rows]
    for r in rows:
        assert r[PROTOCOL] == ("dm" if r[PROFILE] == "dm" else "lwm2m")
    lwm2m = [r for r in rows if r[PROTOCOL] == "lwm2m"]
    stats = model.stats()
    assert stats["lwm2m"]["registrations"] == stats["lwm2m"]["deregistrations"] == len(lwm2m)
    assert stats["lwm2m"]["reads"] == len(lwm2m)  # the server's Read of /3/0 after each Register
    for r in lwm2m:
        assert r[T_START] is not None and r[T_END] >= r[T_START]
        if r[PROFILE] == "factory-nosec":  # Manufacturer Pre-configuration: no bootstrap at all
            assert r[T_BS_SENT] is None and r[BS_SENDS] == 0
        else:
            assert r[T_BS_SENT] < r[T_BS_OK] <= r[T_START] and r[BS_SENDS] == 1
    assert stats["lwm2m"]["bootstraps"] == sum(r[PROFILE] != "factory-nosec" for r in lwm2m)
    assert model.agents["lwm2m"].bootstrap.plans == {}  # the bootstrap server forgets a finished plan
    assert model.agents["lwm2m"].credentials == {}  # and the server de-registered endpoints
    servers = model.agents["lwm2m"]  # finished devices leave nothing in the servers' live key stores
    assert not any(servers.psks.values()) and not any(servers.rpk_clients.values())


def test_binding_s_messages_cross_the_smsc_as_one_secured_sms_each():
    model, rows = run_replica(SMS_ONLY)
    assert [r[OUTCOME] for r in rows] == ["ok"] * 4
    # Register, 2.01, GET /3/0, 2.05, Update, 2.04, DELETE, 2.02: one SMS each, nothing over ip for them
    assert all(r[SMS_MSGS] == 8 and r[SMS_BYTES] > 8 * 60 for r in rows)
    stats = model.stats()
    assert stats["lwm2m.sms"]["sent"] == stats["lwm2m.sms"]["accepted"] == 4 * 4
    assert stats["smsc"]["submitted"] == 4 * 8 and stats["links.sms.up"]["sent"] >= 4 * 4
    assert "lwm2m.server_dtls.psk" not in stats  # the server account is used over SMS only
    assert stats["lwm2m.bootstrap_dtls.psk"]["handshakes"] == 4


def test_a_lossy_ip_link_still_completes_with_dtls_and_coap_retransmissions():
    model, rows = run_replica(UDP_ONLY, "links.ip.loss=0.1", "links.ip.duplicate=0.05", "links.ip.reorder=0.1",
                              "fleet.size=10")
    assert [r[OUTCOME] for r in rows] == ["ok"] * 10, [r[REASON] for r in rows]
    stats = model.stats()
    dtls_resends = sum(stats[k].get("retransmissions", 0) for k in stats if "_dtls." in k)
    assert dtls_resends > 0 and stats["lwm2m.coap"]["retransmissions"] > 0
    assert sum(r[IP_RETRIES] for r in rows) > 0  # the devices' own resends are in ip_retries


def test_the_same_seed_gives_a_byte_identical_sessions_csv(tmp_path):
    """PSK, ECDHE-PSK, the SMS binding and DM: every size is fixed, so the whole table repeats."""
    text = MIXED.replace("size: 14", "size: 10").replace("{bootstrap: certificate, security_mode: certificate,",
                                                         "{bootstrap: psk, security_mode: psk,")
    text = text.replace("{bootstrap: rpk, security_mode: rpk,", "{bootstrap: low_entropy_psk, security_mode: psk,")
    scenario = parse_scenario(text, "same.yaml")
    run_scenario(scenario, tmp_path / "a", plots=False)
    run_scenario(scenario, tmp_path / "b", plots=False)
    a = (tmp_path / "a" / "sessions.csv").read_bytes()
    assert a == (tmp_path / "b" / "sessions.csv").read_bytes()
    assert a.count(b",lwm2m\n") > 0 and a.count(b",dm\n") > 0


def test_ecdsa_modes_repeat_everything_but_a_few_handshake_bytes():
    """RPK and certificate handshakes carry ECDSA signatures from Mbed TLS's own generator (DER of
    70-72 octets): ip_bytes may differ by a byte or two between runs, nothing else does."""
    first = run_replica(MIXED, "fleet.size=8")[1]
    second = run_replica(MIXED, "fleet.size=8")[1]
    strip = [r[:IP_MSGS + 1] + r[IP_MSGS + 2:] for r in first]
    assert strip == [r[:IP_MSGS + 1] + r[IP_MSGS + 2:] for r in second]
    assert all(abs(a[IP_MSGS + 1] - b[IP_MSGS + 1]) <= 8 for a, b in zip(first, second))


def test_a_low_entropy_bootstrap_runs_ecdhe_psk_only():
    model, rows = run_replica(UDP_ONLY, "fleet.profiles.0.lwm2m.bootstrap=low_entropy_psk")
    assert [r[OUTCOME] for r in rows] == ["ok"] * 6
    suites = model.stats()["lwm2m.bootstrap_dtls.psk"]
    assert suites == {"handshakes": 6, "suite.TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256": 6}
    # the server account the bootstrap wrote is a fresh high-entropy PSK: a plain PSK suite there
    assert model.stats()["lwm2m.server_dtls.psk"]["suite.TLS_PSK_WITH_AES_128_CCM_8"] == 6


def test_a_client_offering_plain_psk_with_a_low_entropy_pin_is_refused(monkeypatch):
    """The violation: a misconfigured client declares its PIN high-entropy (16 digits, so the length
    rule does not catch it) and offers the plain PSK suites; the server knows the PIN is low-entropy
    and refuses the handshake with insufficient_security (seed 004 §7.1)."""
    real = dtls.psk_client_config
    monkeypatch.setattr(lwm2m_servers.dtls, "psk_client_config",
                        lambda identity, key, entropy: real(identity, key, entropy="high"))
    model, rows = run_replica(UDP_ONLY, "fleet.profiles.0.lwm2m.bootstrap=low_entropy_psk",
                              "fleet.profiles.0.lwm2m.pin_digits=16", "fleet.size=2")
    assert [r[REASON] for r in rows] == ["dtls_failed"] * 2
    stats = model.stats()["lwm2m.bootstrap_dtls.psk"]
    assert stats.get("handshakes", 0) == 0 and stats["failed.server.dtls_failed"] == 2


def test_a_bootstrap_that_writes_no_sms_keys_ends_the_device_not_the_run(monkeypatch):
    """A (broken or hostile) bootstrap server writes the server's Security instance without the SMS
    binding's resources: the device cannot open its binding and ends as account_unusable; the run
    goes on and writes every record."""
    real = lwm2m_servers.ProvisioningPlan

    def without_sms(identity, security, servers, *rest):
        stripped = tuple(dataclasses.replace(a, sms_key_parameters=None, sms_secret_keys=None) for a in security)
        return real(identity, stripped, servers, *rest)
    monkeypatch.setattr(lwm2m_servers, "ProvisioningPlan", without_sms)
    _model, rows = run_replica(SMS_ONLY)
    assert [r[REASON] for r in rows] == ["account_unusable"] * 4
    assert all(r[T_BS_OK] is not None and r[T_START] is None for r in rows)


def test_an_update_after_sleep_resumes_the_dtls_association_without_a_handshake():
    model, rows = run_replica(UDP_ONLY)
    assert [r[OUTCOME] for r in rows] == ["ok"] * 6
    stats = model.stats()
    assert stats["lwm2m"]["updates"] == 12  # two updates per device, each after 120 s asleep
    assert stats["lwm2m.server_dtls.psk"]["handshakes"] == 6  # one per device: the Register's
    assert all(r[T_END] - r[T_START] >= 240 for r in rows)


def test_resuming_fails_when_the_sealed_association_is_not_the_expected_generation(monkeypatch):
    """The violation of the rollback rule: a device resuming with another generation is refused."""
    from dmsim.sim.links import dtls_link
    real = dtls_link.DtlsClientLink.resume
    monkeypatch.setattr(dtls_link.DtlsClientLink, "resume",
                        lambda self, sealed, key, generation: real(self, sealed, key, generation + 1))
    _model, rows = run_replica(UDP_ONLY, "fleet.size=2")
    assert [r[REASON] for r in rows] == ["resume_failed"] * 2


class FlipLastOctet(Tap):
    """Changes the last octet of every SMS-DELIVER (inside the ciphered part of the command packet)."""

    def act(self, msg, now, rng):
        if msg.kind != "sms-deliver":
            return [(0.0, msg.payload)]
        return [(0.0, msg.payload[:-1] + bytes([msg.payload[-1] ^ 0x01]))]


def test_tampered_binding_sms_are_discarded_silently_and_the_device_fails():
    def hook(model):
        model.agents["smsc"].down.tap = FlipLastOctet()

    model, rows = run_replica(SMS_ONLY, "fleet.size=2", model_hook=hook)
    assert [r[REASON] for r in rows] == ["sms_discarded"] * 2
    stats = model.stats()["lwm2m.sms"]
    discarded = sum(v for k, v in stats.items() if k.startswith("device_discarded."))
    # per device: the 2.01 and the 4 answers to the Register's resends, the server's GET /3/0 and its 4 resends
    assert discarded == sum(r[REJECTED] for r in rows) == 2 * 10
    assert set(k for k in stats if k.startswith("device_discarded.")) <= {"device_discarded.bad_mac",
                                                                          "device_discarded.ciphering"}
    # silence: the device's only MO SMS are its Register and CoAP's retransmissions of it (5 in all)
    assert stats["accepted"] == 2 * 5 and all(r[SMS_MSGS] == 5 + 10 for r in rows)


def test_binding_sms_verified_with_the_right_keys_are_not_discarded():
    model, rows = run_replica(SMS_ONLY, "fleet.size=2")
    assert all(r[REJECTED] == 0 for r in rows)
    assert not any(k.startswith(("discarded.", "device_discarded.")) for k in model.stats()["lwm2m.sms"])


def test_uicc_termination_runs_the_binding_through_the_card(monkeypatch):
    cards = []
    real = lwm2m_applet.personalise
    monkeypatch.setattr(lwm2m_applet, "personalise", lambda card, *a, **k: (cards.append(card), real(card, *a, **k)))
    _model, rows = run_replica(SMS_ONLY, "fleet.size=2", "fleet.profiles.0.lwm2m.sms_termination=uicc")
    assert [r[OUTCOME] for r in rows] == ["ok"] * 2 and len(cards) == 2
    for card in cards:
        counts = card.state[lwm2m_applet.STATE_STATS]
        assert counts["accepted"] == 4 and counts["protected"] == 4  # the MT and MO halves of 4 exchanges


def test_a_raw_public_key_used_by_two_clients_is_refused(monkeypatch):
    fixed = lwm2m_servers._scalar(lambda n: bytes(range(n)))
    monkeypatch.setattr(lwm2m_servers, "_scalar", lambda draw: (draw(48), fixed)[1])
    _model, rows = run_replica(UDP_ONLY, "fleet.profiles.0.lwm2m.bootstrap=rpk",
                               "fleet.profiles.0.lwm2m.security_mode=psk", "fleet.size=3")
    assert sorted(r[REASON] for r in rows) == ["", "key_reused", "key_reused"]


@pytest.mark.parametrize("override, path", [
    ("fleet.profiles.0.lwm2m.binding=S", "fleet.profiles.0.lwm2m.binding"),
    ("fleet.profiles.0.lwm2m.bootstrap=pin", "fleet.profiles.0.lwm2m.bootstrap"),
    ("fleet.profiles.0.lwm2m.sms_cipher=des", "fleet.profiles.0.lwm2m.sms_cipher"),
    ("lwm2m.max_sessions=0", "lwm2m.max_sessions"),
])
def test_scenario_errors_name_the_yaml_path(override, path):
    with pytest.raises(ScenarioError) as err:
        parse_scenario(UDP_ONLY, "t.yaml", [override])
    assert err.value.path == path


def test_uicc_termination_needs_virtual_cards():
    with pytest.raises(ScenarioError) as err:
        parse_scenario(SMS_ONLY, "t.yaml", ["fleet.profiles.0.lwm2m.sms_termination=uicc",
                                            "components.card={kind: pcsc}"])
    assert err.value.path == "fleet.profiles.0.lwm2m.sms_termination"


def _with_sensors(monkeypatch, count: int) -> list:
    """Enrol each device with ``count`` IPSO sensor instances (3303, 3304, 3311) besides /3/0: its
    Register's link-format grows past one SMS. Returns the list of (octets, SMS) of each Register
    (and of other MO POSTs: the Update) the devices' senders secured."""
    real = lwm2m_servers.Lwm2mServers.enroll

    def enroll(self, dev, endpoint):
        enrolment = real(self, dev, endpoint)
        for n in range(count):
            enrolment.store.put((3303, 3304, 3311)[n % 3], n // 3, {5700: 21.5})
        return enrolment
    monkeypatch.setattr(lwm2m_servers.Lwm2mServers, "enroll", enroll)
    sent: list = []
    real_send = sms_binding.SmsBindingSender.send_segments

    def send_segments(self, coap, **kw):
        tpdus = real_send(self, coap, **kw)
        if self.direction is sms_binding.Direction.MO and coap[1:2] == b"\x02":  # a POST: the Register
            sent.append((len(coap), len(tpdus)))
        return tpdus
    monkeypatch.setattr(sms_binding.SmsBindingSender, "send_segments", send_segments)
    return sent


def test_a_register_needing_several_sms_completes_over_a_lossy_binding(monkeypatch):
    """Seed 004 §7.3 with TS 31.115 §4.2: a Register longer than one secured SMS (98 octets with
    AES) travels as one command packet over 2-3 concatenated SMS; lost SMS (MO ones gone for good,
    MT ones retried by the SMSC) are made up by CoAP's retransmissions, each a new packet."""
    sent = _with_sensors(monkeypatch, 20)
    model, rows = run_replica(SMS_ONLY, "links.sms.loss=0.1", "fleet.size=6", "duration=20000")
    assert [r[OUTCOME] for r in rows] == ["ok"] * 6, [r[REASON] for r in rows]
    registers = [(size, n) for size, n in sent if size > 98]
    assert len(registers) > 6 and all(242 < size <= 370 and n == 3 for size, n in registers)  # and a resend
    stats = model.stats()["lwm2m.sms"]
    assert stats["segments"] >= 2 * 6  # the server held segments 1 and 2 of each Register
    assert model.stats()["links.sms.up"]["lost"] > 0 and model.stats()["links.sms"]["lost"] > 0
    # counted per segment: 3 for the Register, 1 for each of the 7 other messages of the session
    assert all(r[SMS_MSGS] >= 3 + 7 for r in rows) and sum(r[SMS_MSGS] for r in rows) >= 6 * 10 + 2


def test_a_register_over_the_concatenation_maximum_fails_as_too_long(monkeypatch):
    """The violation: a Register past 8 SMS (1042 octets) is refused by the device's sender."""
    _with_sensors(monkeypatch, 120)
    _model, rows = run_replica(SMS_ONLY, "fleet.size=1")
    assert [r[REASON] for r in rows] == ["coap_too_long"]
    assert rows[0][SMS_MSGS] == 0


def test_uicc_termination_refuses_a_register_longer_than_one_sms(monkeypatch):
    _with_sensors(monkeypatch, 16)
    _model, rows = run_replica(SMS_ONLY, "fleet.size=1", "fleet.profiles.0.lwm2m.sms_termination=uicc")
    assert [r[REASON] for r in rows] == ["coap_too_long"]


def test_the_servers_long_requests_reach_the_device_over_concatenated_sms(monkeypatch):
    """MT the same way: the server's Read of /3/0 padded with an elective option the client ignores
    (RFC 7252 §5.4.1, 65000: experimental use) goes out as 2 concatenated SMS-DELIVERs; the device
    holds the first, verifies the whole and answers."""
    from dmsim.network.coap import message as coap
    from dmsim.sim.agents import lwm2m_sms
    real = lwm2m_sms.SmsBindingApp.send

    def send(self, imsi, data):
        msg = coap.decode(data)
        if msg.code == coap.Code.GET:
            data = coap.encode(dataclasses.replace(msg, options=msg.options + ((65000, b"p" * 200),)))
        return real(self, imsi, data)
    monkeypatch.setattr(lwm2m_sms.SmsBindingApp, "send", send)
    model, rows = run_replica(SMS_ONLY, "fleet.size=2")
    assert [r[OUTCOME] for r in rows] == ["ok"] * 2, [r[REASON] for r in rows]
    stats = model.stats()
    assert stats["lwm2m.sms"]["sent.concatenated"] == 2 and stats["lwm2m"]["reads"] == 2
    assert all(r[SMS_MSGS] == 9 and r[REJECTED] == 0 for r in rows)  # the GET's 2 segments counted apart
