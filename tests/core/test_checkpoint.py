"""C2SP tlog-checkpoint text: exact round trips and every malformed form refused."""

from __future__ import annotations

import base64

import pytest

from ledger.core.checkpoint import Checkpoint
from ledger.core.errors import FormatError, InvalidArgumentError

ROOT = bytes(range(32))
TEXT = f"tenders.example.gov/log\n42\n{base64.b64encode(ROOT).decode()}\n"


def test_exact_round_trip() -> None:
    cp = Checkpoint(origin="tenders.example.gov/log", size=42, root=ROOT)
    assert cp.to_text() == TEXT
    assert Checkpoint.from_text(TEXT) == cp


def test_extension_lines_round_trip() -> None:
    text = TEXT + "— anchored on chain 1\n"
    cp = Checkpoint.from_text(text)
    assert cp.extensions == ("— anchored on chain 1",)
    assert cp.to_text() == text


def test_size_zero() -> None:
    empty = base64.b64encode(bytes(32)).decode()
    assert Checkpoint.from_text(f"o\n0\n{empty}\n").size == 0


@pytest.mark.parametrize(
    ("text", "field", "reason"),
    [
        (TEXT[:-1], "checkpoint", "must end with a newline"),
        ("o\n42\n", "checkpoint", "needs at least 3 lines"),
        (TEXT.replace("\n42\n", "\n042\n"), "checkpoint.size", "decimal tree size, got '042'"),
        (TEXT.replace("\n42\n", "\n-1\n"), "checkpoint.size", "decimal tree size"),
        (TEXT.replace("\n42\n", "\n4 2\n"), "checkpoint.size", "decimal tree size"),
        (f"o\n1\n{base64.b64encode(ROOT).decode()[:-1]}\n", "checkpoint.root", "not base64"),
        (f"o\n1\n{base64.b64encode(ROOT[:31]).decode()}\n", "checkpoint.root", "must be 32 bytes, got 31"),
        (f"\n1\n{base64.b64encode(ROOT).decode()}\n", "checkpoint.origin", "non-empty line"),
        (TEXT + "\n", "checkpoint.extensions[0]", "non-empty single line"),
    ],
)
def test_malformed_checkpoints(text: str, field: str, reason: str) -> None:
    with pytest.raises(FormatError) as err:
        Checkpoint.from_text(text)
    assert err.value.field == field
    assert reason in err.value.reason


def test_non_canonical_base64_is_refused() -> None:
    encoded = base64.b64encode(b"\x00" * 31 + b"\x01").decode()
    tweaked = encoded[:-2] + chr(ord(encoded[-2]) + 1) + "="  # same bytes, non-zero padding bits
    with pytest.raises(FormatError) as err:
        Checkpoint.from_text(f"o\n1\n{tweaked}\n")
    assert err.value.field == "checkpoint.root"


def test_constructor_validates() -> None:
    with pytest.raises(InvalidArgumentError) as err:
        Checkpoint(origin="o", size=-1, root=ROOT)
    assert err.value.field == "size"
