"""The ``maskwatch`` command line: a thin layer that parses arguments and formats results.

Every command calls the library; errors are one line (exit code 2 for bad input), never a
traceback (set ``MASKWATCH_DEBUG=1`` to see one).
"""

from __future__ import annotations

import functools
import glob
import json
import os
import signal
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.markup import escape
from rich.table import Table

from maskwatch import __version__
from maskwatch.errors import MaskwatchError
from maskwatch.progress import console

F = TypeVar("F", bound=Callable[..., Any])

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Face-mask classification: inspect data, split it honestly, train, evaluate, classify.",
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


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


DataOpt = Annotated[
    list[Path], typer.Option("--data", "-d", help="Data set folder (class folders or Pascal VOC); repeat to combine.")
]


@app.command()
@friendly
def train(
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
    class_weights: Annotated[str, typer.Option(help="none | balanced")] = "none",
    augment: Annotated[str, typer.Option(help="none | light | strong")] = "strong",
    freeze: Annotated[str, typer.Option(help="backbone (train the head on cached features) | none")] = "none",
    feature_views: Annotated[int, typer.Option(help="Frozen backbone: cached views per training image.")] = 3,
    patience: Annotated[int, typer.Option(help="Early stopping patience in epochs (0: off).")] = 5,
    monitor: Annotated[str, typer.Option(help="val_loss | val_accuracy | val_macro_f1")] = "val_loss",
    seed: int = 0,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda | cuda:N | mps")] = "auto",
    split: Annotated[
        str, typer.Option(help="grouped (near-duplicates stay together) | random (the study's protocol)")
    ] = "grouped",
    ratios: Annotated[str, typer.Option(help="train,val,test shares.")] = "0.7,0.15,0.15",
    split_from: Annotated[Path | None, typer.Option(help="Reuse the split saved in this run or split folder.")] = None,
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

    signal.signal(signal.SIGTERM, _interrupt)  # a stopped job (kill, a scheduler) ends like Ctrl-C
    if resume is not None:
        result = resume_run(resume, epochs=epochs)
    else:
        if not data:
            raise MaskwatchError("give at least one --data DIR (or --resume RUN_DIR)")
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
            augment=augment,
            freeze=freeze,
            feature_views=feature_views,
            patience=patience,
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
            workers=workers,
            calibrate=calibrate,
        )
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
    subset: Annotated[str, typer.Option(help="With --split-from: train | val | test.")] = "test",
    batch_size: int = 64,
    device: str = "auto",
    margin: float = 0.15,
    min_box: int = 12,
) -> None:
    """Evaluate a trained model on data sets: metrics.json, confusion matrix, curves, worst mistakes."""
    from maskwatch.evaluate.evaluator import evaluate_model

    if not data:
        raise MaskwatchError("give at least one --data DIR")
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
    )
    _print_metrics(report["metrics"], report["out"])


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


def expand_inputs(items: list[str]) -> list[Path]:
    """Files, folders (their images, recursively) and globs, in order; missing paths are kept
    so that they are reported."""
    from maskwatch.data.images import is_image_name

    paths: list[Path] = []
    for item in items:
        p = Path(item).expanduser()
        if p.is_dir():
            paths += sorted(q for q in p.rglob("*") if q.is_file() and is_image_name(q))
        elif p.exists():
            paths.append(p)
        elif any(ch in item for ch in "*?["):
            paths += sorted(Path(q) for q in glob.glob(os.path.expanduser(item), recursive=True) if Path(q).is_file())
        else:
            paths.append(p)
    return paths


@app.command()
@friendly
def classify(
    model: Annotated[Path, typer.Argument(help="Checkpoint (.pt) or run folder.")],
    paths: Annotated[list[str], typer.Argument(help="Face images: files, folders or globs.")],
    jsonl: Annotated[Path | None, typer.Option(help="Write one JSON line per image here (default: stdout).")] = None,
    batch_size: int = 32,
    device: str = "auto",
) -> None:
    """Classify face images; unreadable files get an error line and the run goes on (exit 1 if any failed)."""
    from maskwatch.progress import track
    from maskwatch.runtime.predict import Classifier

    files = expand_inputs(paths)
    if not files:
        raise MaskwatchError(f"no images found in {' '.join(paths)}")
    clf = Classifier.load(model, device)
    counts: Counter = Counter()
    sink = jsonl.open("w", encoding="utf-8") if jsonl else sys.stdout
    try:
        for result in track(clf.classify_paths(files, batch_size), "classifying", total=len(files)):
            sink.write(json.dumps(result) + "\n")
            sink.flush()
            counts[result.get("label", "error")] += 1
            if "error" in result:
                console.print(f"[yellow]skipped[/] {escape(result['source'])}: {result['error']}")
    finally:
        if jsonl:
            sink.close()
    console.print("  ".join(f"{k}: {v}" for k, v in counts.items()) + (f"  -> {jsonl}" if jsonl else ""))
    if counts["error"]:
        raise typer.Exit(1)


@app.command("models")
@friendly
def models_cmd() -> None:
    """List the registered models, their input size and where pretrained weights come from."""
    from maskwatch.models import get_spec, list_models

    table = Table()
    for col in ("name", "input", "pretrained weights", "description"):
        table.add_column(col)
    for name in list_models():
        s = get_spec(name)
        table.add_row(name, str(s.input_size), s.pretrained_source or "none (trains from scratch)", s.description)
    console.print(table)


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
    from maskwatch.data.inspect import inspect_data

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
    console.print(f"report: {out / 'report.json'}, pictures: class_balance.png, samples.png, duplicates.png")


@app.command()
@friendly
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the demo's data, run and results.")] = Path("runs/demo"),
    epochs: int = 25,
) -> None:
    """The whole flow on a generated data set: make data, inspect, train (EfficientNet-Lite0, frozen), classify."""
    import shutil

    from maskwatch.data import load_data, load_split
    from maskwatch.data.inspect import inspect_data
    from maskwatch.data.toy import make_toy_dataset
    from maskwatch.labels import CANONICAL_LABELS
    from maskwatch.runtime.predict import Classifier
    from maskwatch.train import TrainConfig
    from maskwatch.train import train as train_run

    if out.exists():
        shutil.rmtree(out)
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
    clf = Classifier.load(result.run_dir)
    test = load_split(result.run_dir, load_data([data_dir]).samples).test
    results = clf.classify_paths([s.path for s in test])
    right = sum(res["label"] == s.label for res, s in zip(results, test, strict=True))
    console.print(
        f"[green]demo done:[/] test accuracy {result.metrics['accuracy']:.3f} (classify agrees: "
        f"{right}/{len(test)}); see {result.run_dir} (metrics.json, curves.png, confusion_matrix.png)"
    )


def main() -> None:
    app()


if __name__ == "__main__":
    main()
