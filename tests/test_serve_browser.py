"""End-to-end test of the web pages of ``maskwatch serve`` in a real (headless) Chromium.

Starts the real server on a free port with a fresh event log, then drives the three pages:
the photo page uploads the bundled group photo, the dashboard shows the faces it logged, and
the live page streams a fake camera (showing the same photo) over the WebSocket.

Skipped when Playwright or the Debian Chromium (``/usr/bin/chromium``) is not installed.
"""

from __future__ import annotations

from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is not installed", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

from maskwatch.serve.local import chromium_args, fake_camera_video, get_json, local_server  # noqa: E402

SAMPLE = resources.files("maskwatch") / "assets/samples/group.jpg"
STARTUP_TIMEOUT_S = 60
TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[str]:
    """``maskwatch serve`` on a free port with an empty event log; yields its base URL."""
    tmp = tmp_path_factory.mktemp("serve")
    with local_server(tmp / "events.sqlite", timeout=STARTUP_TIMEOUT_S) as srv:
        yield srv.url


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Iterator[sync_api.Page]:
    with resources.as_file(SAMPLE) as sample:
        camera = fake_camera_video(sample, tmp_path_factory.mktemp("camera") / "group.y4m")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=chromium_args(camera),
        )
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.grant_permissions(["camera"])
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        try:
            yield page
        finally:
            browser.close()
    assert not errors, f"JavaScript errors: {errors}"


def test_upload_then_dashboard(server: str, page) -> None:
    # 1. the photo page: upload the bundled group photo, wait for its result
    page.goto(f"{server}/")
    with resources.as_file(SAMPLE) as sample:
        page.set_input_files("#file-input", str(sample))
    result = page.locator("#results .result").first
    page.wait_for_selector("#results .result[data-state='done'], #results .result[data-state='error']")
    assert result.get_attribute("data-state") == "done", result.inner_text()
    faces = int(result.get_attribute("data-faces"))
    assert faces >= 1
    assert result.locator("tbody tr.face-row").count() == faces
    canvas = result.locator("canvas.result-canvas")
    assert canvas.evaluate("c => c.width > 0 && c.height > 0")
    assert "face" in canvas.get_attribute("aria-label")

    # the server logged the same faces
    stats = get_json(f"{server}/api/v1/stats?source=upload")
    assert stats["totals"]["faces"] == faces

    # 2. the dashboard shows them (filtered to the upload source, so live frames cannot interfere)
    page.goto(f"{server}/dashboard")
    page.wait_for_selector("#filter-source option[value='upload']", state="attached")
    page.select_option("#filter-source", "upload")
    page.wait_for_function(
        "n => document.getElementById('total-faces').textContent === String(n)", arg=faces, timeout=20_000
    )
    assert page.locator("#total-images").inner_text() == "1"
    assert page.locator("#dashboard-status").get_attribute("data-kind") != "error"
    assert "source=upload" in page.locator("#download-csv").get_attribute("href")


def test_live_camera(server: str, page) -> None:
    # 3. the live page: the fake camera's frames go over the WebSocket and come back with faces
    page.goto(f"{server}/live")
    page.click("#live-toggle")
    page.wait_for_function(
        "Number(document.getElementById('frames-received').textContent) >= 3"
        " || document.getElementById('live-status').dataset.state === 'error'"
    )
    status = page.locator("#live-status")
    error = page.locator("#live-error")
    assert status.get_attribute("data-state") == "running", error.inner_text()
    assert error.is_hidden(), error.inner_text()
    assert int(page.locator("#frames-received").inner_text()) >= 3
    assert int(page.locator("#live-counts").get_attribute("data-faces")) >= 1  # the photo's faces

    page.click("#live-toggle")
    assert status.get_attribute("data-state") == "stopped"
