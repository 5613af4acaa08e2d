"""Flow-matching math and the DiT action expert, without a VLM (tiny, CPU, seconds)."""

import math

import pytest
import torch

from vla.models.flow_matching.expert import ActionExpert
from vla.models.flow_matching.flow import (
    dct_loss,
    dct_matrix,
    euler_sample,
    noisy_actions,
    predicted_x0,
    sample_time,
    velocity_target,
)


def tiny_expert(depth: int = 3, action_dim: int = 7, vlm_hidden: int = 24) -> ActionExpert:
    return ActionExpert(action_dim, vlm_hidden, hidden=32, depth=depth, num_heads=4, max_positions=16)


def vlm_states(n: int, b: int = 2, length: int = 5, width: int = 24, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(b, length, width, generator=g) for _ in range(n)]


def test_t_one_is_noise_and_t_zero_is_data():
    a, eps = torch.randn(3, 8, 7), torch.randn(3, 8, 7)
    torch.testing.assert_close(noisy_actions(a, eps, torch.ones(3)), eps)
    torch.testing.assert_close(noisy_actions(a, eps, torch.zeros(3)), a)
    t = torch.tensor([0.25, 0.5, 0.9])
    x_t = noisy_actions(a, eps, t)
    torch.testing.assert_close(x_t, t.view(3, 1, 1) * eps + (1 - t.view(3, 1, 1)) * a)
    u = velocity_target(a, eps)
    torch.testing.assert_close(u, eps - a)  # d/dt of x_t, pointing from data to noise
    torch.testing.assert_close(predicted_x0(x_t, t, u), a)  # the exact velocity recovers the data


def test_beta_time_sampling_matches_beta_1p5_1():
    t = sample_time(200_000, "beta", generator=torch.Generator().manual_seed(0))
    assert t.min() >= 0.001 and t.max() <= 1.0
    u = ((t - 0.001) / 0.999).sort().values
    ks = ((u**1.5) - torch.arange(1, len(u) + 1) / len(u)).abs().max()  # CDF of Beta(1.5, 1) is u^1.5
    assert ks < 0.005
    assert abs(t.mean().item() - (0.6 * 0.999 + 0.001)) < 0.003
    assert (t > 0.5).float().mean().item() == pytest.approx(1 - ((0.5 - 0.001) / 0.999) ** 1.5, abs=0.005)


def test_uniform_time_sampling_is_flat():
    t = sample_time(200_000, "uniform", generator=torch.Generator().manual_seed(0))
    assert t.min() >= 0 and t.max() < 1
    assert abs(t.mean().item() - 0.5) < 0.003
    hist = torch.histc(t, bins=10, min=0, max=1) / len(t)
    torch.testing.assert_close(hist, torch.full((10,), 0.1), atol=0.005, rtol=0)
    with pytest.raises(ValueError, match="time_sampling"):
        sample_time(4, "logit_normal")


@pytest.mark.parametrize("num_steps", [1, 3, 10])
def test_euler_with_exact_velocity_lands_on_point_mass(num_steps):
    target = torch.randn(4, 8, 7)
    noise = torch.randn(4, 8, 7)
    calls = []

    def exact(x, t):  # the marginal velocity of a point mass at `target`: (x − a)/t = ε − a
        calls.append(t[0].item())
        return (x - target) / t.view(-1, 1, 1)

    out = euler_sample(exact, noise, num_steps)
    torch.testing.assert_close(out, target, atol=1e-5, rtol=0)
    assert calls == pytest.approx([1 - i / num_steps for i in range(num_steps)])  # t runs 1 → 0


def test_dct_matrix_is_orthonormal_dct2():
    d = dct_matrix(8, dtype=torch.float64)
    torch.testing.assert_close(d @ d.T, torch.eye(8, dtype=torch.float64))
    # a constant signal has only a DC coefficient equal to sqrt(n)·value
    c = d @ torch.full((8,), 2.0, dtype=torch.float64)
    torch.testing.assert_close(c, torch.tensor([2.0 * math.sqrt(8)] + [0.0] * 7, dtype=torch.float64))


def test_dct_loss_zero_for_identical_and_weights_low_frequencies():
    x = torch.randn(2, 8, 7)
    assert dct_loss(x, x.clone()).item() == 0.0
    offset = torch.full_like(x, 0.1)  # pure DC error (lowest frequency)
    t = torch.arange(8.0).view(1, 8, 1)
    wiggle = 0.1 * torch.cos(math.pi * (t + 0.5) * 7 / 8).expand_as(x)  # pure highest-frequency error
    low = dct_loss(x + offset, x)
    assert low.item() == pytest.approx(5.0 * (0.1 * math.sqrt(8)) ** 2 / 8, rel=1e-4)
    assert dct_loss(x + wiggle, x).item() == pytest.approx(0.0, abs=1e-9)  # high weight 0 by default
    high = dct_loss(x + wiggle, x, high_weight=1.0)
    assert high.item() > 0
    assert dct_loss(x + offset, x, low_weight=1.0).item() == pytest.approx(low.item() / 5, rel=1e-5)


def test_expert_shapes_and_uses_last_depth_layers():
    expert = tiny_expert(depth=3)
    x = torch.randn(2, 8, 7)
    states = vlm_states(5)
    context = expert.project_context(states)
    assert len(context) == 3 and context[0].shape == (2, 5, 32)
    torch.testing.assert_close(context[0], expert.blocks[0].vlm_proj(states[2]))  # block 0 reads layer −3
    out = expert(x, torch.rand(2), context)
    assert out.shape == (2, 8, 7)
    with pytest.raises(ValueError, match="expert_depth"):
        expert.project_context(vlm_states(2))
    with pytest.raises(ValueError, match="max_positions"):
        expert(torch.randn(2, 17, 7), torch.rand(2), context)


def test_adaln_zero_blocks_are_identity_and_velocity_zero_at_init():
    expert = tiny_expert(depth=3)
    x_t, t, states = torch.randn(2, 8, 7), torch.rand(2), vlm_states(3)
    context = expert.project_context(states)
    assert torch.equal(expert(x_t, t, context), torch.zeros(2, 8, 7))
    h = torch.randn(2, 8, 32)
    c = expert.t_embedder(t)
    for block, ctx in zip(expert.blocks, context):
        assert torch.equal(block(h, c, ctx, None), h)
    # once modulation is non-zero the blocks (and the VLM states) matter
    torch.nn.init.normal_(expert.blocks[0].adaLN_modulation[-1].weight, std=0.5)
    torch.nn.init.normal_(expert.final_layer.linear.weight, std=0.5)
    out = expert(x_t, t, context)
    assert not torch.equal(out, torch.zeros_like(out))
    assert not torch.allclose(out, expert(x_t, t, expert.project_context(vlm_states(3, seed=1))))


def test_vlm_mask_hides_padded_positions():
    expert = tiny_expert(depth=2)
    for p in expert.parameters():  # leave adaLN-Zero so the VLM path shows in the output
        torch.nn.init.normal_(p, std=0.3)
    x_t, t = torch.randn(2, 8, 7), torch.rand(2)
    states = vlm_states(2, length=5)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    garbage = [s.clone() for s in states]
    for s in garbage:
        s[0, 3:] = 100.0  # change only masked positions of sample 0
    ctx, bad = expert.project_context(states), expert.project_context(garbage)
    torch.testing.assert_close(expert(x_t, t, ctx, mask), expert(x_t, t, bad, mask))
    assert not torch.allclose(expert(x_t, t, ctx), expert(x_t, t, bad))
