"""``WS /api/v1/live``: a webcam's frames, one binary message in, one JSON answer out, each face tracked across
frames; the counts of one frame are logged every ``--live-log-seconds``."""

from __future__ import annotations

import time

import numpy as np
from fastapi import APIRouter, HTTPException, WebSocket, WebSocketDisconnect

from maskwatch.detect.pipeline import FrameResult
from maskwatch.serve.deps import PipelineDep, StateDep, decode, log_event
from maskwatch.serve.guard import key_ok, origin_allowed
from maskwatch.serve.inference import Busy
from maskwatch.serve.schemas import API
from maskwatch.serve.store import Event

router = APIRouter(prefix=API)


@router.websocket("/live")
async def live(
    ws: WebSocket,
    state: StateDep,
    pipeline: PipelineDep,
    source: str = "webcam",
    api_key: str = "",
    track: bool = True,
) -> None:
    """One binary frame in, one JSON answer out. With ``track`` (default) faces keep a track id across frames
    and their labels are smoothed (the same tracker as ``maskwatch detect`` on video)."""
    settings = state.settings
    refusal = None
    if settings.api_key and not key_ok(settings, api_key or ws.headers.get("x-api-key", "")):
        refusal = "API key required or wrong"
    elif not origin_allowed(settings, ws.headers.get("origin"), ws.headers.get("host", "")):
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
        result = process(np.asarray(decode(state, "frame", data)), source, index)
        if log_it:  # the counts of one frame every --live-log-seconds, not of every frame
            log_event(state, Event(source, "live", result.counts(pipeline.labels), result.width, result.height))
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
                result = await state.queue.run(frame_work, data, frames, log_now)
                frames += 1
                last_log = now if log_now else last_log
            except HTTPException as exc:  # a bad frame: its error, and the stream goes on
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
