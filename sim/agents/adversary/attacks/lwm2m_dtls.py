"""Attacks on LwM2M's DTLS channel security (seed 004 §7.1) from the ip path, on the real DTLS
records the devices and the LwM2M servers exchange (``sim/links/dtls_link.py``: kind ``dtls``
on ``ip_up``/``ip_down``, ``meta`` the device).

- ``downgrade-dtls``: the ClientHello's suite list rewritten to a weaker one (the client's last
  suite alone, or a plain PSK suite it did not offer). The server answers the hello it saw; the
  client refuses a suite it did not offer (illegal_parameter), or the Finished messages, which
  cover the hello each side saw (RFC 5246 §7.4.9, RFC 7627), fail: detected.
- ``low-entropy-psk-suite``: a low-entropy (PIN) PSK bootstrap pushed onto a forbidden suite.
  The attacker rewrites the device's ClientHello to TLS_PSK_WITH_AES_128_CCM_8 alone (``rewrite``)
  and records the handshake; if the client's Finished ever crosses on a plain PSK suite, it
  searches the PIN offline (``dtls_offline``: the Finished record is the oracle), and succeeds
  when the PIN it finds is the device's. Seed 004 §7.1 allows only ECDHE-PSK for a low-entropy
  secret: the client refuses the rewritten ServerHello before its Finished (detected), the
  server refuses the PIN identity on the forbidden suite with insufficient_security (71, detected;
  but that refusal comes after the client's Finished, too late to keep the PIN), and a passive
  observer of an ECDHE-PSK handshake has no oracle (blocked).
- ``fake-bootstrap-server``: the active attack ECDHE-PSK does not stop (RFC 5489 §5, RFC 4279
  §7.2). The attacker drops a PIN device's bootstrap ClientHello and answers it as the bootstrap
  server with a flight of its own (``dtls_fake_server``: its ECDH key on secp256r1 in an unsigned
  ServerKeyExchange); the client's Finished, keyed by the ECDH secret the attacker holds and the
  PIN, is the oracle of the same offline search: succeeded when the PIN found is the device's.
  The device's bootstrap then fails (the fake server never sends its Finished); dmsim's device
  has one life, so it does not come back to the real server within the run.

Choices where the seed is silent (ours): the attacker knows which devices bootstrap with a PIN
(and the bootstrap server's address) and the PIN's length (the device model's documented
provisioning: the profile); the search runs for real (its CPU time is evidence) and takes
``guesses / guess_rate`` simulated seconds, the rate measured for this Python search on the
development machine (tests/sim/agents/adversary/test_dtls_offline.py's handshakes and the
attacks' runs: 2e4-5e4 guesses/s on one core); a device's verdict is read when its life ends
(its failure reason) unless the search decided it before.
"""
from __future__ import annotations

import time
from collections import Counter

from dmsim.base.errors import DecodeError
from dmsim.network.lwm2m import dtls_policy
from dmsim.network.lwm2m import dtls_records as wire
from dmsim.sim.agents.adversary import dtls_fake_server, dtls_hello, dtls_offline
from dmsim.sim.agents.adversary.attacks.lwm2m_sms import lwm2m_profiles
from dmsim.sim.agents.adversary.catalogue import Attack, Entry, register
from dmsim.sim.agents.adversary.outcome import BLOCKED, DETECTED, INCONCLUSIVE, SUCCEEDED
from dmsim.sim.links.dtls_link import DTLS_KIND
from dmsim.sim.links.link import Message

PSK_GUESS_RATE = 25_000.0  # guesses/s of dtls_offline.search on one core (module doc)
_SCSV = 0x00FF  # TLS_EMPTY_RENEGOTIATION_INFO_SCSV (RFC 5746): not a suite, kept as offered
_PLAIN_PSK = (dtls_policy.PSK_AES_128_CCM_8.code, dtls_policy.PSK_AES_128_CBC_SHA256.code)


def lwm2m_dev(msg):
    """Return the LwM2M device a DTLS datagram on the ip links belongs to, or None."""
    dev = msg.meta
    return dev if msg.kind == DTLS_KIND and getattr(dev, "protocol", "") == "lwm2m" else None


def bootstrap_service(name: str) -> bool:
    """Return whether a service name (``dtls_link.DtlsService.name``) is a bootstrap server's."""
    return name.startswith("lwm2m-bootstrap")


class DtlsPathAttack(Attack):
    """What the two attacks share: the taps on both ip links (the targeted devices' DTLS
    datagrams, ``on_datagram``), the clear alerts each side sent, and the per-device verdict from
    the reason the device's life ended when nothing decided it before."""

    positions = ("ip",)
    protocol = "lwm2m"  # dmsim attack matrix: n/a on the DM profiles

    def install(self) -> None:
        self.alerts: Counter[str] = Counter()  # "<side>.<description>" of the fatal alerts in clear
        self.ends: Counter[str] = Counter()
        up, down = self.adversary.ip_links()
        self.adversary.tap(up, lambda msg, now, d: self._tap(msg, True, d))
        self.adversary.tap(down, lambda msg, now, d: self._tap(msg, False, d))

    def _tap(self, msg, from_client: bool, deliveries):
        dev = lwm2m_dev(msg)
        if dev is None or not self.active() or not self.targets(dev.ident.index):
            return deliveries
        for alert in dtls_hello.fatal_alerts(msg.payload):
            self.alerts[f"{'client' if from_client else 'server'}.{alert}"] += 1
        service = msg.dst if from_client else msg.src
        return self.on_datagram(dev, service, from_client, msg, deliveries)

    def on_datagram(self, dev, service: str, from_client: bool, msg, deliveries) -> list:
        """A targeted device's datagram to (or from) ``service``; return what is delivered instead."""
        return deliveries

    def finished(self, dev, ok: bool, reason: str) -> None:
        index = dev.ident.index
        if index in self.acted and index not in self.outcomes:
            self.ends[reason or "ok"] += 1
            self.decide(index, DETECTED if reason.startswith("dtls_") else BLOCKED)

    def tally(self, **evidence) -> tuple[Counter, dict]:
        tally = Counter(self.outcomes.values())
        return tally, {"devices": len(self.acted), "verdicts": dict(tally), "alerts": dict(self.alerts),
                       "ends": dict(self.ends), **evidence}


@register
class DowngradeDtls(DtlsPathAttack):
    """Rewrite every ClientHello of a targeted device's DTLS associations: ``to: weakest`` keeps
    the client's last-offered suite alone (a PSK client's CBC-SHA256 instead of CCM-8, an ECDSA
    client's GCM instead of CCM-8), or, when it offers one suite, puts
    TLS_PSK_WITH_AES_128_CCM_8 in its place; ``psk-ccm8``/``psk-cbc`` put that plain PSK suite
    alone. Verdict per device: an association completed on a rewritten hello (the server's
    Finished followed, so it verified the client's) = succeeded; the device's life ended on a DTLS
    failure (the client refused the ServerHello, or the Finished failed) = detected; a rewrite
    that changed nothing and a device that went on = blocked."""

    kind = "downgrade-dtls"
    params = {"to": "weakest"}
    choices = {"to": ("weakest", "psk-ccm8", "psk-cbc")}
    entry = Entry(
        family="mitm", title="DTLS ClientHello rewritten to a weaker suite list",
        seeds_say="seed 004 §7.1: DTLS 1.2 (RFC 6347) with the suites of the security mode; RFC 5246 §7.4.9: the "
                  "Finished messages cover the whole handshake, so a rewritten hello cannot complete; seed 004 §7.1 "
                  "forbids the plain PSK suites for a low-entropy secret.",
        knowledge="none", position="the IP path of the LwM2M DTLS associations", time="one DTLS handshake",
        expected="detected in every DTLS profile (the client refuses a suite it did not offer, or the Finished "
                 "fails); n/a where no association uses DTLS")

    @classmethod
    def check(cls, data, spec):
        if not (lwm2m_profiles(data, bootstrap=("psk", "low_entropy_psk", "certificate", "rpk"))
                or lwm2m_profiles(data, binding="U", security_mode=("psk", "rpk", "certificate"))):
            return "downgrade-dtls rewrites DTLS ClientHellos: it needs an LwM2M profile with a DTLS association"
        return None

    def install(self) -> None:
        super().install()
        self.rewritten: Counter[str] = Counter()  # "<from> -> <to>" suite lists
        self.changed: dict[int, set[str]] = {}    # device -> services whose hello was changed
        self.completed: set[int] = set()

    def _suites(self, offered: tuple[int, ...]) -> tuple[int, ...]:
        real = tuple(s for s in offered if s != _SCSV)
        to = self.p["to"]
        if to == "weakest":
            new = real[-1:] if len(real) > 1 else (_PLAIN_PSK[0] if real != _PLAIN_PSK[:1] else _PLAIN_PSK[1],)
        else:
            new = (_PLAIN_PSK[0] if to == "psk-ccm8" else _PLAIN_PSK[1],)
        return tuple(new) + ((_SCSV,) if _SCSV in offered else ())

    def on_datagram(self, dev, service, from_client, msg, deliveries):
        index = dev.ident.index
        if not from_client:
            if service in self.changed.get(index, ()) and _epoch1_handshake(msg.payload):
                self.completed.add(index)  # the server's Finished: it took the client's
                self.decide(index, SUCCEEDED)
            return deliveries
        try:
            hello = wire.client_hello_of(msg.payload)
        except DecodeError:  # hostile bytes: left as they are
            hello = None
        if hello is None:
            return deliveries
        suites = self._suites(hello.cipher_suites)
        if suites == hello.cipher_suites:
            self.act(index, "left a ClientHello as it was (nothing weaker to offer)")
            return deliveries
        changed = dtls_hello.rewrite_suites(msg.payload, suites)
        if changed is None:
            return deliveries
        self.changed.setdefault(index, set()).add(service)
        self.rewritten[f"{','.join(f'{s:04X}' for s in hello.cipher_suites)} -> "
                       f"{','.join(f'{s:04X}' for s in suites)}"] += 1
        self.act(index, f"rewrote a ClientHello to {service}")
        return [(extra, changed) for extra, _ in deliveries]

    def finished(self, dev, ok: bool, reason: str) -> None:
        index = dev.ident.index
        if index in self.changed and index not in self.outcomes and dtls_failures(self.replica):
            # the server refused the Finished (its alert goes out encrypted under keys the client does
            # not share, so the client may give up on a CoAP timer first): recorded by the server
            self.ends[reason or "ok"] += 1
            self.decide(index, DETECTED)
            return
        super().finished(dev, ok, reason)

    def judge(self):
        tally, evidence = self.tally(rewritten=dict(self.rewritten), completed=len(self.completed),
                                     dtls_failures=dtls_failures(self.replica))
        if tally.get(SUCCEEDED):
            return self.outcome(SUCCEEDED, "none: an association completed on a rewritten ClientHello",
                                state_corrupted=True, **evidence)
        if tally.get(DETECTED):
            return self.outcome(DETECTED, "DTLS handshake integrity (RFC 6347, RFC 5246 §7.4.9, RFC 7627): the client "
                                "refused a suite it did not offer (alert 47) or the server could not verify the "
                                "client's Finished (the transcripts differ); counted in the services' failed.*", **evidence)
        if self.acted:
            return self.outcome(BLOCKED, "the rewrite changed nothing the handshake depended on", **evidence)
        return self.outcome(INCONCLUSIVE, "no targeted device sent a ClientHello", **evidence)


def dtls_failures(replica) -> dict[str, int]:
    """Return the DTLS failures the LwM2M servers' services counted (``failed.<side>.<reason>``)."""
    servers = replica.agents.get("lwm2m")
    out: Counter[str] = Counter()
    for service in (servers.services.values() if servers is not None else ()):
        out.update({k: v for k, v in service.stats.items() if k.startswith("failed.")})
    return dict(out)


def _epoch1_handshake(datagram: bytes) -> bool:
    """Return whether ``datagram`` holds an epoch-1 handshake record (a Finished)."""
    try:
        return any(r.epoch == 1 and r.content_type == wire.CT_HANDSHAKE for r in wire.split_records(datagram))
    except DecodeError:
        return False


class PinSearchAttack(DtlsPathAttack):
    """What the two PIN attacks share: the offline search of a recorded handshake's PIN
    (``dtls_offline``), run for real, its verdict given after ``guesses / guess_rate`` simulated
    seconds (succeeded when the PIN found is the bootstrap server's credential for the identity),
    and the search's evidence."""

    params = {"max_guesses": 10 ** 6, "guess_rate": PSK_GUESS_RATE}
    positive = ("max_guesses", "guess_rate")

    @classmethod
    def check(cls, data, spec):
        if not lwm2m_profiles(data, bootstrap="low_entropy_psk"):
            return (f"{cls.kind} needs an LwM2M profile with bootstrap low_entropy_psk (a PIN as the bootstrap PSK; "
                    "a high-entropy PSK, RPK or certificate bootstrap gives no PIN to search)")
        return None

    def install(self) -> None:
        super().install()
        self.searches: dict[int, dict] = {}
        self.suites: Counter[str] = Counter()

    def search_pin(self, dev, hs: dtls_offline.RecordedHandshake, other_secret: bytes | None = None) -> None:
        """Search ``dev``'s PIN on ``hs`` (with the ECDH secret ``other_secret`` when the attacker
        was the server end of an ECDHE-PSK handshake); BLOCKED at once when ``hs`` gives no oracle."""
        index = dev.ident.index
        self.suites[hs.suite_name] += 1
        reason = hs.no_oracle(other_secret)
        if reason:
            self.searches[index] = {"guesses": 0, "cpu": 0.0, "pin": None, "no_oracle": reason}
            self.decide(index, BLOCKED)
            return
        digits = int(dev.spec["pin_digits"])
        t0 = time.perf_counter()
        pin, tried = dtls_offline.search(dtls_offline.GuessOracle(hs, other_secret),
                                         dtls_offline.pins(digits, self.rng.randrange(10 ** digits)),
                                         limit=int(self.p["max_guesses"]))
        cpu = time.perf_counter() - t0
        cred = self.replica.agents["lwm2m"].psks["bootstrap"].get(hs.identity)
        right = pin is not None and cred is not None and cred.key == dtls_offline.pin_key(pin)
        self.searches[index] = {"guesses": tried, "cpu": cpu, "pin": pin, "right": right}
        seconds = tried / float(self.p["guess_rate"])
        self.env.timeout(seconds).callbacks.append(lambda _e: self.decide(index, SUCCEEDED if right else BLOCKED))

    def finished(self, dev, ok: bool, reason: str) -> None:
        if dev.ident.index in self.searches:
            return  # the search decides (now or after its simulated time)
        super().finished(dev, ok, reason)

    def search_evidence(self) -> dict:
        """Return the searches' evidence for ``judge``."""
        runs = list(self.searches.values())
        guesses, cpu = sum(r["guesses"] for r in runs), sum(r["cpu"] for r in runs)
        return dict(handshakes_recorded=len(runs), suites=dict(self.suites),
                    pins_found=sum(1 for r in runs if r.get("right")), guesses=guesses,
                    attacker_cpu_seconds=round(cpu, 4), guesses_per_second=round(guesses / cpu) if cpu > 0 else None,
                    simulated_search_seconds=round(guesses / float(self.p["guess_rate"]), 3))

    def not_found(self) -> str:
        """The mechanism of a search that ended without the PIN."""
        return f"PIN not found within max_guesses={int(self.p['max_guesses'])}"


@register
class LowEntropyPskSuite(PinSearchAttack):
    """Push a targeted PIN device's bootstrap handshake onto TLS_PSK_WITH_AES_128_CCM_8 (its
    ClientHello rewritten, ``rewrite``), record it, and search the PIN offline on the client's
    Finished when it crosses on a plain PSK suite (module doc). Verdict per device: the PIN
    recovered (checked against the bootstrap server's credential for the identity) = succeeded;
    the handshake refused before any oracle crossed, or the server's alert 71 = detected; an
    ECDHE-PSK handshake recorded (no oracle) or the PIN not within ``max_guesses`` = blocked."""

    kind = "low-entropy-psk-suite"
    params = {"rewrite": True, **PinSearchAttack.params}
    before_knockouts = ("lwm2m-client-low-entropy-on-plain-psk",)
    entry = Entry(
        family="guessing", title="a PIN bootstrap pushed onto a plain PSK suite, then the PIN searched offline",
        seeds_say="seed 004 §7.1: the PSK suites 'MUST NOT be used with only a low-entropy pre-shared secret'; a "
                  "PIN, password or serial number bootstraps with TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256 (RFC 5489) "
                  "only. On a plain PSK suite (RFC 4279) one recorded handshake is an offline oracle for the PIN.",
        knowledge="which devices bootstrap with a PIN and its length; the handshake on the IP path",
        position="the IP path to the LwM2M bootstrap server (rewrites the ClientHello, records the handshake)",
        time="one handshake, then 10^digits PRF evaluations at worst (dtls_offline: 4 digits in about 0.3 s, "
             "6 digits in about 30 s of CPython on one core)",
        expected="detected (the client offers and accepts ECDHE-PSK only); blocked when only recorded (rewrite "
                 "false: ECDHE-PSK gives no oracle); succeeded when the client offers a plain PSK suite with its "
                 "PIN, even though the server then refuses it with alert 71")

    def install(self) -> None:
        super().install()
        self.recorders: dict[int, dtls_offline.HandshakeRecorder] = {}
        self.rewritten = 0

    def on_datagram(self, dev, service, from_client, msg, deliveries):
        index = dev.ident.index
        if (not bootstrap_service(service) or dev.spec.get("bootstrap") != "low_entropy_psk"
                or index in self.searches):
            return deliveries
        if from_client and self.p["rewrite"]:
            changed = dtls_hello.rewrite_suites(msg.payload, (_PLAIN_PSK[0], _SCSV))
            if changed is not None:
                self.rewritten += 1
                self.act(index, "rewrote the bootstrap ClientHello to TLS_PSK_WITH_AES_128_CCM_8")
                deliveries = [(extra, changed) for extra, _ in deliveries]
        recorder = self.recorders.setdefault(index, dtls_offline.HandshakeRecorder())
        if not self.p["rewrite"] and index not in self.acted:
            self.act(index, "recording the bootstrap handshake")
        # the client's Finished is keyed by the hello it sent (RFC 7627 session hash): record that one
        handshake = recorder.feed(from_client, msg.payload)
        if handshake is not None:
            self.search_pin(dev, handshake)
        return deliveries

    def judge(self):
        tally, evidence = self.tally(rewritten=self.rewritten, **self.search_evidence())
        server_71 = self.alerts.get(f"server.{dtls_policy.ALERT_INSUFFICIENT_SECURITY}", 0)
        if tally.get(SUCCEEDED):
            return self.outcome(SUCCEEDED, "none: the client's Finished crossed on a plain PSK suite (RFC 4279), an "
                                "offline oracle for its PIN (seed 004 §7.1 forbids these suites with a low-entropy "
                                "secret)" + ("; the server's alert 71 came after the Finished, too late to keep the "
                                             "PIN" if server_71 else ""), state_corrupted=False, **evidence)
        if tally.get(DETECTED):
            return self.outcome(DETECTED, "low-entropy PSK rule (seed 004 §7.1): " + (
                "the server refused the PIN identity on the forbidden suite (alert 71)" if server_71 else
                "the client offers and accepts ECDHE-PSK only: it refused the rewritten handshake before its "
                "Finished"), **evidence)
        if tally.get(BLOCKED):
            return self.outcome(BLOCKED, "ECDHE-PSK (RFC 5489, seed 004 §7.1): the recorded handshake gives no "
                                "offline oracle" if any(r.get("no_oracle") for r in self.searches.values()) else
                                self.not_found(), **evidence)
        return self.outcome(INCONCLUSIVE, "no targeted PIN device's bootstrap handshake crossed the path", **evidence)


@register
class FakeBootstrapServer(PinSearchAttack):
    """Answer a targeted PIN device's bootstrap ClientHello as the bootstrap server
    (``dtls_fake_server``: ServerHello, ServerKeyExchange with the attacker's own ECDH key on
    secp256r1, ServerHelloDone), the hello and everything after it of that association dropped on
    the way to the real server; the client's ClientKeyExchange and Finished come back, and with the
    ECDH secret the Finished is an offline oracle for the PIN (module doc). Verdict per device:
    the PIN recovered (checked against the bootstrap server's credential) = succeeded; the client
    refused the fake flight (a fatal alert to the fake server) = detected; a client that offers no
    ECDHE-PSK on secp256r1 (its hello is left to the server), a device whose life ended before its
    Finished reached the attacker, or the PIN not within ``max_guesses`` = blocked."""

    kind = "fake-bootstrap-server"
    params = {"hint": "", **PinSearchAttack.params}
    entry = Entry(
        family="guessing", title="a fake bootstrap server answers a PIN device's ECDHE-PSK handshake, then the PIN "
                                 "is searched offline on the client's Finished",
        seeds_say="seed 004 §7.1 method 2 allows a low-entropy secret (PIN, password, serial number) with "
                  "TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256 (RFC 5489): that keeps the PIN from a passive observer "
                  "only. The ECDHE_PSK ServerKeyExchange is unsigned and the server proves the PSK only after the "
                  "client's Finished, so whoever answers the ClientHello knows the ECDH secret and the Finished is "
                  "an offline oracle; RFC 5489 §5 and RFC 4279 §7.2 (brute-force and dictionary attacks on a PSK "
                  "of limited entropy) leave that to the choice of a strong secret; only a PAKE would close it.",
        knowledge="which devices bootstrap with a PIN and its length; the bootstrap server's address",
        position="the IP path to the LwM2M bootstrap server (drops the device's hello, answers it as the server)",
        time="one handshake (a round trip), then 10^digits PRF evaluations at worst (4 digits in about 0.3 s of "
             "CPython on one core); the device's own bootstrap then fails (no server Finished ever comes)",
        expected="succeeded wherever the bootstrap is a low-entropy PSK, whatever the suites (ECDHE-PSK stops a "
                 "passive observer, not an active one); n/a elsewhere")

    def install(self) -> None:
        super().install()
        self.fakes: dict[int, dtls_fake_server.FakeEcdhePskServer] = {}
        self.left: set[int] = set()  # devices whose hello the fake server cannot answer
        self.dropped = self.flights = 0
        self.refusals: Counter[str] = Counter()

    def on_datagram(self, dev, service, from_client, msg, deliveries):
        index = dev.ident.index
        if (not from_client or not bootstrap_service(service) or dev.spec.get("bootstrap") != "low_entropy_psk"
                or index in self.left):
            return deliveries
        fake = self.fakes.get(index)
        if fake is None:
            try:
                hello = wire.client_hello_of(msg.payload)
            except DecodeError:
                hello = None
            if hello is None:
                return deliveries  # an association it did not take over (it acts from a ClientHello)
            fake = self.fakes[index] = dtls_fake_server.FakeEcdhePskServer(
                self.rng.randbytes, hint=str(self.p["hint"]).encode("utf-8"))
        answers = fake.receive(msg.payload)
        if fake.refusal and fake.client_random is None:
            del self.fakes[index]
            self.left.add(index)
            self.refusals[fake.refusal] += 1
            self.act(index, f"left the bootstrap ClientHello to the server: {fake.refusal}")
            self.decide(index, BLOCKED)
            return deliveries
        self.dropped += 1
        if dtls_hello.fatal_alerts(msg.payload) and index not in self.searches:
            self.decide(index, DETECTED)  # the client refused the fake flight
        if answers:
            self.flights += 1
            self.act(index, f"answered the bootstrap ClientHello as {service}")
            self.env.timeout(0).callbacks.append(lambda _e: self._down(dev, service, msg.src, answers))
        if fake.handshake is not None and index not in self.searches:
            if fake.shared_secret is None:
                self.refusals[fake.refusal or "no ECDH secret"] += 1
            self.search_pin(dev, fake.handshake, fake.shared_secret)
        return []

    def finished(self, dev, ok: bool, reason: str) -> None:
        index = dev.ident.index
        if index in self.acted and index not in self.searches and index not in self.outcomes:
            self.ends[reason or "ok"] += 1
            self.decide(index, BLOCKED)  # its life ended before its Finished reached the attacker
            return
        super().finished(dev, ok, reason)

    def _down(self, dev, service: str, address: str, datagrams: list[bytes]) -> None:
        """Send the fake server's datagrams to the device as ``service`` would (ip_down)."""
        servers = self.replica.agents["lwm2m"]
        found = next((s for s in servers.services.values() if s.name == service), None)
        link = found.clients.get(address.encode()) if found is not None else None
        if link is None:
            return  # the device let go of the association
        for datagram in datagrams:
            link.count(datagram)
            self.replica.ip_down.send(Message(datagram, service, address, DTLS_KIND, dev), link.arrive)

    def judge(self):
        tally, evidence = self.tally(hellos_answered=self.flights, dropped_to_server=self.dropped,
                                     refusals=dict(self.refusals), **self.search_evidence())
        if tally.get(SUCCEEDED):
            return self.outcome(SUCCEEDED, "none: ECDHE-PSK (seed 004 §7.1 method 2) keeps a PIN from a passive "
                                "observer only; nothing authenticates the server before the client's Finished, so "
                                "the attacker that answered as the bootstrap server knew the ECDH secret and searched "
                                "the PIN offline on that Finished (RFC 5489 §5, RFC 4279 §7.2)",
                                state_corrupted=False, **evidence)
        if tally.get(DETECTED):
            return self.outcome(DETECTED, "the client refused the fake server's flight before its Finished", **evidence)
        if tally.get(BLOCKED):
            why = sorted(self.refusals)
            if any(r["guesses"] for r in self.searches.values()):
                why.append(self.not_found())
            if self.ends:
                why.append(f"the device's life ended before its Finished ({', '.join(sorted(self.ends))})")
            return self.outcome(BLOCKED, "; ".join(why), **evidence)
        return self.outcome(INCONCLUSIVE, "no targeted PIN device's bootstrap ClientHello crossed the path", **evidence)


__all__ = ["DowngradeDtls", "LowEntropyPskSuite", "FakeBootstrapServer", "PinSearchAttack", "DtlsPathAttack",
           "lwm2m_dev", "bootstrap_service"]
