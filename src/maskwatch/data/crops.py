"""Square face crops with a margin: the one crop function used for training data and inference."""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image


def square_box(box: Sequence[float], margin: float) -> tuple[int, int, int, int]:
    """The square around ``box`` ([x1, y1, x2, y2]) whose side is the box's longer side plus
    ``margin`` times that side on each edge, centred on the box (may extend past the image)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    side = max(x2 - x1, y2 - y1) * (1 + 2 * margin)
    half = side / 2
    left, top = round(cx - half), round(cy - half)
    size = max(1, round(side))
    return left, top, left + size, top + size


def crop_square(image: Image.Image, box: Sequence[float], margin: float = 0.15) -> Image.Image:
    """Crop the square around ``box``; parts outside the image are filled with black."""
    return image.crop(square_box(box, margin))
