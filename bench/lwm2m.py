"""Benchmark: LwM2M channel security, DTLS handshakes per second per security mode and SMS-binding
messages per second per algorithm (issue 18; seed 004 §7.1 and §7.3).

    .venv/bin/python bench/lwm2m.py [--handshakes 100] [--resumes 2000] [--messages 5000]
                                    [--repeat 3] [--modes psk-ccm8,psk-cbc,ecdhe-psk,rpk,x509]
                                    [--algorithms aes128,3des3] [--jobs N] [--out DIR]

DTLS (``network/lwm2m/dtls.py``). Each handshake is a fresh client ``DtlsEndpoint`` against one
``DtlsServer``, cookie gate included (ClientHello, HelloVerifyRequest, ClientHello with the
cookie, ...): every flight crosses an in-memory link, both sides run real Mbed TLS in this
process, and the server forgets the association afterwards. Modes: ``psk-ccm8`` and ``psk-cbc``
(a high-entropy 16-octet PSK; the CBC client offers TLS_PSK_WITH_AES_128_CBC_SHA256 only, as a
client without CCM would), ``ecdhe-psk`` (a 6-digit PIN, low entropy, so ECDHE-PSK only),
``rpk`` (P-256 keys pinned, carried in certificates) and ``x509`` (a lab CA's P-256 chain both
ways). Per mode: handshakes per CPU second, the client's and the server's share (wall time of
their calls; "srv hs/s" is what a core doing only the server's side would take), the ECDHE curve
the server chose (read from its ServerKeyExchange: python-mbedtls 2.10 cannot restrict the curves,
and Mbed TLS 2.28 prefers the largest), flights (a non-empty batch of datagrams of one side
between two of the other's), datagrams and octets on the wire (both directions,
HelloVerifyRequest included). ``resume`` rows time what a client does across a sleep instead:
``suspend`` (Mbed TLS context saved, sealed with AES-256-GCM) then ``DtlsEndpoint.resume``, with
no flight at all; Mbed TLS saves only associations on an AEAD suite, so the CBC suites' rows say
why there is no figure.

SMS binding (``network/lwm2m/sms_binding.py``): ``SmsBindingSender.send`` (protect: command
packet, ciphering, CC, SMS TPDU) and ``SmsBindingReceiver.receive`` (unprotect: TPDU decode,
header, CC, counter) of real LwM2M CoAP messages built with ``network/coap/message.py``: a
Register with the SMS binding (MO), a Read of /3/0 (MT) and its 2.05 answer in TLV (MO); with
AES-128 (KIc/KID 0x22, CBC and CMAC) and 3DES with three keys (0x39). The cost of a discarded
packet: ``replay`` (a packet already accepted, decrypted and verified before its counter is
refused) and ``bad_mac`` (a packet forged without the KID key: deciphered, CC refused).

Rates are operations over this process's CPU time (other processes on the shared machine
disturb it less than wall time), the best of ``--repeat`` runs; inputs are built before the clock
starts. With ``--jobs N`` (N > 1) every case also runs in N processes at once, each on the same
count, started together on a barrier: the rate is all their operations over the wall time from the
first start to the last end, i.e. the machine with every core busy. It prints the tables and
writes ``DIR/lwm2m.json`` (default ``results/bench-lwm2m``): ``handshakes``, ``resume`` and
``sms`` lists of rows (``ops``, ``cpu_s``, ``wall_s``, ``per_s``, ``us`` per operation,
``jobs_per_s`` with ``--jobs``, and the columns of the tables), with the versions and arguments.
Every operation's outcome is checked (the suite negotiated, the verdict of each SMS, the server
taking the resumed client's record): a wrong one stops the run.
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import multiprocessing
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import mbedtls
from cryptography.hazmat.primitives.asymmetric import ec

from dmsim.base.errors import ProtocolError
from dmsim.network.coap import message as coap
from dmsim.network.dm import tls_pki
from dmsim.network.dm.tls import ecdhe_curve
from dmsim.network.lwm2m import content, dtls, dtls_keys, dtls_policy
from dmsim.network.lwm2m import dtls_records as wire
from dmsim.network.lwm2m.dtls_policy import PskCredential, SecurityMode
from dmsim.network.lwm2m.sms_binding import Direction, SmsBindingReceiver, SmsBindingSender, Termination, \
    encode_sms
from dmsim.network.lwm2m.sms_security import Discarded, Reason, SmsBindingKeys, SmsKeyParameters
from dmsim.network.sms.address import Address

Run = Callable[..., dict]
"""run(n, ready): ``n`` operations, inputs built first, then ``ready()``, then the timed part;
returns {"cpu_s", "wall_s", "t0" (perf_counter at its start), ...} of the timed part."""

Ready = Callable[[], object]


def _no_wait() -> None:
    """The ``ready`` of a run alone (a --jobs run waits on a barrier)."""


ADDRESS = b"192.0.2.7:56830"
ENDPOINT = "urn:imei:490154203237518"
HOST = "lwm2m.example"
STORAGE_KEY = hashlib.sha256(b"dmsim bench lwm2m storage key").digest()
MAX_TURNS = 16  # flights of one handshake are far fewer


def _derive(label: str, size: int) -> bytes:
    return hashlib.shake_256(f"dmsim bench lwm2m {label}".encode()).digest(size)


# --- DTLS -------------------------------------------------------------------------------------

def _psk_pair(mode: str) -> tuple[dtls.DtlsConfig, dtls.DtlsConfig]:
    high = PskCredential(ENDPOINT.encode(), _derive("psk", 16), "high")
    low = PskCredential(b"urn:serial:77-0042", b"493817", "low")
    server = dtls.psk_server_config({high.identity: high, low.identity: low})
    if mode == "psk-ccm8":
        return dtls.psk_client_config(high.identity, high.key, entropy="high"), server
    if mode == "psk-cbc":
        return dtls.DtlsConfig(server=False, mode=SecurityMode.PSK, psk=high,
                               suites=(dtls_policy.PSK_AES_128_CBC_SHA256,)), server
    return dtls.psk_client_config(low.identity, low.key, entropy="low"), server


def _p256(label: str) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(int.from_bytes(_derive(label, 31), "big") + 1, ec.SECP256R1())


def _rpk_pair() -> tuple[dtls.DtlsConfig, dtls.DtlsConfig]:
    client_key, server_key = _p256("rpk client"), _p256("rpk server")
    client = dtls.rpk_client_config(dtls_keys.private_key_to_resource(client_key),
                                    dtls_keys.public_key_to_resource(server_key.public_key(), "xy"))
    server = dtls.rpk_server_config(dtls_keys.private_key_to_resource(server_key),
                                    {dtls_keys.public_key_to_resource(client_key.public_key()): ENDPOINT})
    return client, server


def _x509_pair() -> tuple[dtls.DtlsConfig, dtls.DtlsConfig]:
    ca = tls_pki.LabCa(_derive("ca secret", 32), "dmsim bench LwM2M CA")
    server_cred, device_cred = ca.issue_server(HOST), ca.issue_device(ENDPOINT)
    client = dtls.certificate_client_config(device_cred.cert_pem, device_cred.key_pem, ca.ca_pem,
                                            server_hostname=HOST)
    server = dtls.certificate_server_config(server_cred.cert_pem, server_cred.key_pem, ca.ca_pem)
    return client, server


MODES: dict[str, tuple[Callable[[], tuple[dtls.DtlsConfig, dtls.DtlsConfig]], str]] = {
    "psk-ccm8": (lambda: _psk_pair("psk-ccm8"), "TLS_PSK_WITH_AES_128_CCM_8"),
    "psk-cbc": (lambda: _psk_pair("psk-cbc"), "TLS_PSK_WITH_AES_128_CBC_SHA256"),
    "ecdhe-psk": (lambda: _psk_pair("ecdhe-psk"), "TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256"),
    "rpk": (_rpk_pair, "TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8"),
    "x509": (_x509_pair, "TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8"),
}


class BenchError(RuntimeError):
    """An operation did not give the expected outcome: the figures would mean nothing."""


class Unsupported(Exception):
    """The case cannot run with this suite (the reason is reported instead of a figure)."""


def handshake(client_config: dtls.DtlsConfig, server: dtls.DtlsServer) -> dict:
    """Run one full handshake over an in-memory link; return the open client and what it cost.

    Each turn takes the client's datagrams to the server, then the server's to the client; a
    non-empty batch is one flight.
    """
    client_ns = server_ns = 0
    flights = datagrams = c2s_bytes = s2c_bytes = largest = 0
    client_done, server_done, from_server = [], [], []
    t0 = time.perf_counter_ns()
    client = dtls.DtlsEndpoint(client_config)
    c2s = client.datagrams_to_send()
    client_ns += time.perf_counter_ns() - t0
    for _ in range(MAX_TURNS):
        t0 = time.perf_counter_ns()
        for d in c2s:
            server_done += server.receive_datagram(ADDRESS, d)
        s2c = [d for _, d in server.datagrams_to_send()]
        t1 = time.perf_counter_ns()
        from_server += s2c
        for d in s2c:
            client_done += client.receive_datagram(d)
        out = client.datagrams_to_send()
        client_ns += time.perf_counter_ns() - t1
        server_ns += t1 - t0
        for batch in (c2s, s2c):
            flights += bool(batch)
            datagrams += len(batch)
            largest = max([largest, *map(len, batch)])
        c2s_bytes += sum(map(len, c2s))
        s2c_bytes += sum(map(len, s2c))
        if not out and not s2c:
            break
        c2s = out
    ok = [e for e in client_done if isinstance(e, dtls.HandshakeDone)]
    if not ok or not any(isinstance(e, dtls.HandshakeDone) for e in server_done):
        raise BenchError(f"handshake failed: client {client_done}, server {server_done}")
    return {"client": client, "suite": ok[0].cipher, "client_ns": client_ns, "server_ns": server_ns,
            "flights": flights, "datagrams": datagrams, "bytes_c2s": c2s_bytes, "bytes_s2c": s2c_bytes,
            "max_datagram": largest, "server_datagrams": from_server}


CURVE_NAMES = {23: "secp256r1", 24: "secp384r1", 25: "secp521r1", 29: "x25519", 30: "x448"}


def server_curve(datagrams: list[bytes], suite: str) -> str | None:
    """Return the ECDHE curve of the ServerKeyExchange among the server's ``datagrams``, or None."""
    for datagram in datagrams:
        for record in wire.split_records(datagram):
            if record.content_type != wire.CT_HANDSHAKE or record.epoch != 0:
                continue
            for message in wire.split_handshake(record.fragment):
                if message.msg_type == wire.HS_SERVER_KEY_EXCHANGE:
                    curve = ecdhe_curve(message.body, dtls_policy.BY_IANA[suite])
                    return CURVE_NAMES.get(curve, str(curve))
    return None


def handshake_case(mode: str) -> Run:
    """Return run(n): ``n`` full handshakes in ``mode`` against one server."""
    make_pair, suite = MODES[mode]
    client_config, server_config = make_pair()
    server = dtls.DtlsServer(server_config, max_endpoints=1)
    curve = server_curve(handshake(client_config, server)["server_datagrams"], suite)  # builds the contexts
    server.forget(ADDRESS)

    def run(n: int, ready: Ready = _no_wait) -> dict:
        total: dict = {}
        cpu0, wall0 = _start(ready)
        for _ in range(n):
            one = handshake(client_config, server)
            server.forget(ADDRESS)
            for key in ("client_ns", "server_ns", "flights", "datagrams", "bytes_c2s", "bytes_s2c"):
                total[key] = total.get(key, 0) + one[key]
            total["max_datagram"] = max(total.get("max_datagram", 0), one["max_datagram"])
            total["suite"] = one["suite"]
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        if total.get("suite", suite) != suite:
            raise BenchError(f"{mode}: negotiated {total['suite']}, expected {suite}")
        return {"cpu_s": cpu, "wall_s": wall, "t0": wall0, "suite": suite, "ecdhe_curve": curve,
                "client_ms": total["client_ns"] / n / 1e6, "server_ms": total["server_ns"] / n / 1e6,
                **{k: total[k] / n for k in ("flights", "datagrams", "bytes_c2s", "bytes_s2c")},
                "bytes": (total["bytes_c2s"] + total["bytes_s2c"]) / n, "max_datagram": total["max_datagram"]}
    return run


def resume_case(mode: str) -> Run:
    """Return run(n): ``n`` suspend + resume of one open client association (no flight); the
    server's side stays in memory and must take the resumed client's record afterwards."""
    make_pair, suite = MODES[mode]
    client_config, server_config = make_pair()
    server = dtls.DtlsServer(server_config, max_endpoints=1)
    client = handshake(client_config, server)["client"]
    try:
        sealed = client.suspend(STORAGE_KEY, (1).to_bytes(12, "big"), 1)
    except ProtocolError as exc:
        raise Unsupported(str(exc)) from exc
    state = {"client": dtls.DtlsEndpoint.resume(client_config, sealed, STORAGE_KEY, 1), "generation": 1}

    def run(n: int, ready: Ready = _no_wait) -> dict:
        client, generation = state["client"], state["generation"]
        sealed = b""
        cpu0, wall0 = _start(ready)
        for _ in range(n):
            generation += 1
            sealed = client.suspend(STORAGE_KEY, generation.to_bytes(12, "big"), generation)
            client = dtls.DtlsEndpoint.resume(client_config, sealed, STORAGE_KEY, generation)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        state.update(client=client, generation=generation)
        _check_resumed(client, server)
        return {"cpu_s": cpu, "wall_s": wall, "t0": wall0, "suite": suite, "flights": 0, "datagrams": 0, "bytes": 0,
                "sealed_bytes": len(sealed)}
    return run


def _check_resumed(client: dtls.DtlsEndpoint, server: dtls.DtlsServer) -> None:
    """Raise BenchError unless the server takes a record from the resumed client."""
    client.send(b"update after sleep")
    events = [e for d in client.datagrams_to_send() for e in server.receive_datagram(ADDRESS, d)]
    server.datagrams_to_send()
    if b"".join(e.data for e in events if isinstance(e, dtls.AppData)) != b"update after sleep":
        raise BenchError(f"the server refused the resumed association: {events}")


# --- SMS binding ------------------------------------------------------------------------------

TAR = bytes.fromhex("bfff42")
ALGORITHMS = {
    "aes128": SmsKeyParameters(0x22, 0x22, 0x16, TAR),
    "3des3": SmsKeyParameters(0x39, 0x39, 0x16, TAR),
}
SERVER_NUMBER = Address.parse("+491720000001")
CLIENT_NUMBER = "+491720000002"
TOKEN = bytes.fromhex("a1b2c3d4")


def binding_keys(algorithm: str) -> SmsBindingKeys:
    """Return the "SMS Binding Secret Keys" of ``algorithm`` (16 + 16 or 24 + 24 octets)."""
    size = 16 if algorithm == "aes128" else 24
    return SmsBindingKeys(_derive(f"{algorithm} kic", size), _derive(f"{algorithm} kid", size))


def _read_request() -> coap.Message:
    return coap.request(coap.Code.GET, "/3/0", message_id=0x2001, token=TOKEN,
                        options=[(coap.Option.ACCEPT, coap.uint_value(coap.ContentFormat.LWM2M_TLV))])


def messages() -> dict[str, tuple[Direction, bytes]]:
    """Return the CoAP messages timed (name -> direction, octets): LwM2M 1.0 §5.3.1 Register with
    the SMS binding, a Read of the Device object instance and its answer (§5.4.1, TLV)."""
    register = coap.request(coap.Code.POST, "/rd", message_id=0x1001, token=TOKEN,
                            query=[f"ep={ENDPOINT}", "lt=86400", "b=S", f"sms={CLIENT_NUMBER}"],
                            content_format=coap.ContentFormat.LINK_FORMAT,
                            payload=content.link_format([(1, 0), (3, 0)]).encode())
    device = content.encode_instance(3, {0: "dmsim", 1: "sim-1", 2: "490154203237518", 3: "1.0.4"})
    answer = coap.response(_read_request(), coap.Code.CONTENT, payload=device,
                           content_format=coap.ContentFormat.LWM2M_TLV)
    return {"register": (Direction.MO, coap.encode(register)),
            "read": (Direction.MT, coap.encode(_read_request())),
            "read-2.05": (Direction.MO, coap.encode(answer))}


SMS_OPS = ("protect", "unprotect", "replay", "bad_mac")


def sms_case(algorithm: str, name: str, op: str) -> Run:
    """Return run(n): ``n`` operations ``op`` on the message ``name`` with ``algorithm``."""
    params, keys = ALGORITHMS[algorithm], binding_keys(algorithm)
    direction, message = messages()[name]

    def pair(counter: int = 0) -> tuple[SmsBindingSender, SmsBindingReceiver]:
        return (SmsBindingSender(params, keys, Termination.DEVICE, direction, SERVER_NUMBER, counter=counter),
                SmsBindingReceiver(params, keys, Termination.DEVICE, direction, counter=counter))

    def inputs(n: int) -> tuple[list[bytes], SmsBindingReceiver, object]:
        """Return the TPDUs one run receives, its receiver and the outcome each must have."""
        sender, receiver = pair()
        if op == "unprotect":
            return [sender.send(message) for _ in range(n)], receiver, message
        if op == "replay":
            tpdu = sender.send(message)
            receiver.receive(tpdu)
            return [tpdu] * n, receiver, Reason.COUNTER_REPLAYED
        forger = SmsBindingKeys(keys.kic_key, bytes(b ^ 0x5A for b in keys.kid_key))
        tpdu = encode_sms(params, forger, Termination.DEVICE, direction, SERVER_NUMBER, 1, message)
        return [tpdu] * n, receiver, Reason.BAD_MAC

    def run(n: int, ready: Ready = _no_wait) -> dict:
        if op == "protect":
            sender, receiver = pair()
            cpu0, wall0 = _start(ready)
            for _ in range(n):
                tpdu = sender.send(message)
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            if receiver.receive(tpdu) != message:  # the last one, checked off the clock
                raise BenchError(f"{algorithm} {name}: a protected message does not verify")
        else:
            tpdus, receiver, expected = inputs(n)
            receive = receiver.receive
            cpu0, wall0 = _start(ready)
            for tpdu in tpdus:
                result = receive(tpdu)
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            outcome = result.reason if isinstance(result, Discarded) else result
            if outcome != expected or sum(receiver.stats.values()) != n + (op == "replay"):
                raise BenchError(f"{algorithm} {name} {op}: got {outcome}, stats {dict(receiver.stats)}")
        return {"cpu_s": cpu, "wall_s": wall, "t0": wall0, "coap_bytes": len(message), "tpdu_bytes": len(tpdu),
                "direction": direction.value}
    return run


# --- measuring --------------------------------------------------------------------------------

def best_of(make: Callable[[], Run], n: int, repeat: int) -> dict:
    """Return the run of ``n`` operations with the least CPU time of ``repeat``, with its rates."""
    run = make()
    best = min((run(n) for _ in range(repeat)), key=lambda r: r["cpu_s"])
    return {**best, "ops": n, "per_s": n / best["cpu_s"] if best["cpu_s"] else None,
            "us": 1e6 * best["cpu_s"] / n}


def _start(ready: Ready) -> tuple[float, float]:
    """Call ``ready`` (a --jobs barrier), then return the CPU and wall clocks."""
    ready()
    return time.process_time(), time.perf_counter()


def _worker(make: Callable[[], Run], n: int, barrier, queue) -> None:
    try:
        result = make()(n, lambda: barrier.wait(120))
        queue.put((result["t0"], result["t0"] + result["wall_s"]))
    except BaseException as exc:  # reported by the parent, which would wait otherwise
        barrier.abort()
        queue.put(repr(exc))


def in_parallel(make: Callable[[], Run], n: int, jobs: int) -> float:
    """Return operations per wall second of ``jobs`` processes each running ``n`` at once."""
    ctx = multiprocessing.get_context("fork")  # closures need no pickling under fork
    barrier, queue = ctx.Barrier(jobs), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(make, n, barrier, queue)) for _ in range(jobs)]
    for p in procs:
        p.start()
    spans = [queue.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
    errors = [s for s in spans if isinstance(s, str)]
    if errors:
        raise BenchError(f"a --jobs worker failed: {errors[0]}")
    return jobs * n / (max(end for _, end in spans) - min(start for start, _ in spans))


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def measure(make: Callable[[], Run], n: int, args: argparse.Namespace, **labels) -> dict:
    """Return the row of one case: ``labels``, the best of ``--repeat`` runs, ``jobs_per_s``."""
    row = {**labels, **best_of(make, n, args.repeat)}
    if args.jobs > 1:
        row["jobs_per_s"] = in_parallel(make, n, args.jobs)
    return row


def _parallel_cell(row: dict) -> str:
    return f"{_rate(row['jobs_per_s']):>12}" if "jobs_per_s" in row else ""


def dtls_table(args: argparse.Namespace, modes: list[str]) -> list[dict]:
    """Print and return the handshake rows."""
    print(f"DTLS 1.2 handshakes, client + server in one process ({args.handshakes} per run, best of {args.repeat})")
    print(f"{'mode':<10} {'suite':<40} {'ECDHE':<9} {'hs/s':>7} {'ms':>6} {'client ms':>9} {'server ms':>9} "
          f"{'srv hs/s':>8} {'flights':>7} {'dgrams':>6} {'octets':>6} {'largest':>7} {args.parallel_title}")
    rows = []
    for mode in modes:
        row = measure(lambda: handshake_case(mode), args.handshakes, args, mode=mode)
        row["server_per_s"] = 1000 / row["server_ms"]  # a core doing only the server's side
        rows.append(row)
        print(f"{mode:<10} {row['suite']:<40} {row['ecdhe_curve'] or '-':<9} {_rate(row['per_s']):>7} "
              f"{row['us'] / 1000:>6.2f} {row['client_ms']:>9.2f} {row['server_ms']:>9.2f} "
              f"{_rate(row['server_per_s']):>8} {row['flights']:>7.0f} {row['datagrams']:>6.0f} "
              f"{row['bytes']:>6,.0f} {row['max_datagram']:>7} {_parallel_cell(row)}", flush=True)
    return rows


def resume_table(args: argparse.Namespace, handshakes: list[dict]) -> list[dict]:
    """Print and return the suspend + resume rows, compared with the handshakes of ``handshakes``."""
    print(f"\nsleep: suspend + resume of the client association, no flight ({args.resumes} per run)")
    print(f"{'mode':<10} {'per s':>8} {'µs':>7} {'sealed octets':>13} {'vs handshake':>12} {args.parallel_title}")
    rows = []
    for full in handshakes:
        mode = full["mode"]
        try:
            row = measure(lambda: resume_case(mode), args.resumes, args, mode=mode, supported=True)
        except Unsupported as exc:
            rows.append({"mode": mode, "supported": False, "reason": str(exc)})
            print(f"{mode:<10} {'-':>8} {'-':>7} {'-':>13} {'-':>12}  none: Mbed TLS saves AEAD suites only "
                  f"({exc})", flush=True)
            continue
        row["handshake_over_resume"] = full["us"] / row["us"]
        rows.append(row)
        print(f"{mode:<10} {_rate(row['per_s']):>8} {row['us']:>7.1f} {row['sealed_bytes']:>13} "
              f"{row['handshake_over_resume']:>11.0f}x {_parallel_cell(row)}", flush=True)
    return rows


def sms_table(args: argparse.Namespace, algorithms: list[str]) -> list[dict]:
    """Print and return the SMS-binding rows."""
    print(f"\nSMS binding, one secured SMS per CoAP message ({args.messages} per run)")
    print(f"{'algorithm':<9} {'message':<10} {'dir':<3} {'CoAP':>4} {'TPDU':>4} {'operation':<10} {'msg/s':>8} "
          f"{'µs':>6} {args.parallel_title}")
    rows = []
    for algorithm in algorithms:
        for name in messages():
            for op in SMS_OPS:
                row = measure(lambda: sms_case(algorithm, name, op), args.messages, args,
                              algorithm=algorithm, message=name, op=op)
                rows.append(row)
                print(f"{algorithm:<9} {name:<10} {row['direction']:<3} {row['coap_bytes']:>4} "
                      f"{row['tpdu_bytes']:>4} {op:<10} {_rate(row['per_s']):>8} {row['us']:>6.1f} "
                      f"{_parallel_cell(row)}", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--handshakes", type=int, default=100, help="handshakes per run and mode")
    ap.add_argument("--resumes", type=int, default=2000, help="suspend + resume per run and mode")
    ap.add_argument("--messages", type=int, default=5000, help="SMS operations per run and case")
    ap.add_argument("--repeat", type=int, default=3, help="runs per case; the best is kept")
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--algorithms", default=",".join(ALGORITHMS))
    ap.add_argument("--jobs", type=int, default=1, help="also run every case in N processes at once")
    ap.add_argument("--out", type=Path, default=Path("results/bench-lwm2m"))
    args = ap.parse_args(argv)
    modes, algorithms = args.modes.split(","), args.algorithms.split(",")
    unknown = [m for m in modes if m not in MODES] + [a for a in algorithms if a not in ALGORITHMS]
    if unknown or min(args.handshakes, args.resumes, args.messages, args.repeat, args.jobs) < 1:
        ap.error(f"unknown {unknown}" if unknown else "counts, --repeat and --jobs must be >= 1")
    report: dict = {"bench": "lwm2m", "python": platform.python_version(),
                    "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                    "mbedtls": mbedtls.version.version, "python_mbedtls": mbedtls.__version__,
                    "cpus": len(os.sched_getaffinity(0)),
                    "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}}
    args.parallel_title = f"{f'{args.jobs} procs/s':>12}" if args.jobs > 1 else ""
    report["handshakes"] = dtls_table(args, modes)
    report["resume"] = resume_table(args, report["handshakes"])
    report["sms"] = sms_table(args, algorithms)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "lwm2m.json").write_text(json.dumps(report, indent=1))
    print(f"\nwrote {args.out / 'lwm2m.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
