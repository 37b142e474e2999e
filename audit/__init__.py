"""The operator's audit (``tenderproof audit``): the whole log recomputed from the database's
bytes and compared with the stored heads, tiles and anchors, and with what the chains hold.

- :mod:`audit.log`: the recomputation and its :class:`~audit.log.AuditReport`;
- :mod:`audit.chains`: which configured chains can be asked, and how.
"""
