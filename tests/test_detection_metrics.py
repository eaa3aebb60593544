from __future__ import annotations

import json
import math
from collections.abc import Sequence

import numpy as np
import pytest

from maskwatch.evaluate.detection import (
    GroundTruth,
    Prediction,
    box_iou,
    detection_metrics,
    match_faces,
    plot_detection_report,
)
from maskwatch.labels import CANONICAL_LABELS

CLASSES = list(CANONICAL_LABELS)  # with_mask, without_mask, mask_worn_incorrectly
W, WO, INC = CLASSES
ONE_HOT = {c: [float(i == j) for j in range(3)] for i, c in enumerate(CLASSES)}


def gt(image_id: str, boxes: Sequence[Sequence[float]], labels: Sequence[str]) -> GroundTruth:
    return GroundTruth(image_id, np.asarray(boxes, dtype=float).reshape(-1, 4), list(labels))


def pred(
    image_id: str, boxes: Sequence[Sequence[float]], det: Sequence[float], probs: Sequence[Sequence[float]]
) -> Prediction:
    p = np.asarray(probs, dtype=float).reshape(-1, 3)
    return Prediction(
        image_id,
        np.asarray(boxes, dtype=float).reshape(-1, 4),
        np.asarray(det, dtype=float),
        [CLASSES[i] for i in p.argmax(axis=1)],
        p.max(axis=1) if len(p) else np.zeros(0),
        p,
    )


def metrics(gts: list[GroundTruth], preds: list[Prediction], **kw) -> dict:
    m = detection_metrics(gts, preds, CLASSES, **kw)
    json.dumps(m, allow_nan=False)  # JSON-ready: plain types, no NaN/inf
    return m


def test_iou_and_greedy_matching():
    assert box_iou([[0, 0, 100, 100]], [[40, 0, 140, 100]])[0, 0] == pytest.approx(6000 / 14000)
    assert box_iou([[0, 0, 10, 10]], [[20, 20, 30, 30]])[0, 0] == 0.0
    # the higher det_score takes the face even with the lower IoU; the other becomes a false positive
    g = np.array([[0, 0, 100, 100]], dtype=float)
    p = np.array([[0, 0, 100, 90], [0, 0, 100, 80]], dtype=float)
    assert match_faces(g, p, np.array([0.5, 0.9]), 0.5).tolist() == [-1, 0]
    # a prediction takes the unmatched face it overlaps most
    g2 = np.array([[0, 0, 100, 100], [50, 0, 150, 100]], dtype=float)
    assert match_faces(g2, np.array([[45, 0, 145, 100]], dtype=float), np.array([0.9]), 0.3).tolist() == [1]


def test_face_recall_precision_at_both_thresholds():
    gts = [
        gt("a", [[0, 0, 100, 100], [200, 0, 300, 100], [400, 0, 450, 50]], [W, WO, INC]),
        gt("b", [], []),  # no faces: every prediction there is a false positive
    ]
    preds = [
        pred(
            "a",
            [
                [0, 0, 100, 100],  # perfect match of face 1
                [240, 0, 340, 100],  # IoU 6000/14000 = 0.43 with face 2: a hit at 0.3, not at 0.5
                [600, 600, 650, 650],  # nothing there
            ],
            [0.9, 0.8, 0.7],
            [ONE_HOT[W], ONE_HOT[WO], ONE_HOT[W]],
        ),  # face 3 is missed
        pred("b", [[10, 10, 60, 60]], [0.6], [ONE_HOT[WO]]),
    ]
    m = metrics(gts, preds)
    assert m["faces"]["iou50"] == {"recall": 1 / 3, "precision": 1 / 4, "tp": 1, "fp": 3, "fn": 2}
    assert m["faces"]["iou30"] == {"recall": 2 / 3, "precision": 2 / 4, "tp": 2, "fp": 2, "fn": 1}
    assert m["counts"] == {
        "images": 2,
        "gt_faces": {W: 1, WO: 1, INC: 1},
        "gt_faces_total": 3,
        "predicted_faces": 4,
    }
    # sizes: faces 1, 2 are 100 px (large), face 3 is 50 px (medium); the unmatched predictions
    # count in their own size: the 100 px one (IoU 0.43) in large, the two 50 px ones in medium
    large, medium, small = (m["by_size"][k] for k in ("large", "medium", "small"))
    assert large["iou50"] == {"recall": 0.5, "precision": 0.5, "tp": 1, "fp": 1, "fn": 1}
    assert large["iou30"] == {"recall": 1.0, "precision": 1.0, "tp": 2, "fp": 0, "fn": 0}
    assert medium["iou50"] == {"recall": 0.0, "precision": 0.0, "tp": 0, "fp": 2, "fn": 1}
    assert small["iou50"] == {"recall": None, "precision": None, "tp": 0, "fp": 0, "fn": 0}
    assert (large["gt_faces"], medium["gt_faces"], small["gt_faces"]) == (2, 1, 0)


def test_ap50_is_one_when_every_class_is_found_and_ranked_first():
    # det_score 1, right class at 0.8: each class's true boxes (0.8) outrank the faces of other classes (0.1)
    gts = [
        gt("a", [[0, 0, 50, 50], [100, 0, 150, 50]], [W, WO]),
        gt("b", [[0, 0, 60, 60], [100, 0, 160, 60]], [INC, W]),
    ]

    def probs(c: str) -> list[float]:
        return [0.8 if x == c else 0.1 for x in CLASSES]

    preds = [
        pred("a", [[0, 0, 50, 50], [100, 0, 150, 50]], [1.0, 1.0], [probs(W), probs(WO)]),
        pred("b", [[0, 0, 60, 60], [100, 0, 160, 60]], [1.0, 1.0], [probs(INC), probs(W)]),
    ]
    m = metrics(gts, preds)
    assert m["map50"] == pytest.approx(1.0)
    assert m["ap50"] == pytest.approx({W: 1.0, WO: 1.0, INC: 1.0})
    assert m["map50_top1"] == pytest.approx(1.0)
    assert m["label_accuracy"] == 1.0


@pytest.mark.parametrize(
    ("n_faces", "ranking", "expected"),
    [
        # 1 face; FP (0.9) above the TP (0.8): precision 0.5 at recall 1, so 0.5 at all 101 recall points
        (1, ["fp", "tp"], 0.5),
        # 2 faces; TP 0.9, FP 0.8, TP 0.7: (recall, precision) = (.5, 1), (.5, .5), (1, 2/3); interpolated
        # precision is 1 for recall 0.00..0.50 (51 points) and 2/3 for 0.51..1.00 (50 points)
        (2, ["tp", "fp", "tp"], (51 * 1 + 50 * 2 / 3) / 101),
    ],
)
def test_ap50_with_a_false_positive_ranked_above_a_true_positive(n_faces, ranking, expected):
    faces = [[100 * i, 0, 100 * i + 50, 50] for i in range(n_faces)]
    boxes, tp = [], iter(faces)
    for kind in ranking:
        boxes.append(next(tp) if kind == "tp" else [500, 500, 550, 550])
    dets = [0.9, 0.8, 0.7][: len(ranking)]
    m = metrics([gt("a", faces, [W] * n_faces)], [pred("a", boxes, dets, [ONE_HOT[W]] * len(ranking))])
    assert m["ap50"][W] == pytest.approx(expected, abs=1e-6)
    # the other classes have no ground truth: no AP, and no part in the mean
    assert m["ap50"][WO] is None and m["ap50"][INC] is None
    assert m["map50"] == pytest.approx(expected, abs=1e-6)


def test_map50_uses_every_class_probability_top1_only_the_label():
    # face 2 (without_mask) is labelled with_mask at 0.7, without_mask at 0.3; no mask_worn_incorrectly anywhere
    gts = [gt("a", [[0, 0, 50, 50], [100, 0, 150, 50]], [W, WO])]
    preds = [pred("a", [[0, 0, 50, 50], [100, 0, 150, 50]], [1.0, 1.0], [[1.0, 0.0, 0.0], [0.7, 0.3, 0.0]])]
    m = metrics(gts, preds)
    # per class: with_mask 1.0 (TP) > 0.7 (FP) -> 1; without_mask 0.3 (TP) > 0.0 (FP) -> 1
    assert m["ap50"] == pytest.approx({W: 1.0, WO: 1.0, INC: None})
    assert m["map50"] == pytest.approx(1.0)
    # top-1: with_mask 1.0 (TP) > 0.7 (FP) -> 1; without_mask never predicted -> 0; mean over the 2 GT classes
    assert m["ap50_top1"] == pytest.approx({W: 1.0, WO: 0.0, INC: None})
    assert m["map50_top1"] == pytest.approx(0.5)


def test_label_accuracy_mask_vs_not_and_confusion():
    faces = [[100 * i, 0, 100 * i + 50, 50] for i in range(4)]
    gts = [gt("a", faces, [W, WO, INC, WO])]
    probs = [
        [0.9, 0.05, 0.05],  # with_mask -> with_mask
        [0.1, 0.8, 0.1],  # without_mask -> without_mask
        [0.6, 0.1, 0.3],  # mask_worn_incorrectly -> with_mask: wrong label, right "wears a mask"
        [0.2, 0.3, 0.5],  # without_mask -> mask_worn_incorrectly: wrong on both
        [0.0, 1.0, 0.0],  # a false positive, not part of the label metrics
    ]
    m = metrics(gts, [pred("a", [*faces, [600, 600, 650, 650]], [0.9] * 5, probs)])
    assert m["matched_faces"] == 4
    assert m["label_accuracy"] == 2 / 4
    assert m["mask_vs_not_accuracy"] == 3 / 4
    assert m["confusion_matrix"] == {"labels": CLASSES, "matrix": [[1, 0, 0], [0, 1, 1], [1, 0, 0]]}
    assert m["per_class_recall"] == {W: 1.0, WO: 0.5, INC: 0.0}
    assert m["by_size"]["medium"]["label_accuracy"] == 2 / 4
    assert m["by_size"]["small"]["label_accuracy"] is None


def test_size_bins_and_ap_by_size():
    # a 20 px face (found) and a 100 px face (missed), both with_mask
    gts = [gt("a", [[0, 0, 20, 20], [100, 100, 200, 200]], [W, W])]
    preds = [pred("a", [[0, 0, 20, 20]], [0.9], [ONE_HOT[W]])]
    m = metrics(gts, preds)
    small, large = m["by_size"]["small"], m["by_size"]["large"]
    assert small["gt_faces"] == 1 and large["gt_faces"] == 1 and m["by_size"]["medium"]["gt_faces"] == 0
    assert small["iou50"]["recall"] == 1.0 and small["iou50"]["precision"] == 1.0
    assert large["iou50"]["recall"] == 0.0 and large["iou50"]["precision"] is None
    # overall AP: precision 1 up to recall 0.5 (51 of 101 points), then 0
    assert m["ap50"][W] == pytest.approx(51 / 101, abs=1e-6)
    # COCO area ranges: the small face alone is found, the large one alone is missed
    assert small["map50"] == pytest.approx(1.0) and small["ap50"][W] == pytest.approx(1.0)
    assert large["map50"] == pytest.approx(0.0) and large["ap50"][W] == pytest.approx(0.0)
    assert m["by_size"]["medium"]["map50"] is None
    assert small["ap_area_range"] == "coco_small"
    # custom bins: face metrics follow them, AP by size is not available
    m = metrics(gts, preds, size_bins={"tiny": (0, 16), "rest": (16, math.inf)})
    assert m["by_size"]["rest"]["iou50"] == {"recall": 0.5, "precision": 1.0, "tp": 1, "fp": 0, "fn": 1}
    assert m["by_size"]["rest"]["range"] == [16.0, None]
    assert m["by_size"]["rest"]["map50"] is None and m["by_size"]["rest"]["ap_area_range"] is None


def test_no_predictions():
    gts = [gt("a", [[0, 0, 50, 50]], [W]), gt("b", [[0, 0, 50, 50]], [WO])]
    empty = Prediction("b", np.zeros((0, 4)), np.zeros(0), [], np.zeros(0), np.zeros((0, 3)))
    m = metrics(gts, [empty])  # image "a" has no Prediction at all, "b" an empty one
    assert m["faces"]["iou50"] == {"recall": 0.0, "precision": None, "tp": 0, "fp": 0, "fn": 2}
    assert m["ap50"] == {W: 0.0, WO: 0.0, INC: None}
    assert m["map50"] == 0.0
    assert m["label_accuracy"] is None and m["mask_vs_not_accuracy"] is None
    assert m["confusion_matrix"]["matrix"] == [[0, 0, 0]] * 3


def test_image_without_faces_gives_only_false_positives():
    preds = [pred("a", [[0, 0, 50, 50], [100, 0, 150, 50]], [0.9, 0.8], [ONE_HOT[W], ONE_HOT[INC]])]
    m = metrics([gt("a", [], [])], preds)
    assert m["faces"]["iou50"] == {"recall": None, "precision": 0.0, "tp": 0, "fp": 2, "fn": 0}
    assert m["faces"]["iou30"]["fp"] == 2
    assert m["map50"] is None and set(m["ap50"].values()) == {None}
    assert m["map50_top1"] is None


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="without ground truth"):
        detection_metrics([gt("a", [], [])], [pred("z", [[0, 0, 1, 1]], [1.0], [ONE_HOT[W]])], CLASSES)
    with pytest.raises(ValueError, match="not in classes"):
        detection_metrics([gt("a", [[0, 0, 1, 1]], ["cat"])], [], CLASSES)


def test_plot_detection_report(tmp_path):
    gts = [gt("a", [[0, 0, 20, 20], [100, 100, 200, 200]], [W, WO])]
    preds = [pred("a", [[0, 0, 20, 20]], [0.9], [ONE_HOT[W]])]
    paths = plot_detection_report(metrics(gts, preds), tmp_path / "report")
    assert [p.name for p in paths] == ["detection_confusion.png", "detection_ap_recall.png"]
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(x.name for x in (tmp_path / "report").iterdir()) == sorted(p.name for p in paths)


def test_many_faces_in_one_image_still_give_ap():
    """40 faces x 3 classes = 120 entries in one image: AP must still be computed (pycocotools' summary is fixed at
    100 detections per image and class; one entry per face and class stays under it)."""
    classes = ["with_mask", "without_mask", "mask_worn_incorrectly"]
    boxes = np.array([[10 * i, 0, 10 * i + 8, 8] for i in range(40)], dtype=np.float32)
    labels = [classes[i % 3] for i in range(40)]
    probs = np.array([[0.9 if c == lab else 0.05 for c in classes] for lab in labels], dtype=np.float32)
    gt = GroundTruth("crowd", boxes, labels)
    pred = Prediction("crowd", boxes, np.ones(40, np.float32), labels, probs.max(1), probs)
    m = detection_metrics([gt], [pred], classes)
    assert m["map50"] == pytest.approx(1.0)
    assert all(v == pytest.approx(1.0) for v in m["ap50"].values())
