"""The explorer's message catalog, at build time: every msgid the site shows, and the template
(``messages.pot``) that ``pybabel update`` merges into each language's ``.po``.

    python -m explorer.catalog    # rewrite explorer/locale/messages.pot

Not imported by the site itself (it reads the compiled catalogs through :mod:`explorer.i18n`).
"""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir

from ledger.procurement.redflags import FLAGS, ORGANISATION_FLAGS

from . import desk
from .describe import EVENT_LABELS, FLAG_EVIDENCE, ROLE_LABELS, STATUS_LABELS
from .i18n import LOCALE_DIR
from .pages import EXPORTS, FACET_TITLES, JS_MESSAGES, RESULT_EXPORTS, SORT_LABELS


def message_ids() -> list[str]:
    """Every msgid the explorer shows: those of the templates (Babel's Jinja2 extractor) and the
    tables of labels and verifier messages."""
    found: dict[str, None] = {}
    templates = Path(__file__).parent
    pattern = "templates/**.html"
    for _name, _line, message, _comments, _context in extract_from_dir(
        templates, method_map=[(pattern, "jinja2")], options_map={pattern: {}}
    ):
        found.setdefault(message if isinstance(message, str) else message[0], None)
    flags = [text for flag in (*FLAGS, *ORGANISATION_FLAGS) for text in (flag.title, flag.description)]
    for text in (
        *JS_MESSAGES.values(),
        *EVENT_LABELS.values(),
        *STATUS_LABELS.values(),
        *ROLE_LABELS.values(),
        *flags,
        *FLAG_EVIDENCE.values(),
    ):
        found.setdefault(text, None)
    for text in desk.message_ids():
        found.setdefault(text, None)
    for _key, _href, title, _kind in (*EXPORTS, *RESULT_EXPORTS):
        found.setdefault(title, None)
    for text in (*SORT_LABELS.values(), *FACET_TITLES.values()):
        found.setdefault(text, None)
    found.setdefault("Not found", None)
    found.setdefault("Bad request", None)
    found.pop("{text}", None)  # a placeholder, the same in every language
    return list(found)


if __name__ == "__main__":
    from babel.messages.catalog import Catalog
    from babel.messages.pofile import write_po

    pot = Catalog(project="Tenderproof explorer", version="1")
    for msgid in message_ids():
        pot.add(msgid)
    with (LOCALE_DIR / "messages.pot").open("wb") as out:
        write_po(out, pot, width=100, omit_header=True)
