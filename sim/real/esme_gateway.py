"""Real SMPP clients in a running scenario: an SMPP 3.4 server in front of the replica's SMSC.

``components.esme: {kind: smpp, listen: "127.0.0.1:2775", ...}`` puts a real TCP SMPP server
(``sim/real/smpp_server.py``) in front of the SMSC model of the first replica, and the
replica then runs in real time (``speed`` simulated seconds per wall second) so that an ESME
such as Kannel or smpplib can inject traffic while the fleet runs, and see what the simulated
network did with it.

The SMPP server's threads never touch the model: a submit_sm waits in a queue that a SimPy
process drains every ``poll`` simulated seconds (the model's time only moves on the run's
thread); the thread that read the submit_sm waits for the model's answer, which becomes the
submit_sm_resp (SMPP 3.4 §4.4.2):

- accepted: message_id is the SMSC's message id in ten digits (as Appendix B shows them);
- refused by the SMSC model: ``throttled`` answers ESME_RTHROTTLED (0x58), ``queue_full``
  ESME_RMSGQFUL (0x14), an address the SC cannot route ESME_RINVDSTADR (0x0B), a UDH that does
  not decode ESME_RSUBMITFAIL (0x45);
- the model did not take it within ``SUBMIT_WAIT`` wall seconds (the run ended):
  ESME_RSUBMITFAIL.

A submit_sm becomes a ``ShortMessage`` for the SMSC (choices where SMPP and TS 23.040 leave the
mapping to the SMSC): the UDH (esm_class UDHI, §5.2.12) is split into its IEs; protocol_id is
TP-PID; data_coding 0x00 (SMSC default), 0x01 (IA5) and 0x03 (Latin-1) become the GSM 7-bit
default alphabet (TP-DCS 0x00) with each octet above 0x7F replaced by '?' (the TS 23.038 text
mapping is not modelled), any other value is used as TP-DCS as it is (0x04 8-bit, 0x08 UCS2, 0xF6
class 2 8-bit for a USIM data download...). registered_delivery (§5.2.17) asks the SMSC for a
status report (TP-SRR); at the message's final outcome the ESME gets a delivery receipt
(Appendix B) as a deliver_sm, with stat DELIVRD, EXPIRED (TP-ST 0x46) or UNDELIV and err the TP-ST
in decimal, sent only once the submit_sm_resp that gave the ESME its message_id is written (an
unknown subscriber fails within the submit itself). Dates in receipts are simulated time on the
SMSC's epoch.

Mobile-originated messages whose destination is an address an ESME has submitted from (or one
listed in ``mo_addresses``) go to that ESME as deliver_sm (§4.6.1); with no receiver or
transceiver bound the attempt fails as an absent subscriber and the SMSC retries it.
"""
from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import timedelta

import simpy

from dmsim.network.sms import smpp
from dmsim.sim.real.smpp_server import SmppServer, SubmitRefused
from dmsim.network.sms.smsc import AttemptResult, Deliver, ShortMessage, StatusReport
from dmsim.network.sms.status_report import ST_VALIDITY_EXPIRED, status_class
from dmsim.network.sms.tpdu import DCS_8BIT
from dmsim.network.sms.udh import decode_udh, encode_udh
from dmsim.base.errors import DecodeError, ProtocolError
from dmsim.sim.agents.smsc import SmscDriver

SUBMIT_WAIT = 10.0  # wall seconds a submit_sm waits for the model before ESME_RSUBMITFAIL
RESP_WAIT = 2 * SUBMIT_WAIT  # wall seconds a receipt waits for its submit_sm_resp to be written
_TEXT_CODINGS = (0x00, 0x01, 0x03)
_REFUSALS = {"throttled": smpp.ESME_RTHROTTLED, "queue_full": smpp.ESME_RMSGQFUL}


def short_message(pdu: smpp.SubmitSm) -> ShortMessage:
    """Return the SMSC's ``ShortMessage`` for ``pdu`` (mapping in the module doc).

    DecodeError when esm_class says UDHI and the user data does not start with a valid UDH.
    """
    data, ies = pdu.message, ()
    if pdu.udhi:
        parsed, data = decode_udh(data)
        ies = tuple(parsed)
    dcs = pdu.data_coding
    if dcs in _TEXT_CODINGS:
        dcs, data = 0x00, bytes(b if b < 0x80 else 0x3F for b in data)
    return ShortMessage(src=pdu.source_addr.lstrip("+"), dst=pdu.destination_addr.lstrip("+"), user_data=data,
                        pid=pdu.protocol_id, dcs=dcs, ies=ies,
                        status_report=bool(pdu.registered_delivery & smpp.REGISTERED_DELIVERY_MASK))


def receipt_stat(st: int) -> str:
    """Return the Appendix B ``stat`` for the final TP-ST ``st``."""
    if status_class(st) == "completed":  # TS 23.040 §9.2.3.15
        return "DELIVRD"
    return "EXPIRED" if st == ST_VALIDITY_EXPIRED else "UNDELIV"


class EsmeGateway:
    """The SMPP server of a running replica; ``start()`` it, ``stop()`` it when the run ends."""

    def __init__(self, env: simpy.Environment, smsc: SmscDriver, spec: dict):
        self.env, self.smsc = env, smsc
        host, _, port = spec["listen"].rpartition(":")
        accounts = dict(a.split(":", 1) for a in spec["accounts"]) if spec["accounts"] else None
        self.poll = float(spec["poll"])
        self.speed = float(spec["speed"])
        self.server = SmppServer(self._submit_from_thread, host=host, port=int(port), accounts=accounts,
                                 on_submitted=self._resp_written)
        self._answered: set[str] = set()  # message ids whose submit_sm_resp is on the wire
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()
        self._waiting: dict[int, tuple[str, smpp.SubmitSm, str, float]] = {}
        self._routes: dict[str, str] = {}  # ESME address -> the system_id that submitted from it
        self._fixed_routes = tuple(spec.get("mo_addresses") or ())
        self._closed = threading.Event()
        self.counts = {"submit_sm": 0, "accepted": 0, "refused": 0, "receipts": 0, "receipts_lost": 0,
                       "mo_delivered": 0, "mo_unbound": 0}

    # -- life ---------------------------------------------------------------------------------
    def start(self) -> tuple[str, int]:
        """Listen, start draining the queue in the model; return the address listened on."""
        address = self.server.start()
        for address_digits in self._fixed_routes:
            self.smsc.add_application(address_digits, self._mo, self._report)
        self.env.process(self._drain_every_poll())
        return address

    def stop(self) -> None:
        """Refuse what still waits, close every connection and release the port."""
        self._closed.set()
        self._drain()
        self.server.stop()

    # -- the server's threads ------------------------------------------------------------------
    def _submit_from_thread(self, system_id: str, pdu: smpp.SubmitSm) -> str:
        if self._closed.is_set():
            raise SubmitRefused(smpp.ESME_RSUBMITFAIL, "the simulation has ended")
        answer: Future = Future()
        self._inbox.put((system_id, pdu, answer))
        try:
            return answer.result(timeout=SUBMIT_WAIT)
        except FutureTimeout:
            raise SubmitRefused(smpp.ESME_RSUBMITFAIL, "the simulation did not take the message") from None

    def _resp_written(self, system_id: str, pdu: smpp.SubmitSm, message_id: str) -> None:
        if pdu.registered_delivery & smpp.REGISTERED_DELIVERY_MASK:  # only those get a receipt
            self._answered.add(message_id)

    # -- the model's thread --------------------------------------------------------------------
    def _drain_every_poll(self):
        while True:
            self._drain()
            yield self.env.timeout(self.poll)

    def _drain(self) -> None:
        while True:
            try:
                system_id, pdu, answer = self._inbox.get_nowait()
            except queue.Empty:
                return
            if self._closed.is_set():
                answer.set_exception(SubmitRefused(smpp.ESME_RSUBMITFAIL, "the simulation has ended"))
                continue
            try:
                answer.set_result(self._submit(system_id, pdu))
            except SubmitRefused as exc:
                self.counts["refused"] += 1
                answer.set_exception(exc)

    def _submit(self, system_id: str, pdu: smpp.SubmitSm) -> str:
        self.counts["submit_sm"] += 1
        try:
            sm = short_message(pdu)
        except DecodeError as exc:
            raise SubmitRefused(smpp.ESME_RSUBMITFAIL, f"user data: {exc}") from None
        if sm.src and self._routes.get(sm.src) != system_id:  # before the submit: a report may come at once
            self._routes[sm.src] = system_id
            self.smsc.add_application(sm.src, self._mo, self._report)
        try:
            result = self.smsc.submit(sm)
        except ProtocolError as exc:  # an address the SC cannot route
            raise SubmitRefused(smpp.ESME_RINVDSTADR, str(exc)) from None
        if not result.accepted:
            raise SubmitRefused(_REFUSALS.get(result.reason, smpp.ESME_RSUBMITFAIL), f"SMSC: {result.reason}")
        self.counts["accepted"] += 1
        message_id = f"{result.msg_id:010d}"
        if sm.status_report:
            self._waiting[result.msg_id] = (system_id, pdu, message_id, self.env.now)
        return message_id

    def _report(self, action: StatusReport, now: float) -> None:
        # A report can come within the submit itself (an unknown subscriber fails at once),
        # before the submit's message id is known here: handle it once the submit is done.
        self.env.timeout(0, action).callbacks.append(self._receipt)

    def _receipt(self, event: simpy.Event) -> None:
        action: StatusReport = event.value
        now = self.env.now
        entry = self._waiting.get(action.msg_id)
        if entry is None:
            return
        system_id, pdu, message_id, submitted = entry
        if message_id not in self._answered and not self._closed.is_set():
            # an ESME matches a receipt to the message_id of its submit_sm_resp: not before it
            # (and not at all if that resp never went out: the ESME's connection dropped)
            if now - submitted < RESP_WAIT * self.speed:
                self.env.timeout(self.poll, action).callbacks.append(self._receipt)
                return
            del self._waiting[action.msg_id]
            self.counts["receipts_lost"] += 1
            return
        del self._waiting[action.msg_id]
        self._answered.discard(message_id)
        stat = receipt_stat(action.st)
        if not smpp.wants_receipt(pdu.registered_delivery, delivered=stat == "DELIVRD"):
            return
        receipt = smpp.delivery_receipt(pdu, message_id, submit_date=self._date(submitted),
                                        done_date=self._date(now), stat=stat, err=f"{action.st:03d}")
        try:
            self.server.deliver(system_id, receipt)
            self.counts["receipts"] += 1
        except ProtocolError:
            self.counts["receipts_lost"] += 1

    def _mo(self, action: Deliver, now: float) -> AttemptResult:
        sm = action.message
        system_id = self._routes.get(sm.dst)
        bound = [sid for sid, _ in self.server.bound()]
        if system_id not in bound:
            system_id = bound[0] if bound and sm.dst in self._fixed_routes else None
        if system_id is None:
            self.counts["mo_unbound"] += 1
            return AttemptResult.absent()
        header = encode_udh(sm.ies) if sm.ies else b""
        pdu = smpp.DeliverSm(source_addr=sm.src, destination_addr=sm.dst, protocol_id=sm.pid,
                             data_coding=DCS_8BIT if sm.dcs == DCS_8BIT else sm.dcs,
                             esm_class=smpp.ESM_CLASS_UDHI if header else 0,
                             short_message=(header + sm.user_data)[:smpp.MAX_SHORT_MESSAGE])
        try:
            self.server.deliver(system_id, pdu)
        except ProtocolError:
            self.counts["mo_unbound"] += 1
            return AttemptResult.absent()
        self.counts["mo_delivered"] += 1
        return AttemptResult.ack()

    def _date(self, t: float) -> str:
        return (self.smsc.core.epoch + timedelta(seconds=t)).strftime("%y%m%d%H%M")
