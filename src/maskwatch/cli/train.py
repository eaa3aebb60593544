"""``maskwatch train`` (a run folder from data sets), ``interpolate`` (WiSE-FT) and ``export`` (ONNX)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from maskwatch.cli.common import DataOpt, friendly, print_metrics
from maskwatch.errors import MaskwatchError
from maskwatch.interrupts import sigterm_as_ctrl_c
from maskwatch.paths import check_output_path
from maskwatch.progress import console

if TYPE_CHECKING:
    from maskwatch.train import TrainConfig


def register(app: typer.Typer) -> None:
    """Add ``train``, ``interpolate`` and ``export`` to ``app``."""
    app.command()(friendly(train))
    app.command()(friendly(interpolate))
    app.command()(friendly(export))


def train(
    ctx: typer.Context,
    data: DataOpt = None,  # type: ignore[assignment]
    model: Annotated[str, typer.Option(help="Registered model name (see `maskwatch models`).")] = "efficientnet_lite0",
    out: Annotated[Path | None, typer.Option(help="Run folder to create.")] = None,
    resume: Annotated[
        Path | None, typer.Option(help="Continue the run in this folder from its last checkpoint.")
    ] = None,
    image_size: Annotated[int | None, typer.Option(help="Input size in pixels (default: the model's).")] = None,
    epochs: Annotated[int | None, typer.Option(help="Epochs (default 15); with --resume, the new total.")] = None,
    batch_size: int = 32,
    optimizer: Annotated[str, typer.Option(help="adam | adamw | sgd")] = "adamw",
    lr: Annotated[
        float | None, typer.Option(help="Learning rate (default 1e-3 frozen/scratch, 3e-4 fine-tuning; x10 for sgd).")
    ] = None,
    schedule: Annotated[str, typer.Option(help="cosine | step | plateau | none")] = "cosine",
    step_size: Annotated[
        int, typer.Option(help="step schedule: epochs between decays (0: a third of the epochs).")
    ] = 0,
    gamma: Annotated[float, typer.Option(help="step/plateau decay factor.")] = 0.1,
    weight_decay: Annotated[float, typer.Option(help="Weight decay (L2).")] = 1e-4,
    dropout: Annotated[float | None, typer.Option(help="Dropout before the classifier (default: the model's).")] = None,
    label_smoothing: float = 0.1,
    class_weights: Annotated[str, typer.Option(help="none | balanced | sqrt (softer balance)")] = "none",
    synthetic_weight: Annotated[
        float | None,
        typer.Option(
            help="Loss weight of each synthetic image; class weights then come from the real images alone, so"
            " adding synthetic data does not change what a real image weighs (default: synthetic images count"
            " like real ones)."
        ),
    ] = None,
    augment: Annotated[str, typer.Option(help="none | light | strong")] = "strong",
    freeze: Annotated[str, typer.Option(help="backbone (train the head on cached features) | none")] = "none",
    feature_views: Annotated[int, typer.Option(help="Frozen backbone: cached views per training image.")] = 3,
    patience: Annotated[int, typer.Option(help="Early stopping patience in epochs (0: off).")] = 5,
    time_limit: Annotated[
        float | None,
        typer.Option(help="Seconds of epochs; stop after the epoch that passes it (status time_limit)."),
    ] = None,
    monitor: Annotated[str, typer.Option(help="val_loss | val_accuracy | val_macro_f1")] = "val_loss",
    seed: int = 0,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda | cuda:N | mps")] = "auto",
    split: Annotated[
        str, typer.Option(help="grouped (near-duplicates stay together) | random (the study's protocol)")
    ] = "grouped",
    ratios: Annotated[str, typer.Option(help="train,val,test shares.")] = "0.7,0.15,0.15",
    split_from: Annotated[
        Path | None,
        typer.Option(
            help="Reuse the split saved in this run or split folder; images it does not list join their source's part."
        ),
    ] = None,
    dup_threshold: Annotated[int, typer.Option(help="Near-duplicate distance in perceptual-hash bits.")] = 8,
    dup_embed: Annotated[
        float, typer.Option(help="Also group images whose embeddings have this cosine similarity (0: off; try 0.92).")
    ] = 0.0,
    margin: Annotated[float, typer.Option(help="VOC crops: margin around each box, as a fraction of its side.")] = 0.15,
    min_box: Annotated[
        int, typer.Option(help="VOC crops: skip boxes with a shorter side under this many pixels.")
    ] = 12,
    pretrained: Annotated[
        bool, typer.Option("--pretrained/--no-pretrained", help="Start from ImageNet weights where they exist.")
    ] = True,
    weights: Annotated[Path | None, typer.Option(help="Backbone weights file (state dict or checkpoint).")] = None,
    init: Annotated[
        Path | None,
        typer.Option(help="Fine-tune a trained model (run folder or .pt), head included: same --model and labels."),
    ] = None,
    workers: Annotated[int | None, typer.Option(help="Data-loading processes (default: cores - 1).")] = None,
    calibrate: Annotated[
        bool, typer.Option("--calibrate/--no-calibrate", help="Fit a temperature on validation data after training.")
    ] = True,
) -> None:
    """Train a model; the run folder gets config, split, checkpoints, history, curves and test metrics."""
    from maskwatch.train import resume as resume_run
    from maskwatch.train import train as train_run

    if resume is not None:
        given = [
            p.opts[0]
            for p in ctx.command.params
            if p.name not in ("resume", "epochs") and getattr(ctx.get_parameter_source(p.name), "name", "") != "DEFAULT"
        ]
        if given:  # they would be silently ignored: the run's own config.json decides
            raise MaskwatchError(
                f"--resume continues a run with the settings in its config.json; it takes --epochs only, not "
                f"{', '.join(given)}"
            )
        with sigterm_as_ctrl_c():
            result = resume_run(resume, epochs=epochs)
    else:
        if not data:
            raise MaskwatchError("give at least one --data DIR (or --resume RUN_DIR)")
        check_output_path("--out", out)
        cfg = _train_config(ctx.params)
        with sigterm_as_ctrl_c():
            result = train_run(cfg)
    if result.status == "interrupted":
        raise typer.Exit(130)
    if result.metrics:
        print_metrics(result.metrics, result.run_dir)
    console.print(
        f"[green]{result.status}[/] after {result.epochs_run} epochs (best epoch {result.best_epoch}); "
        f"run folder: {result.run_dir}"
    )


def _train_config(params: dict[str, Any]) -> TrainConfig:
    """``train``'s options as a ``TrainConfig``: each option named like one of its fields fills that field (paths
    as text); an option left unset (None) takes the field's default. Only ``--out``'s default, which depends on
    other options, and the text of ``--ratios`` are worked out here. Every option but ``--resume`` must have its
    field, so an option cannot be added and then silently dropped."""
    from dataclasses import fields

    from maskwatch.data.split import parse_ratios
    from maskwatch.train import TrainConfig

    names = {f.name for f in fields(TrainConfig)}
    unused = set(params) - names - {"resume"}
    if unused:  # a new option without its field (tests/test_cli checks every option has one)
        raise RuntimeError(f"train options with no TrainConfig field: {sorted(unused)}")
    values = {name: _plain(params[name]) for name in names if params.get(name) is not None}
    values.setdefault("out", str(Path("runs") / f"{params['model']}-{Path(params['data'][0]).name}"))
    values["ratios"] = list(parse_ratios(params["ratios"]))
    return TrainConfig(**values)


def _plain(value: Any) -> Any:
    """An option's value as config.json keeps it: paths as text, lists as lists."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def interpolate(
    base: Annotated[Path, typer.Argument(help="The trained model (run folder or .pt).")],
    tuned: Annotated[Path, typer.Argument(help="A model fine-tuned from it (`train --init BASE`).")],
    alpha: Annotated[float, typer.Option(help="0: base, 1: tuned; in between, the straight line in weight space.")],
    out: Annotated[Path, typer.Option(help="Folder for best.pt and interpolation.json.")],
    data: Annotated[
        list[Path] | None, typer.Option("--data", "-d", help="Data to refit the temperature on (its validation part).")
    ] = None,
    split_from: Annotated[
        Path | None, typer.Option(help="Run or split folder whose validation part is used (with --data).")
    ] = None,
    margin: Annotated[float, typer.Option(help="VOC crops: margin around each box.")] = 0.15,
    min_box: Annotated[int, typer.Option(help="VOC crops: skip boxes with a shorter side under this.")] = 12,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda | cuda:N | mps")] = "auto",
) -> None:
    """Mix a model and its fine-tuned copy weight by weight (WiSE-FT): keep what the base did well, add new skills."""
    from maskwatch.train.interpolate import interpolate as run_interpolate

    check_output_path("--out", out)
    report = run_interpolate(
        base,
        tuned,
        alpha,
        out,
        data=[str(d) for d in data] if data else None,
        split_from=split_from,
        margin=margin,
        min_box=min_box,
        device=device,
    )
    cal = report["calibration"]
    how = f"temperature {report['temperature']:.3f}" + (
        f" (refitted on {cal['val_images']} validation images, accuracy {cal['val_accuracy']:.4f})"
        if cal
        else " (interpolated; give --data and --split-from to refit it)"
    )
    console.print(f"wrote {out / 'best.pt'}: {1 - alpha:g} x {base} + {alpha:g} x {tuned}; {how}")


def export(
    model: Annotated[Path, typer.Argument(help="Checkpoint (.pt) or run folder.")],
    out: Annotated[Path | None, typer.Option(help="Output file (default: <run>/model.onnx).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="Export format: onnx.")] = "onnx",
    int8: Annotated[bool, typer.Option(help="Quantise weights to int8 (dynamic quantisation).")] = False,
) -> None:
    """Export a trained classifier (ONNX, optionally int8) and check it against the PyTorch model."""
    from maskwatch.train.export import export_onnx, parity

    if fmt != "onnx":
        raise MaskwatchError("--format: only onnx is supported")
    check_output_path("--out", out, folder=False)
    if out is None:
        base = model if model.is_dir() else model.parent
        out = base / ("model-int8.onnx" if int8 else "model.onnx")
    export_onnx(model, out, int8=int8)
    diff = parity(model, out)
    size = out.stat().st_size / 1e6
    console.print(
        f"exported {out} ({size:.1f} MB); max |p_onnx - p_torch| {diff['max_abs_prob']:.2e}, "
        f"same label on {diff['agree']}/{diff['n']} {diff['inputs']}"
    )
    if diff["agree"] < diff["n"]:
        console.print(f"[yellow]the exported model disagrees on {diff['n'] - diff['agree']} of {diff['n']} inputs")
