"""``maskwatch detect`` (faces in photos, video, cameras) and ``maskwatch classify`` (face crops)."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from maskwatch.cli.common import (
    BackendOpt,
    BoxFitOpt,
    DetThresholdOpt,
    FailOnErrorsOpt,
    MarginOpt,
    MaxDecodeOpt,
    ModelOpt,
    TilesOpt,
    VideoDetSizeOpt,
    at_least_one,
    friendly,
    load_model_option,
    open_pipeline,
    print_faces,
    set_decode_budget_option,
)
from maskwatch.detect.config import DetectorConfig
from maskwatch.detect.defaults import DEFAULT_BOX_FIT, DEFAULT_DET_THRESHOLD, DEFAULT_MARGIN
from maskwatch.errors import MaskwatchError
from maskwatch.paths import check_output_path, is_stdout
from maskwatch.progress import console, shown

if TYPE_CHECKING:
    from maskwatch.detect.run import DetectReport
    from maskwatch.detect.sources import SourceError

ENGINES = ("local", "ray")
DEFAULT_BATCH_SIZE, DEFAULT_THREADS = 8, 1  # scale.batch's (not imported here: it needs Ray's package)


DET_SIZE_HELP = (
    "Face detector input for photos: long side in pixels, for every photo (small ones upscaled; 0: native size)."
    " Default: from the photo, as small as faces of 24 px need, at most 800."
)
ACCURATE_HELP = (
    "Slower, finds smaller faces: every photo at 800 px (small ones upscaled) and float32 models, the defaults"
    " before issue 23 (about 4x the CPU per photo, docs/results/speed.md). Default: photos sized for faces of"
    " 24 px and up, int8 models."
)


def register(app: typer.Typer) -> None:
    """Add ``detect`` and ``classify`` to ``app``."""
    app.command()(friendly(detect))
    app.command()(friendly(classify))


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
    det_size: Annotated[int | None, typer.Option(help=DET_SIZE_HELP)] = None,
    video_det_size: VideoDetSizeOpt = None,
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
    max_decode_mb: MaxDecodeOpt = None,
    fail_on_errors: FailOnErrorsOpt = True,
    engine: Annotated[
        str,
        typer.Option(
            help="local: this process (the default). ray: photos through Ray Data, on this machine or a cluster"
            " (--address); JSON lines only, no annotated copies; a re-run skips photos already in --jsonl."
        ),
    ] = "local",
    address: Annotated[
        str | None, typer.Option(help="--engine ray: HOST:PORT of a cluster's head node (`ray start --head`).")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="--engine ray: detector actors (default: one per CPU of the machine/cluster).")
    ] = None,
    batch_size: Annotated[int, typer.Option(help="--engine ray: photos per Ray Data batch.")] = DEFAULT_BATCH_SIZE,
    actor_threads: Annotated[
        int, typer.Option(help="--engine ray: onnxruntime threads per detector actor.")
    ] = DEFAULT_THREADS,
    parquet: Annotated[
        Path | None, typer.Option(help="--engine ray: also write every result as one Parquet file here.")
    ] = None,
    accurate: Annotated[bool, typer.Option(help=ACCURATE_HELP)] = False,
) -> None:
    """Find every face and say whether it wears a mask, wears it incorrectly, or wears none."""
    from maskwatch.data.images import is_image_name
    from maskwatch.detect.run import DetectOptions, detect_sources

    at_least_one(every=every, classify_every=classify_every, max_frames=max_frames)
    at_least_one(workers=workers, batch_size=batch_size, actor_threads=actor_threads)
    _check_engine(engine, show=show, address=address, workers=workers, parquet=parquet)
    set_decode_budget_option(max_decode_mb)
    config = DetectorConfig.from_options(
        det_size=det_size,
        det_threshold=det_threshold,
        tiles=tiles,
        margin=margin,
        box_fit=box_fit,
        video_det_size=video_det_size,
        accurate=accurate,
    )
    check_output_path("--save-dir", save_dir if save else None)
    check_output_path("--jsonl", None if is_stdout(jsonl) else jsonl, folder=False)
    if engine == "ray":
        check_output_path("--parquet", parquet, folder=False)
        from maskwatch.scale.batch import RayOptions, detect_ray

        ray_options = RayOptions(address, workers, batch_size, actor_threads, parquet, max_decode_mb)
        options = DetectOptions(jsonl=jsonl, landmarks=landmarks)
        report = detect_ray(sources, model, config, options, ray_options)
        if parquet:
            console.print(f"Parquet: {shown(parquet)}")
        _print_report(report, False, jsonl, fail_on_errors)
        return
    pipeline = open_pipeline(model, config, backend=backend, device=device)
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
            video_det_size=config.video_size,
            classify_every=classify_every,
        ),
        on_result=print_faces if one_photo else None,
    )
    _print_report(report, save, jsonl, fail_on_errors, save_dir)


def _check_engine(engine: str, *, show: bool, address: str | None, workers: int | None, parquet: Path | None) -> None:
    if engine not in ENGINES:
        raise MaskwatchError(f"--engine must be one of {', '.join(ENGINES)} (got {engine})")
    if engine == "ray" and show:
        raise MaskwatchError("--show needs --engine local (Ray runs elsewhere, with no window)")
    given = [name for name, value in (("--address", address), ("--workers", workers), ("--parquet", parquet)) if value]
    if engine == "local" and given:
        raise MaskwatchError(f"{', '.join(given)}: only with --engine ray")


def _print_report(
    report: DetectReport, save: bool, jsonl: Path | None, fail_on_errors: bool, save_dir: Path | None = None
) -> None:
    """The run's summary lines, then done: and the exit code (1 when an input failed, unless told otherwise)."""
    for s in report.sources:
        if s.frames == 0:  # nothing was read from it: its error line says why
            continue
        counts = s.summary.get("counts", {})
        unit = "people" if "people" in s.summary else "faces"
        pct = s.summary.get("percent", {})
        parts = ", ".join(f"{k} {counts[k]} ({pct.get(k, 0):.0f}%)" for k in counts)
        what = f"{s.frames} images" if s.kind == "image" else f"{s.frames} frames, {s.fps:.1f} FPS"
        console.print(f"[bold]{shown(s.source)}[/]: {what}; {s.summary.get(unit, s.faces)} {unit}: {parts}")
        if s.output:
            console.print(f"  annotated: {shown(s.output)}")
    if save and save_dir and any(s.kind == "image" for s in report.sources):
        console.print(f"annotated images: {shown(save_dir)}")
    if jsonl:
        console.print(f"JSON lines: {'stdout' if is_stdout(jsonl) else shown(jsonl)}")
    colour = "red" if report.failed else "green"
    console.print(f"[{colour}]done:[/] {report.counts()}" + _exit_note(report.failed, fail_on_errors))
    if report.failed and fail_on_errors:
        raise typer.Exit(1)


def _exit_note(failed: bool, fail_on_errors: bool) -> str:
    if not failed:
        return ""
    return " (exit 1; --no-fail-on-errors: exit 0)" if fail_on_errors else " (exit 0: --no-fail-on-errors)"


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
    max_decode_mb: MaxDecodeOpt = None,
    fail_on_errors: FailOnErrorsOpt = True,
) -> None:
    """Classify face crops; unreadable files get an error line and the run goes on (exit 1 if any failed)."""
    from maskwatch.progress import track
    from maskwatch.runtime.classifiers import classify_paths

    at_least_one(batch_size=batch_size)
    set_decode_budget_option(max_decode_mb)
    if is_stdout(jsonl):
        jsonl = None
    check_output_path("--jsonl", jsonl, folder=False)
    ignored: list[str] = []
    files, problems = _image_inputs(paths, ignored)
    if not files and not problems:
        raise MaskwatchError(f"no images found in {' '.join(paths)}")
    clf = load_model_option(model, backend=backend, device=device)
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
            console.print(f"[yellow]skipped[/] {shown(problem.source)}: {shown(problem.reason)}")
        for result in track(classify_paths(clf, files, batch_size, reframer), "classifying", total=len(files)):
            sink.write(json.dumps(result) + "\n")
            sink.flush()
            counts[result.get("label", "error")] += 1
            reframed += bool(result.get("reframed"))
            if "error" in result:
                console.print(f"[yellow]skipped[/] {shown(result['source'])}: {shown(result['error'])}")
    finally:
        if jsonl:
            sink.close()
    console.print("  ".join(f"{k}: {v}" for k, v in counts.items()) + (f"  -> {shown(jsonl)}" if jsonl else ""))
    if reframed:
        console.print(
            f"{reframed} loosely framed image(s) classified by the face found in them (face_box); photos of several"
            " people: use `maskwatch detect`; --no-reframe classifies whole images"
        )
    failed = counts["error"]
    done = sum(counts.values()) - failed
    summary = f"{done} image{'s' if done != 1 else ''} classified; {failed} failed"
    if ignored:
        summary += f"; {len(ignored)} other file{'s' if len(ignored) != 1 else ''} ignored (not images)"
    console.print(f"[{'red' if failed else 'green'}]done:[/] {summary}" + _exit_note(bool(failed), fail_on_errors))
    if failed and fail_on_errors:
        raise typer.Exit(1)


def _image_inputs(specs: list[str], ignored: list[str] | None = None) -> tuple[list[Path], list[SourceError]]:
    """The images that files, folders and globs name (as `detect` resolves them), and why the rest cannot be
    classified (missing, not an image, a video or camera)."""
    from maskwatch.detect.sources import Input, SourceError, resolve_inputs, unique_inputs

    found: list[Input] = []
    problems: list[SourceError] = []
    for spec in specs:
        inputs, errors = resolve_inputs(spec, ignored)
        found += inputs
        problems += errors
    files: list[Path] = []
    for item in unique_inputs(found):  # a file named twice (by a folder and a glob) is classified once
        if item.kind == "image":
            files.append(Path(item.location))
        else:
            problems.append(SourceError(item.name(), f"a {item.kind}, not a face image: use `maskwatch detect`"))
    return files, problems
