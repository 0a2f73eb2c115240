"""The card's SCP03 secure channel on the PKCS#15 application: OMA-TS-DM_Security Appendix H.

Appendix H (with §8.1 "Smartcard bootstrap"): the device selects the PKCS#15 application that
holds the DM Bootstrap, opens a GlobalPlatform SCP03 channel on it (INITIALIZE UPDATE, CLA
80-83 naming the logical channel, then EXTERNAL AUTHENTICATE with P1 = 33: C-MAC, C-DECRYPTION,
R-MAC, R-ENCRYPTION), then reads EF_ODF -> EF_DODF -> the bootstrap file (Appendix G) with
every command wrapped. The SCP03 arithmetic is cards/scp03.py (GPC 2.3 Amendment D); this module
plugs it into the UICC engine (cards/uicc.py):

- INITIALIZE UPDATE (80 50) and EXTERNAL AUTHENTICATE (84 82) on a channel; the ``Scp03Card``
  lives in that channel's ``context`` (``SESSION``), so closing the channel or a reset ends it.
- A command hook: a command with the CLA's secure messaging bit on such a channel is unwrapped,
  the plain command runs through the engine (``Uicc.execute``) and its response is wrapped.

Choices where the specs leave room:
- INITIALIZE UPDATE answers 6985 (conditions of use not satisfied) when the channel's selected
  application is not the PKCS#15 application, and 6A88 (referenced data not found) when the
  profile has no SCP03 key set.
- The card challenge is pseudo-random (i = 70: pseudo-random challenge, R-MAC and R-ENCRYPTION
  supported), derived from the PKCS#15 AID and a sequence counter kept card-wide in
  ``card.state`` (it survives resets and channels, as a Security Domain's counter does). Key
  diversification data is ten zero bytes.
- A wrapped command may use the ISO class (04-07, 64-6F) or GlobalPlatform's proprietary one
  (84-87, E0-EF). The plain command of a proprietary CLA whose INS only exists in the ISO class
  (SELECT, READ BINARY, ...) runs with b8 cleared (unwrapped 80 -> 00, C1 -> 41): same channel,
  ISO class.
- While a session is open, any plain command on its channel is refused with 6982 and ends the
  session (Scp03Card's rule, whatever the security level), except GET RESPONSE (T=0 transport,
  which fetches wrapped responses), MANAGE CHANNEL, and SELECT by DF name: selecting an
  application (the same one again included) deselects the current one, and GlobalPlatform ends
  a Secure Channel Session when its application is deselected; the SELECT then runs as usual.
  A bad C-MAC, bad padding or a secured command without a session: 6982/6988 and the session
  ends (cards/scp03.py). A secured command on a channel that never had a session is
  6982 too (no secure channel), unless its handler was registered with ``secure_messaging=True``
  (it then deals with its own CLA).
- Without a session, plain commands to the PKCS#15 application pass (Appendix H: the channel
  SHOULD be used). ``register(card, require_secure_channel=True)`` refuses plain READ/UPDATE
  BINARY/RECORD of the PKCS#15 application's files with 6982 instead.
"""
from __future__ import annotations

from functools import partial

from dmsim.cards import sw as SW
from dmsim.cards.apdu import CommandApdu, parse_command, response, split_response
from dmsim.cards.scp03 import Scp03Card, Scp03Keys, SecureChannelError, sm_indication
from dmsim.cards.uicc import INTERINDUSTRY, PROPRIETARY, Channel, Reply, Uicc, cla_class
from dmsim.cards.uicc_files import PKCS15_AID

SESSION = "scp03"                      # channel.context key of the channel's Scp03Card
COUNTER = "scp03.sequence_counter"     # card.state key of the next INITIALIZE UPDATE's counter
REGISTERED = "gp_app.registered"
I_PARAM = 0x70
INS_INITIALIZE_UPDATE, INS_EXTERNAL_AUTHENTICATE = 0x50, 0x82
INS_GET_RESPONSE, INS_MANAGE_CHANNEL = 0xC0, 0x70
PASS_THROUGH = frozenset({(PROPRIETARY, INS_INITIALIZE_UPDATE), (PROPRIETARY, INS_EXTERNAL_AUTHENTICATE),
                          (INTERINDUSTRY, INS_GET_RESPONSE), (INTERINDUSTRY, INS_MANAGE_CHANNEL)})
READ_UPDATE = frozenset({0xB0, 0xD6, 0xB2, 0xDC})


def register(card: Uicc, *, require_secure_channel: bool = False) -> None:
    """Add INITIALIZE UPDATE, EXTERNAL AUTHENTICATE and the SCP03 command hook to ``card`` (once)."""
    if card.state.get(REGISTERED):
        return
    card.state[REGISTERED] = True
    card.register(PROPRIETARY, INS_INITIALIZE_UPDATE, initialize_update)
    card.register(PROPRIETARY, INS_EXTERNAL_AUTHENTICATE, external_authenticate, secure_messaging=True)
    card.add_hook(partial(secure_messaging, require_secure_channel=require_secure_channel))


def _on_pkcs15(channel: Channel) -> bool:
    return channel.application is not None and channel.application.aid == PKCS15_AID


def _in_pkcs15(channel: Channel) -> bool:
    """Return whether the channel's current DF is the PKCS#15 ADF or under it."""
    df = channel.current_df
    while df is not None and df.aid is None:
        df = df.parent
    return df is not None and df.aid == PKCS15_AID


def _reply(resp: bytes) -> Reply:
    data, status = split_response(resp)
    return Reply(data, status)


def initialize_update(card: Uicc, channel: Channel, cmd: CommandApdu) -> Reply:
    """INITIALIZE UPDATE (GPC Amd D §7.1.1) on the channel's PKCS#15 application."""
    if not _on_pkcs15(channel):
        return Reply(b"", SW.CONDITIONS_NOT_SATISFIED)
    keys = card.profile.scp03
    if keys is None:
        return Reply(b"", SW.REFERENCE_NOT_FOUND)
    scp = channel.context.get(SESSION)
    if scp is None:
        scp = Scp03Card(Scp03Keys(keys.enc, keys.mac, keys.dek, keys.kvn), i_param=I_PARAM, aid=PKCS15_AID)
        channel.context[SESSION] = scp
    scp.sequence_counter = card.state.get(COUNTER, 0)
    resp = scp.initialize_update(cmd.to_bytes())
    card.state[COUNTER] = scp.sequence_counter
    return _reply(resp)


def external_authenticate(card: Uicc, channel: Channel, cmd: CommandApdu) -> Reply:
    """EXTERNAL AUTHENTICATE (GPC Amd D §7.1.2): 9000 opens the session at level P1."""
    scp = channel.context.get(SESSION)
    if scp is None:
        return Reply(b"", SW.CONDITIONS_NOT_SATISFIED)
    return _reply(scp.external_authenticate(cmd.to_bytes()))


def _selects_application(cmd: CommandApdu) -> bool:
    return cmd.ins == 0xA4 and cmd.p1 == 0x04 and not cmd.cla & 0x80


def _plain_class(card: Uicc, cmd: CommandApdu) -> CommandApdu:
    """Return ``cmd`` in the ISO class when its proprietary CLA has no handler for its INS."""
    handlers = card.handlers
    if cmd.cla & 0x80 and (PROPRIETARY, cmd.ins) not in handlers and (INTERINDUSTRY, cmd.ins) in handlers:
        return cmd._replace(cla=cmd.cla & 0x7F)
    return cmd


def secure_messaging(card: Uicc, channel: Channel, cmd: CommandApdu, *,
                     require_secure_channel: bool = False) -> Reply | None:
    """Return the wrapped answer to a secured command, a refusal, or None to let the engine go on."""
    secured = bool(cmd.cla & sm_indication(cmd.cla))
    scp: Scp03Card | None = channel.context.get(SESSION)
    if scp is None and not secured and not require_secure_channel:
        return None  # a plain command, no session: nothing to unwrap, close or refuse
    kind, _, _ = cla_class(cmd.cla) or (None, 0, False)
    if (kind, cmd.ins) in PASS_THROUGH or (kind, cmd.ins) in card.secure_messaging:
        return None
    if scp is None and secured:
        return Reply(b"", SW.SECURITY_NOT_SATISFIED)
    if scp is not None and not secured and (scp.security_level == 0 or _selects_application(cmd)):
        scp.close()  # ends the session, or aborts a pending authentication
        scp = None
    if scp is None:
        if require_secure_channel and _in_pkcs15(channel) and cmd.ins in READ_UPDATE:
            return Reply(b"", SW.SECURITY_NOT_SATISFIED)
        return None
    try:
        plain = scp.unwrap(cmd.to_bytes())
    except SecureChannelError as exc:
        return Reply(b"", exc.sw)
    data, status = card.execute(channel, _plain_class(card, parse_command(plain)))
    return _reply(scp.wrap(response(data, status)))
