"""Step 1 of a device's life: power-on. The ME reads the IMSI from its UICC (TS 31.102 §4.2.2
EF_IMSI) with real APDUs through the replica's card seam (``sim/links/card_access.py``); a
``bootstrap_via: smartcard`` device also installs, over SCP03 at level 33, the accounts the
operator personalised into its card (seed 001 §8.1, Appendix H); a ``gba_push`` or ``gba_ub``
device's card is recorded at the HSS and kept for its GBA AKA. Then the device attaches to
the SMSC under that IMSI (its digits stand in for the MSISDN the SMSC routes on).

Choice where the specs are silent: a real card (device 0 of ``components.card: pcsc`` or the
modem's SIM) is never personalised by the simulation, since its SCP03 keys and PKCS#15 files are
the card's own; that device is bootstrapped over SMS whatever its profile says.
"""
from __future__ import annotations

import dataclasses

from dmsim.base.errors import DmsimError
from dmsim.devices.dm_tree import DmTree
from dmsim.sim.agents.device import sms_stack


def boots_from_card(dev) -> bool:
    """Return True when the device bootstraps from its (virtual) card: profile ``bootstrap_via: smartcard``."""
    return (dev.ident.profile.get("bootstrap_via", "sms") == "smartcard"
            and dev.replica.cards.is_virtual(dev.ident.index))


def _hss_record(dev):
    """For a ``bootstrap_via: gba_push`` or ``gba_ub`` device, the callback that gives the HSS its
    new card's subscriber record (the operator knows the K and OPc of the cards it issues) and,
    for Ub, the Ub transport too (a real BSF's HSS must know it); else None."""
    profile = dev.ident.profile
    ub = profile.get("gba_ub", False)
    if profile.get("bootstrap_via") != "gba_push" and not ub:
        return None
    replica = dev.replica
    hss = replica.agents["hss"]

    def issued(card):
        sub = hss.card_issued(card, gba_u=profile.get("gba_uicc", "u") == "u")
        if ub:
            replica.ub.subscriber_issued(sub)
    return issued


def power_on(dev):
    """SimPy generator: read the card (and bootstrap from it, if so configured) and attach to the
    SMSC; return "" or ``card_error``."""
    replica, ident = dev.replica, dev.ident
    cards = replica.cards
    platform = replica.agents.get("ota")
    dev.ota_keys = platform.keyset() if platform is not None else None
    personalised = replica.agents["server"].personalise(ident) if boots_from_card(dev) else None
    try:
        if personalised is None:
            imsi = yield from cards.read_imsi(ident.index, ident.imsi, dev.ota_keys, issued=_hss_record(dev))
        else:
            dev.tree = DmTree()
            imsi, dev.card_report = yield from cards.power_on(ident.index, ident.imsi, dev.ota_keys, personalised,
                                                              dev.tree, issued=_hss_record(dev))
    except DmsimError:
        return "card_error"
    if imsi != ident.imsi:  # a real card: the subscriber is the one it holds
        ident = dev.ident = dataclasses.replace(ident, imsi=imsi)
    dev.card = cards.links.get(ident.index)
    smsc = replica.agents.get("smsc")
    if smsc is not None:
        on_sms = sms_stack.via_modem if sms_stack.behind_modem(dev) else sms_stack.at_device
        smsc.add_device(ident.imsi, lambda tpdu, now, dev=dev: on_sms(dev, tpdu))
    return ""
