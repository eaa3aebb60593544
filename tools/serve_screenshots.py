"""Screenshots of the three pages of ``maskwatch serve`` for the docs: docs/serve-upload.png, docs/serve-live.png and
docs/serve-dashboard.png.

    .venv/bin/python tools/serve_screenshots.py

Starts ``maskwatch serve`` on a free port with a temporary event log, uploads the bundled photos
(``src/maskwatch/assets/samples/*.jpg``, public domain) on ``/``, runs ``/live`` for a few seconds with Chromium's
fake camera showing the group photo, logs a few more detections under other ``?source=`` names through the API,
then photographs the three pages (1200 x 800) and stops the server. Needs Playwright and Debian's Chromium
(``/usr/bin/chromium``), like ``tests/test_serve_browser.py``.

So that the dashboard's chart has a shape rather than one bar, the script also copies the counts of those API
detections into the temporary event log at earlier times of the past hour (``HISTORY_EVENTS`` rows; 0 turns this
off): demo data, written straight into the log since the API always stamps events with the current time.
"""

from __future__ import annotations

import io
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from PIL import Image
from playwright.sync_api import Page, sync_playwright

from maskwatch.serve.store import Event, EventStore

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "src" / "maskwatch" / "assets" / "samples"
DOCS = ROOT / "docs"
CHROMIUM = Path("/usr/bin/chromium")
VIEWPORT = {"width": 1200, "height": 800}
MAX_PNG_BYTES = 250_000
LIVE_SECONDS = 6
STARTUP_TIMEOUT_S = 90
TIMEOUT_MS = 90_000
HISTORY_EVENTS = 300  # copies of the API detections spread over the past hour (demo data for the chart)
# (source, sample) pairs logged through the API so that the dashboard shows more than one camera
API_DETECTIONS = [
    ("entrance", "group.jpg"),
    ("entrance", "hopper-mask.jpg"),
    ("lobby", "astronaut.jpg"),
    ("lobby", "group.jpg"),
    ("cafeteria", "hopper-mask.jpg"),
    ("cafeteria", "group.jpg"),
]

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get_json(url: str) -> dict:
    with _NO_PROXY.open(url, timeout=5) as response:
        return json.load(response)


def _post_image(url: str, data: bytes) -> dict:
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "image/jpeg"}, method="POST")
    with _NO_PROXY.open(request, timeout=120) as response:
        return json.load(response)


@contextmanager
def _server(tmp: Path) -> Iterator[str]:
    """``maskwatch serve`` on a free port with an empty event log in ``tmp``; yields its base URL."""
    port = _free_port()
    log_path = tmp / "server.log"
    cmd = [sys.executable, "-m", "maskwatch.cli", "serve", "--port", str(port), "--db", str(tmp / "events.sqlite")]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "MASKWATCH_QUIET": "1"})
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + STARTUP_TIMEOUT_S
            while True:
                if proc.poll() is not None:
                    raise SystemExit(f"server exited with {proc.returncode}:\n{log_path.read_text()[-2000:]}")
                try:
                    if _get_json(f"{base}/api/v1/health").get("status") == "ok":
                        break
                except (OSError, ValueError):
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit(f"server did not answer within {STARTUP_TIMEOUT_S} s")
                time.sleep(0.25)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _fake_camera_file(path: Path) -> Path:
    """The group photo as a short Y4M video, for Chromium's fake camera."""
    with Image.open(SAMPLES / "group.jpg") as im:
        image = im.convert("RGB")
    width = 640
    height = round(image.height * width / image.width) // 2 * 2
    y, cb, cr = image.resize((width, height)).convert("YCbCr").split()
    half = (width // 2, height // 2)
    frame = b"FRAME\n" + y.tobytes() + cb.resize(half).tobytes() + cr.resize(half).tobytes()
    path.write_bytes(f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode() + frame * 2)
    return path


def _save_png(png: bytes, path: Path) -> None:
    """Save a screenshot, as a palette image when the full-colour one is over ``MAX_PNG_BYTES``."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    buf = io.BytesIO()
    image.save(buf, "PNG", optimize=True)
    for colors in (256, 128, 64):
        if buf.tell() <= MAX_PNG_BYTES:
            break
        buf = io.BytesIO()
        image.quantize(colors=colors, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
            buf, "PNG", optimize=True
        )
    path.write_bytes(buf.getvalue())
    print(f"{path.relative_to(ROOT)}: {path.stat().st_size / 1000:.0f} KB")


def _upload_page(page: Page, base: str) -> None:
    page.goto(f"{base}/")
    photos = sorted(SAMPLES.glob("*.jpg"), key=lambda p: p.name != "group.jpg")  # the group photo first
    page.set_input_files("#file-input", [str(p) for p in photos])
    page.wait_for_function(
        "n => document.querySelectorAll(\"#results .result[data-state='done'],"
        " #results .result[data-state='error']\").length === n",
        arg=len(photos),
    )
    failed = page.locator("#results .result[data-state='error']")
    if failed.count():
        raise SystemExit(f"upload failed: {failed.first.inner_text()}")
    page.evaluate("window.scrollTo(0, 0)")
    _save_png(page.screenshot(), DOCS / "serve-upload.png")


def _live_page(page: Page, base: str) -> None:
    page.goto(f"{base}/live")
    page.click("#live-toggle")
    page.wait_for_function(
        "Number(document.getElementById('frames-received').textContent) >= 3"
        " || document.getElementById('live-status').dataset.state === 'error'"
    )
    if page.locator("#live-status").get_attribute("data-state") != "running":
        raise SystemExit(f"live page failed: {page.locator('#live-error').inner_text()}")
    time.sleep(LIVE_SECONDS)
    page.wait_for_function("Number(document.getElementById('live-counts').dataset.faces) >= 1")
    _save_png(page.screenshot(), DOCS / "serve-live.png")
    page.click("#live-toggle")


def _add_history(db: Path, results: list[tuple[str, dict]]) -> None:
    """Copy the counts of real API detections into the log at earlier times of the past hour."""
    rng = random.Random(0)
    now = time.time()
    store = EventStore(db)  # a second connection to the server's WAL-mode log
    try:
        for _ in range(HISTORY_EVENTS):
            source, result = rng.choice(results)
            counts: dict[str, int] = {}
            for face in result["faces"]:
                counts[face["label"]] = counts.get(face["label"], 0) + 1
            ts = now - rng.uniform(120, 3540)
            store.add(Event(source, "detect", counts, result["width"], result["height"], ts=ts))
    finally:
        store.close()


def _dashboard_page(page: Page, base: str) -> None:
    page.goto(f"{base}/dashboard")
    page.select_option("#filter-period", "1h")  # minute buckets: the few minutes of this run are visible
    images = _get_json(f"{base}/api/v1/stats")["totals"]["images"]
    page.wait_for_function(
        "n => document.getElementById('total-images').textContent === String(n)", arg=images, timeout=20_000
    )
    page.wait_for_timeout(500)  # let the chart draw
    # scroll the filters to the top, so that the totals and the whole chart (with its legend) are in the picture
    page.evaluate("() => window.scrollTo(0, document.getElementById('filters').getBoundingClientRect().top - 16)")
    _save_png(page.screenshot(), DOCS / "serve-dashboard.png")


def main() -> None:
    if not CHROMIUM.exists():
        raise SystemExit(f"{CHROMIUM} is not installed (apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="maskwatch-shots-") as tmp_name:
        tmp = Path(tmp_name)
        camera = _fake_camera_file(tmp / "group.y4m")
        with _server(tmp) as base, sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=str(CHROMIUM),
                headless=True,
                args=[
                    "--no-sandbox",
                    "--use-fake-device-for-media-stream",
                    "--use-fake-ui-for-media-stream",
                    f"--use-file-for-fake-video-capture={camera}",
                ],
            )
            try:
                context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
                context.grant_permissions(["camera"])
                context.set_default_timeout(TIMEOUT_MS)
                page = context.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda exc: errors.append(str(exc)))

                _upload_page(page, base)
                _live_page(page, base)
                results = []
                for source, name in API_DETECTIONS:
                    result = _post_image(f"{base}/api/v1/detect?source={source}", (SAMPLES / name).read_bytes())
                    print(f"logged {name} as {source}: {len(result['faces'])} faces")
                    results.append((source, result))
                _add_history(tmp / "events.sqlite", results)
                _dashboard_page(page, base)
            finally:
                browser.close()
            if errors:
                raise SystemExit(f"JavaScript errors: {errors}")


if __name__ == "__main__":
    main()
