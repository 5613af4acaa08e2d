"""Per-head mode: equals the whole-matrix routine on each head slice; GQA-aware discovery in transformers."""

from __future__ import annotations

import math

import pytest
import torch

from vla.optim import HeadSplit, Muon, Pion, find_attention_heads, head_param_groups
from vla.optim.heads import merge_heads, split_heads


@pytest.mark.parametrize("split_dim", [0, 1])
def test_split_merge_round_trip_and_slices(split_dim):
    m = torch.arange(12 * 20, dtype=torch.float32).reshape(12, 20)
    split = HeadSplit(4, split_dim)
    heads = split_heads(m, split)
    assert heads.shape == ((4, 3, 20) if split_dim == 0 else (4, 12, 5))
    for h in range(4):
        expected = m[3 * h : 3 * h + 3] if split_dim == 0 else m[:, 5 * h : 5 * h + 5]
        assert torch.equal(heads[h], expected)
    assert torch.equal(merge_heads(heads, split), m)


@pytest.mark.parametrize(
    "cls,extra",
    [(Pion, {"promotion_steps": 2, "low_rank": False}), (Pion, {"promotion_steps": 0}), (Muon, {})],
)
@pytest.mark.parametrize("split_dim", [0, 1])
def test_per_head_equals_whole_matrix_routine_on_each_slice(cls, extra, split_dim):
    heads, rows, cols = 4, 32, 24
    gen = torch.Generator().manual_seed(0)
    w = torch.nn.Parameter(torch.randn(rows, cols, generator=gen))
    slices = [
        slice(h * rows // heads, (h + 1) * rows // heads)
        if split_dim == 0
        else (slice(None), slice(h * cols // heads, (h + 1) * cols // heads))
        for h in range(heads)
    ]
    pieces = [torch.nn.Parameter(w.detach()[s].clone()) for s in slices]
    per_head = cls([w], lr=0.1, num_heads=heads, head_split_dim=split_dim, **extra)
    whole = cls(pieces, lr=0.1, **extra)
    for _step in range(3):
        g = torch.randn(rows, cols, generator=gen)
        g[slices[1]] += 4 * torch.outer(torch.ones(g[slices[1]].shape[0]), torch.ones(g[slices[1]].shape[1]))
        w.grad = g
        for piece, s in zip(pieces, slices):
            piece.grad = g[s].clone()
        per_head.step()
        whole.step()
    for piece, s in zip(pieces, slices):
        torch.testing.assert_close(w.detach()[s], piece.detach(), atol=1e-6, rtol=0)


def test_per_head_scale_uses_head_dims():
    w = torch.nn.Parameter(torch.zeros(64, 16))
    w.grad = torch.randn(64, 16)
    Pion(
        [w], lr=1.0, num_heads=4, promotion_steps=5, weight_decay=0.0, scale_factor=1.0, low_rank=False
    ).step()
    # each (16, 16) head: update ≈ orthogonal (σ ≈ 1) times sqrt(max(16, 16)) = 4
    for h in range(4):
        sv = torch.linalg.svdvals(w.detach()[16 * h : 16 * h + 16])
        assert sv.max().item() == pytest.approx(4.0, rel=0.05)


def test_heads_that_do_not_divide_raise():
    with pytest.raises(ValueError, match="do not divide"):
        Pion([torch.nn.Parameter(torch.randn(30, 16))], num_heads=4)
    with pytest.raises(ValueError, match="do not divide"):
        Pion([torch.nn.Parameter(torch.randn(16, 30))], num_heads=4, head_split_dim=1)


def _tiny(family):
    transformers = pytest.importorskip("transformers")
    common = dict(
        hidden_size=64,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=96,
        num_hidden_layers=2,
        vocab_size=128,
    )
    config_cls, model_cls = {
        "qwen2": (transformers.Qwen2Config, transformers.Qwen2ForCausalLM),
        "qwen3": (transformers.Qwen3Config, transformers.Qwen3ForCausalLM),
        "llama": (transformers.LlamaConfig, transformers.LlamaForCausalLM),
        "gemma": (transformers.GemmaConfig, transformers.GemmaForCausalLM),
    }[family]
    extra = {"head_dim": 16} if family in ("qwen3", "gemma") else {}
    torch.manual_seed(0)
    return model_cls(config_cls(**common, **extra))


@pytest.mark.parametrize("family", ["qwen2", "qwen3", "llama", "gemma"])
def test_find_attention_heads_gqa(family):
    model = _tiny(family)
    splits = find_attention_heads(model)
    assert len(splits) == 2 * 4
    for layer in range(2):
        prefix = f"model.layers.{layer}.self_attn."
        assert splits[prefix + "q_proj.weight"] == HeadSplit(4, 0)
        assert splits[prefix + "k_proj.weight"] == HeadSplit(2, 0)  # GQA: K/V use num_key_value_heads
        assert splits[prefix + "v_proj.weight"] == HeadSplit(2, 0)
        assert splits[prefix + "o_proj.weight"] == HeadSplit(4, 1)
    names = dict(model.named_parameters())
    for name, split in splits.items():
        split.head_shape(*names[name].shape)  # every found split fits its weight


def test_head_param_groups_drive_per_head_pion():
    model = _tiny("qwen2")
    groups = head_param_groups(model, lr=0.01)
    by_spec = {(g.get("num_heads"), g.get("head_split_dim")): len(g["params"]) for g in groups}
    assert by_spec == {(4, 0): 2, (2, 0): 4, (4, 1): 2, (None, None): 2 * 3 + 2}  # MLPs + embed + lm_head
    matrices = [g for g in groups if g.get("num_heads") is not None]
    opt = Pion(matrices, promotion_steps=1)
    for g in opt.param_groups:
        for p in g["params"]:
            p.grad = torch.randn_like(p)
    opt.step()
    assert opt.step_stats["matrices"] == 8
    k_proj = model.model.layers[0].self_attn.k_proj.weight
    group = next(g for g in opt.param_groups if any(p is k_proj for p in g["params"]))
    assert group["num_heads"] == 2 and math.isclose(group["lr"], 0.01)
