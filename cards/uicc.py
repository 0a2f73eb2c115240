"""The UICC command engine: ETSI TS 102 221 §10-§11 over the file tree of uicc_files.py, sans-IO.

``Uicc(profile).process(apdu)`` takes one command APDU and returns response data + SW1 SW2.
It never raises: an APDU that does not parse answers 6700, a failure inside a handler 6F00
(kept in ``last_error``).

The file tree is the ``Template`` its profile's layout shares with every card of that layout
(uicc_files.py); what this card holds in each EF is its own ``card.contents`` (``card.content(ef)``),
replaced on a write, so a card's writes never show on another card (filesystem.py).

Dispatch is a table on (CLA class, INS) -> ``handler(card, channel, cmd) -> Reply``. The CLA
class is ``INTERINDUSTRY`` (CLA 0x, 4x-7x) or ``PROPRIETARY`` (8x, Cx), TS 102 221 §10.1.1; the
CLA also gives the logical channel (0-3 in b2-b1, 4-19 in further interindustry coding) and
secure messaging bits. An INS absent from the table answers 6D00, or 6E00 when the INS exists
under the other class; a CLA that is neither class (A0, 2x, FF) answers 6E00. AUTHENTICATE (00
88), INITIALIZE UPDATE (80 50), EXTERNAL AUTHENTICATE (84 82) and ENVELOPE (80 C2) are not built
in: plug them in with ``register()``. A handler sees ``channel.application`` (the ADF selected
on that channel) and ``card.profile``; ``card.state`` and ``channel.context`` hold its data.

Built in: SELECT (A4: P1 00 FID, 04 DF name/AID with right-truncated match, 08 path from the
MF, 09 path from the current DF; P2 04 FCP, 0C no data, 00 as 04), STATUS (F2), READ/UPDATE
BINARY (B0/D6, offset in P1 P2 or SFI in P1), READ/UPDATE RECORD (B2/DC: next, previous,
absolute/current, SFI in P2), VERIFY (20), CHANGE (24), DISABLE (26), ENABLE (28), UNBLOCK
PIN (2C), MANAGE CHANNEL (70), GET RESPONSE (C0).

Choices where the spec leaves room:
- T=0 behaviour (§7.3.1.1.5, the default): a command with a data field (case 3/4) whose answer
  has data returns 61xx; the data is fetched with GET RESPONSE on the same channel, and any other
  command on that channel drops it. With ``t0=False`` the data comes back at once.
- Le: 00 means "all available, up to 256"; on a command that answers no data it is read as no
  Le, since T=0 sends a case 1 command with P3 = 00. A larger Le than available answers 6Cxx with the
  exact length; a smaller one is a shorter read for READ BINARY and a partial fetch (then
  61xx for the rest) for GET RESPONSE, and 6Cxx for READ RECORD and STATUS.
- File selection by FID (§8.4.1): the MF, 7FFF (the channel's current ADF), the current DF,
  its children, its parent and the parent's DF children. A path for P1 08 may start with 3F00.
- PIN1 has 3 tries and a PUK with 10; ADM1 has 3 tries and no PUK. Verification status is
  card-wide (PIN1 is the global PIN Appl 1) and lasts until ``reset()``. UNBLOCK PIN keeps
  PIN1's enabled/disabled state. CHANGE PIN on a disabled PIN answers 6984.
- Logical channels 1-3 (MANAGE CHANNEL §11.1.17): a channel opened from the basic channel
  starts at the MF; one opened from another channel copies that channel's selection.
- Secure messaging bits in CLA answer 6882 unless the handler was registered with
  ``secure_messaging=True`` (GlobalPlatform's 84 82).

Command hooks (``add_hook``) see every command on an open channel before the INS table; one
that answers a ``Reply`` takes the command over (gp_app.py unwraps SCP03 commands this way and
runs the plain command with ``execute``), None lets it go on as usual.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from dmsim.cards import sw as SW
from dmsim.cards.apdu import CommandApdu, parse_command, response
from dmsim.cards.filesystem import (ADM1, ALW, CURRENT_ADF_FID, DF, EF, KEY_REFERENCE, LINEAR_FIXED, MF_FID,
                                    NEV, PIN1, TRANSPARENT, File, fcp, tlv)
from dmsim.cards.profile import CardProfile, pin_bytes
from dmsim.cards.uicc_files import template_for
from dmsim.base.errors import DecodeError, ProtocolError

INTERINDUSTRY, PROPRIETARY = "interindustry", "proprietary"
MAX_CHANNELS = 4  # the basic channel 0 and logical channels 1-3
PIN_TRIES, PUK_TRIES, ADM_TRIES = 3, 10, 3


class Reply(NamedTuple):
    """What a handler answers: response data and the status word (int or ``StatusWord``)."""

    data: bytes = b""
    sw: Any = SW.OK


Handler = Callable[["Uicc", "Channel", CommandApdu], Reply]
Hook = Callable[["Uicc", "Channel", CommandApdu], "Reply | None"]


@dataclass(slots=True)
class Channel:
    """A logical channel's state: its current DF/EF, record pointer and selected application."""

    number: int
    current_df: DF
    current_ef: EF | None = None
    application: DF | None = None
    record: int = 0
    pending: bytes = b""
    context: dict[str, Any] = field(default_factory=dict)

    @property
    def current_file(self) -> File:
        """Return the current EF, or the current DF when no EF is selected."""
        return self.current_ef or self.current_df

    @property
    def application_aid(self) -> bytes | None:
        """Return the AID of the application selected on this channel, if any."""
        return self.application.aid if self.application else None


@dataclass
class Pin:
    """A PIN's state (TS 102 221 §9.5): value, tries left, PUK and its tries left."""

    value: bytes
    tries: int
    max_tries: int
    puk: bytes | None = None
    puk_tries: int = 0
    max_puk_tries: int = 0
    enabled: bool = True
    verified: bool = False

    def check(self, candidate: bytes) -> bool:
        """Return whether ``candidate`` is the PIN, counting the try."""
        if candidate == self.value:
            self.tries, self.verified = self.max_tries, True
            return True
        self.tries, self.verified = max(self.tries - 1, 0), False
        return False


def cla_class(cla: int) -> tuple[str, int, bool] | None:
    """Return (class, logical channel, secure messaging) of a CLA byte, or None if invalid (§10.1.1)."""
    return _CLA_CLASSES[cla]


def _decode_cla(cla: int) -> tuple[str, int, bool] | None:
    """Return what ``cla_class`` answers for ``cla``, from its bits (TS 102 221 §10.1.1)."""
    kind = PROPRIETARY if cla & 0x80 else INTERINDUSTRY
    if cla & 0x40 == 0:
        if cla & 0x20:
            return None  # 001x xxxx and 101x xxxx (A0 = GSM) are not UICC classes
        return kind, cla & 0x03, bool(cla & 0x0C)
    if cla == 0xFF:
        return None
    return kind, 4 + (cla & 0x0F), bool(cla & 0x20)


_CLA_CLASSES = tuple(_decode_cla(cla) for cla in range(256))


def _valid_pin(data: bytes) -> bool:
    digits = data.rstrip(b"\xff")
    return 4 <= len(digits) <= 8 and digits.isdigit() and b"\xff" not in digits


class Uicc:
    """An emulated UICC personalised with a ``CardProfile``; ``process()`` answers APDUs."""

    def __init__(self, profile: CardProfile, *, handlers: dict[tuple[str, int], Handler] | None = None,
                 t0: bool = True):
        self.profile = profile
        self.t0 = t0
        self.template = template_for(profile)
        self.mf, self.applications = self.template.mf, self.template.applications
        self.contents = self.template.contents(profile)
        self.pins = {
            KEY_REFERENCE[PIN1]: Pin(pin_bytes(profile.pin1), PIN_TRIES, PIN_TRIES, pin_bytes(profile.puk1),
                                     PUK_TRIES, PUK_TRIES, enabled=profile.pin1_enabled),
            KEY_REFERENCE[ADM1]: Pin(profile.adm1, ADM_TRIES, ADM_TRIES),
        }
        self.handlers: dict[tuple[str, int], Handler] = dict(BUILTIN)
        self.secure_messaging: set[tuple[str, int]] = set()
        self.hooks: list[Hook] = []
        for (kind, ins), handler in (handlers or {}).items():
            self.register(kind, ins, handler)
        self.state: dict[str, Any] = {}
        self.last_error: Exception | None = None
        self.channels: dict[int, Channel] = {}
        self.reset()

    # -- the public surface ------------------------------------------------------------------

    def register(self, cla_kind: str, ins: int, handler: Handler, *, secure_messaging: bool = False) -> None:
        """Route commands of class ``cla_kind`` (INTERINDUSTRY/PROPRIETARY) and ``ins`` to ``handler``."""
        if cla_kind not in (INTERINDUSTRY, PROPRIETARY) or not 0 <= ins <= 0xFF:
            raise ProtocolError(f"bad handler key ({cla_kind!r}, {ins!r})")
        self.handlers[(cla_kind, ins)] = handler
        if secure_messaging:
            self.secure_messaging.add((cla_kind, ins))

    def add_hook(self, hook: Hook) -> None:
        """Let ``hook`` see each command on an open channel first (see the module doc)."""
        self.hooks.append(hook)

    def execute(self, channel: "Channel", cmd: CommandApdu) -> Reply:
        """Return the handler's Reply to ``cmd`` on ``channel``: no hooks, no T=0 61xx."""
        cls = _CLA_CLASSES[cmd.cla]
        if cls is None:
            return Reply(b"", SW.CLA_NOT_SUPPORTED)
        handler = self.handlers.get((cls[0], cmd.ins))
        if handler is None:
            return self._missing(cls[0], cmd.ins)
        data, status = self._run(channel, cmd, cls, handler)
        return Reply(data, int(status))

    def reset(self) -> None:
        """Cold reset: only the basic channel, at the MF; PIN verification forgotten."""
        self.channels = {0: Channel(0, self.mf)}
        for pin in self.pins.values():
            pin.verified = False

    def process(self, apdu: bytes) -> bytes:
        """Return the response APDU (data + SW1 SW2) to command ``apdu``; never raises."""
        try:
            cmd = parse_command(apdu)
        except DecodeError:
            return bytes(SW.WRONG_LENGTH)
        except Exception as exc:  # not bytes at all
            self.last_error = exc
            return bytes(SW.TECHNICAL_PROBLEM)
        try:
            return self._dispatch(cmd)
        except Exception as exc:  # a handler bug must not bring the card down
            self.last_error = exc
            return bytes(SW.TECHNICAL_PROBLEM)

    def satisfied(self, condition: str) -> bool:
        """Return whether access condition ALW/PIN1/ADM1/NEV is met now."""
        if condition == ALW:
            return True
        if condition == NEV:
            return False
        pin = self.pins[KEY_REFERENCE[condition]]
        return pin.verified or not pin.enabled

    def content(self, ef: EF) -> bytes | tuple[bytes, ...]:
        """Return what this card holds in ``ef``: its bytes, or its records (a tuple)."""
        return self.contents[ef.slot]

    def fcp(self, f: File) -> bytes:
        """Return the FCP template of ``f`` as SELECT answers it."""
        return fcp(f, self.template.size(f, self.contents), pin1_enabled=self.pins[KEY_REFERENCE[PIN1]].enabled)

    # -- dispatch ------------------------------------------------------------------------------

    def _missing(self, kind: str, ins: int) -> Reply:
        """Return 6E00 when ``ins`` has a handler under the other class only, else 6D00."""
        other = PROPRIETARY if kind == INTERINDUSTRY else INTERINDUSTRY
        return Reply(b"", SW.CLA_NOT_SUPPORTED if (other, ins) in self.handlers else SW.INS_NOT_SUPPORTED)

    def _run(self, channel: Channel, cmd: CommandApdu, cls: tuple[str, int, bool], handler: Handler) -> Reply:
        """Return ``handler``'s Reply to ``cmd`` (of CLA class ``cls``; its SW may be a ``StatusWord``),
        refusing secure messaging it does not take."""
        kind, _, sm = cls
        if sm and (kind, cmd.ins) not in self.secure_messaging:
            return Reply(b"", SW.SM_NOT_SUPPORTED)
        if handler is not get_response:
            channel.pending = b""
        return handler(self, channel, cmd)

    def _dispatch(self, cmd: CommandApdu) -> bytes:
        cls = _CLA_CLASSES[cmd.cla]
        if cls is None:
            return bytes(SW.CLA_NOT_SUPPORTED)
        channel = self.channels.get(cls[1])
        reply = None
        if channel is not None:
            for hook in self.hooks:
                reply = hook(self, channel, cmd)
                if reply is not None:
                    channel.pending = b""
                    break
        if reply is None:
            handler = self.handlers.get((cls[0], cmd.ins))
            if handler is None:
                return response(*self._missing(cls[0], cmd.ins))
            if channel is None:
                return bytes(SW.CHANNEL_NOT_SUPPORTED)
            reply = self._run(channel, cmd, cls, handler)
        data, status = reply
        status = int(status)
        if data and status == 0x9000 and cmd.data and self.t0:  # case 3/4 under T=0: 61xx, §7.3.1.1.5
            channel.pending = bytes(data)
            return bytes((0x61, min(len(data), 256) & 0xFF))  # SW.more_data: 256 (or more) reads 00
        return bytes(data) + status.to_bytes(2, "big")  # apdu.response


# -- helpers shared by the commands ----------------------------------------------------------

def fit_le(cmd: CommandApdu, data: bytes, *, partial_ok: bool) -> Reply:
    """Return ``data`` cut to the command's Le, or 6Cxx when Le cannot be met (see module doc)."""
    le = cmd.le
    if le is None or len(data) == le:
        return Reply(data)
    if cmd.le_is_max and len(data) <= le:
        return Reply(data)
    if le > len(data) or not partial_ok:
        return Reply(b"", SW.wrong_le(len(data)))
    return Reply(data[:le])


def no_le(cmd: CommandApdu) -> bool:
    """Return whether a command that answers no data has no Le, or Le 00 (T=0 sends case 1 with P3 = 00)."""
    return cmd.le is None or cmd.le_is_max


def _select_into(channel: Channel, target: File) -> None:
    if isinstance(target, DF):
        channel.current_df, channel.current_ef = target, None
        if target.aid is not None:
            channel.application = target
    else:
        assert isinstance(target, EF) and target.parent is not None
        channel.current_df, channel.current_ef = target.parent, target
    channel.record = 0


def _by_fid(card: Uicc, channel: Channel, fid: int) -> File | None:
    """Return the file ``fid`` names from the channel's current DF (TS 102 221 §8.4.1)."""
    if fid == MF_FID:
        return card.mf
    if fid == CURRENT_ADF_FID:
        return channel.application
    df = channel.current_df
    if df.fid == fid:
        return df
    found = df.child(fid)
    if found is not None:
        return found
    parent = df.parent
    if parent is not None:
        if parent.fid == fid:
            return parent
        sibling = parent.child(fid)
        if isinstance(sibling, DF):
            return sibling
    return None


def _by_path(card: Uicc, channel: Channel, start: DF, path: bytes) -> File | None:
    fids = [int.from_bytes(path[i:i + 2], "big") for i in range(0, len(path), 2)]
    if start is card.mf and fids and fids[0] == MF_FID:
        fids = fids[1:]
    node: File | None = start
    for fid in fids:
        if not isinstance(node, DF):
            return None
        node = channel.application if fid == CURRENT_ADF_FID and node is card.mf else node.child(fid)
    return node


def _by_aid(card: Uicc, aid: bytes) -> DF | None:
    return next((df for df in card.applications if df.aid and df.aid.startswith(aid)), None)


# -- SELECT, STATUS, GET RESPONSE, MANAGE CHANNEL ----------------------------------------------

def select(card: Uicc, channel: Channel, cmd: CommandApdu) -> Reply:
    """SELECT FILE, TS 102 221 §11.1.1."""
    if cmd.p2 not in (0x00, 0x04, 0x0C):
        return Reply(b"", SW.INCORRECT_P1P2)
    if not cmd.data:
        return Reply(b"", SW.WRONG_LENGTH)
    data = cmd.data
    if cmd.p1 == 0x00:
        if len(data) != 2:
            return Reply(b"", SW.WRONG_LENGTH)
        target = _by_fid(card, channel, int.from_bytes(data, "big"))
    elif cmd.p1 == 0x04:
        if len(data) > 16:
            return Reply(b"", SW.WRONG_DATA)
        target = _by_aid(card, data)
    elif cmd.p1 in (0x08, 0x09):
        if len(data) % 2:
            return Reply(b"", SW.WRONG_LENGTH)
        target = _by_path(card, channel, card.mf if cmd.p1 == 0x08 else channel.current_df, data)
    else:
        return Reply(b"", SW.INCORRECT_P1P2)
    if target is None:
        return Reply(b"", SW.FILE_NOT_FOUND)
    _select_into(channel, target)
    return Reply(b"" if cmd.p2 == 0x0C else card.fcp(target))


def status(card: Uicc, channel: Channel, cmd: CommandApdu) -> Reply:
    """STATUS, TS 102 221 §11.1.2: FCP of the current DF (P2 00), the application's AID (01)."""
    if cmd.p1 not in (0x00, 0x01, 0x02) or cmd.p2 not in (0x00, 0x01, 0x0C):
        return Reply(b"", SW.INCORRECT_P1P2)
    if cmd.data:
        return Reply(b"", SW.WRONG_LENGTH)
    if cmd.p2 == 0x0C:
        return Reply()
    if cmd.p2 == 0x01:
        if channel.application is None or channel.application.aid is None:
            return Reply(b"", SW.REFERENCE_NOT_FOUND)
        return fit_le(cmd, tlv(0x84, channel.application.aid), partial_ok=False)
    return fit_le(cmd, card.fcp(channel.current_df), partial_ok=False)


def get_response(card: Uicc, channel: Channel, cmd: CommandApdu) -> Reply:
    """GET RESPONSE, TS 102 221 §11.1.7: hand out the data a 61xx announced."""
    if cmd.p1 or cmd.p2:
        return Reply(b"", SW.INCORRECT_P1P2)
    if cmd.data or cmd.le is None:
        return Reply(b"", SW.WRONG_LENGTH)
    pending = channel.pending
    if not pending:
        return Reply(b"", SW.CONDITIONS_NOT_SATISFIED)
    le = min(cmd.le, 256)
    if cmd.le_is_max:
        le = min(le, len(pending))
    if le > len(pending):
        return Reply(b"", SW.wrong_le(len(pending)))
    channel.pending = pending[le:]
    if channel.pending:
        return Reply(pending[:le], SW.more_data(min(len(channel.pending), 256)))
    return Reply(pending[:le])


def manage_channel(card: Uicc, channel: Channel, cmd: CommandApdu) -> Reply:
    """MANAGE CHANNEL, TS 102 221 §11.1.17: open (P1 00) or close (P1 80) channels 1-3."""
    if cmd.data:
        return Reply(b"", SW.WRONG_LENGTH)
    if cmd.p1 == 0x80:
        if not no_le(cmd):
            return Reply(b"", SW.WRONG_LENGTH)
        if cmd.p2 == 0 or cmd.p2 not in card.channels:
            return Reply(b"", SW.INCORRECT_P1P2)
        del card.channels[cmd.p2]
        return Reply()
    if cmd.p1 != 0x00:
        return Reply(b"", SW.INCORRECT_P1P2)
    if cmd.p2 == 0:
        if cmd.le is not None and cmd.le != 1 and not cmd.le_is_max:
            return Reply(b"", SW.wrong_le(1))
        free = [n for n in range(1, MAX_CHANNELS) if n not in card.channels]
        if not free:
            return Reply(b"", SW.FUNCTION_NOT_SUPPORTED)
        number = free[0]
    elif cmd.p2 >= MAX_CHANNELS:
        return Reply(b"", SW.FUNCTION_NOT_SUPPORTED)
    elif cmd.p2 in card.channels or not no_le(cmd):
        return Reply(b"", SW.INCORRECT_P1P2 if cmd.p2 in card.channels else SW.WRONG_LENGTH)
    else:
        number = cmd.p2
    if channel.number == 0:
        card.channels[number] = Channel(number, card.mf)
    else:
        card.channels[number] = Channel(number, channel.current_df, channel.current_ef, channel.application,
                                        channel.record)
    return Reply(bytes((number,)) if cmd.p2 == 0 else b"")


# -- READ/UPDATE BINARY and RECORD -------------------------------------------------------------

def _target_ef(channel: Channel, sfi: int, structure: str) -> EF | Reply:
    """Return the EF a command addresses (current EF, or by SFI, which selects it) or an error."""
    if sfi:
        ef = channel.current_df.by_sfi.get(sfi)
        if ef is None:
            return Reply(b"", SW.FILE_NOT_FOUND)
        _select_into(channel, ef)
    else:
        ef = channel.current_ef
        if ef is None:
            return Reply(b"", SW.NO_EF_SELECTED)
    if ef.structure != structure:
        return Reply(b"", SW.INCOMPATIBLE_FILE)
    return ef


def _binary_target(card: Uicc, channel: Channel, cmd: CommandApdu, mode: str) -> tuple[EF, int] | Reply:
    if cmd.p1 & 0x80:
        if cmd.p1 & 0x60 or not cmd.p1 & 0x1F:
            return Reply(b"", SW.INCORRECT_P1P2)
        sfi, offset = cmd.p1 & 0x1F, cmd.p2
    else:
        sfi, offset = 0, (cmd.p1 << 8) | cmd.p2
    ef = _target_ef(channel, sfi, TRANSPARENT)
    if isinstance(ef, Reply):
        return ef
    if not card.satisfied(getattr(ef.access, mode)):
        return Reply(b"", SW.SECURITY_NOT_SATISFIED)
    if offset >= len(card.contents[ef.slot]):
        return Reply(b"", SW.WRONG_P1P2)
    return ef, offset


def read_binary(card: Uicc, channel: Channel, cmd: CommandApdu) -> Reply:
    """READ BINARY, TS 102 221 §11.1.3."""
    if cmd.data or cmd.le is None:
        return Reply(b"", SW.WRONG_LENGTH)
    target = _binary_target(card, channel, cmd, "read")
    if isinstance(target, Reply):
        return target
    ef, offset = target
    return fit_le(cmd, card.contents[ef.slot][offset:offset + cmd.le], partial_ok=True)


def update_binary(card: Uicc, channel: Channel, cmd: CommandApdu) -> Reply:
    """UPDATE BINARY, TS 102 221 §11.1.4."""
    if not cmd.data or not no_le(cmd):
        return Reply(b"", SW.WRONG_LENGTH)
    target = _binary_target(card, channel, cmd, "update")
    if isinstance(target, Reply):
        return target
    ef, offset = target
    if offset + len(cmd.data) > len(card.contents[ef.slot]):
        return Reply(b"", SW.WRONG_LENGTH)
    card.contents.update_binary(ef, offset, cmd.data)
    return Reply()


def _record_target(card: Uicc, channel: Channel, cmd: CommandApdu, mode: str) -> tuple[EF, int] | Reply:
    """Return (EF, record number) for READ/UPDATE RECORD, moving the record pointer as the mode says."""
    how = cmd.p2 & 0x07
    if how not in (0x02, 0x03, 0x04) or (how != 0x04 and cmd.p1):
        return Reply(b"", SW.INCORRECT_P1P2)
    ef = _target_ef(channel, cmd.p2 >> 3, LINEAR_FIXED)
    if isinstance(ef, Reply):
        return ef
    if not card.satisfied(getattr(ef.access, mode)):
        return Reply(b"", SW.SECURITY_NOT_SATISFIED)
    count = ef.record_count
    if how == 0x04:
        number = cmd.p1 or channel.record
    elif how == 0x02:
        number = channel.record + 1
    else:
        number = channel.record - 1 if channel.record else count
    if not 1 <= number <= count:
        return Reply(b"", SW.RECORD_NOT_FOUND)
    if how != 0x04:
        channel.record = number
    return ef, number


def read_record(card: Uicc, channel: Channel, cmd: CommandApdu) -> Reply:
    """READ RECORD, TS 102 221 §11.1.5."""
    if cmd.data or cmd.le is None:
        return Reply(b"", SW.WRONG_LENGTH)
    target = _record_target(card, channel, cmd, "read")
    if isinstance(target, Reply):
        return target
    ef, number = target
    return fit_le(cmd, card.contents[ef.slot][number - 1], partial_ok=False)


def update_record(card: Uicc, channel: Channel, cmd: CommandApdu) -> Reply:
    """UPDATE RECORD, TS 102 221 §11.1.6."""
    if not cmd.data or not no_le(cmd):
        return Reply(b"", SW.WRONG_LENGTH)
    target = _record_target(card, channel, cmd, "update")
    if isinstance(target, Reply):
        return target
    ef, number = target
    if len(cmd.data) != ef.record_size:
        return Reply(b"", SW.WRONG_LENGTH)
    card.contents.update_record(ef, number, cmd.data)
    return Reply()


# -- PIN commands ------------------------------------------------------------------------------

def _pin_command(card: Uicc, cmd: CommandApdu, lengths: tuple[int, ...]) -> Pin | Reply:
    """Return the PIN a VERIFY/CHANGE/DISABLE/ENABLE/UNBLOCK addresses, or the error."""
    if cmd.p1 != 0x00:
        return Reply(b"", SW.INCORRECT_P1P2)
    pin = card.pins.get(cmd.p2)
    if pin is None:
        return Reply(b"", SW.REFERENCE_NOT_FOUND)
    if len(cmd.data) not in lengths or not no_le(cmd):
        return Reply(b"", SW.WRONG_LENGTH)
    return pin


def _try(pin: Pin, candidate: bytes) -> Reply | None:
    """Return the error of checking ``candidate`` (blocked, or wrong with tries left), or None if right."""
    if pin.tries == 0:
        return Reply(b"", SW.AUTH_BLOCKED)
    if pin.check(candidate):
        return None
    return Reply(b"", SW.retries_left(pin.tries))


def verify(card: Uicc, channel: Channel, cmd: CommandApdu) -> Reply:
    """VERIFY PIN, TS 102 221 §11.1.9; no data asks for the number of tries left."""
    pin = _pin_command(card, cmd, (0, 8))
    if isinstance(pin, Reply):
        return pin
    if not cmd.data:
        if pin.tries == 0:
            return Reply(b"", SW.AUTH_BLOCKED)
        return Reply() if pin.verified or not pin.enabled else Reply(b"", SW.retries_left(pin.tries))
    return _try(pin, cmd.data) or Reply()


def change_pin(card: Uicc, channel: Channel, cmd: CommandApdu) -> Reply:
    """CHANGE PIN, TS 102 221 §11.1.10: old PIN (8 bytes) then new PIN (8 bytes)."""
    pin = _pin_command(card, cmd, (16,))
    if isinstance(pin, Reply):
        return pin
    if not _valid_pin(cmd.data[8:]):
        return Reply(b"", SW.WRONG_DATA)
    if not pin.enabled:
        return Reply(b"", SW.REFERENCE_INVALIDATED)
    error = _try(pin, cmd.data[:8])
    if error:
        return error
    pin.value = cmd.data[8:]
    return Reply()


def _enable_or_disable(card: Uicc, cmd: CommandApdu, enable: bool) -> Reply:
    pin = _pin_command(card, cmd, (8,))
    if isinstance(pin, Reply):
        return pin
    if pin.puk is None or pin.enabled == enable:  # ADM1 cannot be disabled
        return Reply(b"", SW.CONDITIONS_NOT_SATISFIED)
    error = _try(pin, cmd.data)
    if error:
        return error
    pin.enabled = enable
    return Reply()


def disable_pin(card: Uicc, channel: Channel, cmd: CommandApdu) -> Reply:
    """DISABLE VERIFICATION REQUIREMENT, TS 102 221 §11.1.11."""
    return _enable_or_disable(card, cmd, enable=False)


def enable_pin(card: Uicc, channel: Channel, cmd: CommandApdu) -> Reply:
    """ENABLE VERIFICATION REQUIREMENT, TS 102 221 §11.1.12."""
    return _enable_or_disable(card, cmd, enable=True)


def unblock_pin(card: Uicc, channel: Channel, cmd: CommandApdu) -> Reply:
    """UNBLOCK PIN, TS 102 221 §11.1.13: PUK (8 bytes) then new PIN; no data asks for PUK tries."""
    pin = _pin_command(card, cmd, (0, 16))
    if isinstance(pin, Reply):
        return pin
    if pin.puk is None:
        return Reply(b"", SW.REFERENCE_NOT_FOUND)
    if pin.puk_tries == 0:
        return Reply(b"", SW.AUTH_BLOCKED)
    if not cmd.data:
        return Reply(b"", SW.retries_left(pin.puk_tries))
    if not _valid_pin(cmd.data[8:]):
        return Reply(b"", SW.WRONG_DATA)
    if cmd.data[:8] != pin.puk:
        pin.puk_tries -= 1
        return Reply(b"", SW.retries_left(pin.puk_tries))
    pin.puk_tries, pin.tries, pin.value, pin.verified = pin.max_puk_tries, pin.max_tries, cmd.data[8:], True
    return Reply()


BUILTIN: dict[tuple[str, int], Handler] = {
    (INTERINDUSTRY, 0xA4): select,
    (PROPRIETARY, 0xF2): status,
    (INTERINDUSTRY, 0xB0): read_binary,
    (INTERINDUSTRY, 0xD6): update_binary,
    (INTERINDUSTRY, 0xB2): read_record,
    (INTERINDUSTRY, 0xDC): update_record,
    (INTERINDUSTRY, 0x20): verify,
    (INTERINDUSTRY, 0x24): change_pin,
    (INTERINDUSTRY, 0x26): disable_pin,
    (INTERINDUSTRY, 0x28): enable_pin,
    (INTERINDUSTRY, 0x2C): unblock_pin,
    (INTERINDUSTRY, 0x70): manage_channel,
    (INTERINDUSTRY, 0xC0): get_response,
}
"""The commands every card answers; ``Uicc.register`` adds the application handlers."""
