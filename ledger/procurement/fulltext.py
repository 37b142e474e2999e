"""Full-text search words: one normalisation for the documents and the queries, both engines.

Text is cut into words here, in Python, the same way for what is indexed and for what is
searched, so that SQLite (FTS5) and PostgreSQL (tsvector) index exactly the same words and give
the same matches:

- Unicode compatibility decomposition (NFKD), then combining marks dropped and case folded:
  ``Aztlán`` and ``AZTLAN`` are both ``aztlan``, ``renovación`` is ``renovacion``;
- apostrophes of every form (U+0027, U+2019, U+2018, U+02BC, U+02B9, U+0060, U+00B4) are
  dropped inside a word: ``здоров'я`` written with any of them is ``здоровя``, ``O'Brien`` is
  ``obrien``;
- a word is a run of letters, digits and (non-combining) marks; everything else separates.

A document (:func:`document`) is its words joined by single spaces: SQLite's ``unicode61``
tokenizer (told that letters, numbers and marks are word characters, and to leave diacritics
alone) and PostgreSQL's ``string_to_array(..., ' ')`` then see exactly these words. A query
(:func:`terms`) matches a document holding every one of its words, the last one also as a
prefix (``renov`` finds ``renovación``; as you type, without the cost of expanding every word).
"""

from __future__ import annotations

import re
import unicodedata

#: Apostrophe forms dropped from words (ASCII, right and left single quotation marks, modifier
#: letter apostrophe and prime, grave accent, acute accent).
APOSTROPHES = frozenset("'\u2019\u2018\u02bc\u02b9\u0060\u00b4")
#: The longest document kept, in characters (the rest of a very long description is not searched).
MAX_DOCUMENT = 16_000
#: Most words of one query.
MAX_TERMS = 16
#: The FTS5 tokenizer that cuts a :func:`document` into the same words.
SQLITE_TOKENIZER = "unicode61 remove_diacritics 0 categories 'L* N* Co Mc Me'"


def _is_word_char(char: str) -> bool:
    return unicodedata.category(char)[0] in "LN" or unicodedata.category(char) in ("Co", "Mc", "Me")


#: An ASCII word (letters and digits are ASCII's only L* and N* characters).
_ASCII_WORD = re.compile(r"[a-z0-9]+")
_ASCII_APOSTROPHES = str.maketrans("", "", "'`")


#: The block of combining diacritical marks (U+0300-U+036F, every one of category Mn): what NFKD
#: splits from the accented letters of Latin scripts.
_COMBINING = re.compile("[\u0300-\u036f]+")


def terms(text: str) -> list[str]:
    """The normalised words of ``text``, in order (repeats kept)."""
    if not text.isascii():
        decomposed = unicodedata.normalize("NFKD", text)
        text = _COMBINING.sub("", decomposed)  # accented Latin: ASCII once its marks (Mn) are dropped
        if not text.isascii():
            return _unicode_terms(decomposed)
    # ASCII: NFKD and case folding are lower(); the same words as the walk, faster
    return _ASCII_WORD.findall(text.translate(_ASCII_APOSTROPHES).lower())


def _unicode_terms(decomposed: str) -> list[str]:
    """:func:`terms` of a text in NFKD (the walk by Unicode categories, a character at a time)."""
    folded = "".join(c for c in decomposed if unicodedata.category(c) != "Mn" and c not in APOSTROPHES)
    folded = unicodedata.normalize("NFKD", folded.casefold())
    out: list[str] = []
    word: list[str] = []
    for char in folded:
        if unicodedata.category(char) == "Mn":
            continue
        if _is_word_char(char):
            word.append(char)
        elif word:
            out.append("".join(word))
            word = []
    if word:
        out.append("".join(word))
    return out


def document(*texts: str | None) -> str:
    """The searchable words of ``texts`` (None skipped), joined by single spaces."""
    words = " ".join(" ".join(terms(t)) for t in texts if t)
    return " ".join(words[:MAX_DOCUMENT].split())


def query_terms(q: str) -> list[str]:
    """The distinct words of a query, in order, at most :data:`MAX_TERMS` (empty: no text filter)."""
    return list(dict.fromkeys(terms(q)))[:MAX_TERMS]


def sqlite_match(words: list[str]) -> str:
    """An FTS5 MATCH expression: every word, the last as a prefix. Words hold no quote (see
    :func:`terms`)."""
    return " ".join(f'"{w}"' + ("*" if i == len(words) - 1 else "") for i, w in enumerate(words))


def postgres_tsquery(words: list[str]) -> str:
    """A ``tsquery`` literal: every word, the last as a prefix. Words hold no quote or backslash."""
    return " & ".join(f"'{w}'" + (":*" if i == len(words) - 1 else "") for i, w in enumerate(words))
