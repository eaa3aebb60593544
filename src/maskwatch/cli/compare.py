"""``maskwatch compare``: parses, calls the library (``maskwatch.compare``), prints the tables. Light at import
time (no torch)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from maskwatch.cli.common import friendly
from maskwatch.compare.presets import STUDY_MODELS
from maskwatch.interrupts import sigterm_as_ctrl_c


def register(app: typer.Typer) -> None:
    """Add ``compare`` to ``app``."""
    app.command()(friendly(compare))


def compare(
    data: Annotated[
        list[Path] | None,
        typer.Option("--data", "-d", help="Data set folder (class folders or Pascal VOC); repeat to combine."),
    ] = None,
    models: Annotated[str, typer.Option(help="Comma-separated registered model names.")] = ",".join(STUDY_MODELS),
    out: Annotated[Path | None, typer.Option(help="Folder for the comparison (split, runs, results).")] = None,
    eval_data: Annotated[
        list[Path] | None,
        typer.Option(help="Cross-data-set folder (e.g. VOC scenes: boxes become face crops); repeat to combine."),
    ] = None,
    split: Annotated[str, typer.Option(help="grouped | random (the study's protocol)")] = "grouped",
    ratios: Annotated[str, typer.Option(help="train,val,test shares.")] = "0.7,0.15,0.15",
    preset: Annotated[
        str, typer.Option(help="cpu-quick (2 CPU cores, under an hour) | gpu-full (native sizes, fine-tuning)")
    ] = "cpu-quick",
    epochs: Annotated[int | None, typer.Option(help="Most epochs per model (default: the preset's).")] = None,
    image_size: Annotated[int | None, typer.Option(help="Input size for every model (default: preset).")] = None,
    time_limit: Annotated[
        float | None,
        typer.Option(help="Seconds of epochs per model; stops after the epoch that passes it (0: none)."),
    ] = None,
    batch_size: Annotated[int | None, typer.Option(help="Batch size (default: the preset's).")] = None,
    freeze: Annotated[
        str | None, typer.Option(help="backbone | none, for models that start from pretrained weights.")
    ] = None,
    patience: Annotated[int | None, typer.Option(help="Early stopping patience (0: off).")] = None,
    fallback_scratch: Annotated[
        bool | None,
        typer.Option(
            "--fallback-scratch/--no-fallback-scratch",
            help="Train from scratch when pretrained weights do not load (default: the preset's).",
        ),
    ] = None,
    resume: Annotated[bool, typer.Option(help="Skip models whose run finished; continue interrupted ones.")] = False,
    seed: int = 0,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda | cuda:N | mps")] = "auto",
    workers: Annotated[int | None, typer.Option(help="Data-loading processes (default: cores - 1).")] = None,
    latency_runs: Annotated[int, typer.Option(help="Timed CPU forward passes per batch size.")] = 5,
) -> None:
    """Train several registered models under the same split, budget and augmentation, and compare them:
    results.md/.csv/.json and plots in --out."""
    from rich.markup import escape

    from maskwatch.compare.presets import Overrides, parse_models
    from maskwatch.compare.report import results_table, settings_table
    from maskwatch.compare.runner import CompareRequest, plan_comparison, run_comparison
    from maskwatch.data.split import parse_ratios
    from maskwatch.errors import MaskwatchError
    from maskwatch.paths import check_output_path
    from maskwatch.progress import console

    if not data:
        raise MaskwatchError("give at least one --data DIR")
    if out is None:
        raise MaskwatchError("give --out DIR for the comparison")
    check_output_path("--out", out)
    request = CompareRequest(
        data=[str(d) for d in data],
        out=str(out),
        models=parse_models(models),
        eval_data=[str(d) for d in eval_data or []],
        split=split,
        ratios=list(parse_ratios(ratios)),
        preset=preset,
        overrides=Overrides(
            epochs=epochs,
            image_size=image_size,
            time_limit=time_limit,
            batch_size=batch_size,
            freeze=freeze,
            patience=patience,
            fallback_scratch=fallback_scratch,
        ),
        resume=resume,
        seed=seed,
        device=device,
        workers=workers,
        latency_runs=latency_runs,
    )
    plan = plan_comparison(request)
    console.print(settings_table(plan))
    with sigterm_as_ctrl_c():
        result = run_comparison(plan)
    console.print(results_table(result.rows, result.out))
    for row in result.rows:
        if row["status"] != "ok":
            console.print(f"[red]{row['model']} {row['status']}:[/] {escape(str(row['reason']))}")
    console.print(f"results: {result.out / 'results.md'} (.csv, .json) and plots in {result.out}")
    if result.interrupted:
        raise typer.Exit(130)
    if any(row["status"] != "ok" for row in result.rows):
        raise typer.Exit(1)
