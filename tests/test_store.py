"""The event store (``maskwatch.store``) on SQLite and on a real PostgreSQL (tests/postgres_server.py): the server's
event log and the monitor's people and cameras read back, aggregated and exported the same on both; migrations of
files the previous code wrote; concurrent writers (threads, processes, servers starting at once); bad URLs."""

from __future__ import annotations

import csv
import io
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from maskwatch.errors import MaskwatchError
from maskwatch.monitor.config import CameraConfig
from maskwatch.monitor.people import PersonEvent
from maskwatch.monitor.store import MonitorStore
from maskwatch.serve.store import Event, EventStore
from maskwatch.store.engine import SCALE_HINT, parse_store
from maskwatch.store.schema import SCHEMA_VERSION, StoreVersionError, open_database

SRC = str(Path(__file__).parents[1] / "src")
T0 = 1_800_000_000.0 - 1_800_000_000.0 % 3600  # an hour boundary


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path) -> str:
    """A fresh, empty store of each kind: a SQLite file, or a new database on the session's PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.sqlite'}"
    from postgres_server import new_database

    return new_database(request.getfixturevalue("postgres_url"))


def test_events_read_back_aggregate_and_export_alike(store_url):
    store = EventStore(store_url)
    try:
        ids = [
            store.add(Event("a", "detect", {"with_mask": 2, "without_mask": 1}, 640, 480, ts=T0 + 10)),
            store.add(Event("a", "detect", {"with_mask": 1}, ts=T0 + 59.9)),  # still minute 0 (floor, not round)
            store.add(Event("=b", "live", {"mask_worn_incorrectly": 1}, ts=T0 + 7200)),
            store.add(Event("a", "detect", {"with_mask": 5}, ts=T0 + 4 * 3600)),  # outside [T0, T0 + 3 h)
        ]
        assert ids == sorted(ids) and len(set(ids)) == 4
        assert store.sources() == ["=b", "a"]
        out = store.stats(T0, T0 + 3 * 3600, "hour")
        assert [s["faces"] for s in out["series"]] == [4, 0, 1] and [s["images"] for s in out["series"]] == [2, 0, 1]
        assert out["totals"] == {"images": 3, "faces": 5, "with_mask": 3, "without_mask": 1, "mask_worn_incorrectly": 1}
        minutes = store.stats(T0, T0 + 3600, "minute")["series"]
        assert minutes[0]["images"] == 2 and minutes[1]["images"] == 0
        assert store.stats(T0, T0 + 3 * 3600, "hour", "=b")["totals"]["faces"] == 1
        rows = list(csv.DictReader(io.StringIO("".join(store.csv_chunks(T0, T0 + 3 * 3600, chunk=1)))))
        assert [int(r["id"]) for r in rows] == ids[:3]
        assert rows[0]["time"] == "2027-01-15T08:00:10Z" and rows[0]["width"] == "640" and rows[1]["width"] == ""
        assert rows[2]["source"] == "'=b" and rows[2]["kind"] == "live"  # no formula for spreadsheets
    finally:
        store.close()
    again = EventStore(store_url)  # reopened: the rows are there, the schema is not made twice
    assert again.stats(T0, T0 + 5 * 3600, "hour")["totals"]["images"] == 4
    again.close()


def _person(camera: str, track: int, last: float, label: str = "with_mask", snapshot: bytes | None = None):
    return PersonEvent(camera, track, last - 3, last, label, 0.75, 6, 90, {"with_mask": 0.75}, snapshot=snapshot)


def test_people_cameras_summary_csv_and_sweep_alike(store_url, tmp_path):
    store = MonitorStore(store_url, tmp_path / "snaps")
    try:
        now = T0 + 86400 + 45  # now and now - 30 s in one minute, now - 90 s in the one before
        for i, (cam, age, label) in enumerate(
            [("door", 0, "with_mask"), ("door", 30, "without_mask"), ("door", 90, "with_mask"), ("yard", 9e6, "x")]
        ):
            store.add_person(_person(cam, i, now - age, label, snapshot=b"jpeg" if i == 0 else None))
        newest = store.people(limit=10)
        assert [p["track_id"] for p in newest] == [0, 1, 2, 3] and newest[0]["probs"] == {"with_mask": 0.75}
        assert (
            store.snapshot_file(newest[0]["id"]).read_bytes() == b"jpeg"
            and store.snapshot_file(newest[1]["id"]) is None
        )
        (door,) = store.summary(start=now - 3600, end=now + 1)["cameras"]
        assert door["people"] == 3 and door["counts"]["with_mask"] == 2 and door["percent"]["without_mask"] == 33.3
        assert [p["people"] for p in door["series"]] == [1, 2]  # now - 90 s, then now - 30 s and now (same minute)
        text = "".join(store.csv_chunks(camera="door", chunk=2))
        assert [r["track_id"] for r in csv.DictReader(io.StringIO(text))] == ["2", "1", "0"]
        assert store.sweep(30, now=now) == 1 and store.count_people() == 3
        store.save_camera(CameraConfig(name="door", url="a.mp4"))
        store.save_camera(CameraConfig(name="yard", url="b.mp4"))
        store.save_camera(CameraConfig(name="door", url="c.mp4"))  # an update keeps its place
        assert [(c.name, c.url) for c in store.cameras()] == [("door", "c.mp4"), ("yard", "b.mp4")]
        assert store.delete_camera("door") and not store.delete_camera("door")
        assert store.version == SCHEMA_VERSION
    finally:
        store.close()


# the schemas the code before maskwatch.store wrote (monitor/store.py at version 1, serve/store.py unversioned)
OLD_MONITOR = """
CREATE TABLE people (id INTEGER PRIMARY KEY AUTOINCREMENT, camera TEXT NOT NULL, track_id INTEGER NOT NULL,
    first_seen REAL NOT NULL, last_seen REAL NOT NULL, label TEXT NOT NULL, vote_share REAL NOT NULL,
    frames INTEGER NOT NULL, face_px INTEGER NOT NULL, probs TEXT NOT NULL, reason TEXT NOT NULL, snapshot TEXT,
    committed REAL NOT NULL);
CREATE INDEX people_camera_last ON people (camera, last_seen);
CREATE INDEX people_last ON people (last_seen);
CREATE TABLE cameras (name TEXT PRIMARY KEY, config TEXT NOT NULL, position INTEGER NOT NULL, updated REAL NOT NULL);
INSERT INTO people VALUES (7, 'door', 1, 10.0, 12.0, 'with_mask', 0.9, 5, 80, '{"with_mask": 0.9}', 'left', NULL, 13.0);
INSERT INTO cameras VALUES ('door', '{"name": "door", "url": "a.mp4"}', 1, 13.0);
PRAGMA user_version=1;
"""
OLD_EVENTS = """
CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, source TEXT NOT NULL,
    kind TEXT NOT NULL, width INTEGER, height INTEGER, faces INTEGER NOT NULL,
    with_mask INTEGER NOT NULL DEFAULT 0, without_mask INTEGER NOT NULL DEFAULT 0,
    mask_worn_incorrectly INTEGER NOT NULL DEFAULT 0, image TEXT);
CREATE INDEX IF NOT EXISTS events_ts ON events (ts);
CREATE INDEX IF NOT EXISTS events_source_ts ON events (source, ts);
INSERT INTO events VALUES (3, 100.0, 'cam', 'detect', 10, 10, 2, 1, 1, 0, NULL);
"""


def test_files_of_the_previous_schema_open_and_migrate(tmp_path):
    for name, sql in (("monitor.sqlite", OLD_MONITOR), ("events.sqlite", OLD_EVENTS)):
        db = sqlite3.connect(tmp_path / name)
        db.executescript(sql)
        db.close()
    monitor = MonitorStore(tmp_path / "monitor.sqlite")
    assert [(p["id"], p["probs"]) for p in monitor.people()] == [(7, {"with_mask": 0.9})]
    assert [c.name for c in monitor.cameras()] == ["door"] and monitor.version == SCHEMA_VERSION
    assert monitor.add_person(_person("door", 2, 20.0)) == 8  # AUTOINCREMENT goes on from the old rows
    monitor.close()
    events = EventStore(tmp_path / "events.sqlite")
    assert events.stats(0, 3600, "hour")["totals"]["faces"] == 2 and events.add(Event("cam", "detect", {})) == 4
    events.close()
    for name in ("monitor.sqlite", "events.sqlite"):
        db = sqlite3.connect(tmp_path / name)
        steps = db.execute("SELECT version FROM maskwatch_schema ORDER BY version").fetchall()
        assert steps == [(v,) for v in range(1 if name == "events.sqlite" else 2, SCHEMA_VERSION + 1)]
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        db.close()


def test_a_newer_store_is_refused(store_url):
    from sqlalchemy import text

    db = open_database(store_url)
    with db.write() as conn:
        conn.execute(text("INSERT INTO maskwatch_schema VALUES (:v, 0, 'from the future')"), {"v": SCHEMA_VERSION + 1})
    db.close()
    with pytest.raises(StoreVersionError, match=f"schema version {SCHEMA_VERSION + 1} is newer"):
        EventStore(store_url)


def test_servers_starting_at_once_migrate_once(postgres_url):
    from sqlalchemy import text

    from postgres_server import new_database

    url = new_database(postgres_url)
    errors: list[BaseException] = []

    def start() -> None:
        try:
            EventStore(url).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    db = open_database(url)
    with db.read() as conn:
        assert conn.execute(text("SELECT version FROM maskwatch_schema ORDER BY 1")).scalars().all() == list(
            range(1, SCHEMA_VERSION + 1)
        )
    db.close()


WRITER = """
import sys
from maskwatch.serve.store import Event, EventStore
store = EventStore(sys.argv[1])
ids = [store.add(Event(sys.argv[2], "detect", {"with_mask": 1})) for _ in range(int(sys.argv[3]))]
store.close()
print(len(set(ids)))
"""


def test_concurrent_writers_threads_and_processes_lose_nothing(store_url):
    store = EventStore(store_url)
    env = {**os.environ, "PYTHONPATH": SRC}
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, store_url, f"proc{i}", "60"], stdout=subprocess.PIPE, env=env)
        for i in range(2)
    ]
    ids: list[int] = []
    lock = threading.Lock()

    def write(n: int) -> None:
        mine = [store.add(Event(f"thread{n}", "detect", {"without_mask": 1})) for _ in range(40)]
        with lock:
            ids.extend(mine)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0] and [o.split() for o in outs] == [[b"60"], [b"60"]]
    assert len(set(ids)) == 320
    text = "".join(store.csv_chunks(0, 4e9, chunk=500))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 440 and len({r["id"] for r in rows}) == 440
    assert sorted({r["source"] for r in rows}) == sorted(
        [f"proc{i}" for i in range(2)] + [f"thread{n}" for n in range(8)]
    )
    store.close()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "--store is empty"),
        ("mysql://u:hunter2@db/x", "mysql:// is not a store maskwatch knows"),
        ("sqlite://", "a SQLite store is a file"),
        ("sqlite:///:memory:", "a SQLite store is a file"),
        ("postgresql://u:hunter2@127.0.0.1:notaport/x", "is not a valid URL"),
        ("postgresql://u:hunter2@127.0.0.1:5432", "names no database"),
    ],
)
def test_bad_store_urls_are_one_line_without_the_password(url, message):
    with pytest.raises(MaskwatchError, match=message) as info:
        EventStore(url)
    assert "hunter2" not in str(info.value) and "\n" not in str(info.value)


def test_an_unreachable_server_is_one_line_without_the_password():
    pytest.importorskip("psycopg", reason="psycopg is not installed (pip install '.[scale]')")
    from maskwatch.serve.local import free_port

    with pytest.raises(MaskwatchError, match=r"store postgresql://u:\*\*\*@127.0.0.1") as info:
        EventStore(f"postgresql://u:hunter2@127.0.0.1:{free_port()}/x")
    assert "hunter2" not in str(info.value) and "\n" not in str(info.value)


def test_without_psycopg_a_postgresql_url_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if the scale extra were not installed
    with pytest.raises(MaskwatchError, match=SCALE_HINT.replace("[", r"\[").replace("]", r"\]")):
        parse_store("postgresql://u@127.0.0.1/x")
    assert parse_store("runs/x.sqlite").path == Path("runs/x.sqlite")  # SQLite needs nothing extra


def test_serve_refuses_a_bad_store_before_the_model_loads(tmp_path):
    env = {**os.environ, "PYTHONPATH": SRC, "MASKWATCH_STORE": "mysql://u:hunter2@db/x"}
    out = subprocess.run(
        [sys.executable, "-m", "maskwatch", "serve", "--db", str(tmp_path / "e.sqlite")],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert out.returncode == 2, out.stderr
    assert "is not a store maskwatch knows" in out.stderr + out.stdout and "hunter2" not in out.stderr + out.stdout
    assert "Traceback" not in out.stderr


def test_serve_help_names_the_store_option():
    """The help renders (rich markup: no bracketed words in option help) and shows --store and its variable."""
    from typer.testing import CliRunner

    from maskwatch.cli import app

    out = CliRunner().invoke(app, ["serve", "--help"], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    assert "--store" in out.output and "MASKWATCH_STORE" in out.output and "HOST:PORT/PREFIX" in out.output
