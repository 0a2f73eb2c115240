"""The child-by-child path lookups of ``network/dm/tree.py`` (find_path, find_all, text) give
exactly what ElementPath (``Element.find`` / ``iterfind``) gives: on random trees with repeated
tags, on paths with ElementPath syntax (which go to ElementPath), and on every lookup the DM code
makes in small simulated runs (client and server, WBXML and XML, md5, basic and HMAC accounts,
smartcard and TLS bootstraps)."""
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import run_replica
from dmsim.network.dm import tree
from dmsim.network.dm.tree import E, find_all, find_path, text

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TAGS = ["a", "b", "c"]


def trees(depth=3):
    leaf = st.builds(lambda tag, t: E(tag, t), st.sampled_from(TAGS), st.sampled_from([None, "", " x ", "y"]))
    if depth == 0:
        return leaf
    kids = st.lists(trees(depth - 1), max_size=4)
    return leaf | st.builds(lambda tag, children: E(tag, *children), st.sampled_from(TAGS), kids)


PATHS = st.lists(st.sampled_from(TAGS + ["d"]), min_size=1, max_size=4).map("/".join)


@FUZZ
@given(trees(), PATHS)
def test_lookups_are_elementpath_on_random_trees(root, path):
    for elem in root.iter():
        assert find_path(elem, path) is elem.find(path)
        assert find_all(elem, path) == list(elem.iterfind(path))
        assert text(elem, path, "none") == (elem.findtext(path, "none") if elem.find(path) is None
                                            else (elem.find(path).text or "").strip())


@pytest.mark.parametrize("path", ["./a", "a/./b", "*/b", "a//b", ".//c", "a/*", "a[1]", "a/b[c]", "a/..", "{x}a/b",
                                  "a/b/", "/a", "a b/c", "a-b/c_d", "a/b/c/a/b"])
def test_elementpath_syntax(path):
    root = E("r", E("a", E("b", E("c", "1")), E("b", "2")), E("a", E("c", "3")), E("a-b", E("c_d", "4")))
    for elem in root.iter():
        try:
            expected = elem.find(path)
        except SyntaxError:
            with pytest.raises(SyntaxError):
                find_path(elem, path)
            continue
        assert find_path(elem, path) is expected
        assert find_all(elem, path) == list(elem.iterfind(path))


def test_the_first_match_may_be_below_a_later_parent():
    hdr = E("SyncHdr", E("Cred", E("Meta", E("Format", "b64"))), E("Cred", E("Meta", E("Type", "syncml:auth-md5"))))
    assert text(hdr, "Cred/Meta/Type") == "syncml:auth-md5" == hdr.find("Cred/Meta/Type").text
    assert text(hdr, "Cred/Meta/Format") == "b64"
    assert text(hdr, "Cred/Data") is None


SCENARIO = (Path(__file__).parents[2] / "scenarios" / "quickstart.yaml").read_text()
SMALL = ("fleet.size=6", "duration=600")


@pytest.mark.parametrize("overrides", [
    (),
    ("fleet.profiles.0.dm_auth=md5",),
    ("fleet.profiles.0.dm_auth=basic",),
    ("fleet.profiles.0.message_security=xmldsig",),
    ("fleet.profiles.0.message_security=xmlenc",),
    ("fleet.profiles.0.bootstrap_via=smartcard",),
    ("fleet.profiles.0.bootstrap_via=tls",),
    ("fleet.profiles.0.bootstrap_via=gba_push", "gba={}"),
])
def test_every_lookup_of_a_simulated_run_is_elementpath(monkeypatch, overrides):
    calls = []
    real_find_path, real_find_all = tree.find_path, tree.find_all

    def spy_path(elem, path):
        calls.append((elem, path))
        return real_find_path(elem, path)

    def spy_all(elem, path):
        calls.append((elem, path))
        return real_find_all(elem, path)

    for module in _users():
        if hasattr(module, "find_path"):
            monkeypatch.setattr(module, "find_path", spy_path)
        if hasattr(module, "find_all"):
            monkeypatch.setattr(module, "find_all", spy_all)
    _, rows = run_replica(SCENARIO, *SMALL, *overrides)
    assert calls and any(row[5] == "ok" for row in rows)  # sessions ran
    for elem, path in calls:
        assert real_find_path(elem, path) is elem.find(path)
        assert real_find_all(elem, path) == list(elem.iterfind(path))


def _users():
    from dmsim.devices import dm_tree
    from dmsim.network.dm import account, messages, server
    return [tree, dm_tree, account, messages, server]
