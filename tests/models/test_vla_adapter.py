"""VLA-Adapter: ActionQuery, Bridge-Attention (gate, one softmax, RoPE), layer wiring, loss, overfitting."""

from __future__ import annotations

import pytest
import torch
from tiny_models import observation, tiny_backbone, tiny_config, tiny_processor

from vla.models.vla_adapter import VLAAdapter, VLAAdapterConfig
from vla.models.vla_adapter.model import BridgeAttentionBlock, apply_rope


def _inputs(model, batch=2, seed=0, train=False):
    return tiny_processor(model.config)(observation(batch, seed=seed, with_action=True), train=train)


def test_shapes_and_raw_token_count_follows_image_count(tiny_model):
    inputs = _inputs(tiny_model)
    assert tiny_model.sample_actions(inputs).shape == (2, 8, 7)
    assert tiny_model.config.num_raw_tokens == 2 * 4
    one = VLAAdapterConfig(backbone=tiny_backbone(), num_images=1, num_action_queries=4, head_heads=2)
    assert one.num_raw_tokens == 4
    raw, queries = tiny_model.vlm_features(inputs)
    assert len(raw) == len(queries) == tiny_model.config.head_blocks
    assert raw[0].shape == (2, 8, 32) and queries[0].shape == (2, 4, 32)


def test_action_queries_start_at_zero_and_replace_the_placeholders(tiny_model):
    assert tiny_model.action_queries.weight.shape == (4, 32)
    assert torch.count_nonzero(tiny_model.action_queries.weight) == 0
    inputs = _inputs(tiny_model)
    embeds, _, qpos = tiny_model.embed_prefix(inputs)
    rows = torch.arange(2)[:, None]
    assert torch.count_nonzero(embeds[rows, qpos]) == 0  # placeholders carry the (zero) queries
    loss, _ = tiny_model.compute_loss(inputs)
    loss.backward()
    assert tiny_model.action_queries.weight.grad.abs().sum() > 0  # trainable


def test_gate_scales_raw_logits_uniform_attention_at_init():
    torch.manual_seed(0)
    block = BridgeAttentionBlock(dim=32, heads=2, rope_base=10000.0)
    x, adapter, raw = torch.randn(1, 8, 32), torch.randn(1, 5, 32), torch.randn(1, 12, 32) * 3
    w = block.attention_weights(x, adapter, raw)
    assert w.shape == (1, 2, 8, 8 + 5 + 12)
    torch.testing.assert_close(w.sum(-1), torch.ones(1, 2, 8))  # one softmax over all three key sets
    raw_w = w[..., 13:]
    assert raw_w.min() > 0  # g = 0 means uniform over raw tokens, not zero contribution
    torch.testing.assert_close(raw_w, raw_w[..., :1].expand_as(raw_w))
    with torch.no_grad():
        block.gating_factor.fill_(1.0)
    raw_w = block.attention_weights(x, adapter, raw)[..., 13:]
    assert (raw_w.max(-1).values / raw_w.min(-1).values).min() > 1.5
    self_adapter = w[..., :13]  # ungated sets are not uniform
    assert (self_adapter.max(-1).values / self_adapter.min(-1).values).min() > 1.5


def test_rope_depends_on_relative_position_only():
    torch.manual_seed(0)
    q, k = torch.randn(1, 1, 1, 16), torch.randn(1, 1, 1, 16)

    def at(t, pos):  # rotate a single vector as if it stood at position `pos`
        return apply_rope(t.expand(1, 1, pos + 1, 16).contiguous(), 10000.0)[..., pos, :]

    d1 = (at(q, 3) * at(k, 1)).sum()
    d2 = (at(q, 7) * at(k, 5)).sum()
    d3 = (at(q, 7) * at(k, 1)).sum()
    torch.testing.assert_close(d1, d2)
    assert not torch.allclose(d1, d3)
    torch.testing.assert_close(at(q, 5).norm(), q.norm())  # a rotation
    torch.testing.assert_close(at(q, 0), q[..., 0, :])


def test_block_i_reads_layer_i_plus_one(tiny_model):
    inputs = _inputs(tiny_model)
    embeds, mask, qpos = tiny_model.embed_prefix(inputs)
    hidden = tiny_model.run_language_model(embeds, mask)
    seen = []
    hooks = [
        b.register_forward_hook(lambda mod, args, kwargs, out: seen.append(kwargs["raw"]), with_kwargs=True)
        for b in tiny_model.action_head.blocks
    ]
    tiny_model.sample_actions(inputs)
    for h in hooks:
        h.remove()
    p = tiny_model.config.num_raw_tokens
    for i, raw in enumerate(seen):
        torch.testing.assert_close(raw, hidden[i + 1][:, :p])  # reference slice: token 0 + first P-1 patches


def test_proprio_enters_only_through_the_head_projector(tiny_model):
    inputs = _inputs(tiny_model)
    other = dict(inputs, proprio=-inputs["proprio"])
    a, b = tiny_model.sample_actions(inputs), tiny_model.sample_actions(other)
    assert not torch.allclose(a, b)
    raw_a, q_a = tiny_model.vlm_features(inputs)
    raw_b, q_b = tiny_model.vlm_features(other)
    for x, y in zip(raw_a + q_a, raw_b + q_b):
        torch.testing.assert_close(x, y)  # the LLM never sees it


def test_loss_is_l1_on_normalised_actions_and_ignores_padded_steps(tiny_model):
    inputs = _inputs(tiny_model)
    torch.manual_seed(1)
    pred = tiny_model.predict_actions(inputs, noise_std=tiny_model.config.train_input_noise_std)
    torch.manual_seed(1)
    loss, metrics = tiny_model.compute_loss(inputs)
    torch.testing.assert_close(loss, (pred - inputs["action"]).abs().mean())
    pad = inputs["action_is_pad"].clone()
    pad[:, 4:] = True
    garbage = inputs["action"].clone()
    garbage[:, 4:] = 100.0
    torch.manual_seed(1)
    masked, _ = tiny_model.compute_loss(dict(inputs, action_is_pad=pad, action=garbage))
    torch.testing.assert_close(masked, (pred - inputs["action"])[:, :4].abs().mean())
    assert set(metrics) == {"l1", "l1_gripper", "l1_arm"}


def test_training_adds_input_noise_inference_does_not(tiny_model):
    inputs = _inputs(tiny_model)
    torch.testing.assert_close(tiny_model.sample_actions(inputs), tiny_model.sample_actions(inputs))
    a = tiny_model.predict_actions(inputs, noise_std=0.02)
    b = tiny_model.predict_actions(inputs, noise_std=0.02)
    assert not torch.allclose(a, b)


def test_config_validation():
    with pytest.raises(ValueError, match="head_blocks"):
        VLAAdapterConfig(backbone=tiny_backbone(), head_blocks=5, head_heads=2)
    with pytest.raises(ValueError, match="even head_dim"):
        VLAAdapterConfig(backbone=tiny_backbone(), head_heads=32)
    with pytest.raises(ValueError, match="unknown vla_adapter config keys"):
        VLAAdapterConfig.from_dict({"num_querys": 3})
    cfg = tiny_config()
    assert VLAAdapterConfig.from_dict(cfg.to_dict()) == cfg


def test_tiny_model_overfits_one_batch():
    """L1 falls by more than 10x on one fixed batch (the 0.02 input noise, a regulariser, is off here)."""
    torch.manual_seed(0)
    model = VLAAdapter(tiny_config(train_input_noise_std=0.0))
    inputs = _inputs(model, batch=2, seed=3)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, 200)
    first = None
    for _ in range(200):
        loss, _ = model.compute_loss(inputs)
        first = float(loss.detach()) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    final = float((model.sample_actions(inputs) - inputs["action"]).abs().mean())
    assert final < first / 10, (first, final)


def test_per_head_mode_reaches_the_bridge_attention_head(tiny_model):
    """optim.per_head=true splits the head's Q, the three K/V pairs (rows) and O (columns) into its heads, so
    Pion filters each head on its own: the update of a split matrix differs from whole-matrix mode, head by head
    normalised, while unsplit matrices (the FFN) get the same update in both modes."""
    from vla.optim import HeadSplit, RoutedOptimizer, find_attention_heads

    splits = find_attention_heads(tiny_model)
    block = "action_head.blocks.0."
    assert {n.removeprefix(block) for n in splits if n.startswith(block)} == {
        f"{p}.weight"
        for p in ("q_proj", "k_self", "v_self", "k_adapter", "v_adapter", "k_task", "v_task", "o_proj")
    }
    assert splits[block + "k_adapter.weight"] == HeadSplit(2, 0) and splits[
        block + "o_proj.weight"
    ] == HeadSplit(2, 1)
    updates = {}
    for per_head in (False, True):
        torch.manual_seed(0)
        model = VLAAdapter(tiny_config())
        opt = RoutedOptimizer(
            model, preset="vla_adapter", lr=1e-2, weight_decay=0.0, per_head=per_head, verbose=False
        )
        assert opt.optimizer_of(block + "k_adapter.weight") == "pion"
        params = dict(model.named_parameters())
        before = {n: params[n].detach().clone() for n in (block + "k_adapter.weight", block + "ffn.weight")}
        torch.manual_seed(1)
        for (
            p
        ) in model.parameters():  # one dominant direction + a noisy tail: what Pion keeps and what it drops
            rank1 = torch.outer(torch.randn(p.shape[0]), torch.randn(p[0].numel())).reshape(p.shape)
            p.grad = rank1 + 0.01 * torch.randn_like(p) if p.ndim == 2 else torch.randn_like(p)
        opt.step()
        updates[per_head] = {n: params[n].detach() - w for n, w in before.items()}
    assert torch.allclose(updates[False][block + "ffn.weight"], updates[True][block + "ffn.weight"])
    whole, split = updates[False][block + "k_adapter.weight"], updates[True][block + "k_adapter.weight"]
    rows = split.shape[0] // 2
    norms = [float(split[h * rows : (h + 1) * rows].norm()) for h in range(2)]
    assert min(norms) > 0 and abs(norms[0] - norms[1]) < 1e-4 * norms[0]  # each head's kept direction at 1
    whole_norms = [float(whole[h * rows : (h + 1) * rows].norm()) for h in range(2)]
    assert abs(whole_norms[0] - whole_norms[1]) > 0.01 * max(
        whole_norms
    )  # whole matrix: heads share one scale


def test_spectral_diagnostics_report_vla_regions_for_every_routing():
    """The AdamW baseline's single parameter group is split into the VLA regions (vision, language, action head)
    for the spectral diagnostics, so every arm of the optimizer comparison has per-region ranks; a routed
    optimizer keeps its buckets, which already are regions."""
    from vla.optim import RoutedOptimizer
    from vla.train.hooks import UpdateProbe, model_regions, spectral_stats

    labels = {}
    for preset in ("adamw", "vla_adapter"):
        torch.manual_seed(0)
        model = VLAAdapter(tiny_config())
        opt = RoutedOptimizer(model, preset=preset, lr=1e-3, weight_decay=0.0, verbose=False)
        for p in model.parameters():
            p.grad = torch.randn_like(p)
        probe = UpdateProbe(opt)
        probe.snapshot()
        opt.step()
        _, updates = probe.measure(keep_updates=True)
        stats = spectral_stats(opt, updates, max_dim=4096, regions=model_regions(model))
        labels[preset] = {k.split("/")[1] + "/" + k.split("/")[2] for k in stats}
        assert all(v > 0.999 or v == 0 for v in stats.values())  # exp(entropy) >= 1; 0 for a zero update
        assert len([k for k in stats if k.endswith("update_effective_rank")]) == len(
            [k for k in stats if k.endswith("grad_effective_rank")]
        )
    assert {"adamw/vision", "adamw/language", "adamw/action_head"} <= labels["adamw"]
    assert "adamw/everything" not in labels["adamw"]
    assert {"pion/action_head", "muon/vision", "muon/language"} <= labels["vla_adapter"]
    # without regions the baseline stays one bucket (what older results in the store hold)
    assert {k.split("/")[2] for k in spectral_stats(opt, {}, max_dim=4096)} >= {"action_head"}
