"""The virtual fleet: each device's identity, profile and secrets, drawn from the seed.

A device is described by a few small values, created when it arrives, so an idle million-device
fleet costs nothing. IMSIs use the test network 001/01 (TS 23.003 §2.2; MCC 001 is reserved for
testing) followed by the device index; user PINs, passwords and the DevInfo model are drawn from
the replica's random stream, so the same seed gives the same fleet.
"""
from __future__ import annotations

import bisect
import itertools
import random
from dataclasses import dataclass

from dmsim.network.dm.account import fresh_password

TEST_PLMN = "00101"


@dataclass(slots=True)
class DeviceIdentity:
    """What a device is before its bootstrap: index, IMSI, profile, PIN and credentials."""

    index: int
    imsi: str
    profile: dict
    userpin: str
    client_password: str
    server_password: str

    @property
    def uri(self) -> str:
        """The device's DM client URI (LocURI of Source in its messages)."""
        return f"IMSI:{self.imsi}"


class Fleet:
    """Draws device identities for a validated ``fleet`` spec."""

    def __init__(self, spec: dict, rng: random.Random):
        self.size = spec["size"]
        self.profiles = spec["profiles"]
        self._cum = list(itertools.accumulate(p["weight"] for p in self.profiles))
        self._rng = rng

    def device(self, index: int) -> DeviceIdentity:
        """Return the identity of device ``index`` (draws from the fleet's stream)."""
        rng = self._rng
        profile = self.profiles[bisect.bisect_right(self._cum, rng.random() * self._cum[-1])
                                if len(self.profiles) > 1 else 0]
        pin = "".join(rng.choices("0123456789", k=profile["user_pin_digits"]))
        return DeviceIdentity(index=index, imsi=f"{TEST_PLMN}{index:010d}", profile=profile, userpin=pin,
                              client_password=fresh_password(rng.randbytes),
                              server_password=fresh_password(rng.randbytes))
