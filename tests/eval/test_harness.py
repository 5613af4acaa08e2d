"""The harness end to end on libero_object task 0: expert successes, report schema, resume after an
interrupted run, shard + merge, and a crashed / hung worker. Small episode counts keep it ~2 min."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from envs.eval import EvalRun, build_episodes, evaluate, merge
from envs.eval.results import RESULTS_FILE, check_record, read_records

REPO = Path(__file__).resolve().parents[2]
STATES = [0, 1, 2]
CLI_ARGS = [
    "policy=expert",
    "suites=[libero_object]",
    "task_ids=[0]",
    f"init_states={STATES}",
    "progress=false",
    "plot=false",
    "videos_per_task=0",
]


def episodes():
    return build_episodes(["libero_object"], [0], 0, [7], init_states=STATES)


def run(out, **kw):
    kw = {"policy": "expert", "progress": False, "plot": False, "videos_per_task": 0, "workers": 2} | kw
    return evaluate(EvalRun(out_dir=out, **kw), episodes())


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    """One uninterrupted run with videos and the plot: the reference for resume and merge."""
    out = tmp_path_factory.mktemp("single")
    summary = run(out, plot=True, videos_per_task=3)
    return out, summary


def test_expert_succeeds_through_the_harness(single):
    _, summary = single
    assert summary["overall"]["episodes"] == 3
    # measured 500/500 on libero_object (docs/experts.md): every one of these three must succeed
    assert summary["overall"]["successes"] == 3, summary["overall"]
    assert 50 < summary["overall"]["mean_steps_success"] < 280


def test_report_files_match_their_schema(single):
    out, summary = single
    recs = read_records([out / RESULTS_FILE])
    assert len(recs) == 3 and len(out.joinpath(RESULTS_FILE).read_text().splitlines()) == 3
    for r in recs:
        check_record(r)
        assert r["attempts"] == 1 and r["error"] is None
    disk = json.loads((out / "summary.json").read_text())
    assert disk == json.loads(json.dumps(summary))
    assert set(disk) == {"schema", "overall", "suites", "tasks"}
    for s in [disk["overall"], *disk["suites"].values(), *disk["tasks"]]:
        assert {"episodes", "successes", "success_rate", "ci95", "mean_steps", "errors"} <= set(s)
        assert 0 <= s["ci95"][0] <= s["success_rate"] <= s["ci95"][1] <= 1
    assert (out / "summary.png").read_bytes()[:4] == b"\x89PNG"
    videos = [r["video"] for r in recs if r["video"]]
    assert videos and all(Path(v).stat().st_size > 1000 and v.endswith(".mp4") for v in videos)
    assert len(list((out / "videos").glob("*.mp4"))) == len(videos) <= 2  # one success + one failure at most
    info = json.loads((out / "run_info.json").read_text())
    assert info["ran_now"] == 3 and info["worker_restarts"] == 0


def test_resume_after_interrupted_run_gives_the_same_summary(single, tmp_path):
    out = tmp_path / "resumed"
    cmd = [sys.executable, "-m", "envs.cli.eval", *CLI_ARGS, "workers=1", f"out_dir={out}"]
    env = os.environ | {"PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    results = out / RESULTS_FILE
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (results.exists() and results.read_text().count("\n") >= 1):
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the whole run, workers included, mid-way
    proc.wait()
    n_before = results.read_text().count("\n")
    assert 1 <= n_before < 3, "the run should have been interrupted after its first episode"
    with open(results, "a") as f:
        f.write('{"key": "libero_object/0/2/s7", "success": tr')  # a torn write from the kill
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"{n_before} already finished, {3 - n_before} to run" in done.stdout
    assert (out / "summary.json").read_text() == (single[0] / "summary.json").read_text()
    assert sorted(r["key"] for r in read_records([results])) == sorted(e.key for e in episodes())


def test_shards_merge_to_the_single_run_summary(single, tmp_path):
    for k in (1, 2):
        run(tmp_path / f"shard{k}", shard=f"{k}/2", workers=1)
    n1 = len(read_records([tmp_path / "shard1"]))
    n2 = len(read_records([tmp_path / "shard2"]))
    assert (n1, n2) == (2, 1)
    merge([tmp_path / "shard1", tmp_path / "shard2" / RESULTS_FILE], tmp_path / "merged", plot=False)
    assert (tmp_path / "merged" / "summary.json").read_text() == (single[0] / "summary.json").read_text()


def test_killed_and_hung_workers_lose_nothing(tmp_path):
    """First query: the worker SIGKILLs itself; the other worker's first query hangs until the timeout.
    Both episodes are retried on fresh workers; every episode is recorded exactly once."""
    eps = build_episodes(["libero_object"], [0], 4, [7])
    out = tmp_path / "crash"
    summary = evaluate(
        EvalRun(
            out_dir=out,
            policy="eval_test_policies:misbehaving",
            policy_placement="worker",
            policy_kwargs={"marker_dir": str(tmp_path)},
            workers=2,
            max_steps=8,
            episode_timeout_s=25,
            progress=False,
            plot=False,
            videos_per_task=0,
        ),
        eps,
    )
    assert (tmp_path / "crashed").exists() and (tmp_path / "hung").exists()
    lines = (out / RESULTS_FILE).read_text().splitlines()
    keys = [json.loads(line)["key"] for line in lines]
    assert sorted(keys) == sorted(e.key for e in eps)  # all there, none twice
    attempts = sorted(json.loads(line)["attempts"] for line in lines)
    assert attempts == [1, 1, 2, 2]
    assert summary["overall"]["errors"] == 0 and summary["overall"]["mean_steps"] == 8
    assert json.loads((out / "run_info.json").read_text())["worker_restarts"] == 2


def test_policy_that_cannot_act_is_an_error_not_retried(tmp_path):
    """The scripted expert refuses libero_90 (unmeasured): recorded once, with the reason, no retries."""
    eps = build_episodes(["libero_90"], [0], 1, [7])
    summary = evaluate(
        EvalRun(out_dir=tmp_path, policy="expert", workers=1, progress=False, plot=False, videos_per_task=0),
        eps,
    )
    rec = read_records([tmp_path])[0]
    assert rec["attempts"] == 1 and not rec["success"] and "libero_90" in rec["error"]
    assert summary["overall"]["errors"] == 1
