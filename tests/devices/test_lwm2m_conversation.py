"""A whole LwM2M 1.0 life between the three cores, every message passing as datagram bytes through
network/coap/message (encode on one side, decode on the other): client-initiated bootstrap
(§5.1), Register (§5.3.1), Read /3/0 (§5.4.1), a refused Read of a secret, De-register (§5.3.3)."""
from collections import deque

from lwm2m_fixtures import randbytes_counter, security

from dmsim.devices.lwm2m_client import (BootstrapFinished, Deregistered, Lwm2mClient, Refused, Registered)
from dmsim.devices.lwm2m_store import ObjectStore
from dmsim.network.coap import message as coap
from dmsim.network.coap.message import Code
from dmsim.network.lwm2m.bootstrap_server import (BootstrapCompleted, BootstrapServer, ProvisioningPlan,
                                                  SecurityAccount, ServerAccount)
from dmsim.network.lwm2m.events import BOOTSTRAP, Send
from dmsim.network.lwm2m.objects import Sec
from dmsim.network.lwm2m import server as dm_server

EP = "urn:imei:490154203237518"
DM_KEY = bytes.fromhex("000102030405060708090a0b0c0d0e0f")


class Wire:
    """Datagrams in flight: (to, bytes). The client side knows its peers; the servers see the
    authenticated identity of the client's channel (its PSK identity towards each)."""

    def __init__(self, client, bs, dm):
        self.client, self.bs, self.dm = client, bs, dm
        self.queue = deque()
        self.events = []
        self.datagrams = 0

    def post(self, sender, events):
        for e in events:
            if isinstance(e, Send):
                self.queue.append((sender, e.peer, coap.encode(e.message)))
            else:
                self.events.append(e)

    def pump(self):
        while self.queue:
            sender, to, datagram = self.queue.popleft()
            self.datagrams += 1
            msg = coap.decode(datagram)
            if sender == "client" and to == BOOTSTRAP:
                self.post("bs", self.bs.receive(b"dev1-bs", msg, now=0.0))
            elif sender == "client":
                identity = self.client.account(to)[Sec.PUBLIC_KEY_OR_IDENTITY]
                self.post("dm", self.dm.receive(identity, msg, now=0.0))
            elif sender == "bs":
                self.post("client", self.client.receive(BOOTSTRAP, msg))
            else:
                self.post("client", self.client.receive(101, msg))


def test_bootstrap_register_read_deregister():
    store = ObjectStore.with_device(serial="345000123")
    store.put(0, 0, security(None, bootstrap=True, identity=b"dev1-bs"))
    client = Lwm2mClient(EP, store, randbytes=randbytes_counter(1000))
    plan = ProvisioningPlan(
        identity=b"dev1-bs",
        security=(SecurityAccount(1, "coaps://dm.example:5684", identity=b"dev1", secret_key=DM_KEY, ssid=101),),
        servers=(ServerAccount(0, 101, lifetime=120),))
    bs = BootstrapServer({EP: plan}, randbytes=randbytes_counter(2000))
    dm = dm_server.Lwm2mServer({EP: b"dev1"}, randbytes=randbytes_counter(3000))
    wire = Wire(client, bs, dm)

    wire.post("client", client.start_bootstrap())
    wire.pump()
    assert BootstrapFinished((101,)) in wire.events and BootstrapCompleted(EP) in wire.events
    assert client.account(101)[Sec.SECRET_KEY] == DM_KEY  # the driver's key for the DTLS session

    wire.post("client", client.register(101))
    wire.pump()
    (accepted,) = [e for e in wire.events if isinstance(e, dm_server.RegistrationAccepted)]
    assert Registered(101, accepted.location) in wire.events
    assert dm.registration(EP).objects == ((1, 0), (3, 0))

    wire.post("dm", [dm.read(EP, (3, 0))])
    wire.post("dm", [dm.read(EP, (0, 1, 5))])
    wire.pump()
    reads = [e for e in wire.events if isinstance(e, dm_server.DmResponse)]
    assert reads[0].code == Code.CONTENT and reads[0].value[2] == "345000123"
    assert reads[1].code == Code.NOT_FOUND and reads[1].value is None
    assert [e.rule for e in wire.events if isinstance(e, Refused)] == ["bootstrap_only_object"]

    wire.post("client", client.deregister(101))
    wire.pump()
    assert dm_server.Deregistered(EP) in wire.events and Deregistered(101) in wire.events
    assert dm.registrations == {} and client.registrations == {}
    assert wire.datagrams == 2 + 2 * 5 + 2 + 4 + 2  # bootstrap, its 5 operations, register, 2 reads, de-register
