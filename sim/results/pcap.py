"""A streaming pcap writer for the simulated SMS and SIM traffic, as GSMTAP over UDP.

File format: the classic libpcap format (global header with magic 0xA1B2C3D4, version 2.4,
microsecond timestamps), link type 1 (Ethernet). Each record is Ethernet / IPv4 (RFC 791) /
UDP (RFC 768) to port 4729, the IANA port on which Wireshark dissects GSMTAP
(network/sms/gsmtap.py builds the GSMTAP packets).

Choices:
- Timestamps are ``epoch + now`` with ``now`` the simulated time in seconds and ``epoch`` a
  fixed instant (2024-01-01T00:00:00Z by default), so the same run gives the same file.
- Downlink packets go from 192.0.2.1 (the network) to 192.0.2.2 (the device), uplink and SIM
  packets the other way (RFC 5737 documentation addresses); the UDP checksum is 0 ("none").
- The file is written as ``<path>.part`` and renamed to ``path`` by ``close()``
  (sim/results/atomic.py); if the writer is used as a context manager and the block raises, the
  ``.part`` file is removed instead.
"""
from __future__ import annotations

import math
import os
import struct
from pathlib import Path
from types import TracebackType

from dmsim.network.sms import gsmtap
from dmsim.network.sms.address import Address
from dmsim.sim.results.atomic import commit_part, part_path
from dmsim.base.errors import DmsimError

DEFAULT_EPOCH = 1704067200  # 2024-01-01T00:00:00Z
LINKTYPE_ETHERNET = 1
SNAPLEN = 65535
_MAX_SECONDS = 1 << 32       # ts_sec is an unsigned 32-bit field

_NETWORK = (b"\x02\x00\x00\x00\x00\x01", bytes([192, 0, 2, 1]))   # (MAC, IPv4)
_DEVICE = (b"\x02\x00\x00\x00\x00\x02", bytes([192, 0, 2, 2]))
_ETHERTYPE_IPV4 = 0x0800
_IP_PROTO_UDP = 17
_IP_TTL = 64


def pcap_global_header(linktype: int = LINKTYPE_ETHERNET) -> bytes:
    """Return the 24-octet libpcap global header (native-endian magic, as libpcap writes)."""
    return struct.pack("=IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, SNAPLEN, linktype)


def _ipv4_checksum(header: bytes) -> int:
    total = sum(struct.unpack(f">{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def udp_frame(payload: bytes, *, src: tuple[bytes, bytes], dst: tuple[bytes, bytes],
              port: int = gsmtap.GSMTAP_UDP_PORT, ident: int = 0) -> bytes:
    """Return an Ethernet frame with an IPv4/UDP datagram from ``src`` to ``dst`` (MAC, IP)."""
    udp = struct.pack(">HHHH", port, port, 8 + len(payload), 0) + payload
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), ident & 0xFFFF, 0x4000,
                     _IP_TTL, _IP_PROTO_UDP, 0, src[1], dst[1])
    ip = ip[:10] + struct.pack(">H", _ipv4_checksum(ip)) + ip[12:]
    return dst[0] + src[0] + struct.pack(">H", _ETHERTYPE_IPV4) + ip + udp


def _smsc(smsc_address: Address | str) -> Address:
    return smsc_address if isinstance(smsc_address, Address) else Address.parse(smsc_address)


class PcapWriter:
    """Writes GSMTAP records to ``path`` (via ``<path>.part``) as the simulation goes.

    ``epoch`` is the wall-clock second that simulated time 0 maps to; ``arfcn`` the ARFCN
    written in the GSMTAP headers. Each ``write_*`` returns the number of records written.
    """

    def __init__(self, path: str | os.PathLike[str], *, epoch: int = DEFAULT_EPOCH,
                 arfcn: int = 0) -> None:
        self.path = Path(path)
        self.epoch = epoch
        self.records = 0
        self._channel = gsmtap.SmsChannel(arfcn=arfcn)
        try:
            self._file = open(part_path(self.path), "wb")
        except OSError as exc:
            raise DmsimError(f"{self.path}: cannot write the pcap file: {exc}") from exc
        self._file.write(pcap_global_header())

    def _check(self, now: float) -> None:
        if self._file.closed:
            raise DmsimError(f"{self.path.name}: pcap writer is closed")
        if not (math.isfinite(now) and 0 <= now < _MAX_SECONDS - self.epoch):
            raise DmsimError(f"{self.path.name}: record time {now!r}, expected seconds >= 0 "
                             f"that fit the 32-bit pcap timestamp")

    def _record(self, now: float, gsmtap_packet: bytes, *, uplink: bool) -> None:
        src, dst = (_DEVICE, _NETWORK) if uplink else (_NETWORK, _DEVICE)
        frame = udp_frame(gsmtap_packet, src=src, dst=dst, ident=self.records)
        micros = round(now * 1_000_000)
        seconds, micros = divmod(micros, 1_000_000)
        self._file.write(struct.pack("=IIII", self.epoch + seconds, micros, len(frame), len(frame)))
        self._file.write(frame)
        self.records += 1

    def _write_sms(self, now: float, tpdu: bytes, smsc_address: Address | str, *, mt: bool,
                   mr: int) -> int:
        self._check(now)
        # A TDMA frame lasts 120/26 ms (TS 45.002 §4.3.1): the frame number follows sim time.
        frame_number = int(now * 26 / 0.120) % gsmtap.GSM_HYPERFRAME
        packets = self._channel.sms_packets(tpdu, _smsc(smsc_address), mt=mt, mr=mr,
                                            frame_number=frame_number)
        for packet in packets:
            self._record(now, packet, uplink=not mt)
        return len(packets)

    def write_sms_mt(self, now: float, tpdu: bytes, smsc_address: Address | str, *,
                     mr: int = 0) -> int:
        """Write an SMS from the SMSC to a device (RP-OA = ``smsc_address``, e.g. "+4912345")."""
        return self._write_sms(now, tpdu, smsc_address, mt=True, mr=mr)

    def write_sms_mo(self, now: float, tpdu: bytes, smsc_address: Address | str, *,
                     mr: int = 0) -> int:
        """Write an SMS from a device to the SMSC (RP-DA = ``smsc_address``)."""
        return self._write_sms(now, tpdu, smsc_address, mt=False, mr=mr)

    def write_apdu(self, now: float, c_apdu: bytes, r_apdu: bytes) -> int:
        """Write one command/response pair as GSMTAP SIM (response = data + SW1 SW2)."""
        self._check(now)
        self._record(now, gsmtap.sim_packet(c_apdu, r_apdu), uplink=True)
        return 1

    def close(self) -> Path:
        """Flush and rename ``<path>.part`` to ``path``; return the final path. Idempotent."""
        if not self._file.closed:
            self._file.close()
            commit_part(self.path)
        return self.path

    def abort(self) -> None:
        """Close and delete the ``.part`` file, leaving ``path`` untouched."""
        if not self._file.closed:
            self._file.close()
            part_path(self.path).unlink(missing_ok=True)

    def __enter__(self) -> PcapWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
