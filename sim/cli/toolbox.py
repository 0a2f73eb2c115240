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
from contextlib import contextmanager
from typing import Iterator

import click

from dmsim.network.dm import auth, bootstrap_mac, syncml_xml, wbxml
from dmsim.base.errors import DecodeError, DmsimError


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


@contextmanager
def decoding() -> Iterator[None]:
    """Turn a DecodeError raised inside the block into exit status 2 with its byte offset."""
    try:
        yield
    except DecodeError as exc:
        raise ParseFailure(str(exc)) from None


def parse_host_port(value: str, option: str, *, listen: bool) -> tuple[str, int]:
    """Return (host, port) of a ``HOST:PORT`` option; exit 2 otherwise. Port 0 (any free port)
    is accepted only for an address to listen on."""
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not (0 if listen else 1) <= int(port) <= 65535:
        raise ParseFailure(f"{option} {value!r}: expected HOST:PORT")
    return host, int(port)


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
    with decoding():
        root = wbxml.decode(data)
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
    with decoding():
        opc = milenage.opc_from_op(k, parse_hex(op_hex, "--op")) if op_hex else parse_hex(opc_hex, "--opc")
        res, ck, ik, ak = milenage.f2345(k, opc, rand)
        mac_a, mac_s = milenage.f1(k, opc, rand, sqn, amf), milenage.f1star(k, opc, rand, sqn, amf)
        ak_star = milenage.f5star(k, opc, rand)
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
    with decoding():
        ext, internal = usim_auth.derive_ks_naf(parse_hex(ks_hex, "--ks"), parse_hex(rand_hex, "--rand"), impi, naf_id)
    emit({"naf_id": naf_id.hex(), "ks_ext_naf": ext.hex(), "ks_int_naf": internal.hex()}, as_json)


@calc.command("gba-btid")
@click.option("--rand", "rand_hex", required=True)
@click.option("--bsf-fqdn", required=True)
@json_option
def gba_btid_cmd(rand_hex, bsf_fqdn, as_json: bool) -> None:
    """B-TID = base64(RAND)@BSF FQDN (3GPP TS 33.220 §4.5.2)."""
    from dmsim.cards import usim_auth
    emit({"btid": usim_auth.gba_btid(parse_hex(rand_hex, "--rand"), bsf_fqdn)}, as_json)


def _udh_fields(ies) -> dict:
    from dmsim.network.sms.udh import find_concat, find_ports
    out: dict = {"ies": [{"iei": ie.iei, "data": ie.data.hex()} for ie in ies]}
    concat, ports = find_concat(ies), find_ports(ies)
    if concat:
        out["concat"] = {"ref": concat.ref, "total": concat.total, "seq": concat.seq}
    if ports:
        out["ports"] = {"dest": ports.dest, "src": ports.src}
    return out


def _sms_fields(sms) -> dict:
    from dmsim.network.sms.tpdu import SmsDeliver
    out = {"type": "SMS-DELIVER" if isinstance(sms, SmsDeliver) else "SMS-SUBMIT",
           "oa" if isinstance(sms, SmsDeliver) else "da": str(sms.oa if isinstance(sms, SmsDeliver) else sms.da),
           "pid": sms.pid, "dcs": sms.dcs, "udhi": sms.udhi, "user_data": sms.user_data.hex()}
    if sms.udhi:
        out["udh"] = _udh_fields(sms.ies)
    return out


@decode.command("sms")
@click.argument("hex_input", metavar="HEX")
@click.option("--mo", is_flag=True, help="Mobile-originated TPDU (SMS-SUBMIT); default mobile-terminated.")
@json_option
def decode_sms_cmd(hex_input: str, mo: bool, as_json: bool) -> None:
    """A TS 23.040 TPDU with its UDH, and the WSP Push inside when it goes to port 2948."""
    from dmsim.network.sms import tpdu, wsp_push
    from dmsim.network.sms.udh import find_ports
    with decoding():
        sms = tpdu.decode_tpdu(parse_hex(hex_input), mt=not mo)
        out = _sms_fields(sms)
        ports = find_ports(sms.ies) if sms.udhi else None
        if ports and ports.dest == wsp_push.WAP_PUSH_PORT:
            try:
                push = wsp_push.decode_push(sms.user_data)
                out["wsp_push"] = {"tid": push.tid, "content_type": push.content_type, "body": push.body.hex()}
            except DecodeError as exc:  # one part of a concatenated push: the rest is elsewhere
                out["wsp_push"] = f"not decodable on its own ({exc.detail})"
    emit(out, as_json)


@decode.command("udh")
@click.argument("hex_input", metavar="HEX")
@json_option
def decode_udh_cmd(hex_input: str, as_json: bool) -> None:
    """User data starting with UDHL (TS 23.040 §9.2.3.24)."""
    from dmsim.network.sms.udh import decode_udh
    with decoding():
        ies, rest = decode_udh(parse_hex(hex_input))
        out = _udh_fields(ies)
    out["rest"] = rest.hex()
    emit(out, as_json)


@decode.command("apdu")
@click.argument("hex_input", metavar="HEX")
@json_option
def decode_apdu_cmd(hex_input: str, as_json: bool) -> None:
    """A command APDU (ISO 7816-4), incl. the contents of an ENVELOPE SMS-PP download (TS 31.111)."""
    from dmsim.cards.apdu import parse_command
    from dmsim.cards.envelope import parse_envelope
    raw = parse_hex(hex_input)
    with decoding():
        cmd = parse_command(raw)
        out = {"cla": f"{cmd.cla:02x}", "ins": f"{cmd.ins:02x}", "p1": f"{cmd.p1:02x}", "p2": f"{cmd.p2:02x}",
               "case": cmd.case, "lc": len(cmd.data), "data": cmd.data.hex(), "le": cmd.le, "extended": cmd.extended}
        if cmd.ins == 0xC2 and cmd.data[:1] == b"\xd1":
            env = parse_envelope(raw)
            out["envelope"] = {"source": env.source, "destination": env.destination,
                               "address": str(env.address) if env.address else None, "tpdu": env.tpdu.hex(),
                               "sms": _sms_fields(env.sms), "command_packet": env.is_command_packet}
    emit(out, as_json)


@decode.command("ota")
@click.argument("hex_input", metavar="HEX")
@click.option("--kic", "kic_hex", help="Ciphering key (hex) to decipher.")
@click.option("--kid", "kid_hex", help="Integrity key (hex) to check the CC.")
@click.option("--por", is_flag=True, help="The bytes are a response packet (PoR) even without its UDH.")
@click.option("--spi", "spi_hex", default="0000", show_default=True,
              help="For a PoR: the SPI of the command it answers (its PoR security bits).")
@click.option("--kic-byte", type=str, default=None, help="For a PoR: the command's KIc octet (hex).")
@click.option("--kid-byte", type=str, default=None, help="For a PoR: the command's KID octet (hex).")
@json_option
def decode_ota_cmd(hex_input, kic_hex, kid_hex, por, spi_hex, kic_byte, kid_byte, as_json: bool) -> None:
    """An ETSI TS 102 225 command or response packet, with or without its UDH (02 70 00 / 02 71 00);
    deciphers with --kic and checks the CC with --kid."""
    from dmsim.cards import scp80
    from dmsim.base.errors import SecuredPacketError
    raw = parse_hex(hex_input)
    udh = raw[:3] in (scp80.UDH_COMMAND, scp80.UDH_RESPONSE)
    is_por = por or raw[:3] == scp80.UDH_RESPONSE
    kic_key = parse_hex(kic_hex, "--kic") if kic_hex else b""
    kid_key = parse_hex(kid_hex, "--kid") if kid_hex else b""
    ok = True
    with decoding():
        try:
            if is_por:
                keys = scp80.Keyset(int(kic_byte or "0", 16), int(kid_byte or "0", 16), kic_key, kid_key)
                pkt = scp80.decode_por(raw, parse_hex(spi_hex, "--spi"), keys, with_udh=udh)
                out = {"packet": "response", "tar": pkt.tar.hex(), "cntr": pkt.cntr, "pcntr": pkt.pcntr,
                       "status": pkt.status, "cc": pkt.checksum.hex(), "data": pkt.data.hex()}
            else:
                pkt = scp80.decode_command(raw, lambda tar, kic, kid: scp80.Keyset(kic, kid, kic_key, kid_key),
                                           with_udh=udh)
                out = {"packet": "command", "spi": pkt.spi.encode().hex(), "kic": f"{pkt.kic:02x}",
                       "kid": f"{pkt.kid:02x}", "tar": pkt.tar.hex(), "cntr": pkt.cntr, "pcntr": pkt.pcntr,
                       "cc": pkt.checksum.hex(), "data": pkt.data.hex()}
            out["verified"] = True
        except SecuredPacketError as exc:
            ok = False
            out = {"packet": "response" if is_por else "command", "tar": exc.tar.hex(),
                   "spi": exc.spi.encode().hex() if exc.spi is not None else None,
                   "verified": False, "status": exc.status, "error": exc.detail}
    emit(out, as_json, ok=ok)
