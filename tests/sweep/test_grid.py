"""Grid files -> cells: order, shorthand axes, excludes, refused conflicts; the cell hash is stable and canonical;
the committed grids and the paper recipes compose with the real config loader."""

from __future__ import annotations

import subprocess
import sys

import pytest

from envs.sweep.grid import DataSpec, GridSpec, expand, load_grid, select
from envs.sweep.hashing import cell_hash, digest

AXES = {
    "optimizer": {"adamw": {"optim": "adamw", "optim.lr": 5e-4}, "pion": {"optim": "pion", "optim.lr": 1e-3}},
    "budget": {"short": {"steps": 10}, "long": {"steps": 30}},
    "seed": {"key": "seed", "values": [0, 1]},
}


def _grid(**kw) -> GridSpec:
    return GridSpec(
        name="g", experiment="cpu_smoke", axes=kw.pop("axes", AXES), data=DataSpec(root="/data"), **kw
    )


def test_cells_are_the_product_in_file_order_with_excludes():
    cells = expand(_grid(exclude=[{"optimizer": "pion", "budget": "long"}]))
    assert [c.label for c in cells] == [
        "optimizer=adamw budget=short seed=0", "optimizer=adamw budget=short seed=1",
        "optimizer=adamw budget=long seed=0", "optimizer=adamw budget=long seed=1",
        "optimizer=pion budget=short seed=0", "optimizer=pion budget=short seed=1",
    ]  # fmt: skip
    assert dict(cells[5].overrides) == {"optim": "pion", "optim.lr": 1e-3, "steps": 10, "seed": 1}
    assert len({c.hash for c in cells}) == 6


def test_hash_ignores_axis_names_and_key_order_but_not_values():
    a = expand(_grid())[0]
    renamed = {
        "opt": {"A": {"optim.lr": 5e-4, "optim": "adamw"}},
        "b": {"s": {"steps": 10}},
        "seed": {"key": "seed", "values": [0]},
    }
    assert expand(_grid(axes=renamed))[0].hash == a.hash
    assert expand(_grid(axes={**renamed, "seed": {"key": "seed", "values": [2]}}))[0].hash != a.hash
    assert digest({"lr": 1.0, "x": [1, 2]}) == digest({"x": [1, 2], "lr": 1})


def test_hash_is_a_fixed_function_of_the_spec():
    spec = {"experiment": "cpu_smoke", "overrides": {"optim": "pion", "optim.lr": 0.001, "steps": 500},
            "data": {"root": "/d"}, "eval": {"every": 250}}  # fmt: skip
    assert cell_hash(spec) == "dbdc654fb783"
    code = f"from envs.sweep.hashing import cell_hash; print(cell_hash({spec!r}))"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": "123", "PATH": ""})  # fmt: skip
    assert other.stdout.strip() == "dbdc654fb783"


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"base": {"steps": 5}}, "'steps' is set by both 'base' and axis 'budget'"),
        ({"exclude": [{"lr": 1}]}, "unknown axis 'lr'"),
        ({"exclude": [{"budget": "huge"}]}, "has no level 'huge'"),
        ({"axes": {"seed": {"key": "seed", "values": []}}}, "non-empty list"),
        ({"axes": {}}, "no axes"),
    ],
)
def test_bad_grids_are_refused(kw, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        expand(_grid(**kw))


def test_select_by_hash_prefix():
    cells = expand(_grid())
    assert select(cells, [cells[3].hash[:6]]) == [cells[3]]
    with pytest.raises(ValueError, match="matches no cell"):
        select(cells, ["zzzz"])


def test_committed_grids_expand_and_their_last_cell_composes():
    from envs.sweep.runner import CellRunner

    sizes, steps = {}, {}
    names = ("object_optimizers", "object_lr", "object_pion_diagnosis", "smoke", "object_task0", "object_task0_kp",
             "object_task0_flow", "object_task0_lr", "object_task0_tuned", "object_task0_diagnosis")  # fmt: skip
    hashes = {}
    for name in names:
        grid = load_grid(name)
        cells = expand(grid)
        sizes[name] = len(cells)
        steps[name] = CellRunner(grid).preflight(cells[-1])["steps"]
        hashes[name] = {c.label: c.hash for c in cells}
    assert sizes == {"object_optimizers": 16, "object_lr": 15, "object_pion_diagnosis": 12, "smoke": 1,
                     "object_task0": 9, "object_task0_kp": 8, "object_task0_flow": 4, "object_task0_lr": 18,
                     "object_task0_tuned": 9, "object_task0_diagnosis": 2}  # fmt: skip
    assert steps == {"object_optimizers": 1500, "object_lr": 500, "object_pion_diagnosis": 500, "smoke": 60,
                     "object_task0": 1500, "object_task0_kp": 1000, "object_task0_flow": 1000, "object_task0_lr": 500,
                     "object_task0_tuned": 1500, "object_task0_diagnosis": 1500}  # fmt: skip
    # cells already in docs/results/store.jsonl keep their hashes when a grid file is edited (levels added, keys
    # moved between base and axes): a changed hash would re-run them and orphan their stored results
    stored = set(hashes["object_task0"].values()) | set(hashes["object_task0_kp"].values())
    assert {"7fd08a3efcf5", "fd950339d6bc", "1833cd7d6e3c", "be80adc714d6", "c627d877e7a4"} <= stored
    assert {"d789c9eb8902", "f646f6235cf6", "14117649d6ab", "1b94bc48b66a"} <= stored
    assert {"d8d919860989", "c2daa3420f2d"} <= set(
        hashes["object_task0_flow"].values()
    )  # lr moved base -> axis
    lr_cells = set(hashes["object_task0_lr"].values())
    assert {"5ddbd6a888c0", "c120dfef27cc", "83539e50369b", "aab21cd92fe8"} <= lr_cells


def test_grid_overrides_and_bad_keys():
    grid = load_grid("object_lr", ["eval.trials_per_task=3", "only=[abc]"])
    assert grid.eval.trials_per_task == 3 and grid.only == ["abc"]
    with pytest.raises(ValueError, match="not in 'GridSpec'"):
        load_grid("object_lr", ["bogus=1"])
    with pytest.raises(FileNotFoundError, match="unknown grid 'nope'; known: object_lr"):
        load_grid("nope")


def test_perturb_spec_is_validated_and_not_hashed():
    from envs.eval.perturb import CATEGORIES
    from envs.sweep.grid import PerturbSpec

    assert PerturbSpec().categories == list(CATEGORIES) and PerturbSpec().severities == [3]
    assert PerturbSpec(categories="all").categories == list(CATEGORIES)
    for kw, message in [
        ({"categories": ["lighting"]}, "unknown perturbation categories"),
        ({"categories": []}, "empty"),
        ({"severities": [0]}, "1..5"),
        ({"severities": []}, "1..5"),
        ({"trials_per_task": 0}, ">= 1"),
    ]:
        with pytest.raises(ValueError, match=message):
            PerturbSpec(**kw)
    plain = [c.hash for c in expand(_grid())]
    assert [c.hash for c in expand(_grid(perturb=PerturbSpec(severities=[5])))] == plain
    grid = load_grid("object_task0", ["perturb.categories=[camera,noise]", "perturb.severities=[1,5]"])
    assert grid.perturb.categories == ["camera", "noise"] and grid.perturb.severities == [1, 5]
    with pytest.raises(ValueError, match="unknown perturbation categories"):
        load_grid("object_task0", ["perturb.categories=[fog]"])


def test_diagnosis_grid_routes_only_the_action_head_to_the_matrix_optimizer():
    """The paper's diagnosis arm: vision + language (+ projectors) on AdamW, the fresh action head on Muon / Pion."""
    from omegaconf import OmegaConf

    from envs.sweep.runner import CellRunner
    from vla.models.registry import build_model
    from vla.optim import build_optimizer

    grid = load_grid("object_task0_diagnosis")
    runner = CellRunner(grid)
    for cell in expand(grid):
        cfg = OmegaConf.create(runner.train_config(cell))
        built = build_model(cfg.model, pretrained=False)
        model = built[0] if isinstance(built, tuple) else built
        rows = {r["bucket"]: r for r in build_optimizer(model, cfg.optim, verbose=False).routing_rows()}
        head = cell.level("head")
        assert rows["action head"]["optimizer"] == head, rows
        assert rows["backbone (diagnosis arm)"]["optimizer"] == "adamw"
        matrix = [g for g, r in rows.items() if r["optimizer"] in ("muon", "pion")]
        assert matrix == ["action head"], matrix
