"""The device side of a transport-neutral DM bootstrap (OMA-TS-DM_Security-V1_3 §5.10.2.3).

Takes the WAP Push that carried the bootstrap, checks its HMAC with the device's own secret
(NETWORKID from the IMSI, USERPIN, or both) and returns the DM account it installs. A bootstrap
whose MAC does not verify is rejected before its body is parsed, so a tampered document never
reaches the WBXML decoder.
"""
from __future__ import annotations

from dataclasses import dataclass

from dmsim.network.dm import wbxml
from dmsim.network.dm.account import DmAccount, account_from_bootstrap
from dmsim.network.dm.bootstrap_mac import verify_bootstrap
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
    try:
        push = decode_push(push_pdu)
    except DmsimError as exc:
        raise BootstrapVerificationError(f"bootstrap push: {exc}") from exc
    key_type = verify_bootstrap(push.content_type, push.body, imsi=imsi, userpin=userpin)
    try:
        account = account_from_bootstrap(wbxml.decode(push.body))
    except DmsimError as exc:
        raise BootstrapVerificationError(f"bootstrap document: {exc}") from exc
    return BootstrapAccepted(key_type, account)
