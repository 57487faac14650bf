"""The learning-rate schedule: warm-up ramp, cosine decay, every parameter group alike."""

import math

import pytest
import torch

from duorec.model.schedules import cosine


def learning_rates(total: int, warmup_fraction: float) -> list[list[float]]:
    dense, embeddings = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([{"params": [dense]}, {"params": [embeddings], "lr": 4.0}], lr=2.0)
    schedule = cosine(optimizer, total, warmup_fraction)
    seen = []
    for _ in range(total):
        seen.append([group["lr"] for group in optimizer.param_groups])
        optimizer.step()
        schedule.step()
    return seen


def test_warm_up_ramps_linearly_then_decays_by_a_cosine_to_zero():
    lrs = learning_rates(total=20, warmup_fraction=0.25)  # 5 warm-up steps
    assert [lr for lr, _ in lrs[:5]] == pytest.approx([0.4, 0.8, 1.2, 1.6, 2.0])
    # step 5 + s of the 15 decay steps: 2 * (1 + cos(pi * s / 15)) / 2
    for s in range(15):
        assert lrs[5 + s][0] == pytest.approx(1.0 + math.cos(math.pi * s / 15))
    # the embedding group keeps its own learning rate, on the same curve
    assert all(emb == pytest.approx(2 * dense) for dense, emb in lrs)


def test_no_warm_up_starts_at_the_full_learning_rate():
    assert learning_rates(total=10, warmup_fraction=0.0)[0] == pytest.approx([2.0, 4.0])


def test_a_warm_up_of_the_whole_run_is_refused():
    with pytest.raises(ValueError, match="warmup_fraction must be in"):
        learning_rates(total=10, warmup_fraction=1.0)
