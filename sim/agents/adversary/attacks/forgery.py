"""Forgery from public knowledge: a bootstrap forged by whoever knows the victim's IMSI.

OMA-TS-DM_Security §5.10.2.3: the NETWORKID key is derived from the IMSI alone, which is not a
secret (it is printed in logs, sent in clear on the radio before a TMSI exists, and sequential
in a fleet). The seeds allow NETWORKID as a bootstrap security, so the forgery must *succeed*
against NETWORKID devices; USERPIN and USERPIN_NETWORKID need the PIN the attacker lacks.
"""
from __future__ import annotations

from dmsim.network.dm.bootstrap_mac import KEY_TYPES, NETWORKID
from dmsim.sim.agents.adversary.catalogue import Attack, Entry, register
from dmsim.sim.agents.adversary.outcome import BLOCKED, DETECTED, INCONCLUSIVE, SUCCEEDED
from dmsim.sim.agents.adversary.sms_forge import ForgedServer, deliver_tpdus, device_of, is_push_to
from dmsim.sim.agents.dm_server import SERVER_SMS_ADDRESS, scts_of


class Forgery(Attack):
    """What the forgeries of a pushed message share: per device, the moment the forged push is
    complete there, it took it (succeeded), refused and counted it (detected) or ignored it
    (blocked) (:meth:`settle`); over the run, the worst of those (:meth:`forgery_outcome`)."""

    def install(self) -> None:
        self.accepted: set[int] = set()
        self.refused: set[int] = set()

    def settle(self, index: int, *, took: bool, refused: bool) -> None:
        """Decide device ``index``: it took the forged message, or refused it, or neither."""
        if took:
            self.accepted.add(index)
            self.decide(index, SUCCEEDED)
        elif refused:
            self.refused.add(index)
            self.decide(index, DETECTED)
        else:
            self.decide(index, BLOCKED)

    def forgery_outcome(self, acted: bool, *, none: str, success: str, refusal: str, blocked: str, **evidence):
        """Return the run's Outcome: inconclusive (``none``) if the attack never ``acted``, else
        succeeded if a device took a forgery, detected if one refused it, else blocked; the
        evidence counts both."""
        evidence = {"accepted": len(self.accepted), "refused": len(self.refused), **evidence}
        if not acted:
            return self.outcome(INCONCLUSIVE, none, **evidence)
        if self.accepted:
            return self.outcome(SUCCEEDED, success, state_corrupted=True, **evidence)
        if self.refused:
            return self.outcome(DETECTED, refusal, **evidence)
        return self.outcome(BLOCKED, blocked, **evidence)


BOOTSTRAP_MAC_REFUSAL = "bootstrap HMAC (OMA-TS-DM_Security §5.10.2.3): the device's key differs"


class BootstrapForgery(Forgery):
    """Replace each targeted device's bootstrap on the air (a false base station jams the
    server's SMS to it until its own push is complete there) with one that installs the attacker's DM account,
    MAC'd under ``key_type`` (``profile``: the key the device's profile uses) with the PIN
    ``guess`` where a PIN is needed. The TP-OA is the server's short code (spoofed).

    Verdict per device, read the moment the forged push is complete at the device: it holds the
    attacker's account (succeeded, state corrupted), or it refused the push (detected: its
    ``bootstrap_rejected`` grew). Over the run: succeeded if any device took the account.
    """

    positions = ("sms_air",)
    params = {"key_type": "profile", "guess": "0000", "jam": True}
    success_mechanism = ""

    @classmethod
    def check(cls, data, spec):
        if not any(p["bootstrap_via"] in ("sms", "gba_push") for p in data["fleet"]["profiles"]):
            return "no profile bootstraps over SMS (bootstrap_via sms or gba_push): no bootstrap crosses the air"
        return None

    def install(self) -> None:
        super().install()
        self.forger = ForgedServer(self.rng)
        self.sent: set[int] = set()
        self.key_types: dict[int, str] = {}  # device -> the key type its forged bootstrap was MAC'd under
        for link in self.adversary.sms_links():
            self.adversary.tap(link, self._on_air)

    def _key_type(self, profile: dict) -> str:
        key_type = self.p["key_type"]
        return profile["bootstrap_security"] if key_type == "profile" else key_type

    def _on_air(self, msg, now, deliveries):
        index = device_of(msg)
        if index is None or not self.active() or not is_push_to(msg, index):
            return deliveries
        dev = self.replica.live.get(index)
        if dev is None or dev.accepted or not self.targets(index):
            return deliveries
        if index not in self.sent:
            self.sent.add(index)
            self._forge(dev)
        # the jam lasts until the forged push is complete at the device; then the server's resends pass
        return [] if self.p["jam"] and index not in self.outcomes else deliveries

    def _forge(self, dev, key_type: str | None = None, pin: str | None = None) -> None:
        """Inject the forged bootstrap (``key_type``/``pin`` None: this attack's params decide)."""
        ident = dev.ident
        key_type = key_type or self._key_type(ident.profile)
        pin = (pin or self.p["guess"]) if "USERPIN" in key_type else None
        push = self.forger.bootstrap_push(ident.uri, ident.imsi, key_type, pin, ident.index)
        parts = deliver_tpdus(push, SERVER_SMS_ADDRESS, scts_of(self.env.now), self.rng.randrange(256))
        self.key_types[ident.index] = key_type
        self.act(ident.index, f"forged {key_type} bootstrap, {len(parts)} SMS")
        for n, pdu in enumerate(parts):
            last = n == len(parts) - 1
            self.adversary.inject_sms(ident.index, pdu, delay=0.001 * (n + 1), after=self._check if last else None)

    def _check(self, dev, rejected_before: int) -> None:
        took = dev.accepted and dev.account is not None and dev.account.server_id == self.forger.core.server_id
        self.settle(dev.ident.index, took=took, refused=dev.rejected > rejected_before)

    def judge(self):
        return self.forgery_outcome(bool(self.sent), none="no targeted device's bootstrap crossed the air",
                                    success=self.success_text(), refusal=BOOTSTRAP_MAC_REFUSAL,
                                    blocked="the device ignored the forged push", forged=len(self.sent))


    def success_text(self) -> str:
        """The mechanism of a success: the class's own, or, when every accepted forgery was
        NETWORKID (the device's own key type, with ``key_type: profile``), the public IMSI."""
        if {self.key_types.get(i) for i in self.accepted} == {NETWORKID} and self.p["key_type"] == "profile":
            return NETWORKID_PUBLIC
        return self.success_mechanism


NETWORKID_PUBLIC = "none: the NETWORKID key is the IMSI, which is public (OMA-TS-DM_Security §5.10.2.3.1)"


@register
class NetworkIdForgery(BootstrapForgery):
    """A bootstrap forged with the NETWORKID key the victim's IMSI gives (see the module doc)."""

    kind = "forge-networkid-bootstrap"
    params = {"key_type": "NETWORKID", "guess": "0000", "jam": True}
    success_mechanism = (NETWORKID_PUBLIC + "; every DM client MUST support NETWORKID (DM-SEC-C-022-M) and the push "
                         "names its own SEC, so a USERPIN device takes it too")
    entry = Entry(
        family="forgery", title="NETWORKID bootstrap forged from the victim's IMSI",
        seeds_say="§5.10.2.3: NETWORKID's key is the IMSI; anyone who knows it computes a valid MAC. Every client "
                  "MUST support NETWORKID (DM-SEC-C-022-M) and the SEC is named by the push itself, so a device "
                  "set up for USERPIN accepts a NETWORKID bootstrap too: the seeds allow the forgery.",
        knowledge="the victim's IMSI (public: sequential in a fleet, sent in clear at first attach)",
        position="a false base station on the SMS air interface (or an SMSC account)",
        time="one bootstrap, before the server's own arrives",
        expected="succeeded against every profile that bootstraps over SMS")


@register
class UserPinForgery(BootstrapForgery):
    """A bootstrap forged under the device's own key type with a guessed PIN."""

    kind = "forge-bootstrap-guessed-pin"
    params = {"key_type": "profile", "guess": "0000", "jam": True}
    success_mechanism = "none: the guessed PIN was the device's"
    entry = Entry(
        family="forgery", title="bootstrap forged under the device's key type with a guessed PIN",
        seeds_say="§5.10.2.3: USERPIN keys need the PIN; without it the MAC fails and the device rejects.",
        knowledge="the victim's IMSI, one PIN guess", position="the SMS air interface", time="one bootstrap",
        expected="succeeded with NETWORKID; detected with USERPIN kinds (unless the guess is right)")

    @classmethod
    def check(cls, data, spec):
        key_type = (spec.get("params") or {}).get("key_type", "profile")
        problem = super().check(data, spec)
        if problem:
            return problem
        if key_type != "profile" and key_type not in KEY_TYPES:
            return f"key_type {key_type!r} is not profile or one of {', '.join(KEY_TYPES)}"
        return None
