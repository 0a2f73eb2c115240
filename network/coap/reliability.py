"""The CoAP message layer towards one peer: RFC 7252 §4 (reliability, deduplication), §5.2-§5.3
(request/response matching), RFC 7641 §3.6/§4.2 (the little Observe needs from it).

Sans-IO: an :class:`Endpoint` takes datagrams and the time in, and gives events out; a
:class:`Transmit` event is a datagram to send to the peer. It never reads a clock or draws a random
number itself: ``now`` (seconds, a float) is passed to every call and randomness comes from the
``randbytes`` callable given at construction (Message IDs, tokens, the initial ACK timeout).

Driving it (the same from a SimPy process and from a socket loop)::

    ep = Endpoint(randbytes)
    token, events = ep.request(message.request(Code.GET, "/3/0", message_id=0), now)
    # send every Transmit(datagram), hand the others to the application; then, in a loop:
    #   wait for a datagram or until ep.next_timeout() (None: no timer), whichever comes first,
    #   events = ep.receive(datagram, now)   or   events = ep.on_timeout(now)

    # in SimPy, with a Store ``inbox`` of datagrams from the peer:
    #   due = ep.next_timeout()
    #   get = inbox.get()
    #   yield get if due is None else get | env.timeout(max(0.0, due - env.now))
    #   if get.triggered: events = ep.receive(get.value, env.now)
    #   else: get.cancel(); events = ep.on_timeout(env.now)

A request received (:class:`RequestReceived`) is answered once, with :meth:`Endpoint.respond`
(piggybacked if it comes before the CON's ACK) or :meth:`Endpoint.acknowledge` then
:meth:`Endpoint.respond` (separate response).

Reliability (§4.2, §4.8): a CON (request, separate response, notification or ping) is sent with
an initial timeout drawn in [ACK_TIMEOUT, ACK_TIMEOUT * ACK_RANDOM_FACTOR), retransmitted up to
MAX_RETRANSMIT times with the timeout doubled each time; when the last timeout expires the
sender gives up (:class:`Timeout`). NSTART = 1 (§4.7): one CON awaits its ACK at a time, further
ones wait in a bounded FIFO queue. ACKs and NONs are never queued.

Matching: an ACK or RST matches the CON in flight by Message ID (§4.2); a RST also matches a
recently sent NON (§4.3). A response matches a request by token (§5.3.2): piggybacked in the ACK
(the Message ID must match too), or separate as a CON (acknowledged here with an Empty ACK,
§5.2.2) or NON. A separate response that arrives before the ACK of its CON request acts as that
ACK (§5.2.2). A response whose token matches no request is rejected with a RST (§5.3.2, and RFC
7641 §3.6 for notifications of a forgotten observation).

Duplicates (§4.5): each received CON and NON is remembered by Message ID for EXCHANGE_LIFETIME
(CON) or NON_LIFETIME (NON). A duplicate is never delivered again; a duplicate CON is answered with
the very bytes of the first answer (ACK, piggybacked response or RST).

Choices where the RFC leaves room:

* The duplicate cache holds at most ``dedup_capacity`` Message IDs (LRU, a duplicate hit counts
  as a use). When full, the least recently used entry is dropped: a retransmission of that one
  message would then be processed a second time. This only happens under a flood of more than
  ``dedup_capacity`` distinct messages within a lifetime, and is preferred to refusing new
  messages, which would let the flood shut the peer out.
* A duplicate CON that arrives before the application answered the first copy is dropped without
  reply: the peer retransmits, and the ACK goes out with the answer (no implicit Empty ACK, which
  would commit to a separate response).
* A request whose CON was acknowledged Empty, or that was sent as NON, waits ``response_timeout``
  seconds (default EXCHANGE_LIFETIME, 247 s) for its response, then gives :class:`Timeout`.
* A request with Observe = 0 answered with an Observe option stays open as an observation (its
  later notifications are :class:`ResponseReceived` with its token) until :meth:`Endpoint.cancel`
  or a RST; it counts towards ``max_requests``.
* Codes of the reserved classes 1, 3, 6 and 7 (§3 reserves all but 0, 2, 4, 5) are rejected: a RST
  for a CON, silence for a NON (§4.2, §4.3). An Empty NON (§4.3), a non-Empty RST, an ACK carrying
  a request and an ACK or RST that matches nothing are silently ignored (§4.2).
* A CON whose header can be read (4 bytes, version 1) but whose rest is malformed is rejected
  with a RST (§4.2: a message format error); anything else malformed is ignored.
* Every refusal is also an :class:`Ignored` event with a short reason, so a run can count them.
"""
from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, replace

from dmsim.base.errors import DecodeError, ProtocolError
from dmsim.network.coap.message import (
    VERSION, Code, Message, Option, Type, decode, empty_ack, encode, reset,
)

ACK_TIMEOUT = 2.0
ACK_RANDOM_FACTOR = 1.5
MAX_RETRANSMIT = 4
EXCHANGE_LIFETIME = 247.0
NON_LIFETIME = 145.0
_RESPONSE_CLASSES = (2, 4, 5)


@dataclass(frozen=True, slots=True)
class Parameters:
    """Transmission parameters, RFC 7252 §4.8 (defaults) and §4.8.2 (derived lifetimes)."""

    ack_timeout: float = ACK_TIMEOUT
    ack_random_factor: float = ACK_RANDOM_FACTOR
    max_retransmit: int = MAX_RETRANSMIT
    exchange_lifetime: float = EXCHANGE_LIFETIME
    non_lifetime: float = NON_LIFETIME
    response_timeout: float = EXCHANGE_LIFETIME


# -- events ------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Transmit:
    """Send ``datagram`` to the peer."""

    datagram: bytes


@dataclass(frozen=True, slots=True)
class RequestReceived:
    """A new (not duplicate) request; answer it with :meth:`Endpoint.respond`."""

    message: Message


@dataclass(frozen=True, slots=True)
class ResponseReceived:
    """The response (or an Observe notification) to our request of token ``request_token``."""

    request_token: bytes
    message: Message


@dataclass(frozen=True, slots=True)
class Acknowledged:
    """Our CON ``message_id`` (token ``token``) got an Empty ACK (for a request: the response
    will come separately, §5.2.2)."""

    token: bytes
    message_id: int


@dataclass(frozen=True, slots=True)
class Timeout:
    """Given up: the CON ``message_id`` got no ACK after MAX_RETRANSMIT retransmissions, or the
    request of ``token`` got no response within ``response_timeout``. A ping has token b""."""

    token: bytes
    message_id: int


@dataclass(frozen=True, slots=True)
class Reset:
    """The peer rejected our message ``message_id`` (token ``token``) with a RST (§4.2, §4.3).
    For a ping (token b"") this is the pong; for a notification it cancels the observation."""

    token: bytes
    message_id: int


@dataclass(frozen=True, slots=True)
class Ignored:
    """A received datagram that was not delivered: ``reason`` is ``malformed``, ``duplicate``,
    ``empty_non``, ``reserved_class``, ``unknown_token``, ``bad_ack``, ``bad_rst``,
    ``token_mismatch``, ``unmatched_ack`` or ``unmatched_rst``."""

    reason: str
    message_id: int | None = None
    detail: str = ""


Event = Transmit | RequestReceived | ResponseReceived | Acknowledged | Timeout | Reset | Ignored


class QueueFullError(ProtocolError):
    """A local bound reached: too many open requests, or too many CONs waiting for NSTART."""


# -- state -------------------------------------------------------------------------------------

@dataclass(slots=True)
class _Outgoing:
    """A CON we send and retransmit until ACK or RST (§4.2)."""

    message: Message
    datagram: bytes
    is_request: bool
    timeout: float = 0.0
    deadline: float = 0.0
    retransmits: int = 0


@dataclass(slots=True)
class _Request:
    """A request of ours waiting for its response: ``deadline`` None while its CON is in flight
    or queued (the retransmission timer governs) or while it is an established observation."""

    message_id: int
    deadline: float | None
    observe: bool


@dataclass(slots=True)
class _Seen:
    """A received CON/NON Message ID and the datagram that answered it (None: not yet)."""

    expires: float
    reply: bytes | None = None


def _class(code: int) -> int:
    return code >> 5


def _registers_observe(msg: Message) -> bool:
    """True if ``msg`` carries Observe = 0 (register, RFC 7641 §2)."""
    values = msg.values(Option.OBSERVE)
    return bool(values) and int.from_bytes(values[0], "big") == 0


class Endpoint:
    """The CoAP message layer towards one peer (RFC 7252 §4-§5); see the module docstring."""

    def __init__(self, randbytes: Callable[[int], bytes], *, message_id: int | None = None,
                 token_length: int = 8, params: Parameters = Parameters(), dedup_capacity: int = 512,
                 queue_capacity: int = 16, max_requests: int = 64, non_capacity: int = 128):
        if not 1 <= token_length <= 8:
            raise ValueError(f"token_length is 1-8 bytes, not {token_length}")
        if min(dedup_capacity, queue_capacity, max_requests, non_capacity) < 1:
            raise ValueError("every capacity is at least 1")
        self._randbytes = randbytes
        self._params = params
        self._token_length = token_length
        self._mid = (int.from_bytes(randbytes(2), "big") if message_id is None else message_id) & 0xFFFF
        self._dedup_capacity = dedup_capacity
        self._queue_capacity = queue_capacity
        self._max_requests = max_requests
        self._non_capacity = non_capacity
        self._seen: OrderedDict[int, _Seen] = OrderedDict()
        self._sent_non: OrderedDict[int, tuple[bytes, float]] = OrderedDict()
        self._requests: dict[bytes, _Request] = {}
        self._in_flight: _Outgoing | None = None
        self._queue: deque[_Outgoing] = deque()

    # -- introspection -------------------------------------------------------------------------

    @property
    def dedup_entries(self) -> int:
        """How many received Message IDs the duplicate cache holds (at most ``dedup_capacity``)."""
        return len(self._seen)

    @property
    def open_requests(self) -> tuple[bytes, ...]:
        """Tokens of our requests still waiting for a response (or observing)."""
        return tuple(self._requests)

    # -- allocation ----------------------------------------------------------------------------

    def next_message_id(self) -> int:
        """Return a fresh Message ID: sequential from a random start (§4.4)."""
        mid = self._mid
        self._mid = (mid + 1) & 0xFFFF
        return mid

    def new_token(self) -> bytes:
        """Return a random token not used by an open request (§5.3.1)."""
        for _ in range(16):
            token = bytes(self._randbytes(self._token_length))[:self._token_length]
            if len(token) == self._token_length and token not in self._requests:
                return token
        raise RuntimeError("randbytes gave no fresh token in 16 draws")

    def _initial_timeout(self) -> float:
        fraction = int.from_bytes(bytes(self._randbytes(4))[:4].rjust(4, b"\0"), "big") / 2 ** 32
        return self._params.ack_timeout * (1 + (self._params.ack_random_factor - 1) * fraction)

    # -- sending -------------------------------------------------------------------------------

    def request(self, msg: Message, now: float) -> tuple[bytes, list[Event]]:
        """Send request ``msg`` (type CON or NON; its Message ID is replaced, its token kept if
        set, else drawn) and return (token, events). The answer is one :class:`ResponseReceived`
        with that token, or :class:`Timeout` / :class:`Reset`."""
        if not msg.is_request or msg.type not in (Type.CON, Type.NON):
            raise ValueError("a request is a CON or NON with a method code")
        if len(self._requests) >= self._max_requests:
            raise QueueFullError(f"{self._max_requests} requests are already open")
        token = msg.token or self.new_token()
        if token in self._requests:
            raise ValueError(f"token {token.hex()} is already in use")
        msg = replace(msg, message_id=self.next_message_id(), token=token)
        if msg.type == Type.CON:
            events = self._send_con(msg, True, now)
            self._requests[token] = _Request(msg.message_id, None, _registers_observe(msg))
        else:
            self._requests[token] = _Request(msg.message_id, now + self._params.response_timeout,
                                             _registers_observe(msg))
            events = self._send_non(msg, now)
        return token, events

    def respond(self, request: Message, response: Message, now: float) -> list[Event]:
        """Answer ``request`` (as received in :class:`RequestReceived`) with ``response``'s code,
        options and payload. A CON not yet acknowledged gets it piggybacked in its ACK (§5.2.1);
        otherwise it is a separate response (§5.2.2) of type ``response.type`` if CON or NON, else
        of the request's type, with a fresh Message ID. The token is always the request's."""
        if _class(response.code) not in _RESPONSE_CLASSES:
            raise ValueError(f"code {response.code:#x} is not a response code")
        if request.type == Type.CON and not self._replied(request.message_id):
            ack = replace(response, type=Type.ACK, message_id=request.message_id, token=request.token)
            return [self._reply(request.message_id, ack, now)]
        kind = response.type if response.type in (Type.CON, Type.NON) else request.type
        return self.notify(replace(response, type=kind, token=request.token), now)

    def send(self, message: Message, now: float, request: Message | None = None) -> list[Event]:
        """Send a whole message an LwM2M core built (``network/lwm2m/events.py``: ``Send``): a request
        through :meth:`request` (its token kept, so the core matches the answer; its Message ID
        replaced); a response as the answer to ``request``, the request being handled (same token),
        through :meth:`respond`, piggybacked when it can be; an Empty ACK is dropped, since the
        endpoint acknowledges CON responses by itself (§5.2.2). QueueFullError propagates; a
        response with no request to answer is the caller's error (ValueError)."""
        if message.is_request:
            return self.request(message, now)[1]
        if message.is_empty:
            return []
        if request is None or message.token != request.token:
            raise ValueError("a response needs the request it answers")
        return self.respond(request, message, now)

    def acknowledge(self, request: Message, now: float) -> list[Event]:
        """Send the Empty ACK of CON ``request`` now; its response follows later through
        :meth:`respond` as a separate response (§5.2.2). Nothing if it was already answered."""
        if request.type != Type.CON or self._replied(request.message_id):
            return []
        return [self._reply(request.message_id, empty_ack(request), now)]

    def notify(self, msg: Message, now: float) -> list[Event]:
        """Send response ``msg`` (CON or NON) outside any exchange, e.g. an Observe notification
        with the token of the observing request (RFC 7641 §4.2). Its Message ID is replaced; a CON
        is retransmitted and ends in :class:`Acknowledged`, :class:`Reset` or :class:`Timeout`."""
        if msg.type not in (Type.CON, Type.NON) or _class(msg.code) not in _RESPONSE_CLASSES:
            raise ValueError("a separate response is a CON or NON with a response code")
        msg = replace(msg, message_id=self.next_message_id())
        return self._send_con(msg, False, now) if msg.type == Type.CON else self._send_non(msg, now)

    def ping(self, now: float) -> list[Event]:
        """Send a CoAP ping, an Empty CON (§4.3): answered by :class:`Reset` with token b""
        (or :class:`Acknowledged`), or :class:`Timeout`."""
        return self._send_con(Message(Type.CON, Code.EMPTY, self.next_message_id()), False, now)

    def cancel(self, token: bytes, now: float) -> list[Event]:
        """Forget our request (or observation) ``token``: no more retransmissions, its later
        responses are rejected with a RST (which also ends an observation, RFC 7641 §3.6)."""
        if self._requests.pop(token, None) is None:
            return []
        self._queue = deque(o for o in self._queue if not (o.is_request and o.message.token == token))
        flight = self._in_flight
        if flight is not None and flight.is_request and flight.message.token == token:
            self._in_flight = None
            return self._start_next(now)
        return []

    def _send_con(self, msg: Message, is_request: bool, now: float) -> list[Event]:
        if len(self._queue) >= self._queue_capacity:
            raise QueueFullError(f"{self._queue_capacity} CON messages already wait for NSTART")
        self._queue.append(_Outgoing(msg, encode(msg), is_request))
        return self._start_next(now) if self._in_flight is None else []

    def _send_non(self, msg: Message, now: float) -> list[Event]:
        self._purge(self._sent_non, now, lambda entry: entry[1])
        self._sent_non[msg.message_id] = (msg.token, now + self._params.non_lifetime)
        while len(self._sent_non) > self._non_capacity:
            self._sent_non.popitem(last=False)
        return [Transmit(encode(msg))]

    def _start_next(self, now: float) -> list[Event]:
        if self._in_flight is not None or not self._queue:
            return []
        out = self._queue.popleft()
        out.timeout = self._initial_timeout()
        out.deadline = now + out.timeout
        self._in_flight = out
        return [Transmit(out.datagram)]

    def _finish_in_flight(self, now: float) -> list[Event]:
        self._in_flight = None
        return self._start_next(now)

    # -- timers --------------------------------------------------------------------------------

    def next_timeout(self) -> float | None:
        """Return the time :meth:`on_timeout` should next be called, or None for no timer."""
        times = [r.deadline for r in self._requests.values() if r.deadline is not None]
        if self._in_flight is not None:
            times.append(self._in_flight.deadline)
        return min(times, default=None)

    def on_timeout(self, now: float) -> list[Event]:
        """Fire every timer due at ``now``: retransmit the CON in flight (timeout doubled, §4.2),
        or give it up after MAX_RETRANSMIT; expire requests that wait for a response too long."""
        events: list[Event] = []
        flight = self._in_flight
        if flight is not None and flight.deadline <= now:
            if flight.retransmits < self._params.max_retransmit:
                flight.retransmits += 1
                flight.timeout *= 2
                flight.deadline = now + flight.timeout
                events.append(Transmit(flight.datagram))
            else:
                token = flight.message.token
                if flight.is_request:
                    self._requests.pop(token, None)
                events.append(Timeout(token, flight.message.message_id))
                events += self._finish_in_flight(now)
        for token, req in list(self._requests.items()):
            if req.deadline is not None and req.deadline <= now:
                del self._requests[token]
                events.append(Timeout(token, req.message_id))
        return events

    # -- receiving -----------------------------------------------------------------------------

    def receive(self, datagram: bytes, now: float) -> list[Event]:
        """Process one datagram from the peer; never raises on its content."""
        try:
            msg = decode(datagram)
        except DecodeError as exc:
            return self._malformed(bytes(datagram), exc)
        if msg.type == Type.ACK:
            return self._on_ack(msg, now)
        if msg.type == Type.RST:
            return self._on_rst(msg, now)
        return self._on_con_non(msg, now)

    def _malformed(self, data: bytes, exc: DecodeError) -> list[Event]:
        if len(data) < 4 or data[0] >> 6 != VERSION:
            return [Ignored("malformed", None, str(exc))]
        mid = int.from_bytes(data[2:4], "big")
        events: list[Event] = [Ignored("malformed", mid, str(exc))]
        if (data[0] >> 4) & 0x03 == Type.CON:
            events.insert(0, Transmit(encode(Message(Type.RST, Code.EMPTY, mid))))
        return events

    def _on_con_non(self, msg: Message, now: float) -> list[Event]:
        mid = msg.message_id
        if msg.type == Type.NON and msg.is_empty:
            return [Ignored("empty_non", mid)]
        if _class(msg.code) not in (0, *_RESPONSE_CLASSES):
            if msg.type == Type.NON:
                return [Ignored("reserved_class", mid)]
            return self._reject(msg, now, "reserved_class")
        seen = self._lookup(mid, now)
        if seen is not None:
            events: list[Event] = [Ignored("duplicate", mid)]
            if msg.type == Type.CON and seen.reply is not None:
                events.insert(0, Transmit(seen.reply))
            return events
        self._remember(mid, now, self._lifetime(msg))
        if msg.is_empty:  # a ping (§4.3)
            return [self._reply(mid, reset(msg), now)]
        if msg.is_request:
            return [RequestReceived(msg)]
        return self._on_response(msg, now)

    def _on_response(self, msg: Message, now: float) -> list[Event]:
        """A separate response or a notification (§5.2.2, §5.2.3), matched by token."""
        if msg.token not in self._requests:
            return self._reject(msg, now, "unknown_token")
        events: list[Event] = []
        if msg.type == Type.CON:
            events.append(self._reply(msg.message_id, empty_ack(msg), now))
        flight = self._in_flight
        if flight is not None and flight.is_request and flight.message.token == msg.token:
            events += self._finish_in_flight(now)  # the response stands for the lost ACK
        return events + self._deliver(msg.token, msg)

    def _deliver(self, token: bytes, msg: Message) -> list[Event]:
        req = self._requests.get(token)
        if req is not None and req.observe and msg.values(Option.OBSERVE):
            req.deadline = None
        else:
            self._requests.pop(token, None)
        return [ResponseReceived(token, msg)]

    def _reject(self, msg: Message, now: float, reason: str) -> list[Event]:
        """Reject ``msg`` with a RST (§4.2), remembered so that a duplicate gets the same one."""
        if self._lookup(msg.message_id, now) is None:
            self._remember(msg.message_id, now, self._lifetime(msg))
        return [self._reply(msg.message_id, reset(msg), now), Ignored(reason, msg.message_id)]

    def _on_ack(self, msg: Message, now: float) -> list[Event]:
        flight = self._in_flight
        if flight is None or flight.message.message_id != msg.message_id:
            return [Ignored("unmatched_ack", msg.message_id)]
        token = flight.message.token
        if not msg.is_empty and (not flight.is_request or _class(msg.code) not in _RESPONSE_CLASSES):
            return [Ignored("bad_ack", msg.message_id)]
        if not msg.is_empty and msg.token != token:
            return [Ignored("token_mismatch", msg.message_id)]
        events = self._finish_in_flight(now)
        if msg.is_empty:
            req = self._requests.get(token) if flight.is_request else None
            if req is not None:
                req.deadline = now + self._params.response_timeout
            return [Acknowledged(token, msg.message_id)] + events
        return self._deliver(token, msg) + events

    def _on_rst(self, msg: Message, now: float) -> list[Event]:
        mid = msg.message_id
        if not msg.is_empty:
            return [Ignored("bad_rst", mid)]
        flight = self._in_flight
        if flight is not None and flight.message.message_id == mid:
            token = flight.message.token
            if flight.is_request:
                self._requests.pop(token, None)
            return [Reset(token, mid)] + self._finish_in_flight(now)
        sent = self._sent_non.pop(mid, None)
        if sent is None or sent[1] <= now:
            return [Ignored("unmatched_rst", mid)]
        token = sent[0]
        req = self._requests.get(token)
        if req is not None and req.message_id == mid:
            del self._requests[token]
        return [Reset(token, mid)]

    # -- the duplicate cache (§4.5) ------------------------------------------------------------

    def _replied(self, mid: int) -> bool:
        seen = self._seen.get(mid)
        return seen is not None and seen.reply is not None

    def _reply(self, mid: int, answer: Message, now: float) -> Transmit:
        """Send ``answer`` to the received message ``mid`` and keep it for its duplicates."""
        datagram = encode(answer)
        seen = self._seen.get(mid)
        if seen is None:  # evicted or expired since: remember it anew
            seen = self._remember(mid, now, self._params.exchange_lifetime)
        seen.reply = datagram
        return Transmit(datagram)

    def _lookup(self, mid: int, now: float) -> _Seen | None:
        seen = self._seen.get(mid)
        if seen is None:
            return None
        if seen.expires <= now:
            del self._seen[mid]
            return None
        self._seen.move_to_end(mid)
        return seen

    def _lifetime(self, msg: Message) -> float:
        return self._params.exchange_lifetime if msg.type == Type.CON else self._params.non_lifetime

    def _remember(self, mid: int, now: float, lifetime: float) -> _Seen:
        self._purge(self._seen, now, lambda s: s.expires)
        self._seen.pop(mid, None)  # an expired entry behind live ones: renew it at the young end
        seen = self._seen[mid] = _Seen(now + lifetime)
        while len(self._seen) > self._dedup_capacity:
            self._seen.popitem(last=False)
        return seen

    @staticmethod
    def _purge(store: OrderedDict, now: float, expiry: Callable) -> None:
        """Drop expired entries from the old end of ``store`` (stops at the first live one)."""
        while store:
            key, entry = next(iter(store.items()))
            if expiry(entry) > now:
                return
            del store[key]
