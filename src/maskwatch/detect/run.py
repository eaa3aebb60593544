"""``maskwatch detect``'s engine: every input → frames → pipeline (→ tracker for video) → sinks.

Sinks: JSON Lines (one line per image or processed frame, flushed as written), annotated images / H.264 MP4
in ``save_dir``, an on-screen window (``show``), and a summary per source. Unreadable inputs are reported and
skipped; the report says what failed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
from PIL import Image

from maskwatch.detect.annotate import Annotator
from maskwatch.detect.defaults import DEFAULT_DET_SIZE, VIDEO_DET_MIN, VIDEO_DET_SCALE
from maskwatch.detect.faces import Faces
from maskwatch.detect.pipeline import FrameResult, Pipeline
from maskwatch.detect.sources import Frame, Input, SourceError, iter_frames, resolve_inputs, unique_inputs
from maskwatch.detect.tracking import TrackedPipeline, summarise
from maskwatch.detect.video import VideoWriter
from maskwatch.paths import is_stdout
from maskwatch.progress import console, printable, quiet, shown

log = logging.getLogger(__name__)

JPEG_MAX_SIDE = 65_500  # libjpeg refuses wider or taller images: their annotated copies are saved as PNG


@dataclass
class DetectOptions:
    save_dir: Path | None = None
    jsonl: Path | None = None  # "-": stdout
    show: bool = False
    max_frames: int | None = None
    every: int = 1
    track: bool = True
    landmarks: bool = False
    classify_every: int = 3  # video: classify a tracked face every N processed frames (1: every frame)
    video_det_size: int | None = None  # detector input for video/webcam/streams (None: auto, see video_det_size)


@dataclass
class SourceSummary:
    source: str
    kind: str
    frames: int = 0
    faces: int = 0
    seconds: float = 0.0
    output: str | None = None
    det_size: int | None = None  # the detector input used for video
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


@dataclass
class DetectReport:
    sources: list[SourceSummary] = field(default_factory=list)  # all photos together as one, then each video
    errors: list[SourceError] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)  # files in folders and globs that are not images or videos

    @property
    def failed(self) -> bool:
        return bool(self.errors)

    @property
    def failed_sources(self) -> int:
        """Inputs (and folder entries) with at least one error line."""
        return len({e.source for e in self.errors})

    def counts(self) -> str:
        """The run in one line: "12 images, 2 videos (3,000 frames); 3 failed; 4 other files ignored"."""
        images = sum(s.frames for s in self.sources if s.kind == "image")
        streams = [s for s in self.sources if s.kind != "image" and s.frames]
        parts = [f"{images} image{'s' if images != 1 else ''}"]
        if streams:
            frames = sum(s.frames for s in streams)
            parts.append(f"{len(streams)} video/stream{'s' if len(streams) != 1 else ''} ({frames:,} frames)")
        text = ", ".join(parts) + f"; {self.failed_sources} failed"
        if self.ignored:
            n = len(self.ignored)
            text += f"; {n} other file{'s' if n != 1 else ''} ignored (not images or videos)"
        return text


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "source"


def _file_key(location: str) -> tuple[int, int] | None:
    """(device, inode) of an existing file: the same file under another spelling (a link, a case-insensitive
    file system) has the same key."""
    try:
        st = os.stat(location)
    except OSError:
        return None
    return st.st_dev, st.st_ino


class _Outputs:
    """Unique output names inside save_dir: two inputs called photo.jpg do not overwrite each other, and no output
    is ever written over an input of the run (``--save-dir`` may be the photos' own folder, or hold last run's
    copies that are now inputs): such an output is named ``photo-annotated.jpg`` (``-annotated-1``, ...)."""

    def __init__(self, save_dir: Path, inputs: Iterable[Input] = ()) -> None:
        self.dir = save_dir
        self.used: set[str] = set()
        files = [i.location for i in inputs if i.kind in ("image", "video")]
        self.inputs = {os.path.realpath(f) for f in files}
        self.input_keys = {key for f in files if (key := _file_key(f)) is not None}
        self.noted = False

    def _is_input(self, path: Path) -> bool:
        return os.path.realpath(path) in self.inputs or (path.exists() and _file_key(str(path)) in self.input_keys)

    def path(self, inp: Input, suffix: str) -> Path:
        stem = _safe_name(Path(inp.location).stem if inp.kind in ("image", "video") else inp.name())
        name, n = f"{stem}{suffix}", 1
        while name in self.used or self._is_input(self.dir / name):
            if self._is_input(self.dir / name) and not stem.endswith("-annotated"):
                stem, n = f"{stem}-annotated", 0
                self._note()
            name, n = (f"{stem}-{n}{suffix}" if n else f"{stem}{suffix}"), n + 1
        self.used.add(name)
        return self.dir / name

    def _note(self) -> None:
        if not self.noted:
            self.noted = True
            console.print(
                f"[yellow]note[/] {shown(self.dir)} holds inputs of this run: their annotated copies are named"
                " *-annotated (inputs are never written over)",
                highlight=False,
            )


GUI_HINT = "--show needs OpenCV with its GUI: pip install opencv-python"


def opencv_has_gui() -> bool:
    """Whether an OpenCV that can open windows is installed (maskwatch itself needs none; ``opencv-python-headless``
    cannot open windows)."""
    try:
        import cv2
    except ImportError:
        return False
    for line in cv2.getBuildInformation().splitlines():
        key, _, value = line.strip().partition(":")
        if key == "GUI":
            return value.strip().upper() not in ("", "NONE", "NO")
    return True  # not said: try, and ``show`` gives up on the first error


class _Display:
    def __init__(self) -> None:
        self.enabled = bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or os.name == "nt")
        if not self.enabled:
            console.print("[yellow]--show: no display here; nothing will be shown[/]")
        elif not opencv_has_gui():
            self._give_up()

    def _give_up(self) -> None:
        self.enabled = False
        console.print(f"[yellow]{GUI_HINT}[/]", highlight=False)

    def show(self, name: str, image: np.ndarray) -> bool:
        """Show a frame; False when the user pressed q or Esc."""
        if not self.enabled:
            return True
        import cv2

        try:
            cv2.imshow(f"maskwatch: {name}", image[:, :, ::-1])
            return (cv2.waitKey(1) & 0xFF) not in (ord("q"), 27)
        except cv2.error:  # an OpenCV built without GUI that did not say so
            self._give_up()
            return True

    def close(self) -> None:
        if self.enabled:
            import cv2

            with contextlib.suppress(cv2.error):
                cv2.destroyAllWindows()


def resolve_sources(specs: Sequence[str], report: DetectReport) -> list[Input]:
    """The inputs that SOURCE arguments name, each once; what cannot be read is reported (one line each)."""
    inputs: list[Input] = []
    for spec in specs:
        found, errors = resolve_inputs(spec, report.ignored)
        inputs.extend(found)
        for err in errors:
            report_error(report, err)
    return unique_inputs(inputs)


def image_faces(pipeline: Pipeline, frame: Frame) -> Faces | SourceError:
    """The classified faces of one decoded photo, or why there are none."""
    try:
        return pipeline.faces(frame.image)
    except MemoryError:  # the decoding budget set too high for this machine
        return SourceError(frame.source, "out of memory finding faces in it")


def count_image(summary: SourceSummary, labels: list[str], face_labels: Sequence[str]) -> None:
    """Add one photo and the labels of its faces to the summary of all photos."""
    summary.frames += 1
    summary.faces += len(face_labels)
    labels.extend(face_labels)


def json_line(result: FrameResult, landmarks: bool = False) -> str:
    """One line of ``--jsonl`` (the JSON Lines schema: ``FrameResult.to_json``), with its newline."""
    return json.dumps(result.to_json(landmarks)) + "\n"


def detect_sources(
    specs: Sequence[str],
    pipeline: Pipeline,
    options: DetectOptions | None = None,
    on_result: Callable[[FrameResult], None] | None = None,
) -> DetectReport:
    """Run the pipeline over every input named by ``specs`` (files, folders, globs, videos, webcams, URLs)."""
    from maskwatch.progress import make_progress

    opts = options or DetectOptions()
    report = DetectReport()
    inputs = resolve_sources(specs, report)
    outputs = _Outputs(opts.save_dir, inputs) if opts.save_dir else None
    if opts.save_dir:
        opts.save_dir.mkdir(parents=True, exist_ok=True)
    annotator = Annotator(pipeline.labels) if (opts.save_dir or opts.show) else None
    display = _Display() if opts.show else None
    jsonl: IO[str] | None = None
    to_stdout = is_stdout(opts.jsonl)
    if opts.jsonl and to_stdout:
        jsonl = sys.stdout
    elif opts.jsonl:
        opts.jsonl.parent.mkdir(parents=True, exist_ok=True)
        jsonl = opts.jsonl.open("w", encoding="utf-8")
    image_labels: list[str] = []
    images = [i for i in inputs if i.kind == "image"]
    streams = [i for i in inputs if i.kind != "image"]
    images_summary = SourceSummary("images", "image")

    def emit(result: FrameResult) -> None:
        if jsonl:
            jsonl.write(json_line(result, opts.landmarks))
            jsonl.flush()
        if on_result:
            on_result(result)

    try:
        if images:
            with make_progress() as progress:
                task = progress.add_task("images", total=len(images))
                for inp in images:
                    start = time.perf_counter()
                    for item in iter_frames(inp):
                        if isinstance(item, SourceError):
                            report_error(report, item)
                            continue
                        faces = image_faces(pipeline, item)
                        if isinstance(faces, SourceError):
                            report_error(report, faces)
                            continue
                        result = pipeline.result(item.image, faces, inp.name(), None)
                        count_image(images_summary, image_labels, [f.label for f in result.faces])
                        emit(result)
                        if annotator:
                            drawn = annotator.draw(item.image, faces)
                            if outputs:
                                _save_image(report, inp, drawn, outputs)
                            if display and not display.show(inp.name(), drawn):
                                return report
                    images_summary.seconds += time.perf_counter() - start
                    progress.advance(task)
            images_summary.summary = summarise(image_labels, pipeline.labels, unit="faces")
            report.sources.append(images_summary)
        for inp in streams:
            summary = _run_stream(inp, pipeline, opts, report, emit, outputs, annotator, display)
            report.sources.append(summary)
    finally:
        if jsonl and not to_stdout:
            jsonl.close()
        if display:
            display.close()
    return report


def _save_image(report: DetectReport, inp: Input, drawn: np.ndarray, outputs: _Outputs) -> None:
    """Save one annotated photo; a failure (disk full, a folder in the way) is one line and the run goes on.
    Images too wide or tall for JPEG are saved as PNG."""
    png = max(drawn.shape[:2]) > JPEG_MAX_SIDE
    path = outputs.path(inp, ".png" if png else ".jpg")
    try:
        Image.fromarray(drawn).save(path, **({} if png else {"quality": 92}))
    except (OSError, ValueError, MemoryError) as exc:
        if path.is_file():  # a partly written copy would be a broken image in save_dir
            with contextlib.suppress(OSError):
                path.unlink()
        detail = (str(exc).splitlines() or [""])[0]
        report_error(
            report, SourceError(inp.name(), f"cannot write {path} ({type(exc).__name__}: {detail})"), "not saved"
        )


def video_det_size(width: int, height: int) -> int:
    """The default detector input for video: half the frame's long side, within [VIDEO_DET_MIN, DEFAULT_DET_SIZE]."""
    return int(min(DEFAULT_DET_SIZE, max(VIDEO_DET_MIN, round(max(width, height) * VIDEO_DET_SCALE))))


def video_pipeline(pipeline: Pipeline, size: int | None) -> Pipeline:
    """The pipeline with its detector at the video input size (when the detector can change it)."""
    resized = getattr(pipeline.detector, "resized", None)
    if size is None or resized is None or getattr(pipeline.detector, "size", None) == size:
        return pipeline
    return Pipeline(resized(size), pipeline.classifier, margin=pipeline.margin)


def report_error(report: DetectReport, err: SourceError, what: str = "skipped") -> None:
    """One line per problem; the source and reason are escaped: a file called ``IMG [party].jpg`` is no markup, and
    control characters in a name (a newline, an ESC sequence) are shown as escapes."""
    report.errors.append(err)
    console.print(f"[red]{what}[/] {shown(err.source)}: {shown(err.reason)}", markup=True, highlight=False)


def _run_stream(
    inp: Input,
    pipeline: Pipeline,
    opts: DetectOptions,
    report: DetectReport,
    emit: Callable[[FrameResult], None],
    outputs: _Outputs | None,
    annotator: Annotator | None,
    display: _Display | None,
) -> SourceSummary:
    from rich.progress import TextColumn

    from maskwatch.progress import make_progress

    summary = SourceSummary(inp.name(), inp.kind)
    tracked: TrackedPipeline | None = None
    writer: VideoWriter | None = None
    seen: Counter[str] = Counter()  # untracked (--no-track): the faces' labels, counted as for photos
    start = time.perf_counter()
    try:
        with make_progress(TextColumn("{task.fields[fps]:.1f} FPS")) as progress:
            task = progress.add_task(shown(inp.name()), total=opts.max_frames, fps=0.0)
            for item in iter_frames(inp, every=opts.every, max_frames=opts.max_frames):
                if isinstance(item, SourceError):
                    report_error(report, item)
                    continue
                frame: Frame = item
                if summary.frames == 0:
                    height, width = frame.image.shape[:2]
                    size = opts.video_det_size if opts.video_det_size is not None else video_det_size(width, height)
                    pipeline = video_pipeline(pipeline, size)
                    summary.det_size = size
                    rate = (frame.fps or 25.0) / opts.every  # processed frames per second of the source
                    if frame.frames:  # a video file: the progress bar gets its length
                        todo = -(-frame.frames // opts.every)
                        progress.update(task, total=min(todo, opts.max_frames) if opts.max_frames else todo)
                    if opts.track:
                        tracked = TrackedPipeline(pipeline, rate, classify_every=opts.classify_every)
                if tracked:  # frame.index only numbers the JSON; --classify-every counts the frames processed here
                    faces = tracked.track(frame.image)
                    result = pipeline.result(frame.image, faces, inp.name(), frame.index or 0)
                else:
                    faces = pipeline.faces(frame.image)
                    result = pipeline.result(frame.image, faces, inp.name(), frame.index)
                summary.frames += 1
                summary.faces += len(result.faces)
                if not tracked:
                    seen.update(f.label for f in result.faces)
                emit(result)
                if annotator:
                    drawn = annotator.draw(frame.image, faces)
                    if outputs:
                        if writer is None:
                            path = outputs.path(inp, ".mp4")
                            writer = VideoWriter(path, rate)
                            summary.output = str(path)
                        writer.write(drawn)
                    if display and not display.show(inp.name(), drawn):
                        break
                elapsed = time.perf_counter() - start
                progress.update(task, advance=1, fps=summary.frames / elapsed if elapsed > 0 else 0.0)
    finally:
        if writer:
            writer.close()
        summary.seconds = time.perf_counter() - start
    summary.summary = tracked.summary() if tracked else summarise(list(seen.elements()), pipeline.labels)
    if quiet():
        log.info("%s: %d frames, %.1f FPS", printable(inp.name()), summary.frames, summary.fps)
    return summary
