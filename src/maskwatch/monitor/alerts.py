"""Alerts: a person event that matches a camera's rule becomes an alert, sent to webhooks and MQTT brokers.

The alert and one delivery row per target are committed to the event store (``maskwatch.store``: the monitor's
SQLite file or the shared PostgreSQL; the SQL is ``store/alerts.py``) before ``Alerter.consider`` returns; sending
happens later, on one background thread per target, so a slow or failing receiver never stalls a camera. Each
delivery is ``pending`` until its target acknowledges it (``delivered``: a 2xx answer, an MQTT PUBACK) or the retry
schedule runs out (``failed``, with its attempts, last error and last attempt time kept).

A sender claims a delivery (for ``lease`` seconds) before sending it, so when several servers share one store
each delivery is sent by one of them; a claim whose server was killed runs out and another server (or the next
start) takes the delivery over. Deliveries still pending when a process ends are resumed by any ``Alerter`` on
the same store with that target. Delivery is at least once: a receiver may see an alert twice (after a crash
between its answer and the record; its ``alert`` id tells them apart).
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import re
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DBAPIError

from maskwatch.errors import MaskwatchError
from maskwatch.labels import CANONICAL_LABELS, MASK_WORN_INCORRECTLY, WITHOUT_MASK
from maskwatch.store.alerts import AlertLog, Claimed, iso
from maskwatch.store.engine import Database, StoreTarget
from maskwatch.store.schema import DELIVERY_STATES, migrate, open_database

log = logging.getLogger(__name__)

STATES = DELIVERY_STATES
KINDS = ("webhook", "mqtt")
DEFAULT_RETRY_DELAYS = (1.0, 2.0, 5.0, 15.0, 30.0, 60.0, 120.0)
DEFAULT_LEASE = 60.0  # seconds a sender holds a delivery it is sending; another takes it over after that
MQTT_DEFAULT_PORT = 1883
_IDLE_POLL = 5.0  # a sender re-reads its queue at least this often (other servers' new alerts wake it no other way)
_TOPIC_BAD = re.compile(r"[^A-Za-z0-9_.\-]")


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
    """Turns person events into alerts (``consider``), keeps them in the event store and sends them.

    ``db``: the store's ``Database`` (the monitor's: ``MonitorStore.db``; shared, the caller closes it), or a store
    URL or SQLite path that the Alerter opens (migrated) and closes itself. Thread-safe: every camera's worker may
    call ``consider``; the dashboard calls ``alerts``.
    """

    def __init__(
        self,
        db: Database | StoreTarget | str | Path,
        targets: Sequence[Target],
        *,
        topic_prefix: str = "maskwatch",
        retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
        timeout: float = 5.0,
        public_url: str | None = None,
        lease: float = DEFAULT_LEASE,
    ) -> None:
        if not all(_number(d) and d >= 0 for d in retry_delays):
            raise MaskwatchError(f"alert retry delays must be seconds, 0 or more (got {list(retry_delays)!r})")
        if not _number(timeout) or timeout <= 0:
            raise MaskwatchError(f"alert timeout must be more than 0 seconds (got {timeout!r})")
        if not _number(lease) or lease <= 2 * timeout:  # an MQTT attempt may wait twice the timeout
            raise MaskwatchError(f"alert lease must be more than twice the timeout, {2 * timeout:g} s (got {lease!r})")
        self.targets = tuple(dict.fromkeys(targets))
        self.topic_prefix = topic_prefix.strip("/") or "maskwatch"
        self.retry_delays = tuple(float(d) for d in retry_delays)
        self.timeout = float(timeout)
        self.lease = float(lease)
        self.public_url = public_url.rstrip("/") if public_url else None
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"  # this Alerter's claims
        self._owns_db = not isinstance(db, Database)
        if isinstance(db, Database):
            migrate(db)  # a no-op on the monitor's store, which open_database migrated already
            self.db = db
        else:
            self.db = open_database(db)
        self.log = AlertLog(self.db)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._senders = [_Sender(self, t) for t in self.targets]
        self._closed = False
        for kind, address, n in self.log.pending_by_target():
            if Target(kind, address) not in self.targets:
                log.warning("%d alert deliveries to %s %s stay pending: not a target here", n, kind, address)
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
        row = {
            "camera": str(person["camera"]), "person": int(person["id"]), "label": str(person["label"]),
            "vote_share": float(person["vote_share"]), "frames": int(person["frames"]),
            "time": float(person["last_seen"]), "first_seen": _float(person.get("first_seen")),
            "face_px": _float(person.get("face_px")), "snapshot": person.get("snapshot"), "created": time.time(),
        }  # fmt: skip
        with self._lock:
            if self._closed:
                raise RuntimeError("Alerter is closed")
            try:
                alert_id = self.log.add(
                    row,
                    lambda i: json.dumps(self._body(i, person), separators=(",", ":")),
                    [(t.kind, t.address) for t in self.targets],
                    rule.cooldown,
                    row["created"],
                )
            except DBAPIError as exc:
                raise self.db.error(exc) from None
        if alert_id is not None:
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
        without targets). Every server's alerts, where several share the store."""
        return self.log.list(camera, limit, before)

    def close(self, timeout: float = 5.0) -> None:
        """Stop the senders (waiting up to ``timeout`` seconds in all) and hand back the claims still held; what is
        still pending stays pending in the store, and any Alerter on it with the same target resumes it."""
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
        try:
            self.log.release(self.owner)  # a sender still waiting on its receiver records nothing now
        except (DBAPIError, MaskwatchError) as exc:  # the store is gone: the claims run out by themselves
            log.warning("alert claims of %s not released: %s", self.owner, exc)
        if self._owns_db:
            self.db.close()

    def __enter__(self) -> Alerter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _float(x: object) -> float | None:
    return None if x is None else float(x)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------------- senders


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer that is not 2xx: urllib would turn the POST into a GET and drop the body."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


class _Sender:
    """One thread per target: claims its due pending deliveries in order, one at a time, and sends each."""

    def __init__(self, alerter: Alerter, target: Target) -> None:
        self.alerter, self.target = alerter, target
        self.wake, self._connected = threading.Event(), threading.Event()
        self._mqtt: Any = None
        self.thread = threading.Thread(target=self._run, name=f"alerts {target.name}", daemon=True)

    def _run(self) -> None:
        a, kind, address = self.alerter, self.target.kind, self.target.address
        try:
            if kind == "mqtt":
                self._mqtt_start()
            while not a._stop.is_set():
                self.wake.clear()
                try:
                    claimed = a.log.claim(kind, address, a.owner, a.lease, time.time())
                    if claimed is None:
                        due = a.log.next_due(kind, address)
                        self.wake.wait(_IDLE_POLL if due is None else min(_IDLE_POLL, max(0.0, due - time.time())))
                        continue
                    self._record(claimed, self._send(claimed.body, claimed.camera))
                except (DBAPIError, MaskwatchError) as exc:  # the store is away (a PostgreSQL restart): try again
                    log.warning("alert sender for %s: %s", self.target.name, str(exc).splitlines()[0])
                    a._stop.wait(_IDLE_POLL)
        except Exception:  # a sender must not die silently; what it had stays pending for the next start
            log.exception("alert sender for %s stopped", self.target.name)
        finally:
            self._mqtt_stop()

    def _record(self, claimed: Claimed, error: str | None) -> None:
        now, attempts = time.time(), claimed.attempts + 1
        delays = self.alerter.retry_delays  # after the n-th failed attempt: the n-th delay, jittered by ±20%
        delay = None if error is None or attempts > len(delays) else delays[attempts - 1] * random.uniform(0.8, 1.2)
        state = "delivered" if error is None else "failed" if delay is None else "pending"
        if state == "failed":
            log.warning("alert delivery %d to %s failed after %d attempts: %s", claimed.id, self.target.name,
                        attempts, error)  # fmt: skip
        values = {"state": state, "attempts": attempts, "last_error": error and error[:500], "last_attempt": now,
                  "next_attempt": now + (delay or 0), "delivered_at": now if error is None else None}  # fmt: skip
        if not self.alerter.log.record(claimed, self.alerter.owner, values):
            log.warning("alert delivery %d to %s: its claim ran out during the attempt (%s); another sender has it",
                        claimed.id, self.target.name, error or "delivered")  # fmt: skip

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
