"""Demonstration-generation logic that needs no simulator: no-op rule, attempt plan, validation, crash safety."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from envs.datagen import shards
from envs.datagen.generate import GenConfig, GenerationError, _check_resume, init_state_for, validate
from envs.datagen.noop import is_noop, keep_mask
from envs.experts.evaluate import parse_ids
from envs.libero.tasks import UnknownTaskError


def _demo(length: int):
    from envs.datagen.record import Demo
    from envs.experts.runner import EpisodeResult

    rng = np.random.default_rng(0)
    frames = {
        "observation.images.image": rng.integers(0, 256, (length, 32, 32, 3), dtype=np.uint8),
        "observation.images.image2": rng.integers(0, 256, (length, 32, 32, 3), dtype=np.uint8),
        "observation.state": rng.normal(size=(length, 8)).astype(np.float32),
        "action": rng.uniform(-1, 1, (length, 7)).astype(np.float32),
    }
    return Demo("a task", frames, EpisodeResult("libero_object", 0, 0, True, length, "hold"), 0)


def test_noop_rule():
    still_open = np.array([0, 0, 0, 0, 0, 0, -1.0])
    tiny_open = np.array([5e-5, 0, 0, 0, 0, 0, -1.0])
    still_close = np.array([0, 0, 0, 0, 0, 0, 1.0])
    move = np.array([0.2, 0, 0, 0, 0, 0, -1.0])
    assert is_noop(still_open, None) and is_noop(tiny_open, still_open)
    assert not is_noop(still_close, still_open)  # a gripper change is never a no-op
    assert not is_noop(move, still_open)
    mask = keep_mask(np.stack([still_open, move, tiny_open, still_close, still_close]))
    assert mask.tolist() == [False, True, False, True, False]


def test_attempt_plan_is_a_seeded_permutation():
    states = [init_state_for(0, 3, k) for k in range(50)]
    assert sorted(states) == list(range(50))
    assert states == [init_state_for(0, 3, k) for k in range(50)]
    assert states != [init_state_for(1, 3, k) for k in range(50)]
    assert init_state_for(0, 3, 50) == states[0]


def _cfg(tmp_path, **kw) -> GenConfig:
    base = dict(suite="libero_object", tasks=[0], episodes_per_task=2, out=tmp_path, progress=False)
    return GenConfig(**(base | kw))


@pytest.mark.parametrize(
    ("kw", "err", "match"),
    [
        (
            {"suite": "libero_90"},
            GenerationError,
            "supported: libero_object, libero_spatial, libero_goal, libero_10",
        ),
        ({"tasks": [12]}, UnknownTaskError, "valid ids 0..9"),
        ({"layout": "rlds"}, ValueError, "valid: lerobot, openpi"),
        ({"episodes_per_task": 60}, GenerationError, "action_noise > 0"),
        ({"episodes_per_task": 0}, GenerationError, "positive"),
        (
            {"workers": (os.cpu_count() or 1) + 1},
            GenerationError,
            "workers must be in 1..[0-9]+ .this machine's cores",
        ),
        ({"tasks": []}, GenerationError, "no tasks"),
    ],
)
def test_bad_settings_are_refused(tmp_path, kw, err, match):
    with pytest.raises(err, match=match):
        validate(_cfg(tmp_path, **kw))


def test_resume_with_other_settings_is_refused(tmp_path):
    _check_resume(_cfg(tmp_path))
    _check_resume(_cfg(tmp_path, episodes_per_task=5, tasks=[0, 1]))  # growing a run is fine
    with pytest.raises(GenerationError, match="seed"):
        _check_resume(_cfg(tmp_path, seed=1))


def test_scan_ignores_partial_shards_and_cleans_them(tmp_path):
    from vla.data.layouts import get_layout

    shards.write_shard(tmp_path, 0, 0, _demo(3), get_layout("lerobot"), 32, use_videos=False)
    shards.mark_failed(tmp_path, 0, 1, {"init_state": 7})
    partial = shards.shards_dir(tmp_path) / ".tmp-task00_attempt002-999"  # a run killed mid-write
    (partial / "meta").mkdir(parents=True)
    (shards.shards_dir(tmp_path) / "task00_attempt003").mkdir()  # no meta/info.json: not finished
    assert shards.scan(tmp_path) == {0: {0: True, 1: False}}
    assert [p.name for p in shards.successful_shards(tmp_path)] == ["task00_attempt000"]
    assert json.loads((shards.successful_shards(tmp_path)[0] / "episode.json").read_text())["frames"] == 3
    shards.clean_tmp(tmp_path)
    assert not partial.exists()


def test_video_shard_is_encoded_in_process(tmp_path, monkeypatch):
    """lerobot's default parallel encoding spawns a fresh interpreter per camera per episode (~15 s of CPU
    each for imports alone); a shard must encode its videos in the generating process."""
    import concurrent.futures

    from vla.data.layouts import get_layout

    def no_pool(*a, **k):
        raise AssertionError("write_shard started a process pool")

    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", no_pool)
    shard = shards.write_shard(tmp_path, 0, 0, _demo(4), get_layout("lerobot"), 32, use_videos=True)
    assert len(list((shard / "videos").rglob("*.mp4"))) == 2  # both cameras


@pytest.mark.parametrize(("cores", "processes", "expected"), [(2, 2, "1"), (8, 2, "4"), (4, 3, "1")])
def test_renderer_thread_share(monkeypatch, cores, processes, expected):
    from envs.libero_bootstrap import share_cores_between_renderers

    monkeypatch.delenv("LP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    share_cores_between_renderers(processes)
    assert os.environ["LP_NUM_THREADS"] == expected
    monkeypatch.setenv("LP_NUM_THREADS", "3")  # a user's own setting wins
    share_cores_between_renderers(processes)
    assert os.environ["LP_NUM_THREADS"] == "3"


def test_cli_workers_auto_follows_cores_and_memory(monkeypatch):
    import envs.workers as workers
    from envs.cli.gen_demos import resolve_workers

    monkeypatch.setattr(workers, "usable_cores", lambda: 6)
    monkeypatch.setattr(workers, "workers_by_memory", lambda: 9)
    assert resolve_workers("auto") == 6
    monkeypatch.setattr(workers, "workers_by_memory", lambda: 2)  # memory short: fewer envs than cores
    assert resolve_workers("auto") == 2
    assert resolve_workers(3) == 3
    with pytest.raises(ValueError, match="workers must be 'auto' or a number"):
        resolve_workers("many")


def test_auto_workers_is_shared_by_eval_and_bounded_by_jobs(monkeypatch):
    import envs.workers as workers
    from envs.eval import harness

    assert harness.auto_workers is workers.auto_workers
    assert 1 <= workers.usable_cores() <= (os.cpu_count() or 1)  # the affinity mask, never above the machine
    monkeypatch.setattr(workers, "usable_cores", lambda: 8)
    monkeypatch.setattr(workers, "workers_by_memory", lambda: 5)
    assert workers.auto_workers("auto", 100) == 5
    assert workers.auto_workers(None, 3) == 3
    assert workers.auto_workers(4, 2) == 2  # never more workers than episodes
    assert workers.auto_workers(4, 100) == 4


def test_parse_ids():
    assert parse_ids("all", 3, "tasks") == [0, 1, 2]
    assert parse_ids("0-2,5", 10, "tasks") == [0, 1, 2, 5]
    with pytest.raises(ValueError, match="out of range"):
        parse_ids("9-11", 10, "tasks")
    with pytest.raises(ValueError, match="bad tasks spec"):
        parse_ids("x", 10, "tasks")


def _compose(overrides: list[str]):
    from hydra import compose, initialize_config_dir

    from vla.config import CONFIG_DIR

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name="gen_demos", overrides=overrides)


def test_cli_config_composes_and_bad_input_exits_clearly(tmp_path):
    from envs.cli.gen_demos import run

    cfg = _compose(["env=libero_spatial", f"out={tmp_path}"])
    assert cfg.env.suite == "libero_spatial" and cfg.resolution == 256 and cfg.layout == "lerobot"
    with pytest.raises(ValueError, match="no scripted expert for suite 'libero_90'"):
        run(_compose(["env=libero_90", f"out={tmp_path}"]))
    with pytest.raises(ValueError, match="valid ids 0..9"):
        run(_compose(["tasks=[3,42]", f"out={tmp_path}"]))
    with pytest.raises(ValueError, match="tasks must be"):
        run(_compose(["tasks=abc", f"out={tmp_path}"]))


def _fake_simulator(monkeypatch, outcomes: dict[int, bool]):
    """record_demo/LiberoEnv/write_shard replaced: attempt k succeeds iff outcomes[k]; shards are marker dirs."""
    import envs.datagen.record as record
    import envs.libero.env as libero_env

    class Env:
        def close(self):
            pass

    def record_demo(env, init, action_noise, rng):
        attempt = next(k for k in range(50) if init_state_for(0, 0, k) == init)
        return type("D", (), {"result": type("R", (), {"success": outcomes[attempt], "phase": "x"})(),
                              "length": 3})()  # fmt: skip

    def write_shard(out, task_id, attempt, demo, layout, resolution, use_videos):
        (shards.shards_dir(out) / shards.shard_name(task_id, attempt) / "meta").mkdir(parents=True)
        (shards.shards_dir(out) / shards.shard_name(task_id, attempt) / "meta" / "info.json").write_text("{}")

    monkeypatch.setattr(libero_env, "LiberoEnv", lambda *a, **k: Env())
    monkeypatch.setattr(record, "record_demo", record_demo)
    monkeypatch.setattr(shards, "write_shard", write_shard)


def test_strided_workers_make_the_serial_dataset(tmp_path, monkeypatch):
    """Two workers sharing a task (offsets 0/1, stride 2, run in any interleaving) count the same attempts."""
    from envs.datagen.generate import run_task

    outcomes = {k: k % 3 != 1 for k in range(50)}  # attempts 1, 4, 7, ... fail
    _fake_simulator(monkeypatch, outcomes)
    serial, strided = tmp_path / "serial", tmp_path / "strided"
    for out in (serial, strided):
        shards.shards_dir(out).mkdir(parents=True)
    run_task(_cfg(serial, episodes_per_task=5), 0, lambda r: None)
    run_task(_cfg(strided, episodes_per_task=5), 0, lambda r: None, offset=1, stride=2)  # one worker first
    run_task(_cfg(strided, episodes_per_task=5), 0, lambda r: None, offset=0, stride=2)
    assert shards.scan(serial) == {0: {0: True, 1: False, 2: True, 3: True, 4: False, 5: True, 6: True}}
    assert len(shards.scan(strided)[0]) > 7  # the odd worker ran past the quota
    assert shards.counted_attempts(strided, 5) == shards.scan(serial)
    names = [p.name for p in shards.successful_shards(strided, 5)]
    assert names == [p.name for p in shards.successful_shards(serial, 5)]
