"""The built-in attacks, one module per family; importing this package registers them all."""
from dmsim.sim.agents.adversary.attacks import (flooding, flooding_ip, forgery, forgery_dm, guessing,  # noqa: F401
                                                 lwm2m_dtls, lwm2m_sms, mitm, mitm_gba, nonce, replay_ip,
                                                 replay_sms)
