"""Alerts: a person event that matches a camera's rule becomes an alert, sent to webhooks and MQTT brokers.

The alert and one delivery row per target are committed to SQLite (WAL, ``synchronous=FULL``) before
``Alerter.consider`` returns; sending happens later, on one background thread per target, so a slow or failing
receiver never stalls a camera. Each delivery is ``pending`` until its target acknowledges it (``delivered``: a 2xx
answer, an MQTT PUBACK) or the retry schedule runs out (``failed``, with its attempts, last error and last attempt
time kept). Deliveries still pending when the process ends are resumed by the next ``Alerter`` on the same
database. Delivery is at least once: a receiver may see an alert twice (its ``alert`` id tells them apart).
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import re
import sqlite3
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from maskwatch.errors import MaskwatchError
from maskwatch.labels import CANONICAL_LABELS, MASK_WORN_INCORRECTLY, WITHOUT_MASK

log = logging.getLogger(__name__)

STATES = ("pending", "delivered", "failed")
KINDS = ("webhook", "mqtt")
DEFAULT_RETRY_DELAYS = (1.0, 2.0, 5.0, 15.0, 30.0, 60.0, 120.0)
MQTT_DEFAULT_PORT = 1883
_BUSY_MS = 10_000  # how long a write waits for another writer of the same file (the event store, other threads)
_IDLE_POLL = 5.0  # a sender re-reads its queue at least this often even when nothing wakes it
_TOPIC_BAD = re.compile(r"[^A-Za-z0-9_.\-]")

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    camera TEXT NOT NULL, person NOT NULL, label TEXT NOT NULL, vote_share REAL, frames INTEGER,
    time REAL NOT NULL, first_seen REAL, face_px REAL, snapshot TEXT,  -- time: the person's last_seen
    created REAL NOT NULL, body TEXT NOT NULL,  -- body: the JSON every target gets
    UNIQUE (camera, person)
);
CREATE INDEX IF NOT EXISTS alerts_camera_label_time ON alerts (camera, label, time);
CREATE TABLE IF NOT EXISTS alert_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    alert INTEGER NOT NULL REFERENCES alerts (id), kind TEXT NOT NULL, address TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ({", ".join(repr(s) for s in STATES)})),
    attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, last_attempt REAL, next_attempt REAL NOT NULL,
    delivered_at REAL,
    UNIQUE (alert, kind, address)
);
CREATE INDEX IF NOT EXISTS alert_deliveries_queue ON alert_deliveries (kind, address, state, next_attempt);
"""


def iso(ts: float | None) -> str | None:
    """ISO 8601 UTC with milliseconds, or None."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def topic_name(camera: str) -> str:
    """A camera name as one MQTT topic level: anything but letters, digits, ``_ . -`` becomes ``_``."""
    return _TOPIC_BAD.sub("_", camera) or "_"


# ---------------------------------------------------------------------------------------------------- rules


@dataclass(frozen=True)
class AlertRule:
    """When a camera's person event becomes an alert. Checks itself; each error names its field."""

    labels: tuple[str, ...] = (WITHOUT_MASK, MASK_WORN_INCORRECTLY)
    min_frames: int = 5  # the person's track was seen in at least this many frames
    min_share: float = 0.5  # the label's share of the track's votes
    cooldown: float = 60.0  # seconds: at most one alert per camera and label within this time

    FIELDS = ("labels", "min_frames", "min_share", "cooldown")

    def __post_init__(self) -> None:
        labels = self.labels
        if isinstance(labels, str) or not isinstance(labels, Sequence):
            raise MaskwatchError(f"alerts.labels must be a list of labels (got {labels!r})")
        for label in labels:
            if label not in CANONICAL_LABELS:
                raise MaskwatchError(f"alerts.labels: unknown label {label!r} (known: {', '.join(CANONICAL_LABELS)})")
        object.__setattr__(self, "labels", tuple(dict.fromkeys(labels)))
        if isinstance(self.min_frames, bool) or not isinstance(self.min_frames, int) or self.min_frames < 1:
            raise MaskwatchError(f"alerts.min_frames must be a whole number of at least 1 (got {self.min_frames!r})")
        if not _number(self.min_share) or not 0 <= self.min_share <= 1:
            raise MaskwatchError(f"alerts.min_share must be a number between 0 and 1 (got {self.min_share!r})")
        if not _number(self.cooldown) or self.cooldown < 0:
            raise MaskwatchError(f"alerts.cooldown must be a number of seconds, 0 or more (got {self.cooldown!r})")
        object.__setattr__(self, "min_share", float(self.min_share))
        object.__setattr__(self, "cooldown", float(self.cooldown))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> AlertRule:
        """From a camera's ``[cameras.alerts]`` TOML table; missing keys keep their defaults."""
        if d is None:
            return cls()
        if not isinstance(d, Mapping):
            raise MaskwatchError(f"alerts must be a table (got {d!r})")
        unknown = sorted(set(d) - set(cls.FIELDS))
        if unknown:
            raise MaskwatchError(f"alerts: unknown key {unknown[0]!r} (known: {', '.join(cls.FIELDS)})")
        return cls(**{k: (tuple(v) if k == "labels" and isinstance(v, list) else v) for k, v in d.items()})

    def matches(self, person: Mapping[str, Any]) -> bool:
        """The label, track length and vote share test (the cooldown is the Alerter's, it needs the log)."""
        return (
            person["label"] in self.labels
            and int(person["frames"]) >= self.min_frames
            and float(person["vote_share"]) >= self.min_share
        )

    def to_dict(self) -> dict:
        return {"labels": list(self.labels), "min_frames": self.min_frames, "min_share": self.min_share,
                "cooldown": self.cooldown}  # fmt: skip


def _number(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


# ---------------------------------------------------------------------------------------------------- targets


@dataclass(frozen=True)
class Target:
    """Where alerts go: ``webhook`` (an http(s) URL) or ``mqtt`` (``host:port[/prefix]``)."""

    kind: str
    address: str

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise MaskwatchError(f"alert target kind must be one of {', '.join(KINDS)} (got {self.kind!r})")

    @property
    def name(self) -> str:
        return f"{self.kind} {self.address}"

    def mqtt_parts(self) -> tuple[str, int, str | None]:
        """(host, port, topic prefix or None) of an MQTT target."""
        return _split_mqtt(self.address)


def parse_webhook(url: str) -> Target:
    """``--webhook URL``: an http:// or https:// URL with a host."""
    url = url.strip()
    try:
        parts = urllib.parse.urlsplit(url)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:  # a bad port
        ok = False
    if not ok:
        raise MaskwatchError(f"--webhook must be an http:// or https:// URL with a host (got {url!r})")
    return Target("webhook", url)


def parse_mqtt(address: str) -> Target:
    """``--mqtt HOST[:PORT][/PREFIX]`` (port 1883 when left out; ``[::1]:1883`` for IPv6)."""
    address = address.strip()
    _split_mqtt(address)
    return Target("mqtt", address)


def _split_mqtt(address: str) -> tuple[str, int, str | None]:
    hostport, _, prefix = address.partition("/")
    try:
        parts = urllib.parse.urlsplit("//" + hostport)
        host, port = parts.hostname, parts.port
    except ValueError:  # a bad port, a bad [IPv6] address
        host = port = None
    if not host or port == 0 or "@" in hostport or not re.fullmatch(r"[a-z0-9_.\-]+|[0-9a-f:.]+", host):
        raise MaskwatchError(f"--mqtt must be HOST:PORT or HOST:PORT/PREFIX, port 1-65535 (got {address!r})")
    prefix = prefix.strip("/")
    if "+" in prefix or "#" in prefix or "//" in prefix:
        raise MaskwatchError(f"--mqtt topic prefix may not hold '+', '#' or empty levels (got {address!r})")
    return host, port or MQTT_DEFAULT_PORT, prefix or None


# ---------------------------------------------------------------------------------------------------- alerter

_PERSON_KEYS = ("id", "camera", "label", "vote_share", "frames", "last_seen")


class Alerter:
    """Turns person events into alerts (``consider``), keeps them in the monitor's database and sends them.

    Thread-safe: every camera's worker may call ``consider``; the dashboard calls ``alerts``.
    """

    def __init__(
        self,
        db: str | Path,
        targets: Sequence[Target],
        *,
        topic_prefix: str = "maskwatch",
        retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
        timeout: float = 5.0,
        public_url: str | None = None,
    ) -> None:
        if not all(_number(d) and d >= 0 for d in retry_delays):
            raise MaskwatchError(f"alert retry delays must be seconds, 0 or more (got {list(retry_delays)!r})")
        if not _number(timeout) or timeout <= 0:
            raise MaskwatchError(f"alert timeout must be more than 0 seconds (got {timeout!r})")
        self.path = Path(db)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.targets = tuple(dict.fromkeys(targets))
        self.topic_prefix = topic_prefix.strip("/") or "maskwatch"
        self.retry_delays = tuple(float(d) for d in retry_delays)
        self.timeout = float(timeout)
        self.public_url = public_url.rstrip("/") if public_url else None
        self._lock = threading.Lock()
        self._db = _connect(self.path)
        self._db.executescript(_SCHEMA)
        self._stop = threading.Event()
        self._senders = [_Sender(self, t) for t in self.targets]
        self._closed = False
        for kind, address, n in self._db.execute(
            "SELECT kind, address, COUNT(*) FROM alert_deliveries WHERE state = 'pending' GROUP BY kind, address"
        ).fetchall():
            if Target(kind, address) not in self.targets:
                log.warning("%d alert deliveries to %s %s stay pending: not a target now", n, kind, address)
        for sender in self._senders:
            sender.thread.start()

    # -- the camera side

    def consider(self, person: Mapping[str, Any], rule: AlertRule) -> int | None:
        """The new alert's id when ``person`` matches ``rule`` (and its camera and label are out of cooldown, and the
        person has no alert yet); None otherwise. The alert and its deliveries are committed before this returns;
        nothing here waits on the network."""
        missing = [k for k in _PERSON_KEYS if person.get(k) is None]
        if missing:
            raise ValueError(f"person event lacks {', '.join(missing)}")
        if not rule.matches(person):
            return None
        camera, label, last_seen = str(person["camera"]), str(person["label"]), float(person["last_seen"])
        now = time.time()
        with self._lock:
            if self._closed:
                raise RuntimeError("Alerter is closed")
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                seen = db.execute(
                    "SELECT 1 FROM alerts WHERE camera = ? AND person = ?", (camera, person["id"])
                ).fetchone()
                recent = (
                    rule.cooldown > 0
                    and db.execute(
                        "SELECT 1 FROM alerts WHERE camera = ? AND label = ? AND time > ? AND time < ? LIMIT 1",
                        (camera, label, last_seen - rule.cooldown, last_seen + rule.cooldown),
                    ).fetchone()
                )
                if seen or recent:
                    db.execute("ROLLBACK")
                    return None
                cur = db.execute(
                    "INSERT INTO alerts (camera, person, label, vote_share, frames, time, first_seen, face_px, "
                    "snapshot, created, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '')",
                    (camera, person["id"], label, float(person["vote_share"]), int(person["frames"]), last_seen,
                     _float(person.get("first_seen")), _float(person.get("face_px")), person.get("snapshot"), now),
                )  # fmt: skip
                alert_id = int(cur.lastrowid or 0)
                body = json.dumps(self._body(alert_id, person), separators=(",", ":"))
                db.execute("UPDATE alerts SET body = ? WHERE id = ?", (body, alert_id))
                db.executemany(
                    "INSERT INTO alert_deliveries (alert, kind, address, next_attempt) VALUES (?, ?, ?, ?)",
                    [(alert_id, t.kind, t.address, now) for t in self.targets],
                )
                db.execute("COMMIT")  # synchronous=FULL: on disk when this returns
            except BaseException:
                db.execute("ROLLBACK")
                raise
        for sender in self._senders:
            sender.wake.set()
        return alert_id

    def _body(self, alert_id: int, person: Mapping[str, Any]) -> dict:
        snapshot = str(person.get("snapshot") or "")
        if snapshot and not re.match(r"https?://", snapshot):  # relative: the monitor's own URL in front, if known
            snapshot = f"{self.public_url}/{snapshot.lstrip('/')}" if self.public_url else ""
        snapshot_url = snapshot or None
        return {
            "alert": alert_id, "camera": str(person["camera"]), "person": person["id"], "label": str(person["label"]),
            "vote_share": round(float(person["vote_share"]), 4), "frames": int(person["frames"]),
            "time": iso(float(person["last_seen"])), "first_seen": iso(_float(person.get("first_seen"))),
            "snapshot_url": snapshot_url,
        }  # fmt: skip

    # -- the dashboard side

    def alerts(self, camera: str | None = None, limit: int = 100, before: int | None = None) -> list[dict]:
        """Newest first (``before``: only alerts with a smaller id, for paging), each with its deliveries and
        ``state``: ``delivered`` when every target has it, ``failed`` when one gave up, else ``pending`` (``none``
        without targets)."""
        limit = max(1, min(int(limit), 10_000))
        where = [(cond, v) for cond, v in (("camera = ?", camera), ("id < ?", before)) if v is not None]
        sql = (
            "SELECT id, camera, person, label, vote_share, frames, time, first_seen, face_px, snapshot, created, body "
            f"FROM alerts {'WHERE ' + ' AND '.join(c for c, _ in where) if where else ''} ORDER BY id DESC LIMIT ?"
        )
        args = [v for _, v in where]
        with self._lock:
            rows = self._db.execute(sql, [*args, limit]).fetchall()
            ids = [r[0] for r in rows]
            deliveries: dict[int, list[dict]] = {i: [] for i in ids}
            if ids:
                marks = ", ".join("?" * len(ids))
                for alert, kind, address, state, attempts, error, last, delivered in self._db.execute(
                    "SELECT alert, kind, address, state, attempts, last_error, last_attempt, delivered_at "
                    f"FROM alert_deliveries WHERE alert IN ({marks}) ORDER BY id",
                    ids,
                ):
                    deliveries[alert].append({
                        "target": f"{kind} {address}", "kind": kind, "address": address, "state": state,
                        "attempts": attempts, "last_error": error, "last_attempt": iso(last),
                        "delivered_at": iso(delivered),
                    })  # fmt: skip
        out = []
        for aid, cam, person, label, share, frames, ts, first, face_px, snapshot, created, body in rows:
            states = {d["state"] for d in deliveries[aid]}
            state = next((x for x in ("failed", "pending", "delivered") if x in states), "none")
            out.append({
                "id": aid, "camera": cam, "person": person, "label": label, "vote_share": share, "frames": frames,
                "time": iso(ts), "first_seen": iso(first), "face_px": face_px, "snapshot": snapshot,
                "snapshot_url": json.loads(body).get("snapshot_url") if body else None, "created": iso(created),
                "state": state, "deliveries": deliveries[aid],
            })  # fmt: skip
        return out

    def close(self, timeout: float = 5.0) -> None:
        """Stop the senders (waiting up to ``timeout`` seconds in all); what is still pending stays pending in the
        database and the next Alerter on it resumes it."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._stop.set()
        deadline = time.monotonic() + timeout
        for sender in self._senders:
            sender.wake.set()
        for sender in self._senders:
            sender.thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            self._db.close()

    def __enter__(self) -> Alerter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _float(x: object) -> float | None:
    return None if x is None else float(x)  # type: ignore[arg-type]


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=_BUSY_MS / 1000)
    db.execute(f"PRAGMA busy_timeout={_BUSY_MS}")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    return db


# ---------------------------------------------------------------------------------------------------- senders


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer that is not 2xx: urllib would turn the POST into a GET and drop the body."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


class _Sender:
    """One thread per target: takes its due pending deliveries in order, one at a time."""

    def __init__(self, alerter: Alerter, target: Target) -> None:
        self.alerter, self.target = alerter, target
        self.wake, self._connected = threading.Event(), threading.Event()
        self._mqtt: Any = None
        self.thread = threading.Thread(target=self._run, name=f"alerts {target.name}", daemon=True)

    def _run(self) -> None:
        a = self.alerter
        db = None
        try:
            db = _connect(a.path)
            if self.target.kind == "mqtt":
                self._mqtt_start()
            while not a._stop.is_set():
                self.wake.clear()
                row = db.execute(
                    "SELECT d.id, d.attempts, a.body, a.camera FROM alert_deliveries d JOIN alerts a ON a.id = d.alert "
                    "WHERE d.kind = ? AND d.address = ? AND d.state = 'pending' AND d.next_attempt <= ? "
                    "ORDER BY d.next_attempt, d.id LIMIT 1",
                    (self.target.kind, self.target.address, time.time()),
                ).fetchone()
                if row is None:
                    (due,) = db.execute(
                        "SELECT MIN(next_attempt) FROM alert_deliveries WHERE kind = ? AND address = ? "
                        "AND state = 'pending'",
                        (self.target.kind, self.target.address),
                    ).fetchone()
                    wait = _IDLE_POLL if due is None else min(_IDLE_POLL, max(0.0, due - time.time()))
                    self.wake.wait(wait)
                    continue
                delivery, attempts, body, camera = row
                self._record(db, delivery, attempts + 1, self._send(body, camera))
        except Exception:  # a sender must not die silently; what it had stays pending for the next start
            log.exception("alert sender for %s stopped", self.target.name)
        finally:
            self._mqtt_stop()
            if db is not None:
                db.close()

    def _record(self, db: sqlite3.Connection, delivery: int, attempts: int, error: str | None) -> None:
        now = time.time()
        delays = self.alerter.retry_delays  # after the n-th failed attempt: the n-th delay, jittered by ±20%
        delay = None if error is None or attempts > len(delays) else delays[attempts - 1] * random.uniform(0.8, 1.2)
        state = "delivered" if error is None else "failed" if delay is None else "pending"
        if state == "failed":
            log.warning("alert delivery %d to %s failed after %d attempts: %s", delivery, self.target.name,
                        attempts, error)  # fmt: skip
        db.execute(
            "UPDATE alert_deliveries SET state = ?, attempts = ?, last_error = ?, last_attempt = ?, next_attempt = ?, "
            "delivered_at = ? WHERE id = ?",
            (state, attempts, error and error[:500], now, now + (delay or 0), now if error is None else None, delivery),
        )

    def _send(self, body: str, camera: str) -> str | None:
        """One attempt: None when acknowledged, else the reason (one line)."""
        try:
            if self.target.kind == "webhook":
                return self._post(body)
            return self._publish(body, camera)
        except Exception as e:  # any failure is one failed attempt, never the thread's end
            return f"{type(e).__name__}: {e}".splitlines()[0]

    def _post(self, body: str) -> str | None:
        request = urllib.request.Request(
            self.target.address,
            data=body.encode(),
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "maskwatch-alerts"},
        )
        try:
            with _OPENER.open(request, timeout=self.alerter.timeout) as response:
                status = response.status
                response.read(65536)
        except urllib.error.HTTPError as e:
            return f"HTTP {e.code} {e.reason}"
        except urllib.error.URLError as e:
            return f"{e.reason}"
        except TimeoutError:
            return f"no answer within {self.alerter.timeout:g} s"
        return None if 200 <= status < 300 else f"HTTP {status}"

    # -- MQTT

    def _mqtt_start(self) -> None:
        import paho.mqtt.client as mqtt  # only when a broker is configured

        host, port, _ = self.target.mqtt_parts()
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"maskwatch-alerts-{os.getpid()}-{id(self)}")
        client.reconnect_delay_set(1, 30)
        client.on_connect = self._on_connect
        client.on_disconnect = lambda *_: self._connected.clear()
        client.connect_async(host, port, keepalive=30)
        client.loop_start()  # paho's own network thread: connects, reconnects, resends unacknowledged messages
        self._mqtt = client

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if not reason_code.is_failure:
            self._connected.set()
            self.wake.set()

    def _mqtt_stop(self) -> None:
        if self._mqtt is not None:
            self._mqtt.disconnect()
            self._mqtt.loop_stop()
            self._mqtt = None

    def _publish(self, body: str, camera: str) -> str | None:
        import paho.mqtt.client as mqtt

        host, port, prefix = self.target.mqtt_parts()
        if not self._connected.wait(self.alerter.timeout):
            return f"not connected to the MQTT broker {host}:{port}"
        topic = f"{prefix or self.alerter.topic_prefix}/{topic_name(camera)}/alerts"
        info = self._mqtt.publish(topic, body, qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            return f"publish failed: {mqtt.error_string(info.rc)}"
        info.wait_for_publish(self.alerter.timeout)
        if not info.is_published():
            return f"no acknowledgement from the MQTT broker within {self.alerter.timeout:g} s"
        return None
