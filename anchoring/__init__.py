"""Anchoring the log's checkpoints on an Ethereum-compatible chain: the compiled contract
(``anchoring.compile``, ``anchoring/artifacts``) and, to come, the anchoring service."""
