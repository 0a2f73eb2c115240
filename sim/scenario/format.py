"""dmsim's scenario format: the schema, the YAML loader with ``--set`` overrides, and sweeps.

A scenario says how many devices bootstrap (OMA-TS-DM_Security 1.3 §5.10: NETWORKID, USERPIN
or USERPIN_NETWORKID over SMS, or from the smartcard over SCP03) and open DM sessions (§5.4
syncml:auth-md5 or auth-basic, §5.6.1 auth-hmac-sha256; started by the device or by a package
#0), how they arrive, how the SMS and IP links delay, lose, duplicate and reorder messages, what
an adversary's tap does to them, the DM server's capacity, the store-and-forward SMSC and an OTA
campaign through it, and which components are real: the DM server (HTTP, HTTPS-PSK), the card
(PC/SC), an SMS application (SMPP), TLS on the simulated links. All durations are simulated
seconds.
``describe_schema()`` prints the whole format with defaults.

Choices the brief left open: a link's delay default is per link (SMS lognormal, IP exponential)
even when the link is written without a ``delay``; a sweep replaces one numeric key, its values
are checked against that key's type, and each point keeps every other key as loaded.
"""
from __future__ import annotations

import copy
import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dmsim.base.errors import ScenarioError
from dmsim.network.dm.message_security import CHOICES as MESSAGE_SECURITY
from dmsim.sim.agents.adversary.catalogue import POSITIONS, check_spec
from dmsim.sim.agents.device.lwm2m_device import LWM2M_PROFILE, lwm2m_spec
from dmsim.sim.agents.lwm2m_servers import LWM2M_SCHEMA
from dmsim.sim.agents.smsc import SMSC_SCHEMA
from dmsim.sim.model.sampled import check_fidelity
from dmsim.sim.model.shards import check_shards
from dmsim.sim.model.registry import DEFAULT_DEVICE, DEVICE_AGENTS
from dmsim.base.schema import (REQUIRED, Bool, Derived, Field, Float, Int, List, Locator, Nullable, Probability,
                              Problem, Raw, Seconds, Str, Struct, Tagged, Tuple, Type, describe, dotted, is_numeric,
                              load_yaml, read_text, set_path, split_path, type_at, validate)

# -- delay models and taps ---------------------------------------------------------------------


def _quantile_table_rule(rows: list[list[float]]) -> Problem | None:
    """Return the first offending [p, s] pair of an empirical table, if any."""
    need = "p from 0.0 to 1.0, strictly increasing; s never decreasing"
    if rows[0][0] != 0.0:
        return Problem((0, 0), f"the first pair must have p = 0.0, not {rows[0][0]}", need)
    for i in range(1, len(rows)):
        (p0, s0), (p1, s1) = rows[i - 1], rows[i]
        if p1 <= p0:
            return Problem((i, 0), f"p = {p1} is not above the previous pair's p = {p0}", need)
        if s1 < s0:
            return Problem((i, 1), f"s = {s1} is below the previous pair's s = {s0}", need)
    if rows[-1][0] != 1.0:
        return Problem((len(rows) - 1, 0), f"the last pair must have p = 1.0, not {rows[-1][0]}", need)
    return None


DELAY = Tagged(name="DELAY", doc="A random delay in seconds, drawn independently for each message.", variants={
    "fixed": Struct({"value": Field(Seconds(), REQUIRED, "The delay.")}, doc="Always the same delay."),
    "exponential": Struct({"mean": Field(Seconds(positive=True), REQUIRED, "Mean delay.")},
                          doc="Exponentially distributed (memoryless)."),
    "lognormal": Struct({
        "median": Field(Seconds(positive=True), REQUIRED, "Median delay, exp(mu)."),
        "sigma": Field(Float(0.0, min_exclusive=True), REQUIRED, "Standard deviation of the log of the delay."),
    }, doc="Log-normally distributed: a long right tail, as measured SMS delivery delays have."),
    "empirical": Struct({
        "quantiles": Field(List(Tuple((Probability(), Seconds()), names=("p", "s")), min_len=2,
                                rule=_quantile_table_rule), REQUIRED,
                           "The quantile function as [p, s] pairs: P(delay <= s) = p, interpolated "
                           "linearly; p goes from 0.0 to 1.0 strictly increasing, s never decreases."),
    }, doc="Drawn from a measured quantile table."),
})


# The kinds of message on the simulated links (sim/links/tap.py ``match``): over links.sms the DM
# server's pushes are "bootstrap" (bootstraps, packages #0, GBA Push Infos) without an SMSC, and
# "sms-deliver"/"sms-status-report" from an SMSC, which gets "sms-submit" and sends "rp-answer";
# over links.ip DM sessions are "dm" (HTTP, or the TLS records) and GBA bootstrapping "ub"; the
# gba.zpn and gba.naf_link links carry "request" and "answer"; LwM2M devices' DTLS records are "dtls" on links.ip
# ("coap" with Security Mode NoSec).
MESSAGE_KINDS = ("bootstrap", "sms-deliver", "sms-status-report", "sms-submit", "rp-answer", "dm", "ub",
                 "request", "answer", "dtls", "coap")


def _acting(fields: dict[str, Field] | None = None, doc: str = "") -> Struct:
    """Return a tap variant acting on each message with some probability (only on messages of kind
    ``match``, when given), plus ``fields``."""
    return Struct({"probability": Field(Probability(), REQUIRED, "Chance that a given message is acted on."),
                   "match": Field(Nullable(Str(choices=MESSAGE_KINDS)), None,
                                  "Only messages of this kind (bootstrap, sms-deliver and the SMSC's other kinds "
                                  "on links.sms with an smsc; dm, ub on links.ip); null: all."),
                   **(fields or {})}, doc=doc)


TAP = Tagged(name="TAP", doc="An adversary on the link, seeing every message that passes.", variants={
    "none": Struct({}, doc="No adversary."),
    "observe": Struct({"limit": Field(Int(1), 10000, "How many of the latest messages its log keeps.")},
                      doc="Records every message, changes nothing."),
    "drop": _acting(doc="Drops messages."),
    "delay": _acting({"extra": Field(DELAY, REQUIRED, "Delay added to an affected message.")},
                     doc="Holds messages back."),
    "replay": _acting({"after": Field(DELAY, REQUIRED, "When the copy is sent again, after the original.")},
                      doc="Delivers the message and later a copy of it again."),
    "tamper": _acting(doc="Flips bits in messages (a bootstrap's MAC must then fail to verify)."),
})


def _link(delay_default: dict, what: str) -> Struct:
    """Return the schema of one link whose delay defaults to ``delay_default``."""
    return Struct({
        "delay": Field(DELAY, delay_default, "Transit delay of each message."),
        "loss": Field(Probability(), 0.0, "Chance that a message is lost."),
        "duplicate": Field(Probability(), 0.0, "Chance that a message is delivered twice."),
        "reorder": Field(Probability(), 0.0, "Chance that a message is held back by reorder_delay, so that "
                                             "later ones overtake it."),
        "reorder_delay": Field(DELAY, {"kind": "exponential", "mean": 1.0}, "Extra delay of a reordered message."),
        "bandwidth": Field(Nullable(Float(0.0, min_exclusive=True)), None,
                           "Bytes per second through the link, shared by all messages (null: unlimited)."),
        "queue_limit": Field(Nullable(Int(1)), None,
                             "Messages waiting for bandwidth beyond this are dropped (null: no limit)."),
        "tap": Field(TAP, {"kind": "none"}, "An adversary on this link."),
    }, doc=what)


def _component(doc: str, **more: Struct) -> Tagged:
    """Return a component choice: ``virtual`` (in-process) plus the given other kinds."""
    return Tagged({"virtual": Struct({}, doc="Simulated in-process."), **more}, doc=doc)


def _tls_suite_rule(tls: dict) -> Problem | None:
    """Return a problem when ``suite`` is not one the simulated server runs in ``mode``."""
    if tls["suite"] is None:
        return None
    from dmsim.sim.links.transports import TLS_SUITES  # here: mbedtls loads only for a scenario naming a suite
    if tls["suite"] not in TLS_SUITES.get(tls["mode"], ()):
        return Problem(("suite",), f"suite {tls['suite']} is not run in mode {tls['mode']}",
                       "for psk: " + ", ".join(TLS_SUITES["psk"]) + "; for x509: " + ", ".join(TLS_SUITES["x509"]))
    return None


_DM_TLS = Struct({
    "mode": Field(Str(choices=("none", "psk", "x509")), "none",
                  "none: plain HTTP; psk: PSK-TLS with a fresh PSK per device carried in the bootstrap "
                  "(<x>/Auth/Trsp); x509: ECDSA P-256 certificates from a lab CA derived from the seed."),
    "suite": Field(Nullable(Str()), None, "Offer only this seed cipher suite (IANA name); null: all of the mode."),
    "rto": Field(Seconds(positive=True), 1.0, "TCP retransmission timeout of a lost TLS flight (doubles each time)."),
    "client_cert": Field(Bool(), True,
                         "x509 only: the server requests and requires a client certificate (OMA-TS-DM_Security "
                         "§5.4, DM-SEC-S-002-M); a seeded lab CA issues the server's and each device's (CN/SAN = "
                         "DevId), and a request whose DevId is not the certificate's gets 403. false: server-only "
                         "authentication."),
}, rule=_tls_suite_rule, doc="TLS records carried as messages on the ip links (the real handshake, in memory).")


# -- the scenario ------------------------------------------------------------------------------

def _unique_profile_names(profiles: list[dict]) -> Problem | None:
    """Return the first profile whose name was used before, if any."""
    seen: dict[str, int] = {}
    for i, p in enumerate(profiles):
        if p["name"] in seen:
            return Problem((i, "name"), f"profile name {p['name']!r} is already used by item {seen[p['name']]}",
                           "a different name per profile")
        seen[p["name"]] = i
    return None


def _message_security_rule(profile: dict) -> Problem | None:
    """Return a problem when hmac-md5 would share the x-syncml-hmac header with dm_auth hmac."""
    if profile["message_security"] == "hmac-md5" and profile["dm_auth"] == "hmac":
        return Problem(("message_security",), "hmac-md5 needs the x-syncml-hmac header that dm_auth hmac uses",
                       "xmldsig or xmlenc with dm_auth hmac, or dm_auth md5/basic")
    return None


PROFILE = Struct({
    "name": Field(Str(pattern=r"\S", noun="a non-empty string"), REQUIRED, "Names the profile in results."),
    "device": Field(Str(choices=tuple(DEVICE_AGENTS)), DEFAULT_DEVICE,
                    "The kind of device, an agent of sim/model/registry.py DEVICE_AGENTS: dm, an OMA DM client "
                    "with its UICC and modem; lwm2m, an OMA LwM2M client (its lwm2m keys)."),
    "weight": Field(Float(0.0, min_exclusive=True), 1.0, "Relative share of the fleet (weights need not sum to 1)."),
    "bootstrap_security": Field(Str(choices=("NETWORKID", "USERPIN", "USERPIN_NETWORKID")), "NETWORKID",
                                "Bootstrap MAC key (OMA-TS-DM_Security §5.10.2.3): from the IMSI, from a PIN "
                                "the user types, or both."),
    "user_pin_digits": Field(Int(4, 16), 8, "Length of the user PIN (USERPIN kinds only)."),
    "dm_auth": Field(Str(choices=("md5", "sha256", "basic", "hmac")), "md5",
                     "DM session authentication: syncml:auth-md5, syncml:auth-sha256 or syncml:auth-basic (§5.4), or hmac: "
                     "syncml:auth-hmac-sha256, an x-syncml-hmac header on every message (§5.6.1)."),
    "bootstrap_via": Field(Str(choices=("sms", "smartcard", "tls", "gba_push")), "sms",
                           "sms: the server's WAP Push bootstrap (§5.10); smartcard: the operator personalises "
                           "the card with the account's bootstrap and per-device SCP03 keys, read at power-on "
                           "(seed 001 §8.1, Appendix H; a real PC/SC card falls back to sms); tls: the device "
                           "leaves the factory with the bootstrap server's account (<x>/Auth/Bootstrap, a PSK) "
                           "and fetches the DM server's account in a DM session over PSK-TLS with it (seed 001 "
                           "§9.3, mutual authentication); gba_push: the 3GPP_GBA bootstrap (OMA-TS-DM_Security §5.10.2.4, "
                           "Appendix C): a GBA Push Info over SMS, keys derived by the card (gba_uicc), the bootstrap "
                           "protected with DMBIK/DMBEK (needs a gba block)."),
    "gba_ub": Field(Bool(), False,
                    "Right after power-on, GBA bootstrapping over Ub with the BSF (3GPP TS 33.220 §4.5.2, TS 24.109 "
                    "§4, RFC 3310 Digest AKAv1-MD5): the card runs the AKA (gba_uicc), the device keeps the B-TID and "
                    "key lifetime; timed as t_ub_start/t_ub_ok, a failure ends the device as ub_<reason>. The BSF is "
                    "components.bsf (needs a gba block and virtual cards)."),
    "gba_uicc": Field(Str(choices=("u", "me")), "u",
                      "With bootstrap_via gba_push or gba_ub: u (GBA_U, Ks and Ks_int_NAF stay in the UICC, AUTHENTICATE in "
                      "GBA context) or me (GBA_ME: the USIM runs 3G AKA, the ME derives Ks_NAF), TS 33.220 §4.5."),
    "message_security": Field(Str(choices=MESSAGE_SECURITY), "none",
                              "Seed 002 §5.3-§5.5 message security of every DM session message, on top of dm_auth: "
                              "hmac-md5 (x-syncml-hmac algorithm=MD5, §5.4), xmldsig (XML-Signature, §5.4) or "
                              "xmlenc (XML-Encryption of the SyncBody, then XML-Signature, §5.5); xmldsig and xmlenc "
                              "make the session use SyncML XML. Applied by the simulated DM server only."),
    "lwm2m": Field(Nullable(LWM2M_PROFILE), None, "With device: lwm2m, its bootstrap, security mode and binding "
                                                  "(sim/agents/device/lwm2m_device.py; null: every default); "
                                                  "ignored by dm devices."),
}, rule=_message_security_rule, name="PROFILE", doc="A kind of device in the fleet.")

ATTACK = Struct({
    "kind": Field(Str(pattern=r"\S", noun="an attack kind"), REQUIRED,
                  "A catalogue attack (forge-networkid-bootstrap, replay-dm-credential, ...) or module:Class, an "
                  "Attack subclass of one's own (README, Writing an attack)."),
    "on": Field(Nullable(Str(choices=POSITIONS)), None,
                "Where the adversary sits: sms_air, smsc, ip, bsf or card (null: the attack's first position)."),
    "at": Field(Seconds(), 0.0, "Simulated second from which the attack acts."),
    "targets": Field(Struct({
        "fraction": Field(Probability(), 1.0, "Share of the fleet the attack goes after (a draw per device)."),
        "devices": Field(Nullable(List(Int(0))), None, "Device indexes to go after instead (null: by fraction)."),
    }), {}, "Which devices the attack goes after."),
    "params": Field(Raw("a mapping of the attack's params"), {}, "The attack's own knobs (dmsim attack list)."),
}, name="ATTACK", doc="One attack of the adversary.")

SWEEP_AXIS = Struct({
    "key": Field(Str(), REQUIRED, "Dotted path of a numeric or choice key."),
    "values": Field(List(Raw("a value of the swept key's type"), min_len=1), REQUIRED,
                    "Values to run, each checked like the key itself."),
}, name="SWEEP_AXIS", doc="One swept key of a grid.")


SCENARIO_SCHEMA = Struct({
    "name": Field(Str(pattern=r"\S", noun="a non-empty string"), Derived("the file name without .yaml"), "Names the run and its results."),
    "seed": Field(Int(0), 1, "Seed of every random stream; the same seed gives the same results."),
    "replicas": Field(Int(1, 1000), 1, "Independent repetitions (each with its own random streams)."),
    "shards": Field(Int(1, 4096), 1, "Cut each replica's fleet into this many independent models, run on as many "
                                     "cores or cluster workers; the server's and the SMSC's capacity are divided "
                                     "among them (an approximation: sim/model/shards.py says how close)."),
    "fidelity": Field(Str(choices=("full", "sampled")), "full",
                      "full: every device runs the real protocol and crypto; sampled: a sample does (fidelity_sample), "
                      "the others get rows drawn from it by profile and arrival time (sim/model/sampled.py)."),
    "fidelity_sample": Field(Float(0.0, 1.0, min_exclusive=True, noun="a share"), 0.01, "With fidelity: sampled, the share of devices that run the protocol "
                                                  "(every round(1/share)-th device)."),
    "duration": Field(Seconds(positive=True), 3600.0,
                      "Simulated time; sessions not finished by then are recorded as failed, reason not_finished."),
    "fleet": Field(Struct({
        "size": Field(Int(1, 10_000_000), REQUIRED, "Number of devices."),
        "profiles": Field(List(PROFILE, min_len=1, rule=_unique_profile_names), [{"name": "default"}],
                          "Device profiles; each device picks one with probability weight / sum of weights."),
    }), REQUIRED, "The devices."),
    "arrival": Field(Tagged({
        "all_at_once": Struct({}, doc="Every device starts at time 0."),
        "poisson": Struct({"rate": Field(Float(0.0, min_exclusive=True), REQUIRED, "Devices per second.")},
                          doc="Devices start as a Poisson process."),
        "ramp": Struct({
            "from_rate": Field(Float(0.0), REQUIRED, "Devices per second at time 0."),
            "to_rate": Field(Float(0.0, min_exclusive=True), REQUIRED, "Devices per second from `over` on."),
            "over": Field(Seconds(positive=True), REQUIRED, "Length of the linear ramp."),
        }, doc="A Poisson process whose rate grows linearly, then stays at to_rate."),
    }), {"kind": "all_at_once"}, "When devices start bootstrapping."),
    "links": Field(Struct({
        "sms": Field(_link({"kind": "lognormal", "median": 2.0, "sigma": 0.5}, "The SMS link."),
                     {}, "Carries bootstrap messages (server to device)."),
        "ip": Field(_link({"kind": "exponential", "mean": 0.05}, "The IP link."),
                    {}, "Carries DM session HTTP requests and responses, each way."),
    }), {}, "The two links between the server and the devices."),
    "server": Field(Struct({
        "max_sessions": Field(Int(1), 100, "DM sessions the server runs at once; more wait in line."),
        "service_time": Field(DELAY, {"kind": "fixed", "value": 0.01}, "Server time per DM request."),
        "bootstrap_timeout": Field(Seconds(positive=True), 120.0,
                                   "Time to wait for a device's first session before resending the bootstrap."),
        "bootstrap_retries": Field(Int(0, 20), 3, "Bootstrap resends before giving up on a device."),
        "hmac_window": Field(Seconds(positive=True), 300.0,
                             "With dm_auth: hmac, the oldest x-syncml-hmac Timestamp the server and the devices "
                             "accept (OMA-TS-DM_Security §5.6.1); replays inside it meet the replay cache."),
        "session_trigger": Field(Str(choices=("client", "notification")), "client",
                                 "Who opens the DM session after the bootstrap: the device (Alert 1201), or the "
                                 "server with a package #0 over WAP Push (resent like a bootstrap; Alert 1200)."),
        "name": Field(Str(pattern=r"\S", noun="a non-empty string"), "dmsim-server", "Server identifier (ServerID) put in bootstraps."),
    }), {}, "The DM server."),
    "client": Field(Struct({
        "request_timeout": Field(Seconds(positive=True), 30.0, "Time a device waits for each DM response."),
        "request_retries": Field(Int(0, 10), 2, "Resends of a DM request before the session fails."),
        "connect_time": Field(DELAY, {"kind": "fixed", "value": 0.0},
                              "Time from the bootstrap (or the package #0) to the first DM request: the data "
                              "bearer set-up (attach, PDP context) a real device needs before HTTP."),
    }), {}, "The DM client on each device."),
    "components": Field(Struct({
        "dm_server": Field(_component("The DM server implementation.", virtual=Struct(
            {"tls": Field(_DM_TLS, Derived("mode none (plain HTTP) when absent"),
                          "TLS under the DM sessions (seed 000 §9.2.2).")},
            doc="Simulated in-process."), socket=Struct(
            {"url": Field(Str(pattern=r"^https?://"), REQUIRED, "Base URL of a running DM server."),
             "tls": Field(Nullable(Struct({"lab_psk": Field(
                 Str(pattern=r"^.+:(?:[0-9A-Fa-f]{2})+$", noun="IDENTITY:HEXKEY"), REQUIRED,
                 "A PSK the server holds (dmsim server --psk); no longer needed for provisioning (see admin); "
                 "each device's own PSK travels in its bootstrap.")})), None,
                 "PSK-TLS to an https:// url (seed 000 §9.2.2)."),
             "admin": Field(Nullable(Struct({
                 "url": Field(Str(pattern=r"^http://"), REQUIRED,
                              "The server's admin listener (dmsim server --admin), e.g. http://127.0.0.1:8081."),
                 "token_file": Field(Str(pattern=r"\S", noun="a file name"), REQUIRED,
                                     "File holding the admin token (dmsim server --admin-token-file).")})), None,
                 "Where the accounts the simulated network bootstraps are provisioned (dmsim server --admin); "
                 "without it every session ends provision_failed.")},
            doc="A real server over HTTP or HTTPS (PSK-TLS).")), {"kind": "virtual"}, "Which DM server the devices talk to."),
        "card": Field(Tagged({
            "virtual": Struct({"apdu_time": Field(DELAY, {"kind": "fixed", "value": 0.002},
                                                  "Card time per APDU (simulated).")},
                              doc="An emulated UICC per device, answering real APDUs in-process."),
            "pcsc": Struct({
                "reader": Field(Str(pattern=r"\S", noun="a reader index or name"), "0",
                                "PC/SC reader: its index or (a prefix of) its name."),
                "pin": Field(Nullable(Str(pattern=r"^[0-9]{4,8}$", noun="4 to 8 digits")), None,
                             "PIN1 of the real card, when it is enabled (null: not verified)."),
                "apdu_time": Field(DELAY, {"kind": "fixed", "value": 0.002},
                                   "Card time per APDU for the devices that stay virtual."),
            }, doc="Device 0 uses a real card through pcscd (pyscard), the others stay virtual; the real "
                   "card's measured APDU latency becomes simulated time."),
        }, doc="The UICC implementation."), {"kind": "virtual"}, "Which card devices use."),
        "modem": Field(_component("The modem implementation.", serial=Struct({
            "port": Field(Str(pattern=r"\S", noun="a serial port path"), REQUIRED,
                          "Serial port of the modem (/dev/ttyUSB2, or the pty of `dmsim modem serve`)."),
            "baud": Field(Int(1200, 4_000_000), 115200, "Line speed."),
            "msisdn": Field(Str(pattern=r"^\+?[0-9]{3,20}$", noun="the SIM's number, digits"), REQUIRED,
                            "The modem SIM's own number: each SMS for device 0 is sent to it through the modem."),
            "timeout": Field(Seconds(positive=True), 30.0,
                             "Wall seconds an SMS round trip or an AT command may take before it counts as lost."),
            "pin": Field(Nullable(Str(pattern=r"^[0-9]{4,8}$", noun="4 to 8 digits")), None,
                         "PIN1 of the modem's SIM, verified through AT+CSIM when enabled (null: not verified)."),
        }, doc="Device 0 is behind a real modem (AT commands over a serial line, sim/real/serial_modem.py): its SIM "
               "is read with AT+CSIM and its SMS cross the real radio.")), {"kind": "virtual"},
                       "Which modem devices use."),
        "bsf": Field(_component("The BSF the gba_ub devices bootstrap with over Ub.", socket=Struct({
            "url": Field(Str(pattern=r"^http://[^/\s]+/?\S*$", noun="http://HOST:PORT/"), REQUIRED,
                         "URL of a running BSF (dmsim bsf serve --http HOST:PORT), e.g. http://127.0.0.1:8081/."),
            "db": Field(Nullable(Str(pattern=r"\S", noun="a file name")), None,
                        "The real BSF's SQLite subscriber store (dmsim bsf serve --db): the simulation writes each "
                        "virtual card's subscriber (IMPI, IMSI, K, OPc, SQN) there as the card is issued, standing "
                        "in for the operator's provisioning system (null: the operator provisioned them; the "
                        "simulation's cards have keys of its own, so they would be refused)."),
        }, doc="A real BSF over HTTP on real sockets (sim/real/ub_transport.py); wall-clock latency becomes "
               "simulated time.")), {"kind": "virtual"}, "Which BSF serves Ub (the gba block's BSF agent when "
                                                         "virtual)."),
        "esme": Field(Tagged({
            "none": Struct({}, doc="No outside SMS application."),
            "smpp": Struct({
                "listen": Field(Str(pattern=r"^[^\s:]+:(?:[0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}"
                                          r"|655[0-2][0-9]|6553[0-5])$", noun="HOST:PORT (port 0..65535)"),
                                "127.0.0.1:2775",
                                "Address of the SMPP 3.4 server (port 0: any free port)."),
                "accounts": Field(List(Str(pattern=r"^[^:]+:", noun="SYSTEM_ID:PASSWORD")), [],
                                  "Accounts that may bind (empty: any system_id and password bind)."),
                "speed": Field(Float(0.0, min_exclusive=True), 1.0,
                               "Simulated seconds per wall-clock second while the ESME can submit."),
                "poll": Field(Seconds(positive=True), 0.05,
                              "Simulated time between two looks at the submits waiting for the model."),
                "mo_addresses": Field(List(Str(pattern=r"^\+?[0-9]{1,20}$", noun="digits")), [],
                                      "Addresses whose mobile-originated SMS go to a bound ESME."),
            }, doc="Real SMPP clients (Kannel, smpplib) inject traffic into the first replica's SMSC, "
                   "which then runs in real time (sim/real/esme_gateway.py)."),
        }, doc="An outside SMS application (ESME)."), {"kind": "none"},
            "SMPP access to the running scenario's SMSC (needs an smsc block)."),
    }), {}, "Simulated or real parts (hardware in the loop)."),
    "smsc": Field(Nullable(SMSC_SCHEMA), None,
                  "Route bootstrap SMS through a store-and-forward SMSC (null: straight over links.sms; {}: an "
                  "SMSC with every default). Its radio leg is links.sms (with its tap)."),
    "lwm2m": Field(Nullable(LWM2M_SCHEMA), None,
                   "The LwM2M servers of the device: lwm2m profiles (null: every default)."),
    "ota": Field(Nullable(Struct({
        "tar": Field(Str(pattern=r"\A[0-9A-Fa-f]{6}\Z", noun="6 hex digits"), "B00010",
                     "TAR of the card application the commands go to (TS 101 220 §6; B00010: RFM USIM)."),
        "kic": Field(Int(0, 255), 0x12, "KIc byte of the key set (TS 102 225 §5.1.2; 0x12: AES-CBC)."),
        "kid": Field(Int(0, 255), 0x12, "KID byte of the key set (TS 102 225 §5.1.3; 0x12: AES-CMAC)."),
        "spi": Field(Str(pattern=r"\A[0-9A-Fa-f]{4}\Z", noun="4 hex digits"), "1619",
                     "SPI of the command packets (TS 102 225 §5.1.1); por sets its PoR-via-SMS-SUBMIT bit."),
        "apdus": Field(List(Str(pattern=r"\A(?:[0-9A-Fa-f]{2}){4,}\Z", noun="a C-APDU in hex"), min_len=1),
                       ["00A4040C10A0000000871002FFFFFFFF8907090000", "00A4000C026F07", "00B0000009"],
                       "The RFM script (TS 102 226): by default select the USIM and read EF_IMSI."),
        "por": Field(Str(choices=("ack", "submit")), "ack",
                     "How the PoR comes back: in the RP-ACK, or in an MO SMS-SUBMIT (mobile-originated path)."),
        "timeout": Field(Seconds(positive=True), 300.0, "Time the platform waits for a device's PoR."),
    })), None, "After its DM session each device gets one OTA command through the SMSC (sim/agents/ota_platform.py; "
               "null: none). Needs an smsc block."),
    "gba": Field(Nullable(Struct({
        "bsf_fqdn": Field(Str(pattern=r"\A[A-Za-z0-9.-]+\Z", noun="an FQDN"), "bsf.dmsim.test",
                          "The BSF's name: B-TIDs and P-TIDs end in it (TS 33.220 §4.5.2)."),
        "naf": Field(Str(choices=("internal", "proxy")), "internal",
                     "Where the NAF is (OMA-TS-DM_Security Appendix C): inside the DM server, or an external proxy "
                     "NAF that asks the BSF and hands the DM server DMBIK and DMBEK."),
        "ks_lifetime": Field(Seconds(positive=True), 86400.0, "Lifetime of Ks and the NAF keys (GUSS)."),
        "hss_dir": Field(Nullable(Str(pattern=r"\S", noun="a folder")), None,
                         "Folder of the HSS's SQLite subscriber stores, one per replica and sweep point "
                         "(null: the run folder)."),
        "zpn": Field(_link({"kind": "exponential", "mean": 0.02}, "Zpn: the NAF and the BSF."), {},
                     "The Zpn link between the NAF and the BSF (TS 33.223), both ways."),
        "naf_link": Field(_link({"kind": "exponential", "mean": 0.01}, "The proxy NAF and the DM server."), {},
                          "With naf: proxy, the link over which the DM server asks the NAF for DMBIK/DMBEK."),
    })), None, "The GBA network (3GPP TS 33.220, TS 33.223): HSS, BSF and NAF, for profiles with bootstrap_via "
               "gba_push or gba_ub: true (null: none)."),
    "attacks": Field(List(ATTACK), [], "Attacks the adversary runs (sim/agents/adversary/; `dmsim attack list` "
                                       "prints the catalogue). Each is judged succeeded, detected, blocked or "
                                       "inconclusive in summary.json's attacks block and sessions.csv."),
    "sweep": Field(Nullable(Struct({
        "key": Field(Nullable(Str()), None, "Dotted path of the key to sweep: a number (links.sms.loss) or a choice "
                                            "(fleet.profiles.0.dm_auth, components.dm_server.tls.mode)."),
        "values": Field(Nullable(List(Raw("a value of the swept key's type"), min_len=1)), None,
                        "Values to run, each checked like the key itself."),
        "grid": Field(Nullable(List(SWEEP_AXIS, min_len=1)), None,
                      "Instead of key and values: several keys, one run per combination of their values "
                      "(the first key varies slowest)."),
    })), None, "Run the scenario once per value of one key, or per combination of several (null: no sweep)."),
}, doc="A dmsim scenario.")


# -- loading -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Scenario:
    """A loaded scenario: ``data`` is validated with every default filled in."""

    name: str
    source: str
    data: dict
    raw_text: str
    overrides: tuple[str, ...] = ()

    def get(self, path: str) -> Any:
        """Return the value at dotted ``path`` (``links.sms.loss``; list items by index)."""
        node: Any = self.data
        for seg in split_path(path, where=self.source, at=path):
            if isinstance(node, dict) and seg in node:
                node = node[seg]
            elif isinstance(node, list) and seg.isdigit() and int(seg) < len(node):
                node = node[int(seg)]
            else:
                raise ScenarioError("no such key in the scenario", where=self.source, path=path)
        return node

    def sweep_points(self) -> list[tuple[Any, dict]]:
        """Return ``(value, data)`` per sweep point, or ``[(None, data)]`` when there is no sweep.

        ``value`` is the swept value for one key, a {key: value} dict for a grid (combinations in
        order, the first key varying slowest). ``data`` is the scenario validated again with the
        point's values set as ``--set`` overrides would set them (so that a choice such as a
        component's kind gets its own defaults); each data is an independent copy."""
        axes = sweep_axes(self.data)
        if not axes:
            return [(None, copy.deepcopy(self.data))]
        points = []
        for combo in itertools.product(*(values for _key, values in axes)):
            sets = [f"{key}={json.dumps(value)}" for (key, _values), value in zip(axes, combo)]
            data = parse_scenario(self.raw_text, self.source, list(self.overrides) + sets,
                                  default_name=self.name).data
            data["sweep"] = copy.deepcopy(self.data["sweep"])
            value = combo[0] if len(axes) == 1 else {key: v for (key, _values), v in zip(axes, combo)}
            points.append((value, data))
        return points


def parse_override(text: str) -> tuple[str, Any]:
    """Return ``(dotted path, value)`` of ``KEY=VALUE``; VALUE is read as YAML (``0.05``,
    ``poisson``, ``{kind: fixed, value: 2}``; empty is null)."""
    key, sep, value_text = text.partition("=")
    if not sep or not key.strip():
        raise ScenarioError(f"{text!r} is not KEY=VALUE", where="--set", expected="like links.sms.loss=0.05")
    key = ".".join(split_path(key, where="--set", at=key.strip()))
    try:
        value, _ = load_yaml(value_text, "--set", with_lines=False)
    except ScenarioError as exc:
        raise ScenarioError(exc.detail, where="--set", path=key, expected=exc.expected) from None
    return key, value


def _check_sweep(data: dict, locate: Locator) -> None:
    """Check the sweep: ``key`` and ``values``, or ``grid`` (not both); each key names a number or a
    choice of the scenario, no key twice; normalise each axis's values against the key's type."""
    sweep = data["sweep"]
    if sweep is None:
        return
    single = sweep["key"] is not None or sweep["values"] is not None
    if single == (sweep["grid"] is not None):
        raise ScenarioError("a sweep has either key and values, or a grid", where=locate(("sweep",)), path="sweep",
                            expected="{key: K, values: [...]} or {grid: [{key: K, values: [...]}, ...]}")
    if single and (sweep["key"] is None or sweep["values"] is None):
        missing = "key" if sweep["key"] is None else "values"
        raise ScenarioError(f"the sweep has no {missing}", where=locate(("sweep",)), path=f"sweep.{missing}",
                            expected="both key and values")
    axes = [(("sweep",), sweep)] if single else [(("sweep", "grid", i), axis) for i, axis in enumerate(sweep["grid"])]
    seen: set[str] = set()
    for at, axis in axes:
        path = dotted(at + ("key",))
        where = locate(at + ("key",))
        if split_path(axis["key"], where=where, at=path)[0] == "sweep":
            raise ScenarioError("a sweep cannot sweep its own keys", where=where, path=path,
                                expected="the dotted path of a scenario key")
        t, _keys = type_at(SCENARIO_SCHEMA, data, axis["key"], where=where, at=path)
        if not (is_numeric(t) or _is_choice(t)):
            raise ScenarioError(f"{axis['key']} is {t.name or t.expected()}, neither a number nor a choice",
                                where=where, path=path, expected="the dotted path of a numeric or choice key")
        if axis["key"] in seen:
            raise ScenarioError(f"{axis['key']} is swept twice", where=where, path=path, expected="each key once")
        seen.add(axis["key"])
        axis["values"] = [validate(t, v, at + ("values", i), locate) for i, v in enumerate(axis["values"])]


def _is_choice(t: Type) -> bool:
    """Return whether ``t`` (or the type inside a ``Nullable``) is a string with a fixed set of choices or a bool."""
    while isinstance(t, Nullable):
        t = t.inner
    return (isinstance(t, Str) and bool(t.choices)) or isinstance(t, Bool)


def sweep_axes(data: dict) -> list[tuple[str, list]]:
    """Return the swept ``(key, values)`` of validated scenario ``data``, in order ([] without a sweep)."""
    sweep = data.get("sweep")
    if not sweep:
        return []
    if sweep.get("grid"):
        return [(axis["key"], axis["values"]) for axis in sweep["grid"]]
    return [(sweep["key"], sweep["values"])]


def _check_message_security(data: dict, locate: Locator) -> None:
    """Refuse ``message_security`` other than none towards a real DM server: ``dmsim server`` (and
    a third-party server) does not apply seed 002's XML security, so every session would fail."""
    if data["components"]["dm_server"]["kind"] != "socket":
        return
    for i, profile in enumerate(data["fleet"]["profiles"]):
        if profile.get("message_security", "none") != "none":
            raise ScenarioError(f"message_security {profile['message_security']} is simulated only: a real DM server "
                                "does not apply it", where=locate(("fleet", "profiles", i, "message_security")),
                                path=f"fleet.profiles.{i}.message_security",
                                expected="none with components.dm_server: socket")


def _check_smsc(data: dict, locate: Locator) -> None:
    """Check the rules that tie the ``smsc`` block to the other blocks (its own keys are checked by
    ``SMSC_SCHEMA``, the schema the SMSC driver reads them with)."""
    if data["components"]["modem"]["kind"] == "serial" and data["components"]["card"]["kind"] == "pcsc":
        raise ScenarioError("device 0 has one SIM: the serial modem's or the PC/SC card, not both",
                            where=locate(("components", "modem")), path="components.modem",
                            expected="components.card: virtual with a serial modem")
    if data["components"]["esme"]["kind"] != "none" and data.get("smsc") is None:
        raise ScenarioError("an ESME submits to the SMSC: the scenario needs an smsc block",
                            where=locate(("components", "esme")), path="components.esme",
                            expected="an smsc block (smsc: {} for the defaults)")
    if data.get("ota") is not None and data.get("smsc") is None:
        raise ScenarioError("OTA commands travel through the SMSC: the scenario needs an smsc block",
                            where=locate(("ota",)), path="ota", expected="an smsc block (smsc: {} for the defaults)")


def _check_lwm2m(data: dict, locate: Locator) -> None:
    """An LwM2M profile with binding S needs the SMSC its SMS cross; with the security on the UICC
    it needs virtual cards (the operator personalises the card with the binding's keys)."""
    for i, profile in enumerate(data["fleet"]["profiles"]):
        spec = lwm2m_spec(profile)
        if profile["device"] != "lwm2m" or spec["binding"] != "S":
            continue
        at = ("fleet", "profiles", i, "lwm2m", "binding")
        if data.get("smsc") is None:
            raise ScenarioError("the SMS binding runs through the SMSC: the scenario needs an smsc block",
                                where=locate(at), path=dotted(at), expected="an smsc block (smsc: {} for the defaults)")
        if spec["sms_termination"] == "uicc" and (data["components"]["card"]["kind"] != "virtual"
                                                  or data["components"]["modem"]["kind"] != "virtual"):
            at = at[:-1] + ("sms_termination",)
            raise ScenarioError("sms_termination uicc personalises the card with the binding's keys",
                                where=locate(at), path=dotted(at), expected="components.card and components.modem: "
                                                                            "virtual")


def _check_gba(data: dict, locate: Locator) -> None:
    """A ``bootstrap_via: gba_push`` or ``gba_ub: true`` profile needs the GBA network (``gba``)
    and virtual cards (the HSS must know each card's K and OPc; a real card's are unknown to the
    simulation); a real BSF (``components.bsf: socket``) is part of the GBA network too."""
    for i, profile in enumerate(data["fleet"]["profiles"]):
        for key, what in (("bootstrap_via", "bootstrap_via gba_push"), ("gba_ub", "gba_ub")):
            if profile.get(key) not in ("gba_push", True):
                continue
            if data.get("gba") is None:
                raise ScenarioError(f"{what} needs the GBA network: the scenario needs a gba block",
                                    where=locate(("fleet", "profiles", i, key)), path=f"fleet.profiles.{i}.{key}",
                                    expected="a gba block (gba: {} for the defaults)")
            if data["components"]["card"]["kind"] != "virtual" or data["components"]["modem"]["kind"] != "virtual":
                raise ScenarioError(f"{what} needs virtual cards (the HSS must know each card's K and OPc)",
                                    where=locate(("fleet", "profiles", i, key)), path=f"fleet.profiles.{i}.{key}",
                                    expected="components.card and components.modem: virtual")
    if data["components"]["bsf"]["kind"] != "virtual" and data.get("gba") is None:
        raise ScenarioError("a real BSF serves the GBA network: the scenario needs a gba block",
                            where=locate(("components", "bsf")), path="components.bsf",
                            expected="a gba block (gba: {} for the defaults)")


def _check_attacks(data: dict, locate: Locator, folder: Path) -> None:
    """Check each attack against its class: a known kind, a position it can take, its own params,
    and what it needs of the scenario (``catalogue.check_spec``); the error names the YAML line.
    A user's ``file.py:Class`` is found beside the scenario first, then in the working folder,
    and kept as an absolute path (so the run does not depend on where it was started)."""
    for i, spec in enumerate(data.get("attacks") or []):
        module, sep, name = spec["kind"].partition(":")
        if sep and module.endswith(".py") and (folder / module).is_file():
            spec["kind"] = f"{(folder / module).resolve()}:{name}"
        if not isinstance(spec.get("params"), dict):
            raise ScenarioError(f"got {spec.get('params')!r}", where=locate(("attacks", i, "params")),
                                path=f"attacks.{i}.params", expected="a mapping")
        try:
            check_spec(spec, data, f"attacks.{i}")
        except ScenarioError as exc:
            keys = tuple(int(k) if k.isdigit() else k for k in exc.path.split("."))
            while keys and locate(keys) == locate(()):
                keys = keys[:-1]
            raise ScenarioError(exc.detail, where=locate(keys), path=exc.path, expected=exc.expected) from None


def parse_scenario(text: str, source: str, overrides: list[str] | tuple[str, ...] = (),
                   default_name: str = "scenario", flags: dict[str, Any] | None = None) -> Scenario:
    """Return the ``Scenario`` in YAML ``text`` (read from ``source``) with ``overrides`` applied.

    ``flags`` are command-line options that set the top-level key of their own name, applied after
    the overrides (``{"--seed": 3}`` sets ``seed``; None: not given). They are checked like the
    file, and an error names the flag (``--replicas: replicas: 0 is out of range``), not ``--set``.
    They are kept in ``Scenario.overrides`` as ``seed=3``, like a ``--set``."""
    given = {flag: value for flag, value in (flags or {}).items() if value is not None}
    raw, locator = load_yaml(text, source)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ScenarioError("a scenario is a mapping of keys, like fleet: and links:", where=locator(()),
                            expected="a mapping")
    for item in overrides:
        key, value = parse_override(item)
        keys, created = set_path(SCENARIO_SCHEMA, raw, key, value, where="--set")
        for k in created + [keys]:
            locator.mark(k, "--set")
    for flag, value in given.items():
        keys, _created = set_path(SCENARIO_SCHEMA, raw, flag.lstrip("-"), value, where=flag)
        locator.mark(keys, flag)
    data = validate(SCENARIO_SCHEMA, raw, (), locator)
    data = {"name": data.get("name", default_name), **data}
    _check_sweep(data, locator)
    _check_smsc(data, locator)
    _check_gba(data, locator)
    _check_lwm2m(data, locator)
    _check_message_security(data, locator)
    _check_attacks(data, locator, Path(source).parent)
    check_shards(data, locator)
    check_fidelity(data, locator)
    overrides = tuple(overrides) + tuple(f"{flag.lstrip('-')}={value}" for flag, value in given.items())
    return Scenario(name=data["name"], source=source, data=data, raw_text=text, overrides=overrides)


def load_scenario(path: str | Path, overrides: list[str] | tuple[str, ...] = (),
                  flags: dict[str, Any] | None = None) -> Scenario:
    """Return the scenario in the YAML file ``path`` with ``--set`` ``overrides`` and command-line
    ``flags`` (``parse_scenario``) applied."""
    path = Path(path)
    text = read_text(path)
    return parse_scenario(text, str(path), overrides, default_name=path.stem, flags=flags)


def describe_schema() -> str:
    """Return the scenario format: every key with its type, default and meaning."""
    head = ("A scenario is a YAML mapping; durations are simulated seconds. Keys not written take the "
            "default in brackets; `dmsim run --set KEY=VALUE` overrides any key by its dotted path.\n")
    return head + "\n" + describe(SCENARIO_SCHEMA)
