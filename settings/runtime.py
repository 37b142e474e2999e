"""The process's own limits, put back where a dependency changed them.

Importing ``py_ecc`` (through eth-account) raises the interpreter's recursion limit to 100,000,
and ``eth`` (py-evm, the embedded chain) to its own; with that limit a recursive C routine (the
JSON parser, ``repr``, ``deepcopy``) given a deeply nested value overflows the C stack and kills
the process (a segfault) instead of raising ``RecursionError``. :func:`bound_recursion` imports
them, so that nothing imported later raises it again, and restores the default.
"""

from __future__ import annotations

import importlib
import sys

#: CPython's default recursion limit.
DEFAULT_RECURSION_LIMIT = 1000
#: Modules that raise the limit when first imported.
RAISERS = ("py_ecc",)


def bound_recursion(*also: str) -> int:
    """Import the modules that raise the recursion limit (and ``also``), then put the limit back
    to the default (never above it); returns the limit now in force."""
    for name in (*RAISERS, *also):
        importlib.import_module(name)
    sys.setrecursionlimit(min(sys.getrecursionlimit(), DEFAULT_RECURSION_LIMIT))
    return sys.getrecursionlimit()
