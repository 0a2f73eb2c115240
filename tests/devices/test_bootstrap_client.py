"""The device's side of a transport-neutral bootstrap (OMA-TS-DM_Security-V1_3 §5.10.2.3):
``accept_bootstrap`` checks the HMAC of the Push Content-Type over the WBXML body before it uses
the body. A well-formed bootstrap document that is not the one the server MACed (an attacker's
account under the genuine Content-Type) parses fine, so only the HMAC check can refuse it
(DM-SEC-C-018-O, DM-SEC-C-019-O): the engine's tampering tests flip bytes, which the WBXML decoder
often refuses by itself."""
import dataclasses
import random

import pytest

from dmsim.base.errors import BootstrapVerificationError
from dmsim.devices.bootstrap_client import accept_bootstrap
from dmsim.network.dm import wbxml
from dmsim.network.dm.account import account_from_bootstrap, bootstrap_document
from dmsim.network.dm.server import DmServer
from dmsim.network.sms import wsp_push

IMSI = "001010000000007"
DEV = f"IMSI:{IMSI}"
PIN = "4321"


@pytest.mark.parametrize("key_type", ["NETWORKID", "USERPIN", "USERPIN_NETWORKID"])
def test_device_accepts_the_servers_bootstrap_and_refuses_a_swapped_document(key_type):
    srv = DmServer("dmsim-server", "http://dm.test/dm", random.Random(3).randbytes)
    srv.provision(DEV, client_name="dev7", client_password="c-secret", server_password="s-secret")
    content_type, body = srv.bootstrap_message(DEV, IMSI, key_type, PIN)
    accepted = accept_bootstrap(wsp_push.encode_push(content_type, body, tid=1), imsi=IMSI, userpin=PIN)
    assert accepted.key_type == key_type and accepted.account.server_password == "s-secret"

    evil = dataclasses.replace(srv.accounts[DEV], server_uri="http://evil.test/dm", server_password="attacker")
    forged = wbxml.encode(bootstrap_document(evil, DEV))
    assert account_from_bootstrap(wbxml.decode(forged)).server_uri == "http://evil.test/dm"  # well-formed
    with pytest.raises(BootstrapVerificationError, match="mismatch"):
        accept_bootstrap(wsp_push.encode_push(content_type, forged, tid=2), imsi=IMSI, userpin=PIN)
    # the genuine bootstrap at a device with other secrets (IMSI and PIN): not its MAC
    with pytest.raises(BootstrapVerificationError, match="mismatch"):
        accept_bootstrap(wsp_push.encode_push(content_type, body, tid=3), imsi="001010000000008", userpin="9999")
