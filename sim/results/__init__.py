"""dmsim.sim.results: a run and its folder: runner, session and SMS tables, summary, plots, pcap, progress."""
