"""The batched augmentation equals torchvision's per-image operations it replaces."""

import colorsys

import torch
import torchvision.transforms.v2.functional as TF

from vla.models.augment import Jitter, adjust_saturation_hue, augment_batch, crop_resize


def _images(b=6, s=24, seed=0):
    return torch.rand((b, 3, s, s), generator=torch.Generator().manual_seed(seed))


def test_crop_resize_matches_torchvision_resize_of_each_crop():
    x = _images()
    side = 21  # offsets 0..3
    top, left = torch.tensor([0, 1, 2, 0, 2, 1]), torch.tensor([2, 0, 1, 1, 0, 2])
    out = crop_resize(x, top, left, side)
    for i in range(x.shape[0]):
        crop = x[i, :, top[i] : top[i] + side, left[i] : left[i] + side]
        ref = TF.resize(crop, [24, 24], interpolation=TF.InterpolationMode.BILINEAR, antialias=True)
        torch.testing.assert_close(out[i], ref.clamp(0, 1), atol=2e-6, rtol=0)


def test_hue_matches_torchvision_and_saturation_matches_colorsys():
    x = _images(b=4, s=6)
    shifts = torch.tensor([-0.05, 0.05, 0.5, -0.3])
    hue = adjust_saturation_hue(x, torch.ones(4), shifts)
    for i in range(4):
        torch.testing.assert_close(hue[i], TF.adjust_hue(x[i], float(shifts[i])), atol=1e-5, rtol=0)
    factors = torch.tensor([0.8, 1.2, 0.0, 3.0])
    sat = adjust_saturation_hue(x, factors, torch.zeros(4))
    for i in range(4):  # tf.image.adjust_saturation: HSV saturation scaled, clipped to [0, 1]
        for r, c in [(0, 0), (2, 5), (5, 3)]:
            h, sv, v = colorsys.rgb_to_hsv(*x[i, :, r, c].tolist())
            want = colorsys.hsv_to_rgb(h, min(1.0, sv * float(factors[i])), v)
            torch.testing.assert_close(sat[i, :, r, c], torch.tensor(want), atol=1e-5, rtol=0)
    grey = torch.full((1, 3, 4, 4), 0.4)
    assert torch.allclose(adjust_saturation_hue(grey, torch.tensor([1.2]), torch.tensor([0.3])), grey)


def test_augment_batch_is_the_per_image_pipeline_with_one_draw_per_batch():
    x, side = _images(b=5), 22
    jitter = Jitter(brightness=0.2, contrast=(0.8, 1.2), saturation=(0.8, 1.2), hue=0.05)
    out = augment_batch(x, side, jitter, torch.Generator().manual_seed(3))
    u = torch.rand((5, 6), generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    for i in range(5):
        top, left = int(u[i, 0] * 3), int(u[i, 1] * 3)
        img = x[i, :, top : top + side, left : left + side]
        img = TF.resize(img, [24, 24], interpolation=TF.InterpolationMode.BILINEAR, antialias=True).clamp(
            0, 1
        )
        img = (img + float(-0.2 + 0.4 * u[i, 2])).clamp(0, 1)
        mean = img.mean(dim=(-2, -1), keepdim=True)
        img = ((img - mean) * float(0.8 + 0.4 * u[i, 3]) + mean).clamp(0, 1)
        sat, hue = torch.tensor([0.8 + 0.4 * u[i, 4]]), torch.tensor([-0.05 + 0.1 * u[i, 5]])
        img = adjust_saturation_hue(img[None], sat, hue)[0]
        torch.testing.assert_close(out[i], img, atol=1e-5, rtol=0)
    again = augment_batch(x, side, jitter, torch.Generator().manual_seed(3))
    assert torch.equal(out, again)
    assert not torch.equal(out, augment_batch(x, side, jitter, torch.Generator().manual_seed(4)))


def test_crops_land_everywhere_and_stay_in_range():
    x = _images(b=64, s=16)
    jitter = Jitter(brightness=0.2, contrast=(0.8, 1.2), saturation=(0.8, 1.2), hue=0.05)
    out = augment_batch(x, 12, jitter, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    u = torch.rand((64, 6), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    tops = set((u[:, 0] * 5).long().tolist())
    assert tops == {0, 1, 2, 3, 4}  # every valid offset (16 - 12 + 1 = 5) is used
