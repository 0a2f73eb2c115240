"""The SQLite device store: accounts with their nonces and TLS PSKs survive closing the file
(OMA-TS-DM_Security §5.5: the nonces are state the server must keep)."""
import dataclasses
import os
import sqlite3
import threading

import pytest

from dmsim.devices.dm_client import DmClient, Done
from dmsim.network.dm.account import DmAccount
from dmsim.network.dm.auth import AUTH_SHA256
from dmsim.network.dm.server import DmServer
from dmsim.sim.real.dm_store import SqliteAccounts
from dmsim.base.errors import DmsimError

DEV = "IMSI:001010000000042"
ACC = DmAccount("srv", "https://dm.example/dm", "cn", "cp", "srv", "sp", b"\x00\x01nonce", b"\xff" * 16,
                AUTH_SHA256)


def test_mapping_round_trip_and_reopen(tmp_path):
    path = tmp_path / "dm.sqlite"
    with SqliteAccounts(path) as store:
        assert len(store) == 0 and DEV not in store
        store[DEV] = ACC
        store["IMSI:2"] = ACC.with_nonces(client=b"")
        store[DEV] = ACC.with_nonces(server=b"\x00" * 3)  # replaces
        store.psks[b"IMEI:490154203237518"] = bytes(16)
        peek = sqlite3.connect(path)
        assert peek.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        peek.close()
    with SqliteAccounts(path) as store:
        assert list(store) == [DEV, "IMSI:2"] and len(store) == 2
        assert store[DEV] == ACC.with_nonces(server=b"\x00" * 3)
        assert store["IMSI:2"].client_nonce == b""
        assert dict(store.psks) == {b"IMEI:490154203237518": bytes(16)}
        del store["IMSI:2"]
        del store.psks[b"IMEI:490154203237518"]
        with pytest.raises(KeyError):
            store["IMSI:2"]
        with pytest.raises(KeyError):
            del store.psks[b"nope"]
        assert store.get("IMSI:2") is None and "x" not in store.psks and 5 not in store.psks


def test_an_account_with_a_psk_enters_the_psk_table(tmp_path):
    with SqliteAccounts(tmp_path / "dm.sqlite") as store:
        store[DEV] = dataclasses.replace(ACC, psk_identity=b"psk-01", psk_key=b"\x07" * 32)
        assert store.psks[b"psk-01"] == b"\x07" * 32 and store[DEV].psk_identity == b"psk-01"
        store["IMSI:2"] = ACC
        assert list(store.psks) == [b"psk-01"]


def test_a_store_from_before_a_new_account_field_reads_its_default(tmp_path):
    old = sqlite3.connect(tmp_path / "old.sqlite")
    old.execute("CREATE TABLE accounts (device TEXT PRIMARY KEY, server_id TEXT, server_uri TEXT, client_name TEXT, "
                "client_password TEXT, server_name TEXT, server_password TEXT, client_nonce BLOB, server_nonce BLOB)")
    old.execute("INSERT INTO accounts VALUES (?, 'srv', 'u', 'cn', 'cp', 'srv', 'sp', ?, ?)", (DEV, b"c", b"s"))
    old.commit()
    old.close()
    with SqliteAccounts(tmp_path / "old.sqlite") as store:
        assert store[DEV] == DmAccount("srv", "u", "cn", "cp", "srv", "sp", b"c", b"s")


def test_threads_share_one_store(tmp_path):
    store = SqliteAccounts(tmp_path / "dm.sqlite")

    def work(i):
        for j in range(20):
            store[f"IMSI:{i}"] = ACC.with_nonces(client=bytes([j]))
            store.psks[f"id{i}".encode()] = bytes([j])
            assert store[f"IMSI:{i}"].client_nonce == bytes([j])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(store) == 4 and all(store[f"IMSI:{i}"].client_nonce == bytes([19]) for i in range(4))
    store.close()


def test_not_a_store_is_a_dmsim_error(tmp_path):
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(DmsimError, match="bad.sqlite"):
        SqliteAccounts(bad)


def test_server_nonces_survive_a_restart(tmp_path):
    """A session changes both nonces; a new core on the reopened file authenticates the next one."""
    path = tmp_path / "dm.sqlite"
    store = SqliteAccounts(path)
    core = DmServer("srv", "http://x/dm", os.urandom, accounts=store)
    account = core.provision(DEV, client_name="cn", client_password="cp", server_password="sp")
    for session_id in (1, 2):
        client = DmClient(account, DEV, {"DevId": DEV, "Mod": "m"}, session_id, os.urandom)
        step = client.start()
        while not isinstance(step, Done):
            reply = core.handle(step.body, step.content_type, 0.0)
            step = client.receive(reply.body, reply.content_type)
        assert step == Done(True)
        assert store[DEV].client_nonce == client.account.client_nonce != account.client_nonce
        account = client.account
        store.close()
        store = SqliteAccounts(path)  # "restart": the next session runs on a new core
        core = DmServer("srv", "http://x/dm", os.urandom, accounts=store)
    store.close()
