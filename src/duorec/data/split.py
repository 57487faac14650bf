"""Split individual ratings into train / validation / test.

Pairs are built afterwards *inside* each split, so a test pair triple never shares a rating
with training: splitting pairs instead would leak one person's test rating into train.
"""

from __future__ import annotations

import numpy as np

TRAIN, VAL, TEST = 0, 1, 2
# the ratings of users held out entirely (`data.cold_users`): in no split, only the cold-start
# protocol (`duorec.coldstart`) reads them
COLD = 3
# the ratings of movies held out entirely (`data.cold_movies`), by users not held out
COLD_MOVIE = 4
SPLIT_NAMES = {"train": TRAIN, "val": VAL, "test": TEST, "cold": COLD, "cold_movies": COLD_MOVIE}


def split_ratings(
    n: int,
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    method: str = "random",
    timestamps: np.ndarray | None = None,
) -> np.ndarray:
    """Return an int8 array of split codes (TRAIN, VAL, TEST), one per rating.

    `random` shuffles with `seed`; `temporal` puts the oldest ratings in train and the newest
    in test (ties broken by `seed`), the harder and more realistic protocol.
    """
    if len(fractions) != 3 or min(fractions) < 0 or not np.isclose(sum(fractions), 1.0):
        raise ValueError(
            f"split fractions must be three non-negative numbers summing to 1, "
            f"got {list(fractions)}"
        )
    rng = np.random.default_rng(seed)
    if method == "random":
        order = rng.permutation(n)
    elif method == "temporal":
        if timestamps is None or len(timestamps) != n:
            raise ValueError("temporal split needs one timestamp per rating")
        order = np.lexsort((rng.random(n), timestamps))
    else:
        raise ValueError(f"unknown split method {method!r}: use 'random' or 'temporal'")
    n_train = int(round(fractions[0] * n))
    n_val = int(round(fractions[1] * n))
    codes = np.empty(n, dtype=np.int8)
    codes[order[:n_train]] = TRAIN
    codes[order[n_train : n_train + n_val]] = VAL
    codes[order[n_train + n_val :]] = TEST
    return codes


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
