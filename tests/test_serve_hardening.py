"""``maskwatch serve`` under attack and overload: the Host check (DNS rebinding), the line in front of the model
(a flood is refused before its body is read and never reaches the model or the log), the documented formats of
``from``/``to``, truncated TIFFs, the pixel-limit message."""

from __future__ import annotations

import asyncio
import io
import re
import threading
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from starlette.websockets import WebSocketDisconnect
from typer.testing import CliRunner

from maskwatch.serve.app import create_app
from maskwatch.serve.guard import host_name
from maskwatch.serve.inference import InferenceQueue
from maskwatch.serve.routes.events import TIME_PATTERN
from maskwatch.serve.settings import ServeSettings
from test_serve import ASTRONAUT, BASE, bomb_png, default_pipeline, png_bytes

EVIL = "evil.example"


@pytest.fixture(scope="module")
def pipeline():
    return default_pipeline()


def app_for(tmp_path: Path, pipeline, **kw):
    return create_app(ServeSettings(db=tmp_path / "events.sqlite", **kw), pipeline=pipeline)


def lzw_tiff() -> bytes:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)).save(buf, "TIFF", compression="tiff_lzw")
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------------- Host check


def test_foreign_host_is_refused_everywhere_but_health(tmp_path, pipeline):
    """DNS rebinding: a page on evil.example, its name resolved to 127.0.0.1, is same-origin with the server; its
    requests carry Host and Origin evil.example. Without an API key they used to be answered."""
    with TestClient(app_for(tmp_path, pipeline), base_url=f"http://{EVIL}") as c:
        origin = {"Origin": f"http://{EVIL}"}
        for method, path in [
            ("POST", "/api/v1/detect"),
            ("POST", "/api/v1/classify"),
            ("GET", "/api/v1/stats"),
            ("GET", "/api/v1/events.csv"),
            ("GET", "/"),
            ("GET", "/live"),
            ("GET", "/dashboard"),
            ("GET", "/docs"),
            ("GET", "/openapi.json"),
            ("GET", "/static/dashboard.js"),
        ]:
            r = c.request(method, path, headers=origin, content=ASTRONAUT if method == "POST" else None)
            assert r.status_code == 400, (path, r.text)
            assert r.headers["content-type"] == "application/json"
            assert r.json() == {"detail": "host 'evil.example' not allowed (allow it with --allowed-host)"}
        with pytest.raises(WebSocketDisconnect) as closed, c.websocket_connect(f"ws://{EVIL}/api/v1/live") as ws:
            ws.send_bytes(ASTRONAUT)
            ws.receive_json()
        assert closed.value.code == 1008
        # health stays open (probes name the server by whatever address they reach it at); it changes nothing
        assert c.get("/api/v1/health").json()["status"] == "ok"
    with TestClient(app_for(tmp_path, pipeline), base_url=BASE) as c:
        assert c.get("/api/v1/stats").json()["totals"]["images"] == 0  # nothing refused was logged


@pytest.mark.parametrize(
    ("host", "bound", "extra", "ok"),
    [
        ("localhost", "127.0.0.1", [], True),
        ("LOCALHOST:8000", "127.0.0.1", [], True),
        ("127.0.0.1:8000", "127.0.0.1", [], True),
        ("[::1]:8000", "127.0.0.1", [], True),
        ("192.168.1.5:8000", "192.168.1.5", [], True),  # the bound address
        ("192.168.1.5:8000", "0.0.0.0", [], False),  # every interface: clients' names must be given
        ("maskwatch.lan", "0.0.0.0", ["maskwatch.lan"], True),
        ("cam.maskwatch.lan", "0.0.0.0", ["*.maskwatch.lan"], True),
        ("maskwatch.lan.evil.example", "0.0.0.0", ["maskwatch.lan"], False),
        ("anything.example:1", "0.0.0.0", ["*"], True),
        ("", "127.0.0.1", [], False),  # no Host at all
        (EVIL, "127.0.0.1", [], False),
    ],
)
def test_allowed_hosts(tmp_path, pipeline, host, bound, extra, ok):
    app = app_for(tmp_path, pipeline, host=bound, allowed_hosts=extra)
    with TestClient(app, base_url=BASE) as c:
        r = c.get("/api/v1/stats", headers={"Host": host})
        assert r.status_code == (200 if ok else 400), r.text


def test_host_name_drops_the_port():
    assert [host_name(h) for h in ("a.b:80", "[::1]:8000", "[::1]", "::1", "A.B")] == [
        "a.b",
        "[::1]",
        "[::1]",
        "::1",
        "a.b",
    ]


def test_allowed_host_option_reaches_the_server(tmp_path, pipeline, monkeypatch):
    """``serve --allowed-host NAME`` (repeatable): the app handed to uvicorn answers those names; binding every
    interface without --api-key warns, and says how to name the server."""
    import uvicorn

    from maskwatch.cli import app as cli
    from maskwatch.cli import serve as serve_cli

    started = {}
    monkeypatch.setattr(uvicorn, "run", lambda web, **kw: started.update(app=web, **kw))
    monkeypatch.setattr(serve_cli, "open_pipeline", lambda *a, **k: pipeline)
    args = ["serve", "--db", str(tmp_path / "e.sqlite"), "--host", "0.0.0.0"]
    result = CliRunner().invoke(cli, [*args, "--allowed-host", "cam.lan", "--allowed-host", "10.0.0.7"])
    assert result.exit_code == 0, result.output
    assert "without --api-key" in result.output and started["host"] == "0.0.0.0"
    with TestClient(started["app"], base_url=BASE) as c:
        assert [c.get("/api/v1/stats", headers={"Host": h}).status_code for h in ("cam.lan", "10.0.0.7:8000")] == [
            200,
            200,
        ]
        assert c.get("/api/v1/stats", headers={"Host": EVIL}).status_code == 400
    result = CliRunner().invoke(cli, args)  # no --allowed-host: the hint to give one
    assert result.exit_code == 0 and "--allowed-host" in result.output
    assert CliRunner().invoke(cli, [*args, "--allowed-host", "http://x/"]).exit_code != 0


# ---------------------------------------------------------------------------------------------------- overload


class CountingPipeline:
    """Wraps the real pipeline: counts its calls, each held until released."""

    def __init__(self, inner) -> None:
        self.inner, self.release, self.calls = inner, threading.Event(), 0
        self.labels, self.classifier, self.detector, self.margin = inner.labels, inner.classifier, inner.detector, 0.25

    def process(self, *args, **kwargs):
        self.calls += 1
        self.release.wait(30)
        return self.inner.process(*args, **kwargs)


class Body:
    """A request body that records whether the server read it."""

    def __init__(self, data: bytes) -> None:
        self.data, self.read = data, False

    async def __aiter__(self):
        self.read = True
        yield self.data


@pytest.mark.parametrize("queue_wait", [0, 0.05])
def test_a_flood_over_the_queue_is_refused_before_its_body_is_read_and_never_runs_the_model(
    tmp_path, pipeline, queue_wait
):
    slow = CountingPipeline(pipeline)
    app = app_for(tmp_path, pipeline=slow, max_pending=2, queue_wait=queue_wait)

    async def main():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
            held = [asyncio.create_task(c.post("/api/v1/detect", content=ASTRONAUT)) for _ in range(2)]
            while (await c.get("/api/v1/health")).json()["queue"]["pending"] < 2:  # both slots in the model
                await asyncio.sleep(0.01)
            bodies = [Body(ASTRONAUT) for _ in range(20)]
            flood = await asyncio.gather(*(c.post("/api/v1/detect", content=b) for b in bodies))
            slow.release.set()
            done = await asyncio.gather(*held)
            stats = (await c.get("/api/v1/stats")).json()
            return flood, bodies, done, stats

    flood, bodies, done, stats = asyncio.run(main())
    assert [r.status_code for r in done] == [200, 200]
    assert {r.status_code for r in flood} == {503}
    assert all(int(r.headers["retry-after"]) >= 1 and r.json()["detail"].startswith("server busy") for r in flood)
    assert not any(b.read for b in bodies)  # refused before the upload was read
    assert slow.calls == 2  # the model ran for the two held requests only
    assert stats["totals"]["images"] == 2  # and only they were logged


def test_the_line_hands_freed_places_on_in_order_and_a_place_left_unused_goes_to_the_next(tmp_path, pipeline):
    """max_pending 1: A runs; B (an empty body: 400 without reaching the model) and C wait in line. When A ends,
    B is let in and refused; its place goes to C, which is served (it does not wait out its time in line)."""
    slow = CountingPipeline(pipeline)
    app = app_for(tmp_path, pipeline=slow, max_pending=1, queue_wait=30)

    async def main():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:

            async def waiting(n: int) -> None:
                while (await c.get("/api/v1/health")).json()["queue"]["waiting"] < n:
                    await asyncio.sleep(0.01)

            a = asyncio.create_task(c.post("/api/v1/detect", content=ASTRONAUT))
            while (await c.get("/api/v1/health")).json()["queue"]["pending"] < 1:
                await asyncio.sleep(0.01)
            b = asyncio.create_task(c.post("/api/v1/detect", content=b""))
            await waiting(1)
            c_ = asyncio.create_task(c.post("/api/v1/detect", content=ASTRONAUT))
            await waiting(2)
            slow.release.set()
            codes = [r.status_code for r in await asyncio.gather(a, b, c_)]
            return codes, (await c.get("/api/v1/health")).json()["queue"]

    codes, queue = asyncio.run(main())
    assert codes == [200, 400, 200]
    assert slow.calls == 2 and queue["pending"] == 0 and queue["waiting"] == 0


def test_retry_after_grows_with_the_line():
    async def main() -> list[int]:
        queue = InferenceQueue(max_pending=1)
        queue.pending, queue._seconds = 1, 2.0  # the queue full, calls of two seconds
        alone = queue.retry_after()
        waiting = [asyncio.create_task(queue.admit(30)) for _ in range(4)]
        await asyncio.sleep(0)
        four = queue.retry_after()  # four in line: eight seconds of calls ahead
        queue.shutdown()
        await asyncio.gather(*waiting, return_exceptions=True)
        return [alone, four]

    alone, four = asyncio.run(main())
    assert alone == 1 and 8 <= four <= 12  # with up to 50 % jitter


# ---------------------------------------------------------------------------------------------------- inputs


def test_stats_and_events_schema_say_which_times_they_take(tmp_path, pipeline):
    with TestClient(app_for(tmp_path, pipeline), base_url=BASE) as c:
        paths = c.get("/openapi.json").json()["paths"]
        for route in ("/api/v1/stats", "/api/v1/events.csv"):
            params = {p["name"]: p["schema"] for p in paths[route]["get"]["parameters"]}
            for name in ("from", "to"):
                schema = params[name]["anyOf"][0]
                assert schema["pattern"] == TIME_PATTERN, (route, name)
        for value in ("2026-11-26T10:00:00Z", "2026-11-26", "2026-11-26 10:00", "1795600000", "0.5", ""):
            assert re.match(TIME_PATTERN, value)
            assert c.get("/api/v1/stats", params={"to": value}).status_code == 200, value
        for value in ("yesterday", "1e9", "nan", "2026-13-01", "253402300800"):
            assert not re.match(TIME_PATTERN, value)
            r = c.get("/api/v1/events.csv", params={"from": value})
            assert r.status_code == 422 and "\n" not in r.json()["detail"], value


def test_truncated_tiff_is_a_broken_image_not_another_kind_of_file(tmp_path, pipeline):
    """Pillow writes a TIFF's directory after its pixels: cut short, the file cannot be identified at all, which
    read as 'not an image' (415); it begins as a TIFF, so it is a broken image (422)."""
    data = lzw_tiff()
    with TestClient(app_for(tmp_path, pipeline), base_url=BASE) as c:
        assert c.post("/api/v1/detect", content=data).status_code == 200
        for cut in (100, len(data) // 2, len(data) - 10):
            for route in ("/api/v1/detect", "/api/v1/classify"):
                r = c.post(route, files={"file": ("cam.tif", data[:cut], "image/tiff")})
                assert r.status_code == 422, (cut, route, r.text)
                assert r.json()["detail"].startswith("cam.tif: truncated or corrupt image")
        text = c.post("/api/v1/detect", files={"file": ("notes.txt", b"II but not a TIFF", "text/plain")})
        assert text.status_code == 415


def test_pixel_limit_message_shows_the_images_size(tmp_path, pipeline):
    with TestClient(app_for(tmp_path, pipeline, max_pixels=40_000_000), base_url=BASE) as c:
        r = c.post("/api/v1/detect", content=bomb_png(12000, 9000))
        assert r.status_code == 413
        assert r.json()["detail"] == "upload: too many pixels (12000x9000 = 108,000,000 pixels > 40,000,000)"
        assert c.post("/api/v1/detect", content=png_bytes(64, 64)).status_code == 200
