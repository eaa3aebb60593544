"""Cameras as Ray actors vs cameras in the server: how many 640x480 cameras at 10 fps each engine sustains on this
machine, and what one camera costs, in the same run.

For each camera count N, the same load twice — ``local`` (N ``Camera``s in this process, one shared pipeline) then
``ray`` (N actors on a Ray of this process's own with ``--ray-cpus`` CPUs, each actor its own pipeline): file cameras
playing bench/monitor_load.py's clip at its own 10 fps pace, looped, fps cap 10. Once every camera is live, a
warm-up, then ``--seconds`` measured: per camera the share of its frames analysed (``frames / (read - skipped)``
from the camera statuses, the same fields for both engines), the CPU (local: this process; ray: the actor
processes, and apart the driver plus Ray's own daemons, every process under this one) per wall second, and the
resident memory per camera (ray: each actor's RSS). "Sustained" = every camera analyses at least 95% of its frames.

    PYTHONPATH=src .venv/bin/python bench/ray_cameras.py --cameras 1,2,3,4 --seconds 8
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from maskwatch.detect.config import DetectorConfig
from maskwatch.detect.pipeline import load_pipeline
from maskwatch.monitor.config import CameraConfig, MonitorSettings
from maskwatch.monitor.manager import Monitor
from maskwatch.monitor.store import MonitorStore
from monitor_load import ONE_AT_A_TIME, cpu_seconds, make_clip, rss_mb

TICKS = os.sysconf("SC_CLK_TCK")
SUSTAINED = 0.95


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a live process, 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def proc_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def descendants(root: int) -> list[int]:
    """Every live process under ``root`` (Ray's GCS, raylet, workers: a Ray this process started)."""
    parent: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        kids = [p for p, pp in parent.items() if pp == pid]
        out += kids
        todo += kids
    return out


def run(engine: str, pipeline, n: int, seconds: float, warmup: float, work: Path, factory=None) -> dict:
    clip = work / "load.mp4"
    if not clip.exists():
        make_clip(clip, ONE_AT_A_TIME)
    store = MonitorStore(work / f"{engine}{n}.sqlite")
    cams = [CameraConfig(name=f"cam{i}", url=str(clip), loop=True, fps=10) for i in range(n)]
    base_rss = rss_mb()
    monitor = Monitor(store, pipeline, MonitorSettings(cameras=cams), camera_factory=factory)
    monitor.start()
    started = time.monotonic()
    while any(s["status"] != "live" for s in monitor.statuses()):
        if time.monotonic() - started > 120:
            raise SystemExit(f"{engine}: cameras not live after 120 s: {monitor.statuses()}")
        time.sleep(0.2)
    up = time.monotonic() - started
    time.sleep(warmup)
    actors = [cam.pid() for cam in monitor.cameras.values()] if engine == "ray" else []
    others = [p for p in descendants(os.getpid()) if p not in actors]
    before = {s["name"]: s for s in monitor.statuses()}
    own0, actors0, others0 = cpu_seconds(), [proc_cpu(p) for p in actors], [proc_cpu(p) for p in others]
    t0 = time.monotonic()
    rss_peak = 0.0
    while time.monotonic() - t0 < seconds:
        time.sleep(0.5)
        rss_peak = max(rss_peak, rss_mb() + sum(proc_rss_mb(p) for p in actors))
    wall = time.monotonic() - t0
    own = cpu_seconds() - own0
    actor_cpu = sum(proc_cpu(p) - c for p, c in zip(actors, actors0, strict=True))
    other_cpu = sum(max(0.0, proc_cpu(p) - c) for p, c in zip(others, others0, strict=True))
    after = {s["name"]: s for s in monitor.statuses()}
    shares, fps, frames = [], [], 0
    for name, s1 in after.items():
        s0 = before[name]
        analysed = s1["frames"] - s0["frames"]
        offered = (s1["read"] - s0["read"]) - (s1["skipped"] - s0["skipped"])
        shares.append(min(1.0, analysed / max(1, offered)))  # a frame read just before the window: at most 100%
        fps.append(analysed / wall)
        frames += analysed
    actor_rss = statistics.mean(proc_rss_mb(p) for p in actors) if actors else 0.0
    monitor.stop()
    store.close()
    camera_cpu = (actor_cpu if engine == "ray" else own) / wall / n
    return {
        "engine": engine,
        "cameras": n,
        "up_s": up,
        "fps_min": min(fps),
        "analysed_min": min(shares),
        "camera_cpu": camera_cpu,  # cores per camera: its own work
        "ms_per_frame": 1000 * camera_cpu * wall * n / max(1, frames),  # the same per analysed frame
        "overhead_cpu": ((own + other_cpu) / wall) if engine == "ray" else 0.0,  # cores: driver + Ray daemons
        "rss_per_camera_mb": actor_rss if engine == "ray" else (rss_peak - base_rss) / n,
        "people": store_people(work / f"{engine}{n}.sqlite"),
    }


def restart(pipeline, factory, work: Path, trials: int) -> list[tuple[float, float]]:
    """One Ray camera's actor process killed (SIGKILL) ``trials`` times: (seconds until it is live again with a new
    process, seconds until its first person after the kill is committed)."""
    import signal

    clip = work / "load.mp4"
    store = MonitorStore(work / "restart.sqlite")
    cams = [CameraConfig(name="cam", url=str(clip), loop=True, fps=10)]
    monitor = Monitor(store, pipeline, MonitorSettings(cameras=cams), camera_factory=factory)
    monitor.start()
    cam = monitor.cameras["cam"]
    out = []
    try:
        while monitor.status("cam")["status"] != "live":
            time.sleep(0.1)
        for i in range(trials):
            time.sleep(4.0)
            pid, killed_at = cam.pid(), time.time()
            os.kill(pid, signal.SIGKILL)
            t = time.monotonic()
            while not (monitor.status("cam")["restarts"] > i and monitor.status("cam")["status"] == "live"):
                time.sleep(0.05)
            live = time.monotonic() - t
            while not any(p["first_seen"] > killed_at for p in store.people(camera="cam")):
                time.sleep(0.05)
            out.append((live, time.monotonic() - t))
    finally:
        monitor.stop()
        store.close()
    return out


def store_people(db: Path) -> int:
    store = MonitorStore(db)
    try:
        return store.count_people()
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cameras", default="1,2,3,4", help="camera counts, comma-separated")
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds per engine and camera count")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--ray-cpus", type=int, default=2, help="CPUs of the Ray this bench starts")
    parser.add_argument("--camera-cpus", type=float, default=0.25, help="CPUs Ray reserves per camera actor")
    parser.add_argument("--kills", type=int, default=3, help="actor kills (SIGKILL) timed until the camera is back")
    args = parser.parse_args()
    os.environ.setdefault("MASKWATCH_QUIET", "1")
    from maskwatch.scale.cameras import RayCameras
    from maskwatch.scale.cluster import connect

    pipeline = load_pipeline()
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start", flush=True)
    t = time.monotonic()
    connect(None, args.ray_cpus)
    print(f"ray.init (a Ray of its own, {args.ray_cpus} CPUs): {time.monotonic() - t:.1f} s", flush=True)
    factory = RayCameras.for_pipeline(pipeline, DetectorConfig(), num_cpus=args.camera_cpus)
    print(
        "| cameras | engine | all live after | analysed fps (worst camera) | frames analysed (worst) | CPU per camera"
        " | CPU per analysed frame | driver + Ray daemons | RSS per camera | people |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    best = {"local": 0, "ray": 0}
    with tempfile.TemporaryDirectory() as tmp:
        for n in [int(v) for v in args.cameras.split(",")]:
            for engine in ("local", "ray"):
                r = run(engine, pipeline, n, args.seconds, args.warmup, Path(tmp), factory if engine == "ray" else None)
                if r["analysed_min"] >= SUSTAINED:
                    best[engine] = max(best[engine], n)
                overhead = f"{100 * r['overhead_cpu']:.0f}% of a core" if engine == "ray" else "–"
                print(
                    f"| {n} | {engine} | {r['up_s']:.1f} s | {r['fps_min']:.1f} | {100 * r['analysed_min']:.0f}%"
                    f" | {100 * r['camera_cpu']:.0f}% of a core | {r['ms_per_frame']:.0f} ms"
                    f" | {overhead} | {r['rss_per_camera_mb']:.0f} MB"
                    f" | {r['people']} |",
                    flush=True,
                )
        if args.kills:
            times = restart(pipeline, factory, Path(tmp), args.kills)
            print(
                "actor killed (SIGKILL): live again after "
                + ", ".join(f"{live:.1f}" for live, _ in times)
                + " s; its first new person committed after "
                + ", ".join(f"{person:.1f}" for _, person in times)
                + " s"
            )
    ratio = best["ray"] / best["local"] if best["local"] else float("nan")
    print(
        f"sustained at 10 fps (every camera >= {SUSTAINED:.0%} of its frames): local {best['local']},"
        f" ray {best['ray']} (ray / local = {ratio:.2f})"
    )
    print(f"load average {os.getloadavg()[0]:.2f} at the end")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
