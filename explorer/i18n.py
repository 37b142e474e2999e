"""Languages of the explorer: which one a request gets, its messages, and locale formatting.

Messages are gettext catalogs (``explorer/locale/<lang>/LC_MESSAGES/messages.po``, maintained with
Babel's ``pybabel extract`` / ``update``; see babel.cfg) read once at startup with Babel's PO
reader; numbers, money, dates and durations are formatted by Babel for the locale (CLDR data).

A request's language: ``?lang=`` (which the response then remembers in the ``lang`` cookie), else
the cookie, else the best match of ``Accept-Language``, else English.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

from babel import Locale
from babel.dates import format_date, format_datetime, format_timedelta
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal

LOCALES: tuple[str, ...] = ("en", "es")
DEFAULT_LOCALE = "en"
COOKIE = "lang"
#: A year: the choice is remembered until the visitor makes another.
COOKIE_MAX_AGE = 365 * 24 * 3600
LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGE_NAMES = {"en": "English", "es": "Español"}
#: Shown for a missing value.
NONE = "\u2013"


@cache
def catalog(lang: str) -> dict[str, str]:
    """msgid → translation of ``lang`` (English is the msgids themselves: empty)."""
    path = LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po"
    if not path.exists():
        return {}
    with path.open("rb") as f:
        po = read_po(f, locale=lang)
    return {str(m.id): str(m.string) for m in po if m.id and isinstance(m.id, str) and m.string and not m.fuzzy}


def negotiate(*, query: str | None, cookie: str | None, accept_language: str | None) -> str:
    """The request's language (see the module docstring)."""
    for chosen in (query, cookie):
        if chosen in LOCALES:
            return chosen
    if accept_language:
        ranked = []
        for part in accept_language.split(","):
            tag, _, params = part.strip().partition(";")
            quality = 1.0
            if params.strip().startswith("q="):
                try:
                    quality = float(params.strip()[2:])
                except ValueError:
                    quality = 0.0
            ranked.append((quality, tag.strip().lower()))
        for quality, tag in sorted(ranked, key=lambda r: -r[0]):
            base = tag.split("-")[0]
            if quality > 0 and base in LOCALES:
                return base
    return DEFAULT_LOCALE


@dataclass(frozen=True, slots=True)
class Formatter:
    """Messages and formats of one language, handed to the templates as ``_`` and ``fmt``."""

    lang: str

    @property
    def locale(self) -> Locale:
        return Locale.parse(self.lang)

    def gettext(self, message: str, **values: object) -> str:
        text = catalog(self.lang).get(message, message)
        return text.format(**values) if values else text

    def number(self, value: float | int) -> str:
        return format_decimal(value, locale=self.lang)

    def money(self, amount: float | None, currency: str | None) -> str:
        if amount is None:
            return NONE
        if currency is None:
            return self.number(amount)
        return format_currency(amount, currency, locale=self.lang)

    def date(self, moment: datetime | None) -> str:
        return NONE if moment is None else format_date(moment, format="medium", locale=self.lang)

    def datetime(self, moment: datetime | None) -> str:
        if moment is None:
            return NONE
        return format_datetime(moment, format="medium", tzinfo=UTC, locale=self.lang) + " UTC"

    def age(self, delta: timedelta) -> str:
        return format_timedelta(delta, granularity="second", threshold=1.0, locale=self.lang)

    def month(self, month: str) -> str:
        """``YYYY-MM`` as the locale's short month and year."""
        year, number = month.split("-")
        return format_date(datetime(int(year), int(number), 1), format="MMM y", locale=self.lang)
