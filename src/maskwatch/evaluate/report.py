"""The report of one evaluation: metrics.json plus its pictures, written into a folder."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from maskwatch.io import atomic_path, read_json, write_json
from maskwatch.progress import info, shown

if TYPE_CHECKING:  # write_report's imports (torch, sklearn, matplotlib) wait for it: write_problems needs none
    import numpy as np

    from maskwatch.data.dataset import Sample


def write_problems(
    out_dir: Path, problems: Iterable[tuple[str | Path, str]], *, what: str | None = None, show: int = 3
) -> Path:
    """Write ``out_dir/problems.csv`` (path, reason: one row per file or box left out; the header alone when none,
    so no list from an earlier run is left behind) and, when there are any, say so on the console: how many
    (``what``, default "N files skipped"), where the list is, and the first ``show`` of them with their reasons."""
    rows = [(str(path), str(reason)) for path, reason in problems]
    path = Path(out_dir) / "problems.csv"
    with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "reason"])
        writer.writerows(rows)
    if rows:
        first = "; ".join(f"{shown(Path(p).name)}: {shown(r)}" for p, r in rows[:show])
        more = f"; ... {len(rows) - show} more" if len(rows) > show else ""
        what = what or f"{len(rows)} file{'s' if len(rows) != 1 else ''} skipped"
        info(f"[yellow]{shown(what)} (see {shown(path)}):[/] {first}{more}")
    return path


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
    import numpy as np

    from maskwatch.evaluate.metrics import classification_metrics, positive_index
    from maskwatch.evaluate.plots import image_grid, plot_confusion, plot_reliability, plot_roc_pr

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
