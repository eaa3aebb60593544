"""``/api/v1/people`` (person events: one row per person a camera tracked), ``/api/v1/people.csv``,
``/api/v1/people/summary`` (per camera: people, counts and percent per label, a per-minute series) and
``/api/v1/snapshots/{id}.jpg``. Periods as ``/api/v1/stats`` takes them: ISO 8601 or Unix seconds."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query
from fastapi.responses import FileResponse, StreamingResponse

from maskwatch.monitor.store import iso
from maskwatch.serve.monitoring import MonitoringDep
from maskwatch.serve.routes.events import period
from maskwatch.serve.schemas import API

router = APIRouter(prefix=API, tags=["people"])
Camera = Annotated[str | None, Query(max_length=64, description="one camera's name (default: all)")]
From = Annotated[str | None, Query(alias="from", description="ISO 8601 or Unix seconds (default: to - 24 h)")]
To = Annotated[str | None, Query(alias="to", description="ISO 8601 or Unix seconds (default: now)")]


def person_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "camera": row["camera"],
        "track_id": row["track_id"],
        "label": row["label"],
        "vote_share": round(row["vote_share"], 4),
        "probs": {k: round(v, 4) for k, v in row["probs"].items()},
        "first_seen": iso(row["first_seen"]),
        "last_seen": iso(row["last_seen"]),
        "frames": row["frames"],
        "face_px": row["face_px"],
        "reason": row["reason"],
        "snapshot": f"{API}/snapshots/{row['id']}.jpg" if row["snapshot"] else None,
    }


@router.get("/people", summary="Person events, newest first")
def people(
    monitoring: MonitoringDep,
    camera: Camera = None,
    start: From = None,
    end: To = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> dict[str, Any]:
    t0, t1 = period(start, end)
    store = monitoring.open_store()
    rows = store.people(camera or None, t0, t1, limit) if store else []
    return {"from": iso(t0), "to": iso(t1), "people": [person_json(r) for r in rows]}


@router.get(
    "/people.csv",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}, "description": "one row per person"}},
    summary="Person events as CSV",
)
def people_csv(monitoring: MonitoringDep, camera: Camera = None, start: From = None, end: To = None):
    t0, t1 = period(start, end)
    store = monitoring.open_store()
    stamp = datetime.fromtimestamp(t1, UTC).strftime("%Y%m%d-%H%M")
    chunks = store.csv_chunks(camera or None, t0, t1) if store else iter(())
    return StreamingResponse(
        chunks,
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="maskwatch-people-{stamp}.csv"'},
    )


@router.get("/people/summary", summary="Per camera: people, counts and percent per label, per-minute series")
def summary(monitoring: MonitoringDep, camera: Camera = None, start: From = None, end: To = None) -> dict[str, Any]:
    t0, t1 = period(start, end)
    store = monitoring.open_store()
    out = store.summary(camera or None, t0, t1) if store else {"labels": [], "cameras": []}
    return {"from": iso(t0), "to": iso(t1), **out}


@router.get(
    "/snapshots/{person_id}.jpg",
    response_class=FileResponse,
    responses={200: {"content": {"image/jpeg": {}}}, 404: {"description": "no such person or no snapshot"}},
    summary="A person's snapshot (faces blurred unless the server keeps them full)",
)
def snapshot(person_id: Annotated[int, Path(ge=1, le=2**63 - 1)], monitoring: MonitoringDep) -> FileResponse:
    store = monitoring.open_store()
    path = store.snapshot_file(person_id) if store else None
    if path is None:
        raise HTTPException(404, f"no snapshot for person {person_id}")
    return FileResponse(path, media_type="image/jpeg")
