"""Make the bundled sample photos in src/maskwatch/assets/samples/ from public-domain images that ship inside
PyPI packages (no image from ../shared):

- scikit-image's ``astronaut.png`` (NASA portrait of Eileen Collins, public domain),
- matplotlib's ``grace_hopper.jpg`` (US Navy portrait of Grace Hopper, public domain).

Masks are drawn on them procedurally from the face detector's landmarks: a light-blue pleated surgical mask
worn correctly (nose bridge to chin) or pulled under the nose (worn incorrectly).

    .venv/bin/python tools/make_samples.py
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import numpy as np
import skimage
from PIL import Image, ImageDraw, ImageFilter

from maskwatch.detect.detector import CenterFace

OUT = Path(__file__).resolve().parent.parent / "src" / "maskwatch" / "assets" / "samples"
ASTRONAUT = Path(skimage.__file__).parent / "data" / "astronaut.png"
HOPPER = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"


def draw_mask(
    image: Image.Image, box: np.ndarray, lms: np.ndarray, placement: str, color: tuple = (150, 190, 225)
) -> Image.Image:
    """A surgical mask as a soft-edged, shaded polygon. ``placement``: ``correct`` (covers the nose) or
    ``under_nose`` (top edge below the nose tip)."""
    x1, y1, x2, y2 = box
    eye_y = (lms[0, 1] + lms[1, 1]) / 2
    nose_y = lms[2, 1]
    mouth_y = (lms[3, 1] + lms[4, 1]) / 2
    top = eye_y + 0.45 * (nose_y - eye_y) if placement == "correct" else nose_y + 0.35 * (mouth_y - nose_y)
    bottom = y2 + 0.04 * (y2 - y1)
    w = x2 - x1
    left, right = x1 + 0.02 * w, x2 - 0.02 * w
    h = bottom - top
    cx = (left + right) / 2
    poly = [
        (left + 0.1 * w, top),
        (cx, top - 0.06 * h),  # raised over the nose bridge
        (right - 0.1 * w, top),
        (right, top + 0.3 * h),
        (right - 0.06 * w, top + 0.65 * h),
        (right - 0.22 * w, top + 0.92 * h),
        (cx, bottom),
        (left + 0.22 * w, top + 0.92 * h),
        (left + 0.06 * w, top + 0.65 * h),
        (left, top + 0.3 * h),
    ]
    alpha = Image.new("L", image.size, 0)
    ImageDraw.Draw(alpha).polygon(poly, fill=255)
    alpha = alpha.filter(ImageFilter.GaussianBlur(1.5))
    # Shading: the face's own luminance modulates the mask colour (keeps lighting direction).
    lum = np.asarray(image.convert("L"), np.float32) / 255
    shade = 0.65 + 0.45 * lum
    layer = np.clip(np.asarray(color, np.float32)[None, None, :] * shade[..., None], 0, 255).astype(np.uint8)
    layer_img = Image.fromarray(layer)
    draw = ImageDraw.Draw(layer_img)
    for k in (0.3, 0.5, 0.7):  # pleats
        y = top + k * (bottom - top)
        draw.line([(left + 0.04 * w, y), (right - 0.04 * w, y)], fill=tuple(int(c * 0.8) for c in color), width=2)
    for side in (left, right):  # ear loops
        draw.line([(side, top + 0.1 * (bottom - top)), (side, top)], fill=(235, 235, 235), width=2)
    return Image.composite(layer_img, image, alpha)


def main() -> None:
    os.environ.setdefault("MASKWATCH_QUIET", "1")
    OUT.mkdir(parents=True, exist_ok=True)
    det = CenterFace()
    astronaut = Image.open(ASTRONAUT).convert("RGB")
    hopper = Image.open(HOPPER).convert("RGB")

    def face(im: Image.Image) -> tuple[np.ndarray, np.ndarray]:
        found = det.detect(np.asarray(im))
        return found.boxes[0], found.landmarks[0]

    a_box, a_lms = face(astronaut)
    h_box, h_lms = face(hopper)
    astronaut.save(OUT / "astronaut.jpg", quality=88)
    draw_mask(hopper, h_box, h_lms, "correct").save(OUT / "hopper-mask.jpg", quality=88)

    # A group: four faces, three ways of wearing (or not) a mask.
    canvas = Image.new("RGB", (1280, 540), (205, 210, 215))
    tiles = [
        astronaut,
        draw_mask(astronaut, a_box, a_lms, "correct"),
        draw_mask(hopper, h_box, h_lms, "under_nose"),
        hopper,
    ]
    for i, tile in enumerate(tiles):
        t = tile.resize((300, round(300 * tile.height / tile.width)), Image.LANCZOS)
        canvas.paste(t, (20 + i * 315, 60 + (i % 2) * 60))
    canvas.save(OUT / "group.jpg", quality=88)
    (OUT / "LICENSE.md").write_text(
        "# Sample photos\n\nMade by tools/make_samples.py from public-domain images shipped inside PyPI packages:\n\n"
        "- `astronaut.jpg`: scikit-image's `data/astronaut.png`, NASA portrait of astronaut Eileen Collins "
        "(public domain, NASA).\n"
        "- `hopper-mask.jpg`: matplotlib's `sample_data/grace_hopper.jpg`, portrait of Rear Admiral Grace Hopper "
        "(public domain, US Navy), with a drawn surgical mask.\n"
        "- `group.jpg`: both portraits, with and without drawn masks (one pulled under the nose).\n\n"
        "The masks are drawn procedurally; no other image is used.\n",
        encoding="utf-8",
    )
    for p in sorted(OUT.iterdir()):
        print(p, p.stat().st_size)


if __name__ == "__main__":
    main()
