"""How a device reaches its UICC: the card side of the seam between simulated and real.

``components.card`` in the scenario picks it:

* ``virtual``: each device gets its own emulated UICC (``cards/``), built from its identity
  (IMSI from the fleet; K and OPc drawn from the replica's stream), and the device's host code
  talks to it with real APDUs through an in-process ``CardLink``; each APDU costs an
  ``apdu_time`` sample of simulated time;
* ``pcsc``: device 0 uses a real card through pcscd (pyscard; the reader is opened by the driver
  the component registry names, ``sim/real/components.py``); its identity (IMSI) is what that
  card holds, and the measured wall-clock time of the APDUs becomes simulated time. The other
  devices stay virtual (one card is one subscriber: two devices cannot share it).

A device reads its IMSI from the card when it arrives (TS 31.102 §4.2.2 EF_IMSI): that IMSI is
the NETWORKID secret of the §5.10.2.3 bootstrap HMAC, and the network (which knows its
subscribers) provisions the account under it.

Smartcard bootstrap (fleet profile ``bootstrap_via: smartcard``; OMA-TS-DM_Security seed 001
§8.1, Appendix H): the operator personalises the virtual card before the device ships with a
``CardPersonalisation`` (the DM Bootstrap document in the PKCS#15 application) and a per-device
SCP03 key set drawn from the replica's card stream, which the device's ME knows too; at power-on
(:meth:`CardAccess.power_on`) the device reads its IMSI, then opens SCP03 at level 33 and installs
the authorised accounts into its DM tree (``devices/smartcard_bootstrap.py``). Every APDU of both
reads costs an ``apdu_time`` sample. The SCP03 host challenge is drawn from the same stream, so
the APDUs (and the pcap) are the same for the same seed. A real card is never personalised: the
simulation knows neither its SCP03 keys nor its PKCS#15 contents (see ``is_virtual``).
"""
from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from dmsim.cards import scp03
from dmsim.cards.emulated import make_card
from dmsim.cards.link import CardLink, InProcessLink
from dmsim.cards.profile import (PROFILE_SCHEMA, CardProfile, OtaKeyset, Scp03Keys, default_iccid, default_impi,
                                 profile_from_data)
from dmsim.devices.card_host import read_imsi, select_usim
from dmsim.devices.dm_tree import DmTree
from dmsim.devices.smartcard_bootstrap import power_on_bootstrap
from dmsim.sim.links.delays import make_delay
from dmsim.base.errors import DmsimError, ScenarioError
from dmsim.base.schema import validate

if TYPE_CHECKING:  # pragma: no cover
    from dmsim.sim.model.replica import Replica


class _Trace:
    """Counts the raw exchanges of device ``index``'s card link (GET RESPONSEs included) and,
    when the replica captures (``pcap``) or traces that device (``trace``), copies them there.

    The APDUs of a power-on run at one instant of the simulation and their simulated durations
    (one ``apdu_time`` sample each) are drawn afterwards, so they are held until :meth:`timed`
    says how long each took: APDU ``k`` is then written at ``now`` + the durations of the ones
    before it; :meth:`CardAccess.run` holds later ones the same way. Other later APDUs (an OTA
    download's) cost no simulated time and go out at once.
    """

    def __init__(self, model: "Replica", index: int) -> None:
        self.model = model
        self.index = index
        self.apdus = 0
        trace = model.trace
        self.out = model.pcap is not None or (trace is not None and trace.wants(index))
        self.held: list[tuple[bytes, bytes]] | None = [] if self.out else None

    def __call__(self, c_apdu: bytes, r_apdu: bytes, seconds: float) -> None:
        self.apdus += 1
        if self.held is not None:
            self.held.append((c_apdu, r_apdu))
        elif self.out:
            self._emit(0.0, c_apdu, r_apdu)

    def hold(self) -> None:
        """Hold the APDUs from now on until :meth:`timed` (when they are copied anywhere)."""
        if self.out:
            self.held = []

    def timed(self, samples: list[float]) -> None:
        """The held APDUs took ``samples`` seconds each, one after the other from now."""
        held, self.held = self.held, None
        offset = 0.0
        for (c_apdu, r_apdu), seconds in zip(held or (), samples):
            self._emit(offset, c_apdu, r_apdu)
            offset += seconds

    def _emit(self, offset: float, c_apdu: bytes, r_apdu: bytes) -> None:
        model = self.model
        if model.pcap is not None:
            model.capture(model.pcap.write_apdu, c_apdu, r_apdu, device=self.index, offset=offset)
        if model.trace is not None:
            model.trace.apdu(self.index, model.env.now + offset, c_apdu, r_apdu)


@dataclass(frozen=True)
class CardPersonalisation:
    """What the operator writes into a device's card for the smartcard bootstrap: the DM
    Bootstrap ``document`` (XML or WBXML bytes) and the device's policy, the ServerIDs it accepts
    a bootstrap from (``authorised``)."""

    document: bytes
    authorised: tuple[str, ...]


SCP03_KVN = 0x30  # the key version of the per-device set (any 01..7F would do)


class CardAccess:
    """Reads each arriving device's IMSI from its card and charges the time it took."""

    def __init__(self, spec: dict, model: "Replica", rng: random.Random,
                 open_reader: Callable[[dict], CardLink] | None = None):
        """``open_reader(spec)`` opens the real card of a kind other than ``virtual`` (from the
        replica's component registry, ``sim/model/components.py``)."""
        self.model = model
        self.rng = rng
        self.spec = spec
        self.apdu_time = make_delay(spec["apdu_time"], "components.card.apdu_time")
        if spec["kind"] != "virtual" and open_reader is None:
            raise ScenarioError(f"no driver for card kind {spec['kind']!r} in this replica's components",
                                path="components.card.kind", expected="a registered card kind")
        self.open_reader = open_reader
        # device 0's SIM is real: a card in a PC/SC reader, or the SIM of a serial modem
        self.real_devices = 1 if spec["kind"] != "virtual" or model.modem is not None else 0
        self.pin = model.modem.spec.get("pin") if model.modem is not None else spec.get("pin")
        self._real_link: CardLink | None = None
        self.links: dict[int, CardLink] = {}
        self.traces: dict[int, _Trace] = {}
        # an adversary between the ME and the UICC (sim/agents/adversary): (index, card) -> the card the ME talks to
        self.interpose: Callable[[int, object], object] | None = None
        self._template = profile_from_data(validate(PROFILE_SCHEMA, {"imsi": "001010000000000", "k": "00" * 16,
                                                                     "opc": "00" * 16}))

    def read_imsi(self, index: int, fleet_imsi: str, ota: OtaKeyset | None = None, *,
                  issued: Callable[[CardProfile], None] | None = None):
        """SimPy generator: return the IMSI device ``index`` reads from its card.

        With ``ota``, a virtual card also holds that OTA key set and stays in ``links`` (for
        the SMS-PP downloads of an OTA campaign) until ``release(index)``; a real card's keys
        are not known to the simulation, so it gets no OTA traffic. ``issued(profile)`` is told
        the virtual card's profile (its K and OPc: the operator's HSS records them), and the
        card then stays in ``links`` too, for :meth:`run`.
        """
        env = self.model.env
        if not self.is_virtual(index):
            link = self._real()
            started = link.clock()
            imsi = read_imsi(link, pin=self.pin)
            self.model.real_imsis.add(imsi)  # before any other device arrives at this instant
            yield env.timeout(link.clock() - started)
            return imsi
        profile = self._profile(fleet_imsi, ota)
        if issued is not None:
            issued(profile)
        link, counter = self._link(index, profile, ota, keep=issued is not None)
        imsi = read_imsi(link, pin=profile.pin1 if profile.pin1_enabled else None)
        yield env.timeout(self._apdu_seconds(counter))
        return imsi

    def run(self, index: int, operation: Callable[[CardLink], object]):
        """SimPy generator: return ``operation(link)`` on device ``index``'s kept virtual card,
        charging one ``apdu_time`` sample per APDU it exchanged (KeyError if no card is kept)."""
        link, counter = self.links[index], self.traces[index]
        before = counter.apdus
        counter.hold()
        result = operation(link)
        yield self.model.env.timeout(self._apdu_seconds(counter, counter.apdus - before))
        return result

    def is_virtual(self, index: int) -> bool:
        """Return True when device ``index`` has an emulated card (one the operator can personalise)."""
        return index >= self.real_devices

    def power_on(self, index: int, fleet_imsi: str, ota: OtaKeyset | None, card: CardPersonalisation,
                 tree: DmTree, *, issued: Callable[[CardProfile], None] | None = None):
        """SimPy generator: return ``(imsi, report)`` of the power-on of device ``index``, whose
        virtual card holds ``card`` and a fresh SCP03 key set: the IMSI read, then the smartcard
        bootstrap into ``tree`` (``report`` from ``power_on_bootstrap``: failures are in it, not
        raised). ``ota`` and ``issued`` as for :meth:`read_imsi`. A real card cannot be
        personalised: DmsimError."""
        if not self.is_virtual(index):
            raise DmsimError(f"device {index} has a real card: the simulation cannot personalise it")
        rng = self.rng
        keys = Scp03Keys(SCP03_KVN, rng.randbytes(16), rng.randbytes(16), rng.randbytes(16))
        profile = dataclasses.replace(self._profile(fleet_imsi, ota), scp03=keys, dm_bootstrap=card.document)
        if issued is not None:
            issued(profile)
        link, counter = self._link(index, profile, ota, keep=issued is not None)
        imsi = read_imsi(link, pin=profile.pin1 if profile.pin1_enabled else None)
        report = power_on_bootstrap(tree, link, scp03_keys=scp03.Scp03Keys(keys.enc, keys.mac, keys.dek, keys.kvn),
                                    authorised_servers=card.authorised, host_challenge=rng.randbytes(8))
        if issued is not None:  # the card's AKA comes later (GBA): the ME selects the USIM again
            select_usim(link)
        yield self.model.env.timeout(self._apdu_seconds(counter))
        return imsi, report

    def _profile(self, fleet_imsi: str, ota: OtaKeyset | None) -> CardProfile:
        """Return the profile of a virtual card for ``fleet_imsi`` (K and OPc drawn from the stream)."""
        t = self._template
        k = self.rng.randbytes(16)
        return dataclasses.replace(t, imsi=fleet_imsi, iccid=default_iccid(fleet_imsi),
                                   impi=default_impi(fleet_imsi, t.mnc_length), k=k, opc=self.rng.randbytes(16),
                                   ota=t.ota if ota is None else (ota,))

    def _link(self, index: int, profile: CardProfile, ota: OtaKeyset | None,
              keep: bool = False) -> tuple[CardLink, _Trace]:
        """Return a traced link to a new emulated card of ``profile``, kept in ``links`` if ``ota``
        or ``keep``."""
        counter = _Trace(self.model, index)
        card = make_card(profile)
        link = InProcessLink(card if self.interpose is None else self.interpose(index, card), trace=counter)
        if ota is not None or keep:
            self.links[index] = link
            self.traces[index] = counter
        return link, counter

    def _apdu_seconds(self, counter: _Trace, apdus: int | None = None) -> float:
        """Return the simulated card time of the APDUs ``counter`` saw (or of its last ``apdus``:
        one sample each, drawn in order; the capture gets them too, see ``_Trace``)."""
        samples = [self.apdu_time.sample(self.rng) for _ in range(counter.apdus if apdus is None else apdus)]
        if counter.out:
            counter.timed(samples)
        return sum(samples)

    def _real(self) -> CardLink:
        if self._real_link is None and self.model.modem is not None:
            self._real_link = self.model.modem.card_link()
        if self._real_link is None:
            self._real_link = self.open_reader(self.spec)
        return self._real_link

    def release(self, index: int) -> None:
        """Forget the kept card of device ``index`` (its session is over)."""
        self.links.pop(index, None)
        self.traces.pop(index, None)

    def close(self) -> None:
        """Release the real reader, if one was opened."""
        if self._real_link is not None:
            self._real_link.disconnect()
            self._real_link = None
