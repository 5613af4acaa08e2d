"""Per-head views of attention projections, and a finder for them in transformers models.

A fused projection holds H heads side by side. Per-head mode orthogonalises each head's block on its
own (normalisation, filter and lr scale all per head):

    split_dim=0  Q, K, V (heads on the output axis):  (H·d_h, d_in)  → (H, d_h, d_in)
    split_dim=1  O       (heads on the input axis):   (d_out, H·d_h) → (H, d_out, d_h)

With grouped-query attention K and V have num_key_value_heads heads, not num_attention_heads;
`find_attention_heads` reads both from the module so each projection gets its own count. A head
count that does not divide the axis raises instead of silently falling back to whole-matrix mode.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class HeadSplit:
    num_heads: int
    split_dim: int = 0

    def __post_init__(self) -> None:
        if self.num_heads < 1:
            raise ValueError(f"num_heads must be >= 1, got {self.num_heads}")
        if self.split_dim not in (0, 1):
            raise ValueError(f"head_split_dim must be 0 (Q/K/V) or 1 (O), got {self.split_dim}")

    def head_shape(self, rows: int, cols: int) -> tuple[int, int]:
        """(rows, cols) of one head's block of a rows×cols matrix."""
        axis = rows if self.split_dim == 0 else cols
        if axis % self.num_heads:
            raise ValueError(
                f"{self.num_heads} heads do not divide axis {self.split_dim} (size {axis}) of a "
                f"{rows}×{cols} matrix; fix num_heads or route this parameter whole-matrix"
            )
        if self.split_dim == 0:
            return rows // self.num_heads, cols
        return rows, cols // self.num_heads


def split_heads(matrix: torch.Tensor, split: HeadSplit) -> torch.Tensor:
    """(rows, cols) → (H, head_rows, head_cols)."""
    rows, cols = matrix.shape
    head_rows, head_cols = split.head_shape(rows, cols)
    if split.split_dim == 0:
        return matrix.reshape(split.num_heads, head_rows, cols)
    return matrix.reshape(rows, split.num_heads, head_cols).permute(1, 0, 2)


def merge_heads(heads: torch.Tensor, split: HeadSplit) -> torch.Tensor:
    """Inverse of `split_heads`: (H, head_rows, head_cols) → (rows, cols)."""
    num_heads, head_rows, head_cols = heads.shape
    if split.split_dim == 0:
        return heads.reshape(num_heads * head_rows, head_cols)
    return heads.permute(1, 0, 2).reshape(head_rows, num_heads * head_cols)


_QKV = ("q_proj", "k_proj", "v_proj")


def find_attention_heads(model: nn.Module) -> dict[str, HeadSplit]:
    """Map parameter names of attention projection weights to their head split.

    Recognises any module with `q_proj`, `k_proj`, `v_proj`, `o_proj` linear children and a
    `head_dim` attribute — the layout of transformers' Qwen2, Qwen3, Llama and Gemma attention — and any
    module that declares its own layout as `head_projections = {child name: split dim}` with a `head_dim`
    (the VLA-Adapter Bridge-Attention block: one query, three key/value pairs, one output).
    Head counts are derived from the projection widths, so GQA (fewer K/V heads) comes out right.
    """
    splits: dict[str, HeadSplit] = {}
    for prefix, module in model.named_modules():
        declared = getattr(module, "head_projections", None)
        if declared is not None:  # a model's own attention layout: {linear child: split dim}
            splits.update(_declared_heads(prefix, module, declared))
            continue
        if not all(hasattr(module, name) for name in (*_QKV, "o_proj")):
            continue
        head_dim = getattr(module, "head_dim", None)
        if head_dim is None:
            config = getattr(module, "config", None)
            head_dim = getattr(config, "head_dim", None) if config is not None else None
        if not head_dim:
            raise ValueError(f"attention module {prefix!r} has no head_dim; cannot split heads")
        dot = f"{prefix}." if prefix else ""
        for name in _QKV:
            weight = getattr(module, name).weight
            if weight.shape[0] % head_dim:
                raise ValueError(
                    f"{dot}{name}.weight rows {weight.shape[0]} not a multiple of head_dim {head_dim}"
                )
            splits[f"{dot}{name}.weight"] = HeadSplit(weight.shape[0] // head_dim, split_dim=0)
        o_weight = module.o_proj.weight
        if o_weight.shape[1] % head_dim:
            raise ValueError(
                f"{dot}o_proj.weight cols {o_weight.shape[1]} not a multiple of head_dim {head_dim}"
            )
        splits[f"{dot}o_proj.weight"] = HeadSplit(o_weight.shape[1] // head_dim, split_dim=1)
    return splits


def _declared_heads(prefix: str, module: nn.Module, declared: dict[str, int]) -> dict[str, HeadSplit]:
    head_dim = getattr(module, "head_dim", None)
    if not head_dim:
        raise ValueError(f"attention module {prefix!r} declares head_projections but has no head_dim")
    dot = f"{prefix}." if prefix else ""
    out = {}
    for name, split_dim in declared.items():
        weight = getattr(module, name).weight
        axis = weight.shape[split_dim]
        if axis % head_dim:
            raise ValueError(
                f"{dot}{name}.weight axis {split_dim} ({axis}) not a multiple of head_dim {head_dim}"
            )
        out[f"{dot}{name}.weight"] = HeadSplit(axis // head_dim, split_dim=split_dim)
    return out


def head_param_groups(
    model: nn.Module, params: list[nn.Parameter] | None = None, **group_options
) -> list[dict]:
    """Param groups for per-head mode: one group per (num_heads, split_dim), plus one whole-matrix group.

    `params` restricts the groups to a subset (default: all of the model's parameters with ndim >= 2).
    """
    splits = find_attention_heads(model)
    wanted = None if params is None else {id(p) for p in params}
    by_split: dict[HeadSplit | None, list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if (wanted is not None and id(param) not in wanted) or (wanted is None and param.ndim < 2):
            continue
        by_split.setdefault(splits.get(name), []).append(param)
    groups = []
    for split, group_params in by_split.items():
        group = {"params": group_params, **group_options}
        if split is not None:
            group.update(num_heads=split.num_heads, head_split_dim=split.split_dim)
        groups.append(group)
    return groups
