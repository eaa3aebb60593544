"""A generated toy data set of drawn faces (no downloads, no licences): for the demo and the tests.

Faces are skin-toned ovals with eyes, a nose and a mouth; ``with_mask`` faces wear a mask from
the nose bridge to the chin, ``mask_worn_incorrectly`` faces wear it under the nose, and
``without_mask`` faces show nose and mouth. Colours, sizes and positions vary with the seed.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw

from maskwatch.labels import MASK_WORN_INCORRECTLY, WITH_MASK, WITHOUT_MASK

SKIN = [(241, 194, 125), (224, 172, 105), (198, 134, 66), (141, 85, 36), (255, 219, 172), (120, 72, 40)]
MASKS = [(200, 225, 245), (30, 30, 35), (245, 245, 245), (60, 90, 160), (170, 40, 60), (90, 140, 90)]


def draw_face(label: str, size: int, rng: random.Random) -> tuple[Image.Image, tuple[int, int, int, int]]:
    """One face image and the face's box [x1, y1, x2, y2]."""
    bg = tuple(rng.randint(0, 255) for _ in range(3))
    img = Image.new("RGB", (size, size), bg)
    d = ImageDraw.Draw(img)
    for _ in range(6):  # background clutter, so that images have detail as photos do
        x, y, r = rng.uniform(0, size), rng.uniform(0, size), rng.uniform(0.1, 0.4) * size
        d.ellipse((x - r, y - r, x + r, y + r), fill=tuple(rng.randint(0, 255) for _ in range(3)))
    fw = rng.uniform(0.5, 0.7) * size
    fh = fw * rng.uniform(1.15, 1.35)
    cx = size / 2 + rng.uniform(-0.08, 0.08) * size
    cy = size / 2 + rng.uniform(-0.06, 0.06) * size
    box = (round(cx - fw / 2), round(cy - fh / 2), round(cx + fw / 2), round(cy + fh / 2))
    d.ellipse(box, fill=rng.choice(SKIN))
    eye_y = cy - 0.12 * fh
    r = max(1.0, 0.06 * fw)
    for ex in (cx - 0.2 * fw, cx + 0.2 * fw):
        d.ellipse((ex - r, eye_y - r, ex + r, eye_y + r), fill=(25, 25, 25))
    nose_y = cy + 0.08 * fh
    mouth_y = cy + 0.25 * fh
    d.polygon([(cx, cy - 0.02 * fh), (cx - 0.06 * fw, nose_y), (cx + 0.06 * fw, nose_y)], fill=(150, 90, 70))
    d.arc(
        (cx - 0.18 * fw, mouth_y - 0.07 * fh, cx + 0.18 * fw, mouth_y + 0.07 * fh),
        10,
        170,
        fill=(160, 30, 40),
        width=max(1, round(0.04 * fw)),
    )
    if label in (WITH_MASK, MASK_WORN_INCORRECTLY):
        top = cy - 0.04 * fh if label == WITH_MASK else nose_y + 0.05 * fh
        colour = rng.choice(MASKS)
        d.rounded_rectangle((cx - 0.47 * fw, top, cx + 0.47 * fw, cy + 0.45 * fh), radius=0.1 * fw, fill=colour)
        for k in range(1, 3):  # pleats
            y = top + k * (cy + 0.45 * fh - top) / 3
            d.line((cx - 0.4 * fw, y, cx + 0.4 * fw, y), fill=tuple(max(0, c - 40) for c in colour), width=1)
    return img, box


def make_toy_dataset(
    out: str | Path,
    per_class: int = 24,
    size: int = 64,
    seed: int = 0,
    labels: Sequence[str] = (WITH_MASK, WITHOUT_MASK),
    duplicates: int = 0,
) -> Path:
    """Write ``out/<label>/<label>_<i>.png``; ``duplicates`` extra near-copies (JPEG re-encoded,
    slightly brightened) of the first images of each class, named ``<label>_<i>_dup.jpg``."""
    out = Path(out)
    rng = random.Random(seed)
    for label in labels:
        folder = out / label
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            img, _ = draw_face(label, size, rng)
            img.save(folder / f"{label}_{i}.png")
            if i < duplicates:
                img.point(lambda v: min(255, v + 6)).save(folder / f"{label}_{i}_dup.jpg", quality=80)
    return out
