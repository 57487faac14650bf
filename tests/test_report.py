"""The evaluation table, printed to a pipe, keeps each row on one line whatever its width."""

from __future__ import annotations

import pytest

from duorec.report import print_report


def test_rows_wider_than_a_terminal_are_not_wrapped(capsys: pytest.CaptureFixture[str]) -> None:
    name = "baseline_" + "x" * 150  # a row far wider than the old fixed 120 columns
    metrics = {"pair_rmse": 0.9, "pair_mae": 0.7, "scaled_mse": 0.03}
    print_report({"test": metrics, "baselines": {name: metrics}})
    lines = capsys.readouterr().out.splitlines()
    (row,) = [line for line in lines if name in line]
    assert "0.9000" in row and "0.7000" in row and "0.0300" in row
    assert max(len(line) for line in lines) < 400  # the table keeps its natural width
