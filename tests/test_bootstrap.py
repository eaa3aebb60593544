"""evaluate.bootstrap: a fast AP50 equal to pycocotools', and the paired bootstrap of an AP50 change."""

from __future__ import annotations

import numpy as np
import pytest

from coco_reference import torchmetrics_map50
from maskwatch.evaluate.bootstrap import ap50, bootstrap_ap_change
from maskwatch.evaluate.detection import GroundTruth, Prediction

CLASSES = ["with_mask", "without_mask", "mask_worn_incorrectly"]


def _pred(image_id: str, boxes, det, probs) -> Prediction:
    probs = np.asarray(probs, np.float32).reshape(-1, len(CLASSES))
    return Prediction(
        image_id,
        np.asarray(boxes, np.float32).reshape(-1, 4),
        np.asarray(det, np.float32),
        [CLASSES[k] for k in probs.argmax(1)] if len(probs) else [],
        probs.max(1) if len(probs) else np.zeros(0, np.float32),
        probs,
    )


def _random_scenes(seed: int, n: int = 12, skill: float = 1.0) -> tuple[list[GroundTruth], list[Prediction]]:
    """Scenes of 0-6 faces; the detector finds most (boxes jittered), adds false faces, and the classifier's
    probabilities lean to the truth by ``skill``."""
    rng = np.random.default_rng(seed)
    gts, preds = [], []
    for i in range(n):
        k = int(rng.integers(0, 7))
        xy = rng.uniform(0, 400, (k, 2))
        wh = rng.uniform(10, 80, (k, 2))
        boxes = np.hstack([xy, xy + wh])
        labels = [CLASSES[j] for j in rng.choice(3, k, p=[0.6, 0.3, 0.1])]
        gts.append(GroundTruth(f"s{i}", boxes.astype(np.float32), labels))
        seen = rng.random(k) < 0.85
        false = rng.uniform(0, 400, (int(rng.integers(0, 3)), 2))
        found = np.vstack([boxes[seen] + rng.normal(0, 5, (int(seen.sum()), 4)), np.hstack([false, false + 30])])
        found[:, 2:] = np.maximum(found[:, 2:], found[:, :2] + 5)
        truth = np.zeros((len(found), 3))
        truth[np.arange(int(seen.sum())), [CLASSES.index(x) for x, s in zip(labels, seen, strict=True) if s]] = skill
        logits = truth + rng.normal(0, 1, truth.shape)
        probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
        preds.append(_pred(f"s{i}", found, rng.uniform(0.3, 1.0, len(found)), probs))
    return gts, preds


def test_ap50_by_hand():
    """One image, 2 with_mask faces, 3 detections scored 0.9 (hit), 0.8 (miss), 0.7 (hit): precision 1, 1/2, 2/3
    made monotone to 1, 2/3, 2/3 at recall 1/2, 1/2, 1; read at 101 recall points: 51 at 1 and 50 at 2/3."""
    gt = GroundTruth("a", np.array([[0, 0, 10, 10], [20, 0, 30, 10]], np.float32), ["with_mask", "with_mask"])
    pred = _pred("a", [[0, 0, 10, 10], [50, 50, 60, 60], [20, 0, 30, 10]], [0.9, 0.8, 0.7], [[1, 0, 0]] * 3)
    out = ap50([gt], [pred], CLASSES)
    assert out["with_mask"] == pytest.approx((51 + 50 * 2 / 3) / 101)
    assert out["without_mask"] is None and out["mask_worn_incorrectly"] is None  # no ground truth: no AP
    assert out["map50"] == pytest.approx(out["with_mask"])


@pytest.mark.parametrize("seed", range(8))
def test_ap50_equals_pycocotools(seed):
    gts, preds = _random_scenes(seed)
    preds[0] = _pred(preds[0].image_id, np.zeros((0, 4)), [], np.zeros((0, 3)))  # a scene where nothing is found
    fast = ap50(gts, preds, CLASSES)
    coco_map, coco_ap, _ = torchmetrics_map50(gts, preds, CLASSES, top1=False)
    for c in CLASSES:
        assert (fast[c] is None) == (coco_ap[c] is None)
        if fast[c] is not None:
            assert fast[c] == pytest.approx(coco_ap[c], abs=1e-6)
    assert fast["map50"] == pytest.approx(coco_map, abs=1e-6)


def test_bootstrap_of_a_model_against_itself_is_exactly_zero():
    gts, preds = _random_scenes(5, n=20)
    out = bootstrap_ap_change(gts, preds, preds, CLASSES, draws=200)
    for key in ("map50", *CLASSES):
        assert out[key]["change"] == 0 and out[key]["low"] == 0 and out[key]["high"] == 0
        assert out[key]["p_not_above_0"] == 1.0


def test_bootstrap_sees_a_better_classifier_and_is_repeatable():
    gts, weak = _random_scenes(7, n=40, skill=0.5)
    _, strong = _random_scenes(7, n=40, skill=4.0)  # same scenes and boxes, sharper probabilities
    out = bootstrap_ap_change(gts, weak, strong, CLASSES, draws=300, seed=3)
    direct = ap50(gts, strong, CLASSES)["with_mask"] - ap50(gts, weak, CLASSES)["with_mask"]
    w = out["with_mask"]
    assert w["change"] == pytest.approx(direct) and w["change"] > 0
    assert w["low"] <= w["change"] <= w["high"] and w["low"] > 0  # clearly better: the interval excludes 0
    assert bootstrap_ap_change(gts, weak, strong, CLASSES, draws=300, seed=3) == out
    with pytest.raises(ValueError):
        bootstrap_ap_change(gts, weak, strong, CLASSES, draws=0)
    with pytest.raises(ValueError):
        bootstrap_ap_change(gts, weak[::-1], strong, CLASSES)
