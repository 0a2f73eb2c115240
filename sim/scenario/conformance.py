"""Which rules of the DM security specs a scenario's deployment breaks, named so that a run never
passes a non-conformant set-up off as a conformant one.

Attack rehearsal needs weak deployments, so nothing here refuses a scenario: the notes are shown
by ``dmsim scenario check`` and ``dmsim run``, and written to ``summary.json`` (``conformance``).

Rules checked (OMA-TS-DM_Security-V1_3 §5.3; seed 002 §5.3, the same rule for every transport):
when the transport gives no integrity (plain HTTP: no TLS), transport-neutral integrity MUST be
used; for DM 1.3 that is ``syncml:auth-hmac-sha256`` (``dm_auth: hmac``, §5.6.1), and seed 002
§5.4 adds HMAC-MD5 and XML-Signature (``message_security: hmac-md5``, ``xmldsig``, or ``xmlenc``,
which signs after it encrypts). A profile with ``auth-md5``/``auth-sha256``/``auth-basic`` and no
message security over plain HTTP authenticates each message but does not protect its body.
(§5.5 confidentiality is a SHOULD and is not reported; ``xmlenc`` keeps the SyncHdr, and so a
Basic Cred, in clear.) ``auth-basic`` over plain HTTP also sends the password in clear (§5.4.1 gives
Basic no protection of its own), which is named separately.

A DM server reached over a socket counts as protected when its URL is ``https://``.

OMA-TS-DM_Security §5.4 (DM-SEC-S-002-M): the server MUST request client authentication at the
transport layer; the simulated server in X.509 mode with ``tls.client_cert: false`` does not, which
is named (in PSK-TLS mode the PSK authenticates the client).

LwM2M profiles (``device: lwm2m``, seed 004) are outside the DM rules above: their channel is DTLS
or the SMS binding's secured packets, which dmsim always applies. What is named is a server account
in NoSec mode over UDP (``lwm2m.security_mode: nosec``): registration and device management then run
without any channel security (seed 004 §7.1).
"""
from __future__ import annotations

RULE_INTEGRITY = "OMA-TS-DM_Security §5.3 (seed 002 §5.3): transport-neutral integrity MUST be used when the transport gives none"
RULE_CLIENT_CERT = "OMA-TS-DM_Security §5.4 (DM-SEC-S-002-M): the DM server MUST request client authentication at the transport layer"
RULE_LWM2M_NOSEC = ("seed 004 §7.1: DTLS secures the UDP channel; NoSec leaves the LwM2M server account's registration "
                    "and device management without authentication, integrity or confidentiality")
RULE_BASIC_CLEAR = "OMA-TS-DM_Security §5.4.1: auth-basic over a transport without confidentiality sends the password in clear"


def transport_protected(data: dict) -> bool:
    """Return whether the scenario's DM sessions run inside TLS (simulated or a real https:// server)."""
    dm = data["components"]["dm_server"]
    if dm["kind"] == "socket":
        return str(dm.get("url", "")).startswith("https://")
    return ((dm.get("tls") or {}).get("mode") or "none") != "none"


def nonconformities(data: dict) -> list[str]:
    """Return one line per profile and broken rule, naming the profile, the rule and the fix."""
    out = [f"profile {p['name']}: lwm2m.security_mode nosec breaks {RULE_LWM2M_NOSEC} (use psk, rpk or certificate)"
           for p in data["fleet"]["profiles"] if (p.get("lwm2m") or {}).get("security_mode") == "nosec"
           and (p["lwm2m"].get("binding") or "U") == "U"]
    tls = data["components"]["dm_server"].get("tls") or {}
    if tls.get("mode") == "x509" and tls.get("client_cert") is False:
        return out + [f"components.dm_server.tls.client_cert false breaks {RULE_CLIENT_CERT} (set it true)"]
    if transport_protected(data):
        return out
    for profile in data["fleet"]["profiles"]:
        if profile.get("device", "dm") != "dm":
            continue  # the rules of DM sessions; an LwM2M device's channel is DTLS or the SMS binding's secured packets
        auth = profile.get("dm_auth", "md5")
        if auth != "hmac" and profile.get("message_security", "none") == "none":
            out.append(f"profile {profile['name']}: dm_auth {auth} over plain HTTP breaks {RULE_INTEGRITY} "
                       "(use dm_auth: hmac, message_security: hmac-md5, xmldsig or xmlenc, "
                       "or components.dm_server.tls.mode psk or x509)")
        if auth == "basic":
            out.append(f"profile {profile['name']}: {RULE_BASIC_CLEAR}")
    return out
