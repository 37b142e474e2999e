"""Every refusal an officer can meet in the desk is shown in Spanish on a Spanish page: each
reason the payload rules and the tender rules can give (read from their source, so a new rule
without a translation fails here) is matched by a pattern of ``explorer.desk.REASONS`` whose
message the Spanish catalog translates."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from explorer import desk
from explorer.i18n import Formatter
from ledger.procurement import payloads, rules

#: What stands in for each formatted value of a message: it matches every pattern's groups
#: (``\S+``, ``\w+``, ``.+``, ``[^)]*``).
VALUE = "x1"
REFUSALS = {"InvalidArgumentError", "ConflictError", "ValueError"}


def _reasons(module: object) -> list[tuple[int, str]]:
    """Each refusal's reason in ``module``'s source: the last argument of a raised error, its
    formatted values replaced by :data:`VALUE`."""
    tree = ast.parse(Path(str(getattr(module, "__file__", ""))).read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in REFUSALS):
            continue
        if not node.args:
            continue
        reason = node.args[-1]
        if isinstance(reason, ast.JoinedStr):
            parts = [v.value if isinstance(v, ast.Constant) else VALUE for v in reason.values]
            found.append((node.lineno, "".join(str(p) for p in parts)))
        elif isinstance(reason, ast.Constant) and isinstance(reason.value, str):
            found.append((node.lineno, reason.value))
    return sorted(found)


CASES = [(f"{m.__name__.rsplit('.', 1)[-1]}:{line}", text) for m in (rules, payloads) for line, text in _reasons(m)]


def test_the_rules_give_the_reasons_this_test_reads() -> None:
    # the reading above finds the rules' refusals (a change of style would make it find none)
    assert len([c for c in CASES if c[0].startswith("rules:")]) >= 25
    assert len([c for c in CASES if c[0].startswith("payloads:")]) >= 10


@pytest.mark.parametrize(("where", "reason"), CASES, ids=[c[0] for c in CASES])
def test_every_refusal_is_translated(where: str, reason: str) -> None:
    spanish = desk.reason_text(Formatter("es"), reason)
    assert spanish != reason, f"{where}: no Spanish for {reason!r} (add a pattern to explorer.desk.REASONS)"
    assert spanish != desk.reason_text(Formatter("en"), reason), f"{where}: the Spanish catalog lacks the message"
