"""The fleet's identities (sim/model/fleet.py): a different password for each client and each side
(OMA-TS-DM_Security DM-SEC-S-001-M), of 128 bits (§5.4.3), reproducible from the seed."""
import random

from dmsim.sim.model.fleet import Fleet

SPEC = {"size": 500, "profiles": [{"name": "a", "weight": 1.0, "user_pin_digits": 8},
                                  {"name": "b", "weight": 3.0, "user_pin_digits": 4}]}


def identities(seed: int):
    fleet = Fleet(SPEC, random.Random(seed))
    return [fleet.device(i) for i in range(SPEC["size"])]


def test_every_client_and_side_has_its_own_128_bit_password():
    devices = identities(1)
    passwords = [d.client_password for d in devices] + [d.server_password for d in devices]
    assert len(set(passwords)) == len(passwords) == 1000
    assert all(len(bytes.fromhex(p)) * 8 >= 128 for p in passwords)


def test_the_draws_are_the_seeds():
    assert [(d.client_password, d.userpin, d.profile["name"]) for d in identities(1)] == \
        [(d.client_password, d.userpin, d.profile["name"]) for d in identities(1)]
    assert identities(1)[0].client_password != identities(2)[0].client_password
    devices = identities(3)
    assert {len(d.userpin) for d in devices} == {4, 8}
    share_b = sum(d.profile["name"] == "b" for d in devices) / len(devices)
    assert 0.65 < share_b < 0.85  # weight 3 of 4
