"""Draw every synthetic mask style and placement (and the hard negatives) on the bundled astronaut photo
(public domain, NASA): docs/synth-samples.png.

    .venv/bin/python tools/synth_grid.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from maskwatch.detect.detector import CenterFace
from maskwatch.synth.draw import sample_grid

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    photo = Image.open(ROOT / "src" / "maskwatch" / "assets" / "samples" / "astronaut.jpg").convert("RGB")
    faces = CenterFace(box_fit=None).detect(np.asarray(photo))
    grid = sample_grid(photo, faces.boxes[0], faces.landmarks[0], seed=0)
    out = ROOT / "docs" / "synth-samples.png"
    grid.save(out, optimize=True)
    print(out, out.stat().st_size, grid.size)


if __name__ == "__main__":
    main()
