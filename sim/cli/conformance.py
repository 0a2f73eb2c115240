"""``dmsim conformance``: the static conformance requirements (SCR) of OMA DM security and, for
each, whether dmsim supports it and the test that shows it.

Sources, in the order printed:

* OMA-TS-DM_Security-V1_3 Appendix B (B.1 DM Client, B.2 DM Server), ``source`` ``"003"``;
* seed 000, the CR "Security for DM Session" (§9.2, TLS), whose Change 4 adds its own SCR tables
  B.1.1/B.2.1, ``source`` ``"seed 000"``. Its item ids reuse numbers of Appendix B with other
  meanings (e.g. DM-SEC-C-005-O), so a row is identified by (source, side, item), never by the
  item alone. Seeds 001 and 004 change clause text but add or change no SCR item;
* seed 002, the CR on message security (§5.3-§5.5, §5.9), ``source`` ``"seed 002"``. It has no
  SCR table either; its rows are dmsim's own, one per mechanism and side, named
  ``SEED-002-<C|S>-<n>-<M|O>`` (M where the CR's §2 says "support will be required": §5.4 and
  §5.5; O for §5.9, which leaves the technique open), so that the mechanisms it adds are listed
  with their tests like the SCR items;
* 003 §5.10.2.4 (3GPP_GBA) and Appendix C, ``source`` ``"003 §5.10.2.4"``: Appendix B has no item
  for the GBA Push bootstrap, so its rows are dmsim's own too, ``GBA-PUSH-<C|S>-<n>-O``.

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
)


def rows(side: str | None = None, table: tuple[Scr, ...] = TABLE) -> list[Scr]:
    """Return the rows of ``table`` (all, or those of ``side`` "client"/"server") in spec order."""
    return [r for r in table if side is None or r.side == side]


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
           SPEC_GBA: "OMA-TS-DM_Security-V1_3 §5.10.2.4 (3GPP_GBA) and Appendix C: dmsim's rows, Appendix B has none"}


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
@click.option("--side", type=click.Choice(["client", "server"]), help="Only the DM Client or the DM Server items.")
@click.option("--check", "do_check", is_flag=True,
              help="Verify every evidence node id names a test (exit 1 listing those that do not).")
@click.option("--knockouts", "do_knockouts", is_flag=True,
              help="With --check (implied): also run each yes/partial row's cited tests twice, as they are "
                   "(they must pass) and with the row's knockout switching its mechanism off (one must fail; "
                   "if all still pass the row overclaims). Exit 1 on an overclaiming row, a failing baseline, or "
                   "a yes row without a knockout. Runs pytest, one process per row (1.5-2.5 minutes on 2 cores).")
@click.option("--jobs", type=click.IntRange(min=1), default=None,
              help="With --knockouts: pytest processes run at once (default: the number of CPUs).")
@click.option("--root", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Checkout whose tests/ the evidence names (default: this one).")
def conformance(as_json: bool, side: str | None, do_check: bool, do_knockouts: bool, jobs: int | None,
                root: Path | None) -> None:
    """Print the SCR items of OMA-TS-DM_Security Appendix B and seed 000: supported or not, and the test that shows it.

    \b
    dmsim conformance --check               cited tests exist, Requirement columns hold
    dmsim conformance --check --knockouts   and each row's tests fail when its mechanism is knocked out
                                            (the knockouts: sim/cli/knockouts.py)
    """
    selected = rows(side)
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
