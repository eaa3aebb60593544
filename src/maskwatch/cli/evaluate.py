"""``maskwatch evaluate`` (a classifier on face crops) and ``maskwatch evaluate-detect`` (detector + classifier on
annotated scenes)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from maskwatch.cli.common import (
    BackendOpt,
    BoxFitOpt,
    DataOpt,
    DetSizeOpt,
    DetThresholdOpt,
    MarginOpt,
    TilesOpt,
    at_least_one,
    friendly,
    open_pipeline,
    print_metrics,
)
from maskwatch.detect.config import DetectorConfig
from maskwatch.detect.defaults import DEFAULT_BOX_FIT, DEFAULT_DET_SIZE, DEFAULT_DET_THRESHOLD, DEFAULT_MARGIN
from maskwatch.errors import MaskwatchError
from maskwatch.paths import check_output_path
from maskwatch.progress import console


def register(app: typer.Typer) -> None:
    """Add ``evaluate`` and ``evaluate-detect`` to ``app``."""
    app.command()(friendly(evaluate))
    app.command("evaluate-detect")(friendly(evaluate_detect))


def evaluate(
    model: Annotated[Path, typer.Argument(help="Checkpoint (.pt) or run folder.")],
    data: DataOpt = None,  # type: ignore[assignment]
    out: Annotated[Path | None, typer.Option(help="Report folder (default: runs/evaluate/<model>-<data>).")] = None,
    split_from: Annotated[
        Path | None, typer.Option(help="Evaluate only one part of a saved split (run or split folder).")
    ] = None,
    subset: Annotated[
        str | None,
        typer.Option(
            help="train | val | test: the part of the split to evaluate (--split-from, else the split saved with the"
            " run given as the model). Default: test with a split, every image without one."
        ),
    ] = None,
    batch_size: int = 64,
    device: str = "auto",
    margin: float = 0.15,
    min_box: int = 12,
    reframe: Annotated[
        bool,
        typer.Option(
            help="Cut loosely framed crops again around their face first, as `maskwatch classify` does (default"
            " off: the model on the crops as they are)."
        ),
    ] = False,
) -> None:
    """Evaluate a trained model on data sets: metrics.json, confusion matrix, curves, worst mistakes."""
    from maskwatch.train.evaluate import evaluate_model

    if not data:
        raise MaskwatchError("give at least one --data DIR")
    at_least_one(batch_size=batch_size)
    check_output_path("--out", out)
    report = evaluate_model(
        model,
        [str(d) for d in data],
        out=out,
        split_from=split_from,
        subset=subset,
        batch_size=batch_size,
        device=device,
        margin=margin,
        min_box=min_box,
        reframe=reframe,
    )
    print_metrics(report["metrics"], report["out"])


def evaluate_detect(
    data: Annotated[Path, typer.Option("--data", "-d", help="Pascal VOC scene folder with face boxes.")],
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            "-m",
            help="An .onnx file, checkpoint .pt or run folder (default: the shipped model). Repeat to score several"
            " on the same scenes side by side (the first is the baseline; each gets a subfolder).",
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Report folder (default: runs/evaluate-detect/<data>).")] = None,
    split_from: Annotated[
        Path | None,
        typer.Option(
            help="Only the scenes of one part of this training split (run or split folder, or a text file of scene"
            " names): held-out data."
        ),
    ] = None,
    subset: Annotated[str, typer.Option(help="With --split-from: train | val | test.")] = "test",
    bootstrap: Annotated[
        int,
        typer.Option(
            help="With several --model: draws of the paired bootstrap over scenes that puts a 95% interval on each"
            " AP50 change (0: off)."
        ),
    ] = 1000,
    det_size: DetSizeOpt = DEFAULT_DET_SIZE,
    det_threshold: DetThresholdOpt = DEFAULT_DET_THRESHOLD,
    tiles: TilesOpt = 0,
    margin: MarginOpt = DEFAULT_MARGIN,
    box_fit: BoxFitOpt = DEFAULT_BOX_FIT,
    backend: BackendOpt = "auto",
    device: str = "auto",
) -> None:
    """Detector + classifier on annotated scenes: face recall/precision, AP50 per class, mAP50, label accuracy."""
    from maskwatch.evaluate.scenes import compare_scene_metrics, evaluate_scenes, model_names

    if bootstrap < 0:
        raise MaskwatchError("--bootstrap must be 0 (off) or a number of draws")
    out = out or Path("runs/evaluate-detect") / data.name
    check_output_path("--out", out)
    config = DetectorConfig.from_options(
        det_size=det_size, det_threshold=det_threshold, tiles=tiles, margin=margin, box_fit=box_fit
    )
    models: list[str | None] = list(model) if model else [None]
    if len(models) > 1:
        names = model_names(models)
        results = {}
        for name, one in zip(names, models, strict=True):
            pipeline = open_pipeline(one, config, backend=backend, device=device)
            results[name] = evaluate_scenes(data, pipeline, out / name, split_from=split_from, subset=subset)
        compare_scene_metrics(results, out, draws=bootstrap)
        console.print((out / "comparison.md").read_text(encoding="utf-8"))
        console.print(f"reports: {out}/<model>/, side by side: {out / 'comparison.md'}")
        return
    pipeline = open_pipeline(models[0], config, backend=backend, device=device)
    m = evaluate_scenes(data, pipeline, out, split_from=split_from, subset=subset).metrics
    f = m["faces"]
    table = Table(title=f"{m['counts']['images']} images, {m['counts']['gt_faces_total']} faces")
    for col in ("metric", "value"):
        table.add_column(col)
    rows = [
        ("face recall @IoU0.5 / 0.3", f"{f['iou50']['recall']:.4f} / {f['iou30']['recall']:.4f}"),
        ("face precision @IoU0.5 / 0.3", f"{f['iou50']['precision']:.4f} / {f['iou30']['precision']:.4f}"),
        ("mAP50 (3 classes)", _fmt(m["map50"])),
        *((f"AP50 {k}", _fmt(v)) for k, v in m["ap50"].items()),
        (f"label accuracy ({m['matched_faces']} matched faces)", _fmt(m["label_accuracy"])),
        ("mask vs no mask accuracy", _fmt(m["mask_vs_not_accuracy"])),
    ]
    for row in rows:
        table.add_row(*row)
    console.print(table)
    console.print(f"report: {out}")


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.4f}"
