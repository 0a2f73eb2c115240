"""``dmsim conformance``: the static conformance requirements (SCR) of OMA DM security and, for
each, whether dmsim supports it and the test that shows it.

Sources, in the order printed:

* OMA-TS-DM_Security-V1_3 Appendix B (B.1 DM Client, B.2 DM Server), ``source`` ``"003"``;
* seed 000, the CR "Security for DM Session" (§9.2, TLS), whose Change 4 adds its own SCR tables
  B.1.1/B.2.1, ``source`` ``"seed 000"``. Its item ids reuse numbers of Appendix B with other
  meanings (e.g. DM-SEC-C-005-O), so a row is identified by (source, side, item), never by the
  item alone. Seed 001 changes clause text but adds or changes no SCR item;
* seed 002, the CR on message security (§5.3-§5.5, §5.9), ``source`` ``"seed 002"``. It has no
  SCR table either; its rows are dmsim's own, one per mechanism and side, named
  ``SEED-002-<C|S>-<n>-<M|O>`` (M where the CR's §2 says "support will be required": §5.4 and
  §5.5; O for §5.9, which leaves the technique open), so that the mechanisms it adds are listed
  with their tests like the SCR items;
* 003 §5.10.2.4 (3GPP_GBA) and Appendix C, ``source`` ``"003 §5.10.2.4"``: Appendix B has no item
  for the GBA Push bootstrap, so its rows are dmsim's own too, ``GBA-PUSH-<C|S>-<n>-O``;
* seed 004, the LwM2M CR on channel security (§7.1 DTLS and the secure bootstrap methods, §7.3
  SMS payload security, D.1 the Security object, D.1.3 unbootstrapping), ``source``
  ``"seed 004"``. It has no SCR table either: its rows are dmsim's own, one per rule and side,
  ``SEED-004-<C|S>-<n>-<M|O>`` (C the LwM2M Client; S the LwM2M Server and Bootstrap Server; M
  for the seed's MUST/SHALL/MUST NOT, O for SHOULD/MAY and for each of the three bootstrap
  methods on the client, which MUST support one of them). A rule keeps its number on both
  sides; a number missing on one side is a rule of the other side only.

Each row is data (:class:`Scr`): update ``supported``/``evidence``/``note`` when a test lands.
``supported`` is ``yes`` only when a test exercises the mechanism; ``partial`` when a test covers
part of it (the note says what is missing); ``no`` otherwise. Evidence is a list of pytest node
ids (``tests/...py::test_name``, optionally ``::Class::test_name`` and a ``[param]`` suffix); a
``no`` row may cite the test that shows the refusal.

Choices where Appendix B is silent or garbled (kept verbatim, explained in the notes):
``DM-SEC-C-001-M-O`` keeps its printed id and status ``M-O``; seed 000's server table prints one
item as ``DM-SEC-C-004-M``; Requirement cells that name a missing item (``DM-SEC-C-0007-O``) are
not evaluated. A row marked ``yes`` must satisfy its Requirement column ("A AND B": every named
item ``yes``; "A OR B": one of them), checked by ``--check`` with the evidence.

``--check --knockouts`` also asks whether the evidence depends on the mechanism: each ``yes`` or
``partial`` row names a knockout (:mod:`knockouts`, a patch that switches the mechanism off from
outside the code), and at least one of its cited tests must fail under it
(:mod:`knockout_check`); otherwise the row overclaims.
"""
from __future__ import annotations

import ast
import dataclasses
import json
import re
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import click

YES, PARTIAL, NO = "yes", "partial", "no"
SPEC_003, SEED_000, SEED_002 = "003", "seed 000", "seed 002"
SPEC_GBA = "003 §5.10.2.4"
SEED_004 = "seed 004"

_SESSION = "tests/devices/test_dm_session.py::"
_SEC = "tests/network/test_dm_security.py::"
_HMAC = "tests/network/test_hmac_integrity.py::"
_TLS = "tests/network/test_tls.py::"
_OSSL = "tests/network/test_tls_openssl.py::"
_ENGINE = "tests/sim/model/test_engine.py::"
_HTTPS = "tests/sim/real/test_https_server.py::"
_CARD = "tests/devices/test_smartcard_bootstrap.py::"
_MTLS = "tests/network/test_tls_mutual.py::"
_MOSSL = "tests/network/test_tls_mutual_openssl.py::"
_MSIM = "tests/sim/links/test_tls_mutual_transport.py::"
_BTLS = "tests/sim/agents/test_bootstrap_over_tls.py::"
_REFUSALS = "tests/network/test_dm_auth_refusals.py::test_server_refuses_a_guessed_password_under_each_scheme"
_SWAPPED_BOOTSTRAP = ("tests/devices/test_bootstrap_client.py::"
                      "test_device_accepts_the_servers_bootstrap_and_refuses_a_swapped_document")

_MUTUAL = _SESSION + "test_session_completes_with_mutual_auth"
_WRONG_SECRET = _SESSION + "test_wrong_secret_fails_after_the_second_challenge"
_STALE_CLIENT = _SESSION + "test_stale_client_nonce_gets_one_more_challenge"
_BOOTSTRAP_FLEET = _ENGINE + "test_clean_network_bootstraps_and_authenticates_everyone"
_BOOTSTRAP_TAMPER = _ENGINE + "test_tampered_bootstrap_is_rejected_and_counted"
_DM_OVER_TLS = _HTTPS + "test_dmsim_client_session_over_tls"
_HMAC_VERIFY = (_HMAC + "test_mac_matches_openssl", _HMAC + "test_missing_header", _HMAC + "test_wrong_mac",
                _HMAC + "test_timestamp_window", _HMAC + "test_accept_then_refuse_replay")


@dataclass(frozen=True)
class Scr:
    """One SCR item: the spec's columns (item, function, reference, requirement) and dmsim's
    support (supported, evidence, note). ``side`` and ``source`` are set by the table it is in."""

    item: str
    description: str
    reference: str
    supported: str
    evidence: tuple[str, ...] = ()
    note: str = ""
    requirement: str = ""
    side: str = ""
    source: str = ""

    @property
    def status(self) -> str:
        """Return the status letters after the item number: ``M``, ``O`` (``M-O`` as printed once)."""
        return "-".join(self.item.split("-")[4:])

    def as_dict(self) -> dict:
        """Return the row as a JSON-ready dict with snake_case keys."""
        return {"item": self.item, "side": self.side, "source": self.source, "description": self.description,
                "reference": self.reference, "requirement": self.requirement, "status": self.status,
                "supported": self.supported, "evidence": list(self.evidence), "note": self.note}


def _table(source: str, side: str, *rows: Scr) -> tuple[Scr, ...]:
    return tuple(dataclasses.replace(r, source=source, side=side) for r in rows)


_FULL = "tests/network/test_dm_session_full.py::"
_HMODE = "tests/sim/model/test_hmac_mode.py::"
_HREAL = "tests/network/test_real_server_hmac.py::"
_HMAC_SESSION = (_FULL + "test_hmac_session_has_no_cred_and_a_mac_on_every_message",
                 _HMODE + "test_hmac_fleet_completes_with_a_mac_on_every_message",
                 _HREAL + "test_hmac_session_from_dmsims_client")
_MSEC = "tests/network/test_message_security.py::"
_XSEC = "tests/network/test_xml_security.py::"
_MFLEET = "tests/sim/model/test_message_security_fleet.py::"
_MOENC = "tests/network/test_mo_encryption.py::"
_RFC2617 = ("the seed cites RFC 2617 (HTTP Authorization header), which dmsim does not implement; "
            "the SyncML {} credential in Cred is implemented and tested")

_GKEYS = "tests/network/gba/test_keys.py::"
_GBOOT = "tests/network/test_gba_bootstrap.py::"
_GFLEET = "tests/sim/agents/test_gba_push_bootstrap.py::"
_GPUSH = "tests/network/gba/test_push.py::"


def _gba(side: str) -> tuple[Scr, ...]:
    """Return dmsim's rows for 003 §5.10.2.4 (3GPP_GBA, Appendix C) on ``side`` (C or S): Appendix B
    has no item for it, so, as for seed 002, the rows are dmsim's own (``GBA-PUSH-<C|S>-<n>-O``)."""
    item = lambda n: f"GBA-PUSH-{side}-{n:03d}-O"  # noqa: E731
    return (
        Scr(item(1), "DMBIK and DMBEK from Ks_(ext/int)_NAF with the TS 33.220 KDF (the seed's bytes: "
            "P0 dm-bik / dm-bek, L0 = 6)", "5.10.2.4.1", YES,
            (_GKEYS + "test_dm_p0_follows_the_seed_bytes_not_the_prose", _GKEYS + "test_dmbik_dmbek_against_openssl",
             _GFLEET + "test_a_gba_fleet_bootstraps_end_to_end_with_each_phase_timed"),
            "network/gba/keys.py; NAF_Id = DM server FQDN || Ua id, a private-range id since OMNA registers "
            "none for DM"),
        Scr(item(2), "Bootstrap protected for integrity and confidentiality with DMBIK/DMBEK, Content-Type "
            "SEC=3GPP_GBA", "5.10.2.4.1", YES,
            (_GBOOT + "test_every_octet_flipped_is_refused", _GBOOT + "test_openssl_cross_checks_the_mac_and_the_cipher",
             _GFLEET + "test_a_tampered_protected_bootstrap_is_rejected"),
            "the seeds name no algorithms: AES-128-CBC under DMBEK then HMAC-SHA-256 under DMBIK, checked "
            "before decryption (network/dm/gba_bootstrap.py)"),
        Scr(item(3), "GBA Push executed before the bootstrap (GPI over SMS; GBA_U and GBA_ME; a replayed "
            "or stale GPI refused)", "5.10.2.4.1, Appendix C", YES,
            (_GPUSH + "test_replay_stale_sqn_and_mac_failure_are_refused_and_counted",
             _GFLEET + "test_a_replayed_gpi_is_refused_and_counted",
             _GFLEET + "test_the_proxy_naf_hands_over_the_keys_over_its_own_link"),
            "TS 33.223 Zpn/Upa; the NAF inside the DM server or a proxy NAF (Appendix C); the GPI octet "
            "layout of TS 24.109 Annex J.3 could not be checked here and is provisional"),
    )


def _seed_002(side: str, peer: str) -> tuple[Scr, ...]:
    """Return seed 002's rows for ``side`` (C or S); ``peer`` names whose messages it checks."""
    item = lambda n, status: f"SEED-002-{side}-{n:03d}-{status}"  # noqa: E731
    return (
        Scr(item(1, "M"), "Transport neutral integrity using HMAC-MD5 (x-syncml-hmac algorithm=MD5)", "5.4", YES,
            (_HMAC + "test_md5_mac_matches_openssl",
             _HMAC + "test_md5_verifier_accepts_md5_and_refuses_tampering_and_sha256",
             _MSEC + "test_session_completes_with_every_message_protected[hmac-md5]",
             _MSEC + "test_hmac_md5_retransmission_gets_the_cached_reply_but_a_later_replay_does_not",
             _MFLEET + "test_fleet_completes_with_every_dm_message_protected[hmac-md5-md5]"),
            f"RFC 2104 HMAC-MD5(AAuthSecret, Timestamp:Msg) on every message; the {peer}'s is checked (window, "
            "replay); profile message_security: hmac-md5"),
        Scr(item(2, "M"), "Transport neutral integrity using XML-Signature", "5.4", YES,
            (_XSEC + "test_xmlsec1_verifies_our_signature", _XSEC + "test_we_verify_xmlsec1s_signature",
             _MSEC + "test_session_completes_with_every_message_protected[xmldsig]",
             _MSEC + ("test_server_refuses_a_tampered_request[xmldsig]" if side == "S"
                      else "test_client_refuses_a_tampered_server_message[xmldsig]"),
             _MFLEET + "test_fleet_completes_with_every_dm_message_protected[xmldsig-md5]"),
            "enveloped HMAC-SHA256 signature of the whole SyncML XML message (python-xmlsec), checked against "
            "xmlsec1; profile message_security: xmldsig"),
        Scr(item(3, "M"), "Transport neutral confidentiality using XML-Encryption", "5.5", YES,
            (_XSEC + "test_xmlsec1_decrypts_our_encryption", _XSEC + "test_we_decrypt_xmlsec1s_encryption",
             _XSEC + "test_wrong_key_fails_to_decrypt", _MSEC + "test_xmlenc_hides_the_management_data",
             _MFLEET + "test_fleet_completes_with_every_dm_message_protected[xmlenc-basic]"),
            "SyncBody as AES-256-GCM EncryptedData under HKDF-SHA256(AAuthSecret), then signed as xmldsig; "
            "profile message_security: xmlenc"),
        Scr(item(4, "O"), "Management object encryption", "5.9", YES,
            (_MOENC + "test_object_stays_encrypted_on_the_device_and_decrypts_on_the_server",
             _MOENC + "test_wrong_key_and_changed_ciphertext_fail", _MOENC + "test_xmlsec1_decrypts_the_stored_object"),
            "network/dm/mo_encryption.py: the server Adds an XML-Encryption (AES-256-GCM) value that stays "
            "encrypted in the device's tree and decrypts it when read back; no scenario key drives it yet"),
    )


_DTLS = "tests/network/lwm2m/test_dtls.py::"
_DOSSL = "tests/network/lwm2m/test_dtls_openssl.py::"
_DPOL = "tests/network/lwm2m/test_dtls_policy.py::"
_SMSSEC = "tests/network/lwm2m/test_sms_security.py::"
_SMSB = "tests/network/lwm2m/test_sms_binding.py::"
_SMSCAT = "tests/network/lwm2m/test_sms_concatenation.py::"
_OBJ = "tests/network/lwm2m/test_objects.py::"
_BSS = "tests/network/lwm2m/test_bootstrap_server.py::"
_LSRV = "tests/network/lwm2m/test_server.py::"
_LCL = "tests/devices/test_lwm2m_client.py::"
_LSTORE = "tests/devices/test_lwm2m_store.py::"
_LUNB = "tests/devices/test_lwm2m_unbootstrap.py::"
_UICC = "tests/devices/test_lwm2m_sms_uicc.py::"
_APPLET = "tests/cards/test_lwm2m_applet.py::"
_LCONV = "tests/devices/test_lwm2m_conversation.py::test_bootstrap_register_read_deregister"
_BSPOL = "tests/network/lwm2m/test_bootstrap_server_sms_policy.py::"
_BSSMS = _BSPOL + "test_a_plan_whose_sms_keyset_breaks_a_rule_is_refused"
_FLEET = "tests/sim/agents/test_lwm2m_fleet.py::"
_REAL = "tests/sim/real/test_lwm2m_server.py::"
_PROBE = "tests/sim/real/test_lwm2m_probe.py::"
_LIBCOAP = "tests/sim/real/test_lwm2m_libcoap.py::"
_MIXED = _FLEET + "test_a_mixed_fleet_ends_ok_with_each_protocol_in_its_rows"
_OVER_REAL_DTLS = _REAL + "test_the_lwm2m_client_bootstraps_then_registers_over_real_dtls"
_LOW_BOOTSTRAP = _FLEET + "test_a_low_entropy_bootstrap_runs_ecdhe_psk_only"
_AFTER_SLEEP = _FLEET + "test_an_update_after_sleep_resumes_the_dtls_association_without_a_handshake"
_HOSTILE = _SMSB + "test_hostile_sms_is_discarded_silently"
_BROKEN = _SMSSEC + "test_each_broken_rule_is_refused"
_DISCARDS = (_HOSTILE, _SMSB + "test_a_tampered_octet_of_the_user_data_is_discarded",
             _SMSSEC + "test_a_tampered_octet_anywhere_is_discarded",
             _SMSSEC + "test_unexpected_parameters_or_keys_are_discarded")
_RPK_IN_A_CERTIFICATE = (
    "partial: python-mbedtls 2.10 has no RFC 7250 raw public keys, so in RPK mode each side's P-256 key travels in "
    "a minimal self-signed carrier certificate and the peer is authenticated by pinning its SubjectPublicKeyInfo (a "
    "peer that insists on RFC 7250 cert_type will not interoperate); certificate mode validates the chain (and pins "
    "the \"Server Public Key\" certificate when set); ECDHE-ECDSA CCM_8/GCM suites, P-256 keys only")
_BS_SMS_CHECKED = ("; the bootstrap server refuses a plan whose SMS keyset breaks the rule when it is given "
                   "(bootstrap_server._check_sms_keys, the binding's own policy), so it never provisions a keyset "
                   "the client must refuse")


def _seed_004(side: str) -> tuple[Scr, ...]:
    """Return dmsim's rows for seed 004 (LwM2M channel security) on ``side``: C the LwM2M Client,
    S the LwM2M Server and Bootstrap Server; a rule of one side only has no row on the other."""
    client = side == "C"
    item = lambda n, status: f"SEED-004-{side}-{n:03d}-{status}"  # noqa: E731
    pick = lambda for_client, for_server: for_client if client else for_server  # noqa: E731
    method = "O" if client else "M"  # the client MUST support one of methods 1-3, a bootstrap server all
    both = [
        Scr(item(1, "M"), "DTLS 1.2 secures the UDP channel (RFC 6347, the DTLS binding of CoAP)", "7.1", YES,
            (_DTLS + "test_psk_high_entropy_runs_ccm8_and_carries_data_both_ways",
             _DTLS + "test_an_application_record_replayed_is_delivered_once",
             _DTLS + "test_a_forged_application_record_neither_delivers_nor_moves_the_window",
             _DTLS + "test_rewritten_client_hello_suite_list_fails_the_finished_check")
            + pick((_DOSSL + "test_dmsim_client_with_openssl_s_server",),
                   (_DOSSL + "test_openssl_s_client_with_dmsim_server",
                    _DTLS + "test_a_cookie_is_bound_to_the_address_it_was_issued_to",
                    _LIBCOAP + "test_libcoap_gets_well_known_core_over_dtls_psk",
                    _LIBCOAP + "test_libcoap_with_a_wrong_key_fails_and_the_server_counts_a_failed_handshake"))
            + (_OVER_REAL_DTLS, _FLEET + "test_a_lossy_ip_link_still_completes_with_dtls_and_coap_retransmissions",
               _MIXED),
            "network/lwm2m/dtls.py: sans-IO DTLS 1.2 endpoints over Mbed TLS (PSK, RPK, certificate; DTLS 1.0 "
            "refused), checked against openssl s_server/s_client; the LwM2M exchanges themselves (bootstrap, "
            "registration, DM Read, updates, de-registration) run over them on real UDP sockets (dmsim lwm2m server "
            "and the client core, PSK) and on the simulated ip links (bootstraps in PSK, ECDHE-PSK, RPK and "
            "certificate mode, the LwM2M server in PSK mode), with loss, duplication and reordering recovered by "
            "DTLS and CoAP retransmissions"
            + pick("", "; libcoap's coap-client-openssl reads the server's /.well-known/core over DTLS PSK")),
        Scr(item(2, "M"), "The keying material of a Security object instance secures the channel to its server: a "
            "server's for registration, DM and reporting, the bootstrap server's for bootstrap", "7.1, D.1.1", YES,
            pick((_LCONV, _DPOL + "test_public_key_forms_round_trip", _DPOL + "test_private_key_forms",
                  _DPOL + "test_psk_credential_checks_identity_and_key",
                  _DTLS + "test_certificate_mode_client_pins_the_server_certificate_resource", _OVER_REAL_DTLS, _MIXED),
                 (_BSS + "test_an_endpoint_name_that_is_not_the_authenticated_identity_s_gets_nothing",
                  _LSRV + "test_register_from_another_identity_is_refused_and_changes_nothing",
                  _LSRV + "test_update_and_deregister_only_from_the_registered_identity", _LCONV,
                  _REAL + "test_the_cores_see_the_dtls_identity_not_the_endpoint_name_claimed", _OVER_REAL_DTLS,
                  _MIXED)),
            pick("Lwm2mClient.account(ssid) and bootstrap_account() hand the driver the instance of each channel; the "
                 "DTLS configs take the D.1.1 forms (PSK identity UTF-8 of up to 128 bytes, D.1.1.1's minimum, and its "
                 "key; P-256 public keys "
                 "as SubjectPublicKeyInfo, SEC1 or X||Y, private keys as a 32-byte scalar or PKCS#8; DER "
                 "certificates); the client opens the LwM2M server's DTLS session from the Security instance its "
                 "bootstrap wrote, over real sockets and in the simulation (PSK; NoSec coap://), and the simulated "
                 "devices open their bootstrap channel from the factory instance in PSK, RPK and certificate mode "
                 "(the fleet's LwM2M server accounts in RPK and certificate mode are used over SMS)",
                 "the bootstrap server serves an endpoint's plan only to the identity the plan names (4.03 otherwise) "
                 "and writes each server's keying material in its Security instance; the LwM2M Server registers, "
                 "updates and de-registers an endpoint only from its identity; the drivers (dmsim lwm2m server, the "
                 "simulated servers) hand the cores the identity the DTLS handshake authenticated, never the endpoint "
                 "name claimed, and fill the DTLS servers' key stores from the same credentials the plans write")),
        Scr(item(3, method), "Secure bootstrap method 1: a strong (high-entropy) pre-shared secret with the PSK "
            "cipher suites", "7.1", YES,
            pick((_DTLS + "test_psk_high_entropy_runs_ccm8_and_carries_data_both_ways",
                  _DTLS + "test_psk_high_entropy_client_offers_only_the_lwm2m_psk_suites",
                  _DOSSL + "test_dmsim_client_with_openssl_s_server[PSK-AES128-CCM8-high-TLS_PSK_WITH_AES_128_CCM_8]",
                  _DOSSL + "test_dmsim_client_with_openssl_s_server"
                           "[PSK-AES128-CBC-SHA256-high-TLS_PSK_WITH_AES_128_CBC_SHA256]"),
                 (_DTLS + "test_server_accepts_high_entropy_identity_on_the_suite_refused_to_a_low_one",
                  _DOSSL + "test_openssl_s_client_with_dmsim_server[PSK-AES128-CCM8-TLS_PSK_WITH_AES_128_CCM_8]",
                  _DPOL + "test_client_suites_follow_the_entropy")),
            pick("a PSK declared high-entropy (16 bytes or more) offers TLS_PSK_WITH_AES_128_CCM_8 and "
                 "TLS_PSK_WITH_AES_128_CBC_SHA256; the client MUST support one of the three methods, dmsim supports "
                 "all three (C-003, C-005, C-006)",
                 "DtlsServer serves both PSK suites to a high-entropy identity; M: a bootstrap server SHALL support "
                 "all three methods (S-008)")),
        Scr(item(4, "M"), "The PSK cipher suites MUST NOT be used with only a low-entropy pre-shared secret", "7.1",
            YES,
            pick((_DTLS + "test_low_entropy_client_offers_only_ecdhe_psk",
                  _DOSSL + "test_dmsim_low_entropy_client_cannot_be_served_a_plain_psk_suite_by_openssl",
                  _DPOL + "test_entropy_classification", _DPOL + "test_entropy_must_be_declared",
                  _PROBE + "test_low_entropy_offers_only_ecdhe_psk",
                  _PROBE + "test_low_entropy_probe_finds_no_suite_on_a_plain_psk_only_server", _LOW_BOOTSTRAP),
                 (_DTLS + "test_server_refuses_low_entropy_identity_on_forbidden_suite",
                  _DTLS + "test_a_short_key_stored_as_high_entropy_is_still_refused_on_ccm8",
                  _DOSSL + "test_dmsim_server_refuses_openssl_low_entropy_identity_on_ccm8",
                  _DPOL + "test_low_entropy_refused_on_plain_psk_suites",
                  _REAL + "test_a_low_entropy_identity_runs_ecdhe_psk_and_nothing_else",
                  _FLEET + "test_a_client_offering_plain_psk_with_a_low_entropy_pin_is_refused")),
            pick("each PSK declares its entropy (no default) and a key under 16 bytes counts as low whatever was "
                 "declared (network/lwm2m/dtls_policy.py); a low-entropy client offers ECDHE-PSK only (dmsim lwm2m "
                 "probe --low-entropy finds no suite on a server serving plain PSK only; a simulated PIN bootstrap "
                 "runs ECDHE-PSK every time)",
                 "the server reads the identity in the ClientKeyExchange and refuses a low-entropy one on any suite "
                 "but ECDHE-PSK with a fatal insufficient_security alert (71), openssl s_client included, on real "
                 "sockets (dmsim lwm2m server, audited without the PIN) and in the simulation (a 16-digit PIN a "
                 "client declares high-entropy is still refused: the server holds the PIN as low-entropy)")),
        Scr(item(5, method), "Secure bootstrap method 2: a temporary low-entropy pre-shared secret with "
            "TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256 (RFC 5489)", "7.1", YES,
            pick((_DTLS + "test_low_entropy_client_completes_on_ecdhe_psk",
                  _DOSSL + "test_dmsim_client_with_openssl_s_server"
                           "[ECDHE-PSK-AES128-CBC-SHA256-low-TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256]"),
                 (_DTLS + "test_low_entropy_client_completes_on_ecdhe_psk",
                  _DOSSL + "test_openssl_s_client_with_dmsim_server"
                           "[ECDHE-PSK-AES128-CBC-SHA256-TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256]",
                  _DPOL + "test_low_entropy_allowed_on_ecdhe_psk_and_irrelevant_without_psk"))
            + (_OVER_REAL_DTLS, _LOW_BOOTSTRAP),
            pick("a PIN, password or serial number is declared low-entropy and runs on ECDHE-PSK, also against "
                 "openssl s_server",
                 "ECDHE-PSK is the server's first choice, so a low-entropy client that offers it beside a PSK suite "
                 "is never steered onto the forbidden one")
            + "; a whole bootstrap runs on it over real sockets (the client core against dmsim lwm2m server) and in "
              "the simulation, and the LwM2M server account it writes is a fresh high-entropy PSK"),
        Scr(item(6, method), "Secure bootstrap method 3: raw public key or X.509 certificate", "7.1, D.1.1.2, D.1.1.3",
            PARTIAL,
            pick((_DTLS + "test_rpk_mode_authenticates_both_keys_by_pinning",
                  _DTLS + "test_rpk_client_refuses_a_server_key_that_is_not_the_pinned_one",
                  _DTLS + "test_certificate_mode_binds_the_device_identity",
                  _DTLS + "test_certificate_mode_client_pins_the_server_certificate_resource",
                  _DTLS + "test_configs_refuse_keys_that_are_not_p256",
                  _DPOL + "test_rpk_carrier_certificate_holds_only_the_key_and_is_deterministic"),
                 (_DTLS + "test_rpk_mode_authenticates_both_keys_by_pinning",
                  _DTLS + "test_rpk_server_refuses_an_unregistered_client_key",
                  _DTLS + "test_certificate_mode_binds_the_device_identity",
                  _DTLS + "test_certificate_mode_refuses_a_client_of_another_ca"))
            + (_MIXED,),
            "the simulated fleet bootstraps over RPK and certificate DTLS associations (the LwM2M server accounts "
            "written in those modes are used over SMS there); "
            + pick("", "dmsim lwm2m server (real sockets) serves PSK only; ") + _RPK_IN_A_CERTIFICATE),
        Scr(item(7, "M"), "The LwM2M client uses a key pair unique to it", "7.1", pick(NO, PARTIAL),
            pick((), (_DPOL + "test_key_registry_refuses_a_key_of_another_endpoint_in_any_form",
                      _DPOL + "test_key_registry_reads_certificates_and_is_bounded",
                      _FLEET + "test_a_raw_public_key_used_by_two_clients_is_refused", _MIXED)),
            pick("the client core takes its key pair from its configuration and cannot see another client's; the "
                 "bootstrap server side refuses a key bound to another endpoint (S-007)",
                 "dtls_policy.KeyRegistry binds each public key (in any D.1.1 form, or a certificate's) to one "
                 "endpoint name and refuses it to another, bounded; the simulated operator claims each RPK "
                 "bootstrap key in it at enrolment, and a second device with the same key ends key_reused with no "
                 "bootstrap (the BootstrapServer core itself does not consult it: its driver does); partial: the "
                 "keys of certificate clients (one per device from the lab CA) and the RPK keys a bootstrap writes "
                 "for the LwM2M server account are not claimed in it")),
        Scr(item(9, "O"), "Keep the DTLS session across sleep cycles, its keys and counters in encrypted and "
            "integrity-protected storage", "7.1", PARTIAL,
            pick((_DTLS + "test_suspended_association_resumes_without_any_handshake",
                  _DTLS + "test_a_sealed_association_refuses_rollback_tampering_and_the_wrong_key",
                  _DTLS + "test_a_cbc_suite_association_cannot_be_suspended_and_stays_open"),
                 (_DTLS + "test_a_server_still_holding_its_last_flight_cannot_suspend",
                  _DTLS + "test_suspended_association_resumes_without_any_handshake"))
            + pick((_AFTER_SLEEP,
                    _FLEET + "test_resuming_fails_when_the_sealed_association_is_not_the_expected_generation"),
                   (_AFTER_SLEEP,)),
            "the association (keys, epoch, record counters, replay window) is saved by Mbed TLS, sealed with "
            "AES-GCM under a storage key, bound to a generation number against rollback, and resumed with no "
            "handshake at all; "
            + pick("a simulated device seals its association to the LwM2M server for each sleep and resumes it for "
                   "the update (one handshake per device), and one sealed under another generation is refused "
                   "(resume_failed); ",
                   "the simulated server keeps its side open while its clients sleep (one handshake per device "
                   "across its updates); ")
            + "partial: it is not an abbreviated handshake (python-mbedtls 2.10 has no session cache nor tickets), "
              "and Mbed TLS saves associations on an AEAD suite only (CCM_8, GCM: not a CBC one, so not ECDHE-PSK "
              "of method 2)"),
        Scr(item(10, "M"), "SMS payload security (the Secured Packet Structure of ETSI TS 102 225) is applied when "
            "the SMS binding is used", "7.3", PARTIAL,
            (_SMSB + "test_round_trip", _SMSB + "test_the_user_data_starts_with_the_command_packet_identifier",
             _SMSB + "test_each_direction_has_its_own_counter", _SMSB + "test_send_and_encode_sms_give_one_sms",
             _SMSCAT + "test_one_packet_one_counter_cut_over_segments",
             _SMSCAT + "test_the_limit_is_the_concatenations_maximum",
             _SMSCAT + "test_segments_in_any_order_reassemble", _SMSCAT + "test_pycrate_reads_the_segments_udh",
             _SMSCAT + "test_an_overlapping_forged_segment_makes_the_whole_fail_and_yields_nothing",
             _SMSCAT + "test_segments_spliced_from_two_messages_never_verify",
             _SMSCAT + "test_pending_messages_are_bounded_by_count",
             _SMSCAT + "test_arbitrary_segments_never_raise_and_never_yield_data",
             _HOSTILE + "[cpi-in-a-later-segment]", _HOSTILE + "[more-segments-than-allowed]",
             _SMSB + pick("test_pycrate_reads_our_sms_deliver", "test_pycrate_reads_our_sms_submit"),
             _FLEET + "test_binding_s_messages_cross_the_smsc_as_one_secured_sms_each",
             _FLEET + "test_a_register_needing_several_sms_completes_over_a_lossy_binding",
             _FLEET + "test_binding_sms_verified_with_the_right_keys_are_not_discarded"),
            "network/lwm2m/sms_binding.py has no unsecured mode: each CoAP message is one command packet (the shared "
            "SCP80 codec: one CPL, one counter, one checksum over the whole), SMS-DELIVER from the server, SMS-SUBMIT "
            "from the client, each direction with its own counter; a packet longer than one SMS is cut over "
            "concatenated SMS (TS 23.040 §9.2.3.24.1, the command packet identifier in the first segment only, TS "
            "31.115 §4.2), reassembled with bounded state and verified as a whole, up to 8 SMS (a CoAP message of "
            "1042 octets; one SMS: 98 with AES, 106 with 3DES); the simulated client and server run Register (over "
            "3 SMS with a lossy link too), the DM Read, Update and De-register over it through the SMSC; partial: "
            "with the security terminated on the UICC a message stays one SMS (98 or 106 octets): the card's applet "
            "does not reassemble concatenated secured SMS, and a longer message is refused (coap_too_long, "
            "refused.too_long)"),
        Scr(item(11, "M"), "Security terminated on the device: class 1 SMS, TP-PID 111101 (ME data download), TAR "
            "in BF FF 00 - BF FF FF", "7.3", YES,
            (_HOSTILE + "[pid-uicc-on-device]", _HOSTILE + "[pid-default]", _HOSTILE + "[class-2]",
             _SMSB + "test_termination_settings", _SMSB + "test_other_codings_of_the_class_are_accepted",
             _SMSSEC + "test_tar_range_bounds_are_allowed", _BROKEN + "[tar-below]", _BROKEN + "[tar-above]",
             _BROKEN + "[tar-ota]")
            + pick((), (_BSS + "test_plans_are_checked_when_given[bad3]", _BSSMS + "[tar-below]",
                        _BSSMS + "[tar-above]")),
            "sent as TP-DCS F5 with TP-PID 7D; any 8-bit class 1 coding (15, 55, F5) is taken, any other TP-PID or "
            "class discarded; a TAR outside the range is refused in the configuration"
            + pick("", _BS_SMS_CHECKED)),
        Scr(item(12, "O"), "Security terminated on the smartcard: class 2 SMS, TP-PID 111111 (USIM data download); "
            "the client passes SMS to the smartcard", "7.3", YES,
            pick((_UICC + "test_not_given_to_the_card", _UICC + "test_server_to_card_to_client",
                  _UICC + "test_client_to_card_to_server",
                  _APPLET + "test_pid_7f_in_class_1_is_discarded_by_the_applet",
                  _APPLET + "test_mt_plaintext_in_the_envelope_answer"),
                 (_SMSB + "test_round_trip[Direction.MT-Termination.UICC-aes128]",
                  _SMSB + "test_round_trip[Direction.MO-Termination.UICC-3des3]", _SMSB + "test_termination_settings",
                  _UICC + "test_client_to_card_to_server",
                  _UICC + "test_mo_packets_out_of_order_are_refused_by_the_server"))
            + (_FLEET + "test_uicc_termination_runs_the_binding_through_the_card",),
            pick("the ME gives a class 2, TP-PID 7F SMS with an LwM2M TAR to the card's LwM2M applet in the SMS-PP "
                 "download ENVELOPE and takes the CoAP message from its answer; the card secures the client's "
                 "messages (LWM2M PROTECT, dmsim's own command: NOTE2 leaves the ME-card exchange open)",
                 "the server sends TP-DCS F6 with TP-PID 7F to a client whose security ends on its UICC and checks "
                 "the card's packets like any other")
            + "; in the simulation a UICC-terminated device runs its whole registration through its card's applet "
              "(each MT SMS verified by the card, each MO message protected by it)"),
        Scr(item(13, "M"), "Single DES SHALL NOT be used", "7.3", YES,
            (_BROKEN + "[kic-single-des-cbc]", _BROKEN + "[kic-single-des-ecb]", _BROKEN + "[kid-single-des]",
             _SMSSEC + "test_unexpected_parameters_or_keys_are_discarded[des]",
             _SMSSEC + "test_unexpected_parameters_or_keys_are_discarded[des-kid]", _HOSTILE + "[single-des]",
             _SMSB + "test_sender_and_receiver_refuse_a_configuration_breaking_a_rule")
            + pick((), (_BSSMS + "[kic-single-des]", _BSSMS + "[kid-single-des]", _BSSMS + "[kic-single-des-ecb]")),
            "KIc 0x?1/0x?D and KID 0x?1 are refused in the configuration of sender and receiver, and a received "
            "packet naming them is discarded" + pick("", _BS_SMS_CHECKED)),
        Scr(item(14, "M"), "AES or Triple DES with three different keys SHALL be used", "7.3", YES,
            (_SMSSEC + "test_allowed_pairs_break_no_rule", _BROKEN + "[kic-3des-2key]", _BROKEN + "[kid-3des-2key]",
             _BROKEN + "[3des-k1-k2]", _BROKEN + "[3des-parity-only]", _BROKEN + "[kic-implicit]",
             _SMSSEC + "test_3des_3key_sp800_67_example",
             _SMSSEC + "test_the_published_ota_keysets_are_refused_for_lwm2m",
             _HOSTILE + "[3des-2key]")
            + pick((), (_BSS + "test_plans_are_checked_when_given[bad3]", _BSSMS + "[two-key-3des]",
                        _BSSMS + "[3des-key-repeated]",
                        _BSPOL + "test_a_plan_with_an_allowed_sms_keyset_writes_it_as_given")),
            "AES (KIc/KID 0x?2) or 3DES with three keys (0x?9) only; two-key 3DES (0x?5), implicit and proprietary "
            "codings refused, and the three DES keys of a 3DES key must differ (parity bits ignored)"
            + pick("", _BS_SMS_CHECKED)),
        Scr(item(15, "M"), "Where AES is used: CBC mode for encryption (KIc) and CMAC mode for integrity (KID)", "7.3",
            YES,
            (_BROKEN + "[kic-aes-not-cbc]", _BROKEN + "[kid-aes-not-cmac]", _SMSSEC + "test_aes_cmac_rfc4493_examples",
             _SMSSEC + "test_aes_cbc_sp800_38a_f21", _SMSSEC + "test_protect_matches_an_independent_reading")
            + pick((), (_BSSMS + "[aes-kic-not-cbc]", _BSSMS + "[aes-kid-not-cmac]")),
            "KIc 0x?2 AES-CBC and KID 0x?2 AES-CMAC (8-octet checksum), checked against RFC 4493 and SP 800-38A "
            "and opened independently with cryptography; other AES modes refused. AES (SHOULD) is not forced: "
            "3DES with three keys is taken too" + pick("", _BS_SMS_CHECKED)),
        Scr(item(16, "O"), "SPI: cryptographic checksum, ciphering, process only if the counter is higher than the "
            "RE's", "7.3", YES,
            (_SMSSEC + "test_counter_must_be_higher", _SMSSEC + "test_only_a_verified_packet_gives_a_counter",
             _BROKEN + "[spi-no-counter]", _BROKEN + "[spi-counter-one-higher]", _BROKEN + "[spi-not-ciphered]",
             _BROKEN + "[spi-rc]", _SMSB + "test_replayed_sms_is_discarded", _HOSTILE + "[counter-not-higher]")
            + pick((), (_BSS + "test_plans_are_checked_when_given[bad4]", _BSSMS + "[spi-no-counter]",
                        _BSSMS + "[spi-not-ciphered]", _BSSMS + "[spi-redundancy-check]")),
            "the first SPI octet must be 0x16: dmsim requires what the seed recommends; the RE moves only with a "
            "verified packet; the second SPI octet is sent 00 (no PoR)" + pick("", _BS_SMS_CHECKED)),
        Scr(item(17, "M"), "KIc, KID, SPI and TAR in the SMS Binding Key Parameters resource (6 bytes), the keys in "
            "the SMS Binding Secret Keys resource (32-48 bytes)", "7.3, D.1, D.1.2", YES,
            pick((_SMSSEC + "test_key_parameters_resource_layout", _SMSSEC + "test_key_parameters_refuse_other_lengths",
                  _SMSSEC + "test_secret_keys_resource_is_kic_then_kid",
                  _SMSSEC + "test_secret_keys_refuse_other_lengths", _OBJ + "test_bad_security_values_are_refused",
                  _OBJ + "test_inconsistent_security_instances_are_refused"),
                 (_BSS + "test_a_bootstrap_writes_the_plan_then_finishes", _BSS + "test_plans_are_checked_when_given",
                  _SMSSEC + "test_secret_keys_encode_refuses_what_the_resource_cannot_hold",
                  _BSPOL + "test_a_plan_whose_sms_resource_has_the_wrong_size_is_refused_for_its_size",
                  _BSPOL + "test_a_plan_with_an_allowed_sms_keyset_writes_it_as_given")),
            pick("KIc KID SPI TAR(3), KIc first: the seed's fields add up to 7 octets with a two-octet SPI, the "
                 "resource size wins and the stored SPI is the first octet; the secret keys are the KIc key then "
                 "the KID key, 16 + 16 or 24 + 24; the Security object takes 6 and 32-48 octets as the seed says, "
                 "the binding reads only 32 or 48 (two keys of one size)",
                 "the bootstrap server writes both resources in the Security instance (the client SHALL share KIc "
                 "and KID with it) and refuses a plan whose sizes are wrong, for their size (the Security "
                 "object's definition) before the keyset itself is read")),
        Scr(item(18, "M"), "An SMS not protected with the stored parameters and keys is discarded, and no error "
            "message is sent", "7.3", YES,
            _DISCARDS + pick((_UICC + "test_forged_sms_gets_the_same_answer_as_a_replay",
                              _FLEET + "test_tampered_binding_sms_are_discarded_silently_and_the_device_fails"),
                             (_SMSB + "test_arbitrary_bytes_never_raise_and_never_yield_data",)),
            "a receiver returns a Discarded verdict, counted by reason, and never octets to send back"
            + pick("; on the UICC a forged SMS and a replay get the same bare RP-ACK; in the simulation a device "
                   "whose every SMS-DELIVER is tampered with discards each one (bad_mac or ciphering) and sends "
                   "nothing but its Register and CoAP's resends of it, then fails sms_discarded", "")),
        Scr(item(21, "M"), "Short Server ID: set when Bootstrap-Server is false, 1-65535, the default 0 never used",
            "D.1", YES,
            pick((_OBJ + "test_short_server_id_must_be_set_for_a_server", _OBJ + "test_bad_security_values_are_refused",
                  _OBJ + "test_bad_server_values", _LCL + "test_bootstrap_finish_checks_the_configuration"),
                 (_BSS + "test_plans_are_checked_when_given", _OBJ + "test_short_server_id_must_be_set_for_a_server")),
            pick("checked in each Security and Server instance at Bootstrap-Finish (4.06 otherwise), which also "
                 "needs a Server instance with a Security instance of its Short Server ID",
                 "a plan whose server Security instance has no Short Server ID is refused when given")),
    ]
    if client:
        both += [
            Scr(item(19, "M"), "The Security object is changed only by a bootstrap server and not accessible by any "
                "other server", "D.1", YES,
                (_LCL + "test_dm_server_cannot_change_object_0",
                 _LCL + "test_dm_server_cannot_read_object_0_or_its_secrets",
                 _LCL + "test_register_links_leave_out_object_0",
                 _LCL + "test_bootstrap_write_from_a_dm_server_is_refused",
                 _LCL + "test_bootstrap_write_from_the_bootstrap_server_is_taken",
                 _LSTORE + "test_object_0_is_never_reachable_even_for_a_single_server",
                 _LUNB + "test_a_dm_server_cannot_trigger_unbootstrapping"),
                "a DM server's request on /0 gets 4.04 as if the object did not exist (it is not in the registered "
                "links either) and changes nothing; Bootstrap-Write and -Delete come from the bootstrap channel "
                "only. LwM2M smartcard provisioning, which the seed also allows, is not implemented"),
            Scr(item(20, "M"), "Secret Key and SMS Binding Secret Keys are never readable by any server", "D.1", YES,
                (_LCL + "test_bootstrap_server_cannot_read_even_secrets",
                 _LCL + "test_dm_server_cannot_read_object_0_or_its_secrets", _LCONV,
                 _OBJ + "test_security_object_uses_the_published_numbering_and_is_bootstrap_only",
                 _SMSSEC + "test_secret_keys_resource_is_kic_then_kid"),
                "/0/x/5 and /0/x/8 are never read back: DM servers cannot reach object 0 and the bootstrap server "
                "gets 4.05 on any Read (LwM2M 1.0 has no Bootstrap-Read); the keys stay out of repr"),
            Scr(item(22, "M"), "Unbootstrapping: a Bootstrap-Delete of a Security instance runs D.1.3 steps 1-5",
                "D.1.3", YES,
                (_LUNB + "test_bootstrap_delete_of_a_security_instance_unbootstraps_its_server",
                 _LUNB + "test_with_two_servers_ownership_goes_to_the_other",
                 _LUNB + "test_delete_all_unbootstraps_every_server_and_keeps_the_bootstrap_account",
                 _LSTORE + "test_unbootstrap_follows_d13", _LSTORE + "test_new_owner_has_the_highest_write_plus_delete",
                 _LSTORE + "test_device_instance_survives_step_1",
                 _LSTORE + "test_an_acl_entry_of_a_server_the_client_no_longer_has_cannot_own"),
                "steps 1-4 in ObjectStore.unbootstrap, step 5 the De-register sent when registered; ownership goes "
                "to the highest Write+Delete, a tie to the lowest Short Server ID (the seed: any of them); an "
                "instance no server is left to own is deleted; /3/0 survives step 1"),
        ]
    else:
        both.append(
            Scr(item(8, "M"), "A LwM2M Bootstrap Server supports all three secure bootstrap methods", "7.1", PARTIAL,
                (_DTLS + "test_rpk_mode_authenticates_both_keys_by_pinning",
                 _DTLS + "test_certificate_mode_binds_the_device_identity",
                 _DTLS + "test_low_entropy_client_completes_on_ecdhe_psk",
                 _DTLS + "test_server_accepts_high_entropy_identity_on_the_suite_refused_to_a_low_one",
                 _BSS + "test_a_bootstrap_writes_the_plan_then_finishes", _MIXED, _LOW_BOOTSTRAP, _OVER_REAL_DTLS),
                "DtlsServer serves PSK (high and low entropy), RPK and certificate mode and the BootstrapServer core "
                "takes whichever identity the channel authenticated; the simulated bootstrap server runs whole "
                "bootstraps over DTLS with a high-entropy PSK, a PIN (ECDHE-PSK), a raw public key and a "
                "certificate; partial: RPK is carried in a certificate (S-006), and dmsim lwm2m server (real "
                "sockets) serves PSK only (high and low entropy)"))
    return tuple(sorted(both, key=lambda r: r.item))


TABLE: tuple[Scr, ...] = (
    # --- OMA-TS-DM_Security-V1_3 Appendix B.1: DM Client ------------------------------------
    *_table(SPEC_003, "client",
        Scr("DM-SEC-C-001-M-O", "Client MUST authenticate itself to a Server", "5.4", YES,
            (_MUTUAL, _WRONG_SECRET),
            "Cred (auth-basic/md5/sha256) in every client message; the server refuses a guessed password. "
            "Id and status printed '-M-O' in Appendix B"),
        Scr("DM-SEC-C-002-M", "Client MUST authenticate a Server", "5.4", YES,
            (_WRONG_SECRET, _TLS + "test_x509_wrong_hostname_and_untrusted_ca_fail"),
            "server Cred checked on every message, session ends after a second bad one; over TLS the "
            "X.509 chain and host name are checked"),
        Scr("DM-SEC-C-003-O", "Support for transport layer authentication", "5.3", YES,
            (_TLS + "test_wrong_psk_fails_both_sides", _TLS + "test_x509_wrong_hostname_and_untrusted_ca_fail",
             _OSSL + "test_dmsim_client_against_openssl_s_server", _DM_OVER_TLS),
            "PSK-TLS and X.509 (network/dm/tls.py); DM sessions over real TLS sockets"),
        Scr("DM-SEC-C-004-O", "Support for the different layer authentication", "5.3", YES,
            (_TLS + "test_wrong_psk_fails_both_sides", _MUTUAL),
            "transport (TLS) and application (SyncML Cred) layers; the Requirement cell names the item itself",
            requirement="DM-SEC-C-004-O OR DM-SEC-C-007-O"),
        Scr("DM-SEC-C-005-O", "Send credentials to Server", "5.4", YES, (_MUTUAL,),
            "Cred in every client message (plain HTTP has no session authentication)"),
        Scr("DM-SEC-C-006-O", "Challenge Server", "5.4", YES,
            (_SESSION + "test_stale_server_nonce_is_challenged_by_the_client_and_recovers",),
            "401 with Chal and a new client nonce; one more challenge only (§5.4.3)"),
        Scr("DM-SEC-C-007-O", "Support for application layer authentication", "5.3", YES, (_MUTUAL,) + _HMAC_SESSION,
            "auth-md5 (C-008) and HMAC integrity (C-010)",
            requirement="DM-SEC-C-008-O AND DM-SEC-C-010-O"),
        Scr("DM-SEC-C-008-O", "Support for OMA DM syncml:auth-md5 type authentication", "5.4", YES,
            (_MUTUAL, _SEC + "test_md5_digest_matches_openssl",
             _SEC + "test_digest_check_rejects_wrong_nonce_password_and_scheme"),
            "digest of §5.4.2 checked against openssl; syncml:auth-sha256 also tested"),
        Scr("DM-SEC-C-009-O", "Accept challenges from Server that has not yet been successfully authenticated",
            "5.4", YES, (_STALE_CLIENT,),
            "the client answers a 401 Chal before the server's Cred is checked (a challenge carries none)"),
        Scr("DM-SEC-C-010-O", "Integrity checking using HMAC-SHA256", "5.6", YES,
            _HMAC_VERIFY + (_FULL + "test_client_refuses_a_replayed_server_message",
                            _HREAL + "test_a_tampered_reply_ends_the_client_session",
                            _HMODE + "test_tampering_the_downlink_only_is_caught_by_the_client"),
            "the client checks x-syncml-hmac on every server message (missing/wrong MAC, window, replay)",
            requirement="DM-SEC-C-011-O AND DM-SEC-C-012-O"),
        Scr("DM-SEC-C-011-O", "Inserting HMAC in transport", "5.6.1", YES,
            (_HMAC + "test_build_form_and_round_trip",) + _HMAC_SESSION,
            "x-syncml-hmac HTTP header on every request (simulated links and real sockets)"),
        Scr("DM-SEC-C-012-O", "Using HMAC for all subsequent messages", "5.6.1", YES, _HMAC_SESSION,
            "an account with syncml:auth-hmac-sha256 MACs every message of every session (§5.6.1 names no "
            "switch-over after a Chal; none is made)"),
        Scr("DM-SEC-C-018-O", "Bootstrap Security for Bootstrap via DM Profile", "5.10.2.1", YES,
            (_BOOTSTRAP_TAMPER, _BOOTSTRAP_FLEET, _SWAPPED_BOOTSTRAP),
            "through transport neutral security (C-019); a well-formed bootstrap that is not the one the server "
            "MACed is refused (the engine's byte flips are often refused by the WBXML decoder alone)",
            requirement="DM-SEC-C-019-O OR DM-SEC-C-020-O"),
        Scr("DM-SEC-C-019-O", "Transport neutral security for Bootstrap via DM Profile", "5.10.2.3", YES,
            (_SEC + "test_verify_accepts_good_and_rejects_tampered_body_and_wrong_secret", _BOOTSTRAP_TAMPER,
             _SWAPPED_BOOTSTRAP),
            "HMAC-SHA1 checked before the WBXML body is parsed; a tampered bootstrap is rejected",
            requirement="DM-SEC-C-021-O"),
        Scr("DM-SEC-C-020-O", "Transport layer security for Bootstrap via DM Profile", "5.10.2.1", YES,
            (_CARD + "test_installs_the_authorised_accounts_from_the_card",
             _CARD + "test_the_channel_is_really_secured_at_level_33", _CARD + "test_tampered_apdus_are_refused",
             "tests/cards/test_scp03.py::test_host_refusals"),
            "the smartcard, a secure transport (§5.10.2.2), read through SCP03 at level 33 (seed 001 §8.1, "
            "App. H); a WAP Push bootstrap is protected by its HMAC only, none is sent over TLS"),
        Scr("DM-SEC-C-021-O", "Use of NETWORKID, USERPIN, or USERPIN_NETWORKID when Bootstrapping via DM Profile",
            "5.10.2.3", YES, (_SEC + "test_bootstrap_mac_matches_openssl", _BOOTSTRAP_FLEET),
            "the fleet's profiles use all three"),
        Scr("DM-SEC-C-022-M", "Support of NETWORKID method in Bootstrap via DM Profile", "5.10.2.3.1", YES,
            (_SEC + "test_networkid_key_vector", _SEC + "test_bootstrap_mac_matches_openssl", _BOOTSTRAP_FLEET),
            "IMSI in semi-octet form as the key"),
        Scr("DM-SEC-C-023-M", "Support of USERPIN method in Bootstrap via DM Profile", "5.10.2.3.1", YES,
            (_SEC + "test_verify_accepts_good_and_rejects_tampered_body_and_wrong_secret",
             _SEC + "test_bootstrap_mac_matches_openssl", _BOOTSTRAP_FLEET),
            "the PIN's ASCII octets as the key, checked against openssl; row split over a page break in Appendix B"),
        Scr("DM-SEC-C-024-O", "Support of USERPIN_NETWORKID method in Bootstrap via DM profile", "5.10.2.3.1",
            YES, (_SEC + "test_bootstrap_mac_matches_openssl", _BOOTSTRAP_FLEET)),
    ),
    # --- OMA-TS-DM_Security-V1_3 Appendix B.2: DM Server ------------------------------------
    *_table(SPEC_003, "server",
        Scr("DM-SEC-S-001-M", "Different password for each client", "5.1", YES,
            (_FULL + "test_every_client_gets_its_own_server_password",
             "tests/sim/model/test_fleet.py::test_every_client_and_side_has_its_own_128_bit_password"),
            "one account per device; the fleet draws a random 128-bit client and server password per device "
            "(sim/model/fleet.py)"),
        Scr("DM-SEC-S-002-M", "Support for client authentication at the transport layer", "5.3", YES,
            (_TLS + "test_unknown_identity_fails_and_accounts_added_later_are_found",
             _TLS + "test_wrong_psk_fails_both_sides", _OSSL + "test_openssl_s_client_with_wrong_psk_is_refused",
             _HTTPS + "test_wrong_psk_closes_the_connection_and_the_server_goes_on",
             _MTLS + "test_client_without_certificate_is_refused_with_handshake_failure",
             _MOSSL + "test_openssl_s_client_without_a_certificate_is_refused",
             _MOSSL + "test_openssl_s_client_with_another_cas_certificate_is_refused",
             _MSIM + "test_x509_fleet_completes_with_client_certificates_naming_each_device",
             _MSIM + "test_a_device_presenting_another_devices_certificate_gets_403"),
            "PSK-TLS: the identity selects the device's key and is bound to its device; X.509: the server "
            "requests and verifies a client certificate of the seeded lab CA (network/dm/tls_pki.py) naming "
            "the DevId, and refuses a message from another DevId (403)"),
        Scr("DM-SEC-S-003-M", "Send credentials to client", "5.3", YES, (_MUTUAL, _WRONG_SECRET),
            "server Cred in every reply once the client is authenticated"),
        Scr("DM-SEC-S-004-O", "Challenge Client", "5.3", YES, (_STALE_CLIENT,)),
        Scr("DM-SEC-S-005-O", "Support for clients authentication at the application layer", "5.3", PARTIAL,
            (_MUTUAL, _WRONG_SECRET, _REFUSALS),
            "a guessed password is refused under auth-basic/md5/sha256; S-006 and S-009 yes; S-010 (challenges "
            "from unauthenticated clients) no",
            requirement="DM-SEC-S-006-O AND DM-SEC-S-009-O AND DM-SEC-S-010-O"),
        Scr("DM-SEC-S-006-O", "MD5 challenge to client", "5.3", YES, (_STALE_CLIENT, _REFUSALS),
            "Chal of the account's scheme (syncml:auth-md5 by default) with a new nonce"),
        Scr("DM-SEC-S-007-O", "MD5 challenge to client in conjunction with transport layer security", "5.3", YES,
            (_DM_OVER_TLS, _HTTPS + "test_state_survives_a_restart",
             "tests/sim/real/test_https_challenge.py::test_md5_challenge_over_psk_tls"),
            "over PSK-TLS and X.509 the server still checks the syncml:auth-md5 Cred and sends its Chal "
            "(NextNonce, status 212); over PSK-TLS a stale nonce gets a 401 with an auth-md5 Chal and recovers, "
            "a guessed password is refused"),
        Scr("DM-SEC-S-008-M", "Supply of a new nonce with one more challenge if authentication fails", "5.4.3",
            YES, (_STALE_CLIENT, _WRONG_SECRET, _SESSION + "test_a_failed_credential_gets_a_challenge_with_a_new_nonce"),
            "the 401 carries a nonce other than the failed and the stored one; a second failure ends the session"),
        Scr("DM-SEC-S-009-O", "Using new nonce for each new session", "5.4.3", YES,
            (_SESSION + "test_next_nonce_is_stored_for_the_next_session",),
            "a fresh 16-octet NextNonce with status 212 in every session"),
        Scr("DM-SEC-S-010-O", "Accept challenges from clients that have not yet been successfully authenticated",
            "5.4", NO, (),
            "DmServer answers a client's Chal only in a message whose Cred verified (server.py _step)"),
        Scr("DM-SEC-S-011-O", "Integrity checking using HMAC-SHA256", "5.6.1.2", YES,
            _HMAC_VERIFY + (_FULL + "test_server_refuses_a_replayed_message_but_answers_a_retransmission",
                            _FULL + "test_wrong_client_key_under_hmac_is_refused",
                            _HMODE + "test_replayed_requests_are_refused_and_counted"),
            "the server checks x-syncml-hmac on every request; a refusal is HTTP 401 / a clean close",
            requirement="DM-SEC-S-012-O AND DM-SEC-S-013-O"),
        Scr("DM-SEC-S-012-O", "Inserting HMAC in transport", "5.6.1", YES,
            (_HMAC + "test_build_form_and_round_trip",) + _HMAC_SESSION,
            "x-syncml-hmac header on every reply"),
        Scr("DM-SEC-S-013-O", "Using HMAC for all subsequent messages", "5.6.1", YES, _HMAC_SESSION,
            "every message of an HMAC account's sessions (no switch-over after a Chal is made)"),
        Scr("DM-SEC-S-022-O", "Bootstrap Security for Bootstrap via DM Profile", "5.10.2.1", YES,
            (_BOOTSTRAP_FLEET,), "through transport neutral security (S-023)",
            requirement="DM-SEC-S-023-O OR DM-SEC-S-024-O"),
        Scr("DM-SEC-S-023-O", "Transport neutral security for Bootstrap via DM Profile", "5.10.2.3", YES,
            (_BOOTSTRAP_FLEET, _SEC + "test_content_type_round_trip_and_abnf"),
            "DmServer.bootstrap_message: the HMAC in the Content-Type as ;<key type>;<40 hex> (the §5.10.2.3 "
            "ABNF, not WSP's SEC/MAC parameters), sent by WAP Push over SMS",
            requirement="DM-SEC-S-025-O"),
        Scr("DM-SEC-S-024-O", "Transport layer security for Bootstrap via DM Profile", "5.10.2.1", YES,
            (_BTLS + "test_devices_fetch_the_dm_account_over_psk_tls_and_complete",
             _BTLS + "test_a_device_with_the_wrong_bootstrap_psk_fails_the_handshake",
             _BTLS + "test_a_psk_cannot_fetch_another_devices_account"),
            "bootstrap_via: tls: a bootstrap server delivers the account in a DM session over PSK-TLS keyed "
            "by the device's factory <x>/Auth/Bootstrap (seed 001 §9.3.1.1, §9.3.2; sim/agents/"
            "bootstrap_server.py); X.509 mode and a real bootstrap server are not done"),
        Scr("DM-SEC-S-025-O", "Use of NETWORKID, USERPIN, or USERPIN_NETWORKID when Bootstrapping via DM Profile",
            "5.10.2.3", YES, (_BOOTSTRAP_FLEET, _SEC + "test_bootstrap_mac_matches_openssl"),
            "row split over a page break in Appendix B"),
        Scr("DM-SEC-S-026-M", "Support of NETWORKID method in Bootstrap via DM Profile", "5.10.2.3.1", YES,
            (_BOOTSTRAP_FLEET, _SEC + "test_networkid_key_vector")),
        Scr("DM-SEC-S-027-M", "Support of USERPIN method in Bootstrap via DM Profile", "5.10.2.3.1", YES,
            (_BOOTSTRAP_FLEET, _SEC + "test_bootstrap_mac_matches_openssl")),
        Scr("DM-SEC-S-028-O", "Support of USERPIN_NETWORKID method in Bootstrap via DM profile", "5.10.2.3.1",
            YES, (_BOOTSTRAP_FLEET, _SEC + "test_bootstrap_mac_matches_openssl")),
    ),
    # --- seed 000 Change 4, B.1.1: DM Client (TLS, §9.2) -----------------------------------
    *_table(SEED_000, "client",
        Scr("DM-SEC-C-001-M", "Support for Basic Authentication Schema", "9.2.1", PARTIAL,
            (_MUTUAL, _SEC + "test_basic_vector"), _RFC2617.format("syncml:auth-basic")),
        Scr("DM-SEC-C-002-O", "Digest Authentication Schema", "9.2.1", NO, (),
            "RFC 2617 HTTP Digest is not implemented; the SyncML digests (003 DM-SEC-C-008-O) are"),
        Scr("DM-SEC-C-003-M", "X.509 certificate", "9.2.1", YES,
            (_TLS + "test_x509_ecdsa_p256", _TLS + "test_x509_wrong_hostname_and_untrusted_ca_fail"),
            "the client verifies the server certificate; it presents none (the server never asks)"),
        Scr("DM-SEC-C-004-M", "Support of at least one mode: X509 certificate and PSK-TLS", "9.2.2", YES,
            (_TLS + "test_psk_handshake_each_served_suite", _TLS + "test_x509_ecdsa_p256", _DM_OVER_TLS)),
        Scr("DM-SEC-C-005-O", "Support for TLS1.0", "9.2.2", NO,
            (_TLS + "test_config_refuses_versions_outside_tls_1_1_and_1_2",),
            "refused on purpose: TLS 1.1 and 1.2 only"),
        Scr("DM-SEC-C-006-O", "Support for SSL 3.0", "9.2.2", NO, (_TLS + "test_client_checks_server_version_itself",),
            "refused on purpose (RFC 7568); the Requirement cell names DM-SEC-C-0007-O as printed",
            requirement="DM-SEC-C-0007-O"),
        Scr("DM-SEC-C-007-O", "Support of at least one Cipher Suite, when using SSL3.0: SSL_RSA_WITH_RC4_128_SHA and "
            "SSL_RSA_WITH_3DES_EDE_CBC_SHA", "9.2.2", NO, (_TLS + "test_client_refuses_a_suite_it_did_not_offer",),
            "neither suite is offered; a ServerHello choosing RC4 is refused"),
        Scr("DM-SEC-C-008-M", "Support of TLS1.1", "9.2.2", YES,
            (_TLS + "test_tls_1_1_runs_the_psk_cbc_suites_only",),
            "PSK-TLS with the four CBC suites; the seed's X.509 and GCM suites exist only from TLS 1.2"),
        Scr("DM-SEC-C-009-O", "Support of TLS1.2", "9.2.2", YES,
            (_TLS + "test_psk_handshake_each_served_suite", _OSSL + "test_dmsim_client_against_openssl_s_server")),
        Scr("DM-SEC-C-010-O", "Support of PSK-TLS mode", "9.2.2", YES, (_TLS + "test_psk_handshake_each_served_suite",),
            requirement="DM-SEC-C-011-O"),
        Scr("DM-SEC-C-011-O", "Support of at least one Cipher Suite, when using PSK-TLS: the seven seed PSK suites",
            "9.2.2", YES,
            (_TLS + "test_server_lists_leave_out_dhe_and_clients_offer_every_seed_suite",
             _TLS + "test_psk_handshake_each_served_suite", _OSSL + "test_dmsim_client_against_openssl_s_server"),
            "the client offers all seven; DHE_PSK completes against openssl s_server"),
        Scr("DM-SEC-C-012-O", "Support of X.509 mode", "9.2.2", YES,
            (_TLS + "test_x509_ecdsa_p256", _TLS + "test_x509_rsa_2048"), requirement="DM-SEC-C-013-O"),
        Scr("DM-SEC-C-013-O", "Support of at least one Cipher Suite, when using X.509 mode: the six seed X.509 suites",
            "9.2.2", YES, (_TLS + "test_x509_ecdsa_p256", _TLS + "test_x509_rsa_2048"),
            "ECDHE_ECDSA (P-256) and RSA suites tested; ECC keys below 256 bits refused"),
        Scr("DM-SEC-C-014-M", "Check that the Server is using TLS1.0 or TLS1.1 or SSL3.0 or TLS1.2", "9.2.2", YES,
            (_TLS + "test_client_checks_server_version_itself",),
            "the client reads the ServerHello version itself; only TLS 1.1/1.2 accepted"),
    ),
    # --- seed 000 Change 4, B.2.1: DM Server (TLS, §9.2) -----------------------------------
    *_table(SEED_000, "server",
        Scr("DM-SEC-S-001-M", "Support for Basic Authentication Schema", "9.2.1", PARTIAL,
            (_MUTUAL, _REFUSALS + "[syncml:auth-basic]"),
            _RFC2617.format("syncml:auth-basic")),
        Scr("DM-SEC-S-002-M", "Digest Authentication Schema", "9.2.1", NO, (),
            "RFC 2617 HTTP Digest is not implemented; the SyncML digests (003 DM-SEC-S-006-O) are"),
        Scr("DM-SEC-S-003-M", "X.509 certificate", "9.2.1", YES,
            (_TLS + "test_x509_ecdsa_p256", _TLS + "test_x509_rsa_2048", _TLS + "test_server_config_refuses_p192_key"),
            "the server presents its certificate, and in X.509 mode requests the client's (DM-SEC-S-002-M)"),
        Scr("DM-SEC-C-004-M", "Support of X.509 Certificate Mode and PSK-TLS mode", "9.2.2", YES,
            (_TLS + "test_psk_handshake_each_served_suite", _TLS + "test_x509_ecdsa_p256",
             _OSSL + "test_openssl_s_client_against_dmsim_server", _DM_OVER_TLS),
            "printed as DM-SEC-C-004-M in the server table; dmsim server --https serves both"),
        Scr("DM-SEC-S-001-O", "Support for TLS1.0", "9.2.2", NO,
            (_TLS + "test_server_refuses_tls_1_0_client",
             _OSSL + "test_openssl_s_client_tls_1_0_gets_protocol_version_alert"),
            "refused on purpose with a protocol_version alert"),
        Scr("DM-SEC-S-002-O", "Support for SSL 3.0", "9.2.2", NO, (_OSSL + "test_openssl_s_client_ssl3_fails",),
            "refused on purpose; the Requirement cell names DM-SEC-S-0003-O as printed",
            requirement="DM-SEC-S-0003-O"),
        Scr("DM-SEC-S-003-O", "Supporting these Cipher Suites: SSL_RSA_WITH_RC4_128_SHA and "
            "SSL_RSA_WITH_3DES_EDE_CBC_SHA", "9.2.2", NO,
            (_TLS + "test_seed_tables_are_the_seed_lists_and_mbedtls_has_every_suite",), "neither suite is served"),
        Scr("DM-SEC-S-004-M", "Support for TLS1.1", "9.2.2", YES,
            (_TLS + "test_tls_1_1_runs_the_psk_cbc_suites_only", _OSSL + "test_openssl_s_client_against_dmsim_server"),
            "PSK-TLS CBC suites; X.509 mode is TLS 1.2 only (its suites need TLS 1.2)"),
        Scr("DM-SEC-S-007-O", "Support for TLS1.2", "9.2.2", YES,
            (_TLS + "test_psk_handshake_each_served_suite", _OSSL + "test_openssl_s_client_against_dmsim_server")),
        Scr("DM-SEC-S-005-M", "Support for PSK-TLS mode", "9.2.2", YES,
            (_TLS + "test_psk_handshake_each_served_suite", _TLS + "test_psk_server_without_certificate_picks_plain_psk")),
        Scr("DM-SEC-S-006-M", "Support of these Cipher Suites when using PSK-TLS mode: the seven seed PSK suites",
            "9.2.2", PARTIAL,
            (_TLS + "test_psk_handshake_each_served_suite", _TLS + "test_mbedtls_server_cannot_run_dhe_psk_library_limit"),
            "PSK, RSA_PSK and ECDHE_PSK served; the two DHE_PSK suites are not: python-mbedtls loads no DH "
            "parameters into a server, and neither Python 3.11's ssl (PSK callbacks from 3.13) nor pyOpenSSL (no "
            "PSK API) can serve them (network/dm/tls_suites.py)"),
        Scr("DM-SEC-S-012-M", "Support of X.509 mode", "9.2.2", YES,
            (_TLS + "test_x509_ecdsa_p256", _TLS + "test_x509_rsa_2048")),
        Scr("DM-SEC-S-013-M", "Support of these Cipher Suites when using X.509 mode: the six seed X.509 suites",
            "9.2.2", YES, (_TLS + "test_x509_ecdsa_p256", _TLS + "test_x509_rsa_2048",
                           "tests/network/test_tls_dhe_openssl.py::test_openssl_s_client_in_a_dhe_rsa_suite_with_a_lab_certificate",
                           "tests/sim/links/test_tls_dhe_transport.py::test_a_dhe_rsa_fleet_completes_with_bound_client_certificates"),
            "ECDHE_ECDSA and RSA suites by mbedtls; the two DHE_RSA suites by the standard library's ssl "
            "(network/dm/tls_dhe.py: python-mbedtls loads no DH parameters), chosen from the ClientHello"),
    ),
    # --- seed 002 (message security): dmsim's rows, no SCR table in the CR -------------------
    *_table(SEED_002, "client", *_seed_002("C", "server")),
    *_table(SEED_002, "server", *_seed_002("S", "client")),
    *_table(SPEC_GBA, "client", *_gba("C")),
    *_table(SPEC_GBA, "server", *_gba("S")),
    # --- seed 004 (LwM2M channel security): dmsim's rows, no SCR table in the CR -------------
    *_table(SEED_004, "client", *_seed_004("C")),
    *_table(SEED_004, "server", *_seed_004("S")),
)


def rows(side: str | None = None, table: tuple[Scr, ...] = TABLE, source: str | None = None) -> list[Scr]:
    """Return the rows of ``table`` in spec order: all, or those of ``side`` ("client"/"server")
    and of ``source`` (e.g. "seed 004")."""
    return [r for r in table if (side is None or r.side == side) and (source is None or r.source == source)]


# --- checks ----------------------------------------------------------------------------------

def default_root() -> Path:
    """Return the checkout whose ``tests/`` the evidence names: this one, else the working folder."""
    here = Path(__file__).resolve().parents[1]
    return here if (here / "tests").is_dir() else Path.cwd()


@lru_cache(maxsize=None)
def _tests_in(path: Path, mtime: float) -> frozenset[str] | str:
    """Return the test names of a file (``name`` and ``Class::name``) or why it cannot be read."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, UnicodeDecodeError, SyntaxError) as exc:
        return f"cannot parse {path.name}: {exc}"
    funcs = (ast.FunctionDef, ast.AsyncFunctionDef)
    names = {n.name for n in tree.body if isinstance(n, funcs) and n.name.startswith("test")}
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef) and n.name.startswith("Test")):
        names |= {f"{cls.name}::{n.name}" for n in cls.body if isinstance(n, funcs) and n.name.startswith("test")}
    return frozenset(names)


def evidence_problem(node_id: str, root: Path) -> str | None:
    """Return why pytest node id ``node_id`` does not name a test under ``root``, or None if it does.

    The test is found by parsing its file (no import, no collection); a ``[param]`` suffix is
    not checked.
    """
    file_part, sep, name = node_id.partition("::")
    if not sep or not file_part.endswith(".py") or not name:
        return "not a node id of the form tests/...py::test_name"
    path = root / file_part
    if not path.is_file():
        return f"no file {file_part}"
    found = _tests_in(path, path.stat().st_mtime)
    if isinstance(found, str):
        return found
    if name.split("[", 1)[0] not in found:
        return f"no test {name.split('[', 1)[0]} in {file_part}"
    return None


def requirement_problems(table: tuple[Scr, ...] = TABLE) -> list[str]:
    """Return the ``yes`` rows whose Requirement column is not met by the table's own rows."""
    problems = []
    for row in table:
        if row.supported != YES or not row.requirement:
            continue
        named = re.findall(r"DM-SEC-[A-Z]-\d+(?:-[MO])+", row.requirement)
        peers = {r.item: r.supported for r in table if r.source == row.source}
        known = [n for n in named if n in peers]
        if not known:
            continue  # a Requirement naming only misprinted items cannot be evaluated
        met = [n == row.item or peers[n] == YES for n in known]
        ok = any(met) if " OR " in row.requirement else all(met)
        if not ok:
            problems.append(f"{row.source} {row.item}: marked yes but its requirement "
                            f"{row.requirement!r} is not met")
    return problems


def check(table: tuple[Scr, ...] = TABLE, root: Path | None = None) -> list[str]:
    """Return every problem of ``table``: a ``yes`` without evidence, an evidence node id that names
    no test under ``root``, a ``yes`` whose Requirement is not met. Empty when all is well."""
    root = default_root() if root is None else root
    problems = []
    for row in table:
        if row.supported not in (YES, PARTIAL, NO):
            problems.append(f"{row.source} {row.item}: supported {row.supported!r} is not yes/partial/no")
        if row.supported == YES and not row.evidence:
            problems.append(f"{row.source} {row.item}: marked yes without evidence")
        for node_id in row.evidence:
            why = evidence_problem(node_id, root)
            if why:
                problems.append(f"{row.source} {row.item}: {node_id}: {why}")
    return problems + requirement_problems(table)


# --- output ----------------------------------------------------------------------------------

_TITLES = {SPEC_003: "OMA-TS-DM_Security-V1_3 Appendix B", SEED_000: "seed 000 (CR Security for DM Session, §9.2) SCR",
           SEED_002: "seed 002 (CR Message Security, §5.3-§5.5, §5.9): dmsim's rows, the CR has no SCR table",
           SPEC_GBA: "OMA-TS-DM_Security-V1_3 §5.10.2.4 (3GPP_GBA) and Appendix C: dmsim's rows, Appendix B has none",
           SEED_004: "seed 004 (CR LwM2M channel security, §7.1, §7.3, D.1): dmsim's rows, the CR has no SCR table"}


def format_table(selected: list[Scr]) -> str:
    """Return the readable table: aligned columns, then each row's evidence and note indented."""
    head = ("ITEM", "SIDE", "M/O", "SUPPORTED", "REF", "FUNCTION")
    cells = [(r.item, r.side, r.status, r.supported, "§" + r.reference, r.description) for r in selected]
    widths = [max(len(c[i]) for c in cells + [head]) for i in range(5)]
    line = lambda c: "  ".join(f"{v:<{w}}" for v, w in zip(c, widths)) + "  " + c[5]  # noqa: E731
    from dmsim.sim.cli.knockouts import ROWS as knockout_of
    out, source = [], None
    for row, c in zip(selected, cells):
        if row.source != source:
            source = row.source
            out += ([""] if out else []) + [f"# {_TITLES.get(source, source)}", line(head)]
        out.append(line(c))
        pad = " " * 4
        out += [f"{pad}{'evidence: ' if i == 0 else ' ' * 10}{e}" for i, e in enumerate(row.evidence)]
        if row.requirement:
            out.append(f"{pad}requires: {row.requirement}")
        if (row.source, row.side, row.item) in knockout_of:
            out.append(f"{pad}knockout: {knockout_of[row.source, row.side, row.item]}")
        if row.note:
            out.append(f"{pad}note: {row.note}")
    counts = {s: sum(r.supported == s for r in selected) for s in (YES, PARTIAL, NO)}
    out += ["", f"{len(selected)} items: " + ", ".join(f"{n} {s}" for s, n in counts.items())]
    return "\n".join(out)


@click.command("conformance")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of objects, one per item.")
@click.option("--side", type=click.Choice(["client", "server"]),
              help="Only the client (DM or LwM2M) or the server items.")
@click.option("--check", "do_check", is_flag=True,
              help="Verify every evidence node id names a test (exit 1 listing those that do not).")
@click.option("--knockouts", "do_knockouts", is_flag=True,
              help="With --check (implied): also run each yes/partial row's cited tests twice, as they are "
                   "(they must pass) and with the row's knockout switching its mechanism off (one must fail; "
                   "if all still pass the row overclaims). Exit 1 on an overclaiming row, a failing baseline, or "
                   "a yes row without a knockout. Runs pytest, one process per row (1.5-2.5 minutes on 2 cores).")
@click.option("--jobs", type=click.IntRange(min=1), default=None,
              help="With --knockouts: pytest processes run at once (default: the number of CPUs).")
@click.option("--source", type=click.Choice(list(dict.fromkeys(r.source for r in TABLE))),
              help="Only the rows of one source (e.g. 'seed 004'); with --knockouts, only theirs are run.")
@click.option("--root", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Checkout whose tests/ the evidence names (default: this one).")
def conformance(as_json: bool, side: str | None, do_check: bool, do_knockouts: bool, jobs: int | None,
                source: str | None, root: Path | None) -> None:
    """Print the SCR items of OMA-TS-DM_Security Appendix B and seed 000, and dmsim's own rows for seeds 002 and 004
    (LwM2M) and §5.10.2.4: supported or not, and the test that shows it.

    \b
    dmsim conformance --check               cited tests exist, Requirement columns hold
    dmsim conformance --check --knockouts   and each row's tests fail when its mechanism is knocked out
                                            (the knockouts: sim/cli/knockouts.py)
    dmsim conformance --source "seed 004" --check --knockouts
                                            the same for one source's rows only
    """
    selected = rows(side, source=source)
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in selected], indent=1))
    else:
        click.echo(format_table(selected))
    if do_check or do_knockouts:
        problems = check(tuple(selected), root)
        for p in problems:
            click.echo(f"check: {p}", err=True)
        n = sum(len(r.evidence) for r in selected)
        if problems:
            click.echo(f"check: {len(problems)} problem(s)", err=True)
            sys.exit(1)
        click.echo(f"check: ok ({n} evidence node ids found)", err=True)
    if do_knockouts:
        run_knockout_check(tuple(selected), default_root() if root is None else root, jobs)


def run_knockout_check(selected: tuple[Scr, ...], root: Path, jobs: int | None) -> None:
    """Run :func:`knockout_check.check_knockouts` on ``selected``, print one line per row and a
    summary on stderr, exit 1 on a problem."""
    import time

    from dmsim.sim.cli import knockout_check as kc
    start = time.monotonic()
    results = kc.check_knockouts(selected, root, jobs=jobs)
    for line in kc.format_results(results):
        click.echo(f"knockouts: {line}", err=True)
    problems = [r for r in results if r.problem]
    counts = {s: sum(r.status == s for r in results) for s in (kc.SHOWN, kc.OVERCLAIMS, kc.UNCHECKED, kc.BASELINE,
                                                                 kc.ERROR)}
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    took = f"{time.monotonic() - start:.0f} s"
    if problems:
        click.echo(f"knockouts: {len(problems)} problem(s) in {len(results)} rows ({summary}; {took})", err=True)
        sys.exit(1)
    click.echo(f"knockouts: ok ({len(results)} rows: {summary}; {took})", err=True)
