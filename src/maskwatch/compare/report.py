"""The comparison's tables (results.md/.csv/.json, rich tables) and plots."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from maskwatch.io import atomic_path, read_json, write_json, write_text

if TYPE_CHECKING:
    from rich.table import Table

    from maskwatch.compare.plan import ComparePlan

CSV_COLUMNS = (
    "model",
    "status",
    "reason",
    "run_status",
    "pretrained",
    "pretrained_source",
    "frozen_backbone",
    "image_size",
    "params",
    "flops",
    "latency_ms_b1",
    "latency_ms_b32",
    "train_time_s",
    "epoch_time_s",
    "epochs_run",
    "best_epoch",
    "max_epochs",
    "time_limit_s",
    "test_samples",
    "test_loss",
    "accuracy",
    "macro_precision",
    "macro_recall",
    "macro_f1",
    "ece",
    "cross_samples",
    "cross_accuracy",
    "cross_macro_f1",
    "cross_error",
    "note",
    "run_dir",
)
PLOTS = ("scores.png", "val_curves.png", "confusion_matrices.png")


def _labels(rows: Sequence[dict]) -> list[str]:
    return list(dict.fromkeys(label for r in rows for label in r["per_class_f1"]))


def method_notes(meta: dict) -> list[str]:
    env = meta["environment"]
    runs = meta["request"]["latency_runs"]
    return [
        "pretrained: what each run's run.json says really loaded (no means the model trained from scratch).",
        "FLOPs: one image at the model's input size, counted by torch.utils.flop_counter.FlopCounterMode "
        "(convolutions and matrix products; a multiply-add counts as 2).",
        f"CPU latency: PyTorch {env['torch']} eager on this CPU ({env['cpu']}, {env['cpu_cores']} cores, "
        f"{env['torch_threads']} torch threads), float32, eval mode, torch.inference_mode, channels_last; "
        f"the median of {runs} timed forward passes after 2 warm-up passes, divided by the batch size "
        "(milliseconds per image at batch 1 and batch 32). Not ONNX Runtime, not a GPU.",
        "train time: wall-clock of the model's whole training run (data loading, feature caching for a frozen "
        "backbone, epochs, calibration, test evaluation), summed over resumed sessions; epoch time: the epochs alone.",
        "macro precision/recall/F1: the mean over the classes present in the test split.",
    ]


def write_results(out: Path, meta: dict, rows: Sequence[dict]) -> None:
    """results.json, results.csv and results.md in ``out``."""
    notes = method_notes(meta)
    write_json(out / "results.json", {**meta, "notes": notes, "models": list(rows)})
    labels = _labels(rows)
    with atomic_path(out / "results.csv") as tmp, tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow([*CSV_COLUMNS, *(f"f1_{label}" for label in labels)])
        for r in rows:
            writer.writerow(
                [_csv(r.get(c)) for c in CSV_COLUMNS] + [_csv(r["per_class_f1"].get(label)) for label in labels]
            )
    write_text(out / "results.md", _markdown(meta, rows, notes))


def _csv(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return value


def _f(value: float | None, digits: int = 4) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _pretrained(r: dict) -> str:
    if r["pretrained"]:
        return f"yes ({r['pretrained_source']})" + (", frozen" if r["frozen_backbone"] else ", fine-tuned")
    return "no (from scratch)" if r["run_status"] else "–"


def _epochs(r: dict) -> str:
    if r["epochs_run"] is None:
        return "–"
    return f"{r['epochs_run']}/{r['max_epochs']} ({r['best_epoch']})" + (
        f", {r['run_status'].replace('_', ' ')}" if r["run_status"] in ("stopped_early", "time_limit") else ""
    )


def _md_table(header: Sequence[str], body: Sequence[Sequence[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
        *("| " + " | ".join(cells) + " |" for cells in body),
    ]


def _overridden(req: dict) -> str:
    """The flags that changed the preset, as a sentence ('' when none)."""
    flags = {k: v for k, v in (req.get("overrides") or {}).items() if v is not None}
    if not flags:
        return ""
    return " Overridden by flags: " + ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in flags.items()) + "."


def _markdown(meta: dict, rows: Sequence[dict], notes: Sequence[str]) -> str:
    req, preset, split = meta["request"], meta["preset"], meta.get("split") or {}
    cross = bool(req["eval_data"])
    tests = sorted({r["test_samples"] for r in rows if r["test_samples"] is not None})
    n_train, n_val, n_test = (split.get(k, {}).get("images", "?") for k in ("train", "val", "test"))
    lines = [
        "# Model comparison",
        "",
        f"Data: {', '.join(_data_name(d) for d in req['data'])}. One {split.get('kind', req['split'])} split "
        f"(seed {req['seed']}, saved in `split/`): {n_train} train, {n_val} validation, {n_test} test images. "
        f"Preset `{preset['name']}`: {preset['description']}.{_overridden(req)} Every model: the same split, "
        f"augmentation `{preset['augment']}`, the budget below (epochs, time limit, early stopping on validation "
        f"loss) and the same test images ({', '.join(map(str, tests)) or '–'}).",
        "",
    ]
    if cross:
        lines += [f"Cross-data-set: {', '.join(f'`{d}`' for d in req['eval_data'])}.", ""]
    header = [
        "model",
        "status",
        "pretrained",
        "input px",
        "params (M)",
        "GFLOPs/image",
        "CPU ms/image b1",
        "CPU ms/image b32",
        "train s",
        "epochs (best)",
        "test loss",
        "accuracy",
        "macro P",
        "macro R",
        "macro-F1",
    ]
    if cross:
        header += ["cross acc.", "cross macro-F1"]
    body = []
    for r in rows:
        cells = [
            f"`{r['model']}`",
            r["status"],
            _pretrained(r),
            str(r["image_size"]),
            _f(r["params"] / 1e6 if r["params"] else None, 2),
            _f(r["flops"] / 1e9 if r["flops"] else None, 3),
            _f(r["latency_ms_b1"], 2),
            _f(r["latency_ms_b32"], 2),
            _f(r["train_time_s"], 0),
            _epochs(r),
            _f(r["test_loss"]),
            _f(r["accuracy"]),
            _f(r["macro_precision"]),
            _f(r["macro_recall"]),
            _f(r["macro_f1"]),
        ]
        if cross:
            cells += [_f(r["cross_accuracy"]), _f(r["cross_macro_f1"])]
        body.append(cells)
    lines += _md_table(header, body)
    labels = _labels(rows)
    scored = [r for r in rows if r["per_class_f1"]]
    if scored:
        lines += ["", "## Per-class F1 (test)", ""]
        lines += _md_table(
            ["model", *labels], [[f"`{r['model']}`", *(_f(r["per_class_f1"].get(x)) for x in labels)] for r in scored]
        )
    troubles = [r for r in rows if r["status"] != "ok" or r["cross_error"]]
    if troubles:
        lines += ["", "## Failed", ""]
        for r in troubles:
            reason = r["reason"] if r["status"] != "ok" else f"cross-data-set evaluation: {r['cross_error']}"
            lines.append(f"- `{r['model']}` ({r['status']}): {reason}")
    lines += ["", "## Settings per model", ""]
    settings = meta["settings"]
    lines += _md_table(
        ["model", "input px", "max epochs", "time limit s", "patience", "batch", "freeze", "asks for weights", "note"],
        [
            [
                f"`{name}`",
                str(s["image_size"]),
                str(s["epochs"]),
                "–" if s["time_limit"] is None else f"{s['time_limit']:g}",
                str(s["patience"]),
                str(s["batch_size"]),
                s["freeze"],
                s["expected_weights"] or "no",
                s["error"] or s["note"] or "",
            ]
            for name, s in settings.items()
        ],
    )
    lines += ["", "## How it was measured", "", *(f"- {n}" for n in notes), ""]
    lines += [f"![{name}]({name})" for name in PLOTS]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- plots
def write_plots(out: Path, rows: Sequence[dict]) -> list[Path]:
    """scores.png, val_curves.png and confusion_matrices.png for the models that finished."""
    ok = [r for r in rows if r["status"] == "ok"]
    if not ok:
        return []
    paths = [out / name for name in PLOTS]
    plot_scores(ok, paths[0])
    plot_val_curves({r["model"]: _history(out, r) for r in ok}, paths[1])
    plot_confusions(ok, paths[2])
    return paths


def _history(out: Path, row: dict) -> list[dict]:
    path = out / row["run_dir"] / "history.json" if row["run_dir"] else None
    return read_json(path) if path is not None and path.is_file() else []


def plot_scores(rows: Sequence[dict], path: Path) -> None:
    """Grouped bars per model: test accuracy, test macro-F1 and (where measured) cross-data-set accuracy."""
    import numpy as np

    from maskwatch.evaluate.plots import plt
    from maskwatch.io import save_figure

    series = [("test accuracy", "accuracy"), ("test macro-F1", "macro_f1")]
    if any(r["cross_accuracy"] is not None for r in rows):
        series.append(("cross-data-set accuracy", "cross_accuracy"))
    width = 0.8 / len(series)
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(rows) + 2), 4.2))
    values = []
    for k, (title, key) in enumerate(series):
        v = [r[key] if r[key] is not None else 0.0 for r in rows]
        values += [a for a, r in zip(v, rows, strict=True) if r[key] is not None]
        bars = ax.bar(x + k * width, v, width, label=title)
        ax.bar_label(bars, fmt="%.3f", fontsize=7, rotation=90, padding=2)
    low = max(0.0, min(values, default=0.0) - 0.1)
    ax.set_ylim(low, 1.08)
    ax.set_xticks(x + width * (len(series) - 1) / 2, [r["model"] for r in rows], rotation=20, ha="right")
    ax.set_ylabel("score")
    ax.set_title("test and cross-data-set scores")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=len(series), frameon=False)
    save_figure(path, fig)


def plot_val_curves(histories: dict[str, list[dict]], path: Path) -> None:
    """Every model's validation loss and accuracy per epoch, overlaid."""
    from matplotlib.ticker import MaxNLocator

    from maskwatch.evaluate.plots import plt
    from maskwatch.io import save_figure

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, key, title in ((axes[0], "val_loss", "validation loss"), (axes[1], "val_accuracy", "validation accuracy")):
        for name, history in histories.items():
            if history:
                ax.plot([h["epoch"] for h in history], [h[key] for h in history], "o-", ms=3, label=name)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8)
    save_figure(path, fig)


def plot_confusions(rows: Sequence[dict], path: Path, cols: int = 4) -> None:
    """The test confusion matrices of all models in one grid (row-normalised colours, counts written)."""
    import numpy as np

    from maskwatch.evaluate.plots import plt
    from maskwatch.io import save_figure

    rows = [r for r in rows if r["confusion_matrix"]]
    if not rows:
        return
    cols = min(cols, len(rows))
    nrows = (len(rows) + cols - 1) // cols
    k = max(len(r["confusion_matrix"]["labels"]) for r in rows)
    side = 1.2 + 1.0 * k
    fig, axes = plt.subplots(nrows, cols, figsize=(side * cols, side * nrows + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, r in zip(axes.flat, rows, strict=False):
        labels = r["confusion_matrix"]["labels"]
        cm = np.asarray(r["confusion_matrix"]["matrix"])
        norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
        ax.axis("on")
        ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
        for i in range(len(labels)):
            for j in range(len(labels)):
                ax.text(
                    j,
                    i,
                    str(cm[i, j]),
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if norm[i, j] > 0.5 else "black",
                )
        short = [label.replace("mask_worn_incorrectly", "incorrect").replace("_mask", "") for label in labels]
        ax.set_xticks(range(len(labels)), short, rotation=25, ha="right", fontsize=7)
        ax.set_yticks(range(len(labels)), short, fontsize=7)
        ax.set_title(f"{r['model']}\nacc {r['accuracy']:.3f}, macro-F1 {r['macro_f1']:.3f}", fontsize=8)
    fig.supxlabel("predicted")
    fig.supylabel("true")
    save_figure(path, fig)


# ---------------------------------------------------------------- console tables
def settings_table(plan: ComparePlan) -> Table:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"compare: preset {plan.preset.name}, {len(plan.settings)} models -> {plan.out}")
    for col in ("model", "input", "epochs", "time limit", "patience", "batch", "freeze", "weights", "note"):
        table.add_column(col)
    for name, s in plan.settings.items():
        table.add_row(
            name,
            str(s.image_size),
            str(s.epochs),
            "–" if s.time_limit is None else f"{s.time_limit:g} s",
            str(s.patience),
            str(s.batch_size),
            s.freeze,
            s.expected_weights or "from scratch",
            f"[red]{escape(s.error)}[/]" if s.error else escape(s.note),
        )
    return table


def results_table(rows: Sequence[dict], out: Path) -> Table:
    from rich.table import Table

    cross = any(r["cross_accuracy"] is not None for r in rows)
    table = Table(title=f"comparison -> {out / 'results.md'}")
    cols = ["model", "status", "pretrained", "params M", "GFLOPs", "ms b1", "ms b32", "train s", "epochs", "acc"]
    cols += ["macro-F1"] + (["cross acc", "cross F1"] if cross else [])
    for col in cols:
        table.add_column(col, justify="left" if col in ("model", "status", "pretrained") else "right")
    for r in rows:
        cells = [
            r["model"],
            r["status"] if r["status"] == "ok" else f"[red]{r['status']}[/]",
            "yes" if r["pretrained"] else "no",
            _f(r["params"] / 1e6 if r["params"] else None, 2),
            _f(r["flops"] / 1e9 if r["flops"] else None, 3),
            _f(r["latency_ms_b1"], 2),
            _f(r["latency_ms_b32"], 2),
            _f(r["train_time_s"], 0),
            _epochs(r),
            _f(r["accuracy"]),
            _f(r["macro_f1"]),
        ]
        if cross:
            cells += [_f(r["cross_accuracy"]), _f(r["cross_macro_f1"])]
        table.add_row(*cells)
    return table


def _data_name(root: str) -> str:
    """A data set as named in the report; synthetic sets (made by ``maskwatch data synth``) say so."""
    return f"`{root}` (synthetic)" if (Path(root) / "SYNTHETIC").exists() else f"`{root}`"
