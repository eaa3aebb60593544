"""The ``maskwatch`` command line: a thin layer that parses arguments and formats results.

Every command calls the library; errors are one line (exit code 2 for bad input), never a
traceback (set ``MASKWATCH_DEBUG=1`` to see one).
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.markup import escape
from rich.table import Table

from maskwatch import __version__
from maskwatch.compare.command import register as register_compare
from maskwatch.detect.defaults import (
    DEFAULT_BOX_FIT,
    DEFAULT_DET_SIZE,
    DEFAULT_DET_THRESHOLD,
    DEFAULT_MARGIN,
)
from maskwatch.errors import MaskwatchError
from maskwatch.interrupts import sigterm_as_ctrl_c
from maskwatch.paths import check_output_path, is_stdout
from maskwatch.progress import console
from maskwatch.serve.command import register as register_serve

if TYPE_CHECKING:
    from maskwatch.detect.sources import SourceError

F = TypeVar("F", bound=Callable[..., Any])

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Face-mask detection: find faces in photos, video and cameras; train, evaluate and export the classifier.",
)
data_app = typer.Typer(no_args_is_help=True, help="Data set tools.")
app.add_typer(data_app, name="data")


def friendly(func: F) -> F:
    """Turn errors into one clear line and an exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except MaskwatchError as exc:
            console.print(f"[bold red]error:[/] {escape(str(exc))}")
            raise typer.Exit(2) from None
        except (typer.Exit, typer.Abort):
            raise
        except KeyboardInterrupt:
            console.print("[yellow]interrupted")
            raise typer.Exit(130) from None
        except Exception as exc:
            if os.environ.get("MASKWATCH_DEBUG"):
                raise
            text = str(exc).splitlines()[0] if str(exc) else ""
            console.print(
                f"[bold red]error:[/] {type(exc).__name__}: {escape(text)} (MASKWATCH_DEBUG=1 shows the traceback)"
            )
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"maskwatch {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    pass


DataOpt = Annotated[
    list[Path], typer.Option("--data", "-d", help="Data set folder (class folders or Pascal VOC); repeat to combine.")
]


@app.command()
@friendly
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
    from maskwatch.data.split import parse_ratios
    from maskwatch.train import TrainConfig
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
        cfg = TrainConfig(
            data=[str(d) for d in data],
            out=str(out or Path("runs") / f"{model}-{Path(data[0]).name}"),
            model=model,
            image_size=image_size,
            epochs=15 if epochs is None else epochs,
            batch_size=batch_size,
            optimizer=optimizer,
            lr=lr,
            schedule=schedule,
            step_size=step_size,
            gamma=gamma,
            weight_decay=weight_decay,
            dropout=dropout,
            label_smoothing=label_smoothing,
            class_weights=class_weights,
            synthetic_weight=synthetic_weight,
            augment=augment,
            freeze=freeze,
            feature_views=feature_views,
            patience=patience,
            time_limit=time_limit,
            monitor=monitor,
            seed=seed,
            device=device,
            split=split,
            ratios=list(parse_ratios(ratios)),
            split_from=str(split_from) if split_from else None,
            dup_threshold=dup_threshold,
            dup_embed=dup_embed,
            margin=margin,
            min_box=min_box,
            pretrained=pretrained,
            weights=str(weights) if weights else None,
            init=str(init) if init else None,
            workers=workers,
            calibrate=calibrate,
        )
        with sigterm_as_ctrl_c():
            result = train_run(cfg)
    if result.status == "interrupted":
        raise typer.Exit(130)
    if result.metrics:
        _print_metrics(result.metrics, result.run_dir)
    console.print(
        f"[green]{result.status}[/] after {result.epochs_run} epochs (best epoch {result.best_epoch}); "
        f"run folder: {result.run_dir}"
    )


@app.command()
@friendly
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
    _at_least_one(batch_size=batch_size)
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
    _print_metrics(report["metrics"], report["out"])


register_compare(app, friendly)
register_serve(app, friendly)


def _print_metrics(m: dict, out: Path) -> None:
    table = Table(
        title=f"{m['samples']} images: accuracy {m['accuracy']:.4f}, macro-F1 {m['macro_f1']:.4f}, "
        f"ECE {m['ece']:.4f}, loss {m['loss']:.4f}"
    )
    for col in ("label", "precision", "recall", "F1", "support"):
        table.add_column(col, justify="right" if col != "label" else "left")
    for label, v in m["per_class"].items():
        table.add_row(label, f"{v['precision']:.4f}", f"{v['recall']:.4f}", f"{v['f1']:.4f}", str(v["support"]))
    console.print(table)
    console.print(f"report: {out}")


def _at_least_one(**options: int | None) -> None:
    """Refuse a count option under 1 (None: not given), naming it as typed."""
    for name, value in options.items():
        if value is not None and value < 1:
            raise MaskwatchError(f"--{name.replace('_', '-')} must be at least 1 (got {value})")


BACKENDS = ("auto", "onnx", "torch")


def load_model_option(model: str | Path | None = None, backend: str = "auto", device: str = "auto"):
    """``--model`` (or ``$MASKWATCH_MODEL``, else the shipped model) as a face classifier: an ``.onnx`` file runs
    with onnxruntime; a training checkpoint or run folder with PyTorch (``--backend onnx``: exported once, cached),
    which only the training install has. The one place where the inference side meets the training side."""
    from maskwatch.runtime.classifiers import is_onnx, load_classifier, model_spec

    if backend not in BACKENDS:
        raise MaskwatchError(f"--backend must be one of {', '.join(BACKENDS)}")
    path, env = model_spec(model)
    if is_onnx(path) or not path.exists():
        if backend == "torch" and is_onnx(path):
            raise MaskwatchError(f"{path} is an ONNX model: --backend torch needs a checkpoint (.pt) or run folder")
        return load_classifier(path if env is None else None)
    try:
        from maskwatch.train.predict import checkpoint_classifier
    except ImportError as exc:
        raise MaskwatchError(
            f"{path} is a training checkpoint: running it needs PyTorch ({exc.name} is not installed):"
            " pip install 'maskwatch[train]', or run an exported .onnx model"
        ) from None
    try:
        return checkpoint_classifier(path, backend, device)
    except MaskwatchError as exc:
        if env:
            raise MaskwatchError(f"{env}={path}: {exc}") from None
        raise


def _image_inputs(specs: list[str]) -> tuple[list[Path], list[SourceError]]:
    """The images that files, folders and globs name (as `detect` resolves them), and why the rest cannot be
    classified (missing, not an image, a video or camera)."""
    from maskwatch.detect.sources import Input, SourceError, resolve_inputs, unique_inputs

    found: list[Input] = []
    problems: list[SourceError] = []
    for spec in specs:
        inputs, errors = resolve_inputs(spec)
        found += inputs
        problems += errors
    files: list[Path] = []
    for item in unique_inputs(found):  # a file named twice (by a folder and a glob) is classified once
        if item.kind == "image":
            files.append(Path(item.location))
        else:
            problems.append(SourceError(item.name(), f"a {item.kind}, not a face image: use `maskwatch detect`"))
    return files, problems


ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model", "-m", help="An .onnx file, checkpoint .pt or run folder (default: the model shipped with maskwatch)."
    ),
]
BackendOpt = Annotated[
    str, typer.Option(help="auto | onnx | torch (auto: onnxruntime for .onnx, torch for checkpoints).")
]


@app.command()
@friendly
def classify(
    paths: Annotated[list[str], typer.Argument(help="Face images: files, folders or globs.")],
    model: ModelOpt = None,
    jsonl: Annotated[
        Path | None, typer.Option(help="Write one JSON line per image here (default and -: stdout).")
    ] = None,
    batch_size: int = 32,
    backend: BackendOpt = "auto",
    device: str = "auto",
    reframe: Annotated[
        bool,
        typer.Option(
            help="Find the face in each image; if it spans under 0.6 of the image (a loose crop, a portrait) and is"
            " 12 px or more, classify the face cut as training crops are. --no-reframe: classify each image as it is."
        ),
    ] = True,
) -> None:
    """Classify face crops; unreadable files get an error line and the run goes on (exit 1 if any failed)."""
    from maskwatch.progress import track
    from maskwatch.runtime.classifiers import classify_paths

    _at_least_one(batch_size=batch_size)
    if is_stdout(jsonl):
        jsonl = None
    check_output_path("--jsonl", jsonl, folder=False)
    files, problems = _image_inputs(paths)
    if not files and not problems:
        raise MaskwatchError(f"no images found in {' '.join(paths)}")
    clf = load_model_option(model, backend, device)
    reframer = None
    if reframe:
        from maskwatch.detect.reframe import Reframer

        reframer = Reframer()
    counts: Counter = Counter()
    reframed = 0
    if jsonl:
        jsonl.parent.mkdir(parents=True, exist_ok=True)
    sink = jsonl.open("w", encoding="utf-8") if jsonl else sys.stdout
    try:
        for problem in problems:  # what cannot be classified is reported, in the output too
            sink.write(json.dumps({"source": problem.source, "error": problem.reason}) + "\n")
            counts["error"] += 1
            console.print(f"[yellow]skipped[/] {escape(problem.source)}: {escape(problem.reason)}")
        for result in track(classify_paths(clf, files, batch_size, reframer), "classifying", total=len(files)):
            sink.write(json.dumps(result) + "\n")
            sink.flush()
            counts[result.get("label", "error")] += 1
            reframed += bool(result.get("reframed"))
            if "error" in result:
                console.print(f"[yellow]skipped[/] {escape(result['source'])}: {escape(result['error'])}")
    finally:
        if jsonl:
            sink.close()
    console.print("  ".join(f"{k}: {v}" for k, v in counts.items()) + (f"  -> {jsonl}" if jsonl else ""))
    if reframed:
        console.print(
            f"{reframed} loosely framed image(s) classified by the face found in them (face_box); photos of several"
            " people: use `maskwatch detect`; --no-reframe classifies whole images"
        )
    if counts["error"]:
        raise typer.Exit(1)


DetSizeOpt = Annotated[
    int, typer.Option(help="Face detector input: long side in pixels (small images are upscaled; 0: native size).")
]
DetThresholdOpt = Annotated[float, typer.Option(help="Face detector confidence threshold.")]
TilesOpt = Annotated[int, typer.Option(help="Also detect on an N x N grid of overlapping tiles (large photos).")]
MarginOpt = Annotated[float, typer.Option(help="Margin around each face box for the classifier's crop.")]
BoxFitOpt = Annotated[
    str,
    typer.Option(
        help="Face boxes: WIDTH,HEIGHT,SHIFT fits the detector's boxes to brows-to-chin framing (scale about the"
        " centre, move down SHIFT of the height; fit your own annotations with tools/fit_face_boxes.py); none: the"
        " detector's own boxes."
    ),
]


def _pipeline(
    model: str | None,
    backend: str,
    device: str,
    det_size: int,
    det_threshold: float,
    tiles: int,
    margin: float,
    box_fit: str = DEFAULT_BOX_FIT,
):
    from maskwatch.detect.config import DetectorConfig
    from maskwatch.detect.pipeline import load_pipeline

    config = DetectorConfig.from_options(
        det_size=det_size, det_threshold=det_threshold, tiles=tiles, margin=margin, box_fit=box_fit
    )
    return load_pipeline(config=config, classifier=load_model_option(model, backend, device))


@app.command()
@friendly
def detect(
    sources: Annotated[
        list[str],
        typer.Argument(help="Images, folders, globs, video files, a webcam index (0) or stream URLs (rtsp/http)."),
    ],
    model: ModelOpt = None,
    save_dir: Annotated[Path, typer.Option(help="Annotated images (JPEG) and videos (H.264 MP4) go here.")] = Path(
        "runs/detect"
    ),
    save: Annotated[
        bool, typer.Option(help="Write annotated images and videos (--no-save: only print / JSONL).")
    ] = True,
    jsonl: Annotated[Path | None, typer.Option(help="Write one JSON line per image or frame here (-: stdout).")] = None,
    show: Annotated[bool, typer.Option(help="Show annotated frames in a window (q quits).")] = False,
    max_frames: Annotated[int | None, typer.Option(help="Stop each video/stream after this many frames.")] = None,
    every: Annotated[int, typer.Option(help="Process every N-th frame of videos and streams.")] = 1,
    det_size: DetSizeOpt = DEFAULT_DET_SIZE,
    video_det_size: Annotated[
        int | None,
        typer.Option(
            help="Face detector input for video, webcam and streams (long side; 0: native; default: half the frame's"
            " long side, 320 to 800)."
        ),
    ] = None,
    det_threshold: DetThresholdOpt = DEFAULT_DET_THRESHOLD,
    tiles: TilesOpt = 0,
    margin: MarginOpt = DEFAULT_MARGIN,
    box_fit: BoxFitOpt = DEFAULT_BOX_FIT,
    track: Annotated[bool, typer.Option(help="Track faces across video frames and smooth their labels.")] = True,
    classify_every: Annotated[
        int, typer.Option(help="Video: classify each tracked face every N processed frames (1: every frame).")
    ] = 3,
    landmarks: Annotated[bool, typer.Option(help="Add the 5 face landmarks to the JSON lines.")] = False,
    backend: BackendOpt = "auto",
    device: str = "auto",
) -> None:
    """Find every face and say whether it wears a mask, wears it incorrectly, or wears none."""
    from maskwatch.detect.run import DetectOptions, detect_sources

    _at_least_one(every=every, classify_every=classify_every, max_frames=max_frames)
    if video_det_size is not None:
        from maskwatch.detect.config import check_det_size

        check_det_size(video_det_size, "--video-det-size")
    check_output_path("--save-dir", save_dir if save else None)
    check_output_path("--jsonl", None if is_stdout(jsonl) else jsonl, folder=False)
    pipeline = _pipeline(model, backend, device, det_size, det_threshold, tiles, margin, box_fit)
    from maskwatch.data.images import is_image_name

    one_photo = len(sources) == 1 and Path(sources[0]).is_file() and is_image_name(Path(sources[0]))

    report = detect_sources(
        sources,
        pipeline,
        DetectOptions(
            save_dir=save_dir if save else None,
            jsonl=jsonl,
            show=show,
            max_frames=max_frames,
            every=every,
            track=track,
            landmarks=landmarks,
            video_det_size=video_det_size,
            classify_every=classify_every,
        ),
        on_result=_print_faces if one_photo else None,
    )
    for s in report.sources:
        if s.frames == 0:  # nothing was read from it: its error line says why
            continue
        counts = s.summary.get("counts", {})
        unit = "people" if "people" in s.summary else "faces"
        pct = s.summary.get("percent", {})
        parts = ", ".join(f"{k} {counts[k]} ({pct.get(k, 0):.0f}%)" for k in counts)
        what = f"{s.frames} images" if s.kind == "image" else f"{s.frames} frames, {s.fps:.1f} FPS"
        console.print(f"[bold]{escape(s.source)}[/]: {what}; {s.summary.get(unit, s.faces)} {unit}: {parts}")
        if s.output:
            console.print(f"  annotated: {s.output}")
    if save and any(s.kind == "image" for s in report.sources):
        console.print(f"annotated images: {save_dir}")
    if jsonl:
        console.print(f"JSON lines: {'stdout' if is_stdout(jsonl) else jsonl}")
    if report.failed:
        console.print(f"[red]{len(report.errors)} input(s) failed[/]")
        raise typer.Exit(1)


def _print_faces(result: Any) -> None:
    table = Table(title=f"{escape(result.source)}: {len(result.faces)} face(s), {result.width}x{result.height}")
    for col in ("#", "box [x1, y1, x2, y2]", "label", "score", "detector"):
        table.add_column(escape(col))
    for i, f in enumerate(result.faces):
        table.add_row(
            str(i), "[" + ", ".join(f"{v:.0f}" for v in f.box) + "]", f.label, f"{f.score:.3f}", f"{f.det_score:.2f}"
        )
    console.print(table)


@app.command()
@friendly
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


@app.command()
@friendly
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


@app.command("evaluate-detect")
@friendly
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
    models: list[str | None] = list(model) if model else [None]
    if len(models) > 1:
        names = model_names(models)
        results = {}
        for name, one in zip(names, models, strict=True):
            pipeline = _pipeline(one, backend, device, det_size, det_threshold, tiles, margin, box_fit)
            results[name] = evaluate_scenes(data, pipeline, out / name, split_from=split_from, subset=subset)
        compare_scene_metrics(results, out, draws=bootstrap)
        console.print((out / "comparison.md").read_text(encoding="utf-8"))
        console.print(f"reports: {out}/<model>/, side by side: {out / 'comparison.md'}")
        return
    pipeline = _pipeline(models[0], backend, device, det_size, det_threshold, tiles, margin, box_fit)
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


@app.command("models")
@friendly
def models_cmd() -> None:
    """List the registered models, their input size and where pretrained weights come from."""
    from maskwatch.models import get_spec, list_models

    table = Table()
    for col in ("name", "input", "pretrained weights", "description"):
        table.add_column(col, overflow="fold")  # long weight names wrap, never cut to "…"
    for name in list_models():
        s = get_spec(name)
        table.add_row(name, str(s.input_size), s.pretrained_source or "none (trains from scratch)", s.description)
    console.print(table)


@data_app.command("synth")
@friendly
def data_synth(
    faces: Annotated[
        list[Path], typer.Option("--faces", help="Data sets whose without_mask faces are drawn on (repeatable).")
    ],
    out: Annotated[Path, typer.Option(help="New folder for the synthetic set.")],
    per_face: Annotated[int, typer.Option(help="Synthetic images per source face.")] = 2,
    seed: Annotated[int, typer.Option(help="Same seed, same output.")] = 0,
    negatives: Annotated[float, typer.Option(help="Share of hard negatives (hand, scarf, paper).")] = 0.15,
    incorrect: Annotated[float, typer.Option(help="Share of masks worn incorrectly.")] = 0.4,
    mix: Annotated[
        str,
        typer.Option(
            help="uniform: every style, pattern, colour and wrong placement alike | realistic: mostly plain light"
            " masks, worn wrongly mostly under the nose (see data/synth_draw.MIXES)."
        ),
    ] = "uniform",
    paired: Annotated[
        bool,
        typer.Option(
            help="Draw each mask twice, worn correctly and worn wrongly (same style, pattern, colour): only the"
            " placement tells the classes apart. --incorrect is then unused."
        ),
    ] = False,
    donors: Annotated[
        list[Path] | None,
        typer.Option(
            "--donors",
            help="Data sets whose with_mask faces lend their real masks, moved onto the unmasked faces (repeatable)."
            " Not grouped with the output: use sets (or a training part) kept out of every test.",
        ),
    ] = None,
    donor_share: Annotated[
        float, typer.Option(help="With --donors: share of masks taken from a donor (the rest are drawn).")
    ] = 1.0,
) -> None:
    """Draw masks (worn correctly or not) and hard negatives on unmasked faces: a class-folder set + manifest.csv."""
    from maskwatch.synth.make import synthesize

    check_output_path("--out", out)
    report = synthesize(
        faces,
        out,
        per_face=per_face,
        seed=seed,
        negatives=negatives,
        incorrect=incorrect,
        mix=mix,
        paired=paired,
        donors=donors,
        donor_share=donor_share,
    )
    counts = ", ".join(f"{k} {v}" for k, v in sorted(report.counts.items()))
    console.print(
        f"{report.written} images from {report.faces - len(report.skipped)} of {report.faces} faces ({counts}); "
        f"{len(report.skipped)} skipped (see report.json) -> {out}"
    )
    if donors:
        console.print(
            f"masks moved from donors: {report.donors} with_mask faces offered, {len(report.donors_unusable)} of"
            " those drawn were unusable (listed in report.json)"
        )


@data_app.command("inspect")
@friendly
def data_inspect(
    dirs: Annotated[list[Path], typer.Argument(help="Data set folders (class folders or Pascal VOC).")],
    out: Annotated[Path, typer.Option(help="Folder for report.json and the pictures.")] = Path("runs/inspect"),
    dup_threshold: Annotated[int, typer.Option(help="Near-duplicate distance in perceptual-hash bits.")] = 8,
    dup_embed: Annotated[
        float, typer.Option(help="Also group images whose embeddings have this cosine similarity (0: off; try 0.92).")
    ] = 0.0,
    margin: float = 0.15,
    min_box: int = 12,
) -> None:
    """Count classes, measure image sizes, list broken files and (near-)duplicate groups."""
    from maskwatch.train.inspect import inspect_data

    check_output_path("--out", out)
    r = inspect_data(
        [str(d) for d in dirs], out, threshold=dup_threshold, margin=margin, min_box=min_box, embed_threshold=dup_embed
    )
    table = Table(title=f"{r['images']} usable images")
    table.add_column("class")
    table.add_column("images", justify="right")
    for label, n in r["counts"].items():
        table.add_row(label, str(n))
    console.print(table)
    size = r["image_size"]["short_side"]
    if size:
        console.print(
            f"short side: min {size['min']}, median {size['median']:.0f}, max {size['max']} px; "
            f"{r['image_size']['short_side_under_64']} under 64 px"
        )
    for d in r["datasets"]:
        if d["kind"] == "voc":
            console.print(
                f"{Path(d['root']).name}: {d['boxes']} face boxes, {d['crops']} crops, "
                f"{d['skipped_small']} skipped (shorter side under --min-box {min_box} px)"
            )
    faces = r["image_size"]["face_box_short_side"]
    if faces:
        console.print(
            f"face boxes, short side: min {faces['min']}, median {faces['median']:.0f}, max {faces['max']} px; "
            f"{r['image_size']['face_boxes_under_20']} under 20 px"
        )
    console.print(f"problems: {len(r['problems'])} " + (str(r["problem_counts"]) if r["problems"] else ""))
    for p in r["problems"][:20]:
        console.print(f"  [yellow]{escape(p['path'])}[/]: {escape(p['reason'])}")
    if len(r["problems"]) > 20:
        console.print(f"  ... {len(r['problems']) - 20} more in report.json")
    e, n = r["exact_duplicates"], r["near_duplicates"]
    console.print(
        f"exact duplicates: {e['groups']} groups ({e['redundant_files']} redundant files); "
        f"near duplicates (phash <= {n['max_distance_bits']} bits"
        + (f" or embedding cosine >= {n['embedding_min_cosine']}" if n["embedding_min_cosine"] else "")
        + f"): {n['groups']} groups "
        f"({n['redundant_files']} redundant files, largest {n['largest_group']})"
    )
    if r["cross_class_duplicates"]:
        console.print(f"[red]cross-class duplicates: {len(r['cross_class_duplicates'])} groups[/] (see report.json)")
    console.print(
        f"report: {out / 'report.json'}, pictures: {', '.join(r['pictures'])}"
        + ("" if "duplicates.png" in r["pictures"] else " (no near-duplicate groups, so no duplicates.png)")
    )


DEMO_MARKER = ".maskwatch-demo"


@app.command()
@friendly
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the demo's data, run and results.")] = Path("runs/demo"),
    epochs: int = 25,
) -> None:
    """The whole flow: generated data → inspect → train (EfficientNet-Lite0, frozen) → classify; then detect
    faces in a bundled photo with the shipped model."""
    import shutil

    from maskwatch.data import load_data, load_split
    from maskwatch.data.toy import make_toy_dataset
    from maskwatch.labels import CANONICAL_LABELS
    from maskwatch.runtime.classifiers import classify_paths
    from maskwatch.train import TrainConfig
    from maskwatch.train import train as train_run
    from maskwatch.train.inspect import inspect_data

    _at_least_one(epochs=epochs)  # every argument is checked before the previous demo is deleted
    check_output_path("--out", out)
    marker = out / DEMO_MARKER
    if out.exists() and any(out.iterdir()):
        if not marker.is_file():  # never wipe a folder the demo did not make
            raise MaskwatchError(f"--out {out}: folder is not empty and was not made by demo; give a new folder")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    marker.write_text("made by `maskwatch demo`; the next demo run with this --out replaces the folder\n")
    data_dir = make_toy_dataset(out / "data", per_class=40, size=96, seed=1, labels=CANONICAL_LABELS, duplicates=4)
    console.rule("1. data inspect")
    r = inspect_data([str(data_dir)], out / "inspect")
    console.print(f"{r['images']} images {r['counts']}; {r['near_duplicates']['groups']} near-duplicate groups")
    console.rule("2. train (efficientnet_lite0, ImageNet weights, frozen backbone)")
    result = train_run(
        TrainConfig(
            data=[str(data_dir)],
            out=str(out / "run"),
            model="efficientnet_lite0",
            freeze="backbone",
            epochs=epochs,
            lr=3e-3,
            feature_views=2,
            patience=0,
        )
    )
    console.rule("3. classify the test split")
    clf = load_model_option(result.run_dir)
    test = load_split(result.run_dir, load_data([data_dir]).samples).test
    results = classify_paths(clf, [s.path for s in test])
    right = sum(res["label"] == s.label for res, s in zip(results, test, strict=True))
    console.print(
        f"test accuracy {result.metrics['accuracy']:.3f} (classify agrees: {right}/{len(test)}); "
        f"see {result.run_dir} (metrics.json, curves.png, confusion_matrix.png)"
    )
    console.rule("4. detect faces in a bundled photo (the shipped model)")
    from maskwatch.detect.pipeline import load_pipeline
    from maskwatch.detect.run import DetectOptions, detect_sources
    from maskwatch.runtime.classifiers import ASSETS

    sample = ASSETS / "samples" / "group.jpg"
    report = detect_sources([str(sample)], load_pipeline(), DetectOptions(save_dir=out / "detect"), _print_faces)
    console.print(f"[green]demo done:[/] annotated photo in {out / 'detect' / sample.name}")
    if report.failed:
        raise typer.Exit(1)


def main() -> None:
    app(prog_name="maskwatch")


if __name__ == "__main__":
    main()
