"""A worked example of an attack of one's own (README, "Writing an attack").

``attack_custom.yaml`` runs it (``kind: custom_attack.py:BootstrapJammer``, the file beside it). A jammer
on the SMS air interface drops every bootstrap SMS to its targets for ``seconds`` seconds from
``at``. The server resends its bootstrap every ``server.bootstrap_timeout`` seconds, at most
``server.bootstrap_retries`` times (OMA DM has no other recovery), so a jam longer than the
server's patience denies the device its account: the attack succeeded for that device.
"""
from __future__ import annotations

from dmsim.sim.agents.adversary.catalogue import Attack, Entry
from dmsim.sim.agents.adversary.outcome import BLOCKED, INCONCLUSIVE, SUCCEEDED
from dmsim.sim.agents.adversary.sms_forge import device_of, is_push_to


class BootstrapJammer(Attack):
    kind = "bootstrap-jammer"
    positions = ("sms_air",)
    params = {"seconds": 600.0}
    entry = Entry(family="flooding", title="jam the bootstrap SMS on the air",
                  seeds_say="nothing: SMS delivery is not protected against jamming",
                  knowledge="where the victim is", position="a jammer near the victim",
                  time="as long as the server keeps resending", expected="succeeded if the jam outlasts the resends")

    def install(self) -> None:
        # see every message on the radio leg to the devices, after the scenario's own tap
        for link in self.adversary.sms_links():
            self.adversary.tap(link, self.on_air)

    def on_air(self, msg, now, deliveries):
        index = device_of(msg)
        if index is None or not is_push_to(msg, index) or not self.targets(index):
            return deliveries
        if not self.at <= now < self.at + self.p["seconds"]:
            return deliveries
        self.act(index, "jammed a bootstrap SMS")  # counts an attempt, notes the first act, traces it
        return []  # nothing is delivered

    def device_verdict(self, dev) -> str:
        # called when the device's record is written: did it lose its bootstrap to the jam?
        if dev.ident.index not in self.acted:
            return ""
        lost = not dev.accepted
        self.decide(dev.ident.index, SUCCEEDED if lost else BLOCKED)
        return SUCCEEDED if lost else BLOCKED

    def judge(self):
        denied = sum(1 for v in self.outcomes.values() if v == SUCCEEDED)
        if not self.acted:
            return self.outcome(INCONCLUSIVE, "no bootstrap of a target crossed the air while jamming")
        if denied:
            return self.outcome(SUCCEEDED, "none: the server gave up resending before the jam ended",
                                jammed_devices=len(self.acted), denied=denied)
        return self.outcome(BLOCKED, "the server's bootstrap resends outlasted the jam (server.bootstrap_retries)",
                            jammed_devices=len(self.acted))
