"""The reference that ``maskwatch.evaluate.ap`` is checked against: COCO's AP50 through torchmetrics'
``MeanAveragePrecision`` (pycocotools), as maskwatch computed it before it had its own numpy implementation.
Only the tests use it (torch and torchmetrics come with the training install)."""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence

import numpy as np
import torch

from maskwatch.evaluate.detection import GroundTruth, Prediction

log = logging.getLogger(__name__)
# torchmetrics/COCO area ranges (index into the area axis of the precision array) by sqrt-size range
_COCO_AREAS: dict[tuple[float, float], tuple[str, int]] = {
    (0.0, 32.0): ("small", 1),
    (32.0, 96.0): ("medium", 2),
    (96.0, math.inf): ("large", 3),
}


def _ap_value(x: float) -> float | None:
    return None if x < 0 or math.isnan(x) else float(x)


def torchmetrics_map50(
    gts: Sequence[GroundTruth], preds: Sequence[Prediction], classes: Sequence[str], *, top1: bool
) -> tuple[float | None, dict[str, float | None], dict[str, tuple[float | None, dict[str, float | None]]]]:
    """(mAP50, {class: AP50}, {coco area: (mAP50, {class: AP50})}) from torchmetrics (pycocotools)."""
    from torchmetrics.detection import MeanAveragePrecision

    index = {c: i for i, c in enumerate(classes)}
    target, detections = [], []
    most = 0
    for g, p in zip(gts, preds, strict=True):
        target.append(
            {
                "boxes": torch.as_tensor(np.asarray(g.boxes, dtype=np.float32).reshape(-1, 4)),
                "labels": torch.as_tensor([index[x] for x in g.labels], dtype=torch.long),
            }
        )
        boxes = np.asarray(p.boxes, dtype=np.float32).reshape(-1, 4)
        det = np.asarray(p.det_scores, dtype=np.float32)
        if top1:
            labels = np.array([index[x] for x in p.labels], dtype=np.int64)
            scores = det * np.asarray(p.scores, dtype=np.float32)
        else:  # every face once per class, scored det_score * probs[c]
            k = len(classes)
            labels = np.tile(np.arange(k, dtype=np.int64), len(boxes))
            scores = (det[:, None] * np.asarray(p.probs, dtype=np.float32).reshape(-1, k)).reshape(-1)
            boxes = np.repeat(boxes, k, axis=0)
            given = ~np.isnan(scores)  # NaN: a class the model does not know, so no detection of it
            labels, scores, boxes = labels[given], scores[given], boxes[given]
        most = max(most, len(p.boxes))  # detections per image and class: one per face
        detections.append(
            {"boxes": torch.as_tensor(boxes), "scores": torch.as_tensor(scores), "labels": torch.as_tensor(labels)}
        )
    # COCO keeps the best 100 detections per image and class (its summary is fixed at 100: another value makes
    # pycocotools report -1). Each class gets one entry per face, so this only truncates images of > 100 faces.
    if most > 100:
        log.warning("an image has %d detected faces; AP50 counts its best 100 per class (COCO's rule)", most)
    metric = MeanAveragePrecision(
        iou_type="bbox",
        iou_thresholds=[0.5],
        class_metrics=True,
        extended_summary=True,
        max_detection_thresholds=[1, 10, 100],
    )
    metric.warn_on_many_detections = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        metric.update(detections, target)
        res = metric.compute()
    present = [int(c) for c in res["classes"].reshape(-1).tolist()]  # classes seen in predictions or ground truth
    per_class = res["map_per_class"].reshape(-1).tolist() if present else []
    ap = {c: None for c in classes}
    for cid, value in zip(present, per_class, strict=True):
        ap[classes[cid]] = _ap_value(value)
    by_area: dict[str, tuple[float | None, dict[str, float | None]]] = {}
    precision = res.get("precision")
    for name, a in _COCO_AREAS.values():
        area_ap = {c: None for c in classes}
        if precision is not None and precision.numel() and present:
            prec = precision[0, :, :, a, -1].numpy()  # (R, K) with K in the order of `present`
            for j, cid in enumerate(present):
                col = prec[:, j]
                area_ap[classes[cid]] = float(col[col > -1].mean()) if (col > -1).any() else None
        by_area[name] = (_ap_value(float(res[f"map_{name}"])), area_ap)
    return _ap_value(float(res["map"])), ap, by_area
