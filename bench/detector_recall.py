"""Face-detector settings: recall, precision and speed of CenterFace on a Pascal VOC scene set, per input size,
tiling and threshold, side by side in one run (how maskwatch's detector defaults were chosen).

Choose on scenes the classifier is not scored on: ``--exclude-split RUN`` drops the scenes of RUN's test split.
Boxes are framed as the detector's defaults frame them (``BOX_FIT``); ``--raw-boxes`` scores the network's own.

    .venv/bin/python bench/detector_recall.py --data ../shared/datasets/face-mask-scenes-853 \
        --exclude-split runs/default-v1 --sizes 0,640,800,1024 --tiles 0,2 --thresholds 0.25,0.3,0.35,0.4,0.5
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from maskwatch.data.images import open_rgb
from maskwatch.data.voc import read_voc
from maskwatch.detect.detector import CenterFace
from maskwatch.evaluate.detection import match_faces
from maskwatch.evaluate.scenes import split_scenes
from maskwatch.progress import track


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--exclude-split", type=Path, help="run or split folder whose test scenes are left out")
    ap.add_argument("--sizes", default="0,640,800,1024")
    ap.add_argument("--tiles", default="0")
    ap.add_argument("--thresholds", default="0.3,0.35,0.4,0.5")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--raw-boxes", action="store_true", help="CenterFace's own boxes (box_fit=None)")
    args = ap.parse_args()

    scenes, _ = read_voc(args.data)
    if args.exclude_split:
        test, _ = split_scenes(args.exclude_split, "test")
        scenes = [s for s in scenes if s.image_path.name not in test]
    if args.limit:
        scenes = scenes[: args.limit]
    images = [np.asarray(open_rgb(s.image_path)) for s in scenes]
    gts = [np.array([o.box for o in s.objects], np.float32).reshape(-1, 4) for s in scenes]
    n_gt = sum(len(g) for g in gts)
    thresholds = [float(t) for t in args.thresholds.split(",")]
    print(f"{len(scenes)} scenes, {n_gt} faces")
    print(f"{'size':>5} {'tiles':>5} {'thr':>5} {'R@.5':>7} {'R@.3':>7} {'P@.5':>7} {'P@.3':>7} {'ms/img':>7}")
    for size in (int(v) for v in args.sizes.split(",")):
        for tiles in (int(v) for v in args.tiles.split(",")):
            fit = {"box_fit": None} if args.raw_boxes else {}
            det = CenterFace(size=size, threshold=min(thresholds), tiles=tiles, **fit)
            det.detect(images[0])
            start = time.perf_counter()
            found = [det.detect(im) for im in track(images, f"size {size} tiles {tiles}")]
            ms = (time.perf_counter() - start) / len(images) * 1000
            for thr in thresholds:
                row = []
                for iou in (0.5, 0.3):
                    tp = fp = 0
                    for g, f in zip(gts, found, strict=True):
                        keep = f.scores >= thr
                        matched = match_faces(g, f.boxes[keep], f.scores[keep], iou)
                        hits = int((matched >= 0).sum())
                        tp += hits
                        fp += int(keep.sum()) - hits
                    row.append((tp / n_gt, tp / max(tp + fp, 1)))
                print(
                    f"{size:>5} {tiles:>5} {thr:>5.2f} {row[0][0]:>7.4f} {row[1][0]:>7.4f} "
                    f"{row[0][1]:>7.4f} {row[1][1]:>7.4f} {ms:>7.1f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
