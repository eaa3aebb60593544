"""The three web pages (``/`` upload, ``/live`` webcam, ``/dashboard``); their scripts and styles are the static
files ``create_app`` mounts at ``/static``."""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources

from fastapi import APIRouter
from fastapi.responses import FileResponse

STATIC = resources.files("maskwatch") / "serve" / "static"
router = APIRouter(include_in_schema=False)


def page(name: str) -> Callable[[], FileResponse]:
    def serve_page() -> FileResponse:
        return FileResponse(str(STATIC / name), media_type="text/html")

    return serve_page


for route, name in (("/", "index.html"), ("/live", "live.html"), ("/dashboard", "dashboard.html")):
    router.get(route)(page(name))
