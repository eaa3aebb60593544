"""The FastAPI application: REST API (``/api/v1``), live WebSocket, pages and static files.

Every request path runs the same library pipeline as ``maskwatch detect`` (``detect.pipeline``); the JSON of
``POST /api/v1/detect`` is ``FrameResult.to_json()``, the schema of ``detect --jsonl``.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import numpy as np
from fastapi import FastAPI, HTTPException, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from PIL import Image
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from maskwatch import __version__
from maskwatch.data.images import IMAGE_EXTENSIONS, BadImageError, ImageTooLargeError, decode_rgb
from maskwatch.detect.pipeline import FrameResult, Pipeline
from maskwatch.detect.reframe import Reframer
from maskwatch.labels import label_color
from maskwatch.runtime.classifiers import classify_images, describe
from maskwatch.serve.inference import Busy, InferenceQueue
from maskwatch.serve.settings import ServeSettings
from maskwatch.serve.store import Event, EventStore, iso

API = "/api/v1"
MAX_CROPS = 32  # face crops per /classify request
CROP_SIDE = 512  # decoded crops are shrunk to this at once (the model sees 128-224 px)
LATEST = 253402300799.0  # 9999-12-31T23:59:59Z
log = logging.getLogger("maskwatch.serve")
STATIC = resources.files("maskwatch") / "serve" / "static"
MULTIPART = "multipart/form-data"
BUSY = "server busy: too many requests waiting for the model"
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
    landmarks: list[list[float]] | None = Field(
        None, description="with ?landmarks=true: 5 points [x, y] (eyes, nose, mouth corners) in the same pixels"
    )


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
    reframed: bool | None = Field(
        None, description="with ?reframe=true: whether the crop was cut again around the face found in it"
    )
    face_box: list[float] | None = Field(
        None, description="[x1, y1, x2, y2] of the face it was cut around, in pixels of the uploaded image"
    )


class ClassifyOut(BaseModel):
    results: list[ClassifyItem]


_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut, "description": text}
    for code, text in {
        400: "empty body or malformed upload",
        401: "API key missing or wrong",
        403: "cross-origin request from an origin not allowed with --cors",
        408: "upload too slow",
        413: "upload or image too large",
        415: "not an image",
        422: "broken image or bad parameter",
        503: "server busy: retry later",
    }.items()
}


_READ_ERRORS: dict[int | str, dict[str, Any]] = {  # what the GET routes can answer
    401: _ERRORS[401],
    422: {"model": ErrorOut, "description": "bad parameter"},
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
        ts = float(value)
    except ValueError:
        try:
            dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
            ts = (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()
        except (ValueError, OverflowError, OSError):
            raise HTTPException(422, f"{name}: not an ISO 8601 time or Unix seconds: {value[:40]!r}") from None
    if not 0 <= ts <= LATEST:  # also NaN
        raise HTTPException(422, f"{name}: outside 1970-01-01 .. 9999-12-31: {value[:40]!r}")
    return ts


def _same_origin(origin: str, host: str) -> bool:
    return urlsplit(origin).netloc.lower() == host.lower()


def create_app(
    settings: ServeSettings | None = None, *, pipeline: Pipeline | None = None, store: EventStore | None = None
) -> FastAPI:
    """The server. ``pipeline`` and ``store`` default to the ones the settings name (tests pass their own)."""
    settings = settings or ServeSettings()
    settings.validate()
    if pipeline is None:
        from maskwatch.detect.pipeline import load_pipeline

        pipeline = load_pipeline(settings.model, config=settings.detector)
    reframer = Reframer(pipeline.detector)
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

    app = FastAPIOffline(  # FastAPI whose /docs and /redoc load their scripts from the package (no CDN: offline)
        lifespan=lifespan,
        title="maskwatch",
        version=__version__,
        description="Faces, and whether each wears a mask, wears it wrongly, or wears none.",
    )

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
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return JSONResponse({"detail": f"internal error ({type(exc).__name__}); see the server log"}, status_code=500)

    # ------------------------------------------------------------------ API key (health stays open for probes), origin
    def origin_allowed(origin: str | None, host: str) -> bool:
        """Browsers send Origin on cross-site POSTs and WebSockets (which CORS does not cover): only the server's
        own pages and the --cors origins may post or stream; clients that send no Origin (curl, scripts) may."""
        return (
            not origin or origin in settings.cors_origins or "*" in settings.cors_origins or _same_origin(origin, host)
        )

    def key_ok(given: str) -> bool:
        return secrets.compare_digest(given.encode("utf-8", "replace"), settings.api_key.encode())  # type: ignore[union-attr]

    @app.middleware("http")
    async def _guard(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        path = request.url.path
        if path.startswith(API) and request.method != "OPTIONS":
            if settings.api_key and path != f"{API}/health" and not key_ok(request.headers.get("x-api-key") or ""):
                return JSONResponse({"detail": "API key required or wrong (header X-API-Key)"}, status_code=401)
            origin = request.headers.get("origin")
            if request.method == "POST" and not origin_allowed(origin, request.headers.get("host", "")):
                detail = f"cross-origin request from {origin[:80]} refused (allow it with --cors)"  # type: ignore[index]
                return JSONResponse({"detail": detail}, status_code=403)
        return await call_next(request)

    # ------------------------------------------------------------------ reading uploads within the limits
    async def read_body(request: Request) -> bytes:
        limit = settings.max_upload_bytes
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise HTTPException(413, f"upload of {int(declared):,} bytes is over the limit of {limit:,}")
        if queue.full():  # refuse before reading a body that would wait anyway
            raise HTTPException(503, BUSY, {"Retry-After": "1"})
        chunks, size = [], 0
        try:
            async with asyncio.timeout(settings.read_timeout):
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > limit:
                        raise HTTPException(413, f"upload is over the limit of {limit:,} bytes")
                    chunks.append(chunk)
        except TimeoutError:
            raise HTTPException(408, f"upload not received within {settings.read_timeout:g} s") from None
        except ClientDisconnect:
            raise HTTPException(400, "client disconnected during the upload") from None
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
            form = await Request(request.scope, replay).form(max_files=MAX_CROPS, max_fields=MAX_CROPS)
        except Exception as exc:  # python-multipart / Starlette parse errors, limits
            reason = str(getattr(exc, "detail", "") or exc or type(exc).__name__).splitlines()[0][:200]
            raise HTTPException(400, f"malformed multipart body: {reason}") from None
        files = [v for v in form.getlist("file") if not isinstance(v, str)]
        if not files:
            raise HTTPException(400, "multipart body without a file in field 'file'")
        if len(files) > 1 and not many:
            raise HTTPException(400, "send one image per request to /detect (use /classify for several crops)")
        out = [(Path(f.filename or "upload").name or "upload", await f.read()) for f in files]
        if any(not data for _, data in out):
            raise HTTPException(400, f"empty file: {next(n for n, d in out if not d)}")
        return out

    def decode(name: str, data: bytes) -> Image.Image:
        try:
            return decode_rgb(data, name, max_pixels=settings.max_pixels)
        except ImageTooLargeError as exc:
            raise HTTPException(413, f"{name}: {exc.reason}") from None
        except BadImageError as exc:
            code = 415 if exc.reason == "not an image" else 422
            raise HTTPException(code, f"{name}: {exc.reason}") from None

    async def infer(func: Callable[..., Any], *args: object) -> Any:
        try:
            return await queue.run(func, *args)
        except Busy:
            raise HTTPException(503, BUSY, {"Retry-After": "1"}) from None

    def log_event(event: Event, files: Sequence[tuple[str, bytes]] = ()) -> int:
        """Keep the uploaded files (only with --store-images; several are named in the row separated by ";"), then
        log the event (worker thread: SQLite never blocks the event loop). Each file is named by a random id and
        an extension from a fixed list."""
        if settings.store_images and files:
            paths = []
            for name, data in files:
                suffix = Path(name).suffix.lower()
                path = settings.store_images / f"{uuid.uuid4().hex}{suffix if suffix in IMAGE_EXTENSIONS else '.img'}"
                path.write_bytes(data)
                paths.append(str(path))
            event.image = ";".join(paths)
        return store.add(event)

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

        def work() -> tuple[FrameResult, bytes | None, int]:
            image = np.asarray(decode(name, data))
            result = pipeline.process(image, source=name)
            jpeg = _annotated_jpeg(pipeline, image, result) if annotate else None
            counts = result.counts(pipeline.labels)
            event_id = log_event(
                Event(source.strip() or "upload", "detect", counts, result.width, result.height), [(name, data)]
            )
            return result, jpeg, event_id

        result, jpeg, event_id = await infer(work)
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
        request: Request,
        source: Annotated[str, Query(max_length=100)] = "upload",
        reframe: Annotated[bool, Query(description="cut loosely framed crops again around their face")] = True,
    ) -> dict[str, list[dict]]:
        files = await read_images(request, many=True)
        labels = pipeline.labels

        def work() -> list[dict]:
            total = sum(_pixels(data) for _, data in files)
            if total > settings.max_pixels:  # the limit holds for the whole request, not each crop
                raise HTTPException(413, f"{len(files)} images with {total:,} pixels in all > {settings.max_pixels:,}")
            crops, scales = [], []
            for name, data in files:
                crop = decode(name, data)
                width, height = crop.size
                crop.thumbnail((CROP_SIDE, CROP_SIDE))
                crops.append(crop)
                scales.append((width / crop.width, height / crop.height))
            names = [name for name, _ in files]
            results = classify_images(pipeline.classifier, crops, names, reframer if reframe else None)
            counts = dict.fromkeys(labels, 0)
            for result, (sx, sy) in zip(results, scales, strict=True):
                counts[result["label"]] += 1
                if result.get("face_box"):  # found in the thumbnail: back to the upload's pixels
                    x1, y1, x2, y2 = result["face_box"]
                    result["face_box"] = [round(v, 1) for v in (x1 * sx, y1 * sy, x2 * sx, y2 * sy)]
            log_event(Event(source.strip() or "upload", "classify", counts), files)
            return results

        return {"results": await infer(work)}

    @app.get(f"{API}/health", summary="Model, detector, version and queue state")
    def health() -> dict[str, Any]:
        det = pipeline.detector
        return {
            "status": "ok",
            "version": __version__,
            "labels": pipeline.labels,
            "colors": {label: _hex(label) for label in pipeline.labels},
            "model": {k: Path(v).name if k == "path" else v for k, v in describe(pipeline.classifier).items()},
            "detector": {
                "name": type(det).__name__,
                **{k: getattr(det, k) for k in ("size", "threshold", "tiles", "box_fit") if hasattr(det, k)},
                "margin": pipeline.margin,
            },
            "auth": bool(settings.api_key),
            "queue": queue.stats(),
            "uptime_s": round(time.time() - started, 1),
        }

    def period(start: str | None, end: str | None) -> tuple[float, float]:
        now = time.time()
        t1 = _parse_time(end, now, "to")
        t0 = _parse_time(start, max(0.0, t1 - 86400), "from")  # the default starts no earlier than 1970
        if not t0 < t1:
            raise HTTPException(422, "'from' must be before 'to'")
        return t0, t1

    @app.get(f"{API}/stats", responses=_READ_ERRORS, summary="Counts per label over time")
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
        response_class=StreamingResponse,
        responses={**_READ_ERRORS, 200: {"content": {"text/csv": {}}, "description": "one row per event"}},
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
        refusal = None
        if settings.api_key and not key_ok(api_key or ws.headers.get("x-api-key", "")):
            refusal = "API key required or wrong"
        elif not origin_allowed(ws.headers.get("origin"), ws.headers.get("host", "")):
            refusal = "cross-origin WebSocket refused (allow the origin with --cors)"
        if refusal:
            await ws.accept()  # accepted first, so that the browser sees the close reason
            await ws.close(code=1008, reason=refusal)
            return
        await ws.accept()
        source = source.strip()[:100] or "webcam"
        last_log = 0.0
        frames = 0
        if track:
            from maskwatch.detect.tracking import TrackedPipeline

            tracked = TrackedPipeline(pipeline)  # this connection's own tracks
            process = tracked.process
        else:
            process = pipeline.process

        def frame_work(data: bytes, index: int, log_it: bool) -> FrameResult:
            result = process(np.asarray(decode("frame", data)), source, index)
            if log_it:  # the counts of one frame every --live-log-seconds, not of every frame
                log_event(Event(source, "live", result.counts(pipeline.labels), result.width, result.height))
            return result

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
                    now = time.time()
                    log_now = now - last_log >= settings.live_log_seconds
                    result = await queue.run(frame_work, data, frames, log_now)
                    frames += 1
                    last_log = now if log_now else last_log
                except HTTPException as exc:
                    await ws.send_json({"error": exc.detail})
                    continue
                except Busy:
                    await ws.send_json({"error": "server busy", "busy": True})
                    continue
                out = result.to_json()
                out["elapsed_ms"] = round((time.perf_counter() - t) * 1000, 1)
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


def _pixels(data: bytes) -> int:
    """Width x height from the image header (0 when unreadable: decoding reports it)."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            return img.size[0] * img.size[1]
    except Exception:
        return 0


def _annotated_jpeg(pipeline: Pipeline, image: np.ndarray, result: FrameResult) -> bytes:
    from maskwatch.detect.annotate import Annotator

    buf = io.BytesIO()
    Image.fromarray(Annotator(pipeline.labels).draw(image, result)).save(buf, "JPEG", quality=90)
    return buf.getvalue()
