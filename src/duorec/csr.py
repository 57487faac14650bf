"""Compressed sparse rows over numpy, and the ragged-range expansion they all need.

One builder serves every "row -> its entries" index of the project: a movie's raters (the pair
sampler), a user's seen movies (ranking masks), a movie's people (the tower's bags). Entries
keep their input order within a row (a stable sort), so rows already grouped, as MovieLens
files are, cost one pass and no sort.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch


class CSR(NamedTuple):
    """Row r holds indices[indptr[r]:indptr[r + 1]] (and the same slice of `values`)."""

    indptr: np.ndarray  # [n_rows + 1] int64
    indices: np.ndarray  # [nnz]
    values: np.ndarray | None = None  # [nnz], aligned with indices


def csr_from_pairs(
    rows: np.ndarray, cols: np.ndarray, n_rows: int, values: np.ndarray | None = None
) -> CSR:
    """CSR of the (row, col[, value]) entries; repeats are kept, order within a row is input order.

    Repeats are harmless to every use here (a movie masked twice is still masked) and
    deduplicating would cost a sort per row, so none is done. ValueError on a row outside
    [0, n_rows): bincount would silently grow the table instead.
    """
    rows = np.asarray(rows)
    cols = np.asarray(cols)
    if rows.shape != cols.shape or (values is not None and np.shape(values) != rows.shape):
        raise ValueError(f"rows and cols differ in shape: {rows.shape} vs {cols.shape}")
    if rows.size and (rows.min() < 0 or rows.max() >= n_rows):
        raise ValueError(f"row index out of range [0, {n_rows})")
    if rows.size and not (rows[1:] >= rows[:-1]).all():
        order = np.argsort(rows, kind="stable")
        rows, cols = rows[order], cols[order]
        values = None if values is None else np.asarray(values)[order]
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
    return CSR(indptr, cols, None if values is None else np.asarray(values))


def ragged_offsets(lengths: np.ndarray | torch.Tensor) -> tuple[Any, Any]:
    """(owner, offset) of every element of consecutive ragged groups of the given lengths.

    For lengths [2, 0, 3]: owner [0, 0, 2, 2, 2], offset [0, 1, 0, 1, 2]. The vectorised form
    of `for i, n in enumerate(lengths): for j in range(n)`, the loop every CSR gather needs.
    A torch tensor gives torch tensors on its device (the history bags gather in the model).
    """
    if isinstance(lengths, torch.Tensor):
        owner = torch.repeat_interleave(torch.arange(len(lengths), device=lengths.device), lengths)
        first = torch.cumsum(lengths, 0) - lengths
        return owner, torch.arange(owner.numel(), device=lengths.device) - first[owner]
    lengths = np.asarray(lengths, dtype=np.int64)
    owner = np.repeat(np.arange(lengths.size), lengths)
    offset = np.arange(owner.size) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return owner, offset


def csr_rows(csr: CSR, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(position in `rows`, index) of every entry of the given rows, as two flat arrays."""
    rows = np.asarray(rows, dtype=np.int64)
    start = csr.indptr[rows]
    owner, offset = ragged_offsets(csr.indptr[rows + 1] - start)
    return owner, csr.indices[start[owner] + offset]
