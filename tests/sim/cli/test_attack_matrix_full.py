"""The whole catalogue against every security profile, as ``dmsim attack matrix`` runs it (about a
minute on two cores): no cell errs or stays inconclusive, the weaknesses the seeds allow are
reported as successes, the defences as detections, and each fixed defect's "without" row as the
success it was."""
from __future__ import annotations

import pytest

from dmsim.sim.agents.adversary.catalogue import ATTACKS, load_catalogue
from dmsim.sim.cli.attack_matrix import PROFILES, run_matrix


@pytest.fixture(scope="module")
def matrix(tmp_path_factory):
    load_catalogue()
    cells = run_matrix(tmp_path_factory.mktemp("matrix"), list(PROFILES), sorted(ATTACKS), jobs=2, echo=lambda _: None)
    return {(c.row, c.profile): c for c in cells}


def test_every_cell_ran_to_a_verdict(matrix):
    load_catalogue()
    rows = {row for row, _ in matrix}
    assert rows >= set(ATTACKS) and len(matrix) == len(rows) * len(PROFILES)
    assert not [key for key, c in matrix.items() if c.verdict in ("error", "inconclusive")]


@pytest.mark.parametrize("row, profile, verdict", [
    # the three the issue asks to see succeed, as the seeds allow
    ("forge-networkid-bootstrap", "networkid", "succeeded"),
    ("userpin-guess", "userpin", "succeeded"),
    ("replay-dm-credential", "auth-basic", "succeeded"),
    # and what the defences hold
    ("replay-dm-credential", "networkid", "detected"),
    ("replay-dm-credential", "tls-psk", "blocked"),
    ("tamper-bootstrap", "userpin", "detected"),
    ("forge-bootstrap-guessed-pin", "userpin", "detected"),
    ("tls-intercept", "tls-psk", "detected"),
    ("tls-intercept", "x509-mutual", "detected"),
    ("downgrade-tls", "x509", "detected"),
    ("scp03-mitm", "smartcard", "detected"),
    ("fake-bsf", "gba", "detected"),
    ("replay-gpi", "gba", "detected"),
    ("replay-hmac", "hmac", "detected"),
    ("strip-hmac", "hmac", "detected"),
    ("replay-ota-packet", "networkid", "detected"),
    ("md5-dictionary", "networkid", "blocked"),
    ("md5-dictionary", "auth-basic", "succeeded"),
    ("userpin-guess", "networkid", "n/a"),
    # fixed defects: after (as dmsim is) and before (its knockout)
    ("fake-dm-server", "networkid", "detected"),
    ("fake-dm-server [without client-keeps-server-nonce]", "networkid", "succeeded"),
    ("fake-dm-server", "auth-basic", "succeeded"),
    ("server-nonce-reuse", "networkid", "detected"),
    ("server-nonce-reuse [without server-next-nonce-repeats]", "networkid", "succeeded"),
    ("package1-storm", "networkid", "detected"),
    ("package1-storm [without server-slot-held-by-challenge]", "networkid", "succeeded"),
    ("nonce-rotation-lockout [without server-failure-rotates-nonce]", "networkid", "succeeded"),
])
def test_a_cell(matrix, row, profile, verdict):
    cell = matrix[(row, profile)]
    assert cell.verdict == verdict, cell
