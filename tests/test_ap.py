"""evaluate.ap: COCO's AP50 in numpy, equal to torchmetrics/pycocotools for every figure evaluate-detect reports
(per class, the mean, top-1 scoring, and the small/medium/large area ranges), and no torch import at all."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from coco_reference import torchmetrics_map50
from maskwatch.evaluate.detection import GroundTruth, _map50
from test_bootstrap import CLASSES, _pred, _random_scenes

pytest.importorskip("torchmetrics", reason="the reference (torchmetrics) comes with the training install")


def _same(mine: float | None, ref: float | None) -> bool:
    return (mine is None and ref is None) or (mine is not None and ref is not None and abs(mine - ref) < 1e-6)


def _sized_scenes(seed: int) -> tuple[list[GroundTruth], list]:
    """Faces of every size around COCO's 32² and 96² limits, with near misses, so that area ranges matter."""
    rng = np.random.default_rng(seed)
    gts, preds = [], []
    for i in range(10):
        k = int(rng.integers(1, 7))
        side = rng.choice([12, 31, 32, 33, 60, 95, 96, 97, 150], k).astype(np.float64)
        xy = rng.uniform(0, 500, (k, 2))
        boxes = np.hstack([xy, xy + side[:, None]])
        labels = [CLASSES[j] for j in rng.choice(3, k, p=[0.5, 0.35, 0.15])]
        gts.append(GroundTruth(f"z{i}", boxes.astype(np.float32), labels))
        found = boxes + rng.normal(0, 0.08, (k, 1)) * side[:, None]  # some cross IoU 0.5, some sizes cross a limit
        extra = rng.uniform(0, 500, (int(rng.integers(0, 3)), 2))
        found = np.vstack([found, np.hstack([extra, extra + rng.choice([20, 50, 120])])])
        found[:, 2:] = np.maximum(found[:, 2:], found[:, :2] + 4)
        logits = rng.normal(0, 1, (len(found), 3))
        logits[np.arange(k), [CLASSES.index(x) for x in labels]] += 1.5
        probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
        preds.append(_pred(f"z{i}", found, rng.uniform(0.2, 1.0, len(found)), probs))
    return gts, preds


@pytest.mark.parametrize("top1", [False, True])
@pytest.mark.parametrize("seed", range(6))
def test_every_ap_figure_equals_torchmetrics(seed, top1):
    gts, preds = _sized_scenes(seed) if seed % 2 else _random_scenes(seed)
    mine = _map50(gts, preds, CLASSES, top1=top1)
    ref = torchmetrics_map50(gts, preds, CLASSES, top1=top1)
    assert _same(mine[0], ref[0])
    for c in CLASSES:
        assert _same(mine[1][c], ref[1][c]), c
    for area in ("small", "medium", "large"):
        assert _same(mine[2][area][0], ref[2][area][0]), area
        for c in CLASSES:
            assert _same(mine[2][area][1][c], ref[2][area][1][c]), (area, c)


def test_ties_and_an_ignored_match_follow_pycocotools():
    """Two faces overlapping a detection equally: COCO gives it the last; a detection whose best face is outside the
    area range but which also overlaps one inside takes the one inside."""
    gt = GroundTruth("t", np.array([[0, 0, 20, 20], [10, 0, 30, 20], [0, 0, 100, 100]], np.float32), [CLASSES[0]] * 3)
    pred = _pred("t", [[5, 0, 25, 20], [0, 0, 90, 90], [200, 200, 210, 210]], [0.9, 0.8, 0.7], [[1, 0, 0]] * 3)
    mine = _map50([gt], [pred], CLASSES, top1=False)
    ref = torchmetrics_map50([gt], [pred], CLASSES, top1=False)
    assert _same(mine[0], ref[0]) and all(_same(mine[2][a][0], ref[2][a][0]) for a in ("small", "medium", "large"))


def test_scene_evaluation_imports_no_torch():
    code = (
        "import sys; import maskwatch.evaluate.scenes, maskwatch.evaluate.bootstrap, maskwatch.evaluate.detection; "
        "print(sorted(m for m in ('torch', 'torchmetrics', 'sklearn', 'timm') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
