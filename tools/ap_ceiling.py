"""AP50 a perfect classifier would reach with the same detections: an `evaluate-detect` run's predictions with
every face matched to a ground-truth face (IoU >= 0.5) given its true class with probability 1; unmatched
detections keep their scores. Tells how much of a class's AP the classifier can still win. The JSON lines keep
4 decimals, so "actual" can differ a little from the run's metrics.json where rounding ties scores.

    .venv/bin/python tools/ap_ceiling.py runs/ablation-synth/test-final/default-v1 \
        --data ../shared/datasets/face-mask-scenes-853 --split-from docs/results/heldout-scenes-853.txt
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from maskwatch.data.voc import read_voc
from maskwatch.evaluate.detection import GroundTruth, Prediction, box_iou, detection_metrics
from maskwatch.evaluate.scenes import split_scenes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("report", type=Path, help="evaluate-detect folder (metrics.json + predictions.jsonl)")
    ap.add_argument("--data", type=Path, required=True, help="the VOC set it was run on")
    ap.add_argument("--split-from", type=Path, required=True)
    args = ap.parse_args()
    labels = json.loads((args.report / "metrics.json").read_text())["pipeline"]["classifier"]["labels"]
    keep, _ = split_scenes(args.split_from, "test")
    scenes = {s.image_path.name: s for s in read_voc(args.data)[0] if s.image_path.name in keep}
    gts, actual, oracle = [], [], []
    for line in (args.report / "predictions.jsonl").read_text().splitlines():
        r = json.loads(line)
        s = scenes[r["source"]]
        g = GroundTruth(
            r["source"], np.array([o.box for o in s.objects], np.float32).reshape(-1, 4), [o.label for o in s.objects]
        )
        faces = r["faces"]
        probs = np.array([[f["probs"][c] for c in labels] for f in faces], np.float32).reshape(-1, len(labels))
        boxes = np.array([f["box"] for f in faces], np.float32).reshape(-1, 4)
        det = np.array([f["det_score"] for f in faces], np.float32)
        best = probs.copy()
        if len(faces) and len(g.labels):
            iou = box_iou(boxes, g.boxes)
            for i in range(len(faces)):
                j = int(iou[i].argmax())
                if iou[i, j] >= 0.5 and g.labels[j] in labels:
                    best[i] = 0.0
                    best[i, labels.index(g.labels[j])] = 1.0
        gts.append(g)
        for out, p in ((actual, probs), (oracle, best)):
            out.append(Prediction(r["source"], boxes, det, [labels[k] for k in p.argmax(1)], p.max(1, initial=0), p))
    for name, preds in (("actual", actual), ("perfect classifier", oracle)):
        m = detection_metrics(gts, preds, labels)
        print(f"{name:>18}: " + ", ".join(f"{c} {v:.4f}" for c, v in m["ap50"].items()))


if __name__ == "__main__":
    main()
