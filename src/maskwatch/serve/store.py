"""The event log: one row per image (or live sample) served, with counts per label; SQLite in WAL mode.

Every insert is committed before the response leaves, with ``synchronous=FULL``: a server killed at any
moment loses nothing it has answered. Counts over time are aggregated in SQL.
"""

from __future__ import annotations

import csv
import io
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from maskwatch.labels import CANONICAL_LABELS

BUCKETS = {"minute": 60, "hour": 3600, "day": 86400}
MAX_BUCKETS = 5000
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    source TEXT NOT NULL,
    kind TEXT NOT NULL,
    width INTEGER,
    height INTEGER,
    faces INTEGER NOT NULL,
    {", ".join(f"{label} INTEGER NOT NULL DEFAULT 0" for label in CANONICAL_LABELS)},
    image TEXT
);
CREATE INDEX IF NOT EXISTS events_ts ON events (ts);
CREATE INDEX IF NOT EXISTS events_source_ts ON events (source, ts);
"""
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
    """Thread-safe (one connection behind a lock): the server's worker threads and the event loop share it."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # the read-only URI, percent-encoded: a '#' or '?' in the path would otherwise end the file name
        self._read_uri = self.path.resolve().as_uri() + "?mode=ro"
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def add(self, event: Event) -> int:
        counts = {label: int(event.counts.get(label, 0)) for label in CANONICAL_LABELS}
        faces = int(sum(event.counts.values()))
        ts = time.time() if event.ts is None else event.ts
        columns = ["ts", "source", "kind", "width", "height", "faces", *CANONICAL_LABELS, "image"]
        values = [ts, event.source, event.kind, event.width, event.height, faces, *counts.values(), event.image]
        sql = f"INSERT INTO events ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        with self._lock:
            cur = self._db.execute(sql, values)  # autocommit: durable when this returns
            return int(cur.lastrowid or 0)

    @contextmanager
    def _reader(self) -> Iterator[sqlite3.Connection]:
        """A read-only connection of its own: with WAL, reads neither wait for writes nor make them wait."""
        db = sqlite3.connect(self._read_uri, uri=True, check_same_thread=False)
        try:
            yield db
        finally:
            db.close()

    def sources(self) -> list[str]:
        with self._reader() as db:
            return [r[0] for r in db.execute("SELECT DISTINCT source FROM events ORDER BY source")]

    def _where(self, start: float, end: float, source: str | None) -> tuple[str, list]:
        where, args = "ts >= ? AND ts < ?", [start, end]
        if source:
            where += " AND source = ?"
            args.append(source)
        return where, args

    def stats(self, start: float, end: float, bucket: str, source: str | None = None) -> dict:
        """Counts per label in each bucket of [start, end) (empty buckets included) and in total."""
        size = BUCKETS[bucket]
        first = int(start // size) * size
        n = max(1, int(-(-(end - first) // size)))
        if n > MAX_BUCKETS:
            hint = "a shorter period" if bucket == "day" else "a larger bucket or a shorter period"
            raise ValueError(f"{n} {bucket} buckets in that period (at most {MAX_BUCKETS}); use {hint}")
        where, args = self._where(start, end, source)
        sums = ", ".join(f"SUM({label})" for label in CANONICAL_LABELS)
        sql = (
            f"SELECT CAST((ts - ?) / ? AS INTEGER) AS b, COUNT(*), SUM(faces), {sums} "
            f"FROM events WHERE {where} GROUP BY b"
        )
        with self._reader() as db:
            rows = {r[0]: r[1:] for r in db.execute(sql, [first, size, *args])}
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
        where, args = self._where(start, end, source)
        cols = ", ".join(c for c in CSV_COLUMNS if c != "time")
        sql = f"SELECT ts, {cols} FROM events WHERE {where} AND (ts, id) > (?, ?) ORDER BY ts, id LIMIT ?"
        buf = io.StringIO()
        csv.writer(buf).writerow(CSV_COLUMNS)
        yield buf.getvalue()
        last = (-1.0, 0)
        with self._reader() as db:
            while True:
                rows = db.execute(sql, [*args, *last, chunk]).fetchall()
                if not rows:
                    return
                buf = io.StringIO()
                writer = csv.writer(buf)
                for ts, event_id, source_name, *rest in rows:
                    writer.writerow([event_id, iso(ts), _cell(source_name), *rest])
                last = (rows[-1][0], rows[-1][1])
                yield buf.getvalue()


def _cell(text: str) -> str:
    """A text cell spreadsheets will not run as a formula."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
