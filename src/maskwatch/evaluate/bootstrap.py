"""How sure is a change in AP50? A paired bootstrap over scenes.

Two models scored on the same scenes (same detector, so the same faces) differ in AP50 by some amount; with a rare
class (18 incorrectly worn faces in 123 held-out scenes) much of that is luck of which scenes were held out. The
paired bootstrap draws the scenes again with replacement, many times, scores *both* models on each draw and keeps
the difference: its 2.5 and 97.5 percentiles are the 95% interval of the change. Scenes, not faces, are the unit
drawn, because faces of one photo share its light, camera and crowd.

Thousands of draws need a fast AP: each scene's detections are matched once per class (``evaluate.ap.match``,
pycocotools' rule, scored as ``detection.detection_metrics`` scores: every face once per class,
``det_score * probs[c]``, none where that is NaN), and a draw only accumulates them again
(``evaluate.ap.average_precision``), so ``ap50`` equals ``detection_metrics``' AP50 exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from maskwatch.evaluate import ap as coco
from maskwatch.evaluate.detection import GroundTruth, Prediction, _scored


class _Scored:
    """Per scene and class, the detections' sorted scores and hits, computed once; a draw of scenes then only
    concatenates them."""

    def __init__(self, gts: Sequence[GroundTruth], preds: Sequence[Prediction], classes: Sequence[str]) -> None:
        if [g.image_id for g in gts] != [p.image_id for p in preds]:
            raise ValueError("ground truth and predictions must list the same scenes in the same order")
        self.classes = list(classes)
        # [scene][class]: the detections matched once; a draw of scenes only gathers them again
        self.matched: list[list[coco.Matched]] = []
        for g, p in zip(gts, preds, strict=True):
            gt_boxes = np.asarray(g.boxes, dtype=np.float64).reshape(-1, 4)
            row = []
            for name, (boxes, scores) in zip(self.classes, _scored(p, self.classes, top1=False), strict=True):
                row.append(coco.match(gt_boxes[[label == name for label in g.labels]], boxes, scores))
            self.matched.append(row)

    def ap(self, scenes: Sequence[int] | np.ndarray) -> dict[str, float | None]:
        return {
            name: coco.average_precision([self.matched[i][c] for i in scenes]) for c, name in enumerate(self.classes)
        }


def _with_mean(ap: dict[str, float | None]) -> dict[str, float | None]:
    return {"map50": coco.mean_ap(ap), **ap}


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
