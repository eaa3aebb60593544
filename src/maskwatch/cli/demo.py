"""``maskwatch demo``: the whole flow on generated data, in a folder it may replace next time."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from maskwatch.cli.common import at_least_one, friendly, load_model_option, open_pipeline, print_faces
from maskwatch.detect.config import DetectorConfig
from maskwatch.errors import MaskwatchError
from maskwatch.paths import check_output_path
from maskwatch.progress import console

DEMO_MARKER = ".maskwatch-demo"


def register(app: typer.Typer) -> None:
    """Add ``demo`` to ``app``."""
    app.command()(friendly(demo))


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

    at_least_one(epochs=epochs)  # every argument is checked before the previous demo is deleted
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
    from maskwatch.detect.run import DetectOptions, detect_sources
    from maskwatch.runtime.classifiers import ASSETS

    sample = ASSETS / "samples" / "group.jpg"
    pipeline = open_pipeline(None, DetectorConfig())
    report = detect_sources([str(sample)], pipeline, DetectOptions(save_dir=out / "detect"), print_faces)
    console.print(f"[green]demo done:[/] annotated photo in {out / 'detect' / sample.name}")
    if report.failed:
        raise typer.Exit(1)
