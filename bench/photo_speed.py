"""Photo throughput of the whole ``maskwatch detect DIR --no-save`` process: the default, the previous default and a
plain baseline, in the same run, in alternating rounds.

Each run is a fresh subprocess (start-up, model loading, JPEG decoding included); its CPU-seconds come from
``resource.getrusage(RUSAGE_CHILDREN)`` (user + system, all its threads), its wall time from the clock. CPU-seconds
are the robust figure on a shared machine; wall time is reported as the minimum and median of the rounds.

* default: ``maskwatch detect DIR --no-save``;
* previous default: the same with ``--accurate`` (the defaults before issue 23: every photo at 800 px, float32
  models); or, with ``--previous-src PATH``, the plain command run from another source tree (a git worktree of
  the old main: ``git worktree add /tmp/main-old <commit>``, then ``--previous-src /tmp/main-old/src``);
* plain baseline: ``--accurate --det-size 0``: every photo at its native size, float32 models.

The photos: the first ``--limit`` images (by name) of ``--photos`` (default: face-mask-scenes-ilc, real web photos
up to 800 px), linked into a temporary folder. ``MASKWATCH_THREADS`` = ``--threads`` (default 2) for every run.

    .venv/bin/python bench/photo_speed.py                 # all 873 photos, 3 rounds
    .venv/bin/python bench/photo_speed.py --short         # 100 photos, 1 round (about a minute)
    .venv/bin/python bench/photo_speed.py --previous-src /tmp/main-old/src --json photo_speed.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
PHOTOS = ROOT.parent / "shared" / "datasets" / "face-mask-scenes-ilc" / "images"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_detect(args: list[str], src: Path, threads: int) -> dict:
    """One ``maskwatch detect`` process: its CPU-seconds, wall seconds and output."""
    env = {**os.environ, "PYTHONPATH": str(src), "MASKWATCH_THREADS": str(threads), "MASKWATCH_QUIET": "1"}
    cpu, start = children_cpu(), time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "maskwatch", "detect", *args], env=env, capture_output=True, text=True, check=False
    )
    wall, cpu = time.perf_counter() - start, children_cpu() - cpu
    if done.returncode != 0:
        raise SystemExit(f"maskwatch detect {' '.join(args)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return {"cpu": cpu, "wall": wall, "output": done.stdout + done.stderr}


def alternate(rounds: int, configs: dict[str, tuple[list[str], Path]], threads: int) -> dict[str, list[dict]]:
    """Every configuration once per round, in turn, so that drift in the machine's load hits each."""
    results: dict[str, list[dict]] = {name: [] for name in configs}
    for r in range(rounds):
        for name, (args, src) in configs.items():
            results[name].append(run_detect(args, src, threads))
            last = results[name][-1]
            print(f"  round {r + 1} {name}: {last['cpu']:.1f} CPU-s, {last['wall']:.1f} s", file=sys.stderr)
    return results


def faces_found(output: str) -> int | None:
    found = re.search(r"images: \d+ images; (\d+) faces", output)
    return int(found.group(1)) if found else None


def summarise(runs: list[dict], units: int) -> dict:
    cpu = statistics.median(r["cpu"] for r in runs)
    walls = [r["wall"] for r in runs]
    return {
        "cpu_s": round(cpu, 2),
        "cpu_s_per_unit": round(cpu / units, 4),
        "wall_min_s": round(min(walls), 2),
        "wall_median_s": round(statistics.median(walls), 2),
        "rounds": len(runs),
    }


def print_table(rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))


def link_photos(source: Path, limit: int | None, into: Path) -> int:
    photos = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:limit]
    for p in photos:
        (into / p.name).symlink_to(p.resolve())
    return len(photos)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=PHOTOS)
    parser.add_argument("--limit", type=int, default=None, help="the first N photos (default: all)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--short", action="store_true", help="100 photos, 1 round")
    parser.add_argument("--previous-src", type=Path, default=None, help="the previous default from this src tree")
    parser.add_argument("--no-baseline", action="store_true", help="leave out the plain baseline")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if args.short:
        args.limit, args.rounds = args.limit or 100, 1
    with tempfile.TemporaryDirectory() as tmp:
        n = link_photos(args.photos, args.limit, Path(tmp))
        configs = {"default": ([tmp, "--no-save"], SRC)}
        if args.previous_src:
            configs["previous default"] = ([tmp, "--no-save"], args.previous_src.resolve())
        else:
            configs["previous default (--accurate)"] = ([tmp, "--no-save", "--accurate"], SRC)
        if not args.no_baseline:
            configs["plain baseline (native size)"] = ([tmp, "--no-save", "--accurate", "--det-size", "0"], SRC)
        print(f"{n} photos from {args.photos}, {args.threads} threads, {args.rounds} rounds", file=sys.stderr)
        results = alternate(args.rounds, configs, args.threads)
    summary = {name: {**summarise(runs, n), "faces": faces_found(runs[-1]["output"])} for name, runs in results.items()}
    previous = summary[list(configs)[1]]["cpu_s"] if len(configs) > 1 else None
    rows = [["", "CPU-s", "CPU-s/photo", "wall min", "wall median", "photos/s", "faces", "CPU vs previous"]]
    for name, s in summary.items():
        ratio = f"{previous / s['cpu_s']:.2f}x less" if previous and s["cpu_s"] else ""
        rows.append(
            [
                name,
                f"{s['cpu_s']:.1f}",
                f"{s['cpu_s_per_unit']:.4f}",
                f"{s['wall_min_s']:.1f}",
                f"{s['wall_median_s']:.1f}",
                f"{n / s['wall_median_s']:.1f}",
                str(s["faces"]),
                ratio,
            ]
        )
    print(f"{n} photos ({args.photos}), whole `maskwatch detect DIR --no-save` processes, {args.threads} threads:")
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps({"photos": n, "threads": args.threads, "results": summary}, indent=2) + "\n")


if __name__ == "__main__":
    main()
