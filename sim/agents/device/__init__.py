"""dmsim.sim.agents.device: the OMA DM device agent (``dm_device.py``) and the steps of its life."""
from dmsim.sim.agents.device.dm_device import DmDevice

__all__ = ["DmDevice"]
