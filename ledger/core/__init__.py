"""The pure core of Tenderproof: bytes, hashes, proofs, checkpoints, bundles.

Be careful here. Everything in this package defines bytes that are hashed into
the log and anchored on chain: changing how an envelope is canonicalised, how a
leaf or node is hashed, or how a proof is built breaks every past anchor and
every bundle already handed to an auditor.

Nothing in this package does I/O. Storage reads come in as arguments (see
:data:`ledger.core.tiles.TileReader`); functions return what the caller must
write.
"""
