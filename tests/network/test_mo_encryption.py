"""Seed 002 §5.9 management object encryption: the server Adds an encrypted value, the device's
tree keeps it encrypted, the server reads it back and decrypts it; a wrong key or a changed
ciphertext fails; xmlsec1 decrypts the stored value (skipped without it unless
DMSIM_REQUIRE_XMLSEC1=1)."""
import os
import random
import shutil
import subprocess

import pytest

from dmsim.base.errors import MessageSecurityError
from dmsim.devices.dm_client import DmClient, Done
from dmsim.network.dm import mo_encryption as mo
from dmsim.network.dm import xml_encryption
from dmsim.network.dm.server import DmServer, ManagementCommand as C

DEV = "IMSI:001010000000001"
KEY = b"server-only-secret"
VALUE = b"wifi-psk=correct horse battery staple"
NOW = 1_700_000_000.0


def session(script):
    rng = random.Random(9)
    srv = DmServer("dmsim-server", "http://dm.test/dm", rng.randbytes, script=script)
    account = srv.provision(DEV, client_name="1", client_password="c", server_password="s")
    client = DmClient(account, DEV, {"Mod": "m"}, 1, rng.randbytes)
    client.tree.create("./Vendor", "node", acl="Add=*&Get=*&Replace=*")
    step, events = client.start(NOW), []
    while not isinstance(step, Done):
        reply = srv.handle(step.body, step.content_type, NOW, step.headers)
        events += reply.events
        step = client.receive(reply.body, reply.content_type, reply.headers, NOW)
    assert step.ok, step
    return client, [e for e in events if e.kind == "session_completed"][0].outcomes


def test_object_stays_encrypted_on_the_device_and_decrypts_on_the_server():
    sealed = mo.encrypt_value(VALUE, KEY, "text/plain")
    client, outcomes = session([C("Add", "./Vendor/Secret", sealed, mime_type=mo.MO_TYPE),
                                C("Get", "./Vendor/Secret")])
    stored = client.tree.find("./Vendor/Secret").value
    assert b"correct horse" not in stored.encode() and "EncryptedData" in stored
    assert [o.code for o in outcomes] == [200, 200]
    assert mo.decrypt_value(outcomes[1].data, KEY) == VALUE


def test_wrong_key_and_changed_ciphertext_fail():
    sealed = mo.encrypt_value(VALUE, KEY)
    with pytest.raises(MessageSecurityError) as exc:
        mo.decrypt_value(sealed, b"another-secret")
    assert exc.value.reason == "decrypt_failed"
    start = sealed.index("<xenc:CipherValue>") + len("<xenc:CipherValue>")
    changed = sealed[:start] + ("B" if sealed[start] != "B" else "C") + sealed[start + 1:]
    with pytest.raises(MessageSecurityError) as exc:
        mo.decrypt_value(changed, KEY)
    assert exc.value.reason == "decrypt_failed"


def test_plain_value_is_not_taken_for_an_encrypted_one():
    with pytest.raises(MessageSecurityError) as exc:
        mo.decrypt_value("<x/>", KEY)
    assert exc.value.reason == "not_encrypted"


def test_object_key_differs_from_the_message_key_of_the_same_secret():
    assert xml_encryption.derive_key(KEY, mo.KDF_INFO) != xml_encryption.derive_key(KEY)


def test_xmlsec1_decrypts_the_stored_object(tmp_path):
    if shutil.which("xmlsec1") is None:
        if os.environ.get("DMSIM_REQUIRE_XMLSEC1") == "1":
            pytest.fail("xmlsec1 is not installed (DMSIM_REQUIRE_XMLSEC1=1 requires it)", pytrace=False)
        pytest.skip("needs the xmlsec1 command line (Debian package xmlsec1)")
    (tmp_path / "aes").write_bytes(xml_encryption.derive_key(KEY, mo.KDF_INFO))
    (tmp_path / "obj.xml").write_text(mo.encrypt_value(VALUE, KEY))
    out = subprocess.run(["xmlsec1", "--decrypt", "--aeskey", tmp_path / "aes", tmp_path / "obj.xml"],
                         capture_output=True, timeout=60)
    assert out.returncode == 0 and out.stdout == VALUE, out.stderr
