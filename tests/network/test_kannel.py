"""dmsim's SMPP 3.4 server with Kannel (Debian package ``kannel``) as the ESME: bind_transceiver
(SMPP 3.4 §4.1.5), submit_sm with UDHI/data_coding (§4.4, §5.2.12, §5.2.19), deliver_sm for MO
messages and Appendix B delivery receipts (§4.6), enquire_link (§4.11) and unbind (§4.2).

Kannel's bearerbox binds as a transceiver to an in-process ``SmppServer`` (so that the test sees
every PDU and can push MO deliver_sm), with the lab SMSC's ``MemoryStore`` numbering messages and
sending delivery receipts, as ``dmsim smsc serve`` does. Kannel's smsbox takes MT messages on its
sendsms HTTP port and calls the test's HTTP recorder for MO messages (sms-service get-url) and
delivery reports (dlr-url). Everything listens on free ports of 127.0.0.1; logs go to tmp_path.

Skipped when bearerbox/smsbox are not installed, unless DMSIM_REQUIRE_KANNEL=1 (set by
``./dev test`` when CI=true), which makes that a failure.
"""
import http.server
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

import pytest

from dmsim.network.sms import smpp
from dmsim.sim.real.smpp_server import SmppServer
from dmsim.network.sms.smpp_session import Malformed
from dmsim.network.sms.udh import decode_udh, find_concat
from dmsim.sim.cli.smsc import MemoryStore

SBIN = ("/usr/sbin", "/usr/local/sbin")  # Debian installs the boxes there, often not on a user's PATH
SYSTEM_ID, PASSWORD, SYSTEM_TYPE = "kannel", "secret", "VMA"
ADMIN_PASSWORD = "adm"
SENDSMS_USER, SENDSMS_PASSWORD = "tester", "foobar"
SHORT_CODE, HANDSET = "4471", "31612345678"
WAP_UDH = bytes.fromhex("0605040b8423f0")              # ports 2948 <- 9200 (WAP Push)
WSP_PUSH = bytes.fromhex("0106") + b"\x03\xc4\xaf\x87" + b"\x02\x6a\x00"
READY_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0

CONFIG = """\
group = core
admin-port = {admin_port}
admin-interface = 127.0.0.1
admin-password = {admin_password}
smsbox-port = {smsbox_port}
box-allow-ip = 127.0.0.1
log-file = "{dir}/bearerbox.log"
log-level = 0
access-log = "{dir}/access.log"
dlr-storage = internal

group = smsc
smsc = smpp
smsc-id = dmsim
host = 127.0.0.1
port = {smpp_port}
transceiver-mode = true
smsc-username = {system_id}
smsc-password = {password}
system-type = {system_type}
enquire-link-interval = 1
reconnect-delay = 1

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = {smsbox_port}
sendsms-port = {sendsms_port}
sendsms-interface = 127.0.0.1
log-file = "{dir}/smsbox.log"
log-level = 0

group = sendsms-user
username = {sendsms_user}
password = {sendsms_password}
user-allow-ip = 127.0.0.1
max-messages = 3
concatenation = true

group = sms-service
keyword = default
catch-all = true
max-messages = 0
get-url = "http://127.0.0.1:{http_port}/mo?from=%p&to=%P&text=%b&coding=%c&udh=%u&smsc=%i"
"""


def _binaries() -> tuple[str, str]:
    """Return the paths of bearerbox and smsbox, or skip (fail with DMSIM_REQUIRE_KANNEL=1)."""
    path = os.pathsep.join([os.environ.get("PATH", ""), *SBIN])
    found = [shutil.which(name, path=path) for name in ("bearerbox", "smsbox")]
    if None in found:
        reason = "Kannel (bearerbox, smsbox) is not installed"
        if os.environ.get("DMSIM_REQUIRE_KANNEL") == "1":
            pytest.fail(f"{reason} (DMSIM_REQUIRE_KANNEL=1 requires it)", pytrace=False)
        pytest.skip(reason)
    return found[0], found[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


class _Recorder(http.server.ThreadingHTTPServer):
    """Kannel's HTTP peer: records each GET as (path, {name: value}) and answers 200, empty."""

    daemon_threads = True

    def __init__(self):
        self.requests: list[tuple[str, dict[str, str]]] = []
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                url = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True, encoding="latin-1"))
                recorder.requests.append((url.path, query))
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    def get(self, path: str) -> list[dict[str, str]]:
        """Return the queries of the requests made to ``path``."""
        return [q for p, q in list(self.requests) if p == path]


@dataclass
class Lab:
    """A running dmsim SMSC, Kannel's two boxes, and the HTTP recorder."""

    server: SmppServer
    store: MemoryStore
    recorder: _Recorder
    dir: str
    ports: dict[str, int]
    events: list = field(default_factory=list)      # what on_event saw: PDUs and Malformed, in order
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    stopped: set[str] = field(default_factory=set)

    def of(self, cls) -> list:
        """Return the events that are ``cls`` instances, in arrival order."""
        return [e for e in list(self.events) if isinstance(e, cls)]

    def log(self, box: str = "bearerbox", suffix: str = "log") -> str:
        """Return the box's log so far (suffix "out": its stdout and stderr, where start-up errors go)."""
        try:
            with open(f"{self.dir}/{box}.{suffix}", encoding="latin-1") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def tails(self) -> str:
        """Return the ends of the boxes' logs and outputs, for a failure message."""
        return "".join(f"\n--- {box}.{suffix} ---\n{self.log(box, suffix)[-2000:]}"
                       for box in ("bearerbox", "smsbox") for suffix in ("out", "log"))

    def status(self) -> str:
        """Return bearerbox's status.xml."""
        url = f"http://127.0.0.1:{self.ports['admin']}/status.xml?password={ADMIN_PASSWORD}"
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.read().decode("latin-1")

    def sendsms(self, raw_query: str = "", **params: str) -> str:
        """Return smsbox's answer to a sendsms GET (``raw_query`` is appended as already encoded)."""
        query = urllib.parse.urlencode({"username": SENDSMS_USER, "password": SENDSMS_PASSWORD,
                                        "from": SHORT_CODE, "to": HANDSET, **params})
        url = f"http://127.0.0.1:{self.ports['sendsms']}/cgi-bin/sendsms?{query}{raw_query}"
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.read().decode("latin-1")

    def wait(self, what: str, predicate, timeout: float = READY_TIMEOUT):
        """Return predicate()'s first truthy value; fail, quoting the logs, after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            died = [name for name, proc in self.procs.items() if proc.poll() is not None and name not in self.stopped]
            if died or time.monotonic() > deadline:
                why = f"{' and '.join(died)} exited" if died else "timed out"
                pytest.fail(f"{why} waiting for {what}{self.tails()}", pytrace=False)
            time.sleep(0.05)

    def stop(self, name: str) -> int:
        """SIGTERM the box (SIGKILL if it lingers); return its exit status."""
        proc = self.procs[name]
        self.stopped.add(name)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return proc.returncode


@pytest.fixture
def start_kannel(tmp_path):
    """Return start(password=PASSWORD, wait_bound=True) -> Lab; every process ends at teardown."""
    bearerbox, smsbox = _binaries()
    labs: list[Lab] = []

    def start(password: str = PASSWORD, wait_bound: bool = True, smpp_port: int | None = None) -> Lab:
        """With ``smpp_port``, Kannel binds to an SMSC that is already listening there (a running
        scenario's); else to a new in-process lab SMSC."""
        store = MemoryStore(echo=lambda line: None)
        events: list = []
        server = None
        if smpp_port is None:
            server = SmppServer(store.on_submit, port=0, accounts={SYSTEM_ID: PASSWORD},
                                on_submitted=store.on_submitted, on_event=lambda peer, event: events.append(event))
            store.server = server
            server.start()
            smpp_port = server.address[1]
        recorder = _Recorder()
        threading.Thread(target=recorder.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
        ports = {"admin": _free_port(), "smsbox": _free_port(), "sendsms": _free_port(),
                 "smpp": smpp_port, "http": recorder.server_address[1]}
        lab = Lab(server, store, recorder, str(tmp_path), ports, events)
        labs.append(lab)
        conf = tmp_path / "kannel.conf"
        conf.write_text(CONFIG.format(
            dir=tmp_path, admin_port=ports["admin"], admin_password=ADMIN_PASSWORD, smsbox_port=ports["smsbox"],
            smpp_port=ports["smpp"], system_id=SYSTEM_ID, password=password, system_type=SYSTEM_TYPE,
            sendsms_port=ports["sendsms"], sendsms_user=SENDSMS_USER, sendsms_password=SENDSMS_PASSWORD,
            http_port=ports["http"]))
        for name, binary in (("bearerbox", bearerbox), ("smsbox", smsbox)):
            out = open(tmp_path / f"{name}.out", "wb")
            lab.procs[name] = subprocess.Popen([binary, str(conf)], stdout=out, stderr=subprocess.STDOUT,
                                               stdin=subprocess.DEVNULL, cwd=tmp_path)
            out.close()
            if name == "bearerbox":  # smsbox retries only every few seconds: let bearerbox listen first
                lab.wait("bearerbox's admin port", lambda: _accepts(ports["admin"]))
                if wait_bound:
                    lab.wait("Kannel's bind", server.bound if server else lambda: "<status>online" in lab.status())
        if wait_bound:
            lab.wait("smsbox's connection to bearerbox", lambda: "<type>smsbox</type>" in lab.status())
            lab.wait("smsbox's sendsms port", lambda: _accepts(ports["sendsms"]))
        return lab

    yield start
    for lab in labs:
        for name in ("smsbox", "bearerbox"):
            if name in lab.procs:
                lab.stop(name)
        if lab.server is not None:
            lab.server.stop()
        lab.recorder.shutdown()
        lab.recorder.server_close()


def test_kannel_binds_as_transceiver(start_kannel):
    lab = start_kannel()
    (bind,) = lab.of(smpp.Bind)
    assert (bind.mode, bind.system_id, bind.password, bind.system_type) == ("trx", SYSTEM_ID, PASSWORD, SYSTEM_TYPE)
    assert bind.interface_version == smpp.INTERFACE_VERSION_34
    assert lab.server.bound() == [(SYSTEM_ID, "bound_trx")]
    assert "<status>online" in lab.status()


def test_wrong_password_is_refused(start_kannel):
    lab = start_kannel(password="wrong", wait_bound=False)
    lab.wait("a refused bind", lambda: "rejected login to transmit, code 0x0000000d" in lab.log())  # RBINDFAIL (issue 13)
    assert lab.of(smpp.Bind) and lab.server.bound() == []


def test_mt_text_with_delivery_report(start_kannel):
    lab = start_kannel()
    dlr_url = (f"http://127.0.0.1:{lab.ports['http']}/dlr?type=%d&fid=%F&to=%p&from=%P&text=%A")
    assert lab.sendsms(text="hello dmsim", **{"dlr-mask": "3", "dlr-url": dlr_url}).startswith("0: Accepted")
    (submit,) = lab.wait("submit_sm", lambda: lab.of(smpp.SubmitSm))
    assert (submit.destination_addr, submit.source_addr, submit.short_message) == (HANDSET, SHORT_CODE, b"hello dmsim")
    assert not submit.udhi and submit.data_coding == 0x00
    assert smpp.wants_receipt(submit.registered_delivery, delivered=True)
    ((message_id, (system_id, stored)),) = lab.store.messages.items()
    assert system_id == SYSTEM_ID and stored == submit
    # the receipt went out as a deliver_sm, Kannel answered it and matched it to its message
    (resp,) = lab.wait("deliver_sm_resp", lambda: lab.of(smpp.DeliverSmResp))
    assert resp.status == smpp.ESME_ROK
    (dlr,) = lab.wait("Kannel's dlr-url call", lambda: lab.recorder.get("/dlr"))
    assert dlr["type"] == "1"                                  # Kannel's DLR_SUCCESS
    assert dlr["fid"] == message_id and dlr["to"] == HANDSET
    assert f"id:{message_id} " in dlr["text"] and "stat:DELIVRD" in dlr["text"]
    assert re.search(r"<dlr>\s*<received><total>1</total>", lab.status())   # bearerbox counted the receipt


def test_mt_binary_wap_push(start_kannel):
    lab = start_kannel()
    udh = urllib.parse.quote_from_bytes(WAP_UDH, safe="")
    text = urllib.parse.quote_from_bytes(WSP_PUSH, safe="")
    assert lab.sendsms(f"&udh={udh}&text={text}", coding="1").startswith("0: Accepted")
    (submit,) = lab.wait("submit_sm", lambda: lab.of(smpp.SubmitSm))
    assert submit.destination_addr == HANDSET
    assert submit.udhi and submit.short_message == WAP_UDH + WSP_PUSH
    assert submit.data_coding == 0x04                          # 8-bit data, no message class
    assert submit.registered_delivery == 0


def test_mt_long_text_is_concatenated(start_kannel):
    lab = start_kannel()
    text = "".join(chr(ord("a") + i % 26) for i in range(200))
    assert lab.sendsms(text=text).startswith("0: Accepted")
    parts = lab.wait("two submit_sm", lambda: len(lab.of(smpp.SubmitSm)) == 2 and lab.of(smpp.SubmitSm))
    concats, bodies = [], b""
    for part in parts:
        assert part.udhi and part.destination_addr == HANDSET
        ies, rest = decode_udh(part.short_message)
        concats.append(find_concat(ies))
        bodies += rest
    assert [(c.total, c.seq) for c in concats] == [(2, 1), (2, 2)] and concats[0].ref == concats[1].ref
    assert bodies == text.encode("ascii")
    assert len(lab.store.messages) == 2


def test_mt_ucs2(start_kannel):
    lab = start_kannel()
    assert lab.sendsms(text="h\u00e9llo \u20ac", coding="2", charset="UTF-8").startswith("0: Accepted")
    (submit,) = lab.wait("submit_sm", lambda: lab.of(smpp.SubmitSm))
    assert submit.data_coding == 0x08 and submit.short_message == "h\u00e9llo \u20ac".encode("utf-16-be")


def test_mt_burst_every_receipt_matched(start_kannel):
    lab = start_kannel()
    dlr_url = f"http://127.0.0.1:{lab.ports['http']}/dlr?type=%d&fid=%F"
    for n in range(10):
        assert lab.sendsms(text=f"m{n}", **{"dlr-mask": "1", "dlr-url": dlr_url}).startswith("0: Accepted")
    dlrs = lab.wait("ten dlr-url calls", lambda: len(lab.recorder.get("/dlr")) == 10 and lab.recorder.get("/dlr"))
    assert sorted(d["fid"] for d in dlrs) == sorted(lab.store.messages) and len(lab.store.messages) == 10
    assert {d["type"] for d in dlrs} == {"1"}
    resps = lab.wait("ten deliver_sm_resp", lambda: len(lab.of(smpp.DeliverSmResp)) == 10
                     and lab.of(smpp.DeliverSmResp))
    assert {r.status for r in resps} == {smpp.ESME_ROK}


def test_mo_reaches_sms_service(start_kannel):
    lab = start_kannel()
    sequence = lab.server.deliver(SYSTEM_ID, smpp.DeliverSm(
        source_addr_ton=1, source_addr_npi=1, source_addr="31687654321", destination_addr=SHORT_CODE,
        short_message=b"mo hello"))
    (mo,) = lab.wait("the get-url call", lambda: lab.recorder.get("/mo"))
    assert (mo["text"], mo["to"], mo["smsc"], mo["udh"]) == ("mo hello", SHORT_CODE, "dmsim", "")
    assert mo["from"] == "+31687654321"                        # Kannel writes TON international as '+'
    (resp,) = lab.wait("deliver_sm_resp", lambda: lab.of(smpp.DeliverSmResp))
    assert (resp.sequence, resp.status) == (sequence, smpp.ESME_ROK)


def test_mo_binary_with_udh(start_kannel):
    lab = start_kannel()
    lab.server.deliver(SYSTEM_ID, smpp.DeliverSm(
        source_addr="31687654321", destination_addr=SHORT_CODE, esm_class=smpp.ESM_CLASS_UDHI,
        data_coding=0x04, short_message=WAP_UDH + WSP_PUSH))
    (mo,) = lab.wait("the get-url call", lambda: lab.recorder.get("/mo"))
    assert mo["coding"] == "1" and mo["udh"].encode("latin-1") == WAP_UDH
    assert mo["text"].encode("latin-1") == WSP_PUSH
    (resp,) = lab.wait("deliver_sm_resp", lambda: lab.of(smpp.DeliverSmResp))
    assert resp.status == smpp.ESME_ROK


def test_mo_in_message_payload(start_kannel):
    lab = start_kannel()
    text = b"x" * 300   # over the 254 octets of short_message (SMPP 3.4 section 5.3.2.32)
    lab.server.deliver(SYSTEM_ID, smpp.DeliverSm(source_addr="31687654321", destination_addr=SHORT_CODE,
                                                 tlvs=(smpp.Tlv(smpp.TAG_MESSAGE_PAYLOAD, text),)))
    (mo,) = lab.wait("the get-url call", lambda: lab.recorder.get("/mo"))
    assert mo["text"].encode("latin-1") == text
    (resp,) = lab.wait("deliver_sm_resp", lambda: lab.of(smpp.DeliverSmResp))
    assert resp.status == smpp.ESME_ROK


def test_enquire_link_answered_and_unbind_on_sigterm(start_kannel):
    lab = start_kannel()
    lab.wait("two enquire_link", lambda: len(lab.of(smpp.EnquireLink)) >= 2, timeout=4)
    lab.wait("Kannel's log of our enquire_link_resp", lambda: "type_name: enquire_link_resp" in lab.log())
    assert len(lab.of(smpp.Bind)) == 1 and lab.server.bound() == [(SYSTEM_ID, "bound_trx")]  # no rebind
    assert lab.stop("bearerbox") == 0
    assert len(lab.of(smpp.Unbind)) == 1
    assert "type_name: unbind_resp" in lab.log()
    lab.wait("the connection to close", lambda: lab.server.bound() == [])
    assert lab.of(Malformed) == []                              # nothing refused all along


def test_kannel_injects_sms_into_a_running_scenario(start_kannel, tmp_path):
    """components.esme: Kannel binds to the SMSC of a running simulation, its MT message reaches
    a simulated device through the SMSC model, and the DLR carries the model's outcome."""
    from dmsim.sim.results.runner import run_scenario
    from dmsim.sim.scenario.format import parse_scenario

    port = _free_port()
    scenario = parse_scenario(f"""
name: kannel
duration: 200
fleet: {{size: 2}}
links: {{sms: {{delay: {{kind: fixed, value: 0.5}}}}}}
smsc: {{}}
components:
  esme: {{kind: smpp, listen: "127.0.0.1:{port}", speed: 10, accounts: ["{SYSTEM_ID}:{PASSWORD}"]}}
""", "kannel.yaml")
    run = threading.Thread(target=run_scenario, args=(scenario, tmp_path / "run"), kwargs={"plots": False})
    run.start()
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while not _accepts(port):
            assert time.monotonic() < deadline, "the scenario's SMPP server never listened"
            time.sleep(0.05)
        lab = start_kannel(smpp_port=port)
        dlr_url = f"http://127.0.0.1:{lab.ports['http']}/dlr?type=%d&fid=%F&to=%p&text=%A"
        device = "001010000000001"  # the fleet's IMSI of device 1: the address the SMSC routes on
        for to in (device, "999"):
            assert lab.sendsms(to=to, text="from kannel", **{"dlr-mask": "3", "dlr-url": dlr_url}).startswith("0: Accepted")
        dlrs = lab.wait("two DLRs", lambda: len(lab.recorder.get("/dlr")) >= 2 and lab.recorder.get("/dlr"), timeout=30)
        by_to = {d["to"].lstrip("+"): d for d in dlrs}
        assert by_to[device]["type"] == "1" and "stat:DELIVRD" in by_to[device]["text"]
        assert by_to["999"]["type"] == "2" and "stat:UNDELIV" in by_to["999"]["text"]  # no such subscriber
        lab.stop("smsbox")
        lab.stop("bearerbox")
    finally:
        run.join(60)
    rows = (tmp_path / "run" / "sms.csv").read_text().splitlines()
    assert any(f",esme,{SHORT_CODE},{device}," in r and ",delivered," in r for r in rows)
