"""Who may call the server: the Host it is called by, the API key (health stays open for probes) and the origin
rule. ``Gate`` is one ASGI middleware for all three on HTTP and the Host on the WebSocket too; the live WebSocket
asks the key and origin questions itself (``key_ok``, ``origin_allowed``).

The Host check stops DNS rebinding: a page on ``evil.example`` whose name is made to resolve to 127.0.0.1 is
same-origin with this server in the browser, but its requests still say ``Host: evil.example``. Only the names in
``ServeSettings.trusted_hosts()`` are answered (``--allowed-host``; ``*`` turns the check off).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from maskwatch.serve.schemas import API
from maskwatch.serve.settings import ServeSettings

Scope = dict[str, Any]
HEALTH = f"{API}/health"
_READ = (b"host", b"origin", b"x-api-key")  # the request headers the gate looks at


def key_ok(settings: ServeSettings, given: str) -> bool:
    return secrets.compare_digest(given.encode("utf-8", "replace"), settings.api_key.encode())  # type: ignore[union-attr]


def origin_allowed(settings: ServeSettings, origin: str | None, host: str) -> bool:
    """Browsers send Origin on cross-site POSTs and WebSockets (which CORS does not cover): only the server's
    own pages and the --cors origins may post or stream; clients that send no Origin (curl, scripts) may."""
    cors = settings.cors_origins
    return not origin or origin in cors or "*" in cors or urlsplit(origin).netloc.lower() == host.lower()


def host_name(host: str) -> str:
    """The name in a Host header, without its port, lower case: ``[::1]:8000`` -> ``[::1]``."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[: host.find("]") + 1] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def host_allowed(allowed: frozenset[str], host: str) -> bool:
    if "*" in allowed:
        return True
    name = host_name(host)
    return name in allowed or any(p.startswith("*.") and name.endswith(p[1:]) for p in allowed)


class Gate:
    """ASGI middleware, outermost: 400 for a Host not allowed (but health), then on the API 401 without the key
    (but health) and 403 for a POST from another site; OPTIONS pass (CORS answers them). Each refusal is the
    one-line JSON error; a WebSocket with a foreign Host is closed before it is accepted."""

    def __init__(self, app: Callable, *, settings: ServeSettings) -> None:
        self.app, self.settings, self.hosts = app, settings, settings.trusted_hosts()

    async def __call__(self, scope: Scope, receive: Callable, send: Callable) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers = {k.decode(): v.decode("latin-1") for k, v in scope["headers"] if k in _READ}
        host, path = headers.get("host", ""), scope["path"]
        if not host_allowed(self.hosts, host) and path != HEALTH:
            if scope["type"] == "websocket":
                return await send({"type": "websocket.close", "code": 1008, "reason": "host not allowed"})
            detail = f"host {host_name(host)[:80]!r} not allowed (allow it with --allowed-host)"
            return await _error(send, 400, detail)
        if scope["type"] == "http" and path.startswith(API) and scope["method"] != "OPTIONS":
            settings = self.settings
            if settings.api_key and path != HEALTH and not key_ok(settings, headers.get("x-api-key", "")):
                return await _error(send, 401, "API key required or wrong (header X-API-Key)")
            origin = headers.get("origin")
            if scope["method"] == "POST" and not origin_allowed(settings, origin, host):
                detail = f"cross-origin request from {origin[:80]} refused (allow it with --cors)"  # type: ignore[index]
                return await _error(send, 403, detail)
        return await self.app(scope, receive, send)


async def _error(send: Callable, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
