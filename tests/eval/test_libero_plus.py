"""LIBERO-Plus name classifier on synthetic names built from the reference's encoding table (§5)."""

import pytest

from envs.eval.libero_plus import classify, installed_classification, libero_plus_episodes, noise_type

BASE = "pick_up_the_alphabet_soup_and_place_it_in_the_basket"


@pytest.mark.parametrize(
    ("name", "category", "severity", "detail"),
    [
        (f"{BASE}_view_11_15_100_0_0_initstate_0", "camera", 0, "view 11_15_100_0_0"),
        (f"{BASE}_view_0_0_120_0_0_initstate_0", "camera", 0, "view 0_0_120_0_0"),
        (f"{BASE}_view_0_0_100_0_0_initstate_3", "robot", 0, "initstate 3"),
        (f"{BASE}_language_4_view_0_0_100_0_0_initstate_0", "language", 0, "paraphrase 4"),
        (f"{BASE}_light_7", "light", 0, "light 7"),
        (f"{BASE}_table_2", "background", 0, "table 2"),
        (f"{BASE}_tb_5", "background", 0, "tb 5"),
        (f"{BASE}_add_3", "layout", 0, "add_3"),
        (f"{BASE}_level2", "layout", 0, "level2"),
        (f"{BASE}_view_0_0_100_0_0_initstate_0_noise_1", "noise", 1, "motion_blur"),
        (f"{BASE}_view_0_0_100_0_0_initstate_0_noise_10", "noise", 10, "motion_blur"),
        (f"{BASE}_view_0_0_100_0_0_initstate_0_noise_11", "noise", 1, "gaussian"),
        (f"{BASE}_view_0_0_100_0_0_initstate_0_noise_25", "noise", 5, "zoom_blur"),
        (f"{BASE}_view_0_0_100_0_0_initstate_0_noise_40", "noise", 10, "fog"),
        (f"{BASE}_view_0_0_100_0_0_initstate_0_noise_41", "noise", 1, "glass_blur"),
        (f"{BASE}_view_0_0_100_0_0_initstate_0", "none", 0, ""),
        (BASE, "none", 0, ""),
    ],
)
def test_classify_synthetic_names(name, category, severity, detail):
    v = classify(name)
    assert (v.category, v.severity, v.detail) == (category, severity, detail)
    assert v.base == BASE


def test_noise_index_map_bounds():
    assert noise_type(50) == ("glass_blur", 10)
    with pytest.raises(ValueError):
        noise_type(51)


def test_enumeration_says_how_to_install_when_missing():
    if installed_classification() is not None:
        pytest.skip("LIBERO-Plus is installed here")
    with pytest.raises(ValueError, match="LIBERO-Plus is not installed"):
        libero_plus_episodes(["libero_object"])
