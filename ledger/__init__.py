"""Tenderproof's verifiable log and what is recorded in it.

- :mod:`ledger.core`: the pure core (bytes, hashes, proofs, checkpoints, the bundle format);
- :mod:`ledger.store`: the database (SQLAlchemy tables, migrations, reads; SQLite and PostgreSQL);
- :mod:`ledger.log`: one deployment's log (open, integrate, read, checkpoint);
- :mod:`ledger.procurement`: what may be recorded about a tender, and the one way writes go in
  (:func:`ledger.procurement.record.record`; OCDS releases through its importer);
- :mod:`ledger.submission`: what a writer asks to record, and what it gets back;
- :mod:`ledger.sequencer`: appending and integrating (internal: writes go through the procurement layer).
"""
