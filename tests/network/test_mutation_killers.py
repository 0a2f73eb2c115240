"""Issue 14: tests that kill mutants of the security cores which survived the focused tests
(.ci/mutation). Each test names the rule a surviving mutant broke; they are unit tests of
auth.py, lockout.py and challenges.py, so each mutant of those files runs in milliseconds."""
import base64
import hashlib

import pytest

from dmsim.base.errors import ProtocolError
from dmsim.network.dm import auth
from dmsim.network.dm.challenges import ChallengeTable
from dmsim.network.dm.lockout import Lockout, LockoutPolicy

NONCE = bytes(range(16))


def _digest(scheme_hash, name, password, nonce):
    cred_hash = base64.b64encode(scheme_hash(f"{name}:{password}".encode()).digest())
    return base64.b64encode(scheme_hash(cred_hash + b":" + nonce).digest()).decode()


# -- auth.py ---------------------------------------------------------------------------------------

def test_basic_credential_is_b64_of_name_colon_password():
    cred = auth.make_credential(auth.AUTH_BASIC, "Bruce1", "OhBehave", NONCE)
    assert cred == auth.Credential(auth.AUTH_BASIC, base64.b64encode(b"Bruce1:OhBehave").decode())


def test_sha256_credential_uses_sha256_not_md5():
    cred = auth.make_credential(auth.AUTH_SHA256, "dev", "pw", NONCE)
    assert cred.data == _digest(hashlib.sha256, "dev", "pw", NONCE)


def test_hashed_check_uses_the_account_scheme():
    cred_hash = auth.credential_hash("dev", "pw", auth.AUTH_SHA256)
    good = auth.make_credential(auth.AUTH_SHA256, "dev", "pw", NONCE)
    assert auth.check_hashed_credential(good, auth.AUTH_SHA256, cred_hash, NONCE)
    assert not auth.check_hashed_credential(good, auth.AUTH_SHA256, cred_hash, NONCE[::-1])


def test_hashed_check_refuses_a_right_digest_labelled_with_another_scheme():
    cred_hash = auth.credential_hash("dev", "pw")
    right = auth.make_credential(auth.AUTH_MD5, "dev", "pw", NONCE)
    relabelled = auth.Credential(auth.AUTH_BASIC, right.data)
    assert not auth.check_hashed_credential(relabelled, auth.AUTH_MD5, cred_hash, NONCE)


def test_hashed_check_refuses_basic_without_looking_up_a_hash():
    cred = auth.make_credential(auth.AUTH_BASIC, "dev", "pw", NONCE)
    assert auth.check_hashed_credential(cred, auth.AUTH_BASIC, b"anything", NONCE) is False


# -- lockout.py ------------------------------------------------------------------------------------

@pytest.mark.parametrize("field", ["threshold", "allowance", "unknown_cap"])
def test_policy_accepts_one_and_refuses_zero_for_each_count(field):
    LockoutPolicy(**{field: 1})
    with pytest.raises(ProtocolError):
        LockoutPolicy(**{field: 0})


def test_policy_base_bounds():
    LockoutPolicy(base=0.5)                  # below one second is allowed
    LockoutPolicy(base=9.0, maximum=9.0)     # base == maximum is allowed
    with pytest.raises(ProtocolError):
        LockoutPolicy(base=0.0)


def test_failures_below_threshold_start_no_lock_and_count_towards_it():
    lock = Lockout(LockoutPolicy(threshold=3, base=4.0))
    assert lock.failed("d", 0.0) == 0.0
    assert lock.failed("d", 0.0) == 0.0
    assert lock.failed("d", 0.0) == 4.0
    assert lock.locked_for("d", 1.0) == 3.0


def test_after_a_lock_the_allowance_applies_and_the_count_restarts():
    lock = Lockout(LockoutPolicy(threshold=3, allowance=2, base=1.0))
    for _ in range(3):
        lock.failed("d", 0.0)
    assert lock.failed("d", 5.0) == 0.0       # first of the allowance: no lock yet
    assert lock.failed("d", 5.0) == 2.0       # second: locked again, twice as long


def test_known_is_the_default_and_known_devices_are_not_evicted():
    lock = Lockout(LockoutPolicy(unknown_cap=1))
    lock.failed("a", 0.0)
    lock.failed("b", 0.0)
    assert len(lock) == 2


def test_len_counts_known_and_unknown():
    lock = Lockout()
    lock.failed("a", 0.0)
    lock.failed("b", 0.0, known=False)
    lock.failed("c", 0.0, known=False)
    assert len(lock) == 3


def test_unknown_devices_are_counted_locked_and_forgotten_on_success():
    lock = Lockout(LockoutPolicy(threshold=2, base=8.0))
    lock.failed("ghost", 0.0, known=False)
    assert lock.failed("ghost", 0.0, known=False) == 8.0
    assert lock.locked_for("ghost", 0.0) == 8.0
    lock.succeeded("ghost")
    assert len(lock) == 0 and lock.locked_for("ghost", 0.0) == 0.0


def test_unknown_table_drops_the_oldest_beyond_its_cap():
    lock = Lockout(LockoutPolicy(threshold=1, base=8.0, unknown_cap=2))
    for name in ("a", "b", "c"):
        lock.failed(name, 0.0, known=False)
    assert len(lock) == 2
    assert lock.locked_for("a", 0.0) == 0.0
    assert lock.locked_for("b", 0.0) == 8.0 and lock.locked_for("c", 0.0) == 8.0


# -- challenges.py ---------------------------------------------------------------------------------

def test_expire_returns_how_many_it_dropped_and_keeps_those_at_ttl():
    table = ChallengeTable(ttl=10.0)
    table.issue("a", "1", b"n1", 0.0)
    table.issue("b", "1", b"n2", 0.0)
    table.issue("c", "1", b"n3", 5.0)
    assert table.expire(10.0) == 0          # exactly ttl old: still live
    assert table.expire(10.5) == 2
    assert len(table) == 1 and table.get("c", "1", 15.0) is not None


def test_cap_drops_the_oldest_and_reissue_makes_a_challenge_newest():
    table = ChallengeTable(cap=2)
    table.issue("a", "1", b"n1", 0.0)
    table.issue("b", "1", b"n2", 1.0)
    table.issue("a", "1", b"n3", 2.0)        # re-issued: now the newest
    table.issue("c", "1", b"n4", 3.0)        # over the cap: b, the oldest, goes
    assert len(table) == 2
    assert table.get("b", "1", 3.0) is None
    assert table.get("a", "1", 3.0).nonce == b"n3"
    assert table.get("c", "1", 3.0).nonce == b"n4"
