"""``detect --engine ray`` (Ray Data) against ``--engine local`` on the same photos, in the same run.

Photos are read in place from the shared data sets (face-mask-4094's crops and face-mask-scenes-853's scenes,
listed in a temporary .txt manifest; nothing is copied). Each engine writes JSON Lines to a temporary file, as the
command line does. Measured per engine: wall seconds, CPU-seconds of every process involved (this process and, for
Ray, its daemons and workers: utime + stime, children included, read from /proc), photos/s and photos per
CPU-second (the capacity-plan figure), and the ratio to the local engine. Ray's fixed costs are measured apart:
``ray.init`` (a local Ray of this process's own) and one execution over a single photo (the actor pool starting,
each actor loading its ONNX sessions). ``--tune`` then runs a smaller subset through the variants the defaults
were chosen from: batch sizes, 1 actor with 2 intra-op threads vs 2 actors with 1.

    .venv/bin/python bench/ray_batch.py                      # 2,000 photos: local, ray x1, ray x2
    .venv/bin/python bench/ray_batch.py --photos 300 --tune  # the tuning variants on 300 photos
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from maskwatch.detect.config import DetectorConfig  # noqa: E402
from maskwatch.detect.pipeline import load_pipeline  # noqa: E402
from maskwatch.detect.run import DetectOptions, detect_sources  # noqa: E402
from maskwatch.scale.batch import DEFAULT_BATCH_SIZE, RayOptions, detect_ray  # noqa: E402
from maskwatch.scale.cluster import connect, disconnect, require_ray  # noqa: E402

DATA = Path(os.environ.get("MASKWATCH_DATA", ROOT.parent / "shared" / "datasets"))
TICK = os.sysconf("SC_CLK_TCK")


def photos(n: int) -> list[str]:
    """``n`` photos: the scenes first (853), then face crops of both classes, alternating."""
    scenes = sorted(str(p) for p in (DATA / "face-mask-scenes-853" / "images").glob("*.png"))
    crops = [sorted(str(p) for p in (DATA / "face-mask-4094" / c).iterdir()) for c in ("with_mask", "without_mask")]
    mixed = [p for pair in zip(*crops, strict=False) for p in pair]
    found = (scenes + mixed)[:n]
    if len(found) < n:
        raise SystemExit(f"only {len(found)} photos under {DATA}")
    return found


def _tree() -> dict[int, float]:
    """CPU-seconds (utime + stime, reaped children included) of this process and each live descendant, by pid."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        parents[int(entry)] = int(fields[1])
        times[int(entry)] = sum(int(v) for v in fields[11:15]) / TICK
    me, out = os.getpid(), {}
    for pid, cpu in times.items():
        p = pid
        while p not in (0, 1) and p != me:
            p = parents.get(p, 0)
        if p == me:
            out[pid] = cpu
    return out


class CpuMeter:
    """CPU-seconds of this process tree over a span, sampled every 0.25 s: Ray's workers come and go (an actor
    pool ends with its execution), so each process counts with the last figure seen of it."""

    def __init__(self) -> None:
        self.start = _tree()
        self.last = dict(self.start)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.wait(0.25):
            self.last.update(_tree())

    def seconds(self) -> float:
        self.stop.set()
        self.thread.join()
        self.last.update(_tree())
        return sum(cpu - self.start.get(pid, 0.0) for pid, cpu in self.last.items())


def measure(name: str, run: Any, n: int, base: dict[str, float] | None) -> dict[str, float]:
    meter, wall0 = CpuMeter(), time.perf_counter()
    run()
    wall, cpu = time.perf_counter() - wall0, meter.seconds()
    row = {"photos": n, "wall_s": wall, "cpu_s": cpu, "photos_per_s": n / wall, "photos_per_cpu_s": n / cpu}
    ratio = ""
    if base:
        per_cpu = row["photos_per_cpu_s"] / base["photos_per_cpu_s"]
        ratio = f"  x{row['photos_per_s'] / base['photos_per_s']:.2f} wall, x{per_cpu:.2f} per CPU-s"
    print(f"{name:34s} {wall:7.1f} s wall {cpu:7.1f} CPU-s  {row['photos_per_s']:6.2f} photos/s  "
          f"{row['photos_per_cpu_s']:5.2f} photos/CPU-s{ratio}", flush=True)  # fmt: skip
    return row


def lines(path: Path) -> dict[str, str]:
    return {json.loads(line)["source"]: line for line in path.read_text().splitlines()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=int, default=2000)
    ap.add_argument("--tune", action="store_true", help="also the tuning variants (batch size, threads)")
    ap.add_argument("--no-main", action="store_true", help="only the tuning variants")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    os.environ["MASKWATCH_QUIET"] = "1"
    tmp = Path(tempfile.mkdtemp(prefix="raybench-"))
    files = photos(args.photos)
    manifest = tmp / "photos.txt"
    manifest.write_text("\n".join(files) + "\n")
    cores = os.cpu_count() or 1
    print(f"{len(files)} photos (manifest {manifest}); {cores} CPUs; load {os.getloadavg()[0]:.1f}", flush=True)
    results: dict[str, Any] = {"photos": len(files), "cpus": cores, "load_start": os.getloadavg()[0]}
    config = DetectorConfig()

    def local() -> None:
        pipeline = load_pipeline(config=config)
        detect_sources([str(manifest)], pipeline, DetectOptions(jsonl=tmp / "local.jsonl"))

    def ray_run(out: str, **kw: Any) -> Any:
        return lambda: detect_ray([str(manifest)], None, config, DetectOptions(jsonl=tmp / out), RayOptions(**kw))

    base = measure("local engine (2 onnx threads)", local, len(files), None) if not args.no_main else None
    results["local"] = base
    t = time.perf_counter()
    connect(None, cores)
    results["ray_init_s"] = time.perf_counter() - t
    print(f"ray.init (local Ray, {cores} CPUs): {results['ray_init_s']:.1f} s", flush=True)
    (tmp / "one.txt").write_text(files[0] + "\n")
    t, meter = time.perf_counter(), CpuMeter()
    detect_ray([str(tmp / "one.txt")], None, config, DetectOptions(jsonl=tmp / "one.jsonl"), RayOptions(workers=1))
    results["one_photo_execution_s"] = time.perf_counter() - t
    results["one_photo_execution_cpu_s"] = meter.seconds()
    print(f"one execution over 1 photo (actor start, models loaded): {results['one_photo_execution_s']:.1f} s wall,"
          f" {results['one_photo_execution_cpu_s']:.1f} CPU-s", flush=True)  # fmt: skip
    t, meter = time.perf_counter(), CpuMeter()
    time.sleep(10)
    results["idle_ray_cpu_per_s"] = meter.seconds() / (time.perf_counter() - t)
    print(f"idle Ray: {results['idle_ray_cpu_per_s']:.2f} CPU-s per second", flush=True)
    if not args.no_main:
        for workers in (1, 2):
            out = f"ray{workers}.jsonl"
            results[f"ray_{workers}"] = measure(f"ray, {workers} actor(s) x 1 thread, batch {DEFAULT_BATCH_SIZE}",
                                                ray_run(out, workers=workers), len(files), base)  # fmt: skip
            same = lines(tmp / out) == lines(tmp / "local.jsonl")
            results[f"ray_{workers}_identical_lines"] = same
            print(f"  same JSON lines as the local engine: {same}", flush=True)
    if args.tune:
        for name, kw in (
            ("tune: 2 actors x 1 thread, batch 2", {"workers": 2, "batch_size": 2}),
            ("tune: 2 actors x 1 thread, batch 8", {"workers": 2, "batch_size": 8}),
            ("tune: 2 actors x 1 thread, batch 32", {"workers": 2, "batch_size": 32}),
            ("tune: 1 actor x 2 threads, batch 8", {"workers": 1, "threads": 2, "batch_size": 8}),
        ):
            results[name] = measure(name, ray_run("tune.jsonl", **kw), len(files), base)
            (tmp / "tune.jsonl").unlink()
    disconnect()
    results["load_end"] = os.getloadavg()[0]
    print(f"load at the end {results['load_end']:.1f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    require_ray()
    main()
