"""``dmsim calc pkg0`` and ``dmsim decode pkg0``: the DM notification (package #0,
OMA-TS-DM_Notification-V1_2 §6, §7) as engineers compute and check it by hand (the command line in the README).

``calc pkg0`` prints the whole package #0, its digest and the intermediate hashes, and the WSP
Push PDU that carries it. ``decode pkg0`` prints the fields and, when ``--password`` and
``--nonce`` are given, ``digest_valid`` (exit 1 when it is not).
"""
from __future__ import annotations

import click

from dmsim.network.dm import auth, notification
from dmsim.base.errors import DmsimError
from dmsim.sim.cli.toolbox import ParseFailure, decoding, emit, examples, json_option, parse_hex

PKG0_EXAMPLE = "c74d1f23fdb2cbffe32875d440bc5b7b030800000000010a646d2e6578616d706c65"

_UI_MODES = {notification.UI_NOT_SPECIFIED: "not-specified", notification.UI_BACKGROUND: "background",
             notification.UI_INFORMATIVE: "informative", notification.UI_USER_INTERACTION: "user-interaction"}
_INITIATORS = {notification.INITIATOR_CLIENT: "client", notification.INITIATOR_SERVER: "server"}


def pkg0_fields(pkg0: notification.Pkg0) -> dict:
    """Return the fields of a parsed package #0 (OMA-TS-DM_Notification-V1_2 §6.2), names in snake_case."""
    return {"digest": pkg0.digest.hex(), "version": pkg0.version,
            "ui_mode": pkg0.ui_mode, "ui_mode_name": _UI_MODES[pkg0.ui_mode],
            "initiator": pkg0.initiator, "initiator_name": _INITIATORS[pkg0.initiator],
            "future_use": pkg0.future_use, "session_id": pkg0.session_id,
            "pkg1_session_id": pkg0.pkg1_session_id, "server_id": pkg0.server_id,
            "vendor_specific": pkg0.vendor_specific.hex(), "trigger": pkg0.trigger.hex()}


@click.command("pkg0", epilog=examples(
    "dmsim calc pkg0 --session-id 1 --server-id dm.example --password pw --nonce 00112233",
    "dmsim calc pkg0 --ui-mode 3 --session-id 4660 --server-id dm.example --password pw --nonce '' --json"))
@click.option("--version", "version", type=click.IntRange(0, 1023), default=notification.DEFAULT_VERSION,
              show_default=True, help="Version field (10 bits): 12 for 1.2, 13 for 1.3, 11 for 1.1.")
@click.option("--ui-mode", type=click.IntRange(0, 3), default=0, show_default=True,
              help="0 not specified, 1 background, 2 informative, 3 user interaction.")
@click.option("--initiator", type=click.IntRange(0, 1), default=1, show_default=True,
              help="0 client, 1 server.")
@click.option("--session-id", type=click.IntRange(0, 0xFFFF), required=True, help="Session id (16 bits).")
@click.option("--server-id", required=True, help="Server identifier (the DM account's ServerID).")
@click.option("--password", required=True, help="The server password (the client's ServerPW).")
@click.option("--nonce", "nonce_hex", required=True, help="Nonce octets, hex ('' for none).")
@click.option("--vendor-hex", default="", help="Vendor-specific trigger body, hex.")
@click.option("--tid", type=click.IntRange(0, 255), default=0, show_default=True,
              help="WSP transaction id of the Push PDU.")
@json_option
def calc_pkg0_cmd(version: int, ui_mode: int, initiator: int, session_id: int, server_id: str, password: str,
                  nonce_hex: str, vendor_hex: str, tid: int, as_json: bool) -> None:
    """The whole package #0 and its digest H(B64(H(server-id:password)):nonce:B64(H(trigger)))."""
    nonce = parse_hex(nonce_hex, "--nonce")
    vendor = parse_hex(vendor_hex, "--vendor-hex")
    try:
        pkg0 = notification.build_pkg0(version=version, ui_mode=ui_mode, initiator=initiator, session_id=session_id,
                                       server_id=server_id, password=password, nonce=nonce,
                                       vendor_specific=vendor)
    except DmsimError as exc:
        raise ParseFailure(f"--server-id: {exc}") from None
    trigger = pkg0[notification.DIGEST_LEN:]
    emit({"digest": pkg0[:notification.DIGEST_LEN].hex(), "pkg0": pkg0.hex(), "trigger": trigger.hex(),
          "b64_h_server_id_password": auth.credential_hash(server_id, password, auth.AUTH_MD5).decode("ascii"),
          "b64_h_trigger": notification.trigger_hash(trigger).decode("ascii"),
          "pkg1_session_id": notification.session_id_text(session_id),
          "content_type": notification.NOTIFICATION_CONTENT_TYPE,
          "wsp_push": notification.encode_push(pkg0, tid).hex()}, as_json)


@click.command("pkg0", epilog=examples(
    f"dmsim decode pkg0 {PKG0_EXAMPLE}",
    f"dmsim decode pkg0 {PKG0_EXAMPLE} --password pw --nonce 00112233   # digest_valid: yes"))
@click.argument("hex_input", metavar="HEX")
@click.option("--server-id", help="Server identifier for the digest check (default: the one in the package).")
@click.option("--password", help="Server password: check the digest (needs --nonce).")
@click.option("--nonce", "nonce_hex", help="Nonce octets, hex ('' for none).")
@json_option
def decode_pkg0_cmd(hex_input: str, server_id: str | None, password: str | None, nonce_hex: str | None,
                    as_json: bool) -> None:
    """Package #0's fields; digest_valid (exit 1 if false) when --password and --nonce are given."""
    data = parse_hex(hex_input)
    if (password is None) != (nonce_hex is None) or (server_id is not None and password is None):
        raise ParseFailure("the digest check needs both --password and --nonce (and optionally --server-id)")
    with decoding():
        pkg0 = notification.parse_pkg0(data)
    out = pkg0_fields(pkg0)
    ok = True
    if password is not None:
        ok = notification.verify_pkg0(pkg0, server_id if server_id is not None else pkg0.server_id, password,
                                      parse_hex(nonce_hex, "--nonce"))
        out["digest_valid"] = ok
    emit(out, as_json, ok=ok)
