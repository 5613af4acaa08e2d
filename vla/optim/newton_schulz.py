"""Newton–Schulz iteration as a spectral filter, with coefficient schedules kept as data.

One Newton–Schulz step with coefficients (a, b, c) replaces a matrix X = U Σ Vᵀ by

    X ← a·X + b·(X Xᵀ) X + c·(X Xᵀ)² X  =  U · (aΣ + bΣ³ + cΣ⁵) · Vᵀ,

so it never touches the singular vectors and maps every singular value through the same odd
quintic p(σ) = aσ + bσ³ + cσ⁵. A *schedule* is the list of per-step triples; running it composes
the quintics into one scalar filter F. Muon's schedule whitens (F ≈ 1 on (0, 1]); Pion's schedule
is a high-pass (F ≈ 0 below a cut-off, ≈ 1 above it). Which one runs is a matter of data only:

    muon = get_schedule("muon")                      # (3.4445, −4.7750, 2.0315) × 5
    pion = get_schedule("pion", promotion_steps=1)   # 1 Promotion step, then 4 Suppression steps
    out = newton_schulz(grad, pion)                  # same shape as grad, grad's dtype

The matrix arithmetic runs in bfloat16 (as in every reference implementation); `scalar_filter`
evaluates the same composed map on plain numbers in float64, which is what the tests compare with.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

Coefficients = tuple[float, float, float]

MUON_QUINTIC: Coefficients = (3.4445, -4.7750, 2.0315)
# Pion's two stages (reference §2.7): Promotion lifts small σ towards 1 while keeping 1 fixed and flat;
# Suppression has 0 and 1 as flat fixed points and pushes everything below σ* = sqrt(2/3) to 0.
PROMOTION: Coefficients = (1.875, -1.25, 0.375)
SUPPRESSION: Coefficients = (0.0, 2.5, -1.5)
POLAR_EXPRESS: tuple[Coefficients, ...] = (
    (8.156554524902461, -22.48329292557795, 15.878769915207462),
    (4.042929935166739, -2.808917465908714, 0.5000178451051316),
    (3.8916678022926607, -2.772484153217685, 0.5060648178503393),
    (3.285753657755655, -2.3681294933425376, 0.46449024233003106),
    (2.3465413258596377, -1.7097828382687081, 0.42323551169305323),
)


@dataclass(frozen=True)
class NSSchedule:
    """A Newton–Schulz schedule: one (a, b, c) triple per step, applied in order.

    `norm_margin` divides the Frobenius pre-normalisation by an extra factor (Polar Express uses
    1.02 so rounding never pushes σ₁ above 1); 1.0 for every other schedule.
    """

    name: str
    steps: tuple[Coefficients, ...]
    norm_margin: float = 1.0

    def __post_init__(self) -> None:
        for triple in self.steps:
            if len(triple) != 3:
                raise ValueError(f"schedule {self.name!r}: every step needs 3 coefficients, got {triple}")
        if self.norm_margin <= 0:
            raise ValueError(f"norm_margin must be > 0, got {self.norm_margin}")

    def __len__(self) -> int:
        return len(self.steps)


def muon_schedule(ns_steps: int = 5, coefficients: Coefficients = MUON_QUINTIC) -> NSSchedule:
    """Muon: the same quintic repeated `ns_steps` times."""
    if ns_steps < 1:
        raise ValueError(f"ns_steps must be >= 1, got {ns_steps}")
    return NSSchedule("muon", (tuple(float(x) for x in coefficients),) * ns_steps)


def pion_schedule(promotion_steps: int = 0, ns_steps: int = 5) -> NSSchedule:
    """Pion: `promotion_steps` (k_p) Promotion steps, then k_s = ns_steps − k_p Suppression steps."""
    if ns_steps < 1:
        raise ValueError(f"ns_steps must be >= 1, got {ns_steps}")
    if not 0 <= promotion_steps <= ns_steps:
        raise ValueError(f"promotion_steps must be in [0, ns_steps={ns_steps}], got {promotion_steps}")
    steps = (PROMOTION,) * promotion_steps + (SUPPRESSION,) * (ns_steps - promotion_steps)
    return NSSchedule(f"pion_kp{promotion_steps}", steps)


def polar_express_schedule() -> NSSchedule:
    """Polar Express, 5 steps, input divided by 1.02·‖X‖_F (as in modded-nanogpt and dion)."""
    return NSSchedule("polar_express", POLAR_EXPRESS, norm_margin=1.02)


SCHEDULES: dict[str, Callable[..., NSSchedule]] = {
    "muon": muon_schedule,
    "pion": pion_schedule,
    "polar_express": polar_express_schedule,
}


def register_schedule(name: str, factory: Callable[..., NSSchedule]) -> None:
    """Make a schedule selectable by name (e.g. from a config file)."""
    if name in SCHEDULES:
        raise ValueError(f"schedule {name!r} is already registered")
    SCHEDULES[name] = factory


def get_schedule(spec: str | NSSchedule | Sequence[Sequence[float]], **kwargs) -> NSSchedule:
    """Resolve a schedule given by registry name, as an `NSSchedule`, or as a list of (a, b, c) triples."""
    if isinstance(spec, NSSchedule):
        return spec
    if isinstance(spec, str):
        if spec not in SCHEDULES:
            raise ValueError(f"unknown Newton–Schulz schedule {spec!r}; known: {sorted(SCHEDULES)}")
        return SCHEDULES[spec](**kwargs)
    triples = tuple(tuple(float(x) for x in step) for step in spec)
    if not triples:
        raise ValueError("a Newton–Schulz schedule needs at least one step")
    return NSSchedule("custom", triples)


def scalar_filter(sigma: torch.Tensor | float, schedule: NSSchedule) -> torch.Tensor:
    """The composed map F(σ) that `newton_schulz` applies to each singular value, in float64."""
    s = torch.as_tensor(sigma, dtype=torch.float64)
    for a, b, c in schedule.steps:
        s2 = s * s
        s = s * (a + s2 * (b + c * s2))
    return s


def _matmul_add(bias: torch.Tensor, m1: torch.Tensor, m2: torch.Tensor, beta: float, alpha: float = 1.0):
    """beta·bias + alpha·(m1 @ m2), fused (addmm / baddbmm) for 2-D and batched 3-D operands."""
    if m1.ndim == 2:
        return torch.addmm(bias, m1, m2, beta=beta, alpha=alpha)
    return torch.baddbmm(bias, m1, m2, beta=beta, alpha=alpha)


def newton_schulz(
    grad: torch.Tensor,
    schedule: NSSchedule | str | Sequence[Sequence[float]] = "muon",
    eps: float = 1e-7,
    compute_dtype: torch.dtype = torch.bfloat16,
) -> torch.Tensor:
    """Apply the schedule's composed filter to the singular values of `grad` (…, m, n).

    Steps: cast to `compute_dtype`; transpose if m > n so the Gram matrix is min(m, n)²; divide by
    ‖X‖_F·norm_margin + eps over the last two dims (each batch entry on its own; a zero matrix
    stays zero instead of becoming NaN); run the polynomial steps; transpose back and cast to the
    input dtype. Leading dimensions are batch dimensions.
    """
    if grad.ndim < 2:
        raise ValueError(
            f"newton_schulz needs a matrix or a batch of matrices, got shape {tuple(grad.shape)}"
        )
    schedule = get_schedule(schedule)
    batch_shape = grad.shape[:-2]
    x = grad.to(compute_dtype)
    if x.ndim > 3:
        x = x.reshape(-1, *x.shape[-2:])
    transposed = x.size(-2) > x.size(-1)
    if transposed:
        x = x.mT
    norm = x.norm(dim=(-2, -1), keepdim=True)
    x = x / (norm * schedule.norm_margin + eps)
    for a, b, c in schedule.steps:
        gram = x @ x.mT
        poly = _matmul_add(gram, gram, gram, beta=b, alpha=c)  # b·A + c·A²
        x = _matmul_add(x, poly, x, beta=a) if a != 0.0 else poly @ x
    if transposed:
        x = x.mT
    return x.reshape(*batch_shape, *x.shape[-2:]).to(grad.dtype)
