"""How many 640x480 cameras at 10 fps this machine's monitor sustains, what each costs, how fast people are
committed, how soon a camera that comes back is live again, and whether people are counted right.

Load: N file cameras (a clip made from the bundled photos, looped, played at its own 10 fps pace: a camera's
frames arrive as a live camera's would), fps cap 10, every frame analysed or counted as dropped. After a warm-up,
for ``--seconds`` it measures per camera the analysed fps and the share of frames dropped, the CPU (process CPU
seconds per wall second, per camera) and the resident memory per camera (RSS over a no-camera baseline), and the
latency from the frame that closes a person (the track's lost buffer, 1 s, is over) to its row committed, p50/p95.
"Sustained" = every camera analyses at least 95% of its frames.

Reconnect: an RTSP camera (tests/rtsp_camera.py, GStreamer; skipped when absent) killed, then restarted: seconds
from the restart to the camera ``live`` again (the backoff is capped at ``--backoff-max``).

Counting: clips with a known sequence of people (one at a time, and two at once), run once each; people counted
and labels compared with the truth.

    PYTHONPATH=src .venv/bin/python bench/monitor_load.py --cameras 1,2,4 --seconds 8
    PYTHONPATH=src .venv/bin/python bench/monitor_load.py --only reconnect,count
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

from maskwatch.detect.pipeline import load_pipeline
from maskwatch.detect.video import VideoWriter
from maskwatch.monitor.camera import Camera
from maskwatch.monitor.config import CameraConfig, MonitorSettings
from maskwatch.monitor.manager import Monitor
from maskwatch.monitor.store import MonitorStore

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "src" / "maskwatch" / "assets" / "samples"
SIZE = (640, 480)
ONE_AT_A_TIME = [(None, 0.6), ("astronaut", 2.0), (None, 1.5), ("hopper-mask", 2.0), (None, 1.5)]
TRUTH_ONE = ["without_mask", "with_mask"]
PAIR = [(None, 0.6), ("pair", 2.5), (None, 1.5), ("hopper-mask", 2.0), (None, 1.5), ("astronaut", 2.0), (None, 1.5)]
TRUTH_PAIR = ["with_mask", "with_mask", "without_mask", "without_mask"]  # sorted labels


def frame(name: str | None) -> np.ndarray:
    canvas = Image.new("RGB", SIZE, (40, 40, 40))
    names = {"pair": ["astronaut", "hopper-mask"]}.get(name or "", [name] if name else [])
    for i, photo_name in enumerate(names):
        with Image.open(SAMPLES / f"{photo_name}.jpg") as im:
            photo = im.convert("RGB")
        box = (SIZE[0] // len(names) - 20, SIZE[1] * 5 // 6)
        photo.thumbnail((min(box[0], 400), box[1]))
        x = (SIZE[0] // len(names)) * i + (SIZE[0] // len(names) - photo.width) // 2
        canvas.paste(photo, (x, (SIZE[1] - photo.height) // 2))
    return np.asarray(canvas)


def make_clip(path: Path, scenes, fps: int = 10) -> Path:
    with VideoWriter(path, fps) as writer:
        for name, seconds in scenes:
            image = frame(name)
            for _ in range(round(seconds * fps)):
                writer.write(image)
    return path


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return float(np.percentile(values, q))


def load(pipeline, n: int, seconds: float, warmup: float, work: Path) -> dict:
    clip = work / "load.mp4"
    if not clip.exists():
        make_clip(clip, ONE_AT_A_TIME)
    base_rss = rss_mb()
    store = MonitorStore(work / f"load{n}.sqlite")
    cams = [CameraConfig(name=f"cam{i}", url=str(clip), loop=True, fps=10) for i in range(n)]
    monitor = Monitor(store, pipeline, MonitorSettings(cameras=cams, snapshots="blurred"))
    latencies: list[float] = []  # the closing frame's capture -> committed
    since_seen: list[float] = []  # the person's last frame -> committed (the 1 s lost buffer included)

    def heard(event) -> None:
        if measuring.is_set():
            now = time.time()
            latencies.append(now - event.decided)
            since_seen.append(now - event.last_seen)

    measuring = threading.Event()
    monitor.on_person(heard)
    monitor.start()
    time.sleep(warmup)
    start = {c.config.name: (c.read, c.analysed, c.slot.dropped, c.skipped) for c in monitor.cameras.values()}
    cpu0, t0 = cpu_seconds(), time.monotonic()
    measuring.set()
    rss_peak = 0.0
    while time.monotonic() - t0 < seconds:
        time.sleep(0.5)
        rss_peak = max(rss_peak, rss_mb())
    wall, cpu = time.monotonic() - t0, cpu_seconds() - cpu0
    rows = []
    for cam in monitor.cameras.values():
        r0, a0, d0, s0 = start[cam.config.name]
        read, analysed = cam.read - r0, cam.analysed - a0
        rows.append(
            {
                "fps": analysed / wall,
                # a frame read just before the window may be analysed inside it: at most 100%
                "analysed_share": min(1.0, analysed / max(1, read - (cam.skipped - s0))),
                "dropped": cam.slot.dropped - d0,
                "read": read,
            }
        )
    monitor.stop()
    store.close()
    return {
        "cameras": n,
        "fps_min": min(r["fps"] for r in rows),
        "fps_mean": statistics.mean(r["fps"] for r in rows),
        "analysed_min": min(r["analysed_share"] for r in rows),
        "dropped": sum(r["dropped"] for r in rows),
        "cpu_per_camera": cpu / wall / n,
        "rss_per_camera_mb": (rss_peak - base_rss) / n,
        "latency_p50_ms": 1000 * pct(latencies, 50),
        "latency_p95_ms": 1000 * pct(latencies, 95),
        "seen_p50_s": pct(since_seen, 50),
        "seen_p95_s": pct(since_seen, 95),
        "people": len(latencies),
    }


def count(pipeline, work: Path) -> list[dict]:
    out = []
    for name, scenes, truth in (("one at a time", ONE_AT_A_TIME, TRUTH_ONE), ("two at once", PAIR, TRUTH_PAIR)):
        clip = make_clip(work / f"count-{len(out)}.mp4", scenes)
        events: list = []
        cam = Camera(CameraConfig(name="c", url=str(clip), fps=10), pipeline, events.extend, MonitorSettings())
        cam.start()
        deadline = time.monotonic() + 30
        while cam.status()["status"] not in ("stopped", "failed") and time.monotonic() < deadline:
            time.sleep(0.1)
        cam.stop()
        labels = sorted(e.label for e in events)
        out.append({"clip": name, "truth": len(truth), "counted": len(events), "labels_right": labels == sorted(truth)})
    return out


def reconnect(pipeline, work: Path, trials: int, backoff_max: float) -> dict | None:
    probe = subprocess.run(
        ["/usr/bin/python3", "-c", "import gi; gi.require_version('GstRtspServer', '1.0')"], capture_output=True
    )
    if probe.returncode:
        return None
    clip = make_clip(work / "rtsp.mp4", [(None, 2.0), ("astronaut", 2.0), (None, 30.0)])
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    script = ROOT / "tests" / "rtsp_camera.py"

    def serve() -> subprocess.Popen:
        proc = subprocess.Popen(
            ["/usr/bin/python3", str(script), str(clip), str(port)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        return proc

    settings = MonitorSettings(backoff_start=0.25, backoff_max=backoff_max)
    cfg = CameraConfig(name="r", url=f"rtsp://127.0.0.1:{port}/cam", timeout=3)
    cam = Camera(cfg, pipeline, lambda _: None, settings)
    proc = serve()
    cam.start()
    first, back, noticed = None, [], []
    try:
        t = time.monotonic()
        while cam.status()["status"] != "live" and time.monotonic() - t < 20:
            time.sleep(0.02)
        first = time.monotonic() - t
        for _ in range(trials):
            time.sleep(1.0)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            t = time.monotonic()
            while cam.status()["status"] == "live" and time.monotonic() - t < 10:
                time.sleep(0.02)
            noticed.append(time.monotonic() - t)
            time.sleep(2.0)  # down for 2 s
            proc = serve()
            t = time.monotonic()
            while cam.status()["status"] != "live" and time.monotonic() - t < 20:
                time.sleep(0.02)
            back.append(time.monotonic() - t)
    finally:
        cam.stop()
        if proc.poll() is None:
            proc.kill()
    return {"first_live_s": first, "noticed_s": noticed, "back_live_s": back}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cameras", default="1,2,4", help="camera counts to load, comma-separated")
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds per camera count")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--trials", type=int, default=3, help="RTSP kill/restart rounds")
    parser.add_argument("--backoff-max", type=float, default=2.0)
    parser.add_argument("--only", default="load,reconnect,count", help="which parts: load, reconnect, count")
    args = parser.parse_args()
    parts = set(args.only.split(","))
    os.environ.setdefault("MASKWATCH_QUIET", "1")
    pipeline = load_pipeline()
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if "load" in parts:
            print("| cameras | analysed fps (min / mean) | frames analysed (worst camera) | dropped | CPU per camera"
                  " | RSS per camera | commit latency p50 / p95 | last seen -> committed p50 / p95"
                  " | people |")  # fmt: skip
            print("|---|---|---|---|---|---|---|---|---|")
            for n in [int(v) for v in args.cameras.split(",")]:
                r = load(pipeline, n, args.seconds, args.warmup, work)
                print(
                    f"| {n} | {r['fps_min']:.1f} / {r['fps_mean']:.1f} | {100 * r['analysed_min']:.0f}%"
                    f" | {r['dropped']}"
                    f" | {100 * r['cpu_per_camera']:.0f}% of a core | {r['rss_per_camera_mb']:.0f} MB"
                    f" | {r['latency_p50_ms']:.0f} / {r['latency_p95_ms']:.0f} ms"
                    f" | {r['seen_p50_s']:.2f} / {r['seen_p95_s']:.2f} s | {r['people']} |",
                    flush=True,
                )
        if "reconnect" in parts:
            r = reconnect(pipeline, work, args.trials, args.backoff_max)
            if r is None:
                print("reconnect: skipped (no GStreamer RTSP server for /usr/bin/python3)")
            else:
                print(
                    f"reconnect: first live {r['first_live_s']:.2f} s; kill noticed in "
                    f"{', '.join(f'{v:.2f}' for v in r['noticed_s'])} s; live again "
                    f"{', '.join(f'{v:.2f}' for v in r['back_live_s'])} s after the camera came back"
                    f" (backoff cap {args.backoff_max:g} s)"
                )
        if "count" in parts:
            for r in count(pipeline, work):
                print(f"count: {r['clip']}: {r['counted']} of {r['truth']} people, labels right: {r['labels_right']}")
    print(f"load average {os.getloadavg()[0]:.2f} at the end")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
