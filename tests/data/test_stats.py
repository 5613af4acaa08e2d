"""Normalisation stats: numpy's numbers, the contract format, cached per dataset fingerprint."""

from __future__ import annotations

import json

import numpy as np
import pytest
from dataset_factory import write_dataset

from vla.data import DatasetError, compute_stats, load_stats, open_chunk_dataset, save_stats
from vla.data import stats as stats_mod
from vla.data.layouts import ACTION, STATE

FIELDS = {"q01", "q99", "mean", "std", "min", "max"}


def _expected(x: np.ndarray) -> dict[str, np.ndarray]:
    x = x.astype(np.float64)
    return {
        "q01": np.quantile(x, 0.01, axis=0),
        "q99": np.quantile(x, 0.99, axis=0),
        "mean": x.mean(0),
        "std": x.std(0),
        "min": x.min(0),
        "max": x.max(0),
    }


def test_stats_match_numpy_over_all_frames(tmp_path):
    demos = write_dataset(tmp_path / "d", [30, 7, 64], layout="openpi")
    ds = open_chunk_dataset(root=tmp_path / "d")
    stats = compute_stats(ds)
    assert set(stats) == {STATE, ACTION}  # canonical keys whatever the layout
    for key, dim in ((STATE, 8), (ACTION, 7)):
        assert set(stats[key]) == FIELDS and all(len(v) == dim for v in stats[key].values())
        frames = np.concatenate([d.frames[key] for d in demos])
        for field, want in _expected(frames).items():
            np.testing.assert_allclose(
                stats[key][field], want, rtol=1e-6, atol=1e-7, err_msg=f"{key} {field}"
            )
    json.dumps(stats)  # plain lists of floats


def test_episode_selection_changes_the_stats(tmp_path):
    demos = write_dataset(tmp_path / "d", [20, 25, 30])
    from vla.data import load_libero_dataset

    sub = load_libero_dataset("local/test", root=tmp_path / "d", episodes=[0, 2])
    stats = compute_stats(sub)
    frames = np.concatenate([demos[0].frames[ACTION], demos[2].frames[ACTION]])
    np.testing.assert_allclose(stats[ACTION]["q99"], np.quantile(frames, 0.99, axis=0), rtol=1e-6)


def test_stats_are_cached_by_fingerprint(tmp_path, monkeypatch):
    root = tmp_path / "d"
    write_dataset(root, [10, 12])
    ds = open_chunk_dataset(root=root)
    first = compute_stats(ds)
    cache = json.loads((root / stats_mod.CACHE_FILE).read_text())
    assert list(cache) == [stats_mod.fingerprint(root, ds.libero.layout, None)]

    def boom(*a, **k):
        raise AssertionError("parquet read although cached")

    monkeypatch.setattr(stats_mod, "read_columns", boom)
    assert compute_stats(ds) == first
    # the data changes (rewritten with other values; the old cache file kept) -> a new fingerprint, recomputed
    monkeypatch.undo()
    import shutil

    cache_text = (root / stats_mod.CACHE_FILE).read_text()
    shutil.rmtree(root)
    write_dataset(root, [10, 12], seed=5)
    (root / stats_mod.CACHE_FILE).write_text(cache_text)
    again = compute_stats(open_chunk_dataset(root=root))
    assert again != first
    assert len(json.loads((root / stats_mod.CACHE_FILE).read_text())) == 2


def test_save_load_round_trip_and_bad_files(tmp_path):
    stats = stats_mod.stats_from_arrays({STATE: np.random.rand(50, 8), ACTION: np.random.rand(50, 7)})
    path = save_stats(stats, tmp_path / "ckpt" / "stats.json")
    assert load_stats(path) == stats
    bad = json.loads(path.read_text())
    del bad[ACTION]["q99"]
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(DatasetError, match=r"stats of 'action' lack \['q99'\]"):
        load_stats(tmp_path / "bad.json")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_stats(tmp_path / "none.json")
