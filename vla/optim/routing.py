"""Which parameter goes to which optimizer: ordered name rules, grouped into named presets.

A rule matches a parameter by regular expression on its name (re.search), optionally excluding a
second pattern and optionally only for parameters of at most `max_ndim` dimensions. Rules that
target Pion or Muon never claim 0/1-D parameters (those fall through to later rules). The first rule
that matches decides; a parameter no rule matches is an error, never a silent default.

Presets (reference §5) are just lists of rules:

    vla_adapter  0/1-D, cls/reg tokens, embeddings (not patch_embed), lm_head, action_queries and the
                 action head's final fc2 → AdamW; action_head → Pion; vision, language, rest → Muon
    vlanext      0/1-D, final_layer, embed → AdamW at 0.1·lr; action_head → Pion; rest → Muon
    pi05         0/1-D, embeddings, lm_head, action_out_proj → AdamW; PaliGemma tower → Muon;
                 action expert → Pion; anything else → AdamW
    pi05_muon    pi05 with the action expert on Muon too (the Muon baseline of the π0.5 recipe)
    smolvla      as pi05 on lerobot's SmolVLA names: vlm_with_expert.vlm → Muon, lm_expert + action/state/time
                 projections → Pion; embeddings, lm_head, action_out_proj, 0/1-D → AdamW (`smolvla_muon`: expert on Muon)
    act          lerobot ACT: the transformer layers (encoder, decoder, VAE encoder) → Pion; everything else
                 (ResNet backbone, input/output projections, embeddings, 0/1-D) → AdamW (`act_muon`: layers on Muon)
    muon / pion  the vla_adapter exclusions, every other matrix → Muon / Pion
    adamw        everything → AdamW
    custom       only the user's rules

User rules always come first, so they can override any preset.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import torch

TARGETS = ("pion", "muon", "adamw")


@dataclass(frozen=True)
class Rule:
    bucket: str  # label shown in the routing table
    target: str  # "pion" | "muon" | "adamw"
    pattern: str = ".*"
    exclude: str | None = None
    max_ndim: int | None = None

    def __post_init__(self) -> None:
        if self.target not in TARGETS:
            raise ValueError(f"rule {self.bucket!r}: target must be one of {TARGETS}, got {self.target!r}")
        re.compile(self.pattern)
        if self.exclude is not None:
            re.compile(self.exclude)

    def matches(self, name: str, param: torch.Tensor) -> bool:
        if self.target != "adamw" and param.ndim < 2:  # Pion/Muon rules only ever claim matrices
            return False
        if self.max_ndim is not None and param.ndim > self.max_ndim:
            return False
        if self.exclude is not None and re.search(self.exclude, name):
            return False
        return re.search(self.pattern, name) is not None


@dataclass(frozen=True)
class Preset:
    rules: tuple[Rule, ...]
    aux_lr_ratio: float = 1.0  # AdamW lr = lr · aux_lr_ratio
    description: str = ""


VECTORS = Rule("0/1-D (norms, biases, gates)", "adamw", max_ndim=1)
_VLA_ADAPTER_ADAMW = (
    VECTORS,
    Rule("cls/reg tokens", "adamw", r"cls_token|reg_token"),
    Rule("embeddings", "adamw", r"embed", exclude=r"patch_embed"),
    Rule("lm_head", "adamw", r"lm_head"),
    Rule("action queries", "adamw", r"action_queries"),
    Rule("action head final projection", "adamw", r"action_head\.(model\.)?fc2\."),
)


def _vla_adapter_like(action_target: str, backbone_target: str) -> tuple[Rule, ...]:
    return (
        *_VLA_ADAPTER_ADAMW,
        Rule("action head", action_target, r"action_head"),
        Rule("vision", backbone_target, r"vision_backbone|visual"),
        Rule("language", backbone_target, r"language_model"),
        Rule("other matrices", backbone_target),
    )


_PI05_EXPERT = r"paligemma_with_expert\.gemma_expert|action_in_proj|state_proj|action_time_mlp_(in|out)|(^|\.)time_mlp_(in|out)"

_SMOLVLA_EXPERT = r"vlm_with_expert\.lm_expert|action_in_proj|state_proj|action_time_mlp_(in|out)"
_HEAD_ADAMW = Rule(
    "embeddings / lm_head / action_out_proj",
    "adamw",
    r"embed_tokens|embeddings\.weight|position_embedding|patch_embedding|lm_head|action_out_proj",
)


def _two_tower(tower: str, expert: str, expert_target: str) -> tuple[Rule, ...]:
    """π0.5 / SmolVLA shape: VL tower on Muon, action expert on `expert_target`, the rest AdamW."""
    return (
        VECTORS,
        _HEAD_ADAMW,
        Rule("VL tower", "muon", tower),
        Rule("action expert", expert_target, expert),
        Rule("anything else", "adamw"),
    )


def _act(layers_target: str) -> tuple[Rule, ...]:
    """lerobot ACT: the transformer's attention / feed-forward matrices on `layers_target`, the rest AdamW.

    The ResNet backbone stays on AdamW (ImageNet features; lerobot gives it its own 1e-5 lr, which this preset
    does not reproduce), as do the input projections and the final action_head (the first/last layers that
    Muon-style recipes leave to AdamW)."""
    return (
        VECTORS,
        Rule("transformer layers", layers_target, r"(^|\.)(encoder|decoder|vae_encoder)\.layers\."),
        Rule("backbone, projections, embeddings", "adamw"),
    )


PRESETS: dict[str, Preset] = {
    "vla_adapter": Preset(_vla_adapter_like("pion", "muon"), 1.0, "VLA-Adapter Pion recipe"),
    "vlanext": Preset(
        (
            VECTORS,
            Rule("final layer", "adamw", r"final_layer"),
            Rule("embeddings", "adamw", r"embed"),
            Rule("action head", "pion", r"action_head"),
            Rule("vision", "muon", r"visual"),
            Rule("language", "muon", r"language_model"),
            Rule("other matrices (projectors)", "muon"),
        ),
        0.1,
        "VLANeXt Pion recipe (aux AdamW at 0.1·lr)",
    ),
    "pi05": Preset(
        _two_tower(r"paligemma_with_expert\.paligemma", _PI05_EXPERT, "pion"), 1.0, "openpi π0.5 Pion recipe"
    ),
    "pi05_muon": Preset(
        _two_tower(r"paligemma_with_expert\.paligemma", _PI05_EXPERT, "muon"), 1.0, "π0.5 Muon baseline"
    ),
    "smolvla": Preset(
        _two_tower(r"vlm_with_expert\.vlm\.", _SMOLVLA_EXPERT, "pion"), 1.0, "SmolVLA: VLM Muon, expert Pion"
    ),
    "smolvla_muon": Preset(
        _two_tower(r"vlm_with_expert\.vlm\.", _SMOLVLA_EXPERT, "muon"), 1.0, "SmolVLA Muon baseline"
    ),
    "act": Preset(_act("pion"), 1.0, "lerobot ACT: transformer layers Pion, the rest AdamW"),
    "act_muon": Preset(
        _act("muon"), 1.0, "lerobot ACT Muon baseline: transformer layers Muon, the rest AdamW"
    ),
    "muon": Preset(_vla_adapter_like("muon", "muon"), 1.0, "Muon baseline: every VLA bucket on Muon"),
    "pion": Preset(
        _vla_adapter_like("pion", "pion"), 1.0, "every matrix on Pion (expect frozen layers at k_p=0)"
    ),
    "adamw": Preset((Rule("everything", "adamw"),), 1.0, "AdamW baseline"),
    "custom": Preset((), 1.0, "user rules only"),
}


def parse_rules(rules: Iterable[Rule | dict] | None) -> tuple[Rule, ...]:
    """User rules from config: dicts with bucket (or name), target, pattern, exclude, max_ndim."""
    parsed = []
    for rule in rules or ():
        if isinstance(rule, Rule):
            parsed.append(rule)
            continue
        rule = dict(rule)
        bucket = rule.pop("bucket", None) or rule.pop("name", None) or f"user: {rule.get('pattern')}"
        unknown = set(rule) - {"target", "pattern", "exclude", "max_ndim"}
        if unknown:
            raise ValueError(f"unknown keys {sorted(unknown)} in routing rule {rule}")
        parsed.append(Rule(bucket=bucket, **rule))
    return tuple(parsed)


@dataclass
class Route:
    name: str
    param: torch.Tensor
    rule: Rule = field(repr=False)


def route_parameters(
    named_params: Iterable[tuple[str, torch.Tensor]], preset: str, user_rules: Sequence[Rule] = ()
) -> list[Route]:
    """Assign every trainable parameter a rule. Shared (tied) parameters appear once."""
    if preset not in PRESETS:
        raise ValueError(f"unknown routing preset {preset!r}; choose one of {sorted(PRESETS)}")
    rules = (*user_rules, *PRESETS[preset].rules)
    routes, seen, unrouted = [], set(), []
    for name, param in named_params:
        if not param.requires_grad or id(param) in seen:
            continue
        seen.add(id(param))
        rule = next((r for r in rules if r.matches(name, param)), None)
        if rule is None:
            unrouted.append(name)
        else:
            routes.append(Route(name, param, rule))
    if unrouted:
        shown = ", ".join(unrouted[:10]) + (" ..." if len(unrouted) > 10 else "")
        raise ValueError(f"{len(unrouted)} parameters matched no routing rule (preset {preset!r}): {shown}")
    return routes


def format_routing_table(rows: Sequence[dict]) -> str:
    """Plain-text table: one row per param group (bucket, optimizer, #tensors, #params, lr, heads)."""
    header = ("group", "optimizer", "tensors", "params", "lr", "heads")
    body = [
        (
            r["bucket"],
            r["optimizer"],
            str(r["tensors"]),
            f"{r['numel']:,}",
            f"{r['lr']:.3g}",
            "-" if r.get("num_heads") is None else f"{r['num_heads']} on dim {r['head_split_dim']}",
        )
        for r in rows
    ]
    total = sum(r["numel"] for r in rows)
    widths = [max(len(x) for x in col) for col in zip(header, *body)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths))  # noqa: E731
    out = [line(header), line(["-" * w for w in widths]), *(line(b) for b in body)]
    out.append(f"total {total:,} parameters in {sum(r['tensors'] for r in rows)} tensors")
    return "\n".join(out)
