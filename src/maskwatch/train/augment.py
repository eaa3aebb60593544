"""Image transforms: one evaluation transform and three training presets (torchvision v2).

The presets aim at faces the training sets do not show: real scenes, where faces are small,
blurred, JPEG-compressed, oddly lit and partly hidden.

- ``none``:   resize only (as evaluation).
- ``light``:  random-resized crop (scale 0.75-1), horizontal flip, mild colour jitter.
- ``strong``: random-resized crop (scale 0.5-1), flip, small rotation, strong colour jitter,
              grayscale, Gaussian blur, low-resolution simulation (half the time: down to 12-56 px
              and back up),
              random erasing.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import torch
from PIL import Image
from torchvision.transforms import InterpolationMode, v2

PRESETS = ("none", "light", "strong")
# Bump when a preset changes: cached frozen-backbone features of augmented views depend on it.
PRESETS_VERSION = 2


class RandomLowResolution:
    """With probability ``p``, shrink the image to a side of ``min_side``..``max_side`` pixels and
    scale it back: the blur and blockiness of a small face in a wide photo."""

    def __init__(self, p: float = 0.3, min_side: int = 16, max_side: int = 64) -> None:
        self.p, self.min_side, self.max_side = p, min_side, max_side

    def __call__(self, img: Image.Image) -> Image.Image:
        if random.random() >= self.p:
            return img
        side = random.randint(self.min_side, self.max_side)
        w, h = img.size
        scale = side / max(w, h)
        if scale >= 1:
            return img
        small = img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.BILINEAR)
        return small.resize((w, h), Image.BILINEAR)


def _to_tensor(mean: Sequence[float], std: Sequence[float]) -> list:
    return [v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))]


def eval_transform(size: int, mean: Sequence[float], std: Sequence[float]) -> v2.Compose:
    """Squash to ``size`` x ``size`` (face crops are near-square; nothing is cut off)."""
    return v2.Compose(
        [v2.Resize((size, size), interpolation=InterpolationMode.BILINEAR, antialias=True), *_to_tensor(mean, std)]
    )


def train_transform(preset: str, size: int, mean: Sequence[float], std: Sequence[float]) -> v2.Compose:
    if preset == "none":
        return eval_transform(size, mean, std)
    if preset == "light":
        return v2.Compose(
            [
                v2.RandomResizedCrop(size, scale=(0.75, 1.0), ratio=(0.85, 1.18), antialias=True),
                v2.RandomHorizontalFlip(),
                v2.ColorJitter(0.2, 0.2, 0.2, 0.02),
                *_to_tensor(mean, std),
            ]
        )
    if preset == "strong":
        return v2.Compose(
            [
                RandomLowResolution(p=0.5, min_side=12, max_side=max(24, size // 4)),
                v2.RandomResizedCrop(size, scale=(0.5, 1.0), ratio=(0.8, 1.25), antialias=True),
                v2.RandomHorizontalFlip(),
                v2.RandomApply([v2.RandomRotation(15)], p=0.3),
                v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.4, 0.05)], p=0.8),
                v2.RandomGrayscale(p=0.1),
                v2.RandomApply([v2.GaussianBlur(5, sigma=(0.1, 2.0))], p=0.2),
                *_to_tensor(mean, std),
                v2.RandomErasing(p=0.25, scale=(0.02, 0.15), value=0),
            ]
        )
    raise ValueError(f"unknown augmentation preset '{preset}' (use {', '.join(PRESETS)})")
