"""The monitor's store: person events (``people``), the camera list (``cameras``, kept across restarts),
and per-minute aggregates per camera computed in SQL, in the event store (``maskwatch.store``: a SQLite file in WAL
mode with ``synchronous=FULL``, or PostgreSQL). Every write is committed when the call returns, so ``kill -9`` loses
no event that was announced. The schema is versioned (``maskwatch.store.schema``); a newer store than this code
knows is refused.

A person's snapshot is a JPEG file under ``snapshots/`` (beside the SQLite file, or the folder the caller names),
written and fsynced before its row is committed; the row names it relative to that folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, and_, func, select, true
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError

from maskwatch.errors import MaskwatchError
from maskwatch.labels import CANONICAL_LABELS
from maskwatch.monitor.config import CameraConfig
from maskwatch.monitor.people import PersonEvent
from maskwatch.store.engine import Database, StoreTarget, parse_store
from maskwatch.store.export import csv_text, keyset_pages, safe_cell
from maskwatch.store.schema import SCHEMA_VERSION, StoreVersionError, cameras, current_version, open_database, people
from maskwatch.store.schema import bucket as floor_bucket

__all__ = ["SCHEMA_VERSION", "MonitorStore", "StoreVersionError", "has_cameras", "iso"]
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


class MonitorStore:
    """Thread-safe: camera workers, the sweeper and the server's routes share it."""

    def __init__(self, target: str | Path | StoreTarget, snapshots: str | Path | None = None) -> None:
        """``target``: a SQLite path or a store URL; ``snapshots``: their folder (default: beside the SQLite file;
        required on PostgreSQL)."""
        where = parse_store(target)
        if snapshots is None and where.path is None:
            raise ValueError("a monitor store on PostgreSQL needs its snapshots folder")
        self.db = open_database(where)
        self.path = where.path  # None on PostgreSQL
        self.snapshots = Path(snapshots) if snapshots else Path(where.path or ".").parent / "snapshots"

    @property
    def version(self) -> int:
        with self.db.read() as conn:
            return current_version(conn)

    def close(self) -> None:
        self.db.close()

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
        row = {
            "camera": event.camera,
            "track_id": event.track_id,
            "first_seen": event.first_seen,
            "last_seen": event.last_seen,
            "label": event.label,
            "vote_share": event.vote_share,
            "frames": event.frames,
            "face_px": event.face_px,
            "probs": json.dumps(event.probs),
            "reason": event.reason,
            "snapshot": rel,
            "committed": time.time(),
        }
        with self.db.write() as conn:  # committed (durable) when this block ends
            event.id = int(conn.execute(people.insert().values(row)).inserted_primary_key[0])
        event.snapshot_path = rel
        return event.id

    def _people_where(self, camera: str | None, start: float | None, end: float | None) -> ColumnElement[bool]:
        cond = [true()]
        if camera:
            cond.append(people.c.camera == camera)
        if start is not None:
            cond.append(people.c.last_seen >= start)
        if end is not None:
            cond.append(people.c.last_seen < end)
        return and_(*cond)

    def people(
        self, camera: str | None = None, start: float | None = None, end: float | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Person events, newest first (by last_seen)."""
        sql = (
            select(people)
            .where(self._people_where(camera, start, end))
            .order_by(people.c.last_seen.desc(), people.c.id.desc())
            .limit(max(1, min(int(limit), MAX_LIMIT)))
        )
        with self.db.read() as conn:
            return [_row(r) for r in conn.execute(sql).mappings()]

    def count_people(self) -> int:
        with self.db.read() as conn:
            return int(conn.execute(select(func.count()).select_from(people)).scalar_one())

    def person(self, person_id: int) -> dict[str, Any] | None:
        with self.db.read() as conn:
            row = conn.execute(select(people).where(people.c.id == person_id)).mappings().first()
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
        where = self._people_where(camera, start, end)
        c = people.c
        minute = floor_bucket(c.last_seen, 60).label("m")
        with self.db.read() as conn:
            totals = conn.execute(
                select(c.camera, c.label, func.count()).where(where).group_by(c.camera, c.label)
            ).all()
            minutes = conn.execute(
                select(c.camera, minute, c.label, func.count())
                .where(where)
                .group_by(c.camera, minute, c.label)
                .order_by(c.camera, minute)
            ).all()
        cams: dict[str, dict[str, Any]] = {}

        def entry(name: str) -> dict[str, Any]:
            return cams.setdefault(
                name, {"camera": name, "people": 0, "counts": dict.fromkeys(CANONICAL_LABELS, 0), "series": {}}
            )

        for name, label, n in totals:
            cam = entry(name)
            cam["people"] += n
            cam["counts"][label] = cam["counts"].get(label, 0) + n
        for name, m, label, n in minutes:
            series = entry(name)["series"]
            point = series.setdefault(int(m), {"minute": iso(int(m) * 60), **dict.fromkeys(CANONICAL_LABELS, 0)})
            point[label] = point.get(label, 0) + n
        out = []
        for cam in sorted(cams.values(), key=lambda x: x["camera"]):
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
        yield csv_text([CSV_COLUMNS])
        sql = select(*(people.c[name] for name in CSV_COLUMNS)).where(self._people_where(camera, start, end))
        for rows in keyset_pages(self.db, sql, [people.c.last_seen, people.c.id], chunk):
            yield csv_text(
                [pid, safe_cell(cam), tid, iso(first), iso(last), label, round(share, 4), frames, px,
                 "yes" if snap else ""]
                for pid, cam, tid, first, last, label, share, frames, px, snap in rows
            )  # fmt: skip

    def sweep(self, retention_days: float, now: float | None = None) -> int:
        """Delete person events (and their snapshot files) whose last_seen is older than ``retention_days``; 0
        keeps everything. Returns the number of events deleted."""
        if retention_days <= 0:
            return 0
        cutoff = (time.time() if now is None else now) - retention_days * 86400
        old = people.c.last_seen < cutoff
        with self.db.read() as conn:
            files = [r for r in conn.execute(select(people.c.snapshot).where(old)).scalars() if r]
        with self.db.write() as conn:
            deleted = conn.execute(people.delete().where(old)).rowcount
        for rel in files:  # rows first: a crash in between leaves a file without a row, never a row without a file
            with contextlib.suppress(OSError):
                (self.snapshots / rel).unlink()
        return int(deleted)

    # ------------------------------------------------------------------------------------------------ cameras
    def save_camera(self, cfg: CameraConfig) -> None:
        """Add or update (upsert: the same statement on both backends) a kept camera; a new one goes last."""
        dialect = postgresql if self.db.dialect == "postgresql" else sqlite
        position = select(func.coalesce(func.max(cameras.c.position), 0) + 1).scalar_subquery()
        sql = dialect.insert(cameras).values(
            name=cfg.name, config=json.dumps(cfg.to_dict()), position=position, updated=time.time()
        )
        sql = sql.on_conflict_do_update(
            index_elements=[cameras.c.name], set_={"config": sql.excluded.config, "updated": sql.excluded.updated}
        )
        with self.db.write() as conn:
            conn.execute(sql)

    def delete_camera(self, name: str) -> bool:
        with self.db.write() as conn:
            return conn.execute(cameras.delete().where(cameras.c.name == name)).rowcount > 0

    def cameras(self) -> list[CameraConfig]:
        """The kept camera list, in the order added. A row that no longer checks (a newer maskwatch's field, a
        rule tightened) is skipped with its reason in ``bad_cameras``."""
        with self.db.read() as conn:
            rows = conn.execute(select(cameras.c.name, cameras.c.config).order_by(cameras.c.position)).all()
        out, self.bad_cameras = [], {}
        for name, text in rows:
            try:
                out.append(CameraConfig.from_dict(json.loads(text)))
            except Exception as exc:  # one bad row never hides the others
                self.bad_cameras[name] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return out


def _row(row: Any) -> dict[str, Any]:
    out = dict(row)
    out["probs"] = json.loads(out["probs"])
    return out


def has_cameras(target: str | Path | StoreTarget) -> bool:
    """Whether a monitor store exists at ``target`` (a SQLite path or a store URL) with at least one camera. A SQLite
    file that is not there is not created; a store that cannot be read counts as none."""
    where = parse_store(target)
    if where.path is not None and not where.path.is_file():
        return False
    db = Database(where)
    try:
        with db.read() as conn:
            return int(conn.execute(select(func.count()).select_from(cameras)).scalar_one()) > 0
    except (DBAPIError, MaskwatchError):
        return False
    finally:
        db.close()
