"""Real-time chunking: the soft mask, the guidance weight, and the prefix pull on a tiny random flow model."""

import numpy as np
import pytest
import torch
from test_flow_model import make_inputs, tiny_config

from vla.models.flow_matching import FlowMatchingPolicy
from vla.models.flow_matching.rtc import (
    ActionPrefix,
    RTCConfig,
    guidance_weight,
    prefix_from_batch,
    prefix_weights,
)
from vla.protocol import PENDING_ACTIONS_KEY, PENDING_DELAY_KEY

B, T, A = 3, 8, 7


@pytest.fixture(scope="module")
def random_model() -> FlowMatchingPolicy:
    """A tiny flow model whose action expert has random (not zero-initialised) weights: v is not 0."""
    torch.manual_seed(0)
    model = FlowMatchingPolicy(tiny_config()).eval()
    with torch.no_grad():
        for p in model.action_head.parameters():
            p.normal_(0.0, 0.05)
    return model


def test_soft_mask_is_one_on_the_delay_then_decays_to_zero_past_the_pending_actions():
    np.testing.assert_allclose(prefix_weights(8, 6, 2, "linear"), [1, 1, 0.8, 0.6, 0.4, 0.2, 0, 0], atol=1e-6)
    w = prefix_weights(8, 6, 2, "exp")
    c = np.array([0.8, 0.6, 0.4, 0.2])
    np.testing.assert_allclose(w[2:6], c * np.expm1(c) / (np.e - 1), atol=1e-6)
    assert w[0] == w[1] == 1 and w[6] == w[7] == 0 and np.all(np.diff(w.numpy()) <= 0)
    np.testing.assert_array_equal(prefix_weights(8, 6, 2, "ones"), [1, 1, 1, 1, 1, 1, 0, 0])
    np.testing.assert_array_equal(prefix_weights(8, 6, 2, "zeros"), [1, 1, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(prefix_weights(4, 9, 7, "linear"), [1, 1, 1, 1])  # clipped to the chunk


def test_guidance_weight_is_capped_and_smallest_mid_way():
    assert guidance_weight(1.0, 10.0) == 10.0 and guidance_weight(0.0, 5.0) == 5.0
    assert guidance_weight(0.5, 10.0) == pytest.approx(2.0)  # ((1 - t)^2 + t^2) / (t (1 - t))
    assert guidance_weight(0.9, 10.0) == pytest.approx(min(10.0, (0.01 + 0.81) / 0.09))
    assert guidance_weight(0.9, 3.0) == 3.0
    with pytest.raises(ValueError, match="max_guidance_weight"):
        RTCConfig(max_guidance_weight=0)
    with pytest.raises(ValueError, match="schedule"):
        RTCConfig(schedule="cosine")


def _errors(out: torch.Tensor, target: torch.Tensor) -> tuple[float, float]:
    d = (out[:, : target.shape[1]] - target).abs()
    return float(d[:, :2].mean()), float(d[:, 2:].mean())


def test_guidance_pulls_the_sampled_prefix_toward_the_pending_actions(random_model):
    inputs = make_inputs(random_model.config)
    g = torch.Generator().manual_seed(1)
    noise = torch.randn(B, T, A, generator=g)
    pending = torch.rand(B, 6, A, generator=g) * 2 - 1  # 6 queued actions, the first 2 executed before
    free = random_model.sample_actions(inputs, noise=noise)
    with torch.inference_mode():  # as TorchPolicy calls it
        guided = random_model.sample_actions(
            inputs, noise=noise, prefix=ActionPrefix(pending, torch.tensor([2]))
        )
    free_frozen, free_soft = _errors(free, pending)
    guided_frozen, guided_soft = _errors(guided, pending)
    tail_change = float((guided[:, 6:] - free[:, 6:]).abs().mean())
    print(
        f"|x - pending| on the delay steps: free {free_frozen:.3f} guided {guided_frozen:.3f}; on the "
        f"soft steps: free {free_soft:.3f} guided {guided_soft:.3f}; past them the chunk moved {tail_change:.3f}"
    )
    assert guided_frozen < 0.25 * free_frozen  # the steps executed from the old chunk: pulled hardest
    assert guided_soft < 0.75 * free_soft  # the decaying part of the mask: pulled, less
    assert guided_frozen < guided_soft
    assert torch.isfinite(guided).all() and not guided.requires_grad
    # a weaker cap pulls less
    random_model.rtc = RTCConfig(max_guidance_weight=1.0)
    try:
        weak = random_model.sample_actions(
            inputs, noise=noise, prefix=ActionPrefix(pending, torch.tensor([2]))
        )
    finally:
        random_model.rtc = RTCConfig()
    assert guided_frozen < _errors(weak, pending)[0] < free_frozen


def test_prefix_from_batch_reads_the_optional_keys():
    batch = {PENDING_ACTIONS_KEY: np.ones((2, 5, 7), np.float32), PENDING_DELAY_KEY: np.array([3, 1])}
    prefix = prefix_from_batch(batch, lambda a: 2 * a)
    assert prefix.actions.shape == (2, 5, 7) and float(prefix.actions[0, 0, 0]) == 2.0
    assert prefix.delay.tolist() == [3, 1]
    assert prefix_from_batch({}, lambda a: a) is None
    assert prefix_from_batch({PENDING_ACTIONS_KEY: np.zeros((1, 0, 7), np.float32)}, lambda a: a) is None
    assert prefix_from_batch(
        {PENDING_ACTIONS_KEY: np.ones((1, 2, 7), np.float32)}, lambda a: a
    ).delay.tolist() == [0]
    with pytest.raises(ValueError, match="must be \\(B, P, A\\)"):
        prefix_from_batch({PENDING_ACTIONS_KEY: np.ones((5, 7), np.float32)}, lambda a: a)
    with pytest.raises(ValueError, match="non-negative int"):
        prefix_from_batch({**batch, PENDING_DELAY_KEY: np.array([-1, 0])}, lambda a: a)
    with pytest.raises(ValueError, match="NaN"):
        prefix_from_batch({PENDING_ACTIONS_KEY: np.full((1, 2, 7), np.nan, np.float32)}, lambda a: a)


def test_torch_policy_passes_the_pending_actions_to_the_model(random_model):
    """Through the protocol: the optional observation keys reach sample_actions, normalised."""
    from vla.models.policy import TorchPolicy
    from vla.models.processor import PolicyProcessor, default_stats
    from vla.models.registry import processor_config
    from vla.models.tokenizer import build_byte_tokenizer

    overrides = {"prompt_template": "{task}", "augment": False, "input_image_size": 32}
    pcfg = processor_config(random_model.config, overrides)
    policy = TorchPolicy(random_model, PolicyProcessor(pcfg, build_byte_tokenizer(), default_stats()))
    rng = np.random.default_rng(0)
    batch = {
        "observation.images.image": rng.integers(0, 256, (1, 32, 32, 3), dtype=np.uint8),
        "observation.images.image2": rng.integers(0, 256, (1, 32, 32, 3), dtype=np.uint8),
        "observation.state": rng.uniform(-1, 1, (1, 8)).astype(np.float32),
        "task": ["open the drawer"],
    }
    pending = rng.uniform(-0.5, 0.5, (1, 4, A)).astype(np.float32)
    pending[..., 6] = 1.0  # gripper closed (libero_raw)
    torch.manual_seed(3)
    free = policy.predict_chunk(batch)
    torch.manual_seed(3)
    guided = policy.predict_chunk({**batch, PENDING_ACTIONS_KEY: pending, PENDING_DELAY_KEY: np.array([2])})
    err_free = np.abs(free[0, :2, :6] - pending[0, :2, :6]).mean()
    err_guided = np.abs(guided[0, :2, :6] - pending[0, :2, :6]).mean()
    assert err_guided < 0.5 * err_free, (err_free, err_guided)
