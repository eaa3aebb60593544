"""Pictures of results: training curves, confusion matrices, ROC/PR curves, reliability, image grids."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from PIL import Image

from maskwatch.io import save_figure
from maskwatch.labels import label_color


def plot_curves(history: Sequence[dict], path: Path) -> None:
    """Loss and accuracy per epoch, train vs validation."""
    epochs = [h["epoch"] for h in history]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, key, title in ((axes[0], "loss", "loss"), (axes[1], "accuracy", "accuracy")):
        ax.plot(epochs, [h[f"train_{key}"] for h in history], "o-", label="train")
        ax.plot(epochs, [h[f"val_{key}"] for h in history], "o-", label="validation")
        if key == "accuracy" and "val_macro_f1" in history[0]:
            ax.plot(epochs, [h["val_macro_f1"] for h in history], "s--", label="validation macro-F1")
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
    save_figure(path, fig)


def plot_confusion(matrix: Sequence[Sequence[int]], labels: Sequence[str], path: Path, title: str = "") -> None:
    cm = np.asarray(matrix)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * len(labels), 1.2 + 1.2 * len(labels)))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(
                j,
                i,
                f"{cm[i, j]}\n{norm[i, j]:.1%}",
                ha="center",
                va="center",
                color="white" if norm[i, j] > 0.5 else "black",
                fontsize=9,
            )
    ax.set_xticks(range(len(labels)), labels, rotation=25, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or "confusion matrix (row-normalised)")
    save_figure(path, fig)


def plot_roc_pr(y_true: np.ndarray, scores: np.ndarray, positive: str, path: Path) -> None:
    from sklearn.metrics import auc, precision_recall_curve, roc_curve

    fpr, tpr, _ = roc_curve(y_true, scores)
    prec, rec, _ = precision_recall_curve(y_true, scores)
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 4))
    a.plot(fpr, tpr, label=f"AUC {auc(fpr, tpr):.4f}")
    a.plot([0, 1], [0, 1], "k:", alpha=0.5)
    a.set(xlabel="false positive rate", ylabel="true positive rate", title=f"ROC ({positive} positive)")
    b.plot(rec, prec)
    b.set(xlabel="recall", ylabel="precision", title=f"precision-recall ({positive} positive)")
    for ax in (a, b):
        ax.grid(alpha=0.3)
    a.legend(loc="lower right")
    save_figure(path, fig)


def plot_reliability(y_true: np.ndarray, probs: np.ndarray, path: Path, n_bins: int = 15) -> None:
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y_true
    edges = np.linspace(0, 1, n_bins + 1)
    idx = np.clip(np.digitize(conf, edges[1:-1]), 0, n_bins - 1)
    centers, accs, counts = [], [], []
    for b in range(n_bins):
        m = idx == b
        if m.any():
            centers.append(conf[m].mean())
            accs.append(correct[m].mean())
            counts.append(int(m.sum()))
    fig, ax = plt.subplots(figsize=(4.5, 4.2))
    ax.plot([0, 1], [0, 1], "k:", alpha=0.6, label="perfect calibration")
    ax.plot(centers, accs, "o-", label="model")
    for x, y, n in zip(centers, accs, counts, strict=True):
        ax.annotate(str(n), (x, y), textcoords="offset points", xytext=(4, -10), fontsize=7)
    ax.set(
        xlabel="confidence (top label)", ylabel="accuracy", title="reliability (n per bin)", xlim=(0, 1), ylim=(0, 1.05)
    )
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")
    save_figure(path, fig)


def image_grid(
    items: Sequence[tuple[Path, str, str]], path: Path, cols: int = 6, thumb: int = 128, title: str = ""
) -> None:
    """A grid of thumbnails; each item is (image path, caption, label for the frame colour)."""
    if not items:
        return
    rows = (len(items) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 2.0, rows * 2.25), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (img_path, caption, label) in zip(axes.flat, items, strict=False):
        try:
            with Image.open(img_path) as im:
                im = im.convert("RGB")
                im.thumbnail((thumb, thumb))
                ax.imshow(im)
        except OSError:
            ax.text(0.5, 0.5, "unreadable", ha="center", va="center")
        ax.set_title(caption, fontsize=7, color=np.array(label_color(label)) / 255)
    if title:
        fig.suptitle(title)
    save_figure(path, fig)


def plot_class_balance(counts_by_set: dict[str, dict[str, int]], path: Path) -> None:
    """Grouped bars: images per class, one colour per class, one group per data set or split."""
    sets = list(counts_by_set)
    labels = sorted({label for c in counts_by_set.values() for label in c})
    width = 0.8 / max(1, len(labels))
    fig, ax = plt.subplots(figsize=(max(5, 1.8 * len(sets) + 2), 4))
    for j, label in enumerate(labels):
        values = [counts_by_set[s].get(label, 0) for s in sets]
        bars = ax.bar(
            np.arange(len(sets)) + j * width, values, width, label=label, color=np.array(label_color(label)) / 255
        )
        ax.bar_label(bars, fontsize=8)
    ax.set_xticks(np.arange(len(sets)) + width * (len(labels) - 1) / 2, sets, fontsize=8)
    ax.set_ylabel("images")
    ax.set_title("class balance")
    ax.legend()
    save_figure(path, fig)
