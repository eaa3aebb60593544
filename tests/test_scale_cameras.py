"""Cameras as Ray actors (``--engine ray``) on a real local Ray (the session's ``ray start --head`` on 127.0.0.1):
person events reach the store through the actors, with their snapshots; an actor's process killed with SIGKILL is
restarted by Ray and its camera goes live again by itself, while the other camera goes on, and every event
committed before the kill is in the store once; the API lists Ray cameras as local ones; without Ray installed, or
with no cluster at the address, ``serve --engine ray`` stops in one line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from maskwatch.monitor.config import CameraConfig, MonitorSettings
from maskwatch.scale.cameras import Outbox
from test_monitor import EXPECTED, SCENES, make_clip, wait_for
from test_no_torch import BLOCKER

SRC = str(Path(__file__).resolve().parents[1] / "src")


@pytest.fixture(scope="module")
def ray_joined(ray_address):
    """This process joined the session's cluster (``ray.shutdown()`` at the end of the module)."""
    import ray

    from maskwatch.scale.cluster import connect

    saved = os.environ.get("RAY_AUTH_MODE")
    # the session's cluster runs without token auth (tests/ray_cluster.py): so does this driver, and the actors it
    # starts (with a token file in ~/.ray, a driver in token mode joins but its actors die at once)
    os.environ["RAY_AUTH_MODE"] = "disabled"
    connect(ray_address, None)
    yield ray_address
    ray.shutdown()
    if saved is None:
        os.environ.pop("RAY_AUTH_MODE", None)
    else:
        os.environ["RAY_AUTH_MODE"] = saved


@pytest.fixture(scope="module")
def pipeline():
    from maskwatch.detect.pipeline import load_pipeline

    return load_pipeline()


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clip") / "people.mp4")


def test_outbox_keeps_what_is_not_acknowledged():
    box = Outbox(limit=3)
    box.add(["a", "b"])  # type: ignore[list-item] (any object travels)
    assert box.take(0, 0) == [(1, "a"), (2, "b")]
    assert box.take(0, 0) == [(1, "a"), (2, "b")]  # not acknowledged: given again
    assert box.take(1, 0) == [(2, "b")] and box.pending() == 1
    assert box.take(2, 0) == [] and box.pending() == 0
    box.add(["c", "d", "e"])  # type: ignore[list-item]
    assert [n for n, _ in box.take(2, 0)] == [3, 4, 5] and box.overflow == 0
    box.add(["f"])  # type: ignore[list-item]
    assert [n for n, _ in box.take(2, 0)] == [4, 5, 6] and box.overflow == 1  # over the limit: the oldest dropped
    started = time.monotonic()
    assert box.take(6, 0.2) == [] and time.monotonic() - started >= 0.15  # waited for one


def test_killed_actor_is_restarted_and_loses_no_committed_person(tmp_path, ray_joined, pipeline, clip):
    import ray

    from maskwatch.detect.config import DetectorConfig
    from maskwatch.monitor.manager import Monitor
    from maskwatch.monitor.store import MonitorStore
    from maskwatch.scale.cameras import RayCameras

    store = MonitorStore(tmp_path / "monitor.sqlite")
    cams = [CameraConfig(name=name, url=str(clip), loop=True, fps=5) for name in ("a", "b")]
    factory = RayCameras.for_pipeline(pipeline, DetectorConfig(), num_cpus=0.5)
    monitor = Monitor(store, pipeline, MonitorSettings(cameras=cams), camera_factory=factory)
    monitor.start()

    def people(camera: str) -> list[dict]:
        return [p for p in store.people(limit=10_000) if p["camera"] == camera]

    try:
        assert wait_for(lambda: people("a") and people("b"), 40, 0.2), monitor.statuses()
        first = people("a")[0]
        assert first["label"] in EXPECTED and first["snapshot"]  # the snapshot travelled with the event
        assert store.snapshot_file(first["id"]).read_bytes()[:2] == b"\xff\xd8"
        a, b = monitor.cameras["a"], monitor.cameras["b"]
        pid = a.pid()
        assert pid != os.getpid() and pid != b.pid()  # each camera in a process of its own
        before = {p["id"] for p in people("a")}
        b_frames = monitor.status("b")["frames"]
        killed = time.time()
        os.kill(pid, signal.SIGKILL)
        b_states = []

        def back() -> bool:
            b_states.append(monitor.status("b")["status"])
            status = monitor.status("a")
            return status["restarts"] >= 1 and status["status"] == "live"

        assert wait_for(back, 40, 0.2), monitor.statuses()
        assert a.pid() != pid
        assert set(b_states) == {"live"} and monitor.status("b")["frames"] > b_frames  # b went on meanwhile
        # new people keep coming from the restarted actor
        assert wait_for(lambda: any(p["first_seen"] > killed for p in people("a")), 30, 0.2), monitor.statuses()
        status = monitor.status("a")
        assert status["engine"] == "ray" and status["error"] is None and status["frames"] > 0
    finally:
        monitor.stop()
    rows = store.people(limit=10_000)
    assert before <= {p["id"] for p in rows}  # every person committed before the kill is still there ...
    keys = [(p["camera"], p["track_id"], p["first_seen"]) for p in rows]
    assert len(keys) == len(set(keys))  # ... once
    assert sum(cam.committed for cam in monitor.cameras.values()) == len(rows)
    assert all(cam.actor is None and not cam.running for cam in monitor.cameras.values())  # actors ended
    store.close()
    assert ray.is_initialized()


def test_api_lists_ray_cameras_as_local_ones(tmp_path, ray_joined, pipeline):
    from fastapi.testclient import TestClient

    from maskwatch.monitor.camera import Camera
    from maskwatch.serve.app import create_app
    from maskwatch.serve.settings import ServeSettings

    clip = make_clip(tmp_path / "one.mp4", scenes=SCENES)
    cams = [CameraConfig(name="file", url=str(clip))]
    settings = ServeSettings(
        db=tmp_path / "events.sqlite",
        engine="ray",
        address=ray_joined,
        camera_cpus=0.25,
        allowed_hosts=["testserver"],
        monitor=MonitorSettings(cameras=cams),
    )
    app = create_app(settings, pipeline=pipeline)
    local = Camera(cams[0], pipeline, lambda _: None).status()
    with TestClient(app) as client:

        def people():
            return client.get("/api/v1/people", params={"camera": "file"}).json()["people"]

        assert wait_for(lambda: len(people()) == 2, 40, 0.25), client.get("/api/v1/cameras").json()
        assert sorted(p["label"] for p in people()) == sorted(EXPECTED)
        assert all(client.get(p["snapshot"]).content[:2] == b"\xff\xd8" for p in people())
        listed = client.get("/api/v1/cameras").json()
        assert [c["name"] for c in listed] == ["file"] and set(listed[0]) >= set(local)
        assert listed[0]["status"] in ("live", "stopped") and listed[0]["frames"] >= 25
        made = client.post("/api/v1/cameras", json={"name": "off", "url": str(clip), "enabled": False})
        assert made.status_code == 201 and made.json()["status"] == "stopped"
        assert {c["name"] for c in client.get("/api/v1/cameras").json()} == {"file", "off"}
        assert client.delete("/api/v1/cameras/off").status_code == 204
        assert client.get("/api/v1/cameras/file/preview.jpg").content[:2] == b"\xff\xd8"


def _serve(args: list[str], blocked: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    code = BLOCKER.format(blocked=blocked, argv=["maskwatch", "serve", "--db", str(tmp_path / "e.sqlite"), *args])
    env = {**os.environ, "PYTHONPATH": SRC, "MASKWATCH_QUIET": "1"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)


def test_engine_ray_without_ray_is_one_line(tmp_path):
    out = _serve(["--engine", "ray"], ["ray"], tmp_path)
    text = (out.stdout + out.stderr).strip()
    assert out.returncode == 2 and "pip install 'maskwatch[scale]'" in text and "Traceback" not in text, text
    assert len(text.splitlines()) <= 2, text  # one line (rich may wrap it)
    bad = _serve(["--engine", "spark"], ["ray"], tmp_path)
    assert bad.returncode == 2 and "--engine must be one of local, ray" in bad.stdout + bad.stderr


def test_engine_ray_without_a_cluster_is_one_line(tmp_path):
    pytest.importorskip("ray", reason="ray is not installed (pip install '.[scale]')")
    from ray_cluster import free_port

    out = _serve(["--engine", "ray", "--address", f"127.0.0.1:{free_port()}"], [], tmp_path)
    text = (out.stdout + out.stderr).strip()
    assert out.returncode == 2 and "cannot reach the Ray cluster at 127.0.0.1:" in text, text
    assert "Traceback" not in text and len(text.splitlines()) <= 2, text
