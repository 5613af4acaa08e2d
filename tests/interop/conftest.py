"""Fixtures of the lerobot interoperability tests (helpers in lerobot_fixtures.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from lerobot_fixtures import gen_demos_dataset


@pytest.fixture(scope="session")
def demos_dataset(tmp_path_factory) -> Path:
    return gen_demos_dataset(tmp_path_factory.mktemp("gen_demos"))
