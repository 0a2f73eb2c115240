"""How a device reaches its UICC: the card side of the seam between simulated and real.

``components.card`` in the scenario picks it:

* ``virtual``: each device gets its own emulated UICC (``cards/``), built from its identity
  (IMSI from the fleet; K and OPc drawn from the replica's stream), and the device's host code
  talks to it with real APDUs through an in-process ``CardLink``; each APDU costs an
  ``apdu_time`` sample of simulated time;
* ``pcsc``: device 0 uses a real card through pcscd (pyscard); its identity (IMSI) is what that
  card holds, and the measured wall-clock time of the APDUs becomes simulated time. The other
  devices stay virtual (one card is one subscriber: two devices cannot share it).

A device reads its IMSI from the card when it arrives (TS 31.102 §4.2.2 EF_IMSI): that IMSI is
the NETWORKID secret of the §5.10.2.3 bootstrap HMAC, and the network (which knows its
subscribers) provisions the account under it.
"""
from __future__ import annotations

import dataclasses
import random
from typing import TYPE_CHECKING

from dmsim.cards.emulated import make_card
from dmsim.cards.link import CardLink, InProcessLink
from dmsim.cards.profile import PROFILE_SCHEMA, OtaKeyset, default_iccid, default_impi, profile_from_data
from dmsim.devices.card_host import read_imsi
from dmsim.sim.delays import make_delay
from dmsim.sim.schema import validate

if TYPE_CHECKING:  # pragma: no cover
    from dmsim.sim.engine import Replica


class _Trace:
    """Counts the raw exchanges of a link (GET RESPONSEs included) and copies them to the pcap."""

    def __init__(self, model: "Replica") -> None:
        self.model = model
        self.apdus = 0

    def __call__(self, c_apdu: bytes, r_apdu: bytes, seconds: float) -> None:
        self.apdus += 1
        if self.model.pcap is not None:
            self.model._capture(self.model.pcap.write_apdu, c_apdu, r_apdu)


class CardAccess:
    """Reads each arriving device's IMSI from its card and charges the time it took."""

    def __init__(self, spec: dict, model: "Replica", rng: random.Random):
        self.model = model
        self.rng = rng
        self.apdu_time = make_delay(spec["apdu_time"], "components.card.apdu_time")
        self.real_devices = 1 if spec["kind"] == "pcsc" else 0
        self.reader = spec.get("reader")
        self.pin = spec.get("pin")
        self._real_link: CardLink | None = None
        self.links: dict[int, CardLink] = {}
        self._template = profile_from_data(validate(PROFILE_SCHEMA, {"imsi": "001010000000000", "k": "00" * 16,
                                                                     "opc": "00" * 16}))

    def read_imsi(self, index: int, fleet_imsi: str, ota: OtaKeyset | None = None):
        """SimPy generator: return the IMSI device ``index`` reads from its card.

        With ``ota``, a virtual card also holds that OTA key set and stays in ``links`` (for
        the SMS-PP downloads of an OTA campaign) until ``release(index)``; a real card's keys
        are not known to the simulation, so it gets no OTA traffic.
        """
        env = self.model.env
        if index < self.real_devices:
            link = self._real()
            started = link.clock()
            imsi = read_imsi(link, pin=self.pin)
            yield env.timeout(link.clock() - started)
            return imsi
        t = self._template
        profile = dataclasses.replace(t, imsi=fleet_imsi, iccid=default_iccid(fleet_imsi),
                                      impi=default_impi(fleet_imsi, t.mnc_length),
                                      k=self.rng.randbytes(16), opc=self.rng.randbytes(16))
        if ota is not None:
            profile = dataclasses.replace(profile, ota=(ota,))
        counter = _Trace(self.model)
        link = InProcessLink(make_card(profile), trace=counter)
        imsi = read_imsi(link, pin=profile.pin1 if profile.pin1_enabled else None)
        if ota is not None:
            self.links[index] = link
        yield env.timeout(sum(self.apdu_time.sample(self.rng) for _ in range(counter.apdus)))
        return imsi

    def _real(self) -> CardLink:
        if self._real_link is None:
            from dmsim.cards.pcsc_link import PcscLink
            reader = int(self.reader) if str(self.reader).isdigit() else self.reader
            self._real_link = PcscLink(reader)
        return self._real_link

    def release(self, index: int) -> None:
        """Forget the kept card of device ``index`` (its session is over)."""
        self.links.pop(index, None)

    def close(self) -> None:
        """Release the real reader, if one was opened."""
        if self._real_link is not None:
            self._real_link.disconnect()
            self._real_link = None
