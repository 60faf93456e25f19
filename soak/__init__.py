"""The fault-and-abuse soak (`make soak`): the daemon with several strategies under a seeded schedule of
kills, cuts, garbage and floods, then the invariants checked (see soak/run.py)."""
