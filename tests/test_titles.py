"""Title parsing and the normalised key shared by the IMDb reader and the merge."""

from __future__ import annotations

import pandas as pd
import pytest

from duorec.data.titles import (
    normalise_title,
    normalise_titles,
    split_title_year,
    split_title_years,
    title_keys,
    title_keys_frame,
    title_variants,
)


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Toy Story (1995)", ("Toy Story", 1995)),
        ("Matrix, The (1999)", ("Matrix, The", 1999)),
        (
            "City of Lost Children, The (Cité des enfants perdus, La) (1995)",
            ("City of Lost Children, The (Cité des enfants perdus, La)", 1995),
        ),
        ("Babylon 5", ("Babylon 5", None)),
        (
            "From Dusk Till Dawn 2: Texas Blood Money (1999) ",
            ("From Dusk Till Dawn 2: Texas Blood Money", 1999),
        ),
        ("Planet Earth (2006-2007)", ("Planet Earth", 2006)),
        ("Death Note: Desu nôto (2006–2007)", ("Death Note: Desu nôto", 2006)),
        ("Stranger Things (2016-)", ("Stranger Things", 2016)),
        ("1984 (1956)", ("1984", 1956)),
        ("(500) Days of Summer (2009)", ("(500) Days of Summer", 2009)),
        ("Blade Runner 2049", ("Blade Runner 2049", None)),
    ],
)
def test_split_title_year(title: str, expected: tuple[str, int | None]) -> None:
    assert split_title_year(title) == expected


def test_split_title_years_matches_scalar_version_and_keeps_index() -> None:
    titles = pd.Series(
        ["Toy Story (1995)", "Babylon 5", "Planet Earth (2006-2007) ", "Matrix, The (1999)"],
        index=[10, 20, 30, 40],
    )
    split = split_title_years(titles)
    assert list(split.index) == [10, 20, 30, 40]
    assert str(split["year"].dtype) == "Int32"
    for label, title in titles.items():
        name, year = split_title_year(title)
        assert split.loc[label, "title"] == name
        assert (pd.isna(split.loc[label, "year"]) and year is None) or split.loc[
            label, "year"
        ] == year


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("The Matrix", "matrix"),
        ("Matrix, The", "matrix"),
        ("Star Is Born, A", "star is born"),
        ("An American Werewolf in London", "american werewolf in london"),
        ("Auberge espagnole, L'", "auberge espagnole"),
        ("L'auberge espagnole", "auberge espagnole"),
        ("L’Auberge espagnole", "auberge espagnole"),
        ("Cité des enfants perdus, La", "cite des enfants perdus"),
        ("La cité des enfants perdus", "cite des enfants perdus"),
        ("Les Misérables", "miserables"),
        ("Misérables, Les", "miserables"),
        ("Vitelloni, I", "vitelloni"),
        ("I vitelloni", "vitelloni"),
        ("Il Divo", "divo"),
        ("Divo, Il", "divo"),
        ("Das Boot", "boot"),
        ("Boot, Das", "boot"),
        ("Der Baader Meinhof Komplex", "baader meinhof komplex"),
        ("El Mariachi", "mariachi"),
        ("Mariachi, El", "mariachi"),
        ("Los olvidados", "olvidados"),
        ("Un prophète", "prophete"),
        ("Une femme est une femme", "femme est une femme"),
    ],
)
def test_articles_in_several_languages_are_removed_front_or_back(raw: str, key: str) -> None:
    assert normalise_title(raw) == key


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("Léon", "leon"),
        ("Amélie", "amelie"),
        ("Straße", "strasse"),
        ("Æon Flux", "aeon flux"),
        ("Harry & Sally", "harry and sally"),
        ("Schindler's List", "schindlers list"),
        ("Spider-Man: Homecoming", "spider man homecoming"),
        ("  Léon:   The  Professional!  ", "leon the professional"),
        ("Rocky IV", "rocky 4"),
        ("Death Wish II", "death wish 2"),
        ("Fright Night Part 2", "fright night part 2"),
        ("I, Robot", "i robot"),  # "I" followed by a comma is not an article
        ("Them", "them"),  # no article inside a word
        ("The", "the"),  # a title that is only an article stays
        ('"Weird Al" Yankovic', "weird al yankovic"),
        ("Город", "город"),  # non-Latin scripts are kept, not dropped
    ],
)
def test_normalise_title_accents_punctuation_and_numbers(raw: str, key: str) -> None:
    assert normalise_title(raw) == key


def test_vectorised_and_scalar_normalisation_agree_and_keep_na() -> None:
    titles = pd.Series(["The Matrix", None, "Misérables, Les", "Rocky II"], index=[7, 8, 9, 10])
    keys = normalise_titles(titles)
    assert list(keys.index) == [7, 8, 9, 10]
    assert pd.isna(keys[8])
    assert [keys[7], keys[9], keys[10]] == [
        normalise_title("The Matrix"),
        normalise_title("Misérables, Les"),
        normalise_title("Rocky II"),
    ]


def test_title_variants_peel_alternates_and_aka() -> None:
    assert title_variants("Léon: The Professional (a.k.a. The Professional) (Léon)") == [
        "Léon: The Professional (a.k.a. The Professional) (Léon)",
        "Léon: The Professional",
        "Léon",
        "The Professional",
    ]
    assert title_variants("(500) Days of Summer") == ["(500) Days of Summer"]


def test_title_keys_include_main_and_alternate_titles() -> None:
    keys = title_keys("City of Lost Children, The (Cité des enfants perdus, La) (1995)")
    assert "city of lost children" in keys
    assert "cite des enfants perdus" in keys
    assert title_keys("Matrix, The (1999)") == ["matrix"]
    assert "bicycle thief" in title_keys(
        "Bicycle Thieves (a.k.a. The Bicycle Thief) (Ladri di biciclette) (1948)"
    )


def test_title_keys_frame_marks_alternates_and_drops_duplicates() -> None:
    frame = title_keys_frame(pd.Series(["Seven (a.k.a. Se7en)", "Heat", "Heat"], index=[1, 2, 3]))
    rows = {(r.row, r.key, r.alternate) for r in frame.itertuples()}
    assert (1, "seven", False) in rows
    assert (1, "se7en", True) in rows
    assert (2, "heat", False) in rows and (3, "heat", False) in rows
    assert not frame.duplicated(["row", "key"]).any()
