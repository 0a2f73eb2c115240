"""dmsim.sim.model: one replica of a scenario: fleet, arrivals, random streams, and the wiring of agents to links."""
