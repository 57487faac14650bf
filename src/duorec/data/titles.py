"""Title parsing and normalisation shared by the IMDb reader and the MovieLens <-> IMDb merge.

MovieLens writes titles as ``"Matrix, The (1999)"`` or
``"City of Lost Children, The (Cité des enfants perdus, La) (1995)"``; IMDb writes
``"The Matrix"`` / ``"La cité des enfants perdus"`` with the year in its own column. To meet,
both sides are reduced to the same *key*: accents stripped, lower case, ``&`` spelled
``and``, punctuation dropped, one leading or trailing article removed.

There is exactly one implementation of the key, :func:`normalise_titles`, vectorised with
pyarrow compute because it runs over every non-episode title of IMDb's title.basics (millions
of rows). The scalar :func:`normalise_title` calls it on a one-element array, so the reader's
filter and the merge can never disagree about a key.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

# Articles removed at the start ("The Matrix") or after a final comma ("Matrix, The").
# English, French, Italian, Spanish, German, Dutch, Scandinavian. Left out on purpose:
# Portuguese "o"/"os"/"as" and Danish/Swedish "en"/"et" (frequent ordinary words, and
# MovieLens never writes them as a trailing article). Stripping is applied to both sides,
# so a wrongly stripped word only costs a key collision, which the year resolves.
ARTICLES: tuple[str, ...] = (
    "the", "a", "an",
    "le", "la", "les", "l'", "un", "une",
    "il", "lo", "gli", "i", "uno", "una",
    "el", "los", "las",
    "die", "der", "das", "den", "ein", "eine",
    "de", "het", "een",
    "det",
)  # fmt: skip

_APOSTROPHES = "'’‘`´"
_WORD_ARTICLES = "|".join(a for a in ARTICLES if not a.endswith("'"))
_ELIDED = f"l[{_APOSTROPHES}]"
_TRAILING_ARTICLE = rf",\s*(?:{_WORD_ARTICLES}|{_ELIDED})\s*$"
_LEADING_ARTICLE = rf"^(?:(?:{_WORD_ARTICLES})\s+|{_ELIDED}\s*)"

# Letters that NFKD does not decompose into base letter + accent.
_SPECIAL_LETTERS = {
    "ß": "ss",
    "æ": "ae",
    "œ": "oe",
    "ø": "o",
    "ł": "l",
    "đ": "d",
    "ð": "d",
    "þ": "th",
    "ı": "i",
}

_YEAR_RE = re.compile(
    r"^(?P<title>.*?)\s*\((?P<year>\d{4})(?:\s*[-–]\s*(?:\d{4})?)?\)\s*$", re.DOTALL
)
_AKA_RE = re.compile(r"^\s*(?:a\.?\s?k\.?\s?a\.?|aka)\s+", re.IGNORECASE)


def _as_arrow(values: pd.Series | Iterable[str | None]) -> pa.Array:
    """Convert to a pyarrow string array (pandas' own str columns convert without copying)."""
    if isinstance(values, pd.Series):
        arr = pa.array(values, from_pandas=True)
    else:
        arr = pa.array(list(values), type=pa.large_string())
    if pa.types.is_null(arr.type):
        arr = arr.cast(pa.large_string())
    return arr


_ROMAN = {
    "ii": 2,
    "iii": 3,
    "iv": 4,
    "v": 5,
    "vi": 6,
    "vii": 7,
    "viii": 8,
    "ix": 9,
    "x": 10,
    "xi": 11,
    "xii": 12,
    "xiii": 13,
}


def _roman_to_digits(arr: pa.Array) -> pa.Array:
    """ "Part II" and "Part 2" are the same sequel; rewrite numerals II..XIII as digits.

    "I" is left alone (pronoun and Italian article). Only titles holding a token made of
    i/v/x are rewritten, so the common case costs one regex test.
    """
    has_roman = pc.match_substring_regex(arr, r"\b[ivx]+\b")
    if not pc.any(has_roman).as_py():
        return arr
    fixed = arr
    for numeral, value in sorted(_ROMAN.items(), key=lambda item: -len(item[0])):
        fixed = pc.replace_substring_regex(fixed, rf"\b{numeral}\b", str(value))
    return pc.if_else(has_roman, fixed, arr)


def _normalise_arrow(arr: pa.Array) -> pa.Array:
    """The key itself; the one place that defines it (see module docstring)."""
    arr = pc.utf8_normalize(arr, form="NFKD")
    arr = pc.replace_substring_regex(arr, r"\p{Mn}+", "")
    arr = pc.utf8_lower(arr)
    for letter, spelled in _SPECIAL_LETTERS.items():
        arr = pc.replace_substring(arr, letter, spelled)
    arr = pc.utf8_trim_whitespace(arr)
    arr = pc.replace_substring_regex(arr, _TRAILING_ARTICLE, "")
    arr = pc.replace_substring_regex(arr, _LEADING_ARTICLE, "")
    arr = pc.replace_substring(arr, "&", " and ")
    arr = pc.replace_substring_regex(arr, f"[{_APOSTROPHES}]", "")
    arr = pc.replace_substring_regex(arr, r"[^\pL\pN]+", " ")
    arr = _roman_to_digits(pc.utf8_trim_whitespace(arr))
    return arr


def normalise_titles(titles: pd.Series) -> pd.Series:
    """Vectorised title key for a Series (same index; NA stays NA).

    Used on IMDb primaryTitle/originalTitle chunk by chunk, and on MovieLens title pieces.
    """
    out = _normalise_arrow(_as_arrow(titles))
    return pd.Series(pd.array(out, dtype="str"), index=titles.index, name=titles.name)


def normalise_title(title: str) -> str:
    """Key of one title: ``"The Matrix"`` -> ``"matrix"``, ``"Matrix, The"`` -> ``"matrix"``."""
    return str(_normalise_arrow(_as_arrow([title]))[0].as_py())


def split_title_year(title: str) -> tuple[str, int | None]:
    """Split a MovieLens title into (title, year); the year is the last ``(YYYY)`` group.

    A range such as ``(1995-1996)`` (TV series) yields its first year. Without a year group the
    stripped title comes back with ``None``: MovieLens has a few such titles ("Babylon 5").
    """
    match = _YEAR_RE.match(title)
    if match is None:
        return title.strip(), None
    return match["title"].strip(), int(match["year"])


def split_title_years(titles: pd.Series) -> pd.DataFrame:
    """Vectorised :func:`split_title_year`: columns ``title`` (str) and ``year`` (Int32)."""
    parts = titles.astype(object).str.extract(_YEAR_RE)
    no_year = parts["year"].isna()
    title = parts["title"].where(~no_year, titles.astype(object)).str.strip()
    year = pd.to_numeric(parts["year"]).astype("Int32")
    return pd.DataFrame({"title": title.astype("str"), "year": year}, index=titles.index)


def _closing_group_start(text: str) -> int | None:
    """Index of the ``(`` that opens the parenthesised group ending ``text``, if any."""
    if not text.endswith(")"):
        return None
    depth = 0
    for pos in range(len(text) - 1, -1, -1):
        if text[pos] == ")":
            depth += 1
        elif text[pos] == "(":
            depth -= 1
            if depth == 0:
                return pos
    return None


def title_variants(title: str) -> list[str]:
    """Raw (unnormalised) names a MovieLens title (without year) goes by.

    ``"Léon: The Professional (a.k.a. The Professional) (Léon)"`` ->
    ``["Léon: The Professional (a.k.a. The Professional) (Léon)", "Léon: The Professional",
    "The Professional", "Léon"]``. MovieLens appends the original-language title and other
    names as trailing parenthesised groups; IMDb's originalTitle usually equals one of them.
    The whole title is kept too, for titles whose parentheses are part of the name.
    """
    variants = [title.strip()]
    main = title.strip()
    while (start := _closing_group_start(main)) is not None and start > 0:
        alternate = _AKA_RE.sub("", main[start + 1 : -1]).strip()
        if alternate:
            variants.append(alternate)
        main = main[:start].rstrip()
    variants.insert(1, main)
    return list(dict.fromkeys(variants))


def title_keys(title: str) -> list[str]:
    """All normalised keys of a full MovieLens title (year included or not), main key first."""
    name, _ = split_title_year(title)
    keys = normalise_titles(pd.Series(title_variants(name), dtype="str"))
    return [k for k in dict.fromkeys(keys) if isinstance(k, str) and k]


def title_keys_frame(titles: pd.Series) -> pd.DataFrame:
    """Long frame of keys for many MovieLens titles (without year), normalised in one call.

    Columns: ``row`` (the index label of ``titles``), ``key``, and ``alternate`` (False for
    the full and main title, True for names found in parentheses), one row per distinct
    (row, key), main keys first.
    """
    rows: list[object] = []
    variants: list[str] = []
    alternate: list[bool] = []
    for label, title in titles.items():
        if not isinstance(title, str):
            continue
        names = title_variants(title)
        for i, name in enumerate(names):
            rows.append(label)
            variants.append(name)
            alternate.append(i >= 2 and name not in names[:2])
    keys = normalise_titles(pd.Series(variants, dtype="str"))
    frame = pd.DataFrame({"row": rows, "key": keys.to_numpy(), "alternate": alternate})
    frame = frame[frame["key"].notna() & (frame["key"] != "")]
    return frame.drop_duplicates(["row", "key"]).reset_index(drop=True)
