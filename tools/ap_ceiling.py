"""AP50 a perfect classifier would reach with the same detections: an `evaluate-detect` run's predictions with every
face matched to a ground-truth face (IoU >= 0.5) given its true class with probability 1; unmatched detections keep
their scores. Tells how much of a class's AP the classifier can still win. With ``--min-size S`` the classifier is
perfect only on faces whose annotated box has a longer side of at least S pixels, and keeps its own probabilities on
smaller ones: the most that any model which only improves faces of S px and more can reach. ``--unmatched-too``
adds, for each S, the same with every detection of S px or more that matches no annotated face scored 0 for every
class (as if the pipeline also dropped what is not a face). The JSON lines keep 4 decimals, so "actual" can differ a
little from the run's metrics.json where rounding ties scores.

    .venv/bin/python tools/ap_ceiling.py runs/ablation-synth/test-final/default-v1 \
        --data ../shared/datasets/face-mask-scenes-853 --split-from docs/results/heldout-scenes-853.txt \
        --min-size 20 --min-size 32 --unmatched-too
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from maskwatch.evaluate.detection import Prediction, box_iou, detection_metrics
from maskwatch.evaluate.scenes import SceneScores, read_scene_report, split_scenes


def _longer_side(boxes: np.ndarray) -> np.ndarray:
    return np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])


def _perfect(read: SceneScores, labels: list[str], min_size: float, *, unmatched: bool = False) -> list[Prediction]:
    """The run's predictions, each face matched to a ground-truth face of at least min_size px (longer side) given
    its true class with probability 1; with ``unmatched``, detections of at least min_size px that match no
    ground-truth face get probability 0 for every class."""
    oracle = []
    for g, p in zip(read.gts, read.preds, strict=True):
        best = p.probs.copy()
        iou = box_iou(p.boxes, g.boxes) if len(p.boxes) and len(g.labels) else np.zeros((len(p.boxes), 1))
        truth_sizes = _longer_side(g.boxes.reshape(-1, 4))
        own_sizes = _longer_side(p.boxes.reshape(-1, 4))
        for i in range(len(p.boxes)):
            j = int(iou[i].argmax())
            if iou[i, j] >= 0.5:
                if g.labels[j] in labels and truth_sizes[j] >= min_size:
                    best[i] = 0.0
                    best[i, labels.index(g.labels[j])] = 1.0
            elif unmatched and own_sizes[i] >= min_size:
                best[i] = 0.0
        oracle.append(
            Prediction(
                p.image_id, p.boxes, p.det_scores, [labels[k] for k in best.argmax(1)], best.max(1, initial=0), best
            )
        )
    return oracle


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("report", type=Path, help="evaluate-detect folder (metrics.json + predictions.jsonl)")
    ap.add_argument("--data", type=Path, required=True, help="the VOC set it was run on")
    ap.add_argument("--split-from", type=Path, required=True)
    ap.add_argument("--min-size", type=float, action="append", default=[], help="also: perfect only on faces >= S px")
    ap.add_argument("--unmatched-too", action="store_true", help="also: unmatched detections >= S px scored 0")
    args = ap.parse_args()
    read = read_scene_report(args.report, args.data)
    labels = read.metrics["pipeline"]["classifier"]["labels"]
    keep, _ = split_scenes(args.split_from, "test")
    outside = sorted(g.image_id for g in read.gts if g.image_id not in keep)
    if outside:
        raise SystemExit(f"{args.report} holds {len(outside)} scenes not in {args.split_from}, e.g. {outside[0]}")
    runs = [("actual", read.preds), ("perfect classifier", _perfect(read, labels, 0.0))]
    for size in args.min_size:
        runs.append((f"perfect on >= {size:g} px", _perfect(read, labels, size)))
        if args.unmatched_too:
            runs.append((f"+ unmatched >= {size:g} px at 0", _perfect(read, labels, size, unmatched=True)))
    for name, preds in runs:
        m = detection_metrics(read.gts, preds, labels)
        print(f"{name:>26}: " + ", ".join(f"{c} {v:.4f}" for c, v in m["ap50"].items()))


if __name__ == "__main__":
    main()
