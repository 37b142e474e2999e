"""The configuration reference of docs/operations.md, generated from the settings themselves
(settings.Settings: every ``TENDERPROOF_*`` variable; settings.ChainSettings: the
fields of each ``TENDERPROOF_CHAINS`` entry), so that it cannot drift: tests/test_docs.py fails
when the document and the code disagree.

    python tools/settings_doc.py           # print the reference
    python tools/settings_doc.py --write   # rewrite it in docs/operations.md, between its markers
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from settings import ChainSettings, Settings

DOC = Path(__file__).resolve().parent.parent / "docs" / "operations.md"
BEGIN, END = "<!-- settings:begin (tools/settings_doc.py) -->", "<!-- settings:end -->"


def _default(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    value: Any = info.default
    if value is None:
        return "none"
    if isinstance(value, SecretStr):
        return "(secret)"
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json", exclude_defaults=True)
    if isinstance(value, list):
        value = [v.model_dump(mode="json", exclude_defaults=True) if isinstance(v, BaseModel) else v for v in value]
    shown = json.dumps(value) if isinstance(value, list | dict | bool) else str(value)
    return f"`{shown}`"


def _cell(text: str | None) -> str:
    return (text or "").replace("|", "\\|").replace("\n", " ")


def table() -> str:
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, info in Settings.model_fields.items():
        rows.append(f"| `TENDERPROOF_{name.upper()}` | {_default(info)} | {_cell(info.description)} |")
    rows += [
        "",
        "Each entry of `TENDERPROOF_CHAINS` (a JSON object):",
        "",
        "| field | default | meaning |",
        "|---|---|---|",
    ]
    for name, info in ChainSettings.model_fields.items():
        rows.append(f"| `{name}` | {_default(info)} | {_cell(info.description)} |")
    return "\n".join(rows)


def section() -> str:
    return f"{BEGIN}\n{table()}\n{END}"


def current() -> str:
    text = DOC.read_text()
    return text[text.index(BEGIN) : text.index(END) + len(END)]


def main() -> int:
    if "--write" in sys.argv[1:]:
        DOC.write_text(DOC.read_text().replace(current(), section()))
    else:
        print(table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
