"""dmsim.sim: the simulation around the protocol cores, in rooms, one job each.

- ``scenario/``: the scenario format (schema, YAML loader, ``--set``, sweeps);
- ``links/``: simulated links, delay models, adversary taps, and the transports a device reaches
  its DM server and its card through;
- ``agents/``: the SimPy processes that drive the sans-IO cores (device, DM server, SMSC, OTA
  platform), each registered once;
- ``model/``: one replica: fleet, arrivals, random streams, and the wiring of agents to links;
- ``real/``: every driver that touches a socket, serial line, pty, PC/SC or SQLite;
- ``results/``: the run folder: runner, session and SMS tables, summary, plots, pcap, progress;
- ``cli/``: the ``dmsim`` command line and its toolbox.

The floor under the cores (error types, schema helpers) lives in ``sim/base/`` but installs as
``dmsim.base``, outside this package: ``cards/``, ``devices/`` and ``network/`` import it without
importing the simulation. ``lint-imports`` (pyproject.toml) checks these layers.
"""
