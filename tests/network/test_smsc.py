"""SMSC core (sans-IO) and the SMS-STATUS-REPORT codec: TS 23.040 §9.2.2.3, §9.2.3.11, §9.2.3.15."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from dmsim.network.sms import smsc as sc
from dmsim.network.sms import status_report as sr
from dmsim.network.sms.address import Address
from dmsim.network.sms.smsc import AttemptResult, Deliver, ShortMessage, Smsc, SmscConfig, StatusReport
from dmsim.network.sms.tpdu import DCS_8BIT_CLASS2, PID_USIM_DATA_DOWNLOAD, SmsSubmit, decode_tpdu
from dmsim.base.errors import DecodeError, ProtocolError

CFG = SmscConfig(retry_initial=10, retry_factor=2, retry_max=40, validity=200, attempt_timeout=5)


def run_until(core: Smsc, end: float, answer) -> list:
    """Poll ``core`` at its deadlines up to ``end``; ``answer(action, now)`` returns a result or None."""
    now, seen = 0.0, []
    while True:
        for action in core.poll(now):
            seen.append((now, action))
            if isinstance(action, Deliver):
                result = answer(action, now)
                if result is not None:
                    core.report(action.msg_id, action.attempt, result, now)
        nxt = core.next_deadline()
        if nxt is None or nxt > end:
            return seen
        now = max(now, nxt)


def attempts_of(seen):
    return [t for t, a in seen if isinstance(a, Deliver)]


# --- status report codec --------------------------------------------------------------------

def test_timestamp_round_trip_and_sign():
    when = datetime(2026, 3, 4, 5, 6, 7, tzinfo=timezone(timedelta(hours=-3, minutes=-45)))
    raw = sr.encode_timestamp(when)
    assert raw[:6] == bytes.fromhex("623040506070")
    assert raw[6] == 0x5 << 4 | 0x1 | 0x08  # 15 quarters: tens 1 + sign, units 5
    assert sr.decode_timestamp(raw) == when
    with pytest.raises(ProtocolError):
        sr.encode_timestamp(datetime(2026, 1, 1))
    with pytest.raises(DecodeError):
        sr.decode_timestamp(bytes.fromhex("62133150607000"))  # month 31


def test_status_report_round_trip_and_fields():
    rep = sr.SmsStatusReport(mr=7, ra=Address.parse("+491701234567"),
                             scts=bytes.fromhex("62101000000000"), dt=bytes.fromhex("62101000100000"),
                             st=sr.ST_DELIVERED, pid=0x7F, dcs=0xF6, user_data=b"\x02\x71\x00")
    raw = rep.encode()
    assert raw[0] == 0x06  # TP-MTI 10, TP-MMS 1 (no more messages)
    assert raw[1] == 7
    back = sr.decode_status_report(raw)
    assert back == rep
    bare = sr.SmsStatusReport(1, Address("123"), bytes(7), bytes(7), sr.ST_VALIDITY_EXPIRED)
    assert len(bare.encode()) == 2 + 4 + 15 and sr.decode_status_report(bare.encode()) == bare
    assert [sr.status_class(s) for s in (0x00, 0x21, 0x46, 0x62, 0x80)] == \
        ["completed", "trying", "permanent", "gave_up", "reserved"]


def test_status_report_pycrate_agrees():
    ts = pytest.importorskip("pycrate_mobile.TS23040_SMS")
    rep = sr.SmsStatusReport(0x42, Address.parse("+3312345"), bytes.fromhex("62101000000000"),
                             bytes.fromhex("62101000000100"), 0x46)
    msg = ts.SMS_STATUS_REPORT()
    msg.from_bytes(rep.encode())
    assert msg["TP_MR"].get_val() == 0x42
    assert msg["TP_ST"].get_val() == 0x46
    assert msg.to_bytes() == rep.encode()


@pytest.mark.parametrize("raw", ["", "00", "0607", "060703811", "06070381210062101000000000"])
def test_status_report_bad_input_is_decode_error(raw):
    with pytest.raises(DecodeError):
        sr.decode_status_report(bytes.fromhex(raw.ljust(len(raw) + len(raw) % 2, "0")))


# --- submit: rate limit and queue -----------------------------------------------------------

def test_submit_token_bucket_and_queue_limit():
    core = Smsc(SmscConfig(submit_rate=10, burst=3, queue_limit=5))
    got = [core.submit(ShortMessage("1", "2"), 0.0) for _ in range(4)]
    assert [r.accepted for r in got] == [True, True, True, False]
    assert got[3].reason == "throttled" and got[3].rp_cause == sc.RP_CONGESTION
    assert got[3].retry_after == pytest.approx(0.1)
    assert core.submit(ShortMessage("1", "2"), 0.1).accepted
    assert core.submit(ShortMessage("1", "2"), 1.0).accepted
    full = core.submit(ShortMessage("1", "2"), 2.0)
    assert full.reason == "queue_full"
    assert [r.outcome for r in core.drain_records()] == ["refused", "refused"]
    with pytest.raises(ProtocolError):
        core.submit(ShortMessage("not a number", "2"), 0.0)


def test_submit_rate_1000_messages_take_100_s():
    core = Smsc(SmscConfig(submit_rate=10, burst=1))
    now, accepted = 0.0, 0
    while accepted < 1000:
        res = core.submit(ShortMessage("1", "2"), now)
        accepted += res.accepted
        now += res.retry_after
    assert now == pytest.approx(99.9, abs=1e-6)


def test_delivery_rate_paces_attempts():
    core = Smsc(SmscConfig(delivery_rate=5, delivery_burst=1))
    for i in range(50):
        core.submit(ShortMessage("1", str(100 + i)), 0.0)
    times = attempts_of(run_until(core, 100, lambda a, now: AttemptResult.ack()))
    assert len(times) == 50 and times[-1] == pytest.approx(9.8)


# --- retries, expiry, errors --------------------------------------------------------------

def test_backoff_schedule_and_expiry_at_validity():
    core = Smsc(CFG)
    core.submit(ShortMessage("1", "2"), 0.0)
    seen = run_until(core, 1000, lambda a, now: AttemptResult.absent())
    assert attempts_of(seen) == [0, 10, 30, 70, 110, 150, 190]  # 10, 20, 40, then max 40
    (rec,) = core.drain_records()
    assert (rec.outcome, rec.final_time, rec.attempts, rec.last_cause) == ("expired", 200, 7, "absent")
    assert rec.queue_wait == 0


def test_timeout_counts_as_a_failed_attempt_and_late_answer_is_ignored():
    core = Smsc(CFG)
    core.submit(ShortMessage("1", "2"), 0.0)
    seen = run_until(core, 16, lambda a, now: None)
    assert attempts_of(seen) == [0, 15]  # 5 s timeout + 10 s back-off
    core.report(1, 1, AttemptResult.ack(), 16.0)  # the first attempt is over
    assert core.counts["ignored_results"] == 1
    core.report(1, 2, AttemptResult.ack(), 16.0)
    assert core.drain_records()[0].outcome == "delivered"


def test_class2_data_download_rp_error_is_retried():
    core = Smsc(CFG)
    sm = ShortMessage("1", "2", b"\x02\x70", pid=PID_USIM_DATA_DOWNLOAD, dcs=DCS_8BIT_CLASS2,
                      status_report=True, mr=9)
    core.submit(sm, 0.0)
    answers = iter([AttemptResult.error(sc.RP_PROTOCOL_ERROR, sc.FCS_SAT_BUSY),
                    AttemptResult.error(sc.RP_PROTOCOL_ERROR, sc.FCS_DATA_DOWNLOAD_ERROR),
                    AttemptResult.error(sc.RP_PROTOCOL_ERROR),
                    AttemptResult.ack(b"\x02\x71\x00\x00\x0b")])
    seen = run_until(core, 1000, lambda a, now: next(answers))
    assert attempts_of(seen) == [0, 10, 30, 70]
    (rec,) = core.drain_records()
    assert rec.outcome == "delivered" and rec.ack_data == b"\x02\x71\x00\x00\x0b"
    (report,) = [a for _, a in seen if isinstance(a, StatusReport)]
    rep = sr.decode_status_report(report.tpdu)
    assert (rep.st, rep.mr, str(rep.ra), rep.pid, rep.user_data) == (0, 9, "2", 0x7F, rec.ack_data)
    assert sr.decode_timestamp(rep.dt) - sr.decode_timestamp(rep.scts) == timedelta(seconds=70)


@pytest.mark.parametrize("result,st", [
    (AttemptResult.error(sc.RP_PROTOCOL_ERROR, sc.FCS_CLASS_UNSUPPORTED), sr.ST_INCOMPATIBLE_DESTINATION),
    (AttemptResult.error(sc.RP_MESSAGE_TYPE_NON_EXISTENT), sr.ST_REMOTE_PROCEDURE_ERROR),
    (AttemptResult.unknown(), sr.ST_NOT_OBTAINABLE),
])
def test_permanent_error_fails_at_once(result, st):
    core = Smsc(CFG)
    core.submit(ShortMessage("1", "2", pid=PID_USIM_DATA_DOWNLOAD, status_report=True), 0.0)
    seen = run_until(core, 1000, lambda a, now: result)
    assert attempts_of(seen) == [0]
    assert core.drain_records()[0].outcome == "failed"
    (report,) = [a for _, a in seen if isinstance(a, StatusReport)]
    assert report.st == st and sr.decode_status_report(report.tpdu).st == st


def test_rp_error_111_is_permanent_for_a_normal_message():
    assert not sc.is_temporary(AttemptResult.error(sc.RP_PROTOCOL_ERROR), 0x00)
    assert sc.is_temporary(AttemptResult.error(sc.RP_PROTOCOL_ERROR), PID_USIM_DATA_DOWNLOAD)
    assert sc.is_temporary(AttemptResult.error(sc.RP_MEMORY_CAPACITY_EXCEEDED), 0x00)


def test_max_attempts_gives_up_with_0x6x():
    core = Smsc(SmscConfig(retry_initial=1, max_attempts=3, attempt_timeout=5))
    core.submit(ShortMessage("1", "2", status_report=True), 0.0)
    seen = run_until(core, 1000, lambda a, now: AttemptResult.absent())
    assert len(attempts_of(seen)) == 3
    report = [a for _, a in seen if isinstance(a, StatusReport)][0]
    assert report.st == sr.ST_GAVE_UP_NO_RESPONSE and core.drain_records()[0].outcome == "failed"


def test_per_destination_order_mms_and_alert():
    core = Smsc(CFG)
    for body in (b"a", b"b"):
        core.submit(ShortMessage("1", "2", body), 0.0)
    first = core.poll(0.0)
    assert len(first) == 1 and decode_tpdu(first[0].tpdu, mt=True).more_messages
    core.report(1, 1, AttemptResult.absent(), 0.0)
    assert core.poll(1.0) == [] and core.next_deadline() == 10
    core.alert("2", 2.0)  # Alert-SC: retried now, not at 10
    (again,) = core.poll(2.0)
    core.report(1, 2, AttemptResult.ack(), 2.0)
    (second,) = core.poll(2.0)
    body = decode_tpdu(second.tpdu, mt=True)
    assert body.user_data == b"b" and not body.more_messages


def test_mo_submit_tpdu_sets_validity_and_reference():
    core = Smsc(CFG)
    tpdu = SmsSubmit(Address("999"), mr=33, vp=0, user_data=b"hi", status_report_request=True).encode()
    res = core.submit_tpdu(tpdu, "4912", 0.0)
    assert res.accepted
    seen = run_until(core, 10000, lambda a, now: AttemptResult.absent())
    (rec,) = core.drain_records()
    assert (rec.origin, rec.final_time, rec.outcome) == ("ms", 300.0, "expired")
    (report,) = [a for _, a in seen if isinstance(a, StatusReport)]
    assert report.to == "4912" and sr.decode_status_report(report.tpdu).mr == 33
    assert [sc.relative_validity(v) for v in (143, 167, 196, 255)] == \
        [43200, 86400, 30 * 86400, 63 * 7 * 86400]


def test_record_rows_match_fields():
    core = Smsc(CFG)
    core.submit(ShortMessage("1", "2"), 0.0)
    (pending,) = core.pending_records()
    row = pending.row()
    assert len(row) == len(sc.RECORD_FIELDS) and row[sc.RECORD_FIELDS.index("outcome")] == "pending"


def test_delivered_messages_leave_the_expiry_heap():
    """A delivered message must not stay in the expiry heap (with its user data) until its
    validity ends: with one message to one device left undelivered at the head, 5,000 delivered
    ones behind it are let go (issue 17: 108k stored objects at t = 151 s before)."""
    core = Smsc(SmscConfig(submit_rate=1e6, burst=10_000, delivery_rate=1e6, delivery_burst=10_000,
                           validity=86_400, attempt_timeout=5))
    core.submit(ShortMessage("12345", "999", b"never answered", 0, 4), 0.0)
    for n in range(5000):
        core.submit(ShortMessage("12345", f"1{n:05d}", b"x" * 140, 0, 4), 0.0)
    seen = run_until(core, 3.0, lambda action, now: None if action.dst == "999" else AttemptResult.ack())
    assert core.counts["delivered"] == 5000 and core.stored == 1
    assert len(core._expiries) <= 2 * 1024 + 2  # compacted: what is left is mostly the one pending
    assert sum(1 for entry in core._expiries if not entry[2].done) == 1
    assert [a.dst for t, a in seen if isinstance(a, Deliver)].count("999") == 1
