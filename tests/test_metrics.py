import math

import numpy as np
import pytest

from maskwatch.evaluate.metrics import classification_metrics, expected_calibration_error


def test_metrics_match_hand_computed_values():
    labels = ["with_mask", "without_mask"]
    y = [0, 0, 0, 1, 1]
    probs = np.array([[0.93, 0.07], [0.62, 0.38], [0.28, 0.72], [0.17, 0.83], [0.57, 0.43]])
    m = classification_metrics(y, probs, labels, n_bins=10)
    # predictions: 0, 0, 1, 1, 0 -> 3 of 5 right
    assert m["accuracy"] == pytest.approx(0.6)
    # with_mask: TP 2, FP 1, FN 1 -> P 2/3, R 2/3; without_mask: TP 1, FP 1, FN 1 -> P 1/2, R 1/2
    assert m["per_class"]["with_mask"]["precision"] == pytest.approx(2 / 3)
    assert m["per_class"]["with_mask"]["recall"] == pytest.approx(2 / 3)
    assert m["per_class"]["without_mask"]["f1"] == pytest.approx(0.5)
    assert m["per_class"]["without_mask"]["support"] == 2
    assert m["macro_f1"] == pytest.approx((2 / 3 + 0.5) / 2)
    assert m["confusion_matrix"] == {"labels": labels, "matrix": [[2, 1], [1, 1]]}
    loss = -(math.log(0.93) + math.log(0.62) + math.log(0.28) + math.log(0.83) + math.log(0.43)) / 5
    assert m["loss"] == pytest.approx(loss)
    # ECE, 10 equal bins of the top confidence, one sample each (none on a bin edge):
    # 0.93 right, 0.62 right, 0.72 wrong, 0.83 right, 0.57 wrong -> mean |accuracy - confidence|
    ece = (0.07 + 0.38 + 0.72 + 0.17 + 0.57) / 5
    assert m["ece"] == pytest.approx(ece, abs=1e-6)
    # ROC-AUC, with_mask positive: scores 0.93, 0.62, 0.28 vs 0.17, 0.57 -> 5 of 6 pairs ordered
    assert m["binary"]["positive"] == "with_mask"
    assert m["binary"]["roc_auc"] == pytest.approx(5 / 6)


def test_perfect_and_three_class():
    probs = np.eye(3)[[0, 1, 2, 2]] * 0.97 + 0.01
    m = classification_metrics([0, 1, 2, 2], probs, ["a", "b", "c"])
    assert m["accuracy"] == 1.0 and m["macro_f1"] == 1.0
    assert "binary" not in m
    assert m["ece"] == pytest.approx(0.02, abs=1e-6)  # confidence 0.98, accuracy 1


def test_macro_f1_counts_only_present_classes():
    probs = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1]])
    m = classification_metrics([0, 1], probs, ["a", "b", "c"])
    assert m["macro_f1"] == 1.0 and m["per_class"]["c"]["support"] == 0


def test_ece_zero_when_confidence_equals_accuracy():
    probs = np.array([[0.75, 0.25]] * 4)
    assert expected_calibration_error(np.array([0, 0, 0, 1]), probs) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("seed", range(5))
def test_ece_equals_torchmetrics(seed):
    torchmetrics = pytest.importorskip("torchmetrics", reason="the reference comes with the training install")
    import torch

    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2, (300, 3))
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    probs[:5] = np.eye(3)[rng.integers(0, 3, 5)]  # confidence exactly 1.0: the last bucket
    y = rng.integers(0, 3, 300)
    ref = torchmetrics.functional.classification.multiclass_calibration_error(
        torch.as_tensor(probs), torch.as_tensor(y), num_classes=3, n_bins=15, norm="l1"
    )
    assert expected_calibration_error(y, probs) == pytest.approx(float(ref), abs=1e-6)  # torchmetrics: float32
