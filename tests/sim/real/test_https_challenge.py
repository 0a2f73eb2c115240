"""syncml:auth-md5 over TLS (OMA-TS-DM_Security-V1_3 §5.3, DM-SEC-S-007-O: "MD5 challenge to
client in conjunction with transport layer security"). Over a PSK-TLS connection to dmsim's HTTPS
server the server still checks the client's Cred: a stale client nonce gets one SyncHdr 401 with
an auth-md5 Chal and a new nonce, and the retry on the same connection succeeds; a guessed
password gets that Chal and then the end of the session."""
import dataclasses
import os

import pytest

from dmsim.devices.dm_client import DmClient, Done
from dmsim.network.dm import messages as m
from dmsim.network.dm import tls
from dmsim.sim.real.dm_http_server import DmService, default_server
from dmsim.sim.real.tls_socket import TlsHttpConnection
from https_peer import post_session, serve, stop

DEV = "IMSI:001010000000043"
IDENTITY, KEY = b"IMEI:490154203237519", bytes.fromhex("00112233445566778899aabbccddeef0")
DEVINFO = {"DevId": DEV, "Mod": "dmsim-phone"}


@pytest.fixture
def https():
    psks = {IDENTITY: KEY}
    core = default_server("dmsim-server", "127.0.0.1", 0, scheme="https")
    server = serve(DmService(core, psks), tls.server_config(psks=psks, mode="psk"))
    yield core, server.server_address[1]
    stop(server)


def session(port, client):
    """Run ``client``'s session over one PSK-TLS connection; return (Done, SyncHdr codes received)."""
    conn = TlsHttpConnection("127.0.0.1", port, tls.psk_client_config(IDENTITY, KEY), timeout=5)
    codes = []

    def look(resp, body):
        assert resp.status == 200, body
        msg = m.decode(body, resp.getheader("Content-Type"))
        status = m.header_status(msg)
        chal = msg.find("SyncBody/Status/Chal/Meta/Type")
        codes.append((status.code, chal.text if chal is not None else None))

    try:
        step = post_session(conn, client, look)
        assert conn.session.psk_identity == IDENTITY
        return step, codes
    finally:
        conn.close()


def test_md5_challenge_over_psk_tls(https):
    core, port = https
    account = core.provision(DEV, client_name="n43", client_password="p43", server_password="s43")
    stale = DmClient(account.with_nonces(client=b"stale-nonce"), DEV, DEVINFO, 1, os.urandom)
    done, codes = session(port, stale)
    assert done == Done(True) and stale.auth_retries == 1
    assert codes[0] == (m.UNAUTHORIZED, "syncml:auth-md5") and codes[1] == (m.AUTH_ACCEPTED, "syncml:auth-md5")
    guess = DmClient(dataclasses.replace(stale.account, client_password="guess"), DEV, DEVINFO, 2, os.urandom)
    done, codes = session(port, guess)
    assert done == Done(False, "client_auth_failed")
    assert codes == [(m.UNAUTHORIZED, "syncml:auth-md5"), (m.UNAUTHORIZED, None)]
