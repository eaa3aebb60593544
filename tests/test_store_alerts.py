"""Alerts in the event store on SQLite and a real PostgreSQL: the tables read back alike, an old monitor.sqlite
keeps its alerts, two Alerters on one store (two servers) deliver every alert exactly once, and a claim held by a
closed Alerter is taken over by the other."""

from __future__ import annotations

import sqlite3

import pytest

from alert_helpers import T0, person, wait_for
from maskwatch.monitor.alerts import Alerter, AlertRule, parse_webhook
from maskwatch.store.schema import open_database
from test_alerts import receivers  # noqa: F401 - the fixture

OLD_ALERTS = """
CREATE TABLE alerts (id INTEGER PRIMARY KEY AUTOINCREMENT, camera TEXT NOT NULL, person NOT NULL,
    label TEXT NOT NULL, vote_share REAL, frames INTEGER, time REAL NOT NULL, first_seen REAL, face_px REAL,
    snapshot TEXT, created REAL NOT NULL, body TEXT NOT NULL, UNIQUE (camera, person));
CREATE INDEX alerts_camera_label_time ON alerts (camera, label, time);
CREATE TABLE alert_deliveries (id INTEGER PRIMARY KEY AUTOINCREMENT, alert INTEGER NOT NULL REFERENCES alerts (id),
    kind TEXT NOT NULL, address TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, last_attempt REAL, next_attempt REAL NOT NULL,
    delivered_at REAL, UNIQUE (alert, kind, address));
CREATE INDEX alert_deliveries_queue ON alert_deliveries (kind, address, state, next_attempt);
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.sqlite'}"
    from postgres_server import new_database

    return new_database(request.getfixturevalue("postgres_url"))


def test_two_alerters_on_one_store_deliver_each_alert_once(store_url, receivers):  # noqa: F811
    r = receivers(delay=0.01)
    dbs = [open_database(store_url), open_database(store_url)]  # two servers' engines
    pair = [Alerter(db, [parse_webhook(r.url)], retry_delays=(0.05,), timeout=1.0) for db in dbs]
    try:
        ids = [
            a.consider(person(100 * k + i, camera=f"cam{k}", last_seen=T0 + 100 * i), AlertRule())
            for i in range(10)
            for k, a in enumerate(pair)
        ]
        assert None not in ids
        wait_for(lambda: all(x["state"] == "delivered" for x in pair[0].alerts(limit=100)), 20, "deliveries")
        assert len(pair[1].alerts(limit=100)) == 20  # one shared log
        assert sorted(b["alert"] for b in r.bodies) == sorted(ids) and r.requests == 20
    finally:
        for a in pair:
            a.close(timeout=2.0)
        for db in dbs:
            db.close()


def test_a_closed_alerters_claim_goes_to_the_other(store_url, receivers):  # noqa: F811
    r = receivers(hold=1)
    dbs = [open_database(store_url), open_database(store_url)]
    try:
        first = Alerter(dbs[0], [parse_webhook(r.url)], retry_delays=(0.05,), timeout=3.0, lease=7.0)
        alert_id = first.consider(person(5), AlertRule())
        wait_for(lambda: r.requests == 1, what="the first sender's request")
        with dbs[0].read() as conn:
            owner = conn.exec_driver_sql("SELECT owner FROM alert_deliveries").scalar_one()
        assert owner == first.owner
        first.close(timeout=0.2)  # its sender still waits on the receiver: the claim is handed back
        second = Alerter(dbs[1], [parse_webhook(r.url)], retry_delays=(0.05,), timeout=1.0)
        wait_for(lambda: second.alerts()[0]["state"] == "delivered", 10, "the other's delivery")
        r.release.set()  # the first sender's answer (503) comes late: its claim is gone, nothing is written
        wait_for(lambda: not first._senders[0].thread.is_alive(), 10, "the first sender to end")
        (d,) = second.alerts()[0]["deliveries"]
        assert (d["state"], d["attempts"]) == ("delivered", 1) and [b["alert"] for b in r.bodies] == [alert_id]
        second.close(timeout=2.0)
    finally:
        for db in dbs:
            db.close()


def test_an_old_monitor_file_keeps_its_alerts(tmp_path, receivers):  # noqa: F811
    r = receivers()
    path = tmp_path / "monitor.sqlite"
    old = sqlite3.connect(path)
    old.executescript(OLD_ALERTS)
    old.execute("INSERT INTO alerts VALUES (4, 'door', 9, 'without_mask', 0.8, 12, ?, NULL, 64, NULL, ?, ?)",
                (T0, T0, '{"alert": 4}'))  # fmt: skip
    old.execute("INSERT INTO alert_deliveries (alert, kind, address, next_attempt) VALUES (4, 'webhook', ?, 0)",
                (r.url,))  # fmt: skip
    old.commit()
    old.close()
    with Alerter(path, [parse_webhook(r.url)], retry_delays=(0.05,), timeout=1.0) as a:
        wait_for(lambda: a.alerts()[0]["state"] == "delivered", what="the old pending delivery")
        assert [(x["id"], x["person"]) for x in a.alerts()] == [(4, 9)] and r.bodies == [{"alert": 4}]
        assert a.consider(person(10, last_seen=T0 + 1000), AlertRule()) == 5  # AUTOINCREMENT goes on
