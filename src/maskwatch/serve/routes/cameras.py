"""``/api/v1/cameras``: the monitor's cameras (list with status, add, change, remove) and each one's annotated
preview JPEG. Writing needs the API key when one is set (``serve/guard.py`` checks every ``/api/v1`` call)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, HTTPException, Response

from maskwatch.errors import MaskwatchError
from maskwatch.monitor.config import CameraConfig, check_camera_files
from maskwatch.monitor.manager import CameraExists, NoSuchCamera
from maskwatch.serve.monitoring import MonitoringDep
from maskwatch.serve.schemas import API

router = APIRouter(prefix=API, tags=["cameras"])
CAMERA_BODY = Body(
    description="CameraConfig fields: name, url (rtsp://, http(s)://, a video file or a webcam index), fps,"
    " detector {video_size, threshold}, min_face, alert_labels, alert_min_frames, alert_min_votes,"
    " alert_cooldown, enabled, loop, timeout, classify_every",
    examples=[{"name": "door", "url": "rtsp://user:pass@10.0.0.5:554/stream", "fps": 5}],
)


@router.get("/cameras", summary="Cameras and their status")
def list_cameras(monitoring: MonitoringDep) -> list[dict[str, Any]]:
    return monitoring.statuses()


@router.post("/cameras", status_code=201, summary="Add a camera (started at once, kept across restarts)")
def add_camera(monitoring: MonitoringDep, body: dict[str, Any] = CAMERA_BODY) -> dict[str, Any]:
    try:
        cfg = CameraConfig.from_dict(body)
        check_camera_files([cfg])
        monitor = monitoring.ensure()
        monitor.add(cfg)
    except CameraExists as exc:
        raise HTTPException(409, str(exc)) from None
    except MaskwatchError as exc:
        raise HTTPException(422, str(exc)) from None
    return monitor.status(cfg.name)


@router.put("/cameras/{name}", summary="Change a camera (it restarts with the new settings)")
def change_camera(name: str, monitoring: MonitoringDep, body: dict[str, Any] = CAMERA_BODY) -> dict[str, Any]:
    monitor = monitoring.monitor
    if monitor is None or name not in monitor.cameras:
        raise HTTPException(404, f"no camera {name!r}")
    try:
        cfg = monitor.config(name).changed(body)
        check_camera_files([cfg])
        monitor.change(name, body)
    except NoSuchCamera as exc:
        raise HTTPException(404, str(exc)) from None
    except MaskwatchError as exc:
        raise HTTPException(422, str(exc)) from None
    return monitor.status(name)


@router.delete("/cameras/{name}", status_code=204, summary="Remove a camera (its people stay in the log)")
def remove_camera(name: str, monitoring: MonitoringDep) -> Response:
    monitor = monitoring.monitor
    try:
        if monitor is None:
            raise NoSuchCamera(f"no camera {name!r}")
        monitor.remove(name)
    except NoSuchCamera as exc:
        raise HTTPException(404, str(exc)) from None
    return Response(status_code=204)


@router.get(
    "/cameras/{name}/preview.jpg",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}, 404: {"description": "no such camera, or no frame yet"}},
    summary="The camera's latest preview frame, annotated (faces blurred unless snapshots are full)",
)
def preview(name: str, monitoring: MonitoringDep) -> Response:
    monitor = monitoring.monitor
    try:
        if monitor is None:
            raise NoSuchCamera(f"no camera {name!r}")
        jpeg = monitor.preview(name)
    except NoSuchCamera as exc:
        raise HTTPException(404, str(exc)) from None
    if jpeg is None:
        raise HTTPException(404, f"camera {name!r} has no frame yet")
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})
