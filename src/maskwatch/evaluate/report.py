"""The report of one evaluation: metrics.json plus its pictures, written into a folder."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from maskwatch.data.dataset import Sample
from maskwatch.evaluate.metrics import classification_metrics, positive_index
from maskwatch.evaluate.plots import image_grid, plot_confusion, plot_reliability, plot_roc_pr
from maskwatch.io import read_json, write_json


def write_report(
    out_dir: Path,
    samples: Sequence[Sample],
    labels: Sequence[str],
    probs: np.ndarray,
    split_info: dict,
    key: str = "test",
    worst: int = 24,
) -> dict:
    """Compute metrics for ``samples`` and write metrics.json (``{"split": ..., key: ...}``),
    confusion_matrix.json/png, reliability.png, roc_pr.png (two classes) and worst.png."""
    out_dir.mkdir(parents=True, exist_ok=True)
    index = {label: i for i, label in enumerate(labels)}
    y = np.array([index[s.label] for s in samples])
    metrics = classification_metrics(y, probs, labels)
    path = out_dir / "metrics.json"
    existing = read_json(path) if path.is_file() else {}
    existing["split"] = split_info
    existing[key] = metrics
    write_json(path, existing)
    prefix = "" if key == "test" else f"{key}_"
    write_json(out_dir / f"{prefix}confusion_matrix.json", metrics["confusion_matrix"])
    plot_confusion(
        metrics["confusion_matrix"]["matrix"],
        labels,
        out_dir / f"{prefix}confusion_matrix.png",
        title=f"{key}: accuracy {metrics['accuracy']:.4f}, macro-F1 {metrics['macro_f1']:.4f}",
    )
    plot_reliability(y, probs, out_dir / f"{prefix}reliability.png")
    if "binary" in metrics:
        pos = positive_index(labels)
        plot_roc_pr((y == pos).astype(int), probs[:, pos], labels[pos], out_dir / f"{prefix}roc_pr.png")
    pred = probs.argmax(axis=1)
    wrong = np.nonzero(pred != y)[0]
    wrong = wrong[np.argsort(-probs[wrong, pred[wrong]])][:worst]
    image_grid(
        [
            (samples[i].path, f"true {labels[y[i]]}\npred {labels[pred[i]]} {probs[i, pred[i]]:.2f}", labels[pred[i]])
            for i in wrong
        ],
        out_dir / f"{prefix}worst.png",
        title=f"{key}: most confident mistakes ({len(wrong)} of {int((pred != y).sum())})",
    )
    return metrics
