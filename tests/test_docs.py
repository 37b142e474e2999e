"""The operations guide cannot drift from the code: its configuration reference is what
tools/settings_doc.py generates from the settings, and every environment variable the command
line reads is documented."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

from anchoring.config import ChainSettings
from api.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "operations.md"


def _settings_doc() -> Any:
    spec = importlib.util.spec_from_file_location("settings_doc", ROOT / "tools" / "settings_doc.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_configuration_reference_is_generated_from_the_settings() -> None:
    doc = _settings_doc()
    assert doc.current() == doc.section(), "run: python tools/settings_doc.py --write"
    text = GUIDE.read_text()
    for name, info in Settings.model_fields.items():
        assert f"| `TENDERPROOF_{name.upper()}` |" in text
        assert info.description, f"Settings.{name} has no description"
    for name, info in ChainSettings.model_fields.items():
        assert f"| `{name}` |" in text
        assert info.description, f"ChainSettings.{name} has no description"


def test_every_environment_variable_of_the_command_line_is_documented() -> None:
    text = GUIDE.read_text()
    read = set(re.findall(r'envvar="(TENDERPROOF_\w+)"', (ROOT / "api" / "cli.py").read_text()))
    assert {"TENDERPROOF_WORKERS", "TENDERPROOF_ANCHORING"} <= read
    assert sorted(v for v in read if f"`{v}`" not in text) == []


def test_readme_links_the_operations_guide_and_the_threat_model() -> None:
    readme = (ROOT / "README.md").read_text()
    for page in ("docs/operations.md", "docs/threat-model.md"):
        assert f"({page})" in readme
        assert (ROOT / page).is_file()
