"""A real modem in a scenario: ``components.modem: {kind: serial, port, baud, msisdn, timeout}``.

Device 0 of the first replica then is the device behind that modem (hardware in the loop):

- its SIM is the modem's: the device reads its IMSI through AT+CSIM (3GPP TS 27.007 §8.17,
  ``sim/real/modem_at.py`` ``CsimLink``), and the network provisions that subscriber;
- every SMS the simulated network delivers to it crosses the real radio: the SMS-DELIVER is
  sent by the modem itself as an SMS-SUBMIT to its own number (``msisdn``) with the same TP-PID,
  TP-DCS, UDH and user data (TS 23.040 §9.2.2.2), and what the modem then receives as ``+CMT``
  (TS 27.005 §3.4.1, acknowledged with AT+CNMA when +CSMS 1 asks for it) is what the device's
  SMS stack gets. Nothing comes back within ``timeout`` wall seconds: the SMS is lost.

A modem on a live network needs a SIM whose subscription can send SMS to itself; in CI the
modem is ``dmsim modem serve --msisdn`` on a pty, whose loopback network delivers such an SMS
back at once (``sim/real/virtual_modem.py``). The wall-clock time of each round trip is counted in
``stats`` (and in summary.json); on the direct SMS link it also becomes simulated time, while
through the store-and-forward SMSC (which expects the device's answer at once) it is only counted.

Choices: SMS the modem receives that are not the expected round trip (a stray message from the
live network) are handed to the device too, as they would be; AT errors and malformed lines are
counted (``errors``) and lose that SMS, never the run.
"""
from __future__ import annotations

import time

from dmsim.network.sms.address import Address
from dmsim.network.sms.tpdu import SmsSubmit, decode_tpdu
from dmsim.base.errors import DmsimError


class ModemAccess:
    """The serial modem of a replica (opened on first use); ``close()`` it at the end."""

    def __init__(self, spec: dict):
        self.spec = spec
        self.msisdn = Address.parse(spec["msisdn"])
        self._modem = None
        self._mr = 0
        self.stats = {"sms_looped": 0, "sms_lost": 0, "errors": 0, "round_trip_s": 0.0}

    @property
    def modem(self):
        """Return the initialised AtModem (ProtocolError/ModemError if the port cannot be used)."""
        if self._modem is None:
            from dmsim.sim.real.modem_at import AtModem
            modem = AtModem(self.spec["port"], self.spec["baud"], timeout=self.spec["timeout"])
            try:
                modem.init()
            except DmsimError:
                modem.close()
                raise
            self._modem = modem
        return self._modem

    def card_link(self):
        """Return a CardLink to the modem's SIM through AT+CSIM."""
        from dmsim.sim.real.modem_at import CsimLink
        return CsimLink(self.modem)

    def round_trip(self, deliver_tpdu: bytes) -> tuple[list[bytes], float]:
        """Send the SMS-DELIVER ``deliver_tpdu`` over the real radio (see the module doc); return the
        SMS-DELIVER TPDUs the modem received meanwhile (empty: lost) and the wall seconds it took."""
        started = time.monotonic()
        received: list[bytes] = []
        try:
            sms = decode_tpdu(deliver_tpdu, mt=True)
            self._mr = (self._mr + 1) & 0xFF
            submit = SmsSubmit(da=self.msisdn, pid=sms.pid, dcs=sms.dcs, mr=self._mr, ies=sms.ies,
                               user_data=sms.user_data).encode()
            self.modem.send_pdu(submit)
            incoming = self.modem.receive_sms(self.spec["timeout"])
            while incoming is not None:
                received.append(incoming.tpdu)
                if incoming.sms.user_data == sms.user_data and incoming.sms.ies == sms.ies:
                    break
                incoming = self.modem.receive_sms(self.spec["timeout"])
        except DmsimError:
            self.stats["errors"] += 1
        elapsed = time.monotonic() - started
        self.stats["round_trip_s"] += elapsed
        self.stats["sms_looped" if received else "sms_lost"] += 1
        return received, elapsed

    def close(self) -> None:
        """Close the serial port, if it was opened."""
        if self._modem is not None:
            self._modem.close()
            self._modem = None
