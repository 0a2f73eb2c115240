"""OMA-TLV (OMA-TS-LightweightM2M-V1_0 §6.4.3) against the spec's published examples
(tests/vectors/lwm2m_tlv.json), and the strict, bounded decoder."""
import json
import struct
from pathlib import Path

import pytest

from dmsim.base.errors import DecodeError
from dmsim.network.lwm2m import content, tlv
from dmsim.network.lwm2m.objects import ResourceType
from dmsim.network.lwm2m.tlv import Tlv, TlvType

VECTORS = {v["id"]: v for v in json.loads(
    (Path(__file__).resolve().parents[2] / "vectors" / "lwm2m_tlv.json").read_text())["vectors"]}


def _keys_to_int(value):
    if isinstance(value, dict):
        return {int(k): _keys_to_int(v) for k, v in value.items()}
    return value


def test_device_example_decodes_to_the_spec_table():
    v = VECTORS["device-read-3-0"]
    data = bytes.fromhex(v["tlv_hex"])
    assert len(data) == v["length"] == 121
    assert content.decode_instance(3, 0, data) == _keys_to_int(v["expected"])


def test_device_example_reencodes_byte_for_byte():
    v = VECTORS["device-read-3-0"]
    data = bytes.fromhex(v["tlv_hex"])
    assert content.encode_instance(3, _keys_to_int(v["expected"])) == data
    assert tlv.encode(tlv.decode(data)) == data


def test_read_of_the_object_wraps_the_instance():
    v = VECTORS["device-read-3-wrapped"]
    data = bytes.fromhex(v["tlv_hex"])
    items = tlv.decode(data)
    assert [(t.type, t.id) for t in items] == [(TlvType.OBJECT_INSTANCE, 0)]
    assert items[0].offset == 3  # 08 00 79: an 8-bit length of 121 follows the 8-bit ID
    assert content.decode_instance(3, 0, data) == _keys_to_int(VECTORS["device-read-3-0"]["expected"])
    assert content.encode_object(3, content.decode_object(3, data)) == data


@pytest.mark.parametrize("vid", ["acl-read-2", "server-read-1"])
def test_multiple_instance_examples(vid):
    v = VECTORS[vid]
    data = bytes.fromhex(v["tlv_hex"])
    decoded = content.decode_object(v["path"][0], data)
    assert decoded == _keys_to_int(v["expected"])
    assert content.encode_object(v["path"][0], decoded) == data


def test_sixteen_bit_ids_and_long_lengths_round_trip():
    value = bytes(range(256)) * 300  # 76800 bytes: a 3-byte length
    items = (tlv.instance(300, [tlv.resource(5850, b"\x01"), tlv.resource(1, value),
                                tlv.multiple(2, {0: b"a" * 10, 310: b"b" * 300})]),)
    data = tlv.encode(items)
    assert data[0] == 0x20 | 0x18  # object instance, 16-bit ID, 24-bit length
    assert data[1:3] == (300).to_bytes(2, "big")
    assert tlv.decode(data) == items
    assert tlv.encode([tlv.resource(5850, b"\x01")]) == bytes.fromhex("e116da01")  # resource 5850: a 16-bit ID


def test_longer_length_forms_are_accepted():
    # resource 0 of 3 bytes with an explicit 8-bit length instead of bits 2-0
    assert tlv.decode(bytes.fromhex("c80003616263")) == (Tlv(TlvType.RESOURCE_VALUE, 0, b"abc"),)
    assert tlv.decode(bytes.fromhex("d0000003616263")) == (Tlv(TlvType.RESOURCE_VALUE, 0, b"abc"),)


@pytest.mark.parametrize("hexdata, offset", [
    ("c8", 0),                 # header cut short
    ("c80005616263", 3),       # value runs past the end
    ("e101", 0),               # 16-bit ID cut short
    ("d8000100", 0),           # 16-bit length cut short
    ("03000101", 2),           # object instance holding a resource *instance*: wrong nesting
    ("8602c10101", 2),         # multiple resource holding a resource with value
    ("c10001c10002", 3),       # the same resource twice
])
def test_malformed_tlv_is_a_decode_error_with_its_offset(hexdata, offset):
    with pytest.raises(DecodeError) as err:
        tlv.decode(bytes.fromhex(hexdata))
    assert err.value.offset == offset


def test_item_count_is_bounded():
    data = b"".join(tlv.encode([tlv.resource(i, b"")]) for i in range(100))
    assert len(tlv.decode(data)) == 100
    with pytest.raises(DecodeError, match="too many"):
        tlv.decode(data, max_items=99)


def test_nesting_depth_is_at_most_three():
    deepest = tlv.instance(0, [tlv.multiple(1, {0: b"x"})])  # instance > multiple > resource instance
    assert tlv.decode(tlv.encode([deepest])) == (deepest,)
    inner = tlv.encode([tlv.instance(0, [])])
    with pytest.raises(DecodeError) as err:  # an object instance inside an object instance
        tlv.decode(bytes([len(inner), 0]) + inner)
    assert err.value.offset == 2


@pytest.mark.parametrize("value, size", [(0, 1), (127, 1), (-128, 1), (128, 2), (-32768, 2), (32768, 4),
                                         (2**31 - 1, 4), (2**31, 8), (-(2**63), 8)])
def test_integers_take_1_2_4_or_8_bytes(value, size):
    raw = tlv.encode_value(ResourceType.INTEGER, value)
    assert len(raw) == size
    assert tlv.decode_value(ResourceType.INTEGER, raw) == value


def test_typed_values():
    assert tlv.decode_value(ResourceType.INTEGER, b"\xff\xff") == -1
    assert tlv.decode_value(ResourceType.FLOAT, struct.pack(">f", 1.5)) == 1.5
    assert len(tlv.encode_value(ResourceType.FLOAT, 1.5)) == 4
    assert len(tlv.encode_value(ResourceType.FLOAT, 0.1)) == 8
    assert tlv.decode_value(ResourceType.FLOAT, tlv.encode_value(ResourceType.FLOAT, 0.1)) == 0.1
    assert tlv.decode_value(ResourceType.BOOLEAN, b"\x01") is True
    assert tlv.decode_value(ResourceType.OBJLNK, bytes.fromhex("00420001")) == (66, 1)
    assert tlv.encode_value(ResourceType.OBJLNK, (66, 1)) == bytes.fromhex("00420001")
    assert tlv.decode_value(ResourceType.TIME, bytes.fromhex("5182428f")) == 1367491215


@pytest.mark.parametrize("rtype, raw", [(ResourceType.INTEGER, b"\x00\x00\x00"), (ResourceType.INTEGER, b""),
                                        (ResourceType.FLOAT, b"\x00\x00"), (ResourceType.BOOLEAN, b"\x02"),
                                        (ResourceType.BOOLEAN, b""), (ResourceType.STRING, b"ab\xff"),
                                        (ResourceType.OBJLNK, b"\x00\x01\x02")])
def test_bad_typed_values_are_refused(rtype, raw):
    with pytest.raises(DecodeError) as err:
        tlv.decode_value(rtype, raw, offset=10)
    assert err.value.offset >= 10


def test_content_refuses_unknown_resources_and_wrong_shapes():
    with pytest.raises(DecodeError):
        content.decode_instance(3, 0, tlv.encode([tlv.resource(99, b"x")]))
    with pytest.raises(DecodeError):  # Error Code (11) is a multiple resource
        content.decode_instance(3, 0, tlv.encode([tlv.resource(11, b"\x00")]))
    with pytest.raises(DecodeError):  # wrapped instance with another ID than the path's
        content.decode_instance(3, 0, tlv.encode([tlv.instance(1, [])]))
    with pytest.raises(DecodeError):
        content.decode_resource(3, 0, tlv.encode([tlv.resource(1, b"x")]))


@pytest.mark.parametrize("segments", [("a",), ("65536",), ("1", "2", "3", "4", "5"), ("-1",), ("١",)])
def test_bad_paths(segments):
    with pytest.raises(DecodeError):
        content.parse_path(segments)


from hypothesis import given, settings, strategies as st  # noqa: E402


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_any_bytes_decode_or_raise_decode_error(data):
    for decoder in (tlv.decode, lambda d: content.decode_instance(3, 0, d), lambda d: content.decode_object(2, d),
                    lambda d: content.decode_resource(1, 7, d)):
        try:
            decoder(data)
        except DecodeError:
            pass
