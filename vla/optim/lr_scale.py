"""Learning-rate scale conventions for orthogonalised updates, selectable by name.

An orthogonalised update O of an A×B matrix (A = rows = out, B = cols = in) has spectral norm ≈ 1
but an RMS that depends on its shape, so every codebase multiplies the lr by a shape factor.
They disagree on which one (reference §4); all of them are here so a config can name its choice:

    name              factor on lr              used by
    "pion"            s·sqrt(max(A, B))         official Pion/Muon code (s = scale_factor)
    "original"        sqrt(max(1, A/B))         Keller Jordan's muon.py, torch.optim.Muon default
    "match_rms_adamw" 0.2·sqrt(max(A, B))       Moonlight; update RMS ≈ AdamW's, so AdamW's lr carries over
    "spectral_norm"   sqrt(A/B)                 dion default
    "spectral"        sqrt(max(A, B))           NVIDIA Emerging-Optimizers

In per-head mode A and B are the dimensions of one head's sub-matrix.
"""

from __future__ import annotations

import math
from collections.abc import Callable

LR_SCALES: dict[str, Callable[[int, int, float], float]] = {
    "pion": lambda rows, cols, s: s * math.sqrt(max(rows, cols)),
    "original": lambda rows, cols, s: math.sqrt(max(1.0, rows / cols)),
    "match_rms_adamw": lambda rows, cols, s: 0.2 * math.sqrt(max(rows, cols)),
    "spectral_norm": lambda rows, cols, s: math.sqrt(rows / cols),
    "spectral": lambda rows, cols, s: math.sqrt(max(rows, cols)),
}


def check_lr_scale(name: str) -> None:
    if name not in LR_SCALES:
        raise ValueError(f"unknown lr_scale {name!r}; choose one of {sorted(LR_SCALES)}")


def lr_scale_factor(name: str, rows: int, cols: int, scale_factor: float = 1.0) -> float:
    """Multiplier on lr for an update of a rows×cols matrix (`scale_factor` only used by "pion")."""
    check_lr_scale(name)
    return LR_SCALES[name](rows, cols, scale_factor)
