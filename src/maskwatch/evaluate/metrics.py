"""Classification metrics from true labels and predicted probabilities.

scikit-learn computes precision/recall/F1, the confusion matrix and the ROC/PR curves; the expected calibration
error (top-label, L1, equal-width bins) is torchmetrics' ``multiclass_calibration_error``, in numpy (the tests
compare the two).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import (
    average_precision_score,
    confusion_matrix,
    precision_recall_fscore_support,
    roc_auc_score,
)

from maskwatch.labels import WITH_MASK


def positive_index(labels: Sequence[str]) -> int:
    """The class treated as positive in binary curves: ``with_mask`` when present, else the second."""
    return list(labels).index(WITH_MASK) if WITH_MASK in labels else 1


def expected_calibration_error(y_true: np.ndarray, probs: np.ndarray, n_bins: int = 15) -> float:
    """Top-label ECE: the confidences (top probability) in ``n_bins`` equal-width bins ``[lo, hi)`` (1.0 in a bin of
    its own, as torchmetrics' bucketing puts it), the share-weighted mean of |accuracy - mean confidence| per bin."""
    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(y_true, dtype=np.int64)
    if len(y) == 0:
        return 0.0
    confidence = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.searchsorted(edges, confidence, side="right") - 1, 0, n_bins)
    count = np.bincount(which, minlength=n_bins + 1).astype(np.float64)
    conf = np.bincount(which, weights=confidence, minlength=n_bins + 1)
    acc = np.bincount(which, weights=correct, minlength=n_bins + 1)
    seen = count > 0
    return float(np.sum(np.abs(acc[seen] - conf[seen])) / count.sum())


def classification_metrics(y_true: Sequence[int], probs: np.ndarray, labels: Sequence[str], n_bins: int = 15) -> dict:
    """accuracy, macro-F1, per-class precision/recall/F1/support, confusion matrix, loss, ECE
    (and ROC-AUC / average precision for two classes)."""
    y = np.asarray(y_true, dtype=int)
    p = np.asarray(probs, dtype=np.float64)
    if len(y) == 0:
        raise ValueError("no samples to evaluate")
    k = len(labels)
    pred = p.argmax(axis=1)
    prec, rec, f1, support = precision_recall_fscore_support(y, pred, labels=list(range(k)), zero_division=0)
    present = support > 0
    cm = confusion_matrix(y, pred, labels=list(range(k)))
    out = {
        "samples": len(y),
        "accuracy": float((pred == y).mean()),
        # macro over the classes that occur in the evaluated set
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "per_class": {
            label: {
                "precision": float(prec[i]),
                "recall": float(rec[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, label in enumerate(labels)
        },
        "confusion_matrix": {"labels": list(labels), "matrix": cm.tolist()},
        "loss": float(-np.log(np.clip(p[np.arange(len(y)), y], 1e-12, 1.0)).mean()),
        "ece": expected_calibration_error(y, p, n_bins),
    }
    if k == 2 and len(set(y.tolist())) == 2:
        pos = positive_index(labels)
        out["binary"] = {
            "positive": labels[pos],
            "roc_auc": float(roc_auc_score(y == pos, p[:, pos])),
            "average_precision": float(average_precision_score(y == pos, p[:, pos])),
        }
    return out
