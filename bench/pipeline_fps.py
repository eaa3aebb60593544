"""Detection pipeline speed on this CPU: maskwatch's way vs a naive baseline, in the same process.

Photos: images/s of ``Pipeline.process`` (the default pipeline, detector at the default photo size) on photos
already decoded in memory, against the same detector at the photo's native size. The photos are ``--photos DIR``,
else the bundled samples (``src/maskwatch/assets/samples/``) when there are any, else 1024x768 canvases with
scikit-image's astronaut pasted in at random positions and scales.

Video: a synthetic 640x480, 30 fps clip of 1-3 faces (the astronaut's face, one of them with a blue "mask" over
nose to chin) moving over a background, written to a temporary folder. End-to-end frames/s, decoding included:
maskwatch = ``detect_sources`` with tracking at the video detector size, exactly what ``maskwatch detect
clip.mp4`` does (no --save-dir, no --jsonl); naive = every frame decoded, CenterFace at the native 640x480, every
face cropped and classified, no tracking.

Both run in this process in alternating rounds (so that drift in machine load hits each); the script prints the
median rates, the ratios (maskwatch / baseline), the faces found per photo / frame by each (so the faster path is
seen to find the faces too) and the people counted by the tracker.

    .venv/bin/python bench/pipeline_fps.py
    .venv/bin/python bench/pipeline_fps.py --model runs/NAME --threads 2 --json pipeline_fps.json

A quick check that it runs (a few seconds): ``--frames 30 --rounds 1 --photos-repeat 1``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

if TYPE_CHECKING:
    from maskwatch.detect.pipeline import Pipeline

# Before maskwatch is imported (its progress bars read it): rich bars would distort the timings.
os.environ["MASKWATCH_QUIET"] = "1"

SAMPLES = Path(__file__).resolve().parent.parent / "src" / "maskwatch" / "assets" / "samples"
FACE_BOX = (177, 56, 271, 177)  # the astronaut's face in skimage.data.astronaut() (512 x 512), x1 y1 x2 y2
MASK_BOX = (185, 118, 263, 182)  # nose to chin of that face: where the drawn "mask" goes
MASK_RGB = (40, 90, 200)
VIDEO_SIZE = (640, 480)
VIDEO_FPS = 30


def astronaut() -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[:, :, :3])


# ------------------------------------------------------------------------------------------------------- photos


def load_photos(folder: Path) -> list[np.ndarray]:
    from maskwatch.data.images import IMAGE_EXTENSIONS, BadImageError, open_rgb

    photos = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS):
        try:
            photos.append(np.ascontiguousarray(np.array(open_rgb(path), dtype=np.uint8)))
        except BadImageError as exc:
            print(f"skipped {path}: {exc.reason}", file=sys.stderr)
    return photos


def generated_photos(count: int, seed: int = 0) -> tuple[list[np.ndarray], int]:
    """1024x768 canvases (smooth noise background) with 1-3 astronauts pasted in at random positions and scales,
    not overlapping; and the number of faces pasted in all."""
    rng = np.random.default_rng(seed)
    source = astronaut()
    photos, pasted = [], 0
    for _ in range(count):
        canvas = background(1024, 768, rng)
        taken: list[tuple[int, int, int]] = []
        for _ in range(int(rng.integers(1, 4))):
            for _ in range(50):  # a free spot, or give up on this one
                side = int(rng.integers(180, 420))  # face about 33 to 77 pixels wide
                x, y = int(rng.integers(0, 1024 - side)), int(rng.integers(0, 768 - side))
                if all(x + side <= tx or tx + ts <= x or y + side <= ty or ty + ts <= y for tx, ty, ts in taken):
                    canvas[y : y + side, x : x + side] = cv2.resize(source, (side, side), interpolation=cv2.INTER_AREA)
                    taken.append((x, y, side))
                    break
        photos.append(canvas)
        pasted += len(taken)
    return photos, pasted


def background(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth, faceless background: upscaled coarse colour noise over a gradient."""
    coarse = rng.integers(60, 200, size=(6, 8, 3), dtype=np.uint8)
    image = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    image += np.linspace(-30, 30, width, dtype=np.float32)[None, :, None]
    return np.clip(image, 0, 255).astype(np.uint8)


# -------------------------------------------------------------------------------------------------------- video


def face_crops() -> list[np.ndarray]:
    """The astronaut's face with a margin, bare and with a blue rectangle over nose to chin."""
    source = astronaut()
    masked = source.copy()
    cv2.rectangle(masked, MASK_BOX[:2], MASK_BOX[2:], MASK_RGB, thickness=-1)
    x1, y1, x2, y2 = FACE_BOX
    mx, my = round(0.3 * (x2 - x1)), round(0.25 * (y2 - y1))
    window = (slice(max(0, y1 - my), min(512, y2 + my)), slice(max(0, x1 - mx), min(512, x2 + mx)))
    return [np.ascontiguousarray(source[window]), np.ascontiguousarray(masked[window])]


def write_video(path: Path, frames: int) -> float:
    """Write the synthetic clip; returns the true number of faces per frame, on average.

    Three faces in lanes (left, middle, right), each on a smooth path: the left one is there throughout, the middle
    one (masked) from 15% to 85% of the clip, the right one from 40% to the end, so 1 to 3 faces are in view.
    """
    from maskwatch.detect.video import VideoWriter

    width, height = VIDEO_SIZE
    rng = np.random.default_rng(1)
    back = background(width, height, rng)
    bare, masked = face_crops()
    faces = [  # crop, scale, lane centre x, first and last frame (fractions of the clip), phase
        (bare, 0.75, 110, 0.0, 1.0, 0.0),
        (masked, 0.9, 320, 0.15, 0.85, 1.3),
        (bare, 0.6, 530, 0.4, 1.0, 2.6),
    ]
    present = 0
    with VideoWriter(path, VIDEO_FPS) as writer:
        for i in range(frames):
            t = i / VIDEO_FPS
            frame = back.copy()
            for crop, scale, lane, first, last, phase in faces:
                if not first * frames <= i < last * frames:
                    continue
                w, h = round(crop.shape[1] * scale), round(crop.shape[0] * scale)
                face = cv2.resize(crop, (w, h), interpolation=cv2.INTER_AREA)
                cx = lane + 35 * math.sin(0.9 * t + phase)
                cy = height / 2 + (height / 2 - h / 2 - 10) * math.sin(0.6 * t + 2 * phase)
                x, y = round(cx - w / 2), round(cy - h / 2)
                frame[y : y + h, x : x + w] = face
                present += 1
            writer.write(frame)
    return present / max(1, frames)


# ------------------------------------------------------------------------------------------------------ timing


def photo_pass(pipeline: Pipeline, photos: list[np.ndarray], repeat: int) -> tuple[float, float]:
    """(images/s, faces per image) of ``pipeline.process`` over the photos, ``repeat`` times each."""
    faces = 0
    start = time.perf_counter()
    for _ in range(repeat):
        for image in photos:
            faces += len(pipeline.process(image).faces)
    seconds = time.perf_counter() - start
    n = repeat * len(photos)
    return n / seconds, faces / n


def maskwatch_video(pipeline: Pipeline, path: Path, det_size: int) -> tuple[float, float, int]:
    """(frames/s, faces per frame, people) of ``maskwatch detect path``'s engine, wall clock around it all."""
    from maskwatch.detect.run import DetectOptions, detect_sources

    start = time.perf_counter()
    report = detect_sources([str(path)], pipeline, DetectOptions(track=True, video_det_size=det_size))
    seconds = time.perf_counter() - start
    if report.failed or not report.sources:
        raise SystemExit(f"detect_sources failed: {'; '.join(str(e) for e in report.errors)}")
    source = report.sources[0]
    return source.frames / seconds, source.faces / max(1, source.frames), int(source.summary.get("people", 0))


def naive_video(pipeline: Pipeline, path: Path) -> tuple[float, float]:
    """(frames/s, faces per frame): decode every frame, detect at native size, classify every face, no tracking."""
    from maskwatch.detect.sources import Input, SourceError, iter_frames

    frames = faces = 0
    start = time.perf_counter()
    for item in iter_frames(Input("video", str(path))):
        if isinstance(item, SourceError):
            raise SystemExit(f"cannot read the video: {item}")
        faces += len(pipeline.process(item.image).faces)
        frames += 1
    seconds = time.perf_counter() - start
    return frames / seconds, faces / max(1, frames)


def alternate(rounds: int, runs: dict[str, Callable[[], tuple[Any, ...]]]) -> dict[str, list[tuple[Any, ...]]]:
    """Each run once per round, in turn; their results per round."""
    out: dict[str, list[tuple[Any, ...]]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            out[name].append(run())
    return out


def median(results: list[tuple[Any, ...]], column: int) -> float:
    return float(statistics.median(r[column] for r in results))


# ------------------------------------------------------------------------------------------------------- output


def print_table(rows: list[list[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for n, row in enumerate(rows):
        cells = [cell.ljust(widths[0]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)]
        print("  ".join(cells).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))


def rounds_text(results: list[tuple[Any, ...]]) -> str:
    return ", ".join(f"{r[0]:.2f}" for r in results)


def main() -> None:
    from maskwatch.detect.defaults import DEFAULT_DET_SIZE

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="classifier: run folder, checkpoint .pt or .onnx (default: shipped)")
    ap.add_argument("--photos", type=Path, default=None, help="folder of photos (default: samples or generated)")
    ap.add_argument("--photos-count", type=int, default=8, help="photos to generate when there are none")
    ap.add_argument("--photos-repeat", type=int, default=3, help="passes over the photos per round")
    ap.add_argument("--frames", type=int, default=300, help="frames in the synthetic video (30 fps)")
    ap.add_argument("--video-det-size", type=int, default=None, help="default: what detect uses (half the long side)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None, help="onnxruntime threads (sets MASKWATCH_THREADS)")
    ap.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = ap.parse_args()
    if args.rounds < 1 or args.frames < 1 or args.photos_repeat < 1 or args.photos_count < 1:
        ap.error("--rounds, --frames, --photos-repeat and --photos-count must be at least 1")
    if args.threads is not None:
        if args.threads < 1:
            ap.error("--threads must be at least 1")
        os.environ["MASKWATCH_THREADS"] = str(args.threads)  # read when the onnxruntime sessions are made
    if args.video_det_size is None:
        from maskwatch.detect.run import video_det_size as _auto

        args.video_det_size = _auto(*VIDEO_SIZE)

    import onnxruntime

    from maskwatch.detect.detector import CenterFace
    from maskwatch.detect.pipeline import Pipeline, load_pipeline
    from maskwatch.detect.sources import Input, SourceError, iter_frames
    from maskwatch.detect.tracking import FaceTracker
    from maskwatch.errors import MaskwatchError
    from maskwatch.runtime.classifiers import default_model_path, describe

    if args.model is None and not default_model_path().is_file():
        print(f"the default classifier is missing ({default_model_path()}); pass --model PATH", file=sys.stderr)
        raise SystemExit(2)
    try:
        pipeline = load_pipeline(args.model)
    except MaskwatchError as exc:
        print(f"cannot load the pipeline: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    if args.threads is not None and pipeline.classifier.backend == "torch":
        import torch

        torch.set_num_threads(args.threads)  # MASKWATCH_THREADS only reaches onnxruntime sessions
    threads = os.environ.get("MASKWATCH_THREADS") or f"{os.cpu_count()} (default: all CPUs)"
    info = describe(pipeline.classifier)
    print(f"CPUs {os.cpu_count()}, onnxruntime {onnxruntime.__version__}, threads {threads}")
    print(f"classifier {info.get('model')} ({info.get('backend')}), {info.get('path', args.model or 'default')}")

    # photos: the default pipeline (detector at DEFAULT_DET_SIZE) vs the same detector at native size
    if args.photos is not None:
        photos, photo_source = load_photos(args.photos), str(args.photos)
    elif SAMPLES.is_dir() and (photos := load_photos(SAMPLES)):
        photo_source = "bundled samples"
    else:
        photos, pasted = generated_photos(args.photos_count)
        photo_source = f"generated, astronaut pasted {pasted / len(photos):.2f} times per photo"
    if not photos:
        raise SystemExit(f"no readable photos in {args.photos}")
    photo_pass(pipeline, photos[:2], 1)  # warm-up: loads the models (before resized(), so the copy shares them)
    native = Pipeline(pipeline.detector.resized(0), pipeline.classifier, margin=pipeline.margin)  # type: ignore[attr-defined]
    photo_pass(native, photos[:2], 1)  # warm-up: first runs at these input shapes
    photo_results = alternate(
        args.rounds,
        {
            "maskwatch": lambda: photo_pass(pipeline, photos, args.photos_repeat),
            "native": lambda: photo_pass(native, photos, args.photos_repeat),
        },
    )

    # video: detect_sources (tracking, detector at --video-det-size) vs decode + native detector + classify all
    with tempfile.TemporaryDirectory(prefix="maskwatch-bench-") as tmp:
        video = Path(tmp) / "faces.mp4"
        true_faces = write_video(video, args.frames)
        first = next(iter_frames(Input("video", str(video)), max_frames=1))
        if isinstance(first, SourceError):
            raise SystemExit(f"cannot read the generated video: {first}")
        naive = Pipeline(CenterFace(size=0), pipeline.classifier, margin=pipeline.margin)
        # warm-up: both detectors at the video shapes, and the tracker
        pipeline.detector.resized(args.video_det_size).detect(first.image)  # type: ignore[attr-defined]
        FaceTracker(pipeline.labels, VIDEO_FPS).update(naive.faces(first.image))
        video_results = alternate(
            args.rounds,
            {
                "maskwatch": lambda: maskwatch_video(pipeline, video, args.video_det_size),
                "naive": lambda: naive_video(naive, video),
            },
        )

    po, pn = median(photo_results["maskwatch"], 0), median(photo_results["native"], 0)
    vo, vn = median(video_results["maskwatch"], 0), median(video_results["naive"], 0)
    po_faces, pn_faces = median(photo_results["maskwatch"], 1), median(photo_results["native"], 1)
    vo_faces, vn_faces = median(video_results["maskwatch"], 1), median(video_results["naive"], 1)
    people = [r[2] for r in video_results["maskwatch"]]
    size = getattr(pipeline.detector, "size", DEFAULT_DET_SIZE)
    h, w = photos[0].shape[:2]
    print(f"photos: {len(photos)} ({photo_source}, first {w}x{h}), {args.rounds} rounds x {args.photos_repeat} passes")
    print(
        f"video: {args.frames} frames {VIDEO_SIZE[0]}x{VIDEO_SIZE[1]} @ {VIDEO_FPS} fps, {true_faces:.2f} faces/frame "
        f"drawn, 3 people, {args.rounds} rounds"
    )
    print()
    print_table(
        [
            ["", "maskwatch", "baseline", "ratio", "maskwatch rounds", "baseline rounds"],
            [
                f"photos img/s (det {size} vs native)",
                f"{po:.2f}",
                f"{pn:.2f}",
                f"{po / pn:.2f}x",
                rounds_text(photo_results["maskwatch"]),
                rounds_text(photo_results["native"]),
            ],
            ["  faces per photo", f"{po_faces:.2f}", f"{pn_faces:.2f}", "", "", ""],
            [
                f"video frames/s (det {args.video_det_size}+track vs native)",
                f"{vo:.2f}",
                f"{vn:.2f}",
                f"{vo / vn:.2f}x",
                rounds_text(video_results["maskwatch"]),
                rounds_text(video_results["naive"]),
            ],
            [f"  faces per frame (drawn {true_faces:.2f})", f"{vo_faces:.2f}", f"{vn_faces:.2f}", "", "", ""],
            ["  people (tracker; drawn 3)", str(people[-1]), "-", "", ", ".join(map(str, people)), ""],
        ]
    )

    if args.json:
        out = {
            "cpus": os.cpu_count(),
            "onnxruntime": onnxruntime.__version__,
            "threads": os.environ.get("MASKWATCH_THREADS"),
            "classifier": info,
            "rounds": args.rounds,
            "photos": {
                "source": photo_source,
                "count": len(photos),
                "repeat": args.photos_repeat,
                "det_size": size,
                "maskwatch_img_s": po,
                "native_img_s": pn,
                "ratio": po / pn,
                "maskwatch_rounds": [r[0] for r in photo_results["maskwatch"]],
                "native_rounds": [r[0] for r in photo_results["native"]],
                "maskwatch_faces_per_image": po_faces,
                "native_faces_per_image": pn_faces,
            },
            "video": {
                "frames": args.frames,
                "size": list(VIDEO_SIZE),
                "fps": VIDEO_FPS,
                "det_size": args.video_det_size,
                "drawn_faces_per_frame": true_faces,
                "drawn_people": 3,
                "maskwatch_fps": vo,
                "naive_fps": vn,
                "ratio": vo / vn,
                "maskwatch_rounds": [r[0] for r in video_results["maskwatch"]],
                "naive_rounds": [r[0] for r in video_results["naive"]],
                "maskwatch_faces_per_frame": vo_faces,
                "naive_faces_per_frame": vn_faces,
                "people": people,
            },
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2) + "\n")
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
