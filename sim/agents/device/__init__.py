"""dmsim.sim.agents.device: the OMA DM device agent (``dm_device.py``), the OMA LwM2M device
agent (``lwm2m_device.py``) and the steps of their lives."""
from dmsim.sim.agents.device.dm_device import DmDevice
from dmsim.sim.agents.device.lwm2m_device import Lwm2mDevice

__all__ = ["DmDevice", "Lwm2mDevice"]
