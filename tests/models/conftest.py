"""Fixtures of the model tests; the builders live in tiny_models.py."""

from __future__ import annotations

import pytest
import torch
from tiny_models import VLAAdapter, tiny_config


@pytest.fixture
def tiny_model() -> VLAAdapter:
    torch.manual_seed(0)
    return VLAAdapter(tiny_config())
