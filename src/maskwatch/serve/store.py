"""The event log: one row per image (or live sample) served, with counts per label, in the event store
(``maskwatch.store``: a SQLite file in WAL mode, or PostgreSQL shared by several servers).

Every insert is committed before the response leaves (SQLite with ``synchronous=FULL``): a server killed at any
moment loses nothing it has answered. Counts over time are aggregated in SQL, the same statements on both backends.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import ColumnElement, and_, func, select

from maskwatch.labels import CANONICAL_LABELS
from maskwatch.store.engine import StoreTarget
from maskwatch.store.export import csv_text, keyset_pages, safe_cell
from maskwatch.store.schema import bucket as floor_bucket
from maskwatch.store.schema import events, open_database

BUCKETS = {"minute": 60, "hour": 3600, "day": 86400}
MAX_BUCKETS = 5000
CSV_COLUMNS = ["id", "time", "source", "kind", "width", "height", "faces", *CANONICAL_LABELS, "image"]


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Event:
    source: str
    kind: str  # detect | classify | live
    counts: Mapping[str, int]
    width: int | None = None
    height: int | None = None
    image: str | None = None
    ts: float | None = None  # None: now


class EventStore:
    """Thread-safe: the server's worker threads and the event loop share it. ``target``: a SQLite path or a store
    URL (``maskwatch.store.engine.parse_store``)."""

    def __init__(self, target: str | Path | StoreTarget) -> None:
        self.db = open_database(target)
        self.path = self.db.target.path  # None on PostgreSQL

    def close(self) -> None:
        self.db.close()

    def add(self, event: Event) -> int:
        counts = {label: int(event.counts.get(label, 0)) for label in CANONICAL_LABELS}
        row = {
            "ts": time.time() if event.ts is None else event.ts,
            "source": event.source,
            "kind": event.kind,
            "width": event.width,
            "height": event.height,
            "faces": int(sum(event.counts.values())),
            **counts,
            "image": event.image,
        }
        with self.db.write() as conn:  # committed (durable) when this block ends
            return int(conn.execute(events.insert().values(row)).inserted_primary_key[0])

    def sources(self) -> list[str]:
        with self.db.read() as conn:
            return list(conn.execute(select(events.c.source).distinct().order_by(events.c.source)).scalars())

    def _where(self, start: float, end: float, source: str | None) -> ColumnElement[bool]:
        cond = and_(events.c.ts >= start, events.c.ts < end)
        return and_(cond, events.c.source == source) if source else cond

    def stats(self, start: float, end: float, bucket: str, source: str | None = None) -> dict:
        """Counts per label in each bucket of [start, end) (empty buckets included) and in total."""
        size = BUCKETS[bucket]
        first = int(start // size) * size
        n = max(1, int(-(-(end - first) // size)))
        if n > MAX_BUCKETS:
            hint = "a shorter period" if bucket == "day" else "a larger bucket or a shorter period"
            raise ValueError(f"{n} {bucket} buckets in that period (at most {MAX_BUCKETS}); use {hint}")
        b = floor_bucket(events.c.ts - float(first), size).label("b")
        sums = [func.sum(events.c[label]) for label in CANONICAL_LABELS]
        sql = select(b, func.count(), func.sum(events.c.faces), *sums).where(self._where(start, end, source))
        with self.db.read() as conn:
            rows = {r[0]: r[1:] for r in conn.execute(sql.group_by(b))}
        keys = ["images", "faces", *CANONICAL_LABELS]
        series, totals = [], dict.fromkeys(keys, 0)
        for i in range(n):
            row = rows.get(i, (0,) * len(keys))
            entry = {"start": iso(first + i * size)}
            for key, value in zip(keys, row, strict=True):
                entry[key] = int(value or 0)
                totals[key] += int(value or 0)
            series.append(entry)
        return {"labels": list(CANONICAL_LABELS), "totals": totals, "series": series}

    def csv_chunks(self, start: float, end: float, source: str | None = None, chunk: int = 1000) -> Iterator[str]:
        """The events of [start, end) in time order as CSV text, header first, ``chunk`` rows at a time (keyset
        pages on (ts, id), which the indexes serve directly)."""
        cols = [events.c[c] for c in CSV_COLUMNS if c != "time"]
        yield csv_text([CSV_COLUMNS])
        sql = select(events.c.ts, *cols).where(self._where(start, end, source))
        for rows in keyset_pages(self.db, sql, [events.c.ts, events.c.id], chunk):
            yield csv_text([event_id, iso(ts), safe_cell(name), *rest] for ts, event_id, name, *rest in rows)
