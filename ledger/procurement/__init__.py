"""The procurement domain: what may be recorded about a tender, and what it then looks like.

- :mod:`.payloads`: each event type's payload, OCDS 1.1 shaped (pydantic models, errors naming
  the JSON path);
- :mod:`.rules`: the pure state machine a tender's history must follow (:class:`rules.TenderState`,
  :func:`rules.apply`);
- :mod:`.officers`: the officers' registry, recorded in the log under ``REGISTRY_OCID``;
- :mod:`.record`: :func:`record.record`, the one way writes go in: validation, signatures, rules
  and projections in the transaction of the append;
- :mod:`.query`: tender search with keyset pagination, a tender's summary and state;
- :mod:`.ocds`: a tender's events as OCDS releases, packages, compiled release and record;
- :mod:`.project`: rebuilding the projections from the log.
"""
