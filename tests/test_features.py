"""User features: a person with no train ratings gets each feature's prior, not zeros."""

from __future__ import annotations

import numpy as np
import pandas as pd

from duorec.data.features import fit_features
from duorec.data.split import TEST, TRAIN

CATALOG = pd.DataFrame(
    {
        "genres": ["Comedy", "Drama", "Comedy|Drama", "Horror"],
        "imdb_genres": [None, None, None, None],
        "year": [2000, 2001, 2002, 2003],
        "runtime": [90, 100, 110, 120],
        "imdb_rating": [6.0, 7.0, 8.0, 5.0],
        "imdb_votes": [100, 1000, 10000, 50],
    }
)
# users 0 and 1 rate in train; user 2 only in test (joined after a temporal split date)
USER = np.array([0, 0, 0, 1, 1, 2, 2])
MOVIE = np.array([0, 1, 2, 0, 3, 1, 2])
RATING = np.array([4.0, 3.0, 5.0, 2.0, 1.0, 5.0, 5.0])
SPLIT = np.array([TRAIN] * 5 + [TEST] * 2)


def test_a_user_without_train_ratings_gets_the_priors_and_the_rest_are_unchanged() -> None:
    features = fit_features(USER, MOVIE, RATING, SPLIT, 3, CATALOG)
    names = features.user_names
    row = dict(zip(names, features.user[2], strict=True))
    # genre shares of the 5 train ratings: Comedy 3 (movies 0, 2, 0), Drama 2, Horror 1
    assert row["share:Comedy"] == np.float32(3 / 5)
    assert row["share:Drama"] == np.float32(2 / 5)
    assert row["share:Horror"] == np.float32(1 / 5)
    assert row["mean"] == 0 and all(row[n] == 0 for n in names if n.startswith("taste:"))
    # the least active rated user's log count (user 1: 2 ratings), not one below everyone's
    assert row["log_count"] == features.user[1, names.index("log_count")]
    # rated users: their shares are their own (user 0: Comedy 2 of 3, Drama 2 of 3)
    rated = dict(zip(names, features.user[0], strict=True))
    assert rated["share:Comedy"] == np.float32(2 / 3) and rated["share:Horror"] == 0
    # rated users' rows are as without the test-only user, except the log count, which is
    # standardised over every user (as before this prior existed)
    alone = fit_features(USER[:5], MOVIE[:5], RATING[:5], SPLIT[:5], 2, CATALOG)
    others = [i for i, n in enumerate(names) if n != "log_count"]
    np.testing.assert_array_equal(alone.user[:, others], features.user[:2, others])
