"""The NAF of DM with GBA Push (OMA-TS-DM_Security Appendix C), in either deployment.

- ``gba.naf: internal``: the NAF is inside the DM server: the server asks the BSF over Zpn for a
  GBA Push Info for the device, gets Ks_(ext)_NAF and derives DMBIK and DMBEK itself (seed 003
  §5.10.2.4, ``network/gba/keys.dm_bootstrap_keys``).
- ``gba.naf: proxy``: an external proxy NAF: the DM server asks it over ``gba.naf_link``; the
  proxy asks the BSF over Zpn, derives DMBIK and DMBEK and hands the server those and the GPI,
  never Ks_NAF (so the DM server holds only the bootstrap keys).

NAF_Id is the DM server's FQDN || the Ua security protocol identifier (TS 33.220 Annex H; the
value dmsim uses, ``keys.DMSIM_DM_UA_PROTOCOL_ID``, and why, are in ``network/gba/keys.py``).
Each request waits ``ZPN_TIMEOUT`` and is sent again up to ``ZPN_RETRIES`` times (choice: the
issue gives no Zpn timer; 2 s covers the default link delays many times).
"""
from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dmsim.base.errors import DmsimError
from dmsim.network.gba.keys import DMSIM_DM_UA_PROTOCOL_ID, dm_bootstrap_keys, dm_naf_id
from dmsim.sim.agents.agent import Agent
from dmsim.sim.agents.bsf import decode_lvs, decode_zpn_answer, encode_lvs, encode_zpn_request
from dmsim.sim.agents.dm_server import SERVER_URI
from dmsim.sim.links.request_link import RequestLink

if TYPE_CHECKING:  # pragma: no cover
    from dmsim.sim.model.replica import Replica

ZPN_TIMEOUT, ZPN_RETRIES = 2.0, 3


@dataclass(frozen=True)
class BootstrapKeys:
    """What the DM server gets for a device: the GPI to push, its P-TID and DMBIK/DMBEK."""

    gpi: bytes
    p_tid: str
    dmbik: bytes
    dmbek: bytes


def _encode(keys: BootstrapKeys) -> bytes:
    return encode_lvs(keys.gpi, keys.p_tid.encode(), keys.dmbik, keys.dmbek)


def _decode(data: bytes) -> BootstrapKeys:
    gpi, p_tid, dmbik, dmbek, rest = decode_lvs(data, 4, "NAF answer")
    if rest:
        raise DmsimError("NAF answer: trailing octets")
    return BootstrapKeys(gpi, p_tid.decode(), dmbik, dmbek)


class NafAgent(Agent):
    """The replica's NAF (``naf``), when the scenario has a ``gba`` block."""

    name = "naf"
    block = "gba"

    @classmethod
    def for_replica(cls, replica: "Replica") -> "NafAgent":
        """Return the replica's NAF (after the BSF)."""
        return cls(replica)

    def __init__(self, replica: "Replica"):
        spec = replica.data["gba"]
        self.replica, self.env = replica, replica.env
        self.deployment = spec["naf"]
        self.bsf = replica.agents["bsf"]
        self.naf_id = dm_naf_id(urllib.parse.urlsplit(SERVER_URI).hostname, DMSIM_DM_UA_PROTOCOL_ID)
        self.link = (RequestLink(replica.env, "gba.naf_link", spec["naf_link"], replica.stream("link", "naf-up"),
                                 replica.stream("link", "naf-down")) if self.deployment == "proxy" else None)
        self.failed = 0
        self.upa: dict[str, int] = {}  # the devices' GPI outcomes by kind (accepted, replayed, stale_sqn, ...)

    def stats(self) -> dict[str, dict]:
        """The proxy link's counters (proxy deployment), the requests that got no keys, and what
        the devices did with the GPIs they got (Upa)."""
        out = {"gba.naf": {"deployment_proxy": int(self.link is not None), "no_keys": self.failed},
               "gba.upa": dict(self.upa)}
        if self.link is not None:
            out["gba.naf_link"] = self.link.stats()
        return out

    def keys_for(self, impi: str):
        """SimPy generator, run for the DM server: return the BootstrapKeys of ``impi``, or None
        when Zpn (or the proxy) gave no answer."""
        if self.link is None:
            keys = yield from self._from_bsf(impi)
        else:
            answer = yield from self.link.call(impi.encode("utf-8"), self._serve_proxy, src="server", dst="naf",
                                               timeout=ZPN_TIMEOUT * (ZPN_RETRIES + 2), retries=ZPN_RETRIES)
            try:
                keys = _decode(answer) if answer is not None else None
            except DmsimError:
                keys = None
        if keys is None:
            self.failed += 1
        return keys

    def _serve_proxy(self, request: bytes):
        """The proxy NAF's side: ask the BSF, answer with the GPI and DMBIK/DMBEK (not Ks_NAF)."""
        keys = yield from self._from_bsf(request.decode("utf-8", "replace"))
        return _encode(keys) if keys is not None else None

    def _from_bsf(self, impi: str):
        answer = yield from self.bsf.zpn.call(encode_zpn_request(impi, self.naf_id), self.bsf.serve_zpn,
                                              src="naf", dst="bsf", timeout=ZPN_TIMEOUT, retries=ZPN_RETRIES)
        if answer is None:
            return None
        try:
            result = decode_zpn_answer(answer)
        except DmsimError:
            return None
        dmbik, dmbek = dm_bootstrap_keys(result.ks_naf)
        return BootstrapKeys(result.gpi, result.p_tid, dmbik, dmbek)
