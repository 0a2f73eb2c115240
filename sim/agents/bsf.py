"""The BSF as an agent: Zpn of GBA Push (3GPP TS 33.223 §4.3.2) for the replica's NAF, and Ub
(TS 33.220 §4.5.2, TS 24.109 §4) for the devices with ``gba_ub``.

The NAF asks over the ``gba.zpn`` link pair (``links/request_link.py``) for a GBA Push Info for a
user and a NAF_Id; the BSF (``network/gba/push.PushBsf``) takes an AV from the HSS agent and
answers with the GPI and the NAF keys. Zpn is Diameter in a deployment (TS 29.109); the
simulation carries it in dmsim's own compact form (:func:`encode_zpn_request`,
:func:`encode_zpn_answer`, lengths and bytes), while the GPI inside is the real one the device
gets. An unknown user or a malformed request gets no answer (the NAF times out). ``now`` is
simulated time as UNIX seconds (``transports.sim_unix_time``), the clock of the GPI's expiry.

Ub: the agent holds a ``network/gba/bsf.Bsf`` on the same HSS (its AVs use IND 0, GBA Push's
IND 1), named ``gba.bsf_fqdn``. Requests reach it over the ``ip`` links through the replica's
Ub transport (``sim/links/ub_transport.SimulatedUb``, ``components.bsf: virtual``); each is
answered after a ``server.service_time`` sample (choice: the scenario has no BSF timing of its
own; no queue, the BSF serves every request at once). With ``components.bsf: socket`` the
devices talk to a real BSF instead and this agent's Bsf stays idle. Either way the devices
report how their bootstrapping ended (:meth:`ub_outcome`): ``summary.json`` network ``gba.ub``
has ``ok`` and ``failed_<reason>`` counts, and for the simulated BSF the core's counters
(``bsf_challenges``, ``bsf_resyncs``, ``bsf_refused_403``, ...).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dmsim.base.errors import DmsimError
from dmsim.network.gba.bsf import Bsf
from dmsim.network.gba.push import PushAnswer, PushBsf
from dmsim.sim.agents.agent import Agent
from dmsim.sim.links.delays import make_delay
from dmsim.sim.links.link import Message
from dmsim.sim.links.request_link import RequestLink
from dmsim.sim.links.transports import sim_unix_time

if TYPE_CHECKING:  # pragma: no cover
    from dmsim.sim.model.replica import Replica


def encode_lvs(*values: bytes) -> bytes:
    """The compact form of the simulation's own GBA messages (Zpn, the proxy NAF's answer): each
    value as a 2-octet big-endian length and its octets."""
    return b"".join(struct.pack(">H", len(v)) + v for v in values)


def decode_lvs(data: bytes, count: int, what: str) -> list[bytes]:
    """Return the ``count`` values :func:`encode_lvs` wrote at the start of ``data``, then the
    octets after them; DmsimError naming ``what`` when a value is cut short."""
    out, i = [], 0
    for _ in range(count):
        if i + 2 > len(data):
            raise DmsimError(f"{what}: truncated")
        n = struct.unpack_from(">H", data, i)[0]
        if i + 2 + n > len(data):
            raise DmsimError(f"{what}: a field runs past the end")
        out.append(data[i + 2:i + 2 + n])
        i += 2 + n
    return out + [data[i:]]


def encode_zpn_request(user: str, naf_id: bytes) -> bytes:
    """The NAF's request: the user (IMPI or IMSI) and the NAF_Id."""
    return encode_lvs(user.encode("utf-8"), naf_id)


def encode_zpn_answer(answer: PushAnswer) -> bytes:
    """The BSF's answer: GPI, P-TID, IMPI, Ks_(ext)_NAF, Ks_int_NAF (empty for GBA_ME), expiry."""
    return encode_lvs(answer.gpi, answer.p_tid.encode(), answer.impi.encode(), answer.ks_naf,
                      answer.ks_int_naf or b"") + struct.pack(">Q", answer.expires)


@dataclass(frozen=True)
class ZpnResult:
    """What the NAF learns from a Zpn answer."""

    gpi: bytes
    p_tid: str
    impi: str
    ks_naf: bytes
    expires: int


def decode_zpn_answer(data: bytes) -> ZpnResult:
    """Return the ZpnResult of an answer; DmsimError if malformed."""
    gpi, p_tid, impi, ks_naf, _int, rest = decode_lvs(data, 5, "Zpn")
    if len(rest) != 8:
        raise DmsimError("Zpn: the expiry is not 8 octets")
    return ZpnResult(gpi, p_tid.decode(), impi.decode(), ks_naf, struct.unpack(">Q", rest)[0])


class BsfAgent(Agent):
    """The replica's BSF (``bsf``), when the scenario has a ``gba`` block."""

    name = "bsf"
    block = "gba"

    @classmethod
    def for_replica(cls, replica: "Replica") -> "BsfAgent":
        """Return the replica's BSF (after the HSS)."""
        return cls(replica)

    def __init__(self, replica: "Replica"):
        spec = replica.data["gba"]
        self.replica = replica
        hss = replica.agents["hss"].hss
        self.push = PushBsf(hss, spec["bsf_fqdn"])
        self.ub = Bsf(hss, spec["bsf_fqdn"], randbytes=replica.stream("bsf").randbytes)
        self.service_time = make_delay(replica.data["server"]["service_time"], "server.service_time")
        self.service_rng = replica.stream("bsf-service")
        self.zpn = RequestLink(replica.env, "gba.zpn", spec["zpn"], replica.stream("link", "zpn-up"),
                               replica.stream("link", "zpn-down"))
        self.answered = self.refused = 0
        self.ub_outcomes: dict[str, int] = {}

    def stats(self) -> dict[str, dict]:
        """The Zpn link's counters and the requests answered or refused; the Ub outcomes of the
        devices and the simulated Ub BSF's counters."""
        out = {"gba.zpn": {**self.zpn.stats(), "answered": self.answered, "refused": self.refused}}
        if self.ub_outcomes or self.ub.counters:
            out["gba.ub"] = {**self.ub_outcomes, **{f"bsf_{k}": v for k, v in self.ub.counters.items()}}
        return out

    def ub_outcome(self, reason: str) -> None:
        """A device's Ub bootstrapping ended: ``""`` (ok) or its failure reason."""
        key = f"failed_{reason}" if reason else "ok"
        self.ub_outcomes[key] = self.ub_outcomes.get(key, 0) + 1

    def receive(self, msg: Message) -> None:
        """A Ub request reached the simulated BSF: answer it after a service time sample."""
        self.replica.env.timeout(self.service_time.sample(self.service_rng), msg).callbacks.append(self._served)

    def _served(self, event) -> None:
        msg: Message = event.value
        dev = msg.meta[0]
        response = self.ub.handle(msg.payload, sim_unix_time(self.replica.env.now))
        self.replica.ub.respond(Message(response, "bsf", dev.ident.uri, "ub", msg.meta))

    def serve_zpn(self, request: bytes) -> bytes | None:
        """Answer one Zpn request (None: no answer)."""
        try:
            user, naf_id, rest = decode_lvs(request, 2, "Zpn")
            if rest:
                raise DmsimError("Zpn: trailing octets")
            answer = self.push.zpn(user.decode("utf-8"), naf_id, sim_unix_time(self.replica.env.now))
        except (DmsimError, UnicodeDecodeError):
            self.refused += 1
            return None
        self.answered += 1
        return encode_zpn_answer(answer)
