"""Raw files named at load time (`data.movielens_dir=` of evaluate / recommend) are cached
under their own folder's name, so a refused request leaves no entry under the checkpoint's."""

from __future__ import annotations

from pathlib import Path

from conftest import compose_config
from omegaconf import OmegaConf

from duorec.checkpoint import load_reference
from duorec.data.synthetic import generate


def test_moved_data_is_cached_under_its_own_folder_name(tmp_path: Path) -> None:
    other = generate(tmp_path / "ml-100k", "tiny", seed=1)
    cfg = compose_config("prepare", ["data=movielens", "data.movielens_dir=/nowhere"], tmp_path)
    data = OmegaConf.to_container(cfg.data, resolve=True)
    data["name"] = "ml-latest-small"  # what the checkpoint was trained on
    reference = {"data": data, "cache_dir": str(tmp_path / "cache"), "cache_key": "k"}
    moved = {"movielens_dir": str(other / "movielens"), "imdb_dir": str(other / "imdb")}
    dataset = load_reference(reference, tmp_path / "cache", moved)
    assert dataset.manifest["name"] == "movielens"  # the folder it was read from
    cached = [p.name for p in (tmp_path / "cache" / "prepared").iterdir()]
    assert cached and all(not name.startswith("ml-latest-small") for name in cached), cached
