"""A monitor: follows a Tenderproof deployment through its public read API only, keeps a
verified mirror in a database of its own, and reports what does not hold (docs/operations.md)."""
