"""The client's object store: access rights (OMA-TS-LightweightM2M-V1_0 §7.3, §E.3), bounds, and
the unbootstrapping procedure of seed 004 §D.1.3 at the store level."""
import pytest
from lwm2m_fixtures import provisioned

from dmsim.devices.lwm2m_store import ObjectStore, StoreFull, _highest_write_delete
from dmsim.network.lwm2m.objects import FULL_INSTANCE_ACCESS, Access

R, W, E, D, C = Access.READ, Access.WRITE, Access.EXECUTE, Access.DELETE, Access.CREATE


def test_object_0_is_never_reachable_even_for_a_single_server():
    store = provisioned((1,))
    assert store.rights(1, 0, 10) == Access.NONE
    assert not store.may_create(1, 0)
    assert (0, 10) not in store.paths()


def test_single_server_has_full_access_without_acl():
    store = provisioned((1,))
    assert store.rights(1, 3, 0) == FULL_INSTANCE_ACCESS
    assert store.may_create(1, 3303)
    assert store.rights(2, 3, 0) == Access.NONE  # an SSID that is not the single server


def test_multi_server_rights_come_from_the_acl():
    store = provisioned((1, 2, 3))
    assert store.rights(2, 3, 0) == Access.NONE          # no ACL instance: no access
    store.add_acl(3, 0, owner=1, entries={2: R | E})
    assert store.rights(1, 3, 0) == FULL_INSTANCE_ACCESS  # owner without an entry of its own
    assert store.rights(2, 3, 0) == R | E
    assert store.rights(3, 3, 0) == Access.NONE
    store.get(2, store.acl_iid(3, 0))[2][0] = R          # the default entry
    assert store.rights(3, 3, 0) == R
    store.get(2, store.acl_iid(3, 0))[2][1] = R          # the owner's own entry wins over ownership
    assert store.rights(1, 3, 0) == R


def test_create_needs_the_c_bit_on_65535():
    store = provisioned((1, 2))
    assert not store.may_create(2, 3303)
    store.add_acl(3303, 65535, owner=1, entries={2: C})
    assert store.may_create(2, 3303) and not store.may_create(1, 3303)


def test_own_server_instance_and_acl_instances():
    store = provisioned((1, 2))
    assert store.rights(1, 1, 0) == R | W | E
    assert store.rights(1, 1, 1) == Access.NONE
    aiid = store.add_acl(3, 0, owner=1, entries={2: R})
    assert store.rights(1, 2, aiid) == R | W
    assert store.rights(2, 2, aiid) == R
    assert store.rights(3, 2, aiid) == Access.NONE


def test_bounds():
    store = ObjectStore(max_instances=2, max_resource_instances=2, max_observations=1)
    store.put(3303, 0, {})
    store.put(3303, 1, {})
    with pytest.raises(StoreFull):
        store.put(3303, 2, {})
    store.put(3303, 1, {5700: 1})  # replacing is not growing
    with pytest.raises(StoreFull):
        store.put(3304, 0, {1: {0: 1, 1: 2, 2: 3}})
    store.observe(1, (3,), b"t")
    with pytest.raises(StoreFull):
        store.observe(1, (3, 0), b"u")


@pytest.mark.parametrize("entries, owner", [
    ({2: W | D, 3: R | W | E}, 2),      # 2 beats 1
    ({2: W, 3: D}, 2),                  # tie: the lowest SSID
    ({3: W, 2: R}, 3),
    ({0: W | D, 4: R}, 4),              # the default entry is no server
    ({0: W | D}, None),
])
def test_new_owner_has_the_highest_write_plus_delete(entries, owner):
    assert _highest_write_delete(entries) == owner


def shared_store():
    store = provisioned((1, 2, 3))
    store.put(3303, 0, {5700: 1})                                # only server 1 can reach it
    store.add_acl(3303, 0, owner=1, entries={1: R | W})
    store.put(3303, 1, {5700: 2})                                # owned by 1 without an entry
    store.add_acl(3303, 1, owner=1)
    store.put(3303, 2, {5700: 3})                                # shared, owned by 1
    store.add_acl(3303, 2, owner=1, entries={1: R, 2: R | W, 3: W | D | R})
    store.put(3303, 3, {5700: 4})                                # shared, owned by 2
    store.add_acl(3303, 3, owner=2, entries={1: R | W, 2: R})
    store.put(3303, 4, {5700: 5})                                # owned by 1, only the default left
    store.add_acl(3303, 4, owner=1, entries={1: R, 0: R})
    store.add_acl(1, 0, owner=1)
    store.observe(1, (3303, 2), b"o1")
    store.observe(2, (3303, 2), b"o2")
    return store


def test_unbootstrap_follows_d13():
    store = shared_store()
    report = store.unbootstrap(1)
    assert store.get(3303, 0) is None and store.acl_iid(3303, 0) is None      # step 1
    assert store.get(3303, 1) is None and store.acl_iid(3303, 1) is None
    acl2 = store.get(2, store.acl_iid(3303, 2))                               # step 2
    assert acl2[2] == {2: R | W, 3: W | D | R} and acl2[3] == 3
    acl3 = store.get(2, store.acl_iid(3303, 3))
    assert acl3[2] == {2: R} and acl3[3] == 2                                 # entry gone, owner kept
    assert store.get(3303, 4) is None                                         # orphaned
    assert list(store.observations) == [(2, (3303, 2))]                       # step 3
    assert store.server_iid(1) is None and store.acl_iid(1, 0) is None       # step 4
    assert store.get(1, 1) is not None and store.get(0, 10) is not None      # others untouched
    assert (store.acl_iid(3303, 2) is not None and
            (store.acl_iid(3303, 2), 1, 3) in report.owner_changes)
    assert report.observations_removed == [(3303, 2)]


def test_unbootstrap_of_another_server_leaves_server_1_alone():
    store = shared_store()
    store.unbootstrap(3)
    assert store.get(3303, 0) is not None and store.get(3303, 1) is not None
    assert store.get(2, store.acl_iid(3303, 2))[3] == 1
    assert 3 not in store.get(2, store.acl_iid(3303, 2))[2]
    assert store.server_iid(3) is None and store.server_iid(1) is not None


def test_device_instance_survives_step_1():
    store = provisioned((1, 2))
    store.add_acl(3, 0, owner=1)
    store.unbootstrap(1)
    assert store.get(3, 0) is not None and store.acl_iid(3, 0) is None


def test_an_acl_entry_of_a_server_the_client_no_longer_has_cannot_own():
    assert _highest_write_delete({2: R, 3: W | D}, {2}) == 2
    store = provisioned((1, 2))
    store.put(3303, 0, {})
    store.add_acl(3303, 0, owner=1, entries={1: R, 2: R, 7: W | D})
    store.unbootstrap(1)
    assert store.get(2, store.acl_iid(3303, 0))[3] == 2
