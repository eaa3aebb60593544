"""Video speed of the whole ``maskwatch detect clip.mp4 --no-save`` process (tracking on): the default, the
previous default and a plain baseline, in the same run, in alternating rounds; and cameras per CPU core.

The clip: bench/pipeline_fps.py's synthetic 640x480, 30 fps video of 1-3 faces moving over a background
(``--frames``, default 900 = 30 s), or ``--video FILE``. Per run: CPU-seconds of the process
(``getrusage(RUSAGE_CHILDREN)``), frames/s as maskwatch prints it (frames over the time from its first frame to its
last: decoding, detection, tracking, classification; start-up left out) and over the whole process.

* default: ``maskwatch detect clip.mp4 --no-save``;
* previous default: ``--accurate`` (float32 models; the video sizing is the same: half the frame's long side), or
  ``--previous-src PATH`` (a source tree of the old main, run without flags);
* plain baseline: ``--accurate --video-det-size 0 --no-track --classify-every 1``: the detector at the native
  640x480, every face classified on every frame, no tracking.

Cameras per core = 1 / (CPU-seconds per frame x camera fps): how many 30 fps cameras of this size one core keeps
up with (start-up included in the CPU-seconds, so a little pessimistic for a long-running monitor).

    .venv/bin/python bench/video_fps.py            # 900 frames, 3 rounds
    .venv/bin/python bench/video_fps.py --short    # 300 frames, 1 round (under a minute)
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
from pathlib import Path

from photo_speed import SRC, alternate, print_table

CAMERA_FPS = 30.0


def maskwatch_fps(output: str) -> float | None:
    found = re.search(r"(\d+) frames, ([\d.]+) FPS", output)
    return float(found.group(2)) if found else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=None, help="a video file (default: the synthetic clip)")
    parser.add_argument("--frames", type=int, default=900)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--short", action="store_true", help="300 frames, 1 round")
    parser.add_argument("--previous-src", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if args.short:
        args.frames, args.rounds = 300, 1
    with tempfile.TemporaryDirectory() as tmp:
        clip = args.video
        if clip is None:
            sys.path.insert(0, str(SRC))
            from pipeline_fps import write_video

            clip = Path(tmp) / "clip.mp4"
            write_video(clip, args.frames)
        base = [str(clip), "--no-save"]
        configs = {"default": (base, SRC)}
        if args.previous_src:
            configs["previous default"] = (base, args.previous_src.resolve())
        else:
            configs["previous default (--accurate)"] = ([*base, "--accurate"], SRC)
        configs["plain baseline (native, untracked)"] = (
            [*base, "--accurate", "--video-det-size", "0", "--no-track", "--classify-every", "1"],
            SRC,
        )
        print(f"{clip}, {args.threads} threads, {args.rounds} rounds", file=sys.stderr)
        results = alternate(args.rounds, configs, args.threads)
    summary = {}
    for name, runs in results.items():
        frames = int(re.search(r"(\d+) frames, ", runs[-1]["output"]).group(1))
        fps = [maskwatch_fps(r["output"]) or 0.0 for r in runs]
        cpu = statistics.median(r["cpu"] for r in runs)
        summary[name] = {
            "frames": frames,
            "fps_min": min(fps),
            "fps_median": statistics.median(fps),
            "process_fps_median": frames / statistics.median(r["wall"] for r in runs),
            "cpu_s": round(cpu, 2),
            "cpu_ms_per_frame": round(1000 * cpu / frames, 2),
            "cameras_per_core": round(frames / cpu / CAMERA_FPS, 2),
            "rounds": len(runs),
        }
    names = list(summary)
    previous = summary[names[1]]
    rows = [["", "FPS min", "FPS median", "process FPS", "CPU ms/frame", "30-fps cameras/core", "FPS vs previous"]]
    for name, s in summary.items():
        rows.append(
            [
                name,
                f"{s['fps_min']:.1f}",
                f"{s['fps_median']:.1f}",
                f"{s['process_fps_median']:.1f}",
                f"{s['cpu_ms_per_frame']:.1f}",
                f"{s['cameras_per_core']:.2f}",
                f"{s['fps_median'] / previous['fps_median']:.2f}x" if previous["fps_median"] else "",
            ]
        )
    print(f"{clip.name if args.video else 'synthetic 640x480 clip'}, {summary[names[0]]['frames']} frames, tracking on")
    print(f"(except the baseline), {args.threads} threads:")
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps({"threads": args.threads, "results": summary}, indent=2) + "\n")


if __name__ == "__main__":
    main()
