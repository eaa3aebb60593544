"""Who may call the API: the API key (health stays open for probes) and the origin rule, one middleware for HTTP;
the live WebSocket, which no HTTP middleware sees, asks the same two questions."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from fastapi import Request, Response
from fastapi.responses import JSONResponse

from maskwatch.serve.deps import get_state
from maskwatch.serve.schemas import API
from maskwatch.serve.settings import ServeSettings


def key_ok(settings: ServeSettings, given: str) -> bool:
    return secrets.compare_digest(given.encode("utf-8", "replace"), settings.api_key.encode())  # type: ignore[union-attr]


def origin_allowed(settings: ServeSettings, origin: str | None, host: str) -> bool:
    """Browsers send Origin on cross-site POSTs and WebSockets (which CORS does not cover): only the server's
    own pages and the --cors origins may post or stream; clients that send no Origin (curl, scripts) may."""
    cors = settings.cors_origins
    return not origin or origin in cors or "*" in cors or urlsplit(origin).netloc.lower() == host.lower()


async def guard(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    """HTTP middleware: 401 without the key, 403 for a POST from another site; pages and OPTIONS pass."""
    path = request.url.path
    if path.startswith(API) and request.method != "OPTIONS":
        settings = (await get_state(request)).settings
        given = request.headers.get("x-api-key") or ""
        if settings.api_key and path != f"{API}/health" and not key_ok(settings, given):
            return JSONResponse({"detail": "API key required or wrong (header X-API-Key)"}, status_code=401)
        origin = request.headers.get("origin")
        if request.method == "POST" and not origin_allowed(settings, origin, request.headers.get("host", "")):
            detail = f"cross-origin request from {origin[:80]} refused (allow it with --cors)"  # type: ignore[index]
            return JSONResponse({"detail": detail}, status_code=403)
    return await call_next(request)
