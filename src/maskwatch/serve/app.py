"""``create_app``: the FastAPI application put together: the shared state, lifespan, the Host, API-key and origin
gate, CORS, the line in front of the model, errors as one line of JSON, the routers (``routes/``), the static
files.

Every request path runs the same library pipeline as ``maskwatch detect`` (``detect.pipeline``); the JSON of
``POST /api/v1/detect`` is ``FrameResult.to_json()``, the schema of ``detect --jsonl``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException

from maskwatch import __version__
from maskwatch.detect.pipeline import Pipeline
from maskwatch.detect.reframe import Reframer
from maskwatch.serve.deps import MODEL_ROUTES, ServerState
from maskwatch.serve.guard import Gate
from maskwatch.serve.inference import Admission, InferenceQueue
from maskwatch.serve.monitoring import attach_monitor
from maskwatch.serve.routes import ROUTERS
from maskwatch.serve.routes.pages import STATIC
from maskwatch.serve.settings import ServeSettings
from maskwatch.serve.store import EventStore

log = logging.getLogger("maskwatch.serve")


def create_app(
    settings: ServeSettings | None = None, *, pipeline: Pipeline | None = None, store: EventStore | None = None
) -> FastAPI:
    """The server. ``pipeline`` and ``store`` default to the ones the settings name (tests pass their own)."""
    settings = settings or ServeSettings()
    settings.validate()
    if pipeline is None:
        from maskwatch.detect.pipeline import load_pipeline

        pipeline = load_pipeline(settings.model, config=settings.detector)
    store = store or EventStore(settings.store_target())
    state = ServerState(
        settings=settings,
        pipeline=pipeline,
        reframer=Reframer(pipeline.detector),
        store=store,
        queue=InferenceQueue(settings.max_pending, settings.workers),
        started=time.time(),
    )
    if settings.store_images:
        settings.store_images.mkdir(parents=True, exist_ok=True)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        state.queue.shutdown()
        state.store.close()

    app = FastAPIOffline(  # FastAPI whose /docs and /redoc load their scripts from the package (no CDN: offline)
        lifespan=lifespan,
        title="maskwatch",
        version=__version__,
        description="Faces, and whether each wears a mask, wears it wrongly, or wears none.",
    )
    app.state.server = state  # what deps.get_state hands the routes

    # middleware, innermost first: the line in front of the model (its 503 gets CORS headers), CORS, the gate
    app.add_middleware(Admission, queue=state.queue, paths=MODEL_ROUTES, wait=settings.queue_wait)
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["X-API-Key", "Content-Type"],
        )
    app.add_middleware(Gate, settings=settings)  # added last, so it runs first: a refusal gets no CORS headers

    # errors: one line, never a traceback
    app.exception_handler(RequestValidationError)(_invalid)
    app.exception_handler(StarletteHTTPException)(_http)
    app.exception_handler(Exception)(_crash)

    for router in ROUTERS:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    attach_monitor(app, state, settings.monitor)
    return app


async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
    return JSONResponse({"detail": _one_line(exc)}, status_code=422)


async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
    return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=exc.headers)


async def _crash(request: Request, exc: Exception) -> JSONResponse:
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"detail": f"internal error ({type(exc).__name__}); see the server log"}, status_code=500)


def _one_line(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "body", "path"))
        parts.append(f"{where}: {err.get('msg', 'invalid')}" if where else str(err.get("msg", "invalid")))
    return "; ".join(parts) or "invalid request"
