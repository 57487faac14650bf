"""The per-person chronological split (`chrono`): each person's latest ratings are test."""

from __future__ import annotations

import numpy as np
import pytest

from duorec.data.build import DatasetSpec
from duorec.data.prepared import cache_key
from duorec.data.split import TEST, TRAIN, VAL, split_ratings


def _people(counts: list[int], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(user, timestamp) of len(counts) people, ratings shuffled, distinct times per person."""
    user = np.repeat(np.arange(len(counts)), counts)
    stamps = np.concatenate([np.arange(c) * 100 + 5 for c in counts])
    order = np.random.default_rng(seed).permutation(user.size)  # file order is not time order
    return user[order], stamps[order]


def _chrono(
    user: np.ndarray,
    stamps: np.ndarray,
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    seed: int = 0,
) -> np.ndarray:
    return split_ratings(
        user.size, fractions, seed=seed, method="chrono", timestamps=stamps, users=user
    )


def test_each_persons_latest_ratings_are_test_and_the_ones_before_validation() -> None:
    user, stamps = _people([20, 30, 11])
    codes = _chrono(user, stamps)
    for person, n_test in ((0, 2), (1, 3), (2, 1)):  # round(0.1 * c), halves up: 1.1 -> 1
        mine = user == person
        by_time = np.argsort(stamps[mine])
        expected = [TRAIN] * (mine.sum() - 2 * n_test) + [VAL] * n_test + [TEST] * n_test
        assert codes[mine][by_time].tolist() == expected


def test_every_person_keeps_a_history_and_has_at_least_one_test_rating() -> None:
    user, stamps = _people([1, 2, 3, 5, 9])
    codes = _chrono(user, stamps)
    per = {p: codes[user == p] for p in range(5)}
    assert per[0].tolist() == [TRAIN]  # one rating: a history, nothing to predict
    for person in range(1, 5):
        assert (per[person] == TRAIN).sum() >= 1
        assert (per[person] == TEST).sum() == 1
    assert sorted(per[1].tolist()) == [TRAIN, TEST]  # no room for validation
    assert sorted(per[4].tolist()) == [TRAIN] * 7 + [VAL, TEST]


def test_fractions_are_respected_per_person() -> None:
    user, stamps = _people([40, 40, 40])
    codes = _chrono(user, stamps, (0.6, 0.25, 0.15))
    for person in range(3):
        assert np.bincount(codes[user == person], minlength=3).tolist() == [24, 10, 6]


def test_ties_at_the_cut_are_drawn_by_the_seed() -> None:
    # one person, ten ratings in the same second: which one is "latest" is a seeded draw
    user, stamps = np.zeros(10, dtype=np.int64), np.full(10, 7)
    draws = [_chrono(user, stamps, seed=s) for s in range(6)]
    assert all(np.bincount(d, minlength=3).tolist() == [8, 1, 1] for d in draws)
    again = _chrono(user, stamps, seed=0)
    assert np.array_equal(draws[0], again)
    assert len({int(np.flatnonzero(d == TEST)[0]) for d in draws}) > 1


def test_chrono_needs_users_and_timestamps() -> None:
    with pytest.raises(ValueError, match="chrono split needs one user per rating"):
        split_ratings(3, method="chrono", timestamps=np.arange(3))
    with pytest.raises(ValueError, match="chrono split needs one timestamp per rating"):
        split_ratings(3, method="chrono", users=np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match="random, temporal, chrono"):
        split_ratings(3, method="weekly")


def test_the_random_split_is_unchanged_by_the_users_argument() -> None:
    user, stamps = _people([20, 30])
    plain = split_ratings(user.size, seed=3)
    assert np.array_equal(plain, split_ratings(user.size, seed=3, timestamps=stamps, users=user))


def test_the_cache_key_changes_with_the_split_method() -> None:
    def key(method: str) -> str:
        spec = DatasetSpec(
            source="movielens",
            name="x",
            seed=0,
            split={"method": method, "fractions": [0.8, 0.1, 0.1]},
            features={},
        )
        return cache_key(spec.as_dict(), [])

    assert len({key("random"), key("temporal"), key("chrono")}) == 3
