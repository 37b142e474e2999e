"""Secrets of this deployment kept with its data (table ``deployment_keys``, migration 0019).

``release_digest``: the 32-byte HMAC-SHA256 key of ``ocds_releases.release_digest``, the digest
the import keeps of each release only to tell a repeated release from a changed one. Keyed so that
what the table holds is no hash anyone can test a guessed release against (a bare SHA-256 of a
short release is); cleared by a withholding order for the releases it withholds. The key is drawn
at random once, by the migration, and never served, exported or logged (docs/privacy.md).
"""

from __future__ import annotations

import functools
import hashlib
import hmac

from sqlalchemy import Connection, select

from ledger.core.errors import InvariantError

from .schema import deployment_keys

#: The name of the import's dedupe key.
RELEASE_DIGEST = "release_digest"
#: Bytes of every key.
KEY_SIZE = 32


def key(conn: Connection, name: str) -> bytes:
    """The deployment's key ``name``. Raises :class:`InvariantError` if the database has none
    (not migrated to 0019)."""
    found = conn.execute(select(deployment_keys.c.secret).where(deployment_keys.c.name == name)).scalar()
    if found is None or len(bytes(found)) != KEY_SIZE:
        raise InvariantError(
            f"the database has no {name} key of {KEY_SIZE} bytes: its migrations (to revision 0019) have not run"
        )
    return bytes(found)


def keyed_digest(secret: bytes, data: bytes) -> str:
    """``HMAC-SHA256(secret, data)`` in lowercase hex: what ``ocds_releases.release_digest`` holds."""
    h = _keyed(secret).copy()  # the key's pads hashed once, not per release (half the cost)
    h.update(data)
    return h.hexdigest()


@functools.lru_cache(maxsize=4)
def _keyed(secret: bytes) -> hmac.HMAC:
    return hmac.new(secret, digestmod=hashlib.sha256)
