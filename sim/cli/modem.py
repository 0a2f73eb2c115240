"""``dmsim modem serve``: a virtual AT modem (sim/real/virtual_modem.py) on a pseudo-terminal.

Any serial-port program (sim/real/modem_at.py, minicom, a real device's modem code) can open the
pty as if it were a USB modem: AT commands of 3GPP TS 27.007 / TS 27.005 in PDU mode, AT+CSIM
to the emulated card of ``--profile`` (cards/profile.py), and AT+CMGS submissions logged.

Output (the command-line conventions of the README): one JSON object when the pty is ready,
``{"pty": PATH, "link": PATH|null, "imsi": IMSI|null}``, then one JSON line per submitted SMS:
``{"event": "submit", "mr": N, "sca": HEX, "tpdu": HEX, "da": "+4912345"}`` (``error`` in
place of ``da`` when the TPDU does not decode). Ctrl-C (or SIGTERM) stops, exit 0. Exit 2 on bad
input: a profile that does not load, a ``--link`` path that exists and is not a symlink.

Choices: ``--link`` replaces an existing symlink (a previous run's), and is removed on exit if it
still points to this run's pty; TP-MR counts from 0 (mod 256).
"""
from __future__ import annotations

import itertools
import json
import os
import signal
import sys
import threading

import click

from dmsim.base.errors import DmsimError
from dmsim.sim.cli.toolbox import ParseFailure


@click.group()
def modem() -> None:
    """A virtual AT modem (TS 27.005 PDU mode, AT+CSIM) on a pseudo-terminal."""


def _make_link(pty: str, link: str) -> None:
    """Point the symlink ``link`` at ``pty``; exit 2 if ``link`` is something else."""
    if os.path.lexists(link):
        if not os.path.islink(link):
            raise ParseFailure(f"--link {link}: exists and is not a symlink")
        os.unlink(link)
    try:
        os.symlink(pty, link)
    except OSError as exc:
        raise ParseFailure(f"--link {link}: {exc.strerror or exc}") from None


def _submit_logger():
    """Return a submit handler that numbers each SMS-SUBMIT (TP-MR from 0) and prints it as a JSON line."""
    from dmsim.network.sms.tpdu import decode_tpdu
    counter = itertools.count()

    def submit(tpdu: bytes, sca: bytes) -> int:
        mr = next(counter) & 0xFF
        record = {"event": "submit", "mr": mr, "sca": sca.hex(), "tpdu": tpdu.hex()}
        try:
            record["da"] = str(decode_tpdu(tpdu, mt=False).da)
        except DmsimError as exc:
            record["error"] = str(exc)
        click.echo(json.dumps(record))
        sys.stdout.flush()
        return mr

    return submit


@modem.command("serve")
@click.option("--link", "link", type=click.Path(dir_okay=False), help="Also reach the pty at this symlink.")
@click.option("--profile", "profile_path", type=click.Path(dir_okay=False),
              help="Card profile (YAML) answering AT+CSIM; without it the modem has no SIM.")
@click.option("--echo", is_flag=True, help="Start with command echo on (as after ATZ on many modems).")
@click.option("--delay", type=click.FloatRange(0, 10), default=0.0, show_default=True,
              help="Seconds before each answer (a slow modem).")
@click.option("--msisdn", metavar="DIGITS",
              help="The SIM's own number: an SMS the host sends to it comes back as +CMT (a loopback "
                   "network, for components.modem: serial in scenarios).")
def serve(link: str | None, profile_path: str | None, echo: bool, delay: float, msisdn: str | None) -> None:
    """Serve a virtual modem on a pty until Ctrl-C; print its path, then each submitted SMS."""
    from dmsim.sim.real.virtual_modem import Misbehaviour, VirtualModem
    card = imsi = None
    if profile_path is not None:
        from dmsim.cards.emulated import make_card
        from dmsim.cards.profile import load_profile
        try:
            profile = load_profile(profile_path)
        except DmsimError as exc:
            raise ParseFailure(str(exc)) from None
        card, imsi = make_card(profile), profile.imsi
    stop = threading.Event()
    vm = VirtualModem(submit=_submit_logger(), card=card, behaviour=Misbehaviour(echo=echo, delay=delay))
    if msisdn is not None:
        from dmsim.network.sms.address import Address
        from dmsim.sim.real.virtual_modem import loopback_network
        try:
            Address.parse(msisdn)
        except DmsimError as exc:
            raise ParseFailure(f"--msisdn: {exc}") from None
        vm.core.submit = loopback_network(vm, msisdn, log=vm.core.submit)
    previous = {sig: signal.signal(sig, lambda signum, frame: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    pty = vm.start()
    try:
        if link:
            _make_link(pty, link)
        click.echo(json.dumps({"pty": pty, "link": link, "imsi": imsi}))
        sys.stdout.flush()
        while not stop.wait(0.1):
            pass
    finally:
        vm.stop()
        if link and os.path.islink(link) and os.readlink(link) == pty:
            os.unlink(link)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":  # pragma: no cover
    modem()
