"""Make the bundled sample photos in src/maskwatch/assets/samples/ from public-domain images that ship inside
PyPI packages (no image from ../shared):

- scikit-image's ``astronaut.png`` (NASA portrait of Eileen Collins, public domain),
- matplotlib's ``grace_hopper.jpg`` (US Navy portrait of Grace Hopper, public domain).

Masks are drawn on them from the face detector's landmarks by maskwatch's synthetic-mask code
(``maskwatch.synth.draw``): a light-blue pleated surgical mask worn correctly or pulled under the nose.

    .venv/bin/python tools/make_samples.py
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import numpy as np
import skimage
from PIL import Image

from maskwatch.detect.detector import CenterFace
from maskwatch.synth import draw as synth_draw

OUT = Path(__file__).resolve().parent.parent / "src" / "maskwatch" / "assets" / "samples"
ASTRONAUT = Path(skimage.__file__).parent / "data" / "astronaut.png"
HOPPER = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"


def draw_mask(image: Image.Image, box: np.ndarray, lms: np.ndarray, placement: str) -> Image.Image:
    """A light-blue pleated surgical mask, drawn by maskwatch's own synthetic-mask code."""
    drawn, _ = synth_draw.draw_mask(
        image,
        box,
        lms,
        style="surgical",
        placement=placement,
        color=synth_draw.PALETTE["light_blue"],
        pattern="pleats",
        rng=np.random.default_rng(0),
    )
    return drawn


def main() -> None:
    os.environ.setdefault("MASKWATCH_QUIET", "1")
    OUT.mkdir(parents=True, exist_ok=True)
    det = CenterFace(box_fit=None)  # the mask geometry was fitted to the network's own boxes
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
