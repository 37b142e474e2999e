"""Checkpoints in the C2SP tlog-checkpoint text form.

    <origin>\\n<tree size, decimal>\\n<base64 root hash>\\n[<extension line>\\n ...]

Tenderproof does not sign checkpoints with a note key: its checkpoints are
anchored on chain instead. The text form is still the one every tlog tool reads.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from .errors import FormatError, InvalidArgumentError
from .merkle import HASH_SIZE

_SIZE = re.compile(r"0|[1-9][0-9]{0,19}")
MAX_TREE_SIZE = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin or self.origin != self.origin.strip():
            raise InvalidArgumentError(
                "origin", f"must be a non-empty line without surrounding spaces, got {self.origin!r}"
            )
        if not 0 <= self.size <= MAX_TREE_SIZE:
            raise InvalidArgumentError("size", f"must be in [0, 2**63-1], got {self.size}")
        if len(self.root) != HASH_SIZE:
            raise InvalidArgumentError("root", f"must be {HASH_SIZE} bytes, got {len(self.root)}")
        for i, line in enumerate(self.extensions):
            if not line or "\n" in line:
                raise InvalidArgumentError(f"extensions[{i}]", "must be a non-empty single line")

    def to_text(self) -> str:
        """The checkpoint body, every line ending in a newline."""
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode("ascii"), *self.extensions]
        return "".join(f"{line}\n" for line in lines)

    @classmethod
    def from_text(cls, text: str) -> Checkpoint:
        """Parse a checkpoint body. Raises :class:`FormatError` naming the bad line."""
        if not text.endswith("\n"):
            raise FormatError("checkpoint", "must end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise FormatError("checkpoint", f"needs at least 3 lines (origin, size, root), got {len(lines)}")
        origin, size_text, root_text, *extensions = lines
        if not _SIZE.fullmatch(size_text):
            raise FormatError("checkpoint.size", f"line 2 must be a decimal tree size, got {size_text!r}")
        try:
            root = base64.b64decode(root_text, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise FormatError("checkpoint.root", f"line 3 is not base64: {exc}") from exc
        if base64.b64encode(root).decode("ascii") != root_text:
            raise FormatError("checkpoint.root", "line 3 is not canonical base64")
        try:
            return cls(origin=origin, size=int(size_text), root=root, extensions=tuple(extensions))
        except InvalidArgumentError as exc:
            raise FormatError(f"checkpoint.{exc.field}", exc.reason) from exc
