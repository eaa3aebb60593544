"""Fit the detector's box framing (``BOX_FIT`` in detect/defaults.py) to a Pascal VOC set's face annotations.

CenterFace frames a face from the hairline to under the mouth; face-mask annotators frame it from the brows to the
chin. This runs CenterFace with its own boxes (``box_fit=None``) on the fitting scenes, then searches a grid of
(width scale, height scale, downward shift as a share of the height) for the largest face recall at IoU 0.5, and
reports recall and precision with and without the fit on the fitting scenes and on the check scenes. Fit on
training scenes only: ``--exclude`` the scene lists of the validation and test parts (the check scenes are the
first excluded list).

    .venv/bin/python tools/fit_face_boxes.py --data ../shared/datasets/face-mask-scenes-853 \
        --exclude docs/results/val-scenes-853.txt --exclude docs/results/heldout-scenes-853.txt
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np

from maskwatch.data.images import open_rgb
from maskwatch.data.voc import read_voc
from maskwatch.detect.defaults import BOX_FIT
from maskwatch.detect.detector import CenterFace, fit_boxes
from maskwatch.evaluate.detection import match_faces
from maskwatch.evaluate.scenes import split_scenes
from maskwatch.progress import track

Found = list[tuple[np.ndarray, np.ndarray, np.ndarray]]  # per scene: ground-truth boxes, boxes, scores


def recall_precision(found: Found, fit: tuple[float, float, float] | None, iou: float = 0.5) -> tuple[float, float]:
    hits = n_gt = n_pred = 0
    for gt, boxes, scores in found:
        if fit is not None and len(boxes):
            boxes = fit_boxes(boxes, fit)
        hits += int((match_faces(gt, boxes, scores, iou) >= 0).sum())
        n_gt += len(gt)
        n_pred += len(boxes)
    return hits / max(n_gt, 1), hits / max(n_pred, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="Pascal VOC folder")
    ap.add_argument("--exclude", type=Path, action="append", default=[], help="scene list (or run) not to fit on")
    ap.add_argument("--widths", default="1.0,1.05,1.1,1.15,1.2")
    ap.add_argument("--heights", default="0.9,0.95,1.0,1.05,1.1")
    ap.add_argument("--shifts", default="0.0,0.04,0.08,0.1,0.12,0.14,0.16")
    args = ap.parse_args()

    scenes, _ = read_voc(args.data)
    excluded = [split_scenes(p, "test")[0] for p in args.exclude]
    check = excluded[0] if excluded else set()
    detector = CenterFace(box_fit=None)
    fitting: Found = []
    checking: Found = []
    for scene in track(scenes, "detecting faces"):
        name = scene.image_path.name
        if any(name in e for e in excluded) and name not in check:
            continue
        faces = detector.detect(np.asarray(open_rgb(scene.image_path)))
        gt = np.array([o.box for o in scene.objects], np.float32).reshape(-1, 4)
        (checking if name in check else fitting).append((gt, faces.boxes, faces.scores))
    grid = itertools.product(*(map(float, v.split(",")) for v in (args.widths, args.heights, args.shifts)))
    best = max(grid, key=lambda fit: recall_precision(fitting, fit)[0])
    print(f"fitting scenes: {len(fitting)} ({sum(len(g) for g, _, _ in fitting)} faces); check scenes: {len(checking)}")
    print(f"best fit on the fitting scenes: width x{best[0]:.2f}, height x{best[1]:.2f}, down {best[2]:.2f} of height")
    print(f"{'boxes':<24} {'part':<8} {'R@.5':>7} {'P@.5':>7} {'R@.3':>7}")
    for label, fit in (("CenterFace's own", None), (f"fitted {best}", best), (f"BOX_FIT {BOX_FIT}", BOX_FIT)):
        for part, found in (("fitting", fitting), ("check", checking)):
            if not found:
                continue
            r5, p5 = recall_precision(found, fit)
            r3, _ = recall_precision(found, fit, 0.3)
            print(f"{label:<24} {part:<8} {r5:>7.4f} {p5:>7.4f} {r3:>7.4f}")


if __name__ == "__main__":
    main()
