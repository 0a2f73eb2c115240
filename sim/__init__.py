"""dmsim.sim: the simulation engine, scenario schema and loader, runner, metrics, plots and CLI.

Nothing in this package is protocol-specific; protocol cores live in devices/, cards/ and network/.
"""
