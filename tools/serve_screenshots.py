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
import random
import tempfile
import time
import urllib.request
from pathlib import Path

from PIL import Image
from playwright.sync_api import Page, sync_playwright

from maskwatch.serve.local import chromium_args, fake_camera_video, get_json, local_server
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


def _post_image(url: str, data: bytes) -> dict:
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "image/jpeg"}, method="POST")
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request, timeout=120) as response:
        return json.load(response)


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
    images = get_json(f"{base}/api/v1/stats")["totals"]["images"]
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
        camera = fake_camera_video(SAMPLES / "group.jpg", tmp / "group.y4m")
        with local_server(tmp / "events.sqlite", timeout=STARTUP_TIMEOUT_S) as server, sync_playwright() as p:
            base = server.url
            browser = p.chromium.launch(
                executable_path=str(CHROMIUM),
                headless=True,
                args=chromium_args(camera),
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
