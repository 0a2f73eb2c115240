"""The BSF's Ub and Zn (network/gba/bsf.py) with the Ub client (ub_client.py): a full bootstrap with the
TS 35.208 set 1 subscriber, a request computed independently with hashlib, resynchronisation, the refusals,
bounded state and hostile bytes."""
import base64
import hashlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dmsim.base.errors import AuthenticationError, ProtocolError
from dmsim.cards.milenage import f1, f2345
from dmsim.cards.sqn import SqnArray
from dmsim.network.dm.http_binding import decode
from dmsim.network.gba import digest_aka as dg
from dmsim.network.gba.bsf import Bsf
from dmsim.network.gba.hss import Hss
from dmsim.network.gba.hss_store import Subscriber
from dmsim.network.gba.keys import UA_HTTP_DIGEST, derive_ks_naf, gba_btid, make_naf_id
from dmsim.network.gba.ub_client import UbClient, parse_bootstrapping_info, software_aka

h = bytes.fromhex
K, OPC = h("465b5ce8b199b49faa5f0a2ee238a6bc"), h("cd63cb71954a9f4e48a5994e37a02baf")
AMF = h("8000")
IMPI = "001010123456789@ims.mnc001.mcc001.3gppnetwork.org"
FQDN = "bsf.mnc001.mcc001.pub.3gppnetwork.org"
NAF_ID = make_naf_id("naf.example.org", UA_HTTP_DIGEST)
T0 = 1_700_000_000.0


def sub(impi=IMPI, imsi="001010123456789", gba_u=True, lifetime=3600):
    return Subscriber(impi, imsi, K, OPC, AMF, 0, gba_u, lifetime)


@pytest.fixture
def hss(tmp_path):
    hss = Hss.open(tmp_path / "hss.db", random.Random(5).randbytes)
    hss.provision([sub(), sub("gbame@example.org", "001010000000002", gba_u=False)])
    yield hss
    hss.close()


@pytest.fixture
def bsf(hss):
    return Bsf(hss, FQDN, challenge_ttl=30, max_pending=8, max_sessions=4)


def run_client(bsf, client, now=T0):
    req = client.first_request()
    while req is not None:
        req = client.receive(bsf.handle(req, now))
    return client.result


def get(auth: str) -> bytes:
    return f"GET / HTTP/1.1\r\nHost: {FQDN}\r\nAuthorization: {auth}\r\n\r\n".encode()


def test_full_bootstrap_then_zn(bsf):
    result = run_client(bsf, UbClient(IMPI, FQDN, software_aka(K, OPC, SqnArray()), random.Random(1).randbytes))
    _, ck, ik, _ = f2345(K, OPC, result.rand)
    assert result.ks == ck + ik
    assert result.btid == gba_btid(result.rand, FQDN) == base64.b64encode(result.rand).decode() + "@" + FQDN
    assert result.lifetime == "2023-11-14T23:13:20Z"              # T0 + 3600 s
    z = bsf.zn(result.btid, NAF_ID, T0 + 10)
    assert (z.ks_naf, z.ks_int_naf) == derive_ks_naf(ck + ik, result.rand, IMPI, NAF_ID)
    assert z.impi == IMPI and z.uicc_type == "GBA_U" and z.expires == T0 + 3600
    with pytest.raises(ProtocolError):
        bsf.zn(result.btid, NAF_ID, T0 + 3600)                      # expired
    with pytest.raises(ProtocolError):
        bsf.zn("nope@" + FQDN, NAF_ID, T0)


def test_gba_me_subscriber_gets_no_ks_int_naf(bsf):
    r = run_client(bsf, UbClient("gbame@example.org", FQDN, software_aka(K, OPC, SqnArray()), random.randbytes))
    z = bsf.zn(r.btid, NAF_ID, T0)
    assert z.ks_int_naf is None and z.uicc_type == "GBA"


def test_challenge_on_the_wire_and_an_independent_answer(bsf):
    first = decode(bsf.handle(get(f'Digest username="{IMPI}", realm="{FQDN}", nonce="", uri="/", response=""'), T0))
    assert first.start == "401"
    scheme, ch = dg.parse_challenge_params(first.headers["www-authenticate"])
    assert scheme == "Digest" and ch["qop"] == "auth-int" and ch["algorithm"] == "AKAv1-MD5" and ch["realm"] == FQDN
    raw = base64.b64decode(ch["nonce"])
    rand, autn = raw[:16], raw[16:32]
    res, ck, ik, ak = f2345(K, OPC, rand)
    sqn = bytes(a ^ b for a, b in zip(autn[:6], ak))
    assert autn[8:] == f1(K, OPC, rand, sqn, autn[6:8])            # AUTN verifies as the USIM checks it
    # the answer, computed with hashlib only (RFC 2617 §3.2.2, RFC 3310 §3.3: password = RES raw)
    md5 = lambda b: hashlib.md5(b).hexdigest()  # noqa: E731
    ha1 = md5(f"{IMPI}:{FQDN}:".encode() + res)
    ha2 = md5(b"GET:/:" + md5(b"").encode())
    resp = md5(f"{ha1}:{ch['nonce']}:00000001:abcd:auth-int:{ha2}".encode())
    auth = (f'Digest username="{IMPI}", realm="{FQDN}", nonce="{ch["nonce"]}", uri="/", qop=auth-int, '
            f'nc=00000001, cnonce="abcd", response="{resp}", algorithm=AKAv1-MD5')
    ok = decode(bsf.handle(get(auth), T0))
    assert ok.start == "200" and ok.content_type == "application/vnd.3gpp.bsf+xml"
    btid, _ = parse_bootstrapping_info(ok.body)
    assert btid == gba_btid(rand, FQDN)
    info = dg.parse_params(ok.headers["authentication-info"])
    ha2r = md5(b":/:" + md5(ok.body).encode())
    assert info["rspauth"] == md5(f"{ha1}:{ch['nonce']}:00000001:abcd:auth-int:{ha2r}".encode())
    # the same answer again: the challenge was used, the BSF challenges anew
    assert decode(bsf.handle(get(auth), T0)).start == "401"


def test_wrong_response_is_403_and_uses_up_the_challenge(bsf):
    first = decode(bsf.handle(get(f'Digest username="{IMPI}", nonce="", uri="/", response=""'), T0))
    _, ch = dg.parse_challenge_params(first.headers["www-authenticate"])
    auth = (f'Digest username="{IMPI}", realm="{FQDN}", nonce="{ch["nonce"]}", uri="/", qop=auth-int, '
            f'nc=00000001, cnonce="abcd", response="{"0" * 32}", algorithm=AKAv1-MD5')
    assert decode(bsf.handle(get(auth), T0)).start == "403"
    assert bsf.pending == {} and bsf.counters["auth_failures"] == 1


def test_resynchronisation(bsf, hss):
    card = SqnArray([4000] + [0] * 31)
    client = UbClient(IMPI, FQDN, software_aka(K, OPC, card), random.randbytes)
    result = run_client(bsf, client)
    assert result is not None and client.challenges == 2
    assert bsf.counters["resyncs"] == 1 and hss.store.get(IMPI).seq_he == 4001


def test_a_bsf_that_does_not_know_k_is_refused_by_the_client(tmp_path):
    hss = Hss.open(tmp_path / "x.db", random.randbytes)
    hss.provision([Subscriber(IMPI, "001010123456789", bytes(16), OPC, AMF, 0, True, 60)])
    with pytest.raises(AuthenticationError):
        run_client(Bsf(hss, FQDN), UbClient(IMPI, FQDN, software_aka(K, OPC, SqnArray()), random.randbytes))


def test_client_refuses_a_forged_rspauth(bsf):
    client = UbClient(IMPI, FQDN, software_aka(K, OPC, SqnArray()), random.randbytes)
    second = client.receive(bsf.handle(client.first_request(), T0))
    ok = bsf.handle(second, T0)
    i = ok.index(b'rspauth="') + len(b'rspauth="')
    forged = ok[:i] + (b"0" if ok[i:i + 1] != b"0" else b"1") + ok[i + 1:]
    with pytest.raises(AuthenticationError):
        client.receive(forged)


def test_unknown_user_is_403_and_no_state(bsf):
    r = decode(bsf.handle(get('Digest username="who@x", nonce="", uri="/", response=""'), T0))
    assert r.start == "403" and bsf.pending == {}


def test_repeated_first_requests_reuse_one_challenge(bsf, hss):
    req = get(f'Digest username="{IMPI}", nonce="", uri="/", response=""')
    nonces = {decode(bsf.handle(req, T0 + i)).headers["www-authenticate"] for i in range(20)}
    assert len(nonces) == 1 and hss.store.get(IMPI).seq_he == 1
    later = decode(bsf.handle(req, T0 + 31)).headers["www-authenticate"]   # the challenge expired
    assert later not in nonces and hss.store.get(IMPI).seq_he == 2


def test_pending_and_sessions_are_bounded(tmp_path):
    hss = Hss.open(tmp_path / "many.db", random.Random(2).randbytes)
    profiles = hss.provision_fleet(11, 30)
    bsf = Bsf(hss, FQDN, max_pending=5, max_sessions=3)
    for p in profiles:
        bsf.handle(get(f'Digest username="{p.impi}", nonce="", uri="/", response=""'), T0)
        assert len(bsf.pending) <= 5
    for p in profiles[:6]:
        opc = hss.subscriber(p.impi).opc
        run_client(bsf, UbClient(p.impi, FQDN, software_aka(p.k, opc, SqnArray()), random.randbytes))
        assert len(bsf.sessions) <= 3
    assert bsf.counters["pending_evicted"] >= 25 and bsf.counters["sessions_evicted"] == 3


@pytest.mark.parametrize("request_bytes", [
    b"", b"\r\n\r\n", b"GET / HTTP/1.1\r\n\r\n", b"POST / HTTP/1.1\r\n\r\n", b"GET /x HTTP/1.1\r\n\r\n",
    b"GET / HTTP/1.1\r\nAuthorization: Basic abc\r\n\r\n", b"GET / HTTP/1.1\r\nAuthorization: Digest a\r\n\r\n",
    b"GET / HTTP/1.1\r\nAuthorization: Digest username=\"\xff\"\r\n\r\n", b"GET / HTTP/1.1\r\nbroken\r\n\r\n",
    b"GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab", b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 3000 + b"\r\n",
    get('Digest username="u", nonce="@@@", uri="/", response=""'),
])
def test_malformed_requests_get_400_or_403(bsf, request_bytes):
    status = decode(bsf.handle(request_bytes, T0)).start
    assert status in ("400", "401", "403")


def test_bad_answers_to_a_real_challenge_are_refused(bsf):
    first = decode(bsf.handle(get(f'Digest username="{IMPI}", nonce="", uri="/", response=""'), T0))
    nonce = dg.parse_challenge_params(first.headers["www-authenticate"])[1]["nonce"]
    base = f'Digest username="{IMPI}", realm="{FQDN}", nonce="{nonce}", uri="/", '
    for tail in ('qop=auth, nc=00000001, cnonce="a", response="' + "0" * 32 + '"',
                 'qop=auth-int, nc=00000001, cnonce="a", response="short"',
                 'qop=auth-int, nc=00000001, cnonce="a", response="' + "0" * 32 + '", algorithm=MD5',
                 'qop=auth-int, cnonce="a", response="' + "0" * 32 + '"'):
        assert decode(bsf.handle(get(base + tail), T0)).start == "400"
    bad_auts = base + 'qop=auth-int, nc=00000001, cnonce="a", auts="!!", response="' + "0" * 32 + '"'
    assert decode(bsf.handle(get(bad_auts), T0)).start == "403"       # the empty-password digest is wrong


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes_never_raise(data):
    from dmsim.network.gba.hss_store import SubscriberStore
    bsf = Bsf(Hss(SubscriberStore(":memory:"), random.randbytes), FQDN)
    assert bsf.handle(data, T0).startswith(b"HTTP/1.1 4")
    assert bsf.handle(b"GET / HTTP/1.1\r\nAuthorization: Digest " + data + b"\r\n\r\n", T0).startswith(b"HTTP/1.1 4")
