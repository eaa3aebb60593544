"""Every table of the event store in one ``MetaData`` (the server's ``events``, the monitor's ``people`` and
``cameras``, the alerts' ``alerts`` and ``alert_deliveries``), the versioned migrations, and SQL that differs
between SQLite and PostgreSQL.

Versions: the ``maskwatch_schema`` table holds one row per step applied (its number, when, what). On SQLite the
number is also ``PRAGMA user_version`` (the monitor's files before this table kept their version there, and a
maskwatch that knows only those refuses a newer file). Steps run in one transaction; on PostgreSQL that
transaction first takes an advisory lock, so servers starting at once on one database migrate it once, in turn.
Files written before this package (a monitor's ``monitor.sqlite`` at version 1, a server's ``events.sqlite`` with
no version) open and migrate: each step creates only the tables that are not there yet. A ``monitor.sqlite`` whose
alert tables the alerts' own SQLite code made (before step 3) keeps its alerts: step 3 adds the two claim columns.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Connection,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    func,
    inspect,
    select,
    text,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from maskwatch.errors import MaskwatchError
from maskwatch.labels import CANONICAL_LABELS
from maskwatch.store.engine import Database

ROW_ID = BigInteger().with_variant(Integer, "sqlite")  # SQLite's rowid alias must be spelled INTEGER
ADVISORY_LOCK = 0x6D61736B  # "mask": the key PostgreSQL migrations serialize on

metadata = MetaData()

schema_versions = Table(
    "maskwatch_schema",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("applied", Double, nullable=False),
    Column("note", Text, nullable=False),
)

events = Table(  # the server's log: one row per image (or live sample) served
    "events",
    metadata,
    Column("id", ROW_ID, primary_key=True, autoincrement=True),
    Column("ts", Double, nullable=False),
    Column("source", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("width", Integer),
    Column("height", Integer),
    Column("faces", Integer, nullable=False),
    *[Column(label, Integer, nullable=False, server_default=text("0")) for label in CANONICAL_LABELS],
    Column("image", Text),
    Index("events_ts", "ts"),
    Index("events_source_ts", "source", "ts"),
    sqlite_autoincrement=True,
)

people = Table(  # the monitor's person events
    "people",
    metadata,
    Column("id", ROW_ID, primary_key=True, autoincrement=True),
    Column("camera", Text, nullable=False),
    Column("track_id", Integer, nullable=False),
    Column("first_seen", Double, nullable=False),
    Column("last_seen", Double, nullable=False),
    Column("label", Text, nullable=False),
    Column("vote_share", Double, nullable=False),
    Column("frames", Integer, nullable=False),
    Column("face_px", Integer, nullable=False),
    Column("probs", Text, nullable=False),  # JSON
    Column("reason", Text, nullable=False),
    Column("snapshot", Text),
    Column("committed", Double, nullable=False),
    Index("people_camera_last", "camera", "last_seen"),
    Index("people_last", "last_seen"),
    sqlite_autoincrement=True,
)

cameras = Table(  # the monitor's camera list, kept across restarts
    "cameras",
    metadata,
    Column("name", Text, primary_key=True),
    Column("config", Text, nullable=False),  # JSON
    Column("position", Integer, nullable=False),
    Column("updated", Double, nullable=False),
)


DELIVERY_STATES = ("pending", "delivered", "failed")

alerts = Table(  # person events that matched their camera's rule (monitor/alerts.py); the columns of the old file
    "alerts",
    metadata,
    Column("id", ROW_ID, primary_key=True, autoincrement=True),
    Column("camera", Text, nullable=False),
    Column("person", BigInteger, nullable=False),  # the person event's id
    Column("label", Text, nullable=False),
    Column("vote_share", Double),
    Column("frames", Integer),
    Column("time", Double, nullable=False),  # the person's last_seen
    Column("first_seen", Double),
    Column("face_px", Double),
    Column("snapshot", Text),
    Column("created", Double, nullable=False),
    Column("body", Text, nullable=False),  # the JSON every target gets
    UniqueConstraint("camera", "person"),
    Index("alerts_camera_label_time", "camera", "label", "time"),
    sqlite_autoincrement=True,
)

alert_deliveries = Table(  # one row per alert and target; a sender claims a row (owner, claimed_until) to send it
    "alert_deliveries",
    metadata,
    Column("id", ROW_ID, primary_key=True, autoincrement=True),
    Column("alert", ROW_ID, ForeignKey("alerts.id"), nullable=False),
    Column("kind", Text, nullable=False),
    Column("address", Text, nullable=False),
    Column("state", Text, nullable=False, server_default=text("'pending'")),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("last_error", Text),
    Column("last_attempt", Double),
    Column("next_attempt", Double, nullable=False),
    Column("delivered_at", Double),
    Column("owner", Text),  # the Alerter sending it now (host:pid:random), None when nobody is
    Column("claimed_until", Double),  # its lease: after this time another Alerter may take the delivery over
    CheckConstraint(f"state IN ({', '.join(repr(s) for s in DELIVERY_STATES)})", name="alert_deliveries_state"),
    UniqueConstraint("alert", "kind", "address"),
    Index("alert_deliveries_queue", "kind", "address", "state", "next_attempt"),
    sqlite_autoincrement=True,
)
CLAIM_COLUMNS = ("owner", "claimed_until")


def _create(*tables: Table) -> Callable[[Connection], None]:
    return lambda conn: metadata.create_all(conn, tables=list(tables), checkfirst=True)


def _alert_tables(conn: Connection) -> None:
    """Step 3: the alert tables, or, where the alerts' own SQLite code made them, its tables with the claim columns
    added (their rows kept)."""
    _create(alerts, alert_deliveries)(conn)
    have = {c["name"] for c in inspect(conn).get_columns("alert_deliveries")}
    for name in CLAIM_COLUMNS:
        if name not in have:
            column = alert_deliveries.c[name]
            kind = column.type.compile(dialect=conn.dialect)
            conn.exec_driver_sql(f"ALTER TABLE alert_deliveries ADD COLUMN {name} {kind}")


MIGRATIONS: list[tuple[int, str, Callable[[Connection], None]]] = [
    (1, "people and cameras (the monitor's first schema)", _create(people, cameras)),
    (2, "events (the server's image log)", _create(events)),
    (3, "alerts and alert_deliveries (with delivery claims), in the store", _alert_tables),
]
SCHEMA_VERSION = MIGRATIONS[-1][0]


class StoreVersionError(MaskwatchError):
    """The store was written by a newer maskwatch."""


def open_database(target: object) -> Database:
    """The store at ``target`` (a URL or path), migrated to ``SCHEMA_VERSION``; a newer store is refused."""
    db = target if isinstance(target, Database) else Database(target)  # type: ignore[arg-type]
    try:
        migrate(db)
    except BaseException:
        db.close()
        raise
    return db


def migrate(db: Database) -> int:
    """Apply the steps the store lacks, all in one transaction; returns the version it is at now."""
    from sqlalchemy.exc import DBAPIError

    try:
        with db.write() as conn:
            if db.dialect == "postgresql":
                conn.execute(select(func.pg_advisory_xact_lock(ADVISORY_LOCK)))
            schema_versions.create(conn, checkfirst=True)
            version = current_version(conn)
            if version > SCHEMA_VERSION:
                raise StoreVersionError(
                    f"{db.shown}: schema version {version} is newer than this maskwatch knows ({SCHEMA_VERSION})"
                )
            for number, note, step in MIGRATIONS:
                if number > version:
                    step(conn)
                    conn.execute(schema_versions.insert().values(version=number, applied=time.time(), note=note))
            if db.dialect == "sqlite" and version < SCHEMA_VERSION:
                conn.exec_driver_sql(f"PRAGMA user_version={SCHEMA_VERSION}")
            return max(version, SCHEMA_VERSION)
    except DBAPIError as exc:
        raise db.error(exc) from None


def current_version(conn: Connection) -> int:
    version = int(conn.execute(select(func.coalesce(func.max(schema_versions.c.version), 0))).scalar_one())
    if conn.dialect.name == "sqlite":  # files from before the version table kept it here
        version = max(version, int(conn.exec_driver_sql("PRAGMA user_version").scalar_one()))
    return version


class bucket(FunctionElement):
    """``bucket(x, size)``: the whole number floor(x / size), the same on both backends (CAST rounds on PostgreSQL
    and truncates on SQLite; SQLite may lack floor())."""

    inherit_cache = True
    type = BigInteger()


@compiles(bucket)
def _bucket_sqlite(element: bucket, compiler: object, **kw: object) -> str:  # times are positive: truncation is floor
    x, size = (compiler.process(arg, **kw) for arg in element.clauses)  # type: ignore[attr-defined]
    return f"CAST(({x}) / ({size}) AS INTEGER)"


@compiles(bucket, "postgresql")
def _bucket_postgres(element: bucket, compiler: object, **kw: object) -> str:
    x, size = (compiler.process(arg, **kw) for arg in element.clauses)  # type: ignore[attr-defined]
    return f"CAST(floor(({x}) / ({size})) AS BIGINT)"
