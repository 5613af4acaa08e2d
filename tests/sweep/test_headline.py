"""The headline section of docs/results.md: the paper's comparison next to ours, per budget, from the store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from envs.sweep.headline import load_headline, point_at, select
from envs.sweep.report import write_report

HEADLINE = """
title: "Headline: toy"
text: the paper vs us
paper:
  AdamW: {5: "≈5", 10: "32.2"}
  Pion: {10: "100.0"}
tables:
  - title: own lr
    rows:
      AdamW: {5: {grid: lr, optimizer: adamw, lr: 0.004}, 10: {grid: long, optimizer: adamw}}
      Muon: {5: {grid: lr, optimizer: muon, lr: 0.004}, 10: {grid: long, optimizer: muon}}
      Pion: {5: {grid: lr, optimizer: pion, lr: 0.004}, 10: {grid: long, optimizer: pion}}
"""


def _rec(h, grid, cell, evals, status="done"):
    return {"hash": h, "grid": grid, "cell": cell, "status": status, "command": f"pion-sweep {grid}",
            "commit": "c0ffee1234", "dirty": False, "machine": {"cpu": "Test CPU", "cores": 2},
            "date": "2026-12-03T10:00:00Z", "wall_s": 60.0,
            "evals": [{"step": s, "successes": k, "episodes": n} for s, k, n in evals]}  # fmt: skip


def _write(tmp_path, recs, headline=HEADLINE):
    store = tmp_path / "store.jsonl"
    store.write_text("".join(json.dumps(r) + "\n" for r in recs))
    hl = tmp_path / "headline.yaml"
    hl.write_text(headline)
    return store, hl


RECS = [
    _rec("a0", "lr", {"lr": "0.004", "optimizer": "adamw"}, [(5, 4, 10)]),
    _rec("a1", "lr", {"lr": "0.004", "optimizer": "adamw", "seed": "1"}, [(5, 0, 10)]),
    _rec("ax", "lr", {"lr": "0.01", "optimizer": "adamw"}, [(5, 9, 10)]),  # other lr: not selected
    _rec("m0", "lr", {"lr": "0.004", "optimizer": "muon"}, [(5, 10, 10)]),
    _rec("m1", "lr", {"lr": "0.004", "optimizer": "muon", "seed": "1"}, [(5, 9, 10)]),
    _rec("p0", "lr", {"lr": "0.004", "optimizer": "pion"}, [(5, 6, 10)]),
    _rec("p1", "lr", {"lr": "0.004", "optimizer": "pion", "seed": "1"}, [(5, 9, 10)]),
    _rec("L0", "long", {"optimizer": "adamw", "seed": "0"}, [(5, 0, 10), (10, 3, 10)]),
    _rec("L1", "long", {"optimizer": "pion", "seed": "0"}, [(5, 3, 10)], status="partial"),
    _rec("Lf", "long", {"optimizer": "muon", "seed": "0"}, [], status="failed"),
]


def test_select_pools_matching_seeds_only():
    picked = select(RECS, {"grid": "lr", "optimizer": "adamw", "lr": 0.004})
    assert [r["hash"] for r in picked] == ["a0", "a1"]
    assert point_at(picked, 5) == (4, 20) and point_at(picked, 10) is None
    assert select(RECS, {"grid": "long", "optimizer": "muon"}) == []  # failed cells are not results


def test_headline_table_significance_and_plot(tmp_path):
    store, hl = _write(tmp_path, RECS)
    out = tmp_path / "docs" / "results.md"
    text = write_report(store, out, tmp_path / "docs" / "img", hl).read_text()
    head, rest = text.split("## lr", 1)  # the headline opens the doc, before the grids
    assert "## Headline: toy" in head and "the paper vs us" in head
    assert "| AdamW | 4/20 (20%) | 8–42 | 4/10; 0/10 | ≈5 | 3/10 (30%) | 11–60 | 3/10 | 32.2 |" in head
    assert "| Muon | 19/20 (95%) | 76–99 | 10/10; 9/10 | - | not run yet | - | - | - |" in head
    assert (
        "| Pion | 15/20 (75%) | 53–89 | 6/10; 9/10 | - | partial: 0 of 1 seed(s) evaluated here | - | - | 100.0 |"
        in head
    )
    # 4/10 vs 0/10: 4 expected failures < 5, so Fisher's exact test: p = 0.087 (the z-test's 0.025 would
    # flag it); no cell's seeds disagree significantly
    assert "**Seeds disagree**" not in head
    # 95% vs 20%: z-test p = 1.6e-06, x3 pairs (Holm); Muon vs Pion 19/20 vs 15/20 has 3 expected failures per
    # arm, so Fisher's exact test: p = 0.18 (the z-test would say 0.077), not significant
    assert "Muon > AdamW (95% vs 20%, p = 1.6e-06, Holm 4.8e-06)" in head
    assert "Muon vs Pion (95% vs 75%, p = 0.18, Holm 0.18, not significant)" in head
    assert "Fisher's exact test where an expected count is below 5" in head
    assert "- 10 updates" not in head  # one evaluated arm at 10 updates: nothing to compare
    # seed level: each seed one observation; 2 + 2 seeds give 6 relabellings, the observed split and its mirror
    # are the two most extreme ones for Muon/AdamW and Pion/AdamW (p = 2/6), Holm over 3 pairs caps them at 1
    assert "the smallest p this test can give is 2 + 2 seeds: 0.33)" in head
    assert "Muon vs AdamW (mean 95% vs 20% over 2 and 2 seeds, p = 0.33, Holm 1, not significant)" in head
    assert "Muon vs Pion (mean 95% vs 75% over 2 and 2 seeds, p = 0.67, Holm 1, not significant)" in head
    assert "![own lr](img/headline_0.png)" in head
    assert (tmp_path / "docs" / "img" / "headline_0.png").stat().st_size > 5000
    assert write_report(store, out, tmp_path / "docs" / "img", hl).read_text() == text  # byte-stable


def test_seed_disagreement_is_the_extreme_pair_bonferroni():
    from envs.sweep.headline import seed_disagreement
    from envs.sweep.significance import fisher_exact_p, two_proportion_p

    assert seed_disagreement([(5, 10)]) is None
    assert seed_disagreement([(10, 10), (1, 10)]) == fisher_exact_p(10, 10, 1, 10) < 2e-4  # small counts
    three = [(5, 10), (10, 10), (1, 10)]  # extreme pair 10/10 vs 1/10, three pairs
    assert seed_disagreement(three) == min(1.0, 3 * fisher_exact_p(10, 10, 1, 10))
    assert seed_disagreement([(5, 10), (6, 10), (5, 10)]) == 1.0  # 3 x 0.65, capped
    assert seed_disagreement([(55, 100), (40, 100)]) == two_proportion_p(55, 100, 40, 100)  # large counts


@pytest.mark.parametrize(
    "bad, msg",
    [
        ("title: x\n", "non-empty 'tables'"),
        ("tables: [{rows: {AdamW: {five: {grid: g}}}}]\n", "not a positive update"),
        ("tables: [{rows: {AdamW: {5: {optimizer: adamw}}}}]\n", "'grid' key"),
        ("tables: [{rows: {AdamW: {5: {grid: g}}}}]\ncolour: red\n", "unknown key"),
        ("tables: [{rows: {AdamW: {5: {grid: g}}}}]\npaper: {AdamW: 32.2}\n", "'paper' maps"),
    ],
)
def test_bad_headline_files_say_what_is_wrong(tmp_path, bad, msg):
    path = tmp_path / "h.yaml"
    path.write_text(bad)
    with pytest.raises(ValueError, match=msg):
        load_headline(path)
    with pytest.raises(FileNotFoundError, match="headline=''"):
        load_headline(tmp_path / "missing.yaml")


def test_repository_headline_file_parses_and_names_stored_grids():
    sweeps = Path(__file__).resolve().parents[2] / "configs" / "sweep"
    spec = load_headline(sweeps.parent / "results" / "headline.yaml")
    grids = {sel["grid"] for t in spec["tables"] for cols in t["rows"].values() for sel in cols.values()}
    assert grids and all((sweeps / f"{g}.yaml").is_file() for g in grids), grids


def test_partial_column_says_how_many_seeds_are_in_and_shows_them(tmp_path):
    recs = [
        _rec("L1", "long", {"optimizer": "pion", "seed": "0"}, [(5, 3, 10)], status="partial"),
        _rec("L2", "long", {"optimizer": "pion", "seed": "1"}, [(5, 4, 10), (10, 7, 10)]),
        _rec("L3", "long", {"optimizer": "adamw", "seed": "0"}, [(10, 0, 10)]),
        _rec("L4", "long", {"optimizer": "adamw", "seed": "1"}, [(10, 10, 10)]),
    ]
    store, hl = _write(tmp_path, recs)
    head = write_report(store, tmp_path / "results.md", tmp_path / "img", hl).read_text().split("## long")[0]
    assert (
        "| Pion | not run yet | - | - | - | partial: 1 of 2 seed(s) evaluated here | - | 7/10 | 100.0 |"
        in head
    )
    # the finished seed is shown but not compared, and cannot flag seed disagreement on its own
    assert "Pion >" not in head and "vs Pion" not in head and "Pion at 10" not in head
    assert "AdamW at 10 updates (0/10; 10/10" in head  # the complete cell still is
