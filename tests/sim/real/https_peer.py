"""The live HTTPS DM server on 127.0.0.1 and a DM client driven over it, for the real-socket tests
of this folder (test_https_server.py, test_https_challenge.py, test_https_mutual.py, test_https_dhe.py)."""
import json
import threading

from dmsim.devices.dm_client import Send
from dmsim.network.dm import http_binding
from dmsim.network.dm import messages as m
from dmsim.sim.real.audit_log import AuditLog
from dmsim.sim.real.dm_http_server import DmService, default_server, make_https_server
from dmsim.sim.real.tls_socket import TlsHttpConnection


def serve(service, config, **kwargs):
    """Start ``make_https_server`` on a free port of 127.0.0.1 (handshake timeout 3 s) on its own
    thread; return the server (stop it with ``stop``)."""
    httpd = make_https_server("127.0.0.1", 0, service, config, handshake_timeout=3, **kwargs)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    return httpd


def stop(httpd):
    httpd.shutdown()
    httpd.server_close()


def audited_server(tmp_path, config, limits=None):
    """Serve a fresh DM core over HTTPS with an audit log in ``tmp_path``; the server returned
    carries ``core`` and ``audit_path``."""
    core = default_server("dmsim-server", "127.0.0.1", 0, scheme="https")
    audit_path = tmp_path / "audit.jsonl"
    httpd = serve(DmService(core, audit=AuditLog(str(audit_path))), config, limits=limits)
    httpd.core, httpd.audit_path = core, audit_path
    return httpd


def audit(httpd):
    return [json.loads(line) for line in httpd.audit_path.read_text().splitlines()]


def post_session(conn, client, look=lambda resp, body: None):
    """POST each package of ``client``'s session to /dm over ``conn`` and hand it the answers;
    ``look(resp, body)`` sees each answer first and ends the session early by returning true.
    Return the last step."""
    step = client.start()
    while isinstance(step, Send):
        conn.request("POST", "/dm", step.body, {"Content-Type": step.content_type})
        resp = conn.getresponse()
        body = resp.read()
        if look(resp, body):
            break
        step = client.receive(body, resp.getheader("Content-Type"))
    return step


def session(port, client, config):
    """Run ``client``'s session over one connection; return (last step, statuses, handshake)."""
    conn = TlsHttpConnection("127.0.0.1", port, config, timeout=5)
    statuses = []

    def look(resp, body):
        statuses.append(resp.status)
        return resp.status != 200

    try:
        step = post_session(conn, client, look)
        return step, statuses, conn.session
    finally:
        conn.close()


def closing_request(body, content_type=m.DM_XML):
    """The HTTP request POSTing ``body`` to /dm with ``Connection: close`` (for ``openssl s_client``)."""
    request = http_binding.encode_request("127.0.0.1", "/dm", body, content_type)
    return request.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1)


def write_client_pems(folder, ca, cred):
    """Write ``ca``'s certificate and the device credential ``cred`` to ca.pem, dev.pem and key.pem
    in ``folder``, for ``openssl s_client``."""
    for name, pem in (("ca", ca.ca_pem), ("dev", cred.cert_pem), ("key", cred.key_pem)):
        (folder / f"{name}.pem").write_bytes(pem)
