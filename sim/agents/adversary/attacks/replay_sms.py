"""Replays on the SMS leg: a false base station records what the network sends a device on the
air and sends the same SMS-DELIVER TPDUs again, byte for byte.

What each push carries against a replay (and what dmsim's device does about it):

- the DM bootstrap (OMA-TS-DM_Security §5.10.2.3): an HMAC over the document, no counter, no
  nonce, no time: nothing in the message tells a copy from the original. Only the device's own
  state stands in the way (``sms_stack.at_device`` hands no bootstrap on once it holds its
  account);
- package #0 (OMA-TS-DM_Notification §6.2, DM_Security §5.7): a digest keyed with the server's
  password and the nonce the client issued, over a trigger naming the session id; the device acts
  on one only while it waits for one (``notification.waiting``);
- the GBA Push Info (3GPP TS 33.223 §4.3.3, §5.2.1): the AUTN's SQN (the USIM's SQN check,
  TS 33.102 §6.3.3) and the receiver's memory of P-TIDs it processed;
- a TS 102 225 secured command packet (SPI counter bits, §5.1.1): the card runs it only when its
  CNTR is higher than the TAR's stored counter, else answers a PoR with status 02 "CNTR low".

Choices where the seeds are silent (written down here): the attack captures the first whole push
of the kind it replays that crosses the air to each targeted device (its concatenated parts
reassembled by the attacker's own bookkeeping); it replays it once, ``after`` seconds after a
moment it sees on the air (``Replay.trigger``): the device's first DM request on its data
bearer (a 2G false base station relays the device's data too), the next SMS the network sends
that device, or the device's answer on the radio uplink. A device whose life in the replica is
over by then is out of the run (the simulation does not model a device after its session record):
the replay never reached it, and the attack is inconclusive for it.
"""
from __future__ import annotations

from typing import ClassVar

from dmsim.base.errors import DmsimError
from dmsim.cards.ota_app import STATE_COUNTERS, STATE_LAST
from dmsim.cards.scp80 import ResponseStatus
from dmsim.devices.sms_pp import is_data_download
from dmsim.network.dm.bootstrap_mac import BOOTSTRAP_MEDIA_TYPE
from dmsim.network.dm.notification import NOTIFICATION_CONTENT_TYPE, decode_push as decode_pkg0, verify_pkg0
from dmsim.network.gba.gpi_wap import parse_gpi_push
from dmsim.network.sms import tpdu, wsp_push
from dmsim.network.sms.udh import find_concat
from dmsim.sim.agents.adversary.catalogue import Attack, Entry, register
from dmsim.sim.agents.adversary.outcome import BLOCKED, DETECTED, INCONCLUSIVE, SUCCEEDED
from dmsim.sim.agents.adversary.sms_forge import device_of, is_push_to
from dmsim.sim.links.link import Message

TRIGGER_IP, TRIGGER_NEXT_SMS, TRIGGER_UPLINK = "ip", "next_sms", "uplink"
CNTR_LOW = int(ResponseStatus.CNTR_LOW)  # PoR status 02 "CNTR low" (ETSI TS 102 225 §5.2)
SETTLE_STEP, SETTLE_LIMIT = 0.05, 400  # re-reading a verdict the card computes in simulated time: 20 s at most


def index_of_address(address: str) -> int | None:
    """Return the device index of an SMS or IP address (``IMSI:<imsi>`` or the bare IMSI), or None:
    ``sms_forge.device_of``'s reading of a destination, applied to a source."""
    return device_of(Message(b"", address, address, ""))


def decode_deliver(pdu: bytes) -> tpdu.SmsDeliver | None:
    """Return the SMS-DELIVER in ``pdu``, or None when it is not one."""
    try:
        sms = tpdu.decode_tpdu(pdu, mt=True)
    except DmsimError:
        return None
    return sms if isinstance(sms, tpdu.SmsDeliver) else None


def concat_ref(pdu: bytes) -> int | None:
    """Return the concatenation reference of an SMS-DELIVER part (None: a single SMS)."""
    sms = decode_deliver(pdu)
    concat = None if sms is None else find_concat(sms.ies)
    return None if concat is None else concat.ref


class AirCapture:
    """The attacker's reassembly of what crosses the air to each device: the TPDUs of every push,
    grouped by concatenation reference (TS 23.040 §9.2.3.24.1) until all parts are there."""

    def __init__(self):
        self._parts: dict[tuple[int, int], dict[int, tuple[bytes, bytes]]] = {}

    def feed(self, index: int, pdu: bytes) -> tuple[list[bytes], bytes, tpdu.SmsDeliver] | None:
        """Take one TPDU to device ``index``; return (the push's TPDUs in order, its reassembled
        user data, the last part) once the push is whole, else None."""
        sms = decode_deliver(pdu)
        if sms is None:
            return None
        concat = find_concat(sms.ies)
        if concat is None:
            return [pdu], sms.user_data, sms
        parts = self._parts.setdefault((index, concat.ref), {})
        parts[concat.seq] = (pdu, sms.user_data)
        if len(parts) < concat.total:
            return None
        del self._parts[(index, concat.ref)]
        ordered = [parts[seq] for seq in sorted(parts)]
        return [p for p, _ in ordered], b"".join(u for _, u in ordered), sms


def push_content_type(payload: bytes) -> str:
    """Return the WSP Content-Type of a reassembled WAP Push (lower case, no parameters), or ""."""
    try:
        return wsp_push.decode_push(payload).content_type.split(";")[0].strip().lower()
    except DmsimError:
        return ""


class Replay(Attack):
    """A replay of one captured push per targeted device (see the module doc). Subclasses say
    which push they want (:meth:`wants`), when to replay (``trigger``), what to read from the
    device before (:meth:`snapshot`) and what the replay did (:meth:`verdict`)."""

    positions = ("sms_air",)
    params = {"after": 0.0}
    trigger: ClassVar[str] = TRIGGER_IP
    mechanisms: ClassVar[dict[str, str]] = {}

    def install(self) -> None:
        self.capture = AirCapture()
        self.captured: dict[int, list[bytes]] = {}
        self.armed: set[int] = set()     # captured, waiting for the trigger
        self.gone: set[int] = set()      # the device's life was over when the replay came
        self.evidence: dict[str, int] = {}
        self.fired = 0
        for link in self.adversary.sms_links():
            self.adversary.tap(link, self._on_air)
        if self.trigger == TRIGGER_IP:
            self.adversary.tap(self.replica.ip_up, self._on_uplink)
        elif self.trigger == TRIGGER_UPLINK:
            self.adversary.tap(self.replica.agents["smsc"].up, self._on_uplink)

    # -- the subclasses' part -----------------------------------------------------------------
    def wants(self, payload: bytes, sms: tpdu.SmsDeliver) -> bool:
        """Return whether a whole push (its user data ``payload``) is the one to replay."""
        raise NotImplementedError

    def snapshot(self, dev) -> tuple:
        """Return what the verdict compares against, read just before the replay."""
        return (dev.rejected, dev.notice_rejected, dev.account)

    def verdict(self, dev, before: tuple) -> str | None:
        """Return the device's verdict after the replay (None: not known yet, read again)."""
        rejected, notice_rejected, account = before
        if dev.account is not account:
            return SUCCEEDED
        if dev.rejected > rejected or dev.notice_rejected > notice_rejected:
            return DETECTED
        return BLOCKED

    # -- capture and trigger ------------------------------------------------------------------
    def _on_air(self, msg, now, deliveries):
        index = device_of(msg)
        if index is None or not self.active() or not is_push_to(msg, index) or not self.targets(index):
            return deliveries
        if index in self.armed and self.trigger == TRIGGER_NEXT_SMS:
            self._fire(index)
        elif index not in self.captured:
            whole = self.capture.feed(index, msg.payload)
            if whole is not None and self.wants(whole[1], whole[2]):
                self.captured[index] = whole[0]
                self.armed.add(index)
        return deliveries

    def _on_uplink(self, msg, now, deliveries):
        index = index_of_address(msg.src)
        if index in self.armed:
            self._fire(index)
        return deliveries

    def _fire(self, index: int) -> None:
        self.armed.discard(index)
        self.fired += 1
        self.env.timeout(float(self.p["after"])).callbacks.append(lambda _e: self._replay(index))

    def _replay(self, index: int) -> None:
        dev = self.replica.live.get(index)
        if dev is None:
            self.gone.add(index)
            return
        self.send(dev, self.captured[index])

    def send(self, dev, parts: list[bytes]) -> None:
        """Deliver ``parts`` to ``dev`` as a false base station, then read its verdict."""
        before = self.snapshot(dev)
        index = dev.ident.index
        self.act(index, f"replayed {len(parts)} SMS")
        for n, pdu in enumerate(parts):
            last = n == len(parts) - 1
            self.adversary.inject_sms(index, pdu, delay=0.001 * (n + 1),
                                      after=(lambda d, _r: self._read(d, before, 0)) if last else None)

    def _read(self, dev, before: tuple, tries: int) -> None:
        verdict = self.verdict(dev, before)
        if verdict is None and tries < SETTLE_LIMIT:
            self.env.timeout(SETTLE_STEP).callbacks.append(lambda _e: self._read(dev, before, tries + 1))
            return
        self.decide(dev.ident.index, verdict or BLOCKED)

    # -- the outcome --------------------------------------------------------------------------
    def judge(self):
        counts = {v: sum(1 for o in self.outcomes.values() if o == v) for v in (SUCCEEDED, DETECTED, BLOCKED)}
        evidence = {"captured": len(self.captured), "replayed": len(self.outcomes), "device_gone": len(self.gone),
                    **counts, **self.evidence}
        for verdict in (SUCCEEDED, DETECTED, BLOCKED):
            if counts[verdict]:
                return self.outcome(verdict, self.mechanisms[verdict], state_corrupted=verdict == SUCCEEDED,
                                    **evidence)
        if self.fired - len(self.outcomes) - len(self.gone) > 0 and not self.gone:
            return self.outcome(INCONCLUSIVE, "the replays were still waiting (after) when the run ended", **evidence)
        if self.gone:
            return self.outcome(INCONCLUSIVE, "every replay came after the device's life in the run was over "
                                "(the simulation does not model a device after its session record)", **evidence)
        return self.outcome(INCONCLUSIVE, "no wanted push to a targeted device crossed the air", **evidence)


@register
class BootstrapReplay(Replay):
    """Replay of a device's own §5.10.2.3 bootstrap (``when: after``, default: once the device
    holds its account, when its first DM request crosses the air, plus ``after`` seconds), or of
    another device's bootstrap to a device that has not bootstrapped yet (``when: before``: the
    captured bootstrap of the first targeted device goes to every other targeted device whose
    own bootstrap crosses the air, that one jammed when ``jam``).

    ``before`` stands in for the case the seeds point at (a bootstrap has no freshness, so a
    factory-reset device would take its old bootstrap again): dmsim's device has one life and no
    factory reset, so the nearest replay to a fresh device is another device's bootstrap, which
    the NETWORKID MAC (keyed by the IMSI) or a USERPIN MAC (a PIN per device) must refuse.

    Verdict per device: it installed the replayed account (a new account object: nonces and
    credentials reset to the bootstrap's) = succeeded; it counted a rejection (``bootstrap_rejected``,
    or a push it took for a package #0 and refused) = detected; it took no notice = blocked.
    """

    kind = "replay-bootstrap"
    params = {"after": 0.0, "when": "after", "jam": True}
    choices = {"when": ("after", "before")}
    mechanisms = {
        SUCCEEDED: "none: the bootstrap carries no freshness (no counter, nonce or time, OMA-TS-DM_Security "
                   "§5.10.2.3) and the device installed it again",
        DETECTED: "bootstrap HMAC (OMA-TS-DM_Security §5.10.2.3): keyed by the target's own IMSI/PIN, another "
                  "device's bootstrap does not verify; or a push taken for package #0 and refused",
        BLOCKED: "device state only: once it holds its account the device hands no bootstrap on "
                 "(sms_stack.at_device); nothing in the message itself tells the copy from the original (§5.10.2.3)",
    }
    entry = Entry(
        family="replay", title="a captured bootstrap SMS replayed on the air",
        seeds_say="§5.10.2.3: the bootstrap is protected by an HMAC only; it has no counter or nonce, so a replay "
                  "is not detectable from the message. The seeds leave the device's reaction to a second "
                  "bootstrap open.",
        knowledge="none beyond the captured SMS (which device it went to)",
        position="a false base station on the SMS air interface",
        time="any time after the original; before the target's own bootstrap for when=before",
        expected="blocked (when=after: the device ignores it); detected (when=before: the MAC binds the IMSI/PIN)")

    @classmethod
    def check(cls, data, spec):
        if not any(p.get("bootstrap_via", "sms") == "sms" for p in data["fleet"]["profiles"]):
            return "replay-bootstrap replays SMS bootstraps: it needs a profile with bootstrap_via sms"
        return None

    def install(self) -> None:
        super().install()
        self.source: int | None = None
        self.jam_ref: dict[int, int | None] = {}
        self.jammed = 0

    def wants(self, payload, sms):
        return push_content_type(payload) == BOOTSTRAP_MEDIA_TYPE

    def _on_air(self, msg, now, deliveries):
        if self.p["when"] == "after":
            return super()._on_air(msg, now, deliveries)
        index = device_of(msg)
        if index is None or not self.active() or not is_push_to(msg, index) or not self.targets(index):
            return deliveries
        if self.source is None:  # the victim whose bootstrap is replayed to the others
            whole = self.capture.feed(index, msg.payload)
            if whole is not None and self.wants(whole[1], whole[2]):
                self.source, self.captured[index] = index, whole[0]
            return deliveries
        dev = self.replica.live.get(index)
        if index == self.source or dev is None or dev.accepted:
            return deliveries
        ref = concat_ref(msg.payload)
        if index not in self.acted:
            self.jam_ref[index] = ref
            self.send(dev, self.captured[self.source])
        if self.p["jam"] and self.jam_ref.get(index) == ref:  # only the push the replay stands in for
            self.jammed += 1
            self.evidence["jammed"] = self.jammed
            return []
        return deliveries


@register
class Package0Replay(Replay):
    """Replay of the package #0 (DM_Notification §6) that started a device's server-initiated
    session, once that session runs (its first DM request crosses the air) plus ``after``.

    Verdict per device: a new session (the device took the package again) = succeeded; a refusal
    counted (``notice_rejected``: its digest no longer verifies with the device's nonce) =
    detected; no notice taken = blocked. Evidence ``digest_still_verifies``, read at the end of the
    run: how many replayed packages would still verify with the server nonce the device's client
    holds then (DM_Security §5.7 keys the digest with that nonce: whether a session rotated it).
    It is evidence only: the verdict is what the device did.
    """

    kind = "replay-package0"
    params = {"after": 0.0}
    needs = {"server": {"session_trigger": "notification"}}
    mechanisms = {
        SUCCEEDED: "none: the device opened a session on a replayed package #0",
        DETECTED: "package #0 digest (OMA-TS-DM_Notification §6.2, OMA-TS-DM_Security §5.7): the server nonce "
                  "it was computed with is no longer the device's",
        BLOCKED: "device state only: the device acts on a package #0 only while it waits for one "
                 "(notification.waiting); the copy was dropped unrecorded",
    }
    entry = Entry(
        family="replay", title="a captured package #0 replayed after the session it started",
        seeds_say="DM_Notification §6.2 / DM_Security §5.7: the digest uses the nonce the client issued for the "
                  "server; a client that rotates it after the session refuses a replay, one that does not would "
                  "open another session.",
        knowledge="none beyond the captured SMS", position="a false base station on the SMS air interface",
        time="after the session the original package started",
        expected="blocked (the device ignores package #0 outside its wait) or detected (nonce rotated)")

    @classmethod
    def check(cls, data, spec):
        if data["server"].get("session_trigger") != "notification":
            return "replay-package0 needs server.session_trigger: notification"
        return None

    def install(self) -> None:
        super().install()
        self.replayed_to: list = []

    def wants(self, payload, sms):
        return push_content_type(payload) == NOTIFICATION_CONTENT_TYPE

    def snapshot(self, dev):
        return (*super().snapshot(dev), dev.session_id, dev.notified)

    def verdict(self, dev, before):
        rejected, notice_rejected, account, session_id, notified = before
        self.replayed_to.append(dev)
        if dev.notified is not notified or dev.session_id != session_id:
            return SUCCEEDED
        return super().verdict(dev, (rejected, notice_rejected, account))

    def judge(self):
        still = self.evidence["digest_still_verifies"] = sum(1 for dev in self.replayed_to if self._still_verifies(dev))
        outcome = super().judge()
        if outcome.verdict == BLOCKED and still:
            outcome.mechanism += ("; the copy's digest still verifies: the client keeps the server nonce across "
                                  "sessions (OMA-TS-DM_Security §5.4.3: a new nonce SHOULD be used for each session)")
        return outcome

    def _still_verifies(self, dev) -> bool:
        """Return whether the replayed package #0 verifies with the server nonce the device holds
        now (its DM client's account, after the session's nonce updates, if any)."""
        account = dev.client.account if dev.client is not None else dev.account
        payload = b"".join(decode_deliver(p).user_data for p in self.captured[dev.ident.index])
        try:
            pkg0 = decode_pkg0(payload)
        except DmsimError:
            return False
        return account is not None and verify_pkg0(pkg0, account.server_id, account.server_password,
                                                   account.server_nonce)


@register
class GpiReplay(Replay):
    """Replay of the GBA Push Info (TS 33.223) a ``bootstrap_via: gba_push`` device processed,
    when the next SMS to it (its protected bootstrap) crosses the air, plus ``after``: the device
    still listens (it has not taken its bootstrap yet) and its card is idle again.

    Verdict per device, read once the card has run the GPI (its AKA takes simulated APDU time):
    the device refused it (``gpi_refused``, by kind at the NAF's ``gba.upa`` counters) =
    detected; new keys derived from it = succeeded; no notice taken = blocked.
    """

    kind = "replay-gpi"
    trigger = TRIGGER_NEXT_SMS
    mechanisms = {
        SUCCEEDED: "none: the device derived keys again from a replayed GPI",
        DETECTED: "GPI replay memory and SQN check (3GPP TS 33.223 §4.3.3, TS 33.102 §6.3.3): the P-TID was "
                  "already processed",
        BLOCKED: "device state only: the device took no notice of the GPI (it already held its bootstrap, or "
                 "its card was busy)",
    }
    entry = Entry(
        family="replay", title="a captured GBA Push Info replayed to the device",
        seeds_say="OMA-TS-DM_Security §5.10.2.4 leans on TS 33.223: the UE keeps the P-TIDs it processed and the "
                  "USIM's SQN check refuses an AUTN it has seen; a replayed GPI must be refused.",
        knowledge="none beyond the captured SMS", position="a false base station on the SMS air interface",
        time="after the original was processed", expected="detected")

    @classmethod
    def check(cls, data, spec):
        if not any(p.get("bootstrap_via") == "gba_push" for p in data["fleet"]["profiles"]):
            return "replay-gpi needs a profile with bootstrap_via: gba_push"
        return None

    def wants(self, payload, sms):
        try:
            return parse_gpi_push(payload) is not None
        except DmsimError:
            return False

    def snapshot(self, dev):
        state = dev.gba
        return (state, state.refused if state else 0, state.keys if state else None,
                dict(state.receiver.counters) if state else {})

    def verdict(self, dev, before):
        state, refused, keys, counters = before
        if state is None:
            return BLOCKED
        if state.busy:
            return None
        for kind, n in state.receiver.counters.items():
            if n > counters.get(kind, 0) and kind != "accepted":
                self.evidence[f"gpi_{kind}"] = self.evidence.get(f"gpi_{kind}", 0) + n - counters.get(kind, 0)
        if state.refused > refused:
            return DETECTED
        return SUCCEEDED if state.receiver.counters.get("accepted", 0) > counters.get("accepted", 0) else BLOCKED


@register
class OtaPacketReplay(Replay):
    """Replay of the TS 102 225 secured command packet (SMS-PP data download, TP-PID 7F) the OTA
    platform sent a device, once the device's answer to it crosses the radio uplink (RP-ACK, or
    the PoR's SMS-SUBMIT), plus ``after``.

    Verdict per device, read from its UICC once the ENVELOPE is answered (``ota.last``, the card's
    record of its last packet): the card ran the script again (PoR status 00, commands executed)
    = succeeded; it refused the packet and said so in a PoR (status 02 "CNTR low", TS 102 225
    §5.1.1, §5.2) = detected; refused without a PoR (the SPI asks none) = blocked.
    """

    kind = "replay-ota-packet"
    trigger = TRIGGER_UPLINK
    needs = {"smsc": {}, "ota": {}}
    mechanisms = {
        SUCCEEDED: "none: the card ran the replayed command packet again (its SPI asks no counter check, "
                   "TS 102 225 §5.1.1)",
        DETECTED: "replay counter (ETSI TS 102 225 §5.1.1 SPI counter bits, §5.2): CNTR not above the TAR's "
                  "stored counter, refused with PoR status 02",
        BLOCKED: "replay counter (ETSI TS 102 225 §5.1.1): refused, with no PoR asked by the SPI",
    }
    entry = Entry(
        family="replay", title="a captured OTA secured command packet replayed to the card",
        seeds_say="TS 102 225 §5.1.1: with counter checking the card processes a packet only when CNTR is "
                  "higher than the one it stored; the RFM minimum security level (TS 102 226 §8.2.1.3.2.4.1) "
                  "requires it.",
        knowledge="none beyond the captured SMS", position="a false base station on the SMS air interface",
        time="after the original was processed", expected="detected (PoR status 02)")

    @classmethod
    def check(cls, data, spec):
        if data.get("smsc") is None or data.get("ota") is None:
            return "replay-ota-packet needs an smsc block and an ota block"
        return None

    def install(self) -> None:
        super().install()
        self.statuses: set[int] = set()  # PoR status of each replay (-1: the card answered no packet status)

    def wants(self, payload, sms):
        return is_data_download(sms)

    def judge(self):
        outcome = super().judge()
        refusals = sorted(self.statuses - {0, CNTR_LOW})
        if outcome.verdict in (DETECTED, BLOCKED) and refusals:
            outcome.mechanism = (f"the card refused the packet before its counter check mattered: PoR status "
                                 f"{', '.join(f'{x:02X}' for x in refusals)} (ETSI TS 102 225 §5.2; 0A: below the "
                                 f"TAR's minimum security level, TS 102 226 §8.2.1.3.2.4.1)")
        return outcome

    def snapshot(self, dev):
        card = getattr(dev.card, "card", None)
        return (card,)

    def verdict(self, dev, before):
        card = before[0]
        if card is None:
            return BLOCKED
        last = card.state[STATE_LAST]
        self.statuses.add(-1 if last.status is None else last.status)
        self.evidence["por_status"] = max(self.statuses)
        self.evidence["card_counter"] = max(card.state[STATE_COUNTERS].values(), default=0)
        if last.status == 0 and last.executed:
            return SUCCEEDED
        return DETECTED if last.por else BLOCKED
