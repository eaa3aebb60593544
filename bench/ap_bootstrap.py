"""AP50 for the bootstrap: maskwatch's own AP (``evaluate.bootstrap.ap50``) vs torchmetrics/pycocotools (what
``evaluate-detect``'s tables use), same scenes, same process, alternating rounds.

The scenes are an ``evaluate-detect`` report (``--report DIR --data VOC``: its predictions.jsonl and the VOC
annotations) or, by default, generated ones shaped like the held-out scenes of face-mask-scenes-853 (123 scenes,
~5 faces each, a rare third class). Prints seconds per AP of each, the ratio, the largest difference between
their APs, and the time of one 1,000-draw paired bootstrap (two models) with maskwatch's AP.

    .venv/bin/python bench/ap_bootstrap.py
    .venv/bin/python bench/ap_bootstrap.py --report runs/boxcal/test-arms/default-v1 \
        --data ../shared/datasets/face-mask-scenes-853
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from maskwatch.evaluate.bootstrap import ap50, bootstrap_ap_change
from maskwatch.evaluate.detection import GroundTruth, Prediction, _map50

CLASSES = ["with_mask", "without_mask", "mask_worn_incorrectly"]


def generated(n: int, seed: int) -> tuple[list[GroundTruth], list[Prediction]]:
    rng = np.random.default_rng(seed)
    gts, preds = [], []
    for i in range(n):
        k = int(rng.integers(1, 10))
        xy = rng.uniform(0, 600, (k, 2))
        boxes = np.hstack([xy, xy + rng.uniform(10, 90, (k, 2))]).astype(np.float32)
        truth = rng.choice(3, k, p=[0.8, 0.17, 0.03])
        gts.append(GroundTruth(f"s{i}", boxes, [CLASSES[t] for t in truth]))
        seen = rng.random(k) < 0.87
        extra = rng.uniform(0, 600, (int(rng.integers(0, 3)), 2))
        found = np.vstack([boxes[seen] + rng.normal(0, 3, (int(seen.sum()), 4)), np.hstack([extra, extra + 25])])
        logits = rng.normal(0, 1, (len(found), 3))
        logits[np.arange(int(seen.sum())), truth[seen]] += 3
        probs = (np.exp(logits) / np.exp(logits).sum(1, keepdims=True)).astype(np.float32)
        preds.append(
            Prediction(
                f"s{i}",
                found.astype(np.float32),
                rng.uniform(0.3, 1, len(found)).astype(np.float32),
                [CLASSES[j] for j in probs.argmax(1)],
                probs.max(1),
                probs,
            )
        )
    return gts, preds


def from_report(report: Path, data: Path) -> tuple[list[GroundTruth], list[Prediction]]:
    from maskwatch.evaluate.scenes import read_scene_report

    read = read_scene_report(report, data)
    labels = read.metrics["pipeline"]["classifier"]["labels"]
    if labels != CLASSES:
        raise SystemExit(f"{report}: labels {labels}, expected {CLASSES}")
    return read.gts, read.preds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--report", type=Path, help="an evaluate-detect report folder (default: generated scenes)")
    ap.add_argument("--data", type=Path, help="the VOC set of --report")
    ap.add_argument("--scenes", type=int, default=123)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--calls", type=int, default=3, help="AP computations per round and method")
    args = ap.parse_args()
    if args.report and not args.data:
        ap.error("--report needs --data")
    gts, preds = from_report(args.report, args.data) if args.report else generated(args.scenes, 0)
    print(f"{len(gts)} scenes, {sum(len(g.labels) for g in gts)} faces, {sum(len(p.boxes) for p in preds)} detections")

    times: dict[str, list[float]] = {"maskwatch": [], "pycocotools": []}
    for _ in range(args.rounds):
        for name in times:
            start = time.perf_counter()
            for _ in range(args.calls):
                out = ap50(gts, preds, CLASSES) if name == "maskwatch" else _map50(gts, preds, CLASSES, top1=False)
            times[name].append((time.perf_counter() - start) / args.calls)
    ours = ap50(gts, preds, CLASSES)
    coco_map, coco_ap, _ = _map50(gts, preds, CLASSES, top1=False)
    diff = max([abs(ours[c] - coco_ap[c]) for c in CLASSES if ours[c] is not None] + [abs(ours["map50"] - coco_map)])
    m, c = statistics.median(times["maskwatch"]), statistics.median(times["pycocotools"])
    print(f"seconds per AP50: maskwatch {m:.4f}, torchmetrics/pycocotools {c:.4f}; speed ratio {c / m:.0f}x")
    print(f"largest |AP difference| (mAP50 and each class): {diff:.2e}")
    _ = out
    other = [Prediction(p.image_id, p.boxes, p.det_scores, p.labels, p.scores, p.probs[:, ::-1].copy()) for p in preds]
    start = time.perf_counter()
    bootstrap_ap_change(gts, preds, other, CLASSES, draws=1000)
    took = time.perf_counter() - start
    print(f"paired bootstrap, 1000 draws, two models: {took:.2f} s (with pycocotools: ~{2000 * c:.0f} s)")


if __name__ == "__main__":
    main()
