"""``dmsim run --trace DEVICE[,...]``: one device's story, as ``trace.jsonl`` in the run folder.

The trace follows the chosen devices of the **first replica of the first sweep point** (as the
pcap does: simulated time restarts with every replica). A device is named by its index, the
``device`` column of sessions.csv, or by its fleet IMSI (``00101`` followed by the index in ten
digits, ``sim/model/fleet.py``); a device whose card is real (device 0 behind PC/SC or a serial
modem) uses the card's IMSI on the links and is followed by its index only.

File format: JSON Lines (https://jsonlines.org: UTF-8, one JSON object per line), in the order
the simulation produced the events; ``t`` is simulated seconds rounded to microseconds (as in
sessions.csv). Line kinds (``event``):

- ``device``: the first line per traced device: ``device``, ``imsi``, and the ``ip`` it has in
  the pcap (``sim/results/pcap.py``);
- ``message``: one step of one message on a simulated link (``links.sms``, ``links.ip``, the
  SMSC's ``smsc.radio``/``smsc.radio_up``): ``agent`` (who sent it: ``device``, ``smsc``,
  ``server`` (the DM server), ``lwm2m-bootstrap`` or ``lwm2m-server`` (the LwM2M servers, as
  ``pcap.SERVERS`` names them)), ``link``, ``dir`` (``src -> dst``; an LwM2M datagram's ends are
  the device's transport address ``lwm2m-<index>`` and the server's service, e.g.
  ``lwm2m-bootstrap-psk``), ``kind`` (the message kind of sim/agents: ``dm``, ``dtls``, ``coap``,
  ``sms-deliver``, ...), ``size`` (octets), ``fields`` (``trace_fields.py``) and ``outcome``:
  ``sent``; then
  ``queue_full`` (refused by a full link queue), ``lost`` (the link's loss), ``dropped_by_tap``,
  ``changed_by_tap``, ``replayed_by_tap`` (the adversary tap), ``delivered`` (handed to the
  receiver, ``t`` is the arrival) and ``delivered_again`` (a duplicate or replay arriving);
- ``apdu``: one command/response pair between the device and its UICC (``link: card``,
  ``dir: ME -> UICC``), at its start in simulated time (each APDU takes an ``apdu_time``
  sample, ``sim/links/card_access.py``), ``outcome: answered``;
- ``attack``: an attack of the scenario's ``attacks`` acted on the device (``agent``:
  ``adversary``, ``kind``: the attack, ``what``: what it did, e.g. "forged NETWORKID bootstrap,
  3 SMS"); what its acts did to the messages shows in their ``message`` lines;
- ``record``: the device's session record as written to sessions.csv (``record``: column ->
  value), when its life ends. Only the fate of messages already on their way may follow it (a
  close_notify, an RP-ACK still in flight: ``delivered``, ``lost``, ...), nothing ``sent``.

Cost when off: the runner attaches nothing, and the links' only cost is their ``observer is
None`` test. When on, only messages of the traced devices are decoded. Nothing here draws from a
random stream or schedules a SimPy event, so a traced run writes the same sessions.csv.

Secrets never reach the file: only the header fields of ``trace_fields.py`` are written, never
SMS user data, HTTP bodies, TLS plaintext or APDU data.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable, Iterable

from dmsim.base.errors import DmsimError, ScenarioError
from dmsim.sim.model.fleet import TEST_PLMN
from dmsim.sim.results.atomic import commit_part, part_path
from dmsim.sim.results.ip_capture import DATAGRAM_KINDS, datagram_ends
from dmsim.sim.results.pcap import device_ip
from dmsim.sim.results.records import COLUMNS
from dmsim.sim.results.trace_fields import apdu_fields, message_fields

_IMSI_DIGITS = 15   # TS 23.003 §2.2: MCC + MNC + MSIN, at most 15 digits
_NETWORK_ENDS = ("smsc", "server")


def fleet_imsi(index: int) -> str:
    """Return the IMSI the fleet gives device ``index`` (``sim/model/fleet.py``)."""
    return f"{TEST_PLMN}{index:010d}"


def parse_devices(text: str, fleet_size: int) -> tuple[int, ...]:
    """Return the device indexes of ``--trace`` text (indexes or fleet IMSIs, comma-separated);
    ScenarioError (where ``--trace``) for anything else or an index outside the fleet."""
    out: list[int] = []
    for token in (t.strip() for t in text.split(",")):
        if not token.isdigit():
            raise ScenarioError(f"{token!r} is not a device index or an IMSI", where="--trace",
                                expected="device indexes (the sessions.csv device column) or IMSIs, "
                                         "comma-separated")
        if len(token) == _IMSI_DIGITS:
            if not token.startswith(TEST_PLMN):
                raise ScenarioError(f"IMSI {token} is not one of the fleet's", where="--trace",
                                    expected=f"{TEST_PLMN} followed by the device index in 10 digits")
            index = int(token[len(TEST_PLMN):])
        elif len(token) <= 10:
            index = int(token)
        else:
            raise ScenarioError(f"{token!r} is neither a device index nor a 15-digit IMSI", where="--trace",
                                expected="an index below the fleet size, or an IMSI")
        if index >= fleet_size:
            raise ScenarioError(f"device {index} is not in the fleet of {fleet_size:,}", where="--trace",
                                expected=f"an index from 0 to {fleet_size - 1}")
        if index not in out:
            out.append(index)
    return tuple(out)


class DeviceTrace:
    """Writes the events of ``devices`` to ``path`` (via ``<path>.part``); a link observer
    (``sim/links/link.py``: ``sent``, ``outcome``, ``tapped``) and the card seam's ``apdu``."""

    def __init__(self, path: str | os.PathLike[str], devices: Iterable[int]):
        self.path = Path(path)
        self.devices = tuple(devices)
        self._wanted = frozenset(self.devices)
        self._by_address: dict[str, int] = {}
        for index in self.devices:
            imsi = fleet_imsi(index)
            self._by_address[imsi] = self._by_address[f"IMSI:{imsi}"] = index
        self.lines = 0
        try:
            self._file = open(part_path(self.path), "w", encoding="utf-8")
        except OSError as exc:
            raise DmsimError(f"{self.path}: cannot write the trace: {exc}") from exc
        for index in self.devices:
            self._write({"event": "device", "device": index, "imsi": fleet_imsi(index), "ip": device_ip(index)})

    # -- what the replica and its seams call ----------------------------------------------------
    def wants(self, index: int) -> bool:
        """Return whether device ``index`` is traced."""
        return index in self._wanted

    def device_of(self, msg) -> int | None:
        """Return the traced device a link message goes to or comes from, else None (an LwM2M
        datagram names its device in ``msg.meta``, its addresses are not IMSIs)."""
        index = self._by_address.get(msg.dst)
        if index is None:
            index = self._by_address.get(msg.src)
        if index is None and msg.kind in DATAGRAM_KINDS:
            ends = datagram_ends(msg)
            if ends is not None and ends[0] in self._wanted:
                return ends[0]
        return index

    def sent(self, link, msg, deliver: Callable) -> Callable:
        """A message enters ``link``: log it; return ``deliver`` wrapped to log its arrivals."""
        index = self.device_of(msg)
        if index is None:
            return deliver
        self._message(link, msg, index, "sent")
        arrivals = 0

        def arrived(copy) -> None:
            nonlocal arrivals
            arrivals += 1
            self._message(link, copy, index, "delivered" if arrivals == 1 else "delivered_again")
            deliver(copy)

        return arrived

    def outcome(self, link, msg, what: str) -> None:
        """The link refused (``queue_full``) or lost (``lost``) ``msg``."""
        index = self.device_of(msg)
        if index is not None:
            self._message(link, msg, index, what)

    def tapped(self, link, msg, deliveries: list) -> None:
        """The link's tap returned ``deliveries`` (``(extra delay, payload)``) for ``msg``."""
        index = self.device_of(msg)
        if index is None:
            return
        if not deliveries:
            self._message(link, msg, index, "dropped_by_tap")
            return
        if any(payload is not msg.payload for _, payload in deliveries):
            self._message(link, msg, index, "changed_by_tap")
        if len(deliveries) > 1:
            self._message(link, msg, index, "replayed_by_tap")

    def apdu(self, index: int, at: float, c_apdu: bytes, r_apdu: bytes) -> None:
        """Device ``index``'s ME exchanged an APDU pair with its UICC at simulated time ``at``."""
        if index in self._wanted:
            self._write({"event": "apdu", "t": round(at, 6), "device": index, "agent": "device", "link": "card",
                         "dir": "ME -> UICC", "kind": "apdu", "size": len(c_apdu) + len(r_apdu),
                         "fields": apdu_fields(c_apdu, r_apdu), "outcome": "answered"})

    def attack(self, index: int, at: float, kind: str, what: str) -> None:
        """The scenario's attack ``kind`` acted on device ``index`` at ``at`` (``what`` it did)."""
        if index in self._wanted:
            self._write({"event": "attack", "t": round(at, 6), "device": index, "agent": "adversary",
                         "kind": kind, "what": what})

    def wrap(self, write: Callable[[tuple], None], env) -> Callable[[tuple], None]:
        """Return ``write`` (a replica's session-row writer) that also logs the traced devices'
        rows, at ``env.now`` (when the record is written)."""
        names = [column.name for column in COLUMNS]
        device_col = names.index("device")

        def write_and_trace(row: tuple) -> None:
            write(row)
            if row[device_col] in self._wanted:
                self._write({"event": "record", "t": round(env.now, 6), "device": row[device_col],
                             "record": dict(zip(names, row))})

        return write_and_trace

    # -- the file ------------------------------------------------------------------------------
    def _message(self, link, msg, index: int, outcome: str) -> None:
        src = msg.src
        agent = src if src in _NETWORK_ENDS else "device"
        if msg.kind in DATAGRAM_KINDS:
            ends = datagram_ends(msg)
            if ends is not None and not ends[3]:
                agent = ends[1]
        self._write({"event": "message", "t": round(link.env.now, 6), "device": index,
                     "agent": agent, "link": link.name,
                     "dir": f"{src} -> {msg.dst}", "kind": msg.kind, "size": len(msg.payload),
                     "fields": message_fields(msg.kind, msg.payload), "outcome": outcome})

    def _write(self, obj: dict) -> None:
        if self._file.closed:
            return
        self._file.write(json.dumps(obj, separators=(",", ":"), default=str) + "\n")
        self.lines += 1

    def close(self) -> Path:
        """Flush and rename ``<path>.part`` to ``path``; return it. Idempotent."""
        if not self._file.closed:
            self._file.close()
            commit_part(self.path)
        return self.path
