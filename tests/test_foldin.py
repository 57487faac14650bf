"""Fold-in: people the model never saw, scored from their ratings, the trained model untouched.

Uses the tiny model trained once per session (`test_recommend.trained_run`) on synthetic
data whose ratings carry planted genre tastes.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import (
    CHEAP_DUO,
    best_checkpoint,
    model_kwargs,
    rating_steps,
    run_in_process,
    tiny_train_cfg,
)
from test_recommend import assert_one_line_error, run_cli, trained_run

from duorec.checkpoint import best_in_run, load_checkpoint
from duorec.cli import UsageError
from duorec.data.features import user_features_for
from duorec.data.prepared import PreparedDataset
from duorec.data.split import TEST
from duorec.model.base import PairRatingModule
from duorec.model.factorization import FactorizationModule
from duorec.model.foldin import Person
from duorec.model.fusion import individual_grid
from duorec.model.module import DuoModule
from duorec.serving import Recommender
from duorec.train import train


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory, tiny_cache: Path) -> Path:
    path = best_in_run(trained_run(tmp_path_factory, tiny_cache))
    assert path is not None
    return path


@pytest.fixture(scope="module")
def loaded(ckpt: Path, tiny_cache: Path) -> tuple[DuoModule, PreparedDataset]:
    return load_checkpoint(ckpt, tiny_cache)  # type: ignore[return-value]


@pytest.fixture(scope="module")
def learned(learned_run, tiny_cache: Path) -> tuple[DuoModule, PreparedDataset]:
    """The default model trained until it has learned its users (6 epochs, conftest's
    `learned_run`, trained once per worker): after the shared model's 2 epochs its id
    factors, which start at zero, have barely moved, so what is particular about a user is
    not yet in it to be recovered."""
    path = best_in_run(learned_run.run)
    assert path is not None
    return load_checkpoint(path, tiny_cache)  # type: ignore[return-value]


@pytest.fixture(scope="module")
def by_features(
    tmp_path_factory: pytest.TempPathFactory, tiny_cache: Path
) -> tuple[DuoModule, PreparedDataset]:
    """A tiny model that reads users by their features alone (no ids), trained to learn them.

    The shared 2-epoch model has not yet learned what the genre tastes mean (its trained
    users' predicted genre preferences barely vary), so it cannot show that a new person's
    tastes are read; 6 epochs without ids or dropout can (~10 s). Only the model is used:
    not tested (fold-in's prior is still chosen on validation and saved with it).
    """
    root = tmp_path_factory.mktemp("by_features")
    cfg = tiny_train_cfg(
        root,
        tiny_cache,
        "trainer.max_epochs=6",
        "optim.lr=3e-3",
        "model.dropout=0.0",
        "model.use_ids=false",
        "test=false",
        *CHEAP_DUO,
    )
    train(cfg)
    return load_checkpoint(best_checkpoint(root / "run"), tiny_cache)  # type: ignore[return-value]


def predictions(model: PairRatingModule, users: np.ndarray) -> np.ndarray:
    """Individual predicted ratings (stars) of users [U] for every movie -> [U, n_movies]."""
    with torch.no_grad():
        vectors = model.user_vectors(torch.as_tensor(users))
        return model.unscale(individual_grid(vectors, model.encode_movies())).numpy()


def genre_people(dataset: PreparedDataset, genre: str) -> tuple[Person, Person, np.ndarray]:
    """A lover and a hater of `genre` rating the same 30 movies; the genre's mask."""
    in_genre = dataset.catalog["genres"].str.contains(genre).to_numpy()
    rng = np.random.default_rng(0)
    rated = np.concatenate(
        [
            rng.choice(np.flatnonzero(in_genre), 15, replace=False),
            rng.choice(np.flatnonzero(~in_genre), 15, replace=False),
        ]
    )
    love = np.where(in_genre[rated], 5.0, 1.5)
    hate = np.where(in_genre[rated], 1.5, 5.0)
    return Person(rated, love), Person(rated, hate), in_genre


def test_a_new_persons_features_are_computed_as_in_training(loaded) -> None:
    """The fold-in features of every training user's train ratings are their training row."""
    _, dataset = loaded
    train = dataset.split("train")
    user = train["user"].to_numpy()
    features = user_features_for(
        user,
        train["movie"].to_numpy(),
        train["rating"].to_numpy(),
        dataset.n_users,
        dataset.catalog,
        dataset.features.global_mean,
        np.bincount(user, minlength=dataset.n_users),
    )
    np.testing.assert_allclose(features, dataset.features.user, atol=1e-6)


@pytest.mark.parametrize(("genre", "margin"), [("Drama", 0.05), ("Comedy", 0.0)])
def test_a_genre_lover_is_predicted_to_like_the_genre_more_than_a_hater(
    by_features, genre: str, margin: float
) -> None:
    """Same movies, same mean rating, opposite tastes: the unrated movies of the genre are
    predicted relatively higher for the lover (the synthetic ratings plant genre tastes)."""
    model, dataset = by_features
    lover, hater, in_genre = genre_people(dataset, genre)
    folded = model.fold_in(dataset, [lover, hater])
    scores = predictions(folded.model, folded.users)
    unrated = np.ones(dataset.n_movies, dtype=bool)
    unrated[lover.movies] = False
    gap = scores[:, unrated & in_genre].mean(1) - scores[:, unrated & ~in_genre].mean(1)
    assert gap[0] > gap[1] + margin, gap


def test_fold_in_changes_neither_the_checkpoint_nor_the_model(loaded, ckpt: Path) -> None:
    model, dataset = loaded
    digest = hashlib.sha256(ckpt.read_bytes()).hexdigest()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    lover, hater, _ = genre_people(dataset, "Drama")
    folded = model.fold_in(dataset, [lover, hater])
    Recommender(model, dataset).people([lover, hater], k=5)  # folds them in again, per call
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in model.parameters())
    assert model.user_tower.embedding.num_embeddings == dataset.n_users
    assert hashlib.sha256(ckpt.read_bytes()).hexdigest() == digest
    # the copy knows everyone: the data set's users, predicted exactly as before
    assert folded.users.tolist() == [dataset.n_users, dataset.n_users + 1]
    known = np.arange(dataset.n_users)
    np.testing.assert_array_equal(predictions(folded.model, known), predictions(model, known))


def test_id_factors_are_zero_without_train_ratings_and_fitted_on_fold_in(loaded) -> None:
    """Id factors start at exactly zero (towers.id_factor_table); the steps move the rows of
    the movies they train, while an id no training batch shows (a new movie, read by its
    features) has nothing particular to say and stays at zero. A
    folded-in person's factors are fitted from their ratings; the trained table is shared."""
    model, dataset = loaded
    ratings = dataset.ratings.copy()
    ratings.loc[ratings["movie"] == 5, "split"] = TEST  # movie 5: no train rating left
    held = dataclasses.replace(dataset, ratings=ratings)
    torch.manual_seed(0)
    fresh = DuoModule.from_dataset(
        held, **model_kwargs(cowatch=None, id_factors=True, factor_l2=0.03)
    )
    optimizer = torch.optim.AdamW(fresh.parameters(), lr=1e-2, weight_decay=0.01)
    train = held.split("train")
    batch = {
        "user_a": torch.as_tensor(train["user"].to_numpy()[:256], dtype=torch.long),
        "user_b": torch.as_tensor(train["user"].to_numpy()[256:512], dtype=torch.long),
        "movie": torch.as_tensor(train["movie"].to_numpy()[:256], dtype=torch.long),
        "rating_a": torch.as_tensor(train["rating"].to_numpy()[:256]),
        "rating_b": torch.as_tensor(train["rating"].to_numpy()[256:512]),
    }
    table = fresh.movie_tower.id_factors.weight
    assert (table == 0).all()
    rating_steps(fresh, optimizer, [batch] * 3)
    assert (table[5] == 0).all() and (table[batch["movie"]] != 0).any(dim=1).all()

    fresh.eval()
    lover, hater, _ = genre_people(dataset, "Drama")
    folded = fresh.fold_in(held, [lover, hater])
    factors = folded.model.user_tower.id_factors.weight
    assert torch.equal(factors[: dataset.n_users], fresh.user_tower.id_factors.weight)
    fitted = factors[dataset.n_users :]
    assert (fitted.norm(dim=1) > 0).all() and not torch.allclose(fitted[0], fitted[1])


def test_folded_people_are_never_offered_what_they_rated_or_watched(loaded) -> None:
    model, dataset = loaded
    lover, hater, in_genre = genre_people(dataset, "Drama")
    watched = np.setdiff1d(np.flatnonzero(in_genre), lover.movies)[:5]
    hater = Person(hater.movies[:20], hater.ratings[:20], watched=watched)
    everything = Recommender(model, dataset).people(
        [lover, hater], k=dataset.n_movies, reasons=False
    )
    seen = np.union1d(lover.movies, np.union1d(hater.movies, watched))
    expected = set(dataset.catalog["movieId"].to_numpy()[np.setdiff1d(np.arange(120), seen)])
    assert set(everything["movieId"]) == expected


def test_a_data_set_user_and_a_folded_person_make_a_pair(loaded) -> None:
    model, dataset = loaded
    lover, _, _ = genre_people(dataset, "Drama")
    user = dataset.user_index(5)
    top = Recommender(model, dataset).people([lover], users=[5], k=10)
    rated = dataset.ratings[dataset.ratings["user"] == user]["movie"].to_numpy()
    movies = pd.Index(dataset.catalog["movieId"]).get_indexer(top["movieId"])
    assert len(top) == 10 and not set(movies) & (set(rated) | set(lover.movies))


def test_a_training_user_folded_in_again_keeps_their_taste(learned) -> None:
    """Refolding a user's own train ratings lands near the user the model trained: their
    predictions minus the average user's (each movie's common part, which makes any two
    users' raw predictions correlate above 0.99) correlate best with their own."""
    model, dataset = learned
    train = dataset.split("train")
    users = [3, 17, 30]
    people = [
        Person(train["movie"].to_numpy()[mine], train["rating"].to_numpy()[mine])
        for mine in (train["user"].to_numpy() == u for u in users)
    ]
    folded = model.fold_in(dataset, people)
    average = predictions(model, np.arange(dataset.n_users)).mean(axis=0)
    again = predictions(folded.model, folded.users) - average
    trained = predictions(model, np.array(users)) - average
    for i in range(len(users)):
        others = [np.corrcoef(again[i], trained[j])[0, 1] for j in range(len(users)) if j != i]
        assert np.corrcoef(again[i], trained[i])[0, 1] > max(others)


def test_a_factorisation_model_folds_in_in_closed_form(loaded) -> None:
    _, dataset = loaded
    torch.manual_seed(0)
    model = FactorizationModule.from_dataset(dataset, **model_kwargs("mf", k=8, init_std=0.3))
    model.eval()
    movies = np.arange(0, 120, 4)
    fan, critic = Person(movies, np.full(len(movies), 5.0)), Person(movies, np.full(30, 1.0))
    folded = model.fold_in(dataset, [fan, critic])
    scores = predictions(folded.model, folded.users)
    assert (scores[0] >= scores[1]).all() and scores[0].mean() > scores[1].mean() + 1
    assert model.users.num_embeddings == dataset.n_users


def test_a_model_without_fold_in_is_refused_in_one_line(loaded) -> None:
    _, dataset = loaded
    other = PairRatingModule((0.5, 5.0), "mean", 1.0, 1.0, None, None)
    with pytest.raises(UsageError, match="fold-in is not available for PairRatingModule"):
        other.fold_in(dataset, [Person(np.array([1]), np.array([4.0]))])


# ---------------------------------------------------------------------------- command line


def export_files(dataset: PreparedDataset, tmp_path: Path) -> tuple[Path, Path, set[int]]:
    """An IMDb export (by tconst, with a TV series and an unknown film), a plain CSV, and
    the movieIds of the films in the two."""
    catalog = dataset.catalog
    linked = np.flatnonzero(catalog["tconst"].notna().to_numpy())[:12]
    rows = [
        f'{catalog["tconst"].iloc[m]},{7 + m % 4},2024-01-{1 + i:02d},"{catalog["title"].iloc[m]}",'
        f"https://www.imdb.com/title/{catalog['tconst'].iloc[m]}/,Movie,7.0,100,"
        f"{int(catalog['year'].iloc[m])},Drama,1000,2000-01-01,Someone"
        for i, m in enumerate(linked)
    ]
    rows.append("tt0903747,10,2024-02-01,Breaking Bad,https://x/,TV Series,9.5,49,2008,Drama,1,,")
    rows.append('tt9999999,3,2024-02-02,"Not, Here",https://x/,Movie,5.0,90,2019,Drama,1,,')
    header = (
        "Const,Your Rating,Date Rated,Title,URL,Title Type,IMDb Rating,Runtime (mins),Year,"
        "Genres,Num Votes,Release Date,Directors"
    )
    imdb = tmp_path / "ann.csv"
    imdb.write_text("\n".join([header, *rows]) + "\n")
    plain = tmp_path / "ben.csv"
    ids = catalog["movieId"].to_numpy()[60:80]
    pd.DataFrame({"movieId": [*ids, 999999], "rating": [4.0] * 10 + [2.0] * 10 + [3.0]}).to_csv(
        plain, index=False
    )
    return imdb, plain, set(catalog["movieId"].to_numpy()[linked]) | set(ids)


def test_cli_recommends_for_two_export_files(
    loaded, ckpt: Path, tiny_cache: Path, tmp_path: Path
) -> None:
    _, dataset = loaded
    imdb, plain, seen = export_files(dataset, tmp_path)
    digest = hashlib.sha256(ckpt.read_bytes()).hexdigest()
    out = tmp_path / "top.csv"
    proc = run_cli(
        "duorec.recommend",
        tmp_path,
        tiny_cache,
        f"ckpt_path={ckpt}",
        f"people=[{imdb},{plain}]",
        "k=5",
        f"output={out}",
    )
    assert proc.returncode == 0, proc.stderr
    assert "ann (IMDb ratings, ann.csv): 12 of 13 films matched (tconst 12); 1 TV" in proc.stdout
    assert "not in the data set: Not, Here (2019)" in proc.stdout
    assert "ben (CSV, ben.csv): 20 of 21 films matched (movieId 20)" in proc.stdout
    assert "top 5 for ann and ben" in proc.stdout
    written = pd.read_csv(out)
    assert len(written) == 5 and written["reason"].str.len().gt(0).all()
    assert not seen & set(written["movieId"])
    assert hashlib.sha256(ckpt.read_bytes()).hexdigest() == digest


def test_cli_mixes_a_data_set_user_and_a_file(
    loaded, ckpt: Path, tiny_cache: Path, tmp_path, capsys
):
    """In this process (`run_in_process`), as are the people requests below; the two export
    files above run as a real command."""
    _, dataset = loaded
    _, plain, _ = export_files(dataset, tmp_path)
    out = tmp_path / "top.csv"
    args = [f"ckpt_path={ckpt}", "users=[5]", f"people=[{plain}]", "k=4", f"output={out}"]
    proc = run_in_process(capsys, "recommend", tmp_path, tiny_cache, *args)
    assert proc.returncode == 0, proc.stderr
    assert "top 4 for 5 and ben" in proc.stdout
    user = dataset.user_index(5)
    rated = dataset.ratings[dataset.ratings["user"] == user]["movie"].to_numpy()
    rated_ids = set(dataset.catalog["movieId"].to_numpy()[rated])
    assert not (rated_ids | set(pd.read_csv(plain)["movieId"])) & set(pd.read_csv(out)["movieId"])


def test_cli_bad_file_is_one_line_and_the_other_is_still_reported(
    loaded, ckpt: Path, tiny_cache: Path, tmp_path: Path, capsys
) -> None:
    _, dataset = loaded
    _, plain, _ = export_files(dataset, tmp_path)
    bad = tmp_path / "cat.csv"
    bad.write_text("")
    proc = run_in_process(
        capsys, "recommend", tmp_path, tiny_cache, f"ckpt_path={ckpt}", f"people=[{bad},{plain}]"
    )
    assert_one_line_error(proc, "duorec.recommend: error:", str(bad), "empty file")
    assert "ben (CSV, ben.csv): 20 of 21 films matched" in proc.stdout


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["people=[a.csv]"], ["a pair or group is 2 to 6 people: got 0 user id(s) and 1 file(s)"]),
        (["users=[1,2,3,4,5,6]", "people=[a.csv]"], ["2 to 6 people: got 6 user id(s) and 1"]),
        (["people=[nowhere.csv,a.csv]"], ["nowhere.csv", "file not found"]),
    ],
)
def test_cli_people_requests_are_checked(
    ckpt: Path, tiny_cache: Path, tmp_path: Path, capsys, args: list[str], fragments: list[str]
) -> None:
    (tmp_path / "a.csv").write_text("movieId,rating\n1,4\n")
    # relative file names are read from the working directory, as on the command line
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path)
        proc = run_in_process(capsys, "recommend", tmp_path, tiny_cache, f"ckpt_path={ckpt}", *args)
    assert_one_line_error(proc, "duorec.recommend: error:", *fragments)


def test_people_folded_together_get_the_vectors_they_get_alone(loaded) -> None:
    """Evaluation folds in many held-out users per call: batching must not couple them."""
    model, dataset = loaded
    lover, hater, _ = genre_people(dataset, "Drama")
    hater = Person(hater.movies[:12], hater.ratings[:12])
    together = model.fold_in(dataset, [lover, hater]).vectors
    alone = torch.cat([model.fold_in(dataset, [p]).vectors for p in (lover, hater)])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-4)


def test_a_folded_person_is_ranked_by_co_watch_from_their_own_movies(loaded) -> None:
    """The co-watch head folds in by construction: the new person's scores are x B of the
    movies they rated and watched, and the trained model's histories are untouched."""
    model, dataset = loaded
    assert model.cowatch is not None
    lover, _, in_genre = genre_people(dataset, "Drama")
    watched = np.setdiff1d(np.flatnonzero(in_genre), lover.movies)[:3]
    person = Person(lover.movies, lover.ratings, watched=watched)
    before = model.cowatch.history_movies.clone()
    folded = model.fold_in(dataset, [person])
    own = torch.as_tensor(np.union1d(person.movies, watched))
    expected = model.cowatch.history_scores(torch.tensor([0]), torch.tensor([len(own)]), own)
    got = folded.model.cowatch.user_scores(torch.as_tensor(folded.users))
    torch.testing.assert_close(got, expected)
    assert torch.equal(model.cowatch.history_movies, before)
    assert len(model.cowatch.history_indptr) == dataset.n_users + 1


def test_cli_a_group_of_data_set_users_and_files(
    loaded, ckpt: Path, tiny_cache: Path, tmp_path, capsys
):
    """users=[5,6] people=[FILE] is a group of three: every member's rating shown, nothing
    any of them rated offered."""
    _, dataset = loaded
    _, plain, _ = export_files(dataset, tmp_path)
    out = tmp_path / "group.csv"
    args = [f"ckpt_path={ckpt}", "users=[5,6]", f"people=[{plain}]", "k=4", f"output={out}"]
    proc = run_in_process(capsys, "recommend", tmp_path, tiny_cache, *args)
    assert proc.returncode == 0, proc.stderr
    frame = pd.read_csv(out)
    assert len(frame) == 4
    assert {"rating_5", "rating_6", "rating_ben", "lowest"} <= set(frame.columns)
    lowest = frame[["rating_5", "rating_6", "rating_ben"]].min(axis=1)
    np.testing.assert_allclose(frame["lowest"], lowest, rtol=1e-6)
    members = [dataset.user_index(5), dataset.user_index(6)]
    rated = dataset.ratings[dataset.ratings["user"].isin(members)]["movie"]
    rated_ids = set(dataset.catalog["movieId"].to_numpy()[rated.to_numpy()])
    assert not (rated_ids | set(pd.read_csv(plain)["movieId"])) & set(frame["movieId"])
