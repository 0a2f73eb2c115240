"""dmsim.sim.real: every driver that touches the real world: sockets, serial lines, ptys, PC/SC, SQLite."""
