"""The documentation cannot drift from the code: the configuration reference is what
tools/settings_doc.py generates from the settings, every environment variable the command line
reads is documented, the README stays a short front page (it links every page of docs/, copies no
configuration table, and its cheat sheet names every command), and every link between the pages
points at a file and a heading that exist."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

import click

from cli import cli
from settings import ChainSettings, Settings

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "operations.md"
README = ROOT / "README.md"
#: The README is a front page: about 150 lines, the rest lives in docs/.
README_MAX_LINES = 180
#: A relative Markdown link: (target file, optional #anchor). External links are not checked.
LINK = re.compile(r"\]\((?!https?://|mailto:)([^)\s#]*)(?:#([^)\s]+))?\)")


def _settings_doc() -> Any:
    spec = importlib.util.spec_from_file_location("settings_doc", ROOT / "tools" / "settings_doc.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _pages() -> list[Path]:
    return sorted((ROOT / "docs").glob("*.md"))


def _slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*]|<[^>]+>", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.DOTALL)
    return {_slug(m.group(1)) for m in re.finditer(r"^#{1,6} (.+)$", text, flags=re.MULTILINE)}


def _commands(group: click.Group, prefix: str) -> list[str]:
    """Every command line, ``tenderproof keys create`` included, of ``group``."""
    out = []
    for name, command in sorted(group.commands.items()):
        out.append(f"{prefix} {name}")
        if isinstance(command, click.Group):
            out.extend(_commands(command, f"{prefix} {name}"))
    return out


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
    sources = [*sorted((ROOT / "cli").glob("*.py")), ROOT / "verifier" / "cli.py"]
    read = {v for source in sources for v in re.findall(r'envvar="(TENDERPROOF_\w+)"', source.read_text())}
    assert {"TENDERPROOF_DATABASE_URL", "TENDERPROOF_WORKERS", "TENDERPROOF_ANCHORING"} <= read
    assert sorted(v for v in read if f"`{v}`" not in text) == []


def test_readme_links_every_page_of_the_docs_and_the_benchmarks() -> None:
    readme = README.read_text()
    linked = {target for target, _ in LINK.findall(readme)}
    pages = [f"docs/{page.name}" for page in _pages()]
    assert {"docs/architecture.md", "docs/spec.md", "docs/verifying.md", "docs/api.md", "docs/open-data.md",
            "docs/explorer.md", "docs/operations.md", "docs/threat-model.md"} <= set(pages)  # fmt: skip
    assert sorted(set(pages) - linked) == []
    assert "bench/RESULTS.md" in linked


def test_readme_is_a_front_page() -> None:
    lines = README.read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; move detail into docs/"
    copied = [line for line in lines if line.startswith("| `TENDERPROOF_")]
    assert copied == [], "the configuration reference lives in docs/operations.md only: link it"
    assert "docs/operations.md#configuration-reference" in README.read_text()


def test_readme_cheat_sheet_names_every_command() -> None:
    readme = README.read_text()
    commands = _commands(cli, "tenderproof")
    assert {"tenderproof verify", "tenderproof keys create", "tenderproof proof inclusion"} <= set(commands)
    assert sorted(c for c in commands if not re.search(rf"^{re.escape(c)}\b", readme, flags=re.MULTILINE)) == []


def test_no_page_cites_the_unpublished_product_spec() -> None:
    for page in [README, *_pages()]:
        text = page.read_text()
        generated = re.search(r"<!-- settings:begin.*?<!-- settings:end -->", text, flags=re.DOTALL)
        if generated:  # generated from the code's descriptions: fixed there
            text = text.replace(generated.group(0), "")
        assert "SPEC.md" not in text and not re.search(r"SPEC §", text), page.name


def test_links_between_pages_resolve() -> None:
    broken = []
    for page in [README, *_pages()]:
        text = re.sub(r"```.*?```", "", page.read_text(), flags=re.DOTALL)
        for target, anchor in LINK.findall(text):
            path = (page.parent / target).resolve() if target else page
            if not path.exists():
                broken.append(f"{page.name}: {target}")
            elif anchor and path.suffix == ".md" and anchor not in _anchors(path):
                broken.append(f"{page.name}: {target}#{anchor}")
    assert broken == []
