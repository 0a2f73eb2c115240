"""The device side of a transport-neutral DM bootstrap (OMA-TS-DM_Security-V1_3 §5.10.2.3, and
the 3GPP_GBA form of §5.10.2.4).

Takes the WAP Push that carried the bootstrap, checks its HMAC with the device's own secret
(NETWORKID from the IMSI, USERPIN, or both; or, for 3GPP_GBA, DMBIK over the ciphertext, then
decrypts with DMBEK: ``network/dm/gba_bootstrap.py``) and returns the DM account it installs. A
bootstrap whose MAC does not verify is rejected before its body is parsed (or decrypted), so a
tampered document never reaches the WBXML decoder.
"""
from __future__ import annotations

from dataclasses import dataclass

from dmsim.network.dm import wbxml
from dmsim.network.dm.account import DmAccount, account_from_bootstrap
from dmsim.network.dm.bootstrap_mac import verify_bootstrap
from dmsim.network.dm.gba_bootstrap import SEC_3GPP_GBA, unprotect
from dmsim.network.sms.wsp_push import decode_push
from dmsim.base.errors import BootstrapVerificationError, DmsimError


@dataclass(frozen=True)
class BootstrapAccepted:
    """A verified bootstrap: the key type that protected it and the account it installs."""

    key_type: str
    account: DmAccount


def accept_bootstrap(push_pdu: bytes, *, imsi: str, userpin: str | None) -> BootstrapAccepted:
    """Return the verified account from a WSP Push PDU; raise BootstrapVerificationError if it
    is malformed or its HMAC does not verify."""
    push = _push(push_pdu)
    key_type = verify_bootstrap(push.content_type, push.body, imsi=imsi, userpin=userpin)
    return BootstrapAccepted(key_type, _account(push.body))


def accept_gba_bootstrap(push_pdu: bytes, *, dmbik: bytes, dmbek: bytes) -> BootstrapAccepted:
    """Return the account of a 3GPP_GBA protected bootstrap (§5.10.2.4) in a WSP Push PDU, checked
    with DMBIK and decrypted with DMBEK; ProtectedBootstrapError (a BootstrapVerificationError
    for a malformed push or document) when it does not verify."""
    push = _push(push_pdu)
    return BootstrapAccepted(SEC_3GPP_GBA, _account(unprotect(push.content_type, push.body, dmbik, dmbek)))


def _push(push_pdu: bytes):
    try:
        return decode_push(push_pdu)
    except DmsimError as exc:
        raise BootstrapVerificationError(f"bootstrap push: {exc}") from exc


def _account(body: bytes) -> DmAccount:
    try:
        return account_from_bootstrap(wbxml.decode(body))
    except DmsimError as exc:
        raise BootstrapVerificationError(f"bootstrap document: {exc}") from exc
