"""Pure logic (no simulator): episode list, shards, results file, Wilson intervals, summary, schema."""

import json

import pytest

from envs.eval.episodes import Episode, build_episodes, parse_shard, select_shard
from envs.eval.results import ResultsWriter, check_record, read_records
from envs.eval.summary import summarize, wilson_interval
from envs.libero.tasks import UnknownTaskError


def fake_num_tasks(suite):
    return 10


def test_episode_list_is_deterministic_and_ordered():
    a = build_episodes(["libero_object", "libero_spatial"], [0, 2], 3, [7, 8], num_tasks=fake_num_tasks)
    b = build_episodes(["libero_object", "libero_spatial"], [0, 2], 3, [7, 8], num_tasks=fake_num_tasks)
    assert a == b and len(a) == 2 * 2 * 3 * 2
    assert a[0] == Episode("libero_object", 0, 0, 7) and a[0].key == "libero_object/0/0/s7"
    assert len({e.key for e in a}) == len(a)
    pert = build_episodes(
        ["libero_object"], [0], 1, [7], perturbations=[("noise", 3)], num_tasks=fake_num_tasks
    )
    assert pert[0].key == "libero_object/0/0/s7/noise3"


def test_bad_input_lists_valid_choices():
    with pytest.raises(UnknownTaskError, match="libero_spatial"):
        build_episodes(["libero_nope"], None, 1, [7], num_tasks=fake_num_tasks)
    with pytest.raises(UnknownTaskError, match="valid 0..49"):
        build_episodes(["libero_object"], None, 1, [7], init_states=[50], num_tasks=fake_num_tasks)
    with pytest.raises(ValueError, match="k/N"):
        parse_shard("3 of 4")
    with pytest.raises(ValueError, match="1 <= k <= N"):
        parse_shard("5/4")


def test_unknown_task_id_lists_tasks():
    with pytest.raises(UnknownTaskError, match=r"valid ids 0..9"):
        build_episodes(["libero_object"], [12], 1, [7])


def test_shards_are_disjoint_complete_and_balanced():
    eps = build_episodes(["libero_object"], None, 7, [7], num_tasks=fake_num_tasks)
    shards = [select_shard(eps, k, 4) for k in range(1, 5)]
    keys = [e.key for s in shards for e in s]
    assert sorted(keys) == sorted(e.key for e in eps) and len(set(keys)) == len(eps)
    assert max(map(len, shards)) - min(map(len, shards)) <= 1


def test_wilson_interval_known_values():
    lo, hi = wilson_interval(8, 10)  # textbook value: 0.4902 .. 0.9433
    assert lo == pytest.approx(0.4902, abs=1e-3) and hi == pytest.approx(0.9433, abs=1e-3)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    lo, hi = wilson_interval(50, 50)
    assert hi == 1.0 and lo == pytest.approx(0.9287, abs=1e-3)


def _rec(key, suite="libero_object", task_id=0, success=True, steps=100, **kw):
    return {
        "schema": 1,
        "key": key,
        "suite": suite,
        "task_id": task_id,
        "task": "t",
        "init_state": 0,
        "seed": 7,
        "perturbation": "none",
        "severity": 0,
        "success": success,
        "steps": steps,
        "queries": 10,
        "seconds": 1.5,
        "attempts": 1,
        "error": None,
        "video": None,
    } | kw


def test_results_file_survives_torn_lines_and_duplicates(tmp_path):
    path = tmp_path / "episodes.jsonl"
    with ResultsWriter(path) as w:
        w.write(_rec("a"))
        w.write(_rec("b", success=False))
    with open(path, "a") as f:
        f.write('{"key": "c", "succ')  # a crash mid-write
    assert {r["key"] for r in read_records([path])} == {"a", "b"}
    with ResultsWriter(path) as w:  # the torn tail is cut, the next record starts on its own line
        w.write(_rec("c"))
        w.write(_rec("a", success=False))  # a duplicate: the first record wins
    recs = {r["key"]: r for r in read_records([path])}
    assert set(recs) == {"a", "b", "c"} and recs["a"]["success"] is True
    for r in recs.values():
        check_record(r)
    with pytest.raises(ValueError, match="success"):
        check_record({k: v for k, v in _rec("x").items() if k != "success"})


def test_summary_is_order_independent_and_correct():
    recs = [
        _rec("a", steps=100),
        _rec("b", success=False, steps=280),
        _rec("c", task_id=1, steps=120),
        _rec("d", suite="libero_spatial", success=False, steps=220, error="boom"),
    ]
    s1, s2 = summarize(recs), summarize(list(reversed(recs)))
    assert json.dumps(s1, sort_keys=True) == json.dumps(s2, sort_keys=True)
    assert s1["overall"]["episodes"] == 4 and s1["overall"]["successes"] == 2 and s1["overall"]["errors"] == 1
    assert s1["suites"]["libero_object"]["success_rate"] == pytest.approx(2 / 3)
    assert s1["tasks"][0]["mean_steps"] == 190 and s1["tasks"][0]["mean_steps_success"] == 100
    assert "categories" not in s1
    s3 = summarize(recs + [_rec("e", perturbation="noise", severity=3, success=False)])
    assert s3["categories"]["noise"]["severities"]["3"]["episodes"] == 1
