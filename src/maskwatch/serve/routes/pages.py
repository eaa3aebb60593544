"""The web pages (``/`` upload, ``/live`` webcam, ``/dashboard``, ``/cameras`` monitor); their scripts and styles
are the static files ``create_app`` mounts at ``/static``."""

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


PAGES = (
    ("/", "index.html"),
    ("/live", "live.html"),
    ("/dashboard", "dashboard.html"),
    ("/cameras", "cameras.html"),
)
for route, name in PAGES:
    router.get(route)(page(name))
