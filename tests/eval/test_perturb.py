"""Each built-in perturbation category: deterministic for a seed, visibly changes the observation (or the
instruction), different seeds differ; noise touches the agentview image only. The slow test checks the
expert still solves a perturbed episode of every category through the harness."""

import numpy as np
import pytest

from envs.eval.perturb import CATEGORIES, perturbed_env
from envs.eval.perturb.language import paraphrase
from envs.eval.perturb.noise import NOISE_TYPES, corrupt

AGENT, WRIST = "observation.images.image", "observation.images.image2"


@pytest.fixture(scope="module")
def env():
    from envs.libero import make_env

    e = make_env("libero_object", 0, resolution=128)
    yield e
    e.close()


@pytest.fixture(scope="module")
def clean(env):
    obs, _ = env.reset(seed=0, options={"init_state": 0})
    return obs


def _obs(env, cat, seed, sev=3):
    obs, _ = perturbed_env(env, cat, sev, seed).reset(seed=0, options={"init_state": 0})
    return obs


def _diff(a, b):
    return float(np.abs(a.astype(int) - b.astype(int)).mean())


@pytest.mark.parametrize("category", CATEGORIES)
def test_category_is_deterministic_and_visible(env, clean, category):
    a, b = _obs(env, category, seed=11), _obs(env, category, seed=11)
    np.testing.assert_array_equal(a[AGENT], b[AGENT])
    np.testing.assert_allclose(a["observation.state"], b["observation.state"], atol=1e-6)
    assert a["task"] == b["task"]
    other = _obs(env, category, seed=12)
    if category == "language":
        assert a["task"] != clean["task"] and a["task"] != other["task"]
        np.testing.assert_array_equal(a[AGENT], clean[AGENT])  # only the words change
        return
    if category == "noise":  # both seeds may draw the same noise type; the frames still differ
        np.testing.assert_array_equal(a[WRIST], clean[WRIST])  # the wrist camera is never corrupted
    assert _diff(a[AGENT], clean[AGENT]) > 1.0, f"{category} barely changes the agentview image"
    assert _diff(a[AGENT], other[AGENT]) > 0.2, f"{category}: seeds 11 and 12 look the same"
    if category == "robot":
        assert np.abs(a["observation.state"][:3] - clean["observation.state"][:3]).max() > 0.005


def test_clean_episode_after_any_perturbation_is_pixel_identical(env, clean):
    """Restoring the pristine scene leaves no residue: a clean episode after a perturbed one equals a fresh one."""
    for category in CATEGORIES:
        _obs(env, category, seed=5)
        again = _obs(env, "none", seed=0, sev=0)
        for key in (AGENT, WRIST, "observation.state"):
            np.testing.assert_array_equal(again[key], clean[key], err_msg=f"residue after {category}: {key}")
        assert again["task"] == clean["task"]


def test_noise_types_and_severity_grow():
    rng = np.random.default_rng(0)
    img = (np.indices((64, 64)).sum(0) % 32 * 8).astype(np.uint8)[..., None].repeat(3, -1)
    for kind in NOISE_TYPES:
        d1 = _diff(corrupt(img, kind, 1, np.random.default_rng(1)), img)
        d5 = _diff(corrupt(img, kind, 5, np.random.default_rng(1)), img)
        assert 0 < d1 < d5, (kind, d1, d5)
    with pytest.raises(ValueError, match="valid"):
        corrupt(img, "snow", 1, rng)


def test_paraphrases_keep_the_objects():
    text = "pick up the alphabet soup and place it in the basket"
    for sev in range(1, 6):
        p = paraphrase(text, sev, np.random.default_rng(sev))
        assert p != text and "alphabet soup" in p and "basket" in p


@pytest.mark.slow
def test_expert_solves_a_perturbed_episode_of_every_category(tmp_path):
    from envs.eval import EvalRun, build_episodes, evaluate

    eps = build_episodes(["libero_object"], [0], 1, [7], perturbations=[(c, 3) for c in CATEGORIES])
    summary = evaluate(
        EvalRun(out_dir=tmp_path, policy="expert", progress=False, plot=True, videos_per_task=0), eps
    )
    per_cat = {c: s["successes"] for c, s in summary["categories"].items()}
    assert all(per_cat[c] == 1 for c in CATEGORIES), per_cat


def test_paraphrase_keeps_turn_on_intact():
    for sev in range(1, 6):
        p = paraphrase("turn on the stove", sev, np.random.default_rng(sev))
        assert "on top of" not in p and "onto" not in p and "stove" in p
