"""Optimizers for matrix parameters: Pion (spectral high-pass), Muon, LowRankMuon, and routing.

Light-weight on purpose: importing this package pulls in torch only (no transformers, no matplotlib).
"""

from vla.optim.factory import build_optimizer
from vla.optim.heads import HeadSplit, find_attention_heads, head_param_groups
from vla.optim.low_rank import low_rank_filter, rank_bound
from vla.optim.low_rank_muon import LowRankMuon
from vla.optim.lr_scale import LR_SCALES, lr_scale_factor
from vla.optim.muon import Muon
from vla.optim.newton_schulz import (
    SCHEDULES,
    NSSchedule,
    get_schedule,
    muon_schedule,
    newton_schulz,
    pion_schedule,
    register_schedule,
    scalar_filter,
)
from vla.optim.pion import Pion
from vla.optim.routed import RoutedOptimizer
from vla.optim.routing import PRESETS, Rule, route_parameters

__all__ = [
    "LR_SCALES",
    "PRESETS",
    "RoutedOptimizer",
    "Rule",
    "build_optimizer",
    "route_parameters",
    "SCHEDULES",
    "HeadSplit",
    "LowRankMuon",
    "Muon",
    "NSSchedule",
    "Pion",
    "find_attention_heads",
    "get_schedule",
    "head_param_groups",
    "low_rank_filter",
    "lr_scale_factor",
    "muon_schedule",
    "newton_schulz",
    "pion_schedule",
    "rank_bound",
    "register_schedule",
    "scalar_filter",
]
