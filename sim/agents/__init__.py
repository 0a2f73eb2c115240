"""dmsim.sim.agents: the SimPy processes that drive the sans-IO cores: device, DM server, SMSC, OTA platform."""
