"""dmsim.sim.scenario: the scenario format: its schema, the YAML loader with ``--set`` overrides, and sweeps."""
