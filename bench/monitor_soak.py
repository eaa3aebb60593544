"""The monitor's soak run, with real parts only: two RTSP cameras (GStreamer's RTSP server, tests/rtsp_camera.py,
run with the system python3-gi), a real MQTT broker (mosquitto on a free port), a webhook receiver that answers
500 to its first two requests, and ``maskwatch serve`` as a subprocess. For ``--minutes`` (default 10) it polls the
cameras' status every second, restarts each camera server once (at 20% and 40% of the run), kills the server with
SIGKILL once (at 60%) and starts it again with only its ``--db``, ``--webhook`` and ``--mqtt`` (the cameras must
come back from its store), then checks:

- every person event committed before the kill is there after the restart (ids compared);
- each camera went ``reconnecting`` after its server's restart and ``live`` again by itself (seconds measured);
- alerts reached the webhook (retried through the 500s: attempts counted by the server's delivery log) and MQTT;
- the server's resident memory and threads over the run.

    PYTHONPATH=src .venv/bin/python bench/monitor_soak.py [--minutes 10] [--json runs/monitor_soak.json]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from maskwatch.serve.local import free_port, get_json  # noqa: E402
from monitor_load import make_clip  # noqa: E402

RTSP_SCRIPT = ROOT / "tests" / "rtsp_camera.py"
# a minute of video: two people in turn, a third at the end (astronaut bare, hopper with a mask)
SCENES = [(None, 3), ("astronaut", 8), (None, 5), ("hopper-mask", 8), (None, 5), ("astronaut", 8), (None, 5),
          ("pair", 10), (None, 8)]  # fmt: skip


def get(url: str, timeout: float = 5) -> object:
    return get_json(url, timeout=timeout)


class Receiver(ThreadingHTTPServer):
    """The webhook: 500 to the first ``fail`` requests, then 200; keeps every body."""

    def __init__(self, fail: int = 2) -> None:
        self.bodies: list[dict] = []
        self.requests = 0
        self.fail = fail
        super().__init__(("127.0.0.1", 0), Handler)


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        server: Receiver = self.server  # type: ignore[assignment]
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        server.requests += 1
        if server.requests <= server.fail:
            self.send_response(500)
        else:
            server.bodies.append(json.loads(body))
            self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def start_rtsp(clip: Path, port: int) -> subprocess.Popen:
    proc = subprocess.Popen(["/usr/bin/python3", str(RTSP_SCRIPT), str(clip), str(port)], stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready", "RTSP camera did not start"
    return proc


def start_mosquitto(work: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    conf = work / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    binary = "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else "mosquitto"
    proc = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return proc, port
        time.sleep(0.1)
    raise RuntimeError("mosquitto did not start")


def start_server(args: list[str], log: Path, port: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "maskwatch", "serve", "--port", str(port), *args]
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "MASKWATCH_QUIET": "1"})
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2)
            return proc
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"server did not start: {log.read_text()[-800:]}")


def proc_stats(pid: int) -> tuple[float, int]:
    rss, threads = 0.0, 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024
        elif line.startswith("Threads:"):
            threads = int(line.split()[1])
    return rss, threads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    import paho.mqtt.client as mqtt

    work = Path(tempfile.mkdtemp(prefix="maskwatch-soak-"))
    clip = make_clip(work / "clip.mp4", SCENES)
    cams = {"door": free_port(), "till": free_port()}
    rtsp = {name: start_rtsp(clip, port) for name, port in cams.items()}
    broker, mqtt_port = start_mosquitto(work)
    messages: list[dict] = []
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    sub.on_message = lambda c, u, msg: messages.append({"topic": msg.topic, **json.loads(msg.payload)})
    sub.connect("127.0.0.1", mqtt_port)
    sub.subscribe("maskwatch/+/alerts", qos=1)
    sub.loop_start()
    receiver = Receiver(fail=2)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    hook = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    base = ["--db", str(work / "events.sqlite"), "--webhook", hook, "--mqtt", f"127.0.0.1:{mqtt_port}"]
    cameras = [a for name, p in cams.items() for a in ("--camera", f"{name}=rtsp://127.0.0.1:{p}/cam")]
    log = work / "serve.log"
    server = start_server([*base, *cameras], log, port)
    total = args.minutes * 60
    plan = {0.2 * total: "restart door", 0.4 * total: "restart till", 0.6 * total: "kill server"}
    timeline: list[dict] = []
    statuses: dict[str, list[tuple[float, str]]] = {name: [] for name in cams}
    rss_threads: list[tuple[float, float, int]] = []
    people_before_kill: set[int] = set()
    restarts: dict[str, float] = {}
    start = time.monotonic()
    print(f"soak: {args.minutes:g} min, cameras {list(cams)}, work {work}", flush=True)
    try:
        while (t := time.monotonic() - start) < total:
            for at in sorted(plan):
                if t >= at:
                    what = plan.pop(at)
                    timeline.append({"t": round(t, 1), "event": what})
                    print(f"{t:6.1f} s: {what}", flush=True)
                    if what.startswith("restart"):
                        name = what.split()[1]
                        rtsp[name].kill()
                        rtsp[name].wait()
                        time.sleep(3)  # the camera is down for 3 s
                        rtsp[name] = start_rtsp(clip, cams[name])
                        restarts[name] = time.monotonic() - start
                    else:
                        people_before_kill = {p["id"] for p in get(f"{url}/api/v1/people?limit=10000")["people"]}
                        server.send_signal(signal.SIGKILL)
                        server.wait()
                        server = start_server(base, log, port)  # no --camera: they come back from the store
                        timeline.append({"t": round(time.monotonic() - start, 1), "event": "server up again"})
            try:
                for cam in get(f"{url}/api/v1/cameras"):
                    seq = statuses.setdefault(cam["name"], [])
                    if not seq or seq[-1][1] != cam["status"]:
                        seq.append((round(time.monotonic() - start, 1), cam["status"]))
                rss_threads.append((round(t, 1), *proc_stats(server.pid)))
            except OSError:
                pass
            time.sleep(1.0)
        people = get(f"{url}/api/v1/people?limit=10000")["people"]
        alerts = get(f"{url}/api/v1/alerts?limit=1000")["alerts"]
        time.sleep(3)  # the last deliveries
    finally:
        server.terminate()
        server.wait(timeout=20)
        for proc in (*rtsp.values(), broker):
            proc.kill()
        sub.loop_stop()
        receiver.shutdown()
    ids = {p["id"] for p in people}
    back = {}
    for name, at in restarts.items():
        after = [(s_t, s) for s_t, s in statuses.get(name, []) if s_t >= at - 3]
        went = next((s_t for s_t, s in after if s == "reconnecting"), None)
        live = next((s_t for s_t, s in after if s == "live" and (went is None or s_t > went)), None)
        back[name] = {
            "reconnecting_seen": went is not None,
            "live_after_restart_s": None if live is None else round(live - at, 1),
        }
    webhook_attempts = [d["attempts"] for a in alerts for d in a.get("deliveries", []) if d["kind"] == "webhook"]
    report = {
        "minutes": args.minutes,
        "timeline": timeline,
        "statuses": statuses,
        "people": len(people),
        "people_by_camera": {name: sum(p["camera"] == name for p in people) for name in cams},
        "people_before_kill": len(people_before_kill),
        "lost_after_kill": sorted(people_before_kill - ids),
        "camera_restarts": back,
        "alerts": len(alerts),
        "alert_states": {s: sum(a["state"] == s for a in alerts) for s in {a["state"] for a in alerts}},
        "webhook_requests": receiver.requests,
        "webhook_bodies": len(receiver.bodies),
        "webhook_500s": min(receiver.requests, receiver.fail),
        "webhook_max_attempts": max(webhook_attempts, default=0),
        "mqtt_messages": len(messages),
        "rss_mb": {
            "first": rss_threads[0][1] if rss_threads else None,
            "max": max((r for _, r, _ in rss_threads), default=None),
            "last": rss_threads[-1][1] if rss_threads else None,
        },
        "threads": {
            "first": rss_threads[0][2] if rss_threads else None,
            "max": max((n for _, _, n in rss_threads), default=None),
            "last": rss_threads[-1][2] if rss_threads else None,
        },
    }
    print(json.dumps(report, indent=1))
    ok = (
        not report["lost_after_kill"]
        and all(v["reconnecting_seen"] and v["live_after_restart_s"] is not None for v in back.values())
        and report["webhook_bodies"] > 0
        and report["mqtt_messages"] > 0
    )
    print("soak:", "PASS" if ok else "FAIL", flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
