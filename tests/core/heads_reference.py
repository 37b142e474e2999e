"""A naive reference of the heads commitment (docs/spec.md §14), written from the spec's
definition with bit strings and hashlib; independent of ledger.core.heads on purpose."""

from __future__ import annotations

import hashlib


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def bits(key: bytes) -> str:
    return "".join(format(b, "08b") for b in key)


def leaf(key: bytes, size: int, head: bytes) -> bytes:
    return _h(b"\x00" + key + size.to_bytes(8, "big") + head)


def root(entries: dict[bytes, tuple[int, bytes]]) -> bytes:
    """The canonical root: EMPTY, the lone leaf, or node(left, right) by the next bit."""
    strs = {bits(k): (k, v) for k, v in entries.items()}

    def sub(path: str) -> bytes:
        inside = [s for s in strs if s.startswith(path)]
        if not inside:
            return bytes(32)
        if len(inside) == 1:
            k, (size, head) = strs[inside[0]]
            return leaf(k, size, head)
        return _h(b"\x01" + sub(path + "0") + sub(path + "1"))

    return sub("")


def heads(entries: list[tuple[str, bytes]]) -> dict[bytes, tuple[int, bytes]]:
    """The map from the log's entries (ocid, leaf hash) in index order."""
    out: dict[bytes, tuple[int, bytes]] = {}
    for ocid, lh in entries:
        if ocid == "ocds-tplog0-heads":
            continue
        k = _h(ocid.encode())
        out[k] = (out.get(k, (0, b""))[0] + 1, lh)
    return out
