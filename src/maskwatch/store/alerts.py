"""The alert log in the event store (``alerts``, ``alert_deliveries``): what ``monitor/alerts.Alerter`` writes and
reads, the same SQL on SQLite and PostgreSQL, so several servers on one PostgreSQL share one log and one queue.

- ``add``: the alert and one delivery per target in one transaction (committed when it returns), unless the person
  already has an alert or its camera and label are cooling down. On PostgreSQL the transaction first takes an
  advisory lock on the camera, so servers deciding on one camera at once decide in turn (SQLite's one writer does
  that already).
- ``claim``: a sender takes its target's next due delivery for ``lease`` seconds: the row is locked with ``FOR
  UPDATE SKIP LOCKED`` on PostgreSQL (another server's sender skips it and takes the next), and within SQLite's
  ``BEGIN IMMEDIATE`` (one writer per file); the claim is committed before anything is sent. A delivery whose lease
  ran out (its sender was killed) is due again, for any server.
- ``record``: an attempt's outcome, written only while the claim is still the sender's own; ``release``: a closing
  Alerter's claims handed back at once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, case, func, or_, select, true

from maskwatch.store.engine import Database
from maskwatch.store.schema import alert_deliveries, alerts

ALERT_LOCK = 0x616C7274  # "alrt": with the camera's hash, the two-key advisory lock ``add`` takes on PostgreSQL
_D, _A = alert_deliveries.c, alerts.c


def iso(ts: float | None) -> str | None:
    """ISO 8601 UTC with milliseconds, or None."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Claimed:
    """A delivery a sender holds until ``claimed_until``: what it sends and where the attempt count stands."""

    id: int
    alert: int
    attempts: int
    body: str
    camera: str


class AlertLog:
    """The alert tables of one ``Database`` (which the caller opens, migrates and closes). Thread-safe."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- writing an alert

    def add(
        self,
        row: Mapping[str, Any],
        body_of: Callable[[int], str],
        targets: Sequence[tuple[str, str]],
        cooldown: float,
        now: float,
    ) -> int | None:
        """The new alert's id (``row``: the ``alerts`` columns but id and body; ``body_of(id)``: its JSON), with
        one pending delivery per (kind, address) due ``now``; None when the person has an alert already or another
        alert of its camera and label lies within ``cooldown`` seconds of its time."""
        camera, label, ts = str(row["camera"]), str(row["label"]), float(row["time"])
        with self.db.write() as conn:
            if self.db.dialect == "postgresql":
                conn.execute(select(func.pg_advisory_xact_lock(ALERT_LOCK, func.hashtext(camera))))
            seen = select(_A.id).where(_A.camera == camera, _A.person == row["person"])
            recent = select(_A.id).where(
                _A.camera == camera, _A.label == label, _A.time > ts - cooldown, _A.time < ts + cooldown
            )
            if conn.execute(seen.limit(1)).first() or (cooldown > 0 and conn.execute(recent.limit(1)).first()):
                return None
            alert_id = int(conn.execute(alerts.insert().values(**row, body="")).inserted_primary_key[0])
            conn.execute(alerts.update().where(_A.id == alert_id).values(body=body_of(alert_id)))
            if targets:
                conn.execute(
                    alert_deliveries.insert(),
                    [{"alert": alert_id, "kind": k, "address": a, "next_attempt": now} for k, a in targets],
                )
        return alert_id

    # -- the senders' queue

    def claim(self, kind: str, address: str, owner: str, lease: float, now: float) -> Claimed | None:
        """The target's due pending delivery that nobody holds (oldest due first), now ``owner``'s until
        ``now + lease``; None when there is none."""
        due = select(_D.id, _D.alert, _D.attempts, _A.body, _A.camera).join(alerts, _A.id == _D.alert)
        due = due.where(_D.kind == kind, _D.address == address, self._free(now), _D.next_attempt <= now)
        due = due.order_by(_D.next_attempt, _D.id).limit(1).with_for_update(skip_locked=True, of=alert_deliveries)
        with self.db.write() as conn:
            row = conn.execute(due).first()
            if row is None:
                return None
            taken = conn.execute(
                alert_deliveries.update()
                .where(_D.id == row.id, self._free(now))
                .values(owner=owner, claimed_until=now + lease)
            ).rowcount
        return Claimed(row.id, row.alert, row.attempts, row.body, row.camera) if taken == 1 else None

    @staticmethod
    def _free(now: float) -> Any:
        return and_(_D.state == "pending", or_(_D.claimed_until.is_(None), _D.claimed_until < now))

    def next_due(self, kind: str, address: str) -> float | None:
        """When the target's next pending delivery falls due: its next attempt, or later, its holder's lease end."""
        ready = case((_D.claimed_until > _D.next_attempt, _D.claimed_until), else_=_D.next_attempt)
        sql = select(func.min(ready)).where(_D.kind == kind, _D.address == address, _D.state == "pending")
        with self.db.read() as conn:
            due = conn.execute(sql).scalar()
        return None if due is None else float(due)

    def record(self, claimed: Claimed, owner: str, values: Mapping[str, Any]) -> bool:
        """One attempt's outcome (``values``: state, attempts, last_error, …), the claim released; False, and
        nothing written, when the delivery is no longer ``owner``'s (its lease ran out and another took it)."""
        with self.db.write() as conn:
            done = conn.execute(
                alert_deliveries.update()
                .where(_D.id == claimed.id, _D.owner == owner)
                .values(**values, owner=None, claimed_until=None)
            ).rowcount
        return done == 1

    def release(self, owner: str) -> int:
        """Every claim ``owner`` still holds handed back (a closing Alerter); how many."""
        with self.db.write() as conn:
            return conn.execute(
                alert_deliveries.update().where(_D.owner == owner).values(owner=None, claimed_until=None)
            ).rowcount

    def pending_by_target(self) -> list[tuple[str, str, int]]:
        """(kind, address, pending deliveries) for every target with any."""
        sql = select(_D.kind, _D.address, func.count()).where(_D.state == "pending").group_by(_D.kind, _D.address)
        with self.db.read() as conn:
            return [(k, a, int(n)) for k, a, n in conn.execute(sql)]

    # -- the dashboard

    def list(self, camera: str | None = None, limit: int = 100, before: int | None = None) -> list[dict]:
        """Newest first (``before``: only alerts with a smaller id, for paging), each with its deliveries and
        ``state``: ``delivered`` when every target has it, ``failed`` when one gave up, else ``pending`` (``none``
        without targets)."""
        cond = [true()]
        if camera is not None:
            cond.append(_A.camera == camera)
        if before is not None:
            cond.append(_A.id < before)
        sql = select(alerts).where(*cond).order_by(_A.id.desc()).limit(max(1, min(int(limit), 10_000)))
        with self.db.read() as conn:
            rows = conn.execute(sql).mappings().all()
            deliveries: dict[int, list[dict]] = {r["id"]: [] for r in rows}
            if deliveries:
                for d in conn.execute(select(alert_deliveries).where(_D.alert.in_(list(deliveries))).order_by(_D.id)):
                    deliveries[d.alert].append({
                        "target": f"{d.kind} {d.address}", "kind": d.kind, "address": d.address, "state": d.state,
                        "attempts": d.attempts, "last_error": d.last_error, "last_attempt": iso(d.last_attempt),
                        "delivered_at": iso(d.delivered_at),
                    })  # fmt: skip
        out = []
        for r in rows:
            states = {d["state"] for d in deliveries[r["id"]]}
            out.append({
                "id": r["id"], "camera": r["camera"], "person": r["person"], "label": r["label"],
                "vote_share": r["vote_share"], "frames": r["frames"], "time": iso(r["time"]),
                "first_seen": iso(r["first_seen"]), "face_px": r["face_px"], "snapshot": r["snapshot"],
                "snapshot_url": json.loads(r["body"]).get("snapshot_url") if r["body"] else None,
                "created": iso(r["created"]),
                "state": next((x for x in ("failed", "pending", "delivered") if x in states), "none"),
                "deliveries": deliveries[r["id"]],
            })  # fmt: skip
        return out
