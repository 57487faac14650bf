"""What shapes a DuoModule, in a few plain dataclasses (nanoGPT's `GPTConfig` is the model).

conf/model/duo.yaml and every checkpoint's hyperparameters hold the same settings as flat
keys (`model.hidden=256` on the command line); `DuoConfig.from_flat` groups them, `flat`
gives them back. The checkpoint keeps the flat form, so a checkpoint written before the
groups existed loads unchanged (tests/test_checkpoint_safety.py loads one), and a checkpoint
holds only plain values: it loads weights-only, without any duorec class.

* `Towers`: the user and movie towers and the pair head (sizes, inputs, id factors);
* `Losses`: what is trained (the pair target, loss weights, L2 on the factors, groups);
* `Watch`: the learned "would watch" head and the history bag it reads;
* `Ranking`: how a list is ordered (rank_by, the rating weight, co-watch, shortlist) and
  fold-in's prior; the rank weight, pair rule and prior are re-chosen on validation after
  training (duorec.eval.rank_weight, duorec.eval.foldin_choice).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(frozen=True)
class Towers:
    embed_dim: int  # id and people embedding size
    hidden: int  # width of the tower MLPs
    layers: int  # hidden layers per tower
    out_dim: int  # tower output size (plus one bias)
    fusion_hidden: int  # width of the pair (and group) head MLP
    dropout: float
    use_ids: bool
    use_features: bool
    use_people: bool
    id_factors: bool | str = False  # users | movies | both | none: free per-id factors
    id_factor_dim: int | None = None  # their width (None: out_dim)


@dataclass(frozen=True)
class Losses:
    target: str  # mean | min | max: the pair rating trained for
    pair_weight: float
    individual_weight: float
    factor_l2: float = 0.0  # off: checkpoints written before it load unchanged
    groups: bool = False  # a group head, trained on group batches (data.group_sizes)


@dataclass(frozen=True)
class Watch:
    use_history: bool  # a bag of the movies each person rated (and how), read by the towers
    watch_dim: int  # watch factors per tower (0: no learned watch head)
    watch_weight: float
    watch_negatives: int
    watch_batch: int
    history_rating: bool = False  # SVD++'s implicit term in the rating factors
    # the weight of a person's recent rating level (HistoryBag.recent_level) in their bias;
    # 0 while training, chosen on validation after it (duorec.eval.recent_level)
    recent_weight: float = 0.0


@dataclass(frozen=True)
class Ranking:
    rank_by: str  # score | watch | rating
    rank_rating_weight: float
    rank_pair_rule: str = "sum"
    rank_shortlist: int | None = None
    cowatch: dict[str, Any] | None = None  # the co-watch (EASE) settings, fitted at build
    foldin_prior: float = 1.0


@dataclass(frozen=True)
class DuoConfig:
    towers: Towers
    losses: Losses
    watch: Watch
    ranking: Ranking

    @classmethod
    def from_flat(cls, settings: Mapping[str, Any]) -> DuoConfig:
        """The groups from flat keys (conf/model/duo.yaml, a checkpoint's hyperparameters);
        TypeError naming a key that is no setting or a required one that is missing."""
        groups = (Towers, Losses, Watch, Ranking)
        unknown = sorted(set(settings) - cls.keys())
        if unknown:
            raise TypeError(f"DuoModule has no setting {', '.join(unknown)}")
        built = []
        for group in groups:
            names = {f.name for f in fields(group)}
            try:
                built.append(group(**{k: v for k, v in settings.items() if k in names}))
            except TypeError as err:
                raise TypeError(f"DuoModule settings ({group.__name__}): {err}") from None
        return cls(*built)

    @classmethod
    def keys(cls) -> frozenset[str]:
        """Every flat setting name: what `from_flat` accepts."""
        groups = (Towers, Losses, Watch, Ranking)
        return frozenset(f.name for group in groups for f in fields(group))

    def flat(self) -> dict[str, Any]:
        """Every setting as one flat dict: what conf/model/duo.yaml and checkpoints hold."""
        out: dict[str, Any] = {}
        for group in (self.towers, self.losses, self.watch, self.ranking):
            out.update(asdict(group))
        return out
