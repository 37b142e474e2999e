"""Building RFC 9162 §2.1.3 inclusion and §2.1.4 consistency proofs.

A proof is a list of Merkle Tree Hashes of leaf ranges. Each range is itself
the fold of a few perfect subtrees (:class:`NodeID`), which is what storage
keeps. So building a proof is two steps, as in transparency-dev/merkle:

1. :func:`inclusion` / :func:`consistency` say which nodes are needed (pure);
2. the caller reads those nodes and :meth:`ProofNodes.assemble` folds them.

Verification lives in :mod:`ledger.core.verify`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .errors import InvalidArgumentError, InvariantError
from .merkle import NodeID, fold, range_nodes, split_point


@dataclass(frozen=True, slots=True)
class ProofNodes:
    """The nodes a proof needs: for each proof element, the perfect subtrees it folds."""

    elements: tuple[tuple[NodeID, ...], ...]

    @property
    def ids(self) -> list[NodeID]:
        """Every distinct node to read, in proof order."""
        seen: dict[NodeID, None] = {}
        for element in self.elements:
            for node in element:
                seen.setdefault(node, None)
        return list(seen)

    def assemble(self, hashes: Mapping[NodeID, bytes]) -> list[bytes]:
        """Fold the read node hashes into the proof's hashes.

        Raises :class:`InvariantError` if a needed node is missing.
        """
        try:
            return [fold([hashes[node] for node in element]) for element in self.elements]
        except KeyError as exc:
            raise InvariantError(f"proof node {exc.args[0]} was not read") from exc


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges of ``PATH(index, D[size])`` (RFC 9162 §2.1.3.1), leaf to root.

    Requires ``0 <= index < size``.
    """
    if not 0 <= index < size:
        raise InvalidArgumentError("index", f"needs 0 <= index < size, got index {index}, size {size}")
    out: list[tuple[int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = split_point(hi - lo)
        if index < lo + k:
            out.append((lo + k, hi))
            hi = lo + k
        else:
            out.append((lo, lo + k))
            lo += k
    out.reverse()
    return out


def consistency_ranges(size1: int, size2: int) -> list[tuple[int, int]]:
    """The leaf ranges of ``PROOF(size1, D[size2])`` (RFC 9162 §2.1.4.1).

    Requires ``0 <= size1 <= size2``. The proof is empty when ``size1`` is 0 or
    equals ``size2``.
    """
    if not 0 <= size1 <= size2:
        raise InvalidArgumentError("size1", f"needs 0 <= size1 <= size2, got size1 {size1}, size2 {size2}")
    if size1 == 0 or size1 == size2:
        return []
    out: list[tuple[int, int]] = []
    lo, hi, m, complete = 0, size2, size1, True
    while m != hi - lo:
        k = split_point(hi - lo)
        if m <= k:
            out.append((lo + k, hi))
            hi = lo + k
        else:
            out.append((lo, lo + k))
            lo += k
            m -= k
            complete = False
    if not complete:
        out.append((lo, hi))
    out.reverse()
    return out


def _nodes(ranges: list[tuple[int, int]]) -> ProofNodes:
    return ProofNodes(tuple(tuple(range_nodes(lo, hi)) for lo, hi in ranges))


def inclusion(index: int, size: int) -> ProofNodes:
    """Nodes of the inclusion proof of leaf ``index`` in a tree of ``size`` leaves."""
    return _nodes(inclusion_ranges(index, size))


def consistency(size1: int, size2: int) -> ProofNodes:
    """Nodes of the consistency proof from tree size ``size1`` to ``size2``."""
    return _nodes(consistency_ranges(size1, size2))


def root(size: int) -> ProofNodes:
    """Nodes whose fold is the root of a tree of ``size`` leaves (one element)."""
    return ProofNodes((tuple(range_nodes(0, size)),))
