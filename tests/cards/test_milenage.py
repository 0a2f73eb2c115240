"""MILENAGE (TS 35.206 §4.1) against the TS 35.208 conformance sets in tests/vectors/cards.json."""
import pytest
from conftest import load_vectors

from dmsim.cards.milenage import f1, f1star, f2345, f5star, opc_from_op
from dmsim.base.errors import DecodeError

VECTORS = load_vectors("cards", "milenage")


def _inputs(vector):
    return {name: bytes.fromhex(value) for name, value in vector["inputs"].items()}


def _outputs(k, opc, rand, sqn, amf):
    res, ck, ik, ak = f2345(k, opc, rand)
    return {
        "f1": f1(k, opc, rand, sqn, amf), "f1star": f1star(k, opc, rand, sqn, amf),
        "f2res": res, "f3ck": ck, "f4ik": ik, "f5ak": ak, "f5star_ak": f5star(k, opc, rand),
    }


def test_vectors_present():
    assert len(VECTORS) >= 3


@pytest.mark.parametrize("vector", VECTORS, ids=[v["id"] for v in VECTORS])
def test_opc_from_op(vector):
    i = _inputs(vector)
    assert opc_from_op(i["k"], i["op"]).hex() == vector["expected"]["opc"]


@pytest.mark.parametrize("vector", VECTORS, ids=[v["id"] for v in VECTORS])
@pytest.mark.parametrize("source", ["op", "opc"])
def test_functions(vector, source):
    i = _inputs(vector)
    expected = vector["expected"]
    opc = opc_from_op(i["k"], i["op"]) if source == "op" else bytes.fromhex(expected["opc"])
    got = _outputs(i["k"], opc, i["rand"], i["sqn"], i["amf"])
    assert {name: value.hex() for name, value in got.items()} == {
        name: expected[name] for name in got}


@pytest.mark.parametrize("vector", VECTORS, ids=[v["id"] for v in VECTORS])
def test_wrong_k_changes_every_output(vector):
    i = _inputs(vector)
    opc = bytes.fromhex(vector["expected"]["opc"])
    right = _outputs(i["k"], opc, i["rand"], i["sqn"], i["amf"])
    wrong_k = bytes([i["k"][0] ^ 0x01]) + i["k"][1:]
    wrong = _outputs(wrong_k, opc, i["rand"], i["sqn"], i["amf"])
    assert all(right[name] != wrong[name] for name in right)
    assert opc_from_op(wrong_k, i["op"]) != opc


@pytest.mark.parametrize("call", [
    lambda: f2345(bytes(15), bytes(16), bytes(16)),
    lambda: f5star(bytes(16), bytes(17), bytes(16)),
    lambda: f1(bytes(16), bytes(16), bytes(16), bytes(5), bytes(2)),
    lambda: f1star(bytes(16), bytes(16), bytes(16), bytes(6), bytes(3)),
    lambda: opc_from_op(bytes(16), b""),
])
def test_wrong_lengths_raise_decode_error(call):
    with pytest.raises(DecodeError):
        call()
