"""The light install, measured: a fresh venv with ``pip install .`` (no extras) — its size on disk and install time —
and the start-up of ``maskwatch --version`` and ``maskwatch detect photo.jpg --no-save`` there, side by side with the
same commands in the full development venv (``.venv``, torch and the rest installed) in the same run.

    .venv/bin/python bench/light_install.py [--runs 5] [--keep DIR]

Needs the package registry (pip downloads the pinned wheels, or takes them from its cache) and about 500 MB of disk.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT / "src" / "maskwatch" / "assets" / "samples" / "group.jpg"


def du_mb(path: Path) -> float:
    total = 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            file = Path(dirpath) / name
            if not file.is_symlink():
                total += file.stat().st_size
    return total / 1e6


def timed(cmd: list[str], runs: int, cwd: Path) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, env={**os.environ, "MASKWATCH_QUIET": "1"})
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each command (the median is printed)")
    parser.add_argument("--keep", type=Path, help="make the venv here and keep it (default: a temporary folder)")
    parser.add_argument("--python", default=sys.executable, help="interpreter for the new venv")
    args = parser.parse_args()

    where = args.keep or Path(tempfile.mkdtemp(prefix="maskwatch-light-"))
    venv = where / "venv"
    if venv.exists():
        shutil.rmtree(venv)
    start = time.perf_counter()
    subprocess.run([args.python, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(ROOT)], check=True)
    install_s = time.perf_counter() - start
    size = du_mb(venv)
    site = next((venv / "lib").glob("python*/site-packages"))
    biggest = sorted(((du_mb(p), p.name) for p in site.iterdir() if p.is_dir()), reverse=True)[:8]
    blocked = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import torch"], capture_output=True, text=True
    ).returncode
    work = Path(tempfile.mkdtemp(prefix="maskwatch-run-"))
    rows = []
    for name, bindir in (("light venv", venv / "bin"), ("full .venv", ROOT / ".venv" / "bin")):
        version = timed([str(bindir / "maskwatch"), "--version"], args.runs, work)
        detect = timed([str(bindir / "maskwatch"), "detect", str(PHOTO), "--no-save"], args.runs, work)
        rows.append((name, statistics.median(version), statistics.median(detect)))
    print(
        f"light venv: {size:.0f} MB on disk, installed in {install_s:.0f} s (venv + pip install .); torch importable:"
        f" {'no' if blocked else 'YES'}"
    )
    print("largest packages:", ", ".join(f"{n} {mb:.0f} MB" for mb, n in biggest))
    print(f"{'':12} {'--version':>10} {'detect photo':>14}  (median of {args.runs}, seconds)")
    for name, version, detect in rows:
        print(f"{name:12} {version:10.2f} {detect:14.2f}")
    (light, full) = rows
    print(f"ratio light/full: --version {light[1] / full[1]:.2f}, detect photo {light[2] / full[2]:.2f}")
    if not args.keep:
        shutil.rmtree(where, ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
