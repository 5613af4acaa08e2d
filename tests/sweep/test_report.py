"""docs/results.md from a hand-written store: pooled success, Wilson CIs, Holm-corrected significance, curves,
diagnosis plots, provenance of every cell; regenerating is byte-stable; pion-results is one command."""

from __future__ import annotations

import json
import math

import pytest

from envs.sweep.report import write_report
from envs.sweep.significance import holm, seed_permutation_p, smallest_seed_p, two_proportion_p

SPECTRAL = [{"step": 5, "pion/action_head/grad_effective_rank": 3.0, "pion/action_head/update_effective_rank": 1.0},
            {"step": 10, "pion/action_head/grad_effective_rank": 2.5, "pion/action_head/update_effective_rank": 1.5}]  # fmt: skip


def _rec(h, opt, seed, evals, status="done", budget="short", **kw):
    return {"hash": h, "grid": "object", "description": "toy grid", "cell": {"optimizer": opt, "budget": budget, "seed": str(seed)},
            "status": status, "command": f"pion-sweep object only=[{h}]", "commit": "c0ffee1234", "dirty": False,
            "machine": {"cpu": "Test CPU", "cores": 2}, "date": "2026-12-02T10:00:00Z", "wall_s": 5400.0,
            "evals": [{"step": s, "successes": k, "episodes": n, "ci95": [0, 1]} for s, k, n in evals], **kw}  # fmt: skip


def _store(path):
    recs = [
        _rec("a0", "adamw", 0, [(5, 1, 10), (10, 3, 10)], spectral=[{"step": 5, "adamw/everything/grad_effective_rank": 4.0}]),
        _rec("a1", "adamw", 1, [(5, 2, 10), (10, 4, 10)]),
        _rec("m0", "muon", 0, [(5, 5, 10), (10, 7, 10)]), _rec("m1", "muon", 1, [(5, 6, 10), (10, 8, 10)]),
        _rec("p0", "pion", 0, [(5, 8, 10), (10, 9, 10)], spectral=SPECTRAL,
             zero_update_frac=[{"step": 5, "pion/action_head": 0.5}, {"step": 10, "pion/action_head": 0.25}],
             loss_curve=[[5, 1.0], [10, 0.5], [15, 0.3], [20, 0.2], [25, 0.1], [30, 0.1]]),
        _rec("p1", "pion", 1, [(5, 9, 10), (10, 10, 10)], loss_curve=[[5, 0.2]]),
        _rec("L0", "pion", 0, [(30, 2, 10)], status="partial", budget="long"),
        {**_rec("B0", "adamw", 0, [(30, 1, 10)], budget="long", spec={"overrides": {"seed": 3}}),
         "cell": {"optimizer": "adamw", "budget": "long"}},  # seed in the grid's base, not a level
        _rec("F0", "muon", 0, [], status="failed", budget="long", error="NonFiniteLossError: non-finite loss"),
    ]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))


def test_seed_permutation_test_enumerates_every_relabelling():
    assert seed_permutation_p([1.0, 1.0], [0.0, 0.0]) == pytest.approx(2 / 6)  # the split and its mirror
    assert (
        seed_permutation_p([1.0, 0.9, 0.8], [0.1, 0.2, 0.3]) == pytest.approx(2 / 20) == smallest_seed_p(3, 3)
    )
    # Pion's 10/10, 1/10, 6/10 against Muon's 10/10, 10/10, 6/10: 14 of the 20 splits are as extreme
    assert seed_permutation_p([1.0, 0.1, 0.6], [1.0, 1.0, 0.6]) == pytest.approx(14 / 20)
    assert seed_permutation_p([0.5, 0.5], [0.5, 0.5]) == 1.0 and seed_permutation_p([], [1.0]) == 1.0
    a, b = [0.9, 0.4, 0.7], [0.2, 0.5]
    assert seed_permutation_p(a, b) == seed_permutation_p(b, a)  # symmetric in the arms
    assert smallest_seed_p(2, 3) == pytest.approx(2 / 10) and smallest_seed_p(5, 5) == pytest.approx(2 / 252)


def test_z_test_and_holm_match_hand_computation():
    z = 0.2 / math.sqrt(0.85 * 0.15 * (1 / 20 + 1 / 20))  # 19/20 vs 15/20, pooled p = 34/40
    assert abs(two_proportion_p(19, 20, 15, 20) - math.erfc(z / math.sqrt(2))) < 1e-12
    assert abs(two_proportion_p(19, 20, 15, 20) - 0.0765) < 1e-4
    assert holm([0.01, 0.04, 0.03]) == [0.03, 0.06, 0.06]
    assert two_proportion_p(0, 10, 0, 10) == 1.0 and two_proportion_p(1, 0, 1, 2) == 1.0


def test_fisher_exact_test_for_small_counts():
    from envs.sweep.significance import fisher_exact_p, proportion_p

    # Fisher's tea tasting, [[3, 1], [1, 3]]: the tables as or less likely than the observed one are x = 0, 1, 3, 4
    # of the C(8, 4) = 70 splits: (1 + 16 + 16 + 1) / 70
    assert fisher_exact_p(3, 4, 1, 4) == pytest.approx(34 / 70, rel=1e-12)
    # 3/100 vs 0/200: only x >= 3 successes in the first group are as extreme: C(100, 3) / C(300, 3)
    assert fisher_exact_p(3, 100, 0, 200) == pytest.approx(100 * 99 * 98 / (300 * 299 * 298), rel=1e-12)
    assert fisher_exact_p(3, 100, 0, 200) == fisher_exact_p(0, 200, 3, 100)  # symmetric in the arms
    assert fisher_exact_p(0, 10, 0, 10) == 1.0 and fisher_exact_p(5, 10, 5, 10) == pytest.approx(1.0)
    assert fisher_exact_p(1, 0, 1, 2) == 1.0
    # the chooser: exact where an expected count is below 5, where the z-test overstates significance
    assert (
        proportion_p(3, 100, 0, 200)
        == fisher_exact_p(3, 100, 0, 200)
        > 0.03
        > two_proportion_p(3, 100, 0, 200)
    )
    assert proportion_p(55, 100, 40, 100) == two_proportion_p(55, 100, 40, 100)  # >= 5 expected everywhere
    assert proportion_p(12, 200, 0, 200) == two_proportion_p(12, 200, 0, 200)  # 6 expected successes per arm
    assert proportion_p(19, 20, 15, 20) == fisher_exact_p(19, 20, 15, 20)  # 3 expected failures per arm


def test_report_tables_cis_significance_plots_and_provenance(tmp_path):
    store = tmp_path / "docs" / "results" / "store.jsonl"
    store.parent.mkdir(parents=True)
    _store(store)
    out, img = tmp_path / "docs" / "results.md", tmp_path / "docs" / "img" / "results"
    text = write_report(store, out, img).read_text()
    # short budget: seeds pooled at step 10
    assert "| optimizer=adamw | 0, 1 | 10 | 7/20 | 35.0 | 18.1–56.7 | 3/10; 4/10 | `a0`, `a1` |" in text
    assert "| optimizer=muon | 0, 1 | 10 | 15/20 | 75.0 | 53.1–88.8 | 7/10; 8/10 | `m0`, `m1` |" in text
    # train loss (end): each run's last 5 logged losses averaged (0.24; 0.2), then the seeds (0.22); none logged: -
    assert (
        "| optimizer=pion | 0, 1 | 10 | 19/20 | 95.0 | 76.4–99.1 | 9/10; 10/10 | `p0`, `p1` | 0.2200 |"
        in text
    )
    assert "| 3/10; 4/10 | `a0`, `a1` | - |" in text
    assert "Holm-corrected over the 3 pair(s)" in text
    assert "- **optimizer=muon** > **optimizer=adamw**: 75.0% vs 35.0%, p = 0.011 (Holm 0.022)" in text
    assert "- **optimizer=pion** > **optimizer=adamw**: 95.0% vs 35.0%, p = 7e-05 (Holm 0.00021)" in text
    assert "The other 1 pair(s) are not significant." in text  # muon vs pion: p = 0.077
    # long budget: a partial cell is marked, a failed one only appears in the provenance table
    assert "| optimizer=pion | 0 | 30* | 2/10 | 20.0 | 5.7–51.0 | 2/10 | `L0` (partial) |" in text
    # a seed set in the grid's base (no seed level) is read from the cell's spec
    assert "| optimizer=adamw | 3 | 30 | 1/10 |" in text
    assert (
        "| `F0` | optimizer=muon budget=long seed=0 | failed | - | NonFiniteLossError: non-finite loss | 1.50 h |"
        in text
    )
    assert (
        "`pion-sweep object only=[a0]` |" in text and "`c0ffee1234`" in text and "Test CPU, 2 cores" in text
    )
    for png in ("object_short_success.png", "object_long_success.png", "object_short_grad_rank.png",
                "object_short_update_rank.png", "object_short_zero_update.png"):  # fmt: skip
        assert (img / png).stat().st_size > 1000
        assert f"](img/results/{png})" in text
    assert not (img / "object_long_grad_rank.png").exists()
    # diagnosis table: means over logged steps (and seeds that logged), the region's optimizer in brackets
    assert "| optimizer=pion | 19/20 | - | - | 2.8 (pion) | - | - | 1.2 (pion) | 37.5% |" in text
    assert (
        "| optimizer=adamw | 7/20 | 4.0 (all matrices) | 4.0 (all matrices) | 4.0 (all matrices) | - | - | - | - |"
        in text
    )
    assert "| optimizer=muon |" not in text.split("Diagnosis, averaged")[1].split("![")[0]  # nothing logged
    assert write_report(store, out, img).read_text() == text  # regenerating is byte-stable


def test_pion_results_cli(tmp_path, capsys):
    from envs.sweep.cli import results_main

    store = tmp_path / "store.jsonl"
    _store(store)
    results_main([f"store={store}", f"out={tmp_path / 'r.md'}", f"img_dir={tmp_path / 'img'}", "headline="])
    assert "wrote" in capsys.readouterr().out and (tmp_path / "r.md").read_text().startswith("# Results")
    try:
        results_main(["stor=x"])
    except SystemExit as e:
        assert e.code == 2
    assert "pion-results" in capsys.readouterr().err


def test_curves_with_all_or_no_successes_plot(tmp_path):
    """10/10 and 0/10 points (Wilson bound = rate up to rounding) must not break the error bars."""
    store = tmp_path / "store.jsonl"
    recs = [
        _rec("x0", "pion", 0, [(5, 3, 10), (10, 10, 10)]),
        _rec("y0", "adamw", 0, [(5, 0, 10), (10, 0, 10)]),
    ]
    store.write_text("".join(json.dumps(r) + "\n" for r in recs))
    text = write_report(store, tmp_path / "results.md", tmp_path / "img").read_text()
    assert "| optimizer=pion | 0 | 10 | 10/10 | 100.0 | 72.2–100.0 |" in text
    assert (tmp_path / "img" / "object_short_success.png").stat().st_size > 1000


def _perturb(step, per_cat):
    spec = {"categories": list(per_cat), "severities": [3], "trials_per_task": None}
    cats = {c: {"successes": k, "episodes": n, "ci95": [0, 1], "severities": {"3": {"successes": k, "episodes": n,
            "ci95": [0, 1]}}} for c, (k, n) in per_cat.items()}  # fmt: skip
    return {"spec": spec, "step": step, "categories": cats}


def test_perturbation_table_pools_seeds_and_draws_a_chart(tmp_path):
    recs = [
        _rec("a0", "adamw", 0, [(5, 1, 10), (10, 3, 10)], perturb=_perturb(10, {"noise": (0, 10), "light": (1, 10)})),
        _rec("a1", "adamw", 1, [(10, 4, 10)], perturb=_perturb(10, {"noise": (1, 10), "light": (2, 10)})),
        _rec("p0", "pion", 0, [(10, 9, 10)], perturb=_perturb(10, {"noise": (5, 10), "light": (8, 10)})),
        _rec("p1", "pion", 1, [(10, 6, 10)]),  # not perturbed: the row pools the seeds that were
        _rec("m0", "muon", 0, [(10, 7, 10)]),
    ]  # fmt: skip
    store = tmp_path / "store.jsonl"  # written as the store writes it (sorted keys): columns follow the spec
    store.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in recs))
    out, img = tmp_path / "results.md", tmp_path / "img"
    text = write_report(store, out, img).read_text()
    assert "#### Perturbations (object, budget short)" in text and "severity 3; seeds pooled" in text
    assert "| arm | seeds | update | clean | noise | light | mean of categories |" in text
    assert "| optimizer=adamw | 0, 1 | 10 | 7/20 (35%) | 1/20 (5%) | 3/20 (15%) | 4/40 (10%) |" in text
    assert "| optimizer=pion | 0 | 10 | 9/10 (90%) | 5/10 (50%) | 8/10 (80%) | 13/20 (65%) |" in text
    assert "Holm over 1 pair(s), alpha 0.05): optimizer=pion > optimizer=adamw (p = " in text  # 13/20 vs 4/40
    assert "Not perturbed yet: optimizer=muon." in text
    assert (img / "object_short_perturbations.png").stat().st_size > 1000
    assert "](img/object_short_perturbations.png)" in text
    plain = [{k: v for k, v in r.items() if k != "perturb"} for r in recs]
    store.write_text("".join(json.dumps(r) + "\n" for r in plain))
    assert "Perturbations" not in write_report(store, out, tmp_path / "img2").read_text()


def test_per_task_table_pools_seeds_and_counts_tasks_solved(tmp_path):
    def rec(h, opt, seed, per_task):
        r = _rec(h, opt, seed, [(10, sum(k for k, _ in per_task.values()), 30)])
        r["evals"][0]["per_task"] = per_task
        return r

    recs = [
        rec("a0", "adamw", 0, {"0": [0, 10], "1": [1, 10], "10": [0, 10]}),
        rec("a1", "adamw", 1, {"0": [0, 10], "1": [2, 10], "10": [0, 10]}),
        rec("p0", "pion", 0, {"0": [7, 10], "1": [0, 10], "10": [1, 10]}),
        _rec("m0", "muon", 0, [(10, 5, 30)]),  # logged before per-task counts: left out of the table
    ]
    store = tmp_path / "store.jsonl"
    store.write_text("".join(json.dumps(r) + "\n" for r in recs))
    text = write_report(store, tmp_path / "results.md", tmp_path / "img").read_text()
    assert "| arm | update | task 0 | task 1 | task 10 | tasks solved |" in text  # numeric task order
    assert "| optimizer=adamw | 10 | 0/20 | 3/20 | 0/20 | 1/3 |" in text
    assert "| optimizer=pion | 10 | 7/10 | 0/10 | 1/10 | 2/3 |" in text
    assert (
        "| optimizer=muon | 10 |"
        not in text.split("Per task at the same checkpoint")[1].split("Train loss")[0]
    )


def test_no_per_task_table_for_a_single_task_grid(tmp_path):
    r = _rec("a0", "adamw", 0, [(10, 3, 10)])
    r["evals"][0]["per_task"] = {"0": [3, 10]}
    store = tmp_path / "store.jsonl"
    store.write_text(json.dumps(r) + "\n")
    assert "Per task" not in write_report(store, tmp_path / "results.md", tmp_path / "img").read_text()


def test_perturbation_clean_column_is_paired_with_the_perturbed_init_states(tmp_path):
    def rec(h, seed, clean_all, clean_sub):
        r = _rec(h, "pion", seed, [(10, clean_all, 100)], perturb=_perturb(10, {"noise": (6, 30)}))
        r["perturb"]["spec"]["trials_per_task"] = 3
        r["perturb"]["clean"] = {"successes": clean_sub, "episodes": 30}
        return r

    store = tmp_path / "store.jsonl"
    store.write_text("".join(json.dumps(r) + "\n" for r in [rec("p0", 0, 40, 9), rec("p1", 1, 60, 21)]))
    text = write_report(store, tmp_path / "results.md", tmp_path / "img").read_text()
    # 30 + 30 episodes on the perturbed init states, not the 200 episodes of the whole clean evaluation
    assert "| optimizer=pion | 0, 1 | 10 | 30/60 (50%) | 12/60 (20%) | 12/60 (20%) |" in text
    assert "(trials per task: 3). Clean: the same checkpoint unperturbed on the same init states." in text
    older = [rec("p0", 0, 40, 9)]
    del older[0]["perturb"]["clean"]  # a record from before the paired count: the whole clean evaluation
    store.write_text(json.dumps(older[0]) + "\n")
    text = write_report(store, tmp_path / "results.md", tmp_path / "img").read_text()
    assert "| optimizer=pion | 0 | 10 | 40/100 (40%) | 6/30 (20%) |" in text
    assert "Clean: the same checkpoint unperturbed on all its held-out init states." in text


def test_clean_baseline_of_the_perturbed_subset_reads_the_clean_episodes(tmp_path):
    from envs.sweep.runner import _clean_on_subset

    def ep(task, state, success, error=None):
        return json.dumps({"key": f"libero_object/{task}/{state}/s7", "task_id": task, "init_state": state,
                           "success": success, "perturbation": "none", "error": error}) + "\n"  # fmt: skip

    init = {
        0: [7, 3, 9],
        1: [4, 8, 2],
    }  # held-out states in the order the sweep uses: the first N are replayed
    (tmp_path / "episodes.jsonl").write_text(
        ep(0, 7, True) + ep(0, 3, False) + ep(0, 9, True) + ep(1, 4, False, error="policy died") + ep(1, 8, True)
        + ep(1, 2, True)
        + ep(0, 3, True)  # the same key again (an overlapping shard): counted once, first record wins
        + '{"task_id": 1, "init'  # a line cut by a kill
    )  # fmt: skip
    # (0,7) (0,3) (1,4) (1,8); the errored episode is a failure, as in the evaluation's summary
    assert _clean_on_subset(tmp_path, init, 2) == {"successes": 2, "episodes": 4}
    assert _clean_on_subset(tmp_path, init, None) == {"successes": 4, "episodes": 6}
    assert _clean_on_subset(tmp_path, {0: [7, 5]}, None) is None  # state 5 never ran: no partial baseline
    assert _clean_on_subset(tmp_path / "missing", init, 2) is None
