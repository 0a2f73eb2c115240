"""Benchmark: the offline searches of the guessing attacks on this machine.

USERPIN (OMA-TS-DM_Security §5.10.2.3): a real USERPIN bootstrap is built by the DM server core
(WBXML, HMAC-SHA1 in its Content-Type) and its PIN searched by ``pin_search``, the function the
``userpin-guess`` attack runs, from the PIN's successor upwards so that every PIN of the space is
tried (the worst case: a full search). 4 and 6 digits are searched for real on one core; 8 digits
(10^8 HMACs) is extrapolated from 10^6 guesses unless ``--full8`` is given, which searches it for
real, split over ``--jobs`` processes. USERPIN_NETWORKID costs the same (the key is 9 octets
longer, still one block).

Measured once on the development machine (2 cores shared with other jobs, CPython 3.11, a real
bootstrap of 1120 WBXML octets): 4 digits 0.05 s, 6 digits 2.9-4.5 s (2.2e5-3.5e5 HMAC/s on one
core), 8 digits 310 s with ``--full8 --jobs 2`` (3.2e5 HMAC/s over both cores); auth-md5
dictionary 3e5-6e5 guesses/s.

syncml:auth-md5 (§5.4.2): ``digest_search`` over the ``md5-dictionary`` attack's wordlist
(``--dictionary`` candidates, none of them the 128-bit random password), and the expected time to
find such a password at that rate (half of 2^128 guesses).

    .venv/bin/python bench/offline_guessing.py [--digits 4,6,8] [--full8] [--jobs N] [--dictionary 100000]
"""
from __future__ import annotations

import argparse
import base64
import os
import random
import sys
import time
from concurrent.futures import ProcessPoolExecutor

from dmsim.network.dm.auth import AUTH_MD5, make_credential
from dmsim.network.dm.bootstrap_mac import USERPIN, parse_content_type
from dmsim.network.dm.server import DmServer
from dmsim.sim.agents.adversary.attacks.guessing import SECONDS_PER_YEAR, dictionary, digest_search, pin_search

SAMPLE = 10 ** 6  # guesses timed for an extrapolated row
IMSI = "001010000000042"


def bootstrap(digits: int, rng: random.Random) -> tuple[bytes, bytes, int]:
    """Return (WBXML body, MAC, PIN) of a real USERPIN bootstrap with a random ``digits``-digit PIN."""
    pin = rng.randrange(10 ** digits)
    core = DmServer("bench-server", "http://dm.bench.test/dm", rng.randbytes)
    uri = f"IMSI:{IMSI}"
    core.provision(uri, client_name=IMSI, client_password=rng.randbytes(16).hex(),
                   server_password=rng.randbytes(16).hex())
    content_type, body = core.bootstrap_message(uri, IMSI, USERPIN, f"{pin:0{digits}d}")
    return body, bytes.fromhex(parse_content_type(content_type)[1]), pin


def _chunk(args: tuple) -> tuple[str | None, int]:
    body, mac, digits, start, limit = args
    return pin_search(body, mac, digits, start=start, limit=limit)


def search(digits: int, jobs: int, rng: random.Random, sample: int | None) -> dict:
    """Search a bootstrap's PIN space from the PIN's successor (every PIN is tried); ``sample``:
    time only that many guesses and extrapolate."""
    body, mac, pin = bootstrap(digits, rng)
    space = 10 ** digits
    total = space if sample is None else min(sample, space)
    start = (pin + 1) % space
    step = -(-total // jobs)
    chunks = [(body, mac, digits, (start + i) % space, min(step, total - i)) for i in range(0, total, step)]
    t0 = time.perf_counter()
    if jobs == 1:
        results = [_chunk(c) for c in chunks]
    else:
        with ProcessPoolExecutor(jobs) as pool:
            results = list(pool.map(_chunk, chunks))
    wall = time.perf_counter() - t0
    found = next((p for p, _ in results if p is not None), None)
    tried = sum(t for _, t in results)
    if sample is None and found != f"{pin:0{digits}d}":
        raise SystemExit(f"{digits} digits: the full search did not find the PIN")
    rate = tried / wall
    return {"digits": digits, "space": space, "tried": tried, "wall": wall if sample is None else space / rate,
            "rate": rate, "how": "measured" if sample is None else f"extrapolated from {tried:.0e}", "jobs": jobs,
            "body": len(body)}


def dictionary_row(size: int, rng: random.Random) -> dict:
    """Time the md5 dictionary against a Cred of a 128-bit random password."""
    name, nonce = IMSI, rng.randbytes(16)
    cred = make_credential(AUTH_MD5, name, rng.randbytes(16).hex(), nonce)
    t0 = time.perf_counter()
    found, tried = digest_search(base64.b64decode(cred.data), name, nonce, dictionary(size, name))
    wall = time.perf_counter() - t0
    return {"tried": tried, "wall": wall, "rate": tried / wall, "found": found}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--digits", default="4,6,8")
    ap.add_argument("--full8", action="store_true",
                    help="search 8 digits for real (10^8 HMACs) instead of extrapolating")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes for --full8")
    ap.add_argument("--dictionary", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    print("USERPIN bootstrap (HMAC-SHA1 over the WBXML body), full search of the PIN space, CPython "
          f"{sys.version.split()[0]}")
    print(f"{'digits':>6} {'PINs':>11} {'guesses':>11} {'wall s':>9} {'guesses/s':>11} {'procs':>5}  how")
    for digits in (int(d) for d in args.digits.split(",")):
        full = digits < 8 or args.full8
        jobs = args.jobs if digits >= 8 and args.full8 else 1
        r = search(digits, jobs, rng, None if full else SAMPLE)
        print(f"{digits:>6} {r['space']:>11.0e} {r['tried']:>11.0e} {r['wall']:>9.2f} {r['rate']:>11.0f} "
              f"{r['jobs']:>5}  {r['how']} (body {r['body']} octets)")
    d = dictionary_row(args.dictionary, rng)
    years = 2.0 ** 127 / d["rate"] / SECONDS_PER_YEAR
    print(f"\nsyncml:auth-md5 Cred, dictionary of {d['tried']} candidates: {d['wall']:.2f} s, "
          f"{d['rate']:.0f} guesses/s, "
          f"found: {d['found']}; a 128-bit random password (fresh_password): {years:.2e} years on average")
    return 0


if __name__ == "__main__":
    sys.exit(main())
