"""``GET /api/v1/stats`` (counts per label over time) and ``GET /api/v1/events.csv`` (the event log) over a period
given as ISO 8601 or Unix seconds."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import StreamingResponse

from maskwatch.serve.deps import StoreDep
from maskwatch.serve.schemas import API, READ_ERRORS
from maskwatch.serve.store import iso

LATEST = 253402300799.0  # 9999-12-31T23:59:59Z
# what `from` and `to` accept, in the schema too: Unix seconds (up to 11 digits: before the year 5138), or an
# ISO 8601 date, optionally with a time (T or space; seconds and fraction optional) and a zone (Z or +HH:MM); a
# time without a zone is UTC. Values that match but name no real time (February 30th) still get a 422.
_DATE = r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])"
_TIME = r"[T ]([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,6})?)?(Z|[+-]([01]\d|2[0-3]):?[0-5]\d)?"
TIME_PATTERN = rf"^(\d{{1,11}}(\.\d+)?|{_DATE}({_TIME})?)?$"  # empty: the default
TIME_EXAMPLES = ["2026-11-26T10:00:00Z", "2026-11-26", "1795600000"]


def _time_query(name: str, default: str) -> Any:
    return Query(
        alias=name,
        pattern=TIME_PATTERN,
        max_length=40,
        description=f"ISO 8601 (UTC unless it names a zone) or Unix seconds (default: {default})",
        examples=TIME_EXAMPLES,
    )


router = APIRouter(prefix=API)


@router.get("/stats", responses=READ_ERRORS, summary="Counts per label over time")
def stats(
    store: StoreDep,
    start: Annotated[str | None, _time_query("from", "to - 24 h")] = None,
    end: Annotated[str | None, _time_query("to", "now")] = None,
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


@router.get(
    "/events.csv",
    response_class=StreamingResponse,
    responses={**READ_ERRORS, 200: {"content": {"text/csv": {}}, "description": "one row per event"}},
    summary="The event log as CSV",
)
def events_csv(
    store: StoreDep,
    start: Annotated[str | None, _time_query("from", "to - 24 h")] = None,
    end: Annotated[str | None, _time_query("to", "now")] = None,
    source: Annotated[str | None, Query(max_length=100)] = None,
) -> StreamingResponse:
    t0, t1 = period(start, end)
    stamp = datetime.fromtimestamp(t1, UTC).strftime("%Y%m%d-%H%M")
    return StreamingResponse(
        store.csv_chunks(t0, t1, source or None),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="maskwatch-events-{stamp}.csv"'},
    )


def period(start: str | None, end: str | None) -> tuple[float, float]:
    """[from, to) in Unix seconds; to defaults to now, from to 24 h before it."""
    now = time.time()
    t1 = _parse_time(end, now, "to")
    t0 = _parse_time(start, max(0.0, t1 - 86400), "from")  # the default starts no earlier than 1970
    if not t0 < t1:
        raise HTTPException(422, "'from' must be before 'to'")
    return t0, t1


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
