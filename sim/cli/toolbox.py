"""``dmsim calc`` and ``dmsim decode``: compute and decode what engineers debug by hand.

Conventions (the command line in the README): a readable form by default, one JSON object with ``--json``
(snake_case keys named after the spec, bytes as lowercase hex); a failed check (``--check``)
prints the result and exits 1; input that cannot be parsed exits 2 naming the byte offset and
what was expected. ``HEX`` may be ``-`` for standard input; spaces and colons are ignored.

The readable form is an aligned field table, nested fields indented under their parent (as
tshark's packet details are); ``decode wbxml`` prints the XML document indented. Every
command's ``--help`` ends with examples that run as written (tests/sim/cli/test_examples.py).
"""
from __future__ import annotations

import base64
import json
import sys
from contextlib import contextmanager
from typing import Iterator
from xml.dom import minidom

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


def parse_octet(value: str | None, option: str) -> int | None:
    """Return the octet of a one-byte hex option (None if absent); exit 2 otherwise."""
    if value is None:
        return None
    data = parse_hex(value, option)
    if len(data) != 1:
        raise ParseFailure(f"{option} {value!r}: {len(data)} octets, expected one (2 hex digits)")
    return data[0]


def _cell(value) -> str:
    """Return how one value reads in a field table: yes/no, '-' for none, lists joined."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "-"
    if value == "":
        return "(none)"
    if isinstance(value, (list, tuple)):
        return ", ".join(_cell(v) for v in value) if value else "(none)"
    return str(value)


def format_table(result: dict) -> str:
    """Return ``result`` as an aligned field table: one ``key  value`` row per field, a nested
    mapping (or list of mappings) as a heading row with its fields indented two spaces under it."""
    rows: list[tuple[str, str | None]] = []

    def walk(mapping: dict, indent: str) -> None:
        for key, value in mapping.items():
            if isinstance(value, dict):
                rows.append((f"{indent}{key}", None))
                walk(value, indent + "  ")
            elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
                for i, item in enumerate(value):
                    rows.append((f"{indent}{key}[{i}]", None))
                    walk(item, indent + "  ")
            else:
                rows.append((f"{indent}{key}", _cell(value)))

    walk(result, "")
    width = max((len(label) for label, value in rows if value is not None), default=0)
    return "\n".join(label if value is None else f"{label:<{width}}  {value}" for label, value in rows)


def emit(result: dict, as_json: bool, *, ok: bool = True) -> None:
    """Print ``result`` as a field table or as JSON; exit 1 when ``ok`` is False (a failed check)."""
    if as_json:
        click.echo(json.dumps(result, sort_keys=True))
    else:
        click.echo(format_table(result))
    if not ok:
        sys.exit(1)


def examples(*lines: str) -> str:
    """Return a ``--help`` epilog listing ``lines`` as examples, kept as written by click."""
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)


def indented_xml(xml: bytes) -> str:
    """Return an XML document indented two spaces per level, text-only elements on one line
    (their text kept as it is). Mixed content, which SyncML does not use, gets line breaks."""
    pretty = minidom.parseString(xml).documentElement.toprettyxml(indent="  ")
    return syncml_xml.XML_DECLARATION.decode() + "\n" + pretty.rstrip("\n")


def _check(result: dict, key: str, expected: str | None) -> bool:
    if expected is None:
        return True
    ok = result[key].lower() == expected.strip().lower()
    result["check"] = "ok" if ok else f"MISMATCH (expected {expected.strip().lower()})"
    return ok


json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")


# Examples shown by --help (and run by tests/sim/cli/test_examples.py): real values throughout.
MILENAGE_EXAMPLE = ("dmsim calc milenage --k 465b5ce8b199b49faa5f0a2ee238a6bc --op cdc202d5123e20f62b6d676ac72cb318 "
                    "--rand 23553cbe9637a89d218ae64dae47bf35 --sqn ff9bb4d0b607 --amf b9b9")
OTA_EXAMPLE = ("dmsim decode ota 00281506192222b00011e87cceebb2d93083011ce294f93fc4d8de80da1abae8c37ca3e72ec4432e5058 "
               "--kic 200102030405060708090a0b0c0d0e0f --kid 201102030405060708090a0b0c0d0e0f")
WBXML_EXAMPLE = ("dmsim decode wbxml 03a4016a006d6c7103312e3200017203444d2f312e32000165033100015b033100016e5703494d45"
                 "493a34393330303531303035393238303000010167570368747470733a2f2f646d2e6578616d706c652f646d0001015a"
                 "00014c0331303030300001010100006b120101")
SMS_PUSH_EXAMPLE = ("dmsim decode sms 4410d0c4666b5a96dbcb7200f5624012410000802f0605040b8423f0000603c4af87c74d1f23fdb2"
                    "cbffe32875d440bc5b7b030800000000010a646d2e6578616d706c65")
SMS_PARTS_EXAMPLE = ("dmsim decode sms 440ed04f78591ea6bfe50000624012410000804c050003420201b2efba1c442edbd3e332e89e66b3"
                     "41e23268fc769bd3e7babc4c0689f3203aba0c223641f3b2dc5e9683d26e101d5d06b9cb783aa89d76d7e9e5b90b04 "
                     "440ed04f78591ea6bfe50000624012410000801b05000342020296e5321c94a683e6f7347d8c2e93416fb70b")


@click.group()
def calc() -> None:
    """Compute keys, MACs and credentials from their inputs."""


@calc.command("bootstrap-mac", epilog=examples(
    "dmsim calc bootstrap-mac --sec NETWPIN --imsi 001010123456789 --body-hex 0102030405",
    "dmsim calc bootstrap-mac --sec USERPIN --imsi 001010123456789 --userpin 1234 --body-hex 0102030405 --json"))
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


@calc.command("auth-md5", epilog=examples(
    "dmsim calc auth-md5 --name Bruce1 --password OhBehave --nonce 4e6f6e6365313233",
    "dmsim calc auth-md5 --name Bruce1 --password OhBehave --nonce 4e6f6e6365313233 --check HqLtXrLpOepuOLf42xZBKQ=="))
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


@calc.command("auth-basic", epilog=examples("dmsim calc auth-basic --name funambol --password funambol"))
@click.option("--name", required=True)
@click.option("--password", required=True)
@json_option
def auth_basic_cmd(name: str, password: str, as_json: bool) -> None:
    """syncml:auth-basic credential B64(name:password) (OMA-TS-DM_Security §5.4)."""
    emit({"scheme": auth.AUTH_BASIC, "cred_b64": auth.basic(name, password)}, as_json)


@click.group()
def decode() -> None:
    """Decode bytes captured from a device, a server or the air."""


@decode.command("wbxml", epilog=examples(WBXML_EXAMPLE))
@click.argument("hex_input", metavar="HEX")
@json_option
def decode_wbxml_cmd(hex_input: str, as_json: bool) -> None:
    """Print a WBXML document (SyncML 1.2 / MetInf code pages) as indented XML."""
    data = parse_hex(hex_input)
    with decoding():
        root = wbxml.decode(data)
    xml = syncml_xml.to_xml(root).decode("utf-8")
    if as_json:
        click.echo(json.dumps({"xml": xml, "root": root.tag, "length": len(data)}, sort_keys=True))
    else:
        click.echo(indented_xml(xml.encode("utf-8")))


@calc.command("milenage", epilog=examples(
    MILENAGE_EXAMPLE + "    # 3GPP TS 35.207 test set 1",
    "dmsim calc milenage --k 465b5ce8b199b49faa5f0a2ee238a6bc --opc cd63cb71954a9f4e48a5994e37a02baf "
    "--rand 23553cbe9637a89d218ae64dae47bf35 --sqn ff9bb4d0b607 --amf b9b9 --json"))
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
        opc = milenage.opc_from_op(k, parse_hex(op_hex, "--op")) if op_hex is not None else parse_hex(opc_hex, "--opc")
        res, ck, ik, ak = milenage.f2345(k, opc, rand)
        mac_a, mac_s = milenage.f1(k, opc, rand, sqn, amf), milenage.f1star(k, opc, rand, sqn, amf)
        ak_star = milenage.f5star(k, opc, rand)
    autn = bytes(a ^ b for a, b in zip(sqn, ak)) + amf + mac_a
    emit({"opc": opc.hex(), "mac_a": mac_a.hex(), "mac_s": mac_s.hex(), "res": res.hex(), "ck": ck.hex(),
          "ik": ik.hex(), "ak": ak.hex(), "ak_star": ak_star.hex(), "autn": autn.hex()}, as_json)


@calc.command("gba-naf", epilog=examples(
    "dmsim calc gba-naf --ks b40ba9a3c58b2a05bbf0d987b21bf8cbf769bcd751044604127672711c6d3441 "
    "--rand 23553cbe9637a89d218ae64dae47bf35 --impi 001010123456789@ims.mnc001.mcc001.3gppnetwork.org "
    "--naf-fqdn naf.example.org --ua-id 0100000000"))
@click.option("--ks", "ks_hex", required=True, help="Ks = CK||IK (hex).")
@click.option("--rand", "rand_hex", required=True)
@click.option("--impi", required=True, help="The IMPI (NAI).")
@click.option("--naf-fqdn", required=True)
@click.option("--ua-id", "ua_hex", required=True,
              help="Ua security protocol identifier (5 bytes hex, TS 33.220 Annex H.3: 0100000000 is Ua per TS 33.221, "
                   "0100000002 HTTP Digest per TS 24.109).")
@json_option
def gba_naf_cmd(ks_hex, rand_hex, impi, naf_fqdn, ua_hex, as_json: bool) -> None:
    """Ks_ext_NAF and Ks_int_NAF (3GPP TS 33.220 Annex B)."""
    from dmsim.network.gba import keys as gba_keys
    ua_id = parse_hex(ua_hex, "--ua-id")
    if len(ua_id) != gba_keys.UA_PROTOCOL_ID_LEN:
        raise ParseFailure(f"--ua-id {ua_hex!r}: {len(ua_id)} octet(s); a Ua security protocol identifier "
                           f"is {gba_keys.UA_PROTOCOL_ID_LEN} octets (TS 33.220 Annex H), e.g. 0100000000")
    ks, rand = parse_hex(ks_hex, "--ks"), parse_hex(rand_hex, "--rand")
    with decoding():
        naf_id = gba_keys.make_naf_id(naf_fqdn, ua_id)
        ext, internal = gba_keys.derive_ks_naf(ks, rand, impi, naf_id)
    emit({"naf_id": naf_id.hex(), "ks_ext_naf": ext.hex(), "ks_int_naf": internal.hex()}, as_json)


@calc.command("gba-btid", epilog=examples(
    "dmsim calc gba-btid --rand 23553cbe9637a89d218ae64dae47bf35 --bsf-fqdn bsf.mnc001.mcc001.pub.3gppnetwork.org"))
@click.option("--rand", "rand_hex", required=True)
@click.option("--bsf-fqdn", required=True)
@json_option
def gba_btid_cmd(rand_hex, bsf_fqdn, as_json: bool) -> None:
    """B-TID = base64(RAND)@BSF FQDN (3GPP TS 33.220 §4.5.2)."""
    from dmsim.network.gba import keys as gba_keys
    emit({"btid": gba_keys.gba_btid(parse_hex(rand_hex, "--rand"), bsf_fqdn)}, as_json)


@calc.command("dm-bootstrap-keys", epilog=examples(
    "dmsim calc dm-bootstrap-keys --ks-naf 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
    "dmsim calc dm-bootstrap-keys --ks-naf 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f --json"))
@click.option("--ks-naf", "ks_naf_hex", required=True, help="Ks_(ext/int)_NAF (32 bytes hex).")
@json_option
def dm_bootstrap_keys_cmd(ks_naf_hex: str, as_json: bool) -> None:
    """DMBIK and DMBEK of the 3GPP_GBA bootstrap: KDF(Ks_(ext/int)_NAF, FC 0x01, P0 "dm-bik" /
    "dm-bek") (OMA-TS-DM_Security-V1_3 §5.10.2.4.1; P0 per the seed's bytes, network/gba/keys.py)."""
    from dmsim.network.gba import keys as gba_keys
    ks_naf = parse_hex(ks_naf_hex, "--ks-naf")
    if len(ks_naf) != gba_keys.KEY_LEN:
        raise ParseFailure(f"--ks-naf: at byte {len(ks_naf)}: {len(ks_naf)} octets "
                           f"(expected {gba_keys.KEY_LEN}, a Ks_NAF from the GBA KDF)")
    dmbik, dmbek = gba_keys.dm_bootstrap_keys(ks_naf)
    emit({"dmbik": dmbik.hex(), "dmbek": dmbek.hex()}, as_json)


AKA_DIGEST_EXAMPLE = ("dmsim calc aka-digest --username 001010123456789@ims.mnc001.mcc001.3gppnetwork.org "
                      "--realm bsf.example.org --nonce I1U8vpY3qJ0hiuZNrke/NQ== --uri / --method GET "
                      "--res a54211d5e3ba50bf --cnonce 0a4f113b")


@calc.command("aka-digest", epilog=examples(
    AKA_DIGEST_EXAMPLE,
    AKA_DIGEST_EXAMPLE + " --qop auth-int --body-hex 3c3f786d6c3f3e --nc 00000002 --json"))
@click.option("--username", required=True, help="The Digest username (the IMPI on Ub).")
@click.option("--realm", required=True)
@click.option("--nonce", required=True, help="The nonce as the challenge gave it (base64 of RAND||AUTN on Ub).")
@click.option("--uri", required=True, help="The digest-uri.")
@click.option("--method", required=True, help="The HTTP method (GET on Ub).")
@click.option("--res", "res_hex", required=True,
              help="RES (hex), the AKAv1-MD5 password; empty ('') for the AUTS request of RFC 3310 §3.4.")
@click.option("--qop", type=click.Choice(["auth", "auth-int"]), default="auth", show_default=True)
@click.option("--cnonce", required=True)
@click.option("--nc", default="00000001", show_default=True, help="Nonce count, 8 hex digits.")
@click.option("--body-hex", default="", help="The entity body (hex) for qop auth-int.")
@click.option("--check", "expected", help="Expected response (hex); exit 1 on mismatch.")
@json_option
def aka_digest_cmd(username, realm, nonce, uri, method, res_hex, qop, cnonce, nc, body_hex, expected,
                   as_json: bool) -> None:
    """The request-digest of HTTP Digest AKAv1-MD5 (RFC 3310 §3.3 over RFC 2617 §3.2.2): RES is
    the password, as raw octets."""
    from dmsim.network.gba import digest_aka
    res = parse_hex(res_hex, "--res") if res_hex else b""
    body = parse_hex(body_hex, "--body-hex") if body_hex else b""
    if len(nc) != 8 or any(ch not in "0123456789abcdef" for ch in nc):
        raise ParseFailure(f"--nc {nc!r}: expected 8 lowercase hex digits (RFC 2617 nc-value)")
    h1, h2 = digest_aka.ha1(username, realm, res), digest_aka.ha2(method, uri, qop, body)
    result = {"algorithm": digest_aka.ALGORITHM, "qop": qop, "ha1": h1, "ha2": h2,
              "response": digest_aka.request_digest(h1, nonce, nc, cnonce, qop, h2)}
    ok = _check(result, "response", expected)
    emit(result, as_json, ok=ok)


@decode.command("sms", epilog=examples(
    SMS_PUSH_EXAMPLE + "    # a package #0 in a WAP Push, from an alphanumeric sender",
    SMS_PARTS_EXAMPLE + "    # two parts of one text",
    "dmsim decode sms --mo 31070c919471020000240000a708c8329bfd06119b    # an SMS-SUBMIT"))
@click.argument("hex_inputs", metavar="HEX...", nargs=-1, required=True)
@click.option("--mo", is_flag=True, help="Mobile-originated TPDUs (SMS-SUBMIT); default mobile-terminated.")
@json_option
def decode_sms_cmd(hex_inputs: tuple[str, ...], mo: bool, as_json: bool) -> None:
    """TS 23.040 TPDUs: every TP field, the UDH, the text; several HEX are the parts of
    concatenated messages, reassembled; a WAP Push to port 2948 is decoded, with the package #0
    of a DM notification inside it."""
    from dmsim.network.sms import tpdu, wsp_push
    from dmsim.network.sms.udh import find_concat, find_ports
    from dmsim.sim.cli import sms_view
    raws = [parse_hex(h, "HEX" if len(hex_inputs) == 1 else f"HEX #{n}") for n, h in enumerate(hex_inputs, 1)]
    parts, fields = [], []
    for n, raw in enumerate(raws, 1):
        try:
            sms = tpdu.decode_tpdu(raw, mt=not mo)
        except DecodeError as exc:
            raise ParseFailure(str(exc) if len(raws) == 1 else f"HEX #{n}: {exc}") from None
        parts.append(sms)
        fields.append(sms_view.tpdu_fields(sms, raw))
    with decoding():
        if len(parts) == 1:
            out, sms = fields[0], parts[0]
            ports = find_ports(sms.ies)
            if ports and ports.dest == wsp_push.WAP_PUSH_PORT:
                concat = find_concat(sms.ies)
                if concat is not None and concat.total > 1:
                    out["wsp_push"] = (f"part {concat.seq} of {concat.total} (ref {concat.ref}): "
                                       "give every part to decode it")
                else:
                    out["wsp_push"] = sms_view.push_or_note(sms.user_data)
        else:
            out = {"parts": fields, **sms_view.message_fields(parts)}
    emit(out, as_json)


@decode.command("udh", epilog=examples("dmsim decode udh 0605040b8423f0", "dmsim decode udh 050003420201"))
@click.argument("hex_input", metavar="HEX")
@json_option
def decode_udh_cmd(hex_input: str, as_json: bool) -> None:
    """User data starting with UDHL (TS 23.040 §9.2.3.24)."""
    from dmsim.network.sms.udh import decode_udh
    from dmsim.sim.cli.sms_view import udh_fields
    with decoding():
        ies, rest = decode_udh(parse_hex(hex_input))
        out = udh_fields(ies)
    out["rest"] = rest.hex()
    emit(out, as_json)


@decode.command("apdu", epilog=examples(
    "dmsim decode apdu 00a40004026f07                      # SELECT File EF_IMSI",
    "dmsim decode apdu 00a4040410a0000000871002ffffffff8907090000   # SELECT Application ADF.USIM",
    "dmsim decode apdu 00b0000009"))
@click.argument("hex_input", metavar="HEX")
@json_option
def decode_apdu_cmd(hex_input: str, as_json: bool) -> None:
    """A command APDU (ISO 7816-4, TS 102 221 §10.1) named like tshark does ("SELECT File
    EF_IMSI"), incl. the contents of an ENVELOPE SMS-PP download (TS 31.111)."""
    from dmsim.cards import apdu_names
    from dmsim.cards.apdu import parse_command
    from dmsim.cards.envelope import parse_envelope
    from dmsim.sim.cli.sms_view import tpdu_fields
    raw = parse_hex(hex_input)
    with decoding():
        cmd = parse_command(raw)
        out = {"summary": apdu_names.describe(cmd.ins, cmd.p1, cmd.data), "instruction": apdu_names.ins_name(cmd.ins),
               "cla": f"{cmd.cla:02x}", "ins": f"{cmd.ins:02x}", "p1": f"{cmd.p1:02x}", "p2": f"{cmd.p2:02x}",
               "case": cmd.case, "lc": len(cmd.data), "data": cmd.data.hex(), "le": cmd.le, "extended": cmd.extended}
        if cmd.ins == 0xA4:
            out["file"] = apdu_names.selected(cmd.p1, cmd.data)
        if cmd.ins == 0xC2 and cmd.data[:1] == b"\xd1":
            env = parse_envelope(raw)
            out["envelope"] = {"source": env.source, "destination": env.destination,
                               "address": str(env.address) if env.address else None, "tpdu": env.tpdu.hex(),
                               "sms": tpdu_fields(env.sms), "command_packet": env.is_command_packet}
    emit(out, as_json)


def _spi_fields(spi) -> dict:
    """Return what the SPI asks for (TS 102 225 §5.1.1), names from its enums."""
    return {"integrity": spi.integrity.name.lower(), "ciphered": spi.ciphered, "counter": spi.counter.name.lower(),
            "por": spi.por.name.lower(), "por_integrity": spi.por_integrity.name.lower(),
            "por_ciphered": spi.por_ciphered, "por_via_submit": spi.por_via_submit}


def _key_octets(kic: int, kid: int, integrity) -> dict:
    """Return the KIc and KID octets with the algorithm and key version they name (TS 102 225
    §5.1.2, §5.1.3); "implicit" when the octet leaves the algorithm to the keyset."""
    from dmsim.cards.scp80 import Integrity
    from dmsim.cards.scp80_crypto import checksum_for, cipher_for, is_implicit
    cipher = cipher_for(kic)
    checksum = checksum_for(kid, redundancy=integrity == Integrity.RC) if integrity else None
    return {"kic": f"{kic:02x}", "kic_algorithm": "implicit" if is_implicit(kic) else cipher.name if cipher else None,
            "kic_key_version": kic >> 4, "kid": f"{kid:02x}",
            "kid_algorithm": "implicit" if is_implicit(kid) else checksum.name if checksum else None,
            "kid_key_version": kid >> 4}


def _status_name(status: int) -> str:
    """Return the name of a PoR status code (TS 102 225 §5.2.3), or "reserved"."""
    from dmsim.cards.scp80 import ResponseStatus
    return ResponseStatus(status).name.lower() if status in ResponseStatus._value2member_map_ else "reserved"


def _unkeyed_ota(body: bytes, is_por: bool, spi, ciphered: bool) -> dict:
    """Return the fields of a packet whose keys were not given: the header always (TS 102 225
    §5.1, §5.2), and, when not ciphered, the counter, CC and data as received (not checked)."""
    if is_por:
        out: dict = {"packet": "response", "rpl": int.from_bytes(body[:2], "big"), "rhl": body[2],
                     "tar": body[3:6].hex()}
        fixed, cc_len, secured = 7, body[2] - 10, body[6:]
    else:
        out = {"packet": "command", "cpl": int.from_bytes(body[:2], "big"), "chl": body[2],
               "spi": spi.encode().hex(), "spi_fields": _spi_fields(spi),
               **_key_octets(body[5], body[6], spi.integrity), "tar": body[7:10].hex()}
        fixed, cc_len, secured = 6, body[2] - 13, body[10:]
    if ciphered:
        out["body"] = f"ciphered ({len(secured)} octets): give --kic and --kid to decipher it and check its CC"
        out["verified"] = None
        return out
    pcntr = secured[5]
    data = secured[fixed + cc_len:]
    out.update(cntr=int.from_bytes(secured[:5], "big"), pcntr=pcntr, cc=secured[fixed:fixed + cc_len].hex(),
               data=data[:max(len(data) - pcntr, 0)].hex())
    if is_por:
        out.update(status=secured[6], status_name=_status_name(secured[6]))
    out["verified"] = None
    out["check"] = "not checked: give --kid to check the CC"
    return out


@decode.command("ota", epilog=examples(
    OTA_EXAMPLE,
    "dmsim decode ota 00281506192222b00011e87cceebb2d93083011ce294f93fc4d8de80da1abae8c37ca3e72ec4432e5058"
    "    # no keys: the header",
    "dmsim decode ota 027100000d0ab00011000000000100009000   # a PoR with its UDH"))
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
    deciphers with --kic and checks the CC with --kid. Without the keys it needs, it prints the
    header and says what stays unread (exit 0: nothing was checked)."""
    from dmsim.cards import scp80
    from dmsim.base.errors import SecuredPacketError
    raw = parse_hex(hex_input)
    kic_octet, kid_octet = parse_octet(kic_byte, "--kic-byte"), parse_octet(kid_byte, "--kid-byte")
    spi_octets = parse_hex(spi_hex, "--spi")
    if len(spi_octets) != 2:
        raise ParseFailure(f"--spi {spi_hex!r}: {len(spi_octets)} octets, expected 2")
    udh = raw[:3] in (scp80.UDH_COMMAND, scp80.UDH_RESPONSE)
    is_por = por or raw[:3] == scp80.UDH_RESPONSE
    kic_key = parse_hex(kic_hex, "--kic") if kic_hex else b""
    kid_key = parse_hex(kid_hex, "--kid") if kid_hex else b""
    ok = True
    with decoding():
        try:
            if is_por:
                keys = scp80.Keyset(kic_octet or 0, kid_octet or 0, kic_key, kid_key)
                pkt = scp80.decode_por(raw, spi_octets, keys, with_udh=udh)
                out = {"packet": "response", "tar": pkt.tar.hex(), "cntr": pkt.cntr, "pcntr": pkt.pcntr,
                       "status": pkt.status, "status_name": _status_name(pkt.status), "cc": pkt.checksum.hex(),
                       "data": pkt.data.hex()}
            else:
                pkt = scp80.decode_command(raw, lambda tar, kic, kid: scp80.Keyset(kic, kid, kic_key, kid_key),
                                           with_udh=udh)
                out = {"packet": "command", "spi": pkt.spi.encode().hex(), "spi_fields": _spi_fields(pkt.spi),
                       **_key_octets(pkt.kic, pkt.kid, pkt.spi.integrity), "tar": pkt.tar.hex(), "cntr": pkt.cntr,
                       "pcntr": pkt.pcntr, "cc": pkt.checksum.hex(), "data": pkt.data.hex()}
            out["verified"] = True
        except SecuredPacketError as exc:
            spi = exc.spi
            ciphered = spi is not None and (spi.por_ciphered if is_por else spi.ciphered)
            integrity = spi is not None and (spi.por_integrity if is_por else spi.integrity)
            if (ciphered and not kic_key) or (integrity == scp80.Integrity.CC and not kid_key):
                # deciphering and the CC check go together (scp80): a ciphered body stays unread
                out = _unkeyed_ota(raw[3:] if udh else raw, is_por, spi, ciphered)
            else:
                ok = False
                out = {"packet": "response" if is_por else "command", "tar": exc.tar.hex(),
                       "spi": spi.encode().hex() if spi is not None else None, "verified": False,
                       "status": exc.status, "status_name": _status_name(exc.status), "error": exc.detail}
    emit(out, as_json, ok=ok)
