"""Fixtures of the data tests: synthetic demonstrations and tiny LeRobot datasets (see dataset_factory)."""

from __future__ import annotations

import pytest
from dataset_factory import LENGTHS, synthetic_demo, write_dataset


@pytest.fixture
def make_demo():
    return synthetic_demo


@pytest.fixture(scope="session")
def png_dataset(tmp_path_factory):
    """(root, demos): a 4-episode PNG-frame dataset in the lerobot layout, shared by the tests of a session."""
    root = tmp_path_factory.mktemp("data") / "png"
    return root, write_dataset(root, LENGTHS)


@pytest.fixture(scope="session")
def video_dataset(tmp_path_factory):
    """Root of a 3-episode (12, 5, 9 frames) AV1-video dataset in the community (wrist_image) layout."""
    root = tmp_path_factory.mktemp("data") / "video"
    write_dataset(root, [12, 5, 9], use_videos=True, res=32, layout="community")
    return root
