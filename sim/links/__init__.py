"""dmsim.sim.links: what carries bytes between agents: simulated links, delay models, adversary taps, and the transports to the DM server and the card."""
