"""Step 1b for a ``gba_ub: true`` device: GBA bootstrapping over Ub (3GPP TS 33.220 §4.5.2,
TS 24.109 §4, RFC 3310 HTTP Digest AKAv1-MD5) against the BSF, right after power-on.

The ME drives ``network/gba/ub_client.UbClient`` over the replica's Ub transport
(``replica.ub``, ``components.bsf``: the simulated BSF agent over the ``ip`` links, or a real
``dmsim bsf serve`` over real sockets): the first GET names the IMPI, the BSF's 401 carries
RAND || AUTN in the nonce, the device's card runs the AKA with real APDUs (each charged one
``components.card.apdu_time`` sample through ``replica.cards.run``), the ME answers with the
digest response (password RES) and checks the 200 OK's ``rspauth`` and reads the B-TID and the
key lifetime.

- GBA_U card (``gba_uicc: u``): AUTHENTICATE P2 84 in bootstrapping mode 'DD'
  (``ub_client.card_gba_u_aka``): RES comes back, Ks = CK || IK stays in the UICC.
- GBA_ME card (``gba_uicc: me``): AUTHENTICATE in 3G context (``devices/gba_me.card_gba_me_ub``):
  the ME keeps Ks = CK || IK.
- A synchronisation failure (the card's SQN is ahead of the HSS's): the card's AUTS goes back to
  the BSF in the ``auts`` parameter with an empty password (RFC 3310 §3.4, TS 24.109 §4.5); the
  BSF resynchronises the HSS and challenges again, and the card runs the AKA on the new AV.

Each request waits ``client.request_timeout`` and is resent up to ``client.request_retries``
times (each resend counts in ``ip_retries``). A resent first request gets the BSF's pending
challenge again; a resent answer whose 200 was lost gets a new challenge (the BSF dropped the
old nonce), which the device simply answers again (at most ``UbClient.max_challenges``).

Times recorded: ``t_ub_start`` (the first request leaves) and ``t_ub_ok`` (the B-TID is held).
The device keeps the result in ``dev.ub`` (``UbResult``: B-TID, lifetime, RAND and, for GBA_ME,
Ks) for a later Ua with a NAF; nothing uses it yet (the 3GPP_GBA DM bootstrap is defined over GBA
Push only, OMA-TS-DM_Security §5.10.2.4). Failures end the device's life with ``ub_<reason>``:
``ub_timeout`` (no answer after every resend), ``ub_refused`` (the BSF answered 403: unknown
subscriber, wrong response, refused resynchronisation), ``ub_unauthenticated`` (AUTN's MAC or
``rspauth`` did not verify: the BSF was not authenticated), ``ub_protocol`` (a malformed or
unexpected answer, too many challenges) and ``ub_card_error``. The BSF agent counts every
outcome (``summary.json`` network ``gba.ub``).
"""
from __future__ import annotations

from dmsim.base.errors import AuthenticationError, DmsimError, ProtocolError
from dmsim.cards.profile import default_impi
from dmsim.devices.gba_me import card_gba_me_ub
from dmsim.network.dm.http_binding import decode
from dmsim.network.gba import digest_aka as dg
from dmsim.network.gba.ub_client import UbClient, card_gba_u_aka

MNC_LENGTH = 2  # the fleet's test PLMN 001 01 (sim/model/fleet.py), as gba_push.py


def wants_ub(dev) -> bool:
    """Return True when the device's profile asks for Ub bootstrapping."""
    return bool(dev.ident.profile.get("gba_ub", False))


def gba_ub(dev):
    """SimPy generator: the whole step (see the module doc); return "" or ``ub_<reason>``."""
    if not wants_ub(dev):
        return ""
    replica = dev.replica
    env, ub = replica.env, replica.ub
    spec = replica.data["client"]
    timeout, retries = spec["request_timeout"], spec["request_retries"]
    uicc_u = dev.ident.profile.get("gba_uicc", "u") == "u"
    outcomes: dict[tuple[bytes, bytes], object] = {}

    def aka(rand: bytes, autn: bytes):
        try:
            return outcomes.pop((rand, autn))
        except KeyError:
            raise ProtocolError("Ub: a challenge the card did not see") from None

    client = UbClient(default_impi(dev.ident.imsi, MNC_LENGTH), ub.host, aka, replica.device_rng.randbytes,
                      uri=ub.uri)
    dev.t_ub_start = env.now
    reason = ""
    try:
        request = client.first_request()
        while request is not None:
            response = None
            for attempt in range(retries + 1):
                if attempt:
                    dev.ip_retries += 1
                response = yield from ub.exchange(dev, request, timeout)
                if response is not None:
                    break
            if response is None:
                reason = "timeout"
                break
            msg = decode(response)
            if msg.start == "403":
                reason = "refused"
                break
            if msg.start == "401":
                challenge = _challenge(msg.headers.get("www-authenticate", ""))
                if challenge is not None:
                    try:
                        outcomes[challenge] = yield from replica.cards.run(dev.ident.index,
                                                                           _card_aka(challenge, uicc_u))
                    except (DmsimError, KeyError):
                        reason = "card_error"
                        break
            request = client.receive(response)
    except AuthenticationError:
        reason = "unauthenticated"
    except DmsimError:  # DecodeError, ProtocolError: malformed or unexpected answers
        reason = "protocol"
    finally:
        ub.closed(dev)
    if not reason and client.result is None:
        reason = "protocol"
    replica.agents["bsf"].ub_outcome(reason)
    if reason:
        return f"ub_{reason}"
    dev.ub = client.result
    dev.t_ub_ok = env.now
    return ""


def _challenge(header: str) -> tuple[bytes, bytes] | None:
    """Return (RAND, AUTN) of a Digest AKAv1-MD5 challenge, or None when it is malformed (the
    client then refuses it with the precise error)."""
    try:
        _scheme, params = dg.parse_challenge_params(header)
        rand, autn, _ = dg.split_nonce(params["nonce"])
    except (DmsimError, KeyError, ValueError):
        return None
    return rand, autn


def _card_aka(challenge: tuple[bytes, bytes], uicc_u: bool):
    """The card operation of one challenge: GBA_U bootstrapping mode, or 3G AKA for GBA_ME."""
    rand, autn = challenge

    def run(link):
        aka = card_gba_u_aka(link.transmit) if uicc_u else card_gba_me_ub(link)
        return aka(rand, autn)
    return run
