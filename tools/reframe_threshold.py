"""How `classify`'s reframing (detect/reframe.py) changes accuracy on face crops framed tightly and loosely, per
threshold: the table REFRAME_BELOW was chosen from (on validation crops).

    .venv/bin/python tools/reframe_threshold.py --split-from runs/default-v1 --subset val \
        --data ../shared/datasets/face-mask-4094@0.15 --data ../shared/datasets/face-mask-scenes-853@0.15 \
        --data ../shared/datasets/face-mask-scenes-853@0.4 --data ../shared/datasets/face-mask-scenes-853@0.7

Each ``--data SET@MARGIN`` is scored with its crops cut at that margin (VOC scene sets; class folders are used as
they are). The crops of ``--subset`` of the saved split (``--split-from``) are classified as given and cut again
around the face found in them; the table gives the accuracy if every crop whose face spans under T of it is cut
again, for each T; a second table, at the shipped T, keeps crops whose face found is under N pixels as they are,
for each N. Also written as JSON (``--out``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from maskwatch.data.crops import crop_square
from maskwatch.data.dataset import load_data
from maskwatch.data.images import open_rgb
from maskwatch.data.split import load_split
from maskwatch.detect.reframe import REFRAME_BELOW, Reframer
from maskwatch.progress import track
from maskwatch.runtime.classifiers import load_classifier

THRESHOLDS = (0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.8, 0.9, 1.0)
MIN_FACES = (0, 8, 12, 16, 20, 24)  # the second table: at the shipped threshold, faces under N px kept as given


def score_set(clf, reframer: Reframer, data: str, margin: float, split_from: Path, subset: str) -> dict:
    bundle = load_data([data], margin=margin)
    part = load_split(split_from, bundle.samples).parts()[subset]
    y = np.array([clf.labels.index(s.label) for s in part])
    raw, cut, ratio, side = [], [], [], []
    for s in track(part, f"{Path(data).name} at margin {margin}"):
        image = open_rgb(s.path)
        raw.append(image)
        box, r = reframer.measure(image, min_face=0)
        ratio.append(r)
        side.append(0.0 if box is None else float(min(box[2] - box[0], box[3] - box[1])))
        cut.append(image if box is None else crop_square(image, box, reframer.margin))
    p_raw, p_cut = clf.predict_images(raw).argmax(1), clf.predict_images(cut).argmax(1)
    ratio_arr, side_arr = np.array(ratio), np.array(side)

    def score(use: np.ndarray) -> dict:
        return {"accuracy": float(np.mean(np.where(use, p_cut, p_raw) == y)), "reframed": float(use.mean())}

    min_face = reframer.min_face
    return {
        "images": len(y),
        "as_given": float(np.mean(p_raw == y)),
        "by_threshold": {str(t): score((ratio_arr < t) & (side_arr >= min_face)) for t in THRESHOLDS},
        "by_min_face": {str(m): score((ratio_arr < reframer.below) & (side_arr >= m)) for m in MIN_FACES},
    }


def _table(results: dict, key: str, head: str, values) -> None:
    print(f"| {head} | " + " | ".join(Path(k).name for k in results) + " |")
    print("|---" * (len(results) + 1) + "|")
    print("| as given | " + " | ".join(f"{r['as_given']:.4f}" for r in results.values()) + " |")
    for v in values:
        cells = [f"{r[key][str(v)]['accuracy']:.4f} ({r[key][str(v)]['reframed']:.0%})" for r in results.values()]
        print(f"| {v:g} | " + " | ".join(cells) + " |")
    print()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", action="append", required=True, help="SET or SET@MARGIN (repeatable)")
    ap.add_argument("--split-from", type=Path, required=True)
    ap.add_argument("--subset", default="val", choices=("train", "val", "test"))
    ap.add_argument("--model", default=None, help="classifier (default: the shipped model)")
    ap.add_argument("--out", type=Path, default=None, help="JSON file for the table")
    args = ap.parse_args()
    clf = load_classifier(args.model)
    reframer = Reframer()
    results = {}
    for spec in args.data:
        data, _, margin = spec.partition("@")
        results[spec] = score_set(clf, reframer, data, float(margin or 0.15), args.split_from, args.subset)
    _table(results, "by_threshold", f"T (shipped {REFRAME_BELOW:g}; min face {reframer.min_face:g} px)", THRESHOLDS)
    _table(results, "by_min_face", f"min face, px (at T {reframer.below:g})", MIN_FACES)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
