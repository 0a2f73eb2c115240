"""dmsim.base: the floor under every package: error types, schema/validation helpers, seeded random streams.

The protocol cores (``dmsim.cards``, ``dmsim.devices``, ``dmsim.network``) and the simulation
(``dmsim.sim``) both stand on it; it imports nothing of dmsim. The folder sits in ``sim/`` because
the repository's top level is fixed, but it installs as ``dmsim.base`` (pyproject.toml
``package-dir``), so that importing it never imports the simulation.
"""
if __name__ != "dmsim.base":  # the folder is inside sim/: refuse the second name, which would copy every class
    raise ImportError(f"import dmsim.base, not {__name__}")
