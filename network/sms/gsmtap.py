"""SMS and SIM APDUs as GSMTAP payloads, the stack Wireshark dissects down to the TPDU.

Layers, outermost first (all octets, no I/O):
- GSMTAP v2 header, as osmocom's ``gsmtap.h`` defines it (16 octets: version, hdr_len in 32-bit
  words, type, timeslot, ARFCN with the uplink flag, signal dBm, SNR dB, frame number, sub-type,
  antenna, sub-slot, reserved). SMS use type UM on an SDCCH/8; APDUs type SIM.
- LAPDm I frames on SAPI 3 (3GPP TS 44.006 §3): address, control, length indicator with the
  M bit; a layer-3 message longer than N201 = 20 octets is segmented over several frames, each
  filled to 23 octets with 0x2B (§5.2).
- CP-DATA (3GPP TS 24.011 §7.2.1): protocol discriminator SMS (TS 24.007 §11.2.3.1.1) with the
  transaction identifier, message type, CP-User-Data as LV (§8.1.4.1).
- RP-DATA (TS 24.011 §7.3.1): RP-MTI, RP-MR, RP-Originator and RP-Destination addresses as LV
  (§8.2.5.1/§8.2.5.2: length in octets, type of number, BCD digits), RP-User-Data = the TPDU.
- For type SIM: the command/response pair as the T=0 line carries it (ETSI TS 102.221
  §7.3.1.1), see ``sim_packet``.

Choices where the specs leave room:
- Only the one CP-DATA carrying the RP-DATA is written per SMS: no SABM/UA, CP-ACK or RP-ACK
  (the simulation models delivery, not the radio link).
- Each device has its own SDCCH/8 sub-channel (:func:`device_channel`), so a capture tells the
  devices' radio links apart (and LAPDm sequence numbers run per device): device ``i`` uses
  ``j = i mod 6944`` as ARFCN ``1 + j // 56`` (the P-GSM 900 range 1..124, TS 45.005 §2),
  timeslot ``1 + (j mod 56) // 8`` (timeslot 0 carries the BCCH/CCCH) and sub-slot ``j mod 8``;
  devices 6944 apart share a sub-channel. A device-less SmsChannel (``arfcn`` given, timeslot 1,
  sub-slot 0) remains for callers that do not name one. GSMTAP v2 has no field for the
  subscriber's number, and RP-DATA leaves the MS's side empty (RP-OA uplink, RP-DA downlink,
  TS 24.011 §7.3.1), so the MSISDN is not in these layers (the pcap writer puts the device in the
  IP header instead, ``sim/results/pcap.py``).
- The transaction identifier value is 0 with the flag 0 (the side that originates the
  transaction sends it), i.e. octet 0x09 for both directions.
- The frame number of each segment is ``frame_number + 51 * i``: an SDCCH/8 sub-channel gets one
  block per 51-multiframe (TS 45.002 §7 table 3).
"""
from __future__ import annotations

import struct

from dmsim.cards.apdu import parse_command
from dmsim.network.sms.address import Address, encode_address
from dmsim.base.errors import DecodeError, ProtocolError

GSMTAP_VERSION = 0x02
GSMTAP_UDP_PORT = 4729
GSMTAP_HEADER_LEN = 16

GSMTAP_TYPE_UM = 0x01
GSMTAP_TYPE_SIM = 0x04
GSMTAP_CHANNEL_SDCCH8 = 0x08
GSMTAP_ARFCN_F_UPLINK = 0x4000
GSMTAP_ARFCN_MASK = 0x3FFF

GSM_HYPERFRAME = 2715648      # frame numbers run modulo 26 * 51 * 2048 (TS 45.002 §4.3.3)
SDCCH_BLOCK_SPACING = 51      # frames between two blocks of one SDCCH/8 sub-channel

LAPDM_SAPI_SMS = 3            # TS 44.006 §3.3.3
LAPDM_N201_SDCCH = 20         # maximum information octets per frame on SDCCH (§5.8.3)
LAPDM_FRAME_LEN = 23
LAPDM_FILL = 0x2B

PD_SMS = 0x09                 # TS 24.007 §11.2.3.1.1
CP_DATA = 0x01                # TS 24.011 §8.1.3
RP_DATA_MS_TO_NETWORK = 0x00  # TS 24.011 §8.2.2
RP_DATA_NETWORK_TO_MS = 0x01
_CP_USER_DATA_MAX = 249       # TS 24.011 §8.1.4.1
_RP_USER_DATA_MAX = 233       # TS 24.011 §8.2.5.3


def gsmtap_header(gsmtap_type: int, *, sub_type: int = 0, timeslot: int = 0, arfcn: int = 0,
                  uplink: bool = False, frame_number: int = 0, sub_slot: int = 0) -> bytes:
    """Return the 16-octet GSMTAP v2 header; ProtocolError if a field is out of range."""
    if not (0 <= gsmtap_type <= 0xFF and 0 <= sub_type <= 0xFF and 0 <= timeslot <= 7
            and 0 <= arfcn <= GSMTAP_ARFCN_MASK and 0 <= sub_slot <= 0xFF
            and 0 <= frame_number < GSM_HYPERFRAME):
        raise ProtocolError(f"GSMTAP header field out of range: type {gsmtap_type}, sub-type "
                            f"{sub_type}, TS {timeslot}, ARFCN {arfcn}, FN {frame_number}, "
                            f"sub-slot {sub_slot}")
    arfcn_field = arfcn | (GSMTAP_ARFCN_F_UPLINK if uplink else 0)
    return struct.pack(">BBBBHbbIBBBB", GSMTAP_VERSION, GSMTAP_HEADER_LEN // 4, gsmtap_type,
                       timeslot, arfcn_field, 0, 0, frame_number, sub_type, 0, sub_slot, 0)


def rp_address(address: Address | None) -> bytes:
    """Return an RP address element as LV: length 0 for "no address" (None)."""
    if address is None:
        return b"\x00"
    tp_form = encode_address(address)   # semi-octet count, type of address, BCD digits
    return bytes([len(tp_form) - 1]) + tp_form[1:]


def _rp_data(mti: int, mr: int, oa: Address | None, da: Address | None, tpdu: bytes) -> bytes:
    if not 0 <= mr <= 0xFF:
        raise ProtocolError(f"RP-MR {mr} does not fit in an octet")
    if len(tpdu) > _RP_USER_DATA_MAX:
        raise ProtocolError(f"TPDU of {len(tpdu)} octets exceeds RP-User-Data's "
                            f"{_RP_USER_DATA_MAX}")
    return (bytes([mti, mr]) + rp_address(oa) + rp_address(da)
            + bytes([len(tpdu)]) + tpdu)


def rp_data_mt(tpdu: bytes, smsc: Address, *, mr: int = 0) -> bytes:
    """Return an RP-DATA network to MS: RP-OA = the SMSC, RP-DA empty, RP-User-Data = tpdu."""
    return _rp_data(RP_DATA_NETWORK_TO_MS, mr, smsc, None, tpdu)


def rp_data_mo(tpdu: bytes, smsc: Address, *, mr: int = 0) -> bytes:
    """Return an RP-DATA MS to network: RP-OA empty, RP-DA = the SMSC, RP-User-Data = tpdu."""
    return _rp_data(RP_DATA_MS_TO_NETWORK, mr, None, smsc, tpdu)


def cp_data(rpdu: bytes, *, ti: int = 0) -> bytes:
    """Return a CP-DATA DTAP message carrying ``rpdu``; ``ti`` is the TI value 0..6, flag 0."""
    if not 0 <= ti <= 6:
        raise ProtocolError(f"transaction identifier {ti}, expected 0..6")
    if len(rpdu) > _CP_USER_DATA_MAX:
        raise ProtocolError(f"RPDU of {len(rpdu)} octets exceeds CP-User-Data's "
                            f"{_CP_USER_DATA_MAX}")
    return bytes([ti << 4 | PD_SMS, CP_DATA, len(rpdu)]) + rpdu


def lapdm_i_frames(l3: bytes, *, uplink: bool, n_s: int = 0, n_r: int = 0,
                   sapi: int = LAPDM_SAPI_SMS) -> list[bytes]:
    """Return the 23-octet LAPDm I frames that carry ``l3`` (segmented with the M bit).

    The first frame has send sequence number ``n_s``, the next ``n_s + 1`` (modulo 8) and so
    on; all carry ``n_r``. I frames are commands: C/R is 1 from the network, 0 from the MS
    (TS 44.006 §3.3.2).
    """
    if not l3:
        raise ProtocolError("an I frame needs at least one octet of layer-3 data")
    if not (0 <= n_s <= 7 and 0 <= n_r <= 7):
        raise ProtocolError(f"LAPDm N(S) {n_s} / N(R) {n_r}, expected 0..7")
    address = (sapi << 2) | ((0 if uplink else 1) << 1) | 0x01
    chunks = [l3[i:i + LAPDM_N201_SDCCH] for i in range(0, len(l3), LAPDM_N201_SDCCH)]
    frames = []
    for i, chunk in enumerate(chunks):
        more = i < len(chunks) - 1
        control = n_r << 5 | ((n_s + i) % 8) << 1       # P = 0; bit 1 = 0 marks an I frame
        length = (len(chunk) << 2) | (more << 1) | 0x01  # EL = 1: one length octet
        frame = bytes([address, control, length]) + chunk
        frames.append(frame + bytes([LAPDM_FILL]) * (LAPDM_FRAME_LEN - len(frame)))
    return frames


ARFCNS = 124                  # P-GSM 900 ARFCNs 1..124
SDCCH8_PER_ARFCN = 7 * 8      # timeslots 1..7, eight SDCCH/8 sub-slots each


def device_channel(index: int) -> tuple[int, int, int]:
    """Return (ARFCN, timeslot, sub-slot) of device ``index``'s SDCCH/8 (see the module doc)."""
    if index < 0:
        raise ProtocolError(f"device index {index}, expected >= 0")
    j = index % (ARFCNS * SDCCH8_PER_ARFCN)
    return 1 + j // SDCCH8_PER_ARFCN, 1 + (j % SDCCH8_PER_ARFCN) // 8, j % 8


class SmsChannel:
    """One SDCCH/8 sub-channel that carries SMS both ways, with its LAPDm sequence state.

    V(S) of each direction continues from message to message (TS 44.006 §5.5.2), and each
    direction's N(R) is the count of I frames received from the other one, modulo 8.
    Wireshark relies on this: an I frame whose N(S) repeats the previous one on the same
    channel and direction is taken as a retransmission and left out of reassembly.
    """

    def __init__(self, *, arfcn: int = 0, timeslot: int = 1, sub_slot: int = 0) -> None:
        self.arfcn = arfcn
        self.timeslot = timeslot
        self.sub_slot = sub_slot
        self._sent = {False: 0, True: 0}    # uplink? -> I frames sent in that direction

    def sms_packets(self, tpdu: bytes, smsc: Address, *, mt: bool, mr: int = 0,
                    frame_number: int = 0) -> list[bytes]:
        """Return GSMTAP packets (header + LAPDm frame) carrying one SMS as CP-DATA/RP-DATA.

        ``mt`` picks the direction: SMSC to MS (downlink, RP-OA = smsc) or MS to SMSC
        (uplink, RP-DA = smsc).
        """
        uplink = not mt
        rpdu = rp_data_mt(tpdu, smsc, mr=mr) if mt else rp_data_mo(tpdu, smsc, mr=mr)
        frames = lapdm_i_frames(cp_data(rpdu), uplink=uplink, n_s=self._sent[uplink] % 8,
                                n_r=self._sent[not uplink] % 8)
        self._sent[uplink] += len(frames)
        return [gsmtap_header(GSMTAP_TYPE_UM, sub_type=GSMTAP_CHANNEL_SDCCH8,
                              timeslot=self.timeslot, arfcn=self.arfcn, uplink=uplink,
                              sub_slot=self.sub_slot,
                              frame_number=(frame_number + SDCCH_BLOCK_SPACING * i)
                              % GSM_HYPERFRAME)
                + frame for i, frame in enumerate(frames)]


def _t0_command(c_apdu: bytes, response_data: bytes) -> bytes:
    """Return the command as the T=0 line shows it: header, P3, command data (no Le)."""
    try:
        cmd = parse_command(c_apdu)
    except DecodeError:
        return c_apdu       # not a short APDU: left as it is
    if cmd.extended:
        return c_apdu
    head = c_apdu[:4]
    if cmd.data:                         # cases 3 and 4: P3 = Lc
        return head + bytes([len(cmd.data)]) + cmd.data
    if cmd.le is None:                   # case 1
        return head + b"\x00"
    p3 = len(response_data) if response_data else cmd.le
    return head + bytes([p3 % 256])      # case 2: P3 = the octets that came back (00 = 256)


def sim_packet(c_apdu: bytes, r_apdu: bytes) -> bytes:
    """Return a GSMTAP SIM packet: the command as sent over T=0, response data, SW1 SW2.

    This is the order of the octets on the T=0 line (TS 102.221 §7.3.1.1: header with P3,
    data, status), which is how Wireshark's GSM SIM dissector reads a GSMTAP SIM payload.
    A short APDU is mapped to that form: case 1 gets P3 = 0; case 2 gets P3 = the number of
    response data octets (what the card's 6Cxx would make the terminal ask for), or Le when
    no data came back; case 4 loses its Le (on T=0 the data would come via GET RESPONSE).
    An extended or malformed APDU is written unchanged. ProtocolError if the command has
    no header or the response no status word.
    """
    if len(c_apdu) < 4:
        raise ProtocolError(f"command APDU of {len(c_apdu)} octets, expected at least 4")
    if len(r_apdu) < 2:
        raise ProtocolError(f"response APDU of {len(r_apdu)} octets, expected SW1 SW2")
    return gsmtap_header(GSMTAP_TYPE_SIM) + _t0_command(c_apdu, r_apdu[:-2]) + r_apdu
