"""A reason per pick: names, similar movies and genres taken from what the two people rated."""

from __future__ import annotations

import numpy as np
import pandas as pd

from duorec.reasons import Explainer, Rater, display_title

CATALOG = pd.DataFrame(
    [
        ("Inception", "Sci-Fi|Thriller", "Christopher Nolan", "Leonardo DiCaprio; Elliot Page"),
        ("Memento", "Thriller", "Christopher Nolan", "Guy Pearce"),
        ("Insomnia", "Thriller", "Christopher Nolan", "Al Pacino"),
        ("Titanic", "Romance", "James Cameron", "Leonardo DiCaprio; Kate Winslet"),
        ("Wolf of Wall Street, The", "Comedy", "Martin Scorsese", "Leonardo DiCaprio"),
        ("Toy Story", "Animation", "John Lasseter", "Tom Hanks"),
        ("Up", "Animation", "Pete Docter", "nm0000001"),
        ("Cars", "Animation", "nm0000002", "Owen Wilson"),
    ],
    columns=["title", "genres", "directors", "cast"],
)
INCEPTION, MEMENTO, INSOMNIA, TITANIC, WOLF, TOY_STORY, UP, CARS = range(8)
# movie vectors (factors + bias): the animations point one way, the rest another
VECTORS = np.array(
    [[1, 0, 0], [1, 0.1, 0], [1, 0.2, 0], [0.7, 0.7, 0], [0.6, 0.8, 0], [0, 1, 0], [0.1, 1, 0],
     [0.05, 1, 0]], dtype=np.float32
)  # fmt: skip

ALICE = Rater("alice", np.array([INCEPTION, TITANIC, TOY_STORY]), np.array([5.0, 4.0, 1.0]))
BOB = Rater("bob", np.array([MEMENTO, TOY_STORY, TITANIC]), np.array([4.5, 4.0, 1.0]))


def explain(movies: list[int], raters=(ALICE, BOB)) -> list[str]:
    return Explainer(CATALOG, (0.5, 5.0), VECTORS).explain(movies, list(raters))


def test_a_director_both_liked_comes_first_with_the_genre_both_rate_highly() -> None:
    (line,) = explain([INSOMNIA])
    assert line.startswith("Christopher Nolan: alice liked Inception, bob liked Memento")
    assert "both rate Thriller highly" in line


def test_a_name_only_one_liked_is_completed_by_the_others_most_similar_movie() -> None:
    """DiCaprio is in alice's liked films only (bob gave Titanic 1 star); for bob, the liked
    movie nearest to it by the movie vectors."""
    (line,) = explain([WOLF])
    assert line.startswith("Leonardo DiCaprio: alice liked Inception")
    assert "like Toy Story (bob)" in line
    assert "bob liked" not in line


def test_unresolved_people_are_never_shown_and_a_rating_below_the_bar_is_no_love() -> None:
    """Up's cast and Cars' director are bare nm-ids; alice's 1-star Toy Story, though the
    nearest to Up, is not a like: her nearest liked movie is Titanic."""
    up, cars = explain([UP, CARS])
    assert "nm000" not in up + cars
    assert up == "like Titanic (alice), Toy Story (bob)"
    assert "Owen Wilson" not in cars  # nobody rated an Owen Wilson film


def test_a_person_with_no_liked_movie_gets_no_made_up_reason() -> None:
    nobody = Rater("carol", np.array([TOY_STORY]), np.array([1.0]))
    (line,) = explain([UP], raters=(nobody, BOB))
    assert "carol" not in line and "bob" in line


def test_one_movie_both_liked_most_is_said_once() -> None:
    alice = Rater("alice", np.array([TOY_STORY, INCEPTION]), np.array([5.0, 1.0]))
    (line,) = explain([CARS], raters=(alice, BOB))
    assert line.startswith("like Toy Story, which both liked")


def test_titles_are_shown_as_people_say_them() -> None:
    assert display_title("Matrix, The") == "The Matrix"
    assert display_title("Léon: The Professional (a.k.a. The Professional) (Léon)") == (
        "Léon: The Professional"
    )
    assert display_title("O Brother, Where Art Thou?") == "O Brother, Where Art Thou?"
