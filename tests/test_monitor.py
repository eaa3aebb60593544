"""The camera monitor: camera options and files, a file camera's person events (count, labels, blurred
snapshots), the store (schema version, retention), the cameras/people API round trip across an app restart, and
``kill -9`` of a serving process losing no committed person. Clips are made here from the bundled photos with
``detect.video.VideoWriter``: each photo is shown in turn, with empty frames between, so the people are known."""

from __future__ import annotations

import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import typer
from PIL import Image, ImageFilter
from typer.testing import CliRunner

from maskwatch.cli.monitor import CameraOption, CamerasOption, SnapshotsOption, monitor_settings
from maskwatch.errors import MaskwatchError
from maskwatch.monitor.config import CameraConfig, MonitorSettings, load_cameras_file, parse_camera_option

SAMPLES = Path(__file__).resolve().parents[1] / "src" / "maskwatch" / "assets" / "samples"
# (photo, seconds): the photo's one face is a person; blanks are longer than the tracker's 1 s lost buffer
SCENES = [(None, 0.4), ("astronaut", 1.6), (None, 1.4), ("hopper-mask", 1.6), (None, 1.4)]
EXPECTED = ["without_mask", "with_mask"]  # the people of SCENES, in order
FPS = 5


def scene_frame(name: str | None, size: tuple[int, int] = (640, 480)) -> np.ndarray:
    canvas = Image.new("RGB", size, (40, 40, 40))
    if name:
        with Image.open(SAMPLES / f"{name}.jpg") as im:
            photo = im.convert("RGB")
        photo.thumbnail((size[0] * 5 // 8, size[1] * 5 // 6))
        canvas.paste(photo, ((size[0] - photo.width) // 2, (size[1] - photo.height) // 2))
    return np.asarray(canvas)


def make_clip(path: Path, scenes=SCENES, fps: int = FPS, size: tuple[int, int] = (640, 480)) -> Path:
    from maskwatch.detect.video import VideoWriter

    with VideoWriter(path, fps) as writer:
        for name, seconds in scenes:
            frame = scene_frame(name, size)
            for _ in range(round(seconds * fps)):
                writer.write(frame)
    return path


def wait_for(check, timeout: float, step: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(step)
    return check()


@pytest.fixture(scope="module")
def pipeline():
    from maskwatch.detect.pipeline import load_pipeline

    return load_pipeline()


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clip") / "people.mp4")


# ------------------------------------------------------------------------------------------------ configuration
def test_camera_option_and_bad_urls(tmp_path):
    cam = parse_camera_option("door=rtsp://user:secret@10.0.0.5:554/stream")
    assert (cam.name, cam.input.kind, cam.shown_url) == ("door", "stream", "rtsp://user:***@10.0.0.5:554/stream")
    assert parse_camera_option("desk=0").input.kind == "webcam"
    assert parse_camera_option("hall=https://cam.local/video.mjpg").input.kind == "stream"
    assert parse_camera_option(f"file={tmp_path / 'a.mp4'}").input.kind == "video"
    for text, says in [
        ("door", "NAME=URL"),
        ("=rtsp://x/y", "NAME=URL"),
        ("door=ftp://x/y", "unsupported scheme ftp://"),
        ("door=rtsp:///nohost", "no host"),
        ("door=notes.txt", "not a camera URL"),
        ("bad name=rtsp://x/y", "camera name"),
    ]:
        with pytest.raises(MaskwatchError, match=says):
            parse_camera_option(text)
    with pytest.raises(MaskwatchError) as err:
        parse_camera_option("a b=rtsp://u:secret@h/x")
    assert "secret" not in str(err.value)


def test_cameras_file(tmp_path):
    good = tmp_path / "cams.toml"
    good.write_text(
        textwrap.dedent(
            """
            [defaults]
            fps = 4
            min_face = 20
            [[camera]]
            name = "door"
            url = "rtsp://10.0.0.5/stream"
            alert_labels = ["without_mask"]
            alert_cooldown = 30
            [camera.detector]
            video_size = 256
            threshold = 0.4
            [[camera]]
            name = "hall"
            url = "http://10.0.0.6/video.mjpg"
            fps = 8
            enabled = false
            """
        )
    )
    door, hall = load_cameras_file(good)
    assert (door.fps, door.min_face, door.detector.video_size, door.detector.threshold) == (4, 20, 256, 0.4)
    assert door.alert_labels == ("without_mask",) and door.alert_cooldown == 30
    assert (hall.fps, hall.enabled, hall.alert_labels) == (8, False, ("without_mask", "mask_worn_incorrectly"))
    assert CameraConfig.from_dict(door.to_dict()) == door  # the store's round trip
    cases = {
        "[[camera]\nname=": "not valid TOML",
        "[[camera]]\nname = 'a'\n": "url is missing",
        "[[camera]]\nname = 'a'\nurl = 'rtsp://h/x'\nfsp = 3\n": "unknown field(s) fsp",
        "[[camera]]\nname = 'a'\nurl = 'rtsp://h/x'\nfps = 0\n": "'a': fps must be above 0",
        "[[camera]]\nname = 'a'\nurl = 'rtsp://h/x'\nfps = 'fast'\n": "fps must be a number",
        "[[camera]]\nname = 'a'\nurl = 'rtsp://h/x'\nalert_labels = ['hat']\n": "alert_labels: unknown",
        "[[camera]]\nname = 'a'\nurl = 'rtsp://h/x'\n[camera.detector]\nthreshold = 2\n": "detector: --det-threshold",
        "[[camera]]\nname = 'a'\nurl = 'rtsp://h/x'\n[[camera]]\nname = 'a'\nurl = 'rtsp://h/y'\n": "named twice",
        "[cameras]\n": "unknown table(s) cameras",
        "": "no [[camera]] table",
    }
    for text, says in cases.items():
        bad = tmp_path / "bad.toml"
        bad.write_text(text)
        with pytest.raises(MaskwatchError, match=says.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
            load_cameras_file(bad)
    with pytest.raises(MaskwatchError, match="does not exist"):
        load_cameras_file(tmp_path / "missing.toml")


def test_bad_camera_options_are_one_line_exit_2(tmp_path):
    """What ``serve --camera/--cameras`` do with bad values: the Typer options of cli/monitor.py behind
    ``friendly``, as cli/serve.py wires them."""
    from maskwatch.cli.common import friendly

    app = typer.Typer()

    def serve(camera: CameraOption = None, cameras: CamerasOption = None, snapshots: SnapshotsOption = "blurred"):
        settings = monitor_settings(camera, cameras, snapshots)
        print("ok", len(settings.cameras))

    app.command()(friendly(serve))
    runner = CliRunner()
    (tmp_path / "bad.toml").write_text("[[camera]]\nname = 'x'\n")
    for args, says in [
        (["--camera", "door=ftp://h/x"], "unsupported scheme"),
        (["--camera", "door"], "NAME=URL"),
        (["--camera", f"f={tmp_path / 'none.mp4'}"], "file does not exist"),
        (["--cameras", str(tmp_path / "bad.toml")], "url is missing"),
        (["--cameras", str(tmp_path / "nothere.toml")], "does not exist"),
        (["--camera", "a=rtsp://h/x", "--snapshots", "sharp"], "--snapshots must be one of"),
    ]:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert says in result.output and "Traceback" not in result.output, result.output
        assert len(result.output.strip().splitlines()) <= 2, result.output  # one line (rich may wrap it)
    ok = runner.invoke(app, ["--camera", "a=rtsp://h/x", "--camera", "b=1"])
    assert ok.exit_code == 0 and "ok 2" in ok.output


# --------------------------------------------------------------------------------------------------- file camera
def _run_file_camera(tmp_path, pipeline, clip, snapshots="blurred"):
    from maskwatch.monitor.manager import Monitor
    from maskwatch.monitor.store import MonitorStore

    store = MonitorStore(tmp_path / "monitor.sqlite")
    settings = MonitorSettings(cameras=[CameraConfig(name="file", url=str(clip))], snapshots=snapshots)
    monitor = Monitor(store, pipeline, settings)
    monitor.start()
    try:
        assert wait_for(lambda: monitor.status("file")["status"] == "stopped", 30), monitor.statuses()
    finally:
        monitor.stop()
    return store, monitor


def _detail(gray: np.ndarray, box) -> float:
    """Variance of the image minus its own blur, inside ``box``: how much fine detail (a face's features) it has."""
    x1, y1, x2, y2 = (int(v) for v in box)
    smooth = np.asarray(Image.fromarray(gray.astype(np.uint8)).filter(ImageFilter.BoxBlur(2)), np.float64)
    return float((gray - smooth)[y1:y2, x1:x2].var())


def test_full_and_no_snapshots(tmp_path, pipeline):
    """Two monitors at once on a one-person clip: snapshots kept as captured, and none kept."""
    one = make_clip(tmp_path / "one.mp4", scenes=SCENES[:3])
    runs: dict = {}
    threads = [
        threading.Thread(target=lambda m=mode: runs.update({m: _run_file_camera(tmp_path / m, pipeline, one, m)}))
        for mode in ("full", "none")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    store = runs["full"][0]
    row = store.people()[0]
    snap = np.asarray(Image.open(store.snapshot_file(row["id"])).convert("L"), np.float64)
    full = np.asarray(Image.fromarray(scene_frame("astronaut")).convert("L"), np.float64)
    box = pipeline.detect(scene_frame("astronaut")).boxes[0].astype(int)
    assert _detail(snap, box) > 0.5 * _detail(full, box)
    store.close()
    store = runs["none"][0]
    assert len(store.people()) == 1 and store.people()[0]["snapshot"] is None
    assert not (tmp_path / "none" / "snapshots").exists()
    store.close()


def test_store_version_retention_and_summary(tmp_path):
    from maskwatch.monitor.people import PersonEvent
    from maskwatch.monitor.store import SCHEMA_VERSION, MonitorStore, StoreVersionError

    store = MonitorStore(tmp_path / "m.sqlite")
    assert store.version == SCHEMA_VERSION
    now = time.time()
    for i, (label, age) in enumerate([("with_mask", 0), ("with_mask", 60), ("without_mask", 120), ("with_mask", 9e6)]):
        store.add_person(
            PersonEvent("door" if i < 3 else "old", i, now - age - 5, now - age, label, 0.9, 5, 80, snapshot=b"jpeg")
        )
    summary = store.summary(start=now - 3600, end=now + 1)["cameras"]
    assert [c["camera"] for c in summary] == ["door"]
    door = summary[0]
    assert door["people"] == 3 and door["counts"]["with_mask"] == 2 and door["percent"]["with_mask"] == 66.7
    assert sum(p["people"] for p in door["series"]) == 3 and len(door["series"]) >= 2
    old_file = store.snapshot_file(4)
    assert old_file is not None
    assert store.sweep(30, now=now) == 1 and store.person(4) is None and not old_file.exists()
    assert store.count_people() == 3 and store.sweep(0) == 0
    store.close()
    db = sqlite3.connect(tmp_path / "m.sqlite")
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(StoreVersionError, match="newer"):
        MonitorStore(tmp_path / "m.sqlite")


# ---------------------------------------------------------------------------------------------------------- API
def build_app(tmp_path, pipeline, monitor_settings=None, opener=None, **serve_options):
    """``create_app`` with the monitor attached again with these settings and a stand-in camera opener."""
    from maskwatch.serve.app import create_app
    from maskwatch.serve.monitoring import attach_monitor
    from maskwatch.serve.settings import ServeSettings

    serve_options.setdefault("allowed_hosts", ["testserver"])  # TestClient's Host; the Host check has its own tests
    settings = ServeSettings(db=tmp_path / "events.sqlite", **serve_options)
    app = create_app(settings, pipeline=pipeline)
    attach_monitor(app, app.state.server, monitor_settings or MonitorSettings(), opener=opener)
    return app


def test_cameras_api_round_trip_kept_across_restart(tmp_path, pipeline, clip):
    from fastapi.testclient import TestClient

    key = {"X-API-Key": "secret-key-1"}
    app = build_app(tmp_path, pipeline, api_key="secret-key-1")
    with TestClient(app) as client:
        assert client.get("/api/v1/cameras", headers=key).json() == []
        body = {"name": "lobby", "url": str(clip), "fps": 5, "loop": True}
        assert client.post("/api/v1/cameras", json=body).status_code == 401  # writing needs the key
        made = client.post("/api/v1/cameras", json=body, headers=key)
        assert made.status_code == 201, made.text
        assert client.post("/api/v1/cameras", json=body, headers=key).status_code == 409
        bad = client.post("/api/v1/cameras", json={"name": "x", "url": "ftp://h/x"}, headers=key)
        assert bad.status_code == 422 and "unsupported scheme" in bad.json()["detail"]
        for wrong in ({"alert_labels": 5}, {"detector": "big"}, {"fps": None}, {"enabled": "yes"}, {"colour": 1}):
            answer = client.post("/api/v1/cameras", json={"name": "x", "url": "rtsp://h/x", **wrong}, headers=key)
            assert answer.status_code == 422 and "camera 'x'" in answer.json()["detail"], (wrong, answer.text)
        assert client.post("/api/v1/cameras", json=["x"], headers=key).status_code == 422
        secret = {"name": "door", "url": "rtsp://admin:hunter22@127.0.0.1:9/x", "enabled": False}
        assert client.post("/api/v1/cameras", json=secret, headers=key).status_code == 201
        assert wait_for(lambda: _cam(client, key, "lobby")["status"] == "live", 10)
        changed = client.put("/api/v1/cameras/lobby", json={"fps": 2}, headers=key)
        assert changed.status_code == 200, changed.text
        assert client.put("/api/v1/cameras/lobby", json={"fps": -1}, headers=key).status_code == 422
        assert client.put("/api/v1/cameras/nope", json={"fps": 2}, headers=key).status_code == 404
        assert wait_for(lambda: client.get("/api/v1/cameras/lobby/preview.jpg", headers=key).status_code == 200, 10)
        jpeg = client.get("/api/v1/cameras/lobby/preview.jpg", headers=key)
        assert jpeg.headers["content-type"] == "image/jpeg" and jpeg.content[:2] == b"\xff\xd8"
        listed = {c["name"]: c for c in client.get("/api/v1/cameras", headers=key).json()}
        assert listed["door"]["url"] == "rtsp://admin:***@127.0.0.1:9/x" and "hunter22" not in json.dumps(listed)
        assert listed["door"]["status"] == "stopped" and listed["door"]["enabled"] is False
        assert set(listed["lobby"]) >= {"name", "status", "fps", "dropped", "last_frame", "error", "url", "enabled"}
    # the same store, a new app: the cameras come back as they were left, and the lobby runs again
    app = build_app(tmp_path, pipeline, api_key="secret-key-1")
    with TestClient(app) as client:
        listed = {c["name"]: c for c in client.get("/api/v1/cameras", headers=key).json()}
        assert set(listed) == {"lobby", "door"}
        assert app.state.monitoring.monitor.config("lobby").fps == 2
        assert wait_for(lambda: _cam(client, key, "lobby")["status"] == "live", 10)
        assert client.delete("/api/v1/cameras/lobby", headers=key).status_code == 204
        assert client.delete("/api/v1/cameras/lobby", headers=key).status_code == 404
    app = build_app(tmp_path, pipeline)
    with TestClient(app) as client:
        assert [c["name"] for c in client.get("/api/v1/cameras").json()] == ["door"]


def _cam(client, headers, name):
    return next(c for c in client.get("/api/v1/cameras", headers=headers).json() if c["name"] == name)


def test_file_camera_people_with_labels_blurred_snapshots_api_and_csv(tmp_path, pipeline, clip):
    from fastapi.testclient import TestClient

    app = build_app(tmp_path, pipeline, MonitorSettings(cameras=[CameraConfig(name="file", url=str(clip))]))
    monitoring = app.state.monitoring
    heard: list = []  # (id, whether the row was committed when it was announced)
    monitoring.monitor.on_person(lambda event: heard.append((event.id, monitoring.store.person(event.id) is not None)))
    with TestClient(app) as client:
        assert wait_for(lambda: _cam(client, {}, "file")["status"] == "stopped", 30)
        status = _cam(client, {}, "file")
        assert status["frames"] >= 25 and status["error"] is None and status["people"] == 2, status
        people = client.get("/api/v1/people", params={"camera": "file"}).json()["people"]
        people.sort(key=lambda p: p["first_seen"])
        assert [p["label"] for p in people] == EXPECTED, people
        assert all(p["vote_share"] > 0.9 and p["frames"] >= 3 and p["face_px"] > 60 for p in people), people
        assert len(heard) == 2 and all(committed for _, committed in heard)  # announced after the commit
        person = people[0]
        assert set(person) >= {"id", "camera", "label", "vote_share", "first_seen", "last_seen", "face_px", "snapshot"}
        assert person["first_seen"].endswith("Z") and person["first_seen"] <= person["last_seen"]
        # the snapshot is the frame of the largest face, faces blurred: far less fine detail in the face's box
        for person, name in zip(people, ["astronaut", "hopper-mask"], strict=True):
            snap = client.get(person["snapshot"])
            assert snap.status_code == 200 and snap.headers["content-type"] == "image/jpeg"
            snapped = np.asarray(Image.open(io.BytesIO(snap.content)).convert("L"), np.float64)
            full = np.asarray(Image.fromarray(scene_frame(name)).convert("L"), np.float64)
            box = pipeline.detect(scene_frame(name)).boxes[0].astype(int)
            assert _detail(snapped, box) < 0.2 * _detail(full, box), (_detail(snapped, box), _detail(full, box))
        assert client.get("/api/v1/snapshots/99999.jpg").status_code == 404
        assert client.get("/api/v1/people", params={"camera": "other"}).json()["people"] == []
        assert client.get("/api/v1/people", params={"from": "yesterday"}).status_code == 422
        rows = client.get("/api/v1/people.csv").text.strip().splitlines()
        assert rows[0].startswith("id,camera,track_id,first_seen") and len(rows) == 3
        summary = client.get("/api/v1/people/summary").json()["cameras"]
        assert summary[0]["camera"] == "file" and summary[0]["people"] == 2
        assert summary[0]["percent"]["with_mask"] == 50.0 and summary[0]["series"][0]["people"] >= 1


def test_app_without_cameras_has_no_monitor_until_one_is_added(tmp_path, pipeline):
    from fastapi.testclient import TestClient

    app = build_app(tmp_path, pipeline)
    with TestClient(app) as client:
        assert app.state.monitoring.monitor is None and not (tmp_path / "monitor.sqlite").exists()
        assert client.get("/api/v1/cameras").json() == []
        assert client.get("/api/v1/people").json()["people"] == []
        assert client.get("/api/v1/cameras/x/preview.jpg").status_code == 404


class _Closed:
    """A capture that never opens: fuzzed cameras connect to nothing (no network beyond this process)."""

    error = "closed (test)"

    def isOpened(self) -> bool:
        return False

    def release(self) -> None:
        pass


def test_fuzz_camera_and_people_api_has_no_server_errors(tmp_path, pipeline):
    """Schemathesis requests (valid and invalid) for every cameras/people/snapshots operation: none gets a 5xx."""
    import schemathesis
    from fastapi.testclient import TestClient
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import not_a_server_error

    cams = [CameraConfig(name="door", url="rtsp://127.0.0.1:9/x", enabled=False)]
    app = build_app(tmp_path, pipeline, MonitorSettings(cameras=cams), opener=lambda inp, timeout: _Closed())
    mine = ("/api/v1/cameras", "/api/v1/people", "/api/v1/snapshots")
    calls: list[int] = []
    with TestClient(app):  # the lifespan runs: the monitor is started
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        operations = [r.ok() for r in schema.get_all_operations() if r.ok().path.startswith(mine)]
        assert len(operations) == 9
        for operation in operations:

            @given(case=operation.as_strategy())
            @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
            def check(case) -> None:
                calls.append(case.call_and_validate(checks=[not_a_server_error]).status_code)

            check()
        app.state.monitoring.monitor.stop(2)
    assert len(calls) >= 9 * 10 and max(calls) < 500


# ------------------------------------------------------------------------------------------------------ kill -9
SERVER = """
import sys, uvicorn
from pathlib import Path
from maskwatch.monitor.config import CameraConfig, MonitorSettings
from maskwatch.serve.app import create_app
from maskwatch.serve.monitoring import attach_monitor
from maskwatch.serve.routes import ROUTERS, cameras, people
from maskwatch.serve.settings import ServeSettings
db, port, clip = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
app = create_app(ServeSettings(db=db, port=port))
for router in (cameras.router, people.router):
    if router not in ROUTERS:
        app.include_router(router)
cams = [CameraConfig(name="loop", url=clip, loop=True, fps=5)] if clip else []
attach_monitor(app, app.state.server, MonitorSettings(cameras=cams))  # replaces the one create_app attached
uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
"""


def _serve(tmp_path, clip: str) -> tuple[subprocess.Popen, str]:
    from maskwatch.serve.local import free_port, get_json

    port = free_port()
    env = {**os.environ, "MASKWATCH_QUIET": "1", "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    log = (tmp_path / "server.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(tmp_path / "events.sqlite"), str(port), clip],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"

    def up():
        assert proc.poll() is None, (tmp_path / "server.log").read_text()[-2000:]
        try:
            return get_json(f"{url}/api/v1/health", timeout=1)["status"] == "ok"
        except OSError:
            return False

    assert wait_for(up, 60, 0.25), "server did not start"
    return proc, url


def test_kill_9_loses_no_committed_person(tmp_path, clip):
    from maskwatch.serve.local import get_json

    db = tmp_path / "monitor.sqlite"
    proc, url = _serve(tmp_path, str(clip))
    try:

        def committed():
            if not db.exists():
                return []
            con = sqlite3.connect(db.resolve().as_uri() + "?mode=ro", uri=True)
            try:
                return con.execute("SELECT id, label, last_seen FROM people ORDER BY id").fetchall()
            except sqlite3.OperationalError:
                return []
            finally:
                con.close()

        assert wait_for(lambda: len(committed()) >= 1, 40, 0.05)
        os.kill(proc.pid, signal.SIGKILL)  # the moment right after a commit
        proc.wait(10)
        before = committed()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert before
    proc, url = _serve(tmp_path, "")  # no --camera this time: the kept camera list resumes
    try:
        people = get_json(f"{url}/api/v1/people?limit=1000")["people"]
        assert {p["id"] for p in people} >= {row[0] for row in before}
        assert [c["name"] for c in get_json(f"{url}/api/v1/cameras")] == ["loop"]
    finally:
        proc.terminate()
        proc.wait(10)


def test_monitor_and_its_routes_need_no_torch(tmp_path, clip):
    """The light install's boundary (tests/test_no_torch.py's blocker): the monitor runs a file camera to its end
    and the camera routes import, with torch and every training-only package blocked."""
    from test_no_torch import BLOCKER, TRAINING_ONLY

    code = BLOCKER.split("sys.argv")[0].format(blocked=list(TRAINING_ONLY)) + textwrap.dedent(
        f"""
        import time
        from maskwatch.detect.pipeline import load_pipeline
        from maskwatch.monitor.config import CameraConfig, MonitorSettings
        from maskwatch.monitor.manager import Monitor
        from maskwatch.monitor.store import MonitorStore
        import maskwatch.serve.routes.cameras, maskwatch.serve.routes.people, maskwatch.cli.monitor
        store = MonitorStore({str(tmp_path / "m.sqlite")!r})
        cams = [CameraConfig(name="f", url={str(clip)!r})]
        monitor = Monitor(store, load_pipeline(), MonitorSettings(cameras=cams))
        monitor.start()
        deadline = time.monotonic() + 30
        while monitor.status("f")["status"] != "stopped" and time.monotonic() < deadline:
            time.sleep(0.1)
        monitor.stop()
        print("people", store.count_people())
        """
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0 and "people 2" in out.stdout, out.stderr[-2000:]
