"""Tenderproof's verifiable log: the pure core, the store and the sequencer."""
