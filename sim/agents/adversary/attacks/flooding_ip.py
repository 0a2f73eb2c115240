"""Flooding the DM server over IP: a storm of unauthenticated package 1s.

OMA-TS-DM_Security-V1_3 §5.4: a server authenticates each client message, so a package 1 from
someone without credentials costs it a parse, a digest and a 401 with a Chal (§5.4.3); the spec
says nothing of how many such requests a server must bear, nor of its capacity. dmsim's capacity
model is ``sim/agents/serving.py`` (``server.max_sessions`` slots, a FIFO for the rest, each
request a ``server.service_time`` sample); its core answers an unauthenticated request without
creating session state (``network/dm/server.py``, ``challenges.py``, ``lockout.py``). The storm
measures what the legitimate devices feel.

What it shows: ``Serving`` frees a slot when a reply ends the session or the connection closes,
and a 401 with a Chal ends neither (the client may retry), so a requester that never retries
keeps its slot though the core holds no session for it; with no idle timeout in the simulated
server, ``max_sessions`` invented DevIds deny every later device for the rest of the run. With
``answer`` (each session ended by its final refusal) the same storm leaves the slots free.
"""
from __future__ import annotations

import statistics
from collections import Counter

from dmsim.sim.agents.adversary.attacks.nonce import (Impostor, ServerAudit, SessionLog, device_uri, fake_uri,
                                                       fresh_session_id, plain_http_problem, send)
from dmsim.sim.agents.adversary.attacks.replay_ip import syncml_status
from dmsim.sim.agents.adversary.catalogue import Attack, Entry, register
from dmsim.sim.agents.adversary.outcome import BLOCKED, DETECTED, INCONCLUSIVE, SUCCEEDED

CLAIMS = ("fake", "real")


@register
class Package1Storm(Attack):
    """``rate`` package 1s a second for ``seconds`` from ``at``, each from its own endpoint with a
    fresh SessionID and a wrong Cred (``nonce.Impostor``); the DevIds are invented ones
    (``claim: fake``, IMSI 001 99 ...) or the targeted devices' own (``claim: real``, in turn).
    By default the attacker never answers the server's 401 Chal: each request is a package 1
    only. With ``answer`` it sends the client's retry (over the challenge's nonce, still wrong),
    whose final refusal ends that session, as a client that gives up properly would.

    Against a real server (``components.dm_server: socket`` at an ``http://`` url) each request
    reaches it through the same transport as the devices' (the endpoint's connection dropped after
    its answer, ``IpTransport.hang_up``), and the refusals are counted from its answers (401/407,
    or HTTP 403/429 from its throttle), since its audit log is its own.

    The criterion (ours; the spec sets none): the *legitimate* devices are those whose record was
    not written before ``at``. The storm succeeded when their success rate is below
    ``min_success`` (default 0.95), or when the median time of their DM session phase
    (``t_session_start`` to the record, successes only) exceeds ``max_slowdown`` (default 2.0)
    times the baseline: the median of the successful sessions whose record was written before
    ``at``. The latency criterion needs ``min_samples`` (default 5) sessions on each side: with
    fewer, two medians of a handful of exponential IP delays differ twofold by chance alone, so
    it is not applied (``baseline`` is then null in the evidence). Otherwise it failed: detected when the server's audit recorded its refusals (each
    unauthenticated package 1 is an audit event), blocked if not. The mechanism of a success is
    read from the server's slots at the end: the slots held by the attacker's DevIds
    (``Serving.active``) and the devices left waiting.
    """

    kind = "package1-storm"
    positions = ("ip",)
    params = {"rate": 50.0, "seconds": 60.0, "claim": "fake", "min_success": 0.95, "max_slowdown": 2.0,
              "min_samples": 5, "answer": False}
    choices = {"claim": CLAIMS}
    positive = ("rate", "seconds")
    matrix = {"at": 30}
    before_knockouts = ("server-slot-held-by-challenge",)
    entry = Entry(
        family="flooding", title="storm of unauthenticated package 1s against the DM server",
        seeds_say="§5.4/§5.4.3: every package 1 is authenticated and a failed one gets a 401 with a Chal; nothing in "
                  "the seeds bounds the work or state a stranger's requests may cost the server.",
        knowledge="the server's URL (and, with claim real, the victims' DevIds: sequential IMSIs)",
        position="anywhere that reaches the DM server over IP",
        time="the storm's length; its effect lasts as long as what it holds",
        expected="detected (every refusal is in the server's audit, and a refused package 1 holds no slot); "
                 "succeeded before issue 16, when each unanswered package 1 held a slot for the rest of the run, or "
                 "when the storm outruns the server's capacity")

    @classmethod
    def check(cls, data, spec):
        return plain_http_problem(data, real_ok=True)

    def install(self) -> None:
        self.claimed: set[str] = set()
        self.ours: set[str] = set()
        self.replies = {"answered": 0, "unanswered": 0}
        self.refused_answers = 0  # 401/407 answers the storm got, and HTTP 403/429
        self.throttled = 0  # HTTP 403/429 answers (a real server's per-address throttle)
        # the simulated server's audit; a real server's is its own log: the storm counts its 401s instead
        self.audit = ServerAudit(self.replica) if self.replica.data["components"]["dm_server"]["kind"] == "virtual" \
            else None
        self.sessions = SessionLog(self.replica)
        size = self.replica.data["fleet"]["size"]
        self.victims = [i for i in range(size) if self.targets(i)] if self.p["claim"] == "real" else []
        self.env.process(self._storm())

    def finished(self, dev, ok: bool, reason: str) -> None:
        self.sessions.record(dev, ok, reason)

    def _storm(self):
        if self.at > self.env.now:
            yield self.env.timeout(self.at - self.env.now)
        gap, end, n = 1.0 / float(self.p["rate"]), self.at + float(self.p["seconds"]), 0
        while self.env.now < end:
            if self.victims or self.p["claim"] == "fake":
                self.env.process(self._one(n))
            n += 1
            yield self.env.timeout(gap)

    def _one(self, n: int):
        """SimPy process: the storm's ``n``-th package 1."""
        index = self.victims[n % len(self.victims)] if self.victims else -1
        uri = device_uri(index) if index >= 0 else fake_uri(n)
        impostor = Impostor(self, uri, fresh_session_id(self))
        self.claimed.add(uri)
        self.ours.add(impostor.session_id)
        self.act(index, "package 1")
        reply = yield from send(self, impostor.endpoint, impostor.package1())
        self.replies["answered" if reply is not None else "unanswered"] += 1
        self._count_refusal(reply)
        retry = impostor.answer(reply) if self.p["answer"] else None
        if retry is not None:
            self._count_refusal((yield from send(self, impostor.endpoint, retry)))
        self.replica.transport.hang_up(impostor.endpoint)

    def _count_refusal(self, reply) -> None:
        """Count a refusal: a 401/407 answer (against a real server, what its audit log records) or
        an HTTP 403/429 (its throttle)."""
        status = getattr(reply, "start", None)
        if status in ("403", "429"):
            self.throttled += 1
        if syncml_status(reply) in (401, 407) or status in ("403", "429"):
            self.refused_answers += 1

    # -- judging ------------------------------------------------------------------------------
    def _rows(self):
        """Return (baseline rows, rows under the storm): the records written before ``at``, and the rest."""
        before = [r for r in self.sessions.rows.values() if r.t_end < self.at]
        during = [r for r in self.sessions.rows.values() if r.t_end >= self.at]
        return before, during

    def judge(self):
        before, during = self._rows()
        base = [r.session_time for r in before if r.ok and r.session_time is not None]
        times = [r.session_time for r in during if r.ok and r.session_time is not None]
        enough = min(len(base), len(times)) >= int(self.p["min_samples"])
        baseline = statistics.median(base) if base and enough else None
        median = statistics.median(times) if times else None
        success = sum(1 for r in during if r.ok) / len(during) if during else None
        simulated = self.audit is not None
        refused = (sum(1 for e in self.audit.entries if e.session_id in self.ours and e.device in self.claimed)
                   if simulated else self.refused_answers)
        server = self.replica.server
        slowdown = median / baseline if median is not None and baseline else None
        evidence = {"sent": self.attempts, **self.replies, "refusals_recorded": refused,
                    "legit_devices": len(during), "legit_success_rate": success, "legit_session_p50": median,
                    "baseline_session_p50": baseline, "slowdown": slowdown,
                    "slots": server.max_sessions if simulated else None,
                    "slots_held_by_attacker": len(server.active & self.claimed) if simulated else 0,
                    "left_waiting": len(server.waiting) if simulated else None, "throttled": self.throttled}
        if not self.acted:
            return self.outcome(INCONCLUSIVE, "the storm never started before the horizon", **evidence)
        if not during:
            return self.outcome(INCONCLUSIVE, "no legitimate device was in the run during or after the storm",
                                **evidence)
        hurt_success = success < float(self.p["min_success"])
        hurt_latency = slowdown is not None and slowdown > float(self.p["max_slowdown"])
        if hurt_success or hurt_latency:
            slow = float(self.p["max_slowdown"]) * (baseline or float("inf"))
            hurt = [r.t_end for r in during if not r.ok or (r.session_time or 0.0) > slow]
            self.decided = min(hurt, default=None)  # the first legitimate record the storm spoiled
            return self.outcome(SUCCEEDED, self._mechanism(evidence, hurt_success),
                                state_corrupted=evidence["slots_held_by_attacker"] > 0, **evidence)
        self.decided = min(self.at + float(self.p["seconds"]), self.env.now)  # the storm is over, nobody hurt
        held = evidence["slots_held_by_attacker"] > 0
        if refused:
            return self.outcome(DETECTED, "the server answered every package 1 without session state (network/dm/"
                                "server.py: no state before authentication) and within its capacity "
                                "(sim/agents/serving.py); its audit records each refusal", state_corrupted=held,
                                **evidence)
        return self.outcome(BLOCKED, "no package 1 of the storm reached the server's record", state_corrupted=held,
                            **evidence)

    def _mechanism(self, evidence: dict, hurt_success: bool) -> str:
        what = (f"legitimate success rate {evidence['legit_success_rate']:.2f} < {self.p['min_success']}"
                if hurt_success else f"legitimate DM sessions {evidence['slowdown']:.1f}x slower than before the storm")
        if evidence["slots_held_by_attacker"]:
            return (f"none: {what}. Server capacity (sim/agents/serving.py): a package 1 refused with a 401 Chal "
                    f"keeps its session slot until that session ends or its connection closes, so the "
                    f"{evidence['slots_held_by_attacker']} DevIds the attacker never followed up hold "
                    f"{evidence['slots_held_by_attacker']} of {evidence['slots']} slots for good (no idle timeout); "
                    f"{evidence['left_waiting']} requests were left waiting")
        if self.audit is None:  # a real server: what its answers to the legitimate devices were
            failures = Counter(r.reason.split(":")[0] for r in self.sessions.rows.values() if not r.ok)
            return (f"none: {what}; the real server's answers to the legitimate devices: "
                    + ", ".join(f"{reason} {n}" for reason, n in sorted(failures.items()))
                    + (f" (its per-address throttle answered {self.throttled} of the storm's requests 429: the "
                       "legitimate devices share the storm's address)" if self.throttled else ""))
        return f"none: {what} (the server's capacity, sim/agents/serving.py, was spent on the storm)"
