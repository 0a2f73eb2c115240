"""One replica of a scenario as a SimPy model: the fleet, the SMS and IP links, the DM server.

The protocol cores do the work (``network.dm.server.DmServer``, ``devices.bootstrap_client``,
``devices.dm_client.DmClient``, the SMS and WSP codecs); this module only moves their bytes over
simulated links, keeps time and writes one session record per device.

Per device (a SimPy process created when the device arrives):

0. the device reads its IMSI from its UICC with real APDUs (``sim/links/card_access.py``: an emulated
   card per device, or a real one through PC/SC);
1. the server provisions an account (``dm_auth``: auth-md5, auth-basic or auth-hmac-sha256; a
   TLS transport adds the device's PSK) and sends the §5.10.2.3-protected bootstrap as a WAP
   Push, split into SMS-DELIVER TPDUs, over the ``sms`` link or, with an ``smsc`` block, through
   the server's outbox (``sim/agents/smsc_outbox.py``) to the store-and-forward SMSC; unaccepted within
   ``server.bootstrap_timeout``, it is sent again, up to ``server.bootstrap_retries`` times;
2. the device reassembles, verifies the HMAC (a tampered bootstrap is rejected and counted) and
   stores the account; a ``bootstrap_via: smartcard`` device instead finds the account on its card
   (personalised before it arrived) and reads it over SCP03 at step 0 (no SMS);
3. with ``server.session_trigger: notification`` the server sends package #0 the same way; the
   device acts on it only if its digest verifies (a forged one is counted), and answers Alert 1200;
4. the device runs a DM session (packages 1-4 on its DM tree; Cred or x-syncml-hmac on every
   message) through ``sim/links/transports.py``: HTTP on the ``ip`` links (one each way), inside real
   mbedtls TLS whose flights cross those links (``components.dm_server.tls``), or a real server
   over a socket whose measured wall-clock latency is added to simulated time;
5. with an ``ota`` block the OTA platform then sends the device one secured command packet through
   the SMSC; the ME hands it to the UICC (``devices/sms_pp.py``) and the PoR comes back in the
   RP-ACK or as an MO SMS-SUBMIT (``sim/agents/ota_platform.py``);
6. the outcome is written to the session table.

Other traffic reaching a device (an outside ESME's messages, ``components.esme``) is acknowledged
by its modem and otherwise ignored, except class-2 data downloads, which go to its UICC.

Server capacity: at most ``server.max_sessions`` DM sessions are served at once; a request of a
new session waits (FIFO) for a slot; each request takes a ``server.service_time`` sample. A slot
is freed when the session ends on the server or when the device gives up (the connection closes).
"""
from __future__ import annotations

import dataclasses
import threading
from collections import deque
from typing import Callable

import simpy

from dmsim.devices.bootstrap_client import accept_bootstrap
from dmsim.devices import sms_pp
from dmsim.devices.dm_client import DmClient, Done
from dmsim.devices.dm_tree import DmTree, account_from_tree
from dmsim.devices.smartcard_bootstrap import BootstrapReport
from dmsim.devices.sms_pp import is_data_download
from dmsim.network.dm import http_binding, notification, wbxml
from dmsim.network.dm.auth import AUTH_BASIC, AUTH_MD5
from dmsim.network.dm.account import bootstrap_document
from dmsim.network.dm.hmac_integrity import AUTH_HMAC_SHA256, HmacVerifier
from dmsim.network.dm.server import DmServer
from dmsim.network.sms import segmentation, tpdu, wsp_push
from dmsim.network.sms.address import Address
from dmsim.network.sms.smsc import AttemptResult, ShortMessage
from dmsim.network.sms.udh import find_ports
from dmsim.sim.model.arrivals import arrival_times
from dmsim.sim.links.card_access import CardAccess, CardPersonalisation
from dmsim.sim.links.delays import make_delay
from dmsim.base.errors import DmsimError
from dmsim.sim.model.fleet import DeviceIdentity, Fleet
from dmsim.sim.links.link import Message, SimLink
from dmsim.sim.real.serial_modem import ModemAccess
from dmsim.sim.agents.ota_platform import OtaCampaign
from dmsim.sim.results.pcap import PcapWriter
from dmsim.sim.agents.smsc import SmscDriver
from dmsim.sim.agents.smsc_outbox import SmscOutbox
from dmsim.base.rng import substream
from dmsim.sim.links.tap import make_tap
from dmsim.sim.links.transports import IpTransport, make_ip_transport

SERVER_SMS_ADDRESS = Address("12345")
_ACK = AttemptResult.ack()
SMSC_ADDRESS = Address.parse("+999000000")  # TP-OA is the server's short code; the SMSC's own (RP-OA)
DM_AUTH_SCHEMES = {"md5": AUTH_MD5, "basic": AUTH_BASIC, "hmac": AUTH_HMAC_SHA256}  # fleet.profiles[].dm_auth
DEVINFO_MODELS = ("dmsim-phone-a", "dmsim-phone-b", "dmsim-module-c")


class _Device:
    """A device's per-session state: a few small values, alive only while it runs."""

    __slots__ = ("ident", "reasm", "accepted", "bootstrapped", "account", "client", "t_arrival", "t_bootstrap_sent",
                 "t_bootstrap_ok", "t_session_start", "bootstrap_sends", "rejected", "ip_retries", "sms_msgs",
                 "sms_bytes", "ip_msgs", "ip_bytes", "card", "ota", "ota_latency", "notified", "notice_rejected")

    def __init__(self, ident: DeviceIdentity, env: simpy.Environment):
        self.ident = ident
        self.reasm: segmentation.Reassembler | None = None
        self.accepted = False
        self.bootstrapped = env.event()
        self.account = None
        self.client: DmClient | None = None
        self.t_arrival = env.now
        self.t_bootstrap_sent = self.t_bootstrap_ok = self.t_session_start = None
        self.bootstrap_sends = self.rejected = self.ip_retries = 0
        self.sms_msgs = self.sms_bytes = self.ip_msgs = self.ip_bytes = 0
        self.card = None
        self.notified: simpy.Event | None = None
        self.notice_rejected = 0
        self.ota = ""
        self.ota_latency = None


class Replica:
    """The model of one replica at one sweep point; ``run()`` writes rows through ``write``."""

    def __init__(self, data: dict, *, seed: int, replica: int, sweep: int, sweep_value: float | None,
                 write: Callable[[tuple], None], env: simpy.Environment | None = None,
                 pcap: PcapWriter | None = None):
        self.data = data
        self.pcap = pcap
        self.env = env or simpy.Environment()
        self.replica, self.sweep, self.sweep_value = replica, sweep, sweep_value
        self.write = write
        stream = lambda *names: substream(seed, "replica", replica, "sweep", sweep, *names)  # noqa: E731
        links = data["links"]
        self.sms = SimLink(self.env, "links.sms", _link_spec(links["sms"]), stream("link", "sms"),
                           make_tap(links["sms"].get("tap"), "links.sms.tap"))
        self.ip_up = SimLink(self.env, "links.ip", _link_spec(links["ip"]), stream("link", "ip-up"),
                             make_tap(links["ip"].get("tap"), "links.ip.tap"))
        self.ip_down = SimLink(self.env, "links.ip", _link_spec(links["ip"]), stream("link", "ip-down"),
                               make_tap(links["ip"].get("tap"), "links.ip.tap"))
        self.fleet = Fleet(data["fleet"], stream("fleet"))
        self.arrival_rng = stream("arrival")
        self.device_rng = stream("devices")
        srv = data["server"]
        server_rng = stream("server")
        self.server = DmServer(srv["name"], "http://dm.dmsim.test/dm", server_rng.randbytes,
                               hmac_verifier=HmacVerifier(max_age=srv["hmac_window"]))
        self.service_time = make_delay(srv["service_time"], "server.service_time")
        self.service_rng = stream("service")
        self.max_sessions = srv["max_sessions"]
        self.active: set[str] = set()
        self.waiting: deque = deque()
        self.transport: IpTransport = make_ip_transport(data["components"]["dm_server"], self)
        modem = data["components"]["modem"]
        self.modem: ModemAccess | None = ModemAccess(modem) if modem["kind"] == "serial" else None
        self.cards = CardAccess(data["components"]["card"], self, stream("cards"))
        self.real_imsis: set[str] = set()  # subscribers of real cards (device 0's PC/SC card or modem SIM)
        self.smsc: SmscDriver | None = None
        self.write_sms: Callable[[tuple], None] | None = None
        if data.get("smsc") is not None:
            # Store-and-forward: the server submits, the SMSC delivers over links.sms (its tap included).
            self.smsc = SmscDriver(self.env, {**data["smsc"], "radio": _link_spec(links["sms"])}, seed=seed,
                                   stream=("replica", replica, "sweep", sweep, "smsc"))
            self.smsc.down.tap = self.sms.tap
            self.outbox = SmscOutbox(self.env, self.smsc)  # the DM server's, as an ESME
        self.ota: OtaCampaign | None = None
        if data.get("ota") is not None:
            self.ota = OtaCampaign(self.env, self.smsc, data["ota"], stream("ota"))
        self.live: dict[int, _Device] = {}
        self.done = 0
        self.steps = 0
        self.sms_ref = 0

    # -- driving ----------------------------------------------------------------------------
    def run(self, *, step_hook: Callable[["Replica"], None] | None = None, hook_every: int = 4096,
            stop: threading.Event | None = None) -> None:
        """Run until ``duration``; devices not done by then are written as ``not_finished``.

        ``stop`` is checked every few hundred events; once set, KeyboardInterrupt is raised from
        here. (Raised inside a SimPy process it would only surface once every event already
        queued at that instant had run: minutes for a large fleet arriving at once.)
        """
        env = self.env
        env.process(self._arrivals())
        until = float(self.data["duration"])
        horizon = env.timeout(until)
        step = env.step
        while not horizon.processed:
            step()
            self.steps += 1
            if stop is not None and not self.steps & 255 and stop.is_set():
                raise KeyboardInterrupt
            if not self.steps % hook_every:
                self._drain_sms()
                if step_hook is not None:
                    step_hook(self)
        for index in sorted(self.live):
            self._finish(self.live[index], False, "not_finished")
        self._drain_sms(final=True)

    def _drain_sms(self, final: bool = False) -> None:
        """Hand the SMSC's finished message records (at the end, the stored ones too) to ``write_sms``."""
        if self.smsc is None or self.write_sms is None:
            return
        records = self.smsc.core.drain_records() + (list(self.smsc.core.pending_records()) if final else [])
        for record in records:
            self.write_sms((self.replica, self.sweep) + record.row())

    def _arrivals(self):
        env = self.env
        for index, t in enumerate(arrival_times(self.data["arrival"], self.fleet.size, self.arrival_rng)):
            if t >= self.data["duration"]:
                return
            if t > env.now:
                yield env.timeout(t - env.now)
            env.process(self._device(self.fleet.device(index)))

    # -- one device -------------------------------------------------------------------------
    def _device(self, ident: DeviceIdentity):
        env, srv = self.env, self.data["server"]
        if ident.imsi in self.real_imsis and self.cards.is_virtual(ident.index):
            ident = dataclasses.replace(ident, imsi=self._free_imsi(ident.imsi))
        dev = _Device(ident, env)
        self.live[ident.index] = dev
        ota_keys = self.ota.keyset() if self.ota is not None else None
        card_boot = self._personalise(ident) if self._boots_from_card(ident) else None
        tree = report = None
        try:
            if card_boot is None:
                imsi = yield from self.cards.read_imsi(ident.index, ident.imsi, ota_keys)
            else:
                tree = DmTree()
                imsi, report = yield from self.cards.power_on(ident.index, ident.imsi, ota_keys, card_boot, tree)
        except DmsimError:
            self._finish(dev, False, "card_error")
            return
        if imsi != ident.imsi:  # a real card: the subscriber is the one it holds
            ident = dev.ident = dataclasses.replace(ident, imsi=imsi)
        dev.card = self.cards.links.get(ident.index)
        if self.smsc is not None:
            # The IMSI digits stand in for the MSISDN the SMSC routes on.
            on_sms = self._sms_via_modem if self._behind_modem(dev) else self._sms_at_device
            self.smsc.add_device(ident.imsi, lambda tpdu, now, dev=dev: on_sms(dev, tpdu))
        if card_boot is not None:
            failure = self._card_bootstrapped(dev, report, tree)
        else:
            failure = yield from self._sms_bootstrap(dev)
        if failure:
            self._finish(dev, False, failure)
            return
        session_id, initiator = ident.index + 1, "client"
        if srv["session_trigger"] == "notification":
            pkg0 = yield from self._notify(dev, session_id & 0xFFFF)
            if pkg0 is None:
                self._finish(dev, False, "notification_rejected" if dev.notice_rejected else "notification_lost")
                return
            session_id, initiator = pkg0.session_id, "server"
        models = DEVINFO_MODELS
        client = dev.client = DmClient(dev.account, ident.uri,
                          {"DevId": ident.uri, "Man": "dmsim", "Mod": models[ident.index % len(models)],
                           "DmV": "1.2", "Lang": "en-US"},
                          session_id=session_id, nonce_source=self.device_rng.randbytes, initiator=initiator,
                          hmac_verifier=HmacVerifier(max_age=srv["hmac_window"]),
                          tree=tree)
        dev.t_session_start = env.now
        step = client.start(self.transport.unix_now())
        try:
            while not isinstance(step, Done):
                reply = None
                for attempt in range(self.data["client"]["request_retries"] + 1):
                    if attempt:
                        dev.ip_retries += 1
                    reply = yield from self.transport.exchange(dev, step.body, step.content_type,
                                                               self.data["client"]["request_timeout"], step.headers)
                    if reply is not None:
                        break
                if reply is None:
                    step = Done(False, "ip_timeout")
                elif isinstance(reply, Done):  # the transport ended the session (TLS failure)
                    step = reply
                elif reply.start != "200":
                    step = Done(False, f"http_{reply.start}")
                else:
                    step = client.receive(reply.body, reply.content_type, reply.headers, self.transport.unix_now())
        finally:
            self.transport.closed(dev)
        if self.ota is not None and dev.card is not None:
            dev.ota, dev.ota_latency = yield self.ota.send(ident.imsi, ota_keys)
        self._finish(dev, step.ok, "" if step.ok else step.reason.split(":")[0])

    def _provision(self, ident: DeviceIdentity) -> None:
        """Have the server create the device's account (the transport adds its TLS PSK, if any)."""
        self.server.provision(ident.uri, client_name=ident.imsi, client_password=ident.client_password,
                              server_password=ident.server_password,
                              auth_scheme=DM_AUTH_SCHEMES[ident.profile["dm_auth"]])
        self.transport.account_provisioned(ident.uri)

    def _sms_bootstrap(self, dev: _Device):
        """SimPy generator: provision the device, send its WAP Push bootstrap (resent on timeout);
        return "" once the device accepted it, else the failure reason."""
        env, ident = self.env, dev.ident
        self._provision(ident)
        content_type, body = self.server.bootstrap_message(ident.uri, ident.imsi, ident.profile["bootstrap_security"],
                                                           ident.userpin)
        push = wsp_push.encode_push(content_type, body, tid=ident.index & 0xFF)
        dev.t_bootstrap_sent = env.now
        if (yield from self._push_until(dev, push, dev.bootstrapped)):
            return ""
        return "bootstrap_rejected" if dev.rejected else "bootstrap_lost"

    def _boots_from_card(self, ident: DeviceIdentity) -> bool:
        """Return True when the device bootstraps from its card (profile ``bootstrap_via:
        smartcard``). A real PC/SC card (device 0 of ``components.card: pcsc``) is never
        personalised by the simulation (its SCP03 keys and PKCS#15 files are the card's own), so
        that device is bootstrapped over SMS whatever its profile says."""
        return ident.profile.get("bootstrap_via", "sms") == "smartcard" and self.cards.is_virtual(ident.index)

    def _personalise(self, ident: DeviceIdentity) -> CardPersonalisation:
        """Return what the operator writes into the device's card before it ships: the server
        provisions the account, its bootstrap document goes to the PKCS#15 application as WBXML,
        and the device accepts bootstraps from the scenario's server alone (seed 001 §8.1)."""
        self._provision(ident)
        document = bootstrap_document(self.server.accounts[ident.uri], ident.uri)
        return CardPersonalisation(wbxml.encode(document), (self.server.server_id,))

    def _card_bootstrapped(self, dev: _Device, report: BootstrapReport, tree: DmTree) -> str:
        """Take the device's power-on smartcard bootstrap: return "" when it installed (or kept) the
        server's account in ``tree``, else ``smartcard_bootstrap_failed`` (the card or channel
        failed, ``report.failure``) or ``smartcard_bootstrap_refused`` (the card's accounts are of
        servers the device does not accept; each refusal counts in ``bootstrap_rejected``)."""
        if not report.ok:
            return "smartcard_bootstrap_failed"
        server_id = self.server.server_id
        if server_id not in report.installed + report.unchanged:
            dev.rejected += len(report.refused)
            return "smartcard_bootstrap_refused"
        dev.account = account_from_tree(tree, server_id)
        dev.accepted = True
        dev.t_bootstrap_ok = self.env.now
        return ""

    def _notify(self, dev: _Device, session_id: int):
        """SimPy generator: the server's package #0 for ``session_id`` over WAP Push, resent like
        a bootstrap; return the Pkg0 the device verified, or None."""
        dev.notified = self.env.event()
        push = notification.encode_push(self.server.notification(dev.ident.uri, session_id), tid=dev.ident.index & 0xFF)
        if (yield from self._push_until(dev, push, dev.notified, count=False)):
            return dev.notified.value
        return None

    def _push_until(self, dev: _Device, push: bytes, done: simpy.Event, count: bool = True):
        """SimPy generator: send the WAP Push ``push`` to ``dev`` until ``done`` is triggered, again
        every ``server.bootstrap_timeout``, at most ``server.bootstrap_retries`` more times; return
        whether ``done`` was triggered. ``count``: each send counts in ``bootstrap_sends``."""
        env, srv = self.env, self.data["server"]
        for _ in range(srv["bootstrap_retries"] + 1):
            if count:
                dev.bootstrap_sends += 1
            self._send_sms(dev, push, lambda: not done.triggered and dev.ident.index in self.live)
            yield done | env.timeout(srv["bootstrap_timeout"])
            if done.triggered:
                return True
        return False

    def _free_imsi(self, imsi: str) -> str:
        """Return ``imsi`` under another test MNC (001 02, 001 03, ...): a simulated device whose
        fleet IMSI is a real card's subscriber must not share its account (the fleet uses 001 01)."""
        for mnc in range(2, 100):
            candidate = f"001{mnc:02d}{imsi[5:]}"
            if candidate not in self.real_imsis:
                return candidate
        raise DmsimError(f"no free IMSI for {imsi}")

    def _finish(self, dev: _Device, ok: bool, reason: str) -> None:
        """Write the device's session record; a session cut by the horizon has no end time."""
        now = self.env.now
        del self.live[dev.ident.index]
        self.cards.release(dev.ident.index)
        dev.card = None  # a late OTA download finds no card: the device's session is over
        self.done += 1
        end = now if dev.t_session_start is not None and reason != "not_finished" else None
        self.write((self.replica, self.sweep, self.sweep_value, dev.ident.index, dev.ident.profile["name"],
                    "ok" if ok else "failed", reason, dev.t_arrival, dev.t_bootstrap_sent, dev.t_bootstrap_ok,
                    dev.t_session_start, end, (now - dev.t_arrival) if ok else None,
                    dev.bootstrap_sends, dev.rejected, dev.client.auth_retries if dev.client else 0, dev.ip_retries,
                    dev.sms_msgs, dev.sms_bytes, dev.ip_msgs, dev.ip_bytes, dev.ota, dev.ota_latency))

    # -- SMS path ---------------------------------------------------------------------------
    def _send_sms(self, dev: _Device, push: bytes, wanted: Callable[[], bool]) -> None:
        """Send the WAP Push ``push`` to ``dev`` in SMS parts; through an SMSC, parts still in the
        server's outbox when ``wanted()`` turns False (the device no longer waits) are dropped."""
        self.sms_ref = (self.sms_ref + 1) & 0xFF
        scts = _scts(self.env.now)
        for ies, chunk in segmentation.split_parts(push, dest_port=wsp_push.WAP_PUSH_PORT,
                                                   src_port=wsp_push.WAP_PUSH_SRC_PORT, ref=self.sms_ref):
            if self.smsc is not None:
                self.outbox.submit(ShortMessage(src=SERVER_SMS_ADDRESS.digits, dst=dev.ident.imsi, user_data=chunk,
                                                pid=tpdu.PID_DEFAULT, dcs=tpdu.DCS_8BIT, ies=tuple(ies)),
                                   wanted=wanted)
                continue
            pdu = tpdu.SmsDeliver(oa=SERVER_SMS_ADDRESS, pid=tpdu.PID_DEFAULT, dcs=tpdu.DCS_8BIT, scts=scts,
                                  ies=ies, user_data=chunk).encode()
            dev.sms_msgs += 1
            dev.sms_bytes += len(pdu)
            self.sms.send(Message(pdu, "smsc", dev.ident.uri, "bootstrap", dev), self._on_sms)

    def _on_sms(self, msg: Message) -> None:
        if self._behind_modem(msg.meta):
            self.env.process(self._modem_leg(msg.meta, msg.payload))
        else:
            self._sms_at_device(msg.meta, msg.payload)

    def _behind_modem(self, dev: _Device) -> bool:
        """Return whether ``dev`` is the device behind the scenario's serial modem (device 0)."""
        return self.modem is not None and dev.ident.index == 0

    def _modem_leg(self, dev: _Device, pdu: bytes):
        """SimPy process: the SMS crosses the real radio (``sim/real/serial_modem.py``); its measured
        wall time becomes simulated time before the device's SMS stack gets what arrived."""
        received, elapsed = self.modem.round_trip(pdu)
        yield self.env.timeout(elapsed)
        for tpdu_in in received:
            self._sms_at_device(dev, tpdu_in)

    def _sms_via_modem(self, dev: _Device, pdu: bytes) -> AttemptResult | None:
        """The SMSC's delivery to the device behind the modem: the real round trip happens now
        (its time is counted, not simulated: the SMSC wants the answer at once); nothing arrived
        means no answer (the SMSC times out and retries)."""
        received, _ = self.modem.round_trip(pdu)
        answers = [self._sms_at_device(dev, tpdu_in) for tpdu_in in received]
        return answers[-1] if answers else None

    def _sms_at_device(self, dev: _Device, pdu: bytes) -> AttemptResult:
        """An SMS-DELIVER reached the device: reassemble, verify, accept. The answer (RP-ACK) is
        what the device's modem returns to an SMSC; over the direct link it is not used."""
        if self.smsc is not None:  # counted on arrival: the SMSC, not the server, sends the TPDUs
            dev.sms_msgs += 1
            dev.sms_bytes += len(pdu)
        if self.pcap is not None:
            self._capture(self.pcap.write_sms_mt, pdu, SMSC_ADDRESS)
        try:
            sms = tpdu.decode_tpdu(pdu, mt=True)
        except DmsimError:
            sms = None
        if sms is not None and dev.card is not None and is_data_download(sms):
            return self._download(dev, pdu)
        waiting_notice = dev.notified is not None and not dev.notified.triggered
        if (dev.accepted and not waiting_notice) or dev.ident.index not in self.live:
            return _ACK
        try:
            if sms is None:
                raise DmsimError("not an SMS-DELIVER")
            ports = find_ports(sms.ies)
            if ports is None or ports.dest != wsp_push.WAP_PUSH_PORT:
                return _ACK  # not for the push agent (an ESME's text, say): the modem just stores it
            if dev.reasm is None:
                dev.reasm = segmentation.Reassembler()
            done = dev.reasm.feed_parsed(str(sms.oa), sms.ies, sms.user_data, self.env.now)
            if done is None:
                return _ACK
            if dev.accepted:  # waiting for the server's package #0
                self._notice_at_device(dev, done.payload)
                return _ACK
            accepted = accept_bootstrap(done.payload, imsi=dev.ident.imsi, userpin=dev.ident.userpin)
        except DmsimError:
            dev.rejected += 1  # a bad bootstrap is still a delivered SMS: the modem acks it
            return _ACK
        dev.accepted = True
        dev.account = accepted.account
        dev.t_bootstrap_ok = self.env.now
        dev.reasm = None
        dev.bootstrapped.succeed()
        return _ACK

    def _notice_at_device(self, dev: _Device, push: bytes) -> None:
        """A package #0 reached the device: it is acted on only if its digest verifies with the
        credential the device holds for that server (OMA-TS-DM_Notification §6.2, DM_Security §5.7)."""
        account = dev.account
        try:
            pkg0 = notification.decode_push(push)
        except DmsimError:
            dev.notice_rejected += 1
            return
        if not notification.verify_pkg0(pkg0, account.server_id, account.server_password, account.server_nonce):
            dev.notice_rejected += 1
            return
        dev.notified.succeed(pkg0)

    def _download(self, dev: _Device, pdu: bytes) -> AttemptResult:
        """A class-2 USIM data download: the ME hands it to the UICC (TS 31.111 §7.1.1) and
        answers with the card's PoR in the RP-ACK, or sends the PoR the card asks for as an MO
        SMS-SUBMIT (TS 102 225 PoR via SMS-SUBMIT)."""
        answer = sms_pp.download(dev.card, pdu, SMSC_ADDRESS)
        if answer.mo is not None:
            self.smsc.submit_from_device(dev.ident.imsi, answer.mo)
            if self.pcap is not None:
                self._capture(self.pcap.write_sms_mo, answer.mo, SMSC_ADDRESS)
        return answer.result

    # -- the simulated DM server ------------------------------------------------------------
    def server_receive(self, msg: Message) -> None:
        """A request reached the server: admit its session or queue it, then serve it."""
        dev: _Device = msg.meta[0]
        uri = dev.ident.uri
        if dev.ident.index not in self.live:
            return  # the device gave up: its connection is closed
        if uri in self.active or len(self.active) < self.max_sessions:
            self.active.add(uri)
            self._serve(msg)
        else:
            self.waiting.append(msg)

    def _serve(self, msg: Message) -> None:
        delay = self.service_time.sample(self.service_rng)
        self.env.timeout(delay, msg).callbacks.append(self._served)

    def _served(self, event: simpy.Event) -> None:
        msg: Message = event.value
        dev, token = msg.meta
        try:
            req = http_binding.decode(msg.payload)
            reply = self.server.handle(req.body, req.content_type, self.transport.unix_now(), headers=req.headers)
            payload = self.transport.server_response(reply)
            # a refused forgery or replay leaves the device's session (and its slot) in place
            over = reply.session_over and dev.ident.uri not in self.server.sessions
        except DmsimError:
            payload, over = http_binding.encode_response(400, b"", "text/plain"), True
        if over:
            self.release(dev.ident.uri)
        self.transport.respond(Message(payload, "server", dev.ident.uri, "dm", (dev, token)))

    def release(self, uri: str) -> None:
        """Free the session slot of ``uri`` and admit the next waiting session."""
        if uri not in self.active:
            return
        self.active.discard(uri)
        while self.waiting and len(self.active) < self.max_sessions:
            msg = self.waiting.popleft()
            if msg.meta[0].ident.index not in self.live:
                continue
            self.active.add(msg.meta[0].ident.uri)
            self._serve(msg)


    def _capture(self, write: Callable, *args) -> None:
        """Write a record to the pcap; a PDU the capture cannot frame is left out, not fatal."""
        try:
            write(self.env.now, *args)
        except DmsimError:
            pass


def _link_spec(spec: dict) -> dict:
    return {k: v for k, v in spec.items() if k != "tap"}


def _scts(now: float) -> bytes:
    """Return a TP-SCTS (TS 23.040 §9.2.3.11) for simulated time ``now`` from 2026-01-01 00:00 UTC."""
    secs = int(now)
    day, rem = divmod(secs, 86400)
    h, rem = divmod(rem, 3600)
    mi, s = divmod(rem, 60)
    fields = (26, 1, 1 + day % 28, h, mi, s, 0)
    return bytes(((v % 10) << 4) | (v // 10) for v in fields)

