"""The done-when of the shared store: real ``maskwatch serve --store postgresql://...`` processes (two at once on one
database, one of them watching a file camera) get events through their HTTP API, are killed with SIGKILL right
after, and a restarted server still has every event they acknowledged: the images' events (``X-Event-Id``) and the
camera's people, read back through its API from PostgreSQL."""

from __future__ import annotations

import csv
import io
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from maskwatch.serve.local import free_port, get_json
from test_monitor import make_clip, wait_for

SAMPLES = Path(__file__).parents[1] / "src" / "maskwatch" / "assets" / "samples"
ASTRONAUT = (SAMPLES / "astronaut.jpg").read_bytes()


def _serve(folder: Path, store: str, *extra: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "MASKWATCH_QUIET": "1", "MASKWATCH_STORE": store}  # the password stays off the command line
    env["PYTHONPATH"] = str(Path(__file__).parents[1] / "src")
    log = (folder / "server.log").open("ab")
    cmd = [sys.executable, "-m", "maskwatch", "serve", "--port", str(port), "--db", str(folder / "events.sqlite")]
    proc = subprocess.Popen([*cmd, *extra], stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert proc.poll() is None, (folder / "server.log").read_text()[-2000:]
        try:
            return get_json(f"{url}/api/v1/health", timeout=1)["status"] == "ok"
        except OSError:
            return False

    assert wait_for(up, 90, 0.2), "server did not start"
    return proc, url


def _detect(url: str, source: str) -> int:
    request = urllib.request.Request(f"{url}/api/v1/detect?source={source}", data=ASTRONAUT, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
        return int(response.headers["X-Event-Id"])


def _kill(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)


def test_serve_keeps_its_events_in_postgresql_across_kill_9(tmp_path, postgres_url):
    from postgres_server import new_database

    store = new_database(postgres_url)
    clip = make_clip(tmp_path / "people.mp4")
    a, url_a = _serve(tmp_path / "a", store, "--camera", f"file={clip}")
    procs = [a]
    try:
        b, url_b = _serve(tmp_path / "b", store)
        procs.append(b)
        acked = {(_detect(u, name), name) for _ in range(3) for u, name in ((url_a, "a"), (url_b, "b"))}
        assert len(acked) == 6  # ids from one sequence, shared by both servers
        people = wait_for(lambda: get_json(f"{url_a}/api/v1/people?limit=100")["people"], 60, 0.1)
        acked.add((_detect(url_b, "b"), "b"))  # one more answered, then both die at once
        _kill(a)
        _kill(b)
        c, url_c = _serve(tmp_path / "c", store)  # a third server on the same database (another folder: no SQLite)
        procs.append(c)
        with urllib.request.urlopen(f"{url_c}/api/v1/events.csv", timeout=30) as response:
            rows = list(csv.DictReader(io.StringIO(response.read().decode())))
        assert {(int(r["id"]), r["source"]) for r in rows} >= acked
        assert all(int(r["faces"]) == 1 and r["with_mask"] == "0" for r in rows)  # the astronaut: one bare face
        assert get_json(f"{url_c}/api/v1/stats")["totals"]["images"] == len(rows)
        kept = {p["id"]: p["label"] for p in get_json(f"{url_c}/api/v1/people?limit=100")["people"]}
        assert {p["id"]: p["label"] for p in people}.items() <= kept.items()
        assert [cam["name"] for cam in get_json(f"{url_c}/api/v1/cameras")] == ["file"]  # the kept camera list too
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    assert not (tmp_path / "c" / "events.sqlite").exists()  # the events went to PostgreSQL, not to --db
