"""The server's check of the client's credential under each SyncML scheme (OMA-TS-DM_Security-V1_3
§5.4, §5.4.3; seed 000 §9.2.1 for syncml:auth-basic): a guessed password gets one SyncHdr 401
with a Chal of the account's scheme and a new nonce, then a refusal without Chal that ends the
session; the right password still gets in (DM-SEC-S-005-O, DM-SEC-S-006-O; seed 000
DM-SEC-S-001-M). A successful session alone would not show it: a server that took any
credential would complete it too."""
import dataclasses
import random

import pytest

from dmsim.devices.dm_client import DmClient, Done, Send
from dmsim.network.dm import messages as m
from dmsim.network.dm.auth import AUTH_BASIC, AUTH_MD5, AUTH_SHA256
from dmsim.network.dm.server import DmServer

DEV = "IMSI:001010000000011"
DEVINFO = {"DevId": DEV, "Man": "dmsim", "Mod": "model-x", "DmV": "1.2", "Lang": "en-US"}


def run(srv, client):
    step = client.start()
    while isinstance(step, Send):
        reply = srv.handle(step.body, step.content_type, 0.0)
        step = client.receive(reply.body, reply.content_type)
    return step


@pytest.mark.parametrize("scheme", [AUTH_BASIC, AUTH_MD5, AUTH_SHA256])
def test_server_refuses_a_guessed_password_under_each_scheme(scheme):
    rng = random.Random(11)
    srv = DmServer("dmsim-server", "http://dm.test/dm", rng.randbytes, content_type=m.DM_XML)
    account = srv.provision(DEV, client_name="dev11", client_password="right", server_password="spw",
                            auth_scheme=scheme)
    client = DmClient(dataclasses.replace(account, client_password="guess"), DEV, DEVINFO, 1, rng.randbytes,
                      content_type=m.DM_XML)
    step = client.start()
    first = srv.handle(step.body, step.content_type, 0.0)
    msg = m.decode(first.body, first.content_type)
    verdict = m.header_status(msg)
    assert verdict.code == m.UNAUTHORIZED and not first.session_over
    assert msg.find("SyncBody/Status/Chal/Meta/Type").text == scheme                # §5.4.3: a Chal of its scheme
    assert verdict.next_nonce not in (None, account.client_nonce)                  # with a new nonce
    step = client.receive(first.body, first.content_type)
    second = srv.handle(step.body, step.content_type, 0.0)
    assert second.session_over and [e.kind for e in second.events] == ["client_auth_failed"]
    assert m.decode(second.body, second.content_type).find("SyncBody/Status/Chal") is None
    assert client.receive(second.body, second.content_type) == Done(False, "client_auth_failed")
    assert not srv.sessions
    assert run(srv, DmClient(account, DEV, DEVINFO, 2, rng.randbytes, content_type=m.DM_XML)) == Done(True)
