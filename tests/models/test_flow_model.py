"""The flow-matching policy on a tiny shared backbone: shapes, conventions, one VLM pass, masking, overfit."""

import numpy as np
import pytest
import torch

from vla.models.backbone import BackboneConfig
from vla.models.flow_matching import FlowMatchingConfig, FlowMatchingPolicy
from vla.models.processor import PolicyProcessor, default_stats
from vla.models.registry import processor_config
from vla.models.tokenizer import build_byte_tokenizer

B, T, A = 3, 8, 7


def tiny_config(**overrides) -> FlowMatchingConfig:
    backbone = BackboneConfig.cpu(
        image_size=32, patch_size=16, dino_hidden=32, dino_layers=2, dino_heads=2, siglip_hidden=32,
        siglip_layers=2, siglip_heads=2, siglip_mlp=64, llm_hidden=32, llm_layers=2, llm_heads=4, llm_kv_heads=2,
        llm_mlp=64,
    )  # fmt: skip
    base = dict(backbone=backbone, expert_hidden=32, expert_heads=4, max_positions=16, num_queries=4)
    return FlowMatchingConfig(**{**base, **overrides})


def make_inputs(config: FlowMatchingConfig, seed: int = 0, b: int = B) -> dict[str, torch.Tensor]:
    rng = np.random.default_rng(seed)
    batch = {
        "observation.images.image": rng.integers(0, 256, (b, 32, 32, 3), dtype=np.uint8),
        "observation.images.image2": rng.integers(0, 256, (b, 32, 32, 3), dtype=np.uint8),
        "observation.state": rng.uniform(-1, 1, (b, 8)).astype(np.float32),
        "task": ["open the drawer", "pick up the bowl", "push"][:b],
        "action": rng.uniform(-1, 1, (b, T, A)).astype(np.float32),
    }
    pcfg = processor_config(config, {"prompt_template": "{task}", "augment": False})
    return PolicyProcessor(pcfg, build_byte_tokenizer(), default_stats())(batch, train=True)


@pytest.fixture
def model() -> FlowMatchingPolicy:
    torch.manual_seed(0)
    return FlowMatchingPolicy(tiny_config())


def test_shapes_and_metrics(model):
    inputs = make_inputs(model.config)
    loss, metrics = model.compute_loss(inputs, generator=torch.Generator().manual_seed(0))
    assert loss.ndim == 0 and torch.isfinite(loss)
    assert set(metrics) == {"loss", "flow_mse", "dct", "t_mean"}
    assert metrics["loss"] == pytest.approx(metrics["flow_mse"] + 0.1 * metrics["dct"], rel=1e-5)
    out = model.sample_actions(inputs, generator=torch.Generator().manual_seed(0))
    assert out.shape == (B, T, A) and out.dtype == torch.float32
    assert model.config.expert_depth == 3 and len(model.action_head.blocks) == 3  # llm_layers + 1 states
    embeds, mask = model.embed_prefix(inputs)
    # 1 proprio token + 2 cameras x 4 patches + the prompt with its query placeholders
    assert embeds.shape[1] == 1 + 8 + inputs["input_ids"].shape[1] == mask.shape[1]


def test_meta_queries_replace_the_placeholders(model):
    inputs = make_inputs(model.config)
    embeds, _ = model.embed_prefix(inputs)
    lengths = inputs["attention_mask"].sum(1)
    for row, n in enumerate(lengths.tolist()):  # [proprio ; token 0 ; 8 patches ; tokens 1..n-1]
        queries = embeds[row, 9 + n - 4 : 9 + n]
        torch.testing.assert_close(queries, model.meta_queries)
        torch.testing.assert_close(embeds[row, 1], model.embed_tokens(inputs["input_ids"][row, :1])[0])
    with pytest.raises(ValueError, match="num_queries"):
        model.embed_prefix({**inputs, "attention_mask": torch.zeros_like(inputs["attention_mask"])})


def test_adaln_zero_velocity_is_zero_at_init_so_sampling_returns_the_noise(model):
    inputs = make_inputs(model.config)
    noise = torch.randn(B, T, A)
    torch.testing.assert_close(model.sample_actions(inputs, noise=noise), noise, atol=0, rtol=0)
    context, mask = model.encode_prefix(inputs)
    v = model.action_head(torch.randn(B, T, A), torch.rand(B), context, mask)
    assert torch.equal(v, torch.zeros_like(v))


def test_training_noises_with_t_one_is_noise(model, monkeypatch):
    inputs = make_inputs(model.config)
    seen = {}
    forward = model.action_head.forward

    def spy(x_t, t, context, mask=None):
        seen["x_t"], seen["t"] = x_t.clone(), t.clone()
        return forward(x_t, t, context, mask)

    monkeypatch.setattr(model.action_head, "forward", spy)
    for value, expect_noise in ((1.0, True), (0.0, False)):
        monkeypatch.setattr(model, "_sample_time", lambda b, d, g, v=value: torch.full((b,), v))
        g = torch.Generator().manual_seed(1)
        model.compute_loss(inputs, generator=g)
        noise = torch.randn(B, T, A, generator=torch.Generator().manual_seed(1))  # the loss's first draw
        torch.testing.assert_close(seen["x_t"], noise if expect_noise else inputs["action"])


def test_sampling_starts_at_noise_with_t_one_and_recovers_a_point_mass(model, monkeypatch):
    inputs = make_inputs(model.config)
    point = torch.linspace(-0.9, 0.9, T * A).view(1, T, A).expand(B, T, A)
    calls = []

    def exact(x_t, t, context, mask=None):  # velocity field of a point mass at `point`: (x − a)/t = ε − a
        calls.append((x_t.clone(), t.clone()))
        return (x_t - point) / t.view(-1, 1, 1)

    monkeypatch.setattr(model.action_head, "forward", exact)
    noise = torch.randn(B, T, A)
    for steps in (1, 4, 10):
        calls.clear()
        out = model.sample_actions(inputs, noise=noise, num_steps=steps)
        torch.testing.assert_close(out, point, atol=1e-5, rtol=0)
        assert len(calls) == steps
        assert torch.equal(calls[0][0], noise) and torch.all(calls[0][1] == 1.0)


@pytest.mark.parametrize("steps", [1, 5, 10])
def test_vlm_runs_once_per_sample_actions(model, monkeypatch, steps):
    inputs = make_inputs(model.config)
    counts = {"vlm": 0, "vision": 0, "expert": 0}
    run_lm, embed_images, expert = model.run_language_model, model.embed_images, model.action_head.forward

    def count(key, fn):
        def wrapped(*args, **kwargs):
            counts[key] += 1
            return fn(*args, **kwargs)

        return wrapped

    monkeypatch.setattr(model, "run_language_model", count("vlm", run_lm))
    monkeypatch.setattr(model, "embed_images", count("vision", embed_images))
    monkeypatch.setattr(model.action_head, "forward", count("expert", expert))
    model.sample_actions(inputs, num_steps=steps)
    assert counts == {"vlm": 1, "vision": 1, "expert": steps}


def test_padded_chunk_steps_do_not_count(model):
    inputs = make_inputs(model.config)
    pad = torch.zeros(B, T, dtype=torch.bool)
    pad[:, 5:] = True
    actions = inputs["action"].clone()
    actions[:, 5:] = 1e3  # unmasked, these would dominate both losses
    # at init v = 0, so flow_mse = mean over valid steps of (ε − a)²; a ∈ [-1, 1], ε ~ N(0, 1)
    _, metrics = model.compute_loss({**inputs, "action": actions, "action_is_pad": pad})
    assert metrics["flow_mse"] < 5 and metrics["dct"] < 50
    _, unmasked = model.compute_loss({**inputs, "action": actions, "action_is_pad": torch.zeros_like(pad)})
    assert unmasked["flow_mse"] > 1e4


def test_dct_weight_zero_switches_it_off():
    torch.manual_seed(0)
    model = FlowMatchingPolicy(tiny_config(dct_loss_weight=0.0))
    loss, metrics = model.compute_loss(make_inputs(model.config))
    assert "dct" not in metrics and metrics["loss"] == pytest.approx(metrics["flow_mse"])


def test_bad_inputs_are_named(model):
    inputs = make_inputs(model.config)
    with pytest.raises(ValueError, match="proprio"):
        model.embed_prefix({**inputs, "proprio": torch.zeros(B, 2, 8)})
    with pytest.raises(ValueError, match="num_images"):
        model.embed_prefix({**inputs, "pixel_values": inputs["pixel_values"][:, :1]})
    with pytest.raises(ValueError, match="action must be"):
        model.compute_loss({**inputs, "action": torch.zeros(B, 4, A)})


def test_proprio_history_is_prepended():
    torch.manual_seed(0)
    model = FlowMatchingPolicy(tiny_config(history_len=3))
    inputs = make_inputs(model.config)
    history = torch.rand(B, 3, 8)
    embeds, mask = model.embed_prefix({**inputs, "proprio": history})
    torch.testing.assert_close(embeds[:, :3], model.proprio_projector(history))
    assert mask.shape[1] == 3 + 8 + inputs["input_ids"].shape[1]
    with pytest.raises(ValueError, match="history"):
        model.embed_prefix(inputs)  # (B, 8) current state only, but history_len = 3


def test_config_checks_and_round_trip():
    cfg = tiny_config(time_sampling="uniform")
    again = FlowMatchingConfig.from_dict(cfg.to_dict())
    assert again == cfg and isinstance(again.backbone, BackboneConfig)
    with pytest.raises(ValueError, match="time_sampling"):
        tiny_config(time_sampling="cosine")
    with pytest.raises(ValueError, match="expert_depth"):
        tiny_config(expert_depth=4)  # the tiny backbone returns 3 hidden states
    with pytest.raises(ValueError, match="unknown flow_matching config keys"):
        FlowMatchingConfig.from_dict({"expert_width": 3})
    with pytest.raises(ValueError, match="model_type"):
        FlowMatchingConfig.from_dict({"model_type": "vla_adapter"})


def test_tiny_model_overfits_one_batch_and_samples_its_actions():
    """Fresh ε and t every step (the real objective): one batch is a point mass per prompt, so the exact
    velocity (x_t − a)/t is learnable, the loss falls >10x and Euler sampling lands near the actions."""
    torch.manual_seed(0)
    model = FlowMatchingPolicy(tiny_config())
    inputs = make_inputs(model.config, b=2)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(400):
        loss, metrics = model.compute_loss(inputs, generator=g)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(metrics["flow_mse"])
    first, last = np.mean(losses[:10]), np.mean(losses[-20:])
    assert last < first / 10, (first, last)
    out = model.eval().sample_actions(inputs, generator=torch.Generator().manual_seed(1))
    assert (out - inputs["action"]).abs().mean() < 0.2  # noise alone would be ~0.9 away


def test_save_load_round_trip_is_bit_identical(model, tmp_path):
    from vla.models.checkpoint import from_pretrained, save_pretrained
    from vla.models.registry import build_processor

    with torch.no_grad():  # leave adaLN-Zero so the outputs depend on every weight
        for p in model.action_head.parameters():
            p.add_(0.05 * torch.randn_like(p))
    processor = build_processor(model.config, {"prompt_template": "{task}"}, default_stats())
    save_pretrained(tmp_path / "ckpt", model, processor)
    loaded, loaded_processor = from_pretrained(tmp_path / "ckpt")
    assert isinstance(loaded, FlowMatchingPolicy) and loaded.config == model.config
    assert loaded_processor.cfg == processor.cfg
    inputs = make_inputs(model.config)
    noise = torch.randn(B, T, A)
    model.eval()
    expected = model.sample_actions(inputs, noise=noise)
    assert not torch.equal(expected, noise)
    assert torch.equal(loaded.sample_actions(inputs, noise=noise), expected)
    loss_a, _ = model.compute_loss(inputs, generator=torch.Generator().manual_seed(3))
    loss_b, _ = loaded.compute_loss(inputs, generator=torch.Generator().manual_seed(3))
    assert torch.equal(loss_a, loss_b)
