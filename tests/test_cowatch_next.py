"""What comes next in the co-watch head: EASE mixed with a model of each person's later
ratings given their earlier ones (`duorec.model.cowatch`, "What comes next")."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import compose_config

from duorec.errors import UsageError
from duorec.model.cowatch import fit_cowatch, fit_next, late_ratings
from duorec.model.ranking_baselines import EASE
from duorec.settings import check_settings


def test_late_ratings_are_each_persons_latest_share_by_time() -> None:
    """ceil(0.2 x n) latest per person, whatever the input order: hand-picked answers."""
    user = np.array([0, 0, 0, 0, 0, 1, 1, 1, 2])
    time = np.array([50, 10, 30, 20, 40, 7, 9, 8, 1])
    late = late_ratings(user, time, 3, 0.2)
    # person 0: 5 ratings -> 1 late (time 50); person 1: 3 -> 1 late (time 9); person 2: alone
    np.testing.assert_array_equal(late, [1, 0, 0, 0, 0, 0, 1, 0, 1])
    shuffle = np.random.default_rng(0).permutation(len(user))
    np.testing.assert_array_equal(late_ratings(user[shuffle], time[shuffle], 3, 0.2), late[shuffle])
    np.testing.assert_array_equal(
        late_ratings(user, time, 3, 0.5), [1, 0, 1, 0, 1, 0, 1, 1, 1]
    )  # person 0: ceil(2.5) = 3 latest (50, 40, 30); person 1: ceil(1.5) = 2 (9, 8)


@pytest.mark.parametrize("n_users", [5, 40])  # fewer people than movies, and more
def test_fit_next_is_the_closed_form(n_users: int) -> None:
    rng = np.random.default_rng(n_users)
    early = sp.csr_matrix((rng.random((n_users, 12)) < 0.4).astype(np.float32))
    late = sp.csr_matrix((rng.random((n_users, 12)) < 0.2).astype(np.float32))
    e, lt = early.toarray().astype(np.float64), late.toarray().astype(np.float64)
    expected = np.linalg.solve(e.T @ e + 7.0 * np.eye(12), e.T @ lt)
    np.testing.assert_allclose(fit_next(early, late, 7.0), expected, rtol=1e-4, atol=1e-6)


def starters_then_followers(seed: int = 0) -> tuple[dict[str, np.ndarray], ...]:
    """Planted order: everyone first rates 6 of 10 "starters" (movies 0-9), then, later,
    followers of their taste (movies 10-14 or 15-19). Train holds the starters and 2
    followers, validation the next 2 followers. Starters co-occur with starters most, so
    EASE alone offers the 4 unseen starters; what comes next is a follower."""
    rng = np.random.default_rng(seed)
    rows: list[tuple[int, int, float, int]] = []
    val: list[tuple[int, int, float, int]] = []
    for u in range(120):
        taste = 10 + 5 * (u % 2)
        for t, m in enumerate(rng.choice(10, 6, replace=False)):
            rows.append((u, int(m), 4.0, t))
        followers = taste + rng.permutation(5)
        for t, m in enumerate(followers[:2]):
            rows.append((u, int(m), 5.0, 10 + t))
        for t, m in enumerate(followers[2:4]):
            val.append((u, int(m), 5.0, 20 + t))

    def columns(part: list[tuple[int, int, float, int]]) -> dict[str, np.ndarray]:
        u, m, r, t = (np.array(c) for c in zip(*part, strict=True))
        return {"user": u, "movie": m, "rating": r, "timestamp": t}

    return columns(rows), columns(val)


def test_validation_keeps_what_comes_next_when_the_order_is_planted() -> None:
    train, val = starters_then_followers()
    fit = fit_cowatch(train, val, 120, 20, [10.0], 100, 20, next_weight=[0, 0.25, 0.5])
    grid = dict(fit.next_ndcg)
    assert fit.next_weight > 0
    assert grid[fit.next_weight] > grid[0.0] + 0.1  # a large margin, not noise


def test_time_reversed_order_changes_what_is_learned() -> None:
    """The late part follows the timestamps: reversed time, the "next" movies are starters,
    and the mix no longer finds the validation followers."""
    train, val = starters_then_followers()
    backwards = dict(train, timestamp=-train["timestamp"])
    forward = dict(
        fit_cowatch(train, val, 120, 20, [10.0], 100, 20, next_weight=[0, 0.5]).next_ndcg
    )
    reverse = dict(
        fit_cowatch(backwards, val, 120, 20, [10.0], 100, 20, next_weight=[0, 0.5]).next_ndcg
    )
    assert forward[0.0] == reverse[0.0]  # EASE alone ignores time
    assert forward[0.5] > reverse[0.5] + 0.1


def test_a_zero_share_is_ease_exactly() -> None:
    train, val = starters_then_followers()
    plain = fit_cowatch(train, val, 120, 20, [10.0], 100, 20)
    zero = fit_cowatch(train, val, 120, 20, [10.0], 100, 20, next_weight=[0.0])
    np.testing.assert_array_equal(plain.weight, zero.weight)
    ease = EASE(lam=10.0).fit(train["user"], train["movie"], train["rating"], 120, 20)
    dense = np.zeros((20, 20), np.float32)
    rows = np.repeat(np.arange(20), np.diff(plain.indptr))
    dense[rows, plain.target] = plain.weight
    np.testing.assert_allclose(dense, ease.weights, rtol=1e-6, atol=1e-7)
    assert plain.next_weight == 0.0 and plain.next_ndcg == []


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"next_weight": [0, 1.5]}, "next_weight"),
        ({"next_weight": []}, "next_weight"),
        ({"next_fraction": 0.0}, "next_fraction"),
        ({"next_fraction": 1.0}, "next_fraction"),
    ],
)
def test_bad_settings_are_refused_by_name(options: dict, named: str) -> None:
    train, val = starters_then_followers()
    with pytest.raises(ValueError, match=f"model.cowatch.{named}"):
        fit_cowatch(train, val, 120, 20, [10.0], 100, 20, **options)


def test_no_timestamps_is_refused_in_one_line() -> None:
    train, val = starters_then_followers()
    del train["timestamp"]
    with pytest.raises(ValueError, match="needs a timestamp"):
        fit_cowatch(train, val, 120, 20, [10.0], 100, 20, next_weight=[0, 0.5])


@pytest.mark.parametrize(
    "override",
    [
        "model.cowatch.next_weight=[0,2]",
        "model.cowatch.next_fraction=1.5",
        "model.cowatch.next_weight=[]",
    ],
)
def test_bad_settings_fail_before_any_work(override: str, tmp_path: Path) -> None:
    cfg = compose_config("train", [override], tmp_path)
    key = override.split("=")[0]
    with pytest.raises(UsageError, match=f"{key}=.* is not allowed"):
        check_settings(cfg, "train")
