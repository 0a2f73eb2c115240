"""The LwM2M client's object instances, their access control and the unbootstrapping procedure
(OMA-TS-LightweightM2M-V1_0 §7.3 Access Control, §E.3; seed 004 §D.1, §D.1.3).

Access rights of a DM server (its Short Server ID, ``ssid``) on an object instance, §7.3.1:

* object 0 (Security) is never reachable by a DM server (seed 004 §D.1): no rights at all;
* with a single Server object instance the server has full access and no ACL is needed (§7.3);
* otherwise the Access Control instance whose Object ID / Object Instance ID name the instance
  decides: the server's own ACL resource instance if there is one; else full access
  (R, W, E, D) when it is the Access Control Owner; else the default ACL instance 0; else none;
  no Access Control instance at all means no access;
* Create on an object is the C bit of the Access Control instance of (oid, 65535).

Choices where §7.3 is silent: a server always has R, W and E on its own Server object instance
(without them a multi-server client could not take the Registration Update Trigger or a new
Lifetime from that server unless an ACL said so); Access Control instances (object 2) can be read
by their owner and by servers with an ACL entry in them, written by the owner only (its ACL and
owner resources, §E.3 "only such an LwM2M Server can manage"), and never created or deleted by a
DM server (the client creates them with the instances they guard and deletes them with them).

Unbootstrapping (seed 004 §D.1.3), :meth:`ObjectStore.unbootstrap`, for server ``ssid``:

1. an instance whose Access Control instance has owner ``ssid`` and no ACL resource instance but
   ``ssid``'s is deleted with its Access Control instance;
2. in the other Access Control instances listing ``ssid``, its ACL resource instance is deleted;
   if ``ssid`` owned it, ownership goes to the server with the highest Write(1)+Delete(1) sum
   among the remaining ACL resource instances of configured servers (the default, ID 0, is no
   server, nor is an SSID without a Server instance); a tie goes to
   the lowest Short Server ID (deterministic); with no server left to own it, the instance is
   orphaned and deleted with its Access Control instance;
3. its observations are deleted; 4. its Server object instance is deleted (with its Access
   Control instance). Step 5, the De-register, is the client's (:mod:`lwm2m_client`).

The Device object instance (/3/0, mandatory and single) is never deleted by step 1: only its
Access Control instance goes, so the device stays manageable by whoever remains.

Every table is bounded: ``max_instances`` per object, ``max_resource_instances`` per multiple
resource, ``max_observations`` in all; going past raises :class:`StoreFull`.
"""
from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from dmsim.base.errors import ProtocolError
from dmsim.network.lwm2m.objects import (FULL_INSTANCE_ACCESS, MAX_ID, Access, Acl, ObjectId, Sec, Srv)

Resources = dict[int, Any]
Path = tuple[int, ...]


class StoreFull(ProtocolError):
    """An instance, resource instance or observation past the store's bounds."""


@dataclass
class UnbootstrapReport:
    """What :meth:`ObjectStore.unbootstrap` changed, in order."""

    ssid: int
    deleted: list[tuple[int, int]] = field(default_factory=list)
    acl_entries_removed: list[int] = field(default_factory=list)
    owner_changes: list[tuple[int, int, int]] = field(default_factory=list)  # (acl iid, old, new)
    observations_removed: list[Path] = field(default_factory=list)


class ObjectStore:
    """Object ID -> instance ID -> resources, with the ACL rules of §7.3 and D.1.3."""

    def __init__(self, *, max_instances: int = 64, max_resource_instances: int = 64,
                 max_observations: int = 64):
        self.max_instances = max_instances
        self.max_resource_instances = max_resource_instances
        self.max_observations = max_observations
        self.objects: dict[int, dict[int, Resources]] = {}
        self.observations: dict[tuple[int, Path], bytes] = {}

    @classmethod
    def with_device(cls, *, manufacturer: str = "dmsim", model: str = "lwm2m-client", serial: str = "0",
                    firmware: str = "1.0", binding_modes: str = "U", current_time: int = 0,
                    **bounds: int) -> ObjectStore:
        """A store holding the Device object instance /3/0 (E.4) and nothing else."""
        store = cls(**bounds)
        store.put(ObjectId.DEVICE, 0, {0: manufacturer, 1: model, 2: serial, 3: firmware, 11: {0: 0},
                                      13: current_time, 16: binding_modes})
        return store

    def snapshot(self) -> dict[int, dict[int, Resources]]:
        return copy.deepcopy(self.objects)

    def restore(self, snapshot: dict[int, dict[int, Resources]]) -> None:
        self.objects = snapshot

    # -- instances ---------------------------------------------------------------------------------

    def instances(self, oid: int) -> dict[int, Resources]:
        return self.objects.get(oid, {})

    def get(self, oid: int, iid: int) -> Resources | None:
        return self.objects.get(oid, {}).get(iid)

    def put(self, oid: int, iid: int, resources: Resources) -> None:
        """Create or replace instance ``/oid/iid``."""
        table = self.objects.setdefault(oid, {})
        if iid not in table and len(table) >= self.max_instances:
            raise StoreFull(f"object {oid} already has {len(table)} instances")
        for value in resources.values():
            if isinstance(value, dict) and len(value) > self.max_resource_instances:
                raise StoreFull(f"{len(value)} resource instances in /{oid}/{iid}")
        table[iid] = dict(resources)

    def update(self, oid: int, iid: int, resources: Resources) -> None:
        """Merge ``resources`` into an instance, creating it if needed (a multiple resource is
        replaced whole)."""
        merged = dict(self.get(oid, iid) or {})
        merged.update(resources)
        self.put(oid, iid, merged)

    def delete(self, oid: int, iid: int) -> bool:
        return self.objects.get(oid, {}).pop(iid, None) is not None

    def free_iid(self, oid: int) -> int:
        used = self.instances(oid)
        return next(i for i in range(MAX_ID + 1) if i not in used)

    def paths(self) -> list[Path]:
        """Every /oid/iid, object 0 left out (it MUST NOT be reported to a server, §5.3.1)."""
        return [(oid, iid) for oid in sorted(self.objects) if oid != ObjectId.SECURITY
                for iid in sorted(self.objects[oid])]

    # -- accounts ----------------------------------------------------------------------------------

    def server_ssids(self) -> list[int]:
        return sorted(r[Srv.SHORT_SERVER_ID] for r in self.instances(ObjectId.SERVER).values()
                      if Srv.SHORT_SERVER_ID in r)

    def server_iid(self, ssid: int) -> int | None:
        return next((i for i, r in sorted(self.instances(ObjectId.SERVER).items())
                     if r.get(Srv.SHORT_SERVER_ID) == ssid), None)

    def security_iid(self, ssid: int) -> int | None:
        return next((i for i, r in sorted(self.instances(ObjectId.SECURITY).items())
                     if not r.get(Sec.BOOTSTRAP) and r.get(Sec.SHORT_SERVER_ID) == ssid), None)

    def bootstrap_security_iid(self) -> int | None:
        return next((i for i, r in sorted(self.instances(ObjectId.SECURITY).items()) if r.get(Sec.BOOTSTRAP)), None)

    # -- access control ----------------------------------------------------------------------------

    def acl_iid(self, oid: int, iid: int) -> int | None:
        return next((a for a, r in sorted(self.instances(ObjectId.ACCESS_CONTROL).items())
                     if r.get(Acl.OBJECT_ID) == oid and r.get(Acl.INSTANCE_ID) == iid), None)

    def _acl_rights(self, ssid: int, acl: Resources) -> Access:
        entries = acl.get(Acl.ACL, {})
        if ssid in entries:
            return Access(entries[ssid] & 0x1F)
        if acl.get(Acl.OWNER) == ssid:
            return FULL_INSTANCE_ACCESS
        return Access(entries.get(0, 0) & 0x1F)

    def single_server(self, ssid: int) -> bool:
        return self.server_ssids() == [ssid]

    def rights(self, ssid: int, oid: int, iid: int) -> Access:
        """The operations server ``ssid`` may perform on ``/oid/iid`` (§7.3.1)."""
        if oid == ObjectId.SECURITY:
            return Access.NONE
        if oid == ObjectId.ACCESS_CONTROL:
            acl = self.get(oid, iid)
            if acl is None:
                return Access.NONE
            if acl.get(Acl.OWNER) == ssid or self.single_server(ssid):
                return Access.READ | Access.WRITE
            return Access.READ if ssid in acl.get(Acl.ACL, {}) else Access.NONE
        if oid == ObjectId.SERVER and self.get(oid, iid) is not None \
                and self.get(oid, iid).get(Srv.SHORT_SERVER_ID) == ssid:
            own = Access.READ | Access.WRITE | Access.EXECUTE
            return FULL_INSTANCE_ACCESS if self.single_server(ssid) else own | self._instance_acl(ssid, oid, iid)
        if self.single_server(ssid):
            return FULL_INSTANCE_ACCESS
        return self._instance_acl(ssid, oid, iid)

    def _instance_acl(self, ssid: int, oid: int, iid: int) -> Access:
        a = self.acl_iid(oid, iid)
        return Access.NONE if a is None else self._acl_rights(ssid, self.get(ObjectId.ACCESS_CONTROL, a))

    def may_create(self, ssid: int, oid: int) -> bool:
        """Create on ``/oid``: single server, or the C bit for (oid, 65535) (§7.3.1)."""
        if oid in (ObjectId.SECURITY, ObjectId.ACCESS_CONTROL):
            return False
        if self.single_server(ssid):
            return True
        return bool(self._instance_acl(ssid, oid, MAX_ID) & Access.CREATE)

    def add_acl(self, oid: int, iid: int, owner: int, entries: dict[int, int] | None = None) -> int:
        """Create the Access Control instance guarding ``/oid/iid``; return its instance ID."""
        aiid = self.free_iid(ObjectId.ACCESS_CONTROL)
        resources: Resources = {Acl.OBJECT_ID: oid, Acl.INSTANCE_ID: iid, Acl.OWNER: owner}
        if entries:
            resources[Acl.ACL] = dict(entries)
        self.put(ObjectId.ACCESS_CONTROL, aiid, resources)
        return aiid

    def delete_with_acl(self, oid: int, iid: int) -> None:
        self.delete(oid, iid)
        a = self.acl_iid(oid, iid)
        if a is not None:
            self.delete(ObjectId.ACCESS_CONTROL, a)

    # -- observations ------------------------------------------------------------------------------

    def observe(self, ssid: int, path: Path, token: bytes) -> None:
        if (ssid, path) not in self.observations and len(self.observations) >= self.max_observations:
            raise StoreFull(f"{len(self.observations)} observations")
        self.observations[(ssid, path)] = token

    def cancel_observation(self, ssid: int, path: Path) -> None:
        self.observations.pop((ssid, path), None)

    # -- unbootstrapping, seed 004 §D.1.3 ----------------------------------------------------------

    def unbootstrap(self, ssid: int) -> UnbootstrapReport:
        report = UnbootstrapReport(ssid)
        others = set(self.server_ssids()) - {ssid}
        for aiid, acl in sorted(self.instances(ObjectId.ACCESS_CONTROL).items()):
            target = (acl.get(Acl.OBJECT_ID), acl.get(Acl.INSTANCE_ID))
            entries = acl.get(Acl.ACL, {})
            owner = acl.get(Acl.OWNER)
            if owner == ssid and set(entries) <= {ssid}:
                self._drop(aiid, target, report)                                   # step 1
                continue
            if ssid in entries:                                                    # step 2
                entries = {k: v for k, v in entries.items() if k != ssid}
                acl[Acl.ACL] = entries
                report.acl_entries_removed.append(aiid)
            if owner == ssid:
                new_owner = _highest_write_delete(entries, others)
                if new_owner is None:
                    self._drop(aiid, target, report)
                    continue
                acl[Acl.OWNER] = new_owner
                report.owner_changes.append((aiid, ssid, new_owner))
        for key in [k for k in self.observations if k[0] == ssid]:                 # step 3
            del self.observations[key]
            report.observations_removed.append(key[1])
        siid = self.server_iid(ssid)                                               # step 4
        if siid is not None:
            self.delete_with_acl(ObjectId.SERVER, siid)
            report.deleted.append((ObjectId.SERVER, siid))
        return report

    def _drop(self, aiid: int, target: tuple[Any, Any], report: UnbootstrapReport) -> None:
        self.delete(ObjectId.ACCESS_CONTROL, aiid)
        report.deleted.append((ObjectId.ACCESS_CONTROL, aiid))
        oid, iid = target
        if oid == ObjectId.DEVICE or not isinstance(oid, int) or not isinstance(iid, int) or iid == MAX_ID:
            return
        if self.delete(oid, iid):
            report.deleted.append((oid, iid))


def _write_delete_score(rights: int) -> int:
    return bool(rights & Access.WRITE) + bool(rights & Access.DELETE)


def _highest_write_delete(entries: dict[int, int], servers: set[int] | None = None) -> int | None:
    """The server with the highest Write(1)+Delete(1) sum; ties go to the lowest SSID (D.1.3).
    Only configured ``servers`` (when given) can become owner: an ACL entry left for a server the
    client no longer has cannot own anything."""
    candidates: Iterable[tuple[int, int]] = ((s, r) for s, r in entries.items()
                                             if s != 0 and (servers is None or s in servers))
    best = sorted(candidates, key=lambda sr: (-_write_delete_score(sr[1]), sr[0]))
    return best[0][0] if best else None
