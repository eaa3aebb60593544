"""Metrics of the face-mask detector on scene images with ground-truth boxes (e.g. Pascal VOC).

Choices, in one place:

- Boxes are ``[x1, y1, x2, y2]`` in continuous pixels; IoU uses ``w = x2 - x1`` (no VOC "+1"), as COCO does.
- Face matching (class-agnostic) is the COCO/VOC greedy rule, per image: predictions by ``det_score``
  descending, each taking the unmatched ground truth with the highest IoU >= the threshold.
- ``map50``/``ap50`` are COCO's AP at IoU 0.5 as pycocotools computes it through torchmetrics'
  ``MeanAveragePrecision`` (101-point interpolation), in numpy (``evaluate.ap``; the tests check it against
  torchmetrics). Every detected face enters once per class with score ``det_score * probs[c]``, the usual
  detect-then-classify scoring, so AP sees the whole ranking (boxes scored 0 are kept: COCO ranks them last,
  they still count; a NaN probability, for a class the classifier does not have, enters no box).
  ``map50_top1`` enters each face once, as its predicted label with score ``det_score * score``. Label metrics
  use ``Prediction.labels``.
- A class with no ground-truth face has no AP: pycocotools reports -1, here ``None``; the mean is over the
  classes that have ground truth (what torchmetrics does).
- Rates with an empty denominator (precision without predictions, recall without ground truth, accuracy
  without matched faces) are ``None``, never 0.
- Size of a box: ``sqrt(w * h)`` in pixels, bins ``[lo, hi)``; default small < 32, medium 32-96, large >= 96.
  Recall and label accuracy go by the ground-truth face's size; for precision a matched prediction counts in
  its ground truth's bin, an unmatched one in the bin of its own size.
- AP by size uses COCO's area ranges as torchmetrics sets them (area = w*h: small <= 32², medium 32²-96², large > 96²;
  COCO ignores ground truth outside the range and unmatched detections outside it). It is reported for a bin
  only when the bin's range is one of those three (true for the default bins), else ``None``. COCO's ranges
  are closed, so a face of exactly 32x32 or 96x96 counts in both neighbouring areas there.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from maskwatch.evaluate import ap
from maskwatch.labels import MASK_WORN_INCORRECTLY, WITH_MASK, label_color

IOU_THRESHOLDS: dict[str, float] = {"iou50": 0.5, "iou30": 0.3}
DEFAULT_SIZE_BINS: dict[str, tuple[float, float]] = {
    "small": (0.0, 32.0),
    "medium": (32.0, 96.0),
    "large": (96.0, math.inf),
}
# the COCO area range (evaluate.ap.AREA_RANGES) that equals a sqrt-size bin
_COCO_AREAS: dict[tuple[float, float], str] = {(0.0, 32.0): "small", (32.0, 96.0): "medium", (96.0, math.inf): "large"}
MASKED: frozenset[str] = frozenset({WITH_MASK, MASK_WORN_INCORRECTLY})

log = logging.getLogger(__name__)


@dataclass
class GroundTruth:
    """The annotated faces of one image."""

    image_id: str
    boxes: np.ndarray  # (N, 4) float [x1, y1, x2, y2] pixels
    labels: list[str]  # canonical labels, len N


@dataclass
class Prediction:
    """The detector's faces in one image."""

    image_id: str
    boxes: np.ndarray  # (M, 4)
    det_scores: np.ndarray  # (M,) face detector confidence
    labels: list[str]  # predicted class per face
    scores: np.ndarray  # (M,) probability of the predicted label
    probs: np.ndarray  # (M, C) class probabilities in the order of `classes`


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of (N, 4) and (M, 4) xyxy boxes -> (N, M)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    wh = np.clip(np.minimum(a[:, None, 2:], b[None, :, 2:]) - np.maximum(a[:, None, :2], b[None, :, :2]), 0, None)
    inter = wh[..., 0] * wh[..., 1]
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def box_size(boxes: np.ndarray) -> np.ndarray:
    """``sqrt(w * h)`` of (N, 4) xyxy boxes."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.sqrt(np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None))


def match_faces(gt_boxes: np.ndarray, pred_boxes: np.ndarray, det_scores: np.ndarray, iou: float) -> np.ndarray:
    """Greedy matching of one image: for each prediction the index of its ground truth, or -1."""
    n_pred = len(pred_boxes)
    match = np.full(n_pred, -1, dtype=int)
    if n_pred == 0 or len(gt_boxes) == 0:
        return match
    ious = box_iou(pred_boxes, gt_boxes)
    taken = np.zeros(len(gt_boxes), dtype=bool)
    for p in np.argsort(-np.asarray(det_scores, dtype=np.float64), kind="stable"):
        cand = np.where(taken, -1.0, ious[p])
        g = int(cand.argmax())
        if cand[g] >= iou:
            match[p] = g
            taken[g] = True
    return match


def _ratio(num: float, den: float) -> float | None:
    return float(num) / float(den) if den else None


def _bin_of(sizes: np.ndarray, bins: dict[str, tuple[float, float]]) -> list[str | None]:
    out: list[str | None] = []
    for s in sizes:
        out.append(next((name for name, (lo, hi) in bins.items() if lo <= s < hi), None))
    return out


def _empty_prediction(image_id: str, n_classes: int) -> Prediction:
    return Prediction(image_id, np.zeros((0, 4)), np.zeros(0), [], np.zeros(0), np.zeros((0, n_classes)))


def _check(gts: Sequence[GroundTruth], preds: Sequence[Prediction], classes: Sequence[str]) -> list[Prediction]:
    """Validate shapes and labels; return the predictions aligned with ``gts`` (missing -> no faces)."""
    if not gts:
        raise ValueError("no images to evaluate")
    known = set(classes)
    ids = [g.image_id for g in gts]
    if len(set(ids)) != len(ids):
        raise ValueError("duplicate image_id in ground truth")
    by_id: dict[str, Prediction] = {}
    for p in preds:
        if p.image_id in by_id:
            raise ValueError(f"duplicate image_id in predictions: {p.image_id}")
        by_id[p.image_id] = p
    unknown = set(by_id) - set(ids)
    if unknown:
        raise ValueError(f"predictions for images without ground truth: {sorted(unknown)[:5]}")
    for g in gts:
        if np.asarray(g.boxes).reshape(-1, 4).shape[0] != len(g.labels):
            raise ValueError(f"{g.image_id}: {len(g.labels)} labels for {len(g.boxes)} boxes")
        if set(g.labels) - known:
            raise ValueError(f"{g.image_id}: ground-truth labels not in classes: {sorted(set(g.labels) - known)}")
    for p in by_id.values():
        m = np.asarray(p.boxes).reshape(-1, 4).shape[0]
        sizes = {len(p.det_scores), len(p.labels), len(p.scores), len(p.probs)}
        if sizes != {m}:
            raise ValueError(f"{p.image_id}: boxes, det_scores, labels, scores and probs differ in length")
        if m and np.asarray(p.probs).shape[1] != len(classes):
            raise ValueError(f"{p.image_id}: probs has {np.asarray(p.probs).shape[1]} columns, {len(classes)} classes")
        if set(p.labels) - known:
            raise ValueError(f"{p.image_id}: predicted labels not in classes: {sorted(set(p.labels) - known)}")
    return [by_id.get(i) or _empty_prediction(i, len(classes)) for i in ids]


def _counts(tp: int, fp: int, fn: int) -> dict:
    return {"recall": _ratio(tp, tp + fn), "precision": _ratio(tp, tp + fp), "tp": tp, "fp": fp, "fn": fn}


def _label_stats(pairs: list[tuple[int, int]], classes: Sequence[str]) -> dict:
    """Accuracy, mask-vs-not accuracy, confusion matrix and per-class recall of (gt, pred) index pairs."""
    k = len(classes)
    cm = np.zeros((k, k), dtype=int)
    for t, p in pairs:
        cm[t, p] += 1
    n = len(pairs)
    binary = sum((classes[t] in MASKED) == (classes[p] in MASKED) for t, p in pairs)
    rows = cm.sum(axis=1)
    return {
        "matched_faces": n,
        "label_accuracy": _ratio(int(np.trace(cm)), n),
        "mask_vs_not_accuracy": _ratio(binary, n),
        "confusion_matrix": {"labels": list(classes), "matrix": cm.tolist()},
        "per_class_recall": {c: _ratio(int(cm[i, i]), int(rows[i])) for i, c in enumerate(classes)},
    }


def _scored(p: Prediction, classes: Sequence[str], top1: bool) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per class, the (boxes, scores) that enter AP: every face once per class scored ``det_score * probs[c]``
    (none where that is NaN), or with ``top1`` each face once, as its label, scored ``det_score * score``."""
    boxes = np.asarray(p.boxes, dtype=np.float32).reshape(-1, 4)
    det = np.asarray(p.det_scores, dtype=np.float32)
    out = []
    for c, name in enumerate(classes):
        if top1:
            mine = np.array([label == name for label in p.labels], dtype=bool)
            out.append((boxes[mine], (det * np.asarray(p.scores, dtype=np.float32))[mine]))
        else:
            score = det * np.asarray(p.probs, dtype=np.float32).reshape(-1, len(classes))[:, c]
            given = ~np.isnan(score)  # NaN: a class the model does not know, so no detection of it
            out.append((boxes[given], score[given]))
    return out


def _map50(
    gts: Sequence[GroundTruth], preds: Sequence[Prediction], classes: Sequence[str], *, top1: bool
) -> tuple[float | None, dict[str, float | None], dict[str, tuple[float | None, dict[str, float | None]]]]:
    """(mAP50, {class: AP50}, {coco area: (mAP50, {class: AP50})}), as pycocotools computes them (``evaluate.ap``)."""
    most = max((len(p.boxes) for p in preds), default=0)
    if most > ap.MAX_DETS:  # each class gets one entry per face, so only images of > 100 faces are cut
        log.warning("an image has %d detected faces; AP50 counts its best 100 per class (COCO's rule)", most)
    scored = [_scored(p, classes, top1) for p in preds]
    gt_of = [
        [np.asarray(g.boxes, np.float64).reshape(-1, 4)[[x == name for x in g.labels]] for name in classes] for g in gts
    ]
    results = {}
    for area_name, area in ap.AREA_RANGES.items():
        per_class = {
            name: ap.average_precision([ap.match(gt_of[i][c], *scored[i][c], area=area) for i in range(len(gts))])
            for c, name in enumerate(classes)
        }
        results[area_name] = (ap.mean_ap(per_class), per_class)
    overall, per_class = results.pop("all")
    return overall, per_class, results


def detection_metrics(
    gts: Sequence[GroundTruth],
    preds: Sequence[Prediction],
    classes: Sequence[str],
    *,
    size_bins: dict[str, tuple[float, float]] | None = None,
) -> dict:
    """Face detection, AP50 and label metrics of a detector; a JSON-ready dict (see the module docstring)."""
    classes = list(classes)
    bins = dict(size_bins or DEFAULT_SIZE_BINS)
    aligned = _check(gts, preds, classes)
    index = {c: i for i, c in enumerate(classes)}

    faces: dict[str, dict] = {}
    size_counts = {b: {key: {"tp": 0, "fp": 0, "fn": 0} for key in IOU_THRESHOLDS} for b in bins}
    pairs: list[tuple[int, int]] = []
    pairs_by_bin: dict[str, list[tuple[int, int]]] = {b: [] for b in bins}
    for key, thr in IOU_THRESHOLDS.items():
        tp = fp = fn = 0
        for g, p in zip(gts, aligned, strict=True):
            gt_boxes = np.asarray(g.boxes, dtype=np.float64).reshape(-1, 4)
            pred_boxes = np.asarray(p.boxes, dtype=np.float64).reshape(-1, 4)
            match = match_faces(gt_boxes, pred_boxes, p.det_scores, thr)
            gt_bin = _bin_of(box_size(gt_boxes), bins)
            pred_bin = _bin_of(box_size(pred_boxes), bins)
            matched = set(match[match >= 0].tolist())
            tp += len(matched)
            fp += int((match < 0).sum())
            fn += len(gt_boxes) - len(matched)
            for gi, b in enumerate(gt_bin):
                if b is not None:
                    size_counts[b][key]["tp" if gi in matched else "fn"] += 1
            for pi, gi in enumerate(match.tolist()):
                if gi < 0 and pred_bin[pi] is not None:
                    size_counts[pred_bin[pi]][key]["fp"] += 1
                if gi >= 0 and key == "iou50":
                    pair = (index[g.labels[gi]], index[p.labels[pi]])
                    pairs.append(pair)
                    if gt_bin[gi] is not None:
                        pairs_by_bin[gt_bin[gi]].append(pair)
        faces[key] = _counts(tp, fp, fn)

    map50, ap50, ap_by_area = _map50(gts, aligned, classes, top1=False)
    map50_top1, ap50_top1, _ = _map50(gts, aligned, classes, top1=True)

    by_size: dict[str, dict] = {}
    for b, (lo, hi) in bins.items():
        coco = _COCO_AREAS.get((float(lo), float(hi)))
        area_map, area_ap = ap_by_area[coco] if coco else (None, {c: None for c in classes})
        labels = _label_stats(pairs_by_bin[b], classes)
        by_size[b] = {
            "range": [float(lo), None if math.isinf(hi) else float(hi)],
            "gt_faces": size_counts[b]["iou50"]["tp"] + size_counts[b]["iou50"]["fn"],
            **{key: _counts(**size_counts[b][key]) for key in IOU_THRESHOLDS},
            "matched_faces": labels["matched_faces"],
            "label_accuracy": labels["label_accuracy"],
            "mask_vs_not_accuracy": labels["mask_vs_not_accuracy"],
            "map50": area_map,
            "ap50": area_ap,
            "ap_area_range": f"coco_{coco}" if coco else None,
        }

    gt_per_class = {c: sum(x == c for g in gts for x in g.labels) for c in classes}
    return {
        "counts": {
            "images": len(gts),
            "gt_faces": gt_per_class,
            "gt_faces_total": sum(gt_per_class.values()),
            "predicted_faces": sum(len(p.labels) for p in aligned),
        },
        "faces": faces,
        "map50": map50,
        "ap50": ap50,
        "map50_top1": map50_top1,
        "ap50_top1": ap50_top1,
        **_label_stats(pairs, classes),
        "by_size": by_size,
        "settings": {
            "iou_thresholds": dict(IOU_THRESHOLDS),
            "ap_scores": "per class det_score * probs[c] (none where NaN); top1: predicted label, det_score * score",
            "size": "sqrt(w * h) px, bins [lo, hi)",
            "ap_by_size": "torchmetrics/COCO area ranges (32², 96²), only for bins equal to them",
        },
    }


def plot_detection_report(metrics: dict, out_dir: Path) -> list[Path]:
    """Confusion matrix of the matched faces, and AP50 per class beside recall by face size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from maskwatch.evaluate.plots import plot_confusion
    from maskwatch.io import save_figure

    out_dir = Path(out_dir)
    cm = metrics["confusion_matrix"]
    confusion = out_dir / "detection_confusion.png"
    plot_confusion(
        cm["matrix"], cm["labels"], confusion, title=f"labels of matched faces (IoU 0.5, n={metrics['matched_faces']})"
    )

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    names = list(metrics["ap50"])
    values = [metrics["ap50"][c] for c in names]
    bars = a.bar(
        range(len(names)),
        [v or 0.0 for v in values],
        color=[np.array(label_color(c)) / 255 for c in names],
    )
    a.bar_label(bars, [f"{v:.3f}" if v is not None else "n/a" for v in values], fontsize=8)
    mean = metrics["map50"]
    a.set_xticks(range(len(names)), names, rotation=15)
    a.set(ylim=(0, 1.08), ylabel="AP50", title=f"AP50 per class (mAP50 {mean:.3f})" if mean is not None else "AP50")
    sizes = list(metrics["by_size"])
    width = 0.38
    for j, (key, thr) in enumerate(IOU_THRESHOLDS.items()):
        rec = [metrics["by_size"][s][key]["recall"] for s in sizes]
        bars = b.bar(np.arange(len(sizes)) + (j - 0.5) * width, [r or 0.0 for r in rec], width, label=f"IoU {thr}")
        b.bar_label(bars, [f"{r:.2f}" if r is not None else "n/a" for r in rec], fontsize=8)
    b.set_xticks(range(len(sizes)), [f"{s}\n(n={metrics['by_size'][s]['gt_faces']})" for s in sizes], fontsize=8)
    b.set(ylim=(0, 1.08), ylabel="recall", title="face recall by size")
    b.legend()
    for ax in (a, b):
        ax.grid(alpha=0.3, axis="y")
    bars_path = out_dir / "detection_ap_recall.png"
    save_figure(bars_path, fig)
    return [confusion, bars_path]
