"""Where the time of ``maskwatch detect`` goes: the whole process under cProfile, its time split into the steps of
the pipeline, for the defaults and for ``--accurate`` (the defaults before issue 23), as a table and one picture
(docs/results/speed-profile.png, docs/results/speed.md).

Each run is ``python -m cProfile -o FILE -m maskwatch detect SOURCE --no-save [flags]`` in its own process. The
steps are cumulative times of the functions that do them (time in the main thread, as cProfile measures it;
onnxruntime's own threads work inside ``run``): the network run is split by its caller (detector or classifier).

    .venv/bin/python tools/profile_detect.py PHOTO_DIR [--video clip.mp4] [--png docs/results/speed-profile.png]
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUN = ("onnxruntime_inference_collection.py", "run")  # onnxruntime's InferenceSession.run
# step: (file suffix, function name) whose cumulative time it is
FUNCTIONS = {
    "decode": [("detect/sources.py", "_read_image"), ("detect/sources.py", "read")],
    "detector": [("detect/detector.py", "detect")],
    "detector resize": [("data/images.py", "resize_rgb")],
    "detector post-processing": [("detect/detector.py", "decode_centerface"), ("detect/detector.py", "nms")],
    "classifier": [("detect/pipeline.py", "classify")],
    "crops": [("data/crops.py", "crop_square")],
    "classifier preprocessing": [("runtime/onnx.py", "preprocess")],
    "tracker": [("detect/tracking.py", "assign"), ("detect/tracking.py", "smooth"), ("detect/tracking.py", "due")],
    "results, JSON": [("detect/pipeline.py", "result")],
    "engine": [("detect/run.py", "detect_sources")],
}


def cumulative(stats: pstats.Stats, targets: list[tuple[str, str]]) -> float:
    total = 0.0
    for (path, _line, name), (_cc, _nc, _tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        if any(path.endswith(suffix) and name == fn for suffix, fn in targets):
            total += ct
    return total


def network_time(stats: pstats.Stats) -> dict[str, float]:
    """onnxruntime's ``run``, by caller: the detector's ``_run`` or the classifier's ``logits``."""
    out = {"detector network": 0.0, "classifier network": 0.0}
    for key, (_cc, _nc, _tt, _ct, callers) in stats.stats.items():  # type: ignore[attr-defined]
        if not (key[0].endswith(RUN[0]) and key[2] == RUN[1]):
            continue
        for caller, value in callers.items():
            ct = value[3]
            if caller[2] == "_run":
                out["detector network"] += ct
            elif caller[2] == "logits":
                out["classifier network"] += ct
    return out


def steps(stats: pstats.Stats) -> dict[str, float]:
    """The seconds of each step, exclusive (a step's own part, without the steps inside it)."""
    t = {name: cumulative(stats, fns) for name, fns in FUNCTIONS.items()}
    t.update(network_time(stats))
    total = stats.total_tt  # type: ignore[attr-defined]
    out = {
        "start-up (imports, models)": total - t["engine"],
        "decode (JPEG / video)": t["decode"],
        "detector: resize": t["detector resize"],
        "detector: network": t["detector network"],
        "detector: post-processing": t["detector post-processing"],
        "detector: other": t["detector"] - t["detector resize"] - t["detector network"] - t["detector post-processing"],
        "classifier: crops": t["crops"],
        "classifier: preprocessing": t["classifier preprocessing"],
        "classifier: network": t["classifier network"],
        "tracker": t["tracker"],
        "results, JSON": t["results, JSON"],
    }
    inner = sum(v for k, v in out.items() if not k.startswith("start-up"))
    out["engine, other Python"] = t["engine"] - inner
    out["total"] = total
    return {k: round(max(0.0, v), 3) for k, v in out.items()}


def profile(source: str, flags: list[str], threads: int) -> tuple[dict[str, float], int]:
    """The steps' seconds of one run, and the photos or frames it did."""
    with tempfile.TemporaryDirectory() as tmp:
        prof = Path(tmp) / "run.prof"
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "MASKWATCH_THREADS": str(threads)}
        env["MASKWATCH_QUIET"] = "1"
        command = [sys.executable, "-m", "cProfile", "-o", str(prof), "-m", "maskwatch", "detect", source]
        done = subprocess.run([*command, "--no-save", *flags], env=env, check=True, capture_output=True, text=True)
        found = re.search(r"(\d+) (?:images|frames)[;,]", done.stdout + done.stderr)
        return steps(pstats.Stats(str(prof))), int(found.group(1)) if found else 0


def plot(results: dict[str, dict[str, float]], units: dict[str, int], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    keys = [k for k in results[names[0]] if k != "total"]
    fig, ax = plt.subplots(figsize=(10, 0.6 * len(names) + 2.4))
    cmap = plt.get_cmap("tab20")
    for i, name in enumerate(names):
        left = 0.0
        for j, key in enumerate(keys):
            value = 1000 * results[name][key] / units[name]
            ax.barh(i, value, left=left, color=cmap(j), label=key if i == 0 else None)
            left += value
        ax.text(left, i, f" {left:.0f} ms", va="center")
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set_xlabel("milliseconds per photo / frame (main thread, cProfile; start-up spread over the run)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=3, fontsize=8)
    ax.set_title("Where maskwatch detect spends its time")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photos", help="a folder of photos")
    parser.add_argument("--video", default=None, help="a video file (e.g. bench/video_fps.py's clip)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--png", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    runs = {"photos, --accurate (before)": (args.photos, ["--accurate"]), "photos, default": (args.photos, [])}
    if args.video:
        runs["video, --accurate (before)"] = (args.video, ["--accurate"])
        runs["video, default"] = (args.video, [])
    results, units = {}, {}
    for name, (source, flags) in runs.items():
        results[name], units[name] = profile(source, flags, args.threads)
        print(f"{name} ({units[name]} {'frames' if name.startswith('video') else 'photos'}):")
        for key, value in results[name].items():
            share = 100 * value / results[name]["total"]
            print(f"  {key:32s} {value:8.2f} s  {1000 * value / units[name]:7.1f} ms each  {share:5.1f}%")
    if args.png:
        plot(results, units, args.png)
    if args.json:
        args.json.write_text(json.dumps({"units": units, "seconds": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
