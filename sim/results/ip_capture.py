"""The ip links of the first replica in the pcap: the DM sessions as HTTP (or TLS records) over
TCP/IPv4, the LwM2M datagrams (DTLS records, NoSec CoAP) over UDP/IPv4.

A link observer (``sim/links/link.py``) on ``links.ip`` (both directions) that writes every copy
of a message that arrives, at its arrival time (``sim/results/pcap.py``):

- a DM message (kind ``dm``) as TCP segments between the device's address and the DM server's,
  so Wireshark dissects the HTTP POSTs and their responses (port 80) or the TLS records (port
  443) and can follow each connection;
- an LwM2M datagram (kind ``dtls``, or ``coap`` for NoSec; ``sim/links/dtls_link.py``) as one
  UDP datagram between the device and the LwM2M Bootstrap Server (198.51.100.2) or the LwM2M
  Server (198.51.100.3). Ports: the server's is the port of the URI the device is given
  (``lwm2m_servers.service_port``): the bootstrap server 5684 in every mode; the LwM2M server
  5684 (PSK), 5685 (RPK), 5686 (certificate), 5683 (NoSec). The device's is
  ``LWM2M_DEVICE_PORT`` (56830) for all its associations: the simulated device has one CoAP
  socket, as the LwM2M clients Leshan and Wakaama use by default. Wireshark dissects DTLS on 5684
  (CoAP's "coaps" port) and by its DTLS heuristic elsewhere, CoAP on 5683.

Choices (the simulated transports model HTTP exchanges and TLS flights, not TCP):
- Plain HTTP (``SimulatedHttp``): one TCP connection per device, opened (three-way handshake)
  when its first request arrives; each arriving request or response is the next data of its
  direction, so a lost request leaves no gap (the device's retry is new data, as a new request
  on a kept-alive connection would be).
- HTTPS (``SimulatedHttps``): one TCP connection per simulated TLS connection (a retry after a
  timeout opens a new one, on a new client port). Each flight's place in the octet stream is
  fixed when it is first sent, so a resent flight (the transport's RTO) is written with its
  first sequence number (Wireshark shows it as a retransmission), and a flight that arrives
  after a later one shows as out of order. The empty segment the server sends after an alert is
  a FIN. A flight a tap changed keeps the place of the flight it replaced.
- Nothing is written for what never arrives (lost, dropped by a tap, refused by a full queue):
  the capture is what the receiving end saw; a datagram resent on a DTLS or CoAP timer arrives
  again and is written again, a copy a tap changed is written as it arrived.
- A segment or datagram the pcap cannot frame (e.g. a time that does not fit) is left out, not
  fatal, and counted in ``pcap.gaps`` (the run warns); so is an LwM2M datagram between endpoints
  the capture does not know (``udp_unknown_endpoint``).

TLS key log: none is written, so Wireshark shows the records but cannot decrypt them. It would
need an NSS key log line (``CLIENT_RANDOM <client random> <master secret>``) per connection, and
python-mbedtls 2.10, the TLS of ``network/dm/tls.py``, exposes neither: ``TLSWrappedBuffer`` has
no export-keys callback, and the only value it derives from the session secrets is the
``tls-unique`` channel binding (``_get_channel_binding``, the first Finished message, RFC 5929
§3). Computing a master secret outside Mbed TLS (from the PSK, RFC 4279 §2, and the transcript)
would be a second TLS implementation, so it is not done.
"""
from __future__ import annotations

from typing import Callable

from dmsim.base.errors import DmsimError
from dmsim.sim.agents.lwm2m_servers import MODES, service_name, service_port
from dmsim.sim.links.dtls_link import DTLS_KIND, NOSEC_KIND
from dmsim.sim.results.pcap import PcapWriter, TcpStream

HTTP_PORT = 80     # RFC 9110 §4.2.1
HTTPS_PORT = 443   # RFC 9110 §4.2.2
LWM2M_DEVICE_PORT = 56830
DATAGRAM_KINDS = frozenset({DTLS_KIND, NOSEC_KIND})
LWM2M_HOSTS = {"bootstrap": "lwm2m-bootstrap", "server": "lwm2m-server"}   # role -> pcap.SERVERS name
LWM2M_SERVICES: dict[str, tuple[str, int]] = {   # service name -> (pcap.SERVERS name, UDP port)
    service_name(role, mode): (host, service_port(role, mode))
    for role, host in LWM2M_HOSTS.items() for mode in MODES.values()}


def datagram_ends(msg) -> tuple[int, str, int, bool] | None:
    """Return (device index, server host, server port, from the device) of an LwM2M datagram
    ``msg`` (``msg.meta`` is the device agent), or None when its ends are not known."""
    ident = getattr(msg.meta, "ident", None)
    service = LWM2M_SERVICES.get(msg.dst)
    from_device = service is not None
    if service is None:
        service = LWM2M_SERVICES.get(msg.src)
    if service is None or ident is None:
        return None
    return ident.index, service[0], service[1], from_device


class _TlsConnection:
    """The capture's view of one simulated TLS connection: its TCP stream (once opened) and,
    per direction, where each flight (by its segment number) starts in the octet stream."""

    __slots__ = ("stream", "offsets", "next")

    def __init__(self) -> None:
        self.stream: TcpStream | None = None
        self.offsets: dict[bool, dict[int, int]] = {True: {}, False: {}}
        self.next = {True: 0, False: 0}


class IpCapture:
    """Writes the messages that arrive over the ``ip`` links into ``pcap``: DM as TCP, LwM2M as UDP."""

    def __init__(self, pcap: PcapWriter):
        self.pcap = pcap
        self._plain: dict[int, TcpStream] = {}
        self._tls: dict[object, _TlsConnection] = {}

    def sent(self, link, msg, deliver: Callable) -> Callable:
        """Return ``deliver`` wrapped to write each arriving copy of the DM message or LwM2M
        datagram ``msg`` (other kinds: ``deliver`` itself)."""
        if msg.kind in DATAGRAM_KINDS:
            return self._datagram(link, msg, deliver)
        meta = msg.meta
        if msg.kind != "dm" or not isinstance(meta, tuple) or len(meta) < 2:
            return deliver
        index = meta[0].ident.index
        from_device = msg.dst == "server"
        if len(meta) >= 3:          # a TLS flight: (device, segment number, connection)
            conn = self._tls.get(meta[2])
            if conn is None:
                conn = self._tls[meta[2]] = _TlsConnection()
            offsets = conn.offsets[from_device]
            offset = offsets.get(meta[1])
            if offset is None:
                offset = offsets[meta[1]] = conn.next[from_device]
                conn.next[from_device] += len(msg.payload) or 1   # a FIN takes one sequence number

            def arrived_tls(copy) -> None:
                self._write(link, index, conn, copy.payload, from_device, offset)
                deliver(copy)

            return arrived_tls

        def arrived(copy) -> None:
            self._write(link, index, None, copy.payload, from_device, None)
            deliver(copy)

        return arrived

    def _datagram(self, link, msg, deliver: Callable) -> Callable:
        """Return ``deliver`` wrapped to write each arriving copy of the LwM2M datagram ``msg``."""
        ends = datagram_ends(msg)
        if ends is None:
            self.pcap.missed("udp_unknown_endpoint")
            return deliver
        index, host, port, from_device = ends

        def arrived_datagram(copy) -> None:
            try:
                self.pcap.write_udp(link.env.now, index, copy.payload, server=host, server_port=port,
                                    device_port=LWM2M_DEVICE_PORT, from_device=from_device)
            except DmsimError:
                pass   # counted in pcap.gaps
            deliver(copy)

        return arrived_datagram

    def outcome(self, link, msg, what: str) -> None:
        """Nothing arrived: nothing to write."""

    def tapped(self, link, msg, deliveries: list) -> None:
        """What the tap delivers is written when it arrives."""

    def _write(self, link, index: int, conn: _TlsConnection | None, payload: bytes, from_device: bool,
               offset: int | None) -> None:
        now = link.env.now
        try:
            if conn is None:
                stream = self._plain.get(index)
                if stream is None:
                    stream = self._plain[index] = self.pcap.tcp_open(now, index, server_port=HTTP_PORT)
            else:
                if conn.stream is None:
                    conn.stream = self.pcap.tcp_open(now, index, server_port=HTTPS_PORT)
                stream = conn.stream
            self.pcap.write_tcp(now, stream, payload, from_device=from_device, offset=offset,
                                fin=conn is not None and not payload)
        except DmsimError:
            pass
