"""A Pascal VOC scene set with its images and boxes scaled by one factor (Lanczos): to score models on scenes whose
faces have the size of another part's. Reads only the scenes named in ``--scenes`` (a scene list as written by
``evaluate-detect``, or ``docs/results/val-scenes-853.txt``), if given; writes a new set, never over its source.

    .venv/bin/python tools/scale_voc.py ../shared/datasets/face-mask-scenes-853 runs/s7/val-x0.7 \
        --factor 0.7 --scenes docs/results/val-scenes-853.txt
"""

from __future__ import annotations

import argparse
import xml.etree.ElementTree as ET
from pathlib import Path

from PIL import Image

from maskwatch.data.voc import read_voc
from maskwatch.evaluate.scenes import split_scenes


def scale_voc(src: Path, out: Path, factor: float, scenes: set[str] | None = None) -> int:
    """Write the scaled set to ``out`` (images/ and annotations/); returns the number of scenes written."""
    if not 0 < factor <= 1:
        raise SystemExit(f"--factor must be in (0, 1], got {factor}")
    if out.exists() and any(out.iterdir()):
        raise SystemExit(f"{out} is not empty")
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "annotations").mkdir(exist_ok=True)
    written = 0
    for item in read_voc(src)[0]:
        if scenes is not None and item.image_path.name not in scenes:
            continue
        tree = ET.parse(item.annotation_path)
        root = tree.getroot()
        with Image.open(item.image_path) as img:
            rgb = img.convert("RGB")
        w, h = rgb.size
        size = (max(1, round(w * factor)), max(1, round(h * factor)))
        rgb.resize(size, Image.LANCZOS).save(out / "images" / item.image_path.name, quality=95)
        sx, sy = size[0] / w, size[1] / h
        node = root.find("size")
        if node is not None:
            for key, value in (("width", size[0]), ("height", size[1])):
                if node.find(key) is not None:
                    node.find(key).text = str(value)  # type: ignore[union-attr]
        for box in root.iter("bndbox"):
            for key, s in (("xmin", sx), ("xmax", sx), ("ymin", sy), ("ymax", sy)):
                box.find(key).text = f"{float(box.findtext(key)) * s:.1f}"  # type: ignore[union-attr,arg-type]
        tree.write(out / "annotations" / item.annotation_path.name)
        written += 1
    return written


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src", type=Path, help="VOC set (images/ + annotations/)")
    ap.add_argument("out", type=Path, help="new folder for the scaled set")
    ap.add_argument("--factor", type=float, required=True, help="scale of images and boxes, e.g. 0.7")
    ap.add_argument("--scenes", type=Path, help="only the scenes in this list (one image name per line)")
    args = ap.parse_args()
    scenes = split_scenes(args.scenes, "test")[0] if args.scenes else None
    print(f"{scale_voc(args.src, args.out, args.factor, scenes)} scenes written to {args.out}")


if __name__ == "__main__":
    main()
