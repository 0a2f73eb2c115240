"""Benchmark: the hot codecs of a fleet run, in µs per call.

Times WBXML encode/decode of a DM client package 1 (SyncHdr with Cred, Alert, Replace of
DevInfo) and of a DM account bootstrap document, and the SMS side of a bootstrap push: UDH
decode and SMS-DELIVER decode of a concatenated, port-addressed part.

    .venv/bin/python bench/codecs.py [--repeat 5] [--min-time 0.2]

Each figure is the best of ``--repeat`` runs of about ``--min-time`` seconds each, in CPU time of
this process (other processes on the machine disturb it less than wall time). Encoding is timed
on freshly built trees, one per call, as a simulation encodes each message it builds once.
"""
from __future__ import annotations

import argparse
import sys
import time
from functools import partial
from typing import Any, Callable

from dmsim.network.dm import messages as m
from dmsim.network.dm import wbxml
from dmsim.network.dm.account import DmAccount, bootstrap_document
from dmsim.network.dm.auth import AUTH_MD5, make_credential
from dmsim.network.dm.tree import E
from dmsim.network.sms import segmentation, tpdu, wsp_push
from dmsim.network.sms.address import Address
from dmsim.network.sms.udh import decode_udh

DEVINFO = {"DevId": "IMEI:493005100592800", "Man": "dmsim", "Mod": "sim-1", "DmV": "1.2", "Lang": "en"}


def dm_package1() -> object:
    """Return a client package 1 as the DM client builds it (54 elements)."""
    cred = make_credential(AUTH_MD5, "client-0001", "secret-0001", b"0123456789abcdef")
    hdr = m.header("1a", 1, "https://dm.example/dm", "IMEI:493005100592800", cred=cred,
                   max_msg_size=16384)
    replace = E("Replace", E("CmdID", 2), *(
        E("Item", E("Source", E("LocURI", f"./DevInfo/{k}")), E("Meta", E("Format", "chr")), E("Data", v))
        for k, v in DEVINFO.items()))
    return m.message(hdr, E("Alert", E("CmdID", 1), E("Data", m.ALERT_CLIENT_INITIATED)), replace)


def bootstrap() -> object:
    """Return a DM account bootstrap document (82 elements)."""
    account = DmAccount("dm.example", "https://dm.example/dm", "client-0001", "secret-0001",
                        "dm.example", "server-secret", b"\x01" * 16, b"\x02" * 16)
    return bootstrap_document(account, "IMSI:001010123456789")


def deliver_part() -> tuple[bytes, bytes]:
    """Return (TP-UD, SMS-DELIVER TPDU) of the first part of a concatenated bootstrap push."""
    body = wbxml.encode(bootstrap())
    push = wsp_push.encode_push("application/vnd.syncml.dm+wbxml", body, tid=1)
    ud = segmentation.split(push, dest_port=wsp_push.WAP_PUSH_PORT,
                            src_port=wsp_push.WAP_PUSH_SRC_PORT, ref=7)[0]
    ies, chunk = decode_udh(ud)
    pdu = tpdu.SmsDeliver(oa=Address.parse("+491700000001"), scts=bytes.fromhex("42205112000040"),
                          ies=ies, user_data=chunk).encode()
    return ud, pdu


def best_us(fn: Callable[[Any], object], make_arg: Callable[[], Any], repeat: int,
            min_time: float) -> float:
    """Return the best time of ``fn(make_arg())`` in µs per call, ``make_arg`` not counted.

    Each of ``repeat`` runs calls ``fn`` on fresh arguments for about ``min_time`` seconds.
    """
    number, elapsed = 1, 0.0
    while elapsed < min_time / 10:          # calibrate: about a tenth of min_time
        number *= 2
        elapsed = _run(fn, [make_arg() for _ in range(number)])
    number = max(1, int(number * min_time / elapsed))
    return min(_run(fn, [make_arg() for _ in range(number)]) for _ in range(repeat)) / number * 1e6


def _run(fn: Callable[[Any], object], args: list[Any]) -> float:
    start = time.process_time()
    for arg in args:
        fn(arg)
    return time.process_time() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--min-time", type=float, default=0.2)
    args = ap.parse_args()
    pkg1, boot = dm_package1(), bootstrap()
    pkg1_bytes, boot_bytes = wbxml.encode(pkg1), wbxml.encode(boot)
    ud, pdu = deliver_part()
    decode_deliver = partial(tpdu.decode_tpdu, mt=True)
    cases = [
        (f"wbxml.encode DM package 1 ({len(list(pkg1.iter()))} elements)", wbxml.encode, dm_package1),
        (f"wbxml.decode DM package 1 ({len(pkg1_bytes)} bytes)", wbxml.decode, lambda: pkg1_bytes),
        (f"wbxml.encode bootstrap ({len(list(boot.iter()))} elements)", wbxml.encode, bootstrap),
        (f"wbxml.decode bootstrap ({len(boot_bytes)} bytes)", wbxml.decode, lambda: boot_bytes),
        (f"udh.decode_udh ports+concat ({len(ud)} bytes TP-UD)", decode_udh, lambda: ud),
        (f"tpdu.decode_tpdu SMS-DELIVER ({len(pdu)} bytes)", decode_deliver, lambda: pdu),
    ]
    width = max(len(case[0]) for case in cases)
    print(f"{'case':<{width}}  {'µs/call':>9}")
    for name, fn, make_arg in cases:
        print(f"{name:<{width}}  {best_us(fn, make_arg, args.repeat, args.min_time):>9.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
