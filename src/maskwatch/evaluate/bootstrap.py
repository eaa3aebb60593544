"""How sure is a change in AP50? A paired bootstrap over scenes.

Two models scored on the same scenes (same detector, so the same faces) differ in AP50 by some amount; with a rare
class (18 incorrectly worn faces in 123 held-out scenes) much of that is luck of which scenes were held out. The
paired bootstrap draws the scenes again with replacement, many times, scores *both* models on each draw and keeps
the difference: its 2.5 and 97.5 percentiles are the 95% interval of the change. Scenes, not faces, are the unit
drawn, because faces of one photo share its light, camera and crowd.

Thousands of draws need a fast AP: ``ap50`` computes COCO's AP at IoU 0.5 over all areas as pycocotools does (per
image and class: detections by score, at most 100, each taking the unmatched ground truth of highest IoU >= 0.5,
``detection.match_faces``; then across images by score, precision made monotone and read at 101 recall points),
scored as ``detection.detection_metrics`` scores (every face once per class, ``det_score * probs[c]``, none where
that is NaN) and read at the recall points torchmetrics gives pycocotools; the tests check it against
torchmetrics/pycocotools.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from maskwatch.evaluate.detection import GroundTruth, Prediction, match_faces

# torchmetrics hands pycocotools its recall points as float32 (torch.linspace), not pycocotools' float64 ones; where a
# recall lands exactly on one (7 of 10 faces: 0.7) that decides which precision is read. Same points as the tables.
_RECALL_POINTS = np.array(torch.linspace(0.0, 1.0, 101).tolist(), dtype=np.float64)
_MAX_DETS = 100


def _match(gt_boxes: np.ndarray, boxes: np.ndarray, scores: np.ndarray, iou: float) -> tuple[np.ndarray, np.ndarray]:
    """One image and class: (scores sorted and cut to 100, True where that detection matched), by the face matching
    of ``detection.match_faces`` (pycocotools' rule; where two faces overlap a detection exactly equally, it takes
    the first, pycocotools the last)."""
    order = np.argsort(-scores, kind="mergesort")[:_MAX_DETS]
    scores = scores[order]
    return scores, match_faces(gt_boxes, boxes[order], scores, iou) >= 0


def _average_precision(scores: list[np.ndarray], hits: list[np.ndarray], n_gt: int) -> float | None:
    if n_gt == 0:
        return None
    s = np.concatenate(scores) if scores else np.zeros(0)
    h = np.concatenate(hits) if hits else np.zeros(0, dtype=bool)
    if len(s) == 0:
        return 0.0
    order = np.argsort(-s, kind="mergesort")
    tp = np.cumsum(h[order]).astype(np.float64)
    fp = np.cumsum(~h[order]).astype(np.float64)
    recall = tp / n_gt
    precision = tp / (tp + fp + np.spacing(1))
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # monotone, from the right
    at = np.searchsorted(recall, _RECALL_POINTS, side="left")
    q = np.where(at < len(precision), precision[np.minimum(at, len(precision) - 1)], 0.0)
    return float(q.mean())


class _Scored:
    """Per scene and class, the detections' sorted scores and hits, computed once; a draw of scenes then only
    concatenates them."""

    def __init__(self, gts: Sequence[GroundTruth], preds: Sequence[Prediction], classes: Sequence[str]) -> None:
        if [g.image_id for g in gts] != [p.image_id for p in preds]:
            raise ValueError("ground truth and predictions must list the same scenes in the same order")
        self.classes = list(classes)
        k = len(self.classes)
        self.scores: list[list[np.ndarray]] = []  # [scene][class]
        self.hits: list[list[np.ndarray]] = []
        self.n_gt = np.zeros((len(gts), k), dtype=np.int64)
        for i, (g, p) in enumerate(zip(gts, preds, strict=True)):
            gt_boxes = np.asarray(g.boxes, dtype=np.float64).reshape(-1, 4)
            boxes = np.asarray(p.boxes, dtype=np.float64).reshape(-1, 4)
            det = np.asarray(p.det_scores, dtype=np.float32)
            probs = np.asarray(p.probs, dtype=np.float32).reshape(-1, k)
            row_s, row_h = [], []
            for c, name in enumerate(self.classes):
                mine = np.array([label == name for label in g.labels], dtype=bool)
                self.n_gt[i, c] = int(mine.sum())
                score = det * probs[:, c]
                given = ~np.isnan(score)  # as detection_metrics: NaN, a class the model does not know
                s, h = _match(gt_boxes[mine], boxes[given], score[given], 0.5)
                row_s.append(s)
                row_h.append(h)
            self.scores.append(row_s)
            self.hits.append(row_h)

    def ap(self, scenes: Sequence[int] | np.ndarray) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for c, name in enumerate(self.classes):
            out[name] = _average_precision(
                [self.scores[i][c] for i in scenes], [self.hits[i][c] for i in scenes], int(self.n_gt[scenes, c].sum())
            )
        return out


def _with_mean(ap: dict[str, float | None]) -> dict[str, float | None]:
    present = [v for v in ap.values() if v is not None]
    return {"map50": float(np.mean(present)) if present else None, **ap}


def ap50(gts: Sequence[GroundTruth], preds: Sequence[Prediction], classes: Sequence[str]) -> dict[str, float | None]:
    """``{"map50": ..., class: AP50, ...}`` (``None`` for a class without ground truth; the mean skips it)."""
    return _with_mean(_Scored(gts, preds, classes).ap(np.arange(len(gts))))


def bootstrap_ap_change(
    gts: Sequence[GroundTruth],
    base: Sequence[Prediction],
    other: Sequence[Prediction],
    classes: Sequence[str],
    *,
    draws: int = 1000,
    seed: int = 0,
) -> dict[str, dict[str, float | None]]:
    """The change ``other - base`` in mAP50 and each class's AP50 on these scenes, with its paired-bootstrap 95%
    interval: ``{"map50" | class: {"change", "low", "high", "p_not_above_0"}}`` (``p_not_above_0``: the share of
    draws where the change is <= 0). Draws in which a class has no ground truth are left out for that class."""
    if draws < 1:
        raise ValueError("draws must be at least 1")
    a, b = _Scored(gts, base, classes), _Scored(gts, other, classes)
    everything = np.arange(len(gts))
    point_a, point_b = _with_mean(a.ap(everything)), _with_mean(b.ap(everything))
    rng = np.random.default_rng(seed)
    changes: dict[str, list[float]] = {k: [] for k in point_a}
    for _ in range(draws):
        scenes = rng.integers(0, len(gts), len(gts))
        da, db = _with_mean(a.ap(scenes)), _with_mean(b.ap(scenes))
        for k in changes:
            if da[k] is not None and db[k] is not None:
                changes[k].append(db[k] - da[k])  # type: ignore[operator]
    out: dict[str, dict[str, float | None]] = {}
    for k, values in changes.items():
        pa, pb = point_a[k], point_b[k]
        change = None if pa is None or pb is None else pb - pa
        if not values or change is None:
            out[k] = {"change": change, "low": None, "high": None, "p_not_above_0": None}
            continue
        v = np.asarray(values)
        low, high = np.percentile(v, [2.5, 97.5])
        out[k] = {"change": change, "low": float(low), "high": float(high), "p_not_above_0": float((v <= 0).mean())}
    return out
