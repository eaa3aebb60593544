"""The camera monitor page (``/cameras``) in a real (headless) Chromium, against the real server watching two file
cameras (looping H.264 clips made here from the bundled photos, each face shown in turn so person events happen):
two tiles with their names, status ``live``, a loaded preview, people counted today, the per-minute chart drawn;
a camera removed through the API disappears, one added appears. Saves ``docs/serve-cameras.png``.

Skipped when Playwright or the Debian Chromium (``/usr/bin/chromium``) is not installed.
"""

from __future__ import annotations

import contextlib
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is not installed", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

from maskwatch.serve.local import get_json, local_server  # noqa: E402
from test_monitor import make_clip, wait_for  # noqa: E402 - the monitor tests' clips and polling

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "src" / "maskwatch" / "assets" / "samples"
SCREENSHOT = ROOT / "docs" / "serve-cameras.png"
FPS = 5
# (photo, seconds): blanks longer than the tracker's 1 s lost buffer, so each face is one person
CLIPS = {
    "a": [(None, 0.4), ("astronaut", 1.6), (None, 1.4), ("hopper-mask", 1.6), (None, 1.4)],
    "b": [(None, 0.4), ("hopper-mask", 1.6), (None, 1.4), ("astronaut", 1.6), (None, 1.4)],
}
STARTUP_TIMEOUT_S = 60
TIMEOUT_MS = 30_000
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def api(url: str, method: str, body: dict | None = None) -> int:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with _NO_PROXY.open(req, timeout=10) as response:
        return response.status


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[tuple[str, dict[str, Path]]]:
    """``maskwatch serve`` watching cameras ``a`` and ``b`` (looping clips); yields its URL and the clips."""
    tmp = tmp_path_factory.mktemp("monitor-browser")
    clips = {name: make_clip(tmp / f"clip-{name}.mp4", scenes) for name, scenes in CLIPS.items()}
    toml = "".join(
        f'[[camera]]\nname = "{name}"\nurl = "{path.as_posix()}"\nloop = true\nfps = {FPS}\n\n'
        for name, path in clips.items()
    )
    (tmp / "cameras.toml").write_text(toml, encoding="utf-8")
    with local_server(tmp / "events.sqlite", "--cameras", str(tmp / "cameras.toml"), timeout=STARTUP_TIMEOUT_S) as srv:
        yield srv.url, clips


@pytest.fixture(scope="module")
def page() -> Iterator[sync_api.Page]:
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1280, "height": 1000})
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        try:
            yield page
        finally:
            browser.close()
    assert not errors, f"JavaScript errors: {errors}"


def people_today(url: str) -> dict[str, int]:
    summary = get_json(f"{url}/api/v1/people/summary")
    return {c["camera"]: c["people"] for c in summary["cameras"]}


def test_two_cameras_in_tiles(server, page) -> None:
    url, clips = server
    # the clips run a loop or so: each camera has committed a person
    counts = wait_for(lambda: (c := people_today(url)).get("a") and c.get("b") and c, timeout=45)
    assert counts and counts.get("a", 0) > 0 and counts.get("b", 0) > 0, counts

    page.goto(f"{url}/cameras")
    tiles = page.locator("#camera-grid .cam-tile")
    page.wait_for_function("document.querySelectorAll('#camera-grid .cam-tile').length === 2")
    assert [tiles.nth(i).get_attribute("data-camera") for i in range(2)] == ["a", "b"]
    assert tiles.nth(0).locator(".cam-name").inner_text() == "a"
    assert tiles.nth(1).locator(".cam-name").inner_text() == "b"
    assert page.locator("a[href='/cameras'][aria-current='page']").count() == 1  # in the nav

    for name in ("a", "b"):
        tile = page.locator(f".cam-tile[data-camera='{name}']")
        # status live (a looping file camera stays live)
        page.wait_for_function(
            "n => document.querySelector(`.cam-tile[data-camera='${n}'] .cam-badge`).textContent.includes('live')",
            arg=name,
        )
        # the preview loaded
        page.wait_for_function(
            "n => { const img = document.querySelector(`.cam-tile[data-camera='${n}'] img.cam-preview`);"
            " return img && !img.hidden && img.complete && img.naturalWidth > 0; }",
            arg=name,
        )
        assert tile.locator("img.cam-preview").evaluate("i => i.naturalWidth") == 640
        # people today, with the percentages
        page.wait_for_function(
            "n => Number(document.querySelector(`.cam-tile[data-camera='${n}']`).dataset.people) > 0", arg=name
        )
        assert int(tile.locator(".cam-people-count").inner_text()) > 0
        assert "% masked" in tile.locator(".cam-breakdown").inner_text()
        # the chart drew something: a sized canvas with non-transparent pixels
        canvas = tile.locator("canvas.cam-chart")
        assert canvas.evaluate(
            "c => { if (!c.width || !c.height) return false;"
            " const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
            " for (let i = 3; i < d.length; i += 4) if (d[i]) return true; return false; }"
        )
        assert tile.locator(".cam-error").is_hidden()
    assert page.locator("#cameras-status").is_hidden()

    # the preview keeps refreshing (a new object URL)
    first = page.locator(".cam-tile[data-camera='a'] img.cam-preview").get_attribute("src")
    page.wait_for_function(
        "s => document.querySelector(\".cam-tile[data-camera='a'] img.cam-preview\").getAttribute('src') !== s",
        arg=first,
        timeout=10_000,
    )

    # for the screenshot: both labels counted on each camera, and both previews showing a face (not a blank frame)
    wait_for(lambda: min(people_today(url).values()) >= 2, timeout=20)
    with contextlib.suppress(sync_api.TimeoutError):  # a blank frame in the screenshot is no failure of the page
        page.wait_for_function(
            "Array.from(document.querySelectorAll('img.cam-preview')).every(img => {"
            " const c = document.createElement('canvas'); c.width = 32; c.height = 24;"
            " const g = c.getContext('2d'); g.drawImage(img, 0, 0, 32, 24);"
            " const d = g.getImageData(0, 0, 32, 24).data; let lo = 255, hi = 0;"
            " for (let i = 0; i < d.length; i += 4) { lo = Math.min(lo, d[i]); hi = Math.max(hi, d[i]); }"
            " return hi - lo > 60; })",
            timeout=15_000,
            polling=200,
        )
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert SCREENSHOT.stat().st_size > 0

    # a camera removed disappears; one added appears (no reload)
    assert api(f"{url}/api/v1/cameras/b", "DELETE") == 204
    page.wait_for_function("document.querySelectorAll('#camera-grid .cam-tile').length === 1", timeout=10_000)
    body = {"name": "c", "url": str(clips["b"]), "loop": True, "fps": FPS}
    assert api(f"{url}/api/v1/cameras", "POST", body) == 201
    page.wait_for_selector(".cam-tile[data-camera='c']", timeout=10_000)
    assert page.locator("#camera-grid .cam-tile").count() == 2
