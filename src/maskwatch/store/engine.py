"""A store URL → ``Database``. ``sqlite:///PATH`` or a bare path: a SQLite file in WAL mode with
``synchronous=FULL`` (today's durability: a committed row survives ``kill -9`` and power loss); ``postgresql://``
(or ``postgres://``): PostgreSQL through SQLAlchemy's psycopg 3 driver, which is the optional ``scale`` extra.

Every write is one transaction, committed when ``write()``'s block ends: callers acknowledge an event only after
that. On SQLite one lock per process keeps writers in line (SQLite has one writer at a time anyway, and other
processes wait ``busy_timeout``); PostgreSQL writers run concurrently on the engine's pool.
"""

from __future__ import annotations

import importlib.util
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Connection, Engine, create_engine, event, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from maskwatch.errors import MaskwatchError

SCALE_HINT = "pip install 'maskwatch[scale]'"
BUSY_MS = 10_000  # how long a SQLite write waits for another process's writer
_POSTGRES = ("postgresql", "postgres", "postgresql+psycopg")
_PASSWORD = re.compile(r"(://[^:/@]*:)[^@]*@")


def hide_password(text: str) -> str:
    """``text`` with the password of any URL in it replaced by ``***``."""
    return _PASSWORD.sub(r"\1***@", text)


@dataclass(frozen=True)
class StoreTarget:
    """Where a store lives: a SQLite ``path``, or a PostgreSQL ``url``."""

    path: Path | None = None
    url: URL | None = None

    @property
    def shown(self) -> str:
        """For messages and logs: the path, or the URL without its password."""
        if self.url is None:
            return str(self.path)
        return self.url.set(drivername="postgresql").render_as_string(hide_password=True)

    @property
    def is_sqlite(self) -> bool:
        return self.url is None


def parse_store(target: str | Path | StoreTarget) -> StoreTarget:
    """``sqlite:///relative/path``, ``sqlite:////absolute/path``, a bare path, or ``postgresql://USER:PW@HOST/DB``;
    anything else is a ``MaskwatchError`` (one line, password hidden)."""
    if isinstance(target, StoreTarget):
        return target
    if isinstance(target, Path):
        return StoreTarget(path=target)
    text = str(target).strip()
    if not text:
        raise MaskwatchError("--store is empty: give sqlite:///PATH or postgresql://USER@HOST/DB")
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    if not scheme:
        return StoreTarget(path=Path(text))
    if scheme in ("sqlite", "sqlite+pysqlite"):
        rest = text.split("://", 1)[1]
        if not rest.startswith("/") or rest in ("/", "/:memory:") or "?" in rest:
            raise MaskwatchError(
                f"--store {hide_password(text)}: a SQLite store is a file: sqlite:///relative/path or "
                "sqlite:////absolute/path (no query options)"
            )
        return StoreTarget(path=Path(rest[1:]))
    if scheme not in _POSTGRES:
        raise MaskwatchError(
            f"--store {hide_password(text)}: {scheme}:// is not a store maskwatch knows; use sqlite:///PATH or "
            "postgresql://USER@HOST/DB"
        )
    try:
        url = make_url(text)
    except (ArgumentError, ValueError) as exc:
        raise MaskwatchError(f"--store {hide_password(text)} is not a valid URL ({type(exc).__name__})") from None
    if not url.database:
        raise MaskwatchError(f"--store {url.render_as_string(hide_password=True)} names no database (…/DBNAME)")
    if importlib.util.find_spec("psycopg") is None:
        raise MaskwatchError(f"--store postgresql:// needs the PostgreSQL driver psycopg: {SCALE_HINT}")
    return StoreTarget(url=url.set(drivername="postgresql+psycopg"))


class Database:
    """One store's engine. ``write()``: a connection in a transaction, committed when the block ends (IMMEDIATE on
    SQLite, so it never has to upgrade a read lock); ``read()``: a pooled connection of its own, so reads neither
    wait for writes nor make them wait (WAL on SQLite, MVCC on PostgreSQL)."""

    def __init__(self, target: str | Path | StoreTarget) -> None:
        self.target = parse_store(target)
        self.engine = _sqlite_engine(self.target.path) if self.target.path else _postgres_engine(self.target.url)
        self.dialect = self.engine.dialect.name
        self._write_lock: Any = threading.Lock() if self.target.is_sqlite else nullcontext()

    @property
    def shown(self) -> str:
        return self.target.shown

    @contextmanager
    def write(self) -> Iterator[Connection]:
        with self._write_lock, self._connect() as conn:
            conn.execution_options(maskwatch_write=True)
            with conn.begin():
                yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self._connect() as conn:
            yield conn

    def _connect(self) -> Connection:
        try:
            return self.engine.connect()
        except DBAPIError as exc:
            raise self.error(exc) from None

    def error(self, exc: BaseException) -> MaskwatchError:
        """A driver error as one line naming the store (the password hidden)."""
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        return MaskwatchError(f"store {self.shown}: {hide_password(reason[0] if reason else type(exc).__name__)}")

    def close(self) -> None:
        self.engine.dispose()


def _sqlite_engine(path: Path) -> Engine:
    path.parent.mkdir(parents=True, exist_ok=True)
    # URL.create hands the file name to sqlite3 as it is: a '#', '?' or '%' in the path stays part of the name
    engine = create_engine(
        URL.create("sqlite+pysqlite", database=str(path)),
        connect_args={"check_same_thread": False, "timeout": BUSY_MS / 1000},
        pool_size=8,
        max_overflow=16,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi: Any, _record: Any) -> None:
        dbapi.isolation_level = None  # transactions are ours (BEGIN below), not the sqlite3 module's guesses
        for pragma in ("journal_mode=WAL", "synchronous=FULL", f"busy_timeout={BUSY_MS}"):
            dbapi.execute(f"PRAGMA {pragma}")

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("maskwatch_write") else "BEGIN")

    return engine


def _postgres_engine(url: URL | None) -> Engine:
    assert url is not None
    return create_engine(url, pool_size=8, max_overflow=16, pool_pre_ping=True, connect_args={"connect_timeout": 10})
