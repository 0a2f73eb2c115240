"""Knockouts: for each conformance row (``dmsim conformance``), a named way to switch off from
outside the code the mechanism the row claims, so that ``dmsim conformance --check --knockouts``
can show that the row's evidence really depends on it: under the knockout at least one cited test
must fail, or the row *overclaims*.

A :class:`Knockout` is data: an ``id``, what it breaks (``description``), the ``target`` it
replaces (``"module:qualname"``, e.g. ``"dmsim.network.dm.server:DmServer._refuse"``) and a
``replacement`` factory that takes the original object and returns what replaces it (a wrapper,
a function that skips a check, a constant). Nothing in the protocol cores knows about knockouts:
:func:`apply` patches through a ``pytest.MonkeyPatch`` inside a pytest process, loaded by the
plugin :mod:`dmsim.sim.cli.knockout_plugin` (environment variable ``DMSIM_KNOCKOUT``).

Patching rule: a target named where it is *defined* (a function ``f`` of module ``x``, patched as
``x:f``) is replaced there and in every module that imported it by name (``from x import f``: the
other ``dmsim.*`` modules and the test modules), so the function is broken for everyone. A target
named in the module that *imported* it (``dmsim.network.dm.server:bootstrap_mac``) is replaced in
that module only: one side breaks, its peer does not. Methods and class attributes are replaced on
their class. The patch is applied when pytest starts (before collection), so module-level and
module-scoped fixtures see it too; tests that run dmsim in a subprocess do not.

:data:`ROWS` names the knockout of each checked row by (source, side, item) (items repeat across
sources, and seed 000 prints DM-SEC-C-004-M in both of its tables); :data:`UNCHECKED` gives the
reason for a ``yes``/``partial`` row with evidence that has no knockout (none at present).
"""
from __future__ import annotations

import dataclasses
import importlib
import inspect
import sys
from dataclasses import dataclass
from typing import Any, Callable

ENV = "DMSIM_KNOCKOUT"  # the knockout id the plugin applies (empty or unset: none)


@dataclass(frozen=True)
class Knockout:
    """One way to switch a mechanism off: replace ``target`` ("module:qualname") by
    ``replacement(original)``."""

    id: str
    description: str
    target: str
    replacement: Callable[[Any], Any]


def _resolve(target: str) -> tuple[Any, str, Any]:
    """Return (owner, attribute name, current value) of ``"module:qualname"``; ImportError or
    AttributeError when it names nothing."""
    module_name, sep, qualname = target.partition(":")
    if not sep or not qualname:
        raise AttributeError(f"knockout target {target!r} is not of the form module:qualname")
    owner: Any = importlib.import_module(module_name)
    *path, name = qualname.split(".")
    for part in path:
        owner = getattr(owner, part)
    if inspect.isclass(owner):
        value = inspect.getattr_static(owner, name)  # keeps staticmethod/property objects as they are
    else:
        value = getattr(owner, name)
    return owner, name, value


def _aliases(module_name: str, name: str, original: Any) -> list[tuple[Any, str]]:
    """Return the (module, name) bindings of ``original`` (a function or class defined in module
    ``module_name`` as ``name``) in the other loaded dmsim and test modules."""
    if not (inspect.isfunction(original) or inspect.isclass(original)):
        return []
    if getattr(original, "__module__", None) != module_name or getattr(original, "__name__", None) != name:
        return []
    found = []
    for mod_name, module in list(sys.modules.items()):
        if module is None or mod_name == module_name:
            continue
        path = str(getattr(module, "__file__", "") or "")
        if not (mod_name.startswith("dmsim.") or "/tests/" in path.replace("\\", "/")):
            continue
        for attr, value in list(vars(module).items()):
            if value is original:
                found.append((module, attr))
    return found


def check_target(knockout: Knockout) -> None:
    """Raise (ImportError/AttributeError) when the knockout's target does not resolve."""
    _resolve(knockout.target)


def apply(knockout: Knockout, monkeypatch) -> list[str]:
    """Apply ``knockout`` through ``monkeypatch`` (a ``pytest.MonkeyPatch``); return the bindings
    replaced, as "module.name" texts. Undone by ``monkeypatch.undo()``."""
    owner, name, original = _resolve(knockout.target)
    new = knockout.replacement(original)
    monkeypatch.setattr(owner, name, new)
    where = f"{owner.__module__}.{owner.__qualname__}" if inspect.isclass(owner) else owner.__name__
    done = [f"{where}.{name}"]
    if inspect.ismodule(owner):
        for module, attr in _aliases(owner.__name__, name, original):
            monkeypatch.setattr(module, attr, new)
            done.append(f"{module.__name__}.{attr}")
    return done


# --- replacement factories ----------------------------------------------------------------------

def _value(value: Any) -> Callable[[Any], Any]:
    """Replace the target by ``value`` (a constant)."""
    return lambda original: value


def _returns(result: Any) -> Callable[[Any], Any]:
    """Replace a function by one that ignores its arguments and returns ``result``."""
    def factory(original):
        def knocked_out(*args, **kwargs):
            return result
        return knocked_out
    return factory


def _init_then(**attrs: Any) -> Callable[[Any], Any]:
    """Wrap ``__init__``: run it, then set ``attrs`` on the new object."""
    def factory(original):
        def __init__(self, *args, **kwargs):
            original(self, *args, **kwargs)
            for key, value in attrs.items():
                setattr(self, key, value)
        return __init__
    return factory


def _with_nonce(pick: Callable[[Any, tuple, dict], bytes | None]) -> Callable[[Any], Any]:
    """Wrap a DmServer/DmClient method so that, during the call, the object's nonce source
    (``self._nonce``) returns ``pick(self, args, kwargs)`` instead of a fresh nonce (when not None)."""
    def factory(original):
        def method(self, *args, **kwargs):
            nonce = pick(self, args, kwargs)
            if nonce is None:
                return original(self, *args, **kwargs)
            saved = self._nonce
            self._nonce = lambda n: nonce
            try:
                return original(self, *args, **kwargs)
            finally:
                self._nonce = saved
        return method
    return factory


def _stored_client_nonce(server, args, kwargs):
    """The nonce the server stores for the device of the request header ``args[0]``."""
    account = server.accounts.get(args[0].source)
    return account.client_nonce if account is not None else None


def _current_client_nonce(server, args, kwargs):
    """The client nonce of the account ``args[1]`` of ``DmServer._step`` (the one just used)."""
    return args[1].client_nonce


def _server_refuses_without_chal(original):
    """DmServer._refuse that never sends a Chal: every refusal is final."""
    def _refuse(self, *args, **kwargs):
        kwargs["final"] = True
        return original(self, *args, **kwargs)
    return _refuse


def _client_checks_server_cred_before_a_chal(original):
    """DmClient.receive that ends the session on a 401/407 whose message carries no valid server
    Cred, instead of answering the challenge of a server not yet authenticated (DM-SEC-C-009-O)."""
    def receive(self, body, content_type, headers=None, now=0.0):
        from dmsim.devices.dm_client import Done
        from dmsim.network.dm import messages as m
        from dmsim.network.dm.auth import check_credential
        try:
            msg = m.decode(body, content_type)
            hdr, verdict = m.read_header(msg), m.header_status(msg)
        except Exception:  # noqa: BLE001  (not plain SyncML: the original decides)
            hdr = verdict = None
        if verdict is not None and verdict.code in (m.UNAUTHORIZED, m.MISSING_CREDENTIALS):
            a = self.account
            if hdr.cred is None or not check_credential(hdr.cred, a.server_scheme, a.server_name,
                                                        a.server_password, a.server_nonce):
                return Done(False, "server_auth_failed")
        return original(self, body, content_type, *([] if headers is None else [headers]), now=now)
    return receive


class _AcceptAll:
    """An HmacVerifier stand-in that accepts every message (a verdict of OK)."""

    def verify(self, header_value, msg, key, now):
        from dmsim.network.dm.hmac_integrity import Reason, Verdict
        return Verdict(Reason.OK)


def _without_hmac_check(original):
    """Wrap a DmClient/DmServer method so that, during the call, ``self.hmac`` accepts any MAC."""
    def method(self, *args, **kwargs):
        saved, self.hmac = self.hmac, _AcceptAll()
        try:
            return original(self, *args, **kwargs)
        finally:
            self.hmac = saved
    return method


def _send_without_mac(only_after_first: bool):
    """Wrap DmClient._send: the x-syncml-hmac header is dropped (from every message, or from the
    second message of the session on)."""
    def factory(original):
        def _send(self, *args, **kwargs):
            from dmsim.network.dm.hmac_integrity import HEADER_NAME
            out = original(self, *args, **kwargs)
            if only_after_first and self.msg_id <= 1:
                return out
            headers = {k: v for k, v in out.headers.items() if k.lower() != HEADER_NAME}
            return dataclasses.replace(out, headers=headers)
        return _send
    return factory


def _server_macs_first_reply_only(original):
    """DmServer._mac_headers that returns no x-syncml-hmac for a reply whose MsgID is not 1."""
    def _mac_headers(self, account, body, now):
        from dmsim.network.dm import messages as m
        for ctype in (m.DM_WBXML, m.DM_XML):
            try:
                msg_id = m.read_header(m.decode(body, ctype)).msg_id
                break
            except Exception:  # noqa: BLE001
                continue
        else:
            msg_id = "1"
        return original(self, account, body, now) if str(msg_id) == "1" else {}
    return _mac_headers


def _one_server_password(original):
    """DmServer.provision that gives every device the same server password."""
    def provision(self, device_uri, **kwargs):
        kwargs["server_password"] = "one-server-password-for-all"
        return original(self, device_uri, **kwargs)
    return provision


def _key_type_broken(*key_types: str):
    """Wrap bootstrap_key: the key of each of ``key_types`` is built the way a plausible bug would
    build it (NETWORKID: the IMSI's ASCII digits instead of its semi-octets; USERPIN: the PIN in
    UTF-16; USERPIN_NETWORKID: NETWORKID ":" USERPIN, the order swapped). Not a NUL appended:
    HMAC pads its key with zeros, so that would change nothing."""
    def factory(original):
        def bootstrap_key(key_type, *, imsi=None, userpin=None):
            from dmsim.network.dm.bootstrap_mac import canonical_key_type, networkid_from_imsi
            kt = canonical_key_type(key_type)
            key = original(key_type, imsi=imsi, userpin=userpin)  # its own refusals first
            if kt not in key_types:
                return key
            if kt == "NETWORKID":
                return (imsi or "").encode("ascii")
            if kt == "USERPIN":
                return userpin.encode("utf-16-be")
            return networkid_from_imsi(imsi or "") + b":" + userpin.encode("ascii")
        return bootstrap_key
    return factory


def _networkid_ascii(original):
    """networkid_from_imsi that returns the IMSI's ASCII digits (after its own checks)."""
    def networkid_from_imsi(imsi):
        original(imsi)
        return imsi.encode("ascii")
    return networkid_from_imsi


def _verify_bootstrap_without_mac(original):
    """verify_bootstrap that parses the Content-Type but never compares the HMAC."""
    def verify_bootstrap(content_type, wbxml_body, *, imsi, userpin):
        from dmsim.base.errors import BootstrapVerificationError, DecodeError
        from dmsim.network.dm.bootstrap_mac import parse_content_type
        try:
            return parse_content_type(content_type)[0]
        except DecodeError as exc:
            raise BootstrapVerificationError(f"bad bootstrap Content-Type: {exc}") from exc
    return verify_bootstrap


def _mac_under_empty_key(original):
    """bootstrap_mac (as the server calls it) under an empty key instead of the device's secret."""
    return lambda key, body: original(b"", body)


def _digest_without_nonce(original):
    """digest_from_hash that leaves the nonce out: H(B64(H(name:password)))."""
    def digest_from_hash(cred_hash, nonce, scheme="syncml:auth-md5"):
        return original(cred_hash, b"", scheme)
    return digest_from_hash


def _basic_without_colon(original):
    """auth.basic that leaves out the ':' between name and password: B64(name password)."""
    def basic(name, password):
        import base64
        return base64.b64encode(f"{name}{password}".encode()).decode("ascii")
    return basic


def _server_takes_any_basic_cred(original):
    """check_credential (as the server calls it) that takes any syncml:auth-basic Cred."""
    def check_credential(cred, scheme, name, password, nonce):
        if scheme == "syncml:auth-basic":
            return cred.scheme == scheme
        return original(cred, scheme, name, password, nonce)
    return check_credential


def _psk_lookup_ignores_identity(original):
    """_PskLookup.__getitem__ that answers the first key for any identity."""
    def __getitem__(self, identity):
        return next(iter(self._psks.values()))
    return __getitem__


def _client_config_without_validation(original):
    """x509_client_config whose client validates no certificate (no trust store, no host name)."""
    def x509_client_config(ca_pem, server_hostname, **kwargs):
        return dataclasses.replace(original(ca_pem, server_hostname, **kwargs), trust=(), server_hostname=None)
    return x509_client_config


def _psk_client_offers_a_non_seed_suite(original):
    """psk_client_config whose client offers TLS_PSK_WITH_AES_128_CBC_SHA (0x008C), no seed suite."""
    def psk_client_config(identity, key, **kwargs):
        from dmsim.network.dm.tls_suites import SeedSuite
        other = SeedSuite("TLS_PSK_WITH_AES_128_CBC_SHA", 0x008C, "psk", "PSK", 0x0302)
        return dataclasses.replace(original(identity, key, **kwargs), suites=(other,))
    return psk_client_config


def _suites_without(mode: str):
    """suites_for that leaves out every suite of ``mode`` ("psk" or "x509")."""
    def factory(original):
        def suites_for(m, *, server):
            return tuple(s for s in original(m, server=server) if s.mode != mode)
        return suites_for
    return factory


def _psk_client_without_psk(original):
    """psk_client_config whose client holds no PSK (PSK-TLS switched off on the client)."""
    def psk_client_config(identity, key, **kwargs):
        return dataclasses.replace(original(identity, key, **kwargs), psk=None)
    return psk_client_config


def _server_serves_plain_psk_only(original):
    """server_config whose server serves, of the PSK-TLS suites, the plain PSK ones only (no
    RSA_PSK, no ECDHE_PSK). (Not through suites_for: the tests' parameters come from it.)"""
    def server_config(**kwargs):
        config = original(**kwargs)
        return dataclasses.replace(config, suites=tuple(s for s in config.suites
                                                        if s.mode != "psk" or s.key_exchange == "PSK"))
    return server_config


def _versions_without_tls_1_1(original):
    """_check_versions that raises the lowest version to TLS 1.2 (TLS 1.1 switched off)."""
    def _check_versions(versions):
        low, high = original(versions)
        return max(low, 0x0303), max(high, 0x0303)
    return _check_versions


def _versions_without_tls_1_2(original):
    """_check_versions that caps the highest version at TLS 1.1 (TLS 1.2 switched off)."""
    def _check_versions(versions):
        low, high = original(versions)
        return min(low, 0x0302), min(high, 0x0302)
    return _check_versions


def _no_psk_store(original):
    """server_config that builds the server without its PSK store (PSK-TLS switched off)."""
    def server_config(**kwargs):
        config = original(**kwargs)
        return dataclasses.replace(config, psks=None, suites=tuple(s for s in config.suites if not s.uses_psk)
                                   or config.suites)
    return server_config


def _no_certificate(original):
    """_load_own_credential that drops the server's certificate chain (X.509 switched off)."""
    return lambda cert_pem, key_pem: ((), b"", False)


def _hmac_md5_unchecked(original):
    """HmacMd5.unprotect that returns the message without checking its x-syncml-hmac."""
    return lambda self, body, content_type, headers, secret, now: body


def _xmldsig_unchecked(original):
    """xml_signature.verify that removes the Signature without verifying it."""
    def verify(doc, key):
        from dmsim.network.dm import xml_signature as xs
        root = xs.parse(doc)
        root.remove(xs._check_form(root))
        return xs.serialise(root)
    return verify


def _key_ignores_secret(original):
    """A key derivation (``f(secret, ...)``) that ignores the secret: one fixed key for all."""
    def derive(secret, *args, **kwargs):
        return original(b"not-the-aauthsecret", *args, **kwargs)
    return derive


def _host_skips_r_mac(original):
    """Scp03Host.unwrap that does not verify the R-MAC (it strips it and decrypts)."""
    def unwrap(self, resp):
        from dmsim.cards import scp03
        from dmsim.cards import scp03_crypto as crypto
        session = self._require_session()
        data, sw = resp[:-2], resp[-2:]
        if len(resp) < 2 or not scp03._sw_is_protected(sw):
            return original(self, resp)
        if session.level & scp03.R_MAC:
            data = data[:-crypto.S8]
        if session.level & scp03.R_ENCRYPTION and data:
            plain = crypto.cbc_decrypt(session.keys.s_enc, crypto.response_icv(session.keys.s_enc, session.counter),
                                       data)
            if plain is None:
                raise scp03.Scp03Error("R-ENCRYPTION data length or padding")
            data = plain
        return data + sw
    return unwrap


# --- LwM2M (seed 004) ---------------------------------------------------------------------------

def _dtls_send_in_clear(original):
    """DtlsEndpoint.send that queues the application data as a bare datagram, outside DTLS."""
    def send(self, data):
        if self.state != "open":
            return original(self, data)
        self._queue.append(bytes(data))
    return send


def _account_is_bootstrap_account(original):
    """Lwm2mClient.account that answers the bootstrap server's Security instance for every server."""
    return lambda self, ssid: self.bootstrap_account()


def _policy_suites(names: tuple[str, ...]) -> tuple:
    """The suites of the named :mod:`dtls_policy` lists, in order."""
    from dmsim.network.lwm2m import dtls_policy
    return tuple(suite for name in names for suite in getattr(dtls_policy, name))


def _psk_suites_offered(*, low: tuple[str, ...], high: tuple[str, ...]):
    """Wrap dtls_policy.client_suites: in PSK mode a client offers the suites of the named
    dtls_policy lists, ``low`` for a low-entropy credential, ``high`` for a high one."""
    def factory(original):
        def client_suites(mode, entropy=None):
            from dmsim.network.lwm2m.dtls_policy import LOW, SecurityMode
            suites = original(mode, entropy)
            if mode != SecurityMode.PSK:
                return suites
            return _policy_suites(low if entropy == LOW else high)
        return client_suites
    return factory


def _psk_suites_served(*names: str):
    """Wrap dtls_policy.server_suites: in PSK mode a server serves the suites of the named lists."""
    def factory(original):
        def server_suites(mode):
            from dmsim.network.lwm2m.dtls_policy import SecurityMode
            return _policy_suites(names) if mode == SecurityMode.PSK else original(mode)
        return server_suites
    return factory


def _peer_key_unchecked(*, on_server: bool):
    """DtlsEndpoint._check_peer_certificate that checks nothing on the server (``on_server``) or the
    client side: no pinning, no P-256 check, no configured server certificate."""
    def factory(original):
        def _check_peer_certificate(self, der):
            if self.config.server == on_server:
                return None
            return original(self, der)
        return _check_peer_certificate
    return factory


def _registry_allows_reuse(original):
    """KeyRegistry.claim that lets a key bound to one endpoint be claimed by another."""
    def claim(self, endpoint_name, public_key):
        return original(self, self.owner(public_key) or endpoint_name, public_key)
    return claim


def _rpk_not_served(original):
    """dtls.rpk_server_config that refuses to build an RPK-mode server."""
    def rpk_server_config(*args, **kwargs):
        from dmsim.base.errors import ScenarioError
        raise ScenarioError("RPK mode is not served", path="security.mode", expected="PSK or Certificate")
    return rpk_server_config


def _dtls_never_resumes(original):
    """DtlsEndpoint.resume that refuses every sealed association (a full handshake after each sleep)."""
    def resume(cls, *args, **kwargs):
        from dmsim.base.errors import ProtocolError
        raise ProtocolError("no sealed association is ever resumed")
    return classmethod(resume)


def _dtls_server_never_suspends(original):
    """DtlsEndpoint.suspend that a server endpoint refuses (it cannot keep its side across the
    client's sleep)."""
    def suspend(self, *args, **kwargs):
        if not self.config.server:
            return original(self, *args, **kwargs)
        from dmsim.base.errors import ProtocolError
        raise ProtocolError("the server cannot save its association")
    return suspend


def _envelope_any_pid_and_class(original):
    """SmsBindingReceiver._envelope_verdict that takes any TP-PID and TP-DCS (the UDH checks stay)."""
    def _envelope_verdict(self, pid, dcs, ies):
        return original(self, self.termination.pid, self.termination.dcs, ies)
    return _envelope_verdict


def _uicc_sent_as_device(original):
    """SmsBindingSender.__init__ that sends with the device termination (class 1, TP-PID 7D) when
    asked for the UICC one."""
    def __init__(self, params, keys, termination, *args, **kwargs):
        from dmsim.network.lwm2m.sms_binding import Termination
        if termination is Termination.UICC:
            termination = Termination.DEVICE
        original(self, params, keys, termination, *args, **kwargs)
    return __init__


def _sms_algorithm_allowed(reason_name: str):
    """Wrap sms_security.algorithm_reason: a KIc/KID coding it refuses for ``reason_name`` (a
    ``Reason`` member) is allowed (its key length is still checked)."""
    def factory(original):
        def algorithm_reason(octet, *, kid):
            from dmsim.network.lwm2m.sms_security import Reason
            reason = original(octet, kid=kid)
            return None if reason is Reason[reason_name] else reason
        return algorithm_reason
    return factory


def _counter_equal_accepted(original):
    """sms_security.counter_verdict that takes a counter equal to the RE's (a replay)."""
    def counter_verdict(cntr, stored, data):
        return original(cntr, stored - 1 if cntr == stored and stored > 0 else stored, data)
    return counter_verdict


def _sms_sizes_unchecked(original):
    """objects._range_error that takes any size for the SMS Binding Key Parameters and Secret Keys."""
    def _range_error(oid, rid, value):
        from dmsim.network.lwm2m.objects import Sec
        if oid == 0 and rid in (Sec.SMS_KEY_PARAMETERS, Sec.SMS_SECRET_KEYS):
            return None
        return original(oid, rid, value)
    return _range_error


def _bad_sms_taken(original):
    """unprotect (as the SMS binding calls it) that takes a packet whose checksum or ciphering fails."""
    def unprotect(params, keys, stored_counter, packet):
        from dmsim.network.lwm2m.sms_security import Discarded, Reason, Unprotected
        result = original(params, keys, stored_counter, packet)
        if isinstance(result, Discarded) and result.reason in (Reason.BAD_MAC, Reason.CIPHERING):
            return Unprotected(bytes(packet), stored_counter + 1)
        return result
    return unprotect


def _object_0_open_to_dm_servers(original):
    """Lwm2mClient._dm_op that routes a DM server's request on object 0 like one on any object (to
    the store's rights and the resource definitions) instead of refusing it as bootstrap-only."""
    def _dm_op(self, peer, msg, path):
        from dmsim.network.coap.message import Code
        if not path or path[0] != 0 or not isinstance(peer, int) or peer not in self.store.server_ssids():
            return original(self, peer, msg, path)
        route = {(Code.GET, len(path)): lambda: self._read(peer, msg, path),
                 (Code.PUT, 2): lambda: self._write(peer, msg, path, replace=True),
                 (Code.PUT, 3): lambda: self._write(peer, msg, path, replace=True),
                 (Code.POST, 1): lambda: self._create(peer, msg, 0),
                 (Code.POST, 2): lambda: self._write(peer, msg, path, replace=False),
                 (Code.DELETE, 2): lambda: self._delete(peer, msg, path)}.get((msg.code, len(path)))
        return route() if route else original(self, peer, msg, path)
    return _dm_op


def _bootstrap_read_with_secrets(original):
    """Lwm2mClient._bootstrap_op that answers a Read from the bootstrap server with the stored
    values, secrets included (LwM2M 1.1's Bootstrap-Read, unfiltered)."""
    def _bootstrap_op(self, peer, msg, path):
        from dmsim.network.coap.message import Code, ContentFormat
        from dmsim.network.lwm2m import content
        from dmsim.network.lwm2m.events import Send
        if msg.code != Code.GET or not path:
            return original(self, peer, msg, path)
        oid, instance = path[0], self.store.get(path[0], path[1]) if len(path) > 1 else None
        if len(path) == 1:
            payload = content.encode_object(oid, self.store.instances(oid))
        elif len(path) == 2:
            payload = content.encode_instance(oid, instance or {})
        else:
            payload = content.encode_resource(oid, path[2], (instance or {}).get(path[2], b""))
        return [Send(peer, self._reply(msg, Code.CONTENT, payload=payload,
                                       content_format=ContentFormat.LWM2M_TLV))]
    return _bootstrap_op


def _short_server_id_optional(original):
    """objects._check_security that lets a server's Security instance go without a Short Server ID."""
    def _check_security(iid, r):
        from dmsim.network.lwm2m.objects import Sec
        return original(iid, {Sec.SHORT_SERVER_ID: 1, **r})
    return _check_security


def _unbootstrap_nothing(original):
    """ObjectStore.unbootstrap that changes nothing (an empty report)."""
    def unbootstrap(self, ssid):
        from dmsim.devices.lwm2m_store import UnbootstrapReport
        return UnbootstrapReport(ssid)
    return unbootstrap


# --- the knockouts ------------------------------------------------------------------------------

_S = "dmsim.network.dm.server:"
_C = "dmsim.devices.dm_client:"
_TLS = "dmsim.network.dm.tls:"
_DTLS = "dmsim.network.lwm2m.dtls:"
_DPOLICY = "dmsim.network.lwm2m.dtls_policy:"
_SMSSEC = "dmsim.network.lwm2m.sms_security:"
_SMSB = "dmsim.network.lwm2m.sms_binding:"

def _receiver_without_memory(original):
    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.max_seen = 0
    return init


def _plain_http_transport(original):
    def plain(model, server):
        from dmsim.sim.links.transports import SimulatedHttp
        return SimulatedHttp(model, server)
    return plain


def _old_slot_rule(original):
    """Serving.frees_slot as it was: only a reply that ends the session frees the slot."""
    def frees_slot(self, reply, uri):
        return reply.session_over and uri not in self.core.sessions
    return frees_slot


def _failure_rotates_nonce(original):
    """DmServer._refuse as the server was before issue 13: the nonce of the challenge a failed
    credential gets becomes the device's stored nonce (so a stranger's bad package 1 rotates the
    nonce the device holds), and the retry is checked against the stored nonce alone (the
    challenge is not kept for its session); a second failure in a session still ends it (§5.4.3)."""
    def _refuse(self, hdr, scheme, reply_type, now, outcome, sess, *, final=False):
        key = (hdr.source, hdr.session_id)
        challenged = self.__dict__.setdefault("_challenged_sessions", set())
        reply = original(self, hdr, scheme, reply_type, now, outcome, sess, final=final or key in challenged)
        challenge = self.challenges.pop(*key)
        account = self.accounts.get(hdr.source)
        if challenge is not None and account is not None:
            self.accounts[hdr.source] = account.with_nonces(client=challenge.nonce)
        (challenged.discard if reply.session_over else challenged.add)(key)
        return reply
    return _refuse


KNOCKOUT_LIST: tuple[Knockout, ...] = (
    # application-layer authentication (§5.4)
    Knockout("client-sends-no-cred", "the client puts no Cred in its messages (its make_credential answers None)",
             _C + "make_credential", _returns(None)),
    Knockout("client-accepts-any-server-cred", "the client takes any server Cred as valid",
             _C + "check_credential", _returns(True)),
    Knockout("client-never-challenges-server", "a first bad server Cred ends the session at once: the client "
             "never sends its 401 Chal (DmClient starts with one server rejection counted)",
             _C + "DmClient.__init__", _init_then(_server_rejections=1)),
    Knockout("client-refuses-chal-of-unauthenticated-server", "the client answers a 401/407 Chal only when that "
             "message's server Cred verifies (a challenge carries none, so it gives up)",
             _C + "DmClient.receive", _client_checks_server_cred_before_a_chal),
    Knockout("server-sends-no-cred", "the server puts no Cred in its messages (its make_credential answers None)",
             _S + "make_credential", _returns(None)),
    Knockout("server-accepts-any-client-cred", "the server takes any client Cred as valid",
             _S + "client_credential_ok", _returns(True)),
    Knockout("server-refuses-without-chal", "every refusal of the server is final: 401/407 without Chal",
             _S + "DmServer._refuse", _server_refuses_without_chal),
    Knockout("server-rechallenge-reuses-stored-nonce", "the 401 after a failed credential carries the nonce the "
             "server already stores for the device, not a new one (§5.4.3)",
             _S + "DmServer._refuse", _with_nonce(_stored_client_nonce)),
    Knockout("server-next-nonce-repeats", "the NextNonce of every answer is the nonce the client just used "
             "(no new nonce per session, §5.4.3/§5.5)",
             _S + "DmServer._step", _with_nonce(_current_client_nonce)),
    Knockout("basic-cred-without-colon", "the syncml:auth-basic credential is B64(name password), no ':'",
             "dmsim.network.dm.auth:basic", _basic_without_colon),
    Knockout("server-accepts-any-basic-cred", "the server takes any syncml:auth-basic Cred as valid",
             _S + "check_credential", _server_takes_any_basic_cred),
    Knockout("digest-without-nonce", "the §5.4.2 digest leaves out the nonce: H(B64(H(name:password)))",
             "dmsim.network.dm.auth:digest_from_hash", _digest_without_nonce),
    Knockout("server-one-password-for-all", "DmServer.provision gives every device the same server password",
             _S + "DmServer.provision", _one_server_password),
    # HMAC integrity (§5.6)
    Knockout("client-accepts-any-mac", "the client's x-syncml-hmac verifier accepts every server message",
             _C + "DmClient.receive", _without_hmac_check),
    Knockout("server-accepts-any-mac", "the server's x-syncml-hmac verifier accepts every request",
             _S + "DmServer._handle_hmac", _without_hmac_check),
    Knockout("client-sends-no-mac", "the client sends no x-syncml-hmac header",
             _C + "DmClient._send", _send_without_mac(only_after_first=False)),
    Knockout("client-macs-first-message-only", "the client's x-syncml-hmac is on its first message only",
             _C + "DmClient._send", _send_without_mac(only_after_first=True)),
    Knockout("server-sends-no-mac", "the server adds no x-syncml-hmac header to its replies",
             _S + "DmServer._mac_headers", _returns({})),
    Knockout("server-macs-first-reply-only", "the server's x-syncml-hmac is on its reply of MsgID 1 only",
             _S + "DmServer._mac_headers", _server_macs_first_reply_only),
    # bootstrap (§5.10.2)
    Knockout("device-skips-bootstrap-mac", "the device accepts a bootstrap without comparing its HMAC",
             "dmsim.network.dm.bootstrap_mac:verify_bootstrap", _verify_bootstrap_without_mac),
    Knockout("server-bootstrap-mac-without-key", "the server MACs its bootstraps under an empty key",
             _S + "bootstrap_mac", _mac_under_empty_key),
    Knockout("bootstrap-keys-wrong", "every bootstrap key type is built wrong (NETWORKID as ASCII digits, USERPIN "
             "in UTF-16, USERPIN_NETWORKID as NETWORKID:USERPIN), on both sides alike",
             "dmsim.network.dm.bootstrap_mac:bootstrap_key", _key_type_broken("NETWORKID", "USERPIN",
                                                                               "USERPIN_NETWORKID")),
    Knockout("bootstrap-networkid-key-wrong", "NETWORKID is the IMSI's ASCII digits, not its semi-octets "
             "(§5.10.2.3.1), on both sides alike", "dmsim.network.dm.bootstrap_mac:networkid_from_imsi",
             _networkid_ascii),
    Knockout("bootstrap-userpin-key-wrong", "the USERPIN key is the PIN in UTF-16, on both sides alike",
             "dmsim.network.dm.bootstrap_mac:bootstrap_key", _key_type_broken("USERPIN")),
    Knockout("bootstrap-userpin-networkid-key-wrong", "the USERPIN_NETWORKID key is NETWORKID \":\" USERPIN (the "
             "order swapped), on both sides alike", "dmsim.network.dm.bootstrap_mac:bootstrap_key",
             _key_type_broken("USERPIN_NETWORKID")),
    Knockout("scp03-host-skips-r-mac", "the device (SCP03 host) does not verify the card's R-MAC",
             "dmsim.cards.scp03:Scp03Host.unwrap", _host_skips_r_mac),
    # TLS (seed 000 §9.2)
    Knockout("tls-client-validates-no-certificate", "the X.509 client has no trust store and no host name: "
             "any server certificate is taken", _TLS + "x509_client_config", _client_config_without_validation),
    Knockout("tls-psk-lookup-ignores-identity", "the server's PSK store answers its first key for any identity",
             _TLS + "_PskLookup.__getitem__", _psk_lookup_ignores_identity),
    Knockout("tls-client-offers-non-seed-psk-suite", "the PSK client offers TLS_PSK_WITH_AES_128_CBC_SHA only",
             _TLS + "psk_client_config", _psk_client_offers_a_non_seed_suite),
    Knockout("tls-no-x509-suites", "no X.509-mode suite is offered or served (suites_for drops them)",
             "dmsim.network.dm.tls_suites:suites_for", _suites_without("x509")),
    Knockout("tls-client-without-psk", "the PSK-TLS client holds no PSK (psk_client_config drops it)",
             _TLS + "psk_client_config", _psk_client_without_psk),
    Knockout("tls-server-serves-plain-psk-only", "of the PSK-TLS suites the server serves the plain PSK ones "
             "only (no RSA_PSK, no ECDHE_PSK)", _TLS + "server_config", _server_serves_plain_psk_only),
    Knockout("tls-server-without-psk-store", "the server is built without its PSK store (PSK-TLS off)",
             _TLS + "server_config", _no_psk_store),
    Knockout("tls-server-without-certificate", "the server loads no certificate chain (X.509 off)",
             _TLS + "_load_own_credential", _no_certificate),
    Knockout("tls-no-1.1", "every TLS configuration runs TLS 1.2 only", _TLS + "_check_versions",
             _versions_without_tls_1_1),
    Knockout("tls-no-1.2", "every TLS configuration runs TLS 1.1 at most", _TLS + "_check_versions",
             _versions_without_tls_1_2),
    Knockout("tls-no-version-check", "dmsim's own version check of Client/ServerHello lets SSL 3.0 through "
             "(LOWEST_VERSION is 0x0300)", "dmsim.network.dm.tls_suites:LOWEST_VERSION", _value(0x0300)),
    Knockout("bootstrap-over-plain-http", "the bootstrap server is reached over plain HTTP: no TLS, no PSK "
             "(seed 001 §9.3.1.1 off)", "dmsim.sim.agents.bootstrap_server:BootstrapHttps", _plain_http_transport),
    # 3GPP_GBA (003 §5.10.2.4)
    Knockout("gba-dmbik-prose-p0", "DMBIK's P0 is the prose's \"dmbik\" (5 octets), not the seed's bytes "
             "\"dm-bik\"", "dmsim.network.gba.keys:DMBIK_P0", _value(b"dmbik")),
    Knockout("gba-bootstrap-tag-unchecked", "the 3GPP_GBA bootstrap's HMAC-SHA-256 tag is taken as it comes "
             "(compare_digest always true)", "dmsim.network.dm.gba_bootstrap:hmac.compare_digest",
             _value(lambda a, b: True)),
    Knockout("gba-gpi-replay-accepted", "the device forgets every GPI it processed (no replay memory)",
             "dmsim.network.gba.push:PushReceiver.__init__", _receiver_without_memory),
    # seed 002 message security
    Knockout("hmac-md5-unchecked", "HmacMd5.unprotect accepts every message without checking its MAC",
             "dmsim.network.dm.message_security:HmacMd5.unprotect", _hmac_md5_unchecked),
    Knockout("xmldsig-unchecked", "xml_signature.verify removes the Signature without verifying it",
             "dmsim.network.dm.xml_signature:verify", _xmldsig_unchecked),
    Knockout("xmlenc-key-ignores-secret", "the XML-Encryption key is derived from a fixed text, not the "
             "AAuthSecret", "dmsim.network.dm.xml_encryption:derive_key", _key_ignores_secret),
    Knockout("mo-encryption-key-ignores-secret", "the management-object key is derived from a fixed text, not "
             "the secret", "dmsim.network.dm.mo_encryption:_key", _key_ignores_secret),
    # LwM2M channel security (seed 004)
    Knockout("lwm2m-dtls-app-data-in-clear", "a DTLS endpoint sends its application data as a bare datagram, "
             "outside the record protection (NoSec on a coaps channel)", _DTLS + "DtlsEndpoint.send",
             _dtls_send_in_clear),
    Knockout("lwm2m-client-account-is-bootstrap-account", "the client hands its driver the bootstrap server's "
             "Security instance for every server channel", "dmsim.devices.lwm2m_client:Lwm2mClient.account",
             _account_is_bootstrap_account),
    Knockout("lwm2m-identities-indistinct", "every authenticated identity reads as the same (empty) one: neither "
             "the bootstrap server nor the LwM2M Server tells one client's channel from another's",
             "dmsim.network.lwm2m.events:identity_bytes", _returns(b"")),
    Knockout("lwm2m-client-psk-always-ecdhe", "a PSK client offers ECDHE-PSK only, also with a high-entropy key "
             "(method 1's PSK suites never offered)", _DPOLICY + "client_suites",
             _psk_suites_offered(low=("LOW_ENTROPY_PSK_SUITES",), high=("LOW_ENTROPY_PSK_SUITES",))),
    Knockout("lwm2m-client-low-entropy-offers-psk-suites", "a low-entropy PSK client offers the PSK suites beside "
             "ECDHE-PSK", _DPOLICY + "client_suites",
             _psk_suites_offered(low=("LOW_ENTROPY_PSK_SUITES", "HIGH_ENTROPY_PSK_SUITES"),
                                 high=("HIGH_ENTROPY_PSK_SUITES",))),
    Knockout("lwm2m-client-low-entropy-on-plain-psk", "a low-entropy PSK client offers the PSK suites instead of "
             "ECDHE-PSK (method 2's suite never offered)", _DPOLICY + "client_suites",
             _psk_suites_offered(low=("HIGH_ENTROPY_PSK_SUITES",), high=("HIGH_ENTROPY_PSK_SUITES",))),
    Knockout("lwm2m-server-serves-ecdhe-psk-only", "a PSK-mode DTLS server serves ECDHE-PSK only (no PSK suite "
             "for method 1)", _DPOLICY + "server_suites", _psk_suites_served("LOW_ENTROPY_PSK_SUITES")),
    Knockout("lwm2m-server-without-ecdhe-psk", "a PSK-mode DTLS server serves the PSK suites only (no ECDHE-PSK "
             "for method 2)", _DPOLICY + "server_suites", _psk_suites_served("HIGH_ENTROPY_PSK_SUITES")),
    Knockout("lwm2m-server-allows-low-entropy-psk-suites", "the server never refuses a low-entropy PSK identity, "
             "whatever the suite (psk_suite_refusal answers None)", _DPOLICY + "psk_suite_refusal", _returns(None)),
    Knockout("lwm2m-dtls-client-pins-no-server-key", "a DTLS client checks nothing of the server's certificate "
             "message: no RPK pinning, no P-256 check, no configured server certificate",
             _DTLS + "DtlsEndpoint._check_peer_certificate", _peer_key_unchecked(on_server=False)),
    Knockout("lwm2m-dtls-server-pins-no-client-key", "a DTLS server checks nothing of the client's certificate "
             "message: any RPK is taken", _DTLS + "DtlsEndpoint._check_peer_certificate",
             _peer_key_unchecked(on_server=True)),
    Knockout("lwm2m-key-registry-allows-reuse", "the key registry lets a second endpoint claim a key bound to "
             "another", _DPOLICY + "KeyRegistry.claim", _registry_allows_reuse),
    Knockout("lwm2m-dtls-server-without-rpk", "no RPK-mode DTLS server can be configured (method 3 with raw "
             "public keys not served)", _DTLS + "rpk_server_config", _rpk_not_served),
    Knockout("lwm2m-dtls-no-resume", "a sealed DTLS association is never resumed", _DTLS + "DtlsEndpoint.resume",
             _dtls_never_resumes),
    Knockout("lwm2m-dtls-server-no-suspend", "a DTLS server endpoint cannot be sealed across the client's sleep",
             _DTLS + "DtlsEndpoint.suspend", _dtls_server_never_suspends),
    Knockout("sms-binding-in-clear", "the SMS binding sends the CoAP message as it is, no secured packet "
             "(protect as sms_binding calls it returns the data)", "dmsim.network.lwm2m.sms_binding:protect",
             _value(lambda params, keys, counter, data: bytes(data))),
    Knockout("sms-binding-any-pid-and-class", "the SMS binding receiver takes any TP-PID and message class",
             _SMSB + "SmsBindingReceiver._envelope_verdict", _envelope_any_pid_and_class),
    Knockout("uicc-me-passes-every-sms-to-the-card", "the ME gives every SMS to the card's LwM2M applet (no "
             "class 2 / TP-PID 7F / TAR check)", "dmsim.devices.lwm2m_sms_uicc:lwm2m_verdict", _returns(None)),
    Knockout("sms-uicc-termination-sent-as-device", "a sender asked for the UICC termination sends class 1 with "
             "TP-PID 7D", _SMSB + "SmsBindingSender.__init__", _uicc_sent_as_device),
    Knockout("sms-single-des-allowed", "single DES KIc/KID codings are no longer refused",
             _SMSSEC + "algorithm_reason", _sms_algorithm_allowed("SINGLE_DES")),
    Knockout("sms-two-key-3des-allowed", "two-key 3DES KIc/KID codings are no longer refused",
             _SMSSEC + "algorithm_reason", _sms_algorithm_allowed("TWO_KEY_3DES")),
    Knockout("sms-aes-any-mode", "AES KIc/KID codings other than CBC / CMAC are no longer refused",
             _SMSSEC + "algorithm_reason", _sms_algorithm_allowed("AES_MODE")),
    Knockout("sms-counter-equal-accepted", "a secured packet whose counter equals the RE's is processed (a "
             "replay)", _SMSSEC + "counter_verdict", _counter_equal_accepted),
    Knockout("sms-key-parameters-7-octets", "the SMS Binding Key Parameters resource is read as the seed's field "
             "list adds up, 7 octets with a two-octet SPI", _SMSSEC + "KEY_PARAMETERS_LENGTH", _value(7)),
    Knockout("lwm2m-sms-resource-sizes-unchecked", "the Security object takes SMS Binding Key Parameters and "
             "Secret Keys of any size", "dmsim.network.lwm2m.objects:_range_error", _sms_sizes_unchecked),
    Knockout("sms-binding-takes-bad-sms", "the SMS binding receiver takes a packet whose checksum or ciphering "
             "fails instead of discarding it", "dmsim.network.lwm2m.sms_binding:unprotect", _bad_sms_taken),
    Knockout("lwm2m-object-0-open-to-dm-servers", "the client routes a DM server's request on object 0 to the "
             "ordinary rights and resource checks, no bootstrap-only refusal",
             "dmsim.devices.lwm2m_client:Lwm2mClient._dm_op", _object_0_open_to_dm_servers),
    Knockout("lwm2m-bootstrap-read-with-secrets", "the client answers the bootstrap server's Read with the stored "
             "values, secrets included", "dmsim.devices.lwm2m_client:Lwm2mClient._bootstrap_op",
             _bootstrap_read_with_secrets),
    Knockout("lwm2m-short-server-id-optional", "a server's Security instance may go without a Short Server ID",
             "dmsim.network.lwm2m.objects:_check_security", _short_server_id_optional),
    Knockout("lwm2m-unbootstrap-does-nothing", "unbootstrapping changes nothing in the store (D.1.3 steps 1-4 "
             "off; the De-register is still sent)", "dmsim.devices.lwm2m_store:ObjectStore.unbootstrap",
             _unbootstrap_nothing),
)

# Knockouts that restore a defect dmsim once had, for attack rehearsal (``dmsim attack matrix``
# runs an attack's ``before_knockouts`` as a row of their own); no conformance row cites them.
REHEARSAL_LIST: tuple[Knockout, ...] = (
    Knockout("client-keeps-server-nonce", "the client issues the server no NextNonce after accepting its Cred, so "
             "the server's digest Cred repeats in every message and session (the client before issue 16)",
             "dmsim.devices.dm_client:DmClient._next_server_nonce", _returns(None)),
    Knockout("server-slot-held-by-challenge", "a server slot is freed only when a session ends: a 401/407 to an "
             "unauthenticated package 1 keeps its slot (the simulated server before issue 16)",
             "dmsim.sim.agents.serving:Serving.frees_slot", _old_slot_rule),
    Knockout("server-failure-rotates-nonce", "a failed credential's challenge nonce becomes the device's stored "
             "nonce and the retry is checked against it alone (the server before issue 13: a stranger's bad "
             "package 1 rotates the nonce the device holds)", _S + "DmServer._refuse", _failure_rotates_nonce),
)

KNOCKOUTS: dict[str, Knockout] = {k.id: k for k in KNOCKOUT_LIST + REHEARSAL_LIST}

_003, _000, _002, _004, _GBA = "003", "seed 000", "seed 002", "seed 004", "003 §5.10.2.4"
_CL, _SV = "client", "server"

# (source, side, item) -> knockout id
ROWS: dict[tuple[str, str, str], str] = {
    # OMA-TS-DM_Security-V1_3 Appendix B.1 (client)
    (_003, _CL, "DM-SEC-C-001-M-O"): "client-sends-no-cred",
    (_003, _CL, "DM-SEC-C-002-M"): "client-accepts-any-server-cred",
    (_003, _CL, "DM-SEC-C-003-O"): "tls-client-validates-no-certificate",
    (_003, _CL, "DM-SEC-C-004-O"): "client-sends-no-cred",
    (_003, _CL, "DM-SEC-C-005-O"): "client-sends-no-cred",
    (_003, _CL, "DM-SEC-C-006-O"): "client-never-challenges-server",
    (_003, _CL, "DM-SEC-C-007-O"): "client-sends-no-cred",
    (_003, _CL, "DM-SEC-C-008-O"): "digest-without-nonce",
    (_003, _CL, "DM-SEC-C-009-O"): "client-refuses-chal-of-unauthenticated-server",
    (_003, _CL, "DM-SEC-C-010-O"): "client-accepts-any-mac",
    (_003, _CL, "DM-SEC-C-011-O"): "client-sends-no-mac",
    (_003, _CL, "DM-SEC-C-012-O"): "client-macs-first-message-only",
    (_003, _CL, "DM-SEC-C-018-O"): "device-skips-bootstrap-mac",
    (_003, _CL, "DM-SEC-C-019-O"): "device-skips-bootstrap-mac",
    (_003, _CL, "DM-SEC-C-020-O"): "scp03-host-skips-r-mac",
    (_003, _CL, "DM-SEC-C-021-O"): "bootstrap-keys-wrong",
    (_003, _CL, "DM-SEC-C-022-M"): "bootstrap-networkid-key-wrong",
    (_003, _CL, "DM-SEC-C-023-M"): "bootstrap-userpin-key-wrong",
    (_003, _CL, "DM-SEC-C-024-O"): "bootstrap-userpin-networkid-key-wrong",
    # Appendix B.2 (server)
    (_003, _SV, "DM-SEC-S-001-M"): "server-one-password-for-all",
    (_003, _SV, "DM-SEC-S-002-M"): "tls-psk-lookup-ignores-identity",
    (_003, _SV, "DM-SEC-S-003-M"): "server-sends-no-cred",
    (_003, _SV, "DM-SEC-S-004-O"): "server-refuses-without-chal",
    (_003, _SV, "DM-SEC-S-005-O"): "server-accepts-any-client-cred",
    (_003, _SV, "DM-SEC-S-006-O"): "server-refuses-without-chal",
    (_003, _SV, "DM-SEC-S-007-O"): "server-accepts-any-client-cred",
    (_003, _SV, "DM-SEC-S-008-M"): "server-rechallenge-reuses-stored-nonce",
    (_003, _SV, "DM-SEC-S-009-O"): "server-next-nonce-repeats",
    (_003, _SV, "DM-SEC-S-011-O"): "server-accepts-any-mac",
    (_003, _SV, "DM-SEC-S-012-O"): "server-sends-no-mac",
    (_003, _SV, "DM-SEC-S-013-O"): "server-macs-first-reply-only",
    (_003, _SV, "DM-SEC-S-022-O"): "server-bootstrap-mac-without-key",
    (_003, _SV, "DM-SEC-S-023-O"): "server-bootstrap-mac-without-key",
    (_003, _SV, "DM-SEC-S-024-O"): "bootstrap-over-plain-http",
    (_003, _SV, "DM-SEC-S-025-O"): "bootstrap-keys-wrong",
    (_003, _SV, "DM-SEC-S-026-M"): "bootstrap-networkid-key-wrong",
    (_003, _SV, "DM-SEC-S-027-M"): "bootstrap-userpin-key-wrong",
    (_003, _SV, "DM-SEC-S-028-O"): "bootstrap-userpin-networkid-key-wrong",
    # seed 000 B.1.1 (client, TLS)
    (_000, _CL, "DM-SEC-C-001-M"): "basic-cred-without-colon",
    (_000, _CL, "DM-SEC-C-003-M"): "tls-client-validates-no-certificate",
    (_000, _CL, "DM-SEC-C-004-M"): "tls-client-without-psk",
    (_000, _CL, "DM-SEC-C-008-M"): "tls-no-1.1",
    (_000, _CL, "DM-SEC-C-009-O"): "tls-no-1.2",
    (_000, _CL, "DM-SEC-C-010-O"): "tls-client-without-psk",
    (_000, _CL, "DM-SEC-C-011-O"): "tls-client-offers-non-seed-psk-suite",
    (_000, _CL, "DM-SEC-C-012-O"): "tls-no-x509-suites",
    (_000, _CL, "DM-SEC-C-013-O"): "tls-no-x509-suites",
    (_000, _CL, "DM-SEC-C-014-M"): "tls-no-version-check",
    # seed 000 B.2.1 (server, TLS)
    (_000, _SV, "DM-SEC-S-001-M"): "server-accepts-any-basic-cred",
    (_000, _SV, "DM-SEC-S-003-M"): "tls-server-without-certificate",
    (_000, _SV, "DM-SEC-C-004-M"): "tls-server-without-psk-store",
    (_000, _SV, "DM-SEC-S-004-M"): "tls-no-1.1",
    (_000, _SV, "DM-SEC-S-007-O"): "tls-no-1.2",
    (_000, _SV, "DM-SEC-S-005-M"): "tls-server-without-psk-store",
    (_000, _SV, "DM-SEC-S-006-M"): "tls-server-serves-plain-psk-only",
    (_000, _SV, "DM-SEC-S-012-M"): "tls-server-without-certificate",
    (_000, _SV, "DM-SEC-S-013-M"): "tls-no-x509-suites",
    # seed 002 (message security)
    (_GBA, _CL, "GBA-PUSH-C-001-O"): "gba-dmbik-prose-p0",
    (_GBA, _CL, "GBA-PUSH-C-002-O"): "gba-bootstrap-tag-unchecked",
    (_GBA, _CL, "GBA-PUSH-C-003-O"): "gba-gpi-replay-accepted",
    (_GBA, _SV, "GBA-PUSH-S-001-O"): "gba-dmbik-prose-p0",
    (_GBA, _SV, "GBA-PUSH-S-002-O"): "gba-bootstrap-tag-unchecked",
    (_GBA, _SV, "GBA-PUSH-S-003-O"): "gba-gpi-replay-accepted",
    (_002, _CL, "SEED-002-C-001-M"): "hmac-md5-unchecked",
    (_002, _CL, "SEED-002-C-002-M"): "xmldsig-unchecked",
    (_002, _CL, "SEED-002-C-003-M"): "xmlenc-key-ignores-secret",
    (_002, _CL, "SEED-002-C-004-O"): "mo-encryption-key-ignores-secret",
    (_002, _SV, "SEED-002-S-001-M"): "hmac-md5-unchecked",
    (_002, _SV, "SEED-002-S-002-M"): "xmldsig-unchecked",
    (_002, _SV, "SEED-002-S-003-M"): "xmlenc-key-ignores-secret",
    (_002, _SV, "SEED-002-S-004-O"): "mo-encryption-key-ignores-secret",
    # seed 004 (LwM2M channel security), client
    (_004, _CL, "SEED-004-C-001-M"): "lwm2m-dtls-app-data-in-clear",
    (_004, _CL, "SEED-004-C-002-M"): "lwm2m-client-account-is-bootstrap-account",
    (_004, _CL, "SEED-004-C-003-O"): "lwm2m-client-psk-always-ecdhe",
    (_004, _CL, "SEED-004-C-004-M"): "lwm2m-client-low-entropy-offers-psk-suites",
    (_004, _CL, "SEED-004-C-005-O"): "lwm2m-client-low-entropy-on-plain-psk",
    (_004, _CL, "SEED-004-C-006-O"): "lwm2m-dtls-client-pins-no-server-key",
    (_004, _CL, "SEED-004-C-009-O"): "lwm2m-dtls-no-resume",
    (_004, _CL, "SEED-004-C-010-M"): "sms-binding-in-clear",
    (_004, _CL, "SEED-004-C-011-M"): "sms-binding-any-pid-and-class",
    (_004, _CL, "SEED-004-C-012-O"): "uicc-me-passes-every-sms-to-the-card",
    (_004, _CL, "SEED-004-C-013-M"): "sms-single-des-allowed",
    (_004, _CL, "SEED-004-C-014-M"): "sms-two-key-3des-allowed",
    (_004, _CL, "SEED-004-C-015-M"): "sms-aes-any-mode",
    (_004, _CL, "SEED-004-C-016-O"): "sms-counter-equal-accepted",
    (_004, _CL, "SEED-004-C-017-M"): "sms-key-parameters-7-octets",
    (_004, _CL, "SEED-004-C-018-M"): "sms-binding-takes-bad-sms",
    (_004, _CL, "SEED-004-C-019-M"): "lwm2m-object-0-open-to-dm-servers",
    (_004, _CL, "SEED-004-C-020-M"): "lwm2m-bootstrap-read-with-secrets",
    (_004, _CL, "SEED-004-C-021-M"): "lwm2m-short-server-id-optional",
    (_004, _CL, "SEED-004-C-022-M"): "lwm2m-unbootstrap-does-nothing",
    # seed 004 (LwM2M channel security), server
    (_004, _SV, "SEED-004-S-001-M"): "lwm2m-dtls-app-data-in-clear",
    (_004, _SV, "SEED-004-S-002-M"): "lwm2m-identities-indistinct",
    (_004, _SV, "SEED-004-S-003-M"): "lwm2m-server-serves-ecdhe-psk-only",
    (_004, _SV, "SEED-004-S-004-M"): "lwm2m-server-allows-low-entropy-psk-suites",
    (_004, _SV, "SEED-004-S-005-M"): "lwm2m-server-without-ecdhe-psk",
    (_004, _SV, "SEED-004-S-006-M"): "lwm2m-dtls-server-pins-no-client-key",
    (_004, _SV, "SEED-004-S-007-M"): "lwm2m-key-registry-allows-reuse",
    (_004, _SV, "SEED-004-S-008-M"): "lwm2m-dtls-server-without-rpk",
    (_004, _SV, "SEED-004-S-009-O"): "lwm2m-dtls-server-no-suspend",
    (_004, _SV, "SEED-004-S-010-M"): "sms-binding-in-clear",
    (_004, _SV, "SEED-004-S-011-M"): "sms-binding-any-pid-and-class",
    (_004, _SV, "SEED-004-S-012-O"): "sms-uicc-termination-sent-as-device",
    (_004, _SV, "SEED-004-S-013-M"): "sms-single-des-allowed",
    (_004, _SV, "SEED-004-S-014-M"): "sms-two-key-3des-allowed",
    (_004, _SV, "SEED-004-S-015-M"): "sms-aes-any-mode",
    (_004, _SV, "SEED-004-S-016-O"): "sms-counter-equal-accepted",
    (_004, _SV, "SEED-004-S-017-M"): "lwm2m-sms-resource-sizes-unchecked",
    (_004, _SV, "SEED-004-S-018-M"): "sms-binding-takes-bad-sms",
    (_004, _SV, "SEED-004-S-021-M"): "lwm2m-short-server-id-optional",
}

# (source, side, item) -> why a yes/partial row with evidence has no knockout
UNCHECKED: dict[tuple[str, str, str], str] = {}


def row_key(row) -> tuple[str, str, str]:
    """Return the (source, side, item) key of a conformance row (:class:`conformance.Scr`)."""
    return (row.source, row.side, row.item)
