"""The one ranking path (evaluation and serving), and the one pair aggregate."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from duorec.aggregate import aggregate
from duorec.csr import csr_from_pairs
from duorec.topk import Shortlist, top_k_unseen

# 6 movies; user 0 saw movie 0, user 1 saw movie 5 (and 5 again: repeats are harmless).
SEEN = csr_from_pairs(np.array([0, 1, 1]), np.array([0, 5, 5]), n_rows=3)
SCORES = np.array([[9.0, 5.0, 8.0, 1.0, 7.0, 10.0], [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]])


def test_masks_what_either_person_saw_and_orders_best_first():
    top = top_k_unseen(SCORES, np.array([0, 1]), np.array([1, 2]), SEEN, k=3)
    # pair (0, 1): 0 and 5 masked -> 2 (8), 4 (7), 1 (5); pair (1, 2): 5 masked -> 4, 3, 2
    assert top.movie.tolist() == [[2, 4, 1], [4, 3, 2]]
    assert top.score.tolist() == [[8.0, 7.0, 5.0], [5.0, 4.0, 3.0]]


def test_allowed_restricts_and_empty_slots_are_minus_one():
    top = top_k_unseen(SCORES[:1], np.array([0]), np.array([1]), SEEN, k=4, allowed=[0, 3, 4])
    # allowed {0, 3, 4}, 0 seen: two candidates for four slots
    assert top.movie.tolist() == [[4, 3, -1, -1]]
    assert top.score[0, :2].tolist() == [7.0, 1.0] and np.isneginf(top.score[0, 2:]).all()


def test_callable_batches_equal_the_matrix_and_ties_go_to_the_lower_index():
    calls = []

    def scores(ua: np.ndarray, ub: np.ndarray) -> np.ndarray:
        calls.append(len(ua))
        return np.zeros((len(ua), 6), dtype=np.float32)  # every movie ties

    top = top_k_unseen(scores, np.array([0, 1, 2]), np.array([2, 2, 1]), SEEN, k=6, batch_size=2)
    assert calls == [2, 1]
    assert top.movie.tolist() == [
        [1, 2, 3, 4, 5, -1],
        [0, 1, 2, 3, 4, -1],
        [0, 1, 2, 3, 4, -1],
    ]
    with pytest.raises(ValueError, match="k must be >= 1"):
        top_k_unseen(scores, np.array([0]), np.array([1]), SEEN, k=0)
    with pytest.raises(ValueError, match="have shape"):
        top_k_unseen(lambda a, b: np.zeros(6), np.array([0]), np.array([1]), SEEN, k=1)


def test_a_shortlist_ranks_as_its_grid():
    """A scorer may return each pair's few scored movies (`Shortlist`) instead of the grid with
    -inf elsewhere: masking, allowed movies, ties, empty slots and batches come out the same."""
    # pair (0, 1) scored movies 5 (seen by 1), 2, 0 (seen by 0), 3; pair (1, 2): 3, then 4
    # and 1 tied (never split by k below: which of two tied movies fills a last slot is open)
    movie = np.array([[5, 2, 0, 3], [4, 1, 3, 0]])
    score = np.array([[10.0, 8.0, 9.0, 2.0], [3.0, 3.0, 5.0, -np.inf]])
    short = Shortlist(movie, score, n_movies=6)
    assert np.isneginf(short.dense()[0, [1, 4]]).all() and short.dense()[0, 2] == 8.0
    users = np.array([0, 1]), np.array([1, 2])
    for k, allowed in [(1, None), (3, None), (5, None), (8, None), (3, [1, 2, 3, 4])]:
        want = top_k_unseen(short.dense(), *users, SEEN, k, allowed)
        got = top_k_unseen(short, *users, SEEN, k, allowed, batch_size=1)
        assert got.movie.tolist() == want.movie.tolist()
        assert got.score.tolist() == want.score.tolist()
    top = top_k_unseen(short, *users, SEEN, k=4)
    assert top.movie.tolist() == [[2, 3, -1, -1], [3, 1, 4, -1]]
    calls = top_k_unseen(lambda a, b: short[0 : len(a)], users[0][:1], users[1][:1], SEEN, k=2)
    assert calls.movie.tolist() == [[2, 3]]
    with pytest.raises(ValueError, match="shortlist for 1 pairs"):
        top_k_unseen(lambda a, b: short, users[0][:1], users[1][:1], SEEN, k=2)


@pytest.mark.parametrize("how", ["mean", "min", "max"])
def test_one_aggregate_for_numpy_and_torch_bit_for_bit(how: str):
    rng = np.random.default_rng(0)
    a, b = rng.uniform(0.5, 5.0, (2, 100)).astype(np.float32)
    expected = {"mean": (a + b) * np.float32(0.5), "min": np.minimum(a, b), "max": np.maximum(a, b)}
    by_numpy = aggregate(a, b, how)
    by_torch = aggregate(torch.from_numpy(a), torch.from_numpy(b), how)
    assert isinstance(by_numpy, np.ndarray) and by_numpy.dtype == np.float32
    assert isinstance(by_torch, torch.Tensor)
    np.testing.assert_array_equal(by_numpy, expected[how])
    np.testing.assert_array_equal(by_torch.numpy(), by_numpy)
    with pytest.raises(ValueError, match="unknown aggregate 'median'"):
        aggregate(a, b, "median")
