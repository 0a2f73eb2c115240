"""OpenSSL as the peer of dmsim's sans-IO TLS endpoints over loopback sockets, for the interop tests
of this folder (test_tls_openssl.py, test_tls_mutual_openssl.py, test_tls_dhe_openssl.py).

The test is the I/O driver: ``drive`` moves bytes between a socket and an endpoint; ``run_s_client``
accepts one ``openssl s_client`` connection on a dmsim server endpoint; ``s_servers`` starts
``openssl s_server`` processes for a dmsim client and stops them afterwards."""
import contextlib
import os
import select
import shutil
import socket
import subprocess
import time

import pytest

from dmsim.network.dm import tls, tls_pki

OPENSSL = shutil.which("openssl")
requires_openssl = pytest.mark.skipif(OPENSSL is None, reason="openssl not installed")
TIMEOUT = 5.0
LINE = b"<SyncML>pkg1</SyncML>\n"


def drive(endpoint, sock, until, deadline):
    """Pump bytes between ``sock`` and ``endpoint`` until ``until(events)``; return events."""
    events = []
    sock.setblocking(False)
    while time.monotonic() < deadline:
        out = endpoint.data_to_send()
        if out:
            sock.sendall(out)
        if until(events) or endpoint.state in ("failed", "closed"):
            break
        if select.select([sock], [], [], 0.05)[0]:
            try:
                data = sock.recv(65536)
            except ConnectionError:
                data = b""
            events += endpoint.receive_data(data)
    out = endpoint.data_to_send()
    if out:
        try:
            sock.sendall(out)
        except OSError:
            pass
    return events


def done(events):
    return any(isinstance(e, tls.HandshakeDone) for e in events)


def got_line(events):
    return b"\n" in b"".join(e.data for e in events if isinstance(e, tls.AppData))


def run_s_client(args, server_config, until, *, stdin=LINE, endpoint=tls.TlsEndpoint, answer=None):
    """Accept one ``openssl s_client <args>`` connection (fed ``stdin``) on ``endpoint(server_config)``
    and drive it until ``until(events)``; if it is then open, send ``answer`` (if given) and close it.
    Return (server endpoint, events, s_client output, s_client exit code)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        proc = subprocess.Popen([OPENSSL, "s_client", "-connect", f"127.0.0.1:{port}", *args],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            proc.stdin.write(stdin)
            proc.stdin.close()
            listener.settimeout(TIMEOUT)
            conn, _ = listener.accept()
            with conn:
                server = endpoint(server_config)
                events = drive(server, conn, until, time.monotonic() + TIMEOUT)
                if server.state == "open":
                    if answer is not None:
                        server.send(answer)
                    server.close()
                    drive(server, conn, lambda e: True, time.monotonic() + 1)
            proc.wait(timeout=TIMEOUT)
            output = proc.stdout.read()
        finally:
            proc.kill()
            proc.wait(timeout=TIMEOUT)
            proc.stdout.close()
    return server, events, output, proc.returncode


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def s_servers():
    """Yield ``start(*args)``: start ``openssl s_server -accept 127.0.0.1:<a free port> <args>``, wait
    until it listens and return (port, process). All the processes are killed on leaving."""
    procs = []

    def start(*args):
        port = free_port()
        proc = subprocess.Popen([OPENSSL, "s_server", "-accept", f"127.0.0.1:{port}", *args],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        procs.append(proc)
        seen, deadline = b"", time.monotonic() + TIMEOUT
        while b"ACCEPT" not in seen and time.monotonic() < deadline:  # listening from here on
            if select.select([proc.stdout], [], [], 0.1)[0]:
                seen += os.read(proc.stdout.fileno(), 65536)  # unbuffered: the rest is read later
        return port, proc

    try:
        yield start
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(timeout=TIMEOUT)
            proc.stdout.close()
            proc.stdin.close()


def write_pems(folder, pems):
    """Write each ``name: PEM`` of ``pems`` to ``folder/<name>.pem``; return ``name: path``."""
    paths = {}
    for name, pem in pems.items():
        paths[name] = folder / f"{name}.pem"
        paths[name].write_bytes(pem)
    return paths


def lab_pems(ca, dev, *creds):
    """Return ``name: PEM``: ``ca``'s certificate ("ca"), then, for the (name, credential) pairs ``creds``
    and the credentials of the device ``dev`` from ``ca`` ("device") and from another CA ("foreign"),
    the certificate (``<name>``) and its key (``<name>_key``)."""
    files = {"ca": ca.ca_pem}
    for name, cred in (*creds, ("device", ca.issue_device(dev)),
                       ("foreign", tls_pki.LabCa(b"some other CA entirely").issue_device(dev))):
        files[name], files[name + "_key"] = cred.cert_pem, cred.key_pem
    return files
