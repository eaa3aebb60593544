"""The detector's input resized with OpenCV (``INTER_AREA`` / ``INTER_LINEAR``, maskwatch before its light install)
or with Pillow (``data/images.resize_rgb``, now), on the same held-out scenes, with the paired bootstrap over scenes
of every AP50 change (docs/results/detection.md, section 6). Needs OpenCV (``opencv-python-headless``, in [dev]).

    .venv/bin/python tools/resize_ab.py [--data ../shared/datasets/face-mask-scenes-853]
        [--split-from docs/results/heldout-scenes-853.txt] [--out runs/resize-ab]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import cv2
import numpy as np

import maskwatch.detect.detector as detector
from maskwatch.detect.pipeline import load_pipeline
from maskwatch.evaluate.bootstrap import bootstrap_ap_change
from maskwatch.evaluate.scenes import evaluate_scenes

ROOT = Path(__file__).resolve().parents[1]


def opencv_resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    shrink = size[0] * size[1] < image.shape[0] * image.shape[1]
    return cv2.resize(image, tuple(size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "datasets" / "face-mask-scenes-853")
    parser.add_argument("--split-from", type=Path, default=ROOT / "docs" / "results" / "heldout-scenes-853.txt")
    parser.add_argument("--out", type=Path, default=Path("runs/resize-ab"))
    args = parser.parse_args()
    os.environ.setdefault("MASKWATCH_QUIET", "1")
    pillow = detector.resize_rgb
    scores = {}
    for name, resize in (("opencv", opencv_resize), ("pillow", pillow)):
        detector.resize_rgb = resize  # the one call the detector makes to resize its input
        scores[name] = evaluate_scenes(args.data, load_pipeline(), args.out / name, split_from=args.split_from)
    detector.resize_rgb = pillow
    a, b = scores["opencv"], scores["pillow"]
    for name, s in scores.items():
        m = s.metrics
        print(
            f"{name}: recall {m['faces']['iou50']['recall']:.4f} / {m['faces']['iou30']['recall']:.4f}, mAP50"
            f" {m['map50']:.4f}, label accuracy {m['label_accuracy']:.4f} ({m['matched_faces']} matched),"
            f" mask vs no mask {m['mask_vs_not_accuracy']:.4f}"
        )
    change = bootstrap_ap_change(a.gts, a.preds, b.preds, list(a.metrics["ap50"]), draws=1000, seed=0)
    for key, c in change.items():
        print(f"pillow - opencv, {key}: {c['change']:+.4f} [{c['low']:+.4f}, {c['high']:+.4f}]")


if __name__ == "__main__":
    main()
