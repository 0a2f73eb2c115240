"""The built-in attacks, one module per family; importing this package registers them all."""
from dmsim.sim.agents.adversary.attacks import (flooding, forgery, guessing, mitm, mitm_gba, nonce,  # noqa: F401
                                                 replay_ip, replay_sms)
