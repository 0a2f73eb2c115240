"""Unbootstrapping through the client (seed 004 §D.1.3): a Bootstrap-Delete of a server's Security
instance, from the bootstrap server only, removes what only that server could reach, its ACL
entries (moving ownership to the highest Write+Delete), its observations and its Server instance,
and sends it a De-register."""
from lwm2m_fixtures import client, only_send, provisioned, req

from dmsim.devices.lwm2m_client import Unbootstrapped, refused
from dmsim.network.coap import message as coap
from dmsim.network.coap.message import Code, Option
from dmsim.network.lwm2m.events import BOOTSTRAP, Send
from dmsim.network.lwm2m.objects import Access

R, W, E, D = Access.READ, Access.WRITE, Access.EXECUTE, Access.DELETE


def shared_client(ssids=(1, 2, 3)):
    c = client(provisioned(ssids))
    store = c.store
    store.add_acl(3, 0, owner=1, entries={1: R | W, 2: R | W, 3: W | D})    # shared, owned by 1
    store.put(3303, 0, {5700: 21})                                           # only server 1's
    store.add_acl(3303, 0, owner=1, entries={1: R | W | D})
    for i, ssid in enumerate(ssids):
        store.add_acl(1, i, owner=ssid)
    reg = only_send(c.register(1))
    c.receive(1, coap.response(reg, Code.CREATED, options=coap.path_options("/rd/0001", Option.LOCATION_PATH)))
    assert only_send(c.receive(1, req(Code.GET, "/3/0", options=[(Option.OBSERVE, b"")]))).code == Code.CONTENT
    assert (1, (3, 0)) in store.observations
    return c


def test_bootstrap_delete_of_a_security_instance_unbootstraps_its_server():
    c = shared_client()
    events = c.receive(BOOTSTRAP, req(Code.DELETE, "/0/10"))
    sends = [e for e in events if isinstance(e, Send)]
    assert [(s.peer, s.message.code, s.message.path) for s in sends] == [
        (1, Code.DELETE, "/rd/0001"),            # step 5: De-register
        (BOOTSTRAP, Code.DELETED, "/")]          # the Bootstrap-Delete's own reply (no Uri-Path)
    assert [type(e) for e in events if not isinstance(e, Send)] == [Unbootstrapped]
    store = c.store
    acl = store.get(2, store.acl_iid(3, 0))
    assert acl[2] == {2: R | W, 3: W | D} and acl[3] == 3                    # entry removed, owner W+D
    assert store.get(3303, 0) is None and store.acl_iid(3303, 0) is None     # exclusively owned: deleted
    assert store.server_iid(1) is None and store.acl_iid(1, 0) is None       # Server instance deleted
    assert store.get(0, 10) is None                                          # the Security instance itself
    assert (1, (3, 0)) not in store.observations
    assert 1 not in c.registrations
    assert store.server_iid(2) is not None and store.get(0, 11) is not None  # the others stay


def test_with_two_servers_ownership_goes_to_the_other():
    c = shared_client((1, 2))
    c.receive(BOOTSTRAP, req(Code.DELETE, "/0/10"))
    acl = c.store.get(2, c.store.acl_iid(3, 0))
    assert acl[3] == 2 and 1 not in acl[2]
    # server 2 now holds the only Server instance: full access as the single server
    assert only_send(c.receive(2, req(Code.GET, "/3/0"))).code == Code.CONTENT


def test_a_dm_server_cannot_trigger_unbootstrapping():
    c = shared_client()
    before = c.store.snapshot()
    for peer in (1, 2):
        events = c.receive(peer, req(Code.DELETE, "/0/10"))
        assert only_send(events).code == Code.NOT_FOUND and refused(events)
        assert not any(isinstance(e, Unbootstrapped) for e in events)
    assert c.store.snapshot() == before and 1 in c.registrations


def test_delete_all_unbootstraps_every_server_and_keeps_the_bootstrap_account():
    c = shared_client()
    events = c.receive(BOOTSTRAP, req(Code.DELETE, "/"))
    assert sorted(e.ssid for e in events if isinstance(e, Unbootstrapped)) == [1, 2, 3]
    assert c.store.server_ssids() == [] and c.store.bootstrap_security_iid() == 0
    assert c.store.get(3, 0) is not None
