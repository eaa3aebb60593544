"""Alerts with real parts: rules, HTTP receivers on loopback (good, flaky, silent), restarts on the same database,
and a real mosquitto broker with a paho subscriber. Short retry delays; every wait is a poll with a deadline."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from alert_helpers import T0, Receiver, person, wait_for
from maskwatch.errors import MaskwatchError
from maskwatch.monitor import alerts as alerts_module
from maskwatch.monitor.alerts import Alerter, AlertRule, Target, parse_mqtt, parse_webhook, topic_name
from maskwatch.store.schema import SCHEMA_VERSION

FAST = (0.05, 0.1)


def delivery(alerter: Alerter, alert_id: int, kind: str = "webhook") -> dict:
    (alert,) = [a for a in alerter.alerts(limit=1000) if a["id"] == alert_id]
    (d,) = [d for d in alert["deliveries"] if d["kind"] == kind] or [None]
    return d


# ---------------------------------------------------------------------------------------------------- receivers


@pytest.fixture
def receivers():
    made: list[Receiver] = []

    def make(statuses=(200,), delay: float = 0.0, hold: int = 0) -> Receiver:
        made.append(Receiver(statuses, delay, hold))
        return made[-1]

    yield make
    for r in made:
        r.close()


@pytest.fixture
def alerters(tmp_path):
    made: list[Alerter] = []

    def make(targets=(), db: Path | None = None, **kw) -> Alerter:
        kw.setdefault("retry_delays", FAST)
        kw.setdefault("timeout", 1.0)
        made.append(Alerter(db or tmp_path / "monitor.db", list(targets), **kw))
        return made[-1]

    yield make
    for a in made:
        a.close(timeout=2.0)


# ---------------------------------------------------------------------------------------------------- rules


def test_rule_defaults_and_toml_table():
    rule = AlertRule()
    assert rule.labels == ("without_mask", "mask_worn_incorrectly")
    assert (rule.min_frames, rule.min_share, rule.cooldown) == (5, 0.5, 60.0)
    assert AlertRule.from_dict(None) == rule
    custom = AlertRule.from_dict({"labels": ["without_mask"], "min_frames": 10, "min_share": 0.7, "cooldown": 0})
    assert custom == AlertRule(("without_mask",), 10, 0.7, 0.0)
    assert AlertRule.from_dict(custom.to_dict()) == custom
    assert AlertRule.from_dict({"labels": []}).labels == ()  # a camera with alerts off


@pytest.mark.parametrize(
    ("table", "field"),
    [
        ({"labels": "without_mask"}, "alerts.labels"),
        ({"labels": ["no-mask"]}, "alerts.labels"),
        ({"min_frames": 0}, "alerts.min_frames"),
        ({"min_frames": 2.5}, "alerts.min_frames"),
        ({"min_frames": True}, "alerts.min_frames"),
        ({"min_share": 1.5}, "alerts.min_share"),
        ({"min_share": "high"}, "alerts.min_share"),
        ({"min_share": float("nan")}, "alerts.min_share"),
        ({"cooldown": -1}, "alerts.cooldown"),
        ({"cooldown": float("inf")}, "alerts.cooldown"),
        ({"cooldwn": 5}, "cooldwn"),
    ],
)
def test_rule_refuses_bad_values(table, field):
    with pytest.raises(MaskwatchError, match=field) as info:
        AlertRule.from_dict(table)
    assert "\n" not in str(info.value)


def test_targets_parsed_and_checked():
    assert parse_webhook("https://hooks.example/x?a=1") == Target("webhook", "https://hooks.example/x?a=1")
    assert parse_mqtt("broker:1884").mqtt_parts() == ("broker", 1884, None)
    assert parse_mqtt("broker").mqtt_parts() == ("broker", 1883, None)
    assert parse_mqtt("[::1]:1883/site/a").mqtt_parts() == ("::1", 1883, "site/a")
    for bad in ("ftp://x", "http://", "hooks.example/x", "http://h:99999/"):
        with pytest.raises(MaskwatchError, match="--webhook"):
            parse_webhook(bad)
    for bad in ("", ":1883", "h:0", "h:x", "h:1:2", "h:1883/a/#", "[nothost]:1"):
        with pytest.raises(MaskwatchError, match="--mqtt"):
            parse_mqtt(bad)
    with pytest.raises(MaskwatchError, match="kind"):
        Target("email", "a@b")
    assert topic_name("front door/1+#") == "front_door_1__"


def test_rule_labels_frames_share_cooldown(alerters):
    a = alerters()
    rule = AlertRule(min_frames=5, min_share=0.5, cooldown=60)
    assert a.consider(person(1, label="with_mask"), rule) is None
    assert a.consider(person(2, frames=4), rule) is None
    assert a.consider(person(3, vote_share=0.49), rule) is None
    first = a.consider(person(4), rule)
    assert first is not None
    assert a.consider(person(4, last_seen=T0 + 500), rule) is None  # one alert per person
    assert a.consider(person(5, last_seen=T0 + 59), rule) is None  # same camera and label: cooling down
    assert a.consider(person(6, label="mask_worn_incorrectly", last_seen=T0 + 1), rule) is not None  # other label
    assert a.consider(person(7, camera="yard", last_seen=T0 + 1), rule) is not None  # other camera
    assert a.consider(person(8, last_seen=T0 + 60), rule) is not None  # cooldown over
    no_cooldown = AlertRule(cooldown=0)
    assert a.consider(person(9, last_seen=T0 + 60), no_cooldown) is not None
    assert [x["person"] for x in a.alerts()] == [9, 8, 7, 6, 4]
    assert [x["person"] for x in a.alerts(camera="door", limit=2)] == [9, 8]
    assert [x["person"] for x in a.alerts(before=first + 2)] == [6, 4]
    assert all(x["state"] == "none" and x["deliveries"] == [] for x in a.alerts())
    with pytest.raises(ValueError, match="last_seen"):
        a.consider({"id": 1, "camera": "door", "label": "without_mask", "vote_share": 1, "frames": 9}, rule)


def test_cooldown_survives_a_restart(alerters, tmp_path):
    rule = AlertRule()
    assert alerters().consider(person(1), rule) is not None
    assert alerters().consider(person(2, last_seen=T0 + 10), rule) is None


# ---------------------------------------------------------------------------------------------------- webhooks


def test_webhook_delivers_the_body(alerters, receivers):
    r = receivers()
    a = alerters([parse_webhook(r.url)], public_url="http://monitor.local:8000/")
    alert_id = a.consider(person(7, camera="front door"), AlertRule())
    wait_for(lambda: delivery(a, alert_id)["state"] == "delivered", what="delivery")
    assert r.bodies == [
        {
            "alert": alert_id,
            "camera": "front door",
            "person": 7,
            "label": "without_mask",
            "vote_share": 0.8,
            "frames": 12,
            "time": "2027-01-15T08:00:00.000Z",
            "first_seen": "2027-01-15T07:59:56.000Z",
            "snapshot_url": "http://monitor.local:8000/api/monitor/snapshots/7.jpg",
        }
    ]
    (alert,) = a.alerts()
    assert alert["state"] == "delivered" and alert["snapshot_url"].endswith("/7.jpg")
    d = alert["deliveries"][0]
    assert (d["attempts"], d["last_error"], d["target"]) == (1, None, f"webhook {r.url}")
    assert d["delivered_at"] is not None


def test_webhook_retries_until_delivered(alerters, receivers):
    r = receivers(statuses=(500, 500, 200))
    a = alerters([parse_webhook(r.url)], retry_delays=(0.05, 0.1, 0.1))
    alert_id = a.consider(person(snapshot=None), AlertRule())
    wait_for(lambda: delivery(a, alert_id)["state"] == "delivered", what="delivery after retries")
    d = delivery(a, alert_id)
    assert d["attempts"] == 3 and r.requests == 3
    assert len(r.bodies) == 1 and r.bodies[0]["snapshot_url"] is None


def test_webhook_fails_after_the_schedule_and_keeps_the_alert(alerters, receivers):
    r = receivers(statuses=(500,))
    a = alerters([parse_webhook(r.url)])
    alert_id = a.consider(person(), AlertRule())
    wait_for(lambda: delivery(a, alert_id)["state"] == "failed", what="failed state")
    d = delivery(a, alert_id)
    assert d["attempts"] == len(FAST) + 1 == r.requests
    assert d["last_error"].startswith("HTTP 500") and d["last_attempt"] is not None
    assert a.alerts()[0]["state"] == "failed"


def test_silent_receiver_stalls_nothing(alerters, receivers):
    silent = receivers(delay=3.0)  # answers long after the sender's timeout
    good = receivers()
    a = alerters([parse_webhook(silent.url), parse_webhook(good.url)], timeout=0.3, retry_delays=(0.05,))
    start = time.monotonic()
    ids = [a.consider(person(i, last_seen=T0 + 100 * i), AlertRule()) for i in range(3)]
    assert time.monotonic() - start < 0.5  # no network on the camera's thread
    wait_for(lambda: len(good.bodies) == 3, what="the good receiver's deliveries")
    states = {d["target"]: d["state"] for d in a.alerts()[-1]["deliveries"]}
    assert states[f"webhook {good.url}"] == "delivered"
    assert states[f"webhook {silent.url}"] in ("pending", "failed")
    for alert_id in ids:
        wait_for(lambda i=alert_id: delivery_by(a, i, silent.url)["state"] == "failed", timeout=8, what="timeouts")
    d = delivery_by(a, ids[0], silent.url)
    assert d["attempts"] == 2
    assert "no answer within 0.3 s" in d["last_error"] or "timed out" in d["last_error"]


def delivery_by(alerter: Alerter, alert_id: int, url: str) -> dict:
    (alert,) = [x for x in alerter.alerts() if x["id"] == alert_id]
    return next(d for d in alert["deliveries"] if d["address"] == url)


def test_alert_is_committed_before_consider_returns(alerters, receivers, tmp_path):
    silent = receivers(delay=3.0)
    a = alerters([parse_webhook(silent.url)], timeout=2.0)
    alert_id = a.consider(person(3), AlertRule())
    other = sqlite3.connect(tmp_path / "monitor.db")
    try:
        row = other.execute("SELECT camera, person, label FROM alerts WHERE id = ?", (alert_id,)).fetchone()
        states = other.execute("SELECT state FROM alert_deliveries WHERE alert = ?", (alert_id,)).fetchall()
        (version,) = other.execute("PRAGMA user_version").fetchone()
    finally:
        other.close()
    assert row == ("door", 3, "without_mask")
    assert states == [("pending",)]
    assert version == SCHEMA_VERSION  # the alert tables are the store's now: its migrations made them


def test_a_restart_resumes_pending_deliveries(alerters, receivers, tmp_path):
    r = receivers(statuses=(500,))
    first = alerters([parse_webhook(r.url)], retry_delays=(0.05,) * 1000)
    alert_id = first.consider(person(5), AlertRule())
    wait_for(lambda: delivery(first, alert_id)["attempts"] >= 2, what="a failed attempt")
    first.close(timeout=2.0)  # mid-retry: the delivery stays pending
    tried = r.requests
    (state,) = sqlite3.connect(tmp_path / "monitor.db").execute("SELECT state FROM alert_deliveries").fetchone()
    assert state == "pending"
    r.statuses = [200]
    second = alerters([parse_webhook(r.url)])
    wait_for(lambda: delivery(second, alert_id)["state"] == "delivered", what="the resumed delivery")
    assert [b["alert"] for b in r.bodies] == [alert_id]
    assert delivery(second, alert_id)["attempts"] >= tried + 1


# ---------------------------------------------------------------------------------------------------- MQTT

MOSQUITTO = shutil.which("mosquitto") or (Path("/usr/sbin/mosquitto").is_file() and "/usr/sbin/mosquitto")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    def __init__(self, folder: Path, port: int) -> None:
        self.port, self.folder = port, folder
        conf = folder / "mosquitto.conf"
        conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
        self.log = open(folder / "mosquitto.log", "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([str(MOSQUITTO), "-c", str(conf)], stdout=self.log, stderr=self.log)

        def up() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"mosquitto ended: {(folder / 'mosquitto.log').read_text()[-500:]}")
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0

        wait_for(up, what="mosquitto to listen")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.log.close()


@pytest.fixture
def broker(tmp_path):
    if not MOSQUITTO:
        pytest.skip("mosquitto is not installed (apt-get install mosquitto; setup.sh does it)")
    pytest.importorskip("paho.mqtt.client")
    b = Broker(tmp_path, free_port())
    yield b
    if b.proc.poll() is None:
        b.stop()


class Subscriber:
    def __init__(self, port: int, topic: str = "#") -> None:
        import paho.mqtt.client as mqtt

        self.messages: list[tuple[str, dict]] = []
        subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="maskwatch-test-subscriber")
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_message = lambda c, u, m: self.messages.append((m.topic, json.loads(m.payload)))
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert subscribed.wait(5), "the test subscriber got no SUBACK"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_mqtt_publishes_per_camera_and_reconnects(alerters, broker, tmp_path):
    sub = Subscriber(broker.port)
    try:
        a = alerters([parse_mqtt(f"127.0.0.1:{broker.port}"), parse_mqtt(f"127.0.0.1:{broker.port}/site7")])
        alert_id = a.consider(person(11, camera="front door/2"), AlertRule())
        wait_for(lambda: len(sub.messages) == 2, what="two MQTT messages")
        topics = sorted(t for t, _ in sub.messages)
        assert topics == ["maskwatch/front_door_2/alerts", "site7/front_door_2/alerts"]
        body = sub.messages[0][1]
        assert (body["alert"], body["camera"], body["person"], body["label"]) == (
            alert_id,
            "front door/2",
            11,
            "without_mask",
        )
        wait_for(lambda: a.alerts()[0]["state"] == "delivered", what="PUBACKs recorded")
    finally:
        sub.close()
        a.close(timeout=2.0)

    # the broker goes away and comes back on the same port: the sender reconnects by itself
    broker.stop()
    a2 = alerters([parse_mqtt(f"127.0.0.1:{broker.port}")], retry_delays=(0.2,) * 50, timeout=0.5)
    later = a2.consider(person(12, last_seen=T0 + 1000), AlertRule())
    wait_for(lambda: delivery(a2, later, "mqtt")["attempts"] >= 1, what="a failed attempt")
    assert delivery(a2, later, "mqtt")["state"] == "pending"
    assert "not connected" in delivery(a2, later, "mqtt")["last_error"]
    restarted = Broker(tmp_path, broker.port)
    try:
        sub = Subscriber(broker.port, "maskwatch/door/alerts")
        try:
            wait_for(lambda: delivery(a2, later, "mqtt")["state"] == "delivered", timeout=10, what="redelivery")
            wait_for(lambda: sub.messages, what="the message after the reconnect")
            assert sub.messages[0][1]["alert"] == later
        finally:
            sub.close()
    finally:
        a2.close(timeout=2.0)
        restarted.stop()


def test_a_killed_monitor_loses_no_alert(alerters, receivers, tmp_path):
    """The process dies (SIGKILL) right after consider returned; the next start delivers the alert (after the
    child's 1 s lease, should its sender have claimed the delivery before the kill)."""
    r = receivers(statuses=(500,))
    db = tmp_path / "monitor.db"
    child = f"""
import os, signal
from maskwatch.monitor.alerts import Alerter, AlertRule, parse_webhook
a = Alerter({str(db)!r}, [parse_webhook({r.url!r})], retry_delays=(60,), timeout=0.3, lease=1.0)
print(a.consider({person(21)!r}, AlertRule()), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""
    src = str(Path(alerts_module.__file__).parents[2])  # this checkout's maskwatch, whatever the venv links to
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=30, env=env)
    assert out.returncode == -signal.SIGKILL, out.stderr
    alert_id = int(out.stdout)
    r.statuses = [200]
    a = alerters([parse_webhook(r.url)])
    wait_for(lambda: delivery(a, alert_id)["state"] == "delivered", what="the delivery after the kill")
    assert [b["alert"] for b in r.bodies] == [alert_id] and r.bodies[0]["person"] == 21


def test_cameras_racing_get_one_alert_per_cooldown(alerters):
    a = alerters()
    rule = AlertRule(cooldown=60)
    barrier = threading.Barrier(8)
    results: list[int | None] = []

    def camera_thread(i: int) -> None:
        barrier.wait(5)
        results.append(a.consider(person(100 + i, last_seen=T0 + i), rule))

    threads = [threading.Thread(target=camera_thread, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(results) == 8 and sum(x is not None for x in results) == 1
    assert len(a.alerts()) == 1
