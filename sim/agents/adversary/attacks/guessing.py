"""Offline guessing: a captured protected message is an oracle for the secret that protects it.

- ``userpin-guess`` (OMA-TS-DM_Security §5.10.2.3): a USERPIN (or USERPIN_NETWORKID) bootstrap
  carries HMAC-SHA1(key, WBXML body) in its Content-Type, with key = the PIN's ASCII digits (and
  ":" NETWORKID, which the public IMSI gives). One bootstrap captured on the air lets the
  attacker test every PIN offline, with no one to count the failures; the PIN space of
  ``user_pin_digits`` decimal digits is 10^n. The recovered PIN then MACs a forged bootstrap.
- ``md5-dictionary`` (§5.4.2): on plain HTTP, a syncml:auth-md5 (or auth-sha256) Cred is
  B64(H(B64(H(name:password)):nonce)); with the nonce seen on the wire it is a password oracle.
  A syncml:auth-basic Cred is B64(name:password) itself (§5.4: use Basic only under TLS).

Choices where the specs are silent (ours):

* **Simulated cost of a search.** The search runs for real (every guess is an HMAC or a digest
  of the captured bytes) and its CPU time is measured with ``time.perf_counter``, but that
  measurement is evidence only. The simulated time a search takes is ``guesses / guess_rate``
  (param, guesses per second), so a seed gives the same outcome on any machine. The default is
  this Python search on one core of the development machine (``bench/offline_guessing.py``
  measures it); a GPU attacker is about 10^4 times faster (give ``guess_rate`` to model one).
* **Search order.** PINs are tried in ascending order from a start drawn from the attack's
  seeded stream (wrapping at 10^n), so the work to the PIN does not depend on knowing it.
* **What the attacker knows.** The victim's IMSI (public, sequential in a fleet) and the PIN
  length, and which devices use a PIN (the device model's documented bootstrap: the profile's
  ``bootstrap_security`` in the simulation); the key type it uses is the one the captured push
  names. The nonce of a package 1 is the one the bootstrap delivered (AAuthData), which crossed
  the SMS air, not the IP path: an ``ip`` attacker pairs instead the NextNonce of the server's
  Chal (package 2, or a 401) with the Cred of the device's next message.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import time

from dmsim.base.errors import DmsimError
from dmsim.network.dm import http_binding, wbxml
from dmsim.network.dm import messages as m
from dmsim.network.dm.auth import AUTH_BASIC, AUTH_MD5, AUTH_SHA256
from dmsim.network.dm.bootstrap_mac import (NETWORKID, USERPIN_NETWORKID, bootstrap_mac, networkid_from_imsi,
                                            parse_content_type)
from dmsim.sim.agents.adversary.attacks.forgery import BOOTSTRAP_MAC_REFUSAL, BootstrapForgery
from dmsim.sim.agents.adversary.catalogue import Attack, Entry, register
from dmsim.sim.agents.adversary.outcome import BLOCKED, INCONCLUSIVE, SUCCEEDED
from dmsim.sim.agents.adversary.sms_forge import device_of, imsi_of, index_of, is_push_to, push_from_air

PIN_GUESS_RATE = 400_000.0  # HMAC-SHA1 guesses/s of pin_search on one core (bench/offline_guessing.py: 3.5e5-4e5)
PASSWORD_BITS = 128  # fresh_password (network/dm/account.py): 16 random octets
SECONDS_PER_YEAR = 365.25 * 86400
_BLOCK = 64  # SHA-1's block: an HMAC key up to this long is padded, not hashed (RFC 2104 §2)
_IPAD, _OPAD = bytes(b ^ 0x36 for b in range(256)), bytes(b ^ 0x5C for b in range(256))


# -- the searches (pure functions: the bench times them too) ---------------------------------------
def pin_search(body: bytes, mac: bytes, digits: int, *, suffix: bytes = b"", start: int = 0,
               limit: int | None = None) -> tuple[str | None, int]:
    """Return (the PIN, guesses tried) for which HMAC-SHA1(PIN || ``suffix``, ``body``) is
    ``mac`` (20 raw octets), trying ``digits``-digit PINs upwards from ``start`` (mod 10^digits),
    at most ``limit`` of them; (None, tried) when none of them is it.

    The HMAC is RFC 2104 written out (a key shorter than the block is padded, the pads are
    translation tables), which is about 1.6 times faster in CPython than ``hmac.digest``; the
    PIN found is checked again with :func:`bootstrap_mac`."""
    space = 10 ** digits
    count = space if limit is None else min(space, max(0, int(limit)))
    if digits + len(suffix) > _BLOCK:
        raise ValueError("an HMAC key longer than the SHA-1 block is hashed first: not handled here")
    sha1, fmt = hashlib.sha1, b"%0" + str(digits).encode() + b"d"
    pad_i, pad_o = b"\x36" * (_BLOCK - digits - len(suffix)), b"\x5c" * (_BLOCK - digits - len(suffix))
    pad_i, pad_o = suffix.translate(_IPAD) + pad_i, suffix.translate(_OPAD) + pad_o
    start %= space
    for tried, pin in enumerate(itertools.chain(range(start, space), range(start)), start=1):
        if tried > count:
            return None, count
        key = fmt % pin
        if sha1(key.translate(_OPAD) + pad_o + sha1(key.translate(_IPAD) + pad_i + body).digest()).digest() == mac:
            text = key.decode("ascii")
            if bootstrap_mac(text.encode("ascii") + suffix, body) == mac.hex().upper():
                return text, tried
    return None, count


def digest_search(cred: bytes, name: str, nonce: bytes, candidates, scheme: str = AUTH_MD5) -> tuple[str | None, int]:
    """Return (the password, guesses tried) whose §5.4.2 digest H(B64(H(name:password)):nonce)
    is ``cred`` (raw octets), trying ``candidates`` in order; (None, tried) when none is it."""
    h = {AUTH_MD5: hashlib.md5, AUTH_SHA256: hashlib.sha256}[scheme]
    prefix, tail, b64 = f"{name}:".encode(), b":" + nonce, base64.b64encode
    tried = 0
    for tried, password in enumerate(candidates, start=1):
        if h(b64(h(prefix + password.encode()).digest()) + tail).digest() == cred:
            return password, tried
    return None, tried


COMMON = ("123456", "password", "12345678", "qwerty", "123456789", "12345", "1234", "111111", "1234567",
          "dragon", "123123", "baseball", "abc123", "football", "monkey", "letmein", "shadow", "master",
          "666666", "qwertyuiop", "123321", "mustang", "1234567890", "michael", "654321", "superman",
          "1qaz2wsx", "7777777", "121212", "000000", "qazwsx", "123qwe", "killer", "trustno1", "jordan",
          "jennifer", "zxcvbnm", "asdfgh", "hunter", "buster", "soccer", "harley", "batman", "andrew",
          "tigger", "sunshine", "iloveyou", "2000", "charlie", "robert", "thomas", "hockey", "ranger",
          "daniel", "starwars", "klaster", "112233", "george", "computer", "michelle", "jessica", "pepper",
          "admin", "root", "secret", "changeme", "default", "welcome", "guest", "test", "operator", "device",
          "server", "client", "syncml", "omadm", "dmsim", "nokia", "android", "samsung", "modem", "iot")


def dictionary(size: int, name: str = ""):
    """Yield ``size`` candidate passwords as a cracker's wordlist orders them: the common
    passwords, the account name and its digits, then each alphabetic common word (as is,
    capitalised, upper case) followed by a year 1950-2030, then by 0-9999, by 0000-0999 and by a
    few symbol endings (about 2 million candidates in all)."""
    digits = "".join(c for c in name if c.isdigit())
    bases = list(COMMON) + [name, digits, digits[-4:], digits[-6:], digits[-8:], digits[::-1]]
    words = [w for b in COMMON if b.isalpha() for w in (b, b.capitalize(), b.upper())]
    suffixes = itertools.chain((str(y) for y in range(1950, 2031)), (str(n) for n in range(10000)),
                               (f"{n:04d}" for n in range(1000)), ("!", "1!", "123!", "@123"))
    stream = itertools.chain(bases, (w + s for s in suffixes for w in words))
    return itertools.islice(stream, max(0, int(size)))


def _rate(guesses: int, seconds: float) -> float | None:
    return round(guesses / seconds) if seconds > 0 else None


# -- userpin-guess ----------------------------------------------------------------------------------
@register
class UserPinGuess(BootstrapForgery):
    """Capture a targeted USERPIN device's bootstrap on the air (a false base station: every part
    of the server's pushes to it is jammed, so the device keeps waiting), search its PIN offline
    with the bootstrap's HMAC as the oracle, then forge a bootstrap under the recovered PIN
    (``BootstrapForgery``'s injection and per-device check). The simulated search takes
    ``guesses / guess_rate`` seconds; the server resends its bootstrap every
    ``server.bootstrap_timeout`` (jammed too), so the device is still waiting unless the search
    outlasts its resends. Verdict per device: it took the forged account (succeeded), it refused
    it (detected: ``bootstrap_rejected``), or no PIN was found within ``max_guesses`` or the
    device stopped waiting (blocked: nothing recorded the offline search; the jam then ends).
    """

    kind = "userpin-guess"
    positions = ("sms_air",)
    params = {"max_guesses": 10 ** 6, "guess_rate": PIN_GUESS_RATE}
    success_mechanism = ("none: the bootstrap HMAC-SHA1 (OMA-TS-DM_Security §5.10.2.3) is an offline oracle for "
                         "the USERPIN, whose space is 10^digits; nothing counts offline guesses")
    entry = Entry(
        family="guessing", title="USERPIN recovered offline from one captured bootstrap, then a forged bootstrap",
        seeds_say="§5.10.2.3: the USERPIN key is the PIN's digits (USERPIN_NETWORKID adds the IMSI, which is "
                  "public); the MAC over the captured WBXML lets every PIN be checked offline. The seeds rely on "
                  "the PIN's secrecy alone: a short PIN falls in seconds.",
        knowledge="the victim's IMSI and PIN length; one bootstrap seen on the air",
        position="a false base station on the SMS air interface (sees and jams the server's pushes)",
        time="10^digits HMAC-SHA1 at worst (bench/offline_guessing.py, CPython: 3-5 s for 6 digits on one core, "
             "310 s for 8 digits on two; a GPU is some 10^4 times faster)",
        expected="succeeded against USERPIN and USERPIN_NETWORKID (4-8 digits); n/a for NETWORKID (no PIN)")

    @classmethod
    def check(cls, data, spec):
        if not any(p["bootstrap_via"] == "sms" and "USERPIN" in p["bootstrap_security"]
                   for p in data["fleet"]["profiles"]):
            return ("no profile bootstraps over SMS with a USERPIN key (bootstrap_security USERPIN or "
                    "USERPIN_NETWORKID): NETWORKID has no PIN to guess")
        for key in ("max_guesses", "guess_rate"):
            if (spec.get("params") or {}).get(key, 1) <= 0:
                return f"params.{key} must be > 0"
        return None

    def install(self) -> None:
        super().install()  # the forger, the per-device sets, and self._on_air on the air links
        self.reassemblers: dict[int, object] = {}
        self.searches: dict[int, dict] = {}  # device index -> what its search cost and found

    def _on_air(self, msg, now, deliveries):
        index = device_of(msg)
        if index is None or not self.active() or not is_push_to(msg, index) or index in self.outcomes:
            return deliveries
        dev = self.replica.live.get(index)
        if (dev is None or dev.accepted or not self.targets(index)
                or "USERPIN" not in dev.ident.profile["bootstrap_security"]):
            return deliveries
        if index not in self.searches:
            push = push_from_air(self.reassemblers, index, msg.payload, now)
            if push is not None:
                self._search(dev, push)
        return []  # jammed: the device keeps waiting while the PIN is searched

    def _search(self, dev, push) -> None:
        """Search the PIN of the captured ``push`` now (real CPU), then go on in simulated time."""
        index = dev.ident.index
        try:
            key_type, mac = parse_content_type(push.content_type)
            imsi = m.read_header(wbxml.decode(push.body)).target.removeprefix("IMSI:")
            suffix = b":" + networkid_from_imsi(imsi) if key_type == USERPIN_NETWORKID else b""
        except DmsimError:
            self.searches[index] = {"guesses": 0, "cpu": 0.0, "pin": None, "digits": 0}
            self.decide(index, BLOCKED)
            return
        digits = int(dev.ident.profile["user_pin_digits"])
        self.act(index, f"captured a {key_type} bootstrap; offline search of 10^{digits} PINs")
        if key_type == NETWORKID:  # the push says NETWORKID after all: no PIN to search
            self.searches[index] = {"guesses": 0, "cpu": 0.0, "pin": None, "digits": digits}
            self.decide(index, BLOCKED)
            return
        start = self.rng.randrange(10 ** digits)
        t0 = time.perf_counter()
        pin, tried = pin_search(push.body, bytes.fromhex(mac), digits, suffix=suffix, start=start,
                                limit=int(self.p["max_guesses"]))
        cpu = time.perf_counter() - t0
        self.searches[index] = {"guesses": tried, "cpu": cpu, "pin": pin, "digits": digits}
        self.env.process(self._after_search(index, key_type, pin, tried / float(self.p["guess_rate"])))

    def _after_search(self, index: int, key_type: str, pin: str | None, seconds: float):
        """SimPy process: the search's simulated time, then the forged bootstrap (if a PIN was found
        and the device still waits for a bootstrap)."""
        yield self.env.timeout(seconds)
        dev = self.replica.live.get(index)
        if pin is None or dev is None or dev.accepted:
            self.searches[index]["late"] = pin is not None
            self.decide(index, BLOCKED)
            return
        self.sent.add(index)
        self._forge(dev, key_type, pin)

    def judge(self):
        runs = self.searches.values()
        guesses, cpu = sum(s["guesses"] for s in runs), sum(s["cpu"] for s in runs)
        blocked = ("the device stopped waiting before the search ended (server.bootstrap_retries resends, "
                   "server.bootstrap_timeout apart)" if any(s.get("late") for s in runs) else
                   f"PIN not found within max_guesses={int(self.p['max_guesses'])} (the search was offline: nothing "
                   "recorded it)")
        return self.forgery_outcome(
            bool(self.searches), none="no targeted USERPIN device's bootstrap crossed the air",
            success=self.success_text(), refusal=BOOTSTRAP_MAC_REFUSAL, blocked=blocked,
            captured=len(self.searches), pins_found=sum(1 for s in runs if s["pin"]), forged=len(self.sent),
            guesses=guesses, attacker_cpu_seconds=round(cpu, 4), guesses_per_second=_rate(guesses, cpu),
            simulated_search_seconds=round(guesses / float(self.p["guess_rate"]), 3),
            pin_digits=max((s["digits"] for s in runs), default=None))


# -- md5-dictionary ---------------------------------------------------------------------------------
@register
class DigestDictionary(Attack):
    """Watch the IP path (plain HTTP), pair each targeted device's Cred with the nonce it answers
    (the NextNonce of the server's last Chal to it), and run a dictionary of ``dictionary_size``
    candidates against the §5.4.2 digest (auth-md5 or auth-sha256); a syncml:auth-basic Cred is
    decoded at once. One Cred per device. Verdict: a device's password recovered (succeeded: read
    against the server's account for it), else blocked (the search is offline; nothing records
    it). The password dmsim provisions is ``fresh_password``: 128 random bits, which no wordlist
    holds; the evidence gives the guess rate and the expected time to search that space."""

    kind = "md5-dictionary"
    positions = ("ip",)
    params = {"dictionary_size": 100_000}
    entry = Entry(
        family="guessing", title="dictionary attack on a captured auth-md5 Cred (Basic: read at once)",
        seeds_say="§5.4.2: the digest B64(H(B64(H(name:pwd)):nonce)) with a nonce seen on the wire is an offline "
                  "oracle for the password; its strength is the password's. §5.4: Basic sends B64(name:pwd) and is "
                  "only for TLS. §5.4.3 recommends 128-bit random secrets (dmsim's fresh_password).",
        knowledge="one Cred and the Chal before it, on plain HTTP",
        position="the IP path to the DM server (passive)",
        time="dictionary_size digests (about 0.1 s for 10^5); 2^127 for a 128-bit random password",
        expected="succeeded against auth-basic on plain HTTP; blocked against auth-md5/sha256 (random passwords), "
                 "hmac (no Cred) and TLS (ciphertext)")

    @classmethod
    def check(cls, data, spec):
        if data["components"]["dm_server"]["kind"] != "virtual":
            return "the ip position watches the simulated links: needs components.dm_server.kind virtual"
        if (spec.get("params") or {}).get("dictionary_size", 1) < 0:
            return "params.dictionary_size must be >= 0"
        return None

    def install(self) -> None:
        self.nonces: dict[int, bytes] = {}  # device index -> the last NextNonce the server gave it
        self.cracked: dict[int, dict] = {}  # device index -> the search on its Cred
        self.seen = {"http": 0, "opaque": 0, "cred_without_nonce": 0, "no_cred": 0}
        up, down = self.adversary.ip_links()
        self.adversary.tap(up, self._on_request)
        self.adversary.tap(down, self._on_reply)

    def _syncml(self, payload: bytes):
        """Return the SyncML message an HTTP message on the wire carries, or None (TLS records,
        or not SyncML): what a passive observer can read."""
        try:
            http = http_binding.decode(payload)
            msg = m.decode(http.body, http.content_type)
        except DmsimError:
            self.seen["opaque"] += 1
            return None
        self.seen["http"] += 1
        return msg

    def _on_reply(self, msg, now, deliveries):
        if self.active():
            sync = self._syncml(msg.payload)
            if sync is not None:
                try:
                    index, status = index_of(m.read_header(sync).target), m.header_status(sync)
                except DmsimError:
                    return deliveries
                if index is not None and status is not None and status.next_nonce is not None:
                    self.nonces[index] = status.next_nonce
        return deliveries

    def _on_request(self, msg, now, deliveries):
        if not self.active():
            return deliveries
        sync = self._syncml(msg.payload)
        try:
            hdr = m.read_header(sync) if sync is not None else None
        except DmsimError:
            hdr = None
        if hdr is None:
            self._looked("read a request it cannot parse (TLS records)")
            return deliveries
        index = index_of(hdr.source)
        if index is None or index in self.cracked or not self.targets(index):
            return deliveries
        if hdr.cred is None:
            self.seen["no_cred"] += 1
            self._looked("read a request without Cred")
        elif hdr.cred.scheme == AUTH_BASIC:
            self._basic(index, hdr)
        elif hdr.cred.scheme in (AUTH_MD5, AUTH_SHA256):
            if index in self.nonces:
                self._dictionary(index, hdr, self.nonces[index])
            else:
                self.seen["cred_without_nonce"] += 1  # package 1: its nonce came in the bootstrap, over SMS
        return deliveries

    def _looked(self, what: str) -> None:
        """The attacker watched the wire and found nothing to guess from (its one act, then)."""
        if not self.acted:
            self.act(-1, what)
            self.decide()

    def _basic(self, index: int, hdr) -> None:
        self.act(index, "read an auth-basic Cred")
        try:
            name, _, password = base64.b64decode(hdr.cred.data, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            name, password = "", None
        self._recovered(index, AUTH_BASIC, name, password, guesses=1, cpu=0.0)

    def _dictionary(self, index: int, hdr, nonce: bytes) -> None:
        name = hdr.loc_name or ""
        self.act(index, f"dictionary of {int(self.p['dictionary_size'])} against a {hdr.cred.scheme} Cred")
        try:
            cred = base64.b64decode(hdr.cred.data, validate=True)
        except binascii.Error:
            cred = b""
        t0 = time.perf_counter()
        password, tried = digest_search(cred, name, nonce, dictionary(self.p["dictionary_size"], name), hdr.cred.scheme)
        self._recovered(index, hdr.cred.scheme, name, password, guesses=tried, cpu=time.perf_counter() - t0)

    def _recovered(self, index: int, scheme: str, name: str, password: str | None, *, guesses: int, cpu: float) -> None:
        """Record the search on device ``index``'s Cred; the verdict is read against the server's
        account for the device (the password it holds)."""
        account = self.replica.agents["server"].core.accounts.get(f"IMSI:{imsi_of(index)}")
        right = password is not None and account is not None and account.client_password == password
        self.cracked[index] = {"scheme": scheme, "guesses": guesses, "cpu": cpu, "recovered": right}
        self.decide(index, SUCCEEDED if right else BLOCKED)

    def judge(self):
        runs = self.cracked.values()
        digest_runs = [r for r in runs if r["scheme"] != AUTH_BASIC]
        guesses, cpu = sum(r["guesses"] for r in digest_runs), sum(r["cpu"] for r in digest_runs)
        rate = _rate(guesses, cpu)
        years = (2.0 ** (PASSWORD_BITS - 1) / rate / SECONDS_PER_YEAR) if rate else None
        evidence = {"creds": len(self.cracked), "recovered": sum(1 for r in runs if r["recovered"]),
                    "schemes": ",".join(sorted({r["scheme"] for r in runs})) or None, "guesses": guesses,
                    "attacker_cpu_seconds": round(cpu, 4), "guesses_per_second": rate,
                    "expected_years_for_128_bit_password": float(f"{years:.3g}") if years else None,
                    **{f"messages_{k}": v for k, v in self.seen.items()}}
        if any(r["recovered"] for r in runs):
            basic = any(r["recovered"] and r["scheme"] == AUTH_BASIC for r in runs)
            return self.outcome(SUCCEEDED, "none: syncml:auth-basic sends B64(name:password) in clear on plain HTTP "
                                "(OMA-TS-DM_Security §5.4: Basic only under TLS)" if basic else
                                "none: the password was in the dictionary", state_corrupted=False, **evidence)
        if digest_runs:
            return self.outcome(BLOCKED, "128-bit random passwords (fresh_password, OMA-TS-DM_Security §5.4.3): the "
                                         "§5.4.2 digest is an offline oracle but no wordlist holds the password",
                                **evidence)
        if self.cracked:
            return self.outcome(BLOCKED, "the Cred did not decode to the account's password", **evidence)
        if self.seen["no_cred"]:
            return self.outcome(BLOCKED, "no Cred on the wire: syncml:auth-hmac-sha256 (§5.6.1) sends a MAC keyed by "
                                         "the 128-bit random password instead", **evidence)
        if self.seen["opaque"] and not self.seen["http"]:
            return self.outcome(BLOCKED, "TLS (seed 000 §9.2.2): the Cred is encrypted on the wire", **evidence)
        return self.outcome(INCONCLUSIVE, "no targeted device's Cred crossed the IP path with its nonce", **evidence)

