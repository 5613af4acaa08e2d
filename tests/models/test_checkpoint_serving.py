"""A randomly initialised checkpoint directory behind pion-serve's server and in the eval harness."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny_models import observation, tiny_config, tiny_processor

from deploy.server import PolicyServer
from vla.models.checkpoint import load_policy_dir, save_pretrained
from vla.models.vla_adapter import VLAAdapter
from vla.policies import load_policy


@pytest.fixture
def ckpt_dir(tmp_path):
    torch.manual_seed(0)
    model = VLAAdapter(tiny_config())
    save_pretrained(tmp_path / "ckpt", model, tiny_processor(model.config, input_image_size=256))
    return tmp_path / "ckpt"


def test_served_checkpoint_gives_the_local_chunk(ckpt_dir):
    local = load_policy(str(ckpt_dir))
    server = PolicyServer(load_policy_dir(ckpt_dir), "tcp://127.0.0.1:*").start()
    try:
        remote = load_policy(server.endpoint, timeout_s=10, action_space="libero_osc_delta")
        assert remote.spec.chunk_len == 8 and remote.spec.image_shapes == local.spec.image_shapes
        obs = observation(2, size=256)
        np.testing.assert_array_equal(remote.predict_chunk(obs), local.predict_chunk(obs))
        remote.close()
    finally:
        server.stop()


@pytest.mark.slow
def test_checkpoint_runs_through_the_eval_harness(ckpt_dir, tmp_path):
    from envs.eval import EvalRun, build_episodes, evaluate

    run = EvalRun(out_dir=tmp_path / "eval", policy=str(ckpt_dir), workers=1, max_steps=16, progress=False,
                  plot=False, videos_per_task=0)  # fmt: skip
    summary = evaluate(run, build_episodes(["libero_object"], [0], 1, [7]))
    assert summary["overall"]["episodes"] == 1 and summary["overall"]["errors"] == 0


def test_rtc_knobs_reach_a_flow_model_and_are_refused_for_others(ckpt_dir, tmp_path):
    from test_flow_model import tiny_config as tiny_flow_config

    from vla.models.flow_matching import FlowMatchingPolicy

    torch.manual_seed(0)
    flow = FlowMatchingPolicy(tiny_flow_config())
    flow_dir = save_pretrained(tmp_path / "flow", flow, tiny_processor(flow.config, input_image_size=256))
    policy = load_policy(str(flow_dir), rtc_max_guidance_weight=5.0, rtc_schedule="linear")
    assert (policy.model.rtc.max_guidance_weight, policy.model.rtc.schedule) == (5.0, "linear")
    assert load_policy(str(flow_dir), rtc_schedule="ones").model.rtc.max_guidance_weight == 10.0  # kept
    with pytest.raises(ValueError, match="schedule must be one of"):
        load_policy(str(flow_dir), rtc_schedule="cubic")
    with pytest.raises(ValueError, match="'vla_adapter' model, which has no RTC"):
        load_policy(str(ckpt_dir), rtc_max_guidance_weight=5.0)
