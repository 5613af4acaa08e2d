"""LIBERO-Plus (sylvestf/LIBERO-plus): classify task variants into the 7 categories and enumerate them.

LIBERO-Plus is a fork installed under the same `libero` package name; its suites hold 2,402 / 2,518 /
2,591 / 2,519 variants (spatial / object / goal / 10 = 10,030), each run once (init state 0). The
category of a variant is encoded in its task name (../shared/reference/libero.md §5):

    ..._language_<k>_view_0_0_100_0_0_initstate_0          Language
    ..._view_<h>_<v>_<scale>_<rot>_<vert>_initstate_0      Camera   (any view value off the default)
    ..._view_0_0_100_0_0_initstate_<k>, k != 0             Robot
    ..._view_0_0_100_0_0_initstate_0_noise_<n>             Noise    (n: 1-10 motion blur, 11-20 Gaussian,
                                                                     21-30 zoom blur, 31-40 fog, 41-50 glass blur)
    ..._light_<k>                                          Light
    ..._table_<k> / ..._tb_<k>                             Background
    ..._add_<k> / ..._level<k>                             Layout

When the package ships `task_classification.json`, its category and difficulty level win over the name.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from envs.eval.perturb.noise import NOISE_TYPES

PLUS_PREFIX = "plus-"  # episode.perturbation = "plus-<category>": the env itself is the variant
CATEGORIES = ("camera", "robot", "language", "light", "background", "noise", "layout")
JSON_NAMES = {
    "Camera Viewpoints": "camera",
    "Robot Initial States": "robot",
    "Language Instructions": "language",
    "Light Conditions": "light",
    "Background Textures": "background",
    "Sensor Noise": "noise",
    "Objects Layout": "layout",
}
DEFAULT_VIEW = ("0", "0", "100", "0", "0")
_VIEW = re.compile(r"_view_(-?\d+)_(-?\d+)_(\d+)_(-?\d+)_(-?\d+)_initstate_(\d+)")
_SUFFIX = re.compile(r"_(?:language_\d+|view_|light_\d+|table_\d+|tb_\d+|add_\d+|level_?\d+|noise_\d+)")


@dataclass(frozen=True)
class Variant:
    name: str
    base: str  # the LIBERO task the variant perturbs
    category: str  # one of CATEGORIES, or "none" for an unperturbed name
    severity: int = 0  # noise level 1-10, difficulty level from the json when known, else 0
    detail: str = ""


def noise_type(n: int) -> tuple[str, int]:
    """LIBERO-Plus noise index 1..50 -> (type, level 1..10)."""
    if not 1 <= n <= 50:
        raise ValueError(f"noise index {n} outside 1..50")
    return NOISE_TYPES[(n - 1) // 10], (n - 1) % 10 + 1


def classify(name: str) -> Variant:
    """Category of a LIBERO-Plus task name, from its encoding (see module doc)."""
    base = _SUFFIX.split(name, maxsplit=1)[0]
    if m := re.search(r"_noise_(\d+)$", name):
        kind, level = noise_type(int(m.group(1)))
        return Variant(name, base, "noise", level, kind)
    if m := re.search(r"_language_(\d+)", name):
        return Variant(name, base, "language", 0, f"paraphrase {m.group(1)}")
    if m := re.search(r"_light_(\d+)", name):
        return Variant(name, base, "light", 0, f"light {m.group(1)}")
    if m := re.search(r"_(table|tb)_(\d+)", name):
        return Variant(name, base, "background", 0, f"{m.group(1)} {m.group(2)}")
    if m := re.search(r"_(add_\d+|level_?\d+)", name):
        return Variant(name, base, "layout", 0, m.group(1))
    if m := _VIEW.search(name):
        view, init = m.groups()[:5], int(m.group(6))
        if view != DEFAULT_VIEW:
            return Variant(name, base, "camera", 0, "view " + "_".join(view))
        if init != 0:
            return Variant(name, base, "robot", 0, f"initstate {init}")
    return Variant(name, base, "none")


def installed_classification() -> dict[str, dict] | None:
    """`task_classification.json` of an installed LIBERO-Plus, name -> {category, difficulty_level}; None if absent."""
    try:
        import libero.libero.benchmark as bm
    except ImportError:
        return None
    path = Path(bm.__file__).parent / "task_classification.json"
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    entries = data.values() if isinstance(data, dict) else data
    out = {}
    for e in entries:
        if isinstance(e, dict) and "name" in e:
            out[e["name"]] = {
                "category": JSON_NAMES.get(e.get("category"), e.get("category")),
                "difficulty_level": e.get("difficulty_level"),
            }
    return out


def libero_plus_episodes(suites, *, seeds=(0,), limit_per_category=None):
    """One episode (init state 0) per LIBERO-Plus variant of each suite; needs the LIBERO-Plus package."""
    from envs.eval.episodes import Episode
    from envs.libero.tasks import _suite_object

    table = installed_classification()
    if table is None:
        raise ValueError(
            "LIBERO-Plus is not installed (no libero/libero/benchmark/task_classification.json): "
            "git-clone sylvestf/LIBERO-plus and `pip install -e .` it, plus its assets "
            "(../shared/reference/libero.md §5); the built-in perturbation suite is "
            "`perturb.categories=all`"
        )
    episodes, counts = [], {}
    for suite in suites:
        suite_obj = _suite_object(suite)
        for tid in range(suite_obj.n_tasks):
            name = suite_obj.get_task(tid).name
            v = classify(name)
            known = table.get(name, {})
            cat, sev = known.get("category") or v.category, known.get("difficulty_level") or v.severity
            if cat == "none":
                continue
            counts[(suite, cat)] = counts.get((suite, cat), 0) + 1
            if limit_per_category is not None and counts[(suite, cat)] > limit_per_category:
                continue
            episodes.extend(Episode(suite, tid, 0, int(s), PLUS_PREFIX + cat, int(sev)) for s in seeds)
    return episodes
