"""``dmsim calc`` and ``dmsim decode``: compute and decode what engineers debug by hand.

Conventions (../shared/CLI.md): a readable form by default, one JSON object with ``--json``
(snake_case keys named after the spec, bytes as lowercase hex); a failed check (``--check``)
prints the result and exits 1; input that cannot be parsed exits 2 naming the byte offset and
what was expected. ``HEX`` may be ``-`` for standard input; spaces and colons are ignored.
"""
from __future__ import annotations

import base64
import json
import sys

import click

from dmsim.network.dm import auth, bootstrap_mac, syncml_xml, wbxml
from dmsim.sim.errors import DecodeError, DmsimError


class ParseFailure(click.ClickException):
    """Input that cannot be parsed: exit status 2."""

    exit_code = 2


def parse_hex(value: str, what: str = "HEX") -> bytes:
    """Return the bytes of a hex argument (``-`` reads stdin; spaces and colons ignored)."""
    if value == "-":
        value = sys.stdin.read()
    cleaned = "".join(ch for ch in value if ch not in " :\t\r\n")
    for i, ch in enumerate(cleaned):
        if ch not in "0123456789abcdefABCDEF":
            raise ParseFailure(f"{what}: at hex digit {i} (byte {i // 2}): {ch!r} is not a hex digit")
    if len(cleaned) % 2:
        raise ParseFailure(f"{what}: at byte {len(cleaned) // 2}: odd number of hex digits")
    return bytes.fromhex(cleaned)


def emit(result: dict, as_json: bool, *, ok: bool = True) -> None:
    """Print ``result`` readable or as JSON; exit 1 when ``ok`` is False (a failed check)."""
    if as_json:
        click.echo(json.dumps(result, sort_keys=True))
    else:
        width = max(len(k) for k in result)
        for key, value in result.items():
            click.echo(f"{key:<{width}}  {value}")
    if not ok:
        sys.exit(1)


def _check(result: dict, key: str, expected: str | None) -> bool:
    if expected is None:
        return True
    ok = result[key].lower() == expected.strip().lower()
    result["check"] = "ok" if ok else f"MISMATCH (expected {expected.strip().lower()})"
    return ok


json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")


@click.group()
def calc() -> None:
    """Compute keys, MACs and credentials from their inputs."""


@calc.command("bootstrap-mac")
@click.option("--sec", required=True,
              type=click.Choice(["NETWPIN", "USERPIN", "USERNETWPIN", "NETWORKID", "USERPIN_NETWORKID"],
                                case_sensitive=False),
              help="Key type (WSP SEC name or OMA-TS-DM_Security §5.10.2.3 name).")
@click.option("--imsi", required=True, help="IMSI digits (the NETWORKID secret).")
@click.option("--userpin", help="User PIN digits (USERPIN methods).")
@click.option("--body-hex", required=True, help="The WBXML bootstrap document, hex ('-' for stdin).")
@click.option("--check", "expected", help="Expected MAC (hex); exit 1 on mismatch.")
@json_option
def bootstrap_mac_cmd(sec: str, imsi: str, userpin: str | None, body_hex: str, expected: str | None,
                      as_json: bool) -> None:
    """HMAC-SHA1 of a bootstrap document (OMA-TS-DM_Security §5.10.2.3.2) and its Content-Type."""
    body = parse_hex(body_hex, "--body-hex")
    try:
        key = bootstrap_mac.bootstrap_key(sec, imsi=imsi, userpin=userpin)
    except DmsimError as exc:
        raise ParseFailure(str(exc)) from None
    mac = bootstrap_mac.bootstrap_mac(key, body)
    result = {"key_type": bootstrap_mac.canonical_key_type(sec), "key": key.hex(), "mac": mac.lower(),
              "content_type": bootstrap_mac.format_content_type(sec, mac)}
    ok = _check(result, "mac", expected)
    emit(result, as_json, ok=ok)


@calc.command("auth-md5")
@click.option("--name", required=True)
@click.option("--password", required=True)
@click.option("--nonce", required=True, help="Nonce octets, hex.")
@click.option("--sha256", is_flag=True, help="syncml:auth-sha256 instead of syncml:auth-md5.")
@click.option("--check", "expected", help="Expected digest (base64); exit 1 on mismatch.")
@json_option
def auth_md5_cmd(name: str, password: str, nonce: str, sha256: bool, expected: str | None, as_json: bool) -> None:
    """syncml:auth-md5 credential H(B64(H(name:password)):nonce) (OMA-TS-DM_Security §5.4.2)."""
    scheme = auth.AUTH_SHA256 if sha256 else auth.AUTH_MD5
    raw = auth.digest(name, password, parse_hex(nonce, "--nonce"), scheme)
    result = {"scheme": scheme, "b64_h_name_password": auth.credential_hash(name, password, scheme).decode(),
              "digest": raw.hex(), "digest_b64": base64.b64encode(raw).decode()}
    ok = True
    if expected is not None:
        ok = expected.strip() == result["digest_b64"] or expected.strip().lower() == result["digest"]
        result["check"] = "ok" if ok else f"MISMATCH (expected {expected.strip()})"
    emit(result, as_json, ok=ok)


@calc.command("auth-basic")
@click.option("--name", required=True)
@click.option("--password", required=True)
@json_option
def auth_basic_cmd(name: str, password: str, as_json: bool) -> None:
    """syncml:auth-basic credential B64(name:password) (OMA-TS-DM_Security §5.4)."""
    emit({"scheme": auth.AUTH_BASIC, "cred_b64": auth.basic(name, password)}, as_json)


@click.group()
def decode() -> None:
    """Decode bytes captured from a device, a server or the air."""


@decode.command("wbxml")
@click.argument("hex_input", metavar="HEX")
@json_option
def decode_wbxml_cmd(hex_input: str, as_json: bool) -> None:
    """Print a WBXML document (SyncML 1.2 / MetInf code pages) as XML."""
    data = parse_hex(hex_input)
    try:
        root = wbxml.decode(data)
    except DecodeError as exc:
        raise ParseFailure(str(exc)) from None
    xml = syncml_xml.to_xml(root).decode("utf-8")
    if as_json:
        click.echo(json.dumps({"xml": xml, "root": root.tag, "length": len(data)}, sort_keys=True))
    else:
        click.echo(xml)


@calc.command("milenage")
@click.option("--k", "k_hex", required=True, help="Subscriber key K (16 bytes hex).")
@click.option("--op", "op_hex", help="Operator variant OP (hex); or give --opc.")
@click.option("--opc", "opc_hex", help="OPc (hex).")
@click.option("--rand", "rand_hex", required=True)
@click.option("--sqn", "sqn_hex", required=True, help="SQN (6 bytes hex).")
@click.option("--amf", "amf_hex", required=True, help="AMF (2 bytes hex).")
@json_option
def milenage_cmd(k_hex, op_hex, opc_hex, rand_hex, sqn_hex, amf_hex, as_json: bool) -> None:
    """MILENAGE f1-f5* (3GPP TS 35.206) and the AUTN a network would send (TS 33.102 §6.3.2)."""
    from dmsim.cards import milenage
    if (op_hex is None) == (opc_hex is None):
        raise ParseFailure("give exactly one of --op and --opc")
    k, rand = parse_hex(k_hex, "--k"), parse_hex(rand_hex, "--rand")
    sqn, amf = parse_hex(sqn_hex, "--sqn"), parse_hex(amf_hex, "--amf")
    try:
        opc = milenage.opc_from_op(k, parse_hex(op_hex, "--op")) if op_hex else parse_hex(opc_hex, "--opc")
        res, ck, ik, ak = milenage.f2345(k, opc, rand)
        mac_a, mac_s = milenage.f1(k, opc, rand, sqn, amf), milenage.f1star(k, opc, rand, sqn, amf)
        ak_star = milenage.f5star(k, opc, rand)
    except DecodeError as exc:
        raise ParseFailure(str(exc)) from None
    autn = bytes(a ^ b for a, b in zip(sqn, ak)) + amf + mac_a
    emit({"opc": opc.hex(), "mac_a": mac_a.hex(), "mac_s": mac_s.hex(), "res": res.hex(), "ck": ck.hex(),
          "ik": ik.hex(), "ak": ak.hex(), "ak_star": ak_star.hex(), "autn": autn.hex()}, as_json)


@calc.command("gba-naf")
@click.option("--ks", "ks_hex", required=True, help="Ks = CK||IK (hex).")
@click.option("--rand", "rand_hex", required=True)
@click.option("--impi", required=True, help="The IMPI (NAI).")
@click.option("--naf-fqdn", required=True)
@click.option("--ua-id", "ua_hex", required=True, help="Ua security protocol identifier (5 bytes hex).")
@json_option
def gba_naf_cmd(ks_hex, rand_hex, impi, naf_fqdn, ua_hex, as_json: bool) -> None:
    """Ks_ext_NAF and Ks_int_NAF (3GPP TS 33.220 Annex B)."""
    from dmsim.cards import usim_auth
    naf_id = usim_auth.make_naf_id(naf_fqdn, parse_hex(ua_hex, "--ua-id"))
    try:
        ext, internal = usim_auth.derive_ks_naf(parse_hex(ks_hex, "--ks"), parse_hex(rand_hex, "--rand"), impi, naf_id)
    except DecodeError as exc:
        raise ParseFailure(str(exc)) from None
    emit({"naf_id": naf_id.hex(), "ks_ext_naf": ext.hex(), "ks_int_naf": internal.hex()}, as_json)


@calc.command("gba-btid")
@click.option("--rand", "rand_hex", required=True)
@click.option("--bsf-fqdn", required=True)
@json_option
def gba_btid_cmd(rand_hex, bsf_fqdn, as_json: bool) -> None:
    """B-TID = base64(RAND)@BSF FQDN (3GPP TS 33.220 §4.5.2)."""
    from dmsim.cards import usim_auth
    emit({"btid": usim_auth.gba_btid(parse_hex(rand_hex, "--rand"), bsf_fqdn)}, as_json)
