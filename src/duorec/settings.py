"""Settings checked before any work starts: one table of keys and the values they allow.

A batch size of 0 or a negative learning rate otherwise surfaces minutes later, after the data
is prepared, as a ZeroDivisionError deep in the sampler or a model that silently learns nothing.
Checking the composed config up front turns each into one line naming the key, the value and
what is allowed (a UsageError, printed by `duorec.cli.friendly_errors`).

Only keys present in the config are checked (`OmegaConf.select`), so the table stays valid when
a config group moves or an entry point does not have that key at all.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from duorec.aggregate import AGGREGATES
from duorec.data.pairs import WEIGHTINGS
from duorec.data.split import SPLIT_METHODS
from duorec.data.synthetic.spec import SIZES
from duorec.errors import UsageError

MISSING = object()


@dataclass(frozen=True)
class Allowed:
    """What a key accepts: a predicate and the sentence that describes it to the user."""

    description: str
    accepts: Callable[[Any], bool]
    notes: Mapping[Any, str] = field(default_factory=dict)  # value -> why it is refused


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def integer(minimum: int, *also: Any, extra: str = "") -> Allowed:
    """An integer >= minimum, or one of the literal values `also` (e.g. "auto", None)."""
    words = f"an integer >= {minimum}" + (f" {extra}" if extra else "")
    return Allowed(words, lambda v: (_is_int(v) and v >= minimum) or _literal(v, also))


def number(low: float, *, low_open: bool = False, high: float | None = None) -> Allowed:
    """A finite number above `low` (or at it), below `high` when given (half-open [low, high))."""
    words = f"a number {'>' if low_open else '>='} {low:g}"
    if high is not None:
        words = f"a number in {'(' if low_open else '['}{low:g}, {high:g})"

    def accepts(v: Any) -> bool:
        if not _is_number(v) or v < low or (low_open and v == low):
            return False
        return high is None or v < high

    return Allowed(words, accepts)


def _literal(value: Any, literals: tuple[Any, ...]) -> bool:
    return any(value is lit if lit is None else value == lit for lit in literals)


def _fractions(value: Any) -> bool:
    if not isinstance(value, list | tuple) or len(value) != 3:
        return False
    if not all(_is_number(f) and f >= 0 for f in value):
        return False
    return math.isclose(sum(value), 1.0, abs_tol=1e-6)


def _group_sizes(value: Any) -> bool:
    from duorec.data.groups import check_group_sizes

    try:
        check_group_sizes(value)
    except ValueError:
        return False
    return True


def _eval_group_sizes(value: Any) -> bool:
    from duorec.data.groups import MAX_GROUP, MIN_GROUP

    if value is None:
        return True
    if not isinstance(value, list | tuple):
        return False
    return all(_is_int(v) and MIN_GROUP <= v <= MAX_GROUP for v in value)


def _positive_numbers(value: Any) -> bool:
    return value is None or (
        isinstance(value, list | tuple) and all(_is_number(v) and v > 0 for v in value)
    )


def _weights(value: Any) -> bool:
    """A list of numbers >= 0 (or none: nothing to choose)."""
    return value is None or (
        isinstance(value, list | tuple) and all(_is_number(v) and v >= 0 for v in value)
    )


def _reveal_list(value: Any) -> bool:
    return value is None or value == [] or _positive_integers(value)


def _positive_integers(value: Any) -> bool:
    return (
        isinstance(value, list | tuple)
        and len(value) > 0
        and all(_is_int(v) and v >= 1 for v in value)
    )


def one_of(*choices: Any) -> Allowed:
    """One of a fixed set of values (a typo like `model.target=median` fails here, not later)."""
    words = "one of " + ", ".join(_yaml(c) for c in choices)
    return Allowed(words, lambda v: _literal(v, choices) and type(v) is not float)


def _yaml(value: Any) -> str:
    """A value as the user would type it on the command line."""
    if value is None:
        return "null"
    return str(value).lower() if isinstance(value, bool) else str(value)


def _shares(value: Any) -> bool:
    """One share in [0, 1] or a non-empty list of them (None: no co-watch head at all)."""
    values = value if isinstance(value, list | tuple) else [value]
    return value is None or (len(values) > 0 and all(_is_number(v) and 0 <= v <= 1 for v in values))


def _share(value: Any) -> bool:
    return value is None or (_is_number(value) and 0 < value < 1)


def _subset(value: Any, allowed: tuple[str, ...]) -> bool:
    return isinstance(value, list | tuple) and len(value) > 0 and all(v in allowed for v in value)


def _seed(value: Any) -> bool:
    return value is None or (_is_int(value) and 0 <= value < 2**32)


THREADS = integer(1, "auto", None, extra='or "auto" (the CPUs this process may use)')
POSITIVE = integer(1)
# duorec.model.module.RANK_BY and the co-watch / ranker pair rules, restated: importing the
# model here would load Lightning before a typo could be reported (a test keeps them equal)
RANK_BY = ("score", "rating", "watch")
PAIR_RULE = ("sum", "both")
ALL = ("prepare", "train", "evaluate", "recommend", "download", "serve")

# (key, allowed, the commands whose config has that meaning for the key)
SETTINGS: tuple[tuple[str, Allowed, tuple[str, ...]], ...] = (
    ("threads", THREADS, ALL),
    ("data.batch_size", POSITIVE, ALL),
    ("data.eval_batch_size", POSITIVE, ALL),
    ("data.eval_max_triples", POSITIVE, ALL),
    ("data.num_workers", integer(0), ALL),
    ("data.samples_per_epoch", integer(1, "auto", extra='or "auto"'), ALL),
    (
        "data.split.fractions",
        Allowed("three numbers >= 0 summing to 1 (train, val, test)", _fractions),
        ALL,
    ),
    (
        "data.group_sizes",
        Allowed(
            "null (pairs) or {size: probability} with sizes 2..6 and probabilities > 0 "
            "summing to 1, e.g. {2: 0.6, 3: 0.25, 4: 0.15}",
            _group_sizes,
        ),
        ALL,
    ),
    (
        "eval.group_sizes",
        Allowed("a list of group sizes in 2..6, e.g. [3, 4]", _eval_group_sizes),
        ALL,
    ),
    ("eval.group_max", POSITIVE, ALL),
    (
        "eval.foldin_choice.priors",
        Allowed("a list of numbers > 0 (or [] to keep model.foldin_prior)", _positive_numbers),
        ALL,
    ),
    (
        "eval.foldin_choice.reveal",
        Allowed("a non-empty list of integers >= 1, e.g. [5, 20, 50]", _positive_integers),
        ALL,
    ),
    ("eval.foldin_choice.users", POSITIVE, ALL),
    ("eval.ranking_groups", POSITIVE, ALL),
    ("optim.lr", number(0, low_open=True), ALL),
    ("optim.weight_decay", number(0), ALL),
    ("optim.warmup_fraction", number(0, high=1), ALL),
    (
        "trainer.max_epochs",
        Allowed(
            "an integer >= 1 (or -1: until early stopping)",
            lambda v: v is None or (_is_int(v) and (v >= 1 or v == -1)),
            {0: "would leave the model untrained"},
        ),
        ALL,
    ),
    ("eval.k", POSITIVE, ALL),
    ("eval.ranking_pairs", POSITIVE, ALL),
    ("eval.bootstrap", POSITIVE, ALL),
    ("eval.mf.k", POSITIVE, ALL),
    ("eval.mf.n_iter", POSITIVE, ALL),
    ("eval.mf.reg", number(0), ALL),
    ("model.embed_dim", POSITIVE, ALL),
    ("model.hidden", POSITIVE, ALL),
    ("model.out_dim", POSITIVE, ALL),
    ("model.fusion_hidden", POSITIVE, ALL),
    ("model.layers", integer(0), ALL),
    ("model.k", integer(0), ALL),  # factorisation rank; 0 is the bias model
    ("model.dropout", number(0, high=1), ALL),
    ("model.individual_weight", number(0), ALL),
    ("seed", Allowed("an integer in [0, 2**32)", _seed), ALL),
    ("data.synthetic.size", one_of(*SIZES), ALL),
    ("data.pair_weighting", one_of(*WEIGHTINGS), ALL),
    ("data.split.method", one_of(*SPLIT_METHODS), ALL),
    ("data.cold_users", Allowed("null or a share in (0, 1)", _share), ALL),
    ("data.cold_movies", Allowed("null or a share in (0, 1)", _share), ALL),
    ("model.target", one_of(*AGGREGATES), ALL),
    ("model.rank_by", one_of(*RANK_BY), ALL),
    ("model.rank_pair_rule", one_of(*PAIR_RULE), ALL),
    ("model.id_factors", one_of(True, False, "users", "movies", "both", "none"), ALL),
    ("model.factor_l2", number(0), ALL),
    ("model.rank_rating_weight", number(0), ALL),
    ("model.foldin_prior", number(0), ALL),
    ("model.pair_weight", number(0), ALL),
    ("model.watch_weight", number(0), ALL),
    ("model.watch_dim", integer(0), ALL),
    ("model.history_max", integer(1, None, extra="or null (all)"), ALL),
    ("model.rank_shortlist", integer(1, None, extra="or null (every movie)"), ALL),
    ("eval.targets", Allowed("a list of mean, min, max", lambda v: _subset(v, AGGREGATES)), ALL),
    ("eval.relevance_threshold", number(0), ALL),
    ("eval.test_history", one_of("auto", "train", "train_val"), ALL),
    ("eval.known_min_ratings", POSITIVE, ALL),
    ("eval.recent_weights", Allowed("a list of numbers >= 0, or [] (none)", _weights), ALL),
    (
        "eval.newcomer_reveal",
        Allowed("a list of positive numbers of ratings, or [] (none)", _reveal_list),
        ALL,
    ),
    (
        "model.cowatch.next_weight",
        Allowed("a number in [0, 1] or a list of them (chosen on validation)", _shares),
        ALL,
    ),
    ("model.cowatch.next_fraction", Allowed("a number in (0, 1)", _share), ALL),
    ("k", POSITIVE, ("recommend",)),
    ("aggregate", one_of(*AGGREGATES), ("recommend",)),
    ("rank_by", one_of(None, *RANK_BY), ("recommend",)),
    ("batch_size", POSITIVE, ("recommend",)),
)

# Lightning's own names for a checkpoint to resume from (`Trainer.fit(ckpt_path=...)`)
LIGHTNING_CKPT_NAMES = ("last", "best", "hpc")


def check_settings(cfg: DictConfig, command: str) -> None:
    """Raise UsageError for the first setting of `command`'s config outside its allowed values."""
    for key, allowed, commands in SETTINGS:
        if command not in commands:
            continue
        value = OmegaConf.select(cfg, key, default=MISSING, throw_on_missing=False)
        if value is MISSING:
            continue
        if isinstance(value, ListConfig | DictConfig):
            value = OmegaConf.to_container(value, resolve=True)
        if not allowed.accepts(value):
            shown = f"{key}={_show(value)}"
            note = _note(allowed, value)
            raise UsageError(
                f"{shown} {note}: expected {allowed.description}"
                if note
                else f"{shown} is not allowed: expected {allowed.description}"
            )
    if command == "train":
        check_resume_checkpoint(OmegaConf.select(cfg, "ckpt_path", default=None))


def _note(allowed: Allowed, value: Any) -> str | None:
    try:
        return allowed.notes.get(value)
    except TypeError:  # an unhashable value (a list) has no note
        return None


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def check_resume_checkpoint(path: Any) -> None:
    """`train ckpt_path=`: an existing file that torch can read as a Lightning checkpoint."""
    if path is None or path in LIGHTNING_CKPT_NAMES:
        return
    file = Path(str(path)).expanduser()
    if not file.is_file():
        what = "is a folder, not a .ckpt file" if file.is_dir() else "does not exist"
        raise UsageError(f"ckpt_path={path} {what}: expected a checkpoint to resume from")
    from duorec.checkpoint_io import load_checkpoint_file

    try:  # mmap: only the header is read, not every tensor; weights-only: nothing in it runs
        checkpoint = load_checkpoint_file(file, f"ckpt_path={path}", mmap=True)
    except UsageError:  # it names code to run: refused as such
        raise
    except Exception as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise UsageError(f"ckpt_path={path} is not a loadable checkpoint ({reason})") from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise UsageError(f"ckpt_path={path} is not a Lightning checkpoint (no state_dict in it)")
