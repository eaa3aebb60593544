"""The FastAPI application: REST API (``/api/v1``), live WebSocket, pages and static files.

Every request path runs the same library pipeline as ``maskwatch detect`` (``detect.pipeline``); the JSON of
``POST /api/v1/detect`` is ``FrameResult.to_json()``, the schema of ``detect --jsonl``.
"""

from __future__ import annotations

import io
import json
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from fastapi import FastAPI, HTTPException, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from maskwatch import __version__
from maskwatch.data.images import BadImageError, ImageTooLargeError, decode_rgb
from maskwatch.detect.pipeline import FrameResult, Pipeline
from maskwatch.labels import label_color
from maskwatch.serve.inference import Busy, InferenceQueue
from maskwatch.serve.settings import ServeSettings
from maskwatch.serve.store import Event, EventStore, iso

API = "/api/v1"
STATIC = resources.files("maskwatch") / "serve" / "static"
MULTIPART = "multipart/form-data"
_BINARY = {"schema": {"type": "string", "format": "binary"}}
_IMAGE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            MULTIPART: {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
            "image/jpeg": _BINARY,
            "image/png": _BINARY,
            "application/octet-stream": _BINARY,
        },
    }
}


class ErrorOut(BaseModel):
    detail: str


class FaceOut(BaseModel):
    box: list[float] = Field(description="[x1, y1, x2, y2] in pixels of the uploaded image")
    det_score: float
    label: str
    score: float
    probs: dict[str, float]
    track_id: int | None = None


class DetectOut(BaseModel):
    source: str
    frame: int | None = None
    width: int
    height: int
    faces: list[FaceOut]


class ClassifyItem(BaseModel):
    source: str
    label: str
    score: float
    probs: dict[str, float]


class ClassifyOut(BaseModel):
    results: list[ClassifyItem]


_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut, "description": text}
    for code, text in {
        400: "empty body or malformed upload",
        401: "API key missing or wrong",
        413: "upload or image too large",
        415: "not an image",
        422: "broken image or bad parameter",
        503: "server busy: retry later",
    }.items()
}


def _hex(label: str) -> str:
    return "#{:02x}{:02x}{:02x}".format(*label_color(label))


def _one_line(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "body", "path"))
        parts.append(f"{where}: {err.get('msg', 'invalid')}" if where else str(err.get("msg", "invalid")))
    return "; ".join(parts) or "invalid request"


def _parse_time(value: str | None, default: float, name: str) -> float:
    """ISO 8601 (naive means UTC) or Unix seconds."""
    if value is None or value == "":
        return default
    try:
        return float(value)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise HTTPException(422, f"{name}: not an ISO 8601 time or Unix seconds: {value[:40]!r}") from None
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def create_app(
    settings: ServeSettings | None = None, *, pipeline: Pipeline | None = None, store: EventStore | None = None
) -> FastAPI:
    """The server. ``pipeline`` and ``store`` default to the ones the settings name (tests pass their own)."""
    settings = settings or ServeSettings()
    settings.validate()
    if pipeline is None:
        from maskwatch.detect.pipeline import load_pipeline

        kwargs = {"size": settings.det_size} if settings.det_size else {}
        pipeline = load_pipeline(settings.model, **kwargs)
    store = store or EventStore(settings.db)
    queue = InferenceQueue(settings.max_pending, settings.workers)
    started = time.time()
    if settings.store_images:
        settings.store_images.mkdir(parents=True, exist_ok=True)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        queue.shutdown()
        store.close()

    app = FastAPI(
        lifespan=lifespan,
        title="maskwatch",
        version=__version__,
        description="Faces, and whether each wears a mask, wears it wrongly, or wears none.",
    )
    app.state.settings, app.state.pipeline, app.state.store, app.state.queue = settings, pipeline, store, queue

    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["X-API-Key", "Content-Type"],
        )

    # ------------------------------------------------------------------ errors: one line, never a traceback
    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _one_line(exc)}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _crash(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": f"internal error: {type(exc).__name__}: {exc}"[:300]}, status_code=500)

    # ------------------------------------------------------------------ API key (health stays open for probes)
    @app.middleware("http")
    async def _auth(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        path = request.url.path
        if settings.api_key and path.startswith(API) and path != f"{API}/health" and request.method != "OPTIONS":
            given = request.headers.get("x-api-key") or ""
            if not secrets.compare_digest(given.encode(), settings.api_key.encode()):
                return JSONResponse({"detail": "API key required or wrong (header X-API-Key)"}, status_code=401)
        return await call_next(request)

    # ------------------------------------------------------------------ reading uploads within the limits
    async def read_body(request: Request) -> bytes:
        limit = settings.max_upload_bytes
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise HTTPException(413, f"upload of {int(declared):,} bytes is over the limit of {limit:,}")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise HTTPException(413, f"upload is over the limit of {limit:,} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def read_images(request: Request, many: bool = False) -> list[tuple[str, bytes]]:
        """(name, bytes) of the uploaded images: multipart field ``file`` (repeatable if ``many``) or the raw body."""
        body = await read_body(request)
        if not body:
            raise HTTPException(400, "empty body: send an image as multipart field 'file' or as the raw body")
        ctype = request.headers.get("content-type", "")
        if not ctype.lower().startswith(MULTIPART):
            return [("upload", body)]
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        try:
            form = await Request(request.scope, replay).form(max_files=64, max_fields=64)
        except Exception as exc:  # python-multipart / Starlette parse errors
            raise HTTPException(400, f"malformed multipart body ({type(exc).__name__})") from None
        files = [v for v in form.getlist("file") if not isinstance(v, str)]
        if not files:
            raise HTTPException(400, "multipart body without a file in field 'file'")
        if len(files) > 1 and not many:
            raise HTTPException(400, "send one image per request to /detect (use /classify for several crops)")
        out = [(Path(f.filename or "upload").name or "upload", await f.read()) for f in files]
        if any(not data for _, data in out):
            raise HTTPException(400, f"empty file: {next(n for n, d in out if not d)}")
        return out

    def decode(name: str, data: bytes) -> np.ndarray:
        try:
            return np.asarray(decode_rgb(data, name, max_pixels=settings.max_pixels))
        except ImageTooLargeError as exc:
            raise HTTPException(413, f"{name}: {exc.reason}") from None
        except BadImageError as exc:
            code = 415 if exc.reason == "not an image" else 422
            raise HTTPException(code, f"{name}: {exc.reason}") from None

    async def infer(func: Callable[..., Any], *args: object) -> Any:
        try:
            return await queue.run(func, *args)
        except Busy:
            busy = "server busy: too many requests waiting for the model"
            raise HTTPException(503, busy, {"Retry-After": "1"}) from None

    def save_image(event_id: int, name: str, data: bytes) -> None:
        if settings.store_images:
            path = settings.store_images / f"{event_id:08d}{Path(name).suffix.lower() or '.img'}"
            path.write_bytes(data)
            store.set_image(event_id, str(path))

    # ------------------------------------------------------------------ API
    @app.post(
        f"{API}/detect",
        response_model=DetectOut,
        responses={**_ERRORS, 200: {"content": {"image/jpeg": {}}, "description": "faces (or the annotated JPEG)"}},
        openapi_extra=_IMAGE_BODY,
        summary="Find the faces in one image and label each",
    )
    async def detect(
        request: Request,
        annotate: Annotated[bool, Query(description="return the annotated JPEG instead of JSON")] = False,
        source: Annotated[str, Query(max_length=100, description="camera or source name for the log")] = "upload",
        landmarks: Annotated[bool, Query(description="add the 5 facial landmarks of each face")] = False,
    ) -> Any:
        ((name, data),) = await read_images(request)

        def work() -> tuple[FrameResult, bytes | None]:
            image = decode(name, data)
            result = pipeline.process(image, source=name)
            jpeg = _annotated_jpeg(pipeline, image, result) if annotate else None
            return result, jpeg

        result, jpeg = await infer(work)
        counts = result.counts(pipeline.labels)
        event_id = store.add(Event(source, "detect", counts, result.width, result.height))
        save_image(event_id, name, data)
        headers = {"X-Faces": str(len(result.faces)), "X-Event-Id": str(event_id)}
        if jpeg is not None:
            return Response(jpeg, media_type="image/jpeg", headers=headers)
        return JSONResponse(result.to_json(landmarks=landmarks), headers=headers)

    @app.post(
        f"{API}/classify",
        response_model=ClassifyOut,
        responses=_ERRORS,
        openapi_extra=_IMAGE_BODY,
        summary="Label face crops (one or more multipart 'file' fields, or one raw image)",
    )
    async def classify(
        request: Request, source: Annotated[str, Query(max_length=100)] = "upload"
    ) -> dict[str, list[dict]]:
        files = await read_images(request, many=True)

        def work() -> np.ndarray:
            from PIL import Image

            crops = [Image.fromarray(decode(name, data)) for name, data in files]
            return pipeline.classifier.predict_images(crops)

        probs = await infer(work)
        labels = pipeline.labels
        results = []
        for (name, _), row in zip(files, probs, strict=True):
            k = int(np.argmax(row))
            probs_of = {label: float(v) for label, v in zip(labels, row, strict=True)}
            results.append({"source": name, "label": labels[k], "score": float(row[k]), "probs": probs_of})
        counts = {label: sum(r["label"] == label for r in results) for label in labels}
        store.add(Event(source, "classify", counts))
        return {"results": results}

    @app.get(f"{API}/health", summary="Model, detector, version and queue state")
    def health() -> dict[str, Any]:
        from maskwatch.runtime.classifiers import describe

        det = pipeline.detector
        return {
            "status": "ok",
            "version": __version__,
            "labels": pipeline.labels,
            "colors": {label: _hex(label) for label in pipeline.labels},
            "model": describe(pipeline.classifier),
            "detector": {
                "name": type(det).__name__,
                **{k: getattr(det, k) for k in ("size", "threshold", "tiles") if hasattr(det, k)},
                "margin": pipeline.margin,
            },
            "auth": bool(settings.api_key),
            "queue": queue.stats(),
            "uptime_s": round(time.time() - started, 1),
        }

    def period(start: str | None, end: str | None) -> tuple[float, float]:
        now = time.time()
        t1 = _parse_time(end, now, "to")
        t0 = _parse_time(start, t1 - 86400, "from")
        if not t0 < t1:
            raise HTTPException(422, "'from' must be before 'to'")
        return t0, t1

    @app.get(f"{API}/stats", responses=_ERRORS, summary="Counts per label over time")
    def stats(
        start: Annotated[
            str | None, Query(alias="from", description="ISO 8601 or Unix seconds (default: to - 24 h)")
        ] = None,
        end: Annotated[str | None, Query(alias="to", description="ISO 8601 or Unix seconds (default: now)")] = None,
        bucket: Annotated[str | None, Query(pattern="^(minute|hour|day)$", description="default: by period")] = None,
        source: Annotated[str | None, Query(max_length=100)] = None,
    ) -> dict[str, Any]:
        t0, t1 = period(start, end)
        span = t1 - t0
        chosen = bucket or ("minute" if span <= 3 * 3600 else "hour" if span <= 4 * 86400 else "day")
        try:
            out = store.stats(t0, t1, chosen, source or None)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        return {"from": iso(t0), "to": iso(t1), "bucket": chosen, "sources": store.sources(), **out}

    @app.get(
        f"{API}/events.csv",
        responses={**_ERRORS, 200: {"content": {"text/csv": {}}, "description": "one row per event"}},
        summary="The event log as CSV",
    )
    def events_csv(
        start: Annotated[str | None, Query(alias="from")] = None,
        end: Annotated[str | None, Query(alias="to")] = None,
        source: Annotated[str | None, Query(max_length=100)] = None,
    ) -> StreamingResponse:
        t0, t1 = period(start, end)
        stamp = datetime.fromtimestamp(t1, UTC).strftime("%Y%m%d-%H%M")
        return StreamingResponse(
            store.csv_chunks(t0, t1, source or None),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="maskwatch-events-{stamp}.csv"'},
        )

    # ------------------------------------------------------------------ live webcam over a WebSocket
    @app.websocket(f"{API}/live")
    async def live(ws: WebSocket, source: str = "webcam", api_key: str = "", track: bool = True) -> None:
        """One binary frame in, one JSON answer out. With ``track`` (default) faces keep a track id across frames
        and their labels are smoothed (the same tracker as ``maskwatch detect`` on video)."""
        if settings.api_key:
            given = api_key or ws.headers.get("x-api-key", "")
            if not secrets.compare_digest(given.encode(), settings.api_key.encode()):
                await ws.accept()  # accepted first, so that the browser sees the close reason
                await ws.close(code=1008, reason="API key required or wrong")
                return
        await ws.accept()
        source = source[:100] or "webcam"
        last_log = 0.0
        frames = 0
        if track:
            from maskwatch.detect.tracking import TrackedPipeline

            tracked = TrackedPipeline(pipeline)  # this connection's own tracks
            process = tracked.process
        else:
            process = pipeline.process
        try:
            while True:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    return
                data = message.get("bytes")
                if data is None:
                    await ws.send_json({"error": "send each frame as a binary message (JPEG or PNG)"})
                    continue
                if len(data) > settings.max_upload_bytes:
                    await ws.send_json({"error": f"frame over the limit of {settings.max_upload_bytes:,} bytes"})
                    continue
                t = time.perf_counter()
                try:
                    result = await queue.run(lambda d=data, i=frames: process(decode("frame", d), source, i))
                    frames += 1
                except HTTPException as exc:
                    await ws.send_json({"error": exc.detail})
                    continue
                except Busy:
                    await ws.send_json({"error": "server busy", "busy": True})
                    continue
                out = result.to_json()
                out["elapsed_ms"] = round((time.perf_counter() - t) * 1000, 1)
                now = time.time()
                if now - last_log >= settings.live_log_seconds:
                    store.add(Event(source, "live", result.counts(pipeline.labels), result.width, result.height))
                    last_log = now
                await ws.send_json(out)
        except WebSocketDisconnect:
            return

    # ------------------------------------------------------------------ pages
    def page(name: str) -> Callable[[], FileResponse]:
        def serve_page() -> FileResponse:
            return FileResponse(str(STATIC / name), media_type="text/html")

        return serve_page

    for route, name in (("/", "index.html"), ("/live", "live.html"), ("/dashboard", "dashboard.html")):
        app.get(route, include_in_schema=False)(page(name))
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    return app


def _annotated_jpeg(pipeline: Pipeline, image: np.ndarray, result: FrameResult) -> bytes:
    from PIL import Image

    from maskwatch.detect.annotate import Annotator

    buf = io.BytesIO()
    Image.fromarray(Annotator(pipeline.labels).draw(image, result)).save(buf, "JPEG", quality=90)
    return buf.getvalue()
