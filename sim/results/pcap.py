"""A streaming pcap writer for the simulated traffic: SMS and SIM APDUs as GSMTAP over UDP, the
DM sessions as HTTP (or TLS records) over TCP, the LwM2M datagrams (DTLS records, NoSec CoAP) over
UDP.

File format: the classic libpcap format (global header with magic 0xA1B2C3D4, version 2.4,
microsecond timestamps), link type 1 (Ethernet). Each record is Ethernet / IPv4 (RFC 791) and
either UDP (RFC 768) to port 4729, the IANA port on which Wireshark dissects GSMTAP
(network/sms/gsmtap.py builds the GSMTAP packets), TCP (RFC 9293) between a device and the DM
server (:meth:`PcapWriter.tcp_open`, :meth:`PcapWriter.write_tcp`), or UDP between a device and a
server (:meth:`PcapWriter.write_udp`: one datagram, the ports the caller names).

Addresses (a record names its device with ``device=<index>``, the ``device`` column of
sessions.csv; without one the old fixed device address is used):

- device ``i``: IPv4 ``10.0.0.0/8`` host number ``i + 1`` (so device 0 is 10.0.0.1, device 4711
  is 10.0.18.104; :func:`device_ip`), MAC ``02:0a`` followed by those four octets (a locally
  administered address, IEEE 802 §8.2.2). Devices 16,777,214 apart share an address;
- the radio network that sends GSMTAP (the BTS side): 192.0.2.1; the servers (``SERVERS``, by
  name; :func:`server_ip`): the DM server ``dm`` 198.51.100.1, the LwM2M Bootstrap Server
  ``lwm2m-bootstrap`` 198.51.100.2 and the LwM2M Server ``lwm2m-server`` 198.51.100.3 (RFC 5737
  documentation addresses, MACs ``02:00:00:00:00:03`` to ``:05``); the device-less address is
  192.0.2.2;
- each device's SMS go on its own SDCCH/8 sub-channel (``gsmtap.device_channel``: ARFCN,
  timeslot, sub-slot), with its own LAPDm sequence numbers.

Choices:
- Timestamps are ``epoch + t`` with ``t`` the simulated time in seconds and ``epoch`` a fixed
  instant (2024-01-01T00:00:00Z by default), so the same run gives the same file.
- Downlink packets go from the network to the device, uplink and SIM packets the other way;
  the UDP checksum of GSMTAP is 0 ("none"), those of the device's own datagrams (``write_udp``,
  RFC 768) and the TCP checksum (RFC 9293 §3.1) are computed.
- What cannot be written (a time that does not fit the 32-bit timestamp, a TPDU or an APDU the
  GSMTAP layers cannot frame, a datagram too large for IPv4) raises DmsimError *and* is counted in
  ``gaps`` (what -> records): a caller that goes on without it leaves a trace the run reports
  (:meth:`PcapWriter.warnings`), never a silent hole.
- An APDU pair can be written ``offset`` seconds after the ``now`` of the call (a card's APDUs
  are exchanged at once, their simulated durations are known afterwards). Records are kept in a
  small heap and written in timestamp order once the simulation has passed their time (each
  call's ``now`` says it has), ties in call order; ``close()`` writes what is left.
- TCP (``tcp_open``/``write_tcp``): the three-way handshake is written when a connection opens
  (SYN and SYN-ACK carry MSS 1460); data is cut into segments of at most 1460 octets, the last
  one with PSH; every segment acknowledges what arrived in order from the other side so far.
  Initial sequence numbers are derived from the device and the connection number (CRC-32), not
  random, so the file is reproducible.
- The file is written as ``<path>.part`` and renamed to ``path`` by ``close()``
  (sim/results/atomic.py); if the writer is used as a context manager and the block raises, the
  ``.part`` file is removed instead.
"""
from __future__ import annotations

import heapq
import math
import os
import struct
import zlib
from pathlib import Path
from types import TracebackType

from dmsim.network.sms import gsmtap
from dmsim.network.sms.address import Address
from dmsim.sim.results.atomic import commit_part, part_path
from dmsim.base.errors import DmsimError

DEFAULT_EPOCH = 1704067200  # 2024-01-01T00:00:00Z
LINKTYPE_ETHERNET = 1
SNAPLEN = 65535
TCP_MSS = 1460
_MAX_SECONDS = 1 << 32       # ts_sec is an unsigned 32-bit field

_NETWORK = (b"\x02\x00\x00\x00\x00\x01", bytes([192, 0, 2, 1]))   # (MAC, IPv4)
_DEVICE = (b"\x02\x00\x00\x00\x00\x02", bytes([192, 0, 2, 2]))
SERVERS: dict[str, tuple[bytes, bytes]] = {   # name -> (MAC, IPv4)
    "dm": (b"\x02\x00\x00\x00\x00\x03", bytes([198, 51, 100, 1])),
    "lwm2m-bootstrap": (b"\x02\x00\x00\x00\x00\x04", bytes([198, 51, 100, 2])),
    "lwm2m-server": (b"\x02\x00\x00\x00\x00\x05", bytes([198, 51, 100, 3])),
}
_DM_SERVER = SERVERS["dm"]
_DEVICE_HOSTS = (1 << 24) - 2   # host numbers 1 .. 2^24 - 2 of 10.0.0.0/8
_ETHERTYPE_IPV4 = 0x0800
_IP_PROTO_TCP = 6
_IP_PROTO_UDP = 17
_IP_TTL = 64
MAX_UDP_PAYLOAD = 65535 - 20 - 8   # an IPv4 datagram's total length is 16 bits (RFC 791 §3.1)
TCP_FIN, TCP_SYN, TCP_PSH, TCP_ACK = 0x01, 0x02, 0x08, 0x10


def pcap_global_header(linktype: int = LINKTYPE_ETHERNET) -> bytes:
    """Return the 24-octet libpcap global header (native-endian magic, as libpcap writes)."""
    return struct.pack("=IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, SNAPLEN, linktype)


def device_ip(index: int) -> str:
    """Return device ``index``'s IPv4 address in the capture, dotted (see the module doc)."""
    return ".".join(str(b) for b in _device_host(index)[1])


def server_ip(name: str) -> str:
    """Return the IPv4 address of the server ``name`` of ``SERVERS`` in the capture, dotted."""
    return ".".join(str(b) for b in SERVERS[name][1])


def _device_host(index: int | None) -> tuple[bytes, bytes]:
    """Return (MAC, IPv4) of device ``index``; the fixed device address for None."""
    if index is None:
        return _DEVICE
    host = 1 + index % _DEVICE_HOSTS
    ip = bytes([10]) + host.to_bytes(3, "big")
    return b"\x02\x0a" + ip, ip


def _checksum(data: bytes) -> int:
    """Return the Internet checksum (RFC 1071) of ``data``."""
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f">{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _ipv4(proto: int, body: bytes, src: tuple[bytes, bytes], dst: tuple[bytes, bytes], ident: int) -> bytes:
    """Return the Ethernet frame carrying the IPv4 packet ``body`` (protocol ``proto``)."""
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(body), ident & 0xFFFF, 0x4000,
                     _IP_TTL, proto, 0, src[1], dst[1])
    ip = ip[:10] + struct.pack(">H", _checksum(ip)) + ip[12:]
    return dst[0] + src[0] + struct.pack(">H", _ETHERTYPE_IPV4) + ip + body


def udp_frame(payload: bytes, *, src: tuple[bytes, bytes], dst: tuple[bytes, bytes],
              port: int = gsmtap.GSMTAP_UDP_PORT, ident: int = 0, sport: int | None = None,
              checksum: bool = False) -> bytes:
    """Return an Ethernet frame with an IPv4/UDP datagram from ``src`` to ``dst`` (MAC, IP) to
    ``port``, from ``sport`` (default ``port``); ``checksum``: compute the UDP checksum (else 0)."""
    udp = struct.pack(">HHHH", port if sport is None else sport, port, 8 + len(payload), 0) + payload
    if checksum:
        pseudo = src[1] + dst[1] + struct.pack(">BBH", 0, _IP_PROTO_UDP, len(udp))
        value = _checksum(pseudo + udp) or 0xFFFF   # RFC 768: a computed 0 is sent as all ones
        udp = udp[:6] + struct.pack(">H", value) + udp[8:]
    return _ipv4(_IP_PROTO_UDP, udp, src, dst, ident)


def tcp_frame(payload: bytes, *, src: tuple[bytes, bytes], dst: tuple[bytes, bytes], sport: int, dport: int,
              seq: int, ack: int, flags: int, ident: int = 0) -> bytes:
    """Return an Ethernet frame with an IPv4/TCP segment (window 65535; SYNs carry MSS 1460)."""
    options = struct.pack(">BBH", 2, 4, TCP_MSS) if flags & TCP_SYN else b""
    header = struct.pack(">HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                         (5 + len(options) // 4) << 4, flags, 65535, 0, 0) + options
    segment = header + payload
    pseudo = src[1] + dst[1] + struct.pack(">BBH", 0, _IP_PROTO_TCP, len(segment))
    segment = segment[:16] + struct.pack(">H", _checksum(pseudo + segment)) + segment[18:]
    return _ipv4(_IP_PROTO_TCP, segment, src, dst, ident)


class TcpStream:
    """One TCP connection of the capture between device ``device`` and the DM server.

    Sequence numbers are tracked per side (``True``: the device): ``isn``, the next new octet
    (``sent``), what the other side has received in order (``rcv``) and segments that arrived
    ahead of a gap (``ahead``: start -> end offset), so acknowledgements follow what arrived.
    """

    __slots__ = ("device", "client_port", "server_port", "isn", "sent", "rcv", "ahead")

    def __init__(self, device: int, number: int, server_port: int):
        self.device = device
        self.client_port = 49152 + (number % 16384)
        self.server_port = server_port
        key = f"{device}/{number}".encode("ascii")
        self.isn = {True: zlib.crc32(key + b"/c"), False: zlib.crc32(key + b"/s")}
        self.sent = {True: 0, False: 0}       # data offsets (octets after the SYN)
        self.rcv = {True: 0, False: 0}
        self.ahead: dict[bool, dict[int, int]] = {True: {}, False: {}}

    def arrived(self, from_device: bool, start: int, end: int) -> None:
        """The octets ``start:end`` from one side reached the other: advance its in-order mark."""
        ahead = self.ahead[from_device]
        if start > self.rcv[from_device]:
            ahead[start] = max(end, ahead.get(start, end))
            return
        self.rcv[from_device] = max(self.rcv[from_device], end)
        while True:
            nxt = [s for s in ahead if s <= self.rcv[from_device]]
            if not nxt:
                return
            for s in nxt:
                self.rcv[from_device] = max(self.rcv[from_device], ahead.pop(s))


def _smsc(smsc_address: Address | str) -> Address:
    return smsc_address if isinstance(smsc_address, Address) else Address.parse(smsc_address)


class PcapWriter:
    """Writes records to ``path`` (via ``<path>.part``) as the simulation goes.

    ``epoch`` is the wall-clock second that simulated time 0 maps to; ``arfcn`` the ARFCN
    written in the GSMTAP headers of SMS that name no device. Each ``write_*`` returns the number
    of records written.
    """

    def __init__(self, path: str | os.PathLike[str], *, epoch: int = DEFAULT_EPOCH,
                 arfcn: int = 0) -> None:
        self.path = Path(path)
        self.epoch = epoch
        self.records = 0
        self._channel = gsmtap.SmsChannel(arfcn=arfcn)
        self._channels: dict[int, gsmtap.SmsChannel] = {}
        self._pending: list[tuple[float, int, bytes]] = []   # (time, order, frame) heap
        self._connections: dict[int, int] = {}               # device -> TCP connections opened
        self.gaps: dict[str, int] = {}                       # what -> records that could not be written
        try:
            self._file = open(part_path(self.path), "wb")
        except OSError as exc:
            raise DmsimError(f"{self.path}: cannot write the pcap file: {exc}") from exc
        self._file.write(pcap_global_header())

    def _check(self, now: float, what: str) -> None:
        if self._file.closed:
            self._refuse(what, "pcap writer is closed")
        if not (math.isfinite(now) and 0 <= now < _MAX_SECONDS - self.epoch):
            self._refuse(what, f"record time {now!r}, expected seconds >= 0 that fit the 32-bit pcap timestamp")

    def missed(self, what: str) -> None:
        """Count a ``what`` record that is not written in ``gaps`` (the run warns of it)."""
        self.gaps[what] = self.gaps.get(what, 0) + 1

    def _refuse(self, what: str, reason: str) -> None:
        """Count a ``what`` record that cannot be written in ``gaps`` and raise DmsimError."""
        self.missed(what)
        raise DmsimError(f"{self.path.name}: {what} not captured: {reason}")

    def warnings(self) -> list[str]:
        """Return one line saying what could not be captured (``gaps``), or none."""
        if not self.gaps:
            return []
        parts = ", ".join(f"{count:,} {what}" for what, count in sorted(self.gaps.items()))
        return [f"the pcap {self.path.name} lacks {sum(self.gaps.values()):,} record(s) it could not "
                f"write: {parts}"]

    def _flush(self, until: float) -> None:
        """Write the held records whose time is at most ``until``, oldest first."""
        pending = self._pending
        while pending and pending[0][0] <= until:
            at, _, frame = heapq.heappop(pending)
            micros = round(at * 1_000_000)
            seconds, micros = divmod(micros, 1_000_000)
            self._file.write(struct.pack("=IIII", self.epoch + seconds, micros, len(frame), len(frame)))
            self._file.write(frame)

    def _frame(self, now: float, frame: bytes, at: float | None = None) -> None:
        """Queue ``frame`` for time ``at`` (default ``now``) and write what is due at ``now``."""
        heapq.heappush(self._pending, (now if at is None else at, self.records, frame))
        self.records += 1
        self._flush(now)

    def _record(self, now: float, gsmtap_packet: bytes, *, uplink: bool, device: int | None = None,
                at: float | None = None) -> None:
        host = _device_host(device)
        src, dst = (host, _NETWORK) if uplink else (_NETWORK, host)
        self._frame(now, udp_frame(gsmtap_packet, src=src, dst=dst, ident=self.records), at)

    def _sms_channel(self, device: int | None) -> gsmtap.SmsChannel:
        if device is None:
            return self._channel
        channel = self._channels.get(device)
        if channel is None:
            arfcn, timeslot, sub_slot = gsmtap.device_channel(device)
            channel = self._channels[device] = gsmtap.SmsChannel(arfcn=arfcn, timeslot=timeslot,
                                                                 sub_slot=sub_slot)
        return channel

    def _write_sms(self, now: float, tpdu: bytes, smsc_address: Address | str, *, mt: bool,
                   mr: int, device: int | None) -> int:
        self._check(now, "sms")
        # A TDMA frame lasts 120/26 ms (TS 45.002 §4.3.1): the frame number follows sim time.
        frame_number = int(now * 26 / 0.120) % gsmtap.GSM_HYPERFRAME
        try:
            packets = self._sms_channel(device).sms_packets(tpdu, _smsc(smsc_address), mt=mt, mr=mr,
                                                            frame_number=frame_number)
        except DmsimError as exc:
            self._refuse("sms", str(exc))
        for packet in packets:
            self._record(now, packet, uplink=not mt, device=device)
        return len(packets)

    def write_sms_mt(self, now: float, tpdu: bytes, smsc_address: Address | str, *,
                     mr: int = 0, device: int | None = None) -> int:
        """Write an SMS from the SMSC to a device (RP-OA = ``smsc_address``, e.g. "+4912345")."""
        return self._write_sms(now, tpdu, smsc_address, mt=True, mr=mr, device=device)

    def write_sms_mo(self, now: float, tpdu: bytes, smsc_address: Address | str, *,
                     mr: int = 0, device: int | None = None) -> int:
        """Write an SMS from a device to the SMSC (RP-DA = ``smsc_address``)."""
        return self._write_sms(now, tpdu, smsc_address, mt=False, mr=mr, device=device)

    def write_apdu(self, now: float, c_apdu: bytes, r_apdu: bytes, *, device: int | None = None,
                   offset: float = 0.0) -> int:
        """Write one command/response pair as GSMTAP SIM (response = data + SW1 SW2), timed
        ``offset`` (>= 0) seconds after ``now``."""
        self._check(now, "apdu")
        self._check(now + offset, "apdu")
        if offset < 0:
            self._refuse("apdu", f"APDU offset {offset!r}, expected >= 0")
        try:
            packet = gsmtap.sim_packet(c_apdu, r_apdu)
        except DmsimError as exc:
            self._refuse("apdu", str(exc))
        self._record(now, packet, uplink=True, device=device, at=now + offset)
        return 1

    # -- UDP -----------------------------------------------------------------------------------
    def write_udp(self, now: float, device: int, payload: bytes, *, server: str, server_port: int,
                  device_port: int, from_device: bool) -> int:
        """Write one UDP datagram between ``device`` (its ``device_port``) and the server ``server``
        of ``SERVERS`` (its ``server_port``), ``from_device`` or to it, at ``now``."""
        self._check(now, "udp")
        if len(payload) > MAX_UDP_PAYLOAD:
            self._refuse("udp", f"datagram of {len(payload)} octets, expected at most {MAX_UDP_PAYLOAD}")
        client, host = _device_host(device), SERVERS[server]
        src, dst, sport, dport = ((client, host, device_port, server_port) if from_device
                                  else (host, client, server_port, device_port))
        self._frame(now, udp_frame(payload, src=src, dst=dst, port=dport, sport=sport, ident=self.records,
                                   checksum=True))
        return 1

    # -- TCP -----------------------------------------------------------------------------------
    def _tcp(self, now: float, stream: TcpStream, from_device: bool, payload: bytes, seq_offset: int,
             flags: int) -> None:
        client, server = _device_host(stream.device), _DM_SERVER
        src, dst = (client, server) if from_device else (server, client)
        sport, dport = ((stream.client_port, stream.server_port) if from_device
                        else (stream.server_port, stream.client_port))
        ack = stream.isn[not from_device] + 1 + stream.rcv[not from_device]
        frame = tcp_frame(payload, src=src, dst=dst, sport=sport, dport=dport,
                          seq=stream.isn[from_device] + 1 + seq_offset, ack=ack, flags=flags,
                          ident=self.records)
        self._frame(now, frame)

    def tcp_open(self, now: float, device: int, *, server_port: int = 80) -> TcpStream:
        """Write the three-way handshake of a new connection from ``device`` to the DM server
        (port ``server_port``) and return it."""
        self._check(now, "tcp")
        number = self._connections.get(device, 0)
        self._connections[device] = number + 1
        stream = TcpStream(device, number, server_port)
        client, server = _device_host(device), _DM_SERVER
        for src, dst, sport, dport, seq, ack, flags in (
                (client, server, stream.client_port, server_port, stream.isn[True], 0, TCP_SYN),
                (server, client, server_port, stream.client_port, stream.isn[False], stream.isn[True] + 1,
                 TCP_SYN | TCP_ACK),
                (client, server, stream.client_port, server_port, stream.isn[True] + 1, stream.isn[False] + 1,
                 TCP_ACK)):
            self._frame(now, tcp_frame(b"", src=src, dst=dst, sport=sport, dport=dport, seq=seq, ack=ack,
                                       flags=flags, ident=self.records))
        return stream

    def write_tcp(self, now: float, stream: TcpStream, payload: bytes, *, from_device: bool,
                  offset: int | None = None, fin: bool = False) -> int:
        """Write ``payload`` (b"" with ``fin``: a FIN) from one side of ``stream`` as it arrives
        at the other; ``offset`` is its place in that side's octet stream (None: right after
        what was sent before, which a resend or a late segment does not extend)."""
        self._check(now, "tcp")
        if offset is None:
            offset = stream.sent[from_device]
        written = 0
        chunks = [payload[i:i + TCP_MSS] for i in range(0, len(payload), TCP_MSS)] or [b""]
        for i, chunk in enumerate(chunks):
            start = offset + i * TCP_MSS
            last = i == len(chunks) - 1
            flags = TCP_ACK | (TCP_PSH if last and chunk else 0) | (TCP_FIN if last and fin else 0)
            end = start + len(chunk) + (1 if last and fin else 0)
            self._tcp(now, stream, from_device, chunk, start, flags)
            stream.arrived(from_device, start, end)
            stream.sent[from_device] = max(stream.sent[from_device], end)
            written += 1
        return written

    # -- the file ------------------------------------------------------------------------------
    def close(self) -> Path:
        """Write what is held, flush and rename ``<path>.part`` to ``path``; return the final
        path. Idempotent."""
        if not self._file.closed:
            self._flush(math.inf)
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
