"""Split individual ratings into train / validation / test.

Pairs are built afterwards *inside* each split, so a test pair triple never shares a rating
with training: splitting pairs instead would leak one person's test rating into train.
"""

from __future__ import annotations

import numpy as np

TRAIN, VAL, TEST = 0, 1, 2
# the ratings of users held out entirely (`data.cold_users`): in no split, only the cold-start
# protocol (`duorec.eval.coldstart`) reads them
COLD = 3
# the ratings of movies held out entirely (`data.cold_movies`), by users not held out
COLD_MOVIE = 4
SPLIT_NAMES = {"train": TRAIN, "val": VAL, "test": TEST, "cold": COLD, "cold_movies": COLD_MOVIE}


SPLIT_METHODS = ("random", "temporal", "chrono")


def split_ratings(
    n: int,
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    method: str = "random",
    timestamps: np.ndarray | None = None,
    users: np.ndarray | None = None,
) -> np.ndarray:
    """Return an int8 array of split codes (TRAIN, VAL, TEST), one per rating.

    `random` shuffles with `seed`; `temporal` puts the oldest ratings in train and the newest
    in test (ties broken by `seed`), one date cut for everyone, so most test people are
    newcomers; `chrono` cuts each person's own timeline (`chrono_split`), so every test
    person is known and the question is what they watch *next*.
    """
    if len(fractions) != 3 or min(fractions) < 0 or not np.isclose(sum(fractions), 1.0):
        raise ValueError(
            f"split fractions must be three non-negative numbers summing to 1, "
            f"got {list(fractions)}"
        )
    rng = np.random.default_rng(seed)
    if method == "chrono":
        if users is None or len(users) != n:
            raise ValueError("chrono split needs one user per rating")
        return chrono_split(users, _checked_timestamps(timestamps, n, method), fractions, rng)
    if method == "random":
        order = rng.permutation(n)
    elif method == "temporal":
        order = np.lexsort((rng.random(n), _checked_timestamps(timestamps, n, method)))
    else:
        raise ValueError(f"unknown split method {method!r}: use one of {', '.join(SPLIT_METHODS)}")
    n_train = int(round(fractions[0] * n))
    n_val = int(round(fractions[1] * n))
    codes = np.empty(n, dtype=np.int8)
    codes[order[:n_train]] = TRAIN
    codes[order[n_train : n_train + n_val]] = VAL
    codes[order[n_train + n_val :]] = TEST
    return codes


def _checked_timestamps(timestamps: np.ndarray | None, n: int, method: str) -> np.ndarray:
    if timestamps is None or len(timestamps) != n:
        raise ValueError(f"{method} split needs one timestamp per rating")
    return np.asarray(timestamps)


def chrono_split(
    users: np.ndarray,
    timestamps: np.ndarray,
    fractions: tuple[float, float, float],
    rng: np.random.Generator,
) -> np.ndarray:
    """Per person, by time: the last `fractions[2]` of their ratings test, the share before
    that validation, the rest train.

    A person with c ratings gets round(c * share) test ratings (halves up; at least one when
    the share is above 0) and likewise validation ratings, but always keeps at least one
    train rating: a test rating is only a question about the future when there is a past
    to answer it from. A person with a single rating is therefore all train. Ratings given at
    the same second are ordered by a draw from `rng`, so which of them is "later" is seeded,
    not an artefact of file order.
    """
    users = np.asarray(users, dtype=np.int64)
    n = users.size
    order = np.lexsort((rng.random(n), timestamps, users))  # by person, then time, then draw
    sorted_users = users[order]
    first = np.flatnonzero(np.r_[True, sorted_users[1:] != sorted_users[:-1]])
    counts = np.diff(np.r_[first, n])
    n_test = _share(counts, fractions[2])
    n_test = np.minimum(n_test, counts - 1)
    n_val = np.minimum(_share(counts, fractions[1]), counts - 1 - n_test)
    # from_end[i]: how many of the person's ratings come after rating i (0 = their latest)
    from_end = np.repeat(first + counts, counts) - 1 - np.arange(n)
    per_rating_test = np.repeat(n_test, counts)
    per_rating_val = np.repeat(n_val, counts)
    codes = np.full(n, TRAIN, dtype=np.int8)
    codes[order[from_end < per_rating_test + per_rating_val]] = VAL
    codes[order[from_end < per_rating_test]] = TEST
    return codes


def _share(counts: np.ndarray, fraction: float) -> np.ndarray:
    """round(counts * fraction), halves up, at least 1 when the fraction is above 0."""
    if fraction <= 0:
        return np.zeros_like(counts)
    return np.maximum(np.floor(counts * fraction + 0.5).astype(np.int64), 1)


def held_out_mask(n: int, fraction: float | None, seed: int, stream: int) -> np.ndarray:
    """Boolean [n]: a seeded `fraction` of users (or movies) held out of every split.

    Held out *after* the split is drawn, so features, baselines and the model never see any
    of their ratings while the other ratings keep the split they would have had. Each kind
    has its own random stream (`[seed, stream]`): users `COLD_USER_STREAM`, movies
    `COLD_MOVIE_STREAM`.
    """
    mask = np.zeros(n, dtype=bool)
    if fraction is None:
        return mask
    if not 0.0 < float(fraction) < 1.0:
        raise ValueError(f"a held-out share must be in (0, 1), got {fraction}")
    n_cold = max(1, int(round(float(fraction) * n)))
    mask[np.random.default_rng([seed, stream]).permutation(n)[:n_cold]] = True
    return mask


COLD_USER_STREAM, COLD_MOVIE_STREAM = 0xC01D, 0xF11
