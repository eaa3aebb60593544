"""What every route needs from the server: its shared state (as FastAPI dependencies), uploads read within the
limits, images decoded within the pixel limit, model calls through the bounded queue, and the event log.

Each failure is an ``HTTPException`` with its one status: 400 malformed, 408 too slow, 413 too large, 415 not an
image, 422 broken image (one that begins as an image file does), 503 busy (with Retry-After).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from PIL import Image
from starlette.requests import ClientDisconnect, HTTPConnection

from maskwatch.data.images import IMAGE_EXTENSIONS, BadImageError, ImageTooLargeError, decode_rgb
from maskwatch.detect.pipeline import Pipeline
from maskwatch.detect.reframe import Reframer
from maskwatch.serve.inference import BUSY, Busy, InferenceQueue
from maskwatch.serve.schemas import API, MULTIPART
from maskwatch.serve.settings import ServeSettings
from maskwatch.serve.store import Event, EventStore

MAX_CROPS = 32  # face crops per /classify request
MODEL_ROUTES = (f"{API}/detect", f"{API}/classify")  # the POSTs that wait in the queue's line (inference.Admission)


@dataclass
class ServerState:
    """Built once by ``create_app`` and kept as ``app.state.server``."""

    settings: ServeSettings
    pipeline: Pipeline
    reframer: Reframer
    store: EventStore
    queue: InferenceQueue
    started: float  # time.time() at start, for the uptime


# async, though they only look attributes up: FastAPI runs a plain ``def`` dependency in a worker thread.
# HTTPConnection, not Request: the live WebSocket takes them too.
async def get_state(connection: HTTPConnection) -> ServerState:
    return connection.app.state.server


StateDep = Annotated[ServerState, Depends(get_state)]


async def get_pipeline(state: StateDep) -> Pipeline:
    return state.pipeline


async def get_store(state: StateDep) -> EventStore:
    return state.store


PipelineDep = Annotated[Pipeline, Depends(get_pipeline)]
StoreDep = Annotated[EventStore, Depends(get_store)]


# ---------------------------------------------------------------------------------------------------------- uploads
async def read_body(state: ServerState, request: Request) -> bytes:
    limit, timeout = state.settings.max_upload_bytes, state.settings.read_timeout
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"upload of {int(declared):,} bytes is over the limit of {limit:,}")
    # a full queue has refused the request already, before this (inference.Admission): no body read for a 503
    chunks, size = [], 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise HTTPException(413, f"upload is over the limit of {limit:,} bytes")
                chunks.append(chunk)
    except TimeoutError:
        raise HTTPException(408, f"upload not received within {timeout:g} s") from None
    except ClientDisconnect:
        raise HTTPException(400, "client disconnected during the upload") from None
    return b"".join(chunks)


async def read_images(state: ServerState, request: Request, many: bool = False) -> list[tuple[str, bytes]]:
    """(name, bytes) of the uploaded images: multipart field ``file`` (repeatable if ``many``) or the raw body.

    Called from the route, not declared as a dependency: FastAPI solves dependencies before it checks the query,
    so a bad parameter would wait for the whole upload before its 422."""
    body = await read_body(state, request)
    if not body:
        raise HTTPException(400, "empty body: send an image as multipart field 'file' or as the raw body")
    ctype = request.headers.get("content-type", "")
    if not ctype.lower().startswith(MULTIPART):
        return [("upload", body)]
    sent = False

    async def replay() -> dict[str, Any]:  # the body already read (and counted), fed again to the form parser
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


# how image files begin: bytes that start so and still are "not an image" to Pillow are a broken image (422), not
# another kind of file (415). A TIFF as Pillow writes it keeps its directory (the size, the compression) after the
# pixels, so a TIFF cut short cannot even be identified.
SIGNATURES = (
    b"\xff\xd8\xff",  # JPEG
    b"\x89PNG\r\n\x1a\n",
    b"GIF87a",
    b"GIF89a",
    b"II*\x00",  # TIFF, little-endian
    b"MM\x00*",  # TIFF, big-endian
)


def decode(state: ServerState, name: str, data: bytes) -> Image.Image:
    try:
        return decode_rgb(data, name, max_pixels=state.settings.max_pixels)
    except ImageTooLargeError as exc:
        raise HTTPException(413, f"{name}: {exc.reason}") from None
    except BadImageError as exc:
        if exc.reason != "not an image":
            raise HTTPException(422, f"{name}: {exc.reason}") from None
        if data.startswith(SIGNATURES) or _riff_webp_or_bmp(data):
            raise HTTPException(422, f"{name}: truncated or corrupt image (its header names an image format)") from None
        raise HTTPException(415, f"{name}: {exc.reason}") from None


def _riff_webp_or_bmp(data: bytes) -> bool:
    return (data[:4] == b"RIFF" and data[8:12] == b"WEBP") or (data[:2] == b"BM" and data[6:10] == b"\0\0\0\0")


# ---------------------------------------------------------------------------------------------------------- model, log
async def infer(state: ServerState, func: Callable[..., Any], *args: object) -> Any:
    try:
        return await state.queue.run(func, *args)
    except Busy:  # only a request that did not pass Admission's line (the line refuses before the body)
        raise HTTPException(503, BUSY, {"Retry-After": str(state.queue.retry_after())}) from None


def log_event(state: ServerState, event: Event, files: Sequence[tuple[str, bytes]] = ()) -> int:
    """Keep the uploaded files (only with --store-images; several are named in the row separated by ";"), then
    log the event (worker thread: SQLite never blocks the event loop). Each file is named by a random id and
    an extension from a fixed list."""
    folder = state.settings.store_images
    if folder and files:
        paths = []
        for name, data in files:
            suffix = Path(name).suffix.lower()
            path = folder / f"{uuid.uuid4().hex}{suffix if suffix in IMAGE_EXTENSIONS else '.img'}"
            path.write_bytes(data)
            paths.append(str(path))
        event.image = ";".join(paths)
    return state.store.add(event)
