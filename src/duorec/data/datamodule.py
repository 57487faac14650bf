"""LightningDataModule serving lazily sampled training triples and fixed evaluation triples.

Training batches are drawn whole, vectorised, by a map-style dataset whose index is
(epoch, batch number): batch k of epoch e on rank r is always drawn from
`default_rng([seed, e, r, k])`, whatever the number of workers. So streams are reproducible,
differ between DDP ranks and epochs, and a run resumed at an epoch boundary continues the
exact stream an uninterrupted run would have drawn. Lightning calls `set_epoch` on the sampler.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from duorec.data.build import DatasetSpec, prepare_dataset
from duorec.data.groups import Groups, GroupSampler, check_group_sizes, evaluation_groups
from duorec.data.pairs import PairSampler, RaterIndex, Triples, evaluation_triples
from duorec.data.prepared import PreparedDataset
from duorec.data.split import SPLIT_NAMES

log = logging.getLogger(__name__)


def triples_to_batch(triples: Triples) -> dict[str, torch.Tensor]:
    return {
        "user_a": torch.from_numpy(triples.user_a.astype(np.int64)),
        "user_b": torch.from_numpy(triples.user_b.astype(np.int64)),
        "movie": torch.from_numpy(triples.movie.astype(np.int64)),
        "rating_a": torch.from_numpy(triples.rating_a.astype(np.float32)),
        "rating_b": torch.from_numpy(triples.rating_b.astype(np.float32)),
    }


def groups_to_batch(groups: Groups) -> dict[str, torch.Tensor]:
    """A group batch: `members` [N, k] and `member_ratings` [N, k], plus its first two members
    under the pair keys, so the pair heads (and the watch head) train on it unchanged."""
    members = torch.from_numpy(groups.members.astype(np.int64))
    ratings = torch.from_numpy(groups.ratings.astype(np.float32))
    return {
        "user_a": members[:, 0].contiguous(),
        "user_b": members[:, 1].contiguous(),
        "movie": torch.from_numpy(groups.movie.astype(np.int64)),
        "rating_a": ratings[:, 0].contiguous(),
        "rating_b": ratings[:, 1].contiguous(),
        "members": members,
        "member_ratings": ratings,
    }


class EpochBatchSampler(Sampler):
    """Yields (epoch, batch number) keys for the current epoch.

    The epoch is read from the trainer when there is one: on resume Lightning builds (and
    prefetches from) the train iterator before it calls `set_epoch`, and a stale epoch there
    would replay epoch 0's stream instead of continuing it.
    """

    def __init__(self, n_batches: int, trainer: L.Trainer | None = None):
        self.n_batches = n_batches
        self.trainer = trainer
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        # `processed` is what Lightning itself passes to set_epoch; `current_epoch` is only
        # brought up to date after the iterator exists
        trainer = self.trainer
        epoch = trainer.fit_loop.epoch_progress.current.processed if trainer else self.epoch
        return iter([(epoch, k) for k in range(self.n_batches)])

    def __len__(self) -> int:
        return self.n_batches


class EpochDataLoader(DataLoader):
    """A DataLoader whose iterator is only built when its first batch is asked for.

    Lightning builds the train iterator as soon as it sets up the data, and a learning-rate
    schedule sized by `trainer.estimated_stepping_batches` makes it set up the data inside
    `configure_optimizers`, which on resume runs *before* the loops are restored: an iterator
    built then reads epoch 0 and the resumed epoch would replay epoch 0's batches (so a resumed
    run diverged from an uninterrupted one with a scheduler and matched without). Deferring
    the real iterator (and with it the sampler's epoch and any worker start-up) to the first
    `next` reads the epoch after the restore; an uninterrupted run draws exactly as before.
    """

    def __iter__(self) -> Iterator[Any]:
        return _Deferred(super().__iter__)


class _Deferred:
    """An iterator made by `make()` on the first `next`."""

    def __init__(self, make: Callable[[], Iterator[Any]]):
        self.make = make
        self.iterator: Iterator[Any] | None = None

    def __iter__(self) -> _Deferred:
        return self

    def __next__(self) -> Any:
        if self.iterator is None:
            self.iterator = self.make()
        return next(self.iterator)


class SampledPairBatches(Dataset):
    """Batch (epoch, k) of training triples, drawn with a seed derived from its key and rank."""

    def __init__(
        self, sampler: PairSampler | GroupSampler, batch_size: int, seed: int, rank: int = 0
    ):
        self.sampler = sampler
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank

    def draw(self, epoch: int, k: int) -> Triples | Groups:
        rng = np.random.default_rng([self.seed, epoch, self.rank, k])
        return self.sampler.draw(self.batch_size, rng)

    def __getitem__(self, key: tuple[int, int]) -> dict[str, torch.Tensor]:
        drawn = self.draw(*key)
        return groups_to_batch(drawn) if isinstance(drawn, Groups) else triples_to_batch(drawn)


class FixedTripleBatches(Dataset):
    """Contiguous batches of a fixed triple set; rank r of w takes batches r, r + w, ...

    The batch count is rounded up to a multiple of the world size so every rank gets the same
    number of (non-empty) batches: Lightning refuses a rank with an empty loader.
    """

    def __init__(self, triples: Triples, batch_size: int, rank: int = 0, world_size: int = 1):
        self.triples = triples
        n_batches = max(-(-len(triples) // batch_size), 1)
        n_batches = -(-n_batches // world_size) * world_size
        bounds = np.linspace(0, len(triples), n_batches + 1).astype(np.int64)
        self.slices = [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        self.slices = self.slices[rank::world_size]

    def __len__(self) -> int:
        return len(self.slices)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return triples_to_batch(self.triples.take(self.slices[i]))


class PairDataModule(L.LightningDataModule):
    """Training triples drawn lazily from train ratings; val/test triples fixed per split.

    It owns the data: built from the `data` config (conf/data/*.yaml instantiate it), it
    prepares or loads the cached dataset in `prepare_data` and keeps, in its `state_dict`, the
    reference a checkpoint needs to find that data again (name, cache key, sizes, the data
    config). Lightning saves the state_dict in every checkpoint, so the model never has to know
    where its data came from. The defaults live in conf/data/synthetic.yaml, not here.
    """

    def __init__(
        self,
        source: str,
        name: str,
        seed: int,
        split: Mapping[str, Any],
        features: Mapping[str, Any],
        pair_weighting: str,
        samples_per_epoch: int | str,
        batch_size: int,
        eval_batch_size: int,
        eval_max_triples: int | None,
        num_workers: int,
        cache_dir: str,
        synthetic: Mapping[str, Any] | None = None,
        movielens_dir: str | None = None,
        imdb_dir: str | None = None,
        group_sizes: Mapping[int, float] | None = None,
        cold_users: float | None = None,
        cold_movies: float | None = None,
    ):
        super().__init__()
        self.spec = DatasetSpec.from_config(
            dict(
                source=source,
                name=name,
                seed=seed,
                split=split,
                features=features,
                synthetic=synthetic,
                movielens_dir=movielens_dir,
                imdb_dir=imdb_dir,
                cold_users=cold_users,
                cold_movies=cold_movies,
            )
        )
        self.cache_dir = str(cache_dir)
        self.pair_weighting = pair_weighting
        # None: pairs only (today's training, bit for bit); {k: p}: groups of k with prob. p
        self.group_sizes = check_group_sizes(
            None if group_sizes is None else dict(group_sizes)  # type: ignore[call-overload]
        )
        self.samples_per_epoch = samples_per_epoch
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.eval_max_triples = eval_max_triples
        self.num_workers = num_workers
        self.seed = int(seed)
        self._dataset: PreparedDataset | None = None
        self.indexes: dict[str, RaterIndex] = {}
        self.triples: dict[str, Triples] = {}
        self.groups: dict[tuple[str, int], Groups] = {}

    @classmethod
    def from_reference(
        cls, reference: Mapping[str, Any], cache_dir: str | None = None
    ) -> PairDataModule:
        """The data module a checkpoint was trained with, from the reference it saved."""
        config = dict(reference["data"])
        if cache_dir is not None:
            config["cache_dir"] = str(cache_dir)
        return cls(**config)

    @property
    def config(self) -> dict[str, Any]:
        """The constructor arguments, plain: enough to build this data module again."""
        return {
            **self.spec.as_dict(),
            "cache_dir": self.cache_dir,
            "pair_weighting": self.pair_weighting,
            "samples_per_epoch": self.samples_per_epoch,
            "batch_size": self.batch_size,
            "eval_batch_size": self.eval_batch_size,
            "eval_max_triples": self.eval_max_triples,
            "num_workers": self.num_workers,
            "group_sizes": self.group_sizes,
        }

    @property
    def dataset(self) -> PreparedDataset:
        """The prepared dataset, built or loaded from the cache on first use."""
        if self._dataset is None:
            prepared = prepare_dataset(self.spec, self.cache_dir)
            log.info(
                "%s data set %s (%.1f s): %s",
                "cached" if prepared.from_cache else "prepared",
                prepared.dataset.manifest["name"],
                prepared.seconds,
                prepared.folder,
            )
            self._dataset = prepared.dataset
        return self._dataset

    @property
    def triples_per_epoch(self) -> int:
        """`samples_per_epoch`, or with "auto" the number of train ratings.

        Why ratings and not pair triples: the triples grow with the square of each movie's
        audience (billions at MovieLens-32M) while what there is to learn grows with the
        ratings; an epoch of one triple per train rating lets each rating take part about twice
        (as person a or b) and makes the training length follow the data set's size.
        """
        if self.samples_per_epoch == "auto":
            return int(self.dataset.manifest["split_sizes"]["train"])
        return int(self.samples_per_epoch)

    def use_dataset(self, dataset: PreparedDataset) -> None:
        """Serve an already loaded dataset (a checkpoint's) instead of preparing it again."""
        self._dataset = dataset
        self.indexes.clear()
        self.triples.clear()
        self.groups.clear()

    def prepare_data(self) -> None:
        self.dataset  # noqa: B018 - builds (or loads) the cache

    def reference(self) -> dict[str, Any]:
        """What a checkpoint needs to find this data again: config, cache key and sizes."""
        manifest = self.dataset.manifest
        return {
            "name": manifest.get("name"),
            "seed": self.seed,
            "cache_key": manifest.get("cache_key"),
            "fingerprint": manifest.get("fingerprint"),
            "n_users": manifest.get("n_users"),
            "n_movies": manifest.get("n_movies"),
            "data": self.config,
            "cache_dir": self.cache_dir,
        }

    def state_dict(self) -> dict[str, Any]:
        return {"dataset": self.reference()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Nothing to restore: the sampler stream is keyed by (seed, epoch, rank, batch)."""

    def rater_index(self, split: str) -> RaterIndex:
        if split not in self.indexes:
            r = self.dataset.split(split)
            self.indexes[split] = RaterIndex(
                r["user"].to_numpy(),
                r["movie"].to_numpy(),
                r["rating"].to_numpy(),
                self.dataset.n_movies,
            )
        return self.indexes[split]

    def evaluation_triples(self, split: str) -> Triples:
        """The fixed triples of 'val' or 'test' (a seeded sample if there are too many)."""
        if split not in self.triples:
            seed = self.seed * 10 + SPLIT_NAMES[split]
            self.triples[split] = evaluation_triples(
                self.rater_index(split), self.eval_max_triples, seed
            )
        return self.triples[split]

    def evaluation_groups(self, split: str, k: int, max_groups: int | None) -> Groups:
        """The fixed groups of size `k` of 'val' or 'test' (a seeded sample if too many)."""
        if (split, k) not in self.groups:
            seed = self.seed * 10 + SPLIT_NAMES[split]
            self.groups[split, k] = evaluation_groups(self.rater_index(split), k, max_groups, seed)
        return self.groups[split, k]

    def setup(self, stage: str | None = None) -> None:
        train = self.rater_index("train")
        self.train_sampler: PairSampler | GroupSampler = (
            PairSampler(train, self.pair_weighting)
            if self.group_sizes is None
            else GroupSampler(train, self.group_sizes)
        )
        for split in ("val", "test"):
            total = self.rater_index(split).n_pairs
            used = len(self.evaluation_triples(split))
            how = "all of them" if used == total else "a fixed seeded sample"
            log.info("%s: %d pair triples (%s of %d)", split, used, how, total)

    @property
    def _rank_world(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def train_dataloader(self) -> DataLoader:
        rank, world = self._rank_world
        n_batches = max(1, self.triples_per_epoch // (self.batch_size * world))
        batches = SampledPairBatches(self.train_sampler, self.batch_size, self.seed, rank)
        return EpochDataLoader(
            batches,
            batch_size=None,
            sampler=EpochBatchSampler(n_batches, self.trainer),
            num_workers=self.num_workers,
            persistent_workers=False,
        )

    def _fixed_loader(self, split: str) -> DataLoader:
        rank, world = self._rank_world
        batches = FixedTripleBatches(self.triples[split], self.eval_batch_size, rank, world)
        return DataLoader(batches, batch_size=None, shuffle=False, num_workers=0)

    def val_dataloader(self) -> DataLoader:
        return self._fixed_loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._fixed_loader("test")
