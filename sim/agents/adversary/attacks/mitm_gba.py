"""Man in the middle on the GBA paths: a fake BSF.

3GPP TS 33.220 §4.5.2 and TS 24.109 §4 (with RFC 3310): GBA bootstrapping is the 3G AKA run over
HTTP Digest. The AKA authenticates the network: the card accepts a challenge only if AUTN's MAC
verifies under the subscriber key K it shares with the HSS (TS 33.102 §6.3.3), and the ME
checks ``rspauth`` of the 200 OK. A BSF that does not hold K cannot produce either.
"""
from __future__ import annotations

from dmsim.network.gba.bsf import Bsf
from dmsim.network.gba.hss import Hss
from dmsim.network.gba.hss_store import Subscriber, SubscriberStore
from dmsim.network.dm.http_binding import decode
from dmsim.base.errors import DmsimError
from dmsim.sim.agents.adversary.catalogue import Attack, Entry, register
from dmsim.sim.agents.adversary.outcome import BLOCKED, DETECTED, INCONCLUSIVE, SUCCEEDED
from dmsim.sim.links.link import Message
from dmsim.sim.links.transports import sim_unix_time

UNAUTHENTICATED = "ub_unauthenticated"  # the device's reason when AUTN or rspauth did not verify (gba_ub.py)


@register
class FakeBsf(Attack):
    """On the IP path of ``gba_ub`` devices (a rogue access point, DNS spoofing), the attacker
    takes every Ub request of a targeted device off the wire and answers it from a BSF of its own
    (the real ``network/gba/bsf.Bsf`` core) whose HSS holds the victim's IMPI and IMSI, public
    both, with a key K and OPc of the attacker's choosing: it does not know the card's.

    Per device, read from its record: it ended ``ub_unauthenticated`` (its card refused AUTN, or
    the ME refused ``rspauth``): detected; it holds a B-TID from the fake BSF: succeeded (the
    attacker would then hold Ks); it ended otherwise: blocked.
    """

    kind = "fake-bsf"
    positions = ("bsf",)
    needs = {"fleet": {"profiles": [{"gba_ub": True}]}, "gba": {}}
    entry = Entry(
        family="mitm", title="a fake BSF answers the device's GBA bootstrapping (Ub)",
        seeds_say="TS 33.220 §4.5.2 / TS 33.102 §6.3.3: the UICC checks AUTN's MAC under K, so a BSF without the "
                  "HSS's K is refused before any key is derived (mutual authentication of the AKA).",
        knowledge="the victim's IMPI (derived from its IMSI, TS 23.003 §13.3)",
        position="the IP path between the device and its BSF (rogue AP, DNS)", time="one Ub exchange",
        expected="detected (ub_unauthenticated)")

    @classmethod
    def check(cls, data, spec):
        if not any(p.get("gba_ub") for p in data["fleet"]["profiles"]):
            return "no profile bootstraps over Ub (gba_ub: true)"
        if data["components"]["bsf"]["kind"] != "virtual":
            return "the fake BSF replaces the simulated BSF's answers on the simulated ip links (components.bsf: virtual)"
        return None

    def install(self) -> None:
        self.hss = Hss(SubscriberStore(":memory:"), self.rng.randbytes)
        self.bsf = Bsf(self.hss, self.replica.data["gba"]["bsf_fqdn"], randbytes=self.rng.randbytes)
        self.known: set[str] = set()
        self.adversary.tap(self.adversary.ip_links()[0], self._on_up)

    def _on_up(self, msg, now, deliveries):
        if msg.kind != "ub" or not self.active() or not deliveries:
            return deliveries
        dev = msg.meta[0]
        index = dev.ident.index
        if not self.targets(index):
            return deliveries
        self.act(index, "answered a Ub request from a fake BSF")
        self._enrol(dev)
        answer = self.bsf.handle(msg.payload, sim_unix_time(now))
        self.replica.ub.respond(Message(answer, "bsf", dev.ident.uri, "ub", msg.meta))
        return []  # the real BSF never sees it

    def _enrol(self, dev) -> None:
        """Put the victim's public identities in the fake HSS, with a K of the attacker's own."""
        try:
            request = decode_user(dev)
        except DmsimError:
            return
        if request in self.known:
            return
        self.known.add(request)
        self.hss.provision([Subscriber(request, dev.ident.imsi, self.rng.randbytes(16), self.rng.randbytes(16),
                                       b"\x80\x00", 1, dev.ident.profile.get("gba_uicc", "u") == "u", 86400)])

    def device_verdict(self, dev) -> str:
        index = dev.ident.index
        if index not in self.acted:
            return ""
        if dev.ub is not None:
            verdict = SUCCEEDED
        else:
            verdict = DETECTED if self.adversary.reason == UNAUTHENTICATED else BLOCKED
        self.decide(index, verdict)
        return verdict

    def judge(self):
        verdicts = list(self.outcomes.values())
        evidence = {"devices": len(self.acted), "refused_by_card_or_me": verdicts.count(DETECTED),
                    "bootstrapped_with_fake_bsf": verdicts.count(SUCCEEDED)}
        if not self.acted:
            return self.outcome(INCONCLUSIVE, "no Ub request of a target crossed the path", **evidence)
        if SUCCEEDED in verdicts:
            return self.outcome(SUCCEEDED, "none: the device took the fake BSF's challenge", state_corrupted=True,
                                **evidence)
        if DETECTED in verdicts:
            return self.outcome(DETECTED, "AKA network authentication: AUTN's MAC under K (TS 33.102 §6.3.3, "
                                          "TS 33.220 §4.5.2)", **evidence)
        return self.outcome(BLOCKED, "the devices' bootstrapping failed another way", **evidence)


def decode_user(dev) -> str:
    """Return the IMPI the device names in its Ub requests (TS 23.003 §13.3, from its IMSI)."""
    from dmsim.cards.profile import default_impi
    return default_impi(dev.ident.imsi, 2)
