"""The one CSR builder and ragged expansion, checked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from duorec.csr import csr_from_pairs, csr_rows, ragged_offsets


def test_csr_groups_rows_keeping_input_order_and_repeats():
    csr = csr_from_pairs(np.array([2, 0, 2, 2, 0]), np.array([7, 3, 1, 7, 3]), n_rows=4)
    assert csr.indptr.tolist() == [0, 2, 2, 5, 5]
    # stable: row 0 keeps (3, 3), row 2 keeps (7, 1, 7) as given; repeats are not dropped
    assert csr.indices.tolist() == [3, 3, 7, 1, 7]
    assert csr.values is None


def test_csr_values_follow_their_entries():
    csr = csr_from_pairs(
        np.array([1, 0, 1]), np.array([10, 20, 30]), 2, values=np.array([0.5, 1.5, 2.5])
    )
    assert csr.indices.tolist() == [20, 10, 30]
    assert csr.values.tolist() == [1.5, 0.5, 2.5]


def test_csr_refuses_rows_out_of_range():
    with pytest.raises(ValueError, match=r"row index out of range \[0, 2\)"):
        csr_from_pairs(np.array([0, 2]), np.array([1, 1]), n_rows=2)
    empty = csr_from_pairs(np.zeros(0, np.int64), np.zeros(0, np.int64), n_rows=3)
    assert empty.indptr.tolist() == [0, 0, 0, 0]


def test_ragged_offsets_by_hand():
    owner, offset = ragged_offsets(np.array([2, 0, 3]))
    assert owner.tolist() == [0, 0, 2, 2, 2]
    assert offset.tolist() == [0, 1, 0, 1, 2]
    owner, offset = ragged_offsets(np.zeros(0, np.int64))
    assert owner.size == offset.size == 0


def test_csr_rows_gathers_the_asked_rows_in_order():
    csr = csr_from_pairs(np.array([0, 0, 1, 2, 2, 2]), np.array([5, 6, 7, 8, 9, 4]), n_rows=3)
    owner, cols = csr_rows(csr, np.array([2, 0, 2]))
    assert owner.tolist() == [0, 0, 0, 1, 1, 2, 2, 2]
    assert cols.tolist() == [8, 9, 4, 5, 6, 8, 9, 4]


def test_ragged_offsets_are_the_same_for_torch_tensors() -> None:
    """The history bags gather with torch tensors through the same helper."""
    import torch

    lengths = np.array([2, 0, 3, 1])
    owner, offset = ragged_offsets(lengths)
    t_owner, t_offset = ragged_offsets(torch.from_numpy(lengths))
    assert isinstance(t_owner, torch.Tensor)
    assert t_owner.tolist() == owner.tolist() == [0, 0, 2, 2, 2, 3]
    assert t_offset.tolist() == offset.tolist() == [0, 1, 0, 1, 2, 0]
