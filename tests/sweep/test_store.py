"""The JSONL results store: append, latest record per cell, what a re-run skips, a truncated last line."""

from __future__ import annotations

import json

import pytest

from envs.sweep.store import ResultsStore, StoreError, git_commit, provenance


def _rec(h: str, status: str, **kw) -> dict:
    return {"hash": h, "grid": "g", "cell": {"seed": "0"}, "status": status, "command": f"pion-sweep g only=[{h}]",
            "commit": "abc", "machine": {"cpu": "x", "cores": 2}, "date": "2026-12-02T00:00:00Z", "wall_s": 1.0, **kw}  # fmt: skip


def test_append_latest_and_finished(tmp_path):
    store = ResultsStore(tmp_path / "r" / "store.jsonl")
    assert store.records() == [] and store.finished() == set()
    for rec in (_rec("a", "partial"), _rec("b", "failed"), _rec("c", "done"), _rec("a", "done", wall_s=5.0)):
        store.append(rec)
    assert len(store.path.read_text().splitlines()) == 4
    assert store.latest()["a"]["wall_s"] == 5.0
    assert store.finished() == {"a", "b", "c"}
    assert store.finished(retry_failed=True) == {"a", "c"}


def test_truncated_last_line_is_ignored_and_the_next_append_starts_a_new_line(tmp_path):
    store = ResultsStore(tmp_path / "store.jsonl")
    store.append(_rec("a", "done"))
    with open(store.path, "a") as f:
        f.write('{"hash": "b", "status": "do')  # a kill in mid-write
    assert list(store.latest()) == ["a"]
    store.append(_rec("c", "done"))
    assert list(store.latest()) == ["a", "c"]


def test_malformed_records_are_refused(tmp_path):
    store = ResultsStore(tmp_path / "store.jsonl")
    store.path.write_text("not json\n" + json.dumps(_rec("a", "done")) + "\n")
    with pytest.raises(StoreError, match="store.jsonl:1: not a JSON line"):
        store.records()
    with pytest.raises(StoreError, match="lacks"):
        ResultsStore(tmp_path / "x.jsonl").append({"hash": "a", "status": "done"})
    with pytest.raises(StoreError, match="status must be one of"):
        ResultsStore(tmp_path / "x.jsonl").append(_rec("a", "finished"))


def test_provenance_names_commit_machine_and_date():
    p = provenance()
    assert len(p["commit"]) >= 7 and p["machine"]["cores"] >= 1 and p["machine"]["cpu"]
    assert p["date"].endswith("Z")


def test_dirty_means_code_or_config_changed_not_the_results_docs(tmp_path):
    import subprocess

    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True,
                       capture_output=True)  # fmt: skip

    (tmp_path / "docs" / "results").mkdir(parents=True)
    (tmp_path / "envs").mkdir()
    (tmp_path / "docs" / "results" / "store.jsonl").write_text("{}\n")
    (tmp_path / "envs" / "code.py").write_text("x = 1\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "init")
    commit, dirty = git_commit(tmp_path / "envs")
    assert len(commit) == 10 and not dirty
    (tmp_path / "docs" / "results" / "store.jsonl").write_text("{}\n{}\n")  # a tool appended a result
    assert git_commit(tmp_path / "envs") == (commit, False)
    (tmp_path / "envs" / "code.py").write_text("x = 2\n")  # the code changed
    assert git_commit(tmp_path / "envs") == (commit, True)
    assert git_commit(tmp_path.parent / "nowhere") == ("unknown", False)
