"""COCO's average precision at IoU 0.5, in numpy: what pycocotools computes (as torchmetrics calls it), without
PyTorch, fast enough for the thousands of scene draws of the paired bootstrap.

Per image and class (``match``): detections sorted by score (stable), at most 100; ground truth outside the area
range is "ignored" and sorted last; each detection, best score first, takes the not yet matched ground truth of
highest IoU >= 0.5, a non-ignored one before an ignored one, the last of equal IoUs (pycocotools' loop); a detection
matched to ignored ground truth, or unmatched with its own area outside the range, is ignored. Across images
(``average_precision``): detections by score, precision made monotone from the right and read at 101 recall
points; AP is their mean. Boxes are ``[x1, y1, x2, y2]``, turned into COCO's ``[x, y, w, h]`` in float32 as
torchmetrics does; area ``w * h`` (no "+1").
The tests check every figure against torchmetrics/pycocotools.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MAX_DETS = 100
IOU = 0.5
# COCO's area ranges, as torchmetrics sets them (area = w * h, both ends included)
AREA_RANGES: dict[str, tuple[float, float]] = {
    "all": (0.0, 1e5**2),
    "small": (0.0, 32.0**2),
    "medium": (32.0**2, 96.0**2),
    "large": (96.0**2, 1e5**2),
}


def _recall_points() -> np.ndarray:
    """The 101 recall points torchmetrics gives pycocotools: ``torch.linspace(0, 1, 101)`` in float32, which is
    k / 100 rounded to float32 except for 20 points one unit in the last place off. Where a recall lands exactly
    on a point (7 of 10 faces: 0.7) that decides which precision is read."""
    points = (np.arange(101) / 100).astype(np.float32)
    bits = points.view(np.int32)
    for k in (5, 9, 10, 15, 18, 20, 23, 27, 30, 33, 36, 40, 43, 46, 49):
        bits[k] -= 1
    for k in (53, 59, 65, 78, 84):
        bits[k] += 1
    return points.astype(np.float64)


RECALL_POINTS = _recall_points()


def _xywh(boxes: np.ndarray) -> np.ndarray:
    """``[x1, y1, x2, y2]`` as the ``[x, y, w, h]`` torchmetrics hands pycocotools: float32 coordinates, width and
    height subtracted in float32 (which decides, for a face of about 32 or 96 px, the area range it falls in)."""
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    return np.concatenate([b[:, :2], b[:, 2:] - b[:, :2]], axis=1).astype(np.float64)


def _iou(dets: np.ndarray, gts: np.ndarray) -> np.ndarray:
    """(D, G) IoU of xywh boxes as pycocotools' ``maskUtils.iou`` computes it (``iscrowd`` 0)."""
    if len(dets) == 0 or len(gts) == 0:
        return np.zeros((len(dets), len(gts)))
    right = np.minimum(dets[:, None, 0] + dets[:, None, 2], gts[None, :, 0] + gts[None, :, 2])
    bottom = np.minimum(dets[:, None, 1] + dets[:, None, 3], gts[None, :, 1] + gts[None, :, 3])
    w = right - np.maximum(dets[:, None, 0], gts[None, :, 0])
    h = bottom - np.maximum(dets[:, None, 1], gts[None, :, 1])
    inter = np.where((w > 0) & (h > 0), w * h, 0.0)
    union = (dets[:, 2] * dets[:, 3])[:, None] + (gts[:, 2] * gts[:, 3])[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


@dataclass
class Matched:
    """One image and class, for one area range: the kept detections' scores (sorted), which matched ground truth
    and which are ignored, and how many ground-truth faces count."""

    scores: np.ndarray
    hits: np.ndarray
    ignored: np.ndarray
    n_gt: int


def match(
    gt_boxes: np.ndarray,
    det_boxes: np.ndarray,
    scores: np.ndarray,
    area: tuple[float, float] = AREA_RANGES["all"],
    iou: float = IOU,
) -> Matched:
    """pycocotools' ``evaluateImg`` for one image, class and area range (see the module docstring)."""
    gt_boxes, det_boxes = _xywh(gt_boxes), _xywh(det_boxes)
    scores = np.asarray(scores, np.float64).reshape(-1)
    lo, hi = area
    gt_area = gt_boxes[:, 2] * gt_boxes[:, 3]
    gt_ignored = (gt_area < lo) | (gt_area > hi)
    order = np.argsort(gt_ignored, kind="mergesort")  # non-ignored first
    gt_boxes, gt_ignored = gt_boxes[order], gt_ignored[order]
    keep = np.argsort(-scores, kind="mergesort")[:MAX_DETS]
    det_boxes, scores = det_boxes[keep], scores[keep]
    ious = _iou(det_boxes, gt_boxes)
    threshold = min(iou, 1 - 1e-10)
    taken = np.zeros(len(gt_boxes), bool)
    hits = np.zeros(len(scores), bool)
    ignored = np.zeros(len(scores), bool)
    for d in range(len(scores)):
        best, m = threshold, -1
        for g in range(len(gt_boxes)):
            if taken[g]:
                continue
            if m > -1 and not gt_ignored[m] and gt_ignored[g]:
                break  # a match with counted ground truth is never traded for an ignored one
            if ious[d, g] < best:
                continue
            best, m = ious[d, g], g
        if m == -1:
            continue
        taken[m] = True
        hits[d] = True
        ignored[d] = gt_ignored[m]
    det_area = det_boxes[:, 2] * det_boxes[:, 3]
    ignored |= ~hits & ((det_area < lo) | (det_area > hi))
    return Matched(scores, hits, ignored, int((~gt_ignored).sum()))


def average_precision(parts: Sequence[Matched]) -> float | None:
    """AP over images (pycocotools' ``accumulate`` for one class and area); None without counted ground truth."""
    n_gt = sum(p.n_gt for p in parts)
    if n_gt == 0:
        return None
    if not parts:
        return 0.0
    s = np.concatenate([p.scores for p in parts])
    h = np.concatenate([p.hits for p in parts])
    ig = np.concatenate([p.ignored for p in parts])
    order = np.argsort(-s, kind="mergesort")
    h, ig = h[order], ig[order]
    tp = np.cumsum(h & ~ig).astype(np.float64)
    fp = np.cumsum(~h & ~ig).astype(np.float64)
    if len(tp) == 0:
        return 0.0
    recall = tp / n_gt
    precision = tp / (tp + fp + np.spacing(1))
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # monotone, from the right
    at = np.searchsorted(recall, RECALL_POINTS, side="left")
    q = np.where(at < len(precision), precision[np.minimum(at, len(precision) - 1)], 0.0)
    return float(q.mean())


def mean_ap(ap: dict[str, float | None]) -> float | None:
    """The mean over the classes that have an AP (ground truth), as COCO's summary takes it."""
    present = [v for v in ap.values() if v is not None]
    return float(np.mean(present)) if present else None
