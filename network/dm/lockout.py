"""Per-device backoff with lockout against online guessing of a DM client's credential.

OMA-TS-DM_Security-V1_3 §5.4.3 limits a *session* to one more challenge after a failed
credential, but says nothing about how many sessions a guesser may open: without a limit an
attacker tries thousands of passwords a second (one per fresh SessionID). The spec is silent, so
this is our choice:

* ``threshold`` consecutive failures for a device lock it for ``base`` seconds. After a lock
  ends the device gets one §5.4.3 round (``allowance`` = 2 attempts: a try and its retry with the
  challenge nonce); failing that round locks it again for twice as long, up to ``maximum``.
* While locked, every attempt is refused **without checking the credential** (no oracle) and
  does not extend the lock: an attacker hammering a locked device cannot keep it locked for
  ever, and gets ``allowance`` guesses per lock period (with the defaults about 20 guesses in the
  first hour, then 2 per ``maximum``, instead of thousands a second).
* A success clears the device's record. **How a legitimate client recovers**: it waits out the
  lock (its refusal is a SyncML 401/407 *without* Chal, so the client keeps the nonce it stored)
  and authenticates at its first attempt after the lock; a client with a stale nonce still has
  the one §5.4.3 round of ``allowance`` to recover it.

Trade-off: a lockout is also a denial of service an attacker can cause for a device it does not
own (guess badly, the device is locked). We keep it short and growing rather than permanent, and
leave per-address throttling (which tells the attacker's address from the device's) to the
driver, from the audit events (``ServerReply.audit``). State is in memory only: a restart clears
it (a persistent driver may re-feed it); a device's record is dropped on success. Records of
devices the server does not know live in a separate bounded table (``unknown_cap``, oldest
dropped first) so that unknown and known names get answers of the same shape without the
memory of the server growing with the names an attacker invents. Time is the ``now`` the core is
given (seconds; any monotonic or wall clock, used consistently).
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from dmsim.base.errors import ProtocolError


@dataclass(frozen=True)
class LockoutPolicy:
    """How many failures lock a device (``threshold``), for how long (``base`` seconds, doubled
    per further lock up to ``maximum``), attempts allowed between locks (``allowance``), and how
    many unknown device names are tracked (``unknown_cap``)."""

    threshold: int = 5
    base: float = 2.0
    maximum: float = 900.0
    allowance: int = 2
    unknown_cap: int = 4096

    def __post_init__(self):
        if self.threshold < 1 or self.allowance < 1 or self.unknown_cap < 1:
            raise ProtocolError("lockout policy: threshold, allowance and unknown_cap must be at least 1")
        if not 0 < self.base <= self.maximum:
            raise ProtocolError("lockout policy: need 0 < base <= maximum (seconds)")


@dataclass
class _Record:
    failures: int = 0       # failures since the last lock ended (or since the first failure)
    level: int = 0          # locks so far
    until: float = 0.0      # locked while now < until


class Lockout:
    """The failure records of the devices, known and unknown, under one :class:`LockoutPolicy`."""

    def __init__(self, policy: LockoutPolicy | None = None):
        self.policy = policy if policy is not None else LockoutPolicy()
        self._known: dict[str, _Record] = {}
        self._unknown: OrderedDict[str, _Record] = OrderedDict()

    def __len__(self) -> int:
        """Return how many devices have a record (known and unknown)."""
        return len(self._known) + len(self._unknown)

    def locked_for(self, device: str, now: float) -> float:
        """Return how many seconds ``device`` stays locked (0.0: not locked)."""
        record = self._known.get(device) or self._unknown.get(device)
        return max(0.0, record.until - now) if record is not None else 0.0

    def failed(self, device: str, now: float, *, known: bool = True) -> float:
        """Record a failed attempt; return the lock it starts in seconds (0.0: none)."""
        record = self._record(device, known)
        record.failures += 1
        limit = self.policy.threshold if record.level == 0 else self.policy.allowance
        if record.failures < limit:
            return 0.0
        duration = min(self.policy.base * 2 ** record.level, self.policy.maximum)
        record.level += 1
        record.failures = 0
        record.until = now + duration
        return duration

    def succeeded(self, device: str) -> None:
        """Forget the failures of ``device``: it authenticated."""
        self._known.pop(device, None)
        self._unknown.pop(device, None)

    def _record(self, device: str, known: bool) -> _Record:
        if known:
            return self._known.setdefault(device, _Record())
        record = self._unknown.pop(device, None) or _Record()
        self._unknown[device] = record
        while len(self._unknown) > self.policy.unknown_cap:
            self._unknown.popitem(last=False)
        return record
