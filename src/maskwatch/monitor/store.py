"""The monitor's SQLite store: person events (``people``), the camera list (``cameras``, kept across restarts),
and per-minute aggregates per camera computed in SQL. Same rules as ``serve/store.py``: WAL, ``synchronous=FULL``,
one connection for writes behind one lock, reads on read-only connections of their own; every write is committed
when the call returns, so ``kill -9`` loses no event that was announced. The schema is versioned
(``PRAGMA user_version``); a newer file than this code knows is refused.

A person's snapshot is a JPEG file under ``snapshots/`` (beside the database), written and fsynced before its
row is committed; the row names it relative to that folder.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from maskwatch.labels import CANONICAL_LABELS
from maskwatch.monitor.config import CameraConfig
from maskwatch.monitor.people import PersonEvent

SCHEMA_VERSION = 1
_MIGRATIONS = {
    1: """
CREATE TABLE people (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    camera TEXT NOT NULL,
    track_id INTEGER NOT NULL,
    first_seen REAL NOT NULL,
    last_seen REAL NOT NULL,
    label TEXT NOT NULL,
    vote_share REAL NOT NULL,
    frames INTEGER NOT NULL,
    face_px INTEGER NOT NULL,
    probs TEXT NOT NULL,
    reason TEXT NOT NULL,
    snapshot TEXT,
    committed REAL NOT NULL
);
CREATE INDEX people_camera_last ON people (camera, last_seen);
CREATE INDEX people_last ON people (last_seen);
CREATE TABLE cameras (
    name TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    position INTEGER NOT NULL,
    updated REAL NOT NULL
);
""",
}
CSV_COLUMNS = [
    "id",
    "camera",
    "track_id",
    "first_seen",
    "last_seen",
    "label",
    "vote_share",
    "frames",
    "face_px",
    "snapshot",
]
MAX_LIMIT = 10_000
MAX_MINUTES = 10_080  # a week of per-minute points


def iso(ts: float) -> str:
    """ISO 8601 UTC with milliseconds."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class StoreVersionError(RuntimeError):
    pass


class MonitorStore:
    """Thread-safe: camera workers, the sweeper and the server's routes share it."""

    def __init__(self, path: str | Path, snapshots: str | Path | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.snapshots = Path(snapshots) if snapshots else self.path.parent / "snapshots"
        self._read_uri = self.path.resolve().as_uri() + "?mode=ro"
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._migrate()

    def _migrate(self) -> None:
        with self._lock:
            version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                self._db.close()
                raise StoreVersionError(
                    f"{self.path}: schema version {version} is newer than this maskwatch knows ({SCHEMA_VERSION})"
                )
            for target in range(version + 1, SCHEMA_VERSION + 1):
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    for statement in _MIGRATIONS[target].split(";"):
                        if statement.strip():
                            self._db.execute(statement)
                    self._db.execute(f"PRAGMA user_version={target}")
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise

    @property
    def version(self) -> int:
        with self._reader() as db:
            return int(db.execute("PRAGMA user_version").fetchone()[0])

    def close(self) -> None:
        with self._lock, contextlib.suppress(sqlite3.ProgrammingError):
            self._db.close()

    @contextmanager
    def _reader(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self._read_uri, uri=True, check_same_thread=False)
        try:
            yield db
        finally:
            db.close()

    # ------------------------------------------------------------------------------------------------- people
    def add_person(self, event: PersonEvent) -> int:
        """Write the snapshot file (fsynced), then commit the row; sets ``event.id`` and ``snapshot_path``."""
        rel = None
        if event.snapshot:
            day = datetime.fromtimestamp(event.last_seen, UTC).strftime("%Y%m%d")
            rel = f"{event.camera}/{day}/{uuid.uuid4().hex}.jpg"
            path = self.snapshots / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("wb") as out:
                out.write(event.snapshot)
                out.flush()
                os.fsync(out.fileno())
        values = [
            event.camera,
            event.track_id,
            event.first_seen,
            event.last_seen,
            event.label,
            event.vote_share,
            event.frames,
            event.face_px,
            json.dumps(event.probs),
            event.reason,
            rel,
            time.time(),
        ]
        sql = (
            "INSERT INTO people (camera, track_id, first_seen, last_seen, label, vote_share, frames, face_px,"
            " probs, reason, snapshot, committed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )
        with self._lock:
            cur = self._db.execute(sql, values)  # autocommit, synchronous=FULL: durable when this returns
        event.id = int(cur.lastrowid or 0)
        event.snapshot_path = rel
        return event.id

    def _people_where(self, camera: str | None, start: float | None, end: float | None) -> tuple[str, list[Any]]:
        where, args = ["1=1"], []
        if camera:
            where.append("camera = ?")
            args.append(camera)
        if start is not None:
            where.append("last_seen >= ?")
            args.append(start)
        if end is not None:
            where.append("last_seen < ?")
            args.append(end)
        return " AND ".join(where), args

    def people(
        self, camera: str | None = None, start: float | None = None, end: float | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Person events, newest first (by last_seen)."""
        where, args = self._people_where(camera, start, end)
        sql = f"SELECT * FROM people WHERE {where} ORDER BY last_seen DESC, id DESC LIMIT ?"
        with self._reader() as db:
            db.row_factory = sqlite3.Row
            rows = db.execute(sql, [*args, max(1, min(int(limit), MAX_LIMIT))]).fetchall()
        return [_row(r) for r in rows]

    def count_people(self) -> int:
        with self._reader() as db:
            return int(db.execute("SELECT COUNT(*) FROM people").fetchone()[0])

    def person(self, person_id: int) -> dict[str, Any] | None:
        with self._reader() as db:
            db.row_factory = sqlite3.Row
            row = db.execute("SELECT * FROM people WHERE id = ?", [person_id]).fetchone()
        return _row(row) if row else None

    def snapshot_file(self, person_id: int) -> Path | None:
        row = self.person(person_id)
        if not row or not row["snapshot"]:
            return None
        path = (self.snapshots / row["snapshot"]).resolve()
        root = self.snapshots.resolve()
        return path if path.is_relative_to(root) and path.is_file() else None

    def summary(self, camera: str | None = None, start: float | None = None, end: float | None = None) -> dict:
        """Per camera: people, counts and percent per label, and a per-minute series (people by the minute of their
        last_seen; only minutes with people)."""
        where, args = self._people_where(camera, start, end)
        with self._reader() as db:
            totals = db.execute(
                f"SELECT camera, label, COUNT(*) FROM people WHERE {where} GROUP BY camera, label", args
            ).fetchall()
            minutes = db.execute(
                f"SELECT camera, CAST(last_seen / 60 AS INTEGER) AS m, label, COUNT(*) FROM people WHERE {where}"
                f" GROUP BY camera, m, label ORDER BY camera, m",
                args,
            ).fetchall()
        cams: dict[str, dict[str, Any]] = {}

        def entry(name: str) -> dict[str, Any]:
            return cams.setdefault(
                name, {"camera": name, "people": 0, "counts": dict.fromkeys(CANONICAL_LABELS, 0), "series": {}}
            )

        for name, label, n in totals:
            cam = entry(name)
            cam["people"] += n
            cam["counts"][label] = cam["counts"].get(label, 0) + n
        for name, minute, label, n in minutes:
            series = entry(name)["series"]
            point = series.setdefault(minute, {"minute": iso(minute * 60), **dict.fromkeys(CANONICAL_LABELS, 0)})
            point[label] = point.get(label, 0) + n
        out = []
        for cam in sorted(cams.values(), key=lambda c: c["camera"]):
            total = cam["people"]
            cam["percent"] = {k: round(100 * v / total, 1) if total else 0.0 for k, v in cam["counts"].items()}
            points = [cam["series"][m] for m in sorted(cam["series"])][-MAX_MINUTES:]
            for p in points:
                p["people"] = sum(p[label] for label in cam["counts"])
            cam["series"] = points
            out.append(cam)
        return {"labels": list(CANONICAL_LABELS), "cameras": out}

    def csv_chunks(
        self, camera: str | None = None, start: float | None = None, end: float | None = None, chunk: int = 1000
    ) -> Iterator[str]:
        """Person events in time order as CSV, header first, ``chunk`` rows at a time (keyset pages)."""
        where, args = self._people_where(camera, start, end)
        cols = ", ".join(c for c in CSV_COLUMNS)
        sql = f"SELECT {cols} FROM people WHERE {where} AND (last_seen, id) > (?, ?) ORDER BY last_seen, id LIMIT ?"
        buf = io.StringIO()
        csv.writer(buf).writerow(CSV_COLUMNS)
        yield buf.getvalue()
        last: tuple[float, int] = (-1.0, 0)
        with self._reader() as db:
            while True:
                rows = db.execute(sql, [*args, *last, chunk]).fetchall()
                if not rows:
                    return
                buf = io.StringIO()
                writer = csv.writer(buf)
                for pid, cam, tid, first, lastseen, label, share, frames, px, snap in rows:
                    writer.writerow(
                        [pid, _cell(cam), tid, iso(first), iso(lastseen), label, round(share, 4), frames, px,
                         "yes" if snap else ""]
                    )  # fmt: skip
                last = (rows[-1][4], rows[-1][0])
                yield buf.getvalue()

    def sweep(self, retention_days: float, now: float | None = None) -> int:
        """Delete person events (and their snapshot files) whose last_seen is older than ``retention_days``; 0
        keeps everything. Returns the number of events deleted."""
        if retention_days <= 0:
            return 0
        cutoff = (time.time() if now is None else now) - retention_days * 86400
        with self._reader() as db:
            files = [r[0] for r in db.execute("SELECT snapshot FROM people WHERE last_seen < ?", [cutoff]) if r[0]]
        with self._lock:
            deleted = self._db.execute("DELETE FROM people WHERE last_seen < ?", [cutoff]).rowcount
        for rel in files:  # rows first: a crash in between leaves a file without a row, never a row without a file
            with contextlib.suppress(OSError):
                (self.snapshots / rel).unlink()
        return int(deleted)

    # ------------------------------------------------------------------------------------------------ cameras
    def save_camera(self, cfg: CameraConfig) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO cameras (name, config, position, updated) VALUES"
                " (?, ?, (SELECT COALESCE(MAX(position), 0) + 1 FROM cameras), ?)"
                " ON CONFLICT(name) DO UPDATE SET config = excluded.config, updated = excluded.updated",
                [cfg.name, json.dumps(cfg.to_dict()), time.time()],
            )

    def delete_camera(self, name: str) -> bool:
        with self._lock:
            return self._db.execute("DELETE FROM cameras WHERE name = ?", [name]).rowcount > 0

    def cameras(self) -> list[CameraConfig]:
        """The kept camera list, in the order added. A row that no longer checks (a newer maskwatch's field, a
        rule tightened) is skipped with its reason in ``bad_cameras``."""
        with self._reader() as db:
            rows = db.execute("SELECT name, config FROM cameras ORDER BY position").fetchall()
        out, self.bad_cameras = [], {}
        for name, text in rows:
            try:
                out.append(CameraConfig.from_dict(json.loads(text)))
            except Exception as exc:  # one bad row never hides the others
                self.bad_cameras[name] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return out


def _row(row: sqlite3.Row) -> dict[str, Any]:
    out = dict(row)
    out["probs"] = json.loads(out["probs"])
    return out


def _cell(text: str) -> str:
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def has_cameras(path: str | Path) -> bool:
    """Whether a monitor store exists at ``path`` with at least one camera (read-only; no file is created)."""
    path = Path(path)
    if not path.is_file():
        return False
    try:
        db = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
        try:
            return db.execute("SELECT COUNT(*) FROM cameras").fetchone()[0] > 0
        finally:
            db.close()
    except sqlite3.Error:
        return False
