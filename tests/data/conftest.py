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
