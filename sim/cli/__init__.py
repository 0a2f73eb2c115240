"""dmsim.sim.cli: the ``dmsim`` command line: run, plot, servers, and the calc/decode toolbox."""
