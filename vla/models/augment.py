"""Train-time image augmentation, batched: one random crop + colour jitter per image, no Python loop.

    x = augment_batch(x, side, jitter, generator)      # float (B, 3, S, S) in [0, 1] -> same shape

Per image, in dlimp's order (models.md §1.6), each step clipped to [0, 1]:
  1. a random square crop of `side` pixels at a random place, resized back to S with bilinear interpolation
     (the crop is smaller than S, so this is an upsampling and equals torchvision's antialiased resize);
  2. additive brightness in [-b, b];
  3. contrast: (x - per-channel mean) * f + mean, f in `contrast`;
  4. saturation: HSV saturation × f, f in `saturation`, clipped (tf.image.adjust_saturation, as dlimp);
  5. hue: HSV hue + h, h in [-hue, hue] of the colour wheel (tf.image.adjust_hue; = torchvision's).
Steps 4 and 5 share one HSV round trip.
All random numbers of a batch come from one (B, 6) draw of `generator`, so a batch is reproducible from the
generator state alone, whatever the batch size was before it.

The crop + resize is one grid_sample over the batch and the colour steps are elementwise with per-image
factors (benchmarks/train_step.py measures the processor's share of the training step).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Jitter:
    """Colour-jitter ranges (ProcessorConfig's brightness / contrast / saturation / hue)."""

    brightness: float
    contrast: tuple[float, float]
    saturation: tuple[float, float]
    hue: float


def augment_batch(
    x: torch.Tensor, side: int, jitter: Jitter, generator: torch.Generator | None
) -> torch.Tensor:
    """float (B, 3, S, S) in [0, 1] -> randomly cropped, resized back and colour-jittered (module docstring)."""
    b, s = x.shape[0], x.shape[-1]
    u = torch.rand((b, 6), generator=generator, dtype=torch.float64)
    span = s - side + 1
    top = (u[:, 0] * span).long().clamp(max=span - 1)
    left = (u[:, 1] * span).long().clamp(max=span - 1)
    x = crop_resize(x, top, left, side)
    x = (x + _scale(u[:, 2], -jitter.brightness, jitter.brightness)).clamp(0, 1)
    mean = x.mean(dim=(-2, -1), keepdim=True)
    x = ((x - mean) * _scale(u[:, 3], *jitter.contrast) + mean).clamp(0, 1)
    return adjust_saturation_hue(
        x, _scale(u[:, 4], *jitter.saturation).view(-1), _scale(u[:, 5], -jitter.hue, jitter.hue).view(-1)
    )


def _scale(u: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    return (lo + (hi - lo) * u).float().view(-1, 1, 1, 1)


def crop_positions(offset: torch.Tensor, side: int, out: int) -> torch.Tensor:
    """(B, out) source pixel positions of a crop [offset, offset + side) resized to `out` pixels.

    Half-pixel centres (align_corners=False), clamped to the crop as in a resize of the cropped image."""
    pos = (torch.arange(out, dtype=torch.float64) + 0.5) * (side / out) - 0.5
    return pos.clamp(0, side - 1).view(1, -1) + offset.view(-1, 1).to(torch.float64)


def crop_resize(x: torch.Tensor, top: torch.Tensor, left: torch.Tensor, side: int) -> torch.Tensor:
    """Per-image square crops (top/left: (B,) ints) resized back to the input size, bilinear.

    One grid_sample over the whole batch: every output pixel reads the 4 input pixels around its source
    position (align_corners=True makes the normalised grid address pixel centres exactly)."""
    b, _, h, w = x.shape
    s = x.shape[-1]
    if side == s:
        return x
    ys = crop_positions(top, side, s) * (2.0 / (h - 1)) - 1.0  # (B, S)
    xs = crop_positions(left, side, s) * (2.0 / (w - 1)) - 1.0
    grid = torch.stack(torch.broadcast_tensors(xs.view(b, 1, s), ys.view(b, s, 1)), dim=-1).to(x.dtype)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=True).clamp_(0, 1)


def adjust_saturation_hue(x: torch.Tensor, factor: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """In HSV: saturation × `factor` (clipped to [0, 1]) and hue + `shift` (fractions of the colour wheel).

    tf.image's adjust_saturation and adjust_hue, which dlimp applies one after the other, done in one HSV
    round trip (the RGB in between is already in [0, 1], so the clip between them changes nothing)."""
    h, s, v = _rgb_to_hsv(x)
    s = (s * factor.view(-1, 1, 1).to(s.dtype)).clamp_(0.0, 1.0)
    h = torch.remainder(h + shift.view(-1, 1, 1).to(h.dtype), 1.0)
    return _hsv_to_rgb(h, s, v).clamp_(0.0, 1.0)


def _rgb_to_hsv(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r, g, b = x.unbind(dim=1)
    maxc, minc = x.amax(dim=1), x.amin(dim=1)
    delta = maxc - minc
    s = delta / maxc.clamp(min=1e-12)  # 0 for black
    d = delta.clamp(min=1e-12)  # grey pixels: every difference below is 0, so h = 0
    h = torch.where(maxc == r, (g - b) / d, torch.where(maxc == g, 2.0 + (b - r) / d, 4.0 + (r - g) / d))
    return torch.remainder(h / 6.0, 1.0), s, maxc


def _hsv_to_rgb(h: torch.Tensor, s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Channel n in (5, 3, 1) for (R, G, B): v - v·s·clamp(min(k, 4 - k), 0, 1), k = (n + 6h) mod 6."""
    h6, vs = h * 6.0, v * s
    out = []
    for n in (5.0, 3.0, 1.0):
        k = torch.remainder(h6 + n, 6.0)
        out.append(v - vs * torch.minimum(k, 4.0 - k).clamp_(0.0, 1.0))
    return torch.stack(out, dim=1)


__all__ = ["Jitter", "adjust_saturation_hue", "augment_batch", "crop_resize"]
