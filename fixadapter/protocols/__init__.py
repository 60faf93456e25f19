"""Wire formats shared by the connectors, the simulator and compliance: no I/O (design note, section 2)."""
