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
SPLIT_NAMES = {"train": TRAIN, "val": VAL, "test": TEST, "cold": COLD}


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


def cold_user_mask(n_users: int, fraction: float | None, seed: int) -> np.ndarray:
    """Boolean [n_users]: the seeded `fraction` of users held out of every split.

    Held out *before* the split, so features, baselines and the model never see any of
    their ratings; the cold-start protocol then reveals a few of them to fold-in. The draw
    has its own stream (`[seed, 0xC01D]`), so turning it on does not move the other users'
    split beyond losing the held-out ratings.
    """
    mask = np.zeros(n_users, dtype=bool)
    if fraction is None:
        return mask
    if not 0.0 < float(fraction) < 1.0:
        raise ValueError(f"data.cold_users must be in (0, 1), got {fraction}")
    n_cold = max(1, int(round(float(fraction) * n_users)))
    mask[np.random.default_rng([seed, 0xC01D]).permutation(n_users)[:n_cold]] = True
    return mask
