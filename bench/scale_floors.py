"""The floors bench/scale.py divides by: bare SimPy per event, and the raw crypto and codec calls
one device needs, each timed alone (issue 17).

* ``bare_simpy_us_per_event``: processes that only wait on timeouts, as many events as a device
  schedules; the µs one ``Environment.step`` costs with nothing else in the process.
* ``protocol_floor``: a calibration run of the scenario (a few hundred devices) under cProfile
  counts, per device, the C calls of the hash, HMAC and cipher primitives (``_hashlib``,
  cryptography's Rust bindings) and their own time (C time, which cProfile measures without its
  Python-level overhead); it records every WBXML document encoded or decoded, and times those
  codings again alone, without the profiler. With TLS, the floor adds one raw Mbed TLS PSK
  handshake, both ends in memory, per handshake the devices made (python-mbedtls is Cython, so
  its calls are invisible to cProfile and are timed this way instead).
"""
from __future__ import annotations

import cProfile
import pstats
import time
import timeit
from pathlib import Path

CRYPTO_WORDS = ("_hashlib", "_hmac", "cryptography", "_rust", "_blake2", "_sha")


def bare_simpy_us_per_event(events: int = 200_000) -> float:
    """Return µs per ``step`` of a SimPy model of processes that only wait on timeouts."""
    import simpy
    env = simpy.Environment()

    def proc(env, n):
        for i in range(n):
            yield env.timeout(0.5 + (i % 7) * 0.1)

    for i in range(events // 20):
        env.process(proc(env, 18))
    steps = 0
    t0 = time.perf_counter()
    step = env.step
    try:
        while True:
            step()
            steps += 1
    except simpy.core.EmptySchedule:
        pass
    return (time.perf_counter() - t0) * 1e6 / steps


def _psk_handshake_us(repeat: int = 200) -> float:
    """Return µs of one PSK-TLS 1.2 handshake, client and server Mbed TLS in memory, nothing else."""
    from mbedtls import tls
    server_conf = tls.TLSConfiguration(ciphers=("TLS-PSK-WITH-AES-128-GCM-SHA256",), validate_certificates=False,
                                       pre_shared_key_store={"dev": b"k" * 16},
                                       lowest_supported_version=tls.TLSVersion.TLSv1_2,
                                       highest_supported_version=tls.TLSVersion.TLSv1_2)
    client_conf = tls.TLSConfiguration(ciphers=("TLS-PSK-WITH-AES-128-GCM-SHA256",), validate_certificates=False,
                                       pre_shared_key=("dev", b"k" * 16),
                                       lowest_supported_version=tls.TLSVersion.TLSv1_2,
                                       highest_supported_version=tls.TLSVersion.TLSv1_2)
    server_ctx, client_ctx = tls.ServerContext(server_conf), tls.ClientContext(client_conf)

    over = tls.HandshakeStep.HANDSHAKE_OVER

    def once() -> None:
        client, server = client_ctx.wrap_buffers(None), server_ctx.wrap_buffers()
        for _ in range(50):
            for me, peer in ((client, server), (server, client)):
                while me._handshake_state is not over:
                    try:
                        me.do_handshake()
                    except (tls.WantReadError, tls.WantWriteError):
                        break
                out = me.peek_outgoing(1 << 16)
                if out:
                    me.consume_outgoing(len(out))
                    peer.receive_from_network(out)
            if client._handshake_state is over and server._handshake_state is over:
                return
        raise RuntimeError("the in-memory PSK handshake did not finish")

    once()
    return min(timeit.repeat(once, number=repeat // 10, repeat=10)) * 1e6 / (repeat // 10)


def protocol_floor(scenario: str, overrides: list[str], devices: int = 300) -> dict:
    """Return the per-device floor of ``scenario``: crypto C time, WBXML codings timed alone,
    raw TLS handshakes; and the calls counted (see the module)."""
    import tempfile
    from dmsim.network.dm import wbxml
    from dmsim.sim.results.runner import run_scenario
    from dmsim.sim.scenario.format import load_scenario
    encoded: list[bytes] = []
    decoded: list[bytes] = []
    real_encode, real_decode = wbxml.encode, wbxml.decode

    def encode(root):
        data = real_encode(root)
        encoded.append(data)
        return data

    def decode(data):
        decoded.append(bytes(data))
        return real_decode(data)

    sc = load_scenario(scenario, [*overrides, f"fleet.size={devices}", "replicas=1", "shards=1",
                                  "arrival={kind: poisson, rate: %g}" % (devices / 100)])
    wbxml.encode, wbxml.decode = encode, decode
    profile = cProfile.Profile()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            profile.enable()
            result = run_scenario(sc, Path(tmp), plots=False)
            profile.disable()
    finally:
        wbxml.encode, wbxml.decode = real_encode, real_decode
    crypto_us, calls = 0.0, {}
    for (file, _line, name), (_cc, nc, tottime, _ct, _callers) in pstats.Stats(profile).stats.items():
        if file == "~" and any(word in name for word in CRYPTO_WORDS):
            crypto_us += tottime * 1e6
            calls[name] = calls.get(name, 0) + nc
    trees = [real_decode(data) for data in encoded]
    wbxml_us = (_timed(lambda: [real_decode(d) for d in decoded]) + _timed(lambda: [real_encode(t) for t in trees]))
    tls = result.summary["network"].get("tls", {})
    handshakes = tls.get("handshakes", 0)
    tls_us = handshakes * _psk_handshake_us() if handshakes else 0.0
    per = 1 / max(result.summary["sessions"], 1)
    return {"devices": result.summary["sessions"], "crypto_us": crypto_us * per, "wbxml_us": wbxml_us * per,
            "tls_handshake_us": tls_us * per, "floor_us": (crypto_us + wbxml_us + tls_us) * per,
            "wbxml_codings_per_device": (len(encoded) + len(decoded)) * per,
            "tls_handshakes_per_device": handshakes * per,
            "crypto_calls_per_device": {k: v * per for k, v in sorted(calls.items(), key=lambda kv: -kv[1])}}


def _timed(fn) -> float:
    """Return the best of three wall times of ``fn()``, in µs."""
    return min(timeit.repeat(fn, number=1, repeat=3)) * 1e6
