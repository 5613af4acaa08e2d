"""lerobot's pre/post-processor pipelines for `pion_vla` (found by lerobot's naming convention).

The checkpoint normalises, tokenises and resizes on its own (`vla.models.processor.PolicyProcessor` and
`stats.json`), so lerobot's side only renames (`--rename_map`), adds a batch dimension and moves tensors:
input  = rename_observations -> add_batch_dim -> device;  output = device(cpu).
The step names match lerobot's default pipelines, so `lerobot-eval`'s device / rename overrides apply.
"""

from __future__ import annotations

from typing import Any

import torch
from lerobot.processor import (
    AddBatchDimensionProcessorStep,
    DeviceProcessorStep,
    PolicyAction,
    PolicyProcessorPipeline,
    RenameObservationsProcessorStep,
)
from lerobot.processor.factory import make_policy_processor_pipelines

from vla.interop.lerobot.configuration_pion_vla import PionVLAConfig


def make_pion_vla_pre_post_processors(
    config: PionVLAConfig,
    dataset_stats: dict[str, dict[str, torch.Tensor]] | None = None,
) -> tuple[
    PolicyProcessorPipeline[dict[str, Any], dict[str, Any]],
    PolicyProcessorPipeline[PolicyAction, PolicyAction],
]:
    """(preprocessor, postprocessor) for a `pion_vla` policy; `dataset_stats` are not used (see module doc)."""
    return make_policy_processor_pipelines(
        input_steps=[
            RenameObservationsProcessorStep(rename_map={}),
            AddBatchDimensionProcessorStep(),
            DeviceProcessorStep(device=config.device),
        ],
        output_steps=[DeviceProcessorStep(device="cpu")],
    )
