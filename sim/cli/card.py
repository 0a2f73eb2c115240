"""``dmsim card``: serve an emulated UICC to pcscd, and probe any card a PC/SC reader holds.

``card serve`` personalises a card from a profile (cards/profile.py) and shows it to pcscd
through vsmartcard's vpcd (sim/real/vpcd.py): any PC/SC tool then sees it in reader "Virtual PCD
00 00" (port 35963; 35964 is "Virtual PCD 00 01"). ``card probe`` is the device's host code
(devices/card_host.py) over PC/SC: ICCID and IMSI (TS 102 221 §13.2, TS 31.102 §4.2.2),
AUTHENTICATE (TS 31.102 §7.1.2.1) when RAND and AUTN are given, and the DM Bootstrap read inside
an SCP03 channel (OMA-TS-DM_Security Appendix H) when the SCP03 keys are given.

Conventions (the command line in the README): readable output, or one JSON object with ``--json`` (snake_case
keys, bytes as lowercase hex). Exit 2 on bad input (a profile error with its file and line, hex
that does not parse, wrong lengths), 1 when the card refuses a command or cannot be reached (the
JSON still holds what was read, and ``error``).

Choices: a card object without an ``atr`` is served with ``DEFAULT_ATR`` (T=0, no historical
bytes); ``--wait`` retries until the reader holds a card that answers SELECT MF. ``card serve``
gives up when vpcd cannot be reached within ``--timeout`` seconds (default 10; 0 waits for
ever): one line on stderr and exit 1, instead of waiting silently for a pcscd that is not there.
"""
from __future__ import annotations

import json
import signal
import sys
import threading

import click

from dmsim.base.errors import DmsimError
from dmsim.sim.cli.toolbox import ParseFailure, format_table, parse_hex, parse_host_port

VPCD_DEFAULT = "127.0.0.1:35963"
DEFAULT_ATR = bytes.fromhex("3b021450")
SELECT_MF = bytes.fromhex("00a4000c023f00")


def build_card(profile):
    """Return the emulated card of ``profile``: cards/emulated.py's when present, else a UICC
    with the SCP03 application (cards/gp_app.py)."""
    try:
        from dmsim.cards.emulated import make_card
    except ImportError:
        from dmsim.cards import gp_app
        from dmsim.cards.uicc import Uicc
        card = Uicc(profile)
        gp_app.register(card)
        return card
    return make_card(profile)


@click.group()
def card() -> None:
    """Serve an emulated UICC to pcscd, or probe a card in a PC/SC reader."""


@card.command("serve")
@click.option("--profile", "profile_path", required=True, type=click.Path(dir_okay=False),
              help="Card profile (YAML, see cards/profiles/example.yaml).")
@click.option("--vpcd", "vpcd_addr", default=VPCD_DEFAULT, show_default=True,
              help="Where pcscd's vpcd driver listens (HOST:PORT).")
@click.option("--timeout", type=click.FloatRange(0), default=10.0, show_default=True, metavar="SECONDS",
              help="Give up (exit 1) when vpcd cannot be reached for this long; 0 waits for ever.")
def serve(profile_path: str, vpcd_addr: str, timeout: float) -> None:
    """Show the card of a profile to pcscd as a card in a vpcd reader, until Ctrl-C."""
    from dmsim.cards.profile import load_profile
    from dmsim.sim.real.vpcd import VPCD_PORT, VpcdBridge
    host, port = parse_host_port(vpcd_addr, "--vpcd", listen=False)
    try:
        profile = load_profile(profile_path)
    except DmsimError as exc:
        raise ParseFailure(str(exc)) from None
    uicc = build_card(profile)
    if not getattr(uicc, "atr", b""):
        uicc.atr = DEFAULT_ATR
    bridge = VpcdBridge(uicc, host, port, give_up_after=timeout or None)
    # The bridge runs in a thread: a signal handler calling stop() on the thread that holds the
    # bridge's lock would deadlock. The handlers go in before the start line is printed, so that
    # a Ctrl-C right after it still stops cleanly.
    thread = threading.Thread(target=bridge.serve_forever, name="vpcd-bridge", daemon=True)
    previous = {sig: signal.signal(sig, lambda signum, frame: bridge.stop()) for sig in (signal.SIGINT, signal.SIGTERM)}
    index = port - VPCD_PORT
    click.echo(json.dumps({"vpcd": f"{host}:{port}",
                           "reader": f"Virtual PCD 00 {index:02d}" if 0 <= index < 100 else None,
                           "atr": bytes(uicc.atr).hex(), "iccid": profile.iccid, "imsi": profile.imsi,
                           "scp03": profile.scp03 is not None, "dm_bootstrap": profile.dm_bootstrap is not None}))
    sys.stdout.flush()
    thread.start()
    try:
        while thread.is_alive():
            thread.join(0.2)
    finally:
        bridge.stop()
        thread.join(5)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if bridge.failure:
        click.echo(f"error: {bridge.failure}", err=True)
        sys.exit(1)


def _bytes(value: str | None, option: str, length: int | None = None) -> bytes | None:
    """Return the bytes of a hex option (None if absent); exit 2 if it is not ``length`` bytes."""
    if value is None:
        return None
    data = parse_hex(value, option)
    if length is not None and len(data) != length:
        raise ParseFailure(f"{option}: {len(data)} bytes (expected {length})")
    return data


class _ByteParam(click.ParamType):
    """An octet written in decimal or with a 0x prefix, as card profiles write KVNs (0x30)."""

    name = "byte"

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        try:
            number = int(str(value), 0)
        except ValueError:
            self.fail(f"{value!r} is not a number (decimal or 0x..)", param, ctx)
        if not 0 <= number <= 255:
            self.fail(f"{value!r} is not an octet (0..255)", param, ctx)
        return number


_BYTE = _ByteParam()


def _scp03_keys(value: str | None, kvn: int):
    """Return the Scp03Keys of ``ENC:MAC:DEK`` (hex), or None; exit 2 on bad input."""
    if value is None:
        return None
    from dmsim.cards.scp03 import Scp03Error, Scp03Keys
    parts = value.split(":")
    if len(parts) != 3:
        raise ParseFailure(f"--scp03-keys: {len(parts)} part(s) (expected ENC:MAC:DEK, hex)")
    enc, mac, dek = (parse_hex(p, f"--scp03-keys {name}") for p, name in zip(parts, ("ENC", "MAC", "DEK")))
    try:
        return Scp03Keys(enc, mac, dek, kvn)
    except Scp03Error as exc:
        raise ParseFailure(f"--scp03-keys: {exc}") from None


def _show(result: dict, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(result, sort_keys=True))
    else:
        click.echo(format_table(result))


@card.command("probe")
@click.option("--reader", default="0", show_default=True, help="Reader index or name (prefix).")
@click.option("--pin", help="PIN1 digits, verified before reading the IMSI and AUTHENTICATE.")
@click.option("--rand", help="RAND (16 bytes hex): run AUTHENTICATE (needs --autn).")
@click.option("--autn", help="AUTN (16 bytes hex).")
@click.option("--scp03-keys", "scp03_keys", metavar="ENC:MAC:DEK",
              help="SCP03 static keys (hex): read the DM Bootstrap inside a secure channel.")
@click.option("--kvn", type=_BYTE, default="0", show_default=True,
              help="Key version number for INITIALIZE UPDATE, decimal or 0x.. (0: the card's default key set).")
@click.option("--security-level", default="33", show_default=True,
              help="EXTERNAL AUTHENTICATE P1, hex (01, 03, 11, 13, 33).")
@click.option("--wait", type=click.FloatRange(0), default=0.0, show_default=True,
              help="Seconds to wait for the reader to hold a card.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def probe(reader: str, pin: str | None, rand: str | None, autn: str | None, scp03_keys: str | None, kvn: int,
          security_level: str, wait: float, as_json: bool) -> None:
    """Read ICCID and IMSI; AUTHENTICATE with RAND/AUTN; the DM Bootstrap over SCP03 with keys."""
    from dmsim.devices import card_host
    rand_b, autn_b = _bytes(rand, "--rand", 16), _bytes(autn, "--autn", 16)
    if (rand_b is None) != (autn_b is None):
        raise ParseFailure("--rand and --autn go together")
    if pin is not None and not (pin.isdigit() and 4 <= len(pin) <= 8):
        raise ParseFailure("--pin: expected 4 to 8 digits")
    level = _bytes(security_level, "--security-level", 1)[0]
    keys = _scp03_keys(scp03_keys, kvn)
    if keys is not None and level not in (0x01, 0x03, 0x11, 0x13, 0x33):
        raise ParseFailure(f"--security-level {level:02x}: expected 01, 03, 11, 13 or 33")
    reader_id: int | str = int(reader) if reader.isdigit() else reader
    result: dict = {}
    try:
        from dmsim.sim.real.pcsc_link import PcscLink, wait_for_card
        link = wait_for_card(reader_id, wait, SELECT_MF) if wait else PcscLink(reader_id)
        with link:
            result.update(reader=link.reader_name, protocol=link.active_protocol, atr=link.atr.hex())
            result["iccid"] = card_host.read_iccid(link)
            result["imsi"] = card_host.read_imsi(link, pin=pin)
            if rand_b is not None:
                result["auth"] = card_host.authenticate(link, rand_b, autn_b, pin=pin).to_dict()
            if keys is not None:
                data = card_host.read_dm_bootstrap(link, keys, security_level=level)
                result["scp03_security_level"] = f"{level:02x}"
                result["dm_bootstrap"] = data.hex()
    except DmsimError as exc:
        result["error"] = str(exc)
        if as_json:
            _show(result, True)
        else:
            if len(result) > 1:
                _show({k: v for k, v in result.items() if k != "error"}, False)
            click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    _show(result, as_json)
