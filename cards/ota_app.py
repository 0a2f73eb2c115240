"""SMS-PP data download on the emulated card: ENVELOPE (80 C2), 3GPP TS 31.111 §7.1.1, with the
secured packets of ETSI TS 102 225 / 3GPP TS 31.115 run as remote file management scripts
(ETSI TS 102 226 §5.1, compact format).

``register(card)`` plugs the handler into a ``Uicc``. What the card does with an ENVELOPE:

1. P1 P2 other than 00 00 answer 6A86, no data or an extended APDU 6700. Data that is not an
   SMS-PP download (tag D1, envelope.py), or whose destination device is not the UICC (81),
   answer 6A80.
2. An SMS whose TP-PID is not 7F ((U)SIM data download) or whose UDH has no command packet
   identifier (IEI 70) is acknowledged with 90 00 and no data: no toolkit application listens.
   A command packet whose TAR is in BF FF 00 - BF FF FF goes to the LwM2M applet
   (lwm2m_applet.py, seed 004 §7.3) instead of the steps below: never run as a script, no PoR.
3. The TP-UD after the UDH is decoded as a command packet (scp80.decode_command) with the
   profile's OTA keyset of its TAR. A header too short or inconsistent to name a TAR gets no
   PoR (90 00, no data). A refused packet (unknown TAR 09, below the minimum security level
   0A, bad algorithm/key/length 06, ciphering 05, RC/CC 01) or a counter that fails the SPI's
   rule (02 low, 03 high, 04 blocked, scp80.check_counter) is NOT executed.
4. An accepted packet stores its CNTR as the TAR's counter (only in the modes that check
   counters, and before the commands run), then its secured data runs as a command script.
5. The answer: when the SPI asks for a PoR (or "PoR on error" and there was an error: a refused
   packet or a script stopped by a failing command) the response packet, with its UDH
   ``02 71 00`` (scp80.encode_por), as response data with 90 00 (61xx under T=0): TS 31.111 has
   the UICC return the data that the ME sends back in the RP-ACK. Otherwise 90 00, no data.
6. PoR via SMS-SUBMIT (SPI second octet b6, TS 102 225 §5.1.1): the PoR is queued as a proactive
   SEND SHORT MESSAGE (proactive.py, TS 102 223 §6.6.9) and the ENVELOPE answers 91 XX with no
   data (the ME sends a bare RP-ACK, FETCHes and sends the SMS-SUBMIT). The SMS-SUBMIT has
   TP-DA = the TP-OA of the command SMS, TP-PID 7F, TP-DCS F6, TP-UD = the response packet
   with its UDH ``02 71 00``; the command's address TLV is the SC address of the ENVELOPE
   (absent there: absent here, the ME uses its default SC).
7. While a proactive command waits (FETCH or TERMINAL RESPONSE not done) an ENVELOPE answers
   93 00 (toolkit busy, TS 102 221 §10.2.1.2) and is not processed: the ME answers RP-ERROR
   with TP-FCS D4 and the SMSC retries.

The PoR echoes the command's TAR and CNTR (0 if the packet was refused before its CNTR could be
read). It is secured as the SPI's PoR bits ask, with the TAR's keys; when that is impossible
(unknown TAR, an algorithm or key that does not fit) it goes unsecured, so the sender still
learns the status. Its additional data, for an executed script, is the compact RFM response
of TS 102 226 §5.1.2: number of commands executed (1 octet), then, if at least one ran, the SW
of the last one and its response data.

Choices where the specs leave room:
- Minimum security level: the profile has no key for it, so every TAR requires
  ``DEFAULT_MSL`` = 16 (cryptographic checksum, ciphering, counter "higher"), the usual
  setting for RFM (TS 102 226 §8.2.1.3.2.4.1 codes the MSL as the first SPI octet).
- One keyset per TAR: a KIc/KID octet the SPI puts to use must be the keyset's own octet
  (key version and algorithm) or say "algorithm known implicitly"; otherwise the packet is
  refused with 06 after its checksum verified (the codec would run the header's algorithm with
  the TAR's key bytes).
- Scripts run in their own context: the basic channel's slot is swapped for a fresh channel at
  the MF while the script runs (the terminal's channel 0 selection survives), with full access
  to the file system (access domain 00, TS 102 226 §8.2.1.3.2.4.1): PIN1 and ADM1 count as
  verified for the script only. Commands addressed to another logical channel answer 6881 and
  a nested ENVELOPE 6985, without reaching the card.
- Compact script parsing: each command is CLA INS P1 P2 P3; for the outgoing INS of
  ``OUTGOING`` (READ BINARY/RECORD, GET RESPONSE, STATUS, GET DATA) P3 is Le, otherwise P3 is
  Lc and P3 octets of data follow (P3 = 00: a case 1 command). A command cut short by the end
  of the data is still "executed": the card answers it 6700.
- The script stops after the first command whose SW is not 9000, 61xx, 62xx or 63xx (warnings
  and "more data" let it go on), and after 255 commands (the count is one octet).
- The PoR carries the last response whole; one longer than an RP-ACK can hold (a READ BINARY
  of 256 octets) is the sender's problem, not cut here.
- A PoR asked via SMS-SUBMIT that does not fit one SMS-SUBMIT (TP-UD above 140 octets) travels
  in the RP-ACK instead; the RP-ACK of a PoR sent by SMS-SUBMIT carries no data (no response
  packet with status 0B "response data via SMS-SUBMIT"). Concatenated command
  packets are not reassembled (the first segment alone fails its length check: no PoR).
- ``card.state["ota.last"]`` keeps an ``OtaOutcome`` of the last ENVELOPE for traces and tests
  (``por_via_submit``: the PoR went into a SEND SHORT MESSAGE).
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

from dmsim.cards import lwm2m_applet, proactive
from dmsim.cards import sw as SW
from dmsim.cards.apdu import CommandApdu, split_response
from dmsim.cards.envelope import CLA_CAT, DEVICE_UICC, INS_ENVELOPE, SmsPpDownload, parse_envelope
from dmsim.cards.profile import CardProfile
from dmsim.cards.scp80 import (IEI_RESPONSE_PACKET, UDH_RESPONSE, CommandPacket, CounterMode, Integrity, KeyLookup,
                               Keyset, PorMode, ResponseStatus, Spi, check_counter, decode_command, encode_por)
from dmsim.cards.scp80_crypto import is_implicit
from dmsim.cards.uicc import PROPRIETARY, Channel, Reply, Uicc, cla_class
from dmsim.network.sms.tpdu import DCS_8BIT_CLASS2, PID_USIM_DATA_DOWNLOAD, SmsSubmit
from dmsim.network.sms.udh import InformationElement
from dmsim.base.errors import DecodeError, ProtocolError, SecuredPacketError

DEFAULT_MSL = 0x16         # first SPI octet: CC (b2-b1 10), ciphering (b3), counter higher (b5-b4 10)
OUTGOING = frozenset({0xB0, 0xB2, 0xC0, 0xF2, 0xCA})
CONTINUE_SW1 = frozenset({0x90, 0x61, 0x62, 0x63})

STATE_COUNTERS = "ota.counters"
STATE_LAST = "ota.last"
STATE_RUNNING = "ota.running"


@dataclass(frozen=True)
class OtaOutcome:
    """What the last ENVELOPE did: TAR, PoR status (None: no packet), commands run, PoR sent
    (``por_via_submit``: in a SEND SHORT MESSAGE rather than the ENVELOPE's answer)."""

    tar: bytes = b""
    status: int | None = None
    executed: int = 0
    last_sw: int | None = None
    por: bytes = b""
    error: str = ""
    por_via_submit: bool = False


def register(card: Uicc) -> None:
    """Add ENVELOPE (80 C2) to ``card`` and set up the OTA counters from its profile."""
    card.state[STATE_COUNTERS] = {o.tar: int.from_bytes(o.counter, "big") for o in card.profile.ota}
    card.state[STATE_LAST] = OtaOutcome()
    card.state[STATE_RUNNING] = False
    card.register(PROPRIETARY, INS_ENVELOPE, envelope)
    proactive.register(card)


def keys_for_tar(profile: CardProfile) -> KeyLookup:
    """Return the lookup (tar, kic, kid) -> Keyset (None for an unknown TAR) of ``profile``."""
    keysets = {o.tar: Keyset(o.kic, o.kid, o.kic_key, o.kid_key, msl=DEFAULT_MSL) for o in profile.ota}
    return lambda tar, kic, kid: keysets.get(bytes(tar))


def envelope(card: Uicc, channel: Channel, cmd: CommandApdu) -> Reply:
    """ENVELOPE carrying an SMS-PP data download, TS 31.111 §7.1.1 (see the module doc)."""
    if card.state.get(STATE_RUNNING):
        return Reply(b"", SW.CONDITIONS_NOT_SATISFIED)
    if proactive.busy(card):
        return Reply(b"", proactive.SAT_BUSY)
    if cmd.p1 or cmd.p2:
        return Reply(b"", SW.INCORRECT_P1P2)
    if not cmd.data or cmd.extended or len(cmd.data) > 0xFF:
        return Reply(b"", SW.WRONG_LENGTH)
    try:
        download = parse_envelope(bytes([CLA_CAT, INS_ENVELOPE, 0, 0, len(cmd.data)]) + cmd.data)
    except DecodeError as err:
        card.state[STATE_LAST] = OtaOutcome(error=str(err))
        return Reply(b"", SW.WRONG_DATA)
    if download.destination != DEVICE_UICC:
        card.state[STATE_LAST] = OtaOutcome(error=f"destination device {download.destination:#04x}")
        return Reply(b"", SW.WRONG_DATA)
    if download.pid != PID_USIM_DATA_DOWNLOAD or not download.is_command_packet:
        card.state[STATE_LAST] = OtaOutcome(error="not a secured command packet")
        return Reply()
    tar = lwm2m_applet.packet_tar(download.user_data)
    if lwm2m_applet.is_lwm2m_tar(tar):
        card.state[STATE_LAST] = OtaOutcome(tar=tar, error="for the LwM2M applet")
        return lwm2m_applet.sms_pp_download(card, download)
    outcome = run_command_packet(card, download.user_data)
    pending = _queue_por(card, download, outcome.por) if outcome.por_via_submit else None
    if pending is None:
        outcome = replace(outcome, por_via_submit=False)
    card.state[STATE_LAST] = outcome
    return Reply(b"", pending) if pending is not None else Reply(outcome.por)


def _queue_por(card: Uicc, download: SmsPpDownload, por: bytes) -> SW.StatusWord | None:
    """Queue ``por`` (with its UDH) as a SEND SHORT MESSAGE and return the 91 XX to answer.

    None when it does not fit an SMS-SUBMIT: the PoR then goes in the ENVELOPE's answer.
    """
    sms = SmsSubmit(da=download.sms.oa, pid=PID_USIM_DATA_DOWNLOAD, dcs=DCS_8BIT_CLASS2,
                    ies=(InformationElement(IEI_RESPONSE_PACKET, b""),), user_data=por[len(UDH_RESPONSE):])
    try:
        command = proactive.send_short_message(sms.encode(), number=proactive.next_number(card),
                                               sc_address=download.address)
    except ProtocolError:
        return None
    return proactive.queue(card, command)


def run_command_packet(card: Uicc, packet: bytes) -> OtaOutcome:
    """Return the outcome of a command packet (without UDH): checked, maybe run, PoR built."""
    lookup = keys_for_tar(card.profile)
    try:
        command = decode_command(packet, lookup)
    except SecuredPacketError as err:
        spi = err.spi if isinstance(err.spi, Spi) else Spi()
        return _answer(spi, lookup(err.tar, 0, 0), err.tar, err.cntr or 0, err.status, error=err.detail)
    except (DecodeError, ProtocolError) as err:
        return OtaOutcome(error=str(err))
    spi, tar, cntr = command.spi, command.tar, command.cntr
    keys = lookup(tar, command.kic, command.kid)
    if not _octets_match(command, keys):
        return _answer(spi, keys, tar, cntr, ResponseStatus.UNIDENTIFIED_SECURITY_ERROR,
                       error="KIc/KID names another key than the TAR's")
    counters = card.state[STATE_COUNTERS]
    status = check_counter(cntr, counters.get(tar, 0), spi)
    if status != ResponseStatus.POR_OK:
        return _answer(spi, keys, tar, cntr, status, error=f"counter {cntr} refused")
    if spi.counter in (CounterMode.HIGHER, CounterMode.ONE_HIGHER):
        counters[tar] = cntr
    executed, last = run_script(card, command.data)
    last_sw = int.from_bytes(last[:2], "big") if last else None
    return _answer(spi, keys, tar, cntr, ResponseStatus.POR_OK, bytes([executed]) + last,
                   executed=executed, last_sw=last_sw)


def _octets_match(command: CommandPacket, keys: Keyset) -> bool:
    """Return whether the KIc/KID octets the SPI uses are the keyset's (or say "implicit")."""
    used = ((command.spi.ciphered, command.kic, keys.kic_byte),
            (command.spi.integrity != Integrity.NONE, command.kid, keys.kid_byte))
    return all(not in_use or is_implicit(octet) or octet == own for in_use, octet, own in used)


def _answer(spi: Spi, keys: Keyset | None, tar: bytes, cntr: int, status: int, data: bytes = b"", *,
            executed: int = 0, last_sw: int | None = None, error: str = "") -> OtaOutcome:
    """Return the outcome with its PoR (empty when the SPI does not ask for one)."""
    failed = status != ResponseStatus.POR_OK or (last_sw is not None and last_sw >> 8 not in CONTINUE_SW1)
    wanted = spi.por == PorMode.REQUIRED or (spi.por == PorMode.ON_ERROR and failed)
    por = _por(spi, keys, tar, cntr, status, data) if wanted else b""
    return OtaOutcome(bytes(tar), int(status), executed, last_sw, por, error, bool(por) and spi.por_via_submit)


def _por(spi: Spi, keys: Keyset | None, tar: bytes, cntr: int, status: int, data: bytes) -> bytes:
    """Return the PoR secured as ``spi`` asks, or unsecured when the keys cannot do it."""
    try:
        return encode_por(spi, tar, cntr, status, data, keys, with_udh=True)
    except ProtocolError:
        plain = replace(spi, por_integrity=Integrity.NONE, por_ciphered=False)
        return encode_por(plain, tar, cntr, status, data, None, with_udh=True)


def split_script(data: bytes) -> Iterator[bytes]:
    """Yield the command APDUs of a compact RFM script (the last may be cut short)."""
    pos = 0
    while pos < len(data):
        header, p3 = data[pos:pos + 4], data[pos + 4:pos + 5]
        if len(header) < 4 or not p3:
            yield bytes(data[pos:])
            return
        if header[1] in OUTGOING:
            yield bytes(header + p3)
            pos += 5
        elif p3[0] == 0:
            yield bytes(header)
            pos += 5
        else:
            end = pos + 5 + p3[0]
            yield bytes(data[pos:end])
            pos = end


@contextmanager
def rfm_context(card: Uicc) -> Iterator[None]:
    """Run the block with a fresh basic channel at the MF and full file access, then restore."""
    saved_channel = card.channels.get(0)
    saved_pins = {ref: pin.verified for ref, pin in card.pins.items()}
    card.channels[0] = Channel(0, card.mf)
    for pin in card.pins.values():
        pin.verified = True
    card.state[STATE_RUNNING] = True
    try:
        yield
    finally:
        card.state[STATE_RUNNING] = False
        if saved_channel is not None:
            card.channels[0] = saved_channel
        for ref, verified in saved_pins.items():
            card.pins[ref].verified = verified


def _script_command(card: Uicc, apdu: bytes) -> bytes:
    cls = cla_class(apdu[0]) if apdu else None
    if cls is not None and cls[1] != 0:
        return bytes(SW.CHANNEL_NOT_SUPPORTED)
    return card.process(apdu)


def run_script(card: Uicc, data: bytes) -> tuple[int, bytes]:
    """Return (commands executed, SW + response data of the last one) of a compact script."""
    executed, last = 0, b""
    with rfm_context(card):
        for apdu in split_script(data):
            response = _script_command(card, apdu)
            executed += 1
            body, sw = split_response(response)
            last = sw.to_bytes(2, "big") + body
            if sw >> 8 not in CONTINUE_SW1 or executed == 0xFF:
                break
    return executed, last
