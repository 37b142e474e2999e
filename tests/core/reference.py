"""A naive RFC 9162 §2.1 reference, written straight from the RFC's recursive
definitions with list slicing and hashlib. Independent of ledger.core on purpose:
the tests compare the real implementation against it."""

from __future__ import annotations

import hashlib


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _k(n: int) -> int:
    """Largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def leaf(data: bytes) -> bytes:
    return _h(b"\x00" + data)


def mth(d: list[bytes]) -> bytes:
    """MTH(D[n]) over leaf *data*."""
    if not d:
        return _h(b"")
    if len(d) == 1:
        return leaf(d[0])
    k = _k(len(d))
    return _h(b"\x01" + mth(d[:k]) + mth(d[k:]))


def path(m: int, d: list[bytes]) -> list[bytes]:
    """PATH(m, D[n])."""
    if len(d) == 1:
        return []
    k = _k(len(d))
    if m < k:
        return [*path(m, d[:k]), mth(d[k:])]
    return [*path(m - k, d[k:]), mth(d[:k])]


def proof(m: int, d: list[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) for 0 < m <= n (empty when m == n)."""
    return _subproof(m, d, True)


def _subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [mth(d)]
    k = _k(n)
    if m <= k:
        return [*_subproof(m, d[:k], b), mth(d[k:])]
    return [*_subproof(m - k, d[k:], False), mth(d[:k])]


def leaves(n: int) -> list[bytes]:
    """The vectors' leaf scheme: leaf i is the UTF-8 bytes of the decimal string of i."""
    return [str(i).encode() for i in range(n)]
