"""Bad settings are refused before any work starts, in one line naming key, value and range."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import torch
from conftest import compose_config, run_command
from omegaconf import open_dict

from duorec.errors import UsageError
from duorec.overrides import check_overrides
from duorec.settings import check_settings


def cli(module: str, args: list[str], root: Path) -> subprocess.CompletedProcess:
    return run_command(module, args, root, WANDB_MODE="disabled")


BAD = [
    ("train", "data.batch_size=0", "data.batch_size=0 is not allowed: expected an integer >= 1"),
    (
        "train",
        "data.samples_per_epoch=1.5",
        'data.samples_per_epoch=1.5 is not allowed: expected an integer >= 1 or "auto"',
    ),
    ("train", "optim.lr=0", "optim.lr=0 is not allowed: expected a number > 0"),
    ("train", "optim.weight_decay=-0.1", "optim.weight_decay=-0.1 is not allowed"),
    (
        "train",
        "trainer.max_epochs=0",
        "trainer.max_epochs=0 would leave the model untrained: expected an integer >= 1",
    ),
    (
        "train",
        "data.split.fractions=[0.8,0.1,0.2]",
        "data.split.fractions=[0.8, 0.1, 0.2] is not allowed: expected three numbers >= 0 "
        "summing to 1",
    ),
    ("train", "model.hidden=0", "model.hidden=0 is not allowed: expected an integer >= 1"),
    ("train", "model.dropout=1.0", "model.dropout=1.0 is not allowed: expected a number in [0, 1)"),
    ("train", "eval.bootstrap=0", "eval.bootstrap=0 is not allowed: expected an integer >= 1"),
    ("recommend", "threads=0", 'threads=0 is not allowed: expected an integer >= 1 or "auto"'),
    ("evaluate", "eval.ranking_pairs=-5", "eval.ranking_pairs=-5 is not allowed"),
    ("recommend", "k=0", "k=0 is not allowed: expected an integer >= 1"),
    (
        "train",
        "eval.foldin_choice.priors=[1,0]",
        "eval.foldin_choice.priors=[1, 0] is not allowed: expected a list of numbers > 0",
    ),
    (
        "train",
        "eval.foldin_choice.reveal=[]",
        "eval.foldin_choice.reveal=[] is not allowed: expected a non-empty list of integers",
    ),
    ("prepare", "data.eval_batch_size=abc", "data.eval_batch_size='abc' is not allowed"),
    # each of these ended in a 16-36 line traceback, some only after the data was prepared
    ("train", "data.synthetic.size=huge", "data.synthetic.size='huge' is not allowed: expected "
     "one of tiny, small, medium, ml32m"),
    ("train", "model.target=median", "model.target='median' is not allowed: expected one of "
     "mean, min, max"),
    ("train", "model.rank_by=foo", "model.rank_by='foo' is not allowed: expected one of score"),
    ("train", "model.id_factors=foo", "model.id_factors='foo' is not allowed: expected one of "
     "true, false, users, movies, both, none"),
    ("train", "data.pair_weighting=foo", "data.pair_weighting='foo' is not allowed: expected "
     "one of pairs, ratings, uniform"),
    ("train", "data.split.method=foo", "data.split.method='foo' is not allowed: expected one "
     "of random"),
    ("train", "model.factor_l2=-1", "model.factor_l2=-1 is not allowed: expected a number >= 0"),
    ("train", "seed=abc", "seed='abc' is not allowed: expected an integer"),
    ("recommend", "aggregate=median", "aggregate='median' is not allowed: expected one of mean"),
]


@pytest.mark.parametrize(("command", "override", "message"), BAD, ids=[b[1] for b in BAD])
def test_bad_setting_is_refused_naming_key_value_and_range(
    tmp_path: Path, command: str, override: str, message: str
) -> None:
    with pytest.raises(UsageError) as refused:
        check_settings(compose_config(command, [override], tmp_path), command)
    assert str(refused.value).startswith(message)
    assert "\n" not in str(refused.value)


# one per command, end to end: the refusal above becomes one line on stderr, exit status 1
ON_THE_COMMAND_LINE = {command: (override, message) for command, override, message in BAD}


def test_restated_choices_equal_their_homes() -> None:
    from duorec.model.cowatch import COWATCH_RULES
    from duorec.model.module import RANK_BY
    from duorec.model.ranking_baselines import PAIR_RULES
    from duorec.settings import PAIR_RULE
    from duorec.settings import RANK_BY as SETTINGS_RANK_BY

    assert SETTINGS_RANK_BY == RANK_BY and PAIR_RULE == COWATCH_RULES == PAIR_RULES


UNKNOWN_KEYS = [
    # Hydra's own five lines for the first; the second (what Hydra's hint says to type) was
    # appended and handed to the model: a TypeError traceback after the data was prepared
    ("train", ["model.hiden=3"], "model.hiden is not a setting of model (did you mean "
     "model.hidden?)"),
    ("train", ["+model.hiden=3"], "+model.hiden is not a setting of model (did you mean "
     "model.hidden?)"),
    ("train", ["+trainer.max_epoch=3"], "+trainer.max_epoch is not a setting of trainer (did "
     "you mean trainer.max_epochs?)"),
    ("train", ["+eval.kk=3"], "+eval.kk is not a setting of eval (did you mean eval.k?)"),
    ("train", ["-m", "optim.lrr=1e-3,3e-4"], "optim.lrr is not a setting of optim (did you "
     "mean optim.lr?)"),
    ("train", ["model=duoo"], "model=duoo is not an option of model: choose one of bias, duo, "
     "mf (did you mean model=duo?)"),
    ("recommend", ["users=[1,2]", "kk=3"], "kk is not a setting (did you mean k?)"),
    ("evaluate", ["eval.kk=1"], "eval.kk is not a setting of eval (did you mean eval.k?)"),
    ("train", ["model.hidden=[1,"], "model.hidden=[1,: cannot be read as an override"),
]


@pytest.mark.parametrize(("command", "args", "message"), UNKNOWN_KEYS,
                         ids=[" ".join(u[1]) for u in UNKNOWN_KEYS])
def test_unknown_key_names_the_nearest_one(command: str, args: list[str], message: str) -> None:
    with pytest.raises(UsageError) as refused:
        check_overrides(command, args)
    assert str(refused.value).startswith(message)
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize(
    "args",
    [
        ["+trainer.limit_train_batches=0.1"],  # a Trainer argument conf/trainer does not list
        ["+sweep_group=lr-study"],  # a new top-level key
        ["+callbacks.stop._target_=interrupt.StopAfter", "+callbacks.stop.epochs=2"],
        ["+experiment=underfitting"],
        ["-m", "optim.lr=1e-3,3e-4", "model.hidden=64"],
        ["--cfg", "job", "data.batch_size=64"],
        # Hydra's flags and their values are not overrides (`--info config` was refused)
        ["--info", "config", "data.batch_size=64"],
        ["-m", "--info", "searchpath"],
        ["-cn", "train", "model.hidden=64"],
    ],
)
def test_valid_overrides_pass(args: list[str]) -> None:
    check_overrides("train", args)


@pytest.mark.parametrize("command", sorted(ON_THE_COMMAND_LINE))
def test_bad_setting_is_one_line_before_any_work(tmp_path: Path, command: str) -> None:
    override, message = ON_THE_COMMAND_LINE[command]
    extra = ["users=[1,2]"] if command == "recommend" else []
    out = cli(f"duorec.{command}", [override, *extra], tmp_path)
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith(f"duorec.{command}: error: {message}")
    assert not (tmp_path / "data").exists()  # refused before preparing anything


def test_unknown_key_is_one_line_on_the_command_line(tmp_path: Path) -> None:
    out = cli("duorec.train", ["+model.hiden=3"], tmp_path)
    assert out.returncode == 1
    assert out.stderr.strip() == (
        "duorec.train: error: +model.hiden is not a setting of model (did you mean model.hidden?)"
    )
    assert not (tmp_path / "data").exists()


def test_resume_from_a_missing_or_unloadable_checkpoint_is_one_line(tmp_path: Path) -> None:
    missing = cli("duorec.train", [f"ckpt_path={tmp_path / 'nope.ckpt'}"], tmp_path)
    assert missing.returncode == 1
    assert missing.stderr.strip() == (
        f"duorec.train: error: ckpt_path={tmp_path / 'nope.ckpt'} does not exist: "
        "expected a checkpoint to resume from"
    )
    junk = tmp_path / "notes.ckpt"
    junk.write_text("not a checkpoint")
    out = cli("duorec.train", [f"ckpt_path={junk}"], tmp_path)
    assert out.returncode == 1
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith(f"duorec.train: error: ckpt_path={junk} is not a loadable checkpoint")


@pytest.mark.parametrize("name", ["train", "evaluate", "recommend", "prepare"])
def test_default_configs_pass(tmp_path: Path, name: str) -> None:
    check_settings(compose_config(name, [], tmp_path), name)


@pytest.mark.parametrize(
    "override",
    [
        "data.samples_per_epoch=auto",
        "trainer.max_epochs=-1",
        "model=bias",  # model.k=0 is the bias model
        "data.split.fractions=[0.7,0.3,0.0]",
        "model.dropout=0.0",
    ],
)
def test_allowed_edge_values_pass(tmp_path: Path, override: str) -> None:
    check_settings(compose_config("train", [override], tmp_path), "train")


@pytest.mark.parametrize("threads", ["auto", "3", "null"])
def test_threads_auto_or_a_count_pass(tmp_path: Path, threads: str) -> None:
    check_settings(compose_config("recommend", [f"threads={threads}"], tmp_path), "recommend")


def test_only_keys_present_are_checked_and_only_for_their_command(tmp_path: Path) -> None:
    cfg = compose_config("train", [], tmp_path)
    with open_dict(cfg):
        del cfg["optim"]
        cfg.k = 0  # a top-level k means the number of recommendations only to recommend
    check_settings(cfg, "train")
    with pytest.raises(UsageError, match=r"^k=0 is not allowed"):
        check_settings(cfg, "recommend")


def test_resume_checkpoint_must_hold_a_state_dict(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.ckpt", tmp_path / "bad.ckpt"
    torch.save({"state_dict": {}, "epoch": 0}, good)
    torch.save([1, 2, 3], bad)
    check_settings(compose_config("train", [f"ckpt_path={good}"], tmp_path), "train")
    check_settings(compose_config("train", ["ckpt_path=last"], tmp_path), "train")
    with pytest.raises(UsageError, match="is not a Lightning checkpoint"):
        check_settings(compose_config("train", [f"ckpt_path={bad}"], tmp_path), "train")
